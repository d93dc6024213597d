// A model of a synthesized app for security checks (the IAM simulation matrix, the baseline tests and
// `npm run review`): reads every stack's cdk.tf.json, substitutes concrete values for Terraform
// references (a deterministic fake account, the stack's region, resource names from the synthesized
// arguments), collects every IAM role with its trust and permission policies and every S3 bucket
// policy, and evaluates requests with @cloud-copilot/iam-simulate (AGPL-3.0: used only by the tests and
// this offline review, never shipped in an image or deployed).
import * as crypto from 'node:crypto';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { listStacks, type StackJson } from './terraform';

/** The fake AWS account every reference to the caller's account resolves to. */
export const FAKE_ACCOUNT = '123456789012';
export const FAKE_PARTITION = 'aws';

export type Block = Record<string, any>;

export type { StackJson };

export interface SynthesizedApp {
  readonly outdir: string;
  /** Stack name -> parsed cdk.tf.json. */
  readonly stacks: Record<string, StackJson>;
  /** Stack name -> folder holding cdk.tf.json. */
  readonly dirs: Record<string, string>;
}

/** Reads every stack of a synthesized app (cdktf.out or a test's outdir) through its manifest. */
export function readSynthesized(outdir: string): SynthesizedApp {
  const stacks: Record<string, StackJson> = {};
  const dirs: Record<string, string> = {};
  // By name, as the manifest lists them (listStacks gives deploy order), so reports read alphabetically.
  for (const s of listStacks(outdir).sort((a, b) => a.name.localeCompare(b.name))) {
    stacks[s.name] = s.json;
    dirs[s.name] = s.dir;
  }
  return { outdir, stacks, dirs };
}

/** Every resource of an app: [stack, type, logical name, block]. */
export function allResources(app: SynthesizedApp): [string, string, string, Block][] {
  const out: [string, string, string, Block][] = [];
  for (const [stack, json] of Object.entries(app.stacks)) {
    for (const [type, byName] of Object.entries(json.resource ?? {})) {
      for (const [name, block] of Object.entries(byName)) out.push([stack, type, name, block]);
    }
  }
  return out;
}

/** Splits text into literal parts and `${...}` Terraform expressions (quotes and nested braces aware). */
export function splitTerraformRefs(text: string): (string | { expr: string })[] {
  const parts: (string | { expr: string })[] = [];
  let i = 0;
  while (i < text.length) {
    const start = text.indexOf('${', i);
    if (start < 0) break;
    if (start > i) parts.push(text.slice(i, start));
    let depth = 1;
    let quote = false;
    let j = start + 2;
    for (; j < text.length; j++) {
      const c = text[j];
      // Inside a JSON-encoded string an expression's quotes appear as \" : treat both as quotes.
      if (c === '\\' && text[j + 1] === '"') {
        quote = !quote;
        j++;
      } else if (c === '"') quote = !quote;
      else if (quote && c === '\\') j++;
      else if (!quote && c === '{') depth++;
      else if (!quote && c === '}' && --depth === 0) break;
    }
    if (j >= text.length) throw new Error(`unterminated Terraform expression at offset ${start}: ${text.slice(start, start + 60)}`);
    parts.push({ expr: text.slice(start + 2, j) });
    i = j + 1;
  }
  if (i < text.length) parts.push(text.slice(i));
  return parts;
}

export class UnresolvedReferenceError extends Error {}

/** A short deterministic hex id for fake resource ids. */
function fakeId(seed: string, length = 17): string {
  return crypto.createHash('sha256').update(seed).digest('hex').slice(0, length);
}

/**
 * Substitutes concrete values for Terraform references in a synthesized app. Strict resolution throws
 * on an expression it cannot evaluate (policies must be fully concrete to be simulated); lenient
 * resolution leaves `<unresolved:expr>` (enough for reports and for scanning container definitions).
 */
export class Resolver {
  constructor(private readonly app: SynthesizedApp) {}

