// A Fargate task definition held to one standard, and the execution role that starts it.
import { EcsTaskDefinition } from '@cdktf/provider-aws/lib/ecs-task-definition';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { Construct } from 'constructs';
import { CpuArchitecture, TaskSize } from '../config';
import { serviceRole, Statement } from './iam';

export interface FargateTaskProps {
  readonly family: string;
  readonly containerName: string;
  readonly image: string;
  readonly size: TaskSize;
  readonly cpuArchitecture: CpuArchitecture;
  readonly taskRoleArn: string;
  readonly executionRoleArn: string;
  readonly logGroupName: string;
  readonly region: string;
  /** Static environment (per-run values come from the state machine's container overrides). */
  readonly environment: Record<string, string>;
  /** Environment variables injected by ECS from Secrets Manager: name -> secret ARN. @default {} */
  readonly secrets?: Record<string, string>;
}

/** Non-root uid:gid the containers run as: the images' own USER (both Dockerfiles use 10001). */
export const CONTAINER_USER = '10001:10001';

/**
 * A Fargate task definition held to one standard: awsvpc, non-root, read-only root filesystem with
 * an ephemeral volume on /tmp for temporary files, awslogs, no privileges.
 */
export function fargateTaskDefinition(scope: Construct, id: string, p: FargateTaskProps): EcsTaskDefinition {
  const container = {
    name: p.containerName,
    image: p.image,
    essential: true,
    user: CONTAINER_USER,
    readonlyRootFilesystem: true,
    privileged: false,
    mountPoints: [{ sourceVolume: 'tmp', containerPath: '/tmp', readOnly: false }],
    environment: Object.entries({ TMPDIR: '/tmp', NODE_ENV: 'production', ...p.environment })
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, value]) => ({ name, value })),
    secrets: Object.entries(p.secrets ?? {}).map(([name, valueFrom]) => ({ name, valueFrom })),
    // Fargate sends SIGTERM, then SIGKILL after this: time for the images to abort uploads cleanly.
    stopTimeout: 30,
    linuxParameters: { initProcessEnabled: true },
    logConfiguration: {
      logDriver: 'awslogs',
      options: { 'awslogs-group': p.logGroupName, 'awslogs-region': p.region, 'awslogs-stream-prefix': p.containerName },
    },
  };
  return new EcsTaskDefinition(scope, id, {
    family: p.family,
    requiresCompatibilities: ['FARGATE'],
    networkMode: 'awsvpc',
    cpu: String(p.size.cpu),
    memory: String(p.size.memoryMiB),
    runtimePlatform: { operatingSystemFamily: 'LINUX', cpuArchitecture: p.cpuArchitecture },
    taskRoleArn: p.taskRoleArn,
    executionRoleArn: p.executionRoleArn,
    // A bind volume with no host path is task-local ephemeral storage on Fargate.
    volume: [{ name: 'tmp' }],
    containerDefinitions: JSON.stringify([container]),
  });
}

/** The execution role ECS uses to pull the image, write logs and (optionally) read secrets. */
export function executionRole(scope: Construct, id: string, name: string, repositoryArn: string, logGroupArn: string, secretArns: string[] = []): IamRole {
  const statements: Statement[] = [
    // GetAuthorizationToken has no resource-level permissions.
    { sid: 'EcrLogin', effect: 'Allow', actions: ['ecr:GetAuthorizationToken'], resources: ['*'] },
    {
      sid: 'PullOwnImage',
      effect: 'Allow',
      actions: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'],
      resources: [repositoryArn],
    },
    { sid: 'WriteLogs', effect: 'Allow', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [`${logGroupArn}:*`] },
  ];
  if (secretArns.length > 0) {
    statements.push({ sid: 'InjectSecrets', effect: 'Allow', actions: ['secretsmanager:GetSecretValue'], resources: secretArns });
  }
  return serviceRole(scope, id, name, 'ecs-tasks.amazonaws.com', statements);
}
