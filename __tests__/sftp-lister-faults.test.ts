// SFTP ingest under load and faults: big files with bounded memory, sessions killed mid-transfer,
// SIGTERM, a file changing while it is read, and a 10,000-file folder. REAL sshd and the S3 stand-in.
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { imageNode } from '../tools/servers/image-runtime';
import { S3Server, startS3 } from '../tools/servers/s3';
import type { SftpServer } from '../tools/servers/sshd';
import {
  age,
  documentedPeakRssMiB,
  LISTER_DIR,
  LISTER_MAIN,
  ListerResult,
  ListerServers,
  listerEnv,
  runLister,
  startListerServers,
  writeRandomFile,
} from '../tools/servers/lister-harness';

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
function runAndActMidTransfer(
  e: Record<string, string>,
  act: (child: import('node:child_process').ChildProcess) => void,
): Promise<ListerResult & { acted: boolean }> {
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
  const timed = ['/usr/bin/time', '-f', 'maxrss_kib=%M', ...imageNode('sftp-lister'), path.resolve(__dirname, '../images/sftp-lister/dist/main.js')];
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
  // Within the README's bound (measured from outside and by the lister itself) ...
  const bound = documentedPeakRssMiB(env('rss-huge'));
  expect(huge.outside).toBeLessThan(bound);
  expect(huge.inside).toBeLessThan(bound);
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

  s3.clearRequests();
  const again = await runLister(env('many', { MAX_FILES: '200', CONCURRENCY: '8' }));
  expect(again.summary).toMatchObject({ listed: 10_000, alreadyPresent: 200, ingested: 200, deferred: 9_600 });
  // Indexed files cost no request; each small file within MAX_FILES one conditional PutObject (no HeadObject).
  expect(again.summary!.heads).toBe(0);
  const fileRequests = s3.requests().filter((q) => q.key?.startsWith('many/'));
  expect(fileRequests.map((q) => q.operation)).toEqual(Array(200).fill('PutObject'));
  expect(new Set(fileRequests.map((q) => q.key)).size).toBe(200);
});

// Issue 11, defect 1: every landed object reaches a manifest, even when the run that landed it dies.
describe('at-least-once announcement (issue 11)', () => {
  function smallFiles(dir: string, n: number): string[] {
    const keys: string[] = [];
    for (let i = 0; i < n; i++) {
      const name = `f${String(i).padStart(3, '0')}.xml`;
      const p = path.join(sftp.root, dir, name);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, `<f n="${i}"/>`);
      age(p, 3600);
      keys.push(`${dir}/${name}`);
    }
    return keys;
  }
  const manifestOf = async (key: string): Promise<string[]> => JSON.parse((await s3.get(BUCKET, key)).toString());

  test('GIVEN SIGKILL after some objects landed WHEN the next run comes THEN its manifest names every landed object and every file lands', async () => {
    const keys = smallFiles('sigkill', 40);
    let seen = 0;
    const r = await runLister(env('sigkill', { CONCURRENCY: '2', SMALL_FILE_CONCURRENCY: '2', MANIFEST_KEY: 'manifests/sigkill-1.json' }), {
      onLog: (line, child) => {
        if (line.msg === 'ingested' && ++seen === 10) child.kill('SIGKILL');
      },
    });
    expect(r.signal).toBe('SIGKILL');
    // Requests the killed run had already sent are still served (as S3 would): count after them.
    await s3.settled();
    const landed = await s3.keys(BUCKET, 'sigkill/');
    expect(landed.length).toBeGreaterThanOrEqual(10);
    expect(landed.length).toBeLessThan(40);

    const next = await runLister(env('sigkill', { MANIFEST_KEY: 'manifests/sigkill-2.json' }));
    expect(next.code).toBe(0);
    expect(next.summary!.announcedAgain).toBe(landed.length);
    // Every landed object is announced (the killed run wrote no manifest), and so is the rest.
    expect((await manifestOf('manifests/sigkill-2.json')).sort()).toEqual(keys);
    expect(await s3.keys(BUCKET, 'sigkill/')).toEqual(keys);
  });

  test('GIVEN S3 stalls (uploads and the manifest) WHEN SIGTERM arrives THEN the run exits 143 within the forced-exit time with its one summary line; the next run announces what landed', async () => {
    const keys = smallFiles('stall', 12);
    // The first 6 land; then every write stalls, the manifest's too.
    const stall = s3.fault({ operation: 'PutObject', key: /^(stall\/f0(0[6-9]|1)|manifests\/stall-1)/, action: { kind: 'stall' } });
    let seen = 0;
    const t0 = Date.now();
    let r;
    try {
      r = await runLister(env('stall', { CONCURRENCY: '2', MANIFEST_KEY: 'manifests/stall-1.json' }), {
        onLog: (line, child) => {
          if (line.msg === 'ingested' && ++seen === 6) setTimeout(() => child.kill('SIGTERM'), 500);
        },
      });
    } finally {
      stall.remove();
    }
    expect(r.code).toBe(143);
    expect(Date.now() - t0).toBeLessThan(25_000);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(r.summary).toMatchObject({ ingested: 6, failed: 0, errorKind: 'terminated' });

    const next = await runLister(env('stall', { MANIFEST_KEY: 'manifests/stall-2.json' }));
    expect(next.code).toBe(0);
    expect((await manifestOf('manifests/stall-2.json')).sort()).toEqual(keys);
  });
});

