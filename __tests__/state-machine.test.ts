// The definition builder on its own: settings validated early, structure of each path, asl-validator.
import {
  buildDefinition,
  containerOverridesChars,
  converterOverridesFixedChars,
  CONVERTER_MALFORMED_EXIT,
  ECS_OVERRIDES_LIMIT_CHARS,
  EVENTS_PER_CHECKED_KEY,
  flow,
  Granted,
  POLICY_ORDER,
  states,
  KEY_NEEDS_ESCAPES,
  KEY_OUTSIDE_INPUT,
  MAX_KEYS_PER_EXECUTION,
  PREFIX_OUTSIDE_INPUT,
  PipelineDefinitionProps,
  processorStateNames,
  SFN_CAUSE_LIMIT_CHARS,
  SFN_HISTORY_EVENT_LIMIT,
  STATE,
  taskStates,
  TOO_MANY_KEYS,
} from '../stacks/state-machine';
import { dynamoItem } from '../stacks/state-machine/integrations';
import { StateMachine } from '../tools/local-sfn/interpreter';
import { unguardedPaths } from './asl-paths';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const aslValidator = require('asl-validator') as (d: unknown) => { isValid: boolean; errorsText: (sep?: string) => string };

const task = (family: string) => ({
  taskDefinitionArn: `arn:aws:ecs:eu-west-1:123456789012:task-definition/${family}`,
  containerName: family,
  taskRoleArn: `arn:aws:iam::123456789012:role/${family}-task`,
  executionRoleArn: `arn:aws:iam::123456789012:role/${family}-exec`,
  subnetIds: ['subnet-a', 'subnet-b'],
  securityGroupIds: ['sg-1'],
});
const base: PipelineDefinitionProps = {
  clusterArn: 'arn:aws:ecs:eu-west-1:123456789012:cluster/c',
  targets: {
    clusterTasksArn: 'arn:aws:ecs:eu-west-1:123456789012:task/c/*',
    ecsSyncRuleArn: 'arn:aws:events:eu-west-1:123456789012:rule/StepFunctionsGetEventsForECSTaskRule',
    bucketArn: 'arn:aws:s3:::data-bucket',
    lockTableArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/locks',
    stateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:m',
    executionArns: ['arn:aws:states:eu-west-1:123456789012:execution:m:*'],
  },
  bucket: 'data-bucket',
  converter: task('converter'),
  lister: task('sftp-lister'),
  lockTableName: 'locks',
};

/** Every state name, nested ones included (ASL requires them unique across the machine). */
function allStateNames(states: Record<string, any>): string[] {
  return Object.entries(states).flatMap(([n, s]) => [n, ...(s.ItemProcessor ? allStateNames(s.ItemProcessor.States) : [])]);
}

