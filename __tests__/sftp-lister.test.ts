// SFTP ingest (images/sftp-lister): the entrypoint run as a child process against a REAL OpenSSH sshd
// and the strict S3 stand-in (support/s3-standin.ts), both on 127.0.0.1.
import { DeleteObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AuthorizeRequest, S3Server } from '../tools/servers/s3';
import type { SftpServer } from '../tools/servers/sshd';
import { startObjectStoreSftp } from '../tools/servers/sftp-objectstore';
import { startProftpd } from '../tools/servers/sftp-proftpd';
import { age, LISTER_DIR, ListerServers, listerEnv, runLister, sha256, startListerServers } from '../tools/servers/lister-harness';

const BUCKET = 'ingest';
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

/** Creates files under the sshd root's `dir` (path -> content), aged 1 hour unless said otherwise. */
function seed(dir: string, files: Record<string, string>, secondsAgo = 3600): void {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(sftp.root, dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
    age(p, secondsAgo);
  }
}

/** Env for a test that uses remote folder `dir` and lands under `dir/` in the bucket. */
function env(dir: string, overrides: Record<string, string | undefined> = {}) {
  return listerEnv(sftp, s3, BUCKET, { SFTP_REMOTE_DIR: dir, DEST_PREFIX: `${dir}/`, ...overrides });
}

async function manifest(key: string): Promise<string[]> {
  return JSON.parse((await s3.get(BUCKET, key)).toString());
}

