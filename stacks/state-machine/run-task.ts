// ECS RunTask (.sync) as a Task state's Resource and Parameters, with the IAM statements the call needs,
// as aws-cdk's EcsRunTask does (https://docs.aws.amazon.com/step-functions/latest/dg/ecs-iam.html):
// RunTask on the task definition family in this cluster, TagResource for the tags RunTask creates,
// StopTask/DescribeTasks to watch and stop it, PassRole of the task's two roles, and the EventBridge
// rule through which `.sync` learns that the task stopped.
import { Granted, type Json, type JsonObject, type PolicyStatement } from './asl';
import { ECS_TRANSIENT_ERRORS } from './constants';
import type { Settings, TaskLaunch } from './settings';

/** The cluster the tasks run in. */
export interface EcsCluster {
  readonly arn: string;
  /** Its tasks: `arn:<partition>:ecs:<region>:<account>:task/<cluster name>/*`. */
  readonly tasksArn: string;
  /** The managed rule `StepFunctionsGetEventsForECSTaskRule`. */
  readonly syncRuleArn: string;
}

/** The pipeline's cluster, from the definition's settings. */
export function ecsCluster(s: Settings): EcsCluster {
  return { arn: s.props.clusterArn, tasksArn: s.props.targets.clusterTasksArn, syncRuleArn: s.props.targets.ecsSyncRuleArn };
}

export const RUN_TASK_SYNC = 'arn:aws:states:::ecs:runTask.sync';

function runTaskStatements(cluster: EcsCluster, task: TaskLaunch): PolicyStatement[] {
  const inCluster = [{ test: 'ArnEquals', variable: 'ecs:cluster', values: [cluster.arn] }];
  return [
    {
      sid: 'RunOnlyPipelineTasks',
      effect: 'Allow',
      actions: ['ecs:RunTask'],
      resources: [task.taskDefinitionArn, `${task.taskDefinitionArn}:*`],
      condition: inCluster,
    },
    {
      // PropagateTags TASK_DEFINITION (and the provider's default tags on the task definitions) make
      // RunTask create a tagged task: ECS then also authorizes ecs:TagResource, with ecs:CreateAction
      // = RunTask (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html).
      // Without it RunTask fails with AccessDeniedException, which is not retried.
      sid: 'TagTasksOnRunTask',
      effect: 'Allow',
      actions: ['ecs:TagResource'],
      resources: [cluster.tasksArn],
      condition: [{ test: 'StringEquals', variable: 'ecs:CreateAction', values: ['RunTask'] }],
    },
    { sid: 'WatchAndStopTasks', effect: 'Allow', actions: ['ecs:StopTask', 'ecs:DescribeTasks'], resources: [cluster.tasksArn], condition: inCluster },
    {
      sid: 'PassOnlyPipelineTaskRoles',
      effect: 'Allow',
      actions: ['iam:PassRole'],
      resources: [task.taskRoleArn, task.executionRoleArn],
      condition: [{ test: 'StringEquals', variable: 'iam:PassedToService', values: ['ecs-tasks.amazonaws.com'] }],
    },
    // runTask.sync learns that a task stopped through this managed rule.
    {
      sid: 'SyncTaskCompletionRule',
      effect: 'Allow',
      actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
      resources: [cluster.syncRuleArn],
    },
  ];
}

/** Resource and Parameters of a Task state that runs `task` and waits for it to stop. */
export function runTaskSync(cluster: EcsCluster, task: TaskLaunch, environment: Json[]): { Resource: Granted<string>; Parameters: JsonObject } {
  return {
    Resource: new Granted(`task:${RUN_TASK_SYNC}`, RUN_TASK_SYNC, runTaskStatements(cluster, task)),
    Parameters: {
      Cluster: cluster.arn,
      TaskDefinition: task.taskDefinitionArn,
      CapacityProviderStrategy: [{ CapacityProvider: task.capacityProvider ?? 'FARGATE', Weight: 1 }],
      NetworkConfiguration: {
        AwsvpcConfiguration: { Subnets: task.subnetIds, SecurityGroups: task.securityGroupIds, AssignPublicIp: 'DISABLED' },
      },
      PropagateTags: 'TASK_DEFINITION',
      Overrides: { ContainerOverrides: [{ Name: task.containerName, Environment: environment }] },
    },
  };
}

/** Retry of ECS API errors (capacity, throttling, service faults) when starting a task. */
export function ecsRetrier(retry: JsonObject): JsonObject {
  return { ErrorEquals: [...ECS_TRANSIENT_ERRORS], ...retry };
}

/** Characters ECS counts for a RunTask `overrides` structure (its JSON, as the API request carries it). */
export function containerOverridesChars(containerName: string, environment: { Name: string; Value: string }[]): number {
  return JSON.stringify({ containerOverrides: [{ name: containerName, environment: environment.map((e) => ({ name: e.Name, value: e.Value })) }] }).length;
}
