// The batch processor (one converter task per batch, in a Distributed Map child execution) and the
// converting maps: contract 1's key array, a prefix, a manifest, the schedule's batch manifests, a replay.
import { flow, formatLiteral, isString, states, type JsonObject, type PassState, type Processor, type TaskState } from './asl';
import { BATCH_ITEM_MALFORMED, BATCH_RESULT_MALFORMED, CONVERTER_MALFORMED_EXIT, ECS_TRANSIENT_ERRORS, MAP_RESULTS_FOLDER, STATE } from './constants';
import { converterEnvironment, resultKeyOf, type BatchSource } from './converter';
import { distributedProcessor, jsonArrayReader, listObjectsReader, s3GetObject, s3PutObject, s3ResultWriter } from './integrations';
import { ecsCluster, ecsRetrier, runTaskSync } from './run-task';
import type { Settings } from './settings';

/**
 * The item processors share one shape; state names carry the variant (names are global in ASL).
 * keys, prefix, manifest: batches made by ItemBatcher ({"Items": [...]}), keys in S3PATHS.
 * batches (contract C3) and replay (contract C2): one manifest per child ({"manifest", "execution"}),
 * its key in S3PATHS_MANIFEST: no key travels in the state or the container environment.
 */
export type ProcessorVariant = 'keys' | 'prefix' | 'manifest' | 'batches' | 'replay';

const SOURCE: Record<ProcessorVariant, BatchSource> = { keys: 'keys', prefix: 'keys', manifest: 'keys', batches: 'manifest', replay: 'manifest' };

export function processorStateNames(variant: ProcessorVariant) {
  const tag = { keys: '', prefix: ' (prefix)', manifest: ' (manifest)', batches: ' (batch manifest)', replay: ' (replay)' }[variant];
  return {
    prepare: `Prepare batch${tag}`,
    run: `Run converter${tag}`,
    classify: `Classify task failure${tag}`,
    parseStopped: `Parse stopped task${tag}`,
    exitCode: `Converter exit code${tag}`,
    rerun: `Run again?${tag}`,
    backoff: `Back off${tag}`,
    wait: `Wait before rerun${tag}`,
    read: `Read batch result${tag}`,
    checkResult: `Check batch result${tag}`,
    report: `Read batch result${tag} output`,
    malformed: `Batch result malformed${tag}`,
    noSummary: `No batch result${tag}`,
    failed: `Batch failed${tag}`,
    failedRead: `Batch result unreadable${tag}`,
    recordFailed: `Record failed keys${tag}`,
    checkItem: `Check batch item${tag}`,
    itemMalformed: `Batch item malformed${tag}`,
    notRecorded: `Failed keys not recorded${tag}`,
  };
}

/** The processor's states by role (typed names; each variant renames them with processorStateNames). */
const P = {
  prepare: 'prepare',
  run: 'run',
  classify: 'classify',
  parseStopped: 'parseStopped',
  exitCode: 'exitCode',
  rerun: 'rerun',
  backoff: 'backoff',
  wait: 'wait',
  read: 'read',
  checkResult: 'checkResult',
  report: 'report',
  malformed: 'malformed',
  noSummary: 'noSummary',
  failed: 'failed',
  failedRead: 'failedRead',
  recordFailed: 'recordFailed',
  checkItem: 'checkItem',
  itemMalformed: 'itemMalformed',
  notRecorded: 'notRecorded',
} as const;

const s3Retry = {
  ErrorEquals: ['S3.S3Exception', 'S3.SdkClientException', 'States.Timeout'],
  IntervalSeconds: 2,
  BackoffRate: 2,
  MaxAttempts: 3,
  JitterStrategy: 'FULL',
};

/** The last `/` segment of the manifest key, up to its first `.`: `manifests/x/batches/00001.json` -> `00001`. */
const manifestBasename = (path: string) =>
  `States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit(${path}, '/'), States.MathAdd(States.ArrayLength(States.StringSplit(${path}, '/')), -1)), '.'), 0)`;

