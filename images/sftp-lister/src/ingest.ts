/**
 * One ingest run: list the SFTP folder, decide what is new, stream each new file version to S3
 * (multipart, verified byte count), apply the completion strategy, write the index and manifest.
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import picomatch from 'picomatch';
import type { Config } from './config';
import type { SFTPWrapper } from 'ssh2';
import {
  ConnectError,
  Connection,
  FatalError,
  ParallelReadStream,
  RemoteFile,
  SFTP_NO_SUCH_FILE,
  SFTP_OP_UNSUPPORTED,
  connect,
  listFiles,
  mkdirp,
  moveReplacing,
  realpath,
  sftpCode,
  stat,
  unlink,
  writeFile,
} from './sftp';
import { BufferPool, uploadStream } from './upload';
import { IndexEntry, META_MTIME, META_PATH, META_SIZE, headVersion, indexed, isNotFound, isPreconditionFailed, readIndex, writeIndex } from './state';

export interface Summary {
  /** Regular files found in the remote folder. */
  listed: number;
  /** Left out by INCLUDE/EXCLUDE. */
  excluded: number;
  /** Modified less than MIN_AGE_SECONDS (at least 2 s) ago: left for a later run. */
  tooYoung: number;
  /** This version is already in S3 (not transferred). */
  alreadyPresent: number;
  /** Of alreadyPresent: objects found in S3 that the index did not record as announced, put in this manifest again (at-least-once). */
  announcedAgain: number;
  /** Not checked or not ingested because of MAX_FILES, an abort, or a change after the transfer: left for a later run. */
  deferred: number;
  ingested: number;
  /** Gone from the server between listing and reading or completing it (e.g. completed by an overlapping run). */
  vanished: number;
  /** Files or folders that cannot be ingested (reason logged): names that are not UTF-8, unreadable sub-folders. */
  skipped: number;
  failed: number;
  /** Files moved or deleted after a verified upload (completion=move|delete). */
  completed: number;
  completionFailed: number;
  /** Retries after transient errors (dropped connection etc.). */
  retries: number;
  /** HeadObject calls: one per file the index does not vouch for (new, changed, or index stale). */
  heads: number;
  bytes: number;
  /** Ingested megabytes (10^6 B) per second of transfer phase. */
  MBps: number;
  /** Wall-clock seconds of the whole run. */
  seconds: number;
  /** Seconds to connect and authenticate. */
  connectSeconds: number;
  /** Seconds spent listing SFTP + S3 and deciding what is new (after connecting). */
  decideSeconds: number;
  manifestKey: string | null;
  /** Peak resident set size of this process, MiB. */
  maxRssMB: number;
  /** Why the run stopped early (or the manifest could not be written). */
  error?: string;
  /** config (exit 2), connect (exit 3), terminated (exit 143), run (exit 1). */
  errorKind?: 'config' | 'connect' | 'terminated' | 'run';
}

/** The exit code for a finished run (README, "Exit code"). */
export function exitCode(summary: Summary, terminated: boolean): number {
  if (summary.errorKind === 'config') return 2;
  if (summary.errorKind === 'connect') return 3;
  if (terminated || summary.errorKind === 'terminated') return 143;
  return summary.failed > 0 || summary.skipped > 0 || summary.completionFailed > 0 || summary.error ? 1 : 0;
}

export function emptySummary(): Summary {
  return {
    listed: 0,
    excluded: 0,
    tooYoung: 0,
    alreadyPresent: 0,
    announcedAgain: 0,
    deferred: 0,
    ingested: 0,
    vanished: 0,
    skipped: 0,
    failed: 0,
    completed: 0,
    completionFailed: 0,
    retries: 0,
    heads: 0,
    bytes: 0,
    MBps: 0,
    seconds: 0,
    connectSeconds: 0,
    decideSeconds: 0,
    manifestKey: null,
    maxRssMB: 0,
  };
}

/**
 * SFTP mtimes are whole seconds. A file is read only once its mtime is at least this old: a write
 * during the read then lands in a later second and changes the mtime the final fstat compares, so a
 * same-size rewrite cannot pass as the listed version (with MIN_AGE_SECONDS=0 too).
 */
