/**
 * Builds and runs the project's container images offline, for tests.
 *
 * There is no Docker engine here and base images cannot be pulled, so:
 * - `baseImage()` makes a base once (cached in buildah's store): Debian bookworm from Debian's packages
 *   (debootstrap --variant=minbase) plus this machine's node and npm and its CA bundle (npm reaches the
 *   registry through this machine's TLS trust). It stands in for `node:20-bookworm-slim`.
 * - `buildImage()` runs `buildah build --isolation chroot` with `--build-arg BASE_IMAGE=<that base>`.
 * - `runInImage()` runs the image's entrypoint as the image's user, in its working directory, with its
 *   environment. `buildah run` has no read-only root, so with `readOnlyRoot` the image filesystem is
 *   mounted, bind-remounted read-only in a private mount namespace and entered with chroot; volumes are
 *   bind mounts on top (as ECS does with `readonlyRootFilesystem` plus a mounted volume).
 * Containers share the host network, so servers started by tests on 127.0.0.1 are reachable.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const BASE_TAG = `localhost/pipeline-test-base:bookworm-node${process.versions.node}`;
const LOCK = path.join(os.tmpdir(), 'pipeline-test-base.lock');

function sh(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): string {
  const res = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...opts });
  if (res.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${res.status ?? res.signal}):\n${res.stderr}\n${res.stdout}`.slice(0, 8000));
  }
  return res.stdout;
}

function imageExists(tag: string): boolean {
  return spawnSync('buildah', ['inspect', '--type', 'image', tag], { stdio: 'ignore' }).status === 0;
}

async function withLock<T>(fn: () => T): Promise<T> {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      fs.mkdirSync(LOCK);
      break;
    } catch {
      // A lock older than 10 minutes belongs to a dead process.
      const age = Date.now() - (fs.statSync(LOCK, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 10 * 60_000) fs.rmSync(LOCK, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${LOCK}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(LOCK, { recursive: true, force: true });
  }
}

/** The local stand-in for node:20-bookworm-slim; built once per machine (about 30 s). */
export async function baseImage(): Promise<string> {
  if (imageExists(BASE_TAG)) return BASE_TAG;
  return withLock(() => {
    if (imageExists(BASE_TAG)) return BASE_TAG;
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'base-image-'));
    try {
      const rootfs = path.join(work, 'rootfs');
      sh('debootstrap', ['--variant=minbase', 'bookworm', rootfs, 'http://deb.debian.org/debian']);
      const nodeBin = fs.realpathSync(process.execPath);
      fs.copyFileSync(nodeBin, path.join(rootfs, 'usr/bin/node'));
      fs.chmodSync(path.join(rootfs, 'usr/bin/node'), 0o755);
      const npmDir = path.resolve(path.dirname(fs.realpathSync(sh('sh', ['-c', 'command -v npm']).trim())), '..');
      fs.mkdirSync(path.join(rootfs, 'usr/lib/node_modules'), { recursive: true });
      sh('cp', ['-a', npmDir, path.join(rootfs, 'usr/lib/node_modules/npm')]);
      fs.symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(rootfs, 'usr/bin/npm'));
      fs.symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(rootfs, 'usr/bin/npx'));
      fs.mkdirSync(path.join(rootfs, 'etc/ssl/certs'), { recursive: true });
      fs.copyFileSync('/etc/ssl/certs/ca-certificates.crt', path.join(rootfs, 'etc/ssl/certs/ca-certificates.crt'));
      fs.writeFileSync(path.join(rootfs, 'etc/npmrc'), 'cafile=/etc/ssl/certs/ca-certificates.crt\nfund=false\naudit=false\nupdate-notifier=false\n');
      fs.rmSync(path.join(rootfs, 'var/cache/apt/archives'), { recursive: true, force: true });
      sh('tar', ['-C', rootfs, '-cf', path.join(work, 'rootfs.tar'), '.']);
      fs.writeFileSync(
        path.join(work, 'Containerfile'),
        'FROM scratch\nADD rootfs.tar /\nENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt\nCMD ["/bin/bash"]\n',
      );
      sh('buildah', ['build', '--isolation', 'chroot', '-q', '-f', path.join(work, 'Containerfile'), '-t', BASE_TAG, work]);
      return BASE_TAG;
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
}

