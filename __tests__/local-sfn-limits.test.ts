// The service limits the strict local runner enforces, one test each: the real runner, S3 stand-in,
// IAM and image processes, with the synthesized definition or a small definition run as the same state
// machine (same role) where the synthesized one, once fixed, no longer reaches the limit.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openSession, Session, synthesize } from '../scripts/local-pipeline';
import type { Json, JsonObject } from '../tools/local-sfn/json';
import { MAX_CAUSE_CHARS, MAX_ECS_OVERRIDE_CHARS, MAX_PAYLOAD_BYTES } from '../tools/local-sfn/limits';
import { taskStates } from '../stacks/state-machine';
import { makeImagesDir } from './stacks/synth';

jest.setTimeout(300_000);

let session: Session;
let outdir: string;
let bucket: string;

beforeAll(async () => {
  outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'lr-limits-'));
  synthesize(outdir, makeImagesDir());
  session = await openSession(outdir);
  bucket = session.world.bucket;
});
afterAll(async () => {
  await session?.close();
  fs.rmSync(outdir, { recursive: true, force: true });
});

/** The synthesized definition's first Task state with this resource (its Parameters are the real ones). */
function realTask(resource: string): JsonObject {
  const found = Object.values(taskStates(session.synthesized.definition)).find((s) => s.Resource === resource);
  if (!found) throw new Error(`no ${resource} state in the synthesized definition`);
  return found as JsonObject;
}

const run = (definition: JsonObject, input: Json, name: string) => session.pipelineFor(definition).execute(input, name);
const catchAll = [{ ErrorEquals: ['States.ALL'], ResultPath: '$.caught', Next: 'Caught' }];
const caught = { Caught: { Type: 'Pass', End: true } };

describe('256 KiB of state input and output (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html)', () => {
  test('GIVEN an execution input over 262,144 bytes WHEN started THEN StartExecution refuses it', async () => {
    const keys = Array.from({ length: 3000 }, (_, i) => `incoming/${String(i).padStart(90, 'k')}.xml`);
    expect(Buffer.byteLength(JSON.stringify(keys))).toBeGreaterThan(MAX_PAYLOAD_BYTES);
    await expect(session.pipeline.execute(keys, 'too-big-input')).rejects.toMatchObject({ name: 'InvalidExecutionInput' });
  });

  test('GIVEN a task result over the quota and a Catch on States.ALL WHEN run THEN the execution fails with States.DataLimitExceeded, not caught', async () => {
    await session.world.s3.put(bucket, 'manifests/big.json', JSON.stringify('x'.repeat(MAX_PAYLOAD_BYTES)));
    const definition = {
      StartAt: 'Read',
      States: {
        Read: {
          Type: 'Task',
          Resource: 'arn:aws:states:::aws-sdk:s3:getObject',
          Parameters: { Bucket: bucket, Key: 'manifests/big.json' },
          Retry: [{ ErrorEquals: ['States.ALL'], MaxAttempts: 2 }],
          Catch: catchAll,
          End: true,
        },
        ...caught,
      },
    };
    expect(await run(definition, {}, 'big-result')).toMatchObject({
      status: 'FAILED',
      error: 'States.DataLimitExceeded',
      cause: expect.stringMatching(/s3:getObject result has \d+ bytes, over the 262144-byte payload quota/),
    });
  });

  test('GIVEN a state whose Parameters make its input over the quota WHEN run THEN it fails with States.DataLimitExceeded before the call', async () => {
    session.world.s3.clearRequests();
    const half = 'y'.repeat(90_000);
    const definition = {
      StartAt: 'Read',
      States: {
        Read: {
          Type: 'Task',
          Resource: 'arn:aws:states:::aws-sdk:s3:getObject',
          Parameters: { Bucket: bucket, 'Key.$': '$.a', 'Extra1.$': '$.a', 'Extra2.$': '$.b' },
          Catch: catchAll,
          End: true,
        },
        ...caught,
      },
    };
    expect(await run(definition, { a: half, b: half }, 'big-parameters')).toMatchObject({
      status: 'FAILED',
      error: 'States.DataLimitExceeded',
      cause: expect.stringContaining('after Parameters'),
    });
    expect(session.world.s3.requests()).toEqual([]);
  });

  test('GIVEN a Pass state whose output is over the quota WHEN run THEN the execution fails with States.DataLimitExceeded', async () => {
    const definition = { StartAt: 'Grow', States: { Grow: { Type: 'Pass', Parameters: { 'a.$': '$.s', 'b.$': '$.s' }, End: true } } };
    expect(await run(definition, { s: 'z'.repeat(140_000) }, 'big-output')).toMatchObject({
      status: 'FAILED',
      error: 'States.DataLimitExceeded',
      cause: expect.stringContaining('the output of state "Grow"'),
    });
  });
});

