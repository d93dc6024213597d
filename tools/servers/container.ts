/**
 * Builds and runs the project's container images offline, for tests.
 *
 * There is no Docker engine here and base images cannot be pulled, so:
 * - `baseImage()` makes a base once (cached in buildah's store): Debian bookworm from Debian's packages
 *   (debootstrap --variant=minbase), the Node release the Dockerfiles' pinned base ships (BASE_NODE_VERSION,
 *   from the npm registry's `node-linux-<arch>` package, which carries Node's official binary) in
 *   /usr/local/bin as in the official image, this machine's npm and its CA bundle (npm reaches the
 *   registry through this machine's TLS trust). It stands in for `node:24-bookworm-slim`, so the
 *   container tests run the major version that ships, whatever Node runs the tooling.
 * - `buildImage()` runs `buildah build --isolation chroot` with `--build-arg BASE_IMAGE=<that base>`.
 * - `runTask()` runs the image as Fargate runs a container of a task definition (`fargateTask()` reads
 *   one from synthesized Terraform): its user (never root), its read-only root (the image filesystem
 *   mounted, bind-remounted read-only in a private mount namespace and entered with chroot), and its
 *   mount points backed by new task volumes with ECS's ownership rules (root 0755 and empty, unless the
 *   image declares a VOLUME there). `buildah run` can do neither a read-only root nor those volumes.
 * Containers share the host network, so servers started by tests on 127.0.0.1 are reachable.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { synthesize } from '../local-sfn/synthesized';
import { BASE_NODE_VERSION, packShippedNode } from './image-runtime';
import { parseWithRefs, readStack } from '../tf-json';

const BASE_TAG = `localhost/pipeline-test-base:bookworm-node${BASE_NODE_VERSION}`;
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

/** The local stand-in for node:24-bookworm-slim; built once per machine (about a minute). */
export async function baseImage(): Promise<string> {
  if (imageExists(BASE_TAG)) return BASE_TAG;
  return withLock(() => {
    if (imageExists(BASE_TAG)) return BASE_TAG;
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'base-image-'));
    try {
      const rootfs = path.join(work, 'rootfs');
      sh('debootstrap', ['--variant=minbase', 'bookworm', rootfs, 'http://deb.debian.org/debian']);
      fs.copyFileSync(packShippedNode(work), path.join(rootfs, 'usr/local/bin/node'));
      fs.chmodSync(path.join(rootfs, 'usr/local/bin/node'), 0o755);
      // npm is tooling (it installs the images' locked dependencies), not the runtime that ships.
      const npmDir = path.resolve(path.dirname(fs.realpathSync(sh('sh', ['-c', 'command -v npm']).trim())), '..');
      fs.mkdirSync(path.join(rootfs, 'usr/local/lib/node_modules'), { recursive: true });
      sh('cp', ['-a', npmDir, path.join(rootfs, 'usr/local/lib/node_modules/npm')]);
      fs.symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(rootfs, 'usr/local/bin/npm'));
      fs.symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(rootfs, 'usr/local/bin/npx'));
      fs.mkdirSync(path.join(rootfs, 'etc/ssl/certs'), { recursive: true });
      fs.copyFileSync('/etc/ssl/certs/ca-certificates.crt', path.join(rootfs, 'etc/ssl/certs/ca-certificates.crt'));
      fs.mkdirSync(path.join(rootfs, 'usr/local/etc'), { recursive: true });
      fs.writeFileSync(path.join(rootfs, 'usr/local/etc/npmrc'), 'cafile=/etc/ssl/certs/ca-certificates.crt\nfund=false\naudit=false\nupdate-notifier=false\n');
      fs.rmSync(path.join(rootfs, 'var/cache/apt/archives'), { recursive: true, force: true });
      sh('tar', ['-C', rootfs, '-cf', path.join(work, 'rootfs.tar'), '.']);
      fs.writeFileSync(
        path.join(work, 'Containerfile'),
        'FROM scratch\nADD rootfs.tar /\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt\nCMD ["/bin/bash"]\n',
      );
      sh('buildah', ['build', '--isolation', 'chroot', '-q', '-f', path.join(work, 'Containerfile'), '-t', BASE_TAG, work]);
      return BASE_TAG;
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
}

/** Builds `contextDir`'s Dockerfile on the local base image (unchanged steps come from buildah's layer cache). */
export async function buildImage(contextDir: string, tag: string): Promise<void> {
  const base = await baseImage();
  sh('buildah', ['build', '--isolation', 'chroot', '--pull=never', '--layers', '-q', '--build-arg', `BASE_IMAGE=${base}`, '-t', tag, contextDir]);
}

