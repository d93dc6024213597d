// `npm run review`: an offline security review of what would be deployed. Synthesizes the app (as
// `npm start` does) and prints, per stack:
//   - resource counts by type;
//   - the IAM matrix: each role, who may assume it, and every statement (effect, actions, resources,
//     conditions) with concrete ARNs (fake account 123456789012), plus S3 access simulated with
//     @cloud-copilot/iam-simulate per role, bucket and prefix (bucket policies applied);
//   - network exposure: ingress and egress rules, endpoints, anything public;
//   - where terraform is on PATH: an offline `terraform plan -refresh=false` summary (see
//     scripts/offline-plan.ts for the temporary override and the local STS/EC2 stub it uses).
// Needs no AWS account, credentials or network. Exits 1 if a stack fails to plan.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../main';
import { ConfigError } from '../stacks/config';
import { OVERRIDE_FILE, planStacks, PlanResult } from './offline-plan';
import {
  asArray,
  BucketModel,
  buildSecurityModel,
  FAKE_ACCOUNT,
  networkExposure,
  readSynthesized,
  RoleModel,
  SecurityModel,
  simulate,
  statementsOf,
  trustedPrincipals,
} from './security-model';
import { findTerraform, terraformVersion } from './terraform';

const short = (arn: string) => arn.replace(`:${FAKE_ACCOUNT}:`, '::').replace(/^arn:aws:/, '');

function conditionText(c: Record<string, Record<string, string | string[]>> | undefined): string {
  if (!c) return '';
  return Object.entries(c)
    .flatMap(([op, kv]) => Object.entries(kv).map(([k, v]) => `${k} ${op} ${asArray(v).map(short).join('|')}`))
    .join('; ');
}

function table(rows: string[][], indent = '    '): string {
  if (rows.length === 0) return `${indent}(none)`;
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()).join('\n');
}

/** S3 object prefixes a bucket's grants name (`''` for the whole bucket), plus one nobody was granted. */
function probePrefixes(model: SecurityModel, bucket: BucketModel): string[] {
  const prefixes = new Set<string>();
  for (const r of model.roles) {
    for (const p of r.policies) {
      for (const st of statementsOf(p.document)) {
        for (const res of asArray(st.Resource)) {
          if (res.startsWith(`${bucket.arn}/`)) prefixes.add(res.slice(bucket.arn.length + 1).replace(/\*$/, ''));
        }
      }
    }
  }
  prefixes.add('some-other-prefix/');
  return [...prefixes].sort();
}

/** Per role with any S3 grant: Get/Put/Delete/List on each bucket prefix, as iam-simulate decides. */
async function s3Matrix(model: SecurityModel, roles: RoleModel[]): Promise<string> {
  const rows: string[][] = [['role', 'bucket/prefix', 'get', 'put', 'delete', 'list']];
  const mark = (d: string) => (d === 'Allowed' ? 'yes' : d === 'ExplicitlyDenied' ? 'DENY' : '-');
  for (const role of roles) {
    const touchesS3 = role.policies.some((p) => statementsOf(p.document).some((st) => asArray(st.Action).some((a) => a.startsWith('s3:'))));
    if (!touchesS3) continue;
    for (const bucket of model.buckets) {
      for (const prefix of probePrefixes(model, bucket)) {
        const key = `${bucket.arn}/${prefix}example.xml`;
        const get = await simulate(model, role, { action: 's3:GetObject', resource: key });
        const put = await simulate(model, role, { action: 's3:PutObject', resource: key });
        const del = await simulate(model, role, { action: 's3:DeleteObject', resource: key });
        const list = await simulate(model, role, { action: 's3:ListBucket', resource: bucket.arn, context: { 's3:prefix': prefix } });
        if ([get, put, del, list].every((d) => d !== 'Allowed')) continue;
        rows.push([role.name, `${bucket.name}/${prefix}`, mark(get), mark(put), mark(del), mark(list)]);
      }
    }
  }
  return rows.length > 1 ? table(rows) : '    (no S3 access)';
}

