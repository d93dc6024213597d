// The SFTP private key never reaches synthesized JSON, outputs, Terraform plan/state files or logs.
// A real OpenSSH key is planted in every configuration path a user might put it in (environment,
// cdktf.json context, CDKTF_CONTEXT_JSON, loadConfig overrides, any setting by mistake), the app is
// synthesized as main.ts does it and planned offline; the lister image is run with its key against
// the real test sshd. Every byte written anywhere is searched for the key's body.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'cdktf';
import { planStacks, PlanResult } from '../../tools/review/offline-plan';
import { readApp as readSynthesized } from '../../tools/tf-json';
import { buildInfrastructure } from '../../stacks/app';
import { ConfigError, loadConfig, LoadConfigOptions } from '../../stacks/config';
import { age, listerEnv, runLister } from '../../tools/servers/lister-harness';
import { startS3 } from '../../tools/servers/s3';
import { startSshd } from '../../tools/servers/sshd';
import { makeImagesDir, TEST_PUBLIC_KEY } from '../stacks/synth';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'h5-leak-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** A fresh ed25519 key, as a user would have it. */
function newKey(name: string): string {
  const file = path.join(work, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `leak-canary-${name}`, '-f', file]);
  return fs.readFileSync(file, 'utf8');
}

/** What would give the key away: each base64 line of its body, and the body on one line (JSON-escaped copies). */
function needles(key: string): string[] {
  const lines = key.split('\n').filter((l) => l.length >= 20 && !l.startsWith('-----'));
  return [...lines, lines.join(''), lines.join('\\n')];
}

/** Files under `dir` (recursively) whose content holds a needle. */
function filesContaining(dir: string, find: string[]): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isSymbolicLink()) continue; // provider binaries in .terraform
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && fs.statSync(p).size < 64 * 1024 * 1024) {
        const text = fs.readFileSync(p, 'latin1');
        if (find.some((n) => text.includes(n))) hits.push(path.relative(dir, p));
      }
    }
  };
  walk(dir);
  return hits;
}

interface Planted {
  /** Variables set in process.env during synthesis. */
  readonly env?: Record<string, string>;
  /** cdktf.json "context" (what main.ts reads from the file). */
  readonly fileContext?: Record<string, unknown>;
  /** CDKTF_CONTEXT_JSON (what `cdktf synth` passes). */
  readonly contextJson?: Record<string, unknown>;
  readonly overrides?: LoadConfigOptions['overrides'];
}

/**
 * Synthesizes the app as main.ts does (App with the file context and CDKTF_CONTEXT_JSON, loadConfig
 * from process.env and the app's context), capturing everything written to stdout/stderr.
 */
function synthWith(planted: Planted): { outdir: string; output: string; error?: Error } {
  const outdir = fs.mkdtempSync(path.join(work, 'out-'));
  const saved = { ...process.env };
  const writes: string[] = [];
  const spies = [jest.spyOn(process.stdout, 'write'), jest.spyOn(process.stderr, 'write')].map((s) =>
    s.mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    }),
  );
  const consoleSpies = (['log', 'warn', 'error', 'info'] as const).map((m) =>
    jest.spyOn(console, m).mockImplementation((...a: unknown[]) => void writes.push(a.join(' '))),
  );
  let error: Error | undefined;
  try {
    for (const k of Object.keys(process.env)) if (k.startsWith('PIPELINE_') || k.startsWith('CDKTF_')) delete process.env[k];
    Object.assign(process.env, planted.env ?? {});
    if (planted.contextJson) process.env.CDKTF_CONTEXT_JSON = JSON.stringify(planted.contextJson);
    const app = new App({ outdir, context: (planted.fileContext ?? {}) as Record<string, string> });
    const config = loadConfig({ context: app.node.getAllContext(), overrides: planted.overrides });
    buildInfrastructure(app, config, { imagesDir: makeImagesDir(fs.mkdtempSync(path.join(work, 'img-'))) });
    app.synth();
  } catch (err) {
    error = err as Error;
  } finally {
    process.env = saved;
    for (const s of [...spies, ...consoleSpies]) s.mockRestore();
  }
  return { outdir, output: writes.join(''), error };
}

const KEY = newKey('planted');
const FIND = needles(KEY);

