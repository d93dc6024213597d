// The converter's container overrides: what each batch's task is told, and how long that can get.
import { containerOverridesChars } from './run-task';

/** The converter's container-override environment: the batch's keys and its summary key come from the state. */
export function converterEnvironment(bucket: string, outputPrefix: string): { Name: string; Value?: string; 'Value.$'?: string }[] {
  return [
    { Name: 'BUCKET', Value: bucket },
    { Name: 'S3PATHS', 'Value.$': 'States.JsonToString($.keys)' },
    { Name: 'OUTPUT_BUCKET', Value: bucket },
    { Name: 'OUTPUT_PREFIX', Value: outputPrefix },
    { Name: 'RESULT_KEY', 'Value.$': '$.resultKey' },
  ];
}

/** Longest names AWS allows: S3 bucket 63, execution name 80 (the RESULT_KEY holds one), UUID 36. */
const MAX_BUCKET_CHARS = 63;
const MAX_EXECUTION_NAME_CHARS = 80;

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
  const resultKey = `${resultPrefix}${'e'.repeat(MAX_EXECUTION_NAME_CHARS)}/${'u'.repeat(36)}.json`;
  const values: Record<string, string> = { S3PATHS: '', RESULT_KEY: resultKey };
  return containerOverridesChars(
    containerName,
    converterEnvironment(bucket, outputPrefix).map((e) => ({ Name: e.Name, Value: e.Value ?? values[e.Name] })),
  );
}

