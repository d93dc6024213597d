// batch stack: the converter's task definition, the ingest lock table and the Standard state machine
// (logging ALL with retention, X-Ray, least-privilege role); the synthesized definition passes asl-validator.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'cdktf';
import { validateStack } from '../scripts/terraform';
import { BatchSettings, BatchStack } from '../stacks/batch';
import { ConfigError, loadConfig } from '../stacks/config';
import { DEFAULT_LAYOUT } from '../stacks/constructs/refs';
import { processorStateNames, STATE, taskStates } from '../stacks/state-machine';
import { maskTerraformRefs } from '../tools/tf-json';
import { unguardedPaths } from './asl-paths';
import { readStack } from './batch-stack-reader';
import { synthesize } from './stacks/synth';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const aslValidator = require('asl-validator') as (d: unknown) => { isValid: boolean; errorsText: (sep?: string) => string };

describe('batch stack', () => {
  const synth = synthesize({
    env: { PIPELINE_STAGE: 'qa', PIPELINE_LOG_RETENTION_DAYS: '14', PIPELINE_CONVERTER_CPU: '2048', PIPELINE_CONVERTER_MEMORY: '4096' },
  });
  const batch = readStack(synth.outdir, 'batch');
  const sm = batch.only('aws_sfn_state_machine');
  const masked = maskTerraformRefs(sm.definition);
  const definition = JSON.parse(masked.text);
  const ref = (placeholder: string) => masked.refs[placeholder];

  test('GIVEN converter sizes WHEN synthesized THEN its task definition is Fargate, non-root, read-only root with /tmp volume', () => {
    const td = batch.only('aws_ecs_task_definition');
    expect(td).toMatchObject({
      family: 'xmlpipe-qa-converter',
      requires_compatibilities: ['FARGATE'],
      network_mode: 'awsvpc',
      cpu: '2048',
      memory: '4096',
      volume: [{ name: 'tmp' }],
    });
    const [container] = JSON.parse(maskTerraformRefs(td.container_definitions).text);
    expect(container).toMatchObject({
      name: 'converter',
      user: '10001:10001',
      readonlyRootFilesystem: true,
      mountPoints: [{ sourceVolume: 'tmp', containerPath: '/tmp', readOnly: false }],
      logConfiguration: { logDriver: 'awslogs' },
      secrets: [],
    });
    // contract C1: the Pipeline dimension of the converter's metrics
    expect(container.environment).toContainEqual({ name: 'METRICS_PIPELINE', value: 'xmlpipe-qa' });
    // contract C2: it files failed keys where its role may write them and replays list them
    expect(container.environment).toContainEqual({ name: 'FAILED_MANIFEST_PREFIX', value: 'manifests/failed/' });
  });

  test('THEN the state machine is STANDARD, logs ALL (with execution data) to a log group with retention, and traces with X-Ray', () => {
    expect(sm).toMatchObject({
      name: 'xmlpipe-qa-pipeline',
      type: 'STANDARD',
      logging_configuration: { level: 'ALL', include_execution_data: true, log_destination: '${aws_cloudwatch_log_group.state-machine-logs.arn}:*' },
      tracing_configuration: { enabled: true },
    });
    expect(batch.resources('aws_cloudwatch_log_group')['state-machine-logs']).toMatchObject({
      name: '/aws/vendedlogs/states/xmlpipe-qa-pipeline',
      retention_in_days: 14,
    });
  });

  test('THEN the synthesized definition passes asl-validator and uses JSONPath', () => {
    const result = aslValidator(structuredClone(definition)); // the validator annotates what it is given
    expect({ valid: result.isValid, errors: result.errorsText('\n') }).toEqual({ valid: true, errors: '' });
    expect(definition.QueryLanguage).toBe('JSONPath');
    // and, as synthesized, selects no path that could be missing (an uncatchable States.Runtime)
    expect(unguardedPaths(definition)).toEqual([]);
  });

  test('THEN every ECS task runs .sync in private subnets with no public IP, from this cluster', () => {
    const ecs = Object.entries(taskStates(definition)).filter(([, s]) => s.Resource === 'arn:aws:states:::ecs:runTask.sync');
    expect(ecs.map(([n]) => n).sort()).toEqual(
      [...(['keys', 'prefix', 'manifest', 'batches', 'replay'] as const).map((v) => processorStateNames(v).run), STATE.runLister].sort(),
    );
    for (const [, state] of ecs) {
      const p = state.Parameters as any;
      expect(ref(p.Cluster)).toContain('aws_ecs_clusterclusterarn');
      expect(p.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp).toBe('DISABLED');
      expect(p.NetworkConfiguration.AwsvpcConfiguration.Subnets.map(ref).join()).toMatch(/private/);
    }
  });

  test('THEN the distributed maps read from S3, batch keys, bound concurrency and tolerate a share of failures', () => {
    const manifest = definition.States[STATE.convertManifest];
    expect(manifest).toMatchObject({
      ItemReader: {
        Resource: 'arn:aws:states:::s3:getObject',
        ReaderConfig: { InputType: 'JSON' },
        Parameters: { 'Bucket.$': '$.manifest.bucket', 'Key.$': '$.manifest.key' },
      },
      ItemSelector: { 'Key.$': '$$.Map.Item.Value', 'execution.$': '$$.Execution.Name' },
      ItemBatcher: { MaxItemsPerBatch: 50, MaxInputBytesPerBatch: 6144 },
      MaxConcurrency: 20,
      ToleratedFailurePercentage: 5,
      ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' } },
      ResultWriter: { Resource: 'arn:aws:states:::s3:putObject', Parameters: { Prefix: 'results/map' } },
      ResultPath: '$.results',
    });
    expect(manifest.ItemBatcher.BatchInput).toBeUndefined();
    expect(ref(manifest.ResultWriter.Parameters.Bucket)).toContain('bucket');
    const prefix = definition.States[STATE.convertPrefix];
    expect(prefix.ItemReader).toMatchObject({ Resource: 'arn:aws:states:::s3:listObjectsV2', Parameters: { 'Prefix.$': '$.prefix' } });
    expect(ref(prefix.ItemReader.Parameters.Bucket)).toContain('bucket');
    expect(prefix.ResultWriter).toMatchObject({ Resource: 'arn:aws:states:::s3:putObject' });
    // contract 1: batches of 10 keys (and 6 KiB), MaxConcurrency 5 as the lab's Map, results to S3
    expect(definition.States[STATE.convertKeys]).toMatchObject({
      Type: 'Map',
      ItemsPath: '$',
      ItemBatcher: { MaxItemsPerBatch: 10, MaxInputBytesPerBatch: 6144 },
      MaxConcurrency: 5,
      ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' } },
      ResultWriter: { Resource: 'arn:aws:states:::s3:putObject', Parameters: { Prefix: 'results/map' } },
      ResultSelector: { 'results.$': '$' },
    });
  });

  test('THEN ECS start errors are retried with backoff and full jitter, and task failures are caught per batch', () => {
    const run = definition.States[STATE.convertManifest].ItemProcessor.States[processorStateNames('manifest').run];
    expect(run.Retry).toEqual([
      {
        ErrorEquals: ['ECS.AmazonECSException', 'ECS.ServerException', 'ECS.ThrottlingException', 'ECS.LimitExceededException', 'AmazonECS.Unknown'],
        IntervalSeconds: 5,
        BackoffRate: 2,
        MaxAttempts: 6,
        MaxDelaySeconds: 120,
        JitterStrategy: 'FULL',
      },
    ]);
    expect(run.Catch.map((c: any) => c.ErrorEquals.at(-1))).toEqual(['AmazonECS.Unknown', 'States.TaskFailed', 'States.ALL']);
    const env = Object.fromEntries(run.Parameters.Overrides.ContainerOverrides[0].Environment.map((e: any) => [e.Name, e.Value ?? e['Value.$']]));
    expect(env).toMatchObject({
      S3PATHS: 'States.JsonToString($.keys)',
      RESULT_KEY: "States.Format('results/{}/{}.json', $.execution, $.batchId)",
      OUTPUT_PREFIX: 'json/',
      RUN_ID: '$.execution',
      BATCH_ID: '$.batchId',
    });
    expect(run.Parameters.Overrides.ContainerOverrides[0].Name).toBe('converter');
  });

  test('THEN the lister gets a manifest key derived from the execution name', () => {
    const env = definition.States[STATE.runLister].Parameters.Overrides.ContainerOverrides[0].Environment;
    expect(env).toContainEqual({ Name: 'MANIFEST_KEY', 'Value.$': "States.Format('manifests/{}.json', $$.Execution.Name)" });
    expect(definition.States[STATE.runLister].Parameters.Overrides.ContainerOverrides[0].Name).toBe('sftp-lister');
  });

  test('THEN the role may run only the two task families in this cluster and pass only their four roles to ECS tasks', () => {
    const statements = batch.policyOf('state-machine-role');
    const bySid = Object.fromEntries(statements.map((s) => [s.sid, s]));
    expect(bySid.RunOnlyPipelineTasks).toMatchObject({
      actions: ['ecs:RunTask'],
      condition: [{ test: 'ArnEquals', variable: 'ecs:cluster', values: [expect.stringContaining('aws_ecs_clusterclusterarn')] }],
    });
    expect(bySid.RunOnlyPipelineTasks.resources).toEqual([
      '${aws_ecs_task_definition.task.arn_without_revision}',
      '${aws_ecs_task_definition.task.arn_without_revision}:*',
      expect.stringMatching(/cross-stack-reference-input-ingest.*arn_without_revision\}$/),
      expect.stringMatching(/cross-stack-reference-input-ingest.*arn_without_revision\}:\*$/),
    ]);
    expect(bySid.PassOnlyPipelineTaskRoles).toMatchObject({
      actions: ['iam:PassRole'],
      condition: [{ test: 'StringEquals', variable: 'iam:PassedToService', values: ['ecs-tasks.amazonaws.com'] }],
    });
    expect(bySid.PassOnlyPipelineTaskRoles.resources).toHaveLength(4);
    expect(bySid.SyncTaskCompletionRule).toMatchObject({
      actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
      resources: [expect.stringMatching(/:rule\/StepFunctionsGetEventsForECSTaskRule$/)],
    });
    expect(bySid.ReadManifestsAndBatchResults.actions).toEqual(['s3:GetObject']);
    expect(bySid.ReadManifestsAndBatchResults.resources.map((r: string) => r.replace(/^\$\{[^}]+\}/, 'B'))).toEqual(['B/manifests/*', 'B/results/*']);
    // no statement grants object reads of the whole bucket
    for (const s of statements) if (s.actions.includes('s3:GetObject')) for (const r of s.resources) expect(r).not.toMatch(/\}\/\*$/);
    expect(bySid.IngestLock.resources).toEqual(['${aws_dynamodb_table.lock-table.arn}']);
  });

  test('THEN the converter reads only the input prefix and its batch manifests, files only failed keys, and the state machine lists only inside the input prefix and the failed keys', () => {
    const converter = Object.fromEntries(batch.policyOf('task-role').map((s) => [s.sid, s]));
    const strip = (r: string) => r.replace(/^\$\{[^}]+\}/, 'B');
    expect(Object.keys(converter).sort()).toEqual(['FileFailedKeys', 'ReadBatchManifests', 'ReadInputPrefixes', 'WriteOutputsAndSummaries']);
    expect(converter.ReadInputPrefixes.actions).toEqual(['s3:GetObject']);
    expect(converter.ReadInputPrefixes.resources.map(strip)).toEqual(['B/incoming/*']);
    expect([converter.ReadBatchManifests.actions, converter.ReadBatchManifests.resources.map(strip)]).toEqual([
      ['s3:GetObject'],
      ['B/manifests/*/batches/*', 'B/manifests/failed/*'],
    ]);
    expect([converter.FileFailedKeys.actions, converter.FileFailedKeys.resources.map(strip)]).toEqual([
      ['s3:PutObject', 's3:DeleteObject'],
      ['B/manifests/failed/*'],
    ]);
    const machine = Object.fromEntries(batch.policyOf('state-machine-role').map((s) => [s.sid, s]));
    expect(machine.ListInputPrefixes).toMatchObject({
      actions: ['s3:ListBucket'],
      condition: [{ test: 'StringLike', variable: 's3:prefix', values: ['incoming/*'] }],
    });
    expect(machine.ListFailedManifests).toMatchObject({
      actions: ['s3:ListBucket'],
      condition: [{ test: 'StringLike', variable: 's3:prefix', values: ['manifests/failed/*'] }],
    });
    expect([machine.WriteFailedManifests.actions, machine.WriteFailedManifests.resources.map(strip)]).toEqual([['s3:PutObject'], ['B/manifests/failed/*']]);
    // and the definition refuses prefixes and keys the role could not serve
    expect(definition.States[STATE.prefixAllowed].Choices[0].And[1]).toEqual({ Variable: '$.prefix', StringMatches: 'incoming/*' });
    expect(definition.States[STATE.checkKeys].ItemProcessor.States[STATE.keyAllowed].Choices[0].And[0].And[1]).toEqual({
      Variable: '$',
      StringMatches: 'incoming/*',
    });
  });

  test('THEN the role may tag only the tasks RunTask creates in this cluster (PropagateTags: tag-on-create authorization)', () => {
    const bySid = Object.fromEntries(batch.policyOf('state-machine-role').map((s) => [s.sid, s]));
    expect(bySid.TagTasksOnRunTask).toEqual({
      sid: 'TagTasksOnRunTask',
      effect: 'Allow',
      actions: ['ecs:TagResource'],
      resources: [
        expect.stringMatching(
          /^arn:\$\{data\.aws_partition\.partition\.partition\}:ecs:us-east-1:\$\{data\.aws_caller_identity\.account\.account_id\}:task\/\$\{data\.terraform_remote_state\.cross-stack-reference-input-cluster\.outputs\.cross-stack-output-aws_ecs_clusterclustername\}\/\*$/,
        ),
      ],
      condition: [{ test: 'StringEquals', variable: 'ecs:CreateAction', values: ['RunTask'] }],
    });
    expect(bySid.WatchAndStopTasks.resources).toEqual(bySid.TagTasksOnRunTask.resources);
  });

  test("THEN the state machine is created only after its role's policy (depends_on)", () => {
    expect(batch.resources('aws_iam_role_policy')['state-machine-role-policy'].role).toBe('${aws_iam_role.state-machine-role.id}');
    expect(sm.depends_on).toEqual(['aws_iam_role_policy.state-machine-role-policy']);
  });

  test('THEN the lock table is on-demand and encrypted, keyed by `lock`', () => {
    expect(batch.only('aws_dynamodb_table')).toMatchObject({
      name: 'xmlpipe-qa-locks',
      billing_mode: 'PAY_PER_REQUEST',
      hash_key: 'lock',
      attribute: [{ name: 'lock', type: 'S' }],
      server_side_encryption: { enabled: true },
    });
  });

  test('THEN terraform validate passes offline', async () => {
    expect(await validateStack(batch.dir)).toEqual({ valid: true });
  });
});

