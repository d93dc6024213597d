/**
 * "What is new": a file version (path, size, mtime) is ingested once. The truth is each object's
 * metadata (sftp-size, sftp-mtime); reading it costs a HeadObject per key, far too slow for 10,000
 * files. So a run makes ONE paged ListObjectsV2 pass over the landing prefix (key, size, ETag) and
 * reads ONE index object (key -> size, mtime, ETag as last written). An index entry is trusted only
 * while the listed object still has the ETag the index recorded; keys the index does not vouch for
 * (index lost, object replaced by someone else, a concurrent run) fall back to a HeadObject of that
 * key, so a stale or missing index costs time, never correctness.
 */
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import type { RemoteFile } from './sftp';

export const META_SIZE = 'sftp-size';
export const META_MTIME = 'sftp-mtime';
export const META_PATH = 'sftp-path';

export interface IndexEntry {
  size: number;
  mtime: number;
  etag: string;
}

export interface Index {
  version: 1;
  entries: Record<string, IndexEntry>;
}

export interface Listed {
  size: number;
  etag: string;
}

export function isNotFound(e: unknown): boolean {
  const err = e as S3ServiceException;
  return err?.name === 'NotFound' || err?.name === 'NoSuchKey' || err?.$metadata?.httpStatusCode === 404;
}

export function isPreconditionFailed(e: unknown): boolean {
  const err = e as S3ServiceException;
  const status = err?.$metadata?.httpStatusCode;
  return err?.name === 'PreconditionFailed' || err?.name === 'ConditionalRequestConflict' || status === 412 || status === 409;
}

export async function listObjects(s3: S3Client, bucket: string, prefix: string): Promise<Map<string, Listed>> {
  const out = new Map<string, Listed>();
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }));
    for (const o of page.Contents ?? []) out.set(o.Key!, { size: o.Size ?? -1, etag: o.ETag ?? '' });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

export async function readIndex(s3: S3Client, bucket: string, key: string): Promise<{ index: Index; etag?: string }> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const parsed = JSON.parse(await res.Body!.transformToString()) as Index;
    if (parsed?.version !== 1 || typeof parsed.entries !== 'object') throw new Error('unknown index format');
    return { index: parsed, etag: res.ETag };
  } catch (e) {
    if (isNotFound(e)) return { index: { version: 1, entries: {} } };
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
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

export type Decision =
  | { kind: 'present'; etag: string }
  /** Write it; `ifMatch` is the ETag of the older version it replaces (undefined: key must be new). */
  | { kind: 'new'; ifMatch?: string };

/**
 * Decides, for each candidate file, whether its version is already in S3. Only keys the index
 * cannot vouch for cost a HeadObject (run `headConcurrency` at a time).
 */
export async function decide(
  s3: S3Client,
  bucket: string,
  files: { file: RemoteFile; key: string }[],
  listed: Map<string, Listed>,
  index: Index,
  headConcurrency = 16,
): Promise<{ decisions: Decision[]; heads: number; confirmed: Record<string, IndexEntry> }> {
  const decisions: Decision[] = new Array(files.length);
  const confirmed: Record<string, IndexEntry> = {};
  const unsure: number[] = [];
  for (let i = 0; i < files.length; i++) {
    const { file, key } = files[i];
    const obj = listed.get(key);
    const entry = index.entries[key];
    if (!obj) decisions[i] = { kind: 'new' };
    else if (obj.size !== file.size) decisions[i] = { kind: 'new', ifMatch: obj.etag };
    else if (entry && entry.etag === obj.etag) {
      decisions[i] = entry.size === file.size && entry.mtime === file.mtime ? { kind: 'present', etag: obj.etag } : { kind: 'new', ifMatch: obj.etag };
    } else unsure.push(i);
  }
  let next = 0;
  const worker = async () => {
    while (next < unsure.length) {
      const i = unsure[next++];
      const { file, key } = files[i];
      const v = await headVersion(s3, bucket, key);
      if (!v) decisions[i] = { kind: 'new' };
      else if (v.size === file.size && v.mtime === file.mtime) {
        decisions[i] = { kind: 'present', etag: v.etag };
        confirmed[key] = { size: v.size, mtime: v.mtime, etag: v.etag };
      } else decisions[i] = { kind: 'new', ifMatch: v.etag };
    }
  };
  await Promise.all(Array.from({ length: Math.min(headConcurrency, unsure.length) }, worker));
  return { decisions, heads: unsure.length, confirmed };
}

/**
 * Merges this run's entries into the stored index and writes it back, conditionally on the ETag it
 * read (retrying the merge when another run wrote in between). Entries of keys that are no longer
 * listed are dropped so the index stays the size of the landing prefix.
 */
export async function writeIndex(
  s3: S3Client,
  bucket: string,
  key: string,
  updates: Record<string, IndexEntry>,
  listed: Map<string, Listed>,
  conditional: boolean,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const { index, etag } = await readIndex(s3, bucket, key);
    const entries: Record<string, IndexEntry> = {};
    for (const [k, v] of Object.entries(index.entries)) if (listed.has(k)) entries[k] = v;
    Object.assign(entries, updates);
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
