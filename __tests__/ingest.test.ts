// ingest stack: the lister's task definition (Fargate, non-root, read-only root, secret from Secrets
// Manager), its least-privilege roles, and the EventBridge Scheduler schedule that starts the pipeline.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'cdktf';
import { Resolver } from '../tools/review';
import { validateStack } from '../scripts/terraform';
import { loadConfig } from '../stacks/config';
import { IngestStack } from '../stacks/ingest';
import { maskTerraformRefs, readApp } from '../tools/tf-json';
import { readStack } from './batch-stack-reader';
import { synthesize, TEST_PUBLIC_KEY } from './stacks/synth';

const FINGERPRINT = 'SHA256:' + 'B'.repeat(42) + 'E';

describe('ingest stack', () => {
  const synth = synthesize({
    env: {
      PIPELINE_STAGE: 'prod',
      PIPELINE_SCHEDULE: 'rate(10 minutes)',
      PIPELINE_NAT: 'true',
      PIPELINE_SFTP_SOURCE: 'external',
      PIPELINE_SFTP_HOST: 'sftp.example.com',
      PIPELINE_SFTP_PORT: '2222',
      PIPELINE_SFTP_USER: 'ingest',
      PIPELINE_SFTP_HOST_KEY_FINGERPRINTS: FINGERPRINT,
      PIPELINE_LISTER_CPU: '512',
      PIPELINE_LISTER_MEMORY: '1024',
      PIPELINE_SFTP_KEY_INSTALLED: 'true',
    },
  });
  const ingest = readStack(synth.outdir, 'ingest');
  const td = ingest.only('aws_ecs_task_definition');
  const [container] = JSON.parse(td.container_definitions);
  const env = Object.fromEntries(container.environment.map((e: { name: string; value: string }) => [e.name, e.value]));

  test('GIVEN lister sizes in config WHEN synthesized THEN the task definition is Fargate/awsvpc with those sizes', () => {
    expect(td).toMatchObject({
      family: 'xmlpipe-prod-sftp-lister',
      requires_compatibilities: ['FARGATE'],
      network_mode: 'awsvpc',
      cpu: '512',
      memory: '1024',
      runtime_platform: { operating_system_family: 'LINUX', cpu_architecture: 'X86_64' },
      volume: [{ name: 'tmp' }],
    });
  });

  test('THEN the container runs non-root on a read-only root filesystem with /tmp on an ephemeral volume, logging to its group', () => {
    expect(container).toMatchObject({
      name: 'sftp-lister',
      user: '10001:10001',
      readonlyRootFilesystem: true,
      privileged: false,
      mountPoints: [{ sourceVolume: 'tmp', containerPath: '/tmp', readOnly: false }],
      logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-region': 'us-east-1', 'awslogs-stream-prefix': 'sftp-lister' } },
    });
    // Resolved through the cross-stack reference: the cluster stack's log group of this container.
    const resolver = new Resolver(readApp(synth.outdir));
    expect(resolver.text('ingest', container.logConfiguration.options['awslogs-group'])).toBe('/ecs/xmlpipe-prod-sftp-lister');
    expect(env.TMPDIR).toBe('/tmp');
  });

  test('THEN the private key is injected from Secrets Manager, never a plain value; the host key comes from config', () => {
    expect(container.secrets).toEqual([{ name: 'SFTP_PRIVATE_KEY', valueFrom: expect.stringMatching(/^\$\{.*secret.*\}$/) }]);
    expect(env.SFTP_PRIVATE_KEY).toBeUndefined();
    expect(env).toMatchObject({
      SFTP_HOST: 'sftp.example.com',
      SFTP_PORT: '2222',
      SFTP_USER: 'ingest',
      SFTP_HOST_KEY_FINGERPRINTS: FINGERPRINT,
      MIN_AGE_SECONDS: '60',
      MAX_FILES: '10000',
      BATCH_MAX_FILES: '200',
      BATCH_MAX_BYTES: '268435456',
      RETRIES: '3',
      SFTP_REMOTE_DIR: '.',
      COMPLETION: 'leave',
      METRICS_PIPELINE: 'xmlpipe-prod',
    });
    expect(env.INCLUDE).toBeUndefined();
    expect(env.COMPLETION_MOVE_DIR).toBeUndefined();
    expect(env.EXCLUDE).toBeUndefined();
    expect(JSON.stringify(ingest.json)).not.toMatch(/PRIVATE KEY/);
  });

  test('THEN only the execution role may read the secret, and the task role only touches its prefixes', () => {
    const exec = ingest.policyOf('execution-role');
    expect(exec.find((s) => s.sid === 'InjectSecrets')).toMatchObject({
      actions: ['secretsmanager:GetSecretValue'],
      resources: [expect.stringMatching(/secret/)],
    });
    const task = ingest.policyOf('task-role');
    expect(task.flatMap((s) => s.actions).sort()).toEqual(['s3:AbortMultipartUpload', 's3:GetObject', 's3:ListBucket', 's3:PutObject']);
    const write = task.find((s) => s.sid === 'WriteIngestedFilesManifestAndIndex');
    expect(write.resources.map((r: string) => r.replace(/^\$\{[^}]+\}/, 'BUCKET'))).toEqual([
      'BUCKET/incoming/*',
      'BUCKET/manifests/*',
      'BUCKET/.sftp-lister/*',
    ]);
    expect(task.find((s) => s.sid === 'ListLandingPrefixes').condition).toEqual([
      { test: 'StringLike', variable: 's3:prefix', values: ['incoming/*', '.sftp-lister/*'] },
    ]);
    expect(JSON.stringify(task)).not.toMatch(/"\*"/);
    expect(ingest.trustOf('task-role')[0]).toMatchObject({ principals: [{ type: 'Service', identifiers: ['ecs-tasks.amazonaws.com'] }] });
  });

  test('THEN the schedule runs at the configured rate with a retry policy and an encrypted SQS dead-letter queue', () => {
    const schedule = ingest.only('aws_scheduler_schedule');
    expect(schedule).toMatchObject({
      name: 'xmlpipe-prod-ingest',
      schedule_expression: 'rate(10 minutes)',
      state: 'ENABLED',
      flexible_time_window: { mode: 'OFF' },
      target: {
        input: JSON.stringify({ ingest: { source: 'schedule' } }),
        retry_policy: { maximum_retry_attempts: 3, maximum_event_age_in_seconds: 300 },
        dead_letter_config: { arn: '${aws_sqs_queue.schedule-dlq.arn}' },
      },
    });
    // In the pipeline's own group, so the Scheduler's per-group metrics are this schedule's alone.
    expect(ingest.only('aws_scheduler_schedule_group').name).toBe('xmlpipe-prod-schedules');
    expect(schedule.group_name).toBe('${aws_scheduler_schedule_group.schedule-group.name}');
    expect(schedule.target.arn).toMatch(
      /^arn:\$\{data\.aws_partition\.partition\.partition\}:states:us-east-1:\$\{data\.aws_caller_identity\.account\.account_id\}:stateMachine:xmlpipe-prod-pipeline$/,
    );
    expect(ingest.only('aws_sqs_queue')).toMatchObject({ sqs_managed_sse_enabled: true, message_retention_seconds: 1209600 });
  });

  test('THEN the schedule role may start only this state machine and write only to its DLQ', () => {
    const statements = ingest.policyOf('schedule-role');
    expect(statements).toEqual([
      expect.objectContaining({ actions: ['states:StartExecution'], resources: [expect.stringMatching(/:stateMachine:xmlpipe-prod-pipeline$/)] }),
      expect.objectContaining({ actions: ['sqs:SendMessage'], resources: ['${aws_sqs_queue.schedule-dlq.arn}'] }),
    ]);
    expect(ingest.trustOf('schedule-role')[0].principals).toEqual([{ type: 'Service', identifiers: ['scheduler.amazonaws.com'] }]);
  });

  test('THEN terraform validate passes offline', async () => {
    expect(await validateStack(ingest.dir)).toEqual({ valid: true });
  });
});

