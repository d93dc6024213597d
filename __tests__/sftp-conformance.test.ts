// The real lister (images/sftp-lister/dist) against three SFTP implementations, each as strict as
// production: OpenSSH (non-root account), ProFTPD mod_sftp, and an object store that behaves like AWS
// Transfer Family on S3 (no rename). The same files land byte-identical in the S3 stand-in with every
// completion mode; where the server cannot rename (object store), move is the lister's verified
// copy-then-delete.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { S3Server, startS3 } from '../tools/servers/s3';
import { SftpServer, sftpClientArgs, startSshd } from '../tools/servers/sshd';
import { startProftpd } from '../tools/servers/sftp-proftpd';
import { startObjectStoreSftp } from '../tools/servers/sftp-objectstore';
import { SFTP_TEST_USER } from '../tools/servers/sftp-account';
import { age, listerEnv, runLister, writeRandomFile } from '../tools/servers/lister-harness';

const BUCKET = 'conformance';
const MiB = 1024 * 1024;
let s3: S3Server;

beforeAll(async () => {
  s3 = await startS3([BUCKET]);
});
afterAll(async () => {
  await s3?.dispose();
});

/** The files every server serves: names with spaces and non-ASCII, a sub-folder, empty and multipart-sized files. */
function seed(root: string, dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const put = (rel: string, body: Buffer) => {
    const file = path.join(root, dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, body);
    age(file, 3600);
    files.set(rel, crypto.createHash('sha256').update(body).digest('hex'));
  };
  put('a.xml', Buffer.from('<a>1</a>'));
  put('empty.xml', Buffer.alloc(0));
  put('with space ü.xml', crypto.randomBytes(100_000));
  put('sub/deeper/c.bin', crypto.randomBytes(300_000));
  const big = path.join(root, dir, 'big.bin');
  files.set('big.bin', writeRandomFile(big, 6 * MiB + 123)); // two parts at PART_SIZE_MB=5
  age(big, 3600);
  // A partial upload's dot name: never ingested by default.
  fs.writeFileSync(path.join(root, dir, '.upload.tmp'), 'partial');
  return files;
}

async function objectSha(key: string): Promise<string> {
  return crypto
    .createHash('sha256')
    .update(await s3.get(BUCKET, key))
    .digest('hex');
}

const servers: [string, () => Promise<SftpServer>][] = [
  ['OpenSSH', () => startSshd()],
  ['ProFTPD mod_sftp', () => startProftpd()],
  ['object store (Transfer Family on S3)', () => startObjectStoreSftp()],
];

