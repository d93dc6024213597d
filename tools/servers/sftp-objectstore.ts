/**
 * An SFTP server that behaves like AWS Transfer Family on Amazon S3 (sftp-objectstore.py, on Debian's
 * python3-asyncssh): no rename, uploads visible only once complete, mtime = upload time, no in-place
 * or partial writes, SETSTAT refused. Same `SftpServer` interface as the OpenSSH one; the server
 * process runs as the non-root test account, `/` is the served folder (a logical home, as Transfer's).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeHostKeys } from './sftp-account';
import { listening, serverDir, SftpServer } from './sshd';

const PYTHON = '/usr/bin/python3'; // Debian's, where python3-asyncssh is installed (not a pyenv shim)
const SCRIPT = [path.join(__dirname, 'sftp-objectstore.py'), path.resolve(__dirname, '../../../tools/servers/sftp-objectstore.py')].find((f) =>
  fs.existsSync(f),
)!;

export async function startObjectStoreSftp(options: { root?: string } = {}): Promise<SftpServer> {
  if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} not found: install Debian python3-asyncssh (scripts/test.sh does)`);
  const { account, dir, root, clientKey, port } = await serverDir('sftp-objectstore-', options.root);
  const hostKeys = makeHostKeys(dir);
  const staging = path.join(dir, 'staging'); // same filesystem as root: publishing is one rename
  fs.mkdirSync(staging);
  const authorized = path.join(dir, 'authorized_keys');
  fs.copyFileSync(`${clientKey}.pub`, authorized);
  // The server runs as the account: it reads its host keys and writes only staging and root.
  for (const f of [staging, authorized, ...hostKeys.map((k) => k.file)]) fs.chownSync(f, account.uid, account.gid);
  const log = path.join(dir, 'server.log');
  const out = fs.openSync(log, 'a');
  const child = spawn(
    PYTHON,
    ['-W', 'ignore', SCRIPT, String(port), fs.realpathSync(root), staging, authorized, account.name, ...hostKeys.map((k) => k.file)],
    {
      stdio: ['ignore', out, out],
      uid: account.uid,
      gid: account.gid,
      env: { PATH: '/usr/bin:/bin', HOME: dir, PYTHONDONTWRITEBYTECODE: '1' },
    },
  );
  fs.closeSync(out);
  return listening({
    kind: 'objectstore',
    name: 'the object-store SFTP server',
    child,
    port,
    log,
    dir,
    user: account.name,
    root,
    clientKey,
    hostKeys,
    renames: false,
    // Sessions live in the one server process: SIGUSR1 makes it abort them all.
    killSessions: () => void child.kill('SIGUSR1'),
  });
}
