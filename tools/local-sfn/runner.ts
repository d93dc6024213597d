// The strict local runner: executes the synthesized state machine definition in aws-local-stepfunctions
// with every service call stood in by ./services (authorized as the state machine's role), every
// Distributed Map run by ./distributed-map, and every state's input and output held to the payload
// quota (./limits).
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { S3RVER_CREDENTIALS, startS3, S3Server } from '../servers/s3';
import { SftpServer, startSshd } from '../servers/sshd';
import { taskStates } from '../../stacks/state-machine';
import { runDistributedMap, type MapRuntime } from './distributed-map';
import { Iam } from './iam';
import { StateMachine } from './interpreter';
import type { Json, JsonObject } from './json';
import { checkErrorAndCause, checkExecutionName, checkPayload, installPayloadLimits } from './limits';
import { dynamo, ecsRunTaskSync, LocalWorld, namedError, s3GetObject, s3PutObject, sfnDescribeExecution, type EcsContext } from './services';
import { readSynthesized, Synthesized } from './synthesized';
import { REPO_ROOT } from '../../scripts/paths';

installPayloadLimits(StateMachine);

export { REPO_ROOT };
export const ENTRYPOINTS: Record<string, string> = {
  converter: path.join(REPO_ROOT, 'images', 'converter', 'dist', 'main.js'),
  'sftp-lister': path.join(REPO_ROOT, 'images', 'sftp-lister', 'dist', 'main.js'),
};

export const LOCAL_DISTRIBUTED_MAP = 'arn:aws:states:::local:distributedMap';

/** The definition the interpreter runs: each Distributed Map becomes a Task the runner carries out. */
export function localDefinition(definition: JsonObject): { definition: JsonObject; maps: Record<string, JsonObject> } {
  const maps: Record<string, JsonObject> = {};
  const rewrite = (states: Record<string, JsonObject>): Record<string, JsonObject> => {
    const out: Record<string, JsonObject> = {};
    for (const [name, state] of Object.entries(states)) {
      const processor = state.ItemProcessor as JsonObject | undefined;
      const rewritten = processor ? { ...processor, States: rewrite(processor.States as Record<string, JsonObject>) } : undefined;
      if (state.Type === 'Map' && (processor?.ProcessorConfig as JsonObject | undefined)?.Mode === 'DISTRIBUTED') {
        maps[name] = { ...state, ItemProcessor: rewritten! };
        const keep = Object.fromEntries(
          ['InputPath', 'ResultSelector', 'ResultPath', 'OutputPath', 'Retry', 'Catch', 'Next', 'End', 'Comment']
            .filter((k) => k in state)
            .map((k) => [k, state[k]]),
        );
        // Parameters is the Map's (effective) input and the context; the map itself is in `maps`.
        out[name] = { Type: 'Task', Resource: LOCAL_DISTRIBUTED_MAP, Parameters: { 'input.$': '$', 'context.$': '$$' }, TimeoutSeconds: 1_000_000, ...keep };
      } else {
        out[name] = rewritten ? { ...state, ItemProcessor: rewritten } : state;
      }
    }
    return out;
  };
  return { definition: { ...definition, States: rewrite(definition.States as Record<string, JsonObject>) }, maps };
}