describe('buildDefinition', () => {
  const d = buildDefinition(base).definition as any;

  test('GIVEN defaults WHEN built THEN the definition is valid ASL with unique state names', () => {
    const result = aslValidator(structuredClone(d)); // the validator annotates what it is given
    expect({ valid: result.isValid, errors: result.errorsText('\n') }).toEqual({ valid: true, errors: '' });
    const names = allStateNames(d.States);
    expect(new Set(names).size).toBe(names.length);
  });

  test('THEN the input is routed by shape, with presence tested before type (a type test on a missing path fails the execution)', () => {
    const route = d.States[STATE.route];
    expect(route.Choices.map((c: any) => c.Next)).toEqual([
      STATE.acceptIngest,
      STATE.acceptManifest,
      STATE.acceptPrefix,
      STATE.acceptReplay,
      STATE.keysWithinLimit,
    ]);
    for (const choice of route.Choices.slice(1)) {
      const rules = choice.And;
      for (let i = 0; i < rules.length; i += 2) {
        expect(rules[i]).toEqual({ Variable: rules[i + 1].Variable, IsPresent: true });
        expect(rules[i + 1].IsString).toBe(true);
      }
    }
    expect(d.States[route.Default]).toMatchObject({ Type: 'Fail', Error: 'InvalidInput' });
  });

  test('THEN keys and a prefix are checked against the input prefixes before any task, with * in a prefix matched literally', () => {
    expect(d.States[STATE.acceptPrefix].Next).toBe(STATE.prefixAllowed);
    expect(d.States[STATE.keysWithinLimit].Default).toBe(STATE.checkKeys);
    expect(d.States[STATE.checkKeys]).toMatchObject({ Type: 'Map', ItemsPath: '$', ResultPath: null, Next: STATE.convertKeys });
    const keyStates = d.States[STATE.checkKeys].ItemProcessor.States;
    expect(keyStates[STATE.keyAllowed].Choices[0].And[0].And).toEqual([
      { Variable: '$', IsString: true },
      { Variable: '$', StringMatches: 'incoming/*' },
    ]);
    expect(keyStates[STATE.keyRejected]).toEqual({ Type: 'Fail', Error: KEY_OUTSIDE_INPUT, CausePath: '$.cause' });
    expect(d.States[STATE.prefixRejected]).toEqual({ Type: 'Fail', Error: PREFIX_OUTSIDE_INPUT, CausePath: '$.cause' });
    const odd = buildDefinition({ ...base, inputPrefixes: ['incoming/', "it's{a}*star/"] }).definition as any;
    expect(odd.States[STATE.prefixAllowed].Choices[0].And[1].Or[1]).toEqual({ Variable: '$.prefix', StringMatches: "it's{a}\\*star/*" });
    expect(odd.States[STATE.describeRejectedPrefix].Parameters['cause.$']).toContain("(incoming/, it\\'s\\{a\\}*star/)");
    expect(aslValidator(structuredClone(odd)).isValid).toBe(true);
  });

  test('THEN a failed task is classified by parsing the stopped task (no string match), re-run after a jittered wait', () => {
    const n = processorStateNames('keys');
    const states = d.States[STATE.convertKeys].ItemProcessor.States;
    expect(JSON.stringify(states)).not.toContain('"ExitCode":');
    expect(states[n.parseStopped]).toEqual({
      Type: 'Pass',
      Parameters: { 'task.$': 'States.StringToJson($.taskError.Cause)' },
      ResultPath: '$.stopped',
      Next: n.exitCode,
    });
    expect(states[n.rerun]).toEqual({ Type: 'Choice', Choices: [{ Variable: '$.attempt', NumericLessThan: 2, Next: n.backoff }], Default: n.read });
    expect(states[n.read].Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.readError', Next: n.noSummary }]);
    expect(states[n.noSummary].Choices).toEqual([{ Variable: '$.taskError', IsPresent: true, Next: n.failed }]);
    expect(states[n.backoff].Parameters['waitSeconds.$']).toBe('States.MathRandom(1, States.ArrayGetItem(States.Array(15, 60, 240), $.attempt))');
    expect(states[n.wait]).toEqual({ Type: 'Wait', SecondsPath: '$.waitSeconds', Next: n.run });
  });

  // The batch processor run by aws-local-stepfunctions with a converter that always fails with `cause`:
  // which task states are called, in order.
  async function failingConverter(cause: string): Promise<string[]> {
    const n = processorStateNames('keys');
    const { ProcessorConfig: _mode, ...processor } = structuredClone(d.States[STATE.convertKeys].ItemProcessor);
    const calls: string[] = [];
    const handlers: Record<string, () => Promise<unknown>> = {};
    for (const name of Object.keys(taskStates({ States: processor.States }))) {
      handlers[name] = async () => {
        calls.push(name);
        if (name === n.run) throw Object.assign(new Error(cause), { name: 'States.TaskFailed' });
        if (name === n.read) return { Body: JSON.stringify({ converted: [], failed: [{ key: 'incoming/a.xml', error: 'a.xml:1:1: bad', malformed: true }] }) };
        return {};
      };
    }
    const waits = Object.fromEntries(
      Object.entries(processor.States as Record<string, any>)
        .filter(([, st]) => st.Type === 'Wait')
        .map(([name]) => [name, 0]),
    );
    await new StateMachine(processor, { validationOptions: { checkArn: false } }).run({ Items: [{ Key: 'incoming/a.xml', execution: 'run-1' }] } as never, {
      overrides: { taskResourceLocalHandlers: handlers as never, waitTimeOverrides: waits },
    }).result;
    return calls;
  }
  const stopped = (container: Record<string, unknown>) =>
    JSON.stringify({
      Containers: [{ Name: 'converter', LastStatus: 'STOPPED', ...container }],
      LastStatus: 'STOPPED',
      StopCode: 'EssentialContainerExited',
      TaskArn: 'arn:aws:ecs:eu-west-1:123456789012:task/c/1',
    });

  test.each([
    ['exit 65 (malformed input: never re-run)', stopped({ ExitCode: CONVERTER_MALFORMED_EXIT }), 1],
    ['exit 1', stopped({ ExitCode: 1 }), 3],
    ['exit 137 (killed for memory)', stopped({ ExitCode: 137, Reason: 'OutOfMemoryError: Container killed due to memory usage' }), 3],
    ['exit 650 (not 65, though its text starts with it)', stopped({ ExitCode: 650 }), 3],
    ['a task that never started (no exit code)', stopped({ Reason: 'CannotPullContainerError' }), 3],
    ['a cause that is not JSON', 'Task timed out', 3],
    ['an empty cause', '', 3],
  ])('GIVEN a converter task failing with %s WHEN the batch runs THEN it runs that many times, then the summary is read', async (_what, cause, runs) => {
    const n = processorStateNames('keys');
    const calls = await failingConverter(cause);
    expect(calls).toEqual([...Array(runs).fill(n.run), n.read]);
  });

  const mapOf = {
    keys: STATE.convertKeys,
    prefix: STATE.convertPrefix,
    manifest: STATE.convertManifest,
    batches: STATE.convertBatches,
    replay: STATE.convertReplay,
  } as const;
  const envOf = (variant: keyof typeof mapOf) =>
    Object.fromEntries(
      d.States[mapOf[variant]].ItemProcessor.States[processorStateNames(variant).run].Parameters.Overrides.ContainerOverrides[0].Environment.map((e: any) => [
        e.Name,
        e.Value ?? e['Value.$'],
      ]),
    );

  test('THEN every converter task gets its keys as S3PATHS, a per-batch RESULT_KEY under the results prefix, RUN_ID and BATCH_ID', () => {
    for (const v of ['keys', 'prefix', 'manifest'] as const) {
      const n = processorStateNames(v);
      const processor = d.States[mapOf[v]].ItemProcessor;
      expect(processor.States[n.prepare].Parameters).toEqual({
        'keys.$': '$.Items[*].Key',
        'execution.$': '$.Items[0].execution',
        'batchId.$': 'States.UUID()',
        attempt: 0,
      });
      expect(envOf(v)).toEqual({
        BUCKET: 'data-bucket',
        S3PATHS: 'States.JsonToString($.keys)',
        OUTPUT_BUCKET: 'data-bucket',
        OUTPUT_PREFIX: 'json/',
        RESULT_KEY: "States.Format('results/{}/{}.json', $.execution, $.batchId)",
        RUN_ID: '$.execution',
        BATCH_ID: '$.batchId',
      });
      expect(processor.States[n.read]).toMatchObject({
        Resource: 'arn:aws:states:::aws-sdk:s3:getObject',
        Parameters: { Bucket: 'data-bucket', 'Key.$': "States.Format('results/{}/{}.json', $.execution, $.batchId)" },
      });
    }
  });

  test("THEN a batch-manifest or replay task gets the manifest's key as S3PATHS_MANIFEST (no keys in the state or environment) and its basename as BATCH_ID", () => {
    for (const v of ['batches', 'replay'] as const) {
      const env = envOf(v);
      expect(env.S3PATHS_MANIFEST).toBe('$.manifest');
      expect(env.S3PATHS).toBeUndefined();
      expect(d.States[mapOf[v]].ItemBatcher).toBeUndefined();
      const { States: states, StartAt } = d.States[mapOf[v]].ItemProcessor;
      expect(StartAt).toBe(processorStateNames(v).checkItem);
      expect(JSON.stringify(states)).not.toMatch(/\$\.(keys|Items)/);
    }
    expect(d.States[STATE.convertBatches].ItemReader).toEqual({
      Resource: 'arn:aws:states:::s3:getObject',
      ReaderConfig: { InputType: 'JSON' },
      Parameters: { Bucket: 'data-bucket', 'Key.$': "States.Format('manifests/{}/batches.json', $$.Execution.Name)" },
    });
    expect(d.States[STATE.convertReplay].ItemReader).toEqual({
      Resource: 'arn:aws:states:::s3:listObjectsV2',
      Parameters: { Bucket: 'data-bucket', 'Prefix.$': "States.Format('manifests/failed/{}/', $.replay)" },
    });
  });

  test('THEN a batch the converter could not file is filed by PutObject: its keys, or a reference to its manifest (no CopyObject, whose source must be URL-encoded)', () => {
    for (const v of ['keys', 'prefix', 'manifest', 'batches', 'replay'] as const) {
      const record = d.States[mapOf[v]].ItemProcessor.States[processorStateNames(v).recordFailed];
      expect(record.Resource).toBe('arn:aws:states:::aws-sdk:s3:putObject');
      expect(record.Parameters).toEqual({
        Bucket: 'data-bucket',
        'Key.$': '$.failedManifest',
        'Body.$': v === 'batches' || v === 'replay' ? 'States.Format(\'\\{"manifest":"{}"\\}\', $.manifest)' : 'States.JsonToString($.failedKeys)',
        ContentType: 'application/json',
      });
    }
    expect(JSON.stringify(d)).not.toContain('copyObject');
  });

  test('THEN the ingest path takes a lock, runs the lister, converts its manifest and always releases the lock', () => {
    // An ingest named like the failed-keys folder is refused first (its manifests would land in it).
    expect(d.States[STATE.acceptIngest].Next).toBe(STATE.ingestNameAllowed);
    expect(d.States[STATE.ingestNameAllowed]).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$$.Execution.Name', StringEquals: 'failed', Next: STATE.ingestNameReserved }],
      Default: STATE.acquireLock,
    });
    expect(d.States[STATE.ingestNameReserved]).toMatchObject({ Type: 'Fail', Error: 'ReservedExecutionName' });
    expect(d.States[STATE.acquireLock]).toMatchObject({
      Resource: 'arn:aws:states:::dynamodb:putItem',
      Parameters: { ConditionExpression: 'attribute_not_exists(#lock)' },
      Next: STATE.runLister,
    });
    expect(d.States[STATE.runLister].Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.ingestError', Next: STATE.locateManifest }]);
    expect(d.States[STATE.locateManifest].Next).toBe(STATE.convertBatches);
    // no index (the lister failed before writing it): the manifest is converted in key batches
    expect(d.States[STATE.convertBatches].Catch).toEqual([
      { ErrorEquals: ['States.ItemReaderFailed'], ResultPath: '$.batchIndexError', Next: STATE.convertManifest },
      { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: STATE.afterIngestConvert },
    ]);
    expect(d.States[STATE.convertManifest].Catch[0].Next).toBe(STATE.afterIngestConvert);
    const after = d.States[STATE.afterIngestConvert].Choices.map((c: any) => c.Next);
    expect(after).toEqual([STATE.releaseLockOnFailure, STATE.releaseLockOnFailure, STATE.releaseLock, STATE.convertFailed]);
    for (const release of [STATE.releaseLock, STATE.releaseLockOnFailure]) {
      expect(d.States[release].Parameters.ConditionExpression).toBe('#holder = :me');
    }
  });

  // ASL sets no Task timeout by default: a hung task would hold the execution (and the lock) until the
  // execution's own limit (https://docs.aws.amazon.com/step-functions/latest/dg/sfn-stuck-execution.html).
  test('THEN every ECS task state has an explicit TimeoutSeconds: its task setting, else 3600', () => {
    const timed = buildDefinition({ ...base, converter: { ...base.converter, timeoutSeconds: 900 }, lister: { ...base.lister, timeoutSeconds: 600 } })
      .definition as any;
    const timeouts = (def: any) =>
      Object.entries(taskStates(def))
        .filter(([, s]) => String(s.Resource).includes('ecs:runTask'))
        .map(([name, s]) => [
          name,
          String((s.Parameters as any).TaskDefinition)
            .split('/')
            .pop(),
          s.TimeoutSeconds,
        ]);
    const set = timeouts(timed);
    expect(set.map(([, family]) => family).sort()).toEqual(expect.arrayContaining(['converter', 'sftp-lister']));
    for (const [name, family, seconds] of set) expect([name, seconds]).toEqual([name, family === 'converter' ? 900 : 600]);
    for (const [name, , seconds] of timeouts(d)) expect([name, seconds]).toEqual([name, 3600]);
  });

  test.each([
    [{ batchSize: 0 }, /batchSize must be an integer from 1 to 512, got 0/],
    [{ batchSize: 300, maxBatchBytes: 3000 }, /batchSize must be an integer from 1 to 250, got 300/],
    [{ maxBatchBytes: 9000 }, /maxBatchBytes must be an integer from 256 to 7168/],
    [
      { maxBatchBytes: 7168, converter: { ...task('c'.repeat(700)) } },
      /maxBatchBytes 7168 \+ \d+ characters of the converter's other overrides exceed ECS's 8192-character override limit/,
    ],
    [{ toleratedFailurePercentage: 101 }, /toleratedFailurePercentage must be 0-100/],
    [{ keysMaxConcurrency: 0 }, /keysMaxConcurrency/],
    [{ taskAttempts: 4, taskRetryDelays: [5, 5] }, /taskRetryDelays needs 3 integer delays/],
    [{ outputPrefix: 'json' }, /outputPrefix must be empty or end with "\/"/],
    [{ outputPrefix: 'in/', ingestPrefix: 'in/new/' }, /must not contain one another/],
    [{ outputPrefix: 'incoming/json/' }, /must not contain one another/],
    [{ ingestPrefix: '' }, /must not contain one another/],
    [{ inputPrefixes: ['lab/'] }, /inputPrefixes \[lab\/\] must include the ingest prefix "incoming\/"/],
    [{ inputPrefixes: [] }, /inputPrefixes must not be empty/],
    [{ inputPrefixes: ['incoming/', 'json/old/'] }, /input prefix "json\/old\/" and outputPrefix "json\/" must not contain one another/],
    [{ inputPrefixes: ['incoming/', 'manifests/'] }, /input prefix "manifests\/" and manifestPrefix/],
    [{ inputPrefixes: ['incoming/', 'lab'] }, /inputPrefixes must be empty or end with "\/"/],
    [{ converter: { ...task('c'), subnetIds: [] } }, /converter\.subnetIds must not be empty/],
    [{ lister: { ...task('l'), timeoutSeconds: 10 } }, /lister\.timeoutSeconds must be an integer from 60/],
  ])('GIVEN %j WHEN built THEN it throws naming the setting', (override, message) => {
    expect(() => buildDefinition({ ...base, ...(override as Partial<PipelineDefinitionProps>) })).toThrow(message);
  });
});

