// GIVEN the shared test servers WHEN started THEN they serve real S3 and SFTP on 127.0.0.1.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startS3 } from '../tools/servers/s3';
import { startSshd } from '../tools/servers/sshd';

test('the S3 stand-in stores, lists (paged) and returns objects', async () => {
  const s3 = await startS3(['b']);
  try {
    for (let i = 0; i < 1005; i++) await s3.put('b', `k/${String(i).padStart(4, '0')}`, `v${i}`);
    expect((await s3.keys('b', 'k/')).length).toBe(1005);
    expect((await s3.get('b', 'k/0007')).toString()).toBe('v7');
  } finally {
    await s3.dispose();
  }
});

test('sshd serves SFTP from its root with key auth and a known host key', async () => {
  const sftp = await startSshd();
  try {
    fs.writeFileSync(path.join(sftp.root, 'hello.txt'), 'hi');
    const knownHosts = path.join(path.dirname(sftp.privateKeyFile), 'known_hosts');
    execFileSync('sh', ['-c', `ssh-keyscan -p ${sftp.port} 127.0.0.1 > ${knownHosts} 2>/dev/null`]);
    const out = execFileSync(
      'sftp',
      ['-b', '-', '-P', String(sftp.port), '-i', sftp.privateKeyFile, '-o', `UserKnownHostsFile=${knownHosts}`, `${sftp.user}@127.0.0.1`],
      { input: 'ls -1\n', encoding: 'utf8' },
    );
    expect(out).toContain('hello.txt');
    expect(sftp.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  } finally {
    await sftp.stop();
  }
});
