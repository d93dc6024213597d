// Issue 15 (the lister at scale) and issue 12 (its metrics): the real lister (images/sftp-lister/dist)
// against the real OpenSSH sshd and the strict S3 stand-in, with every S3 request it makes counted.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { S3Server } from '../tools/servers/s3';
import type { SftpServer } from '../tools/servers/sshd';
import { documentedPeakRssMiB, ListerServers, listerEnv, runLister, startListerServers } from '../tools/servers/lister-harness';

jest.setTimeout(300_000);

const BUCKET = 'scale';
let sftp: SftpServer;
let s3: S3Server;
let servers: ListerServers | undefined;

beforeAll(async () => {
  ({ sftp, s3 } = servers = await startListerServers(BUCKET));
});
afterAll(async () => {
  await servers?.stop();
});

function env(dir: string, overrides: Record<string, string | undefined> = {}) {
  return listerEnv(sftp, s3, BUCKET, { SFTP_REMOTE_DIR: dir, DEST_PREFIX: `${dir}/`, ...overrides });
}

/** `n` files under the sshd root's `dir`, `size(i)` bytes each, aged an hour; returns their names. */
function seedMany(dir: string, n: number, size: (i: number) => number = (i) => `<f n="${i}"/>`.length): string[] {
  const root = path.join(sftp.root, dir);
  fs.mkdirSync(root, { recursive: true });
  const t = Date.now() / 1000 - 3600;
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `f${String(i).padStart(5, '0')}.xml`;
    const p = path.join(root, name);
    const tag = `<f n="${i}"/>`;
    fs.writeFileSync(p, size(i) === tag.length ? tag : Buffer.alloc(size(i), 'x'));
    fs.utimesSync(p, t, t);
    names.push(name);
  }
  return names;
}

async function json<T>(key: string): Promise<T> {
  return JSON.parse((await s3.get(BUCKET, key)).toString()) as T;
}