// aws-local-stepfunctions: the definition executed by a real ASL interpreter. Every Task state gets a
// handler that records the call and aborts the run, so a run shows whether anything would have
// reached AWS.

interface LocalRun {
  readonly error?: string;
  readonly cause?: string;
  /** Task states that were called (none means no task and no AWS call). */
  readonly calls: string[];
  /** Events of the interpreter's log (state entered/exited, map iterations...). */
  readonly events: number;
}

/** Top-level states reachable from StartAt (Next, Default, Choices, Catch). */
function reachable(def: any): Set<string> {
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const s = def.States[name];
    for (const next of [s.Next, s.Default, ...(s.Choices ?? []).map((c: any) => c.Next), ...(s.Catch ?? []).map((c: any) => c.Next)]) if (next) visit(next);
  };
  visit(def.StartAt);
  return seen;
}

/** Runs `definition` on `input`; `stopAt` (a top-level state) becomes the end: reaching it succeeds with {reached: true}. */
async function runLocally(definition: any, input: unknown, stopAt?: string): Promise<LocalRun & { reached: boolean }> {
  const def = structuredClone(definition);
  if (stopAt) {
    def.States[stopAt] = { Type: 'Pass', Parameters: { reached: true }, End: true };
    const live = reachable(def);
    for (const name of Object.keys(def.States)) if (!live.has(name)) delete def.States[name];
  }
  let reached = false;
  const calls: string[] = [];
  // The first call to anything that would reach AWS aborts the run (its error paths need AWS too).
  let abort = () => undefined as void;
  const handlers: Record<string, () => Promise<unknown>> = Object.fromEntries(
    Object.keys(taskStates(def)).map((name) => [
      name,
      () => {
        calls.push(name);
        abort();
        return new Promise(() => undefined);
      },
    ]),
  );
  const run = new StateMachine(def, { validationOptions: { checkArn: false } }).run(input as never, {
    overrides: { taskResourceLocalHandlers: handlers as never },
    context: { Execution: { Id: 'arn:aws:states:eu-west-1:123456789012:execution:m:run-1', Name: 'run-1', StartTime: '2026-01-01T00:00:00Z' } } as never,
  });
  abort = () => run.abort();
  let events = 0;
  const counting = (async () => {
    for await (const _ of run.eventLogs) events++;
  })();
  try {
    reached = ((await run.result) as { reached?: boolean } | null)?.reached === true;
    await counting;
    return { calls, events, reached };
  } catch (e) {
    await counting.catch(() => undefined);
    const inner = ((e as Error & { cause?: Error }).cause ?? e) as Error;
    return { error: inner.name, cause: inner.message, calls, events, reached };
  }
}

