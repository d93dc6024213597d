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
  invalidInput: 'Invalid input',
  checkKeys: 'Check keys',
  keyAllowed: 'Key inside input prefixes?',
  keyAccepted: 'Key accepted',
  describeRejectedKey: 'Describe rejected key',
  keyRejected: 'Key outside input prefixes',
  prefixAllowed: 'Prefix inside input prefixes?',
  describeRejectedPrefix: 'Describe rejected prefix',
  prefixRejected: 'Prefix outside input prefixes',
  partitionKeys: 'Partition keys',
  convertKeys: 'Convert key batches',
  keysDone: 'Keys converted',
  convertPrefix: 'Convert prefix',
  prefixDone: 'Prefix converted',
  convertManifest: 'Convert manifest',
  manifestDone: 'Manifest converted',
  acquireLock: 'Acquire ingest lock',
  readLock: 'Read ingest lock',
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

  // One converter task per batch; input {keys, execution}; output {resultKey, converted, failed} (+ batchError, failedKeys).
  const processor = (variant: ProcessorVariant, keysPath: string, executionPath: string): Record<string, Json> => {
    const n = processorStateNames(variant);
    const exitPatterns = [`*"ExitCode":${CONVERTER_MALFORMED_EXIT},*`, `*"ExitCode":${CONVERTER_MALFORMED_EXIT}}*`];
    const states: Record<string, State> = {
      [n.prepare]: {
        Type: 'Pass',
        Parameters: {
          'keys.$': keysPath,
          'execution.$': executionPath,
          'resultKey.$': `States.Format('${resultPrefix}{}/{}.json', ${executionPath}, States.UUID())`,
          attempt: 0,
        },
        Next: n.run,
      },
      [n.run]: {
        Type: 'Task',
        Resource: 'arn:aws:states:::ecs:runTask.sync',
        Parameters: runTaskParameters(props.converter, [
          { Name: 'BUCKET', Value: bucket },
          { Name: 'S3PATHS', 'Value.$': 'States.JsonToString($.keys)' },
          { Name: 'OUTPUT_BUCKET', Value: bucket },
          { Name: 'OUTPUT_PREFIX', Value: outputPrefix },
          { Name: 'RESULT_KEY', 'Value.$': '$.resultKey' },
        ]),
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
      // I/O error) may pass on a fresh task: run it again, a bounded number of times.
      [n.classify]: {
        Type: 'Choice',
        Choices: [
          { Or: exitPatterns.map((p) => ({ Variable: '$.taskError.Cause', StringMatches: p })), Next: n.read },
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
        Next: `${n.read} output`,
      },
      [`${n.read} output`]: {
        Type: 'Pass',
        Parameters: {
          'resultKey.$': '$.resultKey',
          'converted.$': '$.result.summary.converted',
          'failed.$': '$.result.summary.failed',
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
    return { StartAt: n.prepare, States: states };
  };

  const distributed = (variant: 'prefix' | 'manifest'): Record<string, Json> => ({
    ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' },
    ...processor(variant, '$.Items[*].Key', '$.BatchInput.execution'),
  });
  const batcher = {
    MaxItemsPerBatch: batchSize,
    MaxInputBytesPerBatch: maxBatchBytes,
    BatchInput: { 'execution.$': '$$.Execution.Name' },
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
  const prefixList = inputPrefixes.join(', ').replace(/[\\'{}]/g, '\\$&');
  const manifestKeyOfExecution = `States.Format('${manifestPrefix}{}.json', $$.Execution.Name)`;

  const states: Record<string, State> = {
    [STATE.route]: {
      Type: 'Choice',
      Choices: [
        { Variable: '$.ingest', IsPresent: true, Next: STATE.acquireLock },
        // A type test on a missing path is a runtime error: test presence first (And short-circuits).
        { And: [...isString('$.manifest.bucket'), ...isString('$.manifest.key')], Next: STATE.convertManifest },
        { And: isString('$.prefix'), Next: STATE.prefixAllowed },
        { And: isString('$[0]'), Next: STATE.checkKeys },
      ],
      Default: STATE.invalidInput,
    },
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
    [STATE.checkKeys]: {
      Type: 'Map',
      ItemsPath: '$',
      ItemProcessor: {
        ProcessorConfig: { Mode: 'INLINE' },
        StartAt: STATE.keyAllowed,
        States: {
          [STATE.keyAllowed]: { Type: 'Choice', Choices: [{ ...(matchesInput('$') as Record<string, Json>), Next: STATE.keyAccepted }], Default: STATE.describeRejectedKey },
          [STATE.keyAccepted]: { Type: 'Pass', Result: true, End: true },
          [STATE.describeRejectedKey]: {
            Type: 'Pass',
            Parameters: { 'cause.$': `States.Format('key {} is outside the input prefixes (${prefixList}); nothing was converted', States.JsonToString($))` },
            Next: STATE.keyRejected,
          },
          [STATE.keyRejected]: { Type: 'Fail', Error: KEY_OUTSIDE_INPUT, CausePath: '$.cause' },
        },
      },
      ResultPath: null,
      Next: STATE.partitionKeys,
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

    // Contract 1: a JSON array of keys, converted in batches by an inline Map (the lab's, bounded).
    [STATE.partitionKeys]: {
      Type: 'Pass',
      Parameters: { 'batches.$': `States.ArrayPartition($, ${keysBatchSize})` },
      Next: STATE.convertKeys,
    },
    [STATE.convertKeys]: {
      Type: 'Map',
      ItemsPath: '$.batches',
      MaxConcurrency: keysMaxConcurrency,
      ItemSelector: { 'keys.$': '$$.Map.Item.Value', 'execution.$': '$$.Execution.Name' },
      ItemProcessor: { ProcessorConfig: { Mode: 'INLINE' }, ...processor('keys', '$.keys', '$.execution') },
      ResultSelector: { 'batches.$': '$' },
      Next: STATE.keysDone,
    },
    [STATE.keysDone]: { Type: 'Succeed' },

    // Contract 2a: every object under a prefix. Results go to S3 (ResultWriter): a prefix can hold
    // millions of keys, far beyond the 256 KiB an execution's output may carry.
    [STATE.convertPrefix]: {
      Type: 'Map',
      ItemReader: {
        Resource: 'arn:aws:states:::s3:listObjectsV2',
        Parameters: { Bucket: bucket, 'Prefix.$': '$.prefix' },
      },
      ItemSelector: { 'Key.$': '$$.Map.Item.Value.Key' },
      ItemBatcher: batcher,
      MaxConcurrency: maxConcurrency,
      ToleratedFailurePercentage: tolerated,
      ItemProcessor: distributed('prefix'),
      ResultWriter: {
        Resource: 'arn:aws:states:::s3:putObject',
        // Step Functions adds a folder per map run under this prefix.
        Parameters: { Bucket: bucket, Prefix: `${resultPrefix}map` },
      },
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
      ItemSelector: { 'Key.$': '$$.Map.Item.Value' },
      ItemBatcher: batcher,
      MaxConcurrency: maxConcurrency,
      ToleratedFailurePercentage: tolerated,
      ItemProcessor: distributed('manifest'),
      Label: 'ConvertManifest',
      ResultPath: '$.batches',
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: STATE.afterIngestConvert }],
      Next: STATE.afterIngestConvert,
    },
    [STATE.afterIngestConvert]: {
      Type: 'Choice',
      Choices: [
        { And: [{ Variable: '$.ingest', IsPresent: true }, { Variable: '$.error', IsPresent: true }], Next: STATE.releaseLockOnFailure },
        { And: [{ Variable: '$.ingest', IsPresent: true }, { Variable: '$.ingestError', IsPresent: true }], Next: STATE.releaseLockOnFailure },
        { Variable: '$.ingest', IsPresent: true, Next: STATE.releaseLock },
        { Variable: '$.error', IsPresent: true, Next: STATE.convertFailed },
      ],
      Default: STATE.manifestDone,
    },
    [STATE.manifestDone]: { Type: 'Succeed' },
    [STATE.convertFailed]: {
      Type: 'Pass',
      Parameters: { 'cause.$': 'States.JsonToString($.error)' },
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
      ResultSelector: { 'holder.$': '$.Item.holder.S' },
      ResultPath: '$.lock',
      Retry: [dynamoRetry],
      // Released between our put and this read: the next scheduled run will get it.
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.lockError', Next: STATE.ingestSkipped }],
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
    // The cause carries the whole state (lister error, manifest, converted batches) so nothing is lost.
    [STATE.ingestFailed]: {
      Type: 'Pass',
      Parameters: { 'cause.$': 'States.JsonToString($)' },
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
