// `npm run smoke -- --stage NAME`: the pipeline on a real AWS account, end to end, then gone again.
//
//   1. makes a throwaway SFTP key pair and deploys every stack as stage NAME (cdktf deploy '*');
//   2. puts the private key into the stage's secret (never into Terraform or a log);
//   3. puts the lab's sample XML files where the SFTP user's uploads land (the SFTP bucket, under the
//      user's home folder: that is where Transfer Family stores an upload);
//   4. starts the state machine with the schedule's input ({"ingest": {}}) once the files are older than
//      the lister's minimum age, and waits until every output exists or the time is up;
//   5. compares every JSON output with the lab's expected output (scripts/smoke-verify.ts) and prints a
//      per-file table;
//   6. destroys the stage, also when a step failed (--keep leaves it for inspection).
//
// Needs: AWS credentials for the account, the AWS CLI v2, Docker (the images stack builds both images),
// ssh-keygen, terraform. Exit 0 when every output is byte-identical to the lab's, 1 otherwise, 2 for
// bad arguments or a missing tool. Cost and duration: README, "Smoke test on AWS".
import { spawnSync, SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeleteObjectsCommand, ListObjectVersionsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DEFAULT_LAYOUT } from '../stacks/constructs/refs';
import { CORPUS_DIR, REPO_ROOT } from './paths';
import { formatTable, labCases, SmokeCase, verifyOutputs } from './smoke-verify';

const REPO = REPO_ROOT;
const LAB = path.join(CORPUS_DIR, 'lab');

interface Options {
  stage: string;
  region: string;
  keep: boolean;
  timeoutMinutes: number;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Options {
  const opts: Partial<Options> = { keep: false, timeoutMinutes: 20, region: process.env.PIPELINE_REGION ?? process.env.AWS_REGION };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--stage') opts.stage = value();
    else if (a === '--region') opts.region = value();
    else if (a === '--keep') opts.keep = true;
    else if (a === '--timeout-minutes') opts.timeoutMinutes = Number(value());
    else throw new UsageError(`unknown argument ${a}`);
  }
  if (!opts.stage) throw new UsageError('--stage NAME is required (a throwaway stage, e.g. smoke1)');
  // The smoke run destroys what it deployed: never against a stage that looks like a real one.
  if (/^(prod|production|prd|live|main)$/.test(opts.stage))
    throw new UsageError(`--stage ${opts.stage} looks like a real stage; the smoke run destroys its stage`);
  if (!opts.region) throw new UsageError('--region (or PIPELINE_REGION / AWS_REGION) is required');
  if (!(opts.timeoutMinutes! > 0)) throw new UsageError('--timeout-minutes must be a positive number');
  return opts as Options;
}

/** Runs a command, inheriting stdio unless `capture`; throws with the command line on failure. */
function run(cmd: string, args: string[], options: SpawnSyncOptions & { capture?: boolean } = {}): string {
  const res = spawnSync(cmd, args, { stdio: options.capture ? ['ignore', 'pipe', 'inherit'] : 'inherit', encoding: 'utf8', ...options });
  if (res.error) throw res.error;
  if (res.status !== 0) throw new Error(`${cmd} ${args[0] ?? ''} exited ${res.status}`);
  return typeof res.stdout === 'string' ? res.stdout : '';
}

