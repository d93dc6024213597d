// The state machine role's policy: the statements its states brought (asl.ts Granted), merged by Sid.
import type { Grant, IntegrationUse, PolicyStatement } from './asl';

/**
 * The order of the policy: statements of earlier uses first (a stable, readable policy whatever the
 * order of the states). Only an order: the statements themselves come from the states.
 */
export const POLICY_ORDER: readonly IntegrationUse[] = [
  'task:arn:aws:states:::ecs:runTask.sync',
  'itemReader:arn:aws:states:::s3:getObject',
  'task:arn:aws:states:::aws-sdk:s3:getObject',
  'itemReader:arn:aws:states:::s3:listObjectsV2',
  'resultWriter:arn:aws:states:::s3:putObject',
  'task:arn:aws:states:::aws-sdk:s3:putObject',
  'task:arn:aws:states:::dynamodb:putItem',
  'task:arn:aws:states:::dynamodb:getItem',
  'task:arn:aws:states:::dynamodb:deleteItem',
  'distributedMap',
  'task:arn:aws:states:::aws-sdk:sfn:describeExecution',
];

/**
 * The role statements of a definition's grants, merged by Sid (actions and resources united, in order).
 * Statements sharing a Sid must share their condition.
 */
export function mergeGrants(grants: readonly Grant[]): PolicyStatement[] {
  const rank = (use: IntegrationUse) => {
    const i = POLICY_ORDER.indexOf(use);
    return i < 0 ? POLICY_ORDER.length : i;
  };
  const ordered = grants.map((g, i) => ({ g, i })).sort((a, b) => rank(a.g.use) - rank(b.g.use) || a.i - b.i);
  const merged = new Map<string, PolicyStatement>();
  for (const { g } of ordered) {
    const st = g.statement;
    const prev = merged.get(st.sid);
    if (!prev) {
      merged.set(st.sid, { ...st, actions: [...st.actions], resources: [...st.resources] });
      continue;
    }
    if (JSON.stringify(prev.condition ?? null) !== JSON.stringify(st.condition ?? null))
      throw new Error(`state machine: statements ${st.sid} differ in their condition`);
    merged.set(st.sid, { ...prev, actions: [...new Set([...prev.actions, ...st.actions])], resources: [...new Set([...prev.resources, ...st.resources])] });
  }
  return [...merged.values()];
}
