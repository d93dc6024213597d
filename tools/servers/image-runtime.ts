/**
 * How tests and benchmarks run an image's entrypoint outside a container: on the Node release the
 * images ship (BASE_NODE_VERSION), with the node flags of the image's Dockerfile, so memory bounds,
 * timings and runtime behaviour hold for what ships, whatever Node runs the tooling.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../../scripts/paths';

/**
 * The Node version of the base the Dockerfiles pin (node:24-bookworm-slim@sha256:2356...; its image
 * config says NODE_VERSION=24.18.1, see images/converter/Dockerfile). Change it with that digest.
 */
export const BASE_NODE_VERSION = '24.18.1';

export const IMAGE_NAMES = ['converter', 'sftp-lister'] as const;
export type ImageName = (typeof IMAGE_NAMES)[number];
export const isImageName = (name: string): name is ImageName => (IMAGE_NAMES as readonly string[]).includes(name);

function sh(cmd: string, args: string[], cwd: string): string {
  const res = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, cwd });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${res.status ?? res.signal}):\n${res.stderr}`.slice(0, 8000));
  return res.stdout;
}

/** Extracts Node BASE_NODE_VERSION's official binary into `dir`; returns its path. */
export function packShippedNode(dir: string): string {
  // npm verifies the tarball against the registry's integrity hash; the package holds bin/node only.
  const pkg = `node-linux-${process.arch}@${BASE_NODE_VERSION}`;
  const [packed] = JSON.parse(sh('npm', ['pack', pkg, '--json', '--loglevel=error'], dir)) as { filename: string }[];
  sh('tar', ['-xzf', path.join(dir, packed.filename), '-C', dir, 'package/bin/node'], dir);
  return path.join(dir, 'package/bin/node');
}

/** The Node binary the images ship (BASE_NODE_VERSION), fetched once per machine into the temp directory. */
export function shippedNode(): string {
  const cached = path.join(os.tmpdir(), `pipeline-node-${BASE_NODE_VERSION}-${process.arch}`, 'node');
  if (fs.existsSync(cached)) return cached;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shipped-node-'));
  try {
    const bin = packShippedNode(work);
    fs.mkdirSync(path.dirname(cached), { recursive: true });
    fs.renameSync(bin, cached); // atomic: a concurrent caller sees the whole binary or none
    return cached;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Node flags the image runs with (its Dockerfile: ENTRYPOINT ["node", FLAGS..., script] and
 * ENV NODE_OPTIONS=...).
 */
export function imageNodeFlags(image: ImageName): string[] {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'images', image, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const entry = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(text);
  const argv = entry ? (JSON.parse(entry[1]) as string[]) : [];
  const flags = argv[0] === 'node' ? argv.slice(1, -1) : [];
  const opts = /\bNODE_OPTIONS=("([^"]*)"|\S+)/.exec(text);
  return [...flags, ...(opts ? (opts[2] ?? opts[1]).split(/\s+/).filter(Boolean) : [])];
}

/** `[node, ...flags]` to run a script of `image` as the image runs it. */
export function imageNode(image: ImageName): [string, ...string[]] {
  return [shippedNode(), ...imageNodeFlags(image)];
}