const keysOf = (n: number, make = (i: number) => `incoming/2024/${String(i).padStart(5, '0')}.xml`) => Array.from({ length: n }, (_, i) => make(i));

describe('contract 1: the largest input the machine carries (defect 3), run locally', () => {
  const d = buildDefinition(base).definition as any;

  test(`GIVEN one key more than MAX_KEYS_PER_EXECUTION (${MAX_KEYS_PER_EXECUTION}) WHEN executed THEN it fails with TooManyKeys before any check or task`, async () => {
    const run = await runLocally(d, keysOf(MAX_KEYS_PER_EXECUTION + 1));
    expect(run).toMatchObject({ error: TOO_MANY_KEYS, calls: [] });
    expect(run.cause).toBe(
      `${MAX_KEYS_PER_EXECUTION + 1} keys given: one execution takes at most ${MAX_KEYS_PER_EXECUTION} (Step Functions limits an execution to ${SFN_HISTORY_EVENT_LIMIT} history events); split the list, or write it to S3 as a JSON array and start the manifest input; nothing was converted`,
    );
  });

  test('GIVEN valid keys THEN they are checked, one inline Map iteration of EVENTS_PER_CHECKED_KEY events each, and reach the conversion map with no task before it', async () => {
    const ten = await runLocally(d, keysOf(10), STATE.convertKeys);
    const twenty = await runLocally(d, keysOf(20), STATE.convertKeys);
    for (const run of [ten, twenty]) expect([run.error, run.calls, run.reached]).toEqual([undefined, [], true]);
    expect((twenty.events - ten.events) / 10).toBe(EVENTS_PER_CHECKED_KEY);
  });

  test(`GIVEN the largest accepted input (${MAX_KEYS_PER_EXECUTION} keys) with the last one outside the input prefixes THEN every key is checked within the history limit, KeyOutsideInputPrefixes names it, no task ran`, async () => {
    const run = await runLocally(d, [...keysOf(MAX_KEYS_PER_EXECUTION - 1), 'lab/last.xml'], STATE.convertKeys);
    expect(run).toMatchObject({
      error: KEY_OUTSIDE_INPUT,
      cause: 'key "lab/last.xml" is outside the input prefixes (incoming/); nothing was converted',
      calls: [],
      reached: false,
    });
    // What the history keeps for the rest (the map run's own events, failure paths): a generous margin.
    expect(run.events).toBeGreaterThanOrEqual(EVENTS_PER_CHECKED_KEY * (MAX_KEYS_PER_EXECUTION - 40));
    expect(SFN_HISTORY_EVENT_LIMIT - run.events).toBeGreaterThanOrEqual(900);
    // At 4,000 keys of 63 bytes the input is over StartExecution's 256 KiB already: longer keys, fewer of them.
    expect(Buffer.byteLength(JSON.stringify(keysOf(MAX_KEYS_PER_EXECUTION, (i) => `incoming/${String(i).padStart(54, '0')}`)))).toBeGreaterThan(256 * 1024);
  });
});

