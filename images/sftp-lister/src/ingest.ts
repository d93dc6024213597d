/**
 * One ingest run: list the SFTP folder, decide what is new, stream each new file version to S3
 * (multipart, verified byte count), apply the completion strategy, write the index and manifest.
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import picomatch from 'picomatch';
import type { Config } from './config';
import { Connection, FatalError, ParallelReadStream, RemoteFile, connect, listFiles, mkdirp, rename, unlink } from './sftp';
import { IndexEntry, META_MTIME, META_PATH, META_SIZE, headVersion, indexed, isPreconditionFailed, readIndex, writeIndex } from './state';

export interface Summary {
  /** Regular files found in the remote folder. */
  listed: number;
  /** Left out by INCLUDE/EXCLUDE. */
  excluded: number;
  /** Modified less than MIN_AGE_SECONDS ago: left for a later run. */
  tooYoung: number;
  /** This version is already in S3 (skipped). */
  alreadyPresent: number;
  /** Not checked or not ingested because of MAX_FILES (or an abort): left for a later run. */
  deferred: number;
  ingested: number;
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
  error?: string;
}

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
    this.current = connect(this.cfg);
    return this.current;
  }

  close(): void {
    this.current?.then((c) => c.close()).catch(() => undefined);
  }
}

function retriable(e: unknown): boolean {
  if (e instanceof FatalError || isPreconditionFailed(e)) return false;
  const msg = (e as Error)?.message ?? '';
  if (/changed while reading|listed with|Permission denied|No such file/i.test(msg)) return false;
  const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) return false;
  return true;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function backoff(cfg: Config, attempt: number): number {
  const base = Math.min(30000, cfg.retryBaseMs * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

export interface RunHandle {
  /** Resolves with the summary once the run is over (also after `abort`). */
  readonly done: Promise<Summary>;
  /** Stops the run: in-flight uploads are aborted (never completed), nothing new starts. */
  abort(reason: string): void;
}

export function startRun(cfg: Config, log: Logger = makeLogger(cfg.logLevel)): RunHandle {
  let abortReason: string | undefined;
  const active = new Set<ParallelReadStream>();
  const abort = (reason: string) => {
    abortReason = reason;
    for (const s of active) s.destroy(new Error(`aborted: ${reason}`));
  };
  return { done: run(cfg, log, () => abortReason, active), abort };
}

async function run(cfg: Config, log: Logger, aborted: () => string | undefined, active: Set<ParallelReadStream>): Promise<Summary> {
  const t0 = performance.now();
  const s3 = s3ClientFor(cfg);
  const session = new Session(cfg, log);
  const summary: Summary = {
    listed: 0,
    excluded: 0,
    tooYoung: 0,
    alreadyPresent: 0,
    deferred: 0,
    ingested: 0,
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
  const manifest: string[] = [];
  const indexUpdates: Record<string, IndexEntry> = {};
  /** Keys of every listed file (the index keeps only these); set once listing succeeded. */
  let current: Set<string> | undefined;
  let pruneIndex = false;

  try {
    // Connect (bounded retries for transient failures; none for auth / host key).
    for (let attempt = 0; ; attempt++) {
      try {
        await session.get();
        break;
      } catch (e) {
        if (!retriable(e) || attempt >= cfg.retries || aborted()) throw e;
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
    const moveDir = cfg.completion === 'move' ? cfg.completionMoveDir! : undefined;
    const files = await listFiles((await session.get()).sftp, cfg.remoteDir, cfg.recursive, moveDir ? [moveDir] : []);
    summary.listed = files.length;

    const included = globs(cfg.include);
    const excluded = globs(cfg.exclude);
    const nowSec = Date.now() / 1000;
    const candidates: Job[] = [];
    for (const file of files) {
      if (!included(file.rel) || excluded(file.rel)) summary.excluded++;
      else if (nowSec - file.mtime < cfg.minAgeSeconds) summary.tooYoung++;
      else candidates.push({ file, key: cfg.destPrefix + file.rel });
    }
    // Oldest first, so a backlog drains in arrival order under MAX_FILES.
    candidates.sort((a, b) => a.file.mtime - b.file.mtime || (a.file.rel < b.file.rel ? -1 : 1));

    const { index } = await indexRead;
    current = new Set(files.map((f) => cfg.destPrefix + f.rel));
    pruneIndex = Object.keys(index.entries).some((k) => !current!.has(k));
    const present = candidates.filter((c) => indexed(index, c.key, c.file));
    const unknown = candidates.filter((c) => !indexed(index, c.key, c.file));
    summary.alreadyPresent = present.length;
    summary.decideSeconds = round((performance.now() - tList) / 1000, 3);
    log('info', 'decided', {
      listed: summary.listed,
      excluded: summary.excluded,
      tooYoung: summary.tooYoung,
      indexed: present.length,
      toCheck: unknown.length,
      seconds: summary.decideSeconds,
    });

    const complete = async (file: RemoteFile): Promise<void> => {
      if (cfg.completion === 'leave') return;
      try {
        const { sftp } = await session.get();
        if (cfg.completion === 'delete') await unlink(sftp, file.path);
        else {
          const target = path.posix.join(moveDir!, file.rel);
          await mkdirp(sftp, path.posix.dirname(target));
          // posix-rename replaces an older moved copy; plain SFTP rename refuses to overwrite.
          await new Promise<void>((resolve, reject) =>
            sftp.ext_openssh_rename(file.path, target, (err) => (err ? reject(new Error(`${err.message}: ${file.path} -> ${target}`)) : resolve())),
          ).catch((e) => (/not support/i.test((e as Error).message) ? rename(sftp, file.path, target) : Promise.reject(e)));
        }
        summary.completed++;
      } catch (e) {
        summary.completionFailed++;
        log('error', `completion (${cfg.completion}) failed`, { path: file.path, error: (e as Error).message });
      }
    };

    const transfer = async (job: Job, replaces: string | undefined): Promise<string> => {
      const conn = await session.get();
      const stream = new ParallelReadStream(conn, job.file, { window: cfg.readWindow, chunk: cfg.readChunkBytes });
      active.add(stream);
      if (aborted()) stream.destroy(new Error(`aborted: ${aborted()}`));
      // Only create a new key, or replace exactly the version we saw: overlapping runs cannot both write.
      const conditional = !cfg.conditionalWrites ? {} : replaces ? { IfMatch: replaces } : { IfNoneMatch: '*' };
      const upload = new Upload({
        client: s3,
        partSize: cfg.partSizeBytes,
        queueSize: cfg.uploadQueueSize,
        leavePartsOnError: false,
        params: {
          Bucket: cfg.destBucket,
          Key: job.key,
          Body: stream,
          ContentLength: job.file.size,
          Metadata: {
            [META_SIZE]: String(job.file.size),
            [META_MTIME]: String(job.file.mtime),
            [META_PATH]: encodeURIComponent(job.file.path),
          },
          ...conditional,
        },
      });
      if (cfg.logLevel === 'debug') {
        upload.on('httpUploadProgress', (p) => log('debug', 'progress', { key: job.key, loaded: p.loaded, total: p.total, part: p.part }));
      }
      try {
        const res = await upload.done();
        // The stream only ends after checking size and mtime, but never trust a short body.
        if (stream.bytesRead !== job.file.size) throw new Error(`${job.file.path}: uploaded ${stream.bytesRead} B, listed ${job.file.size} B`);
        return res.ETag ?? '';
      } catch (e) {
        // When aborting the multipart upload itself fails, lib-storage reports that instead of the cause.
        if (stream.errored && stream.errored !== e) {
          log('warn', 'multipart upload abort failed (the object was not created; S3 lifecycle AbortIncompleteMultipartUpload cleans parts)', {
            key: job.key,
            error: (e as Error).message,
          });
          throw stream.errored;
        }
        throw e;
      } finally {
        active.delete(stream);
        stream.destroy();
      }
    };

    const ingestOne = async (job: Job, replaces: string | undefined): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        if (aborted()) {
          summary.failed++;
          return;
        }
        try {
          const etag = await transfer(job, replaces);
          summary.ingested++;
          summary.bytes += job.file.size;
          manifest.push(job.key);
          indexUpdates[job.key] = { size: job.file.size, mtime: job.file.mtime, etag };
          log('info', 'ingested', { path: job.file.path, key: job.key, bytes: job.file.size });
          await complete(job.file);
          return;
        } catch (e) {
          if (isPreconditionFailed(e)) {
            // Another run wrote this key since we listed: fine if it stored this very version.
            const v = await headVersion(s3, cfg.destBucket, job.key).catch(() => undefined);
            if (v && v.size === job.file.size && v.mtime === job.file.mtime) {
              summary.alreadyPresent++;
              indexUpdates[job.key] = { size: v.size, mtime: v.mtime, etag: v.etag };
              log('info', 'written concurrently by another run', { key: job.key });
              await complete(job.file);
              return;
            }
          }
          if (aborted() || !retriable(e) || attempt >= cfg.retries) {
            summary.failed++;
            log('error', 'ingest failed', { path: job.file.path, key: job.key, attempt: attempt + 1, error: (e as Error).message });
            return;
          }
          summary.retries++;
          log('warn', 'transfer failed, retrying', { path: job.file.path, attempt: attempt + 1, error: (e as Error).message });
          await sleep(backoff(cfg, attempt));
        }
      }
    };

    // A file the index does not vouch for: its object's metadata decides (one HeadObject). A MAX_FILES
    // slot is reserved in queue order (oldest first) before the check and given back if not needed.
    let slots = cfg.maxFiles;
    const checkAndIngest = async (job: Job): Promise<void> => {
      if (slots <= 0) {
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
        log('error', 'cannot read the existing object', { key: job.key, error: (e as Error).message });
        return;
      }
      if (v && v.size === job.file.size && v.mtime === job.file.mtime) {
        slots++;
        summary.alreadyPresent++;
        indexUpdates[job.key] = { size: v.size, mtime: v.mtime, etag: v.etag };
        await complete(job.file);
        return;
      }
      await ingestOne(job, v?.etag);
    };

    const tIngest = performance.now();
    // Files already in S3 are completed (moved/deleted) too: an earlier run may have stopped in between.
    const queue: (() => Promise<void>)[] = [...present.map((j) => () => complete(j.file)), ...unknown.map((j) => () => checkAndIngest(j))];
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(cfg.concurrency, queue.length) }, async () => {
        while (next < queue.length && !aborted()) await queue[next++]();
      }),
    );
    // Work never started because of an abort is left for the next run.
    if (aborted()) summary.deferred += queue.length - next;
    const transferSeconds = (performance.now() - tIngest) / 1000;
    summary.MBps = transferSeconds > 0 ? round(summary.bytes / 1e6 / transferSeconds, 1) : 0;
  } catch (e) {
    summary.error = (e as Error).message;
    if (!(e instanceof FatalError)) summary.failed = Math.max(summary.failed, 1);
    log('error', e instanceof FatalError ? 'refused' : 'run failed', { error: (e as Error).message });
  } finally {
    session.close();
  }

  // Bookkeeping is written even after failures: what was ingested must be recorded.
  if (current && (Object.keys(indexUpdates).length > 0 || pruneIndex)) {
    await writeIndex(s3, cfg.destBucket, cfg.stateKey, indexUpdates, current, cfg.conditionalWrites).catch((e) =>
      log('warn', 'index not written (next run falls back to HeadObject)', { key: cfg.stateKey, error: (e as Error).message }),
    );
  }
  const manifestKey = cfg.manifestKey ?? (manifest.length > 0 ? `${cfg.manifestPrefix}${manifestName()}` : undefined);
  if (manifestKey) {
    try {
      await s3.send(
        new PutObjectCommand({
          Bucket: cfg.destBucket,
          Key: manifestKey,
          Body: JSON.stringify(manifest),
          ContentType: 'application/json',
        }),
      );
      summary.manifestKey = manifestKey;
    } catch (e) {
      summary.failed++;
      log('error', 'manifest not written', { key: manifestKey, error: (e as Error).message });
    }
  }
  s3.destroy();
  summary.seconds = round((performance.now() - t0) / 1000, 3);
  summary.maxRssMB = round(process.resourceUsage().maxRSS / 1024, 1);
  return summary;
}

/**
 * A matcher for comma-separated globs: a pattern without '/' matches the file name at any depth,
 * one with '/' matches the path relative to SFTP_REMOTE_DIR. Dot files match only patterns that
 * name the dot (picomatch's default), so `*.xml` skips `.partial.xml` uploads in progress.
 */
export function globs(patterns: readonly string[]): (rel: string) => boolean {
  const byName = patterns.filter((p) => !p.includes('/'));
  const byPath = patterns.filter((p) => p.includes('/'));
  const name = byName.length ? picomatch(byName) : () => false;
  const full = byPath.length ? picomatch(byPath) : () => false;
  return (rel) => name(path.posix.basename(rel)) || full(rel);
}

function manifestName(): string {
  return `${new Date().toISOString().replace(/[:.]/g, '-')}-${crypto.randomBytes(4).toString('hex')}.json`;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