  region(stack: string): string {
    const region = this.app.stacks[stack]?.provider?.aws?.[0]?.region;
    if (typeof region !== 'string') throw new Error(`stack ${stack} has no aws provider region`);
    return region;
  }

  /** Resolves every `${...}` in a string. */
  text(stack: string, text: string, strict = true): string {
    return splitTerraformRefs(text)
      .map((p) => {
        if (typeof p === 'string') return p;
        try {
          const v = this.expr(stack, p.expr);
          return typeof v === 'string' ? v : JSON.stringify(v);
        } catch (err) {
          if (strict) throw err;
          return `<unresolved:${p.expr}>`;
        }
      })
      .join('');
  }

  /** Resolves a JSON-encoded string (a policy, container definitions): values are JSON-escaped in place. */
  json(stack: string, text: string, strict = true): any {
    const parts = splitTerraformRefs(text);
    // The whole argument is one expression (`${data.aws_iam_policy_document.x.json}`): its value is the JSON.
    if (parts.length === 1 && typeof parts[0] !== 'string') return JSON.parse(this.text(stack, text, strict));
    const resolved = parts
      .map((p) => {
        if (typeof p === 'string') return p;
        let v: string;
        try {
          const value = this.expr(stack, p.expr);
          v = typeof value === 'string' ? value : JSON.stringify(value);
        } catch (err) {
          if (strict) throw err;
          v = `<unresolved:${p.expr}>`;
        }
        return JSON.stringify(v).slice(1, -1);
      })
      .join('');
    return JSON.parse(resolved);
  }

