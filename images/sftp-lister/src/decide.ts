/**
 * Phase 2, list and decide: list the SFTP folder (while the index GET is in flight), drop what the
 * globs exclude and what is too young, and split the rest into versions the index vouches for (no
 * request at all) and files to check and transfer, oldest first.
 */
import * as path from 'node:path';
import picomatch from 'picomatch';
import type { SFTPWrapper } from 'ssh2';
import type { Config } from './config';
import type { Job, RunContext } from './context';
import { listFiles, realpath } from './sftp';
import { indexed, readIndex, StoredIndex } from './state';
import { round } from './summary';

/**
 * SFTP mtimes are whole seconds. A file is read only once its mtime is at least this old: a write
 * during the read then lands in a later second and changes the mtime the final fstat compares, so a
 * same-size rewrite cannot pass as the listed version (with MIN_AGE_SECONDS=0 too).
 */
export const MIN_SAFE_AGE_SECONDS = 2;

/** A post-connect configuration problem (exit 2). */
export class RemoteConfigError extends Error {}

export interface Decision {
  /** Files the index does not vouch for, oldest first: each is checked and transferred. */
  readonly toCheck: Job[];
  /** Which index entries survive the merge: files still listed, or hidden under an unreadable folder. */
  readonly keep: (key: string) => boolean;
  /** Whether the stored index holds entries `keep` drops (then it is written even with no update). */
  readonly pruneIndex: boolean;
  /** The index as read (with its ETag), the base of the merge at the finish. */
  readonly stored: StoredIndex;
}

export async function listAndDecide({ cfg, log, s3, session, summary }: RunContext): Promise<Decision> {
  const tList = performance.now();
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

  const stored = await indexRead;
  const { index } = stored;
  const current = new Set(files.map((f) => cfg.destPrefix + f.rel));
  // Entries under a folder that could not be read are kept: their files were not seen, not removed.
  const hidden = listing.unreadable.map((rel) => `${cfg.destPrefix}${rel}/`);
  const keep = (k: string) => current.has(k) || hidden.some((h) => k.startsWith(h));
  const pruneIndex = Object.keys(index.entries).some((k) => !keep(k));
  // With move/delete, an indexed version still goes through HeadObject and a transfer: completion
  // needs this run to have streamed the file's bytes into the object (the index alone cannot tell a
  // same-size same-second rewrite from the version it recorded).
  const vouched = (c: Job) => cfg.completion === 'leave' && indexed(index, c.key, c.file);
  const present = candidates.filter(vouched);
  const toCheck = candidates.filter((c) => !vouched(c));
  summary.alreadyPresent = present.length;
  summary.decideSeconds = round((performance.now() - tList) / 1000, 3);
  log('info', 'decided', {
    listed: summary.listed,
    excluded: summary.excluded,
    tooYoung: summary.tooYoung,
    skipped: summary.skipped,
    indexed: present.length,
    toCheck: toCheck.length,
    seconds: summary.decideSeconds,
  });
  if (summary.listed > cfg.listingWarnFiles) {
    // Listing and the index grow with every file left on the server (COMPLETION=leave): README, "Scale".
    summary.warning = `the listing found ${summary.listed} files (LISTING_WARN_FILES ${cfg.listingWarnFiles}): listing took ${summary.decideSeconds} s and the index holds an entry per listed file; use COMPLETION=move or delete, or date folders, so the listed folder holds only what is still to ingest`;
    log('warn', 'listing passed LISTING_WARN_FILES', { listed: summary.listed, threshold: cfg.listingWarnFiles, seconds: summary.decideSeconds });
  }
  return { toCheck, keep, pruneIndex, stored };
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
    throw new RemoteConfigError(
      `COMPLETION_MOVE_DIR '${cfg.completionMoveDir}' is the listed folder SFTP_REMOTE_DIR '${cfg.remoteDir}' (${remoteAbs}): moved files would be listed again`,
    );
  }
  return { remoteAbs, moveAbs };
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
