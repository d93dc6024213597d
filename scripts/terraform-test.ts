// `terraform test` (apply mode) of every AWS stack of a synthesized app, offline, with a mocked aws
// provider (`npm run test:terraform`, and __tests__/stacks/terraform-test.test.ts in the suite).
//
// Each stack's cdk.tf.json is written into a work folder with a generated test file that
//   - mocks the aws provider (`mock_provider "aws"`, override_during = plan: mocked values are known
//     while planning, so the provider's own validators - ARNs, JSON policies, names - run on them),
//   - gives every resource realistic computed attributes (ARNs, ids, names from the security model's
//     Resolver: the same values the IAM matrix uses) and a fixed value to every other computed
//     attribute (an ARN that parses for `arn`/`*_arn`): random mock values would differ between plan
//     and apply,
//   - renders aws_iam_policy_document with the REAL provider (an aliased, credential-less provider:
//     that data source never calls AWS), so cross-stack values flow into the policy JSON Terraform
//     would send to IAM,
//   - overrides each terraform_remote_state (how cdktf wires cross-stack references) with EXACTLY the
//     producer stack's outputs, valued as the producer would export them: a reference to an output that
//     does not exist fails the run ("Unsupported attribute"),
//   - asserts, after apply, what IAM checks and the provider does not: every policy Resource is `*` or
//     an ARN (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html),
//     and the role policy size quotas; and, in each producer, that the outputs other stacks read are
//     the values those stacks were given.
// Stacks with the docker provider (images) are skipped: that provider is not in the offline mirror.
// Mocked providers: https://developer.hashicorp.com/terraform/language/tests/mocking
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../main';
import { ConfigError } from '../stacks/config';
import { FAKE_ACCOUNT, FAKE_PARTITION, Resolver } from '../tools/review';
import { type Block, readApp, type SynthesizedApp } from '../tools/tf-json';
import { findTerraform, offlineTerraformEnv, run, terraformEnv } from './terraform';

/** Name of the generated test file in each stack's work folder. */
export const TEST_FILE = 'tests/mocked-aws.tftest.json';
/** Alias of the real (never-calling-AWS) provider that renders IAM policy documents. */
export const POLICY_PROVIDER_ALIAS = 'policydoc';

export interface StackTestResult {
  readonly stack: string;
  readonly status: 'passed' | 'failed' | 'skipped';
  /** Why skipped or failed (first errors of the run). */
  readonly reason?: string;
  /** Full `terraform test` output. */
  readonly log?: string;
  readonly seconds?: number;
  readonly workdir: string;
}

export interface TerraformTestOptions {
  /** Stacks to test (default: every stack with the aws provider and without docker). */
  readonly stacks?: string[];
  /** Parallel runs (each holds two provider processes, ~550 MB resident each). @default 2 */
  readonly concurrency?: number;
  readonly terraform?: string;
  /** Changes the remote-state outputs a consumer stack is given (used to prove bad values fail). */
  readonly remoteOutputs?: (consumer: string, producer: string, outputs: Record<string, unknown>) => Record<string, unknown>;
}

/** The computed attributes of a block (name -> cty type) and of its nested blocks. */
export interface ComputedBlock {
  readonly attributes: Record<string, unknown>;
  readonly blocks: Record<string, ComputedBlock>;
}

/** Computed attributes of the aws provider's resources and data sources, by type. */
export interface ComputedSchema {
  readonly resources: Record<string, ComputedBlock>;
  readonly data: Record<string, ComputedBlock>;
}

interface SchemaBlock {
  attributes?: Record<string, { type: unknown; computed?: boolean }>;
  block_types?: Record<string, { block: SchemaBlock }>;
}

function computedBlock(block: SchemaBlock): ComputedBlock {
  return {
    attributes: Object.fromEntries(
      Object.entries(block.attributes ?? {})
        .filter(([, a]) => a.computed)
        .map(([n, a]) => [n, a.type]),
    ),
    blocks: Object.fromEntries(Object.entries(block.block_types ?? {}).map(([n, b]) => [n, computedBlock(b.block)])),
  };
}

