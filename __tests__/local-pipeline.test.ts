// The whole pipeline, locally: the state machine definition synthesized by cdktf runs in
// aws-local-stepfunctions; each ecs:runTask.sync state spawns the image's real entrypoint with the
// container-override environment the state computed, against a real sshd and S3-compatible server.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { demo, outcomes, openSession, sampleFiles, Session, synthesize, uploadToSftp } from '../scripts/local-pipeline';
import { KEY_OUTSIDE_INPUT, PREFIX_OUTSIDE_INPUT, processorStateNames, STATE } from '../stacks/state-machine';
import { makeImagesDir } from './stacks/synth';

jest.setTimeout(300_000);

const samples = sampleFiles();
const expectedOf = (name: string) => samples.find((s) => s.name === name)!.expected!;
let session: Session;
let outdir: string;

beforeAll(async () => {
  for (const image of ['converter', 'sftp-lister']) {
    const entry = path.resolve(__dirname, '..', 'images', image, 'dist', 'main.js');
    if (!fs.existsSync(entry)) throw new Error(`${entry} missing: npm ci builds the images (npm run build:images)`);
  }
  outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'h4-local-'));
  // The same app graph as main.ts; image build contexts only feed image tags, not the definition.
  synthesize(outdir, makeImagesDir());
  session = await openSession(outdir);
});

afterAll(async () => {
  await session?.close();
  if (outdir) fs.rmSync(outdir, { recursive: true, force: true });
});

const tasksOf = (arn: string, container?: string) => session.world.tasks.filter((t) => t.execution === arn && (!container || t.container === container));

