// The failure drill: both images' real entrypoints (images/*/dist/main.js, as the task definitions run
// them) against a real sshd and a real S3-compatible server, one fault per row. For every row:
// a clear error (non-zero exit, a message naming what failed), no partial object, nothing lost (the
// source is still there, unchanged or as it changed), and a rerun completes with no duplicate.
import type { ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MAIN as CONVERTER_MAIN, runConverterMain } from '../../tools/servers/converter-records';
import { age, ListerResult, listerEnv, runLister, sha256, writeRandomFile } from '../../tools/servers/lister-harness';
import { S3Server, startS3 } from '../../tools/servers/s3';
import { SftpServer, startSshd } from '../../tools/servers/sshd';

const BUCKET = 'data';
const MiB = 1024 * 1024;

let sftp: SftpServer;
let s3: S3Server;

beforeAll(async () => {
  if (!fs.existsSync(CONVERTER_MAIN)) throw new Error(`${CONVERTER_MAIN} missing: run npm run build:images`);
  [sftp, s3] = await Promise.all([startSshd(), startS3([BUCKET])]);
});
afterAll(async () => {
  await Promise.all([sftp?.stop(), s3?.dispose()]);
});

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Whether the fault was injected while the run was in flight. */
  acted: boolean;
}

/** Runs the converter entrypoint with the task definition's environment; `onStderr` may inject a fault. */
function runConverter(env: Record<string, string>, onStderr?: (text: string, child: ChildProcess) => void): Promise<RunResult> {
  const taskEnv = { ...s3.env, AWS_MAX_ATTEMPTS: '2', BUCKET, OUTPUT_BUCKET: BUCKET, OUTPUT_PREFIX: 'json/', FORMAT: 'lab', ...env };
  return runConverterMain(taskEnv, onStderr).then(({ code, stdout, stderr }) => ({ code, stdout, stderr, acted: false }));
}

/** An XML document of `bytes` (approximately) of small records. */
function records(bytes: number, seed = 1): Buffer {
  const parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<records>\n'];
  let size = parts[0].length;
  for (let i = 0; size < bytes; i++) {
    const r = `<record id="${seed}-${i}"><name>item ${i}</name><value>${(i * 7919) % 100000}</value><note>${'x'.repeat(40)}</note></record>\n`;
    parts.push(r);
    size += r.length;
  }
  parts.push('</records>\n');
  return Buffer.from(parts.join(''));
}

/** The lister's environment for one drill folder (the state machine sets DEST_*, MANIFEST_KEY). */
function listerFor(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return listerEnv(sftp, s3, BUCKET, {
    SFTP_REMOTE_DIR: dir,
    DEST_PREFIX: `incoming/${dir}/`,
    RETRIES: '0',
    AWS_MAX_ATTEMPTS: '1',
    LOG_LEVEL: 'debug',
    ...extra,
  });
}

/** Runs the lister and calls `act` once mid-transfer (first progress line of a file not yet complete). */
function listerMidFile(env: Record<string, string>, act: (child: ChildProcess) => void): Promise<RunResult> {
  let acted = false;
  return runLister(env, {
    onLog: (line, child) => {
      if (!acted && line.msg === 'progress' && Number(line.loaded) > 0 && Number(line.loaded) < Number(line.total)) {
        acted = true;
        act(child);
      }
    },
  }).then((r: ListerResult) => ({ code: r.code, stdout: r.stdout, stderr: r.stderr, acted }));
}

/** Calls `act` once, 300 ms after the converter starts streaming its first key (mid-convert, mid-upload). */
function converterMidKey(env: Record<string, string>, act: (child: ChildProcess) => void): Promise<RunResult> {
  let acted = false;
  return runConverter({ ...env, LOG_LEVEL: 'debug' }, (text, child) => {
    if (!acted && text.includes('"outcome":"started"')) {
      acted = true;
      setTimeout(() => act(child), 300);
    }
  }).then((r) => ({ ...r, acted }));
}

const fileSha = (file: string) => sha256(fs.readFileSync(file));
const objectSha = async (key: string) => sha256(await s3.get(BUCKET, key));