describe.each(servers)('%s', (_name, start) => {
  let sftp: SftpServer;
  beforeAll(async () => {
    sftp = await start();
  });
  afterAll(async () => {
    await sftp?.stop();
  });

  const env = (dir: string, overrides: Record<string, string | undefined> = {}) =>
    listerEnv(sftp, s3, BUCKET, { SFTP_REMOTE_DIR: dir, SFTP_RECURSIVE: 'true', DEST_PREFIX: `${sftp.kind}/${dir}/`, PART_SIZE_MB: '5', ...overrides });

  test('GIVEN the test bed WHEN a client connects THEN it offers RSA, ECDSA and ED25519 host keys and serves a non-root account only', () => {
    const dir = path.dirname(sftp.privateKeyFile);
    const scan = execFileSync('ssh-keyscan', ['-p', String(sftp.port), '127.0.0.1'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const scanned = path.join(dir, 'scanned.pub');
    fs.writeFileSync(scanned, scan.replace(/^\S+ /gm, ''));
    const offered = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', scanned], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(/\s+/)[1])
      .sort();
    expect(offered).toEqual(sftp.hostKeys.map((k) => k.fingerprint).sort());
    expect(sftp.hostKeys.map((k) => k.type).sort()).toEqual(['ecdsa-sha2-nistp256', 'rsa-sha2-512', 'ssh-ed25519']);
    if (process.getuid!() === 0) expect(sftp.user).toBe(SFTP_TEST_USER);
    expect(sftp.user).not.toBe('root');
    // The account's own password field is not locked (sshd without PAM would refuse it) and its shell is not a login shell.
    if (process.getuid!() === 0) {
      expect(execFileSync('getent', ['shadow', sftp.user], { encoding: 'utf8' }).split(':')[1]).not.toMatch(/^!/);
      expect(execFileSync('getent', ['passwd', sftp.user], { encoding: 'utf8' }).trim().split(':')[6]).toBe('/usr/sbin/nologin');
    }
    const sftpAs = (user: string) =>
      spawnSync('sftp', sftpClientArgs(sftp, path.join(dir, 'scanned'), { user, strict: false }), {
        input: 'ls\n',
        encoding: 'utf8',
      });
    expect(sftpAs('root').status).not.toBe(0);
    expect(sftpAs(sftp.user).status).toBe(0);
  });

  test('GIVEN a live SFTP session WHEN killSessions THEN that connection drops and the server still accepts new ones', async () => {
    const dir = path.dirname(sftp.privateKeyFile);
    const args = sftpClientArgs(sftp, path.join(dir, 'kill_known'), { strict: false });
    const client = spawn('sftp', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => client.on('exit', (code) => resolve(code)));
    let out = '';
    client.stdout.on('data', (d) => (out += d));
    client.stdin.write('pwd\n');
    for (let i = 0; i < 200 && !out.includes('Remote working directory'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(out).toContain('Remote working directory');
    sftp.killSessions();
    // The same client asks the server again (`pwd` is answered locally, `ls` is not): a dropped
    // connection ends it with an error, a surviving one answers.
    client.stdin.write('ls\n');
    const code = await Promise.race([exited, new Promise<'alive'>((r) => setTimeout(() => r('alive'), 10_000))]);
    client.kill('SIGKILL');
    expect(code).not.toBe('alive');
    expect(code).not.toBe(0);
    expect(spawnSync('sftp', args, { input: 'pwd\n', encoding: 'utf8' }).status).toBe(0);
  });

  test.each(['rsa-sha2-512', 'ecdsa-sha2-nistp256', 'ssh-ed25519'])(
    'GIVEN only the %s host key fingerprint WHEN the lister connects THEN it accepts the server',
    async (type) => {
      fs.mkdirSync(path.join(sftp.root, 'hostkey'), { recursive: true });
      const only = sftp.hostKeys.find((k) => k.type === type)!.fingerprint;
      const r = await runLister(env('hostkey', { SFTP_HOST_KEY_FINGERPRINTS: only }));
      expect(r.stderr).not.toMatch(/"level":"error"/);
      expect(r.code).toBe(0);
    },
  );

  test.each(['leave', 'delete', 'move'])(
    'GIVEN the same files WHEN ingested with COMPLETION=%s THEN every object is byte-identical and announced, and completion does its job on every server',
    async (mode) => {
      const files = seed(sftp.root, mode);
      const manifestKey = `manifests/${sftp.kind}-${mode}.json`;
      const r = await runLister(env(mode, { COMPLETION: mode, COMPLETION_MOVE_DIR: mode === 'move' ? `${mode}/done` : undefined, MANIFEST_KEY: manifestKey }));
      const keys = [...files.keys()].map((rel) => `${sftp.kind}/${mode}/${rel}`).sort();

      // Whatever the server's semantics, every file lands byte-identical and is announced.
      expect(r.summary).toMatchObject({ ingested: files.size, failed: 0 });
      expect(await s3.keys(BUCKET, `${sftp.kind}/${mode}/`)).toEqual(keys);
      for (const [rel, sha] of files) expect(await objectSha(`${sftp.kind}/${mode}/${rel}`)).toBe(sha);
      expect(JSON.parse((await s3.get(BUCKET, manifestKey)).toString()).sort()).toEqual(keys);
      const onServer = (rel: string) => fs.existsSync(path.join(sftp.root, mode, rel));

      expect(r.code).toBe(0);
      expect(r.summary).toMatchObject({ completed: mode === 'leave' ? 0 : files.size, completionFailed: 0 });
      for (const [rel, sha] of files) {
        expect(onServer(rel)).toBe(mode === 'leave');
        if (mode !== 'move') continue;
        const moved = path.join(sftp.root, mode, 'done', rel);
        expect(crypto.createHash('sha256').update(fs.readFileSync(moved)).digest('hex')).toBe(sha);
        // A rename keeps the file's mtime; without rename (object store) the lister copies, verifies the
        // copy against the bytes in S3 and deletes: the copy is a new upload, dated now.
        const mtimeAge = Date.now() / 1000 - fs.statSync(moved).mtimeMs / 1000;
        if (sftp.renames) expect(mtimeAge).toBeGreaterThan(3000);
        else expect(mtimeAge).toBeLessThan(600);
      }
      // The sessions ran as the account: what the lister created on the server is the account's.
      if (mode === 'move')
        expect(fs.statSync(path.join(sftp.root, mode, 'done')).uid).toBe(Number(execFileSync('id', ['-u', sftp.user], { encoding: 'utf8' })));
      expect(onServer('.upload.tmp')).toBe(true);

      // A second run finds nothing new (and never ingests the move folder).
      const again = await runLister(env(mode, { COMPLETION: mode, COMPLETION_MOVE_DIR: mode === 'move' ? `${mode}/done` : undefined }));
      expect(again.summary).toMatchObject({ ingested: 0, failed: 0 });
      expect(await s3.keys(BUCKET, `${sftp.kind}/${mode}/`)).toEqual(keys);
    },
  );
});