describe("every state's output stays small (defect 3)", () => {
  const d = buildDefinition(base).definition as any;
  const maps = (states: Record<string, any>): [string, any][] =>
    Object.entries(states).flatMap(([n, s]) => (s.Type === 'Map' ? [[n, s], ...maps(s.ItemProcessor.States)] : []));

  test("GIVEN every Map THEN it either discards its iterations' outputs or writes them to S3 (ResultWriter), never into the state", () => {
    const all = maps(d.States);
    expect(all.map(([n]) => n).sort()).toEqual(
      [STATE.checkKeys, STATE.convertKeys, STATE.convertManifest, STATE.convertPrefix, STATE.convertBatches, STATE.convertReplay].sort(),
    );
    for (const [name, map] of all) {
      if (map.ResultPath === null) continue;
      expect({ name, writer: map.ResultWriter }).toEqual({
        name,
        writer: { Resource: 'arn:aws:states:::s3:putObject', Parameters: { Bucket: 'data-bucket', Prefix: 'results/map' } },
      });
      expect({ name, mode: map.ItemProcessor.ProcessorConfig.Mode }).toEqual({ name, mode: 'DISTRIBUTED' });
    }
  });

  test('THEN each conversion keeps only where its results are: {results: {MapRunArn, ResultWriterDetails}}', () => {
    expect(d.States[STATE.convertKeys]).toMatchObject({ ItemsPath: '$', ResultSelector: { 'results.$': '$' }, Next: STATE.keysDone });
    expect(d.States[STATE.convertKeys].ResultPath).toBeUndefined();
    expect(d.States[STATE.convertManifest].ResultPath).toBe('$.results');
    expect(d.States[STATE.convertPrefix].ResultPath).toBe('$.results');
  });
});

