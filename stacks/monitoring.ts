// monitoring: what tells the operator that the unattended pipeline stopped. Alarms on the state
// machine, the schedule and its dead-letter queue, the images' own metrics (CloudWatch Embedded Metric
// Format, namespace XmlPipeline, dimension Pipeline) and tasks killed for memory; an SNS topic
// encrypted with KMS that mails them (alarm and OK); one dashboard. Every alarm's description links
// to its section of docs/runbook.md (what it means, how to look, how to fix, how to replay), as the
// construct-hub backend links its alarms to its runbook.
import { CloudwatchDashboard } from '@cdktf/provider-aws/lib/cloudwatch-dashboard';
import { CloudwatchEventRule } from '@cdktf/provider-aws/lib/cloudwatch-event-rule';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target';
import { CloudwatchMetricAlarm, CloudwatchMetricAlarmConfig, CloudwatchMetricAlarmMetricQuery } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm';
import { DataAwsIamPolicyDocument } from '@cdktf/provider-aws/lib/data-aws-iam-policy-document';
import { KmsAlias } from '@cdktf/provider-aws/lib/kms-alias';
import { KmsKey } from '@cdktf/provider-aws/lib/kms-key';
import { SnsTopic } from '@cdktf/provider-aws/lib/sns-topic';
import { SnsTopicPolicy } from '@cdktf/provider-aws/lib/sns-topic-policy';
import { SnsTopicSubscription } from '@cdktf/provider-aws/lib/sns-topic-subscription';
import { TerraformOutput } from 'cdktf';
import { Construct } from 'constructs';
import { PipelineStack, PipelineStackProps } from './base';
import { MONITORING_ALARMS } from './config/names';
import { AccountScope } from './constructs/iam';

/** The images' metrics (contract C1; each image's README lists names, units and when a line is written). */
export const METRICS_NAMESPACE = 'XmlPipeline';
/** The one dimension every image metric carries; its value is the container env METRICS_PIPELINE (PipelineStack.pipelineName). */
export const METRICS_DIMENSION = 'Pipeline';

/** Named as the configuration's settings (PIPELINE_ALARM_*), which the app passes in. */
export interface MonitoringSettings {
  /** Addresses that get alarm and OK notifications (each must confirm the subscription mail). @default [] */
  readonly alarmEmails?: string[];
  /** Alarm when this many lister runs in a row failed. @default 3 */
  readonly alarmListerFailures?: number;
  /** Alarm when at least this many files fail conversion (malformed or other errors) in 5 minutes. @default 1 */
  readonly alarmConversionFailures?: number;
  /** Alarm when no file was ingested for this many minutes (10-10080). @default 0 = off (partners may send nothing for days) */
  readonly alarmNoIngestMinutes?: number;
  /** Where docs/runbook.md is published (PIPELINE_RUNBOOK_URL, checked by the configuration); alarms link to its sections. @default 'docs/runbook.md' */
  readonly runbookUrl?: string;
}

export interface MonitoringStackProps extends PipelineStackProps {
  readonly stateMachine: { readonly arn: string };
  /** The pipeline's own schedule group (ingest stack): the Scheduler's metrics are per group. */
  readonly scheduleGroup: { readonly name: string };
  readonly scheduleDeadLetterQueue: { readonly name: string };
  readonly cluster: { readonly cluster: { readonly arn: string; readonly name: string } };
  /** The lister's and the converter's task definition families (their Container Insights metrics). */
  readonly taskFamilies: { readonly lister: string; readonly converter: string };
  readonly settings?: MonitoringSettings;
}

/**
 * One alarm's runbook section: docs/runbook.md has a heading whose anchor is this id, and the alarm is
 * named `<prefix>-<stage>-<section>` (the configuration checks those names: MONITORING_ALARMS).
 */
export type RunbookSection = (typeof MONITORING_ALARMS)[number];

/** Seconds between scheduled runs of a `rate(...)` expression; undefined for cron/at. */
export function scheduleIntervalSeconds(expression: string): number | undefined {
  const m = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression.trim());
  if (!m) return undefined;
  const unit = m[2].startsWith('minute') ? 60 : m[2].startsWith('hour') ? 3600 : 86400;
  return Number(m[1]) * unit;
}

