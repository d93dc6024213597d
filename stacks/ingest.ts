// ingest: the SFTP lister's Fargate task definition and roles, and the EventBridge Scheduler schedule
// that starts the pipeline's state machine every few minutes with {"ingest": {}} (the state machine
// runs the lister, then converts what it brought). Replaces the lab's 5-minute CloudWatch rule.
//
// The schedule targets the state machine by its ARN built from its name, so this stack does not
// depend on the batch stack (which depends on this one for the lister's task definition).
import { DataAwsCallerIdentity } from '@cdktf/provider-aws/lib/data-aws-caller-identity';
import { DataAwsIamPolicyDocument, DataAwsIamPolicyDocumentStatement } from '@cdktf/provider-aws/lib/data-aws-iam-policy-document';
import { DataAwsPartition } from '@cdktf/provider-aws/lib/data-aws-partition';
import { EcsTaskDefinition } from '@cdktf/provider-aws/lib/ecs-task-definition';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { SchedulerSchedule } from '@cdktf/provider-aws/lib/scheduler-schedule';
import { SqsQueue } from '@cdktf/provider-aws/lib/sqs-queue';
import { TerraformOutput } from 'cdktf';
import { Construct } from 'constructs';
import { PipelineStack, PipelineStackProps } from './base';
import { CpuArchitecture, TaskSize } from './config';

// ---- what this stack and the batch stack need from the infrastructure stacks (structural, so the
// ---- stacks from app.ts fit and tests can pass their own) ----

export interface NetworkRefs {
  readonly privateSubnets: { readonly id: string }[];
  /** No ingress; egress to the endpoints, S3 and the SFTP port. */
  readonly taskSecurityGroup: { readonly id: string };
}

export interface ClusterRefs {
  readonly cluster: { readonly arn: string; readonly name: string };
  readonly logGroups: Record<'sftpLister' | 'converter', { readonly name: string; readonly arn: string }>;
  readonly repositories: Record<'sftpLister' | 'converter', { readonly arn: string }>;
  /** The data bucket: ingested XML, JSON output, manifests, batch results. */
  readonly xmlBucket: { readonly bucket: { readonly id: string; readonly arn: string } };
}

export interface ImageRefs {
  /** `repo:tag@sha256:digest` per image. */
  readonly imageRefs: Record<'sftpLister' | 'converter', string>;
}

export interface SftpRefs {
  readonly host: string;
  readonly port: number;
  readonly userName: string;
  /** Comma-separated `SHA256:...`. */
  readonly hostKeyFingerprints: string;
  readonly privateKeySecret: { readonly arn: string };
}

/** Key prefixes in the data bucket; shared by the task roles, the state machine and its role. */
export interface DataLayout {
  /** Where the lister lands files. @default 'incoming/' */
  readonly ingestPrefix: string;
  /** Output key = outputPrefix + source key + '.json'. @default 'json/' */
  readonly outputPrefix: string;
  /** One manifest (JSON array of new keys) per ingest execution. @default 'manifests/' */
  readonly manifestPrefix: string;
  /** Converter summaries per batch and Distributed Map results. @default 'results/' */
  readonly resultPrefix: string;
  /** The lister's own index of what it ingested (its STATE_KEY lives here). @default '.sftp-lister/' */
  readonly listerStatePrefix: string;
}

export const DEFAULT_LAYOUT: DataLayout = {
  ingestPrefix: 'incoming/',
  outputPrefix: 'json/',
  manifestPrefix: 'manifests/',
  resultPrefix: 'results/',
  listerStatePrefix: '.sftp-lister/',
};

/** The state machine's name suffix; both stacks derive its ARN from it. */
export const STATE_MACHINE_SUFFIX = 'pipeline';

// ---- shared construction helpers (used by the batch stack too) ----