export const MIN_SAFE_AGE_SECONDS = 2;

type Level = Config['logLevel'];
type Job = { file: RemoteFile; key: string };
const LEVELS: Level[] = ['debug', 'info', 'warn', 'error'];

export type Logger = (level: Level, msg: string, fields?: Record<string, unknown>) => void;

export function makeLogger(min: Level): Logger {
  return (level, msg, fields) => {
    if (LEVELS.indexOf(level) < LEVELS.indexOf(min)) return;
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
  };
}

export function s3ClientFor(cfg: Config): S3Client {
  return new S3Client({
    ...(cfg.s3Endpoint ? { endpoint: cfg.s3Endpoint } : {}),
    forcePathStyle: cfg.s3ForcePathStyle,
  });
}

/** Shares one SSH connection between workers and reconnects (once, for all of them) after a drop. */
class Session {
  private current?: Promise<Connection>;
  /** The host key type that matched, offered first on reconnects. */
  private readonly hostKey: { type?: string } = {};
  constructor(
    private readonly cfg: Config,
    private readonly log: Logger,
  ) {}

  get(): Promise<Connection> {
    if (this.current) {
      const cur = this.current;
      return cur.then(
        (c) => (c.closed ? this.reconnect(cur) : c),
        () => this.reconnect(cur),
      );
    }
    return this.reconnect(undefined);
  }

  private reconnect(stale: Promise<Connection> | undefined): Promise<Connection> {
    if (this.current !== stale) return this.get();
    if (stale) this.log('info', 'reconnecting', { host: this.cfg.host, port: this.cfg.port });
    this.current = connect(this.cfg, this.hostKey);
    return this.current;
  }

  close(): void {
    this.current?.then((c) => c.close()).catch(() => undefined);
  }
}

function httpStatus(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** S3 answered 501 to a request with If-None-Match / If-Match: it does not implement conditional writes. */
function conditionalUnsupported(e: unknown): boolean {
  return httpStatus(e) === 501 || (e as Error)?.name === 'NotImplemented';
}

function retriable(e: unknown): boolean {
  if (e instanceof FatalError || isPreconditionFailed(e) || conditionalUnsupported(e)) return false;
  const msg = (e as Error)?.message ?? '';
  if (/changed while reading|listed with|Permission denied|No such file/i.test(msg)) return false;
  const status = httpStatus(e);
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) return false;
  return true;
}

/**
 * The message of an S3 failure with its cause: the SDK reports some failures as a bare "UnknownError"
 * or an AbortError; the cause (connection refused, status code) is what an operator needs.
 */
