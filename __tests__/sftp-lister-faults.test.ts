// SFTP ingest under load and faults: big files with bounded memory, sessions killed mid-transfer,
// SIGTERM, a file changing while it is read, and a 10,000-file folder. REAL sshd and s3rver.
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { S3Server } from './support/s3rver';
import type { SftpServer } from './support/sshd';
import { age, ListerResult, ListerServers, listerEnv, runLister, startListerServers, writeRandomFile } from './support/lister-harness';

const BUCKET = 'ingest';
const MiB = 1024 * 1024;
let sftp: SftpServer;
let s3: S3Server;
let client: S3Client;
let servers: ListerServers | undefined;

beforeAll(async () => {
  ({ sftp, s3 } = servers = await startListerServers(BUCKET));
  client = s3.client();
});

afterAll(async () => {
  client?.destroy();
  await servers?.stop();
});

function env(dir: string, overrides: Record<string, string | undefined> = {}) {
  return listerEnv(sftp, s3, BUCKET, { SFTP_REMOTE_DIR: dir, DEST_PREFIX: `${dir}/`, ...overrides });
}

/** sha256 of an object, streamed (no whole-object buffer in the test process). */
async function objectSha(key: string): Promise<string> {
  const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  const hash = crypto.createHash('sha256');
  for await (const chunk of res.Body as Readable) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Runs with debug progress lines and calls `act` once, after the first part of `key` is uploaded (mid-transfer). */
function runAndActMidTransfer(e: Record<string, string>, act: (child: import('node:child_process').ChildProcess) => void): Promise<ListerResult & { acted: boolean }> {
  let acted = false;
  return runLister(
    { ...e, LOG_LEVEL: 'debug' },
    {
      onLog: (line, child) => {
        if (!acted && line.msg === 'progress' && Number(line.loaded) > 0 && Number(line.loaded) < Number(line.total)) {
          acted = true;
          act(child);
        }
      },
    },
  ).then((r) => ({ ...r, acted }));
}

// One 128 MiB file, hard-linked into each fault test's folder (same bytes and mtime, written once).
let bigSha: string;
const BIG = 128 * MiB;
function bigFileIn(dir: string): void {
  const master = path.join(sftp.root, '..', 'big-master.bin');
  if (!bigSha) {
    bigSha = writeRandomFile(master, BIG);
    age(master, 3600);
  }
  fs.mkdirSync(path.join(sftp.root, dir), { recursive: true });
  fs.linkSync(master, path.join(sftp.root, dir, 'big.bin'));
}

test('GIVEN a 64 MiB and a 256 MiB file WHEN each is ingested THEN objects are identical and peak RSS does not grow with file size', async () => {
  const timed = ['/usr/bin/time', '-f', 'maxrss_kib=%M', process.execPath, path.resolve(__dirname, '../images/sftp-lister/dist/main.js')];
  const peak = async (dir: string, size: number) => {
    const file = path.join(sftp.root, dir, 'f.bin');
    const sha = writeRandomFile(file, size);
    age(file, 3600);
    const r = await runLister(env(dir), { command: timed });
    fs.rmSync(file);
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ ingested: 1, failed: 0, bytes: size });
    expect(await objectSha(`${dir}/f.bin`)).toBe(sha);
    return { outside: Number(/maxrss_kib=(\d+)/.exec(r.stderr)![1]) / 1024, inside: r.summary!.maxRssMB };
  };
  const small = await peak('rss-small', 64 * MiB);
  const huge = await peak('rss-huge', 256 * MiB);
  // Bounded by the read window and part buffers (about 5 x 8 MiB) plus node and the SDK (~80 MiB).
  expect(huge.outside).toBeLessThan(208);
  expect(huge.inside).toBeLessThan(208);
  // Four times the bytes, (about) the same memory.
  expect(huge.outside - small.outside).toBeLessThan(40);
});

test('GIVEN RETRIES=0 WHEN the sshd session is killed mid-transfer THEN no object is written, the run fails, and the next run completes the file', async () => {
  bigFileIn('killed');
  const r = await runAndActMidTransfer(env('killed', { RETRIES: '0', MANIFEST_KEY: 'manifests/killed-1.json' }), () => sftp.killSessions());
  expect(r.acted).toBe(true);
  expect(r.code).toBe(1);
  expect(r.summary).toMatchObject({ ingested: 0, failed: 1, retries: 0 });
  expect(await s3.keys(BUCKET, 'killed/')).toEqual([]);
  expect(JSON.parse((await s3.get(BUCKET, 'manifests/killed-1.json')).toString())).toEqual([]);

  const next = await runLister(env('killed', { MANIFEST_KEY: 'manifests/killed-2.json' }));
  expect(next.code).toBe(0);
  expect(next.summary).toMatchObject({ ingested: 1, failed: 0 });
  expect(await objectSha('killed/big.bin')).toBe(bigSha);
  expect(JSON.parse((await s3.get(BUCKET, 'manifests/killed-2.json')).toString())).toEqual(['killed/big.bin']);
});