  /** Resolves strings anywhere in a value (objects, arrays). */
  deep(stack: string, value: unknown, strict = true): any {
    if (typeof value === 'string') {
      // A string that is one whole expression takes the expression's value (a list stays a list).
      const parts = splitTerraformRefs(value);
      if (parts.length === 1 && typeof parts[0] !== 'string') {
        try {
          return this.expr(stack, parts[0].expr);
        } catch (err) {
          if (strict) throw err;
          return `<unresolved:${parts[0].expr}>`;
        }
      }
      return this.text(stack, value, strict);
    }
    if (Array.isArray(value)) return value.map((v) => this.deep(stack, v, strict));
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).filter(([k]) => k !== '//').map(([k, v]) => [k, this.deep(stack, v, strict)]));
    }
    return value;
  }

  /** Evaluates one expression (without `${}`): references to resources, data sources and other stacks' outputs. */
  expr(stack: string, expr: string): unknown {
    const e = expr.trim();
    const fail = (why: string): never => {
      throw new UnresolvedReferenceError(`stack ${stack}: cannot resolve \${${e}}: ${why}`);
    };
    const remote = /^data\.terraform_remote_state\.([\w-]+)\.outputs\.([\w-]+)$/.exec(e);
    if (remote) {
      // cdktf names the data source cross-stack-reference-input-<producer stack>.
      const producer = remote[1].replace(/^cross-stack-reference-input-/, '');
      const output = this.app.stacks[producer]?.output?.[remote[2]];
      if (!output) return fail(`no output ${remote[2]} in stack ${producer}`);
      return typeof output.value === 'string' ? this.text(producer, output.value) : this.deep(producer, output.value);
    }
    const data = /^data\.([a-z0-9_]+)\.([\w-]+)\.([a-z0-9_]+)$/.exec(e);
    if (data) {
      const [, type, name, attr] = data;
      const block = this.app.stacks[stack]?.data?.[type]?.[name];
      if (!block) return fail(`no data source ${type}.${name}`);
      if (type === 'aws_caller_identity' && attr === 'account_id') return FAKE_ACCOUNT;
      if (type === 'aws_partition' && attr === 'partition') return FAKE_PARTITION;
      if (type === 'aws_partition' && attr === 'dns_suffix') return 'amazonaws.com';
      if (type === 'aws_region' && (attr === 'name' || attr === 'region')) return this.region(stack);
      if (type === 'aws_iam_policy_document' && attr === 'json') return JSON.stringify(this.policyDocument(stack, block));
      if (type === 'aws_vpc_endpoint' && attr === 'dns_entry') {
        return [{ dns_name: `vpce-${fakeId(`${stack}/${name}`)}.vpce-svc-fake.${this.region(stack)}.vpce.amazonaws.com`, hosted_zone_id: 'ZFAKEOFFLINE' }];
      }
      return fail(`data source attribute ${type}.${attr} is not modelled`);
    }
    const res = /^([a-z0-9_]+)\.([\w-]+)\.([a-z0-9_]+)$/.exec(e);
    if (res && !e.startsWith('data.')) {
      const [, type, name, attr] = res;
      const block = this.app.stacks[stack]?.resource?.[type]?.[name];
      if (!block) return fail(`no resource ${type}.${name}`);
      const attrs = this.attributes(stack, type, name, block);
      if (!(attr in attrs)) return fail(`attribute ${attr} of ${type} is not modelled`);
      return attrs[attr];
    }
    return fail('not a plain reference (functions are not evaluated)');
  }

  /** Fake attributes of a resource, derived from its synthesized arguments. */
  attributes(stack: string, type: string, logical: string, block: Block): Record<string, string> {
    const region = this.region(stack);
    const a = FAKE_ACCOUNT;
    const p = FAKE_PARTITION;
    const arg = (k: string): string | undefined => (typeof block[k] === 'string' ? this.text(stack, block[k]) : block[k] === undefined ? undefined : String(block[k]));
    const seed = `${stack}/${type}/${logical}`;
    switch (type) {
      case 'aws_s3_bucket': {
        // bucket_prefix gets a unique suffix from Terraform; a fixed fake one keeps ARNs deterministic.
        const name = arg('bucket') ?? `${arg('bucket_prefix') ?? 'tf-bucket-'}${fakeId(seed, 12)}`;
        return { id: name, bucket: name, arn: `arn:${p}:s3:::${name}` };
      }
      case 'aws_iam_role': {
        const name = arg('name') ?? `role-${fakeId(seed, 8)}`;
        const rolePath = arg('path') ?? '/';
        return { id: name, name, arn: `arn:${p}:iam::${a}:role${rolePath}${name}`, unique_id: `AROA${fakeId(seed, 17).toUpperCase()}` };
      }
      case 'aws_iam_policy': {
        const name = arg('name') ?? `policy-${fakeId(seed, 8)}`;
        const arn = `arn:${p}:iam::${a}:policy${arg('path') ?? '/'}${name}`;
        return { id: arn, arn, name };
      }
      case 'aws_ecs_task_definition': {
        const family = arg('family')!;
        const base = `arn:${p}:ecs:${region}:${a}:task-definition/${family}`;
        return { id: family, family, arn_without_revision: base, arn: `${base}:1`, revision: '1' };
      }
      case 'aws_ecs_cluster': {
        const name = arg('name')!;
        const arn = `arn:${p}:ecs:${region}:${a}:cluster/${name}`;
        return { id: arn, name, arn };
      }
      case 'aws_cloudwatch_log_group': {
        const name = arg('name')!;
        return { id: name, name, arn: `arn:${p}:logs:${region}:${a}:log-group:${name}` };
      }
      case 'aws_ecr_repository': {
        const name = arg('name')!;
        return { id: name, name, arn: `arn:${p}:ecr:${region}:${a}:repository/${name}`, repository_url: `${a}.dkr.ecr.${region}.amazonaws.com/${name}`, registry_id: a };
      }
      case 'aws_sqs_queue': {
        const name = arg('name')!;
        const url = `https://sqs.${region}.amazonaws.com/${a}/${name}`;
        return { id: url, url, name, arn: `arn:${p}:sqs:${region}:${a}:${name}` };
      }
      case 'aws_secretsmanager_secret': {
        // name_prefix gets a unique suffix from Terraform, like bucket_prefix; the ARN adds "-" + 6 characters.
        const name = arg('name') ?? `${arg('name_prefix') ?? 'terraform-'}${fakeId(seed, 26)}`;
        const arn = `arn:${p}:secretsmanager:${region}:${a}:secret:${name}-AbCdEf`;
        return { id: arn, arn, name };
      }
      case 'aws_dynamodb_table': {
        const name = arg('name')!;
        return { id: name, name, arn: `arn:${p}:dynamodb:${region}:${a}:table/${name}` };
      }
      case 'aws_sfn_state_machine': {
        const arn = `arn:${p}:states:${region}:${a}:stateMachine:${arg('name')}`;
        return { id: arn, arn, name: arg('name')! };
      }
      case 'aws_scheduler_schedule': {
        const name = arg('name')!;
        return { id: name, name, arn: `arn:${p}:scheduler:${region}:${a}:schedule/${arg('group_name') ?? 'default'}/${name}` };
      }
      case 'aws_transfer_server': {
        const id = `s-${fakeId(seed, 17)}`;
        return { id, arn: `arn:${p}:transfer:${region}:${a}:server/${id}`, host_key_fingerprint: 'SHA256:' + 'A'.repeat(43), endpoint: `${id}.server.transfer.${region}.amazonaws.com` };
      }
      case 'aws_transfer_user': {
        const server = arg('server_id')!;
        const user = arg('user_name')!;
        return { id: `${server},${user}`, user_name: user, arn: `arn:${p}:transfer:${region}:${a}:user/${server}/${user}` };
      }
      case 'aws_vpc_endpoint':
        return { id: `vpce-${fakeId(seed)}`, prefix_list_id: `pl-${fakeId(seed, 8)}`, arn: `arn:${p}:ec2:${region}:${a}:vpc-endpoint/vpce-${fakeId(seed)}` };
      case 'docker_registry_image':
        return { id: `sha256:${fakeId(seed, 64)}`, sha256_digest: `sha256:${fakeId(seed, 64)}`, name: arg('name')! };
      case 'docker_image':
        return { id: fakeId(seed, 64), name: arg('name')!, image_id: `sha256:${fakeId(seed, 64)}` };
      default: {
        // EC2-style ids for everything else (vpc-, subnet-, sg-...): enough for reports and lookups.
        const prefix = { aws_vpc: 'vpc', aws_subnet: 'subnet', aws_security_group: 'sg', aws_route_table: 'rtb', aws_internet_gateway: 'igw', aws_nat_gateway: 'nat', aws_eip: 'eipalloc' }[type] ?? type.replace(/^aws_/, '');
        const id = `${prefix}-${fakeId(seed)}`;
        const out: Record<string, string> = { id };
        if (typeof block.name === 'string') out.name = this.text(stack, block.name);
        return out;
      }
    }
  }

  /** Renders an aws_iam_policy_document data source as the JSON policy it produces. */
  policyDocument(stack: string, block: Block): PolicyDocument {
    for (const unsupported of ['source_policy_documents', 'override_policy_documents', 'source_json', 'override_json']) {
      if (block[unsupported] !== undefined) throw new Error(`stack ${stack}: aws_iam_policy_document with ${unsupported} is not modelled`);
    }
    const list = (v: unknown): string[] | undefined => (v === undefined ? undefined : (v as string[]).map((s) => this.text(stack, s)));
    const principals = (ps: Block[] | undefined) => {
      if (!ps) return undefined;
      const out: Record<string, string[]> = {};
      for (const pr of ps) {
        const type = pr.type === '*' ? 'AWS' : pr.type;
        out[type] = [...(out[type] ?? []), ...list(pr.identifiers)!];
      }
      return ps.length === 1 && ps[0].type === '*' ? '*' : out;
    };
    const statements = ((block.statement ?? []) as Block[]).map((s) => {
      const st: PolicyStatement = { Effect: s.effect ?? 'Allow' };
      if (s.sid) st.Sid = s.sid;
      if (s.actions) st.Action = list(s.actions);
      if (s.not_actions) st.NotAction = list(s.not_actions);
      if (s.resources) st.Resource = list(s.resources);
      if (s.not_resources) st.NotResource = list(s.not_resources);
      if (s.principals) st.Principal = principals(s.principals);
      if (s.not_principals) st.NotPrincipal = principals(s.not_principals);
      if (s.condition) {
        const cond: Record<string, Record<string, string[]>> = {};
        for (const c of s.condition as Block[]) {
          cond[c.test] = { ...(cond[c.test] ?? {}), [c.variable]: list(c.values)! };
        }
        st.Condition = cond;
      }
      return st;
    });
    return { Version: block.version ?? '2012-10-17', Statement: statements };
  }
}

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Principal?: unknown;
  NotPrincipal?: unknown;
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: string;
  Statement: PolicyStatement[] | PolicyStatement;
}

