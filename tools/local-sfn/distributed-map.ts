// The Distributed Map, which aws-local-stepfunctions does not implement, as Step Functions documents it:
// items from ItemReader (S3 getObject of a JSON array, or listObjectsV2) or ItemsPath, ItemSelector, ItemBatcher (MaxItemsPerBatch,
// MaxInputBytesPerBatch, BatchInput), one child execution per batch (StartExecution authorized, at most
// MaxConcurrency at once), ToleratedFailurePercentage, and ResultWriter (manifest and result files in
// S3) or, without one, the children's outputs as the state's result. Each S3 call is authorized as the
// state machine's role. Templates and paths are evaluated by aws-local-stepfunctions itself (a Pass
// state), so a missing path is the same uncatchable States.Runtime as anywhere else.
import * as crypto from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { AccessDenied } from './iam';
import type { Json, JsonObject } from './json';
import { byteSize, MAX_PAYLOAD_BYTES, TerminalError } from './limits';
import { namedError, type LocalWorld } from './services';
import type { Synthesized } from './synthesized';

/** What the runner hands this module: the interpreter and a way to run a child workflow. */
export interface MapRuntime {
  readonly world: LocalWorld;
  readonly synthesized: Synthesized;
  readonly s3: S3Client;
  /** Evaluates a payload template (Parameters-style) with the interpreter, input `$`, context `$$`. */
  evaluate(template: Json, input: Json, context: JsonObject): Promise<Json>;
  /** Evaluates an ItemSelector over items (context `$$.Map.Item`). */
  select(selector: Json, items: Json[], input: Json, context: JsonObject): Promise<Json[]>;
  /** Runs one child workflow execution of the map's ItemProcessor. */
  runChild(
    processor: JsonObject,
    input: Json,
    execution: { arn: string; name: string },
  ): Promise<{ status: 'SUCCEEDED' | 'FAILED'; output?: Json; error?: string; cause?: string }>;
}

interface ChildResult {
  readonly arn: string;
  readonly name: string;
  readonly input: Json;
  readonly items: number;
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly output?: Json;
  readonly error?: string;
  readonly cause?: string;
  readonly start: string;
  readonly stop: string;
}

