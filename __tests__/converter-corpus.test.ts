// GIVEN the conformance corpus (__tests__/fixtures/xml-corpus) WHEN converted in-process THEN the output is the
// lab converter's byte for byte (lab/, valid/, beyond/) and every malformed document is rejected with
// FILE:LINE:COLUMN and no output at all (invalid/).
import * as fs from 'node:fs';
import { convert, ConvertOptions, XmlError } from '../images/converter/src/convert';
import { corpusCases, genRecords } from '../tools/servers/converter-records';

async function* chunks(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function run(input: Buffer, opts: Partial<ConvertOptions> = {}, chunkSize = 65536): Promise<string> {
  const out: Buffer[] = [];
  await convert(chunks(input, chunkSize), async (b) => void out.push(Buffer.from(b)), { source: 'doc.xml', ...opts });
  return Buffer.concat(out).toString('utf8');
}

/** Output bytes plus the error, for documents that must fail. */
async function runFailing(input: Buffer, source: string): Promise<{ out: number; error: unknown }> {
  let out = 0;
  try {
    await convert(chunks(input, 65536), async (b) => void (out += b.length), { source });
    return { out, error: undefined };
  } catch (error) {
    return { out, error };
  }
}

const HOSTILE_ACCEPTED = ['invalid/billion_laughs.xml', 'invalid/xxe_file_passwd.xml', 'invalid/xxe_parameter_entity.xml'];
const sameAsLab = [...corpusCases('lab'), ...corpusCases('valid'), ...corpusCases('beyond')];
const invalid = corpusCases('invalid').filter((c) => !HOSTILE_ACCEPTED.includes(c.name));

test('the corpus has the cases its README lists', () => {
  expect(corpusCases('lab')).toHaveLength(2);
  expect(corpusCases('valid')).toHaveLength(62);
  expect(corpusCases('beyond')).toHaveLength(2);
  expect(invalid).toHaveLength(23);
});

describe.each(sameAsLab.map((c) => [c.name, c] as const))('%s', (_name, c) => {
  const xml = fs.readFileSync(c.xml);
  const expected = fs.readFileSync(c.expected!, 'utf8');

  test('lab format is byte-identical to the lab converter', async () => {
    expect(await run(xml)).toBe(expected);
  });

  test('same bytes when fed 7 bytes at a time and when every buffered value spills to disk', async () => {
    expect(await run(xml, { spillThreshold: 1 }, 7)).toBe(expected);
  });

  test('compact format holds the same JSON value (same key order)', async () => {
    const compact = await run(xml, { format: 'compact' });
    expect(compact).not.toContain('\n');
    expect(JSON.stringify(JSON.parse(compact))).toBe(JSON.stringify(JSON.parse(expected)));
  });
});

describe.each(invalid.map((c) => [c.name, c] as const))('%s', (_name, c) => {
  test('is rejected with SOURCE:LINE:COLUMN: message and nothing is written', async () => {
    const { out, error } = await runFailing(fs.readFileSync(c.xml), c.xml);
    expect(error).toBeInstanceOf(XmlError);
    const message = (error as XmlError).message;
    expect(message.startsWith(`${c.xml}:`)).toBe(true);
    expect(message).toMatch(/^[^\n]+:\d+:\d+: \S[^\n]*$/);
    expect(out).toBe(0);
  });
});

describe('hostile documents the lab accepted', () => {
  test.each(HOSTILE_ACCEPTED)('%s converts like xmltodict 0.13 (references dropped), fast, reading nothing', async (name) => {
    const c = corpusCases('invalid').find((x) => x.name === name)!;
    const started = Date.now();
    const out = await run(fs.readFileSync(c.xml));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(out).toBe(fs.readFileSync(c.expected!, 'utf8'));
    expect(out).not.toMatch(/root:|nologin/); // nothing from /etc/passwd
  });

  test('billion laughs in an attribute stops at the amplification limit, on the line expat names', async () => {
    const c = corpusCases('invalid').find((x) => x.name === 'invalid/billion_laughs_attribute.xml')!;
    const started = Date.now();
    const { error } = await runFailing(fs.readFileSync(c.xml), 'b.xml');
    expect(Date.now() - started).toBeLessThan(1000);
    expect((error as Error).message).toMatch(/^b\.xml:14:\d+: entity amplification limit breached/);
  });

  test('internal entities: dropped in text, expanded in attributes (pinned doctype behaviour)', async () => {
    const out = await run(Buffer.from('<!DOCTYPE r [<!ENTITY e "E&#65;"><!ENTITY f "[&e;]">]><r a="&f;" b="&amp;&e;">x&e;y</r>'));
    expect(JSON.parse(out)).toEqual({ r: { '@a': '[EA]', '@b': '&EA', '#text': 'xy' } });
  });
});

describe('streaming layouts', () => {
  const records = genRecords(300_000);

  test('non-contiguous repeats and spilled siblings keep first-occurrence order', async () => {
    const big = 'x'.repeat(5000);
    const xml = Buffer.from(`<r><a>${big}1</a><b><c>1</c><c>2</c></b><a>2</a><d/><b>3</b><a><z>${big}</z></a></r>`);
    const expected = {
      r: { a: [`${big}1`, '2', { z: big }], b: [{ c: ['1', '2'] }, '3'], d: null },
    };
    for (const spillThreshold of [1, 100, 1 << 22]) {
      const out = await run(xml, { spillThreshold }, 3);
      expect(JSON.parse(out)).toEqual(expected);
      expect(out).toBe(await run(xml, { spillThreshold: 1 << 22 }));
    }
  });

  test('many names, each under the spill threshold, spill together once they pass the memory budget', async () => {
    const names = Array.from({ length: 40 }, (_, i) => `n${i}`);
    const body = [0, 1, 2].map((round) => names.map((n) => `<${n} r="${round}">${'e'.repeat(300)}${n}</${n}>`).join('')).join('');
    const xml = Buffer.from(`<root><head/><doc>${body}</doc></root>`);
    const out: Buffer[] = [];
    async function* one() {
      yield xml;
    }
    const r = await convert(one(), async (b) => void out.push(Buffer.from(b)), { source: 'x', spillThreshold: 2000 });
    // No single name reaches 2000 characters; together they pass the budget of 4 x 2000 many times over.
    expect(body.length).toBeGreaterThan(4 * 8000);
    expect(r.spilledBytes).toBeGreaterThan(body.length);
    expect(r.peakBufferedChars).toBeLessThanOrEqual(8000 + 400);
    expect(Buffer.concat(out).toString()).toBe(await run(xml));
    expect(Object.keys(JSON.parse(Buffer.concat(out).toString()).root.doc)).toEqual(names);
  });

  test('a record file gives the same bytes with or without spilling, and jsonl lines equal its records', async () => {
    const lab = await run(records);
    expect(await run(records, { spillThreshold: 64 }, 4096)).toBe(lab);
    const recs = JSON.parse(lab).records.record as unknown[];
    expect(recs.length).toBeGreaterThan(100);
    const jsonl = await run(records, { format: 'jsonl', recordPath: '/records/record' }, 1000);
    const lines = jsonl.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => JSON.parse(l))).toEqual(recs);
  });

  test('jsonl ignores elements outside the record path and needs a valid path', async () => {
    const xml = Buffer.from('<a><meta>m</meta><b><c i="1">x</c><d/><c>y</c></b><c>not a record</c></a>');
    expect(await run(xml, { format: 'jsonl', recordPath: '/a/b/c' })).toBe('{"@i":"1","#text":"x"}\n"y"\n');
    await expect(run(xml, { format: 'jsonl', recordPath: 'a/b' })).rejects.toThrow(/record path/);
  });

  test('limits: nesting depth and input size give clear errors with a position', async () => {
    await expect(run(Buffer.from('<a><b><c/></b></a>'), { maxDepth: 2 })).rejects.toThrow(
      /^doc\.xml:1:\d+: element nesting deeper than the limit of 2 \(MAX_DEPTH\)$/,
    );
    await expect(run(records, { maxInputBytes: 100_000 }, 65536)).rejects.toThrow(/^doc\.xml:\d+:\d+: input larger than the limit of 100000 bytes/);
  });

  test("a bare '&' fails right after it, without buffering the rest of the document as a name", async () => {
    await expect(run(Buffer.from('<r>a & b;</r>'))).rejects.toThrow(/^doc\.xml:1:6: not well-formed: '&' must start a reference/);
    const noSemicolon = Buffer.concat([Buffer.from('<r>&'), Buffer.alloc(2_000_000, 'a'), Buffer.from('</r>')]);
    await expect(run(noSemicolon)).rejects.toThrow(/^doc\.xml:1:\d+: not well-formed: entity reference longer than 1024 characters$/);
  });

  test('an aborted conversion stops between chunks', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop now'));
    await expect(run(records, { signal: ac.signal })).rejects.toThrow('stop now');
  });
});
