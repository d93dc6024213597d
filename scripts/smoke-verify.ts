// The verification half of `npm run smoke`: given the lab's sample files and their expected JSON (the
// lab converter's exact bytes), read each output object the pipeline wrote and compare byte for byte.
// It talks to S3 only through the client it is given, so the suite runs it against the local S3
// server (__tests__/smoke-verify.test.ts) and the smoke run against the deployed stage.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';

/** One sample: its file name, the XML bytes and the JSON the lab's converter produced from them. */
export interface SmokeCase {
  readonly name: string;
  readonly xml: Buffer;
  readonly expected: Buffer;
}

export type Verdict = 'identical' | 'different' | 'missing';

export interface SmokeRow {
  readonly name: string;
  readonly outputKey: string;
  readonly xmlBytes: number;
  readonly expectedBytes: number;
  /** Bytes of the output object; null when it does not exist. */
  readonly outputBytes: number | null;
  readonly verdict: Verdict;
  /** First byte offset where output and expectation differ (also when one is a prefix of the other). */
  readonly firstDifference?: number;
}

/** The lab's samples (`NAME.xml` with `NAME.expected.json`) in a corpus folder, sorted by name. */
export function labCases(folder: string): SmokeCase[] {
  const names = fs
    .readdirSync(folder)
    .filter((f) => f.endsWith('.xml'))
    .sort();
  if (names.length === 0) throw new Error(`no .xml samples in ${folder}`);
  return names.map((name) => {
    const expected = path.join(folder, name.replace(/\.xml$/, '.expected.json'));
    if (!fs.existsSync(expected)) throw new Error(`${name} has no expected output ${expected}`);
    return { name, xml: fs.readFileSync(path.join(folder, name)), expected: fs.readFileSync(expected) };
  });
}

function firstDifference(a: Buffer, b: Buffer): number | undefined {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? undefined : n;
}

function isMissing(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err?.name === 'NoSuchKey' || err?.$metadata?.httpStatusCode === 404;
}

/** Reads `outputKeyOf(case)` for each case from `bucket` and compares it with the expected bytes. */
export async function verifyOutputs(s3: S3Client, bucket: string, cases: readonly SmokeCase[], outputKeyOf: (c: SmokeCase) => string): Promise<SmokeRow[]> {
  const rows: SmokeRow[] = [];
  for (const c of cases) {
    const outputKey = outputKeyOf(c);
    const base = { name: c.name, outputKey, xmlBytes: c.xml.length, expectedBytes: c.expected.length };
    let body: Buffer;
    try {
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: outputKey }));
      body = Buffer.from(await res.Body!.transformToByteArray());
    } catch (e) {
      if (isMissing(e)) {
        rows.push({ ...base, outputBytes: null, verdict: 'missing' });
        continue;
      }
      throw e;
    }
    const diff = firstDifference(body, c.expected);
    rows.push({
      ...base,
      outputBytes: body.length,
      verdict: diff === undefined ? 'identical' : 'different',
      ...(diff === undefined ? {} : { firstDifference: diff }),
    });
  }
  return rows;
}

/** A fixed-width table, one line per file, and a last line with the totals. */
export function formatTable(rows: readonly SmokeRow[]): string {
  const header = ['file', 'xml bytes', 'expected bytes', 'output bytes', 'result'];
  const body = rows.map((r) => [
    r.name,
    String(r.xmlBytes),
    String(r.expectedBytes),
    r.outputBytes === null ? '-' : String(r.outputBytes),
    r.verdict === 'different' ? `different from byte ${r.firstDifference}` : r.verdict,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  const ok = rows.filter((r) => r.verdict === 'identical').length;
  return [line(header), ...body.map(line), `${ok} of ${rows.length} outputs identical to the lab's`].join('\n');
}