describe('ingest runs', () => {
  test('GIVEN N files (one empty, one in a sub-folder) WHEN run THEN each lands once with source size/mtime metadata and is in the manifest', async () => {
    seed('basic', { 'a.xml': '<a/>', 'b.xml': 'b'.repeat(100_000), 'empty.xml': '', 'sub/c.xml': '<c/>' });
    const r = await runLister(env('basic', { SFTP_RECURSIVE: 'true', MANIFEST_KEY: 'manifests/basic-1.json' }));

    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({
      listed: 4,
      tooYoung: 0,
      alreadyPresent: 0,
      ingested: 4,
      failed: 0,
      bytes: 100_008,
      manifestKey: 'manifests/basic-1.json',
    });
    const keys = ['basic/a.xml', 'basic/b.xml', 'basic/empty.xml', 'basic/sub/c.xml'];
    expect(await s3.keys(BUCKET, 'basic/')).toEqual(keys);
    expect((await manifest('manifests/basic-1.json')).sort()).toEqual(keys);
    expect((await s3.get(BUCKET, 'basic/b.xml')).toString()).toBe('b'.repeat(100_000));
    expect((await s3.get(BUCKET, 'basic/empty.xml')).length).toBe(0);
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'basic/sub/c.xml' }));
    const st = fs.statSync(path.join(sftp.root, 'basic/sub/c.xml'));
    expect(head.Metadata).toMatchObject({ 'sftp-size': '4', 'sftp-mtime': String(Math.floor(st.mtimeMs / 1000)) });
    // Logs never carry the private key.
    expect(r.stderr).not.toContain('PRIVATE KEY');

    // WHEN run again THEN nothing is ingested, decided from the listing + index (no HeadObject), manifest []
    const again = await runLister(env('basic', { SFTP_RECURSIVE: 'true', MANIFEST_KEY: 'manifests/basic-2.json' }));
    expect(again.code).toBe(0);
    expect(again.summary).toMatchObject({ listed: 4, alreadyPresent: 4, ingested: 0, failed: 0, heads: 0 });
    expect(await manifest('manifests/basic-2.json')).toEqual([]);
  });

  test('GIVEN ingested files WHEN one changes content+mtime (same size) and one grows THEN exactly those two are ingested again', async () => {
    seed('changed', { 'same-size.txt': 'aaaa', 'grows.txt': 'x', 'stable.txt': 's' }, 7200);
    expect((await runLister(env('changed'))).summary).toMatchObject({ ingested: 3 });

    seed('changed', { 'same-size.txt': 'bbbb' }, 3600);
    seed('changed', { 'grows.txt': 'xyz' }, 7200);
    const r = await runLister(env('changed', { MANIFEST_KEY: 'manifests/changed.json' }));
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ listed: 3, alreadyPresent: 1, ingested: 2, failed: 0 });
    expect((await manifest('manifests/changed.json')).sort()).toEqual(['changed/grows.txt', 'changed/same-size.txt']);
    expect((await s3.get(BUCKET, 'changed/same-size.txt')).toString()).toBe('bbbb');
    expect((await s3.get(BUCKET, 'changed/grows.txt')).toString()).toBe('xyz');
  });

  test('GIVEN the index object is lost WHEN run THEN object metadata (HeadObject) still prevents duplicates and the index is rebuilt', async () => {
    seed('noindex', { 'a.txt': 'a', 'b.txt': 'b' });
    const first = await runLister(env('noindex'));
    expect(first.summary).toMatchObject({ ingested: 2 });
    const indexKeys = await s3.keys(BUCKET, '.sftp-lister/state/');
    const before = new Set(indexKeys);
    // Remove only this test's index: the one written by the first run that mentions noindex/.
    const mine = [];
    for (const k of before) if ((await s3.get(BUCKET, k)).toString().includes('noindex/a.txt')) mine.push(k);
    expect(mine).toHaveLength(1);
    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: mine[0] }));

    const r = await runLister(env('noindex', { MANIFEST_KEY: 'manifests/noindex.json' }));
    // Not recorded as announced: announced again (at-least-once), not transferred again.
    expect(r.summary).toMatchObject({ alreadyPresent: 2, announcedAgain: 2, ingested: 0, heads: 2 });
    expect((await manifest('manifests/noindex.json')).sort()).toEqual(['noindex/a.txt', 'noindex/b.txt']);
    const rebuilt = await runLister(env('noindex'));
    expect(rebuilt.summary).toMatchObject({ alreadyPresent: 2, ingested: 0, heads: 0 });
  });

  test('GIVEN an ingested file whose landing object was later removed (lifecycle after conversion) WHEN run THEN the unchanged version is not ingested again', async () => {
    seed('expired', { 'a.txt': 'a' });
    expect((await runLister(env('expired'))).summary).toMatchObject({ ingested: 1 });
    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'expired/a.txt' }));
    const r = await runLister(env('expired'));
    expect(r.summary).toMatchObject({ alreadyPresent: 1, ingested: 0, heads: 0 });
    expect(await s3.keys(BUCKET, 'expired/')).toEqual([]);
  });

  test('GIVEN a file modified just now WHEN run THEN it is left (too young); once older than MIN_AGE_SECONDS it is ingested', async () => {
    seed('young', { 'old.txt': 'old' });
    seed('young', { 'new.txt': 'new' }, 0);
    const r = await runLister(env('young', { MIN_AGE_SECONDS: '60' }));
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ listed: 2, tooYoung: 1, ingested: 1 });
    expect(await s3.keys(BUCKET, 'young/')).toEqual(['young/old.txt']);

    age(path.join(sftp.root, 'young/new.txt'), 61);
    const later = await runLister(env('young', { MIN_AGE_SECONDS: '60' }));
    expect(later.summary).toMatchObject({ tooYoung: 0, alreadyPresent: 1, ingested: 1 });
    expect(await s3.keys(BUCKET, 'young/')).toEqual(['young/new.txt', 'young/old.txt']);
  });

  test('GIVEN INCLUDE and EXCLUDE globs WHEN run THEN only matching paths land (dot files only when named)', async () => {
    seed('globs', { 'a.xml': '1', 'b.XML.tmp': '2', 'c.csv': '3', 'skip-me.xml': '4', 'deep/d.xml': '5', 'deep/e.txt': '6', '.hidden.xml': '7' });
    const r = await runLister(env('globs', { SFTP_RECURSIVE: 'true', INCLUDE: '*.xml, deep/*.txt', EXCLUDE: 'skip-*' }));
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ listed: 7, excluded: 4, ingested: 3 });
    expect(await s3.keys(BUCKET, 'globs/')).toEqual(['globs/a.xml', 'globs/deep/d.xml', 'globs/deep/e.txt']);
  });

  test('GIVEN COMPLETION=move WHEN run THEN files are moved (sub-paths kept) after upload and not listed again', async () => {
    seed('mv', { 'a.txt': 'a', 'sub/b.txt': 'b' });
    const e = env('mv', { SFTP_RECURSIVE: 'true', COMPLETION: 'move', COMPLETION_MOVE_DIR: 'mv/done' });
    const r = await runLister(e);
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ ingested: 2, completed: 2, completionFailed: 0 });
    expect(fs.existsSync(path.join(sftp.root, 'mv/a.txt'))).toBe(false);
    expect(fs.readFileSync(path.join(sftp.root, 'mv/done/a.txt'), 'utf8')).toBe('a');
    expect(fs.readFileSync(path.join(sftp.root, 'mv/done/sub/b.txt'), 'utf8')).toBe('b');
    expect(await s3.keys(BUCKET, 'mv/')).toEqual(['mv/a.txt', 'mv/sub/b.txt']);
    // The move folder sits inside the listed folder: it must not be ingested again.
    const again = await runLister(e);
    expect(again.summary).toMatchObject({ listed: 0, ingested: 0 });
  });

  test('GIVEN COMPLETION=delete WHEN run THEN files are deleted after upload; a file already in S3 from an earlier leave-run is transferred again (the proof) and deleted too', async () => {
    seed('del', { 'a.txt': 'a' });
    expect((await runLister(env('del'))).summary).toMatchObject({ ingested: 1 });
    seed('del', { 'b.txt': 'b' });
    const r = await runLister(env('del', { COMPLETION: 'delete' }));
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ alreadyPresent: 0, ingested: 2, completed: 2 });
    expect(fs.readdirSync(path.join(sftp.root, 'del'))).toEqual([]);
    expect(await s3.keys(BUCKET, 'del/')).toEqual(['del/a.txt', 'del/b.txt']);
  });

  test('GIVEN MAX_FILES WHEN more are new THEN the oldest are ingested and the rest deferred to the next run', async () => {
    seed('max', { 'old.txt': '1' }, 3000);
    seed('max', { 'mid.txt': '2' }, 2000);
    seed('max', { 'new.txt': '3' }, 1000);
    const r = await runLister(env('max', { MAX_FILES: '2' }));
    expect(r.summary).toMatchObject({ ingested: 2, deferred: 1 });
    expect(await s3.keys(BUCKET, 'max/')).toEqual(['max/mid.txt', 'max/old.txt']);
    expect((await runLister(env('max', { MAX_FILES: '2' }))).summary).toMatchObject({ ingested: 1, alreadyPresent: 2, deferred: 0 });
  });
});

