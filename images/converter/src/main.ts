/**
 * Container entrypoint: converts S3 objects (one key, a batch, or a manifest of keys) and uploads
 * `OUTPUT_PREFIX + key + ".json"` with a streaming multipart upload that is aborted on any failure.
 * Environment: see README.md. Exit 0 all converted, 65 some input malformed, 74 I/O errors,
 * 78 configuration errors, 143 stopped by SIGTERM.
 */
import { PassThrough, Readable } from 'node:stream';
import { AbortMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { convert, ConvertResult, Format, XmlError } from './convert';
import { ConfigError, EXIT, Limits, intFromEnv, limitsFromEnv, parseFormat } from './config';
import { emf, pipelineFromEnv } from './metrics';

export interface JobConfig {
  bucket: string;
  keys: string[];
  manifestKey?: string;
  outputBucket: string;
  outputPrefix: string;
  format: Format;
  recordPath?: string;
  concurrency: number;
  resultKey?: string;
  limits: Limits;
  /** Where the failed keys go (contract C2): `<prefix><RUN_ID>/<BATCH_ID>.json` in BUCKET; unset without RUN_ID/BATCH_ID. */
  failedManifestKey?: string;
}

/** Default prefix of the failed-keys manifests (FAILED_MANIFEST_PREFIX). */
export const FAILED_MANIFEST_PREFIX = 'manifests/failed/';

function parseJson(raw: string, what: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (e) {
    throw new ConfigError(`${what} is not JSON: ${(e as Error).message}`);
  }
}

function keysOf(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.some((k) => typeof k !== 'string' || k === '')) {
    throw new ConfigError(`${what} must be a JSON array of non-empty strings`);
  }
  return v as string[];
}

/**
 * A manifest is a JSON array of keys, or `{"manifest": "<key>"}`: what the state machine files for a
 * batch given as a manifest when the converter could not file its keys (contract C2). It refers to the
 * batch's manifest instead of copying it, since CopyObject needs a URL-encoded source key
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html) and no JSONPath intrinsic
 * encodes one. The key it names; undefined for an array.
 */
function manifestReference(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const ref = (v as Record<string, unknown>).manifest;
  return Object.keys(v).length === 1 && typeof ref === 'string' && ref !== '' ? ref : undefined;
}
/** References followed in a row at most (a replay of a replay of a batch that never ran adds one each). */
const MAX_MANIFEST_REFERENCES = 16;

/**
 * RUN_ID is the execution's name: anything Step Functions takes as one, so '+', '@', '(' and non-ASCII
 * letters too (1-80 characters; no whitespace, brackets, wildcards, control characters or any of
 * " # % \ ^ | ~ ` $ & , ; : /: https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html),
 * but not "." or "..", which some clients resolve in a path. It is one segment of the failed-keys key.
 */
