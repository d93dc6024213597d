// `npm run local`: the whole pipeline on this machine, from the state machine definition that
// `cdktf synth` wrote, against a real OpenSSH sshd and a real S3-compatible server on 127.0.0.1.
//
// - Each `ecs:runTask.sync` state is handled by spawning the image's entrypoint
//   (node images/<image>/dist/main.js) with the task definition's environment (as synthesized, with
//   local stand-ins for Terraform references and the injected secret) plus EXACTLY the container-override
//   environment the state computed. Exit 0 = task succeeded; otherwise the state fails with
//   States.TaskFailed and a cause shaped like the stopped task ECS reports.
// - `aws-sdk:s3:getObject` runs against the S3 server; the ingest lock's DynamoDB calls and
//   `sfn:describeExecution` run against in-memory stand-ins with the same conditional semantics.
// - aws-local-stepfunctions does not implement ItemReader, ItemBatcher or ResultWriter. Each Distributed
//   Map is split into a reader step (reads the manifest or lists the prefix in the S3 server, applies
//   ItemSelector and ItemBatcher as Step Functions documents them) and an inline Map that runs the
//   map's own ItemProcessor on exactly those batch inputs. Tolerated failures and the map's static
//   settings are asserted on the synthesized JSON by the tests.
import { ChildProcess, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { App } from 'cdktf';
import { startS3, S3Server } from '../__tests__/support/s3rver';
import { SftpServer, startSshd } from '../__tests__/support/sshd';
import { buildInfrastructure } from '../stacks/app';
import { loadConfig } from '../stacks/config';
import { maskTerraformRefs, taskStates } from '../stacks/state-machine';

// aws-local-stepfunctions uses Promise.withResolvers (Node >= 22).
const P = Promise as unknown as { withResolvers?: () => unknown };
if (typeof P.withResolvers !== 'function') {
  P.withResolvers = function withResolvers<T>() {
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { StateMachine } = require('aws-local-stepfunctions') as typeof import('aws-local-stepfunctions');

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

export const REPO_ROOT = path.resolve(__dirname, '..', ...(path.basename(path.dirname(__dirname)) === 'dist' ? ['..'] : []));
export const CORPUS_DIR = process.env.XML_CORPUS_DIR ?? path.join(REPO_ROOT, '__tests__', 'fixtures', 'xml-corpus');
const ENTRYPOINTS: Record<string, string> = {
  converter: path.join(REPO_ROOT, 'images', 'converter', 'dist', 'main.js'),
  'sftp-lister': path.join(REPO_ROOT, 'images', 'sftp-lister', 'dist', 'main.js'),
};
const LOCAL_BUCKET = 'xml-bucket-local';
const ACCOUNT = '000000000000';
const REGION = 'us-east-1';

// ---------------------------------------------------------------------------------------------
// Reading what cdktf synthesized
// ---------------------------------------------------------------------------------------------

export interface Synthesized {
  /** The state machine definition with Terraform references masked (TF_REF_n). */
  readonly definition: JsonObject;
  /** Container environment of each task definition, by container name (references masked). */
  readonly taskEnvironment: Record<string, Record<string, string>>;
  /** Placeholder of the data bucket in the definition. */
  readonly bucketRef: string;
}

/** Synthesizes the app (the same graph as main.ts) into `outdir`. */
export function synthesize(outdir: string, imagesDir?: string): void {
  const app = new App({ outdir });
  buildInfrastructure(app, loadConfig({ env: {} }), { imagesDir });
  app.synth();
}

export function readSynthesized(outdir: string): Synthesized {
  const stack = (name: string) => JSON.parse(fs.readFileSync(path.join(outdir, 'stacks', name, 'cdk.tf.json'), 'utf8'));
  const batch = stack('batch');
  const ingest = stack('ingest');
  const machines = Object.values(batch.resource.aws_sfn_state_machine) as { definition: string }[];
  if (machines.length !== 1) throw new Error(`expected one state machine in ${outdir}/stacks/batch, found ${machines.length}`);
  const definition = JSON.parse(maskTerraformRefs(machines[0].definition).text) as JsonObject;

  const taskEnvironment: Record<string, Record<string, string>> = {};
  for (const s of [batch, ingest]) {
    for (const td of Object.values(s.resource.aws_ecs_task_definition) as { container_definitions: string }[]) {
      for (const c of JSON.parse(maskTerraformRefs(td.container_definitions).text) as { name: string; environment: { name: string; value: string }[] }[]) {
        taskEnvironment[c.name] = Object.fromEntries(c.environment.map((e) => [e.name, e.value]));
      }
    }
  }
  // The bucket is whatever the converter's BUCKET override holds.
  const converterRun = Object.values(taskStates(definition)).find((s) => containerOverride(s.Parameters as JsonObject)?.Name === 'converter');
  const bucketEntry = (containerOverride(converterRun!.Parameters as JsonObject)!.Environment as JsonObject[]).find((e) => e.Name === 'BUCKET');
  return { definition, taskEnvironment, bucketRef: String(bucketEntry!.Value) };
}

function containerOverride(parameters: JsonObject | undefined): JsonObject | undefined {
  const overrides = parameters?.Overrides as JsonObject | undefined;
  return (overrides?.ContainerOverrides as JsonObject[] | undefined)?.[0];
}

/** Replaces a placeholder string everywhere in a JSON value. */
function replaceValue(value: Json, from: string, to: string): Json {
  if (typeof value === 'string') return value.split(from).join(to);
  if (Array.isArray(value)) return value.map((v) => replaceValue(v, from, to));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceValue(v, from, to)]));
  return value;
}

