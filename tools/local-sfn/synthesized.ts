// Reading what cdktf synthesized, with concrete values: the state machine definition, its role, the
// task definitions (containers, environment, roles, tags) and the data bucket, every Terraform
// reference resolved by the security model's resolver (fake account 123456789012, names from the
// synthesized arguments), so IAM decisions are made on the very ARNs the definition names.
import { App } from 'cdktf';
import { buildInfrastructure } from '../../stacks/app';
import { loadConfig } from '../../stacks/config';
import { buildSecurityModel, SecurityModel } from '../review';
import { readApp } from '../tf-json';
import type { JsonObject } from './json';

export interface TaskDefinitionModel {
  readonly stack: string;
  readonly family: string;
  /** `...:task-definition/family` (what the definition names) and `...:family:1` (what RunTask runs). */
  readonly arnWithoutRevision: string;
  readonly arn: string;
  readonly taskRoleArn: string;
  readonly executionRoleArn: string;
  /** The provider's default tags plus the resource's own: what PropagateTags TASK_DEFINITION copies. */
  readonly tags: Record<string, string>;
  readonly containers: {
    readonly name: string;
    /** Environment as synthesized; values Terraform computes and the resolver cannot are `<unresolved:...>`. */
    readonly environment: Record<string, string>;
    /** Secrets ECS injects: variable -> secret ARN (read with the execution role). */
    readonly secrets: Record<string, string>;
    /** `<registry>/<repository>:tag@digest`, pulled with the execution role. */
    readonly image: string;
    /** awslogs options (group, stream prefix), written with the execution role. */
    readonly logGroup?: string;
    readonly logStreamPrefix?: string;
  }[];
}

export interface Synthesized {
  readonly outdir: string;
  readonly model: SecurityModel;
  /** The state machine definition, every reference resolved. */
  readonly definition: JsonObject;
  readonly stateMachine: { readonly name: string; readonly arn: string; readonly roleArn: string };
  readonly taskDefinitions: TaskDefinitionModel[];
  /** The data bucket's name (the converter's BUCKET). */
  readonly bucket: string;
  readonly region: string;
}

/** Synthesizes the app (the same graph as main.ts) into `outdir`. */
export function synthesize(outdir: string, imagesDir?: string): void {
  const app = new App({ outdir });
  buildInfrastructure(app, loadConfig({ env: {} }), { imagesDir });
  app.synth();
}

const text = (v: unknown): string => (typeof v === 'string' ? v : '');

export function readSynthesized(outdir: string): Synthesized {
  const model = buildSecurityModel(readApp(outdir));
  const r = model.resolver;
  const machines = Object.entries(model.app.stacks).flatMap(([stack, json]) =>
    Object.entries(json.resource?.aws_sfn_state_machine ?? {}).map(([logical, block]) => ({ stack, logical, block })),
  );
  if (machines.length !== 1) throw new Error(`expected one aws_sfn_state_machine in ${outdir}, found ${machines.length}`);
  const [{ stack, logical, block }] = machines;
  const definition = r.json(stack, text(block.definition)) as JsonObject;
  const attrs = r.attributes(stack, 'aws_sfn_state_machine', logical, block);

  const taskDefinitions: TaskDefinitionModel[] = [];
  for (const [tdStack, json] of Object.entries(model.app.stacks)) {
    const defaultTags = (json.provider?.aws?.[0]?.default_tags?.[0]?.tags ?? {}) as Record<string, string>;
    for (const [name, td] of Object.entries(json.resource?.aws_ecs_task_definition ?? {})) {
      const a = r.attributes(tdStack, 'aws_ecs_task_definition', name, td);
      type Container = {
        name: string;
        image: string;
        environment?: { name: string; value: string }[];
        secrets?: { name: string; valueFrom: string }[];
        logConfiguration?: { options?: Record<string, string> };
      };
      const containers = (r.json(tdStack, text(td.container_definitions), false) as Container[]).map((c) => ({
        name: c.name,
        environment: Object.fromEntries((c.environment ?? []).map((e) => [e.name, e.value])),
        secrets: Object.fromEntries((c.secrets ?? []).map((s) => [s.name, s.valueFrom])),
        image: c.image,
        logGroup: c.logConfiguration?.options?.['awslogs-group'],
        logStreamPrefix: c.logConfiguration?.options?.['awslogs-stream-prefix'],
      }));
      taskDefinitions.push({
        stack: tdStack,
        family: a.family,
        arnWithoutRevision: a.arn_without_revision,
        arn: a.arn,
        taskRoleArn: r.text(tdStack, text(td.task_role_arn)),
        executionRoleArn: r.text(tdStack, text(td.execution_role_arn)),
        tags: { ...defaultTags, ...((r.deep(tdStack, td.tags ?? {}) as Record<string, string>) ?? {}) },
        containers,
      });
    }
  }
  // The bucket is whatever the converter's BUCKET override holds.
  const bucket = /"Name":"BUCKET","Value":"([^"]+)"/.exec(JSON.stringify(definition))?.[1];
  if (!bucket) throw new Error(`no BUCKET override in the state machine definition of ${outdir}`);
  return {
    outdir,
    model,
    definition,
    stateMachine: { name: attrs.name, arn: attrs.arn, roleArn: r.text(stack, text(block.role_arn)) },
    taskDefinitions,
    bucket,
    region: r.region(stack),
  };
}
