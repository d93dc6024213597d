/**
 * ProFTPD's mod_sftp (Debian proftpd-core + proftpd-mod-crypto) serving SFTP on 127.0.0.1 for tests:
 * a second SFTP implementation beside OpenSSH, with the same `SftpServer` interface. Sessions log in
 * as the non-root test account (see sftp-account.ts) with its public key only; RSA, ECDSA and ED25519
 * host keys; sessions start in the served folder (DefaultChdir, no chroot: as `internal-sftp -d`).
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeHostKeys } from './sftp-account';
import { killChildren, listening, serverDir, SftpServer } from './sshd';

const PROFTPD = '/usr/sbin/proftpd';
const MOD_SFTP = '/usr/lib/proftpd/mod_sftp.so';

export async function startProftpd(options: { root?: string } = {}): Promise<SftpServer> {
  if (!fs.existsSync(PROFTPD) || !fs.existsSync(MOD_SFTP))
    throw new Error('ProFTPD mod_sftp not found: install Debian proftpd-core and proftpd-mod-crypto (scripts/test.sh does)');
  const { account, dir, root, clientKey, port } = await serverDir('proftpd-', options.root);
  // mod_sftp reads PEM host keys (RSA, ECDSA) and OpenSSH-format ED25519 keys.
  const hostKeys = makeHostKeys(dir, true);
  // mod_sftp wants authorized keys in RFC 4716 format; it reads them as the logged-in account.
  const authorized = path.join(dir, 'authorized_keys.rfc4716');
  fs.writeFileSync(authorized, execFileSync('ssh-keygen', ['-e', '-f', `${clientKey}.pub`]));
  fs.chmodSync(authorized, 0o644);
  const log = path.join(dir, 'proftpd.log');
  const config = path.join(dir, 'proftpd.conf');
  fs.writeFileSync(
    config,
    [
      `ModulePath ${path.dirname(MOD_SFTP)}`,
      'LoadModule mod_sftp.c',
      'ServerType standalone',
      'ServerName "sftp test"',
      `Port ${port}`,
      'DefaultAddress 127.0.0.1',
      'SocketBindTight on',
      'UseIPv6 off',
      `PidFile ${path.join(dir, 'proftpd.pid')}`,
      `ScoreboardFile ${path.join(dir, 'proftpd.scoreboard')}`,
      `DelayTable ${path.join(dir, 'proftpd.delay')}`,
      `SystemLog ${log}`,
      'WtmpLog off',
      'TransferLog none',
      'UseReverseDNS off',
      'MaxInstances 200',
      // Sessions run as the account (the master keeps root only to switch to it).
      `User ${account.name}`,
      `Group ${account.name}`,
      // The account's shell is nologin (SFTP only), as a production SFTP account's.
      'RequireValidShell off',
      'AuthOrder mod_auth_unix.c',
      `DefaultChdir ${root}`,
      'AllowOverwrite on',
      'Umask 022',
      'SFTPEngine on',
      `SFTPLog ${path.join(dir, 'sftp.log')}`,
      ...hostKeys.map((k) => `SFTPHostKey ${k.file}`),
      'SFTPAuthMethods publickey',
      `SFTPAuthorizedUserKeys file:${authorized}`,
      'SFTPCompression off',
      '',
    ].join('\n'),
  );
  // Configuration errors go to stderr before SystemLog is open: one file for both.
  const out = fs.openSync(log, 'a');
  const child = spawn(PROFTPD, ['--nodaemon', '-c', config], { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  return listening({
    kind: 'proftpd',
    name: 'proftpd',
    child,
    port,
    log,
    dir,
    user: account.name,
    root,
    clientKey,
    hostKeys,
    renames: true,
    // Each session is a child process of the master.
    killSessions: () => killChildren(child.pid),
  });
}