describe('GIVEN a private key in a setting that must never hold one', () => {
  const external = {
    PIPELINE_SFTP_SOURCE: 'external',
    PIPELINE_NAT: 'true',
    PIPELINE_SFTP_HOST: 'sftp.example.com',
    PIPELINE_SFTP_HOST_KEY_FINGERPRINTS: `SHA256:${'c'.repeat(43)}`,
  };
  const cases: [string, Planted][] = [
    ['env PIPELINE_SFTP_PUBLIC_KEYS', { env: { PIPELINE_SFTP_PUBLIC_KEYS: KEY } }],
    ['cdktf.json context sftpPublicKeys', { fileContext: { sftpPublicKeys: [TEST_PUBLIC_KEY, KEY] } }],
    ['CDKTF_CONTEXT_JSON sftpPublicKeys', { contextJson: { sftpPublicKeys: KEY } }],
    ['loadConfig overrides sftpPublicKeys', { overrides: { sftpPublicKeys: [KEY] } }],
    ['env PIPELINE_SFTP_USER (pasted in the wrong variable)', { env: { PIPELINE_SFTP_USER: KEY } }],
    ['env PIPELINE_STAGE (pasted in the wrong variable)', { env: { PIPELINE_STAGE: KEY } }],
    ['env PIPELINE_SFTP_HOST (external)', { env: { ...external, PIPELINE_SFTP_HOST: KEY } }],
    ['env PIPELINE_SFTP_HOST_KEY_FINGERPRINTS (external)', { env: { ...external, PIPELINE_SFTP_HOST_KEY_FINGERPRINTS: KEY } }],
    ['context sftpAllowedCidrs', { fileContext: { sftpAllowedCidrs: [KEY] } }],
  ];
  test.each(cases)('%s WHEN synthesizing THEN it is refused and neither the error nor any output echoes the key', (_name, planted) => {
    const { outdir, output, error } = synthWith(planted);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.message).toMatch(/^Invalid configuration: \w+ \(env PIPELINE_\w+, context "\w+"\)/);
    expect(FIND.filter((n) => error!.message.includes(n) || output.includes(n))).toEqual([]);
    expect(filesContaining(outdir, FIND)).toEqual([]);
  });
});

// A PIPELINE_* variable or context key that is no setting is refused (a typo must not deploy a default).
describe('GIVEN the key in a PIPELINE_* variable or context key that is no setting', () => {
  test.each([
    ['env PIPELINE_SFTP_PRIVATE_KEY', { env: { PIPELINE_SFTP_PRIVATE_KEY: KEY } }],
    ['cdktf.json context sftpPrivateKey and privateKey', { fileContext: { sftpPrivateKey: KEY, privateKey: KEY } }],
    ['CDKTF_CONTEXT_JSON sftpPrivateKeyPem', { contextJson: { sftpPrivateKeyPem: KEY } }],
  ] as [string, Planted][])('%s WHEN synthesizing THEN it is refused by name and nothing echoes the key', (_name, planted) => {
    const { outdir, output, error } = synthWith(planted);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.message).toMatch(/^Unknown configuration: (environment variable PIPELINE_SFTP_PRIVATE_KEY|context key "\w+")/);
    expect(FIND.filter((n) => error!.message.includes(n) || output.includes(n))).toEqual([]);
    expect(filesContaining(outdir, FIND)).toEqual([]);
  });
});

