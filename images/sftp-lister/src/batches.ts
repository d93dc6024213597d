/**
 * Batch manifests (contract C3, issue 15): the run's keys split into batches of at most
 * BATCH_MAX_FILES files and BATCH_MAX_BYTES source bytes (a larger file is a batch of its own), each
 * written as a JSON array of keys at `<manifest key without .json>/batches/<00001>.json`, then the
 * index `<...>/batches.json` (`[{"manifest", "files", "bytes"}]`) LAST: its presence means every
 * batch exists. The state machine runs one converter task per index item (S3PATHS_MANIFEST).
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { pool } from './pool';

export interface Batch {
  readonly keys: string[];
  readonly bytes: number;
}

export interface BatchIndexItem {
  manifest: string;
  files: number;
  bytes: number;
}

/** Greedy in key order: a batch closes when one more file would pass either bound. */
export function planBatches(keys: readonly string[], sizeOf: (key: string) => number, maxFiles: number, maxBytes: number): Batch[] {
  const batches: Batch[] = [];
  let cur: { keys: string[]; bytes: number } = { keys: [], bytes: 0 };
  for (const key of keys) {
    const size = sizeOf(key);
    if (cur.keys.length > 0 && (cur.keys.length >= maxFiles || cur.bytes + size > maxBytes)) {
      batches.push(cur);
      cur = { keys: [], bytes: 0 };
    }
    cur.keys.push(key);
    cur.bytes += size;
  }
  if (cur.keys.length > 0) batches.push(cur);
  return batches;
}

/** `<manifest key without .json>`: where the run's batches and their index go. */
export function batchBase(manifestKey: string): string {
  return manifestKey.replace(/\.json$/, '');
}

/** Writes every batch (a few at a time), then the index; resolves with the index's key. Throws if any write failed. */
export async function writeBatches(s3: S3Client, bucket: string, manifestKey: string, batches: readonly Batch[]): Promise<string> {
  const base = batchBase(manifestKey);
  const width = Math.max(5, String(batches.length).length);
  const items: BatchIndexItem[] = batches.map((b, i) => ({
    manifest: `${base}/batches/${String(i + 1).padStart(width, '0')}.json`,
    files: b.keys.length,
    bytes: b.bytes,
  }));
  const put = (Key: string, body: unknown) =>
    s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: JSON.stringify(body), ContentType: 'application/json' }));
  let failure: { error: unknown } | undefined;
  await pool(
    8,
    items.map((item, i) => ({ item, keys: batches[i].keys })),
    async ({ item, keys }) => {
      await put(item.manifest, keys).catch((error) => void (failure ??= { error }));
    },
    () => failure !== undefined,
    () => undefined,
  );
  if (failure) throw failure.error;
  const indexKey = `${base}/batches.json`;
  await put(indexKey, items);
  return indexKey;
}