describe('ingest stack with the managed Transfer server (default)', () => {
  test('GIVEN no SFTP config WHEN synthesized THEN host and fingerprint come from the sftp stack outputs', () => {
    const synth = synthesize();
    const ingest = readStack(synth.outdir, 'ingest');
    // Expressions may hold quotes: mask them to parse the container JSON.
    const masked = maskTerraformRefs(ingest.only('aws_ecs_task_definition').container_definitions);
    const [container] = JSON.parse(masked.text);
    const env = Object.fromEntries(container.environment.map((e: { name: string; value: string }) => [e.name, e.value]));
    expect(masked.refs[env.SFTP_HOST]).toContain('cross-stack-reference-input-sftp');
    expect(masked.refs[env.SFTP_HOST_KEY_FINGERPRINTS]).toMatch(/cross-stack-reference-input-sftp.*host_key_fingerprint/);
    expect(env.SFTP_USER).toBe('sftpuser');
    expect(ingest.only('aws_scheduler_schedule').schedule_expression).toBe('rate(5 minutes)');
  });
});

describe('ingest settings from the typed config', () => {
  // Structural stand-ins for the infrastructure stacks: only the config varies.
  const build = (env: Record<string, string>) => {
    const ref = { id: 'x', arn: 'arn:aws:s3:::x', name: 'x' };
    const app = new App({ outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'h5-ingest-')) });
    new IngestStack(app, 'ingest', {
      config: loadConfig({ env }),
      network: { privateSubnets: [ref], taskSecurityGroup: ref },
      cluster: { cluster: ref, logGroups: { sftpLister: ref, converter: ref }, repositories: { sftpLister: ref, converter: ref }, xmlBucket: { bucket: ref } },
      images: { imageRefs: { sftpLister: 'img', converter: 'img' } },
      sftp: { host: 'h', port: 22, userName: 'u', hostKeyFingerprints: FINGERPRINT, privateKeySecret: ref },
    });
    app.synth();
    const ingest = readStack(app.outdir, 'ingest');
    fs.rmSync(app.outdir, { recursive: true, force: true });
    const [container] = JSON.parse(ingest.only('aws_ecs_task_definition').container_definitions);
    const listerEnv = Object.fromEntries(container.environment.map((e: { name: string; value: string }) => [e.name, e.value]));
    return { listerEnv, schedule: ingest.only('aws_scheduler_schedule') };
  };

  test('GIVEN every lister setting in the environment WHEN built THEN the lister task gets each as its own variable', () => {
    const { listerEnv, schedule } = build({
      PIPELINE_STAGE: 'qa',
      PIPELINE_SFTP_REMOTE_DIR: '/outbox/xml',
      PIPELINE_SFTP_INCLUDE: '*.xml, in/*.XML',
      PIPELINE_SFTP_EXCLUDE: '*.tmp',
      PIPELINE_SFTP_COMPLETION: 'move',
      PIPELINE_SFTP_COMPLETION_MOVE_DIR: '/outbox/done',
      PIPELINE_MIN_FILE_AGE_SECONDS: '120',
      PIPELINE_FILES_PER_RUN: '25000',
      PIPELINE_BATCH_MAX_FILES: '500',
      PIPELINE_BATCH_MAX_BYTES: '1048576',
      PIPELINE_LISTER_RETRIES: '0',
      PIPELINE_SCHEDULE_RETRY_ATTEMPTS: '0',
      PIPELINE_SCHEDULE_MAX_EVENT_AGE_SECONDS: '3600',
    });
    expect(listerEnv).toMatchObject({
      SFTP_REMOTE_DIR: '/outbox/xml',
      INCLUDE: '*.xml,in/*.XML',
      EXCLUDE: '*.tmp',
      COMPLETION: 'move',
      COMPLETION_MOVE_DIR: '/outbox/done',
      MIN_AGE_SECONDS: '120',
      MAX_FILES: '25000',
      BATCH_MAX_FILES: '500',
      BATCH_MAX_BYTES: '1048576',
      RETRIES: '0',
      METRICS_PIPELINE: 'xmlpipe-qa',
      SFTP_HOST: 'h',
    });
    expect(schedule.target.retry_policy).toEqual({ maximum_retry_attempts: 0, maximum_event_age_in_seconds: 3600 });
  });

  // First deploy: a schedule that fires before the key is in the secret fails every run.
  test.each([
    ['nothing set (first deploy)', {}, 'DISABLED'],
    ['a public key but the private key not yet installed', { PIPELINE_SFTP_PUBLIC_KEYS: TEST_PUBLIC_KEY }, 'DISABLED'],
    ['a public key and the private key installed', { PIPELINE_SFTP_PUBLIC_KEYS: TEST_PUBLIC_KEY, PIPELINE_SFTP_KEY_INSTALLED: 'true' }, 'ENABLED'],
  ])('GIVEN %s WHEN built THEN the schedule is %s', (_what, env: Record<string, string>, state) => {
    expect(build(env).schedule.state).toBe(state);
  });
});