/** The stderr lines that carry EMF, parsed. */
function metricLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((l) => l.includes('"_aws"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Checks one EMF event against the specification and contract C1; returns its metric names. */
function checkEmf(line: Record<string, unknown>, pipeline: string): string[] {
  const aws = line._aws as { Timestamp: number; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  expect(Number.isInteger(aws.Timestamp)).toBe(true);
  expect(Math.abs(aws.Timestamp - Date.now())).toBeLessThan(600_000);
  expect(aws.CloudWatchMetrics).toHaveLength(1);
  const [directive] = aws.CloudWatchMetrics;
  expect(directive.Namespace).toBe('XmlPipeline');
  expect(directive.Dimensions).toEqual([['Pipeline']]);
  expect(line.Pipeline).toBe(pipeline);
  expect(line.Component).toBe('sftp-lister');
  for (const m of directive.Metrics) {
    // Each metric named in the directive is a number member of the same object (EMF "target members").
    expect(typeof line[m.Name]).toBe('number');
    expect(['Count', 'Bytes', 'Seconds', 'Megabytes/Second']).toContain(m.Unit);
  }
  return directive.Metrics.map((m) => m.Name);
}

test('GIVEN 10,000 small new files and the defaults WHEN one run comes THEN all land with one S3 request each, in batches of 200 with their index written last, and one metric line per file', async () => {
  const names = seedMany('ten-k', 10_000);
  s3.clearRequests();
  const tenKEnv = env('ten-k', { MANIFEST_KEY: 'manifests/run-1.json', METRICS_PIPELINE: 'xml-test', LISTING_WARN_FILES: '5000' });
  const r = await runLister(tenKEnv);
  expect(r.code).toBe(0);
  expect(r.summary).toMatchObject({
    listed: 10_000,
    ingested: 10_000,
    deferred: 0,
    failed: 0,
    heads: 0,
    batches: 50,
    batchIndexKey: 'manifests/run-1/batches.json',
  });

  // S3 requests: one PutObject per file, plus a bounded number per run (index GET/PUT, manifest, batches).
  const requests = s3.requests();
  const perKey = new Map<string, string[]>();
  for (const q of requests) if (q.key?.startsWith('ten-k/')) perKey.set(q.key, [...(perKey.get(q.key) ?? []), q.operation]);
  expect(perKey.size).toBe(10_000);
  expect([...perKey.values()].filter((ops) => ops.length !== 1 || ops[0] !== 'PutObject')).toEqual([]);
  const perRun = requests.filter((q) => !q.key?.startsWith('ten-k/'));
  expect(perRun.length).toBeLessThanOrEqual(1 /* index GET */ + 1 /* index PUT */ + 1 /* manifest */ + 50 /* batches */ + 1 /* batch index */);
  console.log(
    `10,000 small files: ${r.summary!.seconds} s, ${(requests.length / 10_000).toFixed(4)} S3 requests per file, peak RSS ${r.summary!.maxRssMB} MiB`,
  );
  // On the Node the image ships, within the README's memory bound.
  expect(r.summary!.maxRssMB).toBeLessThan(documentedPeakRssMiB(tenKEnv));

  // Contract C3: batches of at most 200 keys, together exactly the manifest; the index is the last write.
  const manifest = await json<string[]>('manifests/run-1.json');
  expect(manifest).toEqual(names.map((n) => `ten-k/${n}`));
  const index = await json<{ manifest: string; files: number; bytes: number }[]>('manifests/run-1/batches.json');
  expect(index).toHaveLength(50);
  expect(index[0]).toEqual({
    manifest: 'manifests/run-1/batches/00001.json',
    files: 200,
    bytes: manifest.slice(0, 200).reduce((n, k) => n + `<f n="${Number(k.slice(7, 12))}"/>`.length, 0),
  });
  const batched: string[] = [];
  for (const item of index) {
    const keys = await json<string[]>(item.manifest);
    expect(keys.length).toBe(item.files);
    batched.push(...keys);
  }
  expect(batched).toEqual(manifest);
  const manifestWrites = requests.filter((q) => q.operation === 'PutObject' && q.key?.startsWith('manifests/run-1'));
  expect(manifestWrites.map((q) => q.key).slice(-1)).toEqual(['manifests/run-1/batches.json']);
  expect(manifestWrites[0].key).toBe('manifests/run-1.json');

  // The listing passed LISTING_WARN_FILES: the summary says so and what to change.
  expect(r.summary!.warning).toMatch(/listing found 10000 files \(LISTING_WARN_FILES 5000\).*COMPLETION=move or delete, or date folders/);

  // Issue 12, contract C1: one metric line per ingested file, and the run's line on stdout.
  const lines = metricLines(r.stderr);
  expect(lines).toHaveLength(10_000);
  for (const line of lines.slice(0, 50)) expect(checkEmf(line, 'xml-test')).toEqual(['FilesIngested', 'BytesIngested', 'FileIngestSeconds', 'IngestRetries']);
  expect(lines.every((l) => l.FilesIngested === 1 && l.msg === 'ingested' && l.IngestRetries === 0)).toBe(true);
  expect(lines.reduce((n, l) => n + (l.BytesIngested as number), 0)).toBe(r.summary!.bytes);
  const runLine = JSON.parse(r.stdout.trim()) as Record<string, unknown>;
  expect(checkEmf(runLine, 'xml-test')).toEqual([
    'ListerRuns',
    'ListerRunFailures',
    'FilesListed',
    'FilesTooYoung',
    'FilesPresent',
    'IngestRunSeconds',
    'IngestThroughput',
  ]);
  expect(runLine).toMatchObject({
    ListerRuns: 1,
    ListerRunFailures: 0,
    FilesListed: 10_000,
    FilesTooYoung: 0,
    FilesPresent: 0,
    IngestRunSeconds: r.summary!.seconds,
    IngestThroughput: r.summary!.MBps,
  });

  // State between runs follows what is still on the server: 9,000 files leave it, the index drops them.
  for (const n of names.slice(1000)) fs.unlinkSync(path.join(sftp.root, 'ten-k', n));
  s3.clearRequests();
  const again = await runLister(env('ten-k', { MANIFEST_KEY: 'manifests/run-2.json', LISTING_WARN_FILES: '5000' }));
  expect(again.code).toBe(0);
  expect(again.summary).toMatchObject({ listed: 1000, alreadyPresent: 1000, ingested: 0, heads: 0, batches: 0 });
  expect(again.summary!.warning).toBeUndefined();
  expect(s3.requests().filter((q) => q.key?.startsWith('ten-k/'))).toEqual([]);
  expect(await json<unknown[]>('manifests/run-2/batches.json')).toEqual([]);
  const stateKey = (await s3.keys(BUCKET, '.sftp-lister/state/'))[0];
  const state = await json<{ entries: Record<string, unknown> }>(stateKey);
  expect(Object.keys(state.entries).sort()).toEqual(names.slice(0, 1000).map((n) => `ten-k/${n}`));
  // An entry holds what the next run compares, no more (about 100 bytes with its key).
  expect(Object.keys(Object.values(state.entries)[0] as object).sort()).toEqual(['etag', 'mtime', 'size']);
  expect((await s3.get(BUCKET, stateKey)).length / 1000).toBeLessThan(110);
});

test('GIVEN files of mixed sizes WHEN batched by BATCH_MAX_FILES and BATCH_MAX_BYTES THEN no batch passes either bound, and a file larger than the byte bound is a batch of its own', async () => {
  const sizes = [100, 200, 300, 5000, 100, 100, 100, 100, 100, 2000];
  seedMany('mixed', sizes.length, (i) => sizes[i]);
  const r = await runLister(env('mixed', { MANIFEST_KEY: 'manifests/mixed.json', BATCH_MAX_FILES: '3', BATCH_MAX_BYTES: '1000' }));
  expect(r.code).toBe(0);
  const index = await json<{ manifest: string; files: number; bytes: number }[]>('manifests/mixed/batches.json');
  const batches = await Promise.all(index.map((b) => json<string[]>(b.manifest)));
  const size = (key: string) => sizes[Number(key.slice('mixed/f'.length, 'mixed/f'.length + 5))];
  expect(batches.map((keys) => keys.map(size))).toEqual([[100, 200, 300], [5000], [100, 100, 100], [100, 100], [2000]]);
  expect(index.map((b) => [b.files, b.bytes])).toEqual(batches.map((keys) => [keys.length, keys.reduce((n, k) => n + size(k), 0)]));
  expect(r.summary).toMatchObject({ batches: 5 });
});

test('GIVEN 100 small files and S3 holding every PutObject WHEN run THEN exactly SMALL_FILE_CONCURRENCY of them are in flight at once (32 by default, 8 when set)', async () => {
  seedMany('inflight', 100);
  for (const [setting, expected] of [
    [undefined, 32],
    ['8', 8],
  ] as const) {
    const prefix = `inflight-${expected}/`;
    const stall = s3.fault({ operation: 'PutObject', key: new RegExp(`^${prefix}`), action: { kind: 'stall' } });
    const running = runLister(env('inflight', { DEST_PREFIX: prefix, SMALL_FILE_CONCURRENCY: setting }));
    const deadline = Date.now() + 60_000;
    while (stall.matched < expected && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    // Held long enough for more to arrive if the lister allowed more.
    await new Promise((res) => setTimeout(res, 1500));
    const inFlight = stall.matched;
    stall.remove();
    const r = await running;
    expect({ inFlight, code: r.code, ingested: r.summary?.ingested }).toEqual({ inFlight: expected, code: 0, ingested: 100 });
  }
});

test('GIVEN a file whose PutObject fails WHEN run THEN its failure line carries FilesIngestFailed and its retries, and the run line says the run failed', async () => {
  seedMany('fails', 3);
  // Every attempt fails (the SDK's own retries of a 500 included).
  const fault = s3.fault({ operation: 'PutObject', key: 'fails/f00001.xml', action: { kind: 'error', status: 500 } });
  const r = await runLister(env('fails', { RETRIES: '1', RETRY_BASE_MS: '10', LOG_LEVEL: 'error' })).finally(() => fault.remove());
  expect(r.code).toBe(1);
  expect(r.summary).toMatchObject({ ingested: 2, failed: 1, retries: 1 });
  // LOG_LEVEL=error hides info lines, never metric lines.
  const lines = metricLines(r.stderr);
  const failed = lines.filter((l) => l.FilesIngestFailed === 1);
  expect(failed).toHaveLength(1);
  expect(checkEmf(failed[0], 'local')).toEqual(['FilesIngestFailed', 'FileIngestSeconds', 'IngestRetries']);
  expect(failed[0]).toMatchObject({ key: 'fails/f00001.xml', IngestRetries: 1 });
  expect(lines.filter((l) => l.FilesIngested === 1)).toHaveLength(2);
  expect(JSON.parse(r.stdout.trim())).toMatchObject({ ListerRuns: 1, ListerRunFailures: 1, FilesListed: 3 });
});

test('GIVEN a configuration error WHEN run THEN the one summary line still carries the run metrics (ListerRunFailures 1)', async () => {
  const r = await runLister(env('none', { DEST_BUCKET: undefined, METRICS_PIPELINE: 'p-prod' }));
  expect(r.code).toBe(2);
  const line = JSON.parse(r.stdout.trim()) as Record<string, unknown>;
  expect(line).toMatchObject({ errorKind: 'config', ListerRuns: 1, ListerRunFailures: 1, FilesListed: 0 });
  checkEmf(line, 'p-prod');
});

test('GIVEN a file already in S3 that the index does not record WHEN a small file is put with If-None-Match THEN S3 answers 412 and one HeadObject decides: announced again, not sent twice', async () => {
  seedMany('known', 2);
  await runLister(env('known'));
  const stateKey = (await s3.keys(BUCKET, '.sftp-lister/state/')).find(Boolean)!;
  // Losing the index (the state object) makes the run fall back to the objects' own metadata.
  const client = s3.client();
  const { DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  for (const k of await s3.keys(BUCKET, '.sftp-lister/state/')) await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: k }));
  client.destroy();
  expect(stateKey).toBeDefined();
  s3.clearRequests();
  const r = await runLister(env('known', { MANIFEST_KEY: 'manifests/known.json' }));
  expect(r.summary).toMatchObject({ ingested: 0, alreadyPresent: 2, announcedAgain: 2, heads: 2 });
  const ops = s3
    .requests()
    .filter((q) => q.key === 'known/f00000.xml')
    .map((q) => `${q.operation} ${q.status}`);
  expect(ops).toEqual(['PutObject 412', 'HeadObject 200']);
  expect(await json<string[]>('manifests/known.json')).toEqual(['known/f00000.xml', 'known/f00001.xml']);
});