describe('error and cause (https://docs.aws.amazon.com/step-functions/latest/apireference/API_ExecutionFailedEventDetails.html)', () => {
  const fail = { StartAt: 'Fail', States: { Fail: { Type: 'Fail', Error: 'Boom', CausePath: '$.cause' } } };
  test(`GIVEN a Fail state with a cause of ${MAX_CAUSE_CHARS} characters THEN the execution fails with that error and cause`, async () => {
    expect(await run(fail, { cause: 'c'.repeat(MAX_CAUSE_CHARS) }, 'cause-at-limit')).toMatchObject({
      status: 'FAILED',
      error: 'Boom',
      cause: 'c'.repeat(MAX_CAUSE_CHARS),
    });
  });
  test(`GIVEN a Fail state with a cause of ${MAX_CAUSE_CHARS + 1} characters THEN the execution fails with States.DataLimitExceeded`, async () => {
    expect(await run(fail, { cause: 'c'.repeat(MAX_CAUSE_CHARS + 1) }, 'cause-over-limit')).toMatchObject({
      status: 'FAILED',
      error: 'States.DataLimitExceeded',
      cause: expect.stringContaining(`cause of ${MAX_CAUSE_CHARS + 1} characters`),
    });
  });
});

describe(`ECS container overrides, ${MAX_ECS_OVERRIDE_CHARS} characters (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html)`, () => {
  const withKeys = (keysJson: string): JsonObject => {
    const state = realTask('arn:aws:states:::ecs:runTask.sync');
    const parameters = JSON.parse(JSON.stringify(state.Parameters)) as JsonObject;
    const override = ((parameters.Overrides as JsonObject).ContainerOverrides as JsonObject[])[0];
    override.Environment = [
      { Name: 'BUCKET', Value: bucket },
      { Name: 'S3PATHS', Value: keysJson },
      { Name: 'OUTPUT_BUCKET', Value: bucket },
      { Name: 'OUTPUT_PREFIX', Value: 'json/' },
      { Name: 'RESULT_KEY', Value: 'results/limits/overrides.json' },
    ];
    return {
      StartAt: 'Run',
      States: { Run: { Type: 'Task', Resource: 'arn:aws:states:::ecs:runTask.sync', Parameters: parameters, Catch: catchAll, End: true }, ...caught },
    };
  };
  const keysOf = (chars: number) =>
    JSON.stringify(Array.from({ length: Math.floor(chars / 110) }, (_, i) => `incoming/limits/${String(i).padStart(95, '0')}.xml`));

  test('GIVEN overrides over the limit WHEN the task state runs THEN RunTask fails with ECS.InvalidParameterException and no task starts', async () => {
    const before = session.world.tasks.length;
    const result = await run(withKeys(keysOf(MAX_ECS_OVERRIDE_CHARS + 200)), {}, 'overrides-over');
    expect(result.status).toBe('SUCCEEDED');
    expect((result.output as JsonObject).caught).toMatchObject({
      Error: 'ECS.InvalidParameterException',
      Cause: expect.stringContaining(`at most ${MAX_ECS_OVERRIDE_CHARS}`),
    });
    expect(session.world.tasks.length).toBe(before);
  });

  test('GIVEN overrides under the limit WHEN the task state runs THEN the task starts', async () => {
    const before = session.world.tasks.length;
    await run(withKeys(keysOf(MAX_ECS_OVERRIDE_CHARS - 1200)), {}, 'overrides-under');
    expect(session.world.tasks.length).toBe(before + 1);
  });
});