export const asArray = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
export const statementsOf = (doc: PolicyDocument): PolicyStatement[] => asArray(doc.Statement);

/** One IAM role of the app, fully resolved. */
export interface RoleModel {
  readonly stack: string;
  /** Logical name in the stack (`task-role`). */
  readonly logical: string;
  /** `stack/logical`: how tests and the review name a role. */
  readonly key: string;
  readonly name: string;
  readonly arn: string;
  readonly trust: PolicyDocument;
  /** Permission policies (inline and attached), by name. */
  readonly policies: { name: string; document: PolicyDocument }[];
}

/** An S3 bucket of the app with its resolved bucket policy (if any). */
export interface BucketModel {
  readonly stack: string;
  readonly logical: string;
  readonly name: string;
  readonly arn: string;
  readonly policy?: PolicyDocument;
}

export interface SecurityModel {
  readonly app: SynthesizedApp;
  readonly resolver: Resolver;
  readonly roles: RoleModel[];
  readonly buckets: BucketModel[];
  role(key: string): RoleModel;
  /** The bucket whose logical name starts with `logicalPrefix` (e.g. `xml-bucket`). */
  bucket(logicalPrefix: string): BucketModel;
  /** Fake attributes of a resource (arn, name, id...), by stack, type and logical-name prefix. */
  attrs(stack: string, type: string, logicalPrefix: string): Record<string, string>;
}