// eslint-disable-next-line no-control-regex
const RUN_ID = /^(?!\.{1,2}$)[^\s?*<>{}[\]"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]{1,80}$/u;
/** BATCH_ID is the state machine's own: a UUID, or a batch manifest's basename (00001). */
const BATCH_ID = /^[A-Za-z0-9._=-]{1,200}$/;

export function configFromEnv(env: NodeJS.ProcessEnv): JobConfig {
  const bucket = env.BUCKET ?? '';
  if (!bucket) throw new ConfigError('BUCKET is required');
  const keys: string[] = [];
  if (env.S3PATH) keys.push(env.S3PATH);
  if (env.S3PATHS) keys.push(...keysOf(parseJson(env.S3PATHS, 'S3PATHS'), 'S3PATHS'));
  const manifestKey = env.S3PATHS_MANIFEST || undefined;
  if (keys.length === 0 && !manifestKey) throw new ConfigError('one of S3PATH, S3PATHS or S3PATHS_MANIFEST is required');
  const format = parseFormat(env.FORMAT || undefined);
  const runId = env.RUN_ID || undefined;
  const batchId = env.BATCH_ID || undefined;
  if ((runId === undefined) !== (batchId === undefined)) throw new ConfigError('RUN_ID and BATCH_ID go together (both or neither)');
  // Each becomes one path segment of the failed-keys key.
  if (runId !== undefined && !RUN_ID.test(runId)) throw new ConfigError(`RUN_ID must be a Step Functions execution name, not "." or ".." (got "${runId}")`);
  if (batchId !== undefined && !BATCH_ID.test(batchId)) throw new ConfigError(`BATCH_ID must be 1-200 characters of A-Z a-z 0-9 . _ = - (got "${batchId}")`);
  const prefix = env.FAILED_MANIFEST_PREFIX ?? FAILED_MANIFEST_PREFIX;
  const recordPath = env.RECORD_PATH || undefined;
  if (format === 'jsonl' && !recordPath) throw new ConfigError('FORMAT=jsonl needs RECORD_PATH (e.g. /records/record)');
  return {
    bucket,
    keys,
    manifestKey,
    outputBucket: env.OUTPUT_BUCKET || bucket,
    outputPrefix: env.OUTPUT_PREFIX ?? '',
    format,
    recordPath,
    concurrency: intFromEnv(env, 'CONCURRENCY', 4, 1),
    resultKey: env.RESULT_KEY || undefined,
    limits: limitsFromEnv(env),
    failedManifestKey: runId && batchId ? `${prefix}${runId}/${batchId}.json` : undefined,
  };
}

export function s3ClientFromEnv(env: NodeJS.ProcessEnv): S3Client {
  // The SDK itself reads AWS_ENDPOINT_URL_S3, AWS_REGION and the checksum settings; path-style has no
  // standard variable, so it is read here.
  return new S3Client({ forcePathStyle: /^(1|true|yes)$/i.test(env.AWS_S3_FORCE_PATH_STYLE ?? '') });
}

interface Converted {
  key: string;
  output: string;
  bytesIn: number;
  bytesOut: number;
  records: number;
  seconds: number;
}
interface Failed {
  key: string;
  error: string;
  malformed: boolean;
}

const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3 allows 10,000 parts: size parts from the input so that a JSON 4x the input still fits. */
function partSize(inputBytes: number | undefined): number {
  return Math.max(MIN_PART_SIZE, Math.ceil(((inputBytes ?? 0) * 4) / 9000));
}

class Job {
  private readonly inflight = new Set<AbortController>();
  /** METRICS_PIPELINE: the value of the metrics' one dimension. */
  pipeline = 'local';
  terminating = false;
  /** LOG_LEVEL=debug: a line on stderr when each key starts streaming. */
  debug = false;

  constructor(
    private readonly cfg: JobConfig,
    private readonly s3: S3Client,
  ) {}

  async resolveKeys(): Promise<string[]> {
    const keys = [...this.cfg.keys];
    const seen: string[] = [];
    for (let key = this.cfg.manifestKey; key !== undefined;) {
      const what = `manifest s3://${this.cfg.bucket}/${key}`;
      if (seen.length > MAX_MANIFEST_REFERENCES || seen.includes(key)) {
        throw new ConfigError(`${what}: references ${seen.includes(key) ? 'loop' : `go deeper than ${MAX_MANIFEST_REFERENCES}`} (${seen.join(' -> ')})`);
      }
      seen.push(key);
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.cfg.bucket, Key: key }));
      const v = parseJson(await res.Body!.transformToString('utf-8'), what);
      key = manifestReference(v);
      if (key === undefined) keys.push(...keysOf(v, `${what} (an array of keys, or {"manifest": "<key>"})`));
    }
    return [...new Set(keys)];
  }

  /** Stops everything in flight (SIGTERM). */
  abortAll(): void {
    this.terminating = true;
    for (const c of this.inflight) c.abort(new Error('stopped by SIGTERM'));
  }

  async convertKey(key: string): Promise<Converted | Failed> {
    const { bucket, outputBucket, outputPrefix, format } = this.cfg;
    const source = `s3://${bucket}/${key}`;
    const outKey = outputPrefix + key + '.json';
    const started = process.hrtime.bigint();
    const ac = new AbortController();
    this.inflight.add(ac);
    let upload: Upload | undefined;
    let body: Readable | undefined;
    const pass = new PassThrough({ highWaterMark: 1 << 20 });
    let result: ConvertResult | undefined;
    let retries = 0;
    try {
      if (this.terminating) throw new Error('stopped by SIGTERM');
      const got = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: ac.signal });
      body = got.Body as Readable;
      retries = Math.max(0, (got.$metadata.attempts ?? 1) - 1);
      if (this.debug) process.stderr.write(JSON.stringify({ source, outcome: 'started' }) + '\n');
      ac.signal.addEventListener('abort', () => body?.destroy(), { once: true });
      upload = new Upload({
        client: this.s3,
        params: {
          Bucket: outputBucket,
          Key: outKey,
          Body: pass,
          ContentType: format === 'jsonl' ? 'application/x-ndjson' : 'application/json',
        },
        partSize: partSize(got.ContentLength),
        queueSize: 2,
        leavePartsOnError: false,
      });
      // SIGTERM: stop the upload at once, even when the input is already read and parts are in flight.
      ac.signal.addEventListener('abort', () => void upload?.abort(), { once: true });
      let parts = 0;
      upload.on('httpUploadProgress', (p) => {
        parts = Math.max(parts, p.part ?? 0);
      });
      const done = upload.done();
      let uploadError: unknown;
      const uploadFailed = done.then(
        () => undefined,
        (e) => {
          uploadError = e;
        },
      );
      const sink = (b: Buffer) =>
        new Promise<void>((resolve, reject) => {
          if (uploadError) return reject(uploadError);
          if (pass.write(b)) return resolve();
          const onDrain = () => resolve();
          pass.once('drain', onDrain);
          void uploadFailed.then(() => {
            pass.off('drain', onDrain);
            if (uploadError) reject(uploadError);
          });
        });
      result = await convert(body, sink, { source, format, recordPath: this.cfg.recordPath, signal: ac.signal, ...this.cfg.limits });
      ac.signal.throwIfAborted();
      pass.end();
      await done;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.log({
        source,
        output: `s3://${outputBucket}/${outKey}`,
        outcome: 'converted',
        ...result,
        uploadParts: parts,
        seconds,
        mbPerSec: round(result.bytesIn / 1e6 / seconds),
        ...emf(this.pipeline, {
          FilesConverted: [1, 'Count'],
          BytesConverted: [result.bytesIn, 'Bytes'],
          BytesWritten: [result.bytesOut, 'Bytes'],
          FileConvertSeconds: [seconds, 'Seconds'],
          ConvertRetries: retries ? [retries, 'Count'] : undefined,
        }),
      });
      return { key, output: outKey, bytesIn: result.bytesIn, bytesOut: result.bytesOut, records: result.records, seconds };
    } catch (e) {
      await this.abortUpload(upload, outputBucket, outKey);
      pass.destroy();
      body?.destroy();
      const malformed = e instanceof XmlError;
      const reason = ac.signal.aborted && !malformed ? 'stopped by SIGTERM' : errorText(e);
      const line = malformed ? (e as XmlError).message : `${source}: ${reason}`;
      process.stderr.write(line + '\n');
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.log({
        source,
        output: null,
        outcome: malformed ? 'malformed' : 'failed',
        error: line,
        seconds,
        ...emf(this.pipeline, {
          [malformed ? 'FilesMalformed' : 'FilesConvertFailed']: [1, 'Count'],
          FileConvertSeconds: [seconds, 'Seconds'],
          ConvertRetries: retries ? [retries, 'Count'] : undefined,
        }),
      });
      return { key, error: line, malformed };
    } finally {
      this.inflight.delete(ac);
    }
  }

  /** Makes sure no object appears: abort the upload and its multipart upload id, if one was created. */
  private async abortUpload(upload: Upload | undefined, bucket: string, key: string): Promise<void> {
    if (!upload) return;
    await upload.abort().catch(() => undefined);
    const uploadId = (upload as unknown as { uploadId?: string }).uploadId;
    if (uploadId) {
      await this.s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
    }
  }

  log(line: Record<string, unknown>): void {
    process.stdout.write(JSON.stringify({ time: new Date().toISOString(), ...line }) + '\n');
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

function errorText(e: unknown): string {
  if (e instanceof Error) return `${e.name !== 'Error' ? e.name + ': ' : ''}${e.message}`;
  return String(e);
}

async function pool<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

export async function run(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // The pinned SDK warns on every start that future SDK releases will need node 22; the image's
  // node 20 base is a project decision, and the warning would break the one-line error contract.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const started = Date.now();
  const pipeline = pipelineFromEnv(env);
  /** The task's metric line (contract C1): written on every way out, also when the task fails. */
  const finish = (code: number, keys: number, results: Array<Converted | Failed> = []): number => {
    const seconds = (Date.now() - started) / 1000;
    const bytesIn = results.reduce((n, r) => n + ('bytesIn' in r ? r.bytesIn : 0), 0);
    const line = {
      time: new Date().toISOString(),
      outcome: 'task',
      keys,
      converted: results.filter((r) => 'output' in r).length,
      failed: results.filter((r) => 'error' in r).length,
      exitCode: code,
      seconds,
      ...emf(pipeline, {
        ConverterTasks: [1, 'Count'],
        ConverterTaskFailures: [code === EXIT.OK ? 0 : 1, 'Count'],
        ConverterTaskSeconds: [seconds, 'Seconds'],
        ConvertThroughput: bytesIn > 0 ? [bytesIn / 1e6 / seconds, 'Megabytes/Second'] : undefined,
      }),
    };
    process.stdout.write(JSON.stringify(line) + '\n');
    return code;
  };
  let cfg: JobConfig;
  try {
    cfg = configFromEnv(env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`xml2json: ${e.message}\n`);
    return finish(EXIT.CONFIG, 0);
  }
  const s3 = s3ClientFromEnv(env);
  const job = new Job(cfg, s3);
  job.debug = env.LOG_LEVEL === 'debug';
  job.pipeline = pipeline;
  const onTerm = () => {
    process.stderr.write('xml2json: SIGTERM received, aborting in-flight uploads\n');
    job.abortAll();
    // Fargate kills 30 s after SIGTERM; do not wait for a stuck request that long.
    setTimeout(() => process.exit(EXIT.SIGTERM), 20_000).unref();
  };
  process.once('SIGTERM', onTerm);
  let keys: string[];
  try {
    keys = await job.resolveKeys();
  } catch (e) {
    // The keys are unknown, so no failed-keys manifest: the state machine writes the batch's keys there.
    process.stderr.write(`xml2json: cannot read the key list: ${errorText(e)}\n`);
    return finish(job.terminating ? EXIT.SIGTERM : EXIT.IO, 0);
  }
  const results = await pool(keys, cfg.concurrency, (k) => job.convertKey(k));
  const converted = results.filter((r): r is Converted => 'output' in r);
  const failed = results.filter((r): r is Failed => 'error' in r);
  let code: number = job.terminating ? EXIT.SIGTERM : failed.some((f) => !f.malformed) ? EXIT.IO : failed.length > 0 ? EXIT.MALFORMED : EXIT.OK;
  // An I/O error outranks malformed input; SIGTERM outranks both.
  const ioFailure = () => (job.terminating ? EXIT.SIGTERM : EXIT.IO);
  if (cfg.failedManifestKey) {
    try {
      await writeFailedManifest(
        s3,
        cfg.bucket,
        cfg.failedManifestKey,
        failed.map((f) => f.key),
      );
    } catch (e) {
      process.stderr.write(`xml2json: cannot write the failed-keys manifest s3://${cfg.bucket}/${cfg.failedManifestKey}: ${errorText(e)}\n`);
      code = ioFailure();
    }
  }
  if (cfg.resultKey) {
    const summary = {
      bucket: cfg.bucket,
      outputBucket: cfg.outputBucket,
      format: cfg.format,
      converted,
      failed: failed.map(({ key, error, malformed }) => ({ key, error, malformed })),
      exitCode: code,
      seconds: (Date.now() - started) / 1000,
    };
    try {
      await s3.send(
        new PutObjectCommand({ Bucket: cfg.outputBucket, Key: cfg.resultKey, Body: JSON.stringify(summary, null, 2), ContentType: 'application/json' }),
      );
    } catch (e) {
      process.stderr.write(`xml2json: cannot write the result summary s3://${cfg.outputBucket}/${cfg.resultKey}: ${errorText(e)}\n`);
      code = ioFailure();
    }
  }
  return finish(code, keys.length, results);
}

/**
 * Contract C2: the task's failed keys (malformed or failed after retries), as a JSON array in the
 * manifest format, or no object when none failed (a retry that succeeds leaves no stale manifest).
 * A PutObject is atomic - S3 stores the whole object or nothing, and readers then see the old or the
 * new object, never part of one (strong read-after-write consistency:
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/Welcome.html#ConsistencyModel) - and the SDK's
 * CRC32 checksum makes S3 refuse a body damaged in transit.
 */
async function writeFailedManifest(s3: S3Client, bucket: string, key: string, failed: string[]): Promise<void> {
  if (failed.length === 0) {
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    return;
  }
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(failed), ContentType: 'application/json' }));
}

if (require.main === module) {
  run().then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`xml2json: ${(e as Error).stack ?? e}\n`);
      process.exit(70);
    },
  );
}
