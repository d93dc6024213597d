// The converter's container overrides: what each batch's task is told, and how long that can get.
import { formatLiteral } from './asl';
import { containerOverridesChars } from './run-task';

/** Where a batch's keys come from: the batch itself (S3PATHS) or a manifest in S3 (S3PATHS_MANIFEST). */
export type BatchSource = 'keys' | 'manifest';

/** The batch's summary: `<resultPrefix><execution>/<batchId>.json` (the same key on every rerun). */
export const resultKeyOf = (resultPrefix: string) => `States.Format('${formatLiteral(resultPrefix)}{}/{}.json', $.execution, $.batchId)`;

/**
 * The converter's container-override environment: its keys (or the manifest holding them), its
 * summary key, and RUN_ID/BATCH_ID, under which it files the keys it failed (contract C2).
 */
export function converterEnvironment(
  bucket: string,
  outputPrefix: string,
  resultPrefix: string,
  source: BatchSource = 'keys',
): { Name: string; Value?: string; 'Value.$'?: string }[] {
  return [
    { Name: 'BUCKET', Value: bucket },
    source === 'keys' ? { Name: 'S3PATHS', 'Value.$': 'States.JsonToString($.keys)' } : { Name: 'S3PATHS_MANIFEST', 'Value.$': '$.manifest' },
    { Name: 'OUTPUT_BUCKET', Value: bucket },
    { Name: 'OUTPUT_PREFIX', Value: outputPrefix },
    { Name: 'RESULT_KEY', 'Value.$': resultKeyOf(resultPrefix) },
    { Name: 'RUN_ID', 'Value.$': '$.execution' },
    { Name: 'BATCH_ID', 'Value.$': '$.batchId' },
  ];
}

/** Longest names AWS allows: S3 bucket 63, execution name 80 (RUN_ID, and the RESULT_KEY holds one), UUID 36. */
const MAX_BUCKET_CHARS = 63;
const MAX_EXECUTION_NAME_CHARS = 80;
const UUID_CHARS = 36;

/**
 * Characters of the converter's overrides with the longest bucket, execution name and an empty S3PATHS:
 * what a batch's key list may add to stay within ECS_OVERRIDES_LIMIT_CHARS is the rest. A batch of
 * MaxInputBytesPerBatch bytes holds items `{"Key":"k","execution":"e"}`; its S3PATHS, `["k",...]`
 * escaped once more inside the override JSON, is shorter than the batch as long as no key needs a JSON
 * escape (quote, backslash, control character: each would then count twice). Contract 1 refuses such
 * keys (KEY_NEEDS_ESCAPES); non-ASCII characters are fewer characters than bytes.
 */
export function converterOverridesFixedChars(containerName: string, outputPrefix: string, resultPrefix: string): number {
  const bucket = 'b'.repeat(MAX_BUCKET_CHARS);
  const execution = 'e'.repeat(MAX_EXECUTION_NAME_CHARS);
  const batchId = 'u'.repeat(UUID_CHARS);
  const values: Record<string, string> = { S3PATHS: '', RESULT_KEY: `${resultPrefix}${execution}/${batchId}.json`, RUN_ID: execution, BATCH_ID: batchId };
  return containerOverridesChars(
    containerName,
    converterEnvironment(bucket, outputPrefix, resultPrefix).map((e) => ({ Name: e.Name, Value: e.Value ?? values[e.Name] })),
  );
}
