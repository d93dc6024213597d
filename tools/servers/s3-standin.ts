/**
 * A strict S3 stand-in: an HTTP server in the test process that speaks the S3 REST API (path-style)
 * for the operations this project uses, with the rules AWS enforces and s3rver does not.
 *
 * Strict (as AWS documents it):
 * - writes are atomic: a PUT or part body is streamed to its own file and becomes visible only once
 *   it arrived whole (Content-Length, Content-MD5 and x-amz-content-sha256 checked); a reader keeps the
 *   version it opened; an interrupted upload leaves nothing behind;
 * - conditional writes (PutObject, CompleteMultipartUpload with If-None-Match: * or If-Match: ETag)
 *   are decided at the instant the write completes: 412 PreconditionFailed, 404 NoSuchKey for If-Match
 *   on a missing key, 409 ConditionalRequestConflict when another write or delete of the key completed
 *   while this one was in progress (for a multipart upload: since CreateMultipartUpload);
 * - multipart: unknown or aborted upload ids give 404 NoSuchUpload, Complete checks part order, ETags
 *   and the 5 MiB minimum part size; abort really discards; ListMultipartUploads lists what is left;
 * - SigV4 signatures are verified for the registered access keys; the access key id is the principal;
 *   an optional authorizer is asked for every call (IAM action, resource, condition keys, s3-actions.ts),
 *   and GET/HEAD of a missing key answers 403 when the caller may not s3:ListBucket.
 * - bodies: aws-chunked (the SDK's default for streams) is decoded; Content-MD5, x-amz-content-sha256
 *   and x-amz-checksum-crc32/crc32c/sha1/sha256 (header or trailer) are verified before storing.
 * Not emulated: versioning, SSE/KMS, ACLs, object lock, tagging, CopyObject, presigned URLs, virtual-hosted
 * addressing, ListObjects v1, DeleteObjects, ListParts, CRC64NVME checksums, chunk signatures of signed
 * aws-chunked bodies (parsed, not verified), S3's own default checksums on objects stored without one.
 * Those requests get 501 NotImplemented (or are accepted as described).
 * State lives in this process (objects' bytes in `directory`): `stop`/`restart` keep it.
 */
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { Socket } from 'node:net';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SignatureV4 } from '@smithy/signature-v4';
import { authRequests, bucketArn, classify, S3AuthRequest, S3Call, S3Operation, S3RequestError } from './s3-actions';
import { AwsChunkedDecoder, Checksum, ChecksumName, declaredChecksum } from './s3-chunked';

// Service limits: https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
const MAX_PUT_BYTES = 5 * 1024 ** 3;
const MIN_PART_BYTES = 5 * 1024 ** 2;
const MAX_PARTS = 10_000;
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html (1,024 bytes of UTF-8)
const MAX_KEY_BYTES = 1024;
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingMetadata.html (user metadata up to 2 KB)
const MAX_USER_METADATA_BYTES = 2048;
// Signed requests older or newer than 15 minutes are refused (RequestTimeTooSkewed):
// https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html
const MAX_SKEW_MS = 15 * 60 * 1000;
const SYSTEM_HEADERS = ['content-type', 'cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'];

interface DataFile {
  readonly path: string;
  readonly size: number;
}
interface StoredChecksum {
  readonly name: ChecksumName;
  readonly value: string;
}
interface StoredObject {
  readonly files: DataFile[];
  /** Full-object checksum the writer sent (single PUT only), returned with x-amz-checksum-mode: ENABLED. */
  readonly checksum?: StoredChecksum;
  readonly size: number;
  /** Quoted, as S3 returns it. */
  readonly etag: string;
  readonly lastModified: Date;
  readonly headers: Record<string, string>;
}
interface Part extends DataFile {
  readonly etag: string;
}
interface Upload {
  readonly id: string;
  readonly key: string;
  readonly initiated: Date;
  readonly initiator: string;
  /** Change counter when the upload was created: the window for ConditionalRequestConflict. */
  readonly since: number;
  readonly headers: Record<string, string>;
  readonly parts: Map<number, Part>;
}
interface Bucket {
  readonly name: string;
  readonly created: Date;
  readonly objects: Map<string, StoredObject>;
  readonly uploads: Map<string, Upload>;
  /** Counter value of the last write or delete of each key (kept after a delete). */
  readonly changed: Map<string, number>;
  sorted?: string[];
}

export interface InProgressUpload {
  readonly bucket: string;
  readonly key: string;
  readonly uploadId: string;
  readonly initiated: Date;
  readonly initiator: string;
  readonly parts: number;
}

export interface AuthorizeRequest extends S3AuthRequest {
  /** The access key id that signed the request. */
  readonly principal: string;
  readonly operation: S3Operation | 'implicit';
  readonly bucket?: string;
  readonly key?: string;
}
/** Returns true to allow. Called for every authorization request of every call. */
export type Authorizer = (request: AuthorizeRequest) => boolean | Promise<boolean>;

export interface RequestRecord {
  readonly id: number;
  readonly at: Date;
  readonly method: string;
  readonly operation: S3Operation;
  readonly bucket?: string;
  readonly key?: string;
  readonly uploadId?: string;
  readonly partNumber?: string;
  readonly principal?: string;
  /** HTTP status sent; 0 when the connection was reset; undefined while in progress. */
  status?: number;
  /** S3 error code sent, if any. */
  code?: string;
  /** Description of the fault injected into this request, if any. */
  fault?: string;
}

export type FaultAction =
  /** Holds the request (before it is processed, or before its response is sent) for `ms`, or until released. */
  | { readonly kind: 'stall'; readonly ms?: number }
  /** Answers with an S3 error (default 500 InternalError; 503 gives SlowDown). */
  | { readonly kind: 'error'; readonly status?: 500 | 503; readonly code?: string }
  /**
   * Resets the TCP connection. With `afterBytes`: 'before' resets once that many bytes of a PUT or part
   * body have arrived (a drop mid-upload: nothing is stored); 'after' cuts a GET body after that many bytes.
   */
  | { readonly kind: 'reset'; readonly afterBytes?: number };