function describe(e: unknown): string {
  const parts: string[] = [];
  for (let cur: unknown = e, depth = 0; cur && depth < 4; cur = (cur as { cause?: unknown }).cause, depth++) {
    const err = cur as Error & { code?: string; $metadata?: { httpStatusCode?: number } };
    const status = err.$metadata?.httpStatusCode;
    const text = [err.name && err.name !== 'Error' ? err.name : '', err.message, err.code && !String(err.message).includes(err.code) ? `(${err.code})` : '', status ? `[HTTP ${status}]` : '']
      .filter(Boolean)
      .join(' ');
    if (text && !parts.includes(text)) parts.push(text);
  }
  return parts.join(': caused by ') || String(e);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function backoff(cfg: Config, attempt: number): number {
  const base = Math.min(30000, cfg.retryBaseMs * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

export interface RunHandle {
  /** Resolves with the summary once the run is over (also after `abort`). */
  readonly done: Promise<Summary>;
  /** The summary as it stands (for a forced exit before `done`). */
  readonly summary: Summary;
  /** Stops the run: in-flight uploads are aborted (never completed), nothing new starts. */
  abort(reason: string): void;
}

export function startRun(cfg: Config, log: Logger = makeLogger(cfg.logLevel)): RunHandle {
  let abortReason: string | undefined;
  const active = new Set<Transfer>();
  const summary = emptySummary();
  const abort = (reason: string) => {
    abortReason = reason;
    for (const t of active) {
      t.stream.destroy(new Error(`aborted: ${reason}`));
      // A request S3 is sitting on (stalled) would otherwise hold the run until the forced exit.
      t.abort.abort(new Error(`aborted: ${reason}`));
    }
  };
  return { done: run(cfg, log, summary, () => abortReason, active), summary, abort };
}

/** An upload in flight: its source stream and, once created, the upload (both stop on abort). */
type Transfer = { stream: ParallelReadStream; abort: AbortController };

/** A post-connect configuration problem (exit 2). */
class RemoteConfigError extends Error {}

/**
 * One run, in four phases: connect; list and decide; transfer; finish (manifest, then index, then
 * completion). The order of the finish is what makes announcement at-least-once: the index vouches
 * for a file version (no request next time) only once a manifest naming its key was written, so an
 * object that landed in a run that was killed, stopped or failed to write its manifest is found by
 * the next run's HeadObject and announced in that run's manifest. A source is moved or deleted only
 * after that manifest exists, and only when this run streamed exactly its bytes into the object.
 */
async function run(cfg: Config, log: Logger, summary: Summary, aborted: () => string | undefined, active: Set<Transfer>): Promise<Summary> {
  const t0 = performance.now();
  const s3 = s3ClientFor(cfg);
  const session = new Session(cfg, log);
  // Every part buffer of the run: CONCURRENCY x (UPLOAD_QUEUE_SIZE + 1) at most (README, memory).
  const buffers = new BufferPool(cfg.partSizeBytes, cfg.concurrency * (cfg.uploadQueueSize + 1));
  /** Keys to announce in this run's manifest. */
  const manifest: string[] = [];
  /** Index entries to record once the manifest naming them is written. */
  const announcedEntries: Record<string, IndexEntry> = {};
  /** Files whose bytes this run streamed into their object: the only ones completion may remove. */
  const proven: Proven[] = [];
  /** Decides which index entries survive the merge; set once listing succeeded. */
  let keep: ((key: string) => boolean) | undefined;
  let pruneIndex = false;
  /** A condition that stops every further transfer (set once, reported once). */
  let halted: string | undefined;
  const halt = (why: string) => {
    if (halted) return;
    halted = why;
    summary.error = why;
    summary.errorKind = 'run';
    log('error', 'run stopped', { error: why });
  };

  try {
    // Connect (bounded retries for transient failures; none for auth / host key).
    for (let attempt = 0; ; attempt++) {
      try {
        await session.get();
        break;
      } catch (e) {
        if (!retriable(e) || attempt >= cfg.retries || aborted()) {
          summary.errorKind = 'connect';
          throw e;
        }
        summary.retries++;
        log('warn', 'connect failed, retrying', { attempt: attempt + 1, error: (e as Error).message });
        await sleep(backoff(cfg, attempt));
      }
    }
    const tList = performance.now();
    summary.connectSeconds = round((tList - t0) / 1000, 3);
    // The index GET overlaps the SFTP listing.
    const indexRead = readIndex(s3, cfg.destBucket, cfg.stateKey);
    indexRead.catch(() => undefined);
    const { sftp } = await session.get();
    const { remoteAbs, moveAbs } = await resolveFolders(sftp, cfg);

    const included = globs(cfg.include);
    const excluded = globs(cfg.exclude);
    const listing = await listFiles(sftp, remoteAbs, {
      recursive: cfg.recursive,
      skipDirs: moveAbs ? [moveAbs] : [],
      excludeDir: (rel) => excluded(rel),
    });
    const files = listing.files;
    summary.listed = files.length;
    for (const s of listing.skipped) {
      summary.skipped++;
      log('error', 'file skipped', { path: s.path, reason: s.reason });
    }
    for (const rel of listing.unreadable) {
      summary.skipped++;
      log('error', 'sub-folder skipped: permission denied (its files are not ingested; EXCLUDE it to silence this)', {
        path: path.posix.join(remoteAbs, rel),
      });
    }

    const nowSec = Date.now() / 1000;
    const minAge = Math.max(cfg.minAgeSeconds, MIN_SAFE_AGE_SECONDS);
    const candidates: Job[] = [];
    for (const file of files) {
      if (!included(file.rel) || excluded(file.rel)) {
        summary.excluded++;
        log('debug', 'excluded by INCLUDE/EXCLUDE', { path: file.path });
      } else if (nowSec - file.mtime < minAge) summary.tooYoung++;
      else candidates.push({ file, key: cfg.destPrefix + file.rel });
    }
    // Oldest first, so a backlog drains in arrival order under MAX_FILES.
    candidates.sort((a, b) => a.file.mtime - b.file.mtime || (a.file.rel < b.file.rel ? -1 : 1));

    const { index } = await indexRead;
    const current = new Set(files.map((f) => cfg.destPrefix + f.rel));
    // Entries under a folder that could not be read are kept: their files were not seen, not removed.
    const hidden = listing.unreadable.map((rel) => `${cfg.destPrefix}${rel}/`);
    keep = (k) => current.has(k) || hidden.some((h) => k.startsWith(h));
    pruneIndex = Object.keys(index.entries).some((k) => !keep!(k));
    // With move/delete, an indexed version still goes through HeadObject and a transfer: completion
    // needs this run to have streamed the file's bytes into the object (the index alone cannot tell a
    // same-size same-second rewrite from the version it recorded).
    const vouched = (c: Job) => cfg.completion === 'leave' && indexed(index, c.key, c.file);
    const present = candidates.filter(vouched);
    const unknown = candidates.filter((c) => !vouched(c));
    summary.alreadyPresent = present.length;
    summary.decideSeconds = round((performance.now() - tList) / 1000, 3);
    log('info', 'decided', {
      listed: summary.listed,
      excluded: summary.excluded,
      tooYoung: summary.tooYoung,
      skipped: summary.skipped,
      indexed: present.length,
      toCheck: unknown.length,
      seconds: summary.decideSeconds,
    });

    const transfer = async (job: Job, replaces: string | undefined): Promise<IndexEntry> => {
      const conn = await session.get();
      const stream = new ParallelReadStream(conn, job.file, { window: cfg.readWindow, chunk: cfg.readChunkBytes });
      stream.on('notice', (msg: string) => log('warn', msg));
      const inFlight: Transfer = { stream, abort: new AbortController() };
      active.add(inFlight);
      if (aborted()) stream.destroy(new Error(`aborted: ${aborted()}`));
      // Only create a new key, or replace exactly the version we saw: overlapping runs cannot both write.
      const conditional = !cfg.conditionalWrites ? {} : replaces ? { IfMatch: replaces } : { IfNoneMatch: '*' };
      try {
        const etag = await uploadStream(
          s3,
          buffers,
          {
            Bucket: cfg.destBucket,
            Key: job.key,
            Metadata: {
              [META_SIZE]: String(job.file.size),
              [META_MTIME]: String(job.file.mtime),
              [META_PATH]: encodeURIComponent(job.file.path),
            },
            ...conditional,
          },
          stream,
          job.file.size,
          {
            queueSize: cfg.uploadQueueSize,
            signal: inFlight.abort.signal,
            onProgress: cfg.logLevel === 'debug' ? (loaded, part) => log('debug', 'progress', { key: job.key, loaded, total: job.file.size, part }) : undefined,
          },
        );
        // The stream only ends after checking size and mtime, but never trust a short body.
        if (stream.bytesRead !== job.file.size) throw new Error(`${job.file.path}: uploaded ${stream.bytesRead} B, listed ${job.file.size} B`);
        return { size: job.file.size, mtime: job.file.mtime, etag, sha256: stream.hash.digest('hex') };
      } finally {
        active.delete(inFlight);
        stream.destroy();
      }
    };

    const announce = (key: string, entry: IndexEntry) => {
      manifest.push(key);
      announcedEntries[key] = entry;
    };

    /** The object already holds this version (found by HeadObject or after a 412): announce it again. */
    const foundPresent = (job: Job, v: IndexEntry, why: string) => {
      summary.alreadyPresent++;
      summary.announcedAgain++;
      announce(job.key, { size: v.size, mtime: v.mtime, etag: v.etag });
      log('info', why, { key: job.key });
    };

    const ingestOne = async (job: Job, seen: string | undefined): Promise<void> => {
      let replaces = seen;
      for (let attempt = 0; ; attempt++) {
        if (aborted() || halted) {
          summary.deferred++;
          return;
        }
        try {
          const entry = await transfer(job, replaces);
          summary.ingested++;
          summary.bytes += job.file.size;
          announce(job.key, entry);
          proven.push({ file: job.file, sha256: entry.sha256! });
          log('info', 'ingested', { path: job.file.path, key: job.key, bytes: job.file.size });
          return;
        } catch (e) {
          if (sftpCode(e) === SFTP_NO_SUCH_FILE) {
            // Removed since listing: by an overlapping run that completed it, or by its owner.
            summary.vanished++;
            log('info', 'file vanished before it was read (completed by another run, or removed)', { path: job.file.path });
            return;
          }
          if (isPreconditionFailed(e)) {
            // Another run wrote this key since we looked: fine if it stored this very version.
            const v = await headVersion(s3, cfg.destBucket, job.key).catch(() => undefined);
            if (v && v.size === job.file.size && v.mtime === job.file.mtime) return foundPresent(job, v, 'written concurrently by another run');
          }
          if (replaces && isNotFound(e)) {
            // If-Match on a key removed since the HeadObject (S3 answers 404): create it instead.
            replaces = undefined;
            summary.retries++;
            continue;
          }
          if (aborted()) {
            summary.deferred++;
            log('warn', 'transfer aborted, left for the next run', { path: job.file.path, key: job.key });
            return;
          }
          if (cfg.conditionalWrites && conditionalUnsupported(e)) {
            summary.failed++;
            halt(`S3 does not implement conditional writes (${describe(e)}): set S3_CONDITIONAL_WRITES=false for this S3-compatible server`);
            return;
          }
          if (!retriable(e) || attempt >= cfg.retries) {
            summary.failed++;
            log('error', 'ingest failed', { path: job.file.path, key: job.key, attempt: attempt + 1, error: describe(e) });
            return;
          }
          summary.retries++;
          log('warn', 'transfer failed, retrying', { path: job.file.path, attempt: attempt + 1, error: describe(e) });
          await sleep(backoff(cfg, attempt));
        }
      }
    };

    // A file the index does not vouch for: its object's metadata decides (one HeadObject). A MAX_FILES
    // slot is reserved in queue order (oldest first) before the check and given back if not needed.
    let slots = cfg.maxFiles;
    const checkAndIngest = async (job: Job): Promise<void> => {
      if (slots <= 0 || halted) {
        summary.deferred++;
        return;
      }
      slots--;
      let v: Awaited<ReturnType<typeof headVersion>>;
      try {
        summary.heads++;
        v = await headVersion(s3, cfg.destBucket, job.key);
      } catch (e) {
        summary.failed++;
        log('error', 'cannot read the existing object', { key: job.key, error: describe(e) });
        return;
      }
      if (v && v.size === job.file.size && v.mtime === job.file.mtime && cfg.completion === 'leave') {
        slots++;
        return foundPresent(job, v, 'already in S3, not recorded as announced: announced again');
      }
      await ingestOne(job, v?.etag);
    };

    const tIngest = performance.now();
    await pool(cfg.concurrency, unknown, checkAndIngest, () => !!aborted(), (left) => (summary.deferred += left));
    const transferSeconds = (performance.now() - tIngest) / 1000;
    summary.MBps = transferSeconds > 0 ? round(summary.bytes / 1e6 / transferSeconds, 1) : 0;
  } catch (e) {
    summary.error = e instanceof FatalError || e instanceof RemoteConfigError ? (e as Error).message : describe(e);
    if (e instanceof RemoteConfigError) summary.errorKind = 'config';
    else if (e instanceof FatalError || e instanceof ConnectError) summary.errorKind = 'connect';
    else summary.errorKind ??= 'run';
    log('error', summary.errorKind === 'run' ? 'run failed' : 'refused', { error: summary.error });
  }

  await finish(cfg, log, s3, session, summary, { manifest, announcedEntries, proven, keep, pruneIndex, aborted });
  session.close();
  s3.destroy();
  if (aborted()) summary.errorKind ??= 'terminated';
  summary.seconds = round((performance.now() - t0) / 1000, 3);
  summary.maxRssMB = round(process.resourceUsage().maxRSS / 1024, 1);
  return summary;
}

/**
 * The listed folder and the move folder as absolute, symlink-free paths, so "is the move folder
 * inside the listed one" is decided once whatever their spelling (trailing '/', relative or absolute,
 * '..'). A move folder that IS the listed folder would list every moved file again: refused.
 */
async function resolveFolders(sftp: SFTPWrapper, cfg: Config): Promise<{ remoteAbs: string; moveAbs?: string }> {
  const remoteAbs = await realpath(sftp, cfg.remoteDir);
  if (cfg.completion !== 'move') return { remoteAbs };
  const home = await realpath(sftp, '.');
  const spelled = path.posix.resolve(home, cfg.completionMoveDir!);
  // The folder may not exist yet (created on the first move).
  const moveAbs = await realpath(sftp, spelled).catch(() => spelled);
  if (moveAbs === remoteAbs) {
    throw new RemoteConfigError(`COMPLETION_MOVE_DIR '${cfg.completionMoveDir}' is the listed folder SFTP_REMOTE_DIR '${cfg.remoteDir}' (${remoteAbs}): moved files would be listed again`);
  }
  return { remoteAbs, moveAbs };
}

/** Runs `work` over `items` with `width` workers; once `stop()` says so, nothing new starts and `skipped(n)` gets what was left. */
async function pool<T>(width: number, items: readonly T[], work: (item: T) => Promise<void>, stop: () => boolean, skipped: (n: number) => void): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length && !stop()) await work(items[next++]);
    }),
  );
  if (next < items.length) skipped(items.length - next);
}

