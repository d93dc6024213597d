/**
 * Phase 3, transfer: each file the index does not vouch for is checked against its object and, when
 * S3 does not hold this version, streamed into it (src/upload.ts), with retries for transient
 * failures. Every landed or already-present version is announced in the run's Outcome; the finish
 * writes the manifest.
 *
 * Small files (at most SMALL_FILE_BYTES) are latency-bound: up to SMALL_FILE_CONCURRENCY of them are
 * in flight at once, each with its own buffer of at most SMALL_FILE_BYTES, while larger files keep
 * to CONCURRENCY and the part-buffer pool. With conditional writes a small file costs ONE request
 * (PutObject with If-None-Match: *); its HeadObject is made only if S3 answers 412 (the key exists).
 * A larger file is checked with HeadObject first, so a version already in S3 is never sent again.
 */
import type { Job, Outcome, RunContext, Transfer } from './context';
import { backoff, conditionalUnsupported, describe, retriable, sleep } from './errors';
import { fileMetrics } from './metrics';
import { Semaphore, pool } from './pool';
import { ParallelReadStream, SFTP_NO_SUCH_FILE, sftpCode } from './sftp';
import { IndexEntry, META_MTIME, META_PATH, META_SIZE, headVersion, isNotFound, isPreconditionFailed } from './state';
import { round } from './summary';
import { BufferPool, uploadStream } from './upload';

/** Files up to this size are "small": one PutObject from a buffer of their own (README, memory bound). */
export const SMALL_FILE_BYTES = 1024 * 1024;

/** One file's attempt: when its check started, and its retries (for its metric line). */
type Attempt = { job: Job; t0: number; retries: number; headed: boolean };

export class Ingestor {
  /** Every part buffer of the run: CONCURRENCY x (UPLOAD_QUEUE_SIZE + 1) at most (README, memory). */
  private readonly buffers: BufferPool;
  /** One buffer per small file in flight: SMALL_FILE_CONCURRENCY x SMALL_FILE_BYTES at most. */
  private readonly smallBuffers: BufferPool;
  /** Larger files in flight: CONCURRENCY at most. */
  private readonly large: Semaphore;
  /** A condition that stops every further transfer (set once, reported once). */
  private halted: string | undefined;
  /** MAX_FILES slots: one is reserved in queue order (oldest first) before the check and given back if not needed. */
  private slots: number;

  constructor(
    private readonly ctx: RunContext,
    private readonly outcome: Outcome,
  ) {
    const { cfg } = ctx;
    this.buffers = new BufferPool(cfg.partSizeBytes, cfg.concurrency * (cfg.uploadQueueSize + 1));
    this.smallBuffers = new BufferPool(SMALL_FILE_BYTES, cfg.smallFileConcurrency);
    this.large = new Semaphore(cfg.concurrency);
    this.slots = cfg.maxFiles;
  }

  /**
   * Checks and transfers `jobs` in queue order (oldest first) with one worker per file in flight; a
   * worker with a larger file waits for one of the CONCURRENCY slots. Sets the summary's MBps over this phase.
   */
  async run(jobs: readonly Job[]): Promise<void> {
    const { cfg, summary, aborted } = this.ctx;
    const t0 = performance.now();
    const work = async (job: Job) => {
      if (job.file.size <= SMALL_FILE_BYTES) return this.checkAndIngest(job);
      await this.large.acquire();
      try {
        await this.checkAndIngest(job);
      } finally {
        this.large.release();
      }
    };
    const width = Math.max(cfg.concurrency, cfg.smallFileConcurrency);
    await pool(
      width,
      jobs,
      work,
      () => !!aborted(),
      (left) => (summary.deferred += left),
    );
    const seconds = (performance.now() - t0) / 1000;
    summary.MBps = seconds > 0 ? round(summary.bytes / 1e6 / seconds, 1) : 0;
  }

  private halt(why: string): void {
    if (this.halted) return;
    this.halted = why;
    this.ctx.summary.error = why;
    this.ctx.summary.errorKind = 'run';
    this.ctx.log('error', 'run stopped', { error: why });
  }

  /** A file the index does not vouch for: its object's metadata decides (HeadObject first, or after a 412 for a small file). */
  private async checkAndIngest(job: Job): Promise<void> {
    const { cfg, summary } = this.ctx;
    if (this.slots <= 0 || this.halted) {
      summary.deferred++;
      return;
    }
    this.slots--;
    const attempt: Attempt = { job, t0: performance.now(), retries: 0, headed: false };
    if (cfg.conditionalWrites && job.file.size <= SMALL_FILE_BYTES) return this.ingestOne(attempt, undefined);
    const checked = await this.checkObject(attempt);
    if (!checked.done) await this.ingestOne(attempt, checked.etag);
  }