describe('refusals', () => {
  beforeAll(() => seed('refuse', { 'a.txt': 'a' }));

  test('GIVEN a fingerprint that is not the server host key WHEN run THEN it refuses to connect, names the presented key, does not retry, writes nothing', async () => {
    const wrong = 'SHA256:' + 'A'.repeat(43);
    const r = await runLister(env('refuse', { SFTP_HOST_KEY_FINGERPRINTS: wrong, MANIFEST_KEY: 'manifests/refused.json' }));
    expect(r.code).toBe(3);
    expect(r.summary).toMatchObject({ ingested: 0, retries: 0 });
    expect(r.summary!.error).toContain(`host key of 127.0.0.1:${sftp.port} is ssh-ed25519 ${sftp.hostKeyFingerprint}`);
    expect(await s3.keys(BUCKET, 'refuse/')).toEqual([]);
  });

  test('GIVEN the right fingerprint among several WHEN run THEN it connects', async () => {
    const r = await runLister(env('refuse', { SFTP_HOST_KEY_FINGERPRINTS: `SHA256:${'B'.repeat(43)},${sftp.hostKeyFingerprint}` }));
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ ingested: 1 });
  });

  test.each([
    ['no host-key fingerprint', { SFTP_HOST_KEY_FINGERPRINTS: undefined }, /SFTP_HOST_KEY_FINGERPRINTS is required/],
    ['a malformed fingerprint', { SFTP_HOST_KEY_FINGERPRINTS: 'MD5:aa:bb' }, /not of the form SHA256/],
    ['no private key', { SFTP_PRIVATE_KEY: undefined }, /SFTP_PRIVATE_KEY .* or SFTP_PRIVATE_KEY_FILE is required/],
    ['a private key that is not a key', { SFTP_PRIVATE_KEY: 'hunter2' }, /does not contain a PEM\/OpenSSH private key/],
    ['an unknown completion', { COMPLETION: 'archive' }, /COMPLETION must be leave, move or delete/],
    ['move without a folder', { COMPLETION: 'move' }, /COMPLETION=move needs COMPLETION_MOVE_DIR/],
  ])('GIVEN %s WHEN run THEN a configuration error (exit 2) and no connection', async (_what, overrides, message) => {
    const r = await runLister(env('refuse', { DEST_PREFIX: 'refuse-cfg/', ...overrides }));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    // Exactly one summary line, saying why (README: one JSON line whatever the outcome).
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(r.summary).toMatchObject({ errorKind: 'config', ingested: 0 });
    expect(r.summary!.error).toMatch(message);
    expect(r.stderr).not.toContain('hunter2');
  });

  test('GIVEN a key the server does not accept WHEN run THEN authentication fails clearly without retries', async () => {
    const other = fs.readFileSync(path.join(path.dirname(sftp.privateKeyFile), 'host_ed25519'), 'utf8');
    const r = await runLister(env('refuse', { SFTP_PRIVATE_KEY: other, DEST_PREFIX: 'refuse-auth/' }));
    expect(r.code).toBe(3);
    expect(r.summary).toMatchObject({ retries: 0, ingested: 0 });
    expect(r.summary!.error).toMatch(/authentication as '.*' .* failed/);
    expect(r.stderr).not.toContain('PRIVATE KEY');
  });

  test('GIVEN an encrypted key WHEN the passphrase is right THEN it connects; WHEN wrong THEN a clear refusal without retries', async () => {
    const encrypted = path.join(path.dirname(sftp.privateKeyFile), 'client_encrypted');
    fs.copyFileSync(sftp.privateKeyFile, encrypted);
    execFileSync('ssh-keygen', ['-q', '-p', '-P', '', '-N', 'open sesame', '-f', encrypted]);
    const key = fs.readFileSync(encrypted, 'utf8');
    const ok = await runLister(env('refuse', { SFTP_PRIVATE_KEY: key, SFTP_PASSPHRASE: 'open sesame', DEST_PREFIX: 'refuse-pass/' }));
    expect(ok.code).toBe(0);
    expect(ok.summary).toMatchObject({ ingested: 1 });
    const bad = await runLister(env('refuse', { SFTP_PRIVATE_KEY: key, SFTP_PASSPHRASE: 'not-the-passphrase-93', DEST_PREFIX: 'refuse-badpass/' }));
    expect(bad.code).toBe(3);
    expect(bad.summary).toMatchObject({ retries: 0, ingested: 0 });
    expect(bad.summary!.error).toMatch(/private key cannot be used/);
    expect(bad.stderr).not.toContain('not-the-passphrase-93');
  });

  test('GIVEN the key text stored on one line with escaped newlines (as pasted into a JSON secret) WHEN run THEN it connects', async () => {
    const oneLine = sftp.privateKey.replace(/\n/g, '\\n');
    expect(oneLine).not.toContain('\n');
    const r = await runLister(env('refuse', { SFTP_PRIVATE_KEY: oneLine, DEST_PREFIX: 'refuse-oneline/' }));
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ ingested: 1 });
  });

  test('GIVEN the key as a file (SFTP_PRIVATE_KEY_FILE) WHEN run THEN it connects', async () => {
    const r = await runLister(env('refuse', { SFTP_PRIVATE_KEY: undefined, SFTP_PRIVATE_KEY_FILE: sftp.privateKeyFile, DEST_PREFIX: 'refuse-file/' }));
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ ingested: 1 });
  });
});

