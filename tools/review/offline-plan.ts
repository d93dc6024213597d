// Offline `terraform plan -refresh=false` of synthesized stacks, for `npm run review` and the
// secret-leak test. Nothing in the repo's stacks is changed: each stack is copied into a work folder
// and a TEMPORARY override file is added there that
//   - points the backend at a local state file in the work folder,
//   - configures the aws provider with fake keys and skip_credentials_validation /
//     skip_requesting_account_id / skip_metadata_api_check / skip_region_validation,
//   - sends the provider's STS and EC2 calls (data sources aws_caller_identity and
//     aws_availability_zones) to a local stub on 127.0.0.1 that answers with the fake account and AZs,
//   - points each cross-stack terraform_remote_state at a local state file holding the producer stack's
//     outputs, computed from its synthesized JSON by the security model (fake ARNs and names).
// Stacks with the docker provider are skipped (that provider is not in the offline mirror).
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { findTerraform, offlineTerraformEnv } from '../../scripts/terraform';
import type { SynthesizedApp } from '../tf-json';
import { FAKE_ACCOUNT, Resolver } from './resolver';

export interface PlanResult {
  readonly stack: string;
  readonly status: 'planned' | 'skipped' | 'failed';
  /** Why skipped or failed. */
  readonly reason?: string;
  /** Planned resource actions: create, update, delete, replace, no-op counts. */
  readonly actions?: Record<string, number>;
  /** `terraform show -json` of the saved plan. */
  readonly planJson?: string;
  /** Folder the stack was planned in (cdk.tf.json copy, override, plan, state files, upstream states). */
  readonly workdir: string;
}

/** The STS/EC2 answers the aws provider's data sources need, from a server on 127.0.0.1. */
export async function startAwsStub(region: string): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const zones = ['a', 'b', 'c', 'd', 'e', 'f'];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const params = new URLSearchParams(Buffer.concat(chunks).toString('utf8') || (req.url ?? '').split('?')[1] || '');
      const action = params.get('Action') ?? '';
      requests.push(action);
      let body: string;
      if (action === 'GetCallerIdentity') {
        body = `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::${FAKE_ACCOUNT}:user/offline-review</Arn><UserId>AIDAOFFLINEREVIEW</UserId><Account>${FAKE_ACCOUNT}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>offline</RequestId></ResponseMetadata></GetCallerIdentityResponse>`;
      } else if (action === 'DescribeAvailabilityZones') {
        const items = zones
          .map(
            (z, i) =>
              `<item><zoneName>${region}${z}</zoneName><zoneState>available</zoneState><regionName>${region}</regionName><zoneId>fake-az${i + 1}</zoneId><optInStatus>opt-in-not-required</optInStatus><zoneType>availability-zone</zoneType><groupName>${region}</groupName><networkBorderGroup>${region}</networkBorderGroup><messageSet/></item>`,
          )
          .join('');
        body = `<DescribeAvailabilityZonesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>offline</requestId><availabilityZoneInfo>${items}</availabilityZoneInfo></DescribeAvailabilityZonesResponse>`;
      } else {
        res.writeHead(400, { 'content-type': 'text/xml' });
        res.end(
          `<ErrorResponse><Error><Type>Sender</Type><Code>UnsupportedOperation</Code><Message>offline stub: ${action || req.url} is not answered</Message></Error><RequestId>offline</RequestId></ErrorResponse>`,
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((r) => server.close(() => r())) };
}

/** The cty type Terraform records for an output value in a state file. */
function ctyType(v: unknown): unknown {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return ['tuple', v.map(ctyType)];
  if (v && typeof v === 'object') return ['object', Object.fromEntries(Object.entries(v).map(([k, x]) => [k, ctyType(x)]))];
  return 'string';
}

/** A state file with only outputs: what a producer stack would hold after apply, with fake values. */
function outputsState(app: SynthesizedApp, resolver: Resolver, stack: string): string {
  const outputs: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(app.stacks[stack].output ?? {})) {
    const value = resolver.deep(stack, o.value, false);
    outputs[name] = { value, type: ctyType(value), ...(o.sensitive ? { sensitive: true } : {}) };
  }
  return JSON.stringify(
    { version: 4, terraform_version: '1.11.0', serial: 1, lineage: `offline-${stack}`, outputs, resources: [], check_results: null },
    null,
    2,
  );
}

function run(bin: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { cwd, env, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : 1) : 0, stdout, stderr });
    });
  });
}

/** The name of the file added to each copied stack: recognisably temporary, never in the repo. */
export const OVERRIDE_FILE = 'zz_offline_review_override.tf.json';

/** Plans every stack of a synthesized app offline in `workroot` (which must not be inside the repo's stacks). */
export interface PlanOptions {
  readonly concurrency?: number;
  readonly terraform?: string;
  /** Called as each stack reaches a step (`init`, `plan`, `show`) and when its result is known. */
  readonly onProgress?: (stack: string, step: 'init' | 'plan' | 'show' | 'done', result?: PlanResult) => void;
}

