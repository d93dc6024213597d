// GIVEN the strict S3 stand-in WHEN the converter's container entrypoint
// (images/converter/dist/main.js) runs against it THEN it keeps the lab contract (BUCKET + S3PATH ->
// S3PATH.json), converts batches with a per-key summary and exit code, streams multipart uploads, and
// never leaves a partial object (malformed input mid-stream, SIGTERM).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { FAILED_MANIFEST_PREFIX } from '../images/converter/src/main';
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

const allLines = (r: Run): Array<Record<string, any>> =>
  r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
/** The per-key log lines (the last line is the task's). */
const logLines = (r: Run) => allLines(r).filter((l) => l.outcome !== 'task');
const taskLine = (r: Run) => {
  const lines = allLines(r);
  expect(lines[lines.length - 1].outcome).toBe('task');
  return lines[lines.length - 1];
};

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
  expect(await s3.keys('out', 'json/')).toEqual(
    keys
      .filter((k) => k !== 'batch/bad.xml')
      .map((k) => `json/${k}.json`)
      .sort(),
  );
  for (const c of good) {
    const got = (await s3.get('out', `json/batch/${path.basename(c.xml)}.json`)).toString();
    expect(JSON.stringify(JSON.parse(got))).toBe(JSON.stringify(JSON.parse(fs.readFileSync(c.expected!, 'utf8'))));
  }
  expect(
    logLines(r)
      .map((l) => l.outcome)
      .sort(),
  ).toEqual(['converted', 'converted', 'converted', 'malformed']);
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

/** The metrics an EMF line declares (name -> [value, unit]), after checking its structure (contract C1). */
function emfOf(line: Record<string, any>, pipeline: string): Record<string, [number, string]> {
  expect(line._aws).toEqual({
    Timestamp: expect.any(Number),
    CloudWatchMetrics: [{ Namespace: 'XmlPipeline', Dimensions: [['Pipeline']], Metrics: expect.any(Array) }],
  });
  expect(Math.abs(line._aws.Timestamp - Date.now())).toBeLessThan(120_000);
  expect(line.Pipeline).toBe(pipeline);
  expect(line.Component).toBe('converter');
  const out: Record<string, [number, string]> = {};
  for (const m of line._aws.CloudWatchMetrics[0].Metrics as Array<{ Name: string; Unit: string }>) {
    expect(typeof line[m.Name]).toBe('number');
    out[m.Name] = [line[m.Name], m.Unit];
  }
  return out;
}

describe('metrics (EMF on the log lines, contract C1)', () => {
  test('one line per key by outcome and one per task, namespace XmlPipeline, dimension Pipeline from METRICS_PIPELINE', async () => {
    const good = corpusCases('valid')[7];
    const bad = corpusCases('invalid').find((x) => x.name.endsWith('mismatched_tag.xml'))!;
    await s3.put('in', 'emf/good.xml', fs.readFileSync(good.xml));
    await s3.put('in', 'emf/bad.xml', fs.readFileSync(bad.xml));
    const keys = ['emf/good.xml', 'emf/bad.xml', 'emf/missing.xml'];
    const r = await runMain({ BUCKET: 'in', S3PATHS: JSON.stringify(keys), OUTPUT_BUCKET: 'out', METRICS_PIPELINE: 'xp-test', CONCURRENCY: '1' });
    expect(r.code).toBe(74);
    const bySource = Object.fromEntries(logLines(r).map((l) => [l.source, l]));
    const ok = emfOf(bySource['s3://in/emf/good.xml'], 'xp-test');
    const outBytes = (await s3.get('out', 'emf/good.xml.json')).length;
    expect(ok).toEqual({
      FilesConverted: [1, 'Count'],
      BytesConverted: [fs.statSync(good.xml).size, 'Bytes'],
      BytesWritten: [outBytes, 'Bytes'],
      FileConvertSeconds: [expect.any(Number), 'Seconds'],
    });
    expect(emfOf(bySource['s3://in/emf/bad.xml'], 'xp-test')).toEqual({ FilesMalformed: [1, 'Count'], FileConvertSeconds: [expect.any(Number), 'Seconds'] });
    expect(emfOf(bySource['s3://in/emf/missing.xml'], 'xp-test')).toEqual({
      FilesConvertFailed: [1, 'Count'],
      FileConvertSeconds: [expect.any(Number), 'Seconds'],
    });
    const task = taskLine(r);
    expect(task).toMatchObject({ keys: 3, converted: 1, failed: 2, exitCode: 74 });
    expect(emfOf(task, 'xp-test')).toEqual({
      ConverterTasks: [1, 'Count'],
      ConverterTaskFailures: [1, 'Count'],
      ConverterTaskSeconds: [task.seconds, 'Seconds'],
      ConvertThroughput: [expect.any(Number), 'Megabytes/Second'],
    });
    expect(task.ConvertThroughput).toBeGreaterThan(0);
  });

  test('a task that converts everything reports ConverterTaskFailures 0; Pipeline defaults to local', async () => {
    await s3.put('in', 'emf/one.xml', '<r>1</r>');
    const r = await runMain({ BUCKET: 'in', S3PATH: 'emf/one.xml' });
    expect(r.code).toBe(0);
    expect(emfOf(taskLine(r), 'local').ConverterTaskFailures).toEqual([0, 'Count']);
  });

  test('a configuration error still writes the task line (ConverterTaskFailures 1, exit 78)', async () => {
    const r = await runMain({ S3PATH: 'x.xml', METRICS_PIPELINE: 'xp-test' });
    expect(r.code).toBe(78);
    expect(allLines(r)).toHaveLength(1);
    expect(emfOf(taskLine(r), 'xp-test')).toMatchObject({ ConverterTasks: [1, 'Count'], ConverterTaskFailures: [1, 'Count'] });
  });
});