/** A role that only `service` may assume, with one inline policy. */
export function serviceRole(scope: Construct, id: string, name: string, service: string, statements: DataAwsIamPolicyDocumentStatement[], conditions?: DataAwsIamPolicyDocumentStatement['condition']): IamRole {
  const trust = new DataAwsIamPolicyDocument(scope, `${id}-trust`, {
    statement: [{ effect: 'Allow', actions: ['sts:AssumeRole'], principals: [{ type: 'Service', identifiers: [service] }], condition: conditions }],
  });
  const role = new IamRole(scope, id, { name, assumeRolePolicy: trust.json, maxSessionDuration: 3600 });
  if (statements.length > 0) {
    const policy = new DataAwsIamPolicyDocument(scope, `${id}-policy-doc`, { statement: statements });
    new IamRolePolicy(scope, `${id}-policy`, { role: role.id, name: 'least-privilege', policy: policy.json });
  }
  return role;
}

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
  const statements: DataAwsIamPolicyDocumentStatement[] = [
    // GetAuthorizationToken has no resource-level permissions.
    { sid: 'EcrLogin', effect: 'Allow', actions: ['ecr:GetAuthorizationToken'], resources: ['*'] },
    { sid: 'PullOwnImage', effect: 'Allow', actions: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'], resources: [repositoryArn] },
    { sid: 'WriteLogs', effect: 'Allow', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [`${logGroupArn}:*`] },
  ];
  if (secretArns.length > 0) {
    statements.push({ sid: 'InjectSecrets', effect: 'Allow', actions: ['secretsmanager:GetSecretValue'], resources: secretArns });
  }
  return serviceRole(scope, id, name, 'ecs-tasks.amazonaws.com', statements);
}

// ---- the stack ----

export interface IngestStackProps extends PipelineStackProps {
  readonly network: NetworkRefs;
  readonly cluster: ClusterRefs;
  readonly images: ImageRefs;
  readonly sftp: SftpRefs;
  /** @default DEFAULT_LAYOUT */
  readonly layout?: DataLayout;
}

export class IngestStack extends PipelineStack {
  readonly taskDefinition: EcsTaskDefinition;
  readonly taskRole: IamRole;
  readonly executionRole: IamRole;
  readonly containerName = 'sftp-lister';
  readonly schedule: SchedulerSchedule;
  readonly scheduleRole: IamRole;
  readonly deadLetterQueue: SqsQueue;
  /** The state machine the schedule starts (created by the batch stack under this name). */
  readonly stateMachineArn: string;
  readonly layout: DataLayout;

