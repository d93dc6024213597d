/**
 * "What is new": a file version (path, size, mtime) is ingested once. The truth is each object's
 * metadata (sftp-size, sftp-mtime), but reading it costs a HeadObject per key, far too slow for
 * 10,000 files, and a ListObjectsV2 pass shows sizes but not mtimes. So each source keeps ONE index
 * object (key -> size, mtime, ETag as ingested), read with one GET per run: a listed file whose
 * version matches its entry is skipped with no request at all. Only files the index does not vouch
 * for (new, changed, or the index lost/stale after a crash or a concurrent run) cost a HeadObject,
 * made just before transferring them, so a stale or missing index costs time, never correctness.
 * The index is not pruned by what S3 lists: a landing object expired by a lifecycle rule after
 * conversion is NOT ingested again while the file version on SFTP is unchanged.
 */
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import type { RemoteFile } from './sftp';

export const META_SIZE = 'sftp-size';
export const META_MTIME = 'sftp-mtime';
export const META_PATH = 'sftp-path';

export interface IndexEntry {
  size: number;
  mtime: number;
  etag: string;
  /** sha256 (hex) of the bytes this run streamed into the object, when it transferred them. */
  sha256?: string;
}

export interface Index {
  version: 1;
  entries: Record<string, IndexEntry>;
}

/** A missing key (not a missing bucket: that is a configuration error, reported once). */
export function isNotFound(e: unknown): boolean {
  const err = e as S3ServiceException;
  if (err?.name === 'NoSuchBucket') return false;
  return err?.name === 'NotFound' || err?.name === 'NoSuchKey' || err?.$metadata?.httpStatusCode === 404;
}

/**
 * Whether a GET/HEAD that failed with 403 was about a missing key. S3 answers 404 for a missing key
 * only when the caller may s3:ListBucket the bucket, and 403 otherwise
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html, "Permissions"). A grant of
 * ListBucket limited by an s3:prefix condition (as the ingest stack gives) may not count for that
 * check, since a GET carries no prefix. So on 403, list exactly that key, which such a grant allows:
 * absent from the listing means missing; present means the read itself is denied (rethrown).
 */
async function missingBehind403(s3: S3Client, bucket: string, key: string, e: unknown): Promise<boolean> {
  if ((e as S3ServiceException)?.$metadata?.httpStatusCode !== 403) return false;
  let listed: string | undefined;
  try {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key, MaxKeys: 1 }));
    listed = res.Contents?.[0]?.Key;
  } catch (listError) {
    throw new Error(
      `S3 refused to read s3://${bucket}/${key} (403) and to list it: the task role needs s3:GetObject on the key and s3:ListBucket with s3:prefix covering it`,
      { cause: listError },
    );
  }
  return listed !== key;
}

export function isPreconditionFailed(e: unknown): boolean {
  const err = e as S3ServiceException;
  const status = err?.$metadata?.httpStatusCode;
  return err?.name === 'PreconditionFailed' || err?.name === 'ConditionalRequestConflict' || status === 412 || status === 409;
}

/** The index as read, with the ETag a conditional write-back names. */
export type StoredIndex = { index: Index; etag?: string };

export async function readIndex(s3: S3Client, bucket: string, key: string): Promise<StoredIndex> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const parsed = JSON.parse(await res.Body!.transformToString()) as Index;
    if (parsed?.version !== 1 || typeof parsed.entries !== 'object') throw new Error('unknown index format');
    return { index: parsed, etag: res.ETag };
  } catch (e) {
    if ((e as S3ServiceException)?.name === 'NoSuchBucket') {
      throw new Error(`S3 bucket '${bucket}' (DEST_BUCKET) does not exist`, { cause: e });
    }
    if (isNotFound(e) || (await missingBehind403(s3, bucket, key, e))) return { index: { version: 1, entries: {} } };
    // A corrupt index only costs HeadObjects: start afresh rather than fail the run.
    if (e instanceof SyntaxError || (e as Error).message === 'unknown index format') return { index: { version: 1, entries: {} } };
    throw e;
  }
}

/** Reads the source version recorded in an object's metadata (undefined when the key is absent). */
export async function headVersion(s3: S3Client, bucket: string, key: string): Promise<(IndexEntry & { present: true }) | undefined> {
  try {
    const res = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return {
      present: true,
      size: Number(res.Metadata?.[META_SIZE] ?? NaN),
      mtime: Number(res.Metadata?.[META_MTIME] ?? NaN),
      etag: res.ETag ?? '',
    };
  } catch (e) {
    if (isNotFound(e) || (await missingBehind403(s3, bucket, key, e))) return undefined;
    throw e;
  }
}

/** True when the index records exactly this version of the file under `key`. */
export function indexed(index: Index, key: string, file: RemoteFile): boolean {
  const e = index.entries[key];
  return e !== undefined && e.size === file.size && e.mtime === file.mtime;
}

/**
 * Merges this run's entries into the stored index and writes it back, conditionally on the ETag it
 * read (`stored`, the run's own read, so a large index is not fetched twice; re-read and merged again
 * when another run wrote in between). Entries of keys whose file is no longer on the SFTP server
 * (`keep` says false) are dropped, so the index stays the size of the remote folder; an entry keeps
 * only what the next run compares (size, mtime) and the ETag, about 100 bytes with its key.
 */
export async function writeIndex(
  s3: S3Client,
  bucket: string,
  key: string,
  updates: Record<string, IndexEntry>,
  keep: (key: string) => boolean,
  conditional: boolean,
  stored?: StoredIndex,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const { index, etag } = attempt === 0 && stored ? stored : await readIndex(s3, bucket, key);
    const entries: Record<string, IndexEntry> = {};
    for (const [k, v] of Object.entries(index.entries)) if (keep(k)) entries[k] = { size: v.size, mtime: v.mtime, etag: v.etag };
    for (const [k, v] of Object.entries(updates)) entries[k] = { size: v.size, mtime: v.mtime, etag: v.etag };
    try {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: JSON.stringify({ version: 1, entries } satisfies Index),
          ContentType: 'application/json',
          ...(conditional ? (etag ? { IfMatch: etag } : { IfNoneMatch: '*' }) : {}),
        }),
      );
      return;
    } catch (e) {
      if (!isPreconditionFailed(e) || attempt >= 4) throw e;
    }
  }
}