type Json = Block;

/** A `data.terraform_remote_state.X.outputs.Y` reference of a consumer stack. */
export interface RemoteReference {
  readonly consumer: string;
  readonly producer: string;
  readonly output: string;
  /** Where in the consumer's JSON (`resource.aws_x.y.attr`). */
  readonly where: string;
}

const REMOTE_PREFIX = 'cross-stack-reference-input-';

/** Every remote-state output reference of every stack (cdktf names the data source after the producer). */
export function remoteReferences(app: SynthesizedApp): RemoteReference[] {
  const refs: RemoteReference[] = [];
  for (const [consumer, json] of Object.entries(app.stacks)) {
    const walk = (v: unknown, where: string) => {
      if (typeof v === 'string') {
        for (const m of v.matchAll(/data\.terraform_remote_state\.([\w-]+)\.outputs\.([\w-]+)/g)) {
          refs.push({ consumer, producer: m[1].replace(new RegExp(`^${REMOTE_PREFIX}`), ''), output: m[2], where });
        }
      } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${where}[${i}]`));
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (k !== '//') walk(x, `${where}.${k}`);
    };
    for (const kind of ['resource', 'data', 'output', 'locals'] as const) walk((json as Json)[kind], kind);
  }
  return refs;
}

/** References to a stack or an output that the app does not have: each one would fail on AWS at plan. */
export function danglingRemoteReferences(app: SynthesizedApp): string[] {
  return remoteReferences(app)
    .filter((r) => !app.stacks[r.producer]?.output?.[r.output])
    .map(
      (r) =>
        `stack ${r.consumer} (${r.where}) reads output ${r.output} of stack ${r.producer}, which ${app.stacks[r.producer] ? 'has no such output' : 'does not exist'}`,
    );
}

/**
 * Every output of a producer stack, valued as it would be after apply (fake account, real names). An
 * output no consumer reads may hold a function the Resolver does not evaluate: it stays `<unresolved:...>`
 * (it exists, which is what a consumer's reference needs); `referenced` outputs must resolve.
 */
export function producerOutputs(app: SynthesizedApp, resolver: Resolver, producer: string, referenced: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(app.stacks[producer].output ?? {})) {
    out[name] = resolver.deep(producer, o.value, referenced.has(name));
  }
  return out;
}

/** Reads (and caches in the temp folder) the computed attributes of the aws provider's schema. */
export async function computedSchema(terraform: string, awsVersion: string, env = terraformEnv()): Promise<ComputedSchema> {
  const cache = path.join(os.tmpdir(), `tf-aws-computed-v2-${awsVersion}-${process.getuid?.() ?? 0}.json`);
  if (fs.existsSync(cache)) return JSON.parse(fs.readFileSync(cache, 'utf8')) as ComputedSchema;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tf-aws-schema-'));
  try {
    fs.writeFileSync(
      path.join(dir, 'main.tf.json'),
      JSON.stringify({ terraform: { required_providers: { aws: { source: 'hashicorp/aws', version: awsVersion } } } }),
    );
    const init = await run(terraform, ['init', '-input=false', '-no-color'], dir, env);
    if (init.code !== 0) throw new Error(`terraform init for the aws ${awsVersion} schema failed: ${errorLines(init.stderr || init.stdout)}`);
    const shown = await run(terraform, ['providers', 'schema', '-json'], dir, env);
    if (shown.code !== 0) throw new Error(`terraform providers schema failed: ${errorLines(shown.stderr)}`);
    const all = JSON.parse(shown.stdout).provider_schemas['registry.terraform.io/hashicorp/aws'];
    const computed = (schemas: Record<string, { block: SchemaBlock }>) =>
      Object.fromEntries(Object.entries(schemas).map(([type, x]) => [type, computedBlock(x.block)]));
    const result: ComputedSchema = { resources: computed(all.resource_schemas), data: computed(all.data_source_schemas) };
    fs.writeFileSync(`${cache}.${process.pid}`, JSON.stringify(result));
    fs.renameSync(`${cache}.${process.pid}`, cache);
    return result;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The AWS service of a resource type, for ARNs the Resolver does not model. */
function serviceOf(type: string): string {
  const prefixes: [RegExp, string][] = [
    [/^aws_(vpc|subnet|security_group|default_security_group|route|internet_gateway|nat_gateway|eip|flow_log|network|ec2)/, 'ec2'],
    [/^aws_s3_/, 's3'],
    [/^aws_iam_/, 'iam'],
    [/^aws_cloudwatch_log_/, 'logs'],
    [/^aws_cloudwatch_event_/, 'events'],
    [/^aws_sfn_/, 'states'],
    [/^aws_ssm_/, 'ssm'],
  ];
  return prefixes.find(([re]) => re.test(type))?.[1] ?? type.split('_')[1];
}

/** An ARN that parses (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html). */
function genericArn(type: string, id: string, region: string): string {
  const service = serviceOf(type);
  const resource = `${type.replace(/^aws_/, '').replace(/_/g, '-')}/${id}`;
  if (service === 's3') return `arn:${FAKE_PARTITION}:s3:::${id}`;
  if (service === 'iam') return `arn:${FAKE_PARTITION}:iam::${FAKE_ACCOUNT}:${resource}`;
  return `arn:${FAKE_PARTITION}:${service}:${region}:${FAKE_ACCOUNT}:${resource}`;
}

/**
 * A fixed value for a computed attribute nothing else values. Every computed attribute gets one: a value
 * the mock draws at random differs between plan and apply ("Provider produced inconsistent final plan").
 */
function placeholder(type: string, attr: string, attrType: unknown, id: string, region: string): unknown {
  if (attrType === 'string')
    return attr === 'arn' || attr.endsWith('_arn') ? genericArn(type, attr === 'arn' ? id : `${id}-${attr}`, region) : `${id}-${attr.replace(/_/g, '-')}`;
  if (attrType === 'number') return 0;
  if (attrType === 'bool') return false;
  if (Array.isArray(attrType) && ['list', 'set', 'map'].includes(attrType[0] as string)) return attrType[0] === 'map' ? {} : [];
  return undefined; // objects: left to the mock
}

/**
 * Fixed values for every computed attribute of a block and of its nested blocks (a nested block's values
 * are shared by all its instances, as mock defaults are); attributes set in `configured` are left out:
 * Terraform keeps the configuration's value.
 */
function placeholders(type: string, block: ComputedBlock, id: string, region: string, configured: Json = {}): Json {
  const values: Json = {};
  for (const [attr, attrType] of Object.entries(block.attributes)) {
    if (configured[attr] !== undefined) continue;
    const v = placeholder(type, attr, attrType, id, region);
    if (v !== undefined) values[attr] = v;
  }
  for (const [name, nested] of Object.entries(block.blocks)) {
    const inner = placeholders(type, nested, `${id}-${name.replace(/_/g, '-')}`, region);
    if (Object.keys(inner).length) values[name] = inner;
  }
  return values;
}

/** A Resolver value as the attribute's type; undefined when it cannot be one. */
function typed(value: unknown, type: unknown): unknown {
  if (type === 'string') return typeof value === 'string' ? value : undefined;
  if (type === 'number') return Number.isFinite(Number(value)) ? Number(value) : undefined;
  if (type === 'bool') return value === 'true' || value === true ? true : value === 'false' || value === false ? false : undefined;
  return typeof value === 'object' ? value : undefined;
}

/** Values of data sources the Resolver does not model, shaped as AWS returns them. */
function dataExtras(type: string, region: string): Json {
  switch (type) {
    case 'aws_caller_identity':
      return {
        account_id: FAKE_ACCOUNT,
        id: FAKE_ACCOUNT,
        arn: `arn:${FAKE_PARTITION}:iam::${FAKE_ACCOUNT}:user/terraform-test`,
        user_id: 'AIDAQTERRAFORMTEST01',
      };
    case 'aws_partition':
      return { partition: FAKE_PARTITION, id: FAKE_PARTITION, dns_suffix: 'amazonaws.com', reverse_dns_prefix: 'com.amazonaws' };
    case 'aws_region':
      return { name: region, region, id: region, endpoint: `ec2.${region}.amazonaws.com`, description: region };
    case 'aws_availability_zones': {
      const letters = ['a', 'b', 'c', 'd', 'e', 'f'];
      return {
        id: region,
        names: letters.map((l) => `${region}${l}`),
        zone_ids: letters.map((_, i) => `${region.replace(/-/g, '').slice(0, 4)}-az${i + 1}`),
        group_names: [region],
      };
    }
    default:
      return {};
  }
}

/** The test file for one stack, plus the config changes it needs (policy documents on the real provider). */
export function buildStackTest(
  app: SynthesizedApp,
  stack: string,
  schema: ComputedSchema,
  remote: Record<string, Record<string, unknown>>,
): { config: Json; test: Json } {
  const resolver = new Resolver(app);
  const region = resolver.region(stack);
  const config = JSON.parse(JSON.stringify(app.stacks[stack])) as Json;
  // Terraform test keeps its state in memory; the stack's backend (a path in the repo) is never touched.
  delete config.terraform?.backend;
  const overrideResource: Json[] = [];
  const mockResource: Json = {};
  for (const [type, byName] of Object.entries((config.resource ?? {}) as Record<string, Record<string, Json>>)) {
    const computed = schema.resources[type];
    if (!computed) continue; // not an aws resource
    // Fixed, valid values (ARNs that parse) also where no override below applies.
    const defaults = placeholders(type, computed, 'mock', region);
    if (Object.keys(defaults).length) mockResource[type] = { defaults };
    for (const [name, block] of Object.entries(byName)) {
      let modelled: Record<string, string> = {};
      try {
        modelled = resolver.attributes(stack, type, name, block);
      } catch {
        // names built with functions the Resolver does not evaluate: placeholders only
      }
      const values = placeholders(type, computed, modelled.id ?? `${type.replace(/^aws_/, '').replace(/_/g, '-')}-${name}`, region, block);
      for (const [attr, v] of Object.entries(modelled)) {
        const t = typed(v, computed.attributes[attr]);
        if (attr in computed.attributes && block[attr] === undefined && t !== undefined) values[attr] = t;
      }
      overrideResource.push({ target: `${type}.${name}`, override_during: 'plan', values });
    }
  }
  const overrideData: Json[] = [];
  for (const [type, byName] of Object.entries((config.data ?? {}) as Record<string, Record<string, Json>>)) {
    for (const [name, block] of Object.entries(byName)) {
      if (type === 'terraform_remote_state') {
        const producer = name.replace(new RegExp(`^${REMOTE_PREFIX}`), '');
        if (!remote[producer]) throw new Error(`stack ${stack}: remote state ${name} names no stack of this app`);
        overrideData.push({ target: `data.${type}.${name}`, override_during: 'plan', values: { outputs: remote[producer] } });
        continue;
      }
      if (type === 'aws_iam_policy_document') {
        block.provider = `aws.${POLICY_PROVIDER_ALIAS}`;
        continue;
      }
      const computed = schema.data[type] ?? { attributes: {}, blocks: {} };
      const values = placeholders(type, computed, `${type.replace(/^aws_/, '').replace(/_/g, '-')}-${name}`, region, block);
      const extras = dataExtras(type, region);
      for (const [attr, attrType] of Object.entries(computed.attributes)) {
        if (block[attr] !== undefined) continue;
        let v: unknown;
        try {
          v = typed(resolver.expr(stack, `data.${type}.${name}.${attr}`), attrType);
        } catch {
          v = typed(extras[attr], attrType);
        }
        if (v !== undefined) values[attr] = v;
      }
      overrideData.push({ target: `data.${type}.${name}`, override_during: 'plan', values });
    }
  }
  if (Object.keys(config.data?.aws_iam_policy_document ?? {}).length) {
    // A second, real aws provider: aws_iam_policy_document is computed inside the provider, no AWS call,
    // so no credentials are needed (and none are given: these are not keys).
    const policyProvider = {
      alias: POLICY_PROVIDER_ALIAS,
      region,
      access_key: 'mock_access_key',
      secret_key: 'mock_secret_key',
      skip_credentials_validation: true,
      skip_requesting_account_id: true,
      skip_metadata_api_check: true,
      skip_region_validation: true,
    };
    config.provider = { ...config.provider, aws: [...(config.provider?.aws ?? []), policyProvider] };
  }
  const asserts = [...iamAsserts(config), ...exportAsserts(app, resolver, stack)];
  const test: Json = {
    mock_provider: { aws: { override_during: 'plan', ...(Object.keys(mockResource).length ? { mock_resource: mockResource } : {}) } },
    ...(overrideResource.length ? { override_resource: overrideResource } : {}),
    ...(overrideData.length ? { override_data: overrideData } : {}),
    run: { apply: { command: 'apply', ...(asserts.length ? { assert: asserts } : {}) } },
  };
  return { config, test };
}

/** JSON with object keys sorted, as Terraform's jsonencode writes it. */
function sortedJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(sortedJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${sortedJson((v as Json)[k])}`)
      .join(',')}}`;
  }
  // jsonencode escapes these (https://developer.hashicorp.com/terraform/language/functions/jsonencode).
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * The outputs other stacks read, as this stack computes them under the mock, equal what those stacks are
 * given in their remote state: the values fed across stacks are what the producer really exports.
 */
function exportAsserts(app: SynthesizedApp, resolver: Resolver, stack: string): Json[] {
  const read = new Set(
    remoteReferences(app)
      .filter((r) => r.producer === stack)
      .map((r) => r.output),
  );
  const outputs = producerOutputs(app, resolver, stack, read);
  return [...read]
    .filter((name) => name in outputs)
    .sort()
    .map((name) => {
      const given = sortedJson(outputs[name]).replace(/\$\{/g, '$$${').replace(/%\{/g, '%%{');
      // Mock values only (no secret is ever in these runs): shown also for outputs marked sensitive.
      const actual = app.stacks[stack].output?.[name]?.sensitive ? `nonsensitive(jsonencode(output.${name}))` : `jsonencode(output.${name})`;
      return {
        condition: `\${jsonencode(output.${name}) == ${JSON.stringify(given)}}`,
        error_message: `output ${name} is \${${actual}} after apply, but the stacks reading it are given ${given}`,
      };
    });
}

// IAM refuses a policy whose Resource is neither "*" nor an ARN (MalformedPolicyDocument):
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
// Wildcards (* and ?) may stand in any segment of a policy's ARN.
const ARN_PATTERN = '^arn:(aws[a-z-]*|[*]):[a-z0-9*?-]+:[a-z0-9*?-]*:([0-9*?]*|aws):.+$';

/** Resource types whose `policy` argument is an IAM policy document (with Statement and Resource). */
const IAM_POLICY_TYPES = [
  'aws_iam_role_policy',
  'aws_iam_policy',
  'aws_iam_user_policy',
  'aws_iam_group_policy',
  'aws_s3_bucket_policy',
  'aws_sqs_queue_policy',
  'aws_sns_topic_policy',
  'aws_ecr_repository_policy',
  'aws_secretsmanager_secret_policy',
  'aws_kms_key',
];

// IAM quotas (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html): a role's
// inline policies together at most 10,240 characters, its trust policy at most 2,048 (the default
// quota), white space not counted. Over them, PutRolePolicy / CreateRole fail with LimitExceeded.
const ROLE_INLINE_QUOTA = 10_240;
const ROLE_TRUST_QUOTA = 2_048;
const SIZE = (expr: string) => `length(replace(${expr}, "/\\\\s/", ""))`;

/** Assertions on the IAM documents of the stack, evaluated on the applied values (what IAM would receive). */
function iamAsserts(config: Json): Json[] {
  const asserts: Json[] = [];
  for (const type of IAM_POLICY_TYPES) {
    for (const [name, block] of Object.entries((config.resource?.[type] ?? {}) as Record<string, Json>)) {
      if (typeof block.policy !== 'string') continue;
      const addr = `${type}.${name}`;
      const resources = `flatten([for s in flatten([jsondecode(${addr}.policy).Statement]) : concat(flatten([lookup(s, "Resource", [])]), flatten([lookup(s, "NotResource", [])]))])`;
      asserts.push({
        condition: `\${alltrue([for r in ${resources} : r == "*" || can(regex("${ARN_PATTERN}", r))])}`,
        error_message: `${addr}.policy: IAM refuses a Resource that is neither * nor an ARN: \${join(", ", [for r in ${resources} : r if !(r == "*" || can(regex("${ARN_PATTERN}", r)))])}`,
      });
    }
  }
  const rolePolicies = Object.keys(config.resource?.aws_iam_role_policy ?? {}).map((n) => `aws_iam_role_policy.${n}`);
  if (rolePolicies.length) {
    const sizes = `{for p in [${rolePolicies.join(', ')}] : p.role => ${SIZE('p.policy')}...}`;
    asserts.push({
      condition: `\${alltrue([for role, s in ${sizes} : sum(s) <= ${ROLE_INLINE_QUOTA}])}`,
      error_message: `IAM refuses inline policies over ${ROLE_INLINE_QUOTA} characters per role (LimitExceeded): \${join(", ", [for role, s in ${sizes} : format("%s has %d", role, sum(s)) if sum(s) > ${ROLE_INLINE_QUOTA}])}`,
    });
  }
  for (const name of Object.keys(config.resource?.aws_iam_role ?? {})) {
    const addr = `aws_iam_role.${name}`;
    asserts.push({
      condition: `\${${SIZE(`${addr}.assume_role_policy`)} <= ${ROLE_TRUST_QUOTA}}`,
      error_message: `${addr}: IAM refuses a trust policy over ${ROLE_TRUST_QUOTA} characters (LimitExceeded): \${${SIZE(`${addr}.assume_role_policy`)}}`,
    });
  }
  return asserts;
}

/** First error lines of terraform's output (its boxes and blank lines removed). */
export function errorLines(text: string, max = 6): string {
  const lines = text
    .split('\n')
    .map((l) => l.replace(/^[│╷╵]\s?/, '').trimEnd())
    .filter((l) => l.trim() !== '');
  const i = lines.findIndex((l) => /Error|fail/.test(l));
  return lines
    .slice(Math.max(0, i), Math.max(0, i) + max)
    .map((l) => l.trim())
    .join(' | ');
}

/** Runs `terraform test` on every AWS stack of the app (one init per stack folder under `workroot`). */
export async function testStacks(app: SynthesizedApp, workroot: string, options: TerraformTestOptions = {}): Promise<StackTestResult[]> {
  const terraform = options.terraform ?? findTerraform();
  const all = Object.keys(app.stacks).filter((s) => app.stacks[s].provider?.aws);
  const names = options.stacks ?? all;
  if (!terraform) return names.map((stack) => ({ stack, status: 'skipped', reason: 'terraform is not on PATH', workdir: '' }));
  const dangling = danglingRemoteReferences(app);
  const env = offlineTerraformEnv();
  const versions = [...new Set(all.map((s) => app.stacks[s].terraform?.required_providers?.aws?.version as string | undefined).filter(Boolean))] as string[];
  if (versions.length !== 1) throw new Error(`expected one aws provider version across the stacks, found ${versions.join(', ') || 'none'}`);
  const schema = await computedSchema(terraform, versions[0], env);
  const resolver = new Resolver(app);
  const refs = remoteReferences(app);
  fs.mkdirSync(workroot, { recursive: true });

  const testOne = async (stack: string): Promise<StackTestResult> => {
    const workdir = path.join(workroot, stack);
    const json = app.stacks[stack];
    if (json.provider?.docker) return { stack, status: 'skipped', reason: 'uses the docker provider (not in the offline provider mirror)', workdir };
    const mine = dangling.filter((d) => d.startsWith(`stack ${stack} `));
    if (mine.length) return { stack, status: 'failed', reason: mine.join('; '), workdir };
    const started = process.hrtime.bigint();
    let built: { config: Json; test: Json };
    try {
      const remote: Record<string, Record<string, unknown>> = {};
      for (const name of Object.keys(json.data?.terraform_remote_state ?? {})) {
        const producer = name.replace(new RegExp(`^${REMOTE_PREFIX}`), '');
        if (!app.stacks[producer]) continue; // reported by buildStackTest
        const referenced = new Set(refs.filter((r) => r.consumer === stack && r.producer === producer).map((r) => r.output));
        const outputs = producerOutputs(app, resolver, producer, referenced);
        remote[producer] = options.remoteOutputs ? options.remoteOutputs(stack, producer, outputs) : outputs;
      }
      built = buildStackTest(app, stack, schema, remote);
    } catch (err) {
      return { stack, status: 'failed', reason: `cannot build the test: ${(err as Error).message}`, workdir };
    }
    fs.rmSync(workdir, { recursive: true, force: true });
    fs.mkdirSync(path.join(workdir, path.dirname(TEST_FILE)), { recursive: true });
    fs.writeFileSync(path.join(workdir, 'cdk.tf.json'), JSON.stringify(built.config, null, 2));
    fs.writeFileSync(path.join(workdir, TEST_FILE), JSON.stringify(built.test, null, 2));
    const init = await run(terraform, ['init', '-input=false', '-no-color'], workdir, env);
    if (init.code !== 0) return { stack, status: 'failed', reason: `terraform init: ${errorLines(init.stderr || init.stdout)}`, workdir };
    const tested = await run(terraform, ['test', '-no-color'], workdir, env);
    const log = tested.stdout + tested.stderr;
    fs.writeFileSync(path.join(workdir, 'test.log'), log);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const passed = tested.code === 0 && /Success! 1 passed, 0 failed/.test(log);
    return passed ? { stack, status: 'passed', log, seconds, workdir } : { stack, status: 'failed', reason: errorLines(log), log, seconds, workdir };
  };

  // Bounded parallelism: each run holds the mocked provider and the policy-document provider (~700 MB each).
  const results: StackTestResult[] = [];
  const queue = [...names];
  await Promise.all(
    Array.from({ length: Math.max(1, options.concurrency ?? 2) }, async () => {
      for (let s = queue.shift(); s !== undefined; s = queue.shift()) results.push(await testOne(s));
    }),
  );
  return names.map((n) => results.find((r) => r.stack === n)!);
}

/** `npm run test:terraform`: synthesizes the app, tests every AWS stack, one line per stack; exit 1 on failure, 2 on bad configuration. */
async function cli(): Promise<number> {
  try {
    main();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    return 2;
  }
  const outdir = path.resolve(process.env.CDKTF_OUTDIR ?? 'cdktf.out');
  const workroot = fs.mkdtempSync(path.join(os.tmpdir(), 'tf-test-'));
  const results = await testStacks(readApp(outdir), workroot);
  const width = Math.max(...results.map((r) => r.stack.length));
  for (const r of results) {
    const time = r.seconds === undefined ? '' : ` (${r.seconds.toFixed(1)} s)`;
    console.log(`${r.stack.padEnd(width)}  ${r.status}${time}${r.reason ? `: ${r.reason}` : ''}`);
  }
  const failed = results.some((r) => r.status === 'failed') || !results.some((r) => r.status === 'passed');
  if (failed) console.log(`work folders (test files, test.log): ${workroot}`);
  else fs.rmSync(workroot, { recursive: true, force: true });
  return failed ? 1 : 0;
}

if (require.main === module) {
  cli().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
