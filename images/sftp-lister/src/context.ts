/** What the phases of one run share (ingest.ts reads them top to bottom). */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from './config';
import type { Logger } from './log';
import type { Session } from './session';
import type { ParallelReadStream, RemoteFile } from './sftp';
import type { IndexEntry } from './state';
import type { Summary } from './summary';

/** A listed file and the key it lands under. */
export type Job = { file: RemoteFile; key: string };

/** An upload in flight: its source stream and, once created, the upload (both stop on abort). */
export type Transfer = { stream: ParallelReadStream; abort: AbortController };

/** A file this run streamed into its object, with the sha256 of those bytes. */
export type Proven = { file: RemoteFile; sha256: string };

export interface RunContext {
  readonly cfg: Config;
  readonly log: Logger;
  readonly s3: S3Client;
  readonly session: Session;
  /** Counted as the run goes; what a forced exit prints. */
  readonly summary: Summary;
  /** Why the run was stopped (SIGTERM), once it was. */
  readonly aborted: () => string | undefined;
  /** Uploads in flight, stopped by an abort. */
  readonly active: Set<Transfer>;
}

/** What the transfer phase produced, for the finish. */
export class Outcome {
  /** Keys to announce in this run's manifest. */
  readonly manifest: string[] = [];
  /** Index entries to record once the manifest naming them is written. */
  readonly announcedEntries: Record<string, IndexEntry> = {};
  /** Files whose bytes this run streamed into their object: the only ones completion may remove. */
  readonly proven: Proven[] = [];

  announce(key: string, entry: IndexEntry): void {
    this.manifest.push(key);
    this.announcedEntries[key] = entry;
  }
}