describe('the schedule: {"ingest": ...} ingests new SFTP files and converts them', () => {
  let first: Awaited<ReturnType<Session['pipeline']['execute']>>;
  let second: typeof first;

  beforeAll(async () => {
    const { world, pipeline } = session;
    uploadToSftp(world.sftp, samples);
    fs.writeFileSync(path.join(world.sftp.root, 'still-uploading.xml'), '<a>young</a>');
    // A second scheduled run starts while the first is running its lister.
    let overlap: Promise<typeof first> | undefined;
    world.beforeTask = ({ container }) => {
      if (container === 'sftp-lister' && !overlap) overlap = pipeline.execute({ ingest: { source: 'schedule' } }, 'overlapping-run');
    };
    first = await pipeline.execute({ ingest: { source: 'schedule' } }, 'scheduled-run');
    second = await overlap!;
    world.beforeTask = undefined;
  });

  test("GIVEN the lab samples WHEN the scheduled run ends THEN their JSON in S3 is byte-identical to the lab's expected output", async () => {
    expect(first.status).toBe('SUCCEEDED');
    for (const name of ['customer.xml', 'plane.xml', 'attributes.xml', 'repeated_noncontiguous.xml', 'unicode_text.xml']) {
      const body = await session.world.s3.get(session.world.bucket, `json/incoming/${name}.json`);
      expect(body.toString('utf8')).toBe(expectedOf(name));
    }
  });

  test('THEN the execution output lists every converted key and the malformed one with its reason, and no output exists for it', async () => {
    const result = await outcomes(session.world, first.output);
    expect(result.filter((o) => o.status === 'converted').map((o) => o.key)).toEqual(
      ['attributes', 'customer', 'plane', 'repeated_noncontiguous', 'unicode_text'].map((n) => `incoming/${n}.xml`),
    );
    expect(result.filter((o) => o.status === 'failed')).toEqual([
      { key: 'incoming/mismatched_tag.xml', status: 'failed', error: expect.stringMatching(/mismatched_tag\.xml:1:\d+: /) },
    ]);
    expect(await session.world.s3.keys(session.world.bucket, 'json/')).not.toContain('json/incoming/mismatched_tag.xml.json');
  });

  test('THEN every AWS call of both runs was authorized against the synthesized policies of the calling role', () => {
    const allowed = new Set(session.world.iam.log.filter((d) => d.decision === 'Allowed').map((d) => `${d.role} ${d.action}`));
    const expected = [
      // the state machine: lock, lister and converter tasks (RunTask, tag-on-create, PassRole), manifest (ItemReader),
      // map children, results (ResultWriter), the overlapping run's look at the lock holder
      ...[
        'dynamodb:PutItem',
        'dynamodb:GetItem',
        'dynamodb:DeleteItem',
        'states:DescribeExecution',
        'ecs:RunTask',
        'ecs:TagResource',
        'iam:PassRole',
        's3:GetObject',
        'states:StartExecution',
        's3:PutObject',
      ].map((a) => `batch/state-machine-role ${a}`),
      // ECS starting the tasks with their execution roles
      ...['ecr:GetAuthorizationToken', 'ecr:BatchGetImage', 'logs:PutLogEvents', 'secretsmanager:GetSecretValue'].map((a) => `ingest/execution-role ${a}`),
      'batch/execution-role ecr:BatchGetImage',
      // the images' own S3 requests, signed with their task role's key
      'ingest/task-role s3:PutObject',
      'batch/task-role s3:GetObject',
      'batch/task-role s3:PutObject',
    ];
    expect(expected.filter((c) => !allowed.has(c))).toEqual([]);
  });

  test('THEN a file still being written (too young) is left on SFTP for a later run', async () => {
    expect(await session.world.s3.keys(session.world.bucket, 'incoming/')).not.toContain('incoming/still-uploading.xml');
  });

  test('THEN one lister task ran with the manifest key of its execution, and one converter task converted its one batch manifest (no key in the environment)', async () => {
    const [lister] = tasksOf(first.arn, 'sftp-lister');
    expect(lister.overrides).toEqual({ DEST_BUCKET: session.world.bucket, DEST_PREFIX: 'incoming/', MANIFEST_KEY: 'manifests/scheduled-run.json' });
    const index = JSON.parse((await session.world.s3.get(session.world.bucket, 'manifests/scheduled-run/batches.json')).toString());
    expect(index).toEqual([{ manifest: 'manifests/scheduled-run/batches/00001.json', files: samples.length, bytes: expect.any(Number) }]);
    const converters = tasksOf(first.arn, 'converter');
    expect(converters).toHaveLength(1);
    expect(converters[0].state).toBe(processorStateNames('batches').run);
    expect(converters[0].overrides).toEqual({
      BUCKET: session.world.bucket,
      S3PATHS_MANIFEST: 'manifests/scheduled-run/batches/00001.json',
      OUTPUT_BUCKET: session.world.bucket,
      OUTPUT_PREFIX: 'json/',
      RESULT_KEY: 'results/scheduled-run/00001.json',
      RUN_ID: 'scheduled-run',
      BATCH_ID: '00001',
    });
    const batchKeys = JSON.parse((await session.world.s3.get(session.world.bucket, 'manifests/scheduled-run/batches/00001.json')).toString());
    expect(batchKeys.sort()).toEqual(samples.map((s) => `incoming/${s.name}`).sort());
    expect(converters[0].exitCode).toBe(65);
  });

  test('THEN the overlapping run found the lock held by the running one, ran no task and converted nothing', () => {
    expect(second.status).toBe('SUCCEEDED');
    expect(second.output).toMatchObject({ lock: { holder: first.arn, holderStatus: { status: 'RUNNING' } } });
    expect(tasksOf(second.arn)).toEqual([]);
  });

  test('THEN the lock is released, and the next run ingests nothing new and starts no converter', async () => {
    expect([...(session.world.tables.values().next().value?.values() ?? [])]).toEqual([]);
    const next = await session.pipeline.execute({ ingest: { source: 'schedule' } }, 'next-run');
    expect(next.status).toBe('SUCCEEDED');
    expect(await outcomes(session.world, next.output)).toEqual([]);
    expect(tasksOf(next.arn, 'sftp-lister')).toHaveLength(1);
    expect(tasksOf(next.arn, 'converter')).toHaveLength(0);
    expect(JSON.parse((await session.world.s3.get(session.world.bucket, 'manifests/next-run.json')).toString())).toEqual([]);
  });

  test('GIVEN a lock left by an execution that is no longer running WHEN the schedule runs THEN it takes the lock over', async () => {
    const stale = `${session.synthesized.stateMachine.arn.replace(':stateMachine:', ':execution:')}:crashed`;
    session.world.executions.set(stale, 'FAILED');
    const table = [...session.world.tables.keys()][0];
    session.world.tables.get(table)!.set(JSON.stringify([['lock', 'ingest']]), { lock: { S: 'ingest' }, holder: { S: stale } });
    const run = await session.pipeline.execute({ ingest: {} }, 'after-crash');
    expect(run.status).toBe('SUCCEEDED');
    expect(tasksOf(run.arn, 'sftp-lister')).toHaveLength(1);
    expect(session.world.tables.get(table)!.size).toBe(0);
  });

  test('GIVEN an ingest execution named "failed" (its manifests would land where replays look for failed keys) WHEN it starts THEN it fails with ReservedExecutionName before the lock or any task', async () => {
    const run = await session.pipeline.execute({ ingest: {} }, 'failed');
    expect(run.status).toBe('FAILED');
    expect(run.error).toBe('ReservedExecutionName');
    expect(run.cause).toMatch(/must not be named "failed".*manifests\/failed\//);
    expect(tasksOf(run.arn)).toEqual([]);
    expect(session.world.tables.get([...session.world.tables.keys()][0])!.size).toBe(0);
    expect(await session.world.s3.keys(session.world.bucket, 'manifests/failed/batches')).toEqual([]);
  });
});

describe("contract 1 (the lab's): a JSON array of keys", () => {
  const copies = Array.from({ length: 14 }, (_, i) => `incoming/lab/copy-${String(i).padStart(2, '0')}.xml`);

  beforeAll(async () => {
    const customer = fs.readFileSync(samples.find((s) => s.name === 'customer.xml')!.source);
    for (const key of copies) await session.world.s3.put(session.world.bucket, key, customer);
  });

  test('GIVEN 14 keys WHEN executed THEN one converter task runs per batch of 10 and every key is converted', async () => {
    const run = await session.pipeline.execute(copies, 'lab-keys');
    expect(run.status).toBe('SUCCEEDED');
    const tasks = tasksOf(run.arn, 'converter');
    expect(tasks.map((t) => JSON.parse(t.overrides.S3PATHS).length).sort()).toEqual([10, 4]);
    expect((await outcomes(session.world, run.output)).map((o) => [o.key, o.status])).toEqual(copies.map((k) => [k, 'converted']));
    for (const key of copies) expect((await session.world.s3.get(session.world.bucket, `json/${key}.json`)).toString()).toBe(expectedOf('customer.xml'));
  });

  test('GIVEN a task that Fargate fails to start once WHEN executed THEN the batch is run again and converts', async () => {
    let failed = false;
    session.world.beforeTask = ({ container }) => {
      if (container !== 'converter' || failed) return undefined;
      failed = true;
      return 'Capacity is unavailable at this time (stood in by the local runner)';
    };
    const run = await session.pipeline.execute(copies.slice(0, 3), 'transient');
    session.world.beforeTask = undefined;
    expect(run.status).toBe('SUCCEEDED');
    const tasks = tasksOf(run.arn, 'converter');
    expect(tasks.map((t) => [t.injected ? 'injected' : 'ran', t.exitCode])).toEqual([
      ['injected', null],
      ['ran', 0],
    ]);
    // the rerun is the same batch: same keys, same result key
    expect(tasks[1].overrides).toEqual(tasks[0].overrides);
    expect((await outcomes(session.world, run.output)).filter((o) => o.status === 'converted')).toHaveLength(3);
  });

  test('GIVEN a task that fails on every attempt WHEN executed THEN the batch is reported failed with the reason, the execution still succeeds', async () => {
    session.world.beforeTask = ({ container }) => (container === 'converter' ? 'CannotPullContainerError: stood in' : undefined);
    const run = await session.pipeline.execute(copies.slice(0, 2), 'always-failing');
    session.world.beforeTask = undefined;
    expect(run.status).toBe('SUCCEEDED');
    expect(tasksOf(run.arn, 'converter')).toHaveLength(3); // taskAttempts default
    expect(await outcomes(session.world, run.output)).toEqual(
      copies.slice(0, 2).map((key) => ({ key, status: 'failed', error: expect.stringMatching(/^States\.TaskFailed: .*CannotPullContainerError/) })),
    );
  });

  test('GIVEN a key that does not exist WHEN executed THEN the batch is re-run (I/O error, not malformed), then its summary reports each key', async () => {
    const run = await session.pipeline.execute([copies[0], 'incoming/lab/does-not-exist.xml'], 'missing-key');
    expect(run.status).toBe('SUCCEEDED');
    expect(tasksOf(run.arn, 'converter').map((t) => t.exitCode)).toEqual([74, 74, 74]);
    expect(await outcomes(session.world, run.output)).toEqual([
      { key: copies[0], status: 'converted', output: `json/${copies[0]}.json` },
      { key: 'incoming/lab/does-not-exist.xml', status: 'failed', error: expect.stringMatching(/does-not-exist\.xml/) },
    ]);
  });

  test('GIVEN a key outside the input prefixes among good ones WHEN executed THEN the execution fails naming it and no task runs', async () => {
    await session.world.s3.put(session.world.bucket, 'lab/elsewhere.xml', '<a/>');
    const run = await session.pipeline.execute([copies[0], 'lab/elsewhere.xml', copies[1]], 'key-outside');
    expect(run).toMatchObject({
      status: 'FAILED',
      error: KEY_OUTSIDE_INPUT,
      cause: 'key "lab/elsewhere.xml" is outside the input prefixes (incoming/); nothing was converted',
    });
    expect(tasksOf(run.arn)).toEqual([]);
    expect(await session.world.s3.keys(session.world.bucket, 'json/lab/')).toEqual([]);
  });

  test('GIVEN input that is neither keys, prefix, manifest nor ingest WHEN executed THEN it fails with InvalidInput', async () => {
    const inputs: Parameters<Session['pipeline']['execute']>[0][] = [{}, [], { prefix: 3 }];
    for (const input of inputs) {
      const run = await session.pipeline.execute(input, `invalid-${Math.random().toString(36).slice(2, 8)}`);
      expect([run.status, run.error]).toEqual(['FAILED', 'InvalidInput']);
    }
  });
});

describe("contract 2: a prefix or a manifest, through the Distributed Map's item processor", () => {
  const keys = Array.from({ length: 60 }, (_, i) => `incoming/bulk/f-${String(i).padStart(3, '0')}.xml`);

  beforeAll(async () => {
    const plane = fs.readFileSync(samples.find((s) => s.name === 'plane.xml')!.source);
    for (const key of keys) await session.world.s3.put(session.world.bucket, key, plane);
    await session.world.s3.put(session.world.bucket, 'manifests/some-keys.json', JSON.stringify(keys.slice(0, 7)));
  });

  test('GIVEN 60 objects under a prefix WHEN executed THEN ItemBatcher makes batches of 50 + 10, one task each, all converted', async () => {
    const run = await session.pipeline.execute({ prefix: 'incoming/bulk/' }, 'by-prefix');
    expect(run.status).toBe('SUCCEEDED');
    const tasks = tasksOf(run.arn, 'converter');
    expect(tasks.map((t) => JSON.parse(t.overrides.S3PATHS).length).sort((a, b) => a - b)).toEqual([10, 50]);
    expect(tasks.every((t) => t.state === processorStateNames('prefix').run)).toBe(true);
    expect((await outcomes(session.world, run.output)).map((o) => o.key)).toEqual(keys);
    expect((await session.world.s3.get(session.world.bucket, 'json/incoming/bulk/f-059.xml.json')).toString()).toBe(expectedOf('plane.xml'));
  });

  test('GIVEN a prefix outside the input prefixes WHEN executed THEN the execution fails naming it and nothing is listed or run', async () => {
    for (const prefix of ['bulk/', 'json/', 'incoming', '']) {
      const run = await session.pipeline.execute({ prefix }, `prefix-outside-${prefix.replace(/\W/g, '') || 'root'}`);
      expect(run).toMatchObject({
        status: 'FAILED',
        error: PREFIX_OUTSIDE_INPUT,
        cause: `prefix ${JSON.stringify(prefix)} is outside the input prefixes (incoming/); nothing was converted`,
      });
      expect(tasksOf(run.arn)).toEqual([]);
    }
  });

  test('GIVEN a manifest object WHEN executed THEN exactly its keys are converted', async () => {
    const run = await session.pipeline.execute({ manifest: { bucket: session.world.bucket, key: 'manifests/some-keys.json' } }, 'by-manifest');
    expect(run.status).toBe('SUCCEEDED');
    expect((await outcomes(session.world, run.output)).map((o) => [o.key, o.status])).toEqual(keys.slice(0, 7).map((k) => [k, 'converted']));
    expect(tasksOf(run.arn, 'converter').map((t) => t.state)).toEqual([processorStateNames('manifest').run]);
  });

  test('GIVEN a manifest that does not exist WHEN executed THEN the execution fails with ConversionFailed naming the reader error', async () => {
    const run = await session.pipeline.execute({ manifest: { bucket: session.world.bucket, key: 'manifests/missing.json' } }, 'no-manifest');
    expect(run).toMatchObject({ status: 'FAILED', error: 'ConversionFailed', cause: expect.stringContaining('States.ItemReaderFailed') });
    expect(tasksOf(run.arn)).toEqual([]);
    // The error comes from the definition's one Fail state that raises ConversionFailed.
    const states = session.pipeline.synthesized.definition.States as Record<string, { Type?: unknown; Error?: unknown }>;
    expect(Object.keys(states).filter((n) => states[n].Type === 'Fail' && states[n].Error === 'ConversionFailed')).toEqual([STATE.convertFailedEnd]);
  });
});

describe('replay (contract C2): {"replay": "<execution name>"} converts the keys an execution failed', () => {
  const keys = ['incoming/replay/r-1.xml', 'incoming/replay/r-2.xml', 'incoming/replay/r-3.xml'];

  test("GIVEN a batch whose task never ran WHEN its execution ends THEN the state machine files the batch's keys; fixed, a replay converts exactly them", async () => {
    const customer = fs.readFileSync(samples.find((s) => s.name === 'customer.xml')!.source);
    for (const key of keys) await session.world.s3.put(session.world.bucket, key, customer);
    session.world.beforeTask = ({ container }) => (container === 'converter' ? 'CannotPullContainerError: stood in' : undefined);
    const failed = await session.pipeline.execute(keys, 'replay-source');
    session.world.beforeTask = undefined;
    expect(failed.status).toBe('SUCCEEDED');
    expect((await outcomes(session.world, failed.output)).map((o) => o.status)).toEqual(['failed', 'failed', 'failed']);
    const filed = await session.world.s3.keys(session.world.bucket, 'manifests/failed/replay-source/');
    expect(filed).toHaveLength(1);
    expect(filed[0]).toMatch(/^manifests\/failed\/replay-source\/[0-9a-f-]{36}\.json$/);
    expect(JSON.parse((await session.world.s3.get(session.world.bucket, filed[0])).toString())).toEqual(keys);

    const replay = await session.pipeline.execute({ replay: 'replay-source' }, 'replay-1');
    expect(replay.status).toBe('SUCCEEDED');
    const tasks = tasksOf(replay.arn, 'converter');
    expect(tasks.map((t) => [t.state, t.overrides.S3PATHS_MANIFEST, t.overrides.RUN_ID, t.overrides.S3PATHS, t.exitCode])).toEqual([
      [processorStateNames('replay').run, filed[0], 'replay-1', undefined, 0],
    ]);
    expect((await outcomes(session.world, replay.output)).map((o) => [o.key, o.status])).toEqual(keys.map((k) => [k, 'converted']));
    expect(await session.world.s3.keys(session.world.bucket, 'manifests/failed/replay-1/')).toEqual([]);
  });

  test('GIVEN execution names with "+" and non-ASCII letters and a replay whose task never ran WHEN it ends THEN the state machine files a reference to the batch manifest (no CopyObject); a replay of the replay follows it', async () => {
    const more = ['incoming/replay/u-1.xml', 'incoming/replay/u-2.xml'];
    const customer = fs.readFileSync(samples.find((s) => s.name === 'customer.xml')!.source);
    for (const key of more) await session.world.s3.put(session.world.bucket, key, customer);
    session.world.beforeTask = ({ container }) => (container === 'converter' ? 'CannotPullContainerError: stood in' : undefined);
    const source = await session.pipeline.execute(more, 'quelle+1-ü');
    const firstReplay = await session.pipeline.execute({ replay: 'quelle+1-ü' }, 'wieder+1-é');
    session.world.beforeTask = undefined;
    expect([source.status, firstReplay.status]).toEqual(['SUCCEEDED', 'SUCCEEDED']);
    const [sourceFiled] = await session.world.s3.keys(session.world.bucket, 'manifests/failed/quelle+1-ü/');
    const replayFiled = await session.world.s3.keys(session.world.bucket, 'manifests/failed/wieder+1-é/');
    expect(replayFiled).toEqual([`manifests/failed/wieder+1-é/${sourceFiled.slice('manifests/failed/quelle+1-ü/'.length)}`]);
    expect(JSON.parse((await session.world.s3.get(session.world.bucket, replayFiled[0])).toString())).toEqual({ manifest: sourceFiled });

    const second = await session.pipeline.execute({ replay: 'wieder+1-é' }, 'zweiter+2-ß');
    expect(second.status).toBe('SUCCEEDED');
    expect(tasksOf(second.arn, 'converter').map((t) => [t.overrides.S3PATHS_MANIFEST, t.exitCode])).toEqual([[replayFiled[0], 0]]);
    expect((await outcomes(session.world, second.output)).map((o) => [o.key, o.status])).toEqual(more.map((k) => [k, 'converted']));
  });

  test('GIVEN a malformed file WHEN converted THEN it fails and the converter files it; fixed, a replay converts it', async () => {
    const good = 'incoming/replay/m-good.xml';
    const bad = 'incoming/replay/m-bad.xml';
    await session.world.s3.put(session.world.bucket, good, fs.readFileSync(samples.find((x) => x.name === 'customer.xml')!.source));
    await session.world.s3.put(session.world.bucket, bad, fs.readFileSync(samples.find((x) => x.name === 'mismatched_tag.xml')!.source));
    const run = await session.pipeline.execute([good, bad], 'malformed-source');
    expect(run.status).toBe('SUCCEEDED');
    expect(tasksOf(run.arn, 'converter').map((t) => t.exitCode)).toEqual([65]);
    expect((await outcomes(session.world, run.output)).map((o) => [o.key, o.status])).toEqual([
      [bad, 'failed'],
      [good, 'converted'],
    ]);
    // The converter ran to its end: it filed exactly the key it failed (the state machine filed nothing).
    const filed = await session.world.s3.keys(session.world.bucket, 'manifests/failed/malformed-source/');
    expect(filed).toEqual([`manifests/failed/malformed-source/${tasksOf(run.arn, 'converter')[0].overrides.BATCH_ID}.json`]);
    expect(JSON.parse((await session.world.s3.get(session.world.bucket, filed[0])).toString())).toEqual([bad]);

    await session.world.s3.put(session.world.bucket, bad, fs.readFileSync(samples.find((x) => x.name === 'plane.xml')!.source));
    const replay = await session.pipeline.execute({ replay: 'malformed-source' }, 'replay-2');
    expect(replay.status).toBe('SUCCEEDED');
    expect((await outcomes(session.world, replay.output)).map((o) => [o.key, o.status])).toEqual([[bad, 'converted']]);
    expect((await session.world.s3.get(session.world.bucket, `json/${bad}.json`)).toString()).toBe(expectedOf('plane.xml'));
  });

  test('GIVEN an execution that failed no key WHEN replayed THEN nothing runs and the replay succeeds', async () => {
    const replay = await session.pipeline.execute({ replay: 'lab-keys' }, 'replay-nothing');
    expect(replay.status).toBe('SUCCEEDED');
    expect(tasksOf(replay.arn)).toEqual([]);
    expect(await outcomes(session.world, replay.output)).toEqual([]);
  });
});

describe('npm run local', () => {
  test('GIVEN the synthesized app WHEN the demonstration runs THEN every check holds and each lab sample is reported identical', async () => {
    const lines: string[] = [];
    const ok = await demo(outdir, (l) => lines.push(l));
    const text = lines.join('\n');
    expect(text).toMatch(/incoming\/customer\.xml +converted -> json\/incoming\/customer\.xml\.json \(identical to the lab's expected output\)/);
    expect(text).toMatch(/incoming\/plane\.xml +converted -> json\/incoming\/plane\.xml\.json \(identical to the lab's expected output\)/);
    expect(text).toMatch(/incoming\/mismatched_tag\.xml +failed as expected: .*mismatched_tag\.xml:1:\d+/);
    expect(text).toMatch(/scheduled run 2 \(overlapping\): SUCCEEDED, skipped: lock held by .*scheduled-1/);
    expect(ok).toBe(true);
  });
});