interface Drill {
  readonly image: 'sftp-lister' | 'converter';
  /** Puts the inputs in place; returns what the rows below check. */
  setup(): Promise<void>;
  /** Runs the image with the fault injected. */
  fault(): Promise<RunResult>;
  /** Exit code and message of a clear failure. */
  readonly code: number;
  readonly error: RegExp;
  /** Object keys that must not exist after the failed run (no partial object). */
  readonly partial: string[];
  /** Checks the sources are all still there (nothing lost). */
  sourcesIntact(): Promise<void>;
  /** Runs again (after the cause is gone) and must exit 0. */
  rerun(): Promise<RunResult>;
  /** The complete set of keys under `outputPrefix` after the rerun(s): each output exactly once. */
  readonly outputPrefix: string;
  expectedOutputs(): Promise<Record<string, string>>;
  /** A further run must find nothing to do (lister) or rewrite the same keys (converter). */
  afterwards?(): Promise<void>;
}

// ---- the rows ----

/** Stops the S3 server mid-run; `restartS3` brings it back once the run has ended. */
let stopping: Promise<void> | undefined;
const stopS3 = () => {
  stopping = s3.stop(true);
};
async function restartS3(): Promise<void> {
  await stopping;
  stopping = undefined;
  await s3.restart();
}

function listerDrill(
  dir: string,
  injure: (child: ChildProcess, file: string) => void | Promise<void>,
  code: number,
  error: RegExp,
  options: { restartS3?: boolean } = {},
): Drill {
  // One random file on the SFTP server, old enough to be ingested.
  const src = { file: path.join(sftp?.root ?? '', dir, 'big.bin'), sha: () => fileSha(path.join(sftp.root, dir, 'big.bin')) };
  const landed = `incoming/${dir}/big.bin`;
  let originalSha = '';
  return {
    image: 'sftp-lister',
    async setup() {
      src.file = path.join(sftp.root, dir, 'big.bin');
      originalSha = writeRandomFile(src.file, 96 * MiB);
      age(src.file, 3600);
    },
    async fault() {
      const r = await listerMidFile(listerFor(dir, { MANIFEST_KEY: `manifests/${dir}-1.json` }), (child) => void injure(child, src.file));
      if (options.restartS3) await restartS3();
      return r;
    },
    code,
    error,
    partial: [landed],
    async sourcesIntact() {
      expect(fs.existsSync(src.file)).toBe(true);
      if (dir !== 'changing') expect(src.sha()).toBe(originalSha);
    },
    rerun: () =>
      runLister(listerFor(dir, { MANIFEST_KEY: `manifests/${dir}-2.json` })).then((r) => ({ code: r.code, stdout: r.stdout, stderr: r.stderr, acted: false })),
    outputPrefix: `incoming/${dir}/`,
    expectedOutputs: async () => ({ [landed]: src.sha() }),
    async afterwards() {
      expect(JSON.parse((await s3.get(BUCKET, `manifests/${dir}-2.json`)).toString())).toEqual([landed]);
      const again = await runLister(listerFor(dir, { MANIFEST_KEY: `manifests/${dir}-3.json` }));
      expect(again.code).toBe(0);
      expect(again.summary).toMatchObject({ ingested: 0, failed: 0, alreadyPresent: 1 });
      expect(JSON.parse((await s3.get(BUCKET, `manifests/${dir}-3.json`)).toString())).toEqual([]);
    },
  };
}

function converterDrill(
  name: string,
  build: () => Record<string, Buffer>,
  faultRun: (env: Record<string, string>) => Promise<RunResult>,
  code: number,
  error: RegExp,
  partialOf: string[],
  fix?: Record<string, Buffer>,
): Drill {
  let inputs: Record<string, Buffer> = {};
  const env = () => ({ S3PATHS: JSON.stringify(Object.keys(inputs)), RESULT_KEY: `results/${name}/1.json` });
  return {
    image: 'converter',
    async setup() {
      inputs = build();
      for (const [k, body] of Object.entries(inputs)) await s3.put(BUCKET, k, body);
    },
    fault: () => faultRun(env()),
    code,
    error,
    partial: partialOf.map((k) => `json/${k}.json`),
    async sourcesIntact() {
      for (const [k, body] of Object.entries(inputs)) expect({ k, sha: await objectSha(k) }).toEqual({ k, sha: sha256(body) });
    },
    async rerun() {
      // The operator fixes the malformed input (if any), then the batch runs again.
      for (const [k, body] of Object.entries(fix ?? {})) {
        inputs[k] = body;
        await s3.put(BUCKET, k, body);
      }
      return runConverter({ ...env(), RESULT_KEY: `results/${name}/2.json` });
    },
    outputPrefix: `json/drill/${name}/`,
    async expectedOutputs() {
      const out: Record<string, string> = {};
      for (const k of Object.keys(inputs)) {
        const body = await s3.get(BUCKET, `json/${k}.json`);
        expect(() => JSON.parse(body.toString('utf8'))).not.toThrow();
        out[`json/${k}.json`] = sha256(body);
      }
      return out;
    },
    async afterwards() {
      const summary = JSON.parse((await s3.get(BUCKET, `results/${name}/2.json`)).toString());
      expect(summary.failed).toEqual([]);
      expect(summary.converted.map((c: { key: string }) => c.key).sort()).toEqual(Object.keys(inputs).sort());
    },
  };
}

