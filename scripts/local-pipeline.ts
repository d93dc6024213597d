// `npm run local`: the whole pipeline on this machine, from the state machine definition that
// `cdktf synth` wrote, against a real OpenSSH sshd and a real S3-compatible server on 127.0.0.1, as
// strictly as AWS where AWS's rules can be known offline (tools/local-sfn/):
//
// - IAM on every call: each API call the state machine makes (RunTask with its tag-on-create and
//   PassRole, the ECS start with the execution role, DynamoDB, S3 for getObject, ItemReader and
//   ResultWriter, StartExecution of map children, DescribeExecution) is authorized against the
//   synthesized policies of the calling role by the IAM simulator (tools/review); a denial
//   fails the state with the error Step Functions reports (local-sfn/iam.ts, local-sfn/services.ts).
// - Service limits: 256 KiB state input/output (uncatchable States.DataLimitExceeded), error and cause
//   lengths, 8,192 characters of ECS overrides, execution names, uncatchable States.Runtime for a
//   missing path (local-sfn/limits.ts).
// - Each `ecs:runTask.sync` spawns the image's entrypoint (images/<image>/dist/main.js) with the task
//   definition's environment plus EXACTLY the container-override environment the state computed.
// - The Distributed Map (ItemReader, ItemSelector, ItemBatcher, child executions, tolerated failures,
//   ResultWriter) as Step Functions documents it (local-sfn/distributed-map.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { SftpServer } from '../tools/servers/sshd';
import type { Json, JsonObject } from '../tools/local-sfn/json';
import { ENTRYPOINTS, ExecutionResult, openSession, REPO_ROOT } from '../tools/local-sfn/runner';
import { CORPUS_DIR } from './paths';
import type { LocalWorld } from '../tools/local-sfn/services';
import { synthesize } from '../tools/local-sfn/synthesized';
import { missingPrograms, OPENSSH } from '../tools/servers/prerequisites';

export { ENTRYPOINTS, LocalPipeline, localDefinition, openSession, REPO_ROOT } from '../tools/local-sfn/runner';
export type { ExecutionResult, Session } from '../tools/local-sfn/runner';
export type { LocalWorld, TaskRecord } from '../tools/local-sfn/services';
export { readSynthesized, synthesize } from '../tools/local-sfn/synthesized';

export { CORPUS_DIR };

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

/**
 * The batch summaries an execution output carries, following ResultWriter manifests into S3. A batch
 * whose keys are in S3 (a batch manifest, a replayed failed-keys manifest) and that has no summary is
 * given its keys from that manifest (`failedKeys`): every key is accounted for from S3, none from the
 * execution's payload.
 */
export async function batchResults(world: LocalWorld, output: Json | undefined): Promise<JsonObject[]> {
  const s3 = world.s3.client();
  const read = async (bucket: string, key: string): Promise<Json> =>
    JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString()) as Json;
  const keysOf = async (batch: JsonObject): Promise<Json[]> => {
    if (Array.isArray(batch.failedKeys)) return batch.failedKeys;
    if (Array.isArray(batch.Items)) return (batch.Items as JsonObject[]).map((i) => i.Key);
    const manifest = (batch.item as JsonObject | undefined)?.manifest ?? batch.manifest;
    return typeof manifest === 'string' ? ((await read(world.bucket, manifest)) as Json[]) : [];
  };
  const out: JsonObject[] = [];
  const walk = async (v: Json | undefined): Promise<void> => {
    if (Array.isArray(v)) {
      for (const x of v) await walk(x);
    } else if (v && typeof v === 'object') {
      const details = v.ResultWriterDetails as JsonObject | undefined;
      if (details) {
        // ResultWriter: the manifest names one file per status; each entry is a child execution.
        const manifest = (await read(String(details.Bucket), String(details.Key))) as JsonObject;
        for (const files of Object.values(manifest.ResultFiles as JsonObject)) {
          for (const f of files as JsonObject[]) {
            for (const child of (await read(String(manifest.DestinationBucket), String(f.Key))) as JsonObject[]) {
              if (child.Status === 'SUCCEEDED') await walk(JSON.parse(String(child.Output)) as Json);
              else
                out.push({ batchError: { Error: child.Error, Cause: child.Cause }, failedKeys: await keysOf(JSON.parse(String(child.Input)) as JsonObject) });
            }
          }
        }
      } else if (Array.isArray(v.converted) || Array.isArray(v.failed) || v.batchError) out.push(v.batchError ? { ...v, failedKeys: await keysOf(v) } : v);
      else for (const x of Object.values(v)) await walk(x);
    }
  };
  await walk(output);
  return out;
}

