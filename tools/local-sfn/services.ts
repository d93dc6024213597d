// Stand-ins for the services the state machine calls: ECS (RunTask .sync, the image's entrypoint run as
// a process on the image's Node release), DynamoDB (the ingest lock), S3 (aws-sdk:s3:getObject) and Step Functions' own
// DescribeExecution. Each call is authorized first, as the state machine's role, the way the service
// would: a denial fails the state with the error Step Functions reports for that integration.
import { ChildProcess, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { imageNode, isImageName } from '../servers/image-runtime';
import type { S3Server } from '../servers/s3';
import type { SftpServer } from '../servers/sshd';
import { AccessDenied, Iam } from './iam';
import type { Json, JsonObject } from './json';
import { checkPayload, MAX_ECS_OVERRIDE_CHARS } from './limits';
import type { Synthesized, TaskDefinitionModel } from './synthesized';

export function namedError(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

export interface TaskRecord {
  /** The execution the task belongs to (a Distributed Map child's parent, for the tests' grouping). */
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
  readonly iam: Iam;
  readonly tasks: TaskRecord[];
  /** Execution ARN -> status (what sfn:DescribeExecution answers). */
  readonly executions: Map<string, 'RUNNING' | 'SUCCEEDED' | 'FAILED'>;
  /** DynamoDB items by table name and key JSON. */
  readonly tables: Map<string, Map<string, JsonObject>>;
  /** Hooks the tests use: called before a task process starts; may return a failure to stand in. */
  beforeTask?: (t: { execution: string; state: string; container: string; overrides: Record<string, string> }) => Promise<string | void> | string | void;
}

/** A failed call of an integration: `<Service>.<Exception>` with AWS's message shape. */
function deniedBy(errorName: string, serviceName: string, e: unknown): never {
  if (!(e instanceof AccessDenied)) throw e;
  throw namedError(
    errorName,
    `${e.message} (Service: ${serviceName}; Status Code: 400; Error Code: AccessDeniedException; Request ID: ${crypto.randomUUID()}; Proxy: null)`,
  );
}

// ---------------------------------------------------------------------------------------------
// ECS: RunTask (.sync) with Fargate's semantics as far as a process can show them
// ---------------------------------------------------------------------------------------------

export interface EcsContext {
  readonly world: LocalWorld;
  readonly synthesized: Synthesized;
  /** The image entrypoints by container name. */
  readonly entrypoints: Record<string, string>;
  /** Local stand-ins for what Terraform computes at apply time (the SFTP endpoint...), by container. */
  readonly localEnvironment: (container: string) => Record<string, string>;
}

function findTaskDefinition(synthesized: Synthesized, ref: string): TaskDefinitionModel {
  // RunTask takes a family, family:revision, or full ARN; without a revision the latest ACTIVE one runs.
  const td = synthesized.taskDefinitions.find((t) => ref === t.family || ref === t.arnWithoutRevision || ref === t.arn || ref === `${t.family}:1`);
  if (!td) throw namedError('ECS.ClientException', `TaskDefinition not found: ${ref}`);
  return td;
}

/** The ECS API checks of RunTask, in the order AWS applies them; returns the task ARN. */
async function authorizeRunTask(ctx: EcsContext, p: JsonObject, td: TaskDefinitionModel): Promise<string> {
  const { iam } = ctx.world;
  const role = iam.role(ctx.synthesized.stateMachine.roleArn);
  const cluster = String(p.Cluster ?? 'default');
  const clusterName = cluster.split('/').pop()!;
  const taskArn = `arn:aws:ecs:${ctx.synthesized.region}:${cluster.split(':')[4]}:task/${clusterName}/${crypto.randomBytes(16).toString('hex')}`;
  try {
    // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/security_iam_id-based-policy-examples.html (ecs:cluster condition)
    await iam.require(role, 'ecs:RunTask', td.arn, { 'ecs:cluster': cluster });
    // The caller passes the task's roles to ECS.
    // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html
    for (const passed of [td.taskRoleArn, td.executionRoleArn].filter(Boolean)) {
      await iam.require(role, 'iam:PassRole', passed, { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' });
    }
    // Tags on the new task (PropagateTags TASK_DEFINITION copies the task definition's): tag-on-create
    // needs ecs:TagResource with ecs:CreateAction = RunTask.
    // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html
    const tags = {
      ...(p.PropagateTags === 'TASK_DEFINITION' ? td.tags : {}),
      ...Object.fromEntries(((p.Tags ?? []) as JsonObject[]).map((t) => [String(t.Key), String(t.Value)])),
    };
    if (Object.keys(tags).length > 0) {
      const context: Record<string, string | string[]> = { 'ecs:CreateAction': 'RunTask', 'ecs:cluster': cluster, 'aws:TagKeys': Object.keys(tags) };
      for (const [k, v] of Object.entries(tags)) context[`aws:RequestTag/${k}`] = v;
      await iam.require(role, 'ecs:TagResource', taskArn, context);
    }
  } catch (e) {
    deniedBy('ECS.AccessDeniedException', 'AmazonECS', e);
  }
  return taskArn;
}

/** What ECS does with the execution role before the container starts: pull, logs, secrets. Returns a stop reason or undefined. */
async function startContainer(
  ctx: EcsContext,
  td: TaskDefinitionModel,
  container: TaskDefinitionModel['containers'][number],
  taskArn: string,
): Promise<string | undefined> {
  const { iam } = ctx.world;
  const exec = iam.role(td.executionRoleArn);
  const repo = /^(\d+)\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com\/([^:@]+)/.exec(container.image);
  try {
    // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html
    if (repo) {
      await iam.require(exec, 'ecr:GetAuthorizationToken', '*');
      const repoArn = `arn:aws:ecr:${repo[2]}:${repo[1]}:repository/${repo[3]}`;
      for (const action of ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer']) await iam.require(exec, action, repoArn);
    }
    if (container.logGroup) {
      const stream = `arn:aws:logs:${ctx.synthesized.region}:${taskArn.split(':')[4]}:log-group:${container.logGroup}:log-stream:${container.logStreamPrefix}/${container.name}/${taskArn.split('/').pop()}`;
      for (const action of ['logs:CreateLogStream', 'logs:PutLogEvents']) await iam.require(exec, action, stream);
    }
    for (const secret of Object.values(container.secrets)) await iam.require(exec, 'secretsmanager:GetSecretValue', secret);
  } catch (e) {
    if (!(e instanceof AccessDenied)) throw e;
    // ECS reports these as a task that failed to start.
    // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/resource-initialization-error.html
    return `ResourceInitializationError: unable to pull secrets or registry auth: ${e.message}`;
  }
  return undefined;
}

function containerEnvironment(
  ctx: EcsContext,
  td: TaskDefinitionModel,
  container: TaskDefinitionModel['containers'][number],
  overrides: Record<string, string>,
  tmp: string,
): Record<string, string> {
  const local = ctx.localEnvironment(container.name);
  const fromTaskDefinition = { ...container.environment, ...local };
  for (const [k, v] of Object.entries(fromTaskDefinition)) {
    if (v.includes('<unresolved:')) throw new Error(`local runner: ${container.name} env ${k} is a Terraform expression with no local stand-in: ${v}`);
  }
  for (const k of Object.keys(container.secrets)) if (!(k in local)) throw new Error(`local runner: secret ${k} of ${container.name} has no local stand-in`);
  const taskRole = ctx.world.iam.role(td.taskRoleArn);
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: tmp,
    ...fromTaskDefinition,
    // The task's ephemeral /tmp volume.
    TMPDIR: tmp,
    // The S3 endpoint, and the task role's credentials: every S3 request the image makes is authorized
    // as this role by the S3 stand-in.
    ...ctx.world.s3.envFor(Iam.accessKeyId(taskRole)),
    ...overrides,
  };
}

function runProcess(
  container: string,
  entrypoint: string,
  env: Record<string, string>,
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // The project's images run on the Node release and with the node flags they ship.
  const [node, ...flags] = isImageName(container) ? imageNode(container) : [process.execPath];
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(node, [...flags, entrypoint], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `arn:aws:states:::ecs:runTask.sync` for one state. */
export function ecsRunTaskSync(ctx: EcsContext, stateName: string, executionArn: () => string) {
  return async (input: Json): Promise<Json> => {
    const p = input as JsonObject;
    const td = findTaskDefinition(ctx.synthesized, String(p.TaskDefinition));
    const overridesJson = JSON.stringify(p.Overrides ?? {});
    if (overridesJson.length > MAX_ECS_OVERRIDE_CHARS) {
      throw namedError('ECS.InvalidParameterException', `Container Overrides length must be at most ${MAX_ECS_OVERRIDE_CHARS} (got ${overridesJson.length})`);
    }
    const override = ((p.Overrides as JsonObject | undefined)?.ContainerOverrides as JsonObject[] | undefined)?.[0];
    const container = td.containers.find((c) => c.name === override?.Name);
    if (!container)
      throw namedError('ECS.InvalidParameterException', `Override for container named ${String(override?.Name)} is not a container in the TaskDefinition.`);
    const taskArn = await authorizeRunTask(ctx, p, td);
    const entrypoint = ctx.entrypoints[container.name];
    if (!entrypoint || !fs.existsSync(entrypoint))
      throw new Error(`local runner: no built entrypoint for container ${container.name} (${entrypoint}); run npm run build:images`);
    // Exactly the environment the state computed.
    const overrides = Object.fromEntries(((override!.Environment ?? []) as JsonObject[]).map((e) => [String(e.Name), String(e.Value)]));
    const execution = executionArn();
    const record = (r: Omit<TaskRecord, 'execution' | 'state' | 'container' | 'overrides'>) =>
      ctx.world.tasks.push({ execution, state: stateName, container: container.name, overrides, ...r });
    const stopped = (reason: string) =>
      namedError(
        'States.TaskFailed',
        JSON.stringify({
          Containers: [{ Name: container.name, LastStatus: 'STOPPED', Reason: reason }],
          LastStatus: 'STOPPED',
          StopCode: 'TaskFailedToStart',
          StoppedReason: reason,
          TaskArn: taskArn,
        }),
      );
    const injected =
      (await ctx.world.beforeTask?.({ execution, state: stateName, container: container.name, overrides })) ??
      (await startContainer(ctx, td, container, taskArn));
    if (injected) {
      // A Fargate failure (stood in, or a start the execution role could not authorize): no exit code.
      record({ exitCode: null, stdout: '', stderr: '', seconds: 0, injected });
      throw stopped(injected);
    }
    const started = Date.now();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `task-${container.name}-`));
    try {
      const result = await runProcess(container.name, entrypoint, containerEnvironment(ctx, td, container, overrides, tmp), tmp);
      record({ exitCode: result.code, stdout: result.stdout, stderr: result.stderr, seconds: (Date.now() - started) / 1000 });
      const task = {
        Containers: [{ Name: container.name, ExitCode: result.code, LastStatus: 'STOPPED' }],
        LastStatus: 'STOPPED',
        StopCode: 'EssentialContainerExited',
        StoppedReason: 'Essential container in task exited',
        TaskArn: taskArn,
      };
      if (result.code === 0) return task;
      throw namedError('States.TaskFailed', JSON.stringify(task));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  };
}

// ---------------------------------------------------------------------------------------------
// DynamoDB (optimized integration): the lock's conditional put/get/delete
// ---------------------------------------------------------------------------------------------

function dynamoValue(attr: Json): string {
  const a = attr as JsonObject;
  return String(a.S ?? a.N ?? JSON.stringify(a));
}

/** The condition forms the definition uses: attribute_not_exists(#n), #n = :v. */
function conditionHolds(expression: string | undefined, item: JsonObject | undefined, names: JsonObject, values: JsonObject): boolean {
  if (!expression) return true;
  const resolve = (n: string) => String(names[n] ?? n);
  let m = /^attribute_not_exists\((#?\w+)\)$/.exec(expression.trim());
  if (m) return !item || !(resolve(m[1]) in item);
  m = /^(#?\w+)\s*=\s*(:\w+)$/.exec(expression.trim());
  if (m) return !!item && resolve(m[1]) in item && dynamoValue(item[resolve(m[1])]) === dynamoValue(values[m[2]]);
  throw new Error(`local runner: condition expression "${expression}" not emulated`);
}

const DYNAMO_ACTION: Record<string, string> = {
  putItem: 'dynamodb:PutItem',
  getItem: 'dynamodb:GetItem',
  deleteItem: 'dynamodb:DeleteItem',
  updateItem: 'dynamodb:UpdateItem',
};

export function dynamo(world: LocalWorld, synthesized: Synthesized, action: string) {
  return async (input: Json): Promise<Json> => {
    const p = input as JsonObject;
    const iamAction = DYNAMO_ACTION[action];
    if (!iamAction) throw new Error(`local runner: dynamodb:${action} not emulated`);
    const tableArn = `arn:aws:dynamodb:${synthesized.region}:${synthesized.stateMachine.arn.split(':')[4]}:table/${String(p.TableName)}`;
    try {
      await world.iam.require(world.iam.role(synthesized.stateMachine.roleArn), iamAction, tableArn);
    } catch (e) {
      // The optimized DynamoDB integration reports service errors it does not model under this name
      // (AccessDeniedException is not modelled per operation).
      deniedBy('DynamoDB.AmazonDynamoDBException', 'AmazonDynamoDBv2', e);
    }
    const table = world.tables.get(String(p.TableName)) ?? new Map<string, JsonObject>();
    world.tables.set(String(p.TableName), table);
    const keyOf = (item: JsonObject) =>
      JSON.stringify(
        Object.entries(item)
          .filter(([k]) => k === 'lock')
          .map(([k, v]) => [k, dynamoValue(v)]),
      );
    const names = (p.ExpressionAttributeNames ?? {}) as JsonObject;
    const values = (p.ExpressionAttributeValues ?? {}) as JsonObject;
    const failed = () => namedError('DynamoDB.ConditionalCheckFailedException', 'The conditional request failed');
    if (action === 'putItem') {
      const key = keyOf(p.Item as JsonObject);
      if (!conditionHolds(p.ConditionExpression as string | undefined, table.get(key), names, values)) throw failed();
      table.set(key, p.Item as JsonObject);
      return {};
    }
    const key = keyOf(p.Key as JsonObject);
    if (action === 'getItem') return table.has(key) ? { Item: table.get(key)! } : {};
    if (action === 'deleteItem') {
      if (!conditionHolds(p.ConditionExpression as string | undefined, table.get(key), names, values)) throw failed();
      table.delete(key);
      return {};
    }
    throw new Error(`local runner: dynamodb:${action} not emulated`);
  };
}

// ---------------------------------------------------------------------------------------------
// AWS SDK integrations: s3:getObject, s3:putObject, sfn:describeExecution
// ---------------------------------------------------------------------------------------------

export function s3GetObject(world: LocalWorld, synthesized: Synthesized) {
  const s3 = world.s3.clientFor(Iam.accessKeyId(world.iam.role(synthesized.stateMachine.roleArn)));
  return async (input: Json): Promise<Json> => {
    const p = input as JsonObject;
    try {
      await world.iam.require(world.iam.role(synthesized.stateMachine.roleArn), 's3:GetObject', `arn:aws:s3:::${String(p.Bucket)}/${String(p.Key)}`);
    } catch (e) {
      deniedBy('S3.S3Exception', 'Amazon S3', e);
    }
    try {
      const res = await s3.send(new GetObjectCommand({ Bucket: String(p.Bucket), Key: String(p.Key) }));
      const out = { Body: await res.Body!.transformToString(), ContentLength: res.ContentLength ?? 0, ContentType: res.ContentType ?? '' };
      // A connector's output over the quota is States.DataLimitExceeded, whatever the state does with it.
      checkPayload('the s3:getObject result', out);
      return out;
    } catch (e) {
      if ((e as Error).name === 'States.DataLimitExceeded') throw e;
      throw namedError(`S3.${(e as Error).name === 'NoSuchKey' ? 'NoSuchKeyException' : 'S3Exception'}`, (e as Error).message);
    }
  };
}

/** aws-sdk:s3:putObject with a string Body (a failed batch's keys). */
export function s3PutObject(world: LocalWorld, synthesized: Synthesized) {
  const role = world.iam.role(synthesized.stateMachine.roleArn);
  const s3 = world.s3.clientFor(Iam.accessKeyId(role));
  return async (input: Json): Promise<Json> => {
    const p = input as JsonObject;
    try {
      await world.iam.require(role, 's3:PutObject', `arn:aws:s3:::${String(p.Bucket)}/${String(p.Key)}`);
    } catch (e) {
      deniedBy('S3.S3Exception', 'Amazon S3', e);
    }
    if (typeof p.Body !== 'string')
      throw namedError('S3.S3Exception', `local runner: s3:putObject Body must be a string, got ${JSON.stringify(p.Body)?.slice(0, 80)}`);
    try {
      const res = await s3.send(
        new PutObjectCommand({
          Bucket: String(p.Bucket),
          Key: String(p.Key),
          Body: p.Body,
          ContentType: p.ContentType === undefined ? undefined : String(p.ContentType),
        }),
      );
      return { ETag: res.ETag ?? '' };
    } catch (e) {
      throw namedError('S3.S3Exception', (e as Error).message);
    }
  };
}

export function sfnDescribeExecution(world: LocalWorld, synthesized: Synthesized) {
  return async (input: Json): Promise<Json> => {
    const arn = String((input as JsonObject).ExecutionArn);
    try {
      await world.iam.require(world.iam.role(synthesized.stateMachine.roleArn), 'states:DescribeExecution', arn);
    } catch (e) {
      deniedBy('Sfn.SfnException', 'AWSStepFunctions', e);
    }
    const status = world.executions.get(arn);
    if (!status) throw namedError('Sfn.ExecutionDoesNotExistException', `Execution Does Not Exist: '${arn}'`);
    return { ExecutionArn: arn, Status: status };
  };
}