/** Fails with one line when a tool is missing (or, given `args`, when that check command fails). */
function need(tool: string, args?: string[]): void {
  const res = spawnSync(tool, args ?? ['--help'], { stdio: 'ignore' });
  if (res.error || (args && res.status !== 0)) throw new UsageError(`${tool} is needed${args ? ` (${tool} ${args.join(' ')} failed)` : ''}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Outputs = Record<string, Record<string, unknown>>;

function output(outputs: Outputs, stack: string, name: string): string {
  const v = outputs[stack]?.[name];
  if (typeof v !== 'string' || v === '') throw new Error(`deploy output ${stack}.${name} is missing`);
  return v;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  need('aws', ['sts', 'get-caller-identity']);
  need('docker', ['info']);
  need('ssh-keygen');
  need('terraform', ['version']);
  const cases = labCases(LAB);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `smoke-${opts.stage}-`));
  const keyFile = path.join(work, 'sftp_key');
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `smoke-${opts.stage}`, '-f', keyFile]);
  const env = {
    ...process.env,
    PIPELINE_STAGE: opts.stage,
    PIPELINE_REGION: opts.region,
    AWS_REGION: opts.region,
    PIPELINE_SFTP_PUBLIC_KEYS: fs.readFileSync(`${keyFile}.pub`, 'utf8').trim(),
  };
  const started = Date.now();
  let deployed = false;
  let outputs: Outputs = {};
  let exitCode = 1;
  try {
    const account = JSON.parse(run('aws', ['sts', 'get-caller-identity', '--output', 'json'], { capture: true, env })).Account as string;
    const registry = `${account}.dkr.ecr.${opts.region}.amazonaws.com`;
    // The images stack pushes with ~/.docker/config.json: log in to the registry first (README, Deploy).
    const password = run('aws', ['ecr', 'get-login-password', '--region', opts.region], { capture: true, env });
    run('docker', ['login', '--username', 'AWS', '--password-stdin', registry], { input: password, stdio: ['pipe', 'inherit', 'inherit'], env });

    const outputsFile = path.join(work, 'outputs.json');
    deployed = true; // from here on a failure may leave resources: always destroy
    run('npx', ['cdktf', 'deploy', '*', '--auto-approve', '--outputs-file', outputsFile], { cwd: REPO, env });
    outputs = JSON.parse(fs.readFileSync(outputsFile, 'utf8')) as Outputs;

    // The key goes from the file to Secrets Manager directly; only its ARN is printed.
    run(
      'aws',
      [
        'secretsmanager',
        'put-secret-value',
        '--secret-id',
        output(outputs, 'sftp', 'sftp_private_key_secret_arn'),
        '--secret-string',
        `file://${keyFile}`,
        '--output',
        'text',
        '--query',
        'ARN',
      ],
      { env },
    );

    const s3 = new S3Client({ region: opts.region });
    const sftpBucket = output(outputs, 'sftp', 'sftp_bucket_name');
    const home = `${output(outputs, 'sftp', 'sftp_user')}/`;
    for (const c of cases) await s3.send(new PutObjectCommand({ Bucket: sftpBucket, Key: home + c.name, Body: c.xml }));
    console.log(`smoke: put ${cases.length} lab files into s3://${sftpBucket}/${home}`);

    const xmlBucket = output(outputs, 'cluster', 'xml_bucket_name');
    const stateMachine = output(outputs, 'batch', 'state_machine_arn');
    // The lister lands SFTP files under the ingest prefix; the converter writes outputPrefix + key + .json.
    const outputKeyOf = (c: SmokeCase) => `${DEFAULT_LAYOUT.outputPrefix}${DEFAULT_LAYOUT.ingestPrefix}${c.name}.json`;
    const deadline = Date.now() + opts.timeoutMinutes * 60_000;
    // Files younger than the lister's minimum age (60 s by default) are left for a later run.
    await sleep(75_000);
    let rows = await verifyOutputs(s3, xmlBucket, cases, outputKeyOf);
    while (rows.some((r) => r.verdict === 'missing') && Date.now() < deadline) {
      const exec = JSON.parse(
        run('aws', ['stepfunctions', 'start-execution', '--state-machine-arn', stateMachine, '--input', '{"ingest": {}}', '--output', 'json'], {
          capture: true,
          env,
        }),
      );
      console.log(`smoke: started ${exec.executionArn}`);
      let status = 'RUNNING';
      while (status === 'RUNNING' && Date.now() < deadline) {
        await sleep(15_000);
        status = JSON.parse(
          run('aws', ['stepfunctions', 'describe-execution', '--execution-arn', exec.executionArn, '--output', 'json'], { capture: true, env }),
        ).status;
      }
      console.log(`smoke: execution ${status}`);
      rows = await verifyOutputs(s3, xmlBucket, cases, outputKeyOf);
      // A scheduled run may have held the ingest lock ("Ingest skipped"): try again shortly.
      if (rows.some((r) => r.verdict === 'missing')) await sleep(30_000);
    }
    console.log(formatTable(rows));
    exitCode = rows.every((r) => r.verdict === 'identical') ? 0 : 1;
  } catch (e) {
    console.error(`smoke: ${(e as Error).message}`);
  } finally {
    if (deployed && !opts.keep) exitCode = (await teardown(opts, env, outputs)) ? exitCode : 1;
    else if (opts.keep) console.log(`smoke: --keep: stage ${opts.stage} left deployed; destroy it with PIPELINE_STAGE=${opts.stage} npx cdktf destroy '*'`);
    fs.rmSync(work, { recursive: true, force: true });
    console.log(`smoke: ${exitCode === 0 ? 'passed' : 'FAILED'} in ${Math.round((Date.now() - started) / 60_000)} min`);
  }
  return exitCode;
}

/** Deletes every version and delete marker in a bucket (a versioned bucket must be empty to go). */
async function emptyBucket(s3: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, MaxKeys: 1000 }));
    const objects = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({ Key: v.Key!, VersionId: v.VersionId }));
    if (objects.length === 0) return;
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }));
  }
}

/**
 * Empties what the stage filled (both buckets, every version; the images in ECR), then destroys it.
 * Returns false, saying what to clean by hand, when anything failed.
 */
async function teardown(opts: Options, env: NodeJS.ProcessEnv, outputs: Outputs): Promise<boolean> {
  try {
    const s3 = new S3Client({ region: opts.region });
    for (const [stack, name] of [
      ['sftp', 'sftp_bucket_name'],
      ['cluster', 'xml_bucket_name'],
    ]) {
      const bucket = outputs[stack]?.[name];
      if (typeof bucket === 'string' && bucket) await emptyBucket(s3, bucket);
    }
    for (const name of ['repo_uri_sftp_lister', 'repo_uri_converter']) {
      const uri = outputs.cluster?.[name];
      if (typeof uri !== 'string' || !uri) continue;
      const repo = uri.slice(uri.indexOf('/') + 1);
      const ids = JSON.parse(
        run('aws', ['ecr', 'list-images', '--repository-name', repo, '--query', 'imageIds', '--output', 'json'], { capture: true, env }),
      ) as unknown[];
      if (ids.length > 0)
        run(
          'aws',
          ['ecr', 'batch-delete-image', '--repository-name', repo, '--image-ids', JSON.stringify(ids), '--output', 'text', '--query', 'length(imageIds)'],
          { env },
        );
    }
    run('npx', ['cdktf', 'destroy', '*', '--auto-approve'], { cwd: REPO, env });
    return true;
  } catch (e) {
    console.error(
      `smoke: destroy failed (${(e as Error).message}); run PIPELINE_STAGE=${opts.stage} npx cdktf destroy '*' and check the account for resources tagged stage=${opts.stage}`,
    );
    return false;
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`smoke: ${(e as Error).message}`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
