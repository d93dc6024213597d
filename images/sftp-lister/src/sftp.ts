/**
 * SFTP side: a host-key-verified connection (ssh2), folder listing, and a file reader that keeps
 * several READ requests in flight (ssh2-sftp-client's stream issues one at a time, which caps
 * throughput at a fraction of OpenSSH's client).
 */
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { Client, SFTPWrapper, Stats } from 'ssh2';
import type { Config } from './config';

/** Errors that retrying cannot fix (authentication, host key, configuration). */
export class FatalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FatalError';
  }
}

/** The server could not be reached or the SSH session not set up (exit 3 when the run never got going). */
export class ConnectError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConnectError';
  }
}

/** SFTP status codes (draft-ietf-secsh-filexfer-02, section 7). */
export const SFTP_NO_SUCH_FILE = 2;
export const SFTP_PERMISSION_DENIED = 3;
export const SFTP_OP_UNSUPPORTED = 8;

export function sftpCode(e: unknown): number | undefined {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

/** OpenSSH's fingerprint format: `SHA256:` + unpadded base64 of sha256(host key blob). */
export function fingerprint(hostKeyBlob: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(hostKeyBlob).digest('base64').replace(/=+$/, '')}`;
}

export interface Connection {
  readonly sftp: SFTPWrapper;
  readonly client: Client;
  /** Set once the connection is gone (closed, errored or reset). */
  closed: boolean;
  /** Calls `fn` once when the connection goes away; returns an unsubscribe function. */
  onClosed(fn: (reason: string) => void): () => void;
  close(): void;
}

/** The key type named inside an SSH public key blob (RFC 4253 6.6: string type, then the key data). */
export function keyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return n > 0 && n < 64 && 4 + n <= blob.length ? blob.subarray(4, 4 + n).toString('latin1') : 'unknown';
}

// ssh2's own list, in its order of preference (ed25519 first when the platform has it).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const DEFAULT_HOST_KEY_ALGORITHMS: readonly string[] = require('ssh2/lib/protocol/constants').DEFAULT_SERVER_HOST_KEY;

/** The host key algorithms that negotiate a key of this type (an RSA key signs with any of three). */
function algorithmsOf(type: string): string[] {
  return type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type];
}

class HostKeyMismatch extends Error {
  constructor(
    readonly type: string,
    readonly presented: string,
  ) {
    super(`host key ${type} ${presented} not accepted`);
  }
}

/**
 * Connects, verifying the host key. A server may hold several host keys (OpenSSH: RSA, ECDSA and
 * ED25519; AWS Transfer Family can have RSA plus ECDSA/ED25519) and the client and server negotiate
 * ONE of them; a configured fingerprint may well be of another type than the one negotiated. So when
 * the presented key is not accepted, the handshake is repeated without that key type, until a
 * configured key is presented or the server has no other type to offer. `preferred` (the type that
 * matched last time) is offered first.
 */
export async function connect(cfg: Config, preferred?: { type?: string }): Promise<Connection> {
  let algorithms = [...DEFAULT_HOST_KEY_ALGORITHMS];
  if (preferred?.type) {
    const first = algorithmsOf(preferred.type).filter((a) => algorithms.includes(a));
    algorithms = [...first, ...algorithms.filter((a) => !first.includes(a))];
  }
  const refused: string[] = [];
  for (;;) {
    try {
      const conn = await connectOnce(cfg, algorithms);
      if (preferred) preferred.type = conn.hostKeyType;
      return conn;
    } catch (e) {
      // Every type the server holds was refused: it has nothing left to offer.
      if (refused.length > 0 && e instanceof ConnectError && /no matching host key/i.test(e.message)) {
        throw new FatalError(
          `host key of ${cfg.host}:${cfg.port} is ${refused.join(', ')}, none of which is in SFTP_HOST_KEY_FINGERPRINTS; refusing to connect`,
        );
      }
      if (!(e instanceof HostKeyMismatch)) throw e;
      refused.push(`${e.type} ${e.presented}`);
      const left = algorithms.filter((a) => !algorithmsOf(e.type).includes(a));
      if (left.length === algorithms.length || left.length === 0) {
        throw new FatalError(
          `host key of ${cfg.host}:${cfg.port} is ${refused.join(', ')}, none of which is in SFTP_HOST_KEY_FINGERPRINTS; refusing to connect`,
        );
      }
      algorithms = left;
    }
  }
}

function connectOnce(cfg: Config, hostKeyAlgorithms: string[]): Promise<Connection & { hostKeyType: string }> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let presented: string | undefined;
    let presentedType = 'unknown';
    let hostKeyRejected = false;
    let settled = false;
    const listeners = new Set<(reason: string) => void>();
    const lost = (reason: string) => {
      conn.closed = true;
      // Pending SFTP requests are not always answered when the socket dies: tell their owners.
      for (const fn of [...listeners]) fn(reason);
      listeners.clear();
    };
    const conn: Connection & { hostKeyType: string } = {
      client,
      sftp: undefined as unknown as SFTPWrapper,
      closed: false,
      hostKeyType: 'unknown',
      onClosed(fn) {
        if (conn.closed) {
          fn('connection already closed');
          return () => undefined;
        }
        listeners.add(fn);
        return () => listeners.delete(fn);
      },
      close() {
        conn.closed = true;
        client.end();
      },
    };
    const fail = (err: Error) => {
      lost(err.message);
      if (settled) return;
      settled = true;
      client.destroy();
      reject(err);
    };
    client.on('error', (err: Error & { level?: string }) => {
      if (hostKeyRejected) return fail(new HostKeyMismatch(presentedType, presented!));
      if (err.level === 'client-authentication') {
        return fail(new FatalError(`authentication as '${cfg.user}' on ${cfg.host}:${cfg.port} failed (key rejected by the server)`));
      }
      if (/passphrase|Cannot parse privateKey|Encrypted private/i.test(err.message)) {
        return fail(new FatalError(`private key cannot be used: ${err.message}`));
      }
      fail(new ConnectError(`SFTP connection to ${cfg.host}:${cfg.port} failed: ${err.message}`, { cause: err }));
    });
    client.on('close', () => {
      lost(`SFTP connection to ${cfg.host}:${cfg.port} closed`);
      fail(new ConnectError(`SFTP connection to ${cfg.host}:${cfg.port} closed before it was ready`));
    });
    client.on('ready', () => {
      client.sftp((err, sftp) => {
        if (err) return fail(new ConnectError(`SFTP subsystem unavailable on ${cfg.host}:${cfg.port}: ${err.message}`));
        (conn as { sftp: SFTPWrapper }).sftp = sftp;
        conn.hostKeyType = presentedType;
        sftp.on('close', () => lost('SFTP channel closed'));
        sftp.on('error', (e: Error) => lost(`SFTP channel error: ${e.message}`));
        settled = true;
        resolve(conn);
      });
    });
    try {
      client.connect({
        host: cfg.host,
        port: cfg.port,
        username: cfg.user,
        privateKey: cfg.privateKey,
        passphrase: cfg.passphrase,
        readyTimeout: cfg.connectTimeoutMs,
        keepaliveInterval: 10000,
        keepaliveCountMax: 3,
        algorithms: { serverHostKey: hostKeyAlgorithms as never },
        hostVerifier: (key: Buffer) => {
          presented = fingerprint(key);
          presentedType = keyType(key);
          hostKeyRejected = !cfg.hostKeyFingerprints.includes(presented);
          return !hostKeyRejected;
        },
      });
      // SFTP is request/response: without TCP_NODELAY, Nagle + delayed ACK stall small requests ~40 ms.
      client.setNoDelay(true);
    } catch (e) {
      // ssh2 throws synchronously for keys it cannot parse (or wrong passphrase).
      fail(new FatalError(`private key cannot be used: ${(e as Error).message}`));
    }
  });
}

export interface RemoteFile {
  /** Full remote path, as used in SFTP requests. */
  readonly path: string;
  /** Path relative to the listed folder, '/'-separated: what globs match and keys are built from. */
  readonly rel: string;
  readonly size: number;
  /** Modification time, whole seconds since the epoch (SFTP's resolution). */
  readonly mtime: number;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

type DirEntry = { filename: string; attrs: Stats };

/**
 * Reads a whole folder with `depth` READDIR requests in flight on one handle (each returns the next
 * batch, ~100 entries with OpenSSH): one round trip per batch otherwise dominates big folders. The
 * batches' order does not matter, only that together they are the whole folder.
 */
async function readdir(sftp: SFTPWrapper, dir: string, depth = 4): Promise<DirEntry[]> {
  const handle = await new Promise<Buffer>((resolve, reject) => sftp.opendir(dir, (err, h) => (err ? reject(withPath(err, dir)) : resolve(h))));
  const batch = () =>
    new Promise<DirEntry[] | null>((resolve, reject) =>
      sftp.readdir(handle, (err, list) => {
        if (err) return (err as { code?: unknown }).code === 1 /* EOF */ ? resolve(null) : reject(withPath(err, dir));
        resolve(list as DirEntry[]);
      }),
    );
  const out: DirEntry[] = [];
  const inFlight: Promise<DirEntry[] | null>[] = [];
  try {
    for (;;) {
      while (inFlight.length < depth) {
        const p = batch();
        p.catch(() => undefined); // awaited in order below
        inFlight.push(p);
      }
      const list = await inFlight.shift()!;
      if (list === null) break;
      out.push(...list);
    }
    // Requests sent after the end answer EOF too.
    for (const p of inFlight) {
      const list = await p;
      if (list) out.push(...list);
    }
  } finally {
    try {
      sftp.close(handle, () => undefined);
    } catch {
      // connection already gone; the listing error (if any) is what matters
    }
  }
  return out;
}

function withPath(err: Error, p: string): Error {
  return Object.assign(new Error(`${err.message}: ${p}`), { code: (err as { code?: unknown }).code, cause: err });
}

export interface Listing {
  files: RemoteFile[];
  /** Entries not ingested, each with the reason (also logged by the caller). */
  skipped: { path: string; reason: string }[];
  /** Sub-folders (relative to the listed folder) that could not be read: their files are unknown. */
  unreadable: string[];
}

export interface ListOptions {
  recursive: boolean;
  /** Absolute remote folders never descended into (the completion move folder). */
  skipDirs?: readonly string[];
  /** Sub-folders (relative path) never descended into, e.g. matched by EXCLUDE. */
  excludeDir?: (rel: string) => boolean;
}

/**
 * Lists regular files under `dir` (only its own entries unless recursive). Symlinks and other types
 * are ignored. A sub-folder that cannot be read is reported in `unreadable` and the rest is listed
 * (the listed folder itself must be readable). ssh2 decodes names as UTF-8: a name that is not valid
 * UTF-8 decodes to U+FFFD and cannot be addressed again through it (nor become an S3 key), so it is
 * reported in `skipped`, never silently dropped.
 */
export async function listFiles(sftp: SFTPWrapper, dir: string, opts: ListOptions): Promise<Listing> {
  const out: Listing = { files: [], skipped: [], unreadable: [] };
  const skip = new Set((opts.skipDirs ?? []).map((d) => path.posix.normalize(d)));
  const walk = async (abs: string, rel: string): Promise<void> => {
    let entries: DirEntry[];
    try {
      entries = await readdir(sftp, abs);
    } catch (e) {
      if (rel === '' || sftpCode(e) !== SFTP_PERMISSION_DENIED) throw e;
      out.unreadable.push(rel);
      return;
    }
    const subdirs: [string, string][] = [];
    for (const { filename, attrs } of entries) {
      if (filename === '.' || filename === '..') continue;
      const p = path.posix.join(abs, filename);
      const r = rel ? `${rel}/${filename}` : filename;
      const type = attrs.mode & S_IFMT;
      if (type !== S_IFREG && type !== S_IFDIR) continue;
      if (filename.includes('\uFFFD')) {
        out.skipped.push({ path: p, reason: 'name is not valid UTF-8 (cannot be read through SFTP nor named in S3); rename it' });
        continue;
      }
      if (type === S_IFREG) out.files.push({ path: p, rel: r, size: attrs.size, mtime: attrs.mtime });
      else if (opts.recursive && !skip.has(path.posix.normalize(p)) && !opts.excludeDir?.(r)) subdirs.push([p, r]);
    }
    // A few folders at a time: each readdir is a round trip, the server handles them in parallel.
    for (let i = 0; i < subdirs.length; i += 8) await Promise.all(subdirs.slice(i, i + 8).map(([p, r]) => walk(p, r)));
  };
  await walk(dir, '');
  return out;
}

/** The absolute, symlink-free form of a remote path (relative paths are from the session's start folder). */
export async function realpath(sftp: SFTPWrapper, p: string): Promise<string> {
  return new Promise((resolve, reject) => sftp.realpath(p, (err, abs) => (err ? reject(withPath(err, p)) : resolve(abs))));
}

export function stat(sftp: SFTPWrapper, p: string): Promise<Stats> {
  return new Promise((resolve, reject) => sftp.stat(p, (err, s) => (err ? reject(withPath(err, p)) : resolve(s))));
}

export function unlink(sftp: SFTPWrapper, p: string): Promise<void> {
  return new Promise((resolve, reject) => sftp.unlink(p, (err) => (err ? reject(withPath(err, p)) : resolve())));
}

export function rename(sftp: SFTPWrapper, from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => sftp.rename(from, to, (err) => (err ? reject(withPath(err, `${from} -> ${to}`)) : resolve())));
}

/**
 * Moves `from` to `to`, replacing an older `to`. OpenSSH's posix-rename extension replaces atomically;
 * servers without it get a plain SFTP rename, which by the protocol refuses an existing target
 * (draft-ietf-secsh-filexfer-02 6.5), so an existing target is removed first and the rename retried.
 */
export async function moveReplacing(sftp: SFTPWrapper, from: string, to: string): Promise<void> {
  const posix = await new Promise<boolean>((resolve, reject) => {
    try {
      sftp.ext_openssh_rename(from, to, (err) => {
        if (!err) return resolve(true);
        // Announced but refused as unsupported: try the plain rename.
        if (sftpCode(err) === SFTP_OP_UNSUPPORTED) return resolve(false);
        reject(withPath(err, `${from} -> ${to}`));
      });
    } catch {
      resolve(false); // ssh2 throws when the server did not announce posix-rename@openssh.com
    }
  });
  if (posix) return;
  try {
    await rename(sftp, from, to);
  } catch (e) {
    if (sftpCode(e) === SFTP_OP_UNSUPPORTED) throw e; // no rename at all (object store): the caller copies
    const existing = await stat(sftp, to).then(
      () => true,
      () => false,
    );
    if (!existing) throw e;
    await unlink(sftp, to);
    await rename(sftp, from, to);
  }
}

/** Writes a readable stream to a new remote file (replacing it) and resolves once the server closed it. */
export function writeFile(sftp: SFTPWrapper, to: string, source: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const out = sftp.createWriteStream(to, { flags: 'w' });
    const fail = (e: Error) => {
      source.destroy();
      out.destroy();
      reject(withPath(e, to));
    };
    source.once('error', fail);
    out.once('error', fail);
    out.once('close', () => (source.readableEnded ? resolve() : reject(new Error(`${to}: closed before the copy ended`))));
    source.pipe(out);
  });
}

/** mkdir -p over SFTP (existing folders are fine). */
export async function mkdirp(sftp: SFTPWrapper, dir: string): Promise<void> {
  const parts = path.posix.normalize(dir).split('/');
  let cur = dir.startsWith('/') ? '/' : '';
  for (const part of parts) {
    if (!part || part === '.') continue;
    cur = cur ? path.posix.join(cur, part) : part;
    try {
      const s = await stat(sftp, cur);
      if ((s.mode & S_IFMT) !== S_IFDIR) throw new Error(`${cur} exists and is not a folder`);
    } catch (e) {
      if ((e as { code?: unknown }).code !== 2 /* NO_SUCH_FILE */) throw e;
      const dir = cur;
      await new Promise<void>((resolve, reject) =>
        sftp.mkdir(dir, (err) => {
          if (!err) return resolve();
          // Another worker may have created it meanwhile (SFTP v3 reports just "Failure").
          stat(sftp, dir).then(
            (st) => ((st.mode & S_IFMT) === S_IFDIR ? resolve() : reject(withPath(err, dir))),
            () => reject(withPath(err, dir)),
          );
        }),
      );
    }
  }
}

export interface ReadOptions {
  /** READ requests kept in flight. */
  readonly window: number;
  /** Bytes per READ request. */
  readonly chunk: number;
}

/**
 * Streams exactly `file.size` bytes of a remote file, in order, with up to `window` READ requests in
 * flight. Before ending it checks (fstat on the open handle) that the file still has the listed size
 * and mtime, so a consumer that completes an upload only on 'end' never stores a changed or
 * truncated file: any mismatch destroys the stream with an error instead.
 */
export class ParallelReadStream extends Readable {
  private handle?: Buffer;
  private nextPos = 0;
  private readonly inFlight: Promise<Buffer>[] = [];
  private pumping = false;
  private finished = false;
  /** Bytes handed downstream so far. */
  bytesRead = 0;
  /** sha256 of the bytes handed downstream (complete once the stream ended). */
  readonly hash = crypto.createHash('sha256');
  static fstatUnsupported = false;

  private readonly sftp: SFTPWrapper;
  private readonly unsubscribe: () => void;

  constructor(
    conn: Connection,
    private readonly file: RemoteFile,
    private readonly opts: ReadOptions,
  ) {
    // The window is the read-ahead; keep the stream's own buffer small.
    super({ highWaterMark: opts.chunk * 2 });
    this.sftp = conn.sftp;
    this.unsubscribe = conn.onClosed((reason) => this.destroy(new Error(`${reason} while reading ${file.path}`)));
  }

  override _construct(callback: (error?: Error | null) => void): void {
    this.sftp.open(this.file.path, 'r', (err, handle) => {
      if (err) return callback(withPath(err, this.file.path));
      this.handle = handle;
      callback();
    });
  }

  override _read(): void {
    void this.pump();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.unsubscribe();
    const handle = this.handle;
    this.handle = undefined;
    if (!handle) return callback(error);
    // Closing can fail when the connection is gone; the original error is what matters.
    try {
      this.sftp.close(handle, () => callback(error));
    } catch {
      callback(error);
    }
  }

  private readAt(position: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    const handle = this.handle!;
    return new Promise((resolve, reject) => {
      let got = 0;
      const more = () => {
        // A server may return fewer bytes than asked (short read): ask again for the rest.
        this.sftp.read(handle, buf, got, length - got, position + got, (err, n) => {
          if (err) return reject(withPath(err, this.file.path));
          if (n === 0) {
            return reject(new Error(`${this.file.path} ended at ${position + got} bytes but was listed with ${this.file.size}: changed while reading`));
          }
          got += n;
          if (got < length) more();
          else resolve(buf);
        });
      };
      try {
        more();
      } catch (e) {
        reject(e as Error);
      }
    });
  }

  private fill(): void {
    while (this.inFlight.length < this.opts.window && this.nextPos < this.file.size) {
      const len = Math.min(this.opts.chunk, this.file.size - this.nextPos);
      const p = this.readAt(this.nextPos, len);
      p.catch(() => undefined); // awaited in order below; avoid unhandled-rejection noise meanwhile
      this.inFlight.push(p);
      this.nextPos += len;
    }
  }

  private async verifyUnchanged(): Promise<void> {
    const s = await new Promise<Stats>((resolve, reject) =>
      this.sftp.fstat(this.handle!, (err, st) => (err ? reject(withPath(err, this.file.path)) : resolve(st))),
    ).catch((e) => {
      // Some servers do not implement FSTAT: the same check by path (the handle is still open).
      if (sftpCode(e) !== SFTP_OP_UNSUPPORTED) throw e;
      if (!ParallelReadStream.fstatUnsupported) {
        ParallelReadStream.fstatUnsupported = true;
        this.emit('notice', 'the SFTP server does not support FSTAT: the change check uses STAT by path');
      }
      return stat(this.sftp, this.file.path);
    });
    if (s.size !== this.file.size || s.mtime !== this.file.mtime) {
      throw new Error(`${this.file.path} changed while reading (listed ${this.file.size} B mtime ${this.file.mtime}, now ${s.size} B mtime ${s.mtime})`);
    }
  }

  private async pump(): Promise<void> {
    if (this.pumping || this.finished) return;
    this.pumping = true;
    try {
      for (;;) {
        if (this.destroyed) return;
        this.fill();
        const next = this.inFlight.shift();
        if (!next) {
          await this.verifyUnchanged();
          if (this.bytesRead !== this.file.size) throw new Error(`${this.file.path}: read ${this.bytesRead} B, listed ${this.file.size} B`);
          this.finished = true;
          this.push(null);
          return;
        }
        const buf = await next;
        if (this.destroyed) return;
        this.bytesRead += buf.length;
        this.hash.update(buf);
        if (!this.push(buf)) return;
      }
    } catch (e) {
      this.destroy(e as Error);
    } finally {
      this.pumping = false;
    }
  }
}