  constructor(scope: Construct, id: string, props: IngestStackProps) {
    super(scope, id, props);
    const { config } = this;
    this.layout = props.layout ?? DEFAULT_LAYOUT;
    const account = new DataAwsCallerIdentity(this, 'account');
    const partition = new DataAwsPartition(this, 'partition');
    const bucket = props.cluster.xmlBucket.bucket;
    const { ingestPrefix, manifestPrefix, listerStatePrefix } = this.layout;

    // The lister: lists SFTP, streams new files into incoming/, keeps its index, writes the manifest.
    this.taskRole = serviceRole(this, 'task-role', this.name('lister-task'), 'ecs-tasks.amazonaws.com', [
      {
        sid: 'WriteIngestedFilesManifestAndIndex',
        effect: 'Allow',
        actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
        resources: [ingestPrefix, manifestPrefix, listerStatePrefix].map((p) => `${bucket.arn}/${p}*`),
      },
      {
        sid: 'ReadOwnIndexAndLandedFiles',
        effect: 'Allow',
        actions: ['s3:GetObject'],
        resources: [ingestPrefix, listerStatePrefix].map((p) => `${bucket.arn}/${p}*`),
      },
      {
        sid: 'ListLandingPrefixes',
        effect: 'Allow',
        actions: ['s3:ListBucket'],
        resources: [bucket.arn],
        condition: [{ test: 'StringLike', variable: 's3:prefix', values: [`${ingestPrefix}*`, `${listerStatePrefix}*`] }],
      },
    ], [
      // Confused-deputy guard: only ECS tasks of this account may assume it.
      { test: 'StringEquals', variable: 'aws:SourceAccount', values: [account.accountId] },
    ]);
    this.executionRole = executionRole(this, 'execution-role', this.name('lister-exec'), props.cluster.repositories.sftpLister.arn, props.cluster.logGroups.sftpLister.arn, [props.sftp.privateKeySecret.arn]);

    // Env names: images/sftp-lister/src/config.ts (and its README); settings: stacks/config.
    const environment: Record<string, string> = {
      SFTP_HOST: props.sftp.host,
      SFTP_PORT: String(props.sftp.port),
      SFTP_USER: props.sftp.userName,
      SFTP_HOST_KEY_FINGERPRINTS: props.sftp.hostKeyFingerprints,
      SFTP_REMOTE_DIR: config.sftpRemoteDir,
      MIN_AGE_SECONDS: String(config.minFileAgeSeconds),
      MAX_FILES: String(config.filesPerRun),
      BATCH_MAX_FILES: String(config.batchMaxFiles),
      BATCH_MAX_BYTES: String(config.batchMaxBytes),
      RETRIES: String(config.listerRetries),
      STATE_KEY: `${listerStatePrefix}state/index.json`,
      MANIFEST_PREFIX: `${listerStatePrefix}manifests/`,
      // The EMF dimension value (contract C1).
      METRICS_PIPELINE: `${config.namePrefix}-${config.stage}`,
    };
    if (config.sftpInclude.length > 0) environment.INCLUDE = config.sftpInclude.join(',');
    if (config.sftpExclude.length > 0) environment.EXCLUDE = config.sftpExclude.join(',');
    this.taskDefinition = fargateTaskDefinition(this, 'task', {
      family: this.name('sftp-lister'),
      containerName: this.containerName,
      image: props.images.imageRefs.sftpLister,
      size: config.listerTask,
      cpuArchitecture: config.cpuArchitecture,
      taskRoleArn: this.taskRole.arn,
      executionRoleArn: this.executionRole.arn,
      logGroupName: props.cluster.logGroups.sftpLister.name,
      region: config.region,
      environment,
      // ECS reads the secret with the execution role at task start; the value never enters Terraform.
      secrets: { SFTP_PRIVATE_KEY: props.sftp.privateKeySecret.arn },
    });

    // The schedule -> state machine.
    const stateMachineName = this.name(STATE_MACHINE_SUFFIX);
    this.stateMachineArn = `arn:${partition.partition}:states:${config.region}:${account.accountId}:stateMachine:${stateMachineName}`;
    this.deadLetterQueue = new SqsQueue(this, 'schedule-dlq', {
      name: this.name('schedule-dlq'),
      messageRetentionSeconds: 14 * 24 * 3600,
      sqsManagedSseEnabled: true,
    });
    this.scheduleRole = serviceRole(this, 'schedule-role', this.name('schedule'), 'scheduler.amazonaws.com', [
      { sid: 'StartOnlyThePipeline', effect: 'Allow', actions: ['states:StartExecution'], resources: [this.stateMachineArn] },
      { sid: 'DeadLetters', effect: 'Allow', actions: ['sqs:SendMessage'], resources: [this.deadLetterQueue.arn] },
    ], [{ test: 'StringEquals', variable: 'aws:SourceAccount', values: [account.accountId] }]);
    this.schedule = new SchedulerSchedule(this, 'schedule', {
      name: this.name('ingest'),
      description: 'Ingest new SFTP files and convert them (starts the pipeline state machine)',
      scheduleExpression: config.scheduleExpression,
      scheduleExpressionTimezone: 'UTC',
      // First deploy: DISABLED until the private key is in the secret (config.scheduleEnabled).
      state: config.scheduleEnabled ? 'ENABLED' : 'DISABLED',
      flexibleTimeWindow: { mode: 'OFF' },
      target: {
        arn: this.stateMachineArn,
        roleArn: this.scheduleRole.arn,
        input: JSON.stringify({ ingest: { source: 'schedule' } }),
        retryPolicy: { maximumRetryAttempts: config.scheduleRetryAttempts, maximumEventAgeInSeconds: config.scheduleMaxEventAgeSeconds },
        deadLetterConfig: { arn: this.deadLetterQueue.arn },
      },
    });

    new TerraformOutput(this, 'lister_task_definition_family', { value: this.taskDefinition.family });
    new TerraformOutput(this, 'schedule_name', { value: this.schedule.name });
    new TerraformOutput(this, 'schedule_dlq_url', { value: this.deadLetterQueue.url });
  }
}
