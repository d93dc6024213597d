/**
 * The S3 server the tests and `npm run local` use: the strict stand-in of s3-standin.ts, listening on
 * 127.0.0.1 in this process (this module; it replaced npm s3rver).
 *
 * Why not npm s3rver any more: it ignores If-None-Match/If-Match, cannot abort a multipart upload,
 * and writes an object in place, so an interrupted PUT leaves a truncated object under the old ETag.
 * See s3-standin.ts for what is strict and what is not emulated.
 *
 * For callers:
 * - `env` and `client()` keep the SDK's default checksum behaviour (CRC32, aws-chunked stream
 *   bodies), which is what the images do on AWS; the stand-in decodes and verifies it.
 * - Requests must be SigV4-signed with a registered key: S3RVER_CREDENTIALS, or one per process
 *   from `envFor`/`clientFor` (the access key id is the principal the authorizer sees).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Authorizer, Fault, FaultRule, InProgressUpload, RequestRecord, S3Standin } from './s3-standin';

export type { Authorizer, AuthorizeRequest, Fault, FaultAction, FaultRule, InProgressUpload, RequestRecord } from './s3-standin';

export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface S3Options {
  /**
   * Asked for every call once set (default: every signed call is allowed). The helpers put/get/keys
   * and client() sign as S3RVER_CREDENTIALS.accessKeyId: that principal is the test itself.
   */
  readonly authorize?: Authorizer;
}

export interface S3Server {
  /** e.g. http://127.0.0.1:41234 */
  readonly endpoint: string;
  readonly port: number;
  /** Where the server keeps objects' bytes. */
  readonly directory: string;
  /** Environment for a process under test: standard SDK variables pointing at this server. */
  readonly env: Record<string, string>;
  /** A client configured for this server. */
  client(): S3Client;
  /** Environment with its own access key id `principal` (registered here), so the authorizer can tell callers apart. */
  envFor(principal: string): Record<string, string>;
  clientFor(principal: string): S3Client;
  put(bucket: string, key: string, body: string | Buffer, metadata?: Record<string, string>): Promise<void>;
  get(bucket: string, key: string): Promise<Buffer>;
  /** Every key in the bucket (all pages), optionally under a prefix. */
  keys(bucket: string, prefix?: string): Promise<string[]>;
  /** Multipart uploads neither completed nor aborted. */
  uploads(bucket?: string): InProgressUpload[];
  /** Authorizes every later call (undefined: allow all). */
  authorize(authorizer: Authorizer | undefined): void;
  /** Injects a fault into matching requests from now on. */
  fault(rule: FaultRule): Fault;
  clearFaults(): void;
  /** Every request so far (operation, key, principal, status, fault), oldest first. */
  requests(): RequestRecord[];
  clearRequests(): void;
  /** Resolves once no request is in progress and none started or ended for `quietMs` (default 300 ms). */
  settled(quietMs?: number): Promise<void>;
  /** Stops the server (with `hard`, resets every connection at once), keeping its objects so it can be restarted. */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port (after `stop`). */
  restart(): Promise<void>;
  /** Stops it and removes its directory. */
  dispose(): Promise<void>;
}

/** Secret of a per-principal access key: never a real credential, only distinct per principal. */
const secretFor = (principal: string) => `${principal}-stand-in-secret`;

export async function startS3(buckets: string[] = ['test-bucket'], options: S3Options = {}): Promise<S3Server> {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 's3-standin-'));
  const server = new S3Standin({
    directory,
    buckets,
    credentials: { [S3RVER_CREDENTIALS.accessKeyId]: S3RVER_CREDENTIALS.secretAccessKey },
    authorize: options.authorize,
  });
  let port: number;
  try {
    port = await server.listen(0);
  } catch (e) {
    fs.rmSync(directory, { recursive: true, force: true });
    throw e;
  }
  const endpoint = `http://127.0.0.1:${port}`;
  const envWith = (accessKeyId: string, secretAccessKey: string) => ({
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    AWS_REGION: 'us-east-1',
  });
  const clientWith = (credentials: { accessKeyId: string; secretAccessKey: string }) =>
    new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials,
    });
  const register = (principal: string) => {
    server.addCredentials(principal, secretFor(principal));
    return { accessKeyId: principal, secretAccessKey: secretFor(principal) };
  };
  const client = () => clientWith(S3RVER_CREDENTIALS);
  const shared = client();
  return {
    endpoint,
    port,
    directory,
    env: envWith(S3RVER_CREDENTIALS.accessKeyId, S3RVER_CREDENTIALS.secretAccessKey),
    client,
    envFor(principal) {
      const c = register(principal);
      return envWith(c.accessKeyId, c.secretAccessKey);
    },
    clientFor: (principal) => clientWith(register(principal)),
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
    uploads: (bucket) => server.uploads(bucket),
    authorize: (authorizer) => server.setAuthorizer(authorizer),
    fault: (rule) => server.addFault(rule),
    clearFaults: () => server.clearFaults(),
    requests: () => server.requests(),
    clearRequests: () => server.clearRequests(),
    settled: (quietMs) => server.settled(quietMs),
    stop: (hard = false) => server.stop(hard),
    async restart() {
      await server.listen(port);
    },
    async dispose() {
      shared.destroy();
      server.clearFaults();
      await server.stop(true);
      fs.rmSync(directory, { recursive: true, force: true });
    },
  };
}
