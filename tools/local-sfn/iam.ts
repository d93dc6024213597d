// IAM on every call of the local run: each request the state machine's role or a task role makes is
// evaluated by @cloud-copilot/iam-simulate against the synthesized policies of that role (and the
// bucket policy of the data bucket), through tools/review `simulate`, as the IAM tests do.
import * as crypto from 'node:crypto';
import { asArray, Decision, FAKE_ACCOUNT, PolicyDocument, RoleModel, SecurityModel, simulate, statementsOf } from '../review';

export interface AuthorizationRecord {
  readonly role: string;
  readonly action: string;
  readonly resource: string;
  readonly context: Record<string, string | string[]>;
  readonly decision: Decision;
  /** What asked (e.g. the S3 request whose missing key needed s3:ListBucket to answer 404). */
  readonly note?: string;
}

/** What AWS says when a role may not do something (the message ECS, S3 and others return). */
export function accessDeniedMessage(role: RoleModel, action: string, resource: string, decision: Decision): string {
  const why = decision === 'ExplicitlyDenied' ? `with an explicit deny in a policy` : `because no identity-based policy allows the ${action} action`;
  return `User: arn:aws:sts::${FAKE_ACCOUNT}:assumed-role/${role.name}/local-run is not authorized to perform: ${action} on resource: ${resource} ${why}`;
}

export class AccessDenied extends Error {
  constructor(
    readonly role: RoleModel,
    readonly action: string,
    readonly resource: string,
    readonly decision: Decision,
  ) {
    super(accessDeniedMessage(role, action, resource, decision));
    this.name = 'AccessDenied';
  }
}

/**
 * A session of the local run's identities: the roles of the synthesized app, each with an access key id
 * handed to the processes that act as it (S3 requests carry it in their SigV4 Authorization header).
 */
export class Iam {
  /** Every decision, in order: what the tests read to prove each call was authorized. */
  readonly log: AuthorizationRecord[] = [];
  private readonly byArn = new Map<string, RoleModel>();
  private readonly byKey = new Map<string, RoleModel>();
  private readonly decided = new Map<string, Decision>();
  private readonly patterns = new Map<string, RegExp[]>();

  constructor(readonly model: SecurityModel) {
    for (const role of model.roles) {
      this.byArn.set(role.arn, role);
      this.byKey.set(Iam.accessKeyId(role), role);
    }
  }

  /** A stable temporary-credential-style key id per role (ASIA + 16 characters). */
  static accessKeyId(role: RoleModel): string {
    return `ASIA${crypto.createHash('sha256').update(role.arn).digest('hex').slice(0, 16).toUpperCase()}`;
  }

  role(arn: string): RoleModel {
    const role = this.byArn.get(arn);
    if (!role) throw new Error(`local run: no role ${arn} in the synthesized app`);
    return role;
  }

  /** The role an access key id stands for, if any. */
  roleOfKey(accessKeyId: string): RoleModel | undefined {
    return this.byKey.get(accessKeyId);
  }

  /**
   * Every Resource/NotResource pattern of the role's policies and of the buckets' policies, as regular
   * expressions (IAM: `*` any run of characters, `?` one character).
   */
  private patternsOf(role: RoleModel): RegExp[] {
    let out = this.patterns.get(role.key);
    if (!out) {
      const docs: PolicyDocument[] = [...role.policies.map((p) => p.document), ...this.model.buckets.flatMap((b) => (b.policy ? [b.policy] : []))];
      const globs = [...new Set(docs.flatMap((d) => statementsOf(d).flatMap((st) => [...asArray(st.Resource), ...asArray(st.NotResource)])))];
      out = globs.map(
        (g) =>
          new RegExp(
            `^${g
              .replace(/[.+^${}()|[\]\\]/g, '\\$&')
              .replace(/\*/g, '.*')
              .replace(/\?/g, '.')}$`,
          ),
      );
      this.patterns.set(role.key, out);
    }
    return out;
  }

  /**
   * Evaluates one request; records it. A decision depends on the resource only through which policy
   * patterns it matches (no policy here has variables in resources), so requests that match the same
   * patterns with the same action and context reuse the simulator's answer: thousands of object keys
   * cost one simulation per distinct case.
   */
  async decide(role: RoleModel, action: string, resource: string, context: Record<string, string | string[]> = {}, note?: string): Promise<Decision> {
    const bucket = this.model.buckets.find((b) => resource === b.arn || resource.startsWith(`${b.arn}/`));
    const shape = this.patternsOf(role)
      .map((re) => (re.test(resource) ? '1' : '0'))
      .join('');
    const key = JSON.stringify([role.key, action, bucket?.arn ?? '', shape, Object.entries(context).sort()]);
    let decision = this.decided.get(key);
    if (!decision) {
      decision = await simulate(this.model, role, { action, resource, context });
      this.decided.set(key, decision);
    }
    this.log.push({ role: role.key, action, resource, context, decision, ...(note ? { note } : {}) });
    return decision;
  }

  /** Evaluates one request and throws AccessDenied unless it is allowed. */
  async require(role: RoleModel, action: string, resource: string, context: Record<string, string | string[]> = {}): Promise<void> {
    const decision = await this.decide(role, action, resource, context);
    if (decision !== 'Allowed') throw new AccessDenied(role, action, resource, decision);
  }
}