// One converter task per batch, in a Distributed Map child execution. Its output {resultKey, converted,
// failed} (+ batchError, failedKeys or manifest, failedManifest) goes to the map's ResultWriter files in
// S3, never into the parent's state.
function batchProcessor(s: Settings, variant: ProcessorVariant): Processor {
  const { bucket, resultPrefix, taskAttempts, delays, failedPrefix } = s;
  const t = s.props.targets;
  const names = processorStateNames(variant);
  const source = SOURCE[variant];
  const resultKey = resultKeyOf(resultPrefix);
  // Where the state machine files a batch's keys when the converter could not (contract C2).
  const failedManifest = `States.Format('${formatLiteral(failedPrefix)}{}/{}.json', $.execution, $.batchId)`;
  // What the batch is: its keys (in the state) or the manifest that holds them (in S3).
  const batch: JsonObject = source === 'keys' ? { 'keys.$': '$.keys' } : { 'manifest.$': '$.manifest' };
  const failedBatch: JsonObject = source === 'keys' ? { 'failedKeys.$': '$.keys' } : { 'manifest.$': '$.manifest' };
  // A batch reported failed as a whole (no usable summary): its keys, or its manifest, and where they are filed.
  const failedWhole = (batchError: JsonObject): PassState<typeof P.recordFailed> => ({
    Type: 'Pass',
    Parameters: { 'resultKey.$': resultKey, converted: [], failed: [], ...batchError, ...failedBatch, 'failedManifest.$': failedManifest },
    Next: P.recordFailed,
  });
  const prepared: JsonObject =
    source === 'keys'
      ? {
          'keys.$': '$.Items[*].Key',
          // Every item carries the parent execution's name (ItemSelector), so a batch's summary is filed
          // under the execution that converted it.
          'execution.$': '$.Items[0].execution',
          'batchId.$': 'States.UUID()',
          attempt: 0,
        }
      : { 'manifest.$': '$.item.manifest', 'execution.$': '$.execution', 'batchId.$': manifestBasename('$.item.manifest'), attempt: 0 };
  // What is filed: the batch's keys, or for a manifest batch {"manifest": "<its key>"}, which the
  // converter follows. Not a copy of the manifest: CopyObject's source must be URL-encoded
  // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html), no JSONPath intrinsic
  // encodes, and the key holds an execution name, which may have '+' or non-ASCII letters (S3 would
  // read '+' as a space). The key needs no JSON escaping: execution names cannot hold '"' or '\'.
  const filed = source === 'keys' ? 'States.JsonToString($.failedKeys)' : `States.Format('\\{"manifest":"{}"\\}', $.manifest)`;
  const recordCall: Pick<TaskState<never>, 'Resource' | 'Parameters'> = {
    Resource: s3PutObject(t.bucketArn, failedPrefix),
    Parameters: { Bucket: bucket, 'Key.$': '$.failedManifest', 'Body.$': filed, ContentType: 'application/json' },
  };
  const body = states({
    [P.prepare]: {
      Type: 'Pass',
      Parameters: prepared,
      Next: P.run,
    },
    [P.run]: {
      Type: 'Task',
      ...runTaskSync(ecsCluster(s), s.props.converter, converterEnvironment(bucket, s.outputPrefix, resultPrefix, source)),
      TimeoutSeconds: s.props.converter.timeoutSeconds ?? 3600,
      ResultPath: null,
      Retry: [ecsRetrier(s.ecsRetry)],
      Catch: [
        { ErrorEquals: [...ECS_TRANSIENT_ERRORS], ResultPath: '$.taskError', Next: P.failed },
        { ErrorEquals: ['States.TaskFailed'], ResultPath: '$.taskError', Next: P.classify },
        { ErrorEquals: ['States.ALL'], ResultPath: '$.taskError', Next: P.failed },
      ],
      Next: P.read,
    },
    // The cause of a failed .sync task is the stopped task's JSON (ECS DescribeTasks' task, as the
    // connector reports it: https://docs.aws.amazon.com/step-functions/latest/dg/connect-ecs.html).
    // It is parsed, not string-matched: exit 65 = malformed input, whose summary lists which keys and
    // why, so read it. Anything else (Spot reclaim, image pull, OOM, I/O error) may pass on a fresh
    // task: run it again, a bounded number of times. An error output always has `Error` but need not
    // have `Cause`, and only a JSON object is parsed (States.StringToJson of anything else would fail
    // the execution: a Pass state has no Catch).
    [P.classify]: {
      Type: 'Choice',
      Choices: [{ And: [...isString('$.taskError.Cause'), { Variable: '$.taskError.Cause', StringMatches: '{*}' }], Next: P.parseStopped }],
      Default: P.rerun,
    },
    [P.parseStopped]: {
      Type: 'Pass',
      Parameters: { 'task.$': 'States.StringToJson($.taskError.Cause)' },
      ResultPath: '$.stopped',
      Next: P.exitCode,
    },
    // The converter's task definition has one container, the converter: its exit code is Containers[0]'s.
    [P.exitCode]: {
      Type: 'Choice',
      Choices: [
        {
          And: [
            { Variable: '$.stopped.task.Containers[0].ExitCode', IsPresent: true },
            { Variable: '$.stopped.task.Containers[0].ExitCode', IsNumeric: true },
            { Variable: '$.stopped.task.Containers[0].ExitCode', NumericEquals: CONVERTER_MALFORMED_EXIT },
          ],
          Next: P.read,
        },
      ],
      Default: P.rerun,
    },
    [P.rerun]: {
      Type: 'Choice',
      Choices: [{ Variable: '$.attempt', NumericLessThan: taskAttempts - 1, Next: P.backoff }],
      // Out of attempts: a converter that ran may still have written its per-key summary (e.g. an
      // I/O error on one key): report that; with no summary the whole batch is reported failed.
      Default: P.read,
    },
    [P.backoff]: {
      Type: 'Pass',
      Parameters: {
        ...batch,
        'execution.$': '$.execution',
        'batchId.$': '$.batchId',
        'attempt.$': 'States.MathAdd($.attempt, 1)',
        // Full jitter: uniform in [1, delay) so reruns of many batches do not stampede.
        'waitSeconds.$': `States.MathRandom(1, States.ArrayGetItem(States.Array(${delays.join(', ')}), $.attempt))`,
        'lastError.$': '$.taskError.Error',
      },
      Next: P.wait,
    },
    [P.wait]: { Type: 'Wait', SecondsPath: '$.waitSeconds', Next: P.run },
    [P.read]: {
      Type: 'Task',
      Resource: s3GetObject(t.bucketArn, resultPrefix),
      Parameters: { Bucket: bucket, 'Key.$': resultKey },
      ResultSelector: { 'summary.$': 'States.StringToJson($.Body)' },
      ResultPath: '$.result',
      TimeoutSeconds: 60,
      Retry: [s3Retry],
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.readError', Next: P.noSummary }],
      Next: P.checkResult,
    },
    // Whatever object sits at the result key is JSON, not necessarily the converter's summary: select
    // its lists only once they are known to be there.
    [P.checkResult]: {
      Type: 'Choice',
      Choices: [
        {
          And: [
            { Variable: '$.result.summary.converted', IsPresent: true },
            { Variable: '$.result.summary.failed', IsPresent: true },
          ],
          Next: P.report,
        },
      ],
      Default: P.malformed,
    },
    // The converter ran to its end: its summary lists every key, and it filed the keys it failed itself.
    [P.report]: {
      Type: 'Pass',
      Parameters: {
        'resultKey.$': resultKey,
        'converted.$': '$.result.summary.converted',
        'failed.$': '$.result.summary.failed',
      },
      End: true,
    },
    [P.malformed]: failedWhole({ batchError: { Error: BATCH_RESULT_MALFORMED, Cause: 'the object at resultKey has no "converted" or no "failed" list' } }),
    [P.noSummary]: {
      Type: 'Choice',
      Choices: [{ Variable: '$.taskError', IsPresent: true, Next: P.failed }],
      Default: P.failedRead,
    },
    [P.failedRead]: failedWhole({ 'batchError.$': '$.readError' }),
    // No summary to read: every key of the batch is reported failed with the task's error.
    [P.failed]: failedWhole({ 'batchError.$': '$.taskError' }),
    // The converter did not finish (killed, out of memory, timed out, never started): it filed nothing,
    // so the batch's keys are filed here, where a replay reads them (contract C2).
    [P.recordFailed]: {
      Type: 'Task',
      ...recordCall,
      ResultPath: null,
      TimeoutSeconds: 60,
      Retry: [s3Retry],
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.failedManifestError', Next: P.notRecorded }],
      End: true,
    },
    [P.notRecorded]: { Type: 'Pass', End: true },
  });
  const rename = (n: keyof typeof names) => names[n];
  if (source === 'keys') return distributedProcessor(flow(P.prepare, body, rename), t.stateMachineArn, t.executionArns);
  // A manifest item comes from S3 (the lister's index, a listing): its shape is checked, not assumed
  // (a missing path would be an uncatchable States.Runtime).
  const checked = states({
    [P.checkItem]: { Type: 'Choice', Choices: [{ And: isString('$.item.manifest'), Next: P.prepare }], Default: P.itemMalformed },
    [P.itemMalformed]: {
      Type: 'Pass',
      Parameters: {
        converted: [],
        failed: [],
        batchError: { Error: BATCH_ITEM_MALFORMED, Cause: 'the batch item has no "manifest" string' },
        'item.$': '$.item',
      },
      End: true,
    },
  });
  return distributedProcessor(flow(P.checkItem, { ...checked, ...body }, rename), t.stateMachineArn, t.executionArns);
}

