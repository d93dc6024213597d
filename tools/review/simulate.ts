// One request of a role evaluated by @cloud-copilot/iam-simulate (AGPL-3.0: used only by the tests and
// the offline review, never shipped in an image or deployed) against the role's policies and, for an
// object in one of the app's buckets, its bucket policy.
import { runSimulation } from '@cloud-copilot/iam-simulate';
import type { RoleModel, SecurityModel } from './model';
import { FAKE_ACCOUNT } from './resolver';

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