test('GIVEN S3 goes down during multipart uploads WHEN the run fails THEN each failure names the cause (connection refused), not "The operation was aborted"', async () => {
  const down = await startS3(['down']);
  try {
    for (let i = 0; i < 3; i++) {
      const p = path.join(sftp.root, 's3down', `f${i}.bin`);
      writeRandomFile(p, 30 * MiB);
      age(p, 3600);
    }
    let stopped = false;
    const r = await runLister(
      { ...listerEnv(sftp, down, 'down', { SFTP_REMOTE_DIR: 's3down', RETRIES: '0', PART_SIZE_MB: '5' }), LOG_LEVEL: 'debug' },
      {
        onLog: (line) => {
          if (!stopped && line.msg === 'progress') {
            stopped = true;
            void down.stop(true);
          }
        },
      },
    );
    expect(r.code).toBe(1);
    expect(r.summary).toMatchObject({ ingested: 0, failed: 3 });
    const failures = r.stderr.split('\n').filter((l) => l.includes('"msg":"ingest failed"'));
    expect(failures).toHaveLength(3);
    for (const f of failures) expect(JSON.parse(f).error).toMatch(/ECONNREFUSED/);
  } finally {
    await down.dispose();
  }
});

// Issue 11, defect 10: the README's memory bound, measured from outside, with every worker busy.
test('GIVEN 4 files of 100 MiB and the defaults WHEN ingested in parallel on the Node the image ships THEN peak RSS stays under the README bound CONCURRENCY x ((UPLOAD_QUEUE_SIZE + 1) x PART_SIZE_MB + READ_WINDOW x READ_CHUNK_BYTES) + SMALL_FILE_CONCURRENCY x 2 MiB + 150 MiB', async () => {
  const shas: string[] = [];
  for (let i = 0; i < 4; i++) {
    const p = path.join(sftp.root, 'rss-bound', `f${i}.bin`);
    shas.push(writeRandomFile(p, 100 * MiB));
    age(p, 3600);
  }
  const timed = ['/usr/bin/time', '-f', 'maxrss_kib=%M', ...imageNode('sftp-lister'), LISTER_MAIN];
  const r = await runLister(env('rss-bound'), { command: timed });
  fs.rmSync(path.join(sftp.root, 'rss-bound'), { recursive: true });
  expect(r.code).toBe(0);
  expect(r.summary).toMatchObject({ ingested: 4, failed: 0 });
  for (let i = 0; i < 4; i++) expect(await objectSha(`rss-bound/f${i}.bin`)).toBe(shas[i]);
  const bound = documentedPeakRssMiB(env('rss-bound'));
  // The README states the bound at the defaults as this formula gives it.
  expect(bound).toBe(4 * ((4 + 1) * 8 + (16 * 131072) / MiB) + 32 * 2 + 150);
  expect(fs.readFileSync(path.join(LISTER_DIR, 'README.md'), 'utf8')).toContain(`4 x (40 + 2) + 32 x 2 + 150 = ${bound} MiB`);
  const peak = Number(/maxrss_kib=(\d+)/.exec(r.stderr)![1]) / 1024;
  console.log(`peak RSS ${peak.toFixed(1)} MiB, bound ${bound} MiB`);
  expect(peak).toBeLessThan(bound);
});

/**
 * An SFTP server without FSTAT (some embedded and gateway servers answer it OP_UNSUPPORTED): ssh2's
 * own server, in this process, serving one folder read-only to one public key (signature verified).
 * Every other request the lister makes (REALPATH, OPENDIR/READDIR, OPEN, READ, STAT, CLOSE) is real.
 */