// ---------------------------------------------------------------------------------------------
// The definition the local interpreter runs: Distributed Maps split into reader + inline Map
// ---------------------------------------------------------------------------------------------

export const LOCAL_READER_RESOURCE = 'arn:aws:states:::local:distributedMapItemReader';

export function localDefinition(definition: JsonObject): JsonObject {
  const rewrite = (states: Record<string, JsonObject>): Record<string, JsonObject> => {
    const out: Record<string, JsonObject> = {};
    for (const [name, state] of Object.entries(states)) {
      const processor = state.ItemProcessor as JsonObject | undefined;
      const rewrittenProcessor = processor ? { ...processor, States: rewrite(processor.States as Record<string, JsonObject>) } : undefined;
      if (state.Type === 'Map' && state.ItemReader) {
        const mapName = `${name} [items]`;
        // Reader step: same name (so every Next pointing at the map still lands here) and same Catch.
        out[name] = {
          Type: 'Task',
          Resource: LOCAL_READER_RESOURCE,
          Parameters: {
            // As a string: the interpreter would otherwise evaluate the nested templates here.
            spec: JSON.stringify({ ItemReader: state.ItemReader, ItemSelector: state.ItemSelector ?? null, ItemBatcher: state.ItemBatcher ?? null }),
            'input.$': '$',
            'context.$': '$$',
          },
          ResultPath: '$.__localBatches',
          TimeoutSeconds: 300,
          ...(state.Catch ? { Catch: state.Catch } : {}),
          Next: mapName,
        };
        // What the reader step took over (or the interpreter cannot do) leaves the map.
        const rest: JsonObject = { ...state };
        for (const field of ['ItemReader', 'ItemSelector', 'ItemBatcher', 'ResultWriter', 'ToleratedFailurePercentage', 'Label']) delete rest[field];
        out[mapName] = {
          ...rest,
          ItemsPath: '$.__localBatches',
          ItemProcessor: { ...rewrittenProcessor!, ProcessorConfig: { Mode: 'INLINE' } },
        };
      } else {
        out[name] = rewrittenProcessor ? { ...state, ItemProcessor: rewrittenProcessor } : state;
      }
    }
    return out;
  };
  return { ...definition, States: rewrite(definition.States as Record<string, JsonObject>) };
}

/** Minimal JSONPath for the ItemSelector/BatchInput templates (`$...` / `$$...`, dotted names). */
function evalPath(pathExpr: string, input: Json, context: Json): Json {
  const [root, rest] = pathExpr.startsWith('$$') ? [context, pathExpr.slice(2)] : [input, pathExpr.slice(1)];
  let v: Json = root;
  for (const part of rest.split('.').filter(Boolean)) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !(part in v)) throw new Error(`path ${pathExpr} not found`);
    v = (v as JsonObject)[part];
  }
  return v;
}

