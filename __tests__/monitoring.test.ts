// The monitoring stack as synthesized (stacks/monitoring.ts): alarms with their runbook sections,
// the KMS-encrypted topic and who may publish to it, e-mail subscriptions, the out-of-memory rule and
// the dashboard; `terraform validate` of the stack, offline.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'cdktf';
import { loadConfig } from '../stacks/config';
import { MONITORING_ALARMS } from '../stacks/config/names';
import { MonitoringSettings, MonitoringStack, noIngestWindow, scheduleIntervalSeconds } from '../stacks/monitoring';
import { validateStack } from '../scripts/terraform';
import { Resolver } from '../tools/review';
import { listStacks, readApp } from '../tools/tf-json';
import { readStack, synthesize, SynthStack } from './stacks/synth';

const RUNBOOK = path.join(__dirname, '..', 'docs', 'runbook.md');
// Every alarm the stack can make; all but the no-ingest one exist by default.
const DEFAULT_SECTIONS = MONITORING_ALARMS.filter((s) => s !== 'no-files-ingested');

/** GitHub's heading anchor: lower case, punctuation other than `-` dropped, spaces to `-`. */
const anchor = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s-]/gu, '')
    .replace(/\s/g, '-');

/** The runbook's `## ` sections by anchor, each with its text. */
function runbookSections(): Map<string, string> {
  const text = fs.readFileSync(RUNBOOK, 'utf8');
  const sections = new Map<string, string>();
  for (const part of text.split(/^## /m).slice(1)) {
    const [heading, ...body] = part.split('\n');
    sections.set(anchor(heading), body.join('\n'));
  }
  return sections;
}

const made: string[] = [];
afterAll(() => {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * The subset of EventBridge pattern matching the out-of-memory rule uses: a field's array of values
 * (literals or `{prefix}`) matches if any value of the event's field matches, a field inside an array
 * of objects is looked for in each object, and nested objects recurse
 * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html,
 * https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-arrays.html).
 */
function matches(pattern: Record<string, unknown>, event: unknown): boolean {
  const values = (v: unknown): unknown[] => (Array.isArray(v) ? v.flatMap(values) : [v]);
  return Object.entries(pattern).every(([field, want]) => {
    const got = values(event).flatMap((e) => (e && typeof e === 'object' && field in e ? values((e as Record<string, unknown>)[field]) : []));
    if (!Array.isArray(want)) return got.length > 0 && matches(want as Record<string, unknown>, got);
    return got.some((g) =>
      want.some((w) => (w !== null && typeof w === 'object' ? typeof g === 'string' && g.startsWith((w as { prefix: string }).prefix) : g === w)),
    );
  });
}

/** An ECS Task State Change event as AWS documents it (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html). */
function taskEvent(clusterArn: string, lastStatus: string, containers: Record<string, unknown>[]) {
  return {
    version: '0',
    source: 'aws.ecs',
    'detail-type': 'ECS Task State Change',
    detail: {
      clusterArn,
      containers: containers.map((c) => ({
        containerArn: 'arn:aws:ecs:us-east-1:123456789012:container/xmlpipe-dev-cluster/t/c',
        lastStatus,
        name: 'converter',
        taskArn: 'arn:aws:ecs:us-east-1:123456789012:task/xmlpipe-dev-cluster/t',
        ...c,
      })),
      desiredStatus: 'STOPPED',
      group: 'family:xmlpipe-dev-converter',
      lastStatus,
      stopCode: 'EssentialContainerExited',
      stoppedReason: 'Essential container in task exited',
      taskArn: 'arn:aws:ecs:us-east-1:123456789012:task/xmlpipe-dev-cluster/t',
      taskDefinitionArn: 'arn:aws:ecs:us-east-1:123456789012:task-definition/xmlpipe-dev-converter:3',
    },
  };
}

/** The monitoring stack alone, with stand-in references and `settings`. */
function monitoringWith(settings: MonitoringSettings, env: Record<string, string> = {}): SynthStack {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'h6-monitoring-'));
  made.push(outdir);
  const app = new App({ outdir });
  new MonitoringStack(app, 'monitoring', {
    config: loadConfig({ env }),
    stateMachine: { arn: 'arn:aws:states:us-east-1:123456789012:stateMachine:xmlpipe-dev-pipeline' },
    scheduleGroup: { name: 'xmlpipe-dev-schedules' },
    scheduleDeadLetterQueue: { name: 'xmlpipe-dev-schedule-dlq' },
    cluster: { cluster: { arn: 'arn:aws:ecs:us-east-1:123456789012:cluster/xmlpipe-dev-cluster', name: 'xmlpipe-dev-cluster' } },
    taskFamilies: { lister: 'xmlpipe-dev-sftp-lister', converter: 'xmlpipe-dev-converter' },
    settings,
  });
  app.synth();
  return readStack(outdir, 'monitoring');
}

