// The pipeline's state machine definition (Amazon States Language, JSONPath), built by a pure function
// from typed states that carry their IAM (asl.ts), so it can be unit-tested, validated with
// asl-validator and executed locally with aws-local-stepfunctions exactly as synthesized, and the
// role's policy is exactly what its states need.
//
// Inputs (see docs/pipeline.md):
//   ["a.xml", "b/c.xml"]                          contract 1 (the lab's): convert these keys
//   {"prefix": "incoming/2024/"}                   contract 2: convert every object under a prefix
//   {"manifest": {"bucket": "b", "key": "k"}}      contract 2: convert the keys of a JSON array object
//   {"ingest": {}}                                 the schedule: ingest new SFTP files, convert them
// Every path runs one Fargate task per batch of keys (never per file). Keys and prefixes named in the
// input must lie under one of the input prefixes (the converter's role reads nothing else): others
// fail the execution before any task runs.
//
// Every converting path is a Distributed Map whose per-batch outputs go to S3 (ResultWriter), so no
// state carries per-key results: an execution's output is at most a few hundred bytes plus the
// caller's own input, whatever the number of keys (Step Functions limits a state's input and output to
// 256 KiB: https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).
import { flow, type JsonObject, type PolicyStatement } from './asl';
import { STATE } from './constants';
import { ingestFailureStates, listerStates } from './ingest';
import { mergeGrants } from './iam';
import { acquireLockStates, releaseLockStates } from './lock';
import { conversionStates } from './processor';
import { routeStates } from './routes';
import { resolveSettings, type PipelineDefinitionProps } from './settings';

export * from './asl';
export * from './constants';
export { converterEnvironment, converterOverridesFixedChars } from './converter';
export { POLICY_ORDER } from './iam';
export { processorStateNames, type ProcessorVariant } from './processor';
export { containerOverridesChars, RUN_TASK_SYNC, type EcsCluster } from './run-task';
export type { AwsTargets, PipelineDefinitionProps, RetrySettings, TaskLaunch } from './settings';

export interface PipelineDefinition {
  readonly definition: JsonObject;
  /** The role statements the states need, merged by Sid (logging and tracing are the machine's, not a state's). */
  readonly statements: PolicyStatement[];
}

/** Builds the definition and its IAM; validates settings and throws early with the setting's name. */
export function buildDefinition(props: PipelineDefinitionProps): PipelineDefinition {
  const s = resolveSettings(props);
  const machine = flow(STATE.route, {
    ...routeStates(s),
    ...conversionStates(s),
    // The schedule: one ingest at a time (a lock item naming the holding execution), so two runs never
    // ingest, and so never convert, the same file at the same time.
    ...acquireLockStates(s),
    ...listerStates(s),
    ...releaseLockStates(s),
    ...ingestFailureStates(),
  });
  return {
    definition: {
      Comment: 'SFTP-to-S3 ingest and XML-to-JSON conversion on Fargate, one task per batch of keys',
      QueryLanguage: 'JSONPath',
      StartAt: machine.json.StartAt,
      States: machine.json.States,
    },
    statements: mergeGrants(machine.grants),
  };
}