describe('S3 object content', () => {
  test('GIVEN two runs started at the same time on the same folder WHEN both finish THEN every object is complete and correct and every file is in a manifest', async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 12; i++) files[`f${i}.bin`] = randomBytes(512 * 1024 + i);
    for (const [name, body] of Object.entries(files)) {
      const p = path.join(sftp.root, 'overlap', name);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, body);
      age(p, 3600);
    }
    const [a, b] = await Promise.all([
      runLister(env('overlap', { MANIFEST_KEY: 'manifests/overlap-a.json', CONCURRENCY: '3' })),
      runLister(env('overlap', { MANIFEST_KEY: 'manifests/overlap-b.json', CONCURRENCY: '3' })),
    ]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(a.summary!.failed + b.summary!.failed).toBe(0);
    for (const [name, body] of Object.entries(files)) expect(sha256(await s3.get(BUCKET, `overlap/${name}`))).toBe(sha256(body));
    const union = new Set([...(await manifest('manifests/overlap-a.json')), ...(await manifest('manifests/overlap-b.json'))]);
    expect([...union].sort()).toEqual(
      Object.keys(files)
        .map((n) => `overlap/${n}`)
        .sort(),
    );
    // Afterwards the index (merged by both runs, or repaired by HeadObject) says all are present.
    expect((await runLister(env('overlap'))).summary).toMatchObject({ alreadyPresent: 12, ingested: 0 });
  });

  test('GIVEN a file larger than one part WHEN ingested THEN the object is byte-identical (ordered reassembly of parallel reads)', async () => {
    const p = path.join(sftp.root, 'multi', 'big.bin');
    fs.mkdirSync(path.dirname(p), { recursive: true });
    // Odd size, not a multiple of the read chunk or part size.
    const data = randomBytes(12 * 1024 * 1024 + 12345);
    fs.writeFileSync(p, data);
    age(p, 3600);
    const r = await runLister(env('multi', { PART_SIZE_MB: '5', READ_CHUNK_BYTES: '40000', READ_WINDOW: '7' }));
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ ingested: 1, bytes: data.length });
    expect(sha256(await s3.get(BUCKET, 'multi/big.bin'))).toBe(sha256(data));
    // A multipart object is still recognised as present by the next run.
    expect((await runLister(env('multi'))).summary).toMatchObject({ alreadyPresent: 1, ingested: 0 });
  });
});