export interface FaultRule {
  readonly operation?: S3Operation | S3Operation[];
  readonly method?: string;
  readonly bucket?: string;
  /** Exact key, or a pattern. */
  readonly key?: string | RegExp;
  readonly principal?: string;
  /** Only the Nth matching request (1-based) is faulted. */
  readonly nth?: number;
  /** At most this many requests are faulted (default: unlimited, or 1 with `nth`). */
  readonly times?: number;
  /**
   * 'before' (default): the fault hits as the request arrives (a stall then lets it go on). 'after':
   * only a request that succeeded, once its operation took effect; its response is held or lost.
   */
  readonly when?: 'before' | 'after';
  readonly action: FaultAction;
}

export interface Fault {
  readonly rule: FaultRule;
  /** Requests that matched the rule so far. */
  readonly matched: number;
  /** Requests faulted so far. */
  readonly fired: number;
  /** Lets stalled requests (now and later) go on. */
  release(): void;
  /** Removes the rule and releases its stalls. */
  remove(): void;
}

export interface StandinOptions {
  readonly directory: string;
  readonly buckets: string[];
  /** accessKeyId -> secretAccessKey accepted by the signature check. */
  readonly credentials: Record<string, string>;
  readonly authorize?: Authorizer;
}

class FaultImpl implements Fault {
  matched = 0;
  fired = 0;
  private released = false;
  private waiters = new Set<() => void>();
  constructor(
    readonly rule: FaultRule,
    private readonly owner: Set<FaultImpl>,
  ) {}
  matches(call: S3Call, principal: string | undefined, when: 'before' | 'after'): boolean {
    const r = this.rule;
    if ((r.when ?? 'before') !== when) return false;
    if (r.operation && !(Array.isArray(r.operation) ? r.operation : [r.operation]).includes(call.operation)) return false;
    if (r.method && r.method.toUpperCase() !== call.method) return false;
    if (r.bucket && r.bucket !== call.bucket) return false;
    if (r.principal && r.principal !== principal) return false;
    if (r.key !== undefined) {
      if (call.key === undefined) return false;
      if (typeof r.key === 'string' ? r.key !== call.key : !r.key.test(call.key)) return false;
    }
    this.matched++;
    const limit = r.times ?? (r.nth ? 1 : Infinity);
    if (r.nth !== undefined && this.matched !== r.nth) return false;
    if (this.fired >= limit) return false;
    this.fired++;
    return true;
  }
  /** Resolves when the stall is over; rejects when the server stops meanwhile. */
  stall(stopped: Promise<void>): Promise<void> {
    const ms = this.rule.action.kind === 'stall' ? this.rule.action.ms : undefined;
    if (this.released) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      this.waiters.add(done);
      stopped.then(() => {
        clearTimeout(timer);
        this.waiters.delete(done);
        reject(new Error('server stopped'));
      });
    });
  }
  release(): void {
    this.released = true;
    for (const w of [...this.waiters]) w();
  }
  remove(): void {
    this.owner.delete(this);
    this.release();
  }
}

/** What a handler answers; faults injected 'after' may replace it. */
interface Reply {
  status: number;
  headers: Record<string, string | number>;
  body?: Buffer | Readable;
}

// Control characters cannot stand literally in XML 1.0 text: they are written as character references.
const xmlEscape = (s: string) =>
  // eslint-disable-next-line no-control-regex
  s.replace(/[&<>"'\r]|[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : c === "'" ? '&apos;' : `&#${c.charCodeAt(0)};`,
  );
const xmlUnescape = (s: string) =>
  s.replace(/&(quot|amp|lt|gt|apos|#\d+|#x[0-9a-f]+);/gi, (_, e: string) =>
    e[0] === '#'
      ? String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1)))
      : ({ quot: '"', amp: '&', lt: '<', gt: '>', apos: "'" } as Record<string, string>)[e.toLowerCase()],
  );
const xml = (body: string) => Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
const NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"';
const unquote = (etag: string) => etag.trim().replace(/^W\//, '').replace(/^"|"$/g, '');
/**
 * S3 lists keys in UTF-8 binary order, not JavaScript's UTF-16 order:
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/ListingKeysUsingAPIs.html
 */
const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

const DEFAULT_MESSAGES: Record<string, string> = {
  AccessDenied: 'Access Denied',
  InternalError: 'We encountered an internal error. Please try again.',
  SlowDown: 'Please reduce your request rate.',
  NoSuchKey: 'The specified key does not exist.',
  NoSuchBucket: 'The specified bucket does not exist',
  NoSuchUpload: 'The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.',
  PreconditionFailed: 'At least one of the pre-conditions you specified did not hold',
  ConditionalRequestConflict: 'A conflicting conditional operation is currently in progress against this resource. Please try again.',
};

const toBuffer = (d: string | ArrayBuffer | ArrayBufferView) =>
  typeof d === 'string' ? Buffer.from(d) : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d);