test('GIVEN retries allowed WHEN the sshd session is killed mid-transfer THEN the run reconnects, retries and completes the file intact', async () => {
  bigFileIn('retried');
  const r = await runAndActMidTransfer(env('retried', { RETRIES: '2' }), () => sftp.killSessions());
  expect(r.acted).toBe(true);
  expect(r.code).toBe(0);
  expect(r.summary).toMatchObject({ ingested: 1, failed: 0 });
  expect(r.summary!.retries).toBeGreaterThanOrEqual(1);
  expect(r.stderr).toContain('"msg":"reconnecting"');
  expect(await objectSha('retried/big.bin')).toBe(bigSha);
});

test('GIVEN an upload in progress WHEN SIGTERM arrives THEN the upload is aborted (no object), the run exits 143, and the next run completes', async () => {
  bigFileIn('sigterm');
  const r = await runAndActMidTransfer(env('sigterm', { MANIFEST_KEY: 'manifests/sigterm.json' }), (child) => child.kill('SIGTERM'));
  expect(r.acted).toBe(true);
  expect(r.code).toBe(143);
  // The aborted file is left for the next run (deferred), not failed.
  expect(r.summary).toMatchObject({ ingested: 0, failed: 0, deferred: 1, retries: 0, errorKind: 'terminated' });
  expect(await s3.keys(BUCKET, 'sigterm/')).toEqual([]);
  expect(JSON.parse((await s3.get(BUCKET, 'manifests/sigterm.json')).toString())).toEqual([]);
  expect((await runLister(env('sigterm'))).summary).toMatchObject({ ingested: 1 });
  expect(await objectSha('sigterm/big.bin')).toBe(bigSha);
});

test('GIVEN a file that grows while being read WHEN the read ends THEN the upload is aborted (no object, no retry); the next run ingests the new version', async () => {
  const file = path.join(sftp.root, 'growing', 'g.bin');
  writeRandomFile(file, 64 * MiB);
  age(file, 3600);
  const r = await runAndActMidTransfer(env('growing'), () => {
    fs.appendFileSync(file, 'more');
    age(file, 3600);
  });
  expect(r.acted).toBe(true);
  expect(r.code).toBe(1);
  expect(r.summary).toMatchObject({ ingested: 0, failed: 1, retries: 0 });
  expect(r.stderr).toMatch(/changed while reading/);
  expect(await s3.keys(BUCKET, 'growing/')).toEqual([]);

  const next = await runLister(env('growing'));
  expect(next.summary).toMatchObject({ ingested: 1, bytes: 64 * MiB + 4 });
});

test('GIVEN 10,000 files WHEN run THEN all are listed and decided, and MAX_FILES bounds what one run ingests', async () => {
  const dir = path.join(sftp.root, 'many');
  fs.mkdirSync(dir);
  const t = Date.now() / 1000 - 3600;
  for (let i = 0; i < 10_000; i++) {
    const p = path.join(dir, `f${String(i).padStart(5, '0')}.xml`);
    fs.writeFileSync(p, `<f n="${i}"/>`);
    fs.utimesSync(p, t, t);
  }
  const r = await runLister(env('many', { MAX_FILES: '200', CONCURRENCY: '8' }));
  expect(r.code).toBe(0);
  expect(r.summary).toMatchObject({ listed: 10_000, excluded: 0, tooYoung: 0, ingested: 200, deferred: 9_800, failed: 0 });
  const keys = await s3.keys(BUCKET, 'many/');
  expect(keys).toHaveLength(200);
  expect(keys[0]).toBe('many/f00000.xml');

  const again = await runLister(env('many', { MAX_FILES: '200', CONCURRENCY: '8' }));
  expect(again.summary).toMatchObject({ listed: 10_000, alreadyPresent: 200, ingested: 200, deferred: 9_600 });
  // Indexed files cost no request; a HeadObject only for each file checked within MAX_FILES.
  expect(again.summary!.heads).toBe(200);
});
