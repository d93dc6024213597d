// The ingest lock protocol: one ingest at a time. A DynamoDB item names the holding execution; a run
// that finds it held by a RUNNING execution skips, a lock whose holder stopped (timed out, aborted) is
// taken over, and the holder releases it on every path (see docs/pipeline.md, "Overlapping runs").
import { isString, states, type TaskState } from './asl';
import { STATE } from './constants';
import { describeExecution, dynamoItem } from './integrations';
import type { Settings } from './settings';

const lockKey = { lock: { S: 'ingest' } };
/** The lock item as this execution writes it when it takes the lock. */
const heldLock = { ...lockKey, holder: { 'S.$': '$$.Execution.Id' }, since: { 'S.$': '$$.Execution.StartTime' } };
/** The condition of a write that succeeds only while the lock's holder is `path`'s value. */
const holderIs = (name: string, path: string) => ({
  ConditionExpression: `#holder = ${name}`,
  ExpressionAttributeNames: { '#holder': 'holder' },
  ExpressionAttributeValues: { [name]: { 'S.$': path } },
});
const dynamoRetry = {
  ErrorEquals: [
    'DynamoDB.ProvisionedThroughputExceededException',
    'DynamoDB.ThrottlingException',
    'DynamoDB.InternalServerErrorException',
    'DynamoDB.RequestLimitExceeded',
  ],
  IntervalSeconds: 1,
  BackoffRate: 2,
  MaxAttempts: 5,
  JitterStrategy: 'FULL',
};

/** Acquire the lock, or learn who holds it and whether that holder still runs. */
export function acquireLockStates(s: Settings) {
  const t = s.props.targets;
  return states({
    // The schedule: one ingest at a time (a lock item naming the holding execution), so two runs never
    // ingest, and so never convert, the same file at the same time. A lock whose holder is no longer
    // RUNNING (timed out, aborted) is taken over.
    [STATE.acquireLock]: {
      Type: 'Task',
      Resource: dynamoItem('putItem', t.lockTableArn),
      Parameters: {
        TableName: s.props.lockTableName,
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
      Resource: dynamoItem('getItem', t.lockTableArn),
      Parameters: { TableName: s.props.lockTableName, Key: lockKey, ConsistentRead: true },
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
      Resource: describeExecution(t.executionArns),
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
      Resource: dynamoItem('putItem', t.lockTableArn),
      Parameters: {
        TableName: s.props.lockTableName,
        Item: heldLock,
        ...holderIs(':stale', '$.lock.holder'),
      },
      ResultPath: null,
      Retry: [dynamoRetry],
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.lockError', Next: STATE.ingestSkipped }],
      Next: STATE.runLister,
    },
    [STATE.ingestSkipped]: { Type: 'Succeed' },
  });
}

/** Deletes the lock only if this execution holds it; a failed release never hides the outcome. */
function releaseLockThen<N extends string>(s: Settings, next: N): TaskState<N> {
  return {
    Type: 'Task',
    Resource: dynamoItem('deleteItem', s.props.targets.lockTableArn),
    Parameters: {
      TableName: s.props.lockTableName,
      Key: lockKey,
      ...holderIs(':me', '$$.Execution.Id'),
    },
    ResultPath: null,
    Retry: [dynamoRetry],
    Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.lockError', Next: next }],
    Next: next,
  };
}

/** Release the lock after the ingest, successful or not. */
export function releaseLockStates(s: Settings) {
  return states({
    [STATE.releaseLock]: releaseLockThen(s, STATE.ingestDone),
    [STATE.ingestDone]: { Type: 'Succeed' },
    [STATE.releaseLockOnFailure]: releaseLockThen(s, STATE.ingestFailed),
  });
}
