// GIVEN the strict S3 stand-in WHEN the converter's container entrypoint
// (images/converter/dist/main.js) runs against it THEN it keeps the lab contract (BUCKET + S3PATH ->
// S3PATH.json), converts batches with a per-key summary and exit code, streams multipart uploads, and
// never leaves a partial object (malformed input mid-stream, SIGTERM).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { convert } from '../images/converter/src/convert';
import { ProcessRun, corpusCases, genRecords, runConverterMain } from '../tools/servers/converter-records';
import { S3Server, startS3 } from '../tools/servers/s3';

type Run = ProcessRun;

let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3(['in', 'out']);
});
afterAll(async () => {
  await s3?.dispose();
});

function runMain(env: Record<string, string>, onStderr?: (text: string, kill: (s: NodeJS.Signals) => void) => void): Promise<Run> {
  return runConverterMain({ ...s3.env, ...env }, onStderr && ((text, child) => onStderr(text, (sig) => child.kill(sig))), 100_000);
}

const logLines = (r: Run) =>
  r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

async function labJson(xml: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  async function* one() {
    yield xml;
  }
  await convert(one(), async (b) => void out.push(Buffer.from(b)), { source: 'x' });
  return Buffer.concat(out);
}

test('lab contract: BUCKET + S3PATH write S3PATH.json in the same bucket; one JSON log line', async () => {
  const c = corpusCases('lab').find((x) => x.name.endsWith('customer.xml'))!;
  const xml = fs.readFileSync(c.xml);
  await s3.put('in', 'lab/customer.xml', xml);
  const r = await runMain({ BUCKET: 'in', S3PATH: 'lab/customer.xml' });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect((await s3.get('in', 'lab/customer.xml.json')).toString('utf8')).toBe(fs.readFileSync(c.expected!, 'utf8'));
  const [log, ...rest] = logLines(r);
  expect(rest).toEqual([]);
  expect(log).toMatchObject({ source: 's3://in/lab/customer.xml', output: 's3://in/lab/customer.xml.json', outcome: 'converted', bytesIn: xml.length });
  for (const k of ['bytesOut', 'records', 'seconds', 'mbPerSec']) expect(typeof log[k]).toBe('number');
});

test('batch with one malformed key: the others convert, the summary names the failure, exit 65', async () => {
  const good = corpusCases('valid').slice(0, 3);
  const bad = corpusCases('invalid').find((x) => x.name.endsWith('mismatched_tag.xml'))!;
  for (const c of good) await s3.put('in', `batch/${path.basename(c.xml)}`, fs.readFileSync(c.xml));
  await s3.put('in', 'batch/bad.xml', fs.readFileSync(bad.xml));
  const keys = [`batch/${path.basename(good[0].xml)}`, 'batch/bad.xml', ...good.slice(1).map((c) => `batch/${path.basename(c.xml)}`)];
  const r = await runMain({
    BUCKET: 'in',
    S3PATHS: JSON.stringify(keys),
    OUTPUT_BUCKET: 'out',
    OUTPUT_PREFIX: 'json/',
    RESULT_KEY: 'results/batch.json',
    CONCURRENCY: '2',
    FORMAT: 'compact',
  });
  expect(r.code).toBe(65);
  expect(r.stderr.trim()).toMatch(/^s3:\/\/in\/batch\/bad\.xml:\d+:\d+: \S.*$/);
  const summary = JSON.parse((await s3.get('out', 'results/batch.json')).toString());
  expect(summary.converted.map((x: { key: string }) => x.key).sort()).toEqual(keys.filter((k) => k !== 'batch/bad.xml').sort());
  for (const x of summary.converted) {
    expect(x).toMatchObject({ output: `json/${x.key}.json` });
    for (const f of ['bytesIn', 'bytesOut', 'records', 'seconds']) expect(typeof x[f]).toBe('number');
  }
  expect(summary.failed).toEqual([{ key: 'batch/bad.xml', error: r.stderr.trim(), malformed: true }]);
  expect(await s3.keys('out', 'json/')).toEqual(keys.filter((k) => k !== 'batch/bad.xml').map((k) => `json/${k}.json`).sort());
  for (const c of good) {
    const got = (await s3.get('out', `json/batch/${path.basename(c.xml)}.json`)).toString();
    expect(JSON.stringify(JSON.parse(got))).toBe(JSON.stringify(JSON.parse(fs.readFileSync(c.expected!, 'utf8'))));
  }
  expect(logLines(r).map((l) => l.outcome).sort()).toEqual(['converted', 'converted', 'converted', 'malformed']);
});