// ssh2's server API, untyped here (its types live in the image's node_modules).
type Any = any;
async function startNoFstatServer(root: string, clientPublicKey: string): Promise<{ port: number; fingerprint: string; stop(): Promise<void> }> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ssh2 = require(path.join(LISTER_DIR, 'node_modules', 'ssh2'));
  const { STATUS_CODE, OPEN_MODE } = ssh2.utils.sftp;
  const hostKey = ssh2.utils.generateKeyPairSync('ed25519');
  const allowed = ssh2.utils.parseKey(clientPublicKey);
  const server = new ssh2.Server({ hostKeys: [hostKey.private] }, (client: Any) => {
    client.on('authentication', (ctx: Any) => {
      const ok =
        ctx.method === 'publickey' &&
        ctx.key.algo === allowed.type &&
        Buffer.compare(ctx.key.data, allowed.getPublicSSH()) === 0 &&
        (!ctx.signature || allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true);
      return ok ? ctx.accept() : ctx.reject(['publickey']);
    });
    client.on('error', () => undefined);
    client.on('ready', () =>
      client.on('session', (accept: Any) =>
        accept().on('sftp', (acceptSftp: Any) => {
          const sftp = acceptSftp();
          const handles = new Map<string, { fd?: number; dir?: string[]; path?: string }>();
          let next = 0;
          const local = (p: string) => path.join(root, path.posix.resolve('/', p));
          const attrs = (st: fs.Stats) => ({
            mode: st.mode,
            uid: st.uid,
            gid: st.gid,
            size: st.size,
            atime: Math.floor(st.atimeMs / 1000),
            mtime: Math.floor(st.mtimeMs / 1000),
          });
          const handle = (h: { fd?: number; dir?: string[]; path?: string }) => {
            const id = Buffer.alloc(4);
            id.writeUInt32BE(next++);
            handles.set(id.toString('hex'), h);
            return id;
          };
          sftp.on('REALPATH', (id: number, p: string) => sftp.name(id, [{ filename: path.posix.resolve('/', p), longname: '', attrs: {} }]));
          sftp.on('OPENDIR', (id: number, p: string) => {
            try {
              sftp.handle(id, handle({ dir: fs.readdirSync(local(p)), path: local(p) }));
            } catch {
              sftp.status(id, STATUS_CODE.NO_SUCH_FILE);
            }
          });
          sftp.on('READDIR', (id: number, h: Buffer) => {
            const d = handles.get(h.toString('hex'));
            if (!d?.dir) return sftp.status(id, STATUS_CODE.FAILURE);
            if (d.dir.length === 0) return sftp.status(id, STATUS_CODE.EOF);
            const batch = d.dir.splice(0, 100);
            sftp.name(
              id,
              batch.map((n) => ({ filename: n, longname: n, attrs: attrs(fs.lstatSync(path.join(d.path!, n))) })),
            );
          });
          sftp.on('OPEN', (id: number, p: string, flags: number) => {
            if (flags !== OPEN_MODE.READ) return sftp.status(id, STATUS_CODE.PERMISSION_DENIED);
            try {
              sftp.handle(id, handle({ fd: fs.openSync(local(p), 'r') }));
            } catch {
              sftp.status(id, STATUS_CODE.NO_SUCH_FILE);
            }
          });
          sftp.on('READ', (id: number, h: Buffer, offset: number, length: number) => {
            const f = handles.get(h.toString('hex'));
            if (f?.fd === undefined) return sftp.status(id, STATUS_CODE.FAILURE);
            const buf = Buffer.alloc(length);
            const n = fs.readSync(f.fd, buf, 0, length, offset);
            return n === 0 ? sftp.status(id, STATUS_CODE.EOF) : sftp.data(id, buf.subarray(0, n));
          });
          sftp.on('FSTAT', (id: number) => sftp.status(id, STATUS_CODE.OP_UNSUPPORTED, 'FSTAT not supported'));
          sftp.on('STAT', (id: number, p: string) => {
            try {
              sftp.attrs(id, attrs(fs.statSync(local(p))));
            } catch {
              sftp.status(id, STATUS_CODE.NO_SUCH_FILE);
            }
          });
          sftp.on('CLOSE', (id: number, h: Buffer) => {
            const f = handles.get(h.toString('hex'));
            handles.delete(h.toString('hex'));
            if (f?.fd !== undefined) fs.closeSync(f.fd);
            sftp.status(id, STATUS_CODE.OK);
          });
        }),
      ),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const blob = ssh2.utils.parseKey(hostKey.public).getPublicSSH();
  return {
    port: server.address().port,
    fingerprint: `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

test('GIVEN a server that does not implement FSTAT WHEN run THEN the change check falls back to STAT (one warning naming it), files land, no retries', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nofstat-'));
  const shas: string[] = [];
  for (let i = 0; i < 3; i++) {
    shas.push(writeRandomFile(path.join(root, `f${i}.bin`), 300_000 + i));
    age(path.join(root, `f${i}.bin`), 3600);
  }
  const pub = execFileSync('ssh-keygen', ['-y', '-f', sftp.privateKeyFile], { encoding: 'utf8' });
  const server = await startNoFstatServer(root, pub);
  try {
    const r = await runLister(env('.', { SFTP_PORT: String(server.port), SFTP_HOST_KEY_FINGERPRINTS: server.fingerprint, DEST_PREFIX: 'nofstat/' }));
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ ingested: 3, failed: 0, retries: 0 });
    expect(r.stderr.match(/does not support FSTAT/g)).toHaveLength(1);
    for (let i = 0; i < 3; i++) expect(await objectSha(`nofstat/f${i}.bin`)).toBe(shas[i]);
  } finally {
    await server.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
});