const EMAIL = /^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$/;

export class MonitoringStack extends PipelineStack {
  readonly topic: SnsTopic;
  readonly key: KmsKey;
  readonly alarms: Record<string, CloudwatchMetricAlarm> = {};
  readonly outOfMemoryRule: CloudwatchEventRule;
  readonly dashboard: CloudwatchDashboard;
  readonly settings: Required<MonitoringSettings>;

  constructor(scope: Construct, id: string, props: MonitoringStackProps) {
    super(scope, id, props);
    const { config } = this;
    const s = (this.settings = {
      alarmEmails: props.settings?.alarmEmails ?? [],
      alarmListerFailures: props.settings?.alarmListerFailures ?? 3,
      alarmConversionFailures: props.settings?.alarmConversionFailures ?? 1,
      alarmNoIngestMinutes: props.settings?.alarmNoIngestMinutes ?? 0,
      runbookUrl: props.settings?.runbookUrl ?? 'docs/runbook.md',
    });
    for (const e of s.alarmEmails) {
      if (!EMAIL.test(e)) throw settingFailure('alarmEmails', `"${e}" is not an e-mail address (one address per entry)`);
    }
    if (!Number.isInteger(s.alarmListerFailures) || s.alarmListerFailures < 1) {
      throw settingFailure('alarmListerFailures', `must be an integer >= 1, got ${s.alarmListerFailures}`);
    }
    if (!(s.alarmConversionFailures >= 1)) throw settingFailure('alarmConversionFailures', `must be >= 1, got ${s.alarmConversionFailures}`);
    const noIngest = noIngestWindow(s.alarmNoIngestMinutes);

    const account = new AccountScope(this, config.region);
    // The value the task definitions give METRICS_PIPELINE.
    const pipeline = this.pipelineName;
    const region = config.region;

    // ---- notifications: a KMS-encrypted topic both CloudWatch alarms and EventBridge may publish to ----
    // SNS encrypts with the key on behalf of the publisher, so each publishing service needs
    // kms:GenerateDataKey* and kms:Decrypt on it:
    // https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services
    // https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sns-permissions
    const keyPolicy = new DataAwsIamPolicyDocument(this, 'key-policy', {
      statement: [
        {
          sid: 'AccountAdministers',
          effect: 'Allow',
          principals: [{ type: 'AWS', identifiers: [`arn:${account.partition}:iam::${account.accountId}:root`] }],
          actions: ['kms:*'],
          resources: ['*'],
        },
        {
          sid: 'AlarmsAndEventsPublishToTheTopic',
          effect: 'Allow',
          principals: [{ type: 'Service', identifiers: ['cloudwatch.amazonaws.com', 'events.amazonaws.com'] }],
          actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          resources: ['*'],
        },
      ],
    });
    this.key = new KmsKey(this, 'key', {
      description: `Encrypts the ${this.name('alarms')} notification topic`,
      enableKeyRotation: true,
      deletionWindowInDays: 7,
      policy: keyPolicy.json,
    });
    new KmsAlias(this, 'key-alias', { name: `alias/${this.name('alarms')}`, targetKeyId: this.key.keyId });
    this.topic = new SnsTopic(this, 'topic', { name: this.name('alarms'), kmsMasterKeyId: this.key.arn });

    const alarmArnPrefix = account.arn('cloudwatch', `alarm:${this.name('')}`);
    const oomRuleName = this.name('task-out-of-memory');
    const oomRuleArn = account.arn('events', `rule/${oomRuleName}`);
    // Replaces the default topic policy: the account keeps managing the topic; the two services may
    // publish only from this app's alarms and rule (confused-deputy guard).
    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html
    const topicPolicy = new DataAwsIamPolicyDocument(this, 'topic-policy', {
      statement: [
        {
          sid: 'AccountManages',
          effect: 'Allow',
          principals: [{ type: 'AWS', identifiers: [`arn:${account.partition}:iam::${account.accountId}:root`] }],
          actions: ['sns:GetTopicAttributes', 'sns:SetTopicAttributes', 'sns:Subscribe', 'sns:ListSubscriptionsByTopic', 'sns:Publish'],
          resources: [this.topic.arn],
        },
        {
          sid: 'AlarmsPublish',
          effect: 'Allow',
          principals: [{ type: 'Service', identifiers: ['cloudwatch.amazonaws.com'] }],
          actions: ['sns:Publish'],
          resources: [this.topic.arn],
          condition: [
            { test: 'ArnLike', variable: 'aws:SourceArn', values: [`${alarmArnPrefix}*`] },
            { test: 'StringEquals', variable: 'aws:SourceAccount', values: [account.accountId] },
          ],
        },
        {
          sid: 'OutOfMemoryRulePublishes',
          effect: 'Allow',
          principals: [{ type: 'Service', identifiers: ['events.amazonaws.com'] }],
          actions: ['sns:Publish'],
          resources: [this.topic.arn],
          condition: [{ test: 'ArnEquals', variable: 'aws:SourceArn', values: [oomRuleArn] }],
        },
      ],
    });
    new SnsTopicPolicy(this, 'topic-policy-attachment', { arn: this.topic.arn, policy: topicPolicy.json });
    s.alarmEmails.forEach((email, i) => {
      new SnsTopicSubscription(this, `email-${i}`, { topicArn: this.topic.arn, protocol: 'email', endpoint: email });
    });

    // ---- alarms ----
    const runbook = (section: RunbookSection) => `${s.runbookUrl}#${section}`;
    const alarm = (section: RunbookSection, what: string, cfg: Omit<CloudwatchMetricAlarmConfig, 'alarmName' | 'alarmDescription'>) => {
      this.alarms[section] = new CloudwatchMetricAlarm(this, `alarm-${section}`, {
        alarmName: this.name(section),
        alarmDescription: `${what} Runbook: ${runbook(section)}`,
        actionsEnabled: true,
        alarmActions: [this.topic.arn],
        okActions: [this.topic.arn],
        ...cfg,
      });
    };
    const atLeastOnce = {
      comparisonOperator: 'GreaterThanOrEqualToThreshold',
      threshold: 1,
      evaluationPeriods: 1,
      period: 300,
      statistic: 'Sum',
      treatMissingData: 'notBreaching',
    };
    const pipelineMetric = (id: string, metricName: string, period: number) => ({
      id,
      metric: { namespace: METRICS_NAMESPACE, metricName, dimensions: { [METRICS_DIMENSION]: pipeline }, period, stat: 'Sum' },
    });

    // Step Functions publishes per-machine execution counts (dimension StateMachineArn):
    // https://docs.aws.amazon.com/step-functions/latest/dg/procedure-cw-metrics.html#cloudwatch-step-functions-execution-metrics
    const executions: [RunbookSection, string, string][] = [
      ['executions-failed', 'ExecutionsFailed', 'A pipeline execution failed.'],
      ['executions-timed-out', 'ExecutionsTimedOut', 'A pipeline execution timed out.'],
      ['executions-aborted', 'ExecutionsAborted', 'A pipeline execution was aborted (stopped by hand or by a redeploy).'],
    ];
    for (const [section, metricName, what] of executions) {
      alarm(section, what, { ...atLeastOnce, namespace: 'AWS/States', metricName, dimensions: { StateMachineArn: props.stateMachine.arn } });
    }

    // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
    alarm('schedule-dead-letters', 'The schedule could not start the pipeline (its invocation is in the dead-letter queue).', {
      ...atLeastOnce,
      namespace: 'AWS/SQS',
      metricName: 'ApproximateNumberOfMessagesVisible',
      dimensions: { QueueName: props.scheduleDeadLetterQueue.name },
      statistic: 'Maximum',
    });

    // EventBridge Scheduler publishes TargetErrorCount per schedule group (dimension ScheduleGroup); the
    // schedule is alone in its group, so this counts only its errors:
    // https://docs.aws.amazon.com/scheduler/latest/UserGuide/monitoring-cloudwatch.html
    alarm('schedule-target-errors', 'StartExecution from the schedule failed (retried; after the retries it lands in the dead-letter queue).', {
      ...atLeastOnce,
      namespace: 'AWS/Scheduler',
      metricName: 'TargetErrorCount',
      dimensions: { ScheduleGroup: props.scheduleGroup.name },
    });

    // N failed runs in a row: per period the share of runs that failed (ListerRunFailures may be
    // omitted when 0, hence FILL); a period without a run has no datapoint and is skipped
    // (treatMissingData "missing"), so N breaching datapoints are N failing periods with no success
    // between them. The period covers at least one scheduled run.
    const interval = scheduleIntervalSeconds(config.scheduleExpression) ?? 3600;
    const listerPeriod = Math.max(300, Math.ceil(interval / 60) * 60);
    const range = evaluationRangeError(listerPeriod, s.alarmListerFailures);
    if (range) throw settingFailure('alarmListerFailures', `${s.alarmListerFailures} runs of ${config.scheduleExpression}: ${range}`);
    alarm('lister-failing', `The last ${s.alarmListerFailures} SFTP lister runs failed.`, {
      comparisonOperator: 'GreaterThanOrEqualToThreshold',
      threshold: 1,
      evaluationPeriods: s.alarmListerFailures,
      datapointsToAlarm: s.alarmListerFailures,
      treatMissingData: 'missing',
      metricQuery: [
        pipelineMetric('runs', 'ListerRuns', listerPeriod),
        pipelineMetric('failures', 'ListerRunFailures', listerPeriod),
        { id: 'failedshare', expression: 'FILL(failures, 0) / runs', label: 'Share of lister runs that failed', returnData: true },
      ] satisfies CloudwatchMetricAlarmMetricQuery[],
    });

    alarm('files-failing-conversion', `At least ${s.alarmConversionFailures} file(s) failed conversion in 5 minutes (malformed XML or other errors).`, {
      comparisonOperator: 'GreaterThanOrEqualToThreshold',
      threshold: s.alarmConversionFailures,
      evaluationPeriods: 1,
      treatMissingData: 'notBreaching',
      metricQuery: [
        pipelineMetric('malformed', 'FilesMalformed', 300),
        pipelineMetric('failed', 'FilesConvertFailed', 300),
        { id: 'conversionfailures', expression: 'FILL(malformed, 0) + FILL(failed, 0)', label: 'Files that failed conversion', returnData: true },
      ] satisfies CloudwatchMetricAlarmMetricQuery[],
    });

    if (noIngest) {
      // No datapoint at all (no file, or no lister line) counts as "nothing ingested".
      alarm('no-files-ingested', `No file was ingested for ${s.alarmNoIngestMinutes} minutes.`, {
        comparisonOperator: 'LessThanThreshold',
        threshold: 1,
        evaluationPeriods: noIngest.periods,
        period: noIngest.period,
        statistic: 'Sum',
        treatMissingData: 'breaching',
        namespace: METRICS_NAMESPACE,
        metricName: 'FilesIngested',
        dimensions: { [METRICS_DIMENSION]: pipeline },
      });
    }

    // A container killed for memory stops with the container reason "OutOfMemoryError: ..." in the
    // ECS Task State Change event:
    // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/out-of-memory.html
    // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html
    // A pattern field inside an array of objects matches if any element matches:
    // https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-arrays.html
    this.outOfMemoryRule = new CloudwatchEventRule(this, 'out-of-memory-rule', {
      name: oomRuleName,
      description: 'A pipeline task (converter or lister) stopped because a container was killed for memory',
      eventPattern: JSON.stringify({
        source: ['aws.ecs'],
        'detail-type': ['ECS Task State Change'],
        detail: {
          clusterArn: [props.cluster.cluster.arn],
          lastStatus: ['STOPPED'],
          containers: { reason: [{ prefix: 'OutOfMemoryError' }] },
        },
      }),
    });
    // The event itself names the task (and its batch, in the overrides) for the operator.
    new CloudwatchEventTarget(this, 'out-of-memory-notification', {
      rule: this.outOfMemoryRule.name,
      targetId: 'notify',
      arn: this.topic.arn,
      inputTransformer: {
        inputPaths: { task: '$.detail.taskArn', definition: '$.detail.taskDefinitionArn', group: '$.detail.group', stopped: '$.detail.stoppedAt' },
        inputTemplate: JSON.stringify(
          `Task <task> (<definition>, group <group>) was stopped at <stopped>: a container was killed for memory (OutOfMemoryError). Runbook: ${runbook('task-out-of-memory')}`,
        ),
      },
    });
    // Per rule, EventBridge counts the events it matched as TriggeredRules, dimension RuleName (the
    // default bus); MatchedEvents has no RuleName dimension:
    // https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html
    alarm('task-out-of-memory', 'A pipeline task was killed for memory (its files were not converted).', {
      ...atLeastOnce,
      namespace: 'AWS/Events',
      metricName: 'TriggeredRules',
      dimensions: { RuleName: this.outOfMemoryRule.name },
    });

    this.dashboard = new CloudwatchDashboard(this, 'dashboard', {
      dashboardName: this.name('pipeline'),
      dashboardBody: JSON.stringify(
        dashboardBody({
          region,
          pipeline,
          stateMachineArn: props.stateMachine.arn,
          dlqName: props.scheduleDeadLetterQueue.name,
          clusterName: props.cluster.cluster.name,
          taskFamilies: props.taskFamilies,
          alarmArns: Object.values(this.alarms).map((a) => a.arn),
          runbookUrl: s.runbookUrl,
        }),
      ),
    });

    new TerraformOutput(this, 'alarm_topic_arn', { value: this.topic.arn });
    new TerraformOutput(this, 'dashboard_name', { value: this.dashboard.dashboardName });
  }
}