// Issue 11: each test below failed on the lister before its fix (LISTER_MAIN=<old build> shows it).
describe('nothing lost, duplicated or corrupted (issue 11)', () => {
  const union = async (...keys: string[]) => new Set((await Promise.all(keys.map(manifest))).flat());

  test('GIVEN the manifest PUT fails WHEN the next run comes THEN its manifest announces every object the failed run landed (at-least-once)', async () => {
    seed('annfail', { 'a.xml': 'a', 'b.xml': 'b', 'c.xml': 'c' });
    const fault = s3.fault({ operation: 'PutObject', key: 'manifests/annfail-1.json', action: { kind: 'error', status: 500 } });
    const r = await runLister(env('annfail', { MANIFEST_KEY: 'manifests/annfail-1.json' }));
    fault.remove();
    expect(r.code).toBe(1);
    expect(r.summary).toMatchObject({ ingested: 3, manifestKey: null });
    expect(r.summary!.error).toMatch(/manifest manifests\/annfail-1.json not written/);
    expect(await s3.keys(BUCKET, 'manifests/annfail-1')).toEqual([]);

    const next = await runLister(env('annfail', { MANIFEST_KEY: 'manifests/annfail-2.json' }));
    expect(next.code).toBe(0);
    expect(next.summary).toMatchObject({ ingested: 0, alreadyPresent: 3, announcedAgain: 3 });
    expect([...(await union('manifests/annfail-2.json'))].sort()).toEqual(['annfail/a.xml', 'annfail/b.xml', 'annfail/c.xml']);
    // Once announced, the index vouches: the run after announces nothing and asks S3 nothing.
    const third = await runLister(env('annfail', { MANIFEST_KEY: 'manifests/annfail-3.json' }));
    expect(third.summary).toMatchObject({ alreadyPresent: 3, announcedAgain: 0, heads: 0 });
    expect(await manifest('manifests/annfail-3.json')).toEqual([]);
  });

  test('GIVEN a file indexed by a leave-run WHEN it is rewritten with the same size and mtime and a delete-run comes THEN the new bytes land before the source is deleted', async () => {
    seed('blind', { 'f.txt': 'version-1' });
    expect((await runLister(env('blind'))).summary).toMatchObject({ ingested: 1 });
    const p = path.join(sftp.root, 'blind', 'f.txt');
    const { mtime } = fs.statSync(p);
    fs.writeFileSync(p, 'version-2');
    fs.utimesSync(p, mtime, mtime); // the (path, size, mtime) blind spot
    const r = await runLister(env('blind', { COMPLETION: 'delete', MANIFEST_KEY: 'manifests/blind.json' }));
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ ingested: 1, completed: 1 });
    expect(fs.existsSync(p)).toBe(false);
    expect((await s3.get(BUCKET, 'blind/f.txt')).toString()).toBe('version-2');
    expect(await manifest('manifests/blind.json')).toEqual(['blind/f.txt']);
  });

  test('GIVEN two delete-runs at the same time WHEN both finish THEN neither fails, every object is right and in a manifest, every source is gone', async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 40; i++) files[`f${i}.bin`] = randomBytes(20_000 + i);
    for (const [name, body] of Object.entries(files)) {
      const p = path.join(sftp.root, 'overdel', name);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, body);
      age(p, 3600);
    }
    const e = (m: string) => env('overdel', { COMPLETION: 'delete', MANIFEST_KEY: m, CONCURRENCY: '4' });
    const [a, b] = await Promise.all([runLister(e('manifests/overdel-a.json')), runLister(e('manifests/overdel-b.json'))]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(a.summary!.failed + b.summary!.failed + a.summary!.completionFailed + b.summary!.completionFailed).toBe(0);
    for (const [name, body] of Object.entries(files)) expect(sha256(await s3.get(BUCKET, `overdel/${name}`))).toBe(sha256(body));
    const announced = await union('manifests/overdel-a.json', 'manifests/overdel-b.json');
    expect([...announced].sort()).toEqual(
      Object.keys(files)
        .map((n) => `overdel/${n}`)
        .sort(),
    );
    expect(fs.readdirSync(path.join(sftp.root, 'overdel'))).toEqual([]);
  });

  test.each([
    ['with a trailing slash', 'mvs', () => 'mvs/done/'],
    ['absolute while the listed folder is relative', 'mva', () => path.join(sftp.root, 'mva', 'done')],
    ['spelled with ./ and ..', 'mvd', () => './mvd/x/../done'],
  ])('GIVEN COMPLETION_MOVE_DIR %s inside the listed folder WHEN run twice THEN moved files are never listed again', async (_what, dir, moveDir) => {
    seed(dir, { 'a.txt': 'a', 'sub/b.txt': 'b' });
    const e = env(dir, { SFTP_RECURSIVE: 'true', COMPLETION: 'move', COMPLETION_MOVE_DIR: moveDir() });
    const r = await runLister(e);
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ ingested: 2, completed: 2 });
    expect(fs.readFileSync(path.join(sftp.root, dir, 'done/sub/b.txt'), 'utf8')).toBe('b');
    const again = await runLister(e);
    expect(again.code).toBe(0);
    expect(again.summary).toMatchObject({ listed: 0, ingested: 0 });
    expect(await s3.keys(BUCKET, `${dir}/`)).toEqual([`${dir}/a.txt`, `${dir}/sub/b.txt`]);
  });

  test('GIVEN COMPLETION_MOVE_DIR that is the listed folder (however spelled) WHEN run THEN a configuration error, nothing moved or ingested', async () => {
    seed('mvloop', { 'a.txt': 'a' });
    const same = await runLister(env('mvloop', { COMPLETION: 'move', COMPLETION_MOVE_DIR: 'mvloop/' }));
    expect(same.code).toBe(2);
    expect(same.summary!.error).toMatch(/COMPLETION_MOVE_DIR 'mvloop\/' is the listed folder/);
    const mixed = await runLister(env('mvloop', { COMPLETION: 'move', COMPLETION_MOVE_DIR: path.join(sftp.root, 'mvloop') }));
    expect(mixed.code).toBe(2);
    expect(mixed.summary).toMatchObject({ errorKind: 'config', ingested: 0 });
    expect(fs.readdirSync(path.join(sftp.root, 'mvloop'))).toEqual(['a.txt']);
    expect(await s3.keys(BUCKET, 'mvloop/')).toEqual([]);
  });

  test('GIVEN names with a line break or carriage return WHEN run with the default INCLUDE THEN they are ingested under their own keys', async () => {
    seed('crlf', { 'a\nb.xml': 'lf', 'c\rd.xml': 'cr', 'plain.xml': 'p' });
    const r = await runLister(env('crlf', { MANIFEST_KEY: 'manifests/crlf.json' }));
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ listed: 3, excluded: 0, ingested: 3 });
    expect((await s3.get(BUCKET, 'crlf/a\nb.xml')).toString()).toBe('lf');
    expect((await s3.get(BUCKET, 'crlf/c\rd.xml')).toString()).toBe('cr');
  });

  test('GIVEN two names that are not valid UTF-8 WHEN run THEN each is skipped with its reason in the log and the summary, the rest lands, exit 1', async () => {
    const dir = path.join(sftp.root, 'latin1');
    seed('latin1', { 'ok.xml': 'ok' });
    for (const bytes of [
      [0x63, 0x61, 0x66, 0xe9],
      [0x63, 0x61, 0x66, 0xe8],
    ]) {
      const p = Buffer.concat([Buffer.from(`${dir}/`), Buffer.from(bytes), Buffer.from('.xml')]);
      fs.writeFileSync(p, 'latin-1 name');
      fs.utimesSync(p, Date.now() / 1000 - 3600, Date.now() / 1000 - 3600);
    }
    const r = await runLister(env('latin1'));
    expect(r.code).toBe(1);
    expect(r.summary).toMatchObject({ ingested: 1, skipped: 2, failed: 0 });
    expect(r.stderr.match(/"msg":"file skipped".*not valid UTF-8/g)).toHaveLength(2);
    expect(await s3.keys(BUCKET, 'latin1/')).toEqual(['latin1/ok.xml']);
  });

  test('GIVEN MIN_AGE_SECONDS=0 and a file rewritten in place (same size) every 100 ms WHEN run THEN it is not read while written (no mixed bytes); once quiet for 2 s it lands whole', async () => {
    const p = path.join(sftp.root, 'fresh', 'busy.bin');
    fs.mkdirSync(path.dirname(p), { recursive: true });
    let n = 0;
    const rewrite = () => fs.writeFileSync(p, Buffer.alloc(256 * 1024, n++ % 256));
    rewrite();
    const writer = setInterval(rewrite, 100);
    let r;
    try {
      r = await runLister(env('fresh', { MIN_AGE_SECONDS: '0' }));
    } finally {
      clearInterval(writer);
    }
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ tooYoung: 1, ingested: 0 });
    expect(await s3.keys(BUCKET, 'fresh/')).toEqual([]);
    const last = fs.readFileSync(p);
    age(p, 2);
    expect((await runLister(env('fresh', { MIN_AGE_SECONDS: '0' }))).summary).toMatchObject({ tooYoung: 0, ingested: 1 });
    expect(sha256(await s3.get(BUCKET, 'fresh/busy.bin'))).toBe(sha256(last));
  });

  test('GIVEN an unreadable sub-folder WHEN run recursively THEN the rest is ingested and the folder reported (exit 1); WHEN EXCLUDE names it THEN exit 0', async () => {
    seed('locked', { 'a.txt': 'a', 'open/b.txt': 'b', 'private/c.txt': 'c' });
    const locked = path.join(sftp.root, 'locked', 'private');
    fs.chmodSync(locked, 0o000);
    try {
      const r = await runLister(env('locked', { SFTP_RECURSIVE: 'true' }));
      expect(r.code).toBe(1);
      expect(r.summary).toMatchObject({ ingested: 2, skipped: 1, failed: 0 });
      expect(r.stderr).toMatch(/sub-folder skipped: permission denied.*locked\/private/);
      expect(await s3.keys(BUCKET, 'locked/')).toEqual(['locked/a.txt', 'locked/open/b.txt']);
      const excluded = await runLister(env('locked', { SFTP_RECURSIVE: 'true', EXCLUDE: 'private' }));
      expect(excluded.code).toBe(0);
      expect(excluded.summary).toMatchObject({ skipped: 0, alreadyPresent: 2 });
    } finally {
      fs.chmodSync(locked, 0o755);
    }
  });
});