/** Which policy document a `policy` argument holds, resolved. */
function policyArg(resolver: Resolver, stack: string, value: unknown): PolicyDocument {
  if (typeof value !== 'string') throw new Error(`stack ${stack}: policy argument is not a string`);
  return resolver.json(stack, value) as PolicyDocument;
}

/** Builds the model: every role with its policies, every bucket with its policy. Throws on anything not modelled. */
export function buildSecurityModel(app: SynthesizedApp): SecurityModel {
  const resolver = new Resolver(app);
  const roles: RoleModel[] = [];
  const buckets: BucketModel[] = [];
  for (const [stack, json] of Object.entries(app.stacks)) {
    const res = json.resource ?? {};
    // Which role a role_policy/attachment argument names: `${aws_iam_role.X.id|name}` or a literal name.
    const roleOf = (v: string): string => {
      const m = /^\$\{aws_iam_role\.([\w-]+)\.(id|name)\}$/.exec(v);
      if (m) return m[1];
      const byName = Object.entries(res.aws_iam_role ?? {}).find(([, r]) => r.name === v);
      if (!byName) throw new Error(`stack ${stack}: policy for role "${v}" that is not a role of this stack`);
      return byName[0];
    };
    const policiesByRole: Record<string, { name: string; document: PolicyDocument }[]> = {};
    const add = (logical: string, name: string, document: PolicyDocument) => {
      (policiesByRole[logical] ??= []).push({ name, document });
    };
    for (const [logical, p] of Object.entries(res.aws_iam_role_policy ?? {})) {
      add(roleOf(p.role), p.name ?? logical, policyArg(resolver, stack, p.policy));
    }
    for (const [logical, p] of Object.entries(res.aws_iam_role_policy_attachment ?? {})) {
      const m = /^\$\{aws_iam_policy\.([\w-]+)\.arn\}$/.exec(p.policy_arn);
      if (!m) throw new Error(`stack ${stack}: ${logical} attaches ${p.policy_arn}; only this app's own aws_iam_policy can be simulated (no AWS-managed policies)`);
      const policy = res.aws_iam_policy?.[m[1]];
      add(roleOf(p.role), policy?.name ?? m[1], policyArg(resolver, stack, policy?.policy));
    }
    for (const unsupported of ['aws_iam_policy_attachment', 'aws_iam_user', 'aws_iam_group', 'aws_iam_user_policy', 'aws_iam_group_policy']) {
      if (res[unsupported]) throw new Error(`stack ${stack}: ${unsupported} is not modelled by the security harness`);
    }
    for (const [logical, r] of Object.entries(res.aws_iam_role ?? {})) {
      const attrs = resolver.attributes(stack, 'aws_iam_role', logical, r);
      const inline = asArray(r.inline_policy as Block | Block[] | undefined).map((ip) => ({ name: ip.name as string, document: policyArg(resolver, stack, ip.policy) }));
      if (asArray(r.managed_policy_arns).length > 0) throw new Error(`stack ${stack}: role ${logical} has managed_policy_arns; not simulated`);
      roles.push({
        stack,
        logical,
        key: `${stack}/${logical}`,
        name: attrs.name,
        arn: attrs.arn,
        trust: policyArg(resolver, stack, r.assume_role_policy),
        policies: [...inline, ...(policiesByRole[logical] ?? [])],
      });
    }
    for (const [logical, b] of Object.entries(res.aws_s3_bucket ?? {})) {
      const attrs = resolver.attributes(stack, 'aws_s3_bucket', logical, b);
      const ref = new RegExp(`^\\$\\{aws_s3_bucket\\.${logical.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(id|bucket)\\}$`);
      const policies = Object.values(res.aws_s3_bucket_policy ?? {}).filter((p) => ref.test(p.bucket));
      if (policies.length > 1) throw new Error(`stack ${stack}: bucket ${logical} has ${policies.length} bucket policies (only one takes effect)`);
      buckets.push({ stack, logical, name: attrs.id, arn: attrs.arn, policy: policies[0] ? policyArg(resolver, stack, policies[0].policy) : undefined });
    }
  }
  return {
    app,
    resolver,
    roles,
    buckets,
    role(key) {
      const r = roles.find((x) => x.key === key);
      if (!r) throw new Error(`no role ${key}; roles: ${roles.map((x) => x.key).join(', ')}`);
      return r;
    },
    bucket(prefix) {
      const found = buckets.filter((b) => b.logical.startsWith(prefix));
      if (found.length !== 1) throw new Error(`expected one bucket ${prefix}*, found ${found.length}`);
      return found[0];
    },
    attrs(stack, type, prefix) {
      const found = Object.entries(app.stacks[stack]?.resource?.[type] ?? {}).filter(([n]) => n.startsWith(prefix));
      if (found.length !== 1) throw new Error(`expected one ${type} ${prefix}* in ${stack}, found ${found.length}`);
      return resolver.attributes(stack, type, found[0][0], found[0][1]);
    },
  };
}

