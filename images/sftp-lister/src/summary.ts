/** The run's one summary line (README, "Output") and the exit code it implies. */
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
  /** Batch manifests written for this run (contract C3), and the key of their index (written last). */
  batches: number;
  batchIndexKey: string | null;
  /** Peak resident set size of this process, MiB. */
  maxRssMB: number;
  /** Set when the listing passed LISTING_WARN_FILES: what grows, and what to change. */
  warning?: string;
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
    batches: 0,
    batchIndexKey: null,
    maxRssMB: 0,
  };
}

export function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