function iamSection(model: SecurityModel, stack: string): string {
  const out: string[] = [];
  for (const role of model.roles.filter((r) => r.stack === stack)) {
    const trust = statementsOf(role.trust).map((st) => conditionText(st.Condition)).filter(Boolean).join('; ');
    out.push(`  role ${role.name}: assumed by ${trustedPrincipals(role.trust).join(', ')}${trust ? ` when ${trust}` : ''}`);
    const rows: string[][] = [];
    for (const p of role.policies) {
      for (const st of statementsOf(p.document)) {
        rows.push([st.Effect, asArray(st.Action).join(', '), asArray(st.Resource).map(short).join(', '), conditionText(st.Condition)]);
      }
    }
    out.push(table(rows));
  }
  for (const b of model.buckets.filter((x) => x.stack === stack)) {
    out.push(`  bucket policy of ${b.name}:`);
    out.push(table(statementsOf(b.policy ?? { Version: '', Statement: [] }).map((st) => [st.Effect, `principal ${JSON.stringify(st.Principal)}`, asArray(st.Action).join(', '), conditionText(st.Condition)])));
  }
  return out.length ? out.join('\n') : '  (no IAM roles or bucket policies)';
}

function planLine(p: PlanResult | undefined): string {
  if (!p) return 'not planned';
  if (p.status !== 'planned') return `${p.status}: ${p.reason}`;
  const a = p.actions ?? {};
  const n = (k: string) => a[k] ?? 0;
  return `plan: ${n('create')} to add, ${n('update')} to change, ${n('delete') + n('replace')} to destroy${n('replace') ? ` (${n('replace')} replaced)` : ''}${n('read') ? `, ${n('read')} data source(s) read at apply` : ''}`;
}

async function run(): Promise<number> {
  try {
    main();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  const outdir = path.resolve(process.env.CDKTF_OUTDIR ?? 'cdktf.out');
  const app = readSynthesized(outdir);
  const model = buildSecurityModel(app);
  const exposure = networkExposure(model);
  const terraform = findTerraform();
  const workroot = fs.mkdtempSync(path.join(os.tmpdir(), 'review-plan-'));
  let plans: PlanResult[] = [];
  try {
    if (terraform) plans = await planStacks(app, workroot);

    console.log(`Security review of ${path.relative(process.cwd(), outdir) || outdir} (offline; ARNs use the fake account ${FAKE_ACCOUNT}, shown as "::")`);
    if (terraform) {
      console.log(`Plans: ${terraformVersion(terraform)}, terraform plan -refresh=false on a copy of each stack with a temporary ${OVERRIDE_FILE}`);
      console.log('       (local backend, fake keys, skip_credentials_validation/skip_requesting_account_id/skip_metadata_api_check,');
      console.log('        STS/EC2 data sources answered by a stub on 127.0.0.1, upstream stack outputs from the synthesized JSON)');
    } else {
      console.log('Plans: terraform is not on PATH; plans skipped');
    }

    for (const stack of Object.keys(app.stacks)) {
      const json = app.stacks[stack];
      const counts = Object.entries(json.resource ?? {}).map(([type, byName]) => [type, String(Object.keys(byName).length)] as [string, string]).sort();
      const total = counts.reduce((n, [, c]) => n + Number(c), 0);
      console.log(`\n=== stack ${stack}: ${total} resources; ${planLine(plans.find((p) => p.stack === stack))}`);
      console.log('  resources by type:');
      console.log(table(counts.map(([t, c]) => [c.padStart(3), t])));
      console.log('  IAM:');
      console.log(iamSection(model, stack));
      const roles = model.roles.filter((r) => r.stack === stack);
      if (roles.length) {
        console.log('  S3 access (simulated; "-" = implicitly denied):');
        console.log(await s3Matrix(model, roles));
      }
      const mine = exposure.filter((e) => e.stack === stack);
      console.log('  network exposure:');
      console.log(table(mine.map((e) => [e.public ? 'PUBLIC' : 'private', e.kind, e.detail])));
    }

    const publicItems = exposure.filter((e) => e.public);
    console.log(`\n=== summary: ${Object.keys(app.stacks).length} stacks, ${model.roles.length} IAM roles, ${model.buckets.length} buckets, ${publicItems.length} public exposure item(s)`);
    for (const e of publicItems) console.log(`  PUBLIC ${e.stack}: ${e.detail}`);
    const failed = plans.filter((p) => p.status === 'failed');
    for (const p of failed) console.log(`  PLAN FAILED ${p.stack}: ${p.reason}`);
    return failed.length ? 1 : 0;
  } finally {
    fs.rmSync(workroot, { recursive: true, force: true });
  }
}

run().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  },
);
