// ingest: the SFTP lister's Fargate task definition and roles, and the EventBridge Scheduler schedule
// that starts the pipeline's state machine every few minutes with {"ingest": {}} (the state machine
// runs the lister, then converts what it brought). Replaces the lab's 5-minute CloudWatch rule.
//
// The schedule targets the state machine by its ARN built from its name, so this stack does not
// depend on the batch stack (which depends on this one for the lister's task definition).
import { EcsTaskDefinition } from '@cdktf/provider-aws/lib/ecs-task-definition';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { SchedulerSchedule } from '@cdktf/provider-aws/lib/scheduler-schedule';
import { SchedulerScheduleGroup } from '@cdktf/provider-aws/lib/scheduler-schedule-group';
import { SqsQueue } from '@cdktf/provider-aws/lib/sqs-queue';
import { TerraformOutput } from 'cdktf';
import { Construct } from 'constructs';
import { PipelineStack, PipelineStackProps } from './base';
import { executionRole, fargateTaskDefinition } from './constructs/fargate-task';
import { AccountScope, serviceRole } from './constructs/iam';
import { ClusterRefs, DataLayout, DEFAULT_LAYOUT, ImageRefs, NetworkRefs, SftpRefs, STATE_MACHINE_SUFFIX } from './constructs/refs';

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
  /** The pipeline's own schedule group (the Scheduler's metrics are per group). */
  readonly scheduleGroup: SchedulerScheduleGroup;
  readonly scheduleRole: IamRole;
  readonly deadLetterQueue: SqsQueue;
  /** The state machine the schedule starts (created by the batch stack under this name). */
  readonly stateMachineArn: string;
  readonly layout: DataLayout;

  constructor(scope: Construct, id: string, props: IngestStackProps) {
    super(scope, id, props);
    const { config } = this;
    this.layout = props.layout ?? DEFAULT_LAYOUT;
    const aws = new AccountScope(this, config.region);
    const bucket = props.cluster.xmlBucket.bucket;
    const { ingestPrefix, manifestPrefix, listerStatePrefix } = this.layout;

    // The lister: lists SFTP, streams new files into incoming/, keeps its index, writes the manifest.
    this.taskRole = serviceRole(
      this,
      'task-role',
      this.name('lister-task'),
      'ecs-tasks.amazonaws.com',
      [
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
        // Confused-deputy guard: only ECS tasks of this account may assume it.
      ],
      aws.sourceAccount,
    );
    this.executionRole = executionRole(
      this,
      'execution-role',
      this.name('lister-exec'),
      props.cluster.repositories.sftpLister.arn,
      props.cluster.logGroups.sftpLister.arn,
      [props.sftp.privateKeySecret.arn],
    );

    // Env names: images/sftp-lister/src/config.ts (and its README); settings: stacks/config.
    const environment: Record<string, string> = {
      SFTP_HOST: props.sftp.host,
      SFTP_PORT: String(props.sftp.port),
      SFTP_USER: props.sftp.userName,
      SFTP_HOST_KEY_FINGERPRINTS: props.sftp.hostKeyFingerprints,
      SFTP_REMOTE_DIR: config.sftpRemoteDir,
      COMPLETION: config.sftpCompletion,
      MIN_AGE_SECONDS: String(config.minFileAgeSeconds),
      MAX_FILES: String(config.filesPerRun),
      BATCH_MAX_FILES: String(config.batchMaxFiles),
      BATCH_MAX_BYTES: String(config.batchMaxBytes),
      RETRIES: String(config.listerRetries),
      STATE_KEY: `${listerStatePrefix}state/index.json`,
      MANIFEST_PREFIX: `${listerStatePrefix}manifests/`,
      // The EMF dimension value (contract C1).
      METRICS_PIPELINE: this.pipelineName,
    };
    if (config.sftpInclude.length > 0) environment.INCLUDE = config.sftpInclude.join(',');
    if (config.sftpExclude.length > 0) environment.EXCLUDE = config.sftpExclude.join(',');
    if (config.sftpCompletionMoveDir !== undefined) environment.COMPLETION_MOVE_DIR = config.sftpCompletionMoveDir;
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
    this.stateMachineArn = aws.arn('states', `stateMachine:${stateMachineName}`);
    this.deadLetterQueue = new SqsQueue(this, 'schedule-dlq', {
      name: this.name('schedule-dlq'),
      messageRetentionSeconds: 14 * 24 * 3600,
      sqsManagedSseEnabled: true,
    });
    this.scheduleRole = serviceRole(
      this,
      'schedule-role',
      this.name('schedule'),
      'scheduler.amazonaws.com',
      [
        { sid: 'StartOnlyThePipeline', effect: 'Allow', actions: ['states:StartExecution'], resources: [this.stateMachineArn] },
        { sid: 'DeadLetters', effect: 'Allow', actions: ['sqs:SendMessage'], resources: [this.deadLetterQueue.arn] },
      ],
      aws.sourceAccount,
    );
    // Its own group, not the account's shared "default": Scheduler publishes its metrics (the
    // target-errors alarm's TargetErrorCount) per group, so this group's metrics are this pipeline's.
    // https://docs.aws.amazon.com/scheduler/latest/UserGuide/monitoring-cloudwatch.html
    // A schedule joins its group when created (a changed group replaces the schedule); deleting the
    // group deletes its schedules: https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-group-delete.html
    this.scheduleGroup = new SchedulerScheduleGroup(this, 'schedule-group', { name: this.name('schedules') });
    this.schedule = new SchedulerSchedule(this, 'schedule', {
      name: this.name('ingest'),
      groupName: this.scheduleGroup.name,
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
    new TerraformOutput(this, 'schedule_group_name', { value: this.scheduleGroup.name });
    new TerraformOutput(this, 'schedule_dlq_url', { value: this.deadLetterQueue.url });
  }
}