/** A container path without `.`/`..` segments or trailing slash, as VOLUME and containerPath are compared. */
const containerPathOf = (p: string) => path.posix.normalize(p).replace(/(.)\/$/, '$1');

export interface ImageConfig {
  user: string;
  workingDir: string;
  entrypoint: string[];
  cmd: string[];
  env: Record<string, string>;
  /** Paths the image declares with VOLUME. */
  volumes: string[];
}

export function imageConfig(tag: string): ImageConfig {
  const c = JSON.parse(sh('buildah', ['inspect', '--type', 'image', tag])).OCIv1.config ?? {};
  const env: Record<string, string> = {};
  for (const kv of c.Env ?? []) env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
  return {
    user: c.User ?? '',
    workingDir: c.WorkingDir || '/',
    entrypoint: c.Entrypoint ?? [],
    cmd: c.Cmd ?? [],
    env,
    volumes: Object.keys(c.Volumes ?? {}).map(containerPathOf),
  };
}

/** The parts of an ECS container definition the harness honours (names as in the ECS API). */
export interface ContainerDefinition {
  name: string;
  user?: string;
  readonlyRootFilesystem?: boolean;
  mountPoints?: { sourceVolume: string; containerPath: string; readOnly?: boolean }[];
  environment?: { name: string; value: string }[];
}

/** What a Fargate task runs: one container of a task definition and the task's volumes. */
export interface FargateTask {
  container: ContainerDefinition;
  /** Task volumes; on Fargate a volume with only a name is a bind volume on the task's ephemeral storage. */
  volumes: { name: string; [other: string]: unknown }[];
}

/** Reads a synthesized `aws_ecs_task_definition` (cdk.tf.json) into what its container runs with. */
export function fargateTask(taskDefinition: { container_definitions: string; volume?: { name: string }[] }, containerName?: string): FargateTask {
  // Terraform expressions in the JSON may hold quotes.
  const containers = parseWithRefs<ContainerDefinition[]>(taskDefinition.container_definitions);
  const container = containerName ? containers.find((c) => c.name === containerName) : containers.length === 1 ? containers[0] : undefined;
  if (!container) throw new Error(`task definition has no container ${containerName ?? '(several, name one)'}: ${containers.map((c) => c.name).join(', ')}`);
  return { container, volumes: taskDefinition.volume ?? [] };
}

