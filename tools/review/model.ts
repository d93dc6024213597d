// The security model of a synthesized app: every IAM role with its trust and permission policies and
// every S3 bucket with its bucket policy, fully resolved (tools/review/resolver). Throws on anything it
// does not model (AWS-managed policies, users, groups), so a check never passes by not seeing a grant.
import { type Block, type SynthesizedApp } from '../tf-json';
import { asArray, type PolicyDocument } from './policy';
import { Resolver } from './resolver';

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
      if (!m)
        throw new Error(`stack ${stack}: ${logical} attaches ${p.policy_arn}; only this app's own aws_iam_policy can be simulated (no AWS-managed policies)`);
      const policy = res.aws_iam_policy?.[m[1]];
      add(roleOf(p.role), policy?.name ?? m[1], policyArg(resolver, stack, policy?.policy));
    }
    for (const unsupported of ['aws_iam_policy_attachment', 'aws_iam_user', 'aws_iam_group', 'aws_iam_user_policy', 'aws_iam_group_policy']) {
      if (res[unsupported]) throw new Error(`stack ${stack}: ${unsupported} is not modelled by the security harness`);
    }
    for (const [logical, r] of Object.entries(res.aws_iam_role ?? {})) {
      const attrs = resolver.attributes(stack, 'aws_iam_role', logical, r);
      const inline = asArray(r.inline_policy as Block | Block[] | undefined).map((ip) => ({
        name: ip.name as string,
        document: policyArg(resolver, stack, ip.policy),
      }));
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
