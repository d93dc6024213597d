/**
 * A real OpenSSH sshd (Debian's openssh-server) serving SFTP on 127.0.0.1 for tests.
 *
 * Own temp config, host key and client key; logs in as the current user (root in CI) with a
 * temporary AuthorizedKeysFile. Pitfalls handled: /run/sshd must exist, `StrictModes no` under /tmp,
 * `UsePAM no`, and `ForceCommand internal-sftp -d DIR` rather than a chroot under /tmp.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export interface SftpServer {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** The folder SFTP sessions start in (the "remote folder" as a local path). */
  readonly root: string;
  /** Client private key (OpenSSH PEM text) and its file. */
  readonly privateKey: string;
  readonly privateKeyFile: string;
  /** The server host key's fingerprint, `SHA256:...` as `ssh-keygen -l` prints it. */
  readonly hostKeyFingerprint: string;
  /** Kills every live SFTP session (the per-connection sshd processes), leaving the listener up. */
  killSessions(): void;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function waitForPort(port: number, child: ChildProcess, log: string, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null) return reject(new Error(`sshd exited: ${fs.readFileSync(log, 'utf8')}`));
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve();
      });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`sshd did not listen on ${port}`));
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

export async function startSshd(options: { root?: string } = {}): Promise<SftpServer> {
  const sshd = '/usr/sbin/sshd';
  if (!fs.existsSync(sshd)) throw new Error('sshd not found: install Debian openssh-server (see README, test command)');
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshd-'));
  const root = options.root ?? path.join(dir, 'files');
  fs.mkdirSync(root, { recursive: true });
  const hostKey = path.join(dir, 'host_ed25519');
  const clientKey = path.join(dir, 'client_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', clientKey]);
  const authorized = path.join(dir, 'authorized_keys');
  fs.copyFileSync(`${clientKey}.pub`, authorized);
  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  fs.writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorized}`,
      'StrictModes no',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
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
  await waitForPort(port, child, log);
  const user = os.userInfo().username;
  return {
    host: '127.0.0.1',
    port,
    user,
    root,
    privateKey: fs.readFileSync(clientKey, 'utf8'),
    privateKeyFile: clientKey,
    hostKeyFingerprint: fingerprintOf(`${hostKey}.pub`),
    killSessions() {
      // Per-connection processes are children of the listener.
      try {
        execFileSync('pkill', ['-KILL', '-P', String(child.pid)]);
      } catch {
        // pkill exits 1 when there was no session to kill.
      }
    },
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          fs.rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null) return done();
        child.once('exit', done);
        child.kill('SIGTERM');
      }),
  };
}