test('manifest of keys; a missing key is an I/O failure (exit 74) and the rest still convert', async () => {
  const c = corpusCases('valid')[5];
  await s3.put('in', 'm/one.xml', fs.readFileSync(c.xml));
  await s3.put('in', 'manifests/m1.json', JSON.stringify(['m/one.xml', 'm/missing.xml']));
  const r = await runMain({ BUCKET: 'in', S3PATHS_MANIFEST: 'manifests/m1.json', OUTPUT_BUCKET: 'out', RESULT_KEY: 'results/m1.json' });
  expect(r.code).toBe(74);
  expect((await s3.get('out', 'm/one.xml.json')).toString()).toBe(fs.readFileSync(c.expected!, 'utf8'));
  const summary = JSON.parse((await s3.get('out', 'results/m1.json')).toString());
  expect(summary.converted.map((x: { key: string }) => x.key)).toEqual(['m/one.xml']);
  expect(summary.failed).toHaveLength(1);
  expect(summary.failed[0]).toMatchObject({ key: 'm/missing.xml', malformed: false });
  expect(summary.failed[0].error).toMatch(/^s3:\/\/in\/m\/missing\.xml: .*NoSuchKey/);
});

test('FORMAT=jsonl with RECORD_PATH: one line per record, as application/x-ndjson', async () => {
  const xml = genRecords(50_000, 3);
  await s3.put('in', 'j/recs.xml', xml);
  const r = await runMain({ BUCKET: 'in', S3PATH: 'j/recs.xml', FORMAT: 'jsonl', RECORD_PATH: '/records/record' });
  expect(r.code).toBe(0);
  const lines = (await s3.get('in', 'j/recs.xml.json')).toString('utf8').split('\n');
  expect(lines.pop()).toBe('');
  const expected = JSON.parse((await labJson(xml)).toString('utf8')).records.record;
  expect(lines.map((l) => JSON.parse(l))).toEqual(expected);
  expect(logLines(r)[0].records).toBe(expected.length);
  const head = await s3.client().send(new HeadObjectCommand({ Bucket: 'in', Key: 'j/recs.xml.json' }));
  expect(head.ContentType).toBe('application/x-ndjson');
  expect((await runMain({ BUCKET: 'in', S3PATH: 'j/recs.xml', FORMAT: 'jsonl' })).code).toBe(78);
});

test('configuration errors exit 78 before touching S3', async () => {
  expect((await runMain({ S3PATH: 'x.xml' })).code).toBe(78);
  expect((await runMain({ BUCKET: 'in' })).code).toBe(78);
  const r = await runMain({ BUCKET: 'in', S3PATHS: '{"not":"an array"}' });
  expect(r.code).toBe(78);
  expect(r.stderr).toContain('S3PATHS must be a JSON array');
});

describe('large outputs', () => {
  const xml = genRecords(7 * 1024 * 1024);
  let expected: Buffer;
  beforeAll(async () => {
    expected = await labJson(xml);
    await s3.put('in', 'big/records.xml', xml);
  });

  test('an output over 5 MiB goes up as a multipart upload and is byte-identical', async () => {
    expect(expected.length).toBeGreaterThan(2 * 5 * 1024 * 1024);
    const r = await runMain({ BUCKET: 'in', S3PATH: 'big/records.xml', OUTPUT_BUCKET: 'out' });
    expect(r.code).toBe(0);
    const got = await s3.get('out', 'big/records.xml.json');
    expect(got.equals(expected)).toBe(true);
    const [log] = logLines(r);
    expect(log.uploadParts).toBe(Math.ceil(expected.length / (5 * 1024 * 1024)));
    expect(log.bytesOut).toBe(expected.length);
  });

  test('a document malformed near its end (after parts were sent) leaves no object', async () => {
    const broken = Buffer.concat([xml.subarray(0, xml.lastIndexOf('</records>')), Buffer.from('</record>\n')]);
    await s3.put('in', 'big/broken.xml', broken);
    const r = await runMain({ BUCKET: 'in', S3PATH: 'big/broken.xml', OUTPUT_BUCKET: 'out', RESULT_KEY: 'results/broken.json' });
    expect(r.code).toBe(65);
    expect(r.stderr.trim()).toMatch(/^s3:\/\/in\/big\/broken\.xml:\d+:\d+: \S/);
    expect(await s3.keys('out', 'big/broken')).toEqual([]);
    expect(JSON.parse((await s3.get('out', 'results/broken.json')).toString()).failed[0].key).toBe('big/broken.xml');
  });

  test('SIGTERM mid-conversion aborts the upload, records the key as failed, exits 143', async () => {
    const huge = genRecords(40 * 1024 * 1024, 7);
    await s3.put('in', 'big/huge.xml', huge);
    let sent = false;
    const r = await runMain(
      { BUCKET: 'in', S3PATH: 'big/huge.xml', OUTPUT_BUCKET: 'out', RESULT_KEY: 'results/term.json', LOG_LEVEL: 'debug' },
      (text, kill) => {
        if (!sent && text.includes('"outcome":"started"')) {
          sent = true;
          setTimeout(() => kill('SIGTERM'), 300);
        }
      },
    );
    expect(sent).toBe(true);
    expect(r.code).toBe(143);
    expect(r.stderr).toContain('SIGTERM');
    expect(await s3.keys('out', 'big/huge')).toEqual([]);
    const summary = JSON.parse((await s3.get('out', 'results/term.json')).toString());
    expect(summary.converted).toEqual([]);
    expect(summary.failed).toEqual([{ key: 'big/huge.xml', error: expect.stringContaining('stopped by SIGTERM'), malformed: false }]);
  });
});