describe("no container override can exceed ECS's 8,192 characters (defect 6)", () => {
  const d = buildDefinition(base).definition as any;
  const bucket = 'b'.repeat(63);
  const execution = 'e'.repeat(80);

  /** ItemBatcher as documented: items in order, a new batch when one more item would pass either bound. */
  function batches(items: unknown[], batcher: { MaxItemsPerBatch: number; MaxInputBytesPerBatch: number }): unknown[][] {
    const out: unknown[][] = [];
    let current: unknown[] = [];
    for (const item of items) {
      const next = [...current, item];
      if (
        current.length > 0 &&
        (next.length > batcher.MaxItemsPerBatch || Buffer.byteLength(JSON.stringify({ Items: next })) > batcher.MaxInputBytesPerBatch)
      ) {
        out.push(current);
        current = [item];
      } else current = next;
    }
    if (current.length > 0) out.push(current);
    return out;
  }

  /** The overrides RunTask gets for one batch: the state's environment with S3PATHS = JsonToString(keys). */
  const overridesOf = (keys: string[]) =>
    containerOverridesChars('converter', [
      { Name: 'BUCKET', Value: bucket },
      { Name: 'S3PATHS', Value: JSON.stringify(keys) },
      { Name: 'OUTPUT_BUCKET', Value: bucket },
      { Name: 'OUTPUT_PREFIX', Value: 'json/' },
      { Name: 'RESULT_KEY', Value: `results/${execution}/${'u'.repeat(36)}.json` },
      { Name: 'RUN_ID', Value: execution },
      { Name: 'BATCH_ID', Value: 'u'.repeat(36) },
    ]);

  // Keys of at most 1,024 UTF-8 bytes (S3's limit) with no character JSON escapes.
  const longest = (i: number) => `incoming/${String(i).padStart(4, '0')}${'k'.repeat(1024 - 13)}`;
  const nonAscii = (i: number) => `incoming/${String(i).padStart(4, '0')}${'é'.repeat((1024 - 13) / 2)}`;
  const short = (i: number) => `incoming/${i}`;
  const mixed = (i: number) => (i % 3 === 0 ? longest(i) : short(i));

  test.each([
    ['1,024-byte keys', longest],
    ['1,024-byte keys of two-byte characters', nonAscii],
    ['the shortest keys', short],
    ['long and short keys mixed', mixed],
  ])("GIVEN %s WHEN batched by each converting map THEN every batch's overrides fit", (_name, make) => {
    for (const state of [STATE.convertKeys, STATE.convertManifest, STATE.convertPrefix]) {
      const map = d.States[state];
      expect({ state, bytes: map.ItemBatcher?.MaxInputBytesPerBatch }).toEqual({ state, bytes: 6144 });
      const items = Array.from({ length: 600 }, (_, i) => ({ Key: make(i), execution }));
      for (const batch of batches(items, map.ItemBatcher)) {
        const chars = overridesOf((batch as { Key: string }[]).map((i) => i.Key));
        expect({ state, chars: Math.min(chars, ECS_OVERRIDES_LIMIT_CHARS + 1) }).toEqual({ state, chars: Math.min(chars, ECS_OVERRIDES_LIMIT_CHARS) });
      }
    }
  });

  test('THEN the fixed part of the overrides plus the largest batch is within the limit, and a larger byte cap is refused', () => {
    const fixed = converterOverridesFixedChars('converter', 'json/', 'results/');
    expect(fixed).toBe(overridesOf([]) - 2);
    expect(fixed + 7168).toBeLessThanOrEqual(ECS_OVERRIDES_LIMIT_CHARS);
  });

  test.each([
    ['a double quote', 'incoming/say "hi".xml', '"incoming/say \\"hi\\".xml"'],
    ['a backslash', 'incoming/a\\b.xml', '"incoming/a\\\\b.xml"'],
    ['a control character', 'incoming/a\u0001b.xml', '"incoming/a\\u0001b.xml"'],
  ])(
    'GIVEN a contract-1 key with %s (JSON escapes count twice in the override) WHEN executed THEN KeyNeedsEscapes names it before any task',
    async (_what, key) => {
      const run = await runLocally(d, ['incoming/fine.xml', key]);
      expect(run).toMatchObject({ error: KEY_NEEDS_ESCAPES, calls: [] });
      expect(run.cause).toMatch(
        /^key .* holds a double quote, a backslash or a control character: JSON escapes count twice against ECS's 8192-character override limit, so its batch could not be started; nothing was converted$/,
      );
    },
  );
});

describe('only documented semantics (defect 7)', () => {
  const d = buildDefinition(base).definition as any;

  test('GIVEN every ItemBatcher THEN it has no BatchInput (documented only as fixed JSON); the execution name reaches the batch through ItemSelector', () => {
    for (const state of [STATE.convertKeys, STATE.convertManifest, STATE.convertPrefix]) {
      const map = d.States[state];
      expect({ state, batcher: map.ItemBatcher }).toEqual({
        state,
        batcher: { MaxItemsPerBatch: state === STATE.convertKeys ? 10 : 50, MaxInputBytesPerBatch: 6144 },
      });
      expect(map.ItemSelector['execution.$']).toBe('$$.Execution.Name');
    }
  });
});

