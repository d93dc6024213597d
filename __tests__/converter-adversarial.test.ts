// GIVEN hostile or unusual XML, generated here (issue 14) WHEN the converter's CLI converts it (a child
// process, input on stdin or in a small file) THEN each case ends with its expected exit code and error
// position, within a bound on wall time and peak RSS (GNU time's %M). Positions are LINE:COLUMN as the
// converter reports them (saxes' column); where expat (the reference, Debian's python3-xmltodict 0.13)
// rejects the same input, the line is the one expat names.
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI } from '../tools/servers/converter-records';
import { imageNode } from '../tools/servers/image-runtime';

const GNU_TIME = '/usr/bin/time';

interface Outcome {
  code: number | null;
  stderr: string;
  /** stdout, when it is at most 1 MiB. */
  stdout: string;
  outBytes: number;
  outSha256: string;
  seconds: number;
  rssMib: number;
}

// Memory bounds hold for the converter as it ships: its image's Node release and flags (its Dockerfile).
const NODE = imageNode('converter');

type Input = Buffer | (() => Generator<Buffer | string>);

/** Runs the CLI under GNU time, feeding `input` on stdin (with back-pressure). */
function runCli(input: Input, env: Record<string, string> = {}, args: string[] = []): Promise<Outcome> {
  const report = path.join(os.tmpdir(), `adversarial-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const child = spawn(GNU_TIME, ['-o', report, '-f', '%e %M', ...NODE, CLI, ...args, '-'], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const hash = crypto.createHash('sha256');
  const kept: Buffer[] = [];
  let outBytes = 0;
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    hash.update(d);
    outBytes += d.length;
    if (outBytes <= 1 << 20) kept.push(d);
  });
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.on('error', () => undefined); // the converter may stop reading at an error
  const feed = async () => {
    const chunks = Buffer.isBuffer(input) ? [input] : input();
    for (const c of chunks) {
      if (child.stdin.destroyed) return;
      if (!child.stdin.write(c)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            child.stdin.off('drain', done).off('close', done);
            resolve();
          };
          child.stdin.once('drain', done).once('close', done);
        });
      }
    }
    child.stdin.end();
  };
  void feed();
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      const [seconds, kb] = fs.readFileSync(report, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
      fs.rmSync(report, { force: true });
      resolve({
        code,
        // GNU time reports a non-zero exit on its own line: not the converter's output.
        stderr: stderr.replace(/^Command exited with non-zero status \d+\n/m, ''),
        stdout: outBytes <= 1 << 20 ? Buffer.concat(kept).toString('utf8') : '',
        outBytes,
        outSha256: hash.digest('hex'),
        seconds,
        rssMib: kb / 1024,
      });
    });
  });
}

function* repeat(prefix: string, unit: string, count: number, suffix: string): Generator<string> {
  yield prefix;
  const block = unit.repeat(Math.max(1, Math.floor((1 << 20) / unit.length)));
  const per = block.length / unit.length;
  let left = count;
  for (; left >= per; left -= per) yield block;
  if (left > 0) yield unit.repeat(left);
  yield suffix;
}

/** Internal entities nested to make `e4` 500,000 characters: e0 is 50 x, each level 10 references. */
const NESTED_ENTITIES = `<!DOCTYPE r [<!ENTITY e0 "${'x'.repeat(50)}">${[1, 2, 3, 4].map((i) => `<!ENTITY e${i} "${`&e${i - 1};`.repeat(10)}">`).join('')}]>`;
/** What expat reads to expand &e4; once: each entity's replacement text once per use. */
const E4_COST = 40 + 10 * 40 + 100 * 40 + 1000 * 40 + 10_000 * 50;

const sha = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
const labValue = (name: string, json: string) => `{\n    "${name}": ${json}\n}`;

interface Case {
  name: string;
  input: Input;
  env?: Record<string, string>;
  args?: string[];
  exit: number;
  /** For exit 65: the whole stderr line after "<stdin>:". */
  error?: RegExp;
  maxSeconds: number;
  maxMib: number;
  check?: (o: Outcome) => void;
}

const MIB_BOUND = 256; // the documented bound for any input within the limits (README "Limits")

const cases: Case[] = [
  {
    name: 'entity amplification over 1,000 attributes (38 KB in, 500 MB out before): stopped where expat stops',
    input: Buffer.from(`${NESTED_ENTITIES}\n<r>\n${'<a v="&e4;"/>\n'.repeat(1000)}</r>`),
    exit: 65,
    // expat: "limit on input amplification factor (from DTD and entities) breached: line 18, column 0"
    error: /^18:\d+: entity amplification limit breached: (\d+) characters of entity expansion/,
    maxSeconds: 5,
    maxMib: 150,
    check: (o) => expect(Number(/breached: (\d+)/.exec(o.stderr)![1])).toBe(16 * E4_COST), // nested levels counted once
  },
  {
    name: '1,100 attributes of one element each expanding to 500k characters: the amplification limit, not "Invalid string length"',
    input: Buffer.from(`${NESTED_ENTITIES}\n<r\n${Array.from({ length: 1100 }, (_, i) => ` a${i}="&e4;"\n`).join('')}/>`),
    exit: 65,
    error: /^\d+:\d+: entity amplification limit breached/,
    maxSeconds: 5,
    maxMib: 150,
  },
  {
    name: 'the same entities within the budget convert (amplification below the threshold)',
    input: Buffer.from(`${NESTED_ENTITIES}<r>${'<a v="&e4;"/>'.repeat(15)}</r>`),
    exit: 0,
    maxSeconds: 10,
    maxMib: 200,
    check: (o) => expect(o.outBytes).toBeGreaterThan(15 * 500_000),
  },
  {
    name: 'amplification limit and threshold are settings',
    input: Buffer.from(`${NESTED_ENTITIES}<r><a v="&e4;"/></r>`),
    env: { ENTITY_AMPLIFICATION_THRESHOLD: '100000', ENTITY_AMPLIFICATION_MAX: '2.5' },
    exit: 65,
    error: /^1:\d+: entity amplification limit breached: 544440 characters .*more than 2\.5 times, ENTITY_AMPLIFICATION_MAX; applies from 100000 characters/,
    maxSeconds: 5,
    maxMib: 150,
  },
  {
    name: 'billion laughs in text: references dropped (as xmltodict 0.13 on expat), nothing expanded',
    input: Buffer.from(`${NESTED_ENTITIES}<r>a${'&e4;'.repeat(10_000)}b</r>`),
    exit: 0,
    maxSeconds: 5,
    maxMib: 150,
    check: (o) => expect(o.stdout).toBe(labValue('r', '"ab"')),
  },
  {
    name: 'a 560 MB text node (more characters than one V8 string holds) converts in bounded memory',
    input: () => repeat('<r>', 'a', 560_000_000, '</r>'),
    exit: 0,
    maxSeconds: 180,
    maxMib: MIB_BOUND,
    check: (o) => {
      const h = crypto.createHash('sha256').update('{\n    "r": "');
      for (const b of repeat('', 'a', 560_000_000, '')) h.update(b);
      expect(o.outSha256).toBe(h.update('"\n}').digest('hex'));
    },
  },
  {
    name: 'a 50 MB non-ASCII text node (714 MB before)',
    input: () => repeat('<r>', 'é', 25_000_000, '</r>'),
    exit: 0,
    maxSeconds: 60,
    maxMib: MIB_BOUND,
    check: (o) => expect(o.outBytes).toBe(labValue('r', '""').length + 25_000_000 * 6),
  },
  {
    name: 'a 100 MB comment and a 100 MB processing instruction are read without keeping them',
    input: () =>
      (function* () {
        yield* repeat('<r>a<!--', 'c', 100_000_000, '-->b');
        yield* repeat('<?pi ', 'p', 100_000_000, '?>c</r>');
      })(),
    exit: 0,
    maxSeconds: 60,
    maxMib: MIB_BOUND,
    check: (o) => expect(o.stdout).toBe(labValue('r', '"abc"')),
  },
  {
    name: 'an attribute value over MAX_VALUE_CHARS is an input limit with its position (was exit 74)',
    input: () => repeat('<r>\n<a v="', 'v', 20_000_000, '"/></r>'),
    exit: 65,
    error: /^2:\d+: value longer than the limit of 4194304 characters \(MAX_VALUE_CHARS\)$/,
    maxSeconds: 30,
    maxMib: MIB_BOUND,
  },
  {
    name: 'a non-ASCII attribute value just under MAX_VALUE_CHARS converts within the memory bound',
    input: () => repeat('<r a="', 'é', 4_190_000, '"/>'),
    exit: 0,
    maxSeconds: 30,
    maxMib: MIB_BOUND,
    check: (o) => expect(o.outBytes).toBe(labValue('r', '{\n        "@a": ""\n    }').length + 4_190_000 * 6),
  },
  {
    name: 'a name over MAX_VALUE_CHARS',
    input: () => repeat('<r><', 'n', 5000, '/></r>'),
    env: { MAX_VALUE_CHARS: '1000' },
    exit: 65,
    error: /^1:\d+: name longer than the limit of 1000 characters \(MAX_VALUE_CHARS\)$/,
    maxSeconds: 5,
    maxMib: 150,
  },
  {
    name: "a start tag's attributes together over MAX_VALUE_CHARS",
    input: Buffer.from(`<r>\n<a ${Array.from({ length: 300 }, (_, i) => `n${i}="${'v'.repeat(20)}"`).join(' ')}/></r>`),
    env: { MAX_VALUE_CHARS: '1000' },
    exit: 65,
    error: /^2:\d+: start tag's attributes longer than the limit of 1000 characters/,
    maxSeconds: 5,
    maxMib: 150,
  },
  {
    name: '2 million distinct child names (1.4 GB before): MAX_CHILD_NAMES with its position',
    input: () =>
      (function* () {
        yield '<r>';
        for (let i = 0; i < 2_000_000; i += 10_000) yield Array.from({ length: 10_000 }, (_, j) => `<n${i + j}/>`).join('');
        yield '</r>';
      })(),
    exit: 65,
    error: /^1:\d+: more than 100000 distinct child element names held for the open elements \(MAX_CHILD_NAMES\)$/,
    maxSeconds: 20,
    maxMib: 200,
  },
  {
    name: '99,999 distinct child names (just inside MAX_CHILD_NAMES) convert within the memory bound',
    input: () =>
      (function* () {
        yield '<r>';
        for (let i = 0; i < 99_999; i += 1000) yield Array.from({ length: Math.min(1000, 99_999 - i) }, (_, j) => `<n${i + j}>v</n${i + j}>`).join('');
        yield '</r>';
      })(),
    exit: 0,
    maxSeconds: 60,
    maxMib: MIB_BOUND,
    check: (o) => expect(o.outSha256).toBe(sha(`{\n    "r": {\n${Array.from({ length: 99_999 }, (_, i) => `        "n${i}": "v"`).join(',\n')}\n    }\n}`)),
  },
  {
    name: '10,000-deep nesting (the default limit; 979 MB and 22 s before): 200 MB of indented output',
    input: Buffer.from('<a>'.repeat(10_000) + 'x' + '</a>'.repeat(10_000)),
    exit: 0,
    maxSeconds: 60,
    maxMib: MIB_BOUND,
    // Object k (0 = the document's braces, up to n - 1) is `{`, newline, 4(k+1) spaces, `"a": `, the
    // inner value, newline, 4k spaces, `}`: 13 + 8k bytes around the inner value; the innermost is "x".
    check: (o) => expect(o.outBytes).toBe(13 * 10_000 + 4 * 10_000 * 9_999 + 3),
  },
  {
    name: '80,000-deep nesting with MAX_DEPTH raised, compact: linear time (163 s before)',
    input: Buffer.from('<a>'.repeat(80_000) + 'x' + '</a>'.repeat(80_000)),
    env: { MAX_DEPTH: '100000' },
    args: ['--format', 'compact'],
    exit: 0,
    maxSeconds: 20,
    maxMib: MIB_BOUND,
    check: (o) => expect(o.outSha256).toBe(sha('{"a":'.repeat(80_000) + '"x"' + '}'.repeat(80_000))),
  },
  {
    name: 'nesting deeper than MAX_DEPTH',
    input: Buffer.from('<a>\n'.repeat(10_001)),
    exit: 65,
    error: /^10001:\d+: element nesting deeper than the limit of 10000 \(MAX_DEPTH\)$/,
    maxSeconds: 10,
    maxMib: 150,
  },
  {
    name: '5,000 open elements each with text and attributes, spill budget small: all of it spills, same output',
    input: Buffer.from(Array.from({ length: 5000 }, (_, i) => `<e i="${i}"> t${i} `).join('') + Array.from({ length: 5000 }, () => '</e>').join('')),
    env: { SPILL_THRESHOLD: '64' },
    args: ['--format', 'compact'],
    exit: 0,
    maxSeconds: 20,
    maxMib: 150,
    check: (o) => {
      let expected = '';
      for (let i = 4999; i >= 0; i--) expected = i === 4999 ? `{"@i":"${i}","#text":"t${i}"}` : `{"@i":"${i}","e":${expected},"#text":"t${i}"}`;
      expect(o.outSha256).toBe(sha(`{"e":${expected}}`));
    },
  },
  {
    name: 'spilled text keeps str.strip(): inner whitespace kept, outer dropped, surrogate pairs whole',
    input: Buffer.from(`<r>${' \n'.repeat(100)}a😀${' '.repeat(100)}b${'😀'.repeat(50)}\t${'\n '.repeat(100)}</r>`),
    env: { SPILL_THRESHOLD: '7' },
    exit: 0,
    maxSeconds: 5,
    maxMib: 150,
    check: (o) =>
      expect(o.stdout).toBe(
        labValue(
          'r',
          JSON.stringify(`a😀${' '.repeat(100)}b${'😀'.repeat(50)}`).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`),
        ),
      ),
  },
  {
    name: 'a bare & in a 2 MB text: fails right after it',
    input: () => repeat('<r>\nab & ', 'c', 2_000_000, '</r>'),
    exit: 65,
    error: /^2:4: not well-formed: '&' must start a reference/,
    maxSeconds: 5,
    maxMib: 150,
  },
  // Encodings (XML 1.0 section 4.3.3 and appendix F; expat's answers noted).
  {
    name: 'UTF-8 BOM with an ISO-8859-1 declaration: an error (XML 4.3.3; expat decodes it as ISO-8859-1 - README)',
    input: Buffer.from('\xef\xbb\xbf<?xml version="1.0" encoding="ISO-8859-1"?><r>\xc3\xa9</r>', 'latin1'),
    exit: 65,
    error: /^1:\d+: encoding specified in XML declaration is incorrect: "ISO-8859-1" in a document that starts with a UTF-8 byte order mark$/,
    maxSeconds: 5,
    maxMib: 150,
  },
  {
    name: 'UTF-16LE BOM with a UTF-8 declaration: an error (expat: encoding specified in XML declaration is incorrect, line 1)',
    input: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('<?xml version="1.0" encoding="UTF-8"?><r>x</r>', 'utf16le')]),
    exit: 65,
    error: /^1:\d+: encoding specified in XML declaration is incorrect: "UTF-8" in a document that starts with a UTF-16LE byte order mark$/,
    maxSeconds: 5,
    maxMib: 150,
  },
  {
    name: 'UTF-16BE BOM with a UTF-16LE declaration: an error (expat too)',
    input: Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from('<?xml version="1.0" encoding="UTF-16LE"?><r>x</r>', 'utf16le').swap16()]),
    exit: 65,
    error: /^1:\d+: encoding specified in XML declaration is incorrect: "UTF-16LE"/,
    maxSeconds: 5,
    maxMib: 150,
  },
  {
    name: 'UTF-16LE BOM with a UTF-16 declaration converts (expat too)',
    input: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('<?xml version="1.0" encoding="UTF-16"?><r>\u00e9</r>', 'utf16le')]),
    exit: 0,
    maxSeconds: 5,
    maxMib: 150,
    check: (o) => expect(o.stdout).toBe(labValue('r', '"\\u00e9"')),
  },
  {
    name: 'a UTF-16 declaration in a single-byte document: an error (expat too)',
    input: Buffer.from('<?xml version="1.0" encoding="UTF-16"?><r>x</r>'),
    exit: 65,
    error: /^1:\d+: encoding specified in XML declaration is incorrect: "UTF-16"/,
    maxSeconds: 5,
    maxMib: 150,
  },
  {
    name: 'a doubled UTF-8 BOM: an error (expat: not well-formed (invalid token), line 1)',
    input: Buffer.from('\xef\xbb\xbf\xef\xbb\xbf<r>x</r>', 'latin1'),
    exit: 65,
    error: /^1:\d+: not well-formed \(invalid token\): a second byte order mark$/,
    maxSeconds: 5,
    maxMib: 150,
  },
  {
    name: 'a doubled UTF-16 BOM: an error (expat too)',
    input: Buffer.concat([Buffer.from([0xff, 0xfe, 0xff, 0xfe]), Buffer.from('<r>x</r>', 'utf16le')]),
    exit: 65,
    error: /^1:\d+: not well-formed \(invalid token\): a second byte order mark$/,
    maxSeconds: 5,
    maxMib: 150,
  },
  {
    name: 'a byte windows-1252 does not define (0x81): an error at its position (expat: line 2, column 4), not U+FFFD',
    input: Buffer.from('<?xml version="1.0" encoding="windows-1252"?>\n<r>a\x81b</r>', 'latin1'),
    exit: 65,
    error: /^2:4: not well-formed \(invalid token\): a byte sequence windows-1252 does not define$/,
    maxSeconds: 5,
    maxMib: 150,
  },
  {
    name: 'windows-1252 0x80 is the euro sign (as in Python)',
    input: Buffer.from('<?xml version="1.0" encoding="windows-1252"?>\n<r>a\x80b</r>', 'latin1'),
    exit: 0,
    maxSeconds: 5,
    maxMib: 150,
    check: (o) => expect(o.stdout).toBe(labValue('r', '"a\\u20acb"')),
  },
  {
    name: "Shift_JIS is JIS X 0208 (as Python's shift_jis codec), not CP932: 0x8160 is U+301C WAVE DASH",
    input: Buffer.from('<?xml version="1.0" encoding="Shift_JIS"?>\n<r>\x81\x60\x81\x91\x82\xa0</r>', 'latin1'),
    exit: 0,
    maxSeconds: 5,
    maxMib: 150,
    check: (o) => expect(o.stdout).toBe(labValue('r', '"\\u301c\\u00a2\\u3042"')),
  },
  {
    name: 'a CP932-only sequence (NEC 0x8740, circled 1) in a Shift_JIS document: an error at its position',
    input: Buffer.from('<?xml version="1.0" encoding="Shift_JIS"?>\n<r>ab\x87\x40</r>', 'latin1'),
    exit: 65,
    error: /^2:5: not well-formed \(invalid token\): a CP932 extension byte sequence, not Shift_JIS/,
    maxSeconds: 5,
    maxMib: 150,
  },
  {
    name: 'the same bytes declared windows-31j are CP932',
    input: Buffer.from('<?xml version="1.0" encoding="windows-31j"?>\n<r>\x87\x40\x81\x60</r>', 'latin1'),
    exit: 0,
    maxSeconds: 5,
    maxMib: 150,
    check: (o) => expect(o.stdout).toBe(labValue('r', '"\\u2460\\uff5e"')),
  },
];

// A few cases need seconds of CPU each; the whole table runs in about two minutes on 2 shared cores.
jest.setTimeout(300_000);

test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
  const o = await runCli(c.input, c.env, c.args);
  if (o.code !== c.exit) throw new Error(`exit ${o.code}, expected ${c.exit}; stderr: ${o.stderr.slice(0, 500)}`);
  if (c.exit === 65) {
    const lines = o.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0].startsWith('<stdin>:')).toBe(true);
    expect(lines[0].slice('<stdin>:'.length)).toMatch(c.error!);
  } else {
    expect(o.stderr).toBe('');
  }
  c.check?.(o);
  expect(o.seconds).toBeLessThanOrEqual(c.maxSeconds);
  expect(o.rssMib).toBeLessThanOrEqual(c.maxMib);
});
