/**
 * What every test SFTP server shares: the non-root account sessions log in as, the served folder it
 * owns, free ports, host keys and their fingerprints.
 *
 * Production SFTP never logs in as root (Transfer Family maps a user to a role scoped to one folder),
 * so a test server that does would hide permission bugs. When the tests run as root they create the
 * account `SFTP_TEST_USER`; otherwise the current (non-root) user is the account.
 */
import { ChildProcess, execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const SFTP_TEST_USER = 'sftptest';

export interface Account {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function lookup(name: string): Account | undefined {
  const r = spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const [, , uid, gid] = r.stdout.trim().split(':');
  return { name, uid: Number(uid), gid: Number(gid) };
}

/**
 * The account sessions log in as. Created once per machine (several jest workers may race: useradd
 * locks /etc/passwd and the loser sees "already exists", so this retries the lookup).
 * Its password field is `*` (no password), never `!` (locked): without PAM, OpenSSH refuses locked
 * accounts even for key authentication. Shell nologin: servers run SFTP in-process, never a shell.
 */
export async function sftpAccount(): Promise<Account> {
  if (process.getuid!() !== 0) {
    const me = os.userInfo();
    return { name: me.username, uid: me.uid, gid: me.gid };
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    const found = lookup(SFTP_TEST_USER);
    if (found) {
      const shadow = spawnSync('getent', ['shadow', SFTP_TEST_USER], { encoding: 'utf8' }).stdout.split(':')[1] ?? '';
      if (shadow.startsWith('!')) execFileSync('usermod', ['-p', '*', SFTP_TEST_USER]);
      return found;
    }
    spawnSync('useradd', ['--create-home', '--shell', '/usr/sbin/nologin', '--password', '*', SFTP_TEST_USER], { stdio: 'ignore' });
    if (!lookup(SFTP_TEST_USER)) await sleep(100);
  }
  throw new Error(`could not create the SFTP test account ${SFTP_TEST_USER} (useradd failed repeatedly)`);
}

/**
 * Makes `root` the account's folder: owned by it, and readable, movable and deletable by it even when
 * the tests (running as root) write files and sub-folders into it. A default ACL gives the account
 * rwx on everything created below; chmod still works (it sets the ACL mask), so a test can still make
 * a folder unreadable. Every ancestor is made traversable by the account (mkdtemp folders are 0700).
 */
export function serveFolder(root: string, account: Account): void {
  fs.mkdirSync(root, { recursive: true });
  if (process.getuid!() !== 0) return;
  fs.chownSync(root, account.uid, account.gid);
  fs.chmodSync(root, 0o755);
  const entry = `u:${account.name}:rwX`;
  try {
    execFileSync('setfacl', ['-R', '-m', `${entry},d:${entry},d:m::rwx`, root], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    throw new Error(`setfacl on ${root} failed (install Debian acl; scripts/test.sh does): ${(e as { stderr?: Buffer }).stderr ?? e}`, { cause: e });
  }
  traversable(path.dirname(root), account);
}

/** Gives the account search (x) permission on `dir` and its ancestors where "others" lack it. */
export function traversable(dir: string, account: Account): void {
  if (process.getuid!() !== 0) return;
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if ((fs.statSync(d).mode & 0o001) === 0) execFileSync('setfacl', ['-m', `u:${account.name}:x`, d]);
    if (d === path.dirname(d)) break;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once `port` accepts connections; rejects with the log if the server exits first. */
export function waitForPort(port: number, child: ChildProcess, log: string, name: string, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const logText = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '(no log)');
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`${name} exited: ${logText()}`));
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve();
      });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`${name} did not listen on ${port}: ${logText()}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export function fingerprintOf(publicKeyFile: string): string {
  const out = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', publicKeyFile], { encoding: 'utf8' });
  return out.split(/\s+/)[1];
}

export interface HostKey {
  /** The SSH key type the server offers it as, e.g. `ssh-ed25519`. */
  readonly type: string;
  /** Private key file (OpenSSH format unless `pem`); `.pub` beside it. */
  readonly file: string;
  /** `SHA256:...` as `ssh-keygen -l -E sha256` prints it. */
  readonly fingerprint: string;
}

/**
 * RSA, ECDSA and ED25519 host keys in `dir` (host_rsa, host_ecdsa, host_ed25519), as a Transfer Family
 * server can have: https://docs.aws.amazon.com/transfer/latest/userguide/edit-server-config.html#configure-host-key-for-server
 * `pem` writes PEM private keys (ProFTPD reads only those).
 */
export function makeHostKeys(dir: string, pem = false): HostKey[] {
  const specs: [string, string[], string][] = [
    ['rsa', ['-t', 'rsa', '-b', '3072'], 'rsa-sha2-512'],
    ['ecdsa', ['-t', 'ecdsa', '-b', '256'], 'ecdsa-sha2-nistp256'],
    ['ed25519', ['-t', 'ed25519'], 'ssh-ed25519'],
  ];
  return specs.map(([name, args, type]) => {
    const file = path.join(dir, `host_${name}`);
    execFileSync('ssh-keygen', ['-q', ...args, ...(pem && name !== 'ed25519' ? ['-m', 'PEM'] : []), '-N', '', '-C', `test-host-${name}`, '-f', file]);
    return { type, file, fingerprint: fingerprintOf(`${file}.pub`) };
  });
}