  /**
   * One HeadObject decides: with `leave`, a version already in S3 is announced again; otherwise the
   * transfer replaces the object's ETag (none when absent). `done` when nothing is left to transfer
   * (announced again, or the check failed the file).
   */
  private async checkObject(a: Attempt): Promise<{ done: true } | { done: false; etag?: string }> {
    let v: Awaited<ReturnType<typeof headVersion>>;
    try {
      v = await this.head(a);
    } catch (e) {
      this.fail(a, 'cannot read the existing object', e);
      return { done: true };
    }
    if (v && this.holdsThisVersion(a.job, v) && this.ctx.cfg.completion === 'leave') {
      this.slots++;
      this.foundPresent(a.job, v, 'already in S3, not recorded as announced: announced again');
      return { done: true };
    }
    return { done: false, etag: v?.etag };
  }

  private head(attempt: Attempt): ReturnType<typeof headVersion> {
    this.ctx.summary.heads++;
    attempt.headed = true;
    return headVersion(this.ctx.s3, this.ctx.cfg.destBucket, attempt.job.key);
  }

  private holdsThisVersion(job: Job, v: IndexEntry): boolean {
    return v.size === job.file.size && v.mtime === job.file.mtime;
  }

  /** A file that could not be ingested: counted, logged with its metric line. */
  private fail(a: Attempt, msg: string, e: unknown, fields: Record<string, unknown> = {}): void {
    this.ctx.summary.failed++;
    const seconds = (performance.now() - a.t0) / 1000;
    this.ctx.log('error', msg, { path: a.job.file.path, key: a.job.key, ...fields, error: describe(e), ...fileMetrics('failed', 0, seconds, a.retries) });
  }

  /** The object already holds this version (found by HeadObject or after a 412): announce it again. */
  private foundPresent(job: Job, v: IndexEntry, why: string): void {
    const { summary, log } = this.ctx;
    summary.alreadyPresent++;
    summary.announcedAgain++;
    this.outcome.announce(job.key, { size: v.size, mtime: v.mtime, etag: v.etag });
    log('info', why, { key: job.key });
  }

  /** Transfers one file, retrying transient failures; `seen` is the ETag of the object it replaces. */
  private async ingestOne(a: Attempt, seen: string | undefined): Promise<void> {
    const { cfg, log, summary, aborted } = this.ctx;
    const { job } = a;
    let replaces = seen;
    for (let attempt = 0; ; attempt++) {
      if (aborted() || this.halted) {
        summary.deferred++;
        return;
      }
      try {
        const entry = await this.transfer(job, replaces);
        summary.ingested++;
        summary.bytes += job.file.size;
        this.outcome.announce(job.key, entry);
        this.outcome.proven.push({ file: job.file, sha256: entry.sha256! });
        const seconds = (performance.now() - a.t0) / 1000;
        log('info', 'ingested', { path: job.file.path, key: job.key, bytes: job.file.size, ...fileMetrics('ingested', job.file.size, seconds, a.retries) });
        return;
      } catch (e) {
        if (sftpCode(e) === SFTP_NO_SUCH_FILE) {
          // Removed since listing: by an overlapping run that completed it, or by its owner.
          summary.vanished++;
          log('info', 'file vanished before it was read (completed by another run, or removed)', { path: job.file.path });
          return;
        }
        if (isPreconditionFailed(e) && !a.headed) {
          // The key exists (the HeadObject was left out for a small file): now its metadata decides.
          const checked = await this.checkObject(a);
          if (checked.done) return;
          replaces = checked.etag;
          continue;
        }
        if (isPreconditionFailed(e)) {
          // Another run wrote this key since we looked: fine if it stored this very version.
          const v = await headVersion(this.ctx.s3, cfg.destBucket, job.key).catch(() => undefined);
          if (v && this.holdsThisVersion(job, v)) return this.foundPresent(job, v, 'written concurrently by another run');
        }
        if (replaces && isNotFound(e)) {
          // If-Match on a key removed since the HeadObject (S3 answers 404): create it instead.
          replaces = undefined;
          summary.retries++;
          a.retries++;
          continue;
        }
        if (aborted()) {
          summary.deferred++;
          log('warn', 'transfer aborted, left for the next run', { path: job.file.path, key: job.key });
          return;
        }
        if (cfg.conditionalWrites && conditionalUnsupported(e)) {
          this.fail(a, 'ingest failed', e, { attempt: attempt + 1 });
          this.halt(`S3 does not implement conditional writes (${describe(e)}): set S3_CONDITIONAL_WRITES=false for this S3-compatible server`);
          return;
        }
        if (!retriable(e) || attempt >= cfg.retries) return this.fail(a, 'ingest failed', e, { attempt: attempt + 1 });
        summary.retries++;
        a.retries++;
        log('warn', 'transfer failed, retrying', { path: job.file.path, attempt: attempt + 1, error: describe(e) });
        await sleep(backoff(cfg, attempt));
      }
    }
  }

  /** Streams the file into its object; resolves with the index entry of the version that landed. */
  private async transfer(job: Job, replaces: string | undefined): Promise<IndexEntry> {
    const { cfg, log, s3, session, active, aborted } = this.ctx;
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
        job.file.size <= SMALL_FILE_BYTES ? this.smallBuffers : this.buffers,
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
  }
}
