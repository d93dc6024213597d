// Resource names: AWS's own rules for every name the stacks build from namePrefix and stage, so a
// name AWS would refuse at apply time (after a partial deploy) is refused at synth instead.

/** What Terraform appends to a `bucket_prefix`/`name_prefix` (a timestamp and counter, 26 digits). */
export const TERRAFORM_UNIQUE_SUFFIX = '20260101000000000000000001';

export interface NameRule {
  /** What is named, for messages. */
  readonly what: string;
  /** The AWS documentation of the rule. */
  readonly doc: string;
  /** Why AWS refuses `name` (a prefix for the *Prefix rules), or undefined when it accepts it. */
  check(name: string): string | undefined;
}

const length = (name: string, min: number, max: number) =>
  name.length < min || name.length > max ? `must be ${min}-${max} characters, is ${name.length}` : undefined;
const chars = (name: string, re: RegExp, allowed: string) => (re.test(name) ? undefined : `may hold only ${allowed}`);
const first = (...problems: (string | undefined)[]) => problems.find((p) => p !== undefined);

function s3BucketProblem(name: string): string | undefined {
  const reserved = ['xn--', 'sthree-', 'amzn-s3-demo-'].find((p) => name.startsWith(p));
  const suffix = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'].find((x) => name.endsWith(x));
  return first(
    length(name, 3, 63),
    chars(name, /^[a-z0-9.-]+$/, 'lower-case letters, digits, periods and hyphens'),
    /^[a-z0-9].*[a-z0-9]$/.test(name) ? undefined : 'must begin and end with a letter or digit',
    name.includes('..') ? 'must not hold two adjacent periods' : undefined,
    /^\d+\.\d+\.\d+\.\d+$/.test(name) ? 'must not be formatted as an IP address' : undefined,
    reserved ? `must not start with "${reserved}" (reserved by S3)` : undefined,
    suffix ? `must not end with "${suffix}" (reserved by S3)` : undefined,
  );
}

/** Schedules and schedule groups share one rule (1-64 of [0-9a-zA-Z-_.]). */
const schedulerNameProblem = (name: string) =>
  first(length(name, 1, 64), chars(name, /^[0-9a-zA-Z_.-]+$/, 'letters, digits, hyphens, underscores and periods'));

