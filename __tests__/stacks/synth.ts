// Test support: synthesize the real app graph (stacks/app.ts) into a temp folder and read it back.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'cdktf';
import { buildInfrastructure, Infrastructure } from '../../stacks/app';
import { loadConfig, LoadConfigOptions, PipelineConfig } from '../../stacks/config';
import { readStack as readSynthStack, type StackJson, type SynthStack as TfSynthStack } from '../../tools/tf-json';

// Temp folders made by this module, removed after each test file.
const made: string[] = [];
const tmp = (prefix: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A synthesized stack (tools/tf-json), typed for tests: resources as `any` to reach into. */
export interface SynthStack extends TfSynthStack {
  readonly json: TfJson;
  resources(type: string): Record<string, any>;
  only(type: string): any;
}

/** A stack's cdk.tf.json; every stack here has a `terraform` block. */
export type TfJson = StackJson & { terraform: NonNullable<StackJson['terraform']> };

export interface Synthesized {
  readonly outdir: string;
  readonly config: PipelineConfig;
  readonly infra: Infrastructure;
  readonly stacks: Record<'network' | 'sftp' | 'cluster' | 'images', SynthStack>;
}

/** A base image pinned by digest, as the images stack requires. */
export const TEST_BASE_IMAGE = `node:24-bookworm-slim@sha256:${'ab'.repeat(32)}`;

/** Build contexts standing in for images/ (their content, not their code, is what these tests need). */
export function makeImagesDir(root = tmp('h1-images-')): string {
  for (const dir of ['sftp-lister', 'converter']) {
    fs.mkdirSync(path.join(root, dir, 'src'), { recursive: true });
    fs.writeFileSync(path.join(root, dir, 'Dockerfile'), `ARG BASE_IMAGE=${TEST_BASE_IMAGE}\nFROM \${BASE_IMAGE}\nCOPY src /app\n`);
    fs.writeFileSync(path.join(root, dir, 'src', 'index.js'), `console.log(${JSON.stringify(dir)});\n`);
  }
  return root;
}

/** Reads one stack of a synthesized app back from `outdir/stacks/NAME/cdk.tf.json`. */
export const readStack = (outdir: string, name: string) => readSynthStack(outdir, name) as SynthStack;

export function synthesize(options: LoadConfigOptions = {}, imagesDir = makeImagesDir()): Synthesized {
  const outdir = tmp('h1-synth-');
  const app = new App({ outdir });
  const config = loadConfig({ env: {}, ...options });
  const infra = buildInfrastructure(app, config, { imagesDir });
  app.synth();
  const read = (name: string) => readStack(outdir, name);
  return {
    outdir,
    config,
    infra,
    stacks: { network: read('network'), sftp: read('sftp'), cluster: read('cluster'), images: read('images') },
  };
}

/** Parses an IAM/S3 policy string as synthesized (Terraform references stay as `${...}` strings). */
export function policy(text: string): { Version: string; Statement: any[] } {
  return JSON.parse(text);
}

/** A real ed25519 public key line (generated once with ssh-keygen for these tests). */
export const TEST_PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDHfJUdk5/DLDZhqgDaigCKqVJdCCrW4yhKHn1nKPSE8 test@h1';