function applyTemplate(template: JsonObject, input: Json, context: Json): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(template)) {
    if (k.endsWith('.$')) out[k.slice(0, -2)] = evalPath(String(v), input, context);
    else out[k] = v && typeof v === 'object' && !Array.isArray(v) ? applyTemplate(v, input, context) : v;
  }
  return out;
}

/** ItemReader + ItemSelector + ItemBatcher, as Step Functions documents them. */
async function readItems(s3: S3Client, parameters: JsonObject): Promise<Json[]> {
  const request = JSON.parse(String(parameters.spec)) as JsonObject;
  const reader = request.ItemReader as JsonObject;
  const input = parameters.input;
  const context = parameters.context as JsonObject;
  const params = applyTemplate(reader.Parameters as JsonObject, input, context);
  let items: Json[];
  if (reader.Resource === 'arn:aws:states:::s3:getObject') {
    let body: string;
    try {
      const res = await s3.send(new GetObjectCommand({ Bucket: String(params.Bucket), Key: String(params.Key) }));
      body = await res.Body!.transformToString();
    } catch (e) {
      throw namedError('States.ItemReaderFailed', `s3:getObject ${params.Bucket}/${params.Key}: ${(e as Error).name}`);
    }
    const parsed = JSON.parse(body) as Json;
    if (!Array.isArray(parsed)) throw namedError('States.ItemReaderFailed', `${params.Key} is not a JSON array`);
    items = parsed;
  } else if (reader.Resource === 'arn:aws:states:::s3:listObjectsV2') {
    items = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: String(params.Bucket), Prefix: params.Prefix as string | undefined, ContinuationToken: token }));
      for (const o of page.Contents ?? []) items.push({ Key: o.Key!, Size: o.Size ?? 0, Etag: o.ETag ?? '', LastModified: o.LastModified?.toISOString() ?? '', StorageClass: o.StorageClass ?? 'STANDARD' });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } else {
    throw new Error(`local runner: ItemReader resource ${reader.Resource} not emulated`);
  }
  const selector = request.ItemSelector as JsonObject | null;
  const selected = selector
    ? items.map((item, index) => applyTemplate(selector, input, { ...context, Map: { Item: { Index: index, Value: item } } }))
    : items;
  const batcher = request.ItemBatcher as JsonObject | null;
  if (!batcher) return selected;
  const batchInput = batcher.BatchInput ? applyTemplate(batcher.BatchInput as JsonObject, input, context) : undefined;
  const maxItems = Number(batcher.MaxItemsPerBatch ?? Number.MAX_SAFE_INTEGER);
  const maxBytes = Number(batcher.MaxInputBytesPerBatch ?? 256 * 1024);
  const batches: Json[] = [];
  let current: Json[] = [];
  const size = (items: Json[]) => Buffer.byteLength(JSON.stringify(batchInput ? { Items: items, BatchInput: batchInput } : { Items: items }));
  for (const item of selected) {
    if (current.length > 0 && (current.length >= maxItems || size([...current, item]) > maxBytes)) {
      batches.push(batchInput ? { Items: current, BatchInput: batchInput } : { Items: current });
      current = [];
    }
    current.push(item);
  }
  if (current.length > 0) batches.push(batchInput ? { Items: current, BatchInput: batchInput } : { Items: current });
  return batches;
}

