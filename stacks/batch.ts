// batch: the converter's Fargate task definition and roles, the ingest lock table, and the Standard
// state machine (definition from ./state-machine) with logging (ALL, to a log group with retention)
// and X-Ray tracing. Replaces the lab's hand-typed console state machine (a Map with MaxConcurrency 5
// running the converter task per key).
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { DynamodbTable } from '@cdktf/provider-aws/lib/dynamodb-table';
import { EcsTaskDefinition } from '@cdktf/provider-aws/lib/ecs-task-definition';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { SfnStateMachine } from '@cdktf/provider-aws/lib/sfn-state-machine';
import { TerraformOutput } from 'cdktf';
import { Construct } from 'constructs';
import { PipelineStack, PipelineStackProps } from './base';
import { settingError } from './config';
import { executionRole, fargateTaskDefinition } from './constructs/fargate-task';
import { AccountScope, serviceRole } from './constructs/iam';
import { ClusterRefs, DataLayout, DEFAULT_LAYOUT, ImageRefs, inputPrefixesProblem, NetworkRefs, STATE_MACHINE_SUFFIX } from './constructs/refs';
import { buildDefinition, failedPrefixOf, PipelineDefinitionProps } from './state-machine';

/** The lister's task as the state machine launches it (from the ingest stack). */
export interface ListerRefs {
  readonly taskDefinition: { readonly arnWithoutRevision: string };
  readonly taskRole: { readonly arn: string };
  readonly executionRole: { readonly arn: string };
  readonly containerName: string;
  readonly layout: DataLayout;
}

/**
 * Tunables of the state machine (see stacks/state-machine/settings.ts for each default). `batchSize`,
 * `maxConcurrency`, `toleratedFailurePercentage`, `taskAttempts`, `converterConcurrency`, the converter's
 * capacity provider and both task timeouts default to the app's typed config (stacks/config/), so the one
 * settings table drives them; a value here overrides it (tests).
 */
export type BatchSettings = Pick<
  PipelineDefinitionProps,
  | 'keysBatchSize'
  | 'keysMaxConcurrency'
  | 'batchSize'
  | 'maxBatchBytes'
  | 'maxConcurrency'
  | 'toleratedFailurePercentage'
  | 'taskAttempts'
  | 'ecsRetry'
  | 'taskRetryDelays'
> & {
  /** Converter tasks on Fargate Spot (cheaper; reclaimed tasks are re-run). @default config.converterCapacity */
  readonly converterOnSpot?: boolean;
  /** Converter concurrency inside one task (keys converted at once). @default config.converterConcurrency (4) */
  readonly converterConcurrency?: number;
  /** Stop a converter task (and fail its batch) after this long. @default config.converterTimeoutSeconds (3600) */
  readonly converterTimeoutSeconds?: number;
  /** Stop the lister task after this long. @default config.listerTimeoutSeconds (1800) */
  readonly listerTimeoutSeconds?: number;
};

export interface BatchStackProps extends PipelineStackProps {
  readonly network: NetworkRefs;
  readonly cluster: ClusterRefs;
  readonly images: ImageRefs;
  readonly lister: ListerRefs;
  readonly settings?: BatchSettings;
}

export class BatchStack extends PipelineStack {
  readonly taskDefinition: EcsTaskDefinition;
  readonly taskRole: IamRole;
  readonly executionRole: IamRole;
  readonly containerName = 'converter';
  readonly lockTable: DynamodbTable;
  readonly stateMachine: SfnStateMachine;
  readonly stateMachineRole: IamRole;
  readonly logGroup: CloudwatchLogGroup;
  /** The definition as built (with Terraform references in place of ARNs). */
  readonly definition: Record<string, unknown>;