export const NAME_RULES = {
  s3Bucket: {
    what: 'S3 bucket',
    doc: 'https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html',
    check: s3BucketProblem,
  },
  s3BucketPrefix: {
    what: 'S3 bucket',
    doc: 'https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html',
    check: (prefix: string) => s3BucketProblem(prefix + TERRAFORM_UNIQUE_SUFFIX),
  },
  ecrRepository: {
    what: 'ECR repository',
    doc: 'https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html',
    check: (name: string) =>
      first(
        length(name, 2, 256),
        /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(name)
          ? undefined
          : 'each "/"-separated part must be lower-case letters and digits, separated by one ".", "_" or "-" (no "--", no leading or trailing separator)',
      ),
  },
  iamRole: {
    what: 'IAM role',
    doc: 'https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html',
    check: (name: string) => first(length(name, 1, 64), chars(name, /^[\w+=,.@-]+$/, 'letters, digits and +=,.@_-')),
  },
  securityGroup: {
    what: 'security group',
    doc: 'https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html',
    check: (name: string) =>
      first(
        length(name, 1, 255),
        chars(name, /^[a-zA-Z0-9 ._\-:/()#,@[\]+=&;{}!$*]+$/, 'letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*'),
        /^sg-/i.test(name) ? 'must not start with "sg-" (the form of security group ids)' : undefined,
      ),
  },
  ecsName: {
    what: 'ECS cluster or task definition family',
    doc: 'https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html',
    check: (name: string) => first(length(name, 1, 255), chars(name, /^[a-zA-Z0-9_-]+$/, 'letters, digits, hyphens and underscores')),
  },
  logGroup: {
    what: 'CloudWatch Logs log group',
    doc: 'https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html',
    check: (name: string) =>
      first(
        length(name, 1, 512),
        chars(name, /^[.\-_/#A-Za-z0-9]+$/, 'letters, digits and ._-/#'),
        name.startsWith('aws/') ? 'must not start with "aws/"' : undefined,
      ),
  },
  ssmParameter: {
    what: 'SSM parameter',
    doc: 'https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-parameter-name-constraints.html',
    check: (name: string) =>
      first(
        length(name, 1, 1011),
        chars(name, /^[a-zA-Z0-9_.\-/]+$/, 'letters, digits and _.-/'),
        /^\/?(aws|ssm)/i.test(name) ? 'must not begin with "aws" or "ssm" (any case; reserved by AWS)' : undefined,
        name.split('/').filter((p) => p !== '').length > 15 ? 'may have at most 15 levels' : undefined,
      ),
  },
  secretPrefix: {
    what: 'Secrets Manager secret',
    doc: 'https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html',
    // The unique suffix is 26 digits, so the name never ends in "-" + 6 characters (what ARNs append).
    check: (prefix: string) => first(length(prefix + TERRAFORM_UNIQUE_SUFFIX, 1, 512), chars(prefix, /^[a-zA-Z0-9/_+=.@-]+$/, 'letters, digits and /_+=.@-')),
  },
  dynamodbTable: {
    what: 'DynamoDB table',
    doc: 'https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateTable.html',
    check: (name: string) => first(length(name, 3, 255), chars(name, /^[a-zA-Z0-9_.-]+$/, 'letters, digits and _.-')),
  },
  stateMachine: {
    what: 'Step Functions state machine',
    doc: 'https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html',
    // Any other character keeps CloudWatch logging from working, the page says.
    check: (name: string) => first(length(name, 1, 80), chars(name, /^[a-zA-Z0-9_-]+$/, 'letters, digits, hyphens and underscores')),
  },
  sqsQueue: {
    what: 'SQS queue',
    doc: 'https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html',
    check: (name: string) => first(length(name, 1, 80), chars(name, /^[a-zA-Z0-9_-]+$/, 'letters, digits, hyphens and underscores')),
  },
  schedule: {
    what: 'EventBridge Scheduler schedule',
    doc: 'https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html',
    check: schedulerNameProblem,
  },
  scheduleGroup: {
    what: 'EventBridge Scheduler schedule group',
    doc: 'https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateScheduleGroup.html',
    check: schedulerNameProblem,
  },
  snsTopic: {
    what: 'SNS topic',
    doc: 'https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html',
    check: (name: string) => first(length(name, 1, 256), chars(name, /^[a-zA-Z0-9_-]+$/, 'letters, digits, hyphens and underscores')),
  },
  kmsAlias: {
    what: 'KMS alias',
    doc: 'https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateAlias.html',
    check: (name: string) =>
      first(
        length(name, 1, 256),
        chars(name, /^alias\/[a-zA-Z0-9/_-]+$/, '"alias/" then letters, digits and /_-'),
        name.startsWith('alias/aws/') ? 'must not start with "alias/aws/" (reserved for AWS managed keys)' : undefined,
      ),
  },
  eventRule: {
    what: 'EventBridge rule',
    doc: 'https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html',
    check: (name: string) => first(length(name, 1, 64), chars(name, /^[.\-_A-Za-z0-9]+$/, 'letters, digits and .-_')),
  },
  alarm: {
    what: 'CloudWatch alarm',
    doc: 'https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html',
    // eslint-disable-next-line no-control-regex
    check: (name: string) => first(length(name, 1, 255), /[\x00-\x1f\x7f]/.test(name) ? 'must not hold control characters' : undefined),
  },
  dashboard: {
    what: 'CloudWatch dashboard',
    doc: 'https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html',
    check: (name: string) => first(length(name, 1, 255), chars(name, /^[A-Za-z0-9_-]+$/, 'letters, digits, hyphens and underscores')),
  },
} as const satisfies Record<string, NameRule>;

export type NameRuleId = keyof typeof NAME_RULES;

/**
 * The monitoring stack's alarms, by runbook section (one alarm named `<prefix>-<stage>-<section>` each);
 * names.test.ts fails when the stacks synthesize one that is missing here.
 */
export const MONITORING_ALARMS = [
  'executions-failed',
  'executions-timed-out',
  'executions-aborted',
  'schedule-dead-letters',
  'schedule-target-errors',
  'lister-failing',
  'files-failing-conversion',
  'no-files-ingested',
  'task-out-of-memory',
] as const;

export interface DerivedName {
  /** Terraform resource type and the argument holding the name. */
  readonly resource: string;
  readonly argument: 'name' | 'name_prefix' | 'bucket_prefix' | 'family' | 'alarm_name' | 'dashboard_name';
  readonly value: string;
  readonly rule: NameRuleId;
}

/**
 * Every name the stacks build from namePrefix and stage (`__tests__/stacks/names.test.ts` holds this
 * list to what is synthesized, so a new named resource cannot skip its rule).
 */
export function derivedNames(namePrefix: string, stage: string): DerivedName[] {
  const n = (suffix: string) => `${namePrefix}-${stage}-${suffix}`;
  const d = (resource: string, argument: DerivedName['argument'], rule: NameRuleId, ...values: string[]): DerivedName[] =>
    values.map((value) => ({ resource, argument, value, rule }));
  return [
    ...d('aws_security_group', 'name', 'securityGroup', n('endpoints'), n('tasks'), n('sftp-endpoint')),
    ...d(
      'aws_cloudwatch_log_group',
      'name',
      'logGroup',
      `/vpc/${n('vpc')}/flow-logs`,
      `/aws/transfer/${n('sftp')}`,
      `/ecs/${n('sftp-lister')}`,
      `/ecs/${n('converter')}`,
      `/aws/vendedlogs/states/${n('pipeline')}`,
    ),
    ...d(
      'aws_iam_role',
      'name',
      'iamRole',
      ...['vpc-flow-logs', 'sftp-user', 'lister-task', 'lister-exec', 'schedule', 'converter-task', 'converter-exec', 'state-machine'].map(n),
    ),
    ...d('aws_s3_bucket', 'bucket_prefix', 's3BucketPrefix', `${n('sftp')}-`, `${n('xml')}-`),
    ...d('aws_secretsmanager_secret', 'name_prefix', 'secretPrefix', `${namePrefix}/${stage}/sftp-private-key-`),
    ...d('aws_ecs_cluster', 'name', 'ecsName', n('cluster')),
    ...d('aws_ecs_task_definition', 'family', 'ecsName', n('sftp-lister'), n('converter')),
    ...d('aws_ecr_repository', 'name', 'ecrRepository', `${namePrefix}-${stage}/sftp-lister`, `${namePrefix}-${stage}/converter`),
    ...d('aws_ssm_parameter', 'name', 'ssmParameter', `/${namePrefix}/${stage}/repo_uri_sftp`, `/${namePrefix}/${stage}/repo_uri_batch`),
    ...d('aws_dynamodb_table', 'name', 'dynamodbTable', n('locks')),
    ...d('aws_sfn_state_machine', 'name', 'stateMachine', n('pipeline')),
    ...d('aws_sqs_queue', 'name', 'sqsQueue', n('schedule-dlq')),
    ...d('aws_scheduler_schedule', 'name', 'schedule', n('ingest')),
    ...d('aws_scheduler_schedule_group', 'name', 'scheduleGroup', n('schedules')),
    ...d('aws_sns_topic', 'name', 'snsTopic', n('alarms')),
    ...d('aws_kms_alias', 'name', 'kmsAlias', `alias/${n('alarms')}`),
    ...d('aws_cloudwatch_event_rule', 'name', 'eventRule', n('task-out-of-memory')),
    ...d('aws_cloudwatch_dashboard', 'dashboard_name', 'dashboard', n('pipeline')),
    // One alarm per runbook section (RunbookSection in stacks/monitoring.ts).
    ...d('aws_cloudwatch_metric_alarm', 'alarm_name', 'alarm', ...MONITORING_ALARMS.map(n)),
  ];
}