describe('every selected path is present or guarded (defect 4)', () => {
  const d = buildDefinition(base).definition as any;

  test('GIVEN the definition WHEN every path selection is walked THEN each is guaranteed present at its state or guarded', () => {
    expect(unguardedPaths(d)).toEqual([]);
    const odd = buildDefinition({ ...base, inputPrefixes: ['incoming/', 'lab/'], taskAttempts: 1, taskRetryDelays: [] }).definition;
    expect(unguardedPaths(odd)).toEqual([]);
  });

  test("GIVEN the lock read as it was (the holder selected from GetItem's result) THEN the walk reports it: the check can fail", () => {
    const broken = structuredClone(d);
    broken.States[STATE.readLock].ResultSelector = { 'holder.$': '$.Item.holder.S' };
    expect(unguardedPaths(broken)).toContain('Read ingest lock ResultSelector .holder.$: $.Item.holder.S is not guaranteed present');
    // so is any other selection from a path that may be missing
    const timeout = structuredClone(d);
    timeout.States[STATE.runLister].TimeoutSecondsPath = '$.ingest.timeout';
    expect(unguardedPaths(timeout)).toContain(`${STATE.runLister} TimeoutSecondsPath: $.ingest.timeout is not guaranteed present`);
    const cause = structuredClone(d);
    cause.States[STATE.convertFailed].Parameters['cause.$'] = "States.Format('{}', $.error.Cause)";
    expect(unguardedPaths(cause)).toContain(`${STATE.convertFailed} .cause.$: $.error.Cause is not guaranteed present`);
  });

  test('GIVEN the ingest lock released between the failed put and the read (GetItem returns no Item) THEN the run skips the ingest', () => {
    expect(d.States[STATE.readLock]).toMatchObject({ ResultPath: '$.lockRead', Next: STATE.lockStillHeld });
    expect(d.States[STATE.readLock].ResultSelector).toBeUndefined();
    expect(d.States[STATE.lockStillHeld]).toEqual({
      Type: 'Choice',
      Choices: [
        {
          And: [
            { Variable: '$.lockRead.Item.holder.S', IsPresent: true },
            { Variable: '$.lockRead.Item.holder.S', IsString: true },
          ],
          Next: STATE.noteLockHolder,
        },
      ],
      Default: STATE.ingestSkipped,
    });
  });

  test('GIVEN every Fail state THEN its cause is bounded under 32,768 characters: fixed text plus bounded values, never a whole state or a caught cause', () => {
    // The longest each value a cause may quote can be: error names (256, as SendTaskFailure's error),
    // bucket names (63), keys (1,024 UTF-8 bytes, at most 6 characters each once JSON-escaped).
    const bounds: [RegExp, number][] = [
      [/^\$\.(error|ingestError)\.Error$/, 256],
      [/^\$\.(manifest\.bucket|results\.ResultWriterDetails\.Bucket)$/, 63],
      [/^\$\.(manifest\.key|results\.ResultWriterDetails\.Key)$/, 1024],
      [/^States\.ArrayLength\(\$\)$/, 10],
      [/^States\.JsonToString\(\$(\.prefix)?\)$/, 2 + 6 * 1024],
    ];
    const fails: [string, any, Record<string, any>][] = [];
    const walk = (states: Record<string, any>) => {
      for (const [name, s] of Object.entries(states)) {
        if (s.Type === 'Fail') fails.push([name, s, states]);
        if (s.ItemProcessor) walk(s.ItemProcessor.States);
      }
    };
    walk(d.States);
    expect(fails.length).toBeGreaterThanOrEqual(7);
    for (const [name, fail, states] of fails) {
      if (fail.Cause !== undefined) {
        expect(fail.Cause.length).toBeLessThanOrEqual(SFN_CAUSE_LIMIT_CHARS);
        continue;
      }
      expect({ name, causePath: fail.CausePath }).toEqual({ name, causePath: '$.cause' });
      const producers = Object.entries(states).filter(([, s]) => s.Next === name);
      expect(producers.length).toBeGreaterThan(0);
      for (const [producer, p] of producers) {
        if (p.Result) {
          expect(p.Result.cause.length).toBeLessThanOrEqual(SFN_CAUSE_LIMIT_CHARS);
          continue;
        }
        const expression: string = p.Parameters['cause.$'];
        const m = /^States\.Format\('((?:[^'\\]|\\.)*)'((?:, .+)*)\)$/.exec(expression);
        expect({ producer, format: !!m }).toEqual({ producer, format: true });
        const literal = m![1].replace(/\\(.)/g, '$1').replace(/\{\}/g, '');
        // The arguments, split at top-level commas.
        const args: string[] = [];
        let depth = 0;
        let current = '';
        for (const c of m![2].slice(2)) {
          if (c === ',' && depth === 0) {
            args.push(current.trim());
            current = '';
            continue;
          }
          if (c === '(') depth++;
          if (c === ')') depth--;
          current += c;
        }
        args.push(current.trim());
        const bound = args.reduce((sum, a) => {
          const b = bounds.find(([re]) => re.test(a));
          expect({ producer, argument: a, bounded: !!b }).toEqual({ producer, argument: a, bounded: true });
          return sum + (b ? b[1] : Infinity);
        }, literal.length);
        expect({ producer, bound: bound <= SFN_CAUSE_LIMIT_CHARS }).toEqual({ producer, bound: true });
      }
    }
  });
});