  constructor(scope: Construct, id: string, props: BatchStackProps) {
    super(scope, id, props);
    const { config } = this;
    const settings = props.settings ?? {};
    const layout: DataLayout = props.lister.layout ?? DEFAULT_LAYOUT;
    const concurrency = settings.converterConcurrency ?? config.converterConcurrency;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new Error(`batch: converterConcurrency must be 1-64, got ${concurrency}`);

    const aws = new AccountScope(this, config.region);
    const arn = (service: string, resource: string) => aws.arn(service, resource);
    const bucket = props.cluster.xmlBucket.bucket;
    const { sourceAccount } = aws;

    // The converter reads only the input prefixes (the state machine refuses keys and prefixes outside
    // them) and the batch manifests it is given (S3PATHS_MANIFEST: the lister's batches, a replay's
    // failed-keys manifests), and writes only JSON outputs, its batch summaries and the keys it failed.
    const inputPrefixes = config.inputPrefixes;
    const problem = inputPrefixesProblem(inputPrefixes, layout);
    if (problem) throw settingError('inputPrefixes', problem);
    const failedPrefix = failedPrefixOf(layout.manifestPrefix);
    this.taskRole = serviceRole(
      this,
      'task-role',
      this.name('converter-task'),
      'ecs-tasks.amazonaws.com',
      [
        { sid: 'ReadInputPrefixes', effect: 'Allow', actions: ['s3:GetObject'], resources: inputPrefixes.map((p) => `${bucket.arn}/${p}*`) },
        {
          sid: 'WriteOutputsAndSummaries',
          effect: 'Allow',
          actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
          resources: [layout.outputPrefix, layout.resultPrefix].map((p) => `${bucket.arn}/${p}*`),
        },
        // Contract C3: `<manifest key without .json>/batches/<n>.json`; contract C2: failed-keys manifests.
        {
          sid: 'ReadBatchManifests',
          effect: 'Allow',
          actions: ['s3:GetObject'],
          resources: [`${bucket.arn}/${layout.manifestPrefix}*/batches/*`, `${bucket.arn}/${failedPrefix}*`],
        },
        // Contract C2: the keys a task failed, written (conditionally) or deleted when a rerun succeeds.
        { sid: 'FileFailedKeys', effect: 'Allow', actions: ['s3:PutObject', 's3:DeleteObject'], resources: [`${bucket.arn}/${failedPrefix}*`] },
      ],
      sourceAccount,
    );
    this.executionRole = executionRole(
      this,
      'execution-role',
      this.name('converter-exec'),
      props.cluster.repositories.converter.arn,
      props.cluster.logGroups.converter.arn,
    );
    this.taskDefinition = fargateTaskDefinition(this, 'task', {
      family: this.name('converter'),
      containerName: this.containerName,
      image: props.images.imageRefs.converter,
      size: config.converterTask,
      cpuArchitecture: config.cpuArchitecture,
      taskRoleArn: this.taskRole.arn,
      executionRoleArn: this.executionRole.arn,
      logGroupName: props.cluster.logGroups.converter.name,
      region: config.region,
      // METRICS_PIPELINE: the Pipeline dimension of the converter's metrics (contract C1);
      // FAILED_MANIFEST_PREFIX: where it files failed keys, as the state machine and this role expect.
      environment: { CONCURRENCY: String(concurrency), FORMAT: 'lab', METRICS_PIPELINE: this.pipelineName, FAILED_MANIFEST_PREFIX: failedPrefix },
    });

    // One item: who holds the ingest lock (see docs/pipeline.md, "Overlapping runs").
    this.lockTable = new DynamodbTable(this, 'lock-table', {
      name: this.name('locks'),
      billingMode: 'PAY_PER_REQUEST',
      hashKey: 'lock',
      attribute: [{ name: 'lock', type: 'S' }],
      serverSideEncryption: { enabled: true },
      pointInTimeRecovery: { enabled: false },
      deletionProtectionEnabled: false,
    });

    this.logGroup = new CloudwatchLogGroup(this, 'state-machine-logs', {
      // The vendedlogs prefix keeps CloudWatch's resource policy small however many machines log.
      name: `/aws/vendedlogs/states/${this.name(STATE_MACHINE_SUFFIX)}`,
      retentionInDays: config.logRetentionDays,
    });

    const stateMachineName = this.name(STATE_MACHINE_SUFFIX);
    // Built from the name, not the resource: the role's policy must exist before the machine.
    const stateMachineArn = arn('states', `stateMachine:${stateMachineName}`);
    const clusterArn = props.cluster.cluster.arn;

    const subnetIds = props.network.privateSubnets.map((s) => s.id);
    const securityGroupIds = [props.network.taskSecurityGroup.id];
    // Each state brings the IAM statements its integration needs (stacks/state-machine/); logging and
    // tracing are the machine's, not a state's.
    const built = buildDefinition({
      clusterArn,
      targets: {
        clusterTasksArn: arn('ecs', `task/${props.cluster.cluster.name}/*`),
        ecsSyncRuleArn: arn('events', 'rule/StepFunctionsGetEventsForECSTaskRule'),
        bucketArn: bucket.arn,
        lockTableArn: this.lockTable.arn,
        stateMachineArn,
        executionArns: [arn('states', `execution:${stateMachineName}:*`), arn('states', `execution:${stateMachineName}/*`)],
      },
      bucket: bucket.id,
      lockTableName: this.lockTable.name,
      ingestPrefix: layout.ingestPrefix,
      inputPrefixes,
      outputPrefix: layout.outputPrefix,
      manifestPrefix: layout.manifestPrefix,
      resultPrefix: layout.resultPrefix,
      converter: {
        taskDefinitionArn: this.taskDefinition.arnWithoutRevision,
        containerName: this.containerName,
        taskRoleArn: this.taskRole.arn,
        executionRoleArn: this.executionRole.arn,
        subnetIds,
        securityGroupIds,
        capacityProvider: settings.converterOnSpot ? 'FARGATE_SPOT' : config.converterCapacity,
        timeoutSeconds: settings.converterTimeoutSeconds ?? config.converterTimeoutSeconds,
      },
      lister: {
        taskDefinitionArn: props.lister.taskDefinition.arnWithoutRevision,
        containerName: props.lister.containerName,
        taskRoleArn: props.lister.taskRole.arn,
        executionRoleArn: props.lister.executionRole.arn,
        subnetIds,
        securityGroupIds,
        timeoutSeconds: settings.listerTimeoutSeconds ?? config.listerTimeoutSeconds,
      },
      keysBatchSize: settings.keysBatchSize,
      keysMaxConcurrency: settings.keysMaxConcurrency,
      batchSize: settings.batchSize ?? config.batchSize,
      maxBatchBytes: settings.maxBatchBytes,
      maxConcurrency: settings.maxConcurrency ?? config.maxConcurrency,
      toleratedFailurePercentage: settings.toleratedFailurePercentage ?? config.toleratedFailurePercentage,
      taskAttempts: settings.taskAttempts ?? config.taskAttempts,
      ecsRetry: settings.ecsRetry,
      taskRetryDelays: settings.taskRetryDelays,
    });

    this.definition = built.definition;
    this.stateMachineRole = serviceRole(
      this,
      'state-machine-role',
      this.name('state-machine'),
      'states.amazonaws.com',
      [
        ...built.statements,
        {
          // Log delivery and X-Ray APIs have no resource-level permissions.
          sid: 'LogDelivery',
          effect: 'Allow',
          actions: [
            'logs:CreateLogDelivery',
            'logs:GetLogDelivery',
            'logs:UpdateLogDelivery',
            'logs:DeleteLogDelivery',
            'logs:ListLogDeliveries',
            'logs:PutResourcePolicy',
            'logs:DescribeResourcePolicies',
            'logs:DescribeLogGroups',
          ],
          resources: ['*'],
        },
        {
          sid: 'XRay',
          effect: 'Allow',
          actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets'],
          resources: ['*'],
        },
      ],
      sourceAccount,
    );
    // serviceRole's inline policy: the machine is created only once its role may act (otherwise
    // creation, or the first executions, can fail on permissions that are still being attached).
    const rolePolicy = this.node.findChild('state-machine-role-policy') as IamRolePolicy;

    this.stateMachine = new SfnStateMachine(this, 'state-machine', {
      name: stateMachineName,
      type: 'STANDARD',
      roleArn: this.stateMachineRole.arn,
      definition: JSON.stringify(this.definition),
      loggingConfiguration: { level: 'ALL', includeExecutionData: true, logDestination: `${this.logGroup.arn}:*` },
      tracingConfiguration: { enabled: true },
      dependsOn: [rolePolicy],
    });

    new TerraformOutput(this, 'state_machine_arn', { value: this.stateMachine.arn });
    new TerraformOutput(this, 'converter_task_definition_family', { value: this.taskDefinition.family });
    new TerraformOutput(this, 'lock_table_name', { value: this.lockTable.name });
  }
}