/** SHA-256 for the SigV4 signer (the SDK's own hash packages are not a dependency of this project). */
class NodeSha256 {
  private readonly hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(toBuffer(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

export class S3Standin {
  private readonly buckets = new Map<string, Bucket>();
  private readonly faultSet = new Set<FaultImpl>();
  private readonly log: RequestRecord[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly dataDir: string;
  private readonly credentials: Map<string, string>;
  private authorizer?: Authorizer;
  private server?: http.Server;
  private stopSignal!: { promise: Promise<void>; fire: () => void };
  private counter = 0;
  private requestIds = 0;
  private inFlight = 0;
  private lastActivity = 0;

  constructor(options: StandinOptions) {
    this.dataDir = path.join(options.directory, 'data');
    fs.mkdirSync(this.dataDir, { recursive: true });
    for (const name of options.buckets) this.createBucket(name);
    this.credentials = new Map(Object.entries(options.credentials));
    this.authorizer = options.authorize;
  }

  createBucket(name: string): void {
    if (!this.buckets.has(name)) this.buckets.set(name, { name, created: new Date(), objects: new Map(), uploads: new Map(), changed: new Map() });
  }

  addCredentials(accessKeyId: string, secretAccessKey: string): void {
    this.credentials.set(accessKeyId, secretAccessKey);
  }

  /** Authorizes every later call (undefined: allow all). */
  setAuthorizer(authorize: Authorizer | undefined): void {
    this.authorizer = authorize;
  }

  /** Adds a fault rule; it applies to requests that arrive from now on. */
  addFault(rule: FaultRule): Fault {
    const f = new FaultImpl(rule, this.faultSet);
    this.faultSet.add(f);
    return f;
  }

  clearFaults(): void {
    for (const f of [...this.faultSet]) f.remove();
  }

  requests(): RequestRecord[] {
    return this.log.map((r) => ({ ...r }));
  }

  clearRequests(): void {
    this.log.length = 0;
  }

  uploads(bucket?: string): InProgressUpload[] {
    const out: InProgressUpload[] = [];
    for (const b of this.buckets.values()) {
      if (bucket !== undefined && b.name !== bucket) continue;
      for (const u of b.uploads.values())
        out.push({ bucket: b.name, key: u.key, uploadId: u.id, initiated: u.initiated, initiator: u.initiator, parts: u.parts.size });
    }
    return out;
  }

  async listen(port: number): Promise<number> {
    let fire!: () => void;
    const promise = new Promise<void>((r) => (fire = r));
    this.stopSignal = { promise, fire };
    // Idle keep-alive connections stay open well past the SDK's reuse of them (a socket closed just as
    // the client reuses it fails a streaming upload, which the SDK cannot retry); no whole-request
    // timeout, so long uploads and long injected stalls are not cut by Node's 5-minute default.
    const server = http.createServer({ keepAliveTimeout: 60_000, requestTimeout: 0 });
    server.on('request', (req, res) => void this.handle(req, res));
    // With this listener Node does not answer `Expect: 100-continue` itself: a refused request is
    // answered before its body is sent, as S3 does.
    server.on('checkContinue', (req, res) => void this.handle(req, res));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    return (server.address() as { port: number }).port;
  }

  /**
   * Resolves once no request is in progress and none has started or ended for `quietMs`. A client that
   * dies may leave whole requests in the socket buffers; S3 still serves those, so a test that counts
   * objects after killing a client waits for this first.
   */
  async settled(quietMs = 300): Promise<void> {
    while (this.inFlight > 0 || Date.now() - this.lastActivity < quietMs) await new Promise((r) => setTimeout(r, 20));
  }

  /** Stops listening. Soft: requests in progress may finish (up to 5 s). Hard: every connection is reset now. */
  async stop(hard = false): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((r) => server.close(() => r()));
    server.closeIdleConnections();
    if (!hard) {
      const deadline = Date.now() + 5000;
      while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    }
    this.stopSignal.fire();
    for (const s of this.sockets) s.resetAndDestroy();
    await closed;
  }

  // ---- request handling ----

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.inFlight++;
    this.lastActivity = Date.now();
    responses.set(req, res);
    // Kept: Node detaches req.socket once the request is destroyed.
    requestSockets.set(req, req.socket);
    let record: RequestRecord | undefined;
    res.on('close', () => {
      this.inFlight--;
      this.lastActivity = Date.now();
      if (record && record.status === undefined) record.status = res.headersSent ? res.statusCode : 0;
    });
    const requestId = randomBytes(8).toString('hex').toUpperCase();
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('x-amz-id-2', randomBytes(24).toString('base64'));
    res.setHeader('server', 'AmazonS3 (stand-in)');
    let call: S3Call;
    try {
      call = classify(req.method ?? 'GET', req.url ?? '/', req.headers);
    } catch (e) {
      call = { operation: 'Unsupported', method: req.method ?? 'GET', query: new URLSearchParams(), headers: req.headers };
      record = this.record(call, undefined);
      this.send(req, res, record, this.errorReply(call, e, requestId));
      return;
    }
    const principal = /Credential=([^/,\s]+)\//.exec(String(req.headers.authorization ?? ''))?.[1];
    const rec = (record = this.record(call, principal));
    try {
      const before = this.fault(call, principal, 'before');
      if (before) {
        rec.fault = `${before.rule.action.kind} before`;
        if (before.rule.action.kind === 'stall') await before.stall(this.stopSignal.promise);
        else if (
          before.rule.action.kind === 'reset' &&
          before.rule.action.afterBytes !== undefined &&
          (call.operation === 'PutObject' || call.operation === 'UploadPart')
        )
          resetAfter.set(req, before.rule.action.afterBytes);
        else if (before.rule.action.kind === 'reset') return this.reset(req, rec);
        else return this.send(req, res, rec, this.faultReply(call, before.rule.action, requestId));
      }
      await this.authenticate(req, call);
      await this.authorizeCall(call, principal!);
      let reply = await this.dispatch(req, call, principal!);
      const after = this.fault(call, principal, 'after');
      if (after) {
        rec.fault = `${after.rule.action.kind} after`;
        const action = after.rule.action;
        if (action.kind === 'stall') await after.stall(this.stopSignal.promise);
        else if (action.kind === 'reset' && !(action.afterBytes && reply.body instanceof Readable)) {
          if (reply.body instanceof Readable) reply.body.destroy();
          return this.reset(req, rec);
        } else if (action.kind === 'reset') reply = { ...reply, body: truncate(reply.body as Readable, action.afterBytes!, () => this.reset(req, rec)) };
        else {
          if (reply.body instanceof Readable) reply.body.destroy();
          reply = this.faultReply(call, action, requestId);
        }
      }
      this.send(req, res, rec, reply);
    } catch (e) {
      if ((e as Error).message === 'server stopped' || socketOf(req).destroyed) {
        rec.status ??= 0;
        socketOf(req).destroy();
        return;
      }
      this.send(req, res, rec, this.errorReply(call, e, requestId));
    }
  }

  private record(call: S3Call, principal: string | undefined): RequestRecord {
    const r: RequestRecord = {
      id: ++this.requestIds,
      at: new Date(),
      method: call.method,
      operation: call.operation,
      bucket: call.bucket,
      key: call.key,
      uploadId: call.uploadId,
      partNumber: call.partNumber,
      principal,
    };
    this.log.push(r);
    return r;
  }

  private fault(call: S3Call, principal: string | undefined, when: 'before' | 'after'): FaultImpl | undefined {
    for (const f of this.faultSet) if (f.matches(call, principal, when)) return f;
    return undefined;
  }

  private reset(req: http.IncomingMessage, record: RequestRecord): void {
    record.status = 0;
    socketOf(req).resetAndDestroy();
  }

  private faultReply(call: S3Call, action: { status?: number; code?: string }, requestId: string): Reply {
    const status = action.status ?? 500;
    const code = action.code ?? (status === 503 ? 'SlowDown' : 'InternalError');
    return this.errorReply(call, new S3RequestError(status, code, DEFAULT_MESSAGES[code] ?? code), requestId);
  }

  private errorReply(call: S3Call, e: unknown, requestId: string): Reply {
    let err: S3RequestError;
    if (e instanceof S3RequestError) err = e;
    else {
      // A bug in the stand-in must not pass for a transient S3 error unnoticed.
      process.stderr.write(`S3 stand-in internal error on ${call.method} ${call.bucket}/${call.key}: ${(e as Error).stack ?? e}\n`);
      err = new S3RequestError(500, 'InternalError', DEFAULT_MESSAGES.InternalError);
    }
    const resource = call.bucket ? `/${call.bucket}${call.key !== undefined ? `/${call.key}` : ''}` : '/';
    const extra = [
      call.key !== undefined ? `<Key>${xmlEscape(call.key)}</Key>` : call.bucket ? `<BucketName>${xmlEscape(call.bucket)}</BucketName>` : '',
      `<Resource>${xmlEscape(resource)}</Resource>`,
    ].join('');
    const body = xml(
      `<Error><Code>${err.code}</Code><Message>${xmlEscape(err.message)}</Message>${extra}<RequestId>${requestId}</RequestId><HostId>stand-in</HostId></Error>`,
    );
    return { status: err.status, headers: { 'content-type': 'application/xml' }, body };
  }

  private send(req: http.IncomingMessage, res: http.ServerResponse, record: RequestRecord, reply: Reply): void {
    if (res.headersSent || socketOf(req).destroyed) return;
    const isHead = req.method === 'HEAD';
    const body = isHead ? undefined : reply.body;
    record.status = reply.status;
    if (reply.status >= 300 && Buffer.isBuffer(reply.body)) record.code = /<Code>([^<]+)<\/Code>/.exec(reply.body.toString())?.[1];
    res.statusCode = reply.status;
    for (const [k, v] of Object.entries(reply.headers)) res.setHeader(k, v);
    if (body === undefined) {
      if (!isHead || !('content-length' in reply.headers)) res.setHeader('content-length', 0);
      if (reply.body instanceof Readable) reply.body.destroy();
      res.end();
    } else if (Buffer.isBuffer(body)) {
      res.setHeader('content-length', body.length);
      res.end(body);
    } else {
      pipeline(body, res).catch(() => socketOf(req).destroy());
    }
  }

  private async authenticate(req: http.IncomingMessage, call: S3Call): Promise<void> {
    const auth = String(req.headers.authorization ?? '');
    if (!auth) throw new S3RequestError(403, 'AccessDenied', 'Anonymous requests are not allowed by this stand-in (sign with SigV4).');
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
    if (!m)
      throw new S3RequestError(
        400,
        'AuthorizationHeaderMalformed',
        'The authorization header is malformed (only AWS4-HMAC-SHA256 header signing is supported).',
      );
    const [, accessKeyId, , region, service, signedHeaders, signature] = m;
    const secretAccessKey = this.credentials.get(accessKeyId);
    if (secretAccessKey === undefined) throw new S3RequestError(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
    const amzDate = String(req.headers['x-amz-date'] ?? '');
    const dm = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
    if (!dm) throw new S3RequestError(403, 'AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
    const signingDate = new Date(Date.UTC(+dm[1], +dm[2] - 1, +dm[3], +dm[4], +dm[5], +dm[6]));
    if (Math.abs(Date.now() - signingDate.getTime()) > MAX_SKEW_MS)
      throw new S3RequestError(403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.');
    const headers: Record<string, string> = {};
    for (const h of signedHeaders.split(';')) {
      const v = req.headers[h];
      if (v === undefined) throw new S3RequestError(403, 'SignatureDoesNotMatch', `Signed header ${h} is missing from the request.`);
      headers[h] = Array.isArray(v) ? v.join(',') : v;
    }
    const query: Record<string, string | string[]> = {};
    for (const [k, v] of call.query) {
      const prev = query[k];
      query[k] = prev === undefined ? v : ([] as string[]).concat(prev, v);
    }
    const rawPath = (req.url ?? '/').split('?')[0];
    const signer = new SignatureV4({
      credentials: { accessKeyId, secretAccessKey },
      region,
      service,
      sha256: NodeSha256,
      uriEscapePath: false,
      applyChecksum: false,
    });
    const signed = await signer.sign(
      { method: call.method, protocol: 'http:', hostname: '127.0.0.1', path: rawPath, query, headers },
      { signingDate, signingRegion: region, signingService: service },
    );
    const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization ?? signed.headers.Authorization))?.[1];
    if (expected !== signature)
      throw new S3RequestError(
        403,
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      );
  }

  private async allowed(principal: string, call: S3Call, request: S3AuthRequest, operation: S3Operation | 'implicit' = call.operation): Promise<boolean> {
    if (!this.authorizer) return true;
    return (await this.authorizer({ ...request, principal, operation, bucket: call.bucket, key: call.key })) === true;
  }

  private async authorizeCall(call: S3Call, principal: string): Promise<void> {
    for (const r of authRequests(call)) if (!(await this.allowed(principal, call, r))) throw new S3RequestError(403, 'AccessDenied', 'Access Denied');
  }

  /**
   * GET/HEAD of a missing key: 404 only for a caller allowed s3:ListBucket, else 403, so that
   * callers cannot probe for keys: https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html
   * and https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html ("Permissions").
   */
  private async missing(call: S3Call, principal: string): Promise<never> {
    // The implicit check carries no s3:prefix: a ListBucket grant limited to a prefix does not reveal keys.
    const list: S3AuthRequest = { action: 's3:ListBucket', resource: bucketArn(call.bucket!), context: { 'aws:SecureTransport': 'true' } };
    if (!(await this.allowed(principal, call, list, 'implicit'))) throw new S3RequestError(403, 'AccessDenied', 'Access Denied');
    throw new S3RequestError(404, 'NoSuchKey', DEFAULT_MESSAGES.NoSuchKey);
  }

  private bucket(call: S3Call): Bucket {
    const b = this.buckets.get(call.bucket ?? '');
    if (!b) throw new S3RequestError(404, 'NoSuchBucket', DEFAULT_MESSAGES.NoSuchBucket);
    return b;
  }

  private async dispatch(req: http.IncomingMessage, call: S3Call, principal: string): Promise<Reply> {
    if (call.key !== undefined && Buffer.byteLength(call.key) > MAX_KEY_BYTES) throw new S3RequestError(400, 'KeyTooLongError', 'Your key is too long');
    switch (call.operation) {
      case 'CreateBucket':
        this.createBucket(call.bucket!);
        return { status: 200, headers: { location: `/${call.bucket}` } };
      case 'HeadBucket':
        this.bucket(call);
        return { status: 200, headers: {} };
      case 'ListObjectsV2':
        return this.listObjectsV2(this.bucket(call), call);
      case 'ListMultipartUploads':
        return this.listUploads(this.bucket(call), call);
      case 'GetObject':
      case 'HeadObject':
        return this.getObject(this.bucket(call), call, principal);
      case 'PutObject':
        return this.putObject(req, this.bucket(call), call);
      case 'DeleteObject':
        return this.deleteObject(this.bucket(call), call);
      case 'CreateMultipartUpload':
        return this.createUpload(this.bucket(call), call, principal);
      case 'UploadPart':
        return this.uploadPart(req, this.bucket(call), call);
      case 'CompleteMultipartUpload':
        return this.completeUpload(req, this.bucket(call), call);
      case 'AbortMultipartUpload':
        return this.abortUpload(this.bucket(call), call);
      default:
        throw new S3RequestError(501, 'NotImplemented', `The S3 stand-in does not implement ${call.operation} (${call.method} ${req.url}).`);
    }
  }

  // ---- objects ----

  /**
   * Streams a request body to a new file; rejects (and removes the file) unless it arrived whole and
   * intact: Content-Length (or x-amz-decoded-content-length of an aws-chunked body), Content-MD5,
   * x-amz-content-sha256 and any x-amz-checksum-* (header or trailer) are checked.
   */
  private async receive(req: http.IncomingMessage, limit: number): Promise<DataFile & { md5: Buffer; checksum?: StoredChecksum }> {
    const chunked =
      String(req.headers['content-encoding'] ?? '').includes('aws-chunked') || String(req.headers['x-amz-content-sha256'] ?? '').startsWith('STREAMING-');
    const lengthHeader = chunked ? req.headers['x-amz-decoded-content-length'] : req.headers['content-length'];
    // An aws-chunked body may travel with Transfer-Encoding: chunked (no Content-Length), as the SDK sends it.
    if (
      lengthHeader === undefined ||
      (req.headers['content-length'] === undefined && !(chunked && /chunked/i.test(String(req.headers['transfer-encoding'] ?? ''))))
    )
      throw new S3RequestError(
        411,
        'MissingContentLength',
        `You must provide the ${chunked ? 'x-amz-decoded-content-length and ' : ''}Content-Length HTTP header.`,
      );
    const expected = Number(lengthHeader);
    if (!Number.isSafeInteger(expected) || expected < 0) throw new S3RequestError(400, 'InvalidArgument', `Bad content length ${String(lengthHeader)}`);
    if (expected > limit) throw new S3RequestError(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size');
    const declared = declaredChecksum(req.headers);
    const checksum = declared && new Checksum(declared.name);
    const file = path.join(this.dataDir, randomUUID());
    const md5 = createHash('md5');
    const claimedSha = String(req.headers['x-amz-content-sha256'] ?? '');
    const sha = /^[0-9a-f]{64}$/.test(claimedSha) ? createHash('sha256') : undefined;
    let size = 0;
    const cutAt = resetAfter.get(req);
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        if (cutAt !== undefined && size + chunk.length >= cutAt) {
          socketOf(req).resetAndDestroy();
          return cb(new Error('connection reset by an injected fault'));
        }
        size += chunk.length;
        md5.update(chunk);
        sha?.update(chunk);
        checksum?.update(chunk);
        cb(null, chunk);
      },
    });
    // The client went away (e.g. while a fault stalled this request) before sending the whole body.
    if (!req.complete && (req.destroyed || socketOf(req).destroyed)) throw new Error('the request body was interrupted');
    const decoder = chunked ? new AwsChunkedDecoder() : undefined;
    const first = decoder ?? count;
    // Not pipeline(req, ...): that destroys the request (and its socket) on a bad body, and S3 answers one with 400.
    const interrupted = () => {
      if (!req.complete) first.destroy(new Error('the request body was interrupted'));
    };
    req.once('close', interrupted);
    req.once('error', interrupted);
    req.pipe(first);
    try {
      await (decoder ? pipeline(decoder, count, fs.createWriteStream(file)) : pipeline(count, fs.createWriteStream(file)));
      if (size !== expected)
        throw new S3RequestError(400, 'IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header.');
      const digest = md5.digest();
      const contentMd5 = req.headers['content-md5'];
      if (contentMd5 !== undefined && Buffer.from(String(contentMd5), 'base64').compare(digest) !== 0)
        throw new S3RequestError(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
      if (sha && sha.digest('hex') !== claimedSha)
        throw new S3RequestError(400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
      let stored: StoredChecksum | undefined;
      if (declared && checksum) {
        const value = declared.value ?? decoder?.trailers[`x-amz-checksum-${declared.name}`];
        if (value === undefined)
          throw new S3RequestError(400, 'InvalidRequest', `The x-amz-checksum-${declared.name} trailer announced by x-amz-trailer is missing.`);
        const actual = checksum.digest();
        if (value !== actual)
          throw new S3RequestError(400, 'BadDigest', `The ${declared.name.toUpperCase()} you specified did not match the calculated checksum.`);
        stored = { name: declared.name, value };
      }
      return { path: file, size, md5: digest, checksum: stored };
    } catch (e) {
      fs.rmSync(file, { force: true });
      req.unpipe(first);
      // The rest of a refused body is read and dropped; the connection is not reused.
      responses.get(req)?.setHeader('connection', 'close');
      req.resume();
      throw e;
    } finally {
      req.off('close', interrupted);
      req.off('error', interrupted);
    }
  }

  /** Content-Type and the like, plus x-amz-meta-*, as stored with the object. */
  private objectHeaders(call: S3Call): Record<string, string> {
    const out: Record<string, string> = {};
    let metaBytes = 0;
    for (const [k, v] of Object.entries(call.headers)) {
      if (v === undefined) continue;
      const value = Array.isArray(v) ? v.join(',') : v;
      if (k.startsWith('x-amz-meta-')) {
        out[k] = value;
        metaBytes += Buffer.byteLength(k.slice('x-amz-meta-'.length)) + Buffer.byteLength(value);
      } else if (k === 'content-encoding') {
        // aws-chunked is how the body travelled, not how the object is stored.
        const kept = value
          .split(',')
          .map((t) => t.trim())
          .filter((t) => t && t !== 'aws-chunked');
        if (kept.length) out[k] = kept.join(',');
      } else if (SYSTEM_HEADERS.includes(k)) out[k] = value;
    }
    if (metaBytes > MAX_USER_METADATA_BYTES)
      throw new S3RequestError(400, 'MetadataTooLarge', 'Your metadata headers exceed the maximum allowed metadata size.');
    out['content-type'] ??= 'binary/octet-stream';
    return out;
  }

  private conditions(call: S3Call): { ifNoneMatch?: string; ifMatch?: string } {
    const ifNoneMatch = call.headers['if-none-match'] as string | undefined;
    const ifMatch = call.headers['if-match'] as string | undefined;
    // If-None-Match on writes only takes '*': https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html
    if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') throw new S3RequestError(501, 'NotImplemented', 'If-None-Match on a write only supports *.');
    return { ifNoneMatch, ifMatch };
  }

  /**
   * Makes `obj` the key's object if the write's conditions hold now; synchronous, hence atomic.
   * https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html and
   * https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html (If-Match, If-None-Match: 412,
   * 409 ConditionalRequestConflict "if a conflicting operation occurs during the upload").
   */
  private commit(b: Bucket, key: string, obj: StoredObject, cond: { ifNoneMatch?: string; ifMatch?: string }, since: number): void {
    if (cond.ifNoneMatch !== undefined || cond.ifMatch !== undefined) {
      if ((b.changed.get(key) ?? -1) > since) throw new S3RequestError(409, 'ConditionalRequestConflict', DEFAULT_MESSAGES.ConditionalRequestConflict);
      const current = b.objects.get(key);
      if (cond.ifNoneMatch !== undefined && current) throw new S3RequestError(412, 'PreconditionFailed', DEFAULT_MESSAGES.PreconditionFailed);
      if (cond.ifMatch !== undefined) {
        if (!current) throw new S3RequestError(404, 'NoSuchKey', DEFAULT_MESSAGES.NoSuchKey);
        if (cond.ifMatch.trim() !== '*' && unquote(cond.ifMatch) !== unquote(current.etag))
          throw new S3RequestError(412, 'PreconditionFailed', DEFAULT_MESSAGES.PreconditionFailed);
      }
    }
    const old = b.objects.get(key);
    b.objects.set(key, obj);
    b.changed.set(key, ++this.counter);
    if (!old) b.sorted = undefined;
    if (old) discard(old.files);
  }

  private async putObject(req: http.IncomingMessage, b: Bucket, call: S3Call): Promise<Reply> {
    const since = this.counter;
    const cond = this.conditions(call);
    const headers = this.objectHeaders(call);
    continueBody(req);
    const file = await this.receive(req, MAX_PUT_BYTES);
    const etag = `"${file.md5.toString('hex')}"`;
    try {
      this.commit(
        b,
        call.key!,
        { files: [{ path: file.path, size: file.size }], size: file.size, etag, checksum: file.checksum, lastModified: new Date(), headers },
        cond,
        since,
      );
    } catch (e) {
      discard([file]);
      throw e;
    }
    return { status: 200, headers: { etag, ...(file.checksum ? { [`x-amz-checksum-${file.checksum.name}`]: file.checksum.value } : {}) } };
  }

  private async getObject(b: Bucket, call: S3Call, principal: string): Promise<Reply> {
    const obj = b.objects.get(call.key!);
    if (!obj) return this.missing(call, principal);
    const h = call.headers;
    if (h['if-match'] !== undefined && unquote(String(h['if-match'])) !== unquote(obj.etag) && String(h['if-match']).trim() !== '*')
      throw new S3RequestError(412, 'PreconditionFailed', DEFAULT_MESSAGES.PreconditionFailed);
    const common: Record<string, string | number> = {
      ...obj.headers,
      etag: obj.etag,
      'last-modified': obj.lastModified.toUTCString(),
      'accept-ranges': 'bytes',
    };
    if (
      h['if-none-match'] !== undefined &&
      String(h['if-none-match'])
        .split(',')
        .some((t) => t.trim() === '*' || unquote(t) === unquote(obj.etag))
    )
      return { status: 304, headers: { etag: obj.etag, 'last-modified': common['last-modified'] } };
    for (const [q, header] of [
      ['response-content-type', 'content-type'],
      ['response-content-disposition', 'content-disposition'],
      ['response-content-encoding', 'content-encoding'],
      ['response-content-language', 'content-language'],
      ['response-cache-control', 'cache-control'],
      ['response-expires', 'expires'],
    ]) {
      const v = call.query.get(q);
      if (v !== null) common[header] = v;
    }
    let start = 0;
    let end = obj.size - 1;
    let status = 200;
    // Buckets here are unversioned: only the null version exists.
    const versionId = call.query.get('versionId');
    if (versionId !== null && versionId !== 'null') throw new S3RequestError(400, 'InvalidArgument', 'Invalid version id specified');
    const range = /^bytes=(\d*)-(\d*)$/.exec(String(h.range ?? ''));
    const partNumber = call.query.get('partNumber');
    if (partNumber !== null) {
      // One part of a multipart object (a single PUT is part 1): https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html
      const n = Number(partNumber);
      const multipart = /-\d+"$/.test(obj.etag);
      if (range) throw new S3RequestError(400, 'InvalidRequest', 'Cannot specify both Range header and partNumber query parameter');
      if (!Number.isInteger(n) || n < 1 || n > (multipart ? obj.files.length : 1))
        throw new S3RequestError(416, 'InvalidPartNumber', 'The requested partnumber is not satisfiable');
      start = obj.files.slice(0, n - 1).reduce((sum, f) => sum + f.size, 0);
      end = multipart ? start + obj.files[n - 1].size - 1 : obj.size - 1;
      if (multipart) {
        status = 206;
        common['content-range'] = `bytes ${start}-${end}/${obj.size}`;
        common['x-amz-mp-parts-count'] = obj.files.length;
      }
    } else if (range && (range[1] || range[2])) {
      if (range[1]) {
        start = Number(range[1]);
        if (range[2]) end = Math.min(Number(range[2]), obj.size - 1);
      } else start = Math.max(obj.size - Number(range[2]), 0);
      if (start >= obj.size || start > end) {
        throw new S3RequestError(416, 'InvalidRange', 'The requested range is not satisfiable');
      }
      status = 206;
      common['content-range'] = `bytes ${start}-${end}/${obj.size}`;
    }
    common['content-length'] = Math.max(end - start + 1, 0);
    if (obj.checksum && status === 200 && String(h['x-amz-checksum-mode'] ?? '').toUpperCase() === 'ENABLED') {
      common[`x-amz-checksum-${obj.checksum.name}`] = obj.checksum.value;
      common['x-amz-checksum-type'] = 'FULL_OBJECT';
    }
    if (call.operation === 'HeadObject') return { status, headers: common };
    // Open now, in this tick: a later overwrite unlinks the files, but open descriptors keep this version.
    const handles = obj.files.map((f) => ({ fd: fs.openSync(f.path, 'r'), size: f.size }));
    return { status, headers: common, body: Readable.from(readSlices(handles, start, end), { objectMode: false }) };
  }

  private deleteObject(b: Bucket, call: S3Call): Reply {
    const old = b.objects.get(call.key!);
    if (old) {
      b.objects.delete(call.key!);
      b.changed.set(call.key!, ++this.counter);
      b.sorted = undefined;
      discard(old.files);
    }
    return { status: 204, headers: {} };
  }

  private listObjectsV2(b: Bucket, call: S3Call): Reply {
    const q = call.query;
    const prefix = q.get('prefix') ?? '';
    const delimiter = q.get('delimiter') || undefined;
    const maxKeysParam = q.get('max-keys');
    const maxKeys = maxKeysParam === null ? 1000 : Number(maxKeysParam);
    if (!Number.isInteger(maxKeys) || maxKeys < 0) throw new S3RequestError(400, 'InvalidArgument', 'Provided max-keys not an integer or within integer range');
    const limit = Math.min(maxKeys, 1000);
    const encode = q.get('encoding-type') === 'url';
    if (q.has('encoding-type') && !encode) throw new S3RequestError(400, 'InvalidArgument', 'Invalid Encoding Method specified in Request');
    const token = q.get('continuation-token');
    let after = q.get('start-after') ?? '';
    let skipPrefix: string | undefined;
    if (token !== null) {
      try {
        const t = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { a: string; p?: string };
        if (typeof t.a !== 'string') throw new Error();
        after = t.a;
        skipPrefix = t.p;
      } catch {
        throw new S3RequestError(400, 'InvalidArgument', 'The continuation token provided is incorrect');
      }
    }
    b.sorted ??= [...b.objects.keys()].sort(utf8Order);
    const contents: string[] = [];
    const prefixes: string[] = [];
    let truncated = false;
    let last: { a: string; p?: string } | undefined;
    for (const key of b.sorted) {
      if (!key.startsWith(prefix) || (after && utf8Order(key, after) <= 0) || (skipPrefix && key.startsWith(skipPrefix))) continue;
      let common: string | undefined;
      if (delimiter) {
        const i = key.indexOf(delimiter, prefix.length);
        if (i >= 0) common = key.slice(0, i + delimiter.length);
      }
      if (common !== undefined && prefixes[prefixes.length - 1] === common) continue;
      if (contents.length + prefixes.length >= limit) {
        truncated = true;
        break;
      }
      if (common !== undefined) {
        prefixes.push(common);
        last = { a: key, p: common };
        skipPrefix = common;
      } else {
        contents.push(key);
        last = { a: key };
      }
    }
    const enc = (s: string) => xmlEscape(encode ? encodeURIComponent(s).replace(/%2F/g, '/') : s);
    const parts = [
      `<ListBucketResult ${NS}>`,
      `<Name>${xmlEscape(b.name)}</Name><Prefix>${enc(prefix)}</Prefix>`,
      delimiter ? `<Delimiter>${enc(delimiter)}</Delimiter>` : '',
      `<MaxKeys>${maxKeys}</MaxKeys><KeyCount>${contents.length + prefixes.length}</KeyCount><IsTruncated>${truncated}</IsTruncated>`,
      token !== null ? `<ContinuationToken>${xmlEscape(token)}</ContinuationToken>` : '',
      truncated && last ? `<NextContinuationToken>${Buffer.from(JSON.stringify(last)).toString('base64')}</NextContinuationToken>` : '',
      q.has('start-after') ? `<StartAfter>${enc(q.get('start-after')!)}</StartAfter>` : '',
      encode ? '<EncodingType>url</EncodingType>' : '',
      ...contents.map((k) => {
        const o = b.objects.get(k)!;
        return `<Contents><Key>${enc(k)}</Key><LastModified>${o.lastModified.toISOString()}</LastModified><ETag>${xmlEscape(o.etag)}</ETag><Size>${o.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
      }),
      ...prefixes.map((p) => `<CommonPrefixes><Prefix>${enc(p)}</Prefix></CommonPrefixes>`),
      '</ListBucketResult>',
    ];
    return { status: 200, headers: { 'content-type': 'application/xml' }, body: xml(parts.join('')) };
  }

  // ---- multipart ----

  private upload(b: Bucket, call: S3Call): Upload {
    const u = b.uploads.get(call.uploadId ?? '');
    if (!u || u.key !== call.key) throw new S3RequestError(404, 'NoSuchUpload', DEFAULT_MESSAGES.NoSuchUpload);
    return u;
  }

  private createUpload(b: Bucket, call: S3Call, principal: string): Reply {
    const id = randomBytes(24).toString('base64url');
    b.uploads.set(id, {
      id,
      key: call.key!,
      initiated: new Date(),
      initiator: principal,
      since: this.counter,
      headers: this.objectHeaders(call),
      parts: new Map(),
    });
    const body = xml(
      `<InitiateMultipartUploadResult ${NS}><Bucket>${xmlEscape(b.name)}</Bucket><Key>${xmlEscape(call.key!)}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`,
    );
    return { status: 200, headers: { 'content-type': 'application/xml' }, body };
  }

  private async uploadPart(req: http.IncomingMessage, b: Bucket, call: S3Call): Promise<Reply> {
    const n = Number(call.partNumber);
    if (!Number.isInteger(n) || n < 1 || n > MAX_PARTS)
      throw new S3RequestError(400, 'InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive');
    this.upload(b, call);
    continueBody(req);
    const file = await this.receive(req, MAX_PUT_BYTES);
    const etag = `"${file.md5.toString('hex')}"`;
    let upload: Upload;
    try {
      // Aborted or completed while the part was on its way: the part is not kept.
      upload = this.upload(b, call);
    } catch (e) {
      discard([file]);
      throw e;
    }
    const old = upload.parts.get(n);
    upload.parts.set(n, { path: file.path, size: file.size, etag });
    if (old) discard([old]);
    return { status: 200, headers: { etag, ...(file.checksum ? { [`x-amz-checksum-${file.checksum.name}`]: file.checksum.value } : {}) } };
  }

  /** https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html */
  private async completeUpload(req: http.IncomingMessage, b: Bucket, call: S3Call): Promise<Reply> {
    const cond = this.conditions(call);
    this.upload(b, call);
    continueBody(req);
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      total += c.length;
      if (total > 4 * 1024 * 1024) throw new S3RequestError(400, 'MalformedXML', 'The XML you provided was too large.');
      chunks.push(c);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    const listed = [...text.matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => ({
      number: Number(/<PartNumber>\s*(\d+)\s*<\/PartNumber>/.exec(m[1])?.[1]),
      etag: xmlUnescape(/<ETag>([\s\S]*?)<\/ETag>/.exec(m[1])?.[1] ?? ''),
    }));
    if (!/<CompleteMultipartUpload[\s>]/.test(text) || listed.length === 0 || listed.some((p) => !Number.isInteger(p.number)))
      throw new S3RequestError(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');
    const upload = this.upload(b, call);
    const parts: Part[] = [];
    for (let i = 0; i < listed.length; i++) {
      if (i > 0 && listed[i].number <= listed[i - 1].number)
        throw new S3RequestError(400, 'InvalidPartOrder', 'The list of parts was not in ascending order. Parts must be ordered by part number.');
      const part = upload.parts.get(listed[i].number);
      if (!part || unquote(part.etag) !== unquote(listed[i].etag))
        throw new S3RequestError(
          400,
          'InvalidPart',
          "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.",
        );
      parts.push(part);
    }
    for (let i = 0; i < parts.length - 1; i++)
      if (parts[i].size < MIN_PART_BYTES)
        throw new S3RequestError(400, 'EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.');
    const md5s = Buffer.concat(parts.map((p) => Buffer.from(unquote(p.etag), 'hex')));
    const etag = `"${createHash('md5').update(md5s).digest('hex')}-${parts.length}"`;
    const size = parts.reduce((s, p) => s + p.size, 0);
    // On 412/409 the upload stays in progress: the caller must abort it (or retry).
    this.commit(
      b,
      upload.key,
      { files: parts.map((p) => ({ path: p.path, size: p.size })), size, etag, lastModified: new Date(), headers: upload.headers },
      cond,
      upload.since,
    );
    b.uploads.delete(upload.id);
    discard([...upload.parts.values()].filter((p) => !parts.includes(p)));
    const body = xml(
      `<CompleteMultipartUploadResult ${NS}><Location>/${xmlEscape(b.name)}/${xmlEscape(upload.key)}</Location><Bucket>${xmlEscape(b.name)}</Bucket><Key>${xmlEscape(upload.key)}</Key><ETag>${xmlEscape(etag)}</ETag></CompleteMultipartUploadResult>`,
    );
    return { status: 200, headers: { 'content-type': 'application/xml' }, body };
  }

  /**
   * https://docs.aws.amazon.com/AmazonS3/latest/API/API_AbortMultipartUpload.html: a part still in
   * flight "might or might not succeed"; here it always fails (NoSuchUpload) and leaves nothing.
   */
  private abortUpload(b: Bucket, call: S3Call): Reply {
    const upload = this.upload(b, call);
    b.uploads.delete(upload.id);
    discard([...upload.parts.values()]);
    return { status: 204, headers: {} };
  }

  private listUploads(b: Bucket, call: S3Call): Reply {
    const prefix = call.query.get('prefix') ?? '';
    const uploads = [...b.uploads.values()]
      .filter((u) => u.key.startsWith(prefix))
      .sort((x, y) => utf8Order(x.key, y.key) || x.initiated.getTime() - y.initiated.getTime());
    const shown = uploads.slice(0, 1000);
    const body = xml(
      [
        `<ListMultipartUploadsResult ${NS}><Bucket>${xmlEscape(b.name)}</Bucket><Prefix>${xmlEscape(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>${uploads.length > shown.length}</IsTruncated>`,
        ...shown.map(
          (u) =>
            `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${u.id}</UploadId><Initiator><ID>${xmlEscape(u.initiator)}</ID></Initiator><StorageClass>STANDARD</StorageClass><Initiated>${u.initiated.toISOString()}</Initiated></Upload>`,
        ),
        '</ListMultipartUploadsResult>',
      ].join(''),
    );
    return { status: 200, headers: { 'content-type': 'application/xml' }, body };
  }
}

/** Sends `100 Continue` if the client waits for it: authorization and faults have passed by now. */
const responses = new WeakMap<http.IncomingMessage, http.ServerResponse>();
const requestSockets = new WeakMap<http.IncomingMessage, Socket>();
/** Requests whose connection an injected fault resets after this many body bytes. */
const resetAfter = new WeakMap<http.IncomingMessage, number>();
const socketOf = (req: http.IncomingMessage) => requestSockets.get(req)!;
function continueBody(req: http.IncomingMessage): void {
  const res = responses.get(req);
  if (/100-continue/i.test(String(req.headers.expect ?? '')) && res && !res.headersSent) res.writeContinue();
}

function discard(files: readonly DataFile[]): void {
  for (const f of files) fs.rm(f.path, { force: true }, () => undefined);
}

/** Bytes start..end (inclusive) of the concatenated files; closes every descriptor however it ends. */
async function* readSlices(handles: { fd: number; size: number }[], start: number, end: number): AsyncGenerator<Buffer> {
  try {
    let offset = 0;
    for (const h of handles) {
      const s = Math.max(start - offset, 0);
      const e = Math.min(end - offset, h.size - 1);
      if (s <= e)
        for await (const chunk of fs.createReadStream('', { fd: h.fd, start: s, end: e, autoClose: false, highWaterMark: 256 * 1024 })) yield chunk as Buffer;
      offset += h.size;
    }
  } finally {
    for (const h of handles) fs.close(h.fd, () => undefined);
  }
}

/** Passes `bytes` bytes of `body` on, then calls `cut` (a connection reset mid-body). */
function truncate(body: Readable, bytes: number, cut: () => void): Readable {
  let sent = 0;
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (sent >= bytes) return cb();
      const slice = chunk.subarray(0, bytes - sent);
      sent += slice.length;
      cb(null, slice);
      if (sent >= bytes) setTimeout(() => (body.destroy(), cut()), 50);
    },
  });
  return body.pipe(out);
}