describe('a missing path is an uncatchable States.Runtime (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html)', () => {
  test('GIVEN the ingest lock released before it is read (Item absent) WHEN ResultSelector selects $.Item.holder.S THEN the execution fails with States.Runtime despite its Catch', async () => {
    const getItem = realTask('arn:aws:states:::dynamodb:getItem');
    const definition = {
      StartAt: 'Read',
      States: {
        Read: {
          Type: 'Task',
          Resource: 'arn:aws:states:::dynamodb:getItem',
          Parameters: getItem.Parameters,
          ResultSelector: { 'holder.$': '$.Item.holder.S' },
          Catch: catchAll,
          End: true,
        },
        ...caught,
      },
    };
    expect(await run(definition, {}, 'missing-path')).toMatchObject({
      status: 'FAILED',
      error: 'States.Runtime',
      cause: expect.stringContaining('$.Item.holder.S'),
    });
  });

  test('GIVEN a Distributed Map whose ItemSelector selects a path an item lacks THEN the execution fails with States.Runtime despite its Catch', async () => {
    await session.world.s3.put(bucket, 'manifests/items.json', JSON.stringify([{ Key: 'a' }, { Other: 'b' }]));
    const definition = {
      StartAt: 'Map',
      States: {
        Map: {
          Type: 'Map',
          ItemReader: {
            Resource: 'arn:aws:states:::s3:getObject',
            ReaderConfig: { InputType: 'JSON' },
            Parameters: { Bucket: bucket, Key: 'manifests/items.json' },
          },
          ItemSelector: { 'key.$': '$$.Map.Item.Value.Key' },
          ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' }, StartAt: 'Done', States: { Done: { Type: 'Succeed' } } },
          Catch: catchAll,
          End: true,
        },
        ...caught,
      },
    };
    expect(await run(definition, {}, 'missing-item-path')).toMatchObject({ status: 'FAILED', error: 'States.Runtime' });
  });
});