describe('IAM as on AWS', () => {
  // The ingest stack grants s3:ListBucket only under the landing and index prefixes (an s3:prefix
  // condition). A GET/HEAD of a missing key carries no prefix, so S3 may answer 403, not 404
  // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html, "Permissions").
  const PRINCIPAL = 'lister-task-role';
  const conditionalGrant = (dir: string) => (r: AuthorizeRequest) => {
    if (r.principal !== PRINCIPAL) return true; // the test's own calls
    if (r.action === 's3:ListBucket') {
      const prefix = r.context['s3:prefix'];
      return typeof prefix === 'string' && [`${dir}/`, '.sftp-lister/', 'manifests/'].some((p) => prefix.startsWith(p));
    }
    return ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'].includes(r.action);
  };
  afterEach(() => s3.authorize(undefined));

  test('GIVEN ListBucket only with an s3:prefix condition WHEN the index and the new keys are missing THEN the run tells missing from denied by listing the key, and ingests', async () => {
    seed('iam', { 'a.xml': '<a/>', 'b.xml': '<b/>' });
    s3.authorize(conditionalGrant('iam'));
    const r = await runLister({ ...env('iam', { MANIFEST_KEY: 'manifests/iam-1.json' }), ...s3.envFor(PRINCIPAL) });

    expect(r.stderr).not.toContain('AccessDenied');
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ ingested: 2, failed: 0 });
    expect(await s3.keys(BUCKET, 'iam/')).toEqual(['iam/a.xml', 'iam/b.xml']);
    expect((await manifest('manifests/iam-1.json')).sort()).toEqual(['iam/a.xml', 'iam/b.xml']);
    // Every missing-key read was answered 403 and resolved by a listing of exactly that key.
    const mine = s3.requests().filter((q) => q.principal === PRINCIPAL);
    const denied = mine.filter((q) => q.status === 403);
    expect(denied.length).toBeGreaterThan(0);
    for (const d of denied) expect(mine.some((q) => q.operation === 'ListObjectsV2' && q.id > d.id)).toBe(true);
  });

  test('GIVEN no ListBucket at all WHEN a key is missing THEN the run fails naming the permissions it needs', async () => {
    seed('iam-none', { 'a.xml': '<a/>' });
    s3.authorize((r) => r.principal !== PRINCIPAL || r.action !== 's3:ListBucket');
    const r = await runLister({ ...env('iam-none'), ...s3.envFor(PRINCIPAL) });

    expect(r.code).toBe(1);
    expect(r.stderr).toContain('s3:ListBucket with s3:prefix covering it');
    expect(await s3.keys(BUCKET, 'iam-none/')).toEqual([]);
  });
});