/** Flattens an execution's batch results into one outcome per key. */
export async function outcomes(world: LocalWorld, output: Json | undefined): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (const b of await batchResults(world, output)) {
    for (const c of (b.converted ?? []) as JsonObject[]) out.push({ key: String(c.key), status: 'converted', output: String(c.output) });
    for (const f of (b.failed ?? []) as JsonObject[]) out.push({ key: String(f.key), status: 'failed', error: String(f.error) });
    if (b.batchError) {
      const e = b.batchError as JsonObject;
      for (const k of (b.failedKeys ?? []) as string[]) out.push({ key: k, status: 'failed', error: `${String(e.Error)}: ${String(e.Cause).slice(0, 200)}` });
    }
  }
  return out.sort((a, b) => a.key.localeCompare(b.key));
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
  // One line, no stack trace, when the machine lacks the OpenSSH the run starts.
  const missing = missingPrograms('npm run local', OPENSSH);
  if (missing) {
    console.error(missing);
    return 2;
  }
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
    // No overlap when the lister's task never started (e.g. RunTask denied).
    const second = overlap ? await overlap : undefined;
    world.beforeTask = undefined;
    log(`\nscheduled run 1: ${first.status}${first.error ? ` ${first.error}: ${first.cause}` : ''}`);
    if (process.env.LOCAL_DEBUG) for (const t of world.tasks) log([t.container, t.exitCode, t.stdout.slice(-800), t.stderr.slice(-800)].join(' '));
    const lock = (second?.output as JsonObject | undefined)?.lock as JsonObject | undefined;
    log(
      `scheduled run 2 (overlapping): ${second ? `${second.status}, ${lock ? `skipped: lock held by ${String(lock.holder)}` : 'NOT skipped'}` : "NOT started (the first run's lister task never started)"}`,
    );
    // Both runs succeed: a malformed file fails alone (in the output), never the execution; the overlap skips.
    ok &&= first.status === 'SUCCEEDED' && second?.status === 'SUCCEEDED' && !!lock;

    const results = await outcomes(world, first.output);
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
        verdict =
          body === sample.expected
            ? `converted -> ${o.output} (identical to the lab's expected output)`
            : `converted -> ${o.output} but DIFFERS from the expected output`;
      }
      ok &&= /^(converted ->.*identical|failed as expected)/.test(verdict);
      log(`  ${key.padEnd(36)} ${verdict}`);
    }
    const young = results.some((r) => r.key.endsWith('still-uploading.xml'));
    log(`  ${'incoming/still-uploading.xml'.padEnd(36)} ${young ? 'INGESTED although too young' : 'left on SFTP for a later run (too young)'}`);
    ok &&= !young;
    const tasks1 = world.tasks.filter((t) => t.execution === first.arn);
    log(
      `  tasks: ${tasks1.filter((t) => t.container === 'sftp-lister').length} lister, ${tasks1.filter((t) => t.container === 'converter').length} converter (batches of up to 50 keys)`,
    );

    // 2. The next scheduled run finds nothing new.
    const next = await pipeline.execute({ ingest: { source: 'schedule' } }, 'scheduled-3');
    const nextOutcomes = await outcomes(world, next.output);
    log(`\nscheduled run 3: ${next.status}, ${nextOutcomes.length} files converted (nothing new on SFTP)`);
    ok &&= next.status === 'SUCCEEDED' && nextOutcomes.length === 0;

    // 3. Contract 1, the lab's: a JSON array of keys.
    const keys = samples
      .filter((s) => s.name.startsWith('customer') || s.name.startsWith('plane') || s.name.startsWith('mismatched'))
      .map((s) => `incoming/${s.name}`);
    const lab = await pipeline.execute(keys, 'lab-contract');
    log(`\ncontract 1 ${JSON.stringify(keys)}: ${lab.status}${lab.error ? ` ${lab.error}: ${lab.cause}` : ''}`);
    const labOutcomes = await outcomes(world, lab.output);
    for (const o of labOutcomes) log(`  ${o.key.padEnd(36)} ${o.status}${o.error ? `: ${o.error}` : ` -> ${o.output}`}`);
    ok &&= lab.status === 'SUCCEEDED' && labOutcomes.length === keys.length;

    // 4. Contract 2: a prefix.
    const prefix = await pipeline.execute({ prefix: 'incoming/' }, 'prefix-contract');
    const prefixOutcomes = await outcomes(world, prefix.output);
    log(
      `\ncontract 2 {"prefix": "incoming/"}: ${prefix.status}, ${prefixOutcomes.filter((o) => o.status === 'converted').length} converted, ${prefixOutcomes.filter((o) => o.status === 'failed').length} failed${prefix.error ? ` ${prefix.error}: ${prefix.cause}` : ''}`,
    );
    ok &&= prefix.status === 'SUCCEEDED' && prefixOutcomes.length === samples.length;

    log('\ntasks (container-override environment as the state computed it; exit code):');
    for (const t of world.tasks) {
      const env = Object.entries(t.overrides)
        .map(([k, v]) => `${k}=${v.length > 90 ? `${v.slice(0, 87)}...` : v}`)
        .join(' ');
      log(`  ${t.execution.split(':').pop()!.padEnd(16)} ${t.container.padEnd(11)} exit ${String(t.exitCode).padEnd(4)} ${t.seconds.toFixed(1)}s  ${env}`);
    }
    // IAM: every call the state machine and the tasks made, as the simulator decided it.
    const denied = world.iam.log.filter((d) => d.decision !== 'Allowed');
    const byRole = new Map<string, number>();
    for (const d of world.iam.log) byRole.set(d.role, (byRole.get(d.role) ?? 0) + 1);
    log(
      `\nIAM: ${world.iam.log.length} calls authorized against the synthesized policies (${[...byRole].map(([r, n]) => `${r} ${n}`).join(', ')}), ${denied.length} denied`,
    );
    for (const d of denied.slice(0, 10)) log(`  DENIED ${d.role}: ${d.action} on ${d.resource}${d.note ? ` ${d.note}` : ''}`);
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