describe('Distributed Map: ItemReader, ItemBatcher, ResultWriter, ToleratedFailurePercentage', () => {
  /** A Distributed Map over manifests/<name>.json whose children fail for items {"fail": true}. */
  const mapOver = (key: string, extra: JsonObject = {}): JsonObject => ({
    StartAt: 'Map',
    States: {
      Map: {
        Type: 'Map',
        ItemReader: { Resource: 'arn:aws:states:::s3:getObject', ReaderConfig: { InputType: 'JSON' }, Parameters: { Bucket: bucket, Key: key } },
        ItemProcessor: {
          ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' },
          StartAt: 'Check',
          States: {
            // One item, or a batch ({"Items": [...]}) that fails when any of its items does.
            Check: {
              Type: 'Choice',
              Choices: [
                {
                  And: [
                    { Variable: '$.fail', IsPresent: true },
                    { Variable: '$.fail', BooleanEquals: true },
                  ],
                  Next: 'Fail',
                },
                { Variable: '$.Items', IsPresent: true, Next: 'AnyFailing' },
              ],
              Default: 'Done',
            },
            AnyFailing: { Type: 'Pass', Parameters: { 'failing.$': 'States.ArrayContains($.Items[*].fail, true)' }, Next: 'CheckBatch' },
            CheckBatch: { Type: 'Choice', Choices: [{ Variable: '$.failing', BooleanEquals: true, Next: 'Fail' }], Default: 'Done' },
            Fail: { Type: 'Fail', Error: 'ItemFailed', Cause: 'asked to' },
            Done: { Type: 'Succeed' },
          },
        },
        Label: 'Limits',
        Catch: catchAll,
        End: true,
        ...extra,
      },
      ...caught,
    },
  });
  const items = (n: number, failing: number[]) => JSON.stringify(Array.from({ length: n }, (_, i) => ({ i, fail: failing.includes(i) })));

  test('GIVEN 1 of 10 items failing and 10 % tolerated THEN the map run succeeds; GIVEN 2 THEN States.ExceedToleratedFailureThreshold (catchable)', async () => {
    await session.world.s3.put(bucket, 'manifests/one.json', items(10, [3]));
    await session.world.s3.put(bucket, 'manifests/two.json', items(10, [3, 7]));
    const one = await run(mapOver('manifests/one.json', { ToleratedFailurePercentage: 10 }), {}, 'tolerated-one');
    expect(one.status).toBe('SUCCEEDED');
    expect((one.output as JsonObject).caught).toBeUndefined();
    expect(one.output).toHaveLength(10);
    const two = await run(mapOver('manifests/two.json', { ToleratedFailurePercentage: 10 }), {}, 'tolerated-two');
    expect(two).toMatchObject({ status: 'SUCCEEDED', output: { caught: { Error: 'States.ExceedToleratedFailureThreshold' } } });
  });

  test('GIVEN batches of 5 and one failing item THEN its whole batch counts: 5 of 10 items failed, over 10 %', async () => {
    const result = await run(mapOver('manifests/one.json', { ToleratedFailurePercentage: 10, ItemBatcher: { MaxItemsPerBatch: 5 } }), {}, 'tolerated-batch');
    expect(result).toMatchObject({
      output: { caught: { Error: 'States.ExceedToleratedFailureThreshold', Cause: expect.stringContaining('5 of 10 items failed') } },
    });
  });

  test('GIVEN ItemBatcher with MaxItemsPerBatch and MaxInputBytesPerBatch THEN every batch is within both and the items are all there, in order', async () => {
    // Small items first (batches bound by count), then large ones (bound by bytes).
    const list = Array.from({ length: 40 }, (_, i) => ({ i, pad: 'p'.repeat(i < 20 ? 5 : 300) }));
    await session.world.s3.put(bucket, 'manifests/batched.json', JSON.stringify(list));
    const definition = mapOver('manifests/batched.json', { ItemBatcher: { MaxItemsPerBatch: 7, MaxInputBytesPerBatch: 1024 } });
    // Each child returns its input: the batches come back as the map's result.
    ((definition.States as JsonObject).Map as { ItemProcessor: JsonObject }).ItemProcessor = {
      ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' },
      StartAt: 'Echo',
      States: { Echo: { Type: 'Pass', End: true } },
    };
    const result = await run(definition, {}, 'batched');
    const batches = result.output as { Items: Json[] }[];
    expect(batches.every((b) => b.Items.length <= 7 && Buffer.byteLength(JSON.stringify(b)) <= 1024)).toBe(true);
    expect(batches.some((b) => b.Items.length === 7)).toBe(true);
    expect(batches.some((b) => b.Items.length < 7 && b !== batches[batches.length - 1])).toBe(true);
    expect(batches.flatMap((b) => b.Items)).toEqual(list);
  });

  test('GIVEN a manifest that is not a JSON array THEN the map fails with States.ItemReaderFailed (catchable)', async () => {
    await session.world.s3.put(bucket, 'manifests/object.json', JSON.stringify({ not: 'an array' }));
    expect(await run(mapOver('manifests/object.json'), {}, 'reader-not-array')).toMatchObject({
      status: 'SUCCEEDED',
      output: { caught: { Error: 'States.ItemReaderFailed' } },
    });
  });

  test("GIVEN a ResultWriter THEN the state's result names manifest.json, which lists the SUCCEEDED and FAILED files as AWS writes them", async () => {
    const definition = mapOver('manifests/one.json', {
      ToleratedFailurePercentage: 50,
      ResultWriter: { Resource: 'arn:aws:states:::s3:putObject', Parameters: { Bucket: bucket, Prefix: 'results/limits' } },
    });
    const result = await run(definition, {}, 'written');
    const details = (result.output as JsonObject).ResultWriterDetails as JsonObject;
    expect(result.output).toEqual({
      MapRunArn: expect.stringMatching(/^arn:aws:states:us-east-1:123456789012:mapRun:[\w-]+\/Limits:[0-9a-f-]{36}$/),
      ResultWriterDetails: { Bucket: bucket, Key: expect.stringMatching(/^results\/limits\/[0-9a-f-]{36}\/manifest\.json$/) },
    });
    const manifest = JSON.parse((await session.world.s3.get(bucket, String(details.Key))).toString());
    const folder = String(details.Key).replace(/manifest\.json$/, '');
    expect(manifest).toEqual({
      DestinationBucket: bucket,
      MapRunArn: (result.output as JsonObject).MapRunArn,
      ResultFiles: {
        FAILED: [{ Key: `${folder}FAILED_0.json`, Size: expect.any(Number) }],
        PENDING: [],
        SUCCEEDED: [{ Key: `${folder}SUCCEEDED_0.json`, Size: expect.any(Number) }],
      },
    });
    const succeeded = JSON.parse((await session.world.s3.get(bucket, `${folder}SUCCEEDED_0.json`)).toString());
    const failed = JSON.parse((await session.world.s3.get(bucket, `${folder}FAILED_0.json`)).toString());
    expect(succeeded).toHaveLength(9);
    expect(manifest.ResultFiles.SUCCEEDED[0].Size).toBe(Buffer.byteLength(JSON.stringify(succeeded)));
    expect(failed).toEqual([
      expect.objectContaining({
        Status: 'FAILED',
        Error: 'ItemFailed',
        Cause: 'asked to',
        Input: JSON.stringify({ i: 3, fail: true }),
        ExecutionArn: expect.stringMatching(/:execution:[\w-]+\/Limits:/),
      }),
    ]);
    expect(succeeded[0]).toMatchObject({ Status: 'SUCCEEDED', Output: expect.any(String), InputDetails: { Included: true } });
    // Every write was authorized as the state machine's role.
    const writes = session.world.iam.log.filter((d) => d.action === 's3:PutObject' && d.resource.includes(`/${folder}`));
    expect(writes.length).toBeGreaterThanOrEqual(3);
    expect([...new Set(writes.map((d) => `${d.role} ${d.decision}`))]).toEqual(['batch/state-machine-role Allowed']);
  });
});
