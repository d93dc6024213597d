/**
 * Runs the SFTP ingest entrypoint (images/sftp-lister/dist/main.js) as a child process against the
 * real test sshd and S3 stand-in, and parses its one-line JSON summary.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { imageNode } from './image-runtime';
import { S3Server, startS3 } from './s3';
import { SftpServer, startSshd } from './sshd';
import { loadConfig } from '../../images/sftp-lister/src/config';
import type { Summary } from '../../images/sftp-lister/src/ingest';

// From tools/servers, or from dist/tools/servers when compiled with the scripts (npm run campaign).
export const LISTER_DIR = [path.resolve(__dirname, '..', '..'), path.resolve(__dirname, '..', '..', '..')]
  .map((repo) => path.join(repo, 'images', 'sftp-lister'))
  .find((dir) => fs.existsSync(path.join(dir, 'package.json')))!;
/** LISTER_MAIN in the environment runs another build (e.g. the previous commit's, to see a new test fail on it). */
export const LISTER_MAIN = process.env.LISTER_MAIN ?? path.join(LISTER_DIR, 'dist', 'main.js');

/** The lister's summary line. */
export type ListerSummary = Summary;

export interface ListerResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The summary line, when the run got that far. */
  summary?: ListerSummary;
}

/** The environment a run needs for these servers; `overrides` win (undefined removes a variable). */
/** The real servers the lister runs against: an sshd and the S3 stand-in with one bucket, on 127.0.0.1. */
export interface ListerServers {
  sftp: SftpServer;
  s3: S3Server;
  stop(): Promise<void>;
}

/** Starts both servers at once; if one fails to start, the other is stopped before the error is thrown. */
export async function startListerServers(bucket: string): Promise<ListerServers> {
  const [started, s3Started] = await Promise.allSettled([startSshd(), startS3([bucket])]);
  if (started.status === 'rejected' || s3Started.status === 'rejected') {
    if (started.status === 'fulfilled') await started.value.stop();
    if (s3Started.status === 'fulfilled') await s3Started.value.dispose();
    throw started.status === 'rejected' ? started.reason : (s3Started as PromiseRejectedResult).reason;
  }
  const sftp = started.value;
  const s3 = s3Started.value;
  return {
    sftp,
    s3,
    stop: async () => {
      await Promise.all([sftp.stop(), s3.dispose()]);
    },
  };
}

/**
 * The peak-memory bound the lister's README promises (its UPLOAD_QUEUE_SIZE row), in MiB, for the
 * settings in `env`: CONCURRENCY x ((UPLOAD_QUEUE_SIZE + 1) x PART_SIZE_MB + READ_WINDOW x
 * READ_CHUNK_BYTES / 1 MiB) + SMALL_FILE_CONCURRENCY x 2 MiB + 150 MiB.
 */
export function documentedPeakRssMiB(env: Record<string, string>): number {
  const c = loadConfig(env);
  const MiB = 1024 * 1024;
  return c.concurrency * (((c.uploadQueueSize + 1) * c.partSizeBytes) / MiB + (c.readWindow * c.readChunkBytes) / MiB) + c.smallFileConcurrency * 2 + 150;
}

export function listerEnv(sftp: SftpServer, s3: S3Server, bucket: string, overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...s3.env,
    SFTP_HOST: sftp.host,
    SFTP_PORT: String(sftp.port),
    SFTP_USER: sftp.user,
    SFTP_PRIVATE_KEY: sftp.privateKey,
    SFTP_HOST_KEY_FINGERPRINTS: sftp.hostKeyFingerprint,
    DEST_BUCKET: bucket,
    DEST_PREFIX: 'landing/',
    MIN_AGE_SECONDS: '0',
    RETRY_BASE_MS: '100',
    ...overrides,
  };
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

export interface RunOptions {
  /** Called with each stderr log line (parsed JSON) and the child, e.g. to act mid-transfer. */
  onLog?: (line: Record<string, unknown>, child: ChildProcess) => void;
  /** Wrap in `/usr/bin/time -f %M` and report peak RSS (KiB) from outside too. */
  command?: string[];
}

export function runLister(env: Record<string, string>, opts: RunOptions = {}): Promise<ListerResult> {
  const [cmd, ...args] = opts.command ?? [...imageNode('sftp-lister'), LISTER_MAIN];
  if (!fs.existsSync(LISTER_MAIN)) throw new Error(`${LISTER_MAIN} missing: run npm ci (builds images/*)`);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d;
      pending += d;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (!opts.onLog) continue;
        try {
          opts.onLog(JSON.parse(line), child);
        } catch {
          // not a JSON log line (e.g. /usr/bin/time output)
        }
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const last = stdout.trim().split('\n').filter(Boolean).pop();
      let summary: ListerSummary | undefined;
      try {
        summary = last ? (JSON.parse(last) as ListerSummary) : undefined;
      } catch {
        summary = undefined;
      }
      resolve({ code, signal, stdout, stderr, summary });
    });
  });
}

/** Writes a file of `size` pseudo-random bytes in 8 MiB steps (no whole-file buffer); returns its sha256. */
export function writeRandomFile(file: string, size: number): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'w');
  const hash = crypto.createHash('sha256');
  const block = crypto.randomBytes(Math.min(size, 8 * 1024 * 1024));
  try {
    for (let done = 0, i = 0; done < size; i++) {
      const n = Math.min(block.length, size - done);
      // Vary each block cheaply so parts differ (catches reordered chunks).
      if (block.length >= 4) block.writeUInt32LE(i, 0);
      fs.writeSync(fd, block, 0, n);
      hash.update(block.subarray(0, n));
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** Sets a file's mtime `secondsAgo` in the past. */
export function age(file: string, secondsAgo: number): void {
  const t = Date.now() / 1000 - secondsAgo;
  fs.utimesSync(file, t, t);
}

export function sha256(buf: Buffer): string {
  return crypto.createHash('sha256').update(buf).digest('hex');
}
