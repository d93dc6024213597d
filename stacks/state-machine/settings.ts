// The definition's settings: defaults and validation in one place, before any state is built.
import { DEFAULT_MAX_BATCH_BYTES, ECS_OVERRIDES_LIMIT_CHARS, failedPrefixOf, maxBatchSize } from './constants';
import { converterOverridesFixedChars } from './converter';

/** How one ECS task of the pipeline is launched. */
export interface TaskLaunch {
  /** Task definition ARN; a family ARN without revision runs the latest ACTIVE revision. */
  readonly taskDefinitionArn: string;
  /** Name of the container whose environment is overridden. */
  readonly containerName: string;
  /** The task's role and its execution role: RunTask passes both to ECS (iam:PassRole). */
  readonly taskRoleArn: string;
  readonly executionRoleArn: string;
  readonly subnetIds: string[];
  readonly securityGroupIds: string[];
  /** @default 'FARGATE' */
  readonly capacityProvider?: 'FARGATE' | 'FARGATE_SPOT';
  /** The task state fails (and Step Functions stops the task) after this long. @default 3600 */
  readonly timeoutSeconds?: number;
}

export interface RetrySettings {
  /** @default 5 */
  readonly intervalSeconds?: number;
  /** @default 2 */
  readonly backoffRate?: number;
  /** @default 6 */
  readonly maxAttempts?: number;
  /** @default 120 */
  readonly maxDelaySeconds?: number;
}

/** ARNs the states' IAM statements name (Terraform references in the stack). */
export interface AwsTargets {
  /** This cluster's tasks: `arn:<partition>:ecs:<region>:<account>:task/<cluster name>/*`. */
  readonly clusterTasksArn: string;
  /** The managed rule through which `.sync` learns that a task stopped. */
  readonly ecsSyncRuleArn: string;
  readonly bucketArn: string;
  readonly lockTableArn: string;
  /** The machine itself (Distributed Map children are executions of it). */
  readonly stateMachineArn: string;
  /** Its executions and its map runs' child executions. */
  readonly executionArns: string[];
}

export interface PipelineDefinitionProps {
  readonly clusterArn: string;
  readonly targets: AwsTargets;
  /** The data bucket: ingested XML, JSON output, manifests and batch results. */
  readonly bucket: string;
  readonly converter: TaskLaunch;
  readonly lister: TaskLaunch;
  /** DynamoDB table holding the ingest lock (partition key `lock`, string). */
  readonly lockTableName: string;
  /** Where the lister lands files (its DEST_PREFIX). @default 'incoming/' */
  readonly ingestPrefix?: string;
  /** Output key = outputPrefix + source key + '.json'. @default 'json/' */
  readonly outputPrefix?: string;
  /**
   * Prefixes the converter may read: contract 1 keys and contract 2 prefixes outside them are rejected.
   * One of them must contain `ingestPrefix`. @default [ingestPrefix]
   */
  readonly inputPrefixes?: string[];
  /**
   * Manifests the state machine may read (the lister writes one per execution here). Keys of failed
   * batches are filed below it, at `failedPrefixOf(manifestPrefix)<execution>/<batch id>.json` (by the
   * converter, or by the state machine when the converter could not), and read by a replay.
   * @default 'manifests/'
   */
  readonly manifestPrefix?: string;
  /** Per-batch converter summaries and Distributed Map results. @default 'results/' */
  readonly resultPrefix?: string;
  /** Contract 1: keys per converter task. @default 10 */
  readonly keysBatchSize?: number;
  /** Contract 1: concurrent converter tasks (the lab's Map had 5). @default 5 */
  readonly keysMaxConcurrency?: number;
  /** Contract 2: keys per converter task (ItemBatcher MaxItemsPerBatch). @default 50 */
  readonly batchSize?: number;
  /**
   * Contract 2: bytes of one batch's input (ItemBatcher MaxInputBytesPerBatch). Keeps a batch's key
   * list within ECS's 8 KiB limit on container overrides whatever the key lengths. @default 6144
   */
  readonly maxBatchBytes?: number;
  /** Contract 2: concurrent converter tasks (child executions). @default 20 */
  readonly maxConcurrency?: number;
  /** Contract 2: share of batches that may fail before the map run fails. @default 5 */
  readonly toleratedFailurePercentage?: number;
  /** Runs of a converter task for transient task failures (not malformed input). @default 3 */
  readonly taskAttempts?: number;
  /** Retry of ECS API errors (capacity, throttling) when starting tasks. */
  readonly ecsRetry?: RetrySettings;
  /** Delays (s) before re-running a failed task; full jitter picks 1..delay. @default [15, 60, 240], then 240 for more attempts */
  readonly taskRetryDelays?: number[];
}

/** The settings with every default applied, validated. */
export type Settings = ReturnType<typeof resolveSettings>;