describe('portability and messages (issue 11)', () => {
  beforeAll(() => seed('port', { 'a.txt': 'a' }));

  test.each(['rsa-sha2-512', 'ecdsa-sha2-nistp256'])(
    'GIVEN only the %s host key fingerprint of a server with three WHEN run THEN it connects',
    async (type) => {
      const key = sftp.hostKeys.find((k) => k.type === type)!;
      const r = await runLister(env('port', { SFTP_HOST_KEY_FINGERPRINTS: key.fingerprint, DEST_PREFIX: `port-${type}/` }));
      expect(r.code).toBe(0);
      expect(r.summary).toMatchObject({ ingested: 1 });
    },
  );

  test('GIVEN no fingerprint of the server WHEN run THEN the refusal names every key type and fingerprint presented (exit 3)', async () => {
    const r = await runLister(env('port', { SFTP_HOST_KEY_FINGERPRINTS: `SHA256:${'C'.repeat(43)}`, DEST_PREFIX: 'port-none/' }));
    expect(r.code).toBe(3);
    for (const k of sftp.hostKeys) expect(r.summary!.error).toContain(k.fingerprint);
    expect(r.summary!.error).toMatch(/ssh-ed25519 SHA256:.*ecdsa-sha2-nistp256 SHA256:.*ssh-rsa SHA256:/);
  });

  test('GIVEN the client key as PKCS#8 (BEGIN PRIVATE KEY, OpenSSL 3 default) WHEN run THEN it connects', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { utils } = require(path.join(LISTER_DIR, 'node_modules', 'ssh2')) as { utils: { parseKey(key: string): { getPrivatePEM(): string } | Error } };
    const parsed = utils.parseKey(sftp.privateKey);
    if (parsed instanceof Error) throw parsed;
    const pkcs8 = parsed.getPrivatePEM();
    expect(pkcs8).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const r = await runLister(env('port', { SFTP_PRIVATE_KEY: pkcs8, DEST_PREFIX: 'port-pkcs8/' }));
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ ingested: 1 });
  });

  test('GIVEN an unreachable SFTP server WHEN run THEN exit 3 with one summary line naming the address', async () => {
    const r = await runLister(env('port', { SFTP_PORT: '1', RETRIES: '1', RETRY_BASE_MS: '10', DEST_PREFIX: 'port-unreach/' }));
    expect(r.code).toBe(3);
    expect(r.summary).toMatchObject({ errorKind: 'connect', ingested: 0, retries: 1 });
    expect(r.summary!.error).toMatch(/127\.0\.0\.1:1 failed: .*ECONNREFUSED/);
  });

  test('GIVEN an S3-compatible server answering 501 NotImplemented to conditional writes WHEN run THEN no retries, one error saying to set S3_CONDITIONAL_WRITES=false, the rest deferred', async () => {
    seed('cond501', { 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c' });
    // The stand-in's fault types list 500/503; a 501 is what such servers send (status and code as S3's NotImplemented).
    const fault = s3.fault({ operation: 'PutObject', key: /^cond501\//, action: { kind: 'error', status: 501 as 500, code: 'NotImplemented' } });
    let r;
    try {
      // One file at a time (small files have their own width), so the first 501 stops the other two.
      r = await runLister(env('cond501', { CONCURRENCY: '1', SMALL_FILE_CONCURRENCY: '1' }));
    } finally {
      fault.remove();
    }
    expect(r.code).toBe(1);
    expect(r.summary).toMatchObject({ ingested: 0, failed: 1, deferred: 2, retries: 0 });
    expect(r.summary!.error).toMatch(/does not implement conditional writes.*set S3_CONDITIONAL_WRITES=false/);
  });

  test('GIVEN a bucket that does not exist WHEN run THEN one error naming the bucket, no per-file attempts, exit 1', async () => {
    const r = await runLister(env('port', { DEST_BUCKET: 'no-such-bucket-11', DEST_PREFIX: 'port-nobucket/' }));
    expect(r.code).toBe(1);
    expect(r.summary).toMatchObject({ ingested: 0, heads: 0 });
    expect(r.summary!.error).toMatch(/S3 bucket 'no-such-bucket-11' \(DEST_BUCKET\) does not exist/);
    expect(r.stderr).not.toMatch(/"msg":"ingest failed"/);
  });
});

// Issue 11, defect 8: the same runs against ProFTPD's mod_sftp and an object-store-like server (no
// rename, as AWS Transfer Family on S3), each with RSA + ECDSA + ED25519 host keys.
describe.each([
  ['ProFTPD mod_sftp', startProftpd],
  ['an object-store SFTP server (no rename)', startObjectStoreSftp],
])('against %s (issue 11)', (_name, start) => {
  let other: SftpServer;
  beforeAll(async () => {
    other = await start();
  });
  afterAll(async () => {
    await other?.stop();
  });
  const put = (rel: string, content: string) => {
    const p = path.join(other.root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
    age(p, 3600);
  };
  const otherEnv = (dir: string, overrides: Record<string, string | undefined> = {}) =>
    listerEnv(other, s3, BUCKET, { SFTP_REMOTE_DIR: dir, DEST_PREFIX: `${other.kind}-${dir}/`, ...overrides });

  test('GIVEN only the RSA fingerprint WHEN moving twice onto an older moved copy THEN both runs move (replacing it) and every version lands', async () => {
    const rsa = other.hostKeys.find((k) => k.type.startsWith('rsa'))!.fingerprint;
    const e = otherEnv('mv', { SFTP_HOST_KEY_FINGERPRINTS: rsa, COMPLETION: 'move', COMPLETION_MOVE_DIR: 'mv/done', SFTP_RECURSIVE: 'true' });
    put('mv/a.txt', 'first');
    const r = await runLister(e);
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ ingested: 1, completed: 1 });
    put('mv/a.txt', 'second!');
    const again = await runLister(e);
    expect(again.code).toBe(0);
    expect(again.summary).toMatchObject({ ingested: 1, completed: 1, completionFailed: 0 });
    expect(fs.readFileSync(path.join(other.root, 'mv/done/a.txt'), 'utf8')).toBe('second!');
    expect(fs.existsSync(path.join(other.root, 'mv/a.txt'))).toBe(false);
    expect((await s3.get(BUCKET, `${other.kind}-mv/a.txt`)).toString()).toBe('second!');
  });

  test('GIVEN COMPLETION=delete WHEN run THEN files land and are deleted', async () => {
    put('del/a.txt', 'a');
    put('del/b.txt', 'b');
    const r = await runLister(otherEnv('del', { COMPLETION: 'delete' }));
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ ingested: 2, completed: 2 });
    expect(fs.readdirSync(path.join(other.root, 'del'))).toEqual([]);
  });
});
