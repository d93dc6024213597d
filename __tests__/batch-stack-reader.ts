// Test support for the ingest and batch stack tests: a synthesized stack read back from its outdir,
// plus its roles' policy documents.
import { readStack as readSynthStack } from './stacks/synth';

export function readStack(outdir: string, name: string) {
  const stack = readSynthStack(outdir, name);
  const docs = () => stack.json.data!.aws_iam_policy_document;
  /** The inline policy document (data source) of a role, by the role's logical id. */
  const policyOf = (roleId: string) => docs()[`${roleId}-policy-doc`].statement as any[];
  const trustOf = (roleId: string) => docs()[`${roleId}-trust`].statement as any[];
  return { ...stack, policyOf, trustOf };
}
