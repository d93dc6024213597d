// Test support for the ingest and batch stack tests: read a synthesized stack back from cdktf.out.
import * as fs from 'node:fs';
import * as path from 'node:path';

export function readStack(outdir: string, name: string) {
  const dir = path.join(outdir, 'stacks', name);
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'cdk.tf.json'), 'utf8'));
  const resources = (type: string): Record<string, any> => json.resource?.[type] ?? {};
  const only = (type: string) => {
    const all = Object.values(resources(type));
    if (all.length !== 1) throw new Error(`expected one ${type} in ${name}, found ${all.length}`);
    return all[0] as any;
  };
  /** The inline policy document (data source) of a role, by the role's logical id. */
  const policyOf = (roleId: string) => json.data.aws_iam_policy_document[`${roleId}-policy-doc`].statement as any[];
  const trustOf = (roleId: string) => json.data.aws_iam_policy_document[`${roleId}-trust`].statement as any[];
  return { dir, json, resources, only, policyOf, trustOf };
}