/** ItemReader: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html */
async function readItems(rt: MapRuntime, reader: JsonObject, input: Json, context: JsonObject): Promise<Json[]> {
  const params = (await rt.evaluate(reader.Parameters ?? {}, input, context)) as JsonObject;
  const role = rt.world.iam.role(rt.synthesized.stateMachine.roleArn);
  const fail = (why: string) => namedError('States.ItemReaderFailed', why);
  const authorize = async (action: string, resource: string, ctx: Record<string, string> = {}) => {
    try {
      await rt.world.iam.require(role, action, resource, ctx);
    } catch (e) {
      if (e instanceof AccessDenied) throw fail(`${e.message} (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied)`);
      throw e;
    }
  };
  if (reader.Resource === 'arn:aws:states:::s3:getObject') {
    const inputType = (reader.ReaderConfig as JsonObject | undefined)?.InputType;
    if (inputType !== undefined && inputType !== 'JSON') throw new Error(`local runner: ItemReader InputType ${String(inputType)} not emulated`);
    await authorize('s3:GetObject', `arn:aws:s3:::${String(params.Bucket)}/${String(params.Key)}`);
    let body: string;
    try {
      const res = await rt.s3.send(new GetObjectCommand({ Bucket: String(params.Bucket), Key: String(params.Key) }));
      body = await res.Body!.transformToString();
    } catch (e) {
      throw fail(`s3:getObject ${String(params.Bucket)}/${String(params.Key)}: ${(e as Error).name}`);
    }
    let parsed: Json;
    try {
      parsed = JSON.parse(body) as Json;
    } catch (e) {
      throw fail(`${String(params.Key)} is not JSON: ${(e as Error).message}`);
    }
    if (!Array.isArray(parsed)) throw fail(`${String(params.Key)} is not a JSON array`);
    return parsed;
  }
  if (reader.Resource === 'arn:aws:states:::s3:listObjectsV2') {
    const items: Json[] = [];
    let token: string | undefined;
    do {
      await authorize('s3:ListBucket', `arn:aws:s3:::${String(params.Bucket)}`, params.Prefix === undefined ? {} : { 's3:prefix': String(params.Prefix) });
      let page;
      try {
        page = await rt.s3.send(
          new ListObjectsV2Command({ Bucket: String(params.Bucket), Prefix: params.Prefix as string | undefined, ContinuationToken: token }),
        );
      } catch (e) {
        throw fail(`s3:listObjectsV2 ${String(params.Bucket)}: ${(e as Error).name}`);
      }
      for (const o of page.Contents ?? [])
        items.push({
          Etag: o.ETag ?? '',
          Key: o.Key!,
          LastModified: o.LastModified?.toISOString() ?? '',
          Size: o.Size ?? 0,
          StorageClass: o.StorageClass ?? 'STANDARD',
        });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return items;
  }
  throw new Error(`local runner: ItemReader resource ${String(reader.Resource)} not emulated`);
}

/**
 * ItemBatcher: items into {Items, BatchInput} inputs under MaxItemsPerBatch and MaxInputBytesPerBatch.
 * https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itembatcher.html
 */
async function batchItems(
  rt: MapRuntime,
  batcher: JsonObject,
  items: Json[],
  input: Json,
  context: JsonObject,
): Promise<{ input: JsonObject; items: number }[]> {
  const batchInput = batcher.BatchInput === undefined ? undefined : await rt.evaluate(batcher.BatchInput, input, context);
  const maxItems = Number(batcher.MaxItemsPerBatch ?? Number.MAX_SAFE_INTEGER);
  // "up to 256 KiB" (the payload quota) when only MaxItemsPerBatch is given.
  const maxBytes = Math.min(Number(batcher.MaxInputBytesPerBatch ?? MAX_PAYLOAD_BYTES), MAX_PAYLOAD_BYTES);
  const shape = (list: Json[]): JsonObject => (batchInput === undefined ? { Items: list } : { BatchInput: batchInput, Items: list });
  const batches: { input: JsonObject; items: number }[] = [];
  let current: Json[] = [];
  let currentBytes = byteSize(shape([]));
  for (const [index, item] of items.entries()) {
    const itemBytes = byteSize(item) + (current.length > 0 ? 1 : 0);
    if (current.length > 0 && (current.length >= maxItems || currentBytes + itemBytes > maxBytes)) {
      batches.push({ input: shape(current), items: current.length });
      current = [];
      currentBytes = byteSize(shape([]));
    }
    if (byteSize(shape([item])) > maxBytes) {
      // An item that can never fit a batch cannot be processed (the runner's reading; AWS names no error).
      throw namedError(
        'States.ItemReaderFailed',
        `item ${index} alone makes a batch of ${byteSize(shape([item]))} bytes, over MaxInputBytesPerBatch ${maxBytes}`,
      );
    }
    current.push(item);
    currentBytes += byteSize(item) + (current.length > 1 ? 1 : 0);
  }
  if (current.length > 0) batches.push({ input: shape(current), items: current.length });
  return batches;
}

async function pool<T>(size: number, jobs: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(size, jobs.length) }, worker));
  return out;
}

/** One result entry as ResultWriter exports it (Transformation NONE). */
function exported(child: ChildResult, stateMachineArn: string): JsonObject {
  const common: JsonObject = {
    ExecutionArn: child.arn,
    Input: JSON.stringify(child.input),
    InputDetails: { Included: true },
    Name: child.name,
    StartDate: child.start,
    StateMachineArn: stateMachineArn,
    Status: child.status,
    StopDate: child.stop,
  };
  return child.status === 'SUCCEEDED'
    ? { ...common, Output: JSON.stringify(child.output ?? null), OutputDetails: { Included: true } }
    : { ...common, Error: child.error ?? '', Cause: child.cause ?? '' };
}

/**
 * ResultWriter: results grouped by status into files under `<Prefix>/<map run id>/` plus manifest.json;
 * the state's result names the manifest.
 * https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html
 */
async function writeResults(
  rt: MapRuntime,
  writer: JsonObject,
  children: ChildResult[],
  mapRunArn: string,
  input: Json,
  context: JsonObject,
): Promise<JsonObject> {
  if (writer.Resource !== 'arn:aws:states:::s3:putObject') throw new Error(`local runner: ResultWriter resource ${String(writer.Resource)} not emulated`);
  const params = (await rt.evaluate(writer.Parameters ?? {}, input, context)) as JsonObject;
  const bucket = String(params.Bucket);
  const folder = `${params.Prefix ? `${String(params.Prefix).replace(/\/$/, '')}/` : ''}${mapRunArn.split(':').pop()}`;
  const role = rt.world.iam.role(rt.synthesized.stateMachine.roleArn);
  const put = async (key: string, body: string) => {
    try {
      await rt.world.iam.require(role, 's3:PutObject', `arn:aws:s3:::${bucket}/${key}`);
      await rt.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/json' }));
    } catch (e) {
      throw namedError('States.ResultWriterFailed', `s3:putObject ${bucket}/${key}: ${(e as Error).message}`);
    }
    return { Key: key, Size: Buffer.byteLength(body) };
  };
  const files: Record<string, JsonObject[]> = { FAILED: [], PENDING: [], SUCCEEDED: [] };
  for (const status of ['SUCCEEDED', 'FAILED'] as const) {
    const mine = children.filter((c) => c.status === status);
    if (mine.length > 0)
      files[status].push(await put(`${folder}/${status}_0.json`, JSON.stringify(mine.map((c) => exported(c, rt.synthesized.stateMachine.arn)))));
  }
  const manifestKey = `${folder}/manifest.json`;
  await put(manifestKey, JSON.stringify({ DestinationBucket: bucket, MapRunArn: mapRunArn, ResultFiles: files }));
  return { MapRunArn: mapRunArn, ResultWriterDetails: { Bucket: bucket, Key: manifestKey } };
}