export async function planStacks(app: SynthesizedApp, workroot: string, options: PlanOptions = {}): Promise<PlanResult[]> {
  const terraform = options.terraform ?? findTerraform();
  const resolver = new Resolver(app);
  const names = Object.keys(app.stacks);
  if (!terraform) return names.map((stack) => ({ stack, status: 'skipped', reason: 'terraform is not on PATH', workdir: '' }));
  fs.mkdirSync(workroot, { recursive: true });
  const regions = [...new Set(names.map((s) => app.stacks[s].provider?.aws?.[0]?.region).filter(Boolean))] as string[];
  const stub = await startAwsStub(regions[0] ?? 'us-east-1');
  const env = offlineTerraformEnv();
  try {
    const planOne = async (stack: string): Promise<PlanResult> => {
      const json = app.stacks[stack];
      const workdir = path.join(workroot, stack);
      if (json.provider?.docker) return { stack, status: 'skipped', reason: 'uses the docker provider (not in the offline provider mirror)', workdir };
      fs.rmSync(workdir, { recursive: true, force: true });
      fs.mkdirSync(workdir, { recursive: true });
      fs.copyFileSync(path.join(app.dirs[stack], 'cdk.tf.json'), path.join(workdir, 'cdk.tf.json'));
      const remote: Record<string, unknown> = {};
      for (const name of Object.keys(json.data?.terraform_remote_state ?? {})) {
        const producer = name.replace(/^cross-stack-reference-input-/, '');
        if (!app.stacks[producer]) return { stack, status: 'failed', reason: `remote state ${name} names no stack of this app`, workdir };
        const file = path.join(workdir, `upstream-${producer}.tfstate`);
        fs.writeFileSync(file, outputsState(app, resolver, producer));
        remote[name] = { backend: 'local', config: { path: file } };
      }
      const override: Record<string, unknown> = {
        terraform: { backend: { local: { path: path.join(workdir, 'terraform.tfstate') } } },
        provider: {
          aws: {
            access_key: 'AKIAOFFLINEREVIEW000',
            secret_key: 'offline-review-fake-secret-key',
            skip_credentials_validation: true,
            skip_requesting_account_id: true,
            skip_metadata_api_check: true,
            skip_region_validation: true,
            max_retries: 1,
            endpoints: [{ sts: stub.url, ec2: stub.url }],
          },
        },
      };
      if (Object.keys(remote).length) override.data = { terraform_remote_state: remote };
      fs.writeFileSync(path.join(workdir, OVERRIDE_FILE), JSON.stringify(override, null, 2));
      options.onProgress?.(stack, 'init');
      const init = await run(terraform, ['init', '-input=false', '-no-color'], workdir, env);
      if (init.code !== 0) return { stack, status: 'failed', reason: `terraform init: ${firstError(init.stderr || init.stdout)}`, workdir };
      options.onProgress?.(stack, 'plan');
      const plan = await run(terraform, ['plan', '-refresh=false', '-input=false', '-no-color', '-lock=false', '-out=plan.bin'], workdir, env);
      fs.writeFileSync(path.join(workdir, 'plan.log'), plan.stdout + plan.stderr);
      if (plan.code !== 0) return { stack, status: 'failed', reason: `terraform plan: ${firstError(plan.stderr || plan.stdout)}`, workdir };
      options.onProgress?.(stack, 'show');
      const show = await run(terraform, ['show', '-json', '-no-color', 'plan.bin'], workdir, env);
      if (show.code !== 0) return { stack, status: 'failed', reason: `terraform show: ${firstError(show.stderr)}`, workdir };
      fs.writeFileSync(path.join(workdir, 'plan.json'), show.stdout);
      const parsed = JSON.parse(show.stdout) as { resource_changes?: { change: { actions: string[] } }[] };
      const actions: Record<string, number> = {};
      for (const rc of parsed.resource_changes ?? []) {
        const a = rc.change.actions.join('+');
        const key = a === 'delete+create' || a === 'create+delete' ? 'replace' : a;
        actions[key] = (actions[key] ?? 0) + 1;
      }
      return { stack, status: 'planned', actions, planJson: show.stdout, workdir };
    };
    // Bounded parallelism: each plan runs a 700 MB provider process.
    const results: PlanResult[] = [];
    const queue = [...names];
    const workers = Array.from({ length: Math.max(1, options.concurrency ?? 2) }, async () => {
      for (let s = queue.shift(); s !== undefined; s = queue.shift()) {
        const result = await planOne(s);
        options.onProgress?.(s, 'done', result);
        results.push(result);
      }
    });
    await Promise.all(workers);
    return names.map((n) => results.find((r) => r.stack === n)!);
  } finally {
    await stub.close();
  }
}

function firstError(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^[│╷╵]\s*$/.test(l));
  const i = lines.findIndex((l) => /Error/.test(l));
  return lines
    .slice(Math.max(0, i), Math.max(0, i) + 3)
    .map((l) => l.replace(/^[│╷╵]\s*/, ''))
    .join(' | ');
}