/** Builds `contextDir`'s Dockerfile on the local base image. */
export async function buildImage(contextDir: string, tag: string): Promise<void> {
  const base = await baseImage();
  sh('buildah', ['build', '--isolation', 'chroot', '--pull=never', '-q', '--build-arg', `BASE_IMAGE=${base}`, '-t', tag, contextDir]);
}

export interface ImageConfig {
  user: string;
  workingDir: string;
  entrypoint: string[];
  cmd: string[];
  env: Record<string, string>;
}

export function imageConfig(tag: string): ImageConfig {
  const c = JSON.parse(sh('buildah', ['inspect', '--type', 'image', tag])).OCIv1.config ?? {};
  const env: Record<string, string> = {};
  for (const kv of c.Env ?? []) env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
  return { user: c.User ?? '', workingDir: c.WorkingDir || '/', entrypoint: c.Entrypoint ?? [], cmd: c.Cmd ?? [], env };
}

export interface RunOptions {
  /** Extra environment on top of the image's. */
  env?: Record<string, string>;
  /** Host folders bind-mounted into the container. */
  volumes?: { host: string; container: string; readOnly?: boolean }[];
  /** Mount the image filesystem read-only (ECS readonlyRootFilesystem). @default false */
  readOnlyRoot?: boolean;
  /** Arguments after the entrypoint (replace the image's CMD). */
  args?: string[];
  /** Replace the entrypoint. */
  entrypoint?: string[];
  input?: string;
  timeoutMs?: number;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the image like a container runtime would: entrypoint + args, as the image's user, in its workdir. */
export function runInImage(tag: string, options: RunOptions = {}): Promise<RunResult> {
  const cfg = imageConfig(tag);
  const argv = [...(options.entrypoint ?? cfg.entrypoint), ...(options.args ?? (options.entrypoint ? [] : cfg.cmd))];
  const env = { ...cfg.env, ...(options.env ?? {}) };
  const container = sh('buildah', ['from', '--pull-never', '-q', tag]).trim();
  const cleanup = () => spawnSync('buildah', ['rm', container], { stdio: 'ignore' });
  let cmd: string;
  let args: string[];
  if (options.readOnlyRoot) {
    const mnt = sh('buildah', ['mount', container]).trim();
    const userspec = cfg.user && cfg.user.includes(':') ? cfg.user : cfg.user ? `${cfg.user}:${cfg.user}` : '0:0';
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const script = [
      'set -e',
      'mount --make-rprivate /',
      `mount --bind ${q(mnt)} ${q(mnt)}`,
      `mount -o remount,bind,ro ${q(mnt)}`,
      `mount -t proc proc ${q(mnt + '/proc')}`,
      `mount --rbind /dev ${q(mnt + '/dev')}`,
      ...(options.volumes ?? []).flatMap((v) => [
        `mount --bind ${q(v.host)} ${q(mnt + v.container)}`,
        ...(v.readOnly ? [`mount -o remount,bind,ro ${q(mnt + v.container)}`] : []),
      ]),
      `exec chroot --userspec=${userspec} ${q(mnt)} /usr/bin/env -i ${Object.entries(env)
        .map(([k, v]) => q(`${k}=${v}`))
        .join(' ')} /bin/sh -c ${q(`cd ${cfg.workingDir} && exec "$@"`)} sh ${argv.map(q).join(' ')}`,
    ].join('\n');
    cmd = 'unshare';
    args = ['--mount', '--fork', 'sh', '-c', script];
  } else {
    cmd = 'buildah';
    args = [
      'run',
      '--isolation',
      'chroot',
      '--workingdir',
      cfg.workingDir,
      ...(cfg.user ? ['--user', cfg.user] : []),
      ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
      ...(options.volumes ?? []).flatMap((v) => ['--volume', `${v.host}:${v.container}${v.readOnly ? ':ro' : ''}`]),
      container,
      '--',
      ...argv,
    ];
  }
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(options.input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      cleanup();
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (options.readOnlyRoot) spawnSync('buildah', ['umount', container], { stdio: 'ignore' });
      cleanup();
      resolve({ code, signal, stdout, stderr });
    });
  });
}