describe('failed-keys manifest for replay (contract C2)', () => {
  const manifest = (run: string, batch: string) => `${FAILED_MANIFEST_PREFIX}${run}/${batch}.json`;

  test('with RUN_ID and BATCH_ID: exactly the failed keys, in task order; a retry that succeeds deletes it', async () => {
    const good = corpusCases('valid')[3];
    const bad = corpusCases('invalid').find((x) => x.name.endsWith('mismatched_tag.xml'))!;
    await s3.put('in', 'rp/a.xml', fs.readFileSync(good.xml));
    await s3.put('in', 'rp/b.xml', fs.readFileSync(bad.xml));
    await s3.put('in', 'rp/batch.json', JSON.stringify(['rp/b.xml', 'rp/a.xml', 'rp/c.xml']));
    const env = { BUCKET: 'in', S3PATHS_MANIFEST: 'rp/batch.json', OUTPUT_BUCKET: 'out', RUN_ID: 'exec-1', BATCH_ID: '00001' };
    const r = await runMain(env);
    expect(r.code).toBe(74); // a missing key outranks the malformed one: exit codes as before
    expect(JSON.parse((await s3.get('in', manifest('exec-1', '00001'))).toString())).toEqual(['rp/b.xml', 'rp/c.xml']);
    // Fix the files and run the same batch again: every key converts, the manifest goes away.
    await s3.put('in', 'rp/b.xml', fs.readFileSync(good.xml));
    await s3.put('in', 'rp/c.xml', fs.readFileSync(good.xml));
    const again = await runMain(env);
    expect(again.code).toBe(0);
    expect(await s3.keys('in', `${FAILED_MANIFEST_PREFIX}exec-1/`)).toEqual([]);
  });

  test('only malformed keys: the manifest lists them and the exit code stays 65', async () => {
    const bad = corpusCases('invalid').find((x) => x.name.endsWith('mismatched_tag.xml'))!;
    await s3.put('in', 'rp2/bad.xml', fs.readFileSync(bad.xml));
    const r = await runMain({ BUCKET: 'in', S3PATH: 'rp2/bad.xml', RUN_ID: 'exec-2', BATCH_ID: 'b7' });
    expect(r.code).toBe(65);
    expect(JSON.parse((await s3.get('in', manifest('exec-2', 'b7'))).toString())).toEqual(['rp2/bad.xml']);
  });

  test('without RUN_ID/BATCH_ID nothing is written; only one of them is a configuration error', async () => {
    const bad = corpusCases('invalid').find((x) => x.name.endsWith('mismatched_tag.xml'))!;
    await s3.put('in', 'rp3/bad.xml', fs.readFileSync(bad.xml));
    const before = await s3.keys('in', FAILED_MANIFEST_PREFIX);
    expect((await runMain({ BUCKET: 'in', S3PATH: 'rp3/bad.xml' })).code).toBe(65);
    expect(await s3.keys('in', FAILED_MANIFEST_PREFIX)).toEqual(before);
    const r = await runMain({ BUCKET: 'in', S3PATH: 'rp3/bad.xml', RUN_ID: 'exec-3' });
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('RUN_ID and BATCH_ID go together');
    expect((await runMain({ BUCKET: 'in', S3PATH: 'rp3/bad.xml', RUN_ID: 'exec/3', BATCH_ID: 'x' })).code).toBe(78);
  });

  test('GIVEN an execution name with "+", "@" and non-ASCII letters (valid in Step Functions) WHEN RUN_ID THEN the manifest is filed under it', async () => {
    const bad = corpusCases('invalid').find((x) => x.name.endsWith('mismatched_tag.xml'))!;
    await s3.put('in', 'rp6/bad.xml', fs.readFileSync(bad.xml));
    const run = 'nachlauf+1@Zürich';
    const r = await runMain({ BUCKET: 'in', S3PATH: 'rp6/bad.xml', RUN_ID: run, BATCH_ID: 'b1' });
    expect(r.code).toBe(65);
    expect(JSON.parse((await s3.get('in', manifest(run, 'b1'))).toString())).toEqual(['rp6/bad.xml']);
    // What Step Functions refuses as a name, and the path segments "." and "..", are configuration errors.
    for (const refused of ['a:b', 'a b', '..']) expect((await runMain({ BUCKET: 'in', S3PATH: 'rp6/bad.xml', RUN_ID: refused, BATCH_ID: 'b1' })).code).toBe(78);
  });

  test('GIVEN a manifest that is {"manifest": key} (filed by the state machine), also chained WHEN S3PATHS_MANIFEST THEN the keys it leads to convert', async () => {
    const good = corpusCases('valid')[3];
    await s3.put('in', 'rp7/a.xml', fs.readFileSync(good.xml));
    await s3.put('in', 'manifests/run+1/batches/00001.json', JSON.stringify(['rp7/a.xml']));
    await s3.put('in', `${FAILED_MANIFEST_PREFIX}run+1/00001.json`, JSON.stringify({ manifest: 'manifests/run+1/batches/00001.json' }));
    await s3.put('in', `${FAILED_MANIFEST_PREFIX}wieder-ü/00001.json`, JSON.stringify({ manifest: `${FAILED_MANIFEST_PREFIX}run+1/00001.json` }));
    const r = await runMain({ BUCKET: 'in', S3PATHS_MANIFEST: `${FAILED_MANIFEST_PREFIX}wieder-ü/00001.json`, OUTPUT_BUCKET: 'out' });
    expect(r.code).toBe(0);
    expect((await s3.get('out', 'rp7/a.xml.json')).equals(await labJson(fs.readFileSync(good.xml)))).toBe(true);
  });

  test('GIVEN references that loop, or a reference with anything beside "manifest" WHEN S3PATHS_MANIFEST THEN exit 74 naming the problem, nothing converted', async () => {
    await s3.put('in', 'rp8/x.json', JSON.stringify({ manifest: 'rp8/y.json' }));
    await s3.put('in', 'rp8/y.json', JSON.stringify({ manifest: 'rp8/x.json' }));
    await s3.put('in', 'rp8/z.json', JSON.stringify({ manifest: 'rp8/x.json', keys: [] }));
    const loop = await runMain({ BUCKET: 'in', S3PATHS_MANIFEST: 'rp8/x.json', OUTPUT_BUCKET: 'out' });
    expect(loop.code).toBe(74);
    expect(loop.stderr).toContain('manifest s3://in/rp8/x.json: references loop (rp8/x.json -> rp8/y.json)');
    const odd = await runMain({ BUCKET: 'in', S3PATHS_MANIFEST: 'rp8/z.json', OUTPUT_BUCKET: 'out' });
    expect(odd.code).toBe(74);
    expect(odd.stderr).toContain('manifest s3://in/rp8/z.json (an array of keys, or {"manifest": "<key>"}) must be a JSON array of non-empty strings');
  });

  test('nothing half written: the manifest upload cut mid-body on every attempt leaves no object, exit 74', async () => {
    const bad = corpusCases('invalid').find((x) => x.name.endsWith('mismatched_tag.xml'))!;
    await s3.put('in', 'rp4/bad.xml', fs.readFileSync(bad.xml));
    const key = manifest('exec-4', 'b1');
    const fault = s3.fault({ operation: 'PutObject', key, action: { kind: 'reset', afterBytes: 5 } });
    try {
      const r = await runMain({ BUCKET: 'in', S3PATH: 'rp4/bad.xml', RUN_ID: 'exec-4', BATCH_ID: 'b1' });
      expect(fault.fired).toBeGreaterThan(0);
      expect(r.code).toBe(74);
      expect(r.stderr).toContain(`cannot write the failed-keys manifest s3://in/${key}`);
      expect(await s3.keys('in', `${FAILED_MANIFEST_PREFIX}exec-4/`)).toEqual([]);
    } finally {
      fault.remove();
    }
  });

  test('SIGTERM: the keys stopped are the failed keys, exit 143', async () => {
    const huge = genRecords(30 * 1024 * 1024, 11);
    await s3.put('in', 'rp5/huge.xml', huge);
    await s3.put('in', 'rp5/small.xml', '<r/>');
    let sent = false;
    const r = await runMain(
      { BUCKET: 'in', S3PATHS: JSON.stringify(['rp5/huge.xml', 'rp5/small.xml']), CONCURRENCY: '1', RUN_ID: 'exec-5', BATCH_ID: 'b1', LOG_LEVEL: 'debug' },
      (text, kill) => {
        if (!sent && text.includes('"outcome":"started"')) {
          sent = true;
          setTimeout(() => kill('SIGTERM'), 300);
        }
      },
    );
    expect(r.code).toBe(143);
    expect(JSON.parse((await s3.get('in', manifest('exec-5', 'b1'))).toString())).toEqual(['rp5/huge.xml', 'rp5/small.xml']);
  });
});