/** The container of `stack`'s only task definition as the real app synthesizes it (default settings). */
export function synthesizedTask(stack: 'ingest' | 'batch'): FargateTask {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'synth-task-'));
  try {
    synthesize(outdir);
    return fargateTask(readStack(outdir, stack).only('aws_ecs_task_definition') as Parameters<typeof fargateTask>[0]);
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

export interface TaskRunOptions {
  /** Environment on top of the image's and the container definition's literal values; undefined removes. */
  env?: Record<string, string | undefined>;
  /** Arguments after the entrypoint (ECS `command`: replace the image's CMD). */
  args?: string[];
  /** Replace the entrypoint (ECS `entryPoint`). */
  entrypoint?: string[];
  /** Test inputs only (Fargate has no host paths): host folders bind-mounted into the container. */
  hostMounts?: { host: string; container: string; readOnly?: boolean }[];
  input?: string;
  timeoutMs?: number;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Host folder backing each task volume mount point, by container path (removed by disposeVolumes). */
  volumes: Record<string, string>;
}

const volumeDirs: string[] = [];

/** Removes the host folders of every task volume made so far (ECS drops them when the task stops). */
export function disposeVolumes(): void {
  for (const dir of volumeDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

/** Whether a `user[:group]` spec names root (uid 0 or the name). */
function isRoot(user: string): boolean {
  return /^(0|root)$/.test(user.split(':')[0]);
}

/**
 * Runs the image as Fargate runs `task`'s container: entrypoint + args in the image's workdir, as the
 * container definition's user (else the image's; never root: the project's rule, and what would hide
 * permission bugs), the root filesystem read-only when the definition says so, and each mount point
 * backed by a new task volume.
 *
 * A bind volume on Fargate starts as an empty directory owned by root with mode 0755, unless the image
 * declares a VOLUME at the mount point's containerPath: then the image directory's content is copied
 * into it, and its owner and mode come from the image
 * (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html, "Considerations when
 * using bind mounts"). Mount points that do not exist in the image are created before the root is made
 * read-only, as container runtimes do.
 */
export function runTask(tag: string, task: FargateTask, options: TaskRunOptions = {}): Promise<RunResult> {
  const cfg = imageConfig(tag);
  const c = task.container;
  const user = c.user || cfg.user;
  if (!user || isRoot(user)) {
    throw new Error(
      `${tag} (container ${c.name}) would run as root (container user ${JSON.stringify(c.user ?? '')}, image USER ${JSON.stringify(cfg.user)}): tasks here never run as root`,
    );
  }
  // A uid without a group runs with gid 0 in Docker/ECS; the images always name both.
  const userspec = user.includes(':') ? user : `${user}:0`;
  const argv = [...(options.entrypoint ?? cfg.entrypoint), ...(options.args ?? (options.entrypoint ? [] : cfg.cmd))];
  const env: Record<string, string | undefined> = { ...cfg.env };
  // Terraform references (${...}) in the synthesized environment have no value here: the test supplies them.
  for (const e of c.environment ?? []) if (!e.value.includes('${')) env[e.name] = e.value;
  Object.assign(env, options.env ?? {});

  const container = sh('buildah', ['from', '--pull-never', '-q', tag]).trim();
  let mnt = '';
  const cleanup = () => {
    if (mnt) spawnSync('buildah', ['umount', container], { stdio: 'ignore' });
    spawnSync('buildah', ['rm', container], { stdio: 'ignore' });
  };
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const volumes: Record<string, string> = {};
  let script: string;
  try {
    mnt = sh('buildah', ['mount', container]).trim();
    const byVolume = new Map<string, string>();
    for (const mp of c.mountPoints ?? []) {
      const vol = task.volumes.find((v) => v.name === mp.sourceVolume);
      if (!vol) throw new Error(`container ${c.name} mounts volume ${mp.sourceVolume}, which the task does not define`);
      const extra = Object.keys(vol).filter((k) => k !== 'name');
      if (extra.length) throw new Error(`volume ${vol.name}: only Fargate bind volumes (a name, nothing else) are emulated, not ${extra.join(', ')}`);
      const containerPath = containerPathOf(mp.containerPath);
      let dir = byVolume.get(vol.name);
      if (!dir) {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), `fargate-volume-${vol.name}-`));
        volumeDirs.push(dir);
        byVolume.set(vol.name, dir);
        const fromImage = path.join(mnt, containerPath);
        const st = cfg.volumes.includes(containerPath) ? fs.statSync(fromImage, { throwIfNoEntry: false }) : undefined;
        if (st?.isDirectory()) {
          sh('cp', ['-a', '--', `${fromImage}/.`, dir]);
          fs.chownSync(dir, st.uid, st.gid);
          fs.chmodSync(dir, st.mode & 0o7777);
        } else {
          fs.chownSync(dir, 0, 0);
          fs.chmodSync(dir, 0o755);
        }
      }
      volumes[containerPath] = dir;
    }
    const binds = [
      ...(c.mountPoints ?? []).map((mp) => ({ host: byVolume.get(mp.sourceVolume)!, container: mp.containerPath, readOnly: mp.readOnly })),
      ...(options.hostMounts ?? []),
    ];
    script = [
      'set -e',
      'mount --make-rprivate /',
      `mount --bind ${q(mnt)} ${q(mnt)}`,
      ...binds.map((b) => `mkdir -p ${q(mnt + b.container)}`),
      ...(c.readonlyRootFilesystem ? [`mount -o remount,bind,ro ${q(mnt)}`] : []),
      `mount -t proc proc ${q(mnt + '/proc')}`,
      `mount --rbind /dev ${q(mnt + '/dev')}`,
      ...binds.flatMap((b) => [
        `mount --bind ${q(b.host)} ${q(mnt + b.container)}`,
        ...(b.readOnly ? [`mount -o remount,bind,ro ${q(mnt + b.container)}`] : []),
      ]),
      `exec chroot --userspec=${userspec} ${q(mnt)} /usr/bin/env -i ${Object.entries(env)
        .filter((e): e is [string, string] => e[1] !== undefined)
        .map(([k, v]) => q(`${k}=${v}`))
        .join(' ')} /bin/sh -c ${q(`cd ${cfg.workingDir} && exec "$@"`)} sh ${argv.map(q).join(' ')}`,
    ].join('\n');
  } catch (e) {
    cleanup();
    throw e;
  }
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['--mount', '--fork', 'sh', '-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
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
      cleanup();
      resolve({ code, signal, stdout, stderr, volumes });
    });
  });
}