/** The converting maps and how their outcome is reported. */
export function conversionStates(s: Settings) {
  const { bucket, resultPrefix, maxBatchBytes, tolerated } = s;
  const t = s.props.targets;
  // ItemBatcher bounds each batch by count and by bytes: the byte bound keeps its S3PATHS override
  // within ECS's limit whatever the key lengths (converterOverridesFixedChars, checked in settings.ts). The execution name reaches the
  // children through ItemSelector, which is documented to take values from the Context object
  // (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemselector.html), not
  // through ItemBatcher.BatchInput, which is documented only as fixed JSON
  // (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itembatcher.html).
  const batcher = (maxItems: number) => ({ MaxItemsPerBatch: maxItems, MaxInputBytesPerBatch: maxBatchBytes });
  const itemSelector = (keyPath: string) => ({ 'Key.$': keyPath, 'execution.$': '$$.Execution.Name' });
  // Every map writes its children's outputs to S3: results/map/<map run id>/manifest.json and
  // SUCCEEDED_n.json / FAILED_n.json (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html).
  // The map's own result is then {MapRunArn, ResultWriterDetails: {Bucket, Key}} whatever the key count.
  const resultWriter = () => s3ResultWriter(t.bucketArn, resultPrefix, { Bucket: bucket, Prefix: `${resultPrefix}${MAP_RESULTS_FOLDER}` });
  return states({
    // Contract 1: a JSON array of keys (the lab's), batched like contract 2, 5 tasks at a time as the
    // lab's Map. The array input cannot take a field, so the map's result replaces it: {results}.
    [STATE.convertKeys]: {
      Type: 'Map',
      ItemsPath: '$',
      ItemSelector: itemSelector('$$.Map.Item.Value'),
      ItemBatcher: batcher(s.keysBatchSize),
      MaxConcurrency: s.keysMaxConcurrency,
      ToleratedFailurePercentage: tolerated,
      ItemProcessor: batchProcessor(s, 'keys'),
      ResultWriter: resultWriter(),
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
      ItemReader: listObjectsReader('ListInputPrefixes', t.bucketArn, s.inputPrefixes, { Bucket: bucket, 'Prefix.$': '$.prefix' }),
      ItemSelector: itemSelector('$$.Map.Item.Value.Key'),
      ItemBatcher: batcher(s.batchSize),
      MaxConcurrency: s.maxConcurrency,
      ToleratedFailurePercentage: tolerated,
      ItemProcessor: batchProcessor(s, 'prefix'),
      ResultWriter: resultWriter(),
      ResultPath: '$.results',
      Label: 'ConvertPrefix',
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: STATE.convertFailed }],
      Next: STATE.prefixDone,
    },
    [STATE.prefixDone]: { Type: 'Succeed' },

    // Contract 2b and the schedule: the keys listed in a manifest (a JSON array of keys).
    [STATE.convertManifest]: {
      Type: 'Map',
      ItemReader: jsonArrayReader(t.bucketArn, s.manifestPrefix, { 'Bucket.$': '$.manifest.bucket', 'Key.$': '$.manifest.key' }),
      ItemSelector: itemSelector('$$.Map.Item.Value'),
      ItemBatcher: batcher(s.batchSize),
      MaxConcurrency: s.maxConcurrency,
      ToleratedFailurePercentage: tolerated,
      ItemProcessor: batchProcessor(s, 'manifest'),
      ResultWriter: resultWriter(),
      Label: 'ConvertManifest',
      ResultPath: '$.results',
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: STATE.afterIngestConvert }],
      Next: STATE.afterIngestConvert,
    },
    // The schedule (contract C3): the lister's index of batch manifests, one converter task per batch,
    // the batch's keys read by the converter from S3 (S3PATHS_MANIFEST): no key in the state or the
    // environment, and batches sized by bytes as well as count by the lister, which knows the sizes.
    // The index is written last: a run whose lister wrote its manifest but no index (it failed in
    // between) converts the manifest in key batches instead.
    [STATE.convertBatches]: {
      Type: 'Map',
      ItemReader: jsonArrayReader(t.bucketArn, s.manifestPrefix, {
        Bucket: bucket,
        'Key.$': `States.Format('${formatLiteral(s.manifestPrefix)}{}/batches.json', $$.Execution.Name)`,
      }),
      ItemSelector: { 'item.$': '$$.Map.Item.Value', 'execution.$': '$$.Execution.Name' },
      MaxConcurrency: s.maxConcurrency,
      ToleratedFailurePercentage: tolerated,
      ItemProcessor: batchProcessor(s, 'batches'),
      ResultWriter: resultWriter(),
      Label: 'ConvertBatches',
      ResultPath: '$.results',
      Catch: [
        { ErrorEquals: ['States.ItemReaderFailed'], ResultPath: '$.batchIndexError', Next: STATE.convertManifest },
        { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: STATE.afterIngestConvert },
      ],
      Next: STATE.afterIngestConvert,
    },
    [STATE.afterIngestConvert]: {
      Type: 'Choice',
      Choices: [
        {
          And: [
            { Variable: '$.ingest', IsPresent: true },
            { Variable: '$.error', IsPresent: true },
          ],
          Next: STATE.releaseLockOnFailure,
        },
        {
          And: [
            { Variable: '$.ingest', IsPresent: true },
            { Variable: '$.ingestError', IsPresent: true },
          ],
          Next: STATE.releaseLockOnFailure,
        },
        { Variable: '$.ingest', IsPresent: true, Next: STATE.releaseLock },
        { And: isString('$.error.Error'), Next: STATE.convertFailed },
      ],
      Default: STATE.manifestDone,
    },
    [STATE.manifestDone]: { Type: 'Succeed' },

    // A replay (contract C2): every failed-keys manifest an execution left, one converter task each.
    [STATE.convertReplay]: {
      Type: 'Map',
      ItemReader: listObjectsReader('ListFailedManifests', t.bucketArn, [s.failedPrefix], {
        Bucket: bucket,
        'Prefix.$': `States.Format('${formatLiteral(s.failedPrefix)}{}/', $.replay)`,
      }),
      ItemSelector: { item: { 'manifest.$': '$$.Map.Item.Value.Key' }, 'execution.$': '$$.Execution.Name' },
      MaxConcurrency: s.maxConcurrency,
      ToleratedFailurePercentage: tolerated,
      ItemProcessor: batchProcessor(s, 'replay'),
      ResultWriter: resultWriter(),
      Label: 'ConvertReplay',
      ResultPath: '$.results',
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: STATE.convertFailed }],
      Next: STATE.replayDone,
    },
    [STATE.replayDone]: { Type: 'Succeed' },
    // The Fail cause names the error only: the caught error's own cause can be 32,768 characters, and
    // it stays in the execution history (the map's event) anyway.
    [STATE.convertFailed]: {
      Type: 'Pass',
      Parameters: {
        'cause.$': `States.Format('the conversion failed with {}; the map run and the caught error are in the execution history, per-batch results under ${formatLiteral(resultPrefix + MAP_RESULTS_FOLDER)}/', $.error.Error)`,
      },
      Next: STATE.convertFailedEnd,
    },
    [STATE.convertFailedEnd]: { Type: 'Fail', Error: 'ConversionFailed', CausePath: '$.cause' },
  });
}