const SETTING_ENV: Record<Exclude<keyof MonitoringSettings, 'runbookUrl'>, string> = {
  alarmEmails: 'PIPELINE_ALARM_EMAILS',
  alarmListerFailures: 'PIPELINE_ALARM_LISTER_FAILURES',
  alarmConversionFailures: 'PIPELINE_ALARM_CONVERSION_FAILURES',
  alarmNoIngestMinutes: 'PIPELINE_ALARM_NO_INGEST_MINUTES',
};

function settingFailure(name: keyof typeof SETTING_ENV, reason: string): Error {
  return new Error(`Invalid configuration: ${name} (env ${SETTING_ENV[name]}): ${reason}`);
}

/**
 * CloudWatch limits an alarm's evaluation range (period x evaluation periods) to one day for periods
 * under an hour and to seven days otherwise:
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
 */
function evaluationRangeError(period: number, periods: number): string | undefined {
  const limit = period < 3600 ? 86400 : 604800;
  return period * periods > limit ? `${periods} periods of ${period} s span ${period * periods} s; CloudWatch allows at most ${limit} s` : undefined;
}

/** Periods of the no-ingest alarm: the longest of 1 h, 15 min, 5 min, 1 min that divides the window and fits CloudWatch's range. */
export function noIngestWindow(minutes: number): { period: number; periods: number } | undefined {
  if (minutes === 0) return undefined;
  if (!Number.isInteger(minutes) || minutes < 10 || minutes > 10080)
    throw settingFailure('alarmNoIngestMinutes', `must be 0 (off) or 10-10080 (7 days, CloudWatch's longest evaluation range), got ${minutes}`);
  for (const period of [3600, 900, 300, 60]) {
    if ((minutes * 60) % period === 0 && !evaluationRangeError(period, (minutes * 60) / period)) return { period, periods: (minutes * 60) / period };
  }
  throw settingFailure(
    'alarmNoIngestMinutes',
    `${minutes} minutes is more than a day and not whole hours (CloudWatch evaluates periods under an hour over one day at most)`,
  );
}