/** Runs a state machine; returns its output, or throws the error the execution failed with (unwrapped). */
async function run(definition: JsonObject, input: Json, options: Record<string, unknown>): Promise<Json> {
  const machine = new StateMachine(definition as never, { validationOptions: { noValidate: true } });
  try {
    return (await machine.run(input as never, options as never).result) as Json;
  } catch (e) {
    throw ((e as Error & { cause?: unknown }).cause ?? e) as Error;
  }
}

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
  private readonly maps: Record<string, JsonObject>;
  private counter = 0;

  constructor(
    readonly world: LocalWorld,
    readonly synthesized: Synthesized,
    private readonly ecs: Omit<EcsContext, 'world' | 'synthesized'>,
  ) {
    ({ definition: this.definition, maps: this.maps } = localDefinition(synthesized.definition));
  }

  private waitOverrides(): { waits: Record<string, number>; retries: Record<string, number> } {
    // Back-off delays are not what this run proves: every Wait and Retry interval is 0 here.
    const waits: Record<string, number> = {};
    const retries: Record<string, number> = {};
    const walk = (states: Record<string, JsonObject>) => {
      for (const [n, s] of Object.entries(states)) {
        if (s.Type === 'Wait') waits[n] = 0;
        if (s.Retry) retries[n] = 0;
        if (s.ItemProcessor) walk((s.ItemProcessor as JsonObject).States as Record<string, JsonObject>);
      }
    };
    walk(this.definition.States as Record<string, JsonObject>);
    for (const m of Object.values(this.maps)) walk((m.ItemProcessor as JsonObject).States as Record<string, JsonObject>);
    return { waits, retries };
  }

  private handlers(rootArn: string): Record<string, (input: Json) => Promise<Json>> {
    const { world, synthesized } = this;
    const handlers: Record<string, (input: Json) => Promise<Json>> = {};
    const all = { ...taskStates(this.definition) };
    for (const m of Object.values(this.maps)) Object.assign(all, taskStates(m.ItemProcessor as JsonObject));
    const ecs: EcsContext = { world, synthesized, ...this.ecs };
    for (const [name, state] of Object.entries(all)) {
      const resource = String(state.Resource);
      let call: (input: Json) => Promise<Json>;
      if (resource === 'arn:aws:states:::ecs:runTask.sync') call = ecsRunTaskSync(ecs, name, () => rootArn);
      else if (resource === 'arn:aws:states:::aws-sdk:s3:getObject') call = s3GetObject(world, synthesized);
      else if (resource === 'arn:aws:states:::aws-sdk:s3:putObject') call = s3PutObject(world, synthesized);
      else if (resource.startsWith('arn:aws:states:::dynamodb:')) call = dynamo(world, synthesized, resource.slice('arn:aws:states:::dynamodb:'.length));
      else if (resource === 'arn:aws:states:::aws-sdk:sfn:describeExecution') call = sfnDescribeExecution(world, synthesized);
      else if (resource === LOCAL_DISTRIBUTED_MAP) {
        const map = this.maps[name];
        handlers[name] = async (input) => {
          const p = input as JsonObject;
          return runDistributedMap(this.mapRuntime(rootArn), name, map, p.input, p.context as JsonObject);
        };
        continue;
      } else throw new Error(`local runner: Task state "${name}" (${resource}) has no local handler`);
      handlers[name] = async (input) => {
        // "input data when scheduling a task" and a connector's output are held to the quota too.
        checkPayload(`the input of Task state "${name}" after Parameters`, input);
        const output = await call(input);
        checkPayload(`the result of Task state "${name}"`, output);
        return output;
      };
    }
    return handlers;
  }

  private mapRuntime(rootArn: string): MapRuntime {
    const evaluate = (template: Json, input: Json, context: JsonObject) =>
      run({ StartAt: 'Evaluate', States: { Evaluate: { Type: 'Pass', Parameters: template, End: true } } }, input, { context, localUnchecked: true });
    return {
      world: this.world,
      synthesized: this.synthesized,
      s3: this.world.s3.clientFor(Iam.accessKeyId(this.world.iam.role(this.synthesized.stateMachine.roleArn))),
      evaluate,
      // One inline Map over the items, ItemsPath in the context, so `$` stays the state's input.
      select: async (selector, items, input, context) =>
        (await run(
          {
            StartAt: 'Select',
            States: {
              Select: {
                Type: 'Map',
                ItemsPath: '$$.LocalItems',
                ItemSelector: selector,
                ItemProcessor: { ProcessorConfig: { Mode: 'INLINE' }, StartAt: 'Item', States: { Item: { Type: 'Pass', End: true } } },
                End: true,
              },
            },
          },
          input,
          { context: { ...context, LocalItems: items }, localUnchecked: true },
        )) as Json[],
      runChild: async (processor, input, execution) => {
        this.world.executions.set(execution.arn, 'RUNNING');
        const { waits, retries } = this.waitOverrides();
        try {
          const output = await run({ ...processor, ProcessorConfig: undefined } as unknown as JsonObject, input, {
            overrides: { taskResourceLocalHandlers: this.handlers(rootArn), waitTimeOverrides: waits, retryIntervalOverrides: retries },
            context: {
              Execution: {
                Id: execution.arn,
                Name: execution.name,
                Input: input,
                StartTime: new Date().toISOString(),
                RoleArn: this.synthesized.stateMachine.roleArn,
              },
              StateMachine: {
                Id: `${this.synthesized.stateMachine.arn}/${execution.arn.split('/').pop()!.split(':')[0]}`,
                Name: this.synthesized.stateMachine.name,
              },
            },
          });
          this.world.executions.set(execution.arn, 'SUCCEEDED');
          return { status: 'SUCCEEDED', output };
        } catch (e) {
          this.world.executions.set(execution.arn, 'FAILED');
          return { status: 'FAILED', error: (e as Error).name, cause: (e as Error).message };
        }
      },
    };
  }

  /** StartExecution: the name and input are checked as the API does; then the execution runs to its end. */
  async execute(input: Json, name = `local-${++this.counter}-${crypto.randomBytes(3).toString('hex')}`): Promise<ExecutionResult> {
    checkExecutionName(name);
    try {
      checkPayload('the execution input', input);
    } catch (e) {
      // StartExecution refuses it: no execution exists.
      throw namedError('InvalidExecutionInput', (e as Error).message);
    }
    const { stateMachine } = this.synthesized;
    const arn = `${stateMachine.arn.replace(':stateMachine:', ':execution:')}:${name}`;
    this.world.executions.set(arn, 'RUNNING');
    const { waits, retries } = this.waitOverrides();
    try {
      const output = await run(this.definition, input, {
        overrides: { taskResourceLocalHandlers: this.handlers(arn), waitTimeOverrides: waits, retryIntervalOverrides: retries },
        context: {
          Execution: { Id: arn, Name: name, Input: input, StartTime: new Date().toISOString(), RoleArn: stateMachine.roleArn },
          StateMachine: { Id: stateMachine.arn, Name: stateMachine.name },
        },
      });
      checkPayload('the execution output', output);
      this.world.executions.set(arn, 'SUCCEEDED');
      return { name, arn, status: 'SUCCEEDED', output };
    } catch (e) {
      this.world.executions.set(arn, 'FAILED');
      const err = e as Error;
      try {
        checkErrorAndCause('the execution', err.name, err.message);
      } catch (limit) {
        return { name, arn, status: 'FAILED', error: (limit as Error).name, cause: (limit as Error).message };
      }
      return { name, arn, status: 'FAILED', error: err.name, cause: err.message };
    }
  }
}