describe('GIVEN the key in every place a user might leave it that the app does not read', () => {
  const planted: Planted = {
    env: { SFTP_PRIVATE_KEY: KEY, SFTP_KEY: KEY, PIPELINE_SFTP_PUBLIC_KEYS: TEST_PUBLIC_KEY },
  };
  const { outdir, output, error } = synthWith(planted);
  let plans: PlanResult[] = [];

  beforeAll(async () => {
    if (!error) plans = await planStacks(readSynthesized(outdir), path.join(work, 'plans'));
  }, 600_000);

  test('WHEN synthesizing THEN synthesis succeeds and no synthesized file (stacks, outputs, manifest) nor the console holds the key', () => {
    expect(error).toBeUndefined();
    const stacks = Object.keys(readSynthesized(outdir).stacks);
    expect(stacks.length).toBe(7);
    expect(filesContaining(outdir, FIND)).toEqual([]);
    expect(FIND.filter((n) => output.includes(n))).toEqual([]);
    // The needles do find a planted copy (the search itself works).
    const probe = path.join(outdir, 'probe.txt');
    fs.writeFileSync(probe, JSON.stringify({ k: KEY }));
    expect(filesContaining(outdir, FIND)).toEqual(['probe.txt']);
    fs.rmSync(probe);
  });

  test('WHEN every stack is planned offline (terraform plan -refresh=false, local state) THEN no plan, plan log or state file holds the key', () => {
    // The docker-provider images stack cannot be planned offline; every other stack must be.
    expect(plans.map((p) => `${p.stack}:${p.status}${p.reason ? ` (${p.reason})` : ''}`)).toEqual(
      ['batch', 'cluster', 'images', 'ingest', 'monitoring', 'network', 'sftp'].map((s) =>
        s === 'images' ? `${s}:skipped (uses the docker provider (not in the offline provider mirror))` : `${s}:planned`,
      ),
    );
    for (const p of plans.filter((x) => x.status === 'planned')) {
      expect(p.planJson!.length).toBeGreaterThan(1000);
      expect({ stack: p.stack, files: filesContaining(p.workdir, FIND) }).toEqual({ stack: p.stack, files: [] });
    }
    // The secret is planned without a value: the key goes in with put-secret-value, never through Terraform.
    const sftpPlan = JSON.parse(plans.find((p) => p.stack === 'sftp')!.planJson!);
    const types = (sftpPlan.resource_changes as { type: string }[]).map((r) => r.type);
    expect(types).toContain('aws_secretsmanager_secret');
    expect(types).not.toContain('aws_secretsmanager_secret_version');
  });
});

describe('GIVEN the lister image run with its key against the real test sshd', () => {
  test('WHEN it ingests (debug logs) and WHEN it is refused with a wrong key THEN neither key appears in its stdout, stderr or the objects it wrote', async () => {
    const sftp = await startSshd();
    const s3 = await startS3(['leak-bucket']);
    try {
      fs.writeFileSync(path.join(sftp.root, 'a.xml'), '<a>1</a>');
      // Older than the lister's 2 s floor on the minimum age (a file seconds old may still be written).
      age(path.join(sftp.root, 'a.xml'), 3600);
      const ok = await runLister(listerEnv(sftp, s3, 'leak-bucket', { LOG_LEVEL: 'debug', MANIFEST_KEY: 'manifests/run-1.json' }));
      expect(ok.code).toBe(0);
      expect(ok.summary).toMatchObject({ ingested: 1, failed: 0 });
      const realKey = needles(sftp.privateKey);
      expect(realKey.filter((n) => ok.stdout.includes(n) || ok.stderr.includes(n))).toEqual([]);
      const keys = await s3.keys('leak-bucket');
      expect(keys).toEqual(expect.arrayContaining(['landing/a.xml', 'manifests/run-1.json']));
      const bodies = await Promise.all(keys.map((k) => s3.get('leak-bucket', k)));
      expect(bodies.filter((b) => realKey.some((n) => b.toString('latin1').includes(n)))).toEqual([]);

      const wrong = newKey('wrong');
      const refused = await runLister(listerEnv(sftp, s3, 'leak-bucket', { LOG_LEVEL: 'debug', SFTP_PRIVATE_KEY: wrong }));
      expect(refused.code).toBe(3);
      expect(refused.stderr).toMatch(/auth/i);
      expect(needles(wrong).filter((n) => refused.stdout.includes(n) || refused.stderr.includes(n))).toEqual([]);

      const mangled = wrong.replace(/\n[A-Za-z0-9+/=]{20,}\n/, '\n!!notbase64!!\n');
      const bad = await runLister(listerEnv(sftp, s3, 'leak-bucket', { LOG_LEVEL: 'debug', SFTP_PRIVATE_KEY: mangled }));
      expect(bad.code).not.toBe(0);
      expect(needles(mangled).filter((n) => bad.stdout.includes(n) || bad.stderr.includes(n))).toEqual([]);
    } finally {
      await s3.dispose();
      await sftp.stop();
    }
  });
});
