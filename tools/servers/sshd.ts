/**
 * A real OpenSSH sshd (Debian's openssh-server) serving SFTP on 127.0.0.1 for tests, as strict as a
 * production server: sessions log in as a NON-ROOT account (see sftp-account.ts) that owns the served
 * folder, and the server offers RSA, ECDSA and ED25519 host keys (as Transfer Family can).
 *
 * Own temp config, host keys and client key. Pitfalls handled: /run/sshd must exist, `StrictModes no`
 * under /tmp, `UsePAM no` (so the account's password field must not be locked), `-E` with an absolute
 * path, and `ForceCommand internal-sftp -d DIR` rather than a chroot under /tmp.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, HostKey, makeHostKeys, serveFolder, sftpAccount, traversable, waitForPort } from './sftp-account';

export { fingerprintOf } from './sftp-account';
export type { HostKey } from './sftp-account';

/** Which implementation serves the session: each has its own semantics (see `renames`). */
export type SftpKind = 'openssh' | 'proftpd' | 'objectstore';

export interface SftpServer {
  readonly kind: SftpKind;
  readonly host: string;
  readonly port: number;
  /** The non-root account sessions log in as (or the current user when the tests are not root). */
  readonly user: string;
  /** The folder SFTP sessions start in (the "remote folder" as a local path). */
  readonly root: string;
  /** Client private key (OpenSSH PEM text) and its file. */
  readonly privateKey: string;
  readonly privateKeyFile: string;
  /** Fingerprint (`SHA256:...`, as `ssh-keygen -l` prints it) of the ED25519 host key, the type clients negotiate first by default. */
  readonly hostKeyFingerprint: string;
  /** Every host key the server offers (RSA, ECDSA, ED25519), with its type and fingerprint. */
  readonly hostKeys: readonly HostKey[];
  /** Whether SFTP rename works (false on an object store, as on Transfer Family over S3). */
  readonly renames: boolean;
  /** Kills every live SFTP session, leaving the listener up. */
  killSessions(): void;
  stop(): Promise<void>;
}

/**
 * Arguments for OpenSSH's `sftp` in batch mode (commands on stdin) against a test server, logging in as
 * `user` with the server's client key and checking host keys against `knownHosts` (`strict: false`
 * accepts and records unknown ones).
 */
export function sftpClientArgs(server: SftpServer, knownHosts: string, options: { user?: string; strict?: boolean; quiet?: boolean } = {}): string[] {
  return [
    ...(options.quiet ? ['-q'] : []),
    '-b',
    '-',
    '-P',
    String(server.port),
    '-i',
    server.privateKeyFile,
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    ...(options.strict === false ? ['-o', 'StrictHostKeyChecking=no'] : []),
    `${options.user ?? server.user}@${server.host}`,
  ];
}

/** What a started SFTP test server is, besides its process and the files it was started with. */
export interface ListeningServer {
  readonly kind: SftpKind;
  readonly name: string;
  readonly child: ChildProcess;
  readonly port: number;
  readonly log: string;
  /** The server's temp folder, removed when it stops. */
  readonly dir: string;
  readonly user: string;
  readonly root: string;
  readonly clientKey: string;
  readonly hostKeys: readonly HostKey[];
  readonly renames: boolean;
  readonly killSessions: () => void;
}

/** Waits until the server listens (stopping it and removing its folder if it never does), then describes it. */
export async function listening(s: ListeningServer): Promise<SftpServer> {
  try {
    await waitForPort(s.port, s.child, s.log, s.name);
  } catch (e) {
    await stopChild(s.child, s.dir);
    throw e;
  }
  return {
    kind: s.kind,
    host: '127.0.0.1',
    port: s.port,
    user: s.user,
    root: s.root,
    privateKey: fs.readFileSync(s.clientKey, 'utf8'),
    privateKeyFile: s.clientKey,
    hostKeyFingerprint: s.hostKeys.find((k) => k.type === 'ssh-ed25519')!.fingerprint,
    hostKeys: s.hostKeys,
    renames: s.renames,
    killSessions: s.killSessions,
    stop: () => stopChild(s.child, s.dir),
  };
}

/** Stops a listener with SIGTERM, then removes its temp folder. */
export function stopChild(child: ChildProcess, dir: string): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      fs.rmSync(dir, { recursive: true, force: true });
      resolve();
    };
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once('exit', done);
    child.kill('SIGTERM');
  });
}

/** Kills the children of `pid` (per-connection server processes), if any. */
export function killChildren(pid: number | undefined): void {
  // The whole tree below the listener: OpenSSH's session runs in a grandchild (`[priv]` monitor ->
  // `user@notty` -> internal-sftp) that outlives a killed monitor and keeps serving the connection.
  const below = (p: string): string[] => {
    let kids: string[] = [];
    try {
      kids = execFileSync('pgrep', ['-P', p], { encoding: 'utf8' }).split('\n').filter(Boolean);
    } catch {
      // pgrep exits 1 when there are none.
    }
    return kids.flatMap((k) => [k, ...below(k)]);
  };
  const tree = pid === undefined ? [] : below(String(pid));
  if (tree.length === 0) return;
  try {
    execFileSync('kill', ['-KILL', ...tree]);
  } catch {
    // some exited on their own meanwhile
  }
}

/** A temp folder for a server, with its client key pair and the served folder `files/`. */
export async function serverDir(prefix: string, root?: string) {
  const account = await sftpAccount();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  traversable(dir, account);
  const files = root ?? path.join(dir, 'files');
  serveFolder(files, account);
  const clientKey = path.join(dir, 'client_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test-client', '-f', clientKey]);
  return { account, dir, root: files, clientKey, port: await freePort() };
}

export async function startSshd(options: { root?: string } = {}): Promise<SftpServer> {
  const sshd = '/usr/sbin/sshd';
  if (!fs.existsSync(sshd)) throw new Error('sshd not found: install Debian openssh-server (see README, test command)');
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const { account, dir, root, clientKey, port } = await serverDir('sshd-', options.root);
  const hostKeys = makeHostKeys(dir);
  // sshd reads AuthorizedKeysFile with the account's privileges: readable by it, in a folder it can reach.
  const authorized = path.join(dir, 'authorized_keys');
  fs.copyFileSync(`${clientKey}.pub`, authorized);
  fs.chmodSync(authorized, 0o644);
  const config = path.join(dir, 'sshd_config');
  fs.writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      ...hostKeys.map((k) => `HostKey ${k.file}`),
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorized}`,
      `AllowUsers ${account.name}`,
      'StrictModes no',
      'UsePAM no',
      'PermitRootLogin no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'MaxSessions 100',
      'MaxStartups 100:30:200',
      'Subsystem sftp internal-sftp',
      `ForceCommand internal-sftp -d ${root}`,
      'LogLevel INFO',
      '',
    ].join('\n'),
  );
  const log = path.join(dir, 'sshd.log');
  const child = spawn(sshd, ['-D', '-f', config, '-E', log], { stdio: 'ignore' });
  return listening({
    kind: 'openssh',
    name: 'sshd',
    child,
    port,
    log,
    dir,
    user: account.name,
    root,
    clientKey,
    hostKeys,
    renames: true,
    // Per-connection processes are children of the listener.
    killSessions: () => killChildren(child.pid),
  });
}