function namedError(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

// ---------------------------------------------------------------------------------------------
// Stand-ins for ECS, DynamoDB and Step Functions' own API
// ---------------------------------------------------------------------------------------------

export interface TaskRecord {
  readonly execution: string;
  readonly state: string;
  readonly container: string;
  readonly overrides: Record<string, string>;
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
  /** Set when the runner stood in a Fargate failure instead of starting the task. */
  readonly injected?: string;
}

export interface LocalWorld {
  readonly s3: S3Server;
  readonly sftp: SftpServer;
  readonly bucket: string;
  readonly tasks: TaskRecord[];
  /** Execution ARN -> status (what sfn:DescribeExecution answers). */
  readonly executions: Map<string, 'RUNNING' | 'SUCCEEDED' | 'FAILED'>;
  /** DynamoDB items by table and key JSON. */
  readonly tables: Map<string, Map<string, JsonObject>>;
  /** Hooks the tests use: called before a task process starts; may return a failure to stand in. */
  beforeTask?: (t: { execution: string; state: string; container: string; overrides: Record<string, string> }) => Promise<string | void> | string | void;
}

function dynamoValue(attr: Json): string {
  const a = attr as JsonObject;
  return String(a.S ?? a.N ?? JSON.stringify(a));
}

/** The three condition forms the definition uses: attribute_not_exists(#n), #n = :v. */
function conditionHolds(expression: string | undefined, item: JsonObject | undefined, names: JsonObject, values: JsonObject): boolean {
  if (!expression) return true;
  const resolve = (n: string) => String(names[n] ?? n);
  let m = /^attribute_not_exists\((#?\w+)\)$/.exec(expression.trim());
  if (m) return !item || !(resolve(m[1]) in item);
  m = /^(#?\w+)\s*=\s*(:\w+)$/.exec(expression.trim());
  if (m) return !!item && resolve(m[1]) in item && dynamoValue(item[resolve(m[1])]) === dynamoValue(values[m[2]]);
  throw new Error(`local runner: condition expression "${expression}" not emulated`);
}

function dynamo(world: LocalWorld, action: string, p: JsonObject): Json {
  const table = world.tables.get(String(p.TableName)) ?? new Map<string, JsonObject>();
  world.tables.set(String(p.TableName), table);
  const keyOf = (item: JsonObject) => JSON.stringify(Object.entries(item).filter(([k]) => k === 'lock').map(([k, v]) => [k, dynamoValue(v)]));
  const names = (p.ExpressionAttributeNames ?? {}) as JsonObject;
  const values = (p.ExpressionAttributeValues ?? {}) as JsonObject;
  if (action === 'putItem') {
    const key = keyOf(p.Item as JsonObject);
    if (!conditionHolds(p.ConditionExpression as string | undefined, table.get(key), names, values)) throw namedError('DynamoDB.ConditionalCheckFailedException', 'The conditional request failed');
    table.set(key, p.Item as JsonObject);
    return {};
  }
  const key = keyOf(p.Key as JsonObject);
  if (action === 'getItem') return table.has(key) ? { Item: table.get(key)! } : {};
  if (action === 'deleteItem') {
    if (!conditionHolds(p.ConditionExpression as string | undefined, table.get(key), names, values)) throw namedError('DynamoDB.ConditionalCheckFailedException', 'The conditional request failed');
    table.delete(key);
    return {};
  }
  throw new Error(`local runner: dynamodb:${action} not emulated`);
}

/** The environment a container of this task definition would see, with local stand-ins. */
function containerEnvironment(world: LocalWorld, synthesized: Synthesized, container: string, overrides: Record<string, string>, tmp: string): Record<string, string> {
  const fromTaskDefinition = { ...synthesized.taskEnvironment[container] };
  if (container === 'sftp-lister') {
    // Terraform references (the SFTP endpoint, its host key) stand for the local sshd.
    Object.assign(fromTaskDefinition, {
      SFTP_HOST: world.sftp.host,
      SFTP_PORT: String(world.sftp.port),
      SFTP_USER: world.sftp.user,
      SFTP_HOST_KEY_FINGERPRINTS: world.sftp.hostKeyFingerprint,
      // ECS injects this from Secrets Manager (the task definition's `secrets`).
      SFTP_PRIVATE_KEY: world.sftp.privateKey,
    });
  }
  for (const [k, v] of Object.entries(fromTaskDefinition)) {
    if (v.includes('TF_REF_')) throw new Error(`local runner: ${container} env ${k} is a Terraform reference with no local stand-in`);
  }
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: tmp,
    ...fromTaskDefinition,
    // The task's ephemeral /tmp volume.
    TMPDIR: tmp,
    // What the task role's credentials and the VPC endpoint are in AWS.
    ...world.s3.env,
    ...overrides,
  };
}

function runProcess(entrypoint: string, env: Record<string, string>, cwd: string): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [entrypoint], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

function handlersFor(world: LocalWorld, synthesized: Synthesized, definition: JsonObject, executionArn: () => string) {
  const s3 = world.s3.client();
  const handlers: Record<string, (input: Json) => Promise<Json>> = {};
  for (const [name, state] of Object.entries(taskStates(definition))) {
    const resource = String(state.Resource);
    if (resource === 'arn:aws:states:::ecs:runTask.sync') {
      handlers[name] = async (input) => {
        const override = containerOverride(input as JsonObject);
        const container = String(override?.Name);
        const entrypoint = ENTRYPOINTS[container];
        if (!entrypoint) throw new Error(`local runner: no image for container ${container}`);
        if (!fs.existsSync(entrypoint)) throw new Error(`local runner: ${entrypoint} is missing; run npm run build:images`);
        // Exactly the environment the state computed.
        const overrides = Object.fromEntries(((override!.Environment ?? []) as JsonObject[]).map((e) => [String(e.Name), String(e.Value)]));
        const injected = await world.beforeTask?.({ execution: executionArn(), state: name, container, overrides });
        const started = Date.now();
        if (injected) {
          // A Fargate failure stood in (e.g. Spot reclaim before start): the task stops with no exit code.
          world.tasks.push({ execution: executionArn(), state: name, container, overrides, exitCode: null, stdout: '', stderr: '', seconds: 0, injected });
          throw namedError('States.TaskFailed', JSON.stringify({ Containers: [{ Name: container, LastStatus: 'STOPPED', Reason: injected }], LastStatus: 'STOPPED', StopCode: 'TaskFailedToStart', StoppedReason: injected }));
        }
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `task-${container}-`));
        try {
          const result = await runProcess(entrypoint, containerEnvironment(world, synthesized, container, overrides, tmp), tmp);
          world.tasks.push({ execution: executionArn(), state: name, container, overrides, exitCode: result.code, stdout: result.stdout, stderr: result.stderr, seconds: (Date.now() - started) / 1000 });
          const task = {
            Containers: [{ Name: container, ExitCode: result.code, LastStatus: 'STOPPED' }],
            LastStatus: 'STOPPED',
            StopCode: 'EssentialContainerExited',
            StoppedReason: 'Essential container in task exited',
          };
          if (result.code === 0) return task;
          throw namedError('States.TaskFailed', JSON.stringify(task));
        } finally {
          fs.rmSync(tmp, { recursive: true, force: true });
        }
      };
    } else if (resource === 'arn:aws:states:::aws-sdk:s3:getObject') {
      handlers[name] = async (input) => {
        const p = input as JsonObject;
        try {
          const res = await s3.send(new GetObjectCommand({ Bucket: String(p.Bucket), Key: String(p.Key) }));
          return { Body: await res.Body!.transformToString(), ContentLength: res.ContentLength ?? 0, ContentType: res.ContentType ?? '' };
        } catch (e) {
          throw namedError(`S3.${(e as Error).name === 'NoSuchKey' ? 'NoSuchKeyException' : 'S3Exception'}`, (e as Error).message);
        }
      };
    } else if (resource.startsWith('arn:aws:states:::dynamodb:')) {
      const action = resource.slice('arn:aws:states:::dynamodb:'.length);
      handlers[name] = async (input) => dynamo(world, action, input as JsonObject);
    } else if (resource === 'arn:aws:states:::aws-sdk:sfn:describeExecution') {
      handlers[name] = async (input) => {
        const arn = String((input as JsonObject).ExecutionArn);
        const status = world.executions.get(arn);
        if (!status) throw namedError('Sfn.ExecutionDoesNotExistException', `Execution does not exist: ${arn}`);
        return { ExecutionArn: arn, Status: status };
      };
    } else if (resource === LOCAL_READER_RESOURCE) {
      handlers[name] = async (input) => readItems(s3, input as JsonObject);
    } else {
      throw new Error(`local runner: Task state "${name}" (${resource}) has no local handler`);
    }
  }
  return handlers;
}

// ---------------------------------------------------------------------------------------------
// Executions
// ---------------------------------------------------------------------------------------------

export interface ExecutionResult {
  readonly name: string;
  readonly arn: string;
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly output?: Json;
  readonly error?: string;
  readonly cause?: string;
}

export class LocalPipeline {
  private readonly definition: JsonObject;
  private counter = 0;

  constructor(readonly world: LocalWorld, readonly synthesized: Synthesized) {
    this.definition = localDefinition(replaceValue(synthesized.definition, synthesized.bucketRef, world.bucket) as JsonObject);
  }

  /** Starts one execution, as StartExecution would. */
  async execute(input: Json, name = `local-${++this.counter}-${crypto.randomBytes(3).toString('hex')}`): Promise<ExecutionResult> {
    const stateMachineArn = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:local-pipeline`;
    const arn = `arn:aws:states:${REGION}:${ACCOUNT}:execution:local-pipeline:${name}`;
    this.world.executions.set(arn, 'RUNNING');
    const machine = new StateMachine(this.definition as never, { validationOptions: { checkArn: false } });
    const waits: Record<string, number> = {};
    const retries: Record<string, number> = {};
    for (const [n, s] of Object.entries(taskStates(this.definition))) if (s.Retry) retries[n] = 0;
    const walkWaits = (states: Record<string, JsonObject>) => {
      for (const [n, s] of Object.entries(states)) {
        if (s.Type === 'Wait') waits[n] = 0; // back-off delays are not what this run proves
        if (s.ItemProcessor) walkWaits((s.ItemProcessor as JsonObject).States as Record<string, JsonObject>);
      }
    };
    walkWaits(this.definition.States as Record<string, JsonObject>);
    const execution = machine.run(input as never, {
      overrides: {
        taskResourceLocalHandlers: handlersFor(this.world, this.synthesized, this.definition, () => arn) as never,
        waitTimeOverrides: waits,
        retryIntervalOverrides: retries,
      },
      context: {
        Execution: { Id: arn, Name: name, Input: input, StartTime: new Date().toISOString(), RoleArn: `arn:aws:iam::${ACCOUNT}:role/local` },
        StateMachine: { Id: stateMachineArn, Name: 'local-pipeline' },
      } as never,
    });
    try {
      const output = (await execution.result) as Json;
      this.world.executions.set(arn, 'SUCCEEDED');
      return { name, arn, status: 'SUCCEEDED', output };
    } catch (e) {
      this.world.executions.set(arn, 'FAILED');
      const err = e as Error & { cause?: unknown };
      const inner = (err.cause ?? err) as Error;
      return { name, arn, status: 'FAILED', error: inner.name, cause: inner.message };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The demonstration `npm run local` runs (and the test asserts)
// ---------------------------------------------------------------------------------------------

export interface SampleFile {
  readonly name: string;
  readonly source: string;
  /** Expected JSON (lab format) when it must convert; undefined when it must be reported malformed. */
  readonly expected?: string;
}

/** The lab's two samples, three more valid cases and one malformed document from the corpus. */
export function sampleFiles(corpus = CORPUS_DIR): SampleFile[] {
  const valid = (dir: string, base: string): SampleFile => ({
    name: `${base}.xml`,
    source: path.join(corpus, dir, `${base}.xml`),
    expected: fs.readFileSync(path.join(corpus, dir, `${base}.expected.json`), 'utf8'),
  });
  return [
    valid('lab', 'customer'),
    valid('lab', 'plane'),
    valid('valid', 'attributes'),
    valid('valid', 'repeated_noncontiguous'),
    valid('valid', 'unicode_text'),
    { name: 'mismatched_tag.xml', source: path.join(corpus, 'invalid', 'mismatched_tag.xml') },
  ];
}

export interface Outcome {
  readonly key: string;
  readonly status: 'converted' | 'failed';
  readonly output?: string;
  readonly error?: string;
}

/** Flattens an execution's batch results into one outcome per key. */
export function outcomes(output: Json): Outcome[] {
  // {batches: [...]} (keys, manifest) or the map's array itself (prefix: ResultWriter in AWS).
  const batches = (Array.isArray(output) ? output : ((output as JsonObject)?.batches ?? [])) as JsonObject[];
  const out: Outcome[] = [];
  for (const b of batches) {
    for (const c of (b.converted ?? []) as JsonObject[]) out.push({ key: String(c.key), status: 'converted', output: String(c.output) });
    for (const f of (b.failed ?? []) as JsonObject[]) out.push({ key: String(f.key), status: 'failed', error: String(f.error) });
    if (b.batchError) {
      const e = b.batchError as JsonObject;
      for (const k of (b.failedKeys ?? []) as string[]) out.push({ key: k, status: 'failed', error: `${e.Error}: ${String(e.Cause).slice(0, 200)}` });
    }
  }
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

export interface Session {
  readonly world: LocalWorld;
  readonly pipeline: LocalPipeline;
  close(): Promise<void>;
}

/** Starts sshd + S3 server and a pipeline over the definition synthesized into `outdir`. */
export async function openSession(outdir: string): Promise<Session> {
  const synthesized = readSynthesized(outdir);
  const sftp = await startSshd();
  let s3: S3Server | undefined;
  try {
    s3 = await startS3([LOCAL_BUCKET]);
  } catch (e) {
    await sftp.stop();
    throw e;
  }
  const world: LocalWorld = { s3, sftp, bucket: LOCAL_BUCKET, tasks: [], executions: new Map(), tables: new Map() };
  return {
    world,
    pipeline: new LocalPipeline(world, synthesized),
    async close() {
      await s3!.dispose();
      await sftp.stop();
    },
  };
}

/** Puts files in the SFTP folder, dated `ageSeconds` ago (the lister leaves files younger than MIN_AGE_SECONDS). */
export function uploadToSftp(sftp: SftpServer, files: { name: string; source: string }[], ageSeconds = 600): void {
  const when = new Date(Date.now() - ageSeconds * 1000);
  for (const f of files) {
    const dest = path.join(sftp.root, f.name);
    fs.copyFileSync(f.source, dest);
    fs.utimesSync(dest, when, when);
  }
}

async function main(): Promise<number> {
  const outdir = path.resolve(process.env.CDKTF_OUTDIR ?? path.join(REPO_ROOT, 'cdktf.out'));
  for (const [name, entry] of Object.entries(ENTRYPOINTS)) {
    if (!fs.existsSync(entry)) {
      console.error(`missing ${entry} (image ${name}): run npm run build:images`);
      return 2;
    }
  }
  console.log(`synthesizing into ${path.relative(process.cwd(), outdir) || outdir}`);
  synthesize(outdir, process.env.LOCAL_IMAGES_DIR);
  return (await demo(outdir)) ? 0 : 1;
}

/**
 * The demonstration: two overlapping scheduled runs, a third with nothing new, contract 1 and a prefix
 * run, each file's outcome printed. True when every check held (the lab's samples byte-identical, the
 * malformed file failed, the young file left, the overlapping run skipped...).
 */
export async function demo(outdir: string, log: (line: string) => void = (l) => console.log(l)): Promise<boolean> {
  const session = await openSession(outdir);
  const { world, pipeline } = session;
  log(`state machine: ${path.relative(process.cwd(), path.join(outdir, 'stacks', 'batch', 'cdk.tf.json'))} (aws_sfn_state_machine.definition)`);
  let ok = true;
  try {
    const samples = sampleFiles();
    log(`sshd on ${world.sftp.host}:${world.sftp.port} (${world.sftp.hostKeyFingerprint}), S3 server on ${world.s3.endpoint}`);
    uploadToSftp(world.sftp, samples);
    fs.writeFileSync(path.join(world.sftp.root, 'still-uploading.xml'), '<a>young</a>');
    log(`SFTP folder: ${samples.map((s) => s.name).join(', ')} + still-uploading.xml (too young to ingest)`);

    // 1. The schedule: {"ingest": ...}. A second, overlapping scheduled run starts while the first
    //    holds the lock; it must skip, so no file is ever ingested or converted twice at once.
    let overlap: Promise<ExecutionResult> | undefined;
    world.beforeTask = ({ container }) => {
      if (container === 'sftp-lister' && !overlap) overlap = pipeline.execute({ ingest: { source: 'schedule' } }, 'scheduled-2');
    };
    const first = await pipeline.execute({ ingest: { source: 'schedule' } }, 'scheduled-1');
    const second = await overlap!;
    world.beforeTask = undefined;
    log(`\nscheduled run 1: ${first.status}${first.error ? ` ${first.error}: ${first.cause}` : ''}`);
    if (process.env.LOCAL_DEBUG) for (const t of world.tasks) log([t.container, t.exitCode, t.stdout.slice(-800), t.stderr.slice(-800)].join(' '));
    log(`scheduled run 2 (overlapping): ${second.status}, ${second.output && (second.output as JsonObject).lock ? `skipped: lock held by ${((second.output as JsonObject).lock as JsonObject).holder}` : 'NOT skipped'}`);
    ok &&= first.status === 'FAILED' || first.status === 'SUCCEEDED';
    ok &&= !!(second.output as JsonObject | undefined)?.lock;

    const results = outcomes(first.output ?? null);
    log('\nper-file outcome (scheduled run 1):');
    for (const sample of samples) {
      const key = `incoming/${sample.name}`;
      const o = results.find((r) => r.key === key);
      let verdict: string;
      if (!o) verdict = 'MISSING from the execution output';
      else if (sample.expected === undefined) verdict = o.status === 'failed' ? `failed as expected: ${o.error}` : 'CONVERTED but is malformed';
      else if (o.status !== 'converted') verdict = `FAILED: ${o.error}`;
      else {
        const body = (await world.s3.get(world.bucket, o.output!)).toString('utf8');
        verdict = body === sample.expected ? `converted -> ${o.output} (identical to the lab's expected output)` : `converted -> ${o.output} but DIFFERS from the expected output`;
      }
      ok &&= /^(converted ->.*identical|failed as expected)/.test(verdict);
      log(`  ${key.padEnd(36)} ${verdict}`);
    }
    const young = results.some((r) => r.key.endsWith('still-uploading.xml'));
    log(`  ${'incoming/still-uploading.xml'.padEnd(36)} ${young ? 'INGESTED although too young' : 'left on SFTP for a later run (too young)'}`);
    ok &&= !young;
    const tasks1 = world.tasks.filter((t) => t.execution === first.arn);
    log(`  tasks: ${tasks1.filter((t) => t.container === 'sftp-lister').length} lister, ${tasks1.filter((t) => t.container === 'converter').length} converter (batches of up to 50 keys)`);

    // 2. The next scheduled run finds nothing new.
    const next = await pipeline.execute({ ingest: { source: 'schedule' } }, 'scheduled-3');
    log(`\nscheduled run 3: ${next.status}, ${outcomes(next.output ?? null).length} files converted (nothing new on SFTP)`);
    ok &&= next.status === 'SUCCEEDED' && outcomes(next.output ?? null).length === 0;

    // 3. Contract 1, the lab's: a JSON array of keys.
    const keys = samples.filter((s) => s.name.startsWith('customer') || s.name.startsWith('plane') || s.name.startsWith('mismatched')).map((s) => `incoming/${s.name}`);
    const lab = await pipeline.execute(keys, 'lab-contract');
    log(`\ncontract 1 ${JSON.stringify(keys)}: ${lab.status}${lab.error ? ` ${lab.error}: ${lab.cause}` : ''}`);
    for (const o of outcomes(lab.output ?? null)) log(`  ${o.key.padEnd(36)} ${o.status}${o.error ? `: ${o.error}` : ` -> ${o.output}`}`);
    ok &&= lab.status === 'SUCCEEDED' && outcomes(lab.output ?? null).length === keys.length;

    // 4. Contract 2: a prefix.
    const prefix = await pipeline.execute({ prefix: 'incoming/' }, 'prefix-contract');
    const prefixOutcomes = outcomes(prefix.output ?? null);
    log(`\ncontract 2 {"prefix": "incoming/"}: ${prefix.status}, ${prefixOutcomes.filter((o) => o.status === 'converted').length} converted, ${prefixOutcomes.filter((o) => o.status === 'failed').length} failed${prefix.error ? ` ${prefix.error}: ${prefix.cause}` : ''}`);
    ok &&= prefix.status === 'SUCCEEDED' && prefixOutcomes.length === samples.length;

    log('\ntasks (container-override environment as the state computed it; exit code):');
    for (const t of world.tasks) {
      const env = Object.entries(t.overrides).map(([k, v]) => `${k}=${v.length > 90 ? `${v.slice(0, 87)}...` : v}`).join(' ');
      log(`  ${t.execution.split(':').pop()!.padEnd(16)} ${t.container.padEnd(11)} exit ${String(t.exitCode).padEnd(4)} ${t.seconds.toFixed(1)}s  ${env}`);
    }
    log(`\n${ok ? 'OK' : 'FAILED'}: ${world.tasks.length} tasks run in all`);
    return ok;
  } finally {
    await session.close();
  }
}

if (require.main === module) {
  // The SDK's notice about Node 22 is noise in this report (the images pin their own Node).
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    if (!/NodeVersionSupportWarning/.test(`${w.name} ${w.message}`)) console.warn(`${w.name}: ${w.message}`);
  });
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.stack : err);
      process.exit(1);
    },
  );
}