export interface Session {
  readonly world: LocalWorld;
  readonly pipeline: LocalPipeline;
  readonly synthesized: Synthesized;
  /** The same runner and world over another definition (run as the same state machine and role). */
  pipelineFor(definition: JsonObject): LocalPipeline;
  close(): Promise<void>;
}

/** Starts sshd + S3 server and a pipeline over the definition synthesized into `outdir`. */
export async function openSession(outdir: string): Promise<Session> {
  const synthesized = readSynthesized(outdir);
  const iam = new Iam(synthesized.model);
  const sftp: SftpServer = await startSshd();
  let s3: S3Server;
  try {
    // Every S3 request is authorized as the role whose access key signed it (the images get their task
    // role's key); the harness itself (the default key) acts as the account's administrator.
    s3 = await startS3([synthesized.bucket], {
      authorize: async (request) => {
        if (request.principal === S3RVER_CREDENTIALS.accessKeyId) return true;
        const role = iam.roleOfKey(request.principal);
        // `implicit`: S3 answers 404 for a missing key only to a caller who may s3:ListBucket, else 403.
        const note = request.operation === 'implicit' ? `to learn that ${request.key ?? ''} is missing (403 AccessDenied instead of 404)` : undefined;
        return !!role && (await iam.decide(role, request.action, request.resource, request.context, note)) === 'Allowed';
      },
    });
  } catch (e) {
    await sftp.stop();
    throw e;
  }
  const world: LocalWorld = { s3, sftp, bucket: synthesized.bucket, iam, tasks: [], executions: new Map(), tables: new Map() };
  const close = async () => {
    await s3.dispose();
    await sftp.stop();
  };
  const localEnvironment = (container: string): Record<string, string> =>
    container === 'sftp-lister'
      ? {
          // What Terraform computes (the SFTP endpoint and its host key) stands for the local sshd.
          SFTP_HOST: sftp.host,
          SFTP_PORT: String(sftp.port),
          SFTP_USER: sftp.user,
          SFTP_HOST_KEY_FINGERPRINTS: sftp.hostKeyFingerprint,
          // ECS injects this from Secrets Manager (the task definition's `secrets`).
          SFTP_PRIVATE_KEY: sftp.privateKey,
        }
      : {};
  const pipelineFor = (definition: JsonObject) => new LocalPipeline(world, { ...synthesized, definition }, { entrypoints: ENTRYPOINTS, localEnvironment });
  let pipeline: LocalPipeline;
  try {
    pipeline = pipelineFor(synthesized.definition);
  } catch (e) {
    await close();
    throw e;
  }
  return { world, synthesized, pipeline, pipelineFor, close };
}