/** A file this run streamed into its object, with the sha256 of those bytes. */
type Proven = { file: RemoteFile; sha256: string };

interface Outcome {
  manifest: string[];
  announcedEntries: Record<string, IndexEntry>;
  proven: Proven[];
  keep?: (key: string) => boolean;
  pruneIndex: boolean;
  aborted: () => string | undefined;
}

/** Manifest, then index (only what the manifest announced), then completion (only if announced). */
async function finish(cfg: Config, log: Logger, s3: S3Client, session: Session, summary: Summary, o: Outcome): Promise<void> {
  const manifestKey = cfg.manifestKey ?? (o.manifest.length > 0 ? `${cfg.manifestPrefix}${manifestName()}` : undefined);
  let announced = o.manifest.length === 0;
  if (manifestKey && summary.errorKind !== 'config') {
    try {
      await s3.send(
        new PutObjectCommand({
          Bucket: cfg.destBucket,
          Key: manifestKey,
          Body: JSON.stringify(o.manifest),
          ContentType: 'application/json',
        }),
      );
      summary.manifestKey = manifestKey;
      announced = true;
    } catch (e) {
      summary.failed++;
      summary.error ??= `manifest ${manifestKey} not written: ${describe(e)}`;
      log('error', 'manifest not written (the next run announces these objects again)', { key: manifestKey, keys: o.manifest.length, error: describe(e) });
    }
  }
  const updates = announced ? o.announcedEntries : {};
  if (o.keep && (Object.keys(updates).length > 0 || o.pruneIndex)) {
    await writeIndex(s3, cfg.destBucket, cfg.stateKey, updates, o.keep, cfg.conditionalWrites).catch((e) =>
      log('warn', 'index not written (next run falls back to HeadObject)', { key: cfg.stateKey, error: describe(e) }),
    );
  }
  if (cfg.completion === 'leave' || o.proven.length === 0) return;
  if (!announced || o.aborted()) {
    summary.deferred += o.proven.length;
    log('warn', 'completion skipped: left for the next run', { files: o.proven.length, reason: announced ? `aborted: ${o.aborted()}` : 'manifest not written' });
    return;
  }
  await pool(cfg.concurrency, o.proven, (file) => complete(cfg, log, session, summary, file), () => !!o.aborted(), (left) => (summary.deferred += left));
}

