// Concrete values for the Terraform references of a synthesized app: a deterministic fake account, the
// stack's region, resource names and ARNs from the synthesized arguments, cross-stack outputs followed to
// the producing stack. What the IAM model, the offline plans and the local Step Functions run resolve with.
import * as crypto from 'node:crypto';
import { type Block, splitTerraformRefs, type SynthesizedApp } from '../tf-json';
import type { PolicyDocument, PolicyStatement } from './policy';

/** The fake AWS account every reference to the caller's account resolves to. */
export const FAKE_ACCOUNT = '123456789012';
export const FAKE_PARTITION = 'aws';

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
  json(stack: string, text: string, strict = true): unknown {
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
  deep(stack: string, value: unknown, strict = true): unknown {
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
      return Object.fromEntries(
        Object.entries(value)
          .filter(([k]) => k !== '//')
          .map(([k, v]) => [k, this.deep(stack, v, strict)]),
      );
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
    const arg = (k: string): string | undefined =>
      typeof block[k] === 'string' ? this.text(stack, block[k]) : block[k] === undefined ? undefined : String(block[k]);
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
        return {
          id: name,
          name,
          arn: `arn:${p}:ecr:${region}:${a}:repository/${name}`,
          repository_url: `${a}.dkr.ecr.${region}.amazonaws.com/${name}`,
          registry_id: a,
        };
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
        // Without group_name a schedule is in the account's "default" group (the provider's default).
        const name = arg('name')!;
        const group = arg('group_name') ?? 'default';
        return { id: `${group}/${name}`, name, group_name: group, arn: `arn:${p}:scheduler:${region}:${a}:schedule/${group}/${name}` };
      }
      case 'aws_transfer_server': {
        const id = `s-${fakeId(seed, 17)}`;
        return {
          id,
          arn: `arn:${p}:transfer:${region}:${a}:server/${id}`,
          host_key_fingerprint: 'SHA256:' + 'A'.repeat(43),
          endpoint: `${id}.server.transfer.${region}.amazonaws.com`,
        };
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
        const prefix =
          {
            aws_vpc: 'vpc',
            aws_subnet: 'subnet',
            aws_security_group: 'sg',
            aws_route_table: 'rtb',
            aws_internet_gateway: 'igw',
            aws_nat_gateway: 'nat',
            aws_eip: 'eipalloc',
          }[type] ?? type.replace(/^aws_/, '');
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