/** Runs one Distributed Map state on its (effective) input; returns the state's result. */
export async function runDistributedMap(rt: MapRuntime, stateName: string, state: JsonObject, input: Json, context: JsonObject): Promise<Json> {
  // Without ItemReader the items are the array at ItemsPath (default `$`) of the state's input.
  const items = state.ItemReader
    ? await readItems(rt, state.ItemReader as JsonObject, input, context)
    : (((await rt.evaluate({ 'items.$': String(state.ItemsPath ?? '$') }, input, context)) as JsonObject).items as Json[]);
  if (!Array.isArray(items)) throw new TerminalError('States.Runtime', `ItemsPath of "${stateName}" does not select an array`);
  const selected = state.ItemSelector === undefined ? items : await rt.select(state.ItemSelector, items, input, context);
  const batches =
    state.ItemBatcher === undefined
      ? selected.map((i) => ({ input: i, items: 1 }))
      : await batchItems(rt, state.ItemBatcher as JsonObject, selected, input, context);

  const machine = rt.synthesized.stateMachine;
  const label = String(state.Label ?? stateName).replace(/[^A-Za-z0-9_-]/g, '');
  const mapRunId = crypto.randomUUID();
  const mapRunArn = `${machine.arn.replace(':stateMachine:', ':mapRun:')}/${label}:${mapRunId}`;
  const role = rt.world.iam.role(machine.roleArn);
  // Child executions are StartExecution calls on the state machine itself.
  // https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html
  try {
    await rt.world.iam.require(role, 'states:StartExecution', machine.arn);
  } catch (e) {
    // Public reports show the execution failing at the Map state; the runner makes it uncatchable.
    if (e instanceof AccessDenied) throw new TerminalError('States.Runtime', `${e.message}: the map run could not start its child executions`);
    throw e;
  }
  const processor = state.ItemProcessor as JsonObject;
  const children = await pool(
    Number(state.MaxConcurrency ?? 0) || 1000,
    batches.map((b) => async (): Promise<ChildResult> => {
      const name = crypto.randomUUID();
      const arn = `${machine.arn.replace(':stateMachine:', ':execution:')}/${label}:${name}`;
      const start = new Date().toISOString();
      const r = await rt.runChild(processor, b.input, { arn, name });
      return { arn, name, input: b.input, items: b.items, ...r, start, stop: new Date().toISOString() };
    }),
  );

  // "total number of failed or timed out items divided by the total number of items", exceeded fails.
  // https://docs.aws.amazon.com/step-functions/latest/dg/maprun-fail-threshold.html
  const total = children.reduce((n, c) => n + c.items, 0);
  const failedItems = children.filter((c) => c.status === 'FAILED').reduce((n, c) => n + c.items, 0);
  const tolerated = Number(state.ToleratedFailurePercentage ?? 0);
  const count = state.ToleratedFailureCount === undefined ? Infinity : Number(state.ToleratedFailureCount);
  const result = state.ResultWriter ? await writeResults(rt, state.ResultWriter as JsonObject, children, mapRunArn, input, context) : undefined;
  if (total > 0 && ((failedItems / total) * 100 > tolerated || failedItems > count)) {
    throw namedError(
      'States.ExceedToleratedFailureThreshold',
      `The specified tolerated failure threshold was exceeded: ${failedItems} of ${total} items failed (tolerated ${tolerated}%)`,
    );
  }
  // Without ResultWriter: the children's outputs (COMPACT); a failed child's execution result unchanged.
  return result ?? children.map((c) => (c.status === 'SUCCEEDED' ? (c.output ?? null) : exported(c, machine.arn)));
}
