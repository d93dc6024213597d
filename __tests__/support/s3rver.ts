/**
 * A real S3-compatible server (s3rver) for tests, started on 127.0.0.1 in a child process.
 *
 * Quirks handled here so tests need not know them:
 * - s3rver needs `node --openssl-legacy-provider` for paged listings;
 * - SDK clients must use `requestChecksumCalculation: 'WHEN_REQUIRED'`, or stream bodies are stored
 *   with aws-chunked framing;
 * - it ignores `IfNoneMatch` and cannot abort multipart uploads (aborted parts just never complete).
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface S3Server {
  /** e.g. http://127.0.0.1:41234 */
  readonly endpoint: string;
  readonly port: number;
  /** Where s3rver keeps its objects on disk. */
  readonly directory: string;
  /** Environment for a process under test: standard SDK variables pointing at this server. */
  readonly env: Record<string, string>;
  /** A client configured for this server. */
  client(): S3Client;
  put(bucket: string, key: string, body: string | Buffer, metadata?: Record<string, string>): Promise<void>;
  get(bucket: string, key: string): Promise<Buffer>;
  /** Every key in the bucket (all pages), optionally under a prefix. */
  keys(bucket: string, prefix?: string): Promise<string[]>;
  /** Stops the server (SIGKILL with `hard`), keeping its directory so it can be restarted. */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and directory (after `stop`). */
  restart(): Promise<void>;
  /** Stops it and removes its directory. */
  dispose(): Promise<void>;
}

// Plain JS beside this file; when this module runs compiled from dist/ (scripts), the source copy.
const CHILD = [path.join(__dirname, 's3rver-child.js'), path.resolve(__dirname, '../../../__tests__/support/s3rver-child.js')].find((f) =>
  fs.existsSync(f),
)!;

function launch(directory: string, buckets: string[], port: number): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--openssl-legacy-provider', CHILD, directory, buckets.join(','), String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /LISTENING (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on('exit', (code) => reject(new Error(`s3rver exited (${code}) before listening: ${err}`)));
  });
}

export async function startS3(buckets: string[] = ['test-bucket']): Promise<S3Server> {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 's3rver-'));
  let { child, port } = await launch(directory, buckets, 0);
  const endpoint = `http://127.0.0.1:${port}`;
  const client = () =>
    new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  const shared = client();
  const stop = (hard = false) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill(hard ? 'SIGKILL' : 'SIGTERM');
    });
  return {
    endpoint,
    port,
    directory,
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    },
    client,
    async put(bucket, key, body, metadata) {
      await shared.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: metadata }));
    },
    async get(bucket, key) {
      const res = await shared.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await res.Body!.transformToByteArray());
    },
    async keys(bucket, prefix) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await shared.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of page.Contents ?? []) keys.push(o.Key!);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },
    stop,
    async restart() {
      ({ child } = await launch(directory, [], port));
    },
    async dispose() {
      shared.destroy();
      await stop();
      fs.rmSync(directory, { recursive: true, force: true });
    },
  };
}
