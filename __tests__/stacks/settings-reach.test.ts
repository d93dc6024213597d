// Every setting the docs sell reaches the synthesized Terraform (issue 12): set each to a value that is
// not its default and find that value where AWS will read it. The lister's environment is checked in
// __tests__/ingest.test.ts, teardown settings in teardown.test.ts, batching in batch.test.ts.
import { maskTerraformRefs } from '../../tools/tf-json';
import { readStack, synthesize, TEST_PUBLIC_KEY } from './synth';

const RUNBOOK_URL = 'https://git.example.com/acme/pipeline/blob/main/docs/runbook.md';

describe('settings that reach the schedule and the monitoring stack', () => {
  const { outdir } = synthesize({
    env: {
      PIPELINE_SFTP_PUBLIC_KEYS: TEST_PUBLIC_KEY,
      PIPELINE_SFTP_KEY_INSTALLED: 'true',
      PIPELINE_SCHEDULE_RETRY_ATTEMPTS: '7',
      PIPELINE_SCHEDULE_MAX_EVENT_AGE_SECONDS: '900',
      PIPELINE_ALARM_EMAILS: 'ops@example.com, oncall@example.org',
      PIPELINE_ALARM_LISTER_FAILURES: '5',
      PIPELINE_ALARM_CONVERSION_FAILURES: '7',
      PIPELINE_ALARM_NO_INGEST_MINUTES: '120',
      PIPELINE_RUNBOOK_URL: RUNBOOK_URL,
    },
  });
  const ingest = readStack(outdir, 'ingest');
  const monitoring = readStack(outdir, 'monitoring');
  const alarm = (section: string) => monitoring.resources('aws_cloudwatch_metric_alarm')[`alarm-${section}`];

  test('GIVEN the key installed and schedule retry settings WHEN synthesized THEN the schedule is enabled with that retry policy', () => {
    const schedule = ingest.only('aws_scheduler_schedule');
    expect(schedule.state).toBe('ENABLED');
    expect(schedule.target.retry_policy).toEqual({ maximum_retry_attempts: 7, maximum_event_age_in_seconds: 900 });
  });

  test('GIVEN alarm e-mails WHEN synthesized THEN each is an e-mail subscription of the alarm topic', () => {
    const subs = Object.values(monitoring.resources('aws_sns_topic_subscription'));
    expect(subs.map((s) => [s.protocol, s.endpoint]).sort()).toEqual([
      ['email', 'oncall@example.org'],
      ['email', 'ops@example.com'],
    ]);
  });

  test('GIVEN alarm thresholds WHEN synthesized THEN the alarms use them', () => {
    expect(alarm('lister-failing')).toMatchObject({ evaluation_periods: 5, datapoints_to_alarm: 5 });
    expect(alarm('files-failing-conversion')).toMatchObject({ threshold: 7 });
    expect(alarm('no-files-ingested').alarm_description).toMatch(/^No file was ingested for 120 minutes\./);
  });

  test('GIVEN a published runbook URL WHEN synthesized THEN every alarm, the out-of-memory notification and the dashboard link to it', () => {
    const alarms = Object.entries(monitoring.resources('aws_cloudwatch_metric_alarm'));
    expect(alarms.length).toBeGreaterThanOrEqual(9);
    for (const [id, a] of alarms) {
      const link = ` Runbook: ${RUNBOOK_URL}#${id.replace(/^alarm-/, '')}`;
      expect(a.alarm_description.slice(-link.length)).toBe(link);
    }
    expect(JSON.parse(monitoring.only('aws_cloudwatch_event_target').input_transformer.input_template)).toContain(`Runbook: ${RUNBOOK_URL}#task-out-of-memory`);
    expect(JSON.parse(monitoring.only('aws_cloudwatch_dashboard').dashboard_body).widgets[0].properties.title).toBe(`Alarms (runbook: ${RUNBOOK_URL})`);
  });

  test('GIVEN the defaults WHEN synthesized THEN no subscription, no no-ingest alarm, and the schedule is disabled', () => {
    const defaults = synthesize();
    const m = readStack(defaults.outdir, 'monitoring');
    expect(m.resources('aws_sns_topic_subscription')).toEqual({});
    expect(m.resources('aws_cloudwatch_metric_alarm')['alarm-no-files-ingested']).toBeUndefined();
    expect(m.resources('aws_cloudwatch_metric_alarm')['alarm-executions-failed'].alarm_description).toMatch(/ Runbook: docs\/runbook\.md#executions-failed$/);
    expect(readStack(defaults.outdir, 'ingest').only('aws_scheduler_schedule').state).toBe('DISABLED');
  });
});

/** Every state of a definition, also those inside Map processors, by name. */
function allStates(definition: { States: Record<string, any> }): Record<string, any> {
  const out: Record<string, any> = {};
  for (const [name, state] of Object.entries(definition.States)) {
    out[name] = state;
    const inner = state.ItemProcessor ?? state.Iterator;
    if (inner) Object.assign(out, allStates(inner));
  }
  return out;
}

describe('settings that reach the state machine', () => {
  test('GIVEN Fargate Spot, task timeouts and attempts in the environment WHEN synthesized THEN the converter runs on Spot with its timeout and attempts, the lister on demand with its timeout', () => {
    const env = {
      PIPELINE_CONVERTER_CAPACITY: 'FARGATE_SPOT',
      PIPELINE_LISTER_TIMEOUT_SECONDS: '700',
      PIPELINE_CONVERTER_TIMEOUT_SECONDS: '1300',
      PIPELINE_TASK_ATTEMPTS: '5',
    };
    const { outdir } = synthesize({ env });
    const definition = JSON.parse(maskTerraformRefs(readStack(outdir, 'batch').only('aws_sfn_state_machine').definition).text);
    const states = Object.entries(allStates(definition));
    const runTasks = states.filter(([, s]) => String(s.Resource).includes(':ecs:runTask'));
    const container = (s: any) => s.Parameters.Overrides.ContainerOverrides[0].Name;
    const converter = runTasks.filter(([, s]) => container(s) === 'converter');
    const lister = runTasks.filter(([, s]) => container(s) === 'sftp-lister');
    expect(converter.length).toBeGreaterThanOrEqual(4);
    expect(lister).toHaveLength(1);
    for (const [name, s] of converter)
      expect([name, s.TimeoutSeconds, s.Parameters.CapacityProviderStrategy]).toEqual([name, 1300, [{ CapacityProvider: 'FARGATE_SPOT', Weight: 1 }]]);
    expect(lister[0][1]).toMatchObject({ TimeoutSeconds: 700, Parameters: { CapacityProviderStrategy: [{ CapacityProvider: 'FARGATE', Weight: 1 }] } });
    // A converter batch runs again while its attempt number (from 0) is below attempts - 1.
    const reruns = states.filter(([name]) => name.startsWith('Run again?'));
    expect(reruns.length).toBe(converter.length);
    for (const [name, s] of reruns) expect([name, s.Choices[0]]).toEqual([name, expect.objectContaining({ Variable: '$.attempt', NumericLessThan: 4 })]);
  });
});