describe('batching from the config', () => {
  test('GIVEN non-default batch size, concurrency, failure percentage and converter concurrency in the environment WHEN the app is synthesized THEN the definition and task carry them', () => {
    const synth = synthesize({
      env: { PIPELINE_BATCH_SIZE: '120', PIPELINE_MAX_CONCURRENCY: '7', PIPELINE_TOLERATED_FAILURE_PERCENTAGE: '12.5', PIPELINE_CONVERTER_CONCURRENCY: '9' },
    });
    const batch = readStack(synth.outdir, 'batch');
    const definition = JSON.parse(maskTerraformRefs(batch.only('aws_sfn_state_machine').definition).text);
    for (const state of [STATE.convertManifest, STATE.convertPrefix]) {
      expect(definition.States[state]).toMatchObject({
        ItemBatcher: { MaxItemsPerBatch: 120, MaxInputBytesPerBatch: 6144 },
        MaxConcurrency: 7,
        ToleratedFailurePercentage: 12.5,
      });
    }
    const [container] = JSON.parse(maskTerraformRefs(batch.only('aws_ecs_task_definition').container_definitions).text);
    expect(container.environment).toContainEqual({ name: 'CONCURRENCY', value: '9' });
  });
});

describe('batch settings', () => {
  const build = (settings: BatchSettings, env: Record<string, string> = {}) => {
    const app = new App({ outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'h4-batch-')) });
    const ref = { id: 'x', arn: 'arn:aws:s3:::x', name: 'x' };
    const stack = new BatchStack(app, 'batch', {
      config: loadConfig({ env }),
      network: { privateSubnets: [ref], taskSecurityGroup: ref },
      cluster: { cluster: ref, logGroups: { sftpLister: ref, converter: ref }, repositories: { sftpLister: ref, converter: ref }, xmlBucket: { bucket: ref } },
      images: { imageRefs: { sftpLister: 'img', converter: 'img' } },
      lister: {
        taskDefinition: { arnWithoutRevision: 'arn:aws:ecs:us-east-1:1:task-definition/l' },
        taskRole: ref,
        executionRole: ref,
        containerName: 'sftp-lister',
        layout: DEFAULT_LAYOUT,
      },
      settings,
    });
    return stack.definition as any;
  };

  test('GIVEN Spot, bigger batches and more concurrency WHEN built THEN the definition carries them', () => {
    const d = build({ converterOnSpot: true, batchSize: 80, maxConcurrency: 100, toleratedFailurePercentage: 0, keysBatchSize: 20 });
    const map = d.States[STATE.convertManifest];
    expect(map).toMatchObject({ ItemBatcher: { MaxItemsPerBatch: 80 }, MaxConcurrency: 100, ToleratedFailurePercentage: 0 });
    expect(map.ItemProcessor.States[processorStateNames('manifest').run].Parameters.CapacityProviderStrategy).toEqual([
      { CapacityProvider: 'FARGATE_SPOT', Weight: 1 },
    ]);
    // the lister stays on demand
    expect(d.States[STATE.runLister].Parameters.CapacityProviderStrategy).toEqual([{ CapacityProvider: 'FARGATE', Weight: 1 }]);
    expect(d.States[STATE.convertKeys].ItemBatcher.MaxItemsPerBatch).toBe(20);
  });

  test('GIVEN two input prefixes in the config WHEN built THEN keys and prefixes under either are accepted', () => {
    const d = build({}, { PIPELINE_INPUT_PREFIXES: 'incoming/,lab/xml/' });
    expect(d.States[STATE.prefixAllowed].Choices[0].And[1]).toEqual({
      Or: [
        { Variable: '$.prefix', StringMatches: 'incoming/*' },
        { Variable: '$.prefix', StringMatches: 'lab/xml/*' },
      ],
    });
  });

  test.each([
    ['lab/', /inputPrefixes \(env PIPELINE_INPUT_PREFIXES.*\[lab\/\] must include the lister's landing prefix "incoming\/"/],
    ['incoming/,json/', /inputPrefixes.*"json\/" and outputPrefix "json\/" must not contain one another/],
    ['incoming/,results/old/', /inputPrefixes.*"results\/old\/" and resultPrefix "results\/"/],
    ['incoming/,.sftp-lister/', /inputPrefixes.*"\.sftp-lister\/" and the lister's index prefix/],
  ])('GIVEN input prefixes %s WHEN the batch stack is built THEN a ConfigError names the setting', (prefixes, message) => {
    expect(() => build({}, { PIPELINE_INPUT_PREFIXES: prefixes })).toThrow(ConfigError);
    expect(() => build({}, { PIPELINE_INPUT_PREFIXES: prefixes })).toThrow(message);
  });

  test.each([
    [{ converterConcurrency: 0 }, /converterConcurrency must be 1-64/],
    [{ batchSize: 513 }, /batchSize must be an integer from 1 to 512/],
    [{ converterTimeoutSeconds: 5 }, /converter\.timeoutSeconds/],
  ])('GIVEN %j WHEN built THEN it throws naming the setting', (settings, message) => {
    expect(() => build(settings)).toThrow(message);
  });
});