interface DashboardRefs {
  readonly region: string;
  readonly pipeline: string;
  readonly stateMachineArn: string;
  readonly dlqName: string;
  readonly clusterName: string;
  readonly taskFamilies: { readonly lister: string; readonly converter: string };
  readonly alarmArns: string[];
  readonly runbookUrl: string;
}

/** The dashboard body (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html). */
function dashboardBody(r: DashboardRefs) {
  const own = (metric: string, stat = 'Sum', label = metric) => [METRICS_NAMESPACE, metric, METRICS_DIMENSION, r.pipeline, { stat, label }];
  const graph = (title: string, metrics: unknown[][], x: number, y: number, extra: Record<string, unknown> = {}) => ({
    type: 'metric',
    x,
    y,
    width: 12,
    height: 6,
    properties: { title, region: r.region, view: 'timeSeries', stacked: false, period: 300, metrics, ...extra },
  });
  const insights = (metric: string, task: 'lister' | 'converter') => [
    'ECS/ContainerInsights',
    metric,
    'ClusterName',
    r.clusterName,
    'TaskDefinitionFamily',
    r.taskFamilies[task],
    { stat: 'Maximum', label: `${task} ${metric}` },
  ];
  const execution = (metric: string) => ['AWS/States', metric, 'StateMachineArn', r.stateMachineArn, { stat: 'Sum', label: metric }];
  return {
    widgets: [
      { type: 'alarm', x: 0, y: 0, width: 24, height: 3, properties: { title: `Alarms (runbook: ${r.runbookUrl})`, alarms: r.alarmArns } },
      graph('Files in and out', [own('FilesListed'), own('FilesIngested'), own('FilesTooYoung'), own('FilesPresent'), own('FilesConverted')], 0, 3),
      graph('Bytes', [own('BytesIngested'), own('BytesConverted'), own('BytesWritten')], 12, 3),
      graph('Throughput (MB/s)', [own('IngestThroughput', 'Average'), own('ConvertThroughput', 'Average')], 0, 9),
      graph(
        'Failures by reason',
        [
          own('FilesIngestFailed'),
          own('FilesMalformed'),
          own('FilesConvertFailed'),
          own('ListerRunFailures'),
          own('ConverterTaskFailures'),
          own('IngestRetries'),
          own('ConvertRetries'),
        ],
        12,
        9,
      ),
      graph('Execution outcomes', ['ExecutionsSucceeded', 'ExecutionsFailed', 'ExecutionsTimedOut', 'ExecutionsAborted'].map(execution), 0, 15),
      graph(
        'Task durations (s)',
        [
          own('IngestRunSeconds', 'Average'),
          own('IngestRunSeconds', 'Maximum', 'IngestRunSeconds max'),
          own('ConverterTaskSeconds', 'Average'),
          own('ConverterTaskSeconds', 'Maximum', 'ConverterTaskSeconds max'),
          own('FileConvertSeconds', 'p90', 'FileConvertSeconds p90'),
        ],
        12,
        15,
      ),
      graph(
        'Schedule dead-letter queue depth',
        [
          ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', r.dlqName, { stat: 'Maximum', label: 'messages' }],
          // How long ago the schedule gave up on the oldest skipped run.
          ['AWS/SQS', 'ApproximateAgeOfOldestMessage', 'QueueName', r.dlqName, { stat: 'Maximum', label: 'oldest message age (s)', yAxis: 'right' }],
        ],
        0,
        21,
      ),
      graph('Tasks and runs', [own('ListerRuns'), own('ConverterTasks')], 12, 21),
      // The cluster has Container Insights on: per task definition family, memory used (the highest
      // task) against what the task reserves, the first thing to look at for Task out of memory.
      // https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Container-Insights-metrics-ECS.html
      graph(
        'Task memory (MiB, highest task) vs reserved',
        (['lister', 'converter'] as const).flatMap((t) => [insights('MemoryUtilized', t), insights('MemoryReserved', t)]),
        0,
        27,
      ),
      graph(
        'Task CPU (units, highest task) vs reserved',
        (['lister', 'converter'] as const).flatMap((t) => [insights('CpuUtilized', t), insights('CpuReserved', t)]),
        12,
        27,
      ),
    ],
  };
}
