// The definition builder on its own: settings validated early, structure of each path, asl-validator.
import { buildDefinition, CONVERTER_MALFORMED_EXIT, KEY_OUTSIDE_INPUT, maskTerraformRefs, PREFIX_OUTSIDE_INPUT, PipelineDefinitionProps, processorStateNames, STATE, taskStates } from '../stacks/state-machine';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const aslValidator = require('asl-validator') as (d: unknown) => { isValid: boolean; errorsText: (sep?: string) => string };

const task = (family: string) => ({
  taskDefinitionArn: `arn:aws:ecs:eu-west-1:123456789012:task-definition/${family}`,
  containerName: family,
  subnetIds: ['subnet-a', 'subnet-b'],
  securityGroupIds: ['sg-1'],
});
const base: PipelineDefinitionProps = {
  clusterArn: 'arn:aws:ecs:eu-west-1:123456789012:cluster/c',
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
  const d = buildDefinition(base) as any;

  test('GIVEN defaults WHEN built THEN the definition is valid ASL with unique state names', () => {
    const result = aslValidator(structuredClone(d)); // the validator annotates what it is given
    expect({ valid: result.isValid, errors: result.errorsText('\n') }).toEqual({ valid: true, errors: '' });
    const names = allStateNames(d.States);
    expect(new Set(names).size).toBe(names.length);
  });

  test('THEN the input is routed by shape, with presence tested before type (a type test on a missing path fails the execution)', () => {
    const route = d.States[STATE.route];
    expect(route.Choices.map((c: any) => c.Next)).toEqual([STATE.acquireLock, STATE.convertManifest, STATE.prefixAllowed, STATE.checkKeys]);
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
    expect(d.States[STATE.route].Choices.map((c: any) => c.Next).slice(2)).toEqual([STATE.prefixAllowed, STATE.checkKeys]);
    expect(d.States[STATE.checkKeys]).toMatchObject({ Type: 'Map', ItemsPath: '$', ResultPath: null, Next: STATE.partitionKeys });
    const keyStates = d.States[STATE.checkKeys].ItemProcessor.States;
    expect(keyStates[STATE.keyAllowed].Choices[0].And).toEqual([{ Variable: '$', IsString: true }, { Variable: '$', StringMatches: 'incoming/*' }]);
    expect(keyStates[STATE.keyRejected]).toEqual({ Type: 'Fail', Error: KEY_OUTSIDE_INPUT, CausePath: '$.cause' });
    expect(d.States[STATE.prefixRejected]).toEqual({ Type: 'Fail', Error: PREFIX_OUTSIDE_INPUT, CausePath: '$.cause' });
    const odd = buildDefinition({ ...base, inputPrefixes: ['incoming/', "it's{a}*star/"] }) as any;
    expect(odd.States[STATE.prefixAllowed].Choices[0].And[1].Or[1]).toEqual({ Variable: '$.prefix', StringMatches: "it's{a}\\*star/*" });
    expect(odd.States[STATE.describeRejectedPrefix].Parameters['cause.$']).toContain("(incoming/, it\\'s\\{a\\}*star/)");
    expect(aslValidator(structuredClone(odd)).isValid).toBe(true);
  });

  test('THEN a task failure with the malformed-input exit code is not re-run, others are re-run after a jittered wait', () => {
    const n = processorStateNames('keys');
    const states = d.States[STATE.convertKeys].ItemProcessor.States;
    const classify = states[n.classify];
    expect(classify.Choices[0]).toEqual({
      Or: [
        { Variable: '$.taskError.Cause', StringMatches: `*"ExitCode":${CONVERTER_MALFORMED_EXIT},*` },
        { Variable: '$.taskError.Cause', StringMatches: `*"ExitCode":${CONVERTER_MALFORMED_EXIT}}*` },
      ],
      Next: n.read,
    });
    expect(classify.Choices[1]).toEqual({ Variable: '$.attempt', NumericLessThan: 2, Next: n.backoff });
    // out of attempts: report the last run's per-key summary if it wrote one, else the batch as failed
    expect(classify.Default).toBe(n.read);
    expect(states[n.read].Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.readError', Next: n.noSummary }]);
    expect(states[n.noSummary].Choices).toEqual([{ Variable: '$.taskError', IsPresent: true, Next: n.failed }]);
    expect(states[n.backoff].Parameters['waitSeconds.$']).toBe('States.MathRandom(1, States.ArrayGetItem(States.Array(15, 60, 240), $.attempt))');
    expect(states[n.wait]).toEqual({ Type: 'Wait', SecondsPath: '$.waitSeconds', Next: n.run });
  });

  test('THEN every converter task gets its keys as S3PATHS and a per-batch RESULT_KEY under the results prefix', () => {
    for (const v of ['keys', 'prefix', 'manifest'] as const) {
      const n = processorStateNames(v);
      const processor = (v === 'keys' ? d.States[STATE.convertKeys] : d.States[v === 'prefix' ? STATE.convertPrefix : STATE.convertManifest]).ItemProcessor;
      expect(processor.States[n.prepare].Parameters['resultKey.$']).toMatch(/^States\.Format\('results\/\{\}\/\{\}\.json', \$\.(execution|BatchInput\.execution), States\.UUID\(\)\)$/);
      expect(processor.States[n.prepare].Parameters['keys.$']).toBe(v === 'keys' ? '$.keys' : '$.Items[*].Key');
      expect(processor.States[n.read]).toMatchObject({ Resource: 'arn:aws:states:::aws-sdk:s3:getObject', Parameters: { Bucket: 'data-bucket', 'Key.$': '$.resultKey' } });
    }
  });

  test('THEN the ingest path takes a lock, runs the lister, converts its manifest and always releases the lock', () => {
    expect(d.States[STATE.acquireLock]).toMatchObject({ Resource: 'arn:aws:states:::dynamodb:putItem', Parameters: { ConditionExpression: 'attribute_not_exists(#lock)' }, Next: STATE.runLister });
    expect(d.States[STATE.runLister].Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.ingestError', Next: STATE.locateManifest }]);
    expect(d.States[STATE.locateManifest].Next).toBe(STATE.convertManifest);
    expect(d.States[STATE.convertManifest].Catch[0].Next).toBe(STATE.afterIngestConvert);
    const after = d.States[STATE.afterIngestConvert].Choices.map((c: any) => c.Next);
    expect(after).toEqual([STATE.releaseLockOnFailure, STATE.releaseLockOnFailure, STATE.releaseLock, STATE.convertFailed]);
    for (const release of [STATE.releaseLock, STATE.releaseLockOnFailure]) {
      expect(d.States[release].Parameters.ConditionExpression).toBe('#holder = :me');
    }
  });

  test('THEN no task state relies on the default 60 s task timeout', () => {
    for (const [name, s] of Object.entries(taskStates(d))) {
      if (String(s.Resource).includes('ecs:runTask')) expect([name, s.TimeoutSeconds]).toEqual([name, 3600]);
    }
  });

  test.each([
    [{ batchSize: 0 }, /batchSize must be an integer from 1 to 512, got 0/],
    [{ batchSize: 300, maxBatchBytes: 3000 }, /batchSize must be an integer from 1 to 250, got 300/],
    [{ maxBatchBytes: 9000 }, /maxBatchBytes must be an integer from 256 to 7168/],
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

describe('maskTerraformRefs', () => {
  test('GIVEN expressions with quotes and braces WHEN masked THEN the JSON parses and equal expressions share a placeholder', () => {
    const text = JSON.stringify({ a: '${aws_s3_bucket.b.id}', b: 'x-${try(regex("SHA256:[A-Z]{43}", var.k), "")}', c: '${aws_s3_bucket.b.id}/k' })
      .replace(/\\"/g, '"'); // as cdktf writes references: raw, unescaped inside the string
    const masked = maskTerraformRefs(text);
    expect(JSON.parse(masked.text)).toEqual({ a: 'TF_REF_0', b: 'x-TF_REF_1', c: 'TF_REF_0/k' });
    expect(masked.refs.TF_REF_1).toBe('${try(regex("SHA256:[A-Z]{43}", var.k), "")}');
  });
});