const alarmsBySection = (stack: SynthStack): Record<string, any> =>
  Object.fromEntries(Object.values(stack.resources('aws_cloudwatch_metric_alarm')).map((a: any) => [a.alarm_name.replace(/^xmlpipe-dev-/, ''), a]));

describe('GIVEN the app with default settings WHEN synthesized', () => {
  const { outdir } = synthesize();
  const stack = readStack(outdir, 'monitoring');
  const alarms = alarmsBySection(stack);
  const topicRef = '${aws_sns_topic.topic.arn}';

  test('THEN there is one alarm per default runbook section (no "no files ingested" alarm: off by default), each notifying on ALARM and OK', () => {
    expect(Object.keys(alarms).sort()).toEqual([...DEFAULT_SECTIONS].sort());
    for (const a of Object.values(alarms)) {
      expect(a.alarm_actions).toEqual([topicRef]);
      expect(a.ok_actions).toEqual([topicRef]);
      expect(a.actions_enabled).toBe(true);
    }
  });

  test('THEN each alarm description links to a runbook section that says what it means, how to look, fix and replay', () => {
    const sections = runbookSections();
    for (const [section, a] of Object.entries(alarms)) {
      expect(a.alarm_description).toContain(`Runbook: docs/runbook.md#${section}`);
      expect(a.alarm_description.length).toBeLessThanOrEqual(1024);
      const text = sections.get(section);
      expect({ section, found: text !== undefined }).toEqual({ section, found: true });
      for (const part of ['**Means:**', '**Look:**', '**Fix:**', '**Replay:**'])
        expect({ section, part, has: text!.includes(part) }).toEqual({ section, part, has: true });
    }
    for (const section of MONITORING_ALARMS) expect({ section, found: sections.has(section) }).toEqual({ section, found: true });
    // The replay section documents the input and the helper of contract C2.
    const replay = sections.get('replay')!;
    expect(replay).toContain(`--input '{"replay": "<execution name>"}'`);
    expect(replay).toContain('npm run replay -- <execution ARN or name>');
  });

  test('THEN the execution alarms watch this state machine (AWS/States by StateMachineArn, from the batch stack)', () => {
    for (const [section, metric] of [
      ['executions-failed', 'ExecutionsFailed'],
      ['executions-timed-out', 'ExecutionsTimedOut'],
      ['executions-aborted', 'ExecutionsAborted'],
    ]) {
      expect(alarms[section]).toMatchObject({
        namespace: 'AWS/States',
        metric_name: metric,
        statistic: 'Sum',
        threshold: 1,
        comparison_operator: 'GreaterThanOrEqualToThreshold',
      });
      expect(Object.keys(alarms[section].dimensions)).toEqual(['StateMachineArn']);
      expect(alarms[section].dimensions.StateMachineArn).toMatch(/^\$\{data\.terraform_remote_state\.cross-stack-reference-input-batch\.outputs\.\S+\}$/);
    }
  });

  test("THEN the schedule alarms watch its dead-letter queue (any message) and its group's target errors", () => {
    expect(alarms['schedule-dead-letters']).toMatchObject({
      namespace: 'AWS/SQS',
      metric_name: 'ApproximateNumberOfMessagesVisible',
      statistic: 'Maximum',
      threshold: 1,
    });
    expect(alarms['schedule-dead-letters'].dimensions.QueueName).toMatch(/remote_state\.cross-stack-reference-input-ingest/);
    expect(alarms['schedule-target-errors']).toMatchObject({ namespace: 'AWS/Scheduler', metric_name: 'TargetErrorCount', statistic: 'Sum' });
    expect(Object.keys(alarms['schedule-target-errors'].dimensions)).toEqual(['ScheduleGroup']);
    // Resolved across stacks: the group is the pipeline's own one, the group the schedule is in (not "default").
    const resolver = new Resolver(readApp(outdir));
    const group = resolver.text('monitoring', alarms['schedule-target-errors'].dimensions.ScheduleGroup);
    expect(group).toBe('xmlpipe-dev-schedules');
    expect(resolver.text('ingest', readStack(outdir, 'ingest').only('aws_scheduler_schedule').group_name)).toBe(group);
  });

  test('THEN the lister alarm needs 3 failing periods in a row, skips periods without a run, and reads the failed share of runs', () => {
    const a = alarms['lister-failing'];
    expect(a).toMatchObject({
      evaluation_periods: 3,
      datapoints_to_alarm: 3,
      treat_missing_data: 'missing',
      threshold: 1,
      comparison_operator: 'GreaterThanOrEqualToThreshold',
    });
    const byId = Object.fromEntries(a.metric_query.map((q: any) => [q.id, q]));
    expect(byId.failedshare).toMatchObject({ expression: 'FILL(failures, 0) / runs', return_data: true });
    expect(byId.runs.metric).toMatchObject({
      namespace: 'XmlPipeline',
      metric_name: 'ListerRuns',
      dimensions: { Pipeline: 'xmlpipe-dev' },
      period: 300,
      stat: 'Sum',
    });
    expect(byId.failures.metric).toMatchObject({ metric_name: 'ListerRunFailures', dimensions: { Pipeline: 'xmlpipe-dev' } });
  });

  test('THEN the conversion alarm adds malformed and otherwise failed files', () => {
    const a = alarms['files-failing-conversion'];
    const byId = Object.fromEntries(a.metric_query.map((q: any) => [q.id, q]));
    expect(byId.conversionfailures.expression).toBe('FILL(malformed, 0) + FILL(failed, 0)');
    expect([byId.malformed.metric.metric_name, byId.failed.metric.metric_name]).toEqual(['FilesMalformed', 'FilesConvertFailed']);
    expect(a).toMatchObject({ threshold: 1, treat_missing_data: 'notBreaching' });
  });

  test("THEN out-of-memory stops of the cluster's tasks are matched by a rule that notifies the topic and raises the alarm", () => {
    const rule = stack.only('aws_cloudwatch_event_rule');
    expect(rule.name).toBe('xmlpipe-dev-task-out-of-memory');
    const pattern = JSON.parse(rule.event_pattern);
    expect(pattern).toMatchObject({
      source: ['aws.ecs'],
      'detail-type': ['ECS Task State Change'],
      detail: { lastStatus: ['STOPPED'], containers: { reason: [{ prefix: 'OutOfMemoryError' }] } },
    });
    expect(pattern.detail.clusterArn[0]).toMatch(/remote_state\.cross-stack-reference-input-cluster/);
    // Against documented event shapes, with the cluster reference resolved.
    const cluster = 'arn:aws:ecs:us-east-1:123456789012:cluster/xmlpipe-dev-cluster';
    const resolved = { ...pattern, detail: { ...pattern.detail, clusterArn: [cluster] } };
    const oom = 'OutOfMemoryError: Container killed due to memory usage';
    expect(matches(resolved, taskEvent(cluster, 'STOPPED', [{ exitCode: 137, reason: oom }]))).toBe(true);
    expect(
      matches(
        resolved,
        taskEvent(cluster, 'STOPPED', [
          { name: 'sidecar', exitCode: 0 },
          { exitCode: 137, reason: oom },
        ]),
      ),
    ).toBe(true);
    expect(matches(resolved, taskEvent(cluster, 'STOPPED', [{ exitCode: 65 }]))).toBe(false);
    expect(matches(resolved, taskEvent(cluster, 'STOPPED', [{ exitCode: 137 }]))).toBe(false);
    expect(matches(resolved, taskEvent('arn:aws:ecs:us-east-1:123456789012:cluster/other', 'STOPPED', [{ exitCode: 137, reason: oom }]))).toBe(false);
    expect(matches(resolved, { ...taskEvent(cluster, 'STOPPED', [{ reason: oom }]), 'detail-type': 'ECS Container Instance State Change' })).toBe(false);
    const target = stack.only('aws_cloudwatch_event_target');
    expect(target.arn).toBe(topicRef);
    expect(JSON.parse(target.input_transformer.input_template)).toContain('docs/runbook.md#task-out-of-memory');
    expect(alarms['task-out-of-memory']).toMatchObject({
      namespace: 'AWS/Events',
      metric_name: 'TriggeredRules',
      dimensions: { RuleName: '${aws_cloudwatch_event_rule.out-of-memory-rule.name}' },
    });
  });

  test("THEN the topic is encrypted with a rotating key that alarms and EventBridge may use, and only this app's alarms and rule may publish", () => {
    const topic = stack.only('aws_sns_topic');
    expect(topic.kms_master_key_id).toBe('${aws_kms_key.key.arn}');
    const key = stack.only('aws_kms_key');
    expect(key).toMatchObject({ enable_key_rotation: true, deletion_window_in_days: 7 });
    const keyDoc = stack.json.data!.aws_iam_policy_document['key-policy'];
    const services = keyDoc.statement.find((s: any) => s.sid === 'AlarmsAndEventsPublishToTheTopic');
    expect(services.principals[0].identifiers.sort()).toEqual(['cloudwatch.amazonaws.com', 'events.amazonaws.com']);
    expect(services.actions.sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey*']);

    const topicDoc = stack.json.data!.aws_iam_policy_document['topic-policy'];
    const bySid = Object.fromEntries(topicDoc.statement.map((s: any) => [s.sid, s]));
    expect(bySid.AlarmsPublish.condition).toContainEqual({
      test: 'ArnLike',
      variable: 'aws:SourceArn',
      values: [expect.stringMatching(/:cloudwatch:us-east-1:.*:alarm:xmlpipe-dev-\*$/)],
    });
    expect(bySid.OutOfMemoryRulePublishes.condition).toEqual([
      { test: 'ArnEquals', variable: 'aws:SourceArn', values: [expect.stringMatching(/:events:us-east-1:.*:rule\/xmlpipe-dev-task-out-of-memory$/)] },
    ]);
    expect(stack.only('aws_sns_topic_policy').policy).toBe('${data.aws_iam_policy_document.topic-policy.json}');
    // No address configured: no subscription.
    expect(stack.resources('aws_sns_topic_subscription')).toEqual({});
  });

  test('THEN the dashboard shows files, bytes, throughput, failures by reason, executions, durations, DLQ depth and the alarms', () => {
    const body = JSON.parse(stack.only('aws_cloudwatch_dashboard').dashboard_body);
    const titles = body.widgets.map((w: any) => w.properties.title);
    expect(titles).toEqual([
      'Alarms (runbook: docs/runbook.md)',
      'Files in and out',
      'Bytes',
      'Throughput (MB/s)',
      'Failures by reason',
      'Execution outcomes',
      'Task durations (s)',
      'Schedule dead-letter queue depth',
      'Tasks and runs',
      'Task memory (MiB, highest task) vs reserved',
      'Task CPU (units, highest task) vs reserved',
    ]);
    // Container Insights per task family: resolved across stacks to this cluster and the two task definitions.
    const resolver = new Resolver(readApp(outdir));
    for (const [title, used, reserved] of [
      ['Task memory (MiB, highest task) vs reserved', 'MemoryUtilized', 'MemoryReserved'],
      ['Task CPU (units, highest task) vs reserved', 'CpuUtilized', 'CpuReserved'],
    ]) {
      const rows = body.widgets.find((w: any) => w.properties.title === title).properties.metrics;
      expect(rows.map((m: any[]) => [m[0], m[1], m[2], resolver.text('monitoring', m[3]), m[4], resolver.text('monitoring', m[5]), m[6].stat])).toEqual(
        ['xmlpipe-dev-sftp-lister', 'xmlpipe-dev-converter'].flatMap((family) =>
          [used, reserved].map((metric) => ['ECS/ContainerInsights', metric, 'ClusterName', 'xmlpipe-dev-cluster', 'TaskDefinitionFamily', family, 'Maximum']),
        ),
      );
    }
    expect(body.widgets[0].properties.alarms).toHaveLength(DEFAULT_SECTIONS.length);
    const dlq = body.widgets.find((w: any) => w.properties.title === 'Schedule dead-letter queue depth');
    expect(dlq.properties.metrics.map((m: any[]) => m.slice(0, 3))).toEqual([
      ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName'],
      ['AWS/SQS', 'ApproximateAgeOfOldestMessage', 'QueueName'],
    ]);
    for (const w of body.widgets.slice(1)) expect(w.properties.region).toBe('us-east-1');
    // Widgets do not overlap on the 24-column grid.
    const cells = new Set<string>();
    for (const w of body.widgets) {
      expect(w.x + w.width).toBeLessThanOrEqual(24);
      for (let x = w.x; x < w.x + w.width; x++)
        for (let y = w.y; y < w.y + w.height; y++) {
          expect(cells.has(`${x},${y}`)).toBe(false);
          cells.add(`${x},${y}`);
        }
    }
  });

  test('THEN every resource name and Terraform output the runbook tells the operator to use exists in the synthesized app', () => {
    const text = fs.readFileSync(RUNBOOK, 'utf8').replace(/<prefix>-<stage>/g, '$P');
    const values = new Set<string>();
    const walk = (v: unknown): void => {
      if (typeof v === 'string') values.add(v);
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    const stacks = listStacks(outdir);
    for (const st of stacks) walk(st.json.resource);
    const names = [...new Set(text.match(/[A-Za-z0-9_/.:-]*\$P-[A-Za-z0-9_-]+/g) ?? [])].map((n) => n.replace('$P', 'xmlpipe-dev'));
    expect(names.length).toBeGreaterThanOrEqual(10);
    expect(names.filter((n) => !values.has(n))).toEqual([]);
    const outputs = [...text.matchAll(/-chdir=cdktf\.out\/stacks\/([a-z]+) output -raw ([a-z_]+)/g)].map((m) => `${m[1]}.${m[2]}`);
    expect(outputs.length).toBeGreaterThanOrEqual(3);
    const synthesizedOutputs = new Set(stacks.flatMap((st) => Object.keys(st.json.output ?? {}).map((o) => `${st.name}.${o}`)));
    expect(outputs.filter((o) => !synthesizedOutputs.has(o))).toEqual([]);
  });

  test('THEN terraform validate accepts the stack (offline)', async () => {
    expect(await validateStack(stack.dir)).toEqual({ valid: true });
  }, 300_000);
});

describe('GIVEN monitoring settings', () => {
  test('WHEN e-mails and a no-ingest period are set THEN each address is subscribed and the no-ingest alarm counts hours without a file as breaching', () => {
    const stack = monitoringWith({
      alarmEmails: ['ops@example.com', 'oncall@example.org'],
      alarmNoIngestMinutes: 2880,
      runbookUrl: 'https://git.example.com/pipeline/blob/main/docs/runbook.md',
    });
    const subs = Object.values(stack.resources('aws_sns_topic_subscription'));
    expect(subs.map((s: any) => [s.protocol, s.endpoint])).toEqual([
      ['email', 'ops@example.com'],
      ['email', 'oncall@example.org'],
    ]);
    const a = alarmsBySection(stack)['no-files-ingested'];
    expect(a).toMatchObject({
      namespace: 'XmlPipeline',
      metric_name: 'FilesIngested',
      dimensions: { Pipeline: 'xmlpipe-dev' },
      period: 3600,
      evaluation_periods: 48,
      comparison_operator: 'LessThanThreshold',
      threshold: 1,
      treat_missing_data: 'breaching',
    });
    expect(a.alarm_description).toContain('Runbook: https://git.example.com/pipeline/blob/main/docs/runbook.md#no-files-ingested');
    expect(runbookSections().has('no-files-ingested')).toBe(true);
  });

  test("WHEN the no-ingest window is set in minutes THEN its periods are the longest that divide it within CloudWatch's range", () => {
    expect(noIngestWindow(0)).toBeUndefined();
    expect(noIngestWindow(10)).toEqual({ period: 300, periods: 2 });
    expect(noIngestWindow(12)).toEqual({ period: 60, periods: 12 });
    expect(noIngestWindow(90)).toEqual({ period: 900, periods: 6 });
    expect(noIngestWindow(1440)).toEqual({ period: 3600, periods: 24 });
    expect(noIngestWindow(1500)).toEqual({ period: 3600, periods: 25 });
    expect(noIngestWindow(10080)).toEqual({ period: 3600, periods: 168 });
    expect(() => noIngestWindow(1445)).toThrow(/1445 minutes is more than a day and not whole hours/);
  });

  test('WHEN the schedule runs hourly THEN a lister period spans one run; a daily schedule with 3 runs fits in 7 days', () => {
    expect(scheduleIntervalSeconds('rate(1 hour)')).toBe(3600);
    expect(scheduleIntervalSeconds('rate(5 minutes)')).toBe(300);
    expect(scheduleIntervalSeconds('cron(0 * * * ? *)')).toBeUndefined();
    const hourly = alarmsBySection(monitoringWith({}, { PIPELINE_SCHEDULE: 'rate(1 hour)' }))['lister-failing'];
    expect(hourly.metric_query.find((q: any) => q.id === 'runs').metric.period).toBe(3600);
    const daily = alarmsBySection(monitoringWith({ alarmListerFailures: 3 }, { PIPELINE_SCHEDULE: 'rate(1 day)' }))['lister-failing'];
    expect(daily.metric_query.find((q: any) => q.id === 'runs').metric.period).toBe(86400);
  });

  test.each([
    [
      { alarmEmails: ['ops@example.com, dev@example.com'] },
      {},
      /alarmEmails \(env PIPELINE_ALARM_EMAILS\): "ops@example.com, dev@example.com" is not an e-mail address/,
    ],
    [{ alarmNoIngestMinutes: 10081 }, {}, /alarmNoIngestMinutes \(env PIPELINE_ALARM_NO_INGEST_MINUTES\): must be 0 \(off\) or 10-10080/],
    [{ alarmNoIngestMinutes: 5 }, {}, /alarmNoIngestMinutes .*must be 0 \(off\) or 10-10080/],
    [{ alarmNoIngestMinutes: 1441 }, {}, /alarmNoIngestMinutes .*1441 minutes is more than a day and not whole hours/],
    [{ alarmListerFailures: 0 }, {}, /alarmListerFailures \(env PIPELINE_ALARM_LISTER_FAILURES\): must be an integer >= 1/],
    [
      { alarmListerFailures: 8 },
      { PIPELINE_SCHEDULE: 'rate(1 day)' },
      /alarmListerFailures .*8 runs of rate\(1 day\): 8 periods of 86400 s span 691200 s; CloudWatch allows at most 604800 s/,
    ],
    [{ alarmListerFailures: 289 }, {}, /alarmListerFailures .*289 periods of 300 s span 86700 s; CloudWatch allows at most 86400 s/],
    [{ alarmConversionFailures: 0 }, {}, /alarmConversionFailures \(env PIPELINE_ALARM_CONVERSION_FAILURES\): must be >= 1/],
  ])('WHEN %j (env %j) THEN synth fails naming the setting', (settings, env, message) => {
    expect(() => monitoringWith(settings as MonitoringSettings, env as Record<string, string>)).toThrow(message);
  });
});