export type Decision = 'Allowed' | 'ExplicitlyDenied' | 'ImplicitlyDenied';

export interface SimulatedRequest {
  readonly action: string;
  readonly resource: string;
  /** Request context; `aws:SecureTransport` defaults to "true". */
  readonly context?: Record<string, string | string[]>;
}

/**
 * Evaluates one request made by a role: its permission policies, plus the bucket policy when the
 * resource is in one of the app's buckets (same account, so either may allow; a Deny in either wins).
 * Throws when the simulator rejects the input (unknown action, resource of the wrong type...).
 */
export async function simulate(model: SecurityModel, role: RoleModel, request: SimulatedRequest): Promise<Decision> {
  const bucket = model.buckets.find((b) => request.resource === b.arn || request.resource.startsWith(`${b.arn}/`));
  const result = await runSimulation(
    {
      request: {
        principal: role.arn,
        action: request.action,
        resource: { resource: request.resource, accountId: FAKE_ACCOUNT },
        contextVariables: { 'aws:SecureTransport': 'true', ...(request.context ?? {}) },
      },
      identityPolicies: role.policies.map((p) => ({ name: p.name, policy: p.document })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: bucket?.policy,
    },
    {},
  );
  if (result.resultType === 'error') {
    throw new Error(`simulation of ${role.key} ${request.action} on ${request.resource} rejected: ${JSON.stringify(result.errors)}`);
  }
  return result.overallResult as Decision;
}

/** Principals a trust policy lets assume the role (service names, ARNs), flattened. */
export function trustedPrincipals(doc: PolicyDocument): string[] {
  const out: string[] = [];
  for (const st of statementsOf(doc)) {
    if (st.Effect !== 'Allow') continue;
    const p = st.Principal;
    if (p === '*') out.push('*');
    else if (p && typeof p === 'object') for (const v of Object.values(p as Record<string, string | string[]>)) out.push(...asArray(v));
  }
  return out;
}

// ---------------- network exposure ----------------

export interface ExposureItem {
  readonly stack: string;
  readonly kind: string;
  readonly detail: string;
  /** Reachable from or to the internet. */
  readonly public: boolean;
}

const ANYWHERE = new Set(['0.0.0.0/0', '::/0']);

/** Ingress rules, open egress, endpoints and anything public, per stack. */
export function networkExposure(model: SecurityModel): ExposureItem[] {
  const out: ExposureItem[] = [];
  const r = model.resolver;
  const groupName = (stack: string, ref: string) => {
    const m = /\$\{aws_security_group\.([\w-]+)\.id\}/.exec(ref);
    if (m) return model.app.stacks[stack].resource?.aws_security_group?.[m[1]]?.name ?? m[1];
    const remote = /cross-stack-output-aws_security_group([\w-]+?)id\}$/.exec(ref);
    return remote ? remote[1] : r.text(stack, ref, false);
  };
  for (const [stack, type, logical, b] of allResources(model.app)) {
    const text = (v: unknown) => (typeof v === 'string' ? r.text(stack, v, false) : JSON.stringify(v));
    switch (type) {
      case 'aws_vpc_security_group_ingress_rule':
      case 'aws_vpc_security_group_egress_rule': {
        const source = b.cidr_ipv4 ?? b.cidr_ipv6 ?? (b.prefix_list_id ? `prefix list ${groupName(stack, b.prefix_list_id)}` : b.referenced_security_group_id ? `sg ${groupName(stack, b.referenced_security_group_id)}` : '?');
        const dir = type.endsWith('ingress_rule') ? 'ingress' : 'egress';
        const ports = b.ip_protocol === '-1' ? 'all traffic' : `${b.ip_protocol}/${b.from_port === b.to_port ? b.from_port : `${b.from_port}-${b.to_port}`}`;
        out.push({ stack, kind: dir, detail: `${groupName(stack, b.security_group_id)}: ${ports} ${dir === 'ingress' ? 'from' : 'to'} ${text(source)} (${b.description ?? logical})`, public: ANYWHERE.has(source) });
        break;
      }
      case 'aws_security_group_rule':
        out.push({ stack, kind: b.type, detail: `${groupName(stack, b.security_group_id)}: ${b.protocol}/${b.from_port}-${b.to_port} ${asArray(b.cidr_blocks).join(',')}`, public: asArray<string>(b.cidr_blocks).some((c) => ANYWHERE.has(c)) });
        break;
      case 'aws_security_group':
        for (const dir of ['ingress', 'egress'] as const) {
          for (const rule of asArray<Block>(b[dir])) {
            out.push({ stack, kind: dir, detail: `${b.name ?? logical} (inline): ${rule.protocol}/${rule.from_port}-${rule.to_port} ${asArray(rule.cidr_blocks).join(',')}`, public: asArray<string>(rule.cidr_blocks).some((c) => ANYWHERE.has(c)) });
          }
        }
        break;
      case 'aws_default_security_group': {
        const rules = asArray(b.ingress).length + asArray(b.egress).length;
        out.push({ stack, kind: 'default-sg', detail: rules === 0 ? 'default security group: no rules (closed)' : `default security group: ${rules} rules`, public: false });
        break;
      }
      case 'aws_vpc_endpoint':
        out.push({ stack, kind: 'endpoint', detail: `${b.vpc_endpoint_type ?? 'Gateway'} ${text(b.service_name)}${b.private_dns_enabled ? ' (private DNS)' : ''}`, public: false });
        break;
      case 'aws_transfer_server':
        out.push({ stack, kind: 'transfer', detail: `Transfer ${asArray(b.protocols).join('/')} endpoint ${b.endpoint_type ?? 'PUBLIC'}${asArray(b.endpoint_details?.address_allocation_ids).length ? ' with Elastic IPs' : ''}, policy ${b.security_policy_name ?? 'default'}`, public: (b.endpoint_type ?? 'PUBLIC') === 'PUBLIC' || asArray(b.endpoint_details?.address_allocation_ids).length > 0 });
        break;
      case 'aws_internet_gateway':
        out.push({ stack, kind: 'internet', detail: `internet gateway ${logical}`, public: true });
        break;
      case 'aws_nat_gateway':
        out.push({ stack, kind: 'internet', detail: `NAT gateway ${logical} (egress only)`, public: true });
        break;
      case 'aws_eip':
        out.push({ stack, kind: 'internet', detail: `Elastic IP ${logical}`, public: true });
        break;
      case 'aws_subnet':
        if (b.map_public_ip_on_launch) out.push({ stack, kind: 'internet', detail: `subnet ${logical} maps public IPs on launch`, public: true });
        break;
      case 'aws_route':
        if (ANYWHERE.has(b.destination_cidr_block)) out.push({ stack, kind: 'route', detail: `default route in ${logical} via ${b.gateway_id ? 'internet gateway' : b.nat_gateway_id ? 'NAT gateway' : 'other'}`, public: Boolean(b.gateway_id) });
        break;
      case 'aws_s3_bucket_public_access_block': {
        const all = ['block_public_acls', 'block_public_policy', 'ignore_public_acls', 'restrict_public_buckets'].every((k) => b[k] === true);
        if (!all) out.push({ stack, kind: 's3', detail: `bucket ${text(b.bucket)} does not block all public access`, public: true });
        break;
      }
      default:
        break;
    }
  }
  // Tasks started by the state machine: public IPs?
  for (const [stack, type, , b] of allResources(model.app)) {
    if (type !== 'aws_sfn_state_machine' || typeof b.definition !== 'string') continue;
    const assigns = [...b.definition.matchAll(/"AssignPublicIp":"(\w+)"/g)].map((m) => m[1]);
    if (assigns.length) out.push({ stack, kind: 'tasks', detail: `state machine starts tasks with AssignPublicIp ${[...new Set(assigns)].join('/')}`, public: assigns.some((x) => x !== 'DISABLED') });
  }
  for (const b of model.buckets) {
    for (const st of statementsOf(b.policy ?? { Version: '', Statement: [] })) {
      if (st.Effect === 'Allow' && (st.Principal === '*' || JSON.stringify(st.Principal ?? '').includes('"*"'))) {
        out.push({ stack: b.stack, kind: 's3', detail: `bucket policy of ${b.name} allows any principal`, public: true });
      }
    }
  }
  return out;
}