/**
 * A move on a server without rename (an object store, as AWS Transfer Family on S3): the file is
 * copied, and the source deleted only if the copy has its size and the bytes read for it are the
 * very bytes that went into the object (sha256).
 */
async function copyThenDelete(cfg: Config, session: Session, file: RemoteFile, sha256: string, target: string): Promise<void> {
  const conn = await session.get();
  const source = new ParallelReadStream(conn, file, { window: cfg.readWindow, chunk: cfg.readChunkBytes });
  await writeFile(conn.sftp, target, source);
  const copied = await stat(conn.sftp, target);
  if (source.bytesRead !== file.size || copied.size !== file.size) throw new Error(`${file.path}: copy to ${target} has ${copied.size} B, expected ${file.size} B`);
  if (source.hash.digest('hex') !== sha256) throw new Error(`${file.path}: changed since its transfer (not the bytes in S3): kept`);
  await unlink(conn.sftp, file.path);
}

/** Moves or deletes a file whose bytes this run streamed into its announced object, if it is still that version. */
async function complete(cfg: Config, log: Logger, session: Session, summary: Summary, { file, sha256 }: Proven): Promise<void> {
  try {
    const { sftp } = await session.get();
    const now = await stat(sftp, file.path);
    if (now.size !== file.size || now.mtime !== file.mtime) {
      // Rewritten since the transfer (a later second, see MIN_SAFE_AGE_SECONDS): the next run ingests it.
      summary.deferred++;
      log('info', 'changed since its transfer: not completed, the next run ingests the new version', { path: file.path });
      return;
    }
    if (cfg.completion === 'delete') await unlink(sftp, file.path);
    else {
      const target = path.posix.join(cfg.completionMoveDir!, file.rel);
      await mkdirp(sftp, path.posix.dirname(target));
      await moveReplacing(sftp, file.path, target).catch(async (e) => {
        if (sftpCode(e) !== SFTP_OP_UNSUPPORTED) throw e;
        await copyThenDelete(cfg, session, file, sha256, target);
      });
    }
    summary.completed++;
  } catch (e) {
    if (sftpCode(e) === SFTP_NO_SUCH_FILE) {
      // Completed meanwhile by an overlapping run (its object is the same version).
      summary.vanished++;
      log('info', 'file vanished before completion (completed by another run, or removed)', { path: file.path });
      return;
    }
    summary.completionFailed++;
    log('error', `completion (${cfg.completion}) failed`, { path: file.path, error: (e as Error).message });
  }
}

/**
 * A matcher for comma-separated globs: a pattern without '/' matches the file name at any depth,
 * one with '/' matches the path relative to SFTP_REMOTE_DIR. Dot files match only patterns that
 * name the dot (picomatch's default), so `*.xml` skips `.partial.xml` uploads in progress.
 */
export function globs(patterns: readonly string[]): (rel: string) => boolean {
  const byName = patterns.filter((p) => !p.includes('/'));
  const byPath = patterns.filter((p) => p.includes('/'));
  // 's' (dotAll): names may hold line breaks, and '*' must match them like any other character.
  const name = byName.length ? picomatch(byName, { flags: 's' }) : () => false;
  const full = byPath.length ? picomatch(byPath, { flags: 's' }) : () => false;
  return (rel) => name(path.posix.basename(rel)) || full(rel);
}

function manifestName(): string {
  return `${new Date().toISOString().replace(/[:.]/g, '-')}-${crypto.randomBytes(4).toString('hex')}.json`;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
