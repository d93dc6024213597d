// IAM policy documents as the model holds them, and the few readers every check needs.

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
