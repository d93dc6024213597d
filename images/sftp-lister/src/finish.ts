/**
 * Phase 4, finish: manifest, then index (only what the manifest announced), then completion (only
 * for files announced and streamed by this run). This order is what makes announcement at-least-once.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { planBatches, writeBatches } from './batches';
import type { Outcome, Proven, RunContext } from './context';
import type { Decision } from './decide';
import { describe } from './errors';
import { pool } from './pool';
import { ParallelReadStream, SFTP_NO_SUCH_FILE, SFTP_OP_UNSUPPORTED, mkdirp, moveReplacing, sftpCode, stat, unlink, writeFile } from './sftp';
import { writeIndex } from './state';

/** `decision` is absent when the run stopped before it had listed (the index is then left as it is). */
export async function finish(ctx: RunContext, o: Outcome, decision: Decision | undefined): Promise<void> {
  const { cfg, log, s3, summary, aborted } = ctx;
  const manifestKey = cfg.manifestKey ?? (o.manifest.length > 0 ? `${cfg.manifestPrefix}${manifestName()}` : undefined);
  let announced = o.manifest.length === 0;
  if (manifestKey && summary.errorKind !== 'config') announced = await writeManifests(ctx, o, manifestKey);
  const updates = announced ? o.announcedEntries : {};
  if (decision && (Object.keys(updates).length > 0 || decision.pruneIndex)) {
    await writeIndex(s3, cfg.destBucket, cfg.stateKey, updates, decision.keep, cfg.conditionalWrites, decision.stored).catch((e) =>
      log('warn', 'index not written (next run falls back to HeadObject)', { key: cfg.stateKey, error: describe(e) }),
    );
  }
  if (cfg.completion === 'leave' || o.proven.length === 0) return;
  if (!announced || aborted()) {
    summary.deferred += o.proven.length;
    log('warn', 'completion skipped: left for the next run', { files: o.proven.length, reason: announced ? `aborted: ${aborted()}` : 'manifest not written' });
    return;
  }
  await pool(
    cfg.concurrency,
    o.proven,
    (file) => complete(ctx, file),
    () => !!aborted(),
    (left) => (summary.deferred += left),
  );
}

/**
 * The manifest (every key, sorted), then its batches and their index (contract C3, written last).
 * Returns whether all of them were written: only then does the index vouch for these keys.
 */
async function writeManifests({ cfg, log, s3, summary }: RunContext, o: Outcome, manifestKey: string): Promise<boolean> {
  const keys = [...o.manifest].sort();
  try {
    await s3.send(new PutObjectCommand({ Bucket: cfg.destBucket, Key: manifestKey, Body: JSON.stringify(keys), ContentType: 'application/json' }));
    summary.manifestKey = manifestKey;
  } catch (e) {
    summary.failed++;
    summary.error ??= `manifest ${manifestKey} not written: ${describe(e)}`;
    log('error', 'manifest not written (the next run announces these objects again)', { key: manifestKey, keys: keys.length, error: describe(e) });
    return false;
  }
  const batches = planBatches(keys, (k) => o.announcedEntries[k].size, cfg.batchMaxFiles, cfg.batchMaxBytes);
  try {
    summary.batchIndexKey = await writeBatches(s3, cfg.destBucket, manifestKey, batches);
    summary.batches = batches.length;
    return true;
  } catch (e) {
    summary.failed++;
    summary.error ??= `batch manifests of ${manifestKey} not written: ${describe(e)}`;
    log('error', 'batch manifests not written (the next run announces these objects again)', { key: manifestKey, batches: batches.length, error: describe(e) });
    return false;
  }
}

/**
 * A move on a server without rename (an object store, as AWS Transfer Family on S3): the file is
 * copied, and the source deleted only if the copy has its size and the bytes read for it are the
 * very bytes that went into the object (sha256).
 */
async function copyThenDelete({ cfg, session }: RunContext, { file, sha256 }: Proven, target: string): Promise<void> {
  const conn = await session.get();
  const source = new ParallelReadStream(conn, file, { window: cfg.readWindow, chunk: cfg.readChunkBytes });
  await writeFile(conn.sftp, target, source);
  const copied = await stat(conn.sftp, target);
  if (source.bytesRead !== file.size || copied.size !== file.size)
    throw new Error(`${file.path}: copy to ${target} has ${copied.size} B, expected ${file.size} B`);
  if (source.hash.digest('hex') !== sha256) throw new Error(`${file.path}: changed since its transfer (not the bytes in S3): kept`);
  await unlink(conn.sftp, file.path);
}

/** Moves or deletes a file whose bytes this run streamed into its announced object, if it is still that version. */
async function complete(ctx: RunContext, proven: Proven): Promise<void> {
  const { cfg, log, session, summary } = ctx;
  const { file } = proven;
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
        await copyThenDelete(ctx, proven, target);
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

function manifestName(): string {
  return `${new Date().toISOString().replace(/[:.]/g, '-')}-${crypto.randomBytes(4).toString('hex')}.json`;
}
