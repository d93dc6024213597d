// GIVEN a machine without OpenSSH's sshd on PATH WHEN `npm run local` runs THEN it says in one line what
// to install and exits 2, with no stack trace and before starting anything.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findOnPath, missingPrograms, OPENSSH } from '../tools/servers/prerequisites';

const repo = path.resolve(__dirname, '..');
const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'prereq-bin-'));
afterAll(() => fs.rmSync(bin, { recursive: true, force: true }));

// A PATH with node and npm and the usual /usr/bin:/bin, but no sbin folder: sshd is in /usr/sbin.
const nodeDir = path.dirname(process.execPath);
const withoutSbin = [nodeDir, '/usr/bin', '/bin'].join(path.delimiter);

test('GIVEN folders on PATH WHEN looking up a program THEN only an executable file counts', () => {
  fs.writeFileSync(path.join(bin, 'tool'), '#!/bin/sh\n', { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'plain'), 'not executable\n', { mode: 0o644 });
  fs.mkdirSync(path.join(bin, 'folder'), { mode: 0o755 });
  const env = { PATH: ['/nonexistent', bin].join(path.delimiter) };
  expect(findOnPath('tool', env)).toBe(path.join(bin, 'tool'));
  expect(findOnPath('plain', env)).toBeUndefined();
  expect(findOnPath('folder', env)).toBeUndefined();
  expect(findOnPath('tool', {})).toBeUndefined();
});

test.each([
  [
    'neither',
    '/nonexistent',
    'needs sshd and ssh-keygen (OpenSSH), not found on PATH: install with `sudo apt-get install openssh-server openssh-client` (Debian/Ubuntu), or add the folder holding them',
  ],
  [
    'no sshd',
    withoutSbin,
    'needs sshd (OpenSSH), not found on PATH: install with `sudo apt-get install openssh-server` (Debian/Ubuntu), or add the folder holding it (sshd: usually /usr/sbin) to PATH',
  ],
])('GIVEN %s on PATH THEN the message names what is missing and the package', (_name, PATH, message) => {
  expect(missingPrograms('npm run local', OPENSSH, { PATH })).toContain(`npm run local ${message}`);
});

test('GIVEN this machine PATH (sshd installed, see scripts/test.sh) THEN nothing is missing', () => {
  expect(missingPrograms('npm run local', OPENSSH, { PATH: `${process.env.PATH}${path.delimiter}/usr/sbin` })).toBeUndefined();
});

test('GIVEN PATH without sshd WHEN npm run local runs THEN one line on stderr says what to install, exit 2, no stack trace', () => {
  const env = { ...process.env, PATH: withoutSbin, CDKTF_OUTDIR: path.join(bin, 'cdktf.out') };
  expect(findOnPath('sshd', env)).toBeUndefined();
  const res = spawnSync('npm', ['run', '--silent', 'local'], { cwd: repo, env, encoding: 'utf8', timeout: 300_000 });
  expect({ status: res.status, stderr: res.stderr.trim().split('\n') }).toEqual({
    status: 2,
    stderr: [
      'npm run local needs sshd (OpenSSH), not found on PATH: install with `sudo apt-get install openssh-server` (Debian/Ubuntu), or add the folder holding it (sshd: usually /usr/sbin) to PATH',
    ],
  });
  expect(res.stdout).not.toMatch(/synthesizing|sshd on/);
  expect(fs.existsSync(path.join(bin, 'cdktf.out'))).toBe(false);
}, 300_000);
