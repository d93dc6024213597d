// The pipeline's state machine definition (Amazon States Language, JSONPath), built by a pure function
// so it can be unit-tested, validated with asl-validator and executed locally with
// aws-local-stepfunctions exactly as synthesized.
//
// Inputs (see docs/pipeline.md):
//   ["a.xml", "b/c.xml"]                          contract 1 (the lab's): convert these keys
//   {"prefix": "incoming/2024/"}                   contract 2: convert every object under a prefix
//   {"manifest": {"bucket": "b", "key": "k"}}      contract 2: convert the keys of a JSON array object
//   {"ingest": {}}                                 the schedule: ingest new SFTP files, convert them
// Every path runs one Fargate task per batch of keys (never per file). Keys and prefixes named in the
// input must lie under one of the input prefixes (the converter's role reads nothing else): others
// fail the execution before any task runs.
//
// Every converting path is a Distributed Map whose per-batch outputs go to S3 (ResultWriter), so no
// state carries per-key results: an execution's output is at most a few hundred bytes plus the
// caller's own input, whatever the number of keys (Step Functions limits a state's input and output to
// 256 KiB: https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).
import type { DataAwsIamPolicyDocumentStatement } from '@cdktf/provider-aws/lib/data-aws-iam-policy-document';

/** How one ECS task of the pipeline is launched. */
export interface TaskLaunch {
  /** Task definition ARN; a family ARN without revision runs the latest ACTIVE revision. */
  readonly taskDefinitionArn: string;
  /** Name of the container whose environment is overridden. */
  readonly containerName: string;
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

export interface PipelineDefinitionProps {
  readonly clusterArn: string;
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
  /** Manifests the state machine may read (the lister writes one per execution here). @default 'manifests/' */
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
  /** Delays (s) before re-running a failed task; full jitter picks 1..delay. @default [15, 60, 240] */
  readonly taskRetryDelays?: number[];
}

/** Names of the states the local runner and the tests refer to. */
export const STATE = {
  route: 'Route input',
  acceptIngest: 'Accept ingest input',
  acceptManifest: 'Accept manifest input',
  acceptPrefix: 'Accept prefix input',
  invalidInput: 'Invalid input',
  keysWithinLimit: 'Keys within limit?',
  describeTooManyKeys: 'Describe too many keys',
  tooManyKeys: 'Too many keys',
  checkKeys: 'Check keys',
  keyAllowed: 'Key inside input prefixes?',
  keyAccepted: 'Key accepted',
  describeRejectedKey: 'Describe rejected key',
  keyRejected: 'Key outside input prefixes',
  describeUnsafeKey: 'Describe key needing escapes',
  keyUnsafe: 'Key needs escapes',
  prefixAllowed: 'Prefix inside input prefixes?',
  describeRejectedPrefix: 'Describe rejected prefix',
  prefixRejected: 'Prefix outside input prefixes',
  convertKeys: 'Convert key batches',
  keysFailed: 'Note key conversion failure',
  keysDone: 'Keys converted',
  convertPrefix: 'Convert prefix',
  prefixDone: 'Prefix converted',
  convertManifest: 'Convert manifest',
  manifestDone: 'Manifest converted',
  acquireLock: 'Acquire ingest lock',
  readLock: 'Read ingest lock',
  lockStillHeld: 'Lock still held?',
  noteLockHolder: 'Note lock holder',
  describeHolder: 'Describe lock holder',
  holderRunning: 'Lock holder running?',
  takeOverLock: 'Take over stale lock',
  ingestSkipped: 'Ingest skipped',
  runLister: 'Run SFTP lister',
  locateManifest: 'Locate new-files manifest',
  afterIngestConvert: 'Ingest converted?',
  releaseLock: 'Release ingest lock',
  releaseLockOnFailure: 'Release ingest lock after failure',
  ingestFailed: 'Describe ingest failure',
  describeListerAndConversionFailure: 'Describe lister and conversion failure',
  describeListerFailure: 'Describe lister failure',
  describeIngestConversionFailure: 'Describe ingest conversion failure',
  describeUnknownIngestFailure: 'Describe unknown ingest failure',
  ingestFailedEnd: 'Ingest failed',
  ingestDone: 'Ingest done',
  convertFailed: 'Describe conversion failure',
  convertFailedEnd: 'Conversion failed',
} as const;

/** The three item processors share one shape; state names carry the variant (names are global in ASL). */
export type ProcessorVariant = 'keys' | 'prefix' | 'manifest';

export function processorStateNames(variant: ProcessorVariant) {
  const tag = { keys: '', prefix: ' (prefix)', manifest: ' (manifest)' }[variant];
  return {
    prepare: `Prepare batch${tag}`,
    run: `Run converter${tag}`,
    classify: `Classify task failure${tag}`,
    backoff: `Back off${tag}`,
    wait: `Wait before rerun${tag}`,
    read: `Read batch result${tag}`,
    checkResult: `Check batch result${tag}`,
    report: `Read batch result${tag} output`,
    malformed: `Batch result malformed${tag}`,
    noSummary: `No batch result${tag}`,
    failed: `Batch failed${tag}`,
    failedRead: `Batch result unreadable${tag}`,
  };
}

/** ECS API errors worth retrying (capacity, throttling, service faults); RunTask `failures` surface as AmazonECS.Unknown. */
export const ECS_TRANSIENT_ERRORS = [
  'ECS.AmazonECSException',
  'ECS.ServerException',
  'ECS.ThrottlingException',
  'ECS.LimitExceededException',
  'AmazonECS.Unknown',
] as const;

/** Errors of executions whose input names keys or a prefix outside the input prefixes. */
export const KEY_OUTSIDE_INPUT = 'KeyOutsideInputPrefixes';
export const PREFIX_OUTSIDE_INPUT = 'PrefixOutsideInputPrefixes';
/** Contract 1 with more keys than one execution can check (MAX_KEYS_PER_EXECUTION). */
export const TOO_MANY_KEYS = 'TooManyKeys';
/** Contract 1 key holding a double quote or a backslash (see KEY_NEEDS_ESCAPES_CAUSE). */
export const KEY_NEEDS_ESCAPES = 'KeyNeedsEscapes';
/** A batch summary that lacks `converted` or `failed` (batchError.Error of that batch). */
export const BATCH_RESULT_MALFORMED = 'BatchResultMalformed';

/**
 * Step Functions quotas (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html):
 * a state's or an execution's input and output, 256 KiB (beyond it `States.DataLimitExceeded`, which
 * no Catch handles); a Standard execution's history, 25,000 events (beyond it the execution fails).
 * The Fail state's error and cause: at most 32,768 characters
 * (https://docs.aws.amazon.com/step-functions/latest/dg/state-fail.html).
 */
export const SFN_PAYLOAD_LIMIT_BYTES = 256 * 1024;
export const SFN_HISTORY_EVENT_LIMIT = 25_000;
export const SFN_CAUSE_LIMIT_CHARS = 32_768;
/**
 * ECS RunTask: "A total of 8192 characters are allowed for overrides. This limit includes the JSON
 * formatting characters of the override structure."
 * (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html#ECS-RunTask-request-overrides)
 */
export const ECS_OVERRIDES_LIMIT_CHARS = 8192;
/**
 * History events one contract-1 key costs in `Check keys` (an inline Map iteration: MapIterationStarted,
 * ChoiceStateEntered/Exited, PassStateEntered/Exited, MapIterationSucceeded). Everything else of that
 * path happens in Distributed Map child executions, each with its own history.
 */
export const EVENTS_PER_CHECKED_KEY = 6;
/** Events kept for the rest of a contract-1 execution (routing, the map run, failure paths): generous. */
const RESERVED_HISTORY_EVENTS = 1000;
/**
 * The most keys a contract-1 input may hold (4,000): more could not be checked within the history
 * limit. The input itself must also be at most 256 KiB (StartExecution refuses more), so at 4,000 keys
 * they average at most 62 bytes; longer keys mean fewer of them.
 */
export const MAX_KEYS_PER_EXECUTION = Math.floor((SFN_HISTORY_EVENT_LIMIT - RESERVED_HISTORY_EVENTS) / EVENTS_PER_CHECKED_KEY);

/** The converter's exit code for malformed input: deterministic, so never re-run. */
export const CONVERTER_MALFORMED_EXIT = 65;

/** Default MaxInputBytesPerBatch: a batch's key list stays under ECS's 8 KiB container-override limit. */
export const DEFAULT_MAX_BATCH_BYTES = 6144;
/** The smallest batch item the ItemBatcher can emit (`{"Key":"x"},`). */
const MIN_BATCH_ITEM_BYTES = '{"Key":"x"},'.length;

/** The most keys a batch can ever hold under a byte cap: a larger MaxItemsPerBatch could never be reached. */
export function maxBatchSize(maxBatchBytes = DEFAULT_MAX_BATCH_BYTES): number {
  return Math.floor(maxBatchBytes / MIN_BATCH_ITEM_BYTES);
}

/** Folder under the result prefix where every map's ResultWriter files go (one folder per map run). */
export const MAP_RESULTS_FOLDER = 'map';

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

/** Characters ECS counts for a RunTask `overrides` structure (its JSON, as the API request carries it). */
export function containerOverridesChars(containerName: string, environment: { Name: string; Value: string }[]): number {
  return JSON.stringify({ containerOverrides: [{ name: containerName, environment: environment.map((e) => ({ name: e.Name, value: e.Value })) }] }).length;
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

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type State = Record<string, Json>;

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

/** Builds the definition; validates settings and throws early with the setting's name. */
export function buildDefinition(props: PipelineDefinitionProps): Record<string, Json> {
  const ingestPrefix = prefix('ingestPrefix', props.ingestPrefix ?? 'incoming/');
  const outputPrefix = prefix('outputPrefix', props.outputPrefix ?? 'json/');
  const manifestPrefix = prefix('manifestPrefix', props.manifestPrefix ?? 'manifests/');
  const resultPrefix = prefix('resultPrefix', props.resultPrefix ?? 'results/');
  if (manifestPrefix === '' || resultPrefix === '') throw new Error('state machine: manifestPrefix and resultPrefix must not be empty');
  // Outputs inside the landing prefix (or the other way round) would be converted again by a prefix run.
  if (outputPrefix.startsWith(ingestPrefix) || (outputPrefix !== '' && ingestPrefix.startsWith(outputPrefix))) {
    throw new Error(`state machine: outputPrefix "${outputPrefix}" and ingestPrefix "${ingestPrefix}" must not contain one another (outputs would be converted again)`);
  }
  const inputPrefixes = props.inputPrefixes ?? [ingestPrefix];
  if (inputPrefixes.length === 0) throw new Error('state machine: inputPrefixes must not be empty');
  for (const p of inputPrefixes) {
    prefix('inputPrefixes', p);
    if (p === '') throw new Error('state machine: an input prefix must not be empty (the bucket also holds outputs, manifests and results)');
    for (const [name, other] of [['outputPrefix', outputPrefix], ['manifestPrefix', manifestPrefix], ['resultPrefix', resultPrefix]] as const) {
      if (other !== '' && (other.startsWith(p) || p.startsWith(other))) {
        throw new Error(`state machine: input prefix "${p}" and ${name} "${other}" must not contain one another`);
      }
    }
  }
  if (!inputPrefixes.some((p) => ingestPrefix.startsWith(p))) {
    throw new Error(`state machine: inputPrefixes [${inputPrefixes.join(', ')}] must include the ingest prefix "${ingestPrefix}" (scheduled runs convert what the lister lands there)`);
  }
  const keysBatchSize = positiveInt('keysBatchSize', props.keysBatchSize ?? 10, 1, 100);
  const keysMaxConcurrency = positiveInt('keysMaxConcurrency', props.keysMaxConcurrency ?? 5, 1, 40);
  const maxBatchBytes = positiveInt('maxBatchBytes', props.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES, 256, 7168);
  const batchSize = positiveInt('batchSize', props.batchSize ?? 50, 1, maxBatchSize(maxBatchBytes));
  const maxConcurrency = positiveInt('maxConcurrency', props.maxConcurrency ?? 20, 1, 10000);
  const tolerated = props.toleratedFailurePercentage ?? 5;
  if (!(tolerated >= 0 && tolerated <= 100)) throw new Error(`state machine: toleratedFailurePercentage must be 0-100, got ${tolerated}`);
  const taskAttempts = positiveInt('taskAttempts', props.taskAttempts ?? 3, 1, 10);
  const delays = props.taskRetryDelays ?? [15, 60, 240];
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
  for (const [name, t] of [['converter', props.converter], ['lister', props.lister]] as const) {
    if (t.subnetIds.length === 0) throw new Error(`state machine: ${name}.subnetIds must not be empty`);
    if (t.securityGroupIds.length === 0) throw new Error(`state machine: ${name}.securityGroupIds must not be empty`);
    positiveInt(`${name}.timeoutSeconds`, t.timeoutSeconds ?? 3600, 60, 86400 * 7);
  }
  const overrideFixed = converterOverridesFixedChars(props.converter.containerName, outputPrefix, resultPrefix);
  if (overrideFixed + maxBatchBytes > ECS_OVERRIDES_LIMIT_CHARS) {
    throw new Error(`state machine: maxBatchBytes ${maxBatchBytes} + ${overrideFixed} characters of the converter's other overrides exceed ECS's ${ECS_OVERRIDES_LIMIT_CHARS}-character override limit`);
  }
  const bucket = props.bucket;

  const runTaskParameters = (t: TaskLaunch, environment: Json[]): Record<string, Json> => ({
    Cluster: props.clusterArn,
    TaskDefinition: t.taskDefinitionArn,
    CapacityProviderStrategy: [{ CapacityProvider: t.capacityProvider ?? 'FARGATE', Weight: 1 }],
    NetworkConfiguration: {
      AwsvpcConfiguration: { Subnets: t.subnetIds, SecurityGroups: t.securityGroupIds, AssignPublicIp: 'DISABLED' },
    },
    PropagateTags: 'TASK_DEFINITION',
    Overrides: { ContainerOverrides: [{ Name: t.containerName, Environment: environment }] },
  });
  const ecsRetrier = { ErrorEquals: [...ECS_TRANSIENT_ERRORS], ...ecsRetry };

  // One converter task per batch, in a Distributed Map child execution. Its input is the batch
  // ({"Items": [{"Key", "execution"}, ...]}, never empty); its output {resultKey, converted, failed}
  // (+ batchError, failedKeys) goes to the map's ResultWriter files in S3, never into the parent's state.
  const processor = (variant: ProcessorVariant): Record<string, Json> => {
    const n = processorStateNames(variant);
    const exitPatterns = [`*"ExitCode":${CONVERTER_MALFORMED_EXIT},*`, `*"ExitCode":${CONVERTER_MALFORMED_EXIT}}*`];
    const states: Record<string, State> = {
      [n.prepare]: {
        Type: 'Pass',
        Parameters: {
          'keys.$': '$.Items[*].Key',
          // Every item carries the parent execution's name (ItemSelector), so a batch's summary is filed
          // under the execution that converted it.
          'execution.$': '$.Items[0].execution',
          'resultKey.$': `States.Format('${resultPrefix}{}/{}.json', $.Items[0].execution, States.UUID())`,
          attempt: 0,
        },
        Next: n.run,
      },
      [n.run]: {
        Type: 'Task',
        Resource: 'arn:aws:states:::ecs:runTask.sync',
        Parameters: runTaskParameters(props.converter, converterEnvironment(bucket, outputPrefix)),
        TimeoutSeconds: props.converter.timeoutSeconds ?? 3600,
        ResultPath: null,
        Retry: [ecsRetrier],
        Catch: [
          { ErrorEquals: [...ECS_TRANSIENT_ERRORS], ResultPath: '$.taskError', Next: n.failed },
          { ErrorEquals: ['States.TaskFailed'], ResultPath: '$.taskError', Next: n.classify },
          { ErrorEquals: ['States.ALL'], ResultPath: '$.taskError', Next: n.failed },
        ],
        Next: n.read,
      },
      // The cause of a failed .sync task is the stopped task's JSON. Exit 65 = malformed input: the
      // summary lists which keys and why, so read it. Anything else (Spot reclaim, image pull, OOM,
      // I/O error) may pass on a fresh task: run it again, a bounded number of times. An error output
      // always has `Error` but need not have `Cause`: test its presence first (a comparison on a
      // missing path is an uncatchable States.Runtime).
      [n.classify]: {
        Type: 'Choice',
        Choices: [
          {
            And: [
              { Variable: '$.taskError.Cause', IsPresent: true },
              { Variable: '$.taskError.Cause', IsString: true },
              { Or: exitPatterns.map((p) => ({ Variable: '$.taskError.Cause', StringMatches: p })) },
            ],
            Next: n.read,
          },
          { Variable: '$.attempt', NumericLessThan: taskAttempts - 1, Next: n.backoff },
        ],
        // Out of attempts: a converter that ran may still have written its per-key summary (e.g. an
        // I/O error on one key): report that; with no summary the whole batch is reported failed.
        Default: n.read,
      },
      [n.backoff]: {
        Type: 'Pass',
        Parameters: {
          'keys.$': '$.keys',
          'execution.$': '$.execution',
          'resultKey.$': '$.resultKey',
          'attempt.$': 'States.MathAdd($.attempt, 1)',
          // Full jitter: uniform in [1, delay) so reruns of many batches do not stampede.
          'waitSeconds.$': `States.MathRandom(1, States.ArrayGetItem(States.Array(${delays.join(', ')}), $.attempt))`,
          'lastError.$': '$.taskError.Error',
        },
        Next: n.wait,
      },
      [n.wait]: { Type: 'Wait', SecondsPath: '$.waitSeconds', Next: n.run },
      [n.read]: {
        Type: 'Task',
        Resource: 'arn:aws:states:::aws-sdk:s3:getObject',
        Parameters: { Bucket: bucket, 'Key.$': '$.resultKey' },
        ResultSelector: { 'summary.$': 'States.StringToJson($.Body)' },
        ResultPath: '$.result',
        TimeoutSeconds: 60,
        Retry: [{ ErrorEquals: ['S3.S3Exception', 'S3.SdkClientException', 'States.Timeout'], IntervalSeconds: 2, BackoffRate: 2, MaxAttempts: 3, JitterStrategy: 'FULL' }],
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.readError', Next: n.noSummary }],
        Next: n.checkResult,
      },
      // Whatever object sits at the result key is JSON, not necessarily the converter's summary: select
      // its lists only once they are known to be there.
      [n.checkResult]: {
        Type: 'Choice',
        Choices: [
          {
            And: [
              { Variable: '$.result.summary.converted', IsPresent: true },
              { Variable: '$.result.summary.failed', IsPresent: true },
            ],
            Next: n.report,
          },
        ],
        Default: n.malformed,
      },
      [n.report]: {
        Type: 'Pass',
        Parameters: {
          'resultKey.$': '$.resultKey',
          'converted.$': '$.result.summary.converted',
          'failed.$': '$.result.summary.failed',
        },
        End: true,
      },
      [n.malformed]: {
        Type: 'Pass',
        Parameters: {
          'resultKey.$': '$.resultKey',
          converted: [],
          failed: [],
          batchError: { Error: BATCH_RESULT_MALFORMED, Cause: 'the object at resultKey has no "converted" or no "failed" list' },
          'failedKeys.$': '$.keys',
        },
        End: true,
      },
      [n.noSummary]: {
        Type: 'Choice',
        Choices: [{ Variable: '$.taskError', IsPresent: true, Next: n.failed }],
        Default: n.failedRead,
      },
      [n.failedRead]: {
        Type: 'Pass',
        Parameters: {
          'resultKey.$': '$.resultKey',
          converted: [],
          failed: [],
          'batchError.$': '$.readError',
          'failedKeys.$': '$.keys',
        },
        End: true,
      },
      // No summary to read: every key of the batch is reported failed with the task's error.
      [n.failed]: {
        Type: 'Pass',
        Parameters: {
          'resultKey.$': '$.resultKey',
          converted: [],
          failed: [],
          'batchError.$': '$.taskError',
          'failedKeys.$': '$.keys',
        },
        End: true,
      },
    };
    return { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' }, StartAt: n.prepare, States: states };
  };

  // ItemBatcher bounds each batch by count and by bytes: the byte bound keeps its S3PATHS override
  // within ECS's limit whatever the key lengths (maxOverrideChars). The execution name reaches the
  // children through ItemSelector, which is documented to take values from the Context object
  // (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemselector.html), not
  // through ItemBatcher.BatchInput, which is documented only as fixed JSON
  // (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itembatcher.html).
  const batcher = (maxItems: number) => ({ MaxItemsPerBatch: maxItems, MaxInputBytesPerBatch: maxBatchBytes });
  const itemSelector = (keyPath: string) => ({ 'Key.$': keyPath, 'execution.$': '$$.Execution.Name' });
  // Every map writes its children's outputs to S3: results/map/<map run id>/manifest.json and
  // SUCCEEDED_n.json / FAILED_n.json (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html).
  // The map's own result is then {MapRunArn, ResultWriterDetails: {Bucket, Key}} whatever the key count.
  const resultWriter = {
    Resource: 'arn:aws:states:::s3:putObject',
    Parameters: { Bucket: bucket, Prefix: `${resultPrefix}${MAP_RESULTS_FOLDER}` },
  };

  const lockKey = { lock: { S: 'ingest' } };
  /** The lock item as this execution writes it when it takes the lock. */
  const heldLock = { ...lockKey, holder: { 'S.$': '$$.Execution.Id' }, since: { 'S.$': '$$.Execution.StartTime' } };
  const dynamoRetry = {
    ErrorEquals: ['DynamoDB.ProvisionedThroughputExceededException', 'DynamoDB.ThrottlingException', 'DynamoDB.InternalServerErrorException', 'DynamoDB.RequestLimitExceeded'],
    IntervalSeconds: 1,
    BackoffRate: 2,
    MaxAttempts: 5,
    JitterStrategy: 'FULL',
  };
  // Deletes the lock only if this execution holds it; a failed release never hides the outcome.
  const releaseLockThen = (next: string): State => ({
    Type: 'Task',
    Resource: 'arn:aws:states:::dynamodb:deleteItem',
    Parameters: {
      TableName: props.lockTableName,
      Key: lockKey,
      ConditionExpression: '#holder = :me',
      ExpressionAttributeNames: { '#holder': 'holder' },
      ExpressionAttributeValues: { ':me': { 'S.$': '$$.Execution.Id' } },
    },
    ResultPath: null,
    Retry: [dynamoRetry],
    Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.lockError', Next: next }],
    Next: next,
  });
  const isString = (variable: string): Json[] => [
    { Variable: variable, IsPresent: true },
    { Variable: variable, IsString: true },
  ];
  // `StringMatches` treats * and \ as special; States.Format literals treat ' { } \ as special.
  const matchesInput = (variable: string): Json => {
    const rules: Json[] = inputPrefixes.map((p) => ({ Variable: variable, StringMatches: `${p.replace(/[\\*]/g, '\\$&')}*` }));
    return { And: [{ Variable: variable, IsString: true }, rules.length === 1 ? rules[0] : { Or: rules }] };
  };
  // Characters JSON must escape (RFC 8259 section 7): a double quote, a backslash, U+0000 to U+001F.
  const needsEscapes = (variable: string): Json => ({
    Or: ['"', '\\\\', ...Array.from({ length: 0x20 }, (_, c) => String.fromCharCode(c))].map((ch) => ({ Variable: variable, StringMatches: `*${ch}*` })),
  });
  // States.Format literals treat ' { } \ as special.
  const formatLiteral = (text: string) => text.replace(/[\\'{}]/g, '\\$&');
  const prefixList = formatLiteral(inputPrefixes.join(', '));
  const manifestKeyOfExecution = `States.Format('${manifestPrefix}{}.json', $$.Execution.Name)`;

  const states: Record<string, State> = {
    [STATE.route]: {
      Type: 'Choice',
      Choices: [
        { Variable: '$.ingest', IsPresent: true, Next: STATE.acceptIngest },
        // A type test on a missing path is a runtime error: test presence first (And short-circuits).
        { And: [...isString('$.manifest.bucket'), ...isString('$.manifest.key')], Next: STATE.acceptManifest },
        { And: isString('$.prefix'), Next: STATE.acceptPrefix },
        { And: isString('$[0]'), Next: STATE.keysWithinLimit },
      ],
      Default: STATE.invalidInput,
    },
    // Object inputs keep only the fields the machine reads: every other top-level field of the state
    // is then the machine's own (a caller's "error" or "results" could otherwise be mistaken for one).
    [STATE.acceptIngest]: { Type: 'Pass', Parameters: { 'ingest.$': '$.ingest' }, Next: STATE.acquireLock },
    [STATE.acceptManifest]: {
      Type: 'Pass',
      Parameters: { manifest: { 'bucket.$': '$.manifest.bucket', 'key.$': '$.manifest.key' } },
      Next: STATE.convertManifest,
    },
    [STATE.acceptPrefix]: { Type: 'Pass', Parameters: { 'prefix.$': '$.prefix' }, Next: STATE.prefixAllowed },
    [STATE.invalidInput]: {
      Type: 'Fail',
      Error: 'InvalidInput',
      Cause:
        'Expected a non-empty JSON array of S3 keys, {"prefix": "..."}, {"manifest": {"bucket": "...", "key": "..."}} or {"ingest": {}}',
    },

    // Keys and prefixes named by the caller must lie in the input prefixes: the converter's role may
    // read nothing else, so anything outside is refused up front, naming it, before a task starts.
    // (Manifest items are not checked here, one state transition per key; the role denies their read
    // and the converter reports each such key failed.)
    // Contract 1 is checked key by key in an inline Map (EVENTS_PER_CHECKED_KEY history events each):
    // more keys than the history can hold are refused at once, before any check or task.
    [STATE.keysWithinLimit]: {
      Type: 'Choice',
      Choices: [{ Variable: `$[${MAX_KEYS_PER_EXECUTION}]`, IsPresent: true, Next: STATE.describeTooManyKeys }],
      Default: STATE.checkKeys,
    },
    [STATE.describeTooManyKeys]: {
      Type: 'Pass',
      Parameters: {
        'cause.$': `States.Format('{} keys given: one execution takes at most ${MAX_KEYS_PER_EXECUTION} (Step Functions limits an execution to ${SFN_HISTORY_EVENT_LIMIT} history events); split the list, or write it to S3 as a JSON array and start the manifest input; nothing was converted', States.ArrayLength($))`,
      },
      Next: STATE.tooManyKeys,
    },
    [STATE.tooManyKeys]: { Type: 'Fail', Error: TOO_MANY_KEYS, CausePath: '$.cause' },
    [STATE.checkKeys]: {
      Type: 'Map',
      ItemsPath: '$',
      ItemProcessor: {
        ProcessorConfig: { Mode: 'INLINE' },
        StartAt: STATE.keyAllowed,
        States: {
          [STATE.keyAllowed]: {
            Type: 'Choice',
            Choices: [
              { And: [matchesInput('$'), { Not: needsEscapes('$') }], Next: STATE.keyAccepted },
              { ...(matchesInput('$') as Record<string, Json>), Next: STATE.describeUnsafeKey },
            ],
            Default: STATE.describeRejectedKey,
          },
          [STATE.keyAccepted]: { Type: 'Pass', Result: true, End: true },
          [STATE.describeRejectedKey]: {
            Type: 'Pass',
            Parameters: { 'cause.$': `States.Format('key {} is outside the input prefixes (${prefixList}); nothing was converted', States.JsonToString($))` },
            Next: STATE.keyRejected,
          },
          [STATE.keyRejected]: { Type: 'Fail', Error: KEY_OUTSIDE_INPUT, CausePath: '$.cause' },
          [STATE.describeUnsafeKey]: {
            Type: 'Pass',
            Parameters: { 'cause.$': `States.Format('key {} holds a double quote, a backslash or a control character: JSON escapes count twice against ECS\\'s ${ECS_OVERRIDES_LIMIT_CHARS}-character override limit, so its batch could not be started; nothing was converted', States.JsonToString($))` },
            Next: STATE.keyUnsafe,
          },
          [STATE.keyUnsafe]: { Type: 'Fail', Error: KEY_NEEDS_ESCAPES, CausePath: '$.cause' },
        },
      },
      ResultPath: null,
      Next: STATE.convertKeys,
    },
    [STATE.prefixAllowed]: {
      Type: 'Choice',
      Choices: [{ ...(matchesInput('$.prefix') as Record<string, Json>), Next: STATE.convertPrefix }],
      Default: STATE.describeRejectedPrefix,
    },
    [STATE.describeRejectedPrefix]: {
      Type: 'Pass',
      Parameters: { 'cause.$': `States.Format('prefix {} is outside the input prefixes (${prefixList}); nothing was converted', States.JsonToString($.prefix))` },
      Next: STATE.prefixRejected,
    },
    [STATE.prefixRejected]: { Type: 'Fail', Error: PREFIX_OUTSIDE_INPUT, CausePath: '$.cause' },

    // Contract 1: a JSON array of keys (the lab's), batched like contract 2, 5 tasks at a time as the
    // lab's Map. The array input cannot take a field, so the map's result replaces it: {results}.
    [STATE.convertKeys]: {
      Type: 'Map',
      ItemsPath: '$',
      ItemSelector: itemSelector('$$.Map.Item.Value'),
      ItemBatcher: batcher(keysBatchSize),
      MaxConcurrency: keysMaxConcurrency,
      ToleratedFailurePercentage: tolerated,
      ItemProcessor: processor('keys'),
      ResultWriter: resultWriter,
      ResultSelector: { 'results.$': '$' },
      Label: 'ConvertKeys',
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$', Next: STATE.keysFailed }],
      Next: STATE.keysDone,
    },
    [STATE.keysFailed]: { Type: 'Pass', Parameters: { 'error.$': '$' }, Next: STATE.convertFailed },
    [STATE.keysDone]: { Type: 'Succeed' },

    // Contract 2a: every object under a prefix (a prefix can hold millions of keys).
    [STATE.convertPrefix]: {
      Type: 'Map',
      ItemReader: {
        Resource: 'arn:aws:states:::s3:listObjectsV2',
        Parameters: { Bucket: bucket, 'Prefix.$': '$.prefix' },
      },
      ItemSelector: itemSelector('$$.Map.Item.Value.Key'),
      ItemBatcher: batcher(batchSize),
      MaxConcurrency: maxConcurrency,
      ToleratedFailurePercentage: tolerated,
      ItemProcessor: processor('prefix'),
      ResultWriter: resultWriter,
      ResultPath: '$.results',
      Label: 'ConvertPrefix',
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: STATE.convertFailed }],
      Next: STATE.prefixDone,
    },
    [STATE.prefixDone]: { Type: 'Succeed' },

    // Contract 2b and the schedule: the keys listed in a manifest (a JSON array of keys).
    [STATE.convertManifest]: {
      Type: 'Map',
      ItemReader: {
        Resource: 'arn:aws:states:::s3:getObject',
        ReaderConfig: { InputType: 'JSON' },
        Parameters: { 'Bucket.$': '$.manifest.bucket', 'Key.$': '$.manifest.key' },
      },
      ItemSelector: itemSelector('$$.Map.Item.Value'),
      ItemBatcher: batcher(batchSize),
      MaxConcurrency: maxConcurrency,
      ToleratedFailurePercentage: tolerated,
      ItemProcessor: processor('manifest'),
      ResultWriter: resultWriter,
      Label: 'ConvertManifest',
      ResultPath: '$.results',
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: STATE.afterIngestConvert }],
      Next: STATE.afterIngestConvert,
    },
    [STATE.afterIngestConvert]: {
      Type: 'Choice',
      Choices: [
        { And: [{ Variable: '$.ingest', IsPresent: true }, { Variable: '$.error', IsPresent: true }], Next: STATE.releaseLockOnFailure },
        { And: [{ Variable: '$.ingest', IsPresent: true }, { Variable: '$.ingestError', IsPresent: true }], Next: STATE.releaseLockOnFailure },
        { Variable: '$.ingest', IsPresent: true, Next: STATE.releaseLock },
        { And: isString('$.error.Error'), Next: STATE.convertFailed },
      ],
      Default: STATE.manifestDone,
    },
    [STATE.manifestDone]: { Type: 'Succeed' },
    // The Fail cause names the error only: the caught error's own cause can be 32,768 characters, and
    // it stays in the execution history (the map's event) anyway.
    [STATE.convertFailed]: {
      Type: 'Pass',
      Parameters: { 'cause.$': `States.Format('the conversion failed with {}; the map run and the caught error are in the execution history, per-batch results under ${formatLiteral(resultPrefix + MAP_RESULTS_FOLDER)}/', $.error.Error)` },
      Next: STATE.convertFailedEnd,
    },
    [STATE.convertFailedEnd]: { Type: 'Fail', Error: 'ConversionFailed', CausePath: '$.cause' },

    // The schedule: one ingest at a time (a lock item naming the holding execution), so two runs never
    // ingest, and so never convert, the same file at the same time. A lock whose holder is no longer
    // RUNNING (timed out, aborted) is taken over.
    [STATE.acquireLock]: {
      Type: 'Task',
      Resource: 'arn:aws:states:::dynamodb:putItem',
      Parameters: {
        TableName: props.lockTableName,
        Item: heldLock,
        ConditionExpression: 'attribute_not_exists(#lock)',
        ExpressionAttributeNames: { '#lock': 'lock' },
      },
      ResultPath: null,
      Retry: [dynamoRetry],
      Catch: [{ ErrorEquals: ['DynamoDB.ConditionalCheckFailedException'], ResultPath: null, Next: STATE.readLock }],
      Next: STATE.runLister,
    },
    [STATE.readLock]: {
      Type: 'Task',
      Resource: 'arn:aws:states:::dynamodb:getItem',
      Parameters: { TableName: props.lockTableName, Key: lockKey, ConsistentRead: true },
      // GetItem of a released lock returns no Item: selecting $.Item.holder.S here would be an
      // uncatchable States.Runtime, so the item is kept as returned and tested first.
      ResultPath: '$.lockRead',
      Retry: [dynamoRetry],
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.lockError', Next: STATE.ingestSkipped }],
      Next: STATE.lockStillHeld,
    },
    // Released between our put and this read: the next scheduled run will get it.
    [STATE.lockStillHeld]: {
      Type: 'Choice',
      Choices: [{ And: isString('$.lockRead.Item.holder.S'), Next: STATE.noteLockHolder }],
      Default: STATE.ingestSkipped,
    },
    [STATE.noteLockHolder]: {
      Type: 'Pass',
      Parameters: { 'holder.$': '$.lockRead.Item.holder.S' },
      ResultPath: '$.lock',
      Next: STATE.describeHolder,
    },
    [STATE.describeHolder]: {
      Type: 'Task',
      Resource: 'arn:aws:states:::aws-sdk:sfn:describeExecution',
      Parameters: { 'ExecutionArn.$': '$.lock.holder' },
      ResultSelector: { 'status.$': '$.Status' },
      ResultPath: '$.lock.holderStatus',
      Retry: [{ ErrorEquals: ['Sfn.SfnException', 'States.Timeout'], IntervalSeconds: 1, BackoffRate: 2, MaxAttempts: 3, JitterStrategy: 'FULL' }],
      Catch: [
        { ErrorEquals: ['Sfn.ExecutionDoesNotExistException'], ResultPath: null, Next: STATE.takeOverLock },
        { ErrorEquals: ['States.ALL'], ResultPath: '$.lockError', Next: STATE.ingestSkipped },
      ],
      Next: STATE.holderRunning,
    },
    [STATE.holderRunning]: {
      Type: 'Choice',
      Choices: [{ Variable: '$.lock.holderStatus.status', StringEquals: 'RUNNING', Next: STATE.ingestSkipped }],
      Default: STATE.takeOverLock,
    },
    [STATE.takeOverLock]: {
      Type: 'Task',
      Resource: 'arn:aws:states:::dynamodb:putItem',
      Parameters: {
        TableName: props.lockTableName,
        Item: heldLock,
        ConditionExpression: '#holder = :stale',
        ExpressionAttributeNames: { '#holder': 'holder' },
        ExpressionAttributeValues: { ':stale': { 'S.$': '$.lock.holder' } },
      },
      ResultPath: null,
      Retry: [dynamoRetry],
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.lockError', Next: STATE.ingestSkipped }],
      Next: STATE.runLister,
    },
    [STATE.ingestSkipped]: { Type: 'Succeed' },
    [STATE.runLister]: {
      Type: 'Task',
      Resource: 'arn:aws:states:::ecs:runTask.sync',
      Parameters: runTaskParameters(props.lister, [
        { Name: 'DEST_BUCKET', Value: bucket },
        { Name: 'DEST_PREFIX', Value: ingestPrefix },
        { Name: 'MANIFEST_KEY', 'Value.$': manifestKeyOfExecution },
      ]),
      TimeoutSeconds: props.lister.timeoutSeconds ?? 3600,
      ResultPath: null,
      Retry: [ecsRetrier],
      // A lister that failed part-way still wrote the manifest of what it did ingest: convert those
      // (the next run will not list them again), then fail the execution so it shows.
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.ingestError', Next: STATE.locateManifest }],
      Next: STATE.locateManifest,
    },
    [STATE.locateManifest]: {
      Type: 'Pass',
      Parameters: { bucket, 'key.$': manifestKeyOfExecution },
      ResultPath: '$.manifest',
      Next: STATE.convertManifest,
    },
    [STATE.releaseLock]: releaseLockThen(STATE.ingestDone),
    [STATE.ingestDone]: { Type: 'Succeed' },
    [STATE.releaseLockOnFailure]: releaseLockThen(STATE.ingestFailed),
    // A bounded summary (error names, the manifest, where the results are): the caught errors
    // themselves (a stopped task's JSON, up to 32,768 characters each) stay in the execution history.
    [STATE.ingestFailed]: {
      Type: 'Choice',
      Choices: [
        { And: [...isString('$.ingestError.Error'), ...isString('$.error.Error')], Next: STATE.describeListerAndConversionFailure },
        { And: [...isString('$.ingestError.Error'), ...isString('$.results.ResultWriterDetails.Bucket'), ...isString('$.results.ResultWriterDetails.Key')], Next: STATE.describeListerFailure },
        { And: isString('$.error.Error'), Next: STATE.describeIngestConversionFailure },
      ],
      Default: STATE.describeUnknownIngestFailure,
    },
    [STATE.describeListerAndConversionFailure]: {
      Type: 'Pass',
      Parameters: { 'cause.$': "States.Format('the SFTP lister failed with {}, then converting what it ingested (manifest s3://{}/{}) failed with {}; the lock was released; the caught errors are in the execution history', $.ingestError.Error, $.manifest.bucket, $.manifest.key, $.error.Error)" },
      Next: STATE.ingestFailedEnd,
    },
    [STATE.describeListerFailure]: {
      Type: 'Pass',
      Parameters: { 'cause.$': "States.Format('the SFTP lister failed with {}; what it ingested before (manifest s3://{}/{}) was converted, results in s3://{}/{}; the lock was released; the caught error is in the execution history', $.ingestError.Error, $.manifest.bucket, $.manifest.key, $.results.ResultWriterDetails.Bucket, $.results.ResultWriterDetails.Key)" },
      Next: STATE.ingestFailedEnd,
    },
    [STATE.describeIngestConversionFailure]: {
      Type: 'Pass',
      Parameters: { 'cause.$': "States.Format('converting the ingested files (manifest s3://{}/{}) failed with {}; the lock was released; the caught error is in the execution history', $.manifest.bucket, $.manifest.key, $.error.Error)" },
      Next: STATE.ingestFailedEnd,
    },
    [STATE.describeUnknownIngestFailure]: {
      Type: 'Pass',
      Result: { cause: 'the ingest failed; the lock was released; the caught error is in the execution history' },
      Next: STATE.ingestFailedEnd,
    },
    [STATE.ingestFailedEnd]: { Type: 'Fail', Error: 'IngestFailed', CausePath: '$.cause' },
  };

  return {
    Comment: 'SFTP-to-S3 ingest and XML-to-JSON conversion on Fargate, one task per batch of keys',
    QueryLanguage: 'JSONPath',
    StartAt: STATE.route,
    States: states,
  };
}

// ---------------------------------------------------------------------------------------------
// IAM: each integration the definition uses brings the statements it needs (as aws-cdk's task
// constructs do in `_createPolicyStatements`); the batch stack merges them into the role's policy.
// ---------------------------------------------------------------------------------------------

/** One statement of the state machine role's policy (the provider's policy-document statement). */
export type PolicyStatement = DataAwsIamPolicyDocumentStatement & { readonly sid: string; readonly actions: string[]; readonly resources: string[] };

/** What the integrations act on (ARNs; Terraform references in the stack). */
export interface IntegrationTargets {
  readonly clusterArn: string;
  /** This cluster's tasks: `arn:<partition>:ecs:<region>:<account>:task/<cluster name>/*`. */
  readonly clusterTasksArn: string;
  /** Task definition families the machine runs (ARNs without revision). */
  readonly taskDefinitionFamilyArns: string[];
  /** Task and execution roles of those task definitions (RunTask passes them to ECS). */
  readonly passRoleArns: string[];
  /** The managed rule through which `.sync` learns that a task stopped. */
  readonly ecsSyncRuleArn: string;
  readonly bucketArn: string;
  readonly manifestPrefix: string;
  readonly resultPrefix: string;
  readonly inputPrefixes: string[];
  readonly lockTableArn: string;
  /** The machine itself (Distributed Map children are executions of it). */
  readonly stateMachineArn: string;
  /** Its executions and its map runs' child executions. */
  readonly executionArns: string[];
}

/** How an integration is used: a Task's Resource, a Distributed Map's reader or writer, or its children. */
export type IntegrationUse = `task:${string}` | `itemReader:${string}` | `resultWriter:${string}` | 'distributedMap';

/** Every integration the machine may use, in the order its statements appear in the policy. */
const INTEGRATIONS: [IntegrationUse, (t: IntegrationTargets) => PolicyStatement[]][] = [
  [
    'task:arn:aws:states:::ecs:runTask.sync',
    (t) => [
      {
        sid: 'RunOnlyPipelineTasks',
        effect: 'Allow',
        actions: ['ecs:RunTask'],
        resources: t.taskDefinitionFamilyArns.flatMap((a) => [a, `${a}:*`]),
        condition: [{ test: 'ArnEquals', variable: 'ecs:cluster', values: [t.clusterArn] }],
      },
      {
        // PropagateTags TASK_DEFINITION (and the provider's default tags on the task definitions) make
        // RunTask create a tagged task: ECS then also authorizes ecs:TagResource, with ecs:CreateAction
        // = RunTask (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html).
        // Without it RunTask fails with AccessDeniedException, which is not retried.
        sid: 'TagTasksOnRunTask',
        effect: 'Allow',
        actions: ['ecs:TagResource'],
        resources: [t.clusterTasksArn],
        condition: [{ test: 'StringEquals', variable: 'ecs:CreateAction', values: ['RunTask'] }],
      },
      {
        sid: 'WatchAndStopTasks',
        effect: 'Allow',
        actions: ['ecs:StopTask', 'ecs:DescribeTasks'],
        resources: [t.clusterTasksArn],
        condition: [{ test: 'ArnEquals', variable: 'ecs:cluster', values: [t.clusterArn] }],
      },
      {
        sid: 'PassOnlyPipelineTaskRoles',
        effect: 'Allow',
        actions: ['iam:PassRole'],
        resources: t.passRoleArns,
        condition: [{ test: 'StringEquals', variable: 'iam:PassedToService', values: ['ecs-tasks.amazonaws.com'] }],
      },
      // runTask.sync learns that a task stopped through this managed rule.
      { sid: 'SyncTaskCompletionRule', effect: 'Allow', actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'], resources: [t.ecsSyncRuleArn] },
    ],
  ],
  ['itemReader:arn:aws:states:::s3:getObject', (t) => [{ sid: 'ReadManifestsAndBatchResults', effect: 'Allow', actions: ['s3:GetObject'], resources: [`${t.bucketArn}/${t.manifestPrefix}*`] }]],
  ['task:arn:aws:states:::aws-sdk:s3:getObject', (t) => [{ sid: 'ReadManifestsAndBatchResults', effect: 'Allow', actions: ['s3:GetObject'], resources: [`${t.bucketArn}/${t.resultPrefix}*`] }]],
  [
    // ItemReader for {"prefix": ...} lists keys (it never reads the objects); the definition accepts
    // only prefixes inside the input prefixes, and so does this condition.
    'itemReader:arn:aws:states:::s3:listObjectsV2',
    (t) => [{ sid: 'ListInputPrefixes', effect: 'Allow', actions: ['s3:ListBucket'], resources: [t.bucketArn], condition: [{ test: 'StringLike', variable: 's3:prefix', values: t.inputPrefixes.map((p) => `${p}*`) }] }],
  ],
  [
    'resultWriter:arn:aws:states:::s3:putObject',
    (t) => [{ sid: 'WriteMapResults', effect: 'Allow', actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'], resources: [`${t.bucketArn}/${t.resultPrefix}*`] }],
  ],
  ['task:arn:aws:states:::dynamodb:putItem', (t) => [{ sid: 'IngestLock', effect: 'Allow', actions: ['dynamodb:PutItem'], resources: [t.lockTableArn] }]],
  ['task:arn:aws:states:::dynamodb:getItem', (t) => [{ sid: 'IngestLock', effect: 'Allow', actions: ['dynamodb:GetItem'], resources: [t.lockTableArn] }]],
  ['task:arn:aws:states:::dynamodb:deleteItem', (t) => [{ sid: 'IngestLock', effect: 'Allow', actions: ['dynamodb:DeleteItem'], resources: [t.lockTableArn] }]],
  [
    // A Distributed Map starts its children as executions of this machine, and describes and stops them.
    'distributedMap',
    (t) => [
      { sid: 'DistributedMapChildren', effect: 'Allow', actions: ['states:StartExecution'], resources: [t.stateMachineArn] },
      { sid: 'OwnExecutions', effect: 'Allow', actions: ['states:DescribeExecution', 'states:StopExecution'], resources: t.executionArns },
    ],
  ],
  // Describing the ingest lock's holder (one of this machine's executions).
  ['task:arn:aws:states:::aws-sdk:sfn:describeExecution', (t) => [{ sid: 'OwnExecutions', effect: 'Allow', actions: ['states:DescribeExecution'], resources: t.executionArns }]],
];

/** The integrations a definition uses, and the first state using each (nested states included). */
export function integrationsUsed(definition: Record<string, unknown>): Map<IntegrationUse, string> {
  const used = new Map<IntegrationUse, string>();
  const note = (use: IntegrationUse, state: string) => {
    if (!used.has(use)) used.set(use, state);
  };
  const walk = (states: Record<string, Record<string, any>>) => {
    for (const [name, state] of Object.entries(states)) {
      if (state.Type === 'Task') note(`task:${state.Resource}`, name);
      if (state.ItemReader) note(`itemReader:${state.ItemReader.Resource}`, name);
      if (state.ResultWriter) note(`resultWriter:${state.ResultWriter.Resource}`, name);
      const processor = state.ItemProcessor ?? state.Iterator;
      if (processor?.ProcessorConfig?.Mode === 'DISTRIBUTED') note('distributedMap', name);
      if (processor) walk(processor.States);
      for (const branch of state.Branches ?? []) walk(branch.States);
    }
  };
  walk(definition.States as Record<string, Record<string, any>>);
  return used;
}

/**
 * The role statements a definition needs: those of each integration it uses, merged by Sid (actions
 * and resources united, in order). Throws for an integration with no known permissions, so a state
 * cannot be added without its grant.
 */
export function integrationStatements(definition: Record<string, unknown>, targets: IntegrationTargets): PolicyStatement[] {
  const used = integrationsUsed(definition);
  const known = new Set(INTEGRATIONS.map(([use]) => use));
  for (const [use, state] of used) {
    if (!known.has(use)) throw new Error(`state machine: state "${state}" uses ${use}, whose IAM permissions are not known (add it to INTEGRATIONS)`);
  }
  const merged = new Map<string, PolicyStatement>();
  for (const [use, statements] of INTEGRATIONS) {
    if (!used.has(use)) continue;
    for (const st of statements(targets)) {
      const prev = merged.get(st.sid);
      if (!prev) {
        merged.set(st.sid, { ...st, actions: [...st.actions], resources: [...st.resources] });
        continue;
      }
      if (JSON.stringify(prev.condition ?? null) !== JSON.stringify(st.condition ?? null)) throw new Error(`state machine: statements ${st.sid} differ in their condition`);
      merged.set(st.sid, { ...prev, actions: [...new Set([...prev.actions, ...st.actions])], resources: [...new Set([...prev.resources, ...st.resources])] });
    }
  }
  return [...merged.values()];
}

/** Every Task state of a definition, nested ones included: name -> state. */
export function taskStates(definition: Record<string, unknown>): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  const walk = (states: Record<string, Record<string, unknown>>) => {
    for (const [name, state] of Object.entries(states)) {
      if (state.Type === 'Task') out[name] = state;
      const processor = (state.ItemProcessor ?? state.Iterator) as { States: Record<string, Record<string, unknown>> } | undefined;
      if (processor) walk(processor.States);
      for (const branch of (state.Branches as { States: Record<string, Record<string, unknown>> }[] | undefined) ?? []) walk(branch.States);
    }
  };
  walk(definition.States as Record<string, Record<string, unknown>>);
  return out;
}

/**
 * Replaces each Terraform interpolation `${...}` in synthesized text with a placeholder (`TF_REF_<n>`),
 * so a definition or container JSON read back from cdktf.out parses even where an expression holds
 * quotes. Returns the text and the expressions by placeholder.
 */
export function maskTerraformRefs(text: string): { text: string; refs: Record<string, string> } {
  const refs: Record<string, string> = {};
  let out = '';
  let i = 0;
  while (i < text.length) {
    const start = text.indexOf('${', i);
    if (start < 0) break;
    out += text.slice(i, start);
    let depth = 0;
    let j = start + 1;
    let quote = false;
    for (; j < text.length; j++) {
      const c = text[j];
      if (quote) {
        if (c === '\\') j++;
        else if (c === '"') quote = false;
      } else if (c === '"') quote = true;
      else if (c === '{') depth++;
      else if (c === '}' && --depth === 0) break;
    }
    if (j >= text.length) throw new Error(`unterminated Terraform reference at offset ${start}`);
    const expression = text.slice(start, j + 1);
    // The same expression always gets the same placeholder.
    const name = Object.keys(refs).find((k) => refs[k] === expression) ?? `TF_REF_${Object.keys(refs).length}`;
    refs[name] = expression;
    out += name;
    i = j + 1;
  }
  return { text: out + text.slice(i), refs };
}