const big = (name: string) => ({ [`drill/${name}/big.xml`]: records(30 * MiB, name.length) });

const DRILLS: [string, Drill][] = [
  [
    'S3 server stopped mid-upload (converter)',
    converterDrill(
      's3-stopped',
      () => big('s3-stopped'),
      async (env) => {
        const r = await converterMidKey(env, stopS3);
        await restartS3();
        return r;
      },
      74,
      /^s3:\/\/data\/drill\/s3-stopped\/big\.xml: /m,
      ['drill/s3-stopped/big.xml'],
    ),
  ],
  ['S3 server stopped mid-upload (sftp-lister)', listerDrill('s3-stopped', stopS3, 1, /"level":"error".*big\.bin/, { restartS3: true })],
  ['SFTP session killed mid-file (sftp-lister)', listerDrill('killed', () => sftp.killSessions(), 1, /"level":"error".*big\.bin/)],
  [
    'SIGTERM mid-convert (converter)',
    converterDrill(
      'sigterm',
      () => big('sigterm'),
      (env) => converterMidKey(env, (child) => child.kill('SIGTERM')),
      143,
      /SIGTERM/,
      ['drill/sigterm/big.xml'],
    ),
  ],
  [
    'malformed XML in a batch (converter)',
    converterDrill(
      'malformed',
      () => ({
        'drill/malformed/a.xml': records(20_000, 1),
        'drill/malformed/bad.xml': Buffer.from('<records>\n<record id="1"><name>ok</name></record>\n<record id="2"><name>unclosed</record>\n</records>\n'),
        'drill/malformed/c.xml': records(20_000, 3),
      }),
      (env) => runConverter(env),
      65,
      /^s3:\/\/data\/drill\/malformed\/bad\.xml:\d+:\d+: /m,
      ['drill/malformed/bad.xml'],
      { 'drill/malformed/bad.xml': records(1_000, 2) },
    ),
  ],
  [
    'a file that changes while being read (sftp-lister)',
    listerDrill(
      'changing',
      (_child, file) => {
        fs.appendFileSync(file, crypto.randomBytes(4096));
        age(file, 3600);
      },
      1,
      /changed while reading/,
    ),
  ],
];

describe('failure drill (real sshd and S3 server, both images)', () => {
  test.each(DRILLS)('%s: clear error, no partial object, nothing lost, rerun completes with no duplicate', async (_name, d) => {
    await d.setup();

    // WHEN the fault hits mid-run
    const failed = await d.fault();
    // THEN a clear error
    expect(failed.acted || d.code === 65).toBe(true);
    expect(failed.code).toBe(d.code);
    expect(failed.stderr).toMatch(d.error);
    // THEN no partial object
    const present = await s3.keys(BUCKET);
    expect(d.partial.filter((k) => present.includes(k))).toEqual([]);
    // THEN nothing lost
    await d.sourcesIntact();

    // WHEN run again THEN it completes, and every output exists exactly once, complete
    const rerun = await d.rerun();
    expect({ code: rerun.code, stderr: rerun.code === 0 ? '' : rerun.stderr }).toEqual({ code: 0, stderr: '' });
    const expected = await d.expectedOutputs();
    expect((await s3.keys(BUCKET, d.outputPrefix)).sort()).toEqual(Object.keys(expected).sort());
    for (const [key, sha] of Object.entries(expected)) expect({ key, sha: await objectSha(key) }).toEqual({ key, sha });
    await d.afterwards?.();
  });
});