describe('IAM: each state brings its permissions (defect 1, issue 13.1)', () => {
  const { definition, statements } = buildDefinition(base);
  const d = definition as any;
  const bySid = Object.fromEntries(statements.map((st) => [st.sid, st]));

  test("GIVEN runTask.sync with PropagateTags THEN RunTask comes with ecs:TagResource on the cluster's tasks, only as part of RunTask", () => {
    const runTasks = Object.values(taskStates(d)).filter((s) => s.Resource === 'arn:aws:states:::ecs:runTask.sync');
    expect(runTasks.every((s) => (s.Parameters as any).PropagateTags === 'TASK_DEFINITION')).toBe(true);
    expect(bySid.TagTasksOnRunTask).toEqual({
      sid: 'TagTasksOnRunTask',
      effect: 'Allow',
      actions: ['ecs:TagResource'],
      resources: ['arn:aws:ecs:eu-west-1:123456789012:task/c/*'],
      condition: [{ test: 'StringEquals', variable: 'ecs:CreateAction', values: ['RunTask'] }],
    });
  });

  test('GIVEN the definition THEN the statements are exactly those its states brought, merged by Sid, in policy order', () => {
    expect(statements.map((st) => st.sid)).toEqual([
      'RunOnlyPipelineTasks',
      'TagTasksOnRunTask',
      'WatchAndStopTasks',
      'PassOnlyPipelineTaskRoles',
      'SyncTaskCompletionRule',
      'ReadManifestsAndBatchResults',
      'ListInputPrefixes',
      'ListFailedManifests',
      'WriteMapResults',
      'WriteFailedManifests',
      'IngestLock',
      'DistributedMapChildren',
      'OwnExecutions',
    ]);
    // Both tasks' families and both tasks' roles: each runTask.sync state names its own.
    expect(bySid.RunOnlyPipelineTasks.resources).toEqual([
      'arn:aws:ecs:eu-west-1:123456789012:task-definition/converter',
      'arn:aws:ecs:eu-west-1:123456789012:task-definition/converter:*',
      'arn:aws:ecs:eu-west-1:123456789012:task-definition/sftp-lister',
      'arn:aws:ecs:eu-west-1:123456789012:task-definition/sftp-lister:*',
    ]);
    expect(bySid.PassOnlyPipelineTaskRoles.resources).toEqual(
      ['converter-task', 'converter-exec', 'sftp-lister-task', 'sftp-lister-exec'].map((r) => `arn:aws:iam::123456789012:role/${r}`),
    );
    expect(bySid.ReadManifestsAndBatchResults.resources).toEqual(['arn:aws:s3:::data-bucket/manifests/*', 'arn:aws:s3:::data-bucket/results/*']);
    expect(bySid.IngestLock.actions).toEqual(['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem']);
    expect(bySid.OwnExecutions.actions).toEqual(['states:DescribeExecution', 'states:StopExecution']);
  });

  test('GIVEN every AWS call in the definition THEN its integration is one the policy orders (no call without a statement)', () => {
    const resources = new Set(Object.values(taskStates(d)).map((s) => `task:${String(s.Resource)}`));
    for (const r of resources) expect({ r, ordered: POLICY_ORDER.includes(r as never) }).toEqual({ r, ordered: true });
  });

  test('GIVEN a flow of one DynamoDB GetItem task THEN its only grant is GetItem on that table', () => {
    const f = flow('Read', { Read: { Type: 'Task', Resource: dynamoItem('getItem', 'arn:t'), Parameters: {}, End: true } });
    expect(f.json).toEqual({ StartAt: 'Read', States: { Read: { Type: 'Task', Resource: 'arn:aws:states:::dynamodb:getItem', Parameters: {}, End: true } } });
    expect(f.grants.map((g) => g.statement)).toEqual([{ sid: 'IngestLock', effect: 'Allow', actions: ['dynamodb:GetItem'], resources: ['arn:t'] }]);
  });

  test('GIVEN an integration with no statements THEN it cannot be made; GIVEN a Task whose Resource is a bare ARN THEN it does not compile', () => {
    expect(() => new Granted('task:arn:aws:states:::aws-sdk:s3:deleteObject', 'arn:aws:states:::aws-sdk:s3:deleteObject', [])).toThrow(
      'state machine: task:arn:aws:states:::aws-sdk:s3:deleteObject brings no IAM statements (every AWS call needs a permission)',
    );
    // @ts-expect-error a Task's Resource must be a Granted (an integration with its statements), not a string
    const bare = states({ Call: { Type: 'Task', Resource: 'arn:aws:states:::aws-sdk:s3:deleteObject', End: true } });
    expect(bare.Call.Type).toBe('Task');
  });
});

describe('typed states: a target must be a declared state (issue 13.1)', () => {
  test('GIVEN Next naming an undeclared state THEN it does not compile, and a cast past the types throws at synth naming it', () => {
    // @ts-expect-error "Nowhere" is not a state of this flow
    const typo = () => flow('A', { A: { Type: 'Pass', Next: 'Nowhere' }, B: { Type: 'Succeed' } });
    expect(typo).toThrow('state machine: state "A" names "Nowhere", which is not a declared state of its flow');
    const choice = () =>
      flow('A', { A: { Type: 'Choice', Choices: [{ Variable: '$.x', IsPresent: true, Next: 'B' }], Default: 'C' as never }, B: { Type: 'Succeed' } });
    expect(choice).toThrow('state machine: state "A" names "C", which is not a declared state of its flow');
  });

  test('GIVEN a StartAt or a state no path reaches THEN it throws naming them', () => {
    expect(() => flow('Z' as never, { A: { Type: 'Succeed' } })).toThrow('state machine: StartAt "Z" is not a declared state');
    expect(() => flow('A', { A: { Type: 'Succeed' }, B: { Type: 'Succeed' } })).toThrow('state machine: states "B" cannot be reached from "A"');
  });

  test('GIVEN a nested flow with renamed states THEN every target is renamed with it', () => {
    const f = flow(
      'a',
      { a: { Type: 'Choice', Choices: [{ Variable: '$.x', IsPresent: true, Next: 'b' }], Default: 'b' }, b: { Type: 'Succeed' } },
      (n) => `${n} (x)`,
    );
    expect(f.json).toEqual({
      StartAt: 'a (x)',
      States: { 'a (x)': { Type: 'Choice', Choices: [{ Variable: '$.x', IsPresent: true, Next: 'b (x)' }], Default: 'b (x)' }, 'b (x)': { Type: 'Succeed' } },
    });
  });
});
