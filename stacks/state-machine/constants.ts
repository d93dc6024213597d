// Names and limits the state machine, the stacks, the local runner and the tests share.
/** Names of the states the local runner and the tests refer to. */
export const STATE = {
  route: 'Route input',
  acceptIngest: 'Accept ingest input',
  ingestNameAllowed: 'Ingest execution name allowed?',
  ingestNameReserved: 'Ingest execution name reserved',
  acceptManifest: 'Accept manifest input',
  acceptPrefix: 'Accept prefix input',
  acceptReplay: 'Accept replay input',
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
  convertBatches: 'Convert batch manifests',
  convertReplay: 'Convert failed manifests',
  replayDone: 'Replay converted',
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
/** An item of the lister's batch index without a `manifest` key (batchError.Error of that item). */
export const BATCH_ITEM_MALFORMED = 'BatchItemMalformed';

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

/**
 * Folder under the manifest prefix where failed keys are filed: `<manifestPrefix>failed/<execution>/<batch>.json`.
 * An ingest execution writes `<manifestPrefix><its name>.json` and `<manifestPrefix><its name>/batches/`,
 * so an ingest execution of this name is refused (a replay would take its batch manifests for failed keys).
 */
export const FAILED_FOLDER = 'failed';
/** Where failed keys are filed, for a manifest prefix; the state machine, its role and the converter's share it. */
export const failedPrefixOf = (manifestPrefix: string) => `${manifestPrefix}${FAILED_FOLDER}/`;
/** An ingest execution named FAILED_FOLDER. */
export const RESERVED_EXECUTION_NAME = 'ReservedExecutionName';

/** Folder under the result prefix where every map's ResultWriter files go (one folder per map run). */
export const MAP_RESULTS_FOLDER = 'map';