function positiveInt(name: string, value: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`state machine: ${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

function prefix(name: string, value: string): string {
  if (value !== '' && (!value.endsWith('/') || value.startsWith('/'))) {
    throw new Error(`state machine: ${name} must be empty or end with "/" (and not start with one), got "${value}"`);
  }
  return value;
}

/** Applies the defaults and validates; throws early with the setting's name. */
export function resolveSettings(props: PipelineDefinitionProps) {
  const ingestPrefix = prefix('ingestPrefix', props.ingestPrefix ?? 'incoming/');
  const outputPrefix = prefix('outputPrefix', props.outputPrefix ?? 'json/');
  const manifestPrefix = prefix('manifestPrefix', props.manifestPrefix ?? 'manifests/');
  const resultPrefix = prefix('resultPrefix', props.resultPrefix ?? 'results/');
  if (manifestPrefix === '' || resultPrefix === '') throw new Error('state machine: manifestPrefix and resultPrefix must not be empty');
  const failedPrefix = failedPrefixOf(manifestPrefix);
  // Outputs inside the landing prefix (or the other way round) would be converted again by a prefix run.
  if (outputPrefix.startsWith(ingestPrefix) || (outputPrefix !== '' && ingestPrefix.startsWith(outputPrefix))) {
    throw new Error(
      `state machine: outputPrefix "${outputPrefix}" and ingestPrefix "${ingestPrefix}" must not contain one another (outputs would be converted again)`,
    );
  }
  const inputPrefixes = props.inputPrefixes ?? [ingestPrefix];
  if (inputPrefixes.length === 0) throw new Error('state machine: inputPrefixes must not be empty');
  for (const p of inputPrefixes) {
    prefix('inputPrefixes', p);
    if (p === '') throw new Error('state machine: an input prefix must not be empty (the bucket also holds outputs, manifests and results)');
    for (const [name, other] of [
      ['outputPrefix', outputPrefix],
      ['manifestPrefix', manifestPrefix],
      ['resultPrefix', resultPrefix],
    ] as const) {
      if (other !== '' && (other.startsWith(p) || p.startsWith(other))) {
        throw new Error(`state machine: input prefix "${p}" and ${name} "${other}" must not contain one another`);
      }
    }
  }
  if (!inputPrefixes.some((p) => ingestPrefix.startsWith(p))) {
    throw new Error(
      `state machine: inputPrefixes [${inputPrefixes.join(', ')}] must include the ingest prefix "${ingestPrefix}" (scheduled runs convert what the lister lands there)`,
    );
  }
  const keysBatchSize = positiveInt('keysBatchSize', props.keysBatchSize ?? 10, 1, 100);
  const keysMaxConcurrency = positiveInt('keysMaxConcurrency', props.keysMaxConcurrency ?? 5, 1, 40);
  const maxBatchBytes = positiveInt('maxBatchBytes', props.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES, 256, 7168);
  const batchSize = positiveInt('batchSize', props.batchSize ?? 50, 1, maxBatchSize(maxBatchBytes));
  const maxConcurrency = positiveInt('maxConcurrency', props.maxConcurrency ?? 20, 1, 10000);
  const tolerated = props.toleratedFailurePercentage ?? 5;
  if (!(tolerated >= 0 && tolerated <= 100)) throw new Error(`state machine: toleratedFailurePercentage must be 0-100, got ${tolerated}`);
  const taskAttempts = positiveInt('taskAttempts', props.taskAttempts ?? 3, 1, 10);
  // The default delays go on at 240 s for more attempts.
  const delays = props.taskRetryDelays ?? Array.from({ length: Math.max(3, taskAttempts - 1) }, (_, i) => [15, 60, 240][i] ?? 240);
  if (delays.length < taskAttempts - 1 || delays.some((d) => !Number.isInteger(d) || d < 2)) {
    throw new Error(`state machine: taskRetryDelays needs ${taskAttempts - 1} integer delays of at least 2 s, got [${delays.join(', ')}]`);
  }
  const ecsRetry = {
    IntervalSeconds: positiveInt('ecsRetry.intervalSeconds', props.ecsRetry?.intervalSeconds ?? 5),
    BackoffRate: props.ecsRetry?.backoffRate ?? 2,
    MaxAttempts: positiveInt('ecsRetry.maxAttempts', props.ecsRetry?.maxAttempts ?? 6, 0, 99),
    MaxDelaySeconds: positiveInt('ecsRetry.maxDelaySeconds', props.ecsRetry?.maxDelaySeconds ?? 120),
    JitterStrategy: 'FULL',
  };
  for (const [name, t] of [
    ['converter', props.converter],
    ['lister', props.lister],
  ] as const) {
    if (t.subnetIds.length === 0) throw new Error(`state machine: ${name}.subnetIds must not be empty`);
    if (t.securityGroupIds.length === 0) throw new Error(`state machine: ${name}.securityGroupIds must not be empty`);
    positiveInt(`${name}.timeoutSeconds`, t.timeoutSeconds ?? 3600, 60, 86400 * 7);
  }
  const overrideFixed = converterOverridesFixedChars(props.converter.containerName, outputPrefix, resultPrefix);
  if (overrideFixed + maxBatchBytes > ECS_OVERRIDES_LIMIT_CHARS) {
    throw new Error(
      `state machine: maxBatchBytes ${maxBatchBytes} + ${overrideFixed} characters of the converter's other overrides exceed ECS's ${ECS_OVERRIDES_LIMIT_CHARS}-character override limit`,
    );
  }
  return {
    props,
    bucket: props.bucket,
    ingestPrefix,
    outputPrefix,
    manifestPrefix,
    resultPrefix,
    failedPrefix,
    inputPrefixes,
    keysBatchSize,
    keysMaxConcurrency,
    maxBatchBytes,
    batchSize,
    maxConcurrency,
    tolerated,
    taskAttempts,
    delays,
    ecsRetry,
  };
}
