// Least privilege, proven by simulation: every role of every stack is synthesized, its policies get
// concrete ARNs (fake account 123456789012, the stack's region, names from the synthesized arguments)
// and each request of the matrix below is evaluated by @cloud-copilot/iam-simulate, with the data
// buckets' bucket policies applied. A role with no case here fails the coverage test.
import { isWildcardOnlyAction } from '@cloud-copilot/iam-simulate';
import { asArray, buildSecurityModel, SecurityModel, simulate, statementsOf, trustedPrincipals } from '../../tools/review';
import { readApp as readSynthesized } from '../../tools/tf-json';
import { synthesize, TEST_PUBLIC_KEY } from '../stacks/synth';

type Expect = 'allow' | 'deny' | 'explicit-deny';
interface Case {
  readonly role: string;
  readonly action: string;
  readonly resource: string;
  readonly context?: Record<string, string>;
  readonly expect: Expect;
  readonly why: string;
}

/**
 * Actions allowed on Resource "*": each has no resource-level permissions in IAM (checked below
 * against the simulator's service data too), so "*" is the only possible resource.
 */
const WILDCARD_RESOURCE_ALLOWED: Record<string, string> = {
  'ecr:GetAuthorizationToken': 'the registry login token is account-wide; image pulls themselves are limited to one repository',
  'logs:CreateLogDelivery': 'Step Functions log delivery: vended-log delivery APIs take no resource',
  'logs:GetLogDelivery': 'Step Functions log delivery (no resource-level permissions)',
  'logs:UpdateLogDelivery': 'Step Functions log delivery (no resource-level permissions)',
  'logs:DeleteLogDelivery': 'Step Functions log delivery (no resource-level permissions)',
  'logs:ListLogDeliveries': 'Step Functions log delivery (no resource-level permissions)',
  'logs:PutResourcePolicy': 'Step Functions log delivery sets the log group resource policy (account-level API)',
  'logs:DescribeResourcePolicies': 'Step Functions log delivery reads the resource policies (account-level API)',
  'logs:DescribeLogGroups': 'Step Functions log delivery checks the destination (list API, no resource)',
  'xray:PutTraceSegments': 'X-Ray tracing of the state machine (no resource-level permissions)',
  'xray:PutTelemetryRecords': 'X-Ray tracing (no resource-level permissions)',
  'xray:GetSamplingRules': 'X-Ray sampling (no resource-level permissions)',
  'xray:GetSamplingTargets': 'X-Ray sampling (no resource-level permissions)',
};

const PASSED_TO_ECS = { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' };

/** The matrix: who may do what on which resource, from the issue and the images' contracts. */
function matrix(m: SecurityModel): Case[] {
  const xml = m.bucket('xml-bucket').arn;
  const sftpBucket = m.bucket('sftp-bucket').arn;
  const cluster = m.attrs('cluster', 'aws_ecs_cluster', 'cluster').arn;
  // A task RunTask creates in this cluster: arn:aws:ecs:<region>:<account>:task/<cluster name>/<id>.
  const clusterTask = `${cluster.replace(':cluster/', ':task/')}/0123456789abcdef0123456789abcdef`;
  const inCluster = { 'ecs:cluster': cluster };
  const converterTd = m.attrs('batch', 'aws_ecs_task_definition', 'task').arn_without_revision;
  const listerTd = m.attrs('ingest', 'aws_ecs_task_definition', 'task').arn_without_revision;
  const otherTd = converterTd.replace(/[^/]+$/, 'xmlpipe-dev-other');
  const stateMachine = m.attrs('batch', 'aws_sfn_state_machine', 'state-machine').arn;
  const otherMachine = stateMachine.replace(/[^:]+$/, 'someone-elses-machine');
  const secret = m.attrs('sftp', 'aws_secretsmanager_secret', 'private-key').arn;
  const repo = (dir: string) => m.attrs('cluster', 'aws_ecr_repository', `repo-${dir}`).arn;
  const logs = (stack: string, prefix: string) => `${m.attrs(stack, 'aws_cloudwatch_log_group', prefix).arn}:log-stream:s1`;
  const dlq = m.attrs('ingest', 'aws_sqs_queue', 'schedule-dlq').arn;
  const lockTable = m.attrs('batch', 'aws_dynamodb_table', 'lock-table').arn;
  const roleArn = (key: string) => m.role(key).arn;
  const home = m.app.stacks.sftp.resource!.aws_transfer_user.user.user_name as string;

  const c = (role: string, action: string, resource: string, expect: Expect, why: string, context?: Record<string, string>): Case => ({
    role,
    action,
    resource,
    expect,
    why,
    context,
  });
  return [
    // The converter reads its input prefix only and writes its output prefix; deletes nothing; never sees SFTP.
    c('batch/task-role', 's3:GetObject', `${xml}/incoming/2024/a.xml`, 'allow', 'reads keys inside its input prefix (incoming/)'),
    c('batch/task-role', 's3:GetObject', `${xml}/lab/a.xml`, 'deny', 'reads nothing outside the input prefixes'),
    c('batch/task-role', 's3:GetObject', `${xml}/incoming-old/a.xml`, 'deny', 'a sibling sharing the prefix name is outside it'),
    c('batch/task-role', 's3:GetObject', `${xml}/json/incoming/2024/a.xml.json`, 'deny', 'reads no outputs'),
    c('batch/task-role', 's3:GetObject', `${xml}/manifests/exec-1.json`, 'deny', 'reads no manifests (its keys come in S3PATHS)'),
    c('batch/task-role', 's3:GetObject', `${xml}/.sftp-lister/state/index.json`, 'deny', "reads not the lister's index"),
    c('batch/task-role', 's3:ListBucket', xml, 'deny', 'lists nothing', { 's3:prefix': 'incoming/' }),
    c('batch/task-role', 's3:PutObject', `${xml}/json/incoming/2024/a.xml.json`, 'allow', 'writes its output prefix'),
    c('batch/task-role', 's3:PutObject', `${xml}/results/exec-1/batch.json`, 'allow', 'writes its batch summary (RESULT_KEY)'),
    c('batch/task-role', 's3:AbortMultipartUpload', `${xml}/json/big.xml.json`, 'allow', 'aborts its own failed multipart upload'),
    c('batch/task-role', 's3:PutObject', `${xml}/incoming/2024/a.xml`, 'deny', 'may not overwrite its input'),
    c('batch/task-role', 's3:PutObject', `${xml}/.sftp-lister/state/index.json`, 'deny', "may not touch the lister's index"),
    c('batch/task-role', 's3:DeleteObject', `${xml}/incoming/2024/a.xml`, 'deny', 'may not delete inputs'),
    c('batch/task-role', 's3:DeleteObject', `${xml}/json/incoming/2024/a.xml.json`, 'deny', 'may not delete outputs'),
    c('batch/task-role', 's3:DeleteObjectVersion', `${xml}/json/a.json`, 'deny', 'may not delete versions'),
    c('batch/task-role', 's3:GetObject', `${sftpBucket}/${home}/a.xml`, 'deny', 'may not read the SFTP bucket'),
    c('batch/task-role', 's3:ListBucket', sftpBucket, 'deny', 'may not list the SFTP bucket'),
    c('batch/task-role', 'secretsmanager:GetSecretValue', secret, 'deny', 'never sees the SFTP key'),
    c('batch/task-role', 's3:GetObject', `${xml}/incoming/2024/a.xml`, 'explicit-deny', 'TLS-only bucket policy denies plain HTTP', {
      'aws:SecureTransport': 'false',
    }),
    // The converter's execution role: its own image and log group only.
    c('batch/execution-role', 'ecr:BatchGetImage', repo('converter'), 'allow', 'pulls its image'),
    c('batch/execution-role', 'ecr:GetAuthorizationToken', '*', 'allow', 'registry login'),
    c('batch/execution-role', 'logs:PutLogEvents', logs('cluster', 'logs-converter'), 'allow', 'writes its logs'),
    c('batch/execution-role', 'ecr:BatchGetImage', repo('sftp-lister'), 'deny', "may not pull the lister's image"),
    c('batch/execution-role', 'logs:PutLogEvents', logs('cluster', 'logs-sftp-lister'), 'deny', "may not write the lister's logs"),
    c('batch/execution-role', 'secretsmanager:GetSecretValue', secret, 'deny', 'the converter gets no SFTP key'),

    // The lister writes only its landing prefix (+ manifests, + its own index) and reads nothing else.
    c('ingest/task-role', 's3:PutObject', `${xml}/incoming/a.xml`, 'allow', 'lands files'),
    c('ingest/task-role', 's3:PutObject', `${xml}/manifests/exec-1.json`, 'allow', 'writes the run manifest (MANIFEST_KEY)'),
    c('ingest/task-role', 's3:PutObject', `${xml}/.sftp-lister/state/index.json`, 'allow', 'writes its ingest index (STATE_KEY)'),
    c('ingest/task-role', 's3:GetObject', `${xml}/.sftp-lister/state/index.json`, 'allow', 'reads its ingest index'),
    c('ingest/task-role', 's3:GetObject', `${xml}/incoming/a.xml`, 'allow', 'HEADs what it landed (exactly-once check)'),
    c('ingest/task-role', 's3:ListBucket', xml, 'allow', 'lists its landing prefix', { 's3:prefix': 'incoming/' }),
    c('ingest/task-role', 's3:PutObject', `${xml}/json/a.xml.json`, 'deny', 'may not write outputs'),
    c('ingest/task-role', 's3:PutObject', `${xml}/results/x.json`, 'deny', 'may not write results'),
    c('ingest/task-role', 's3:PutObject', `${xml}/a.xml`, 'deny', 'may not write outside its prefixes'),
    c('ingest/task-role', 's3:GetObject', `${xml}/json/a.xml.json`, 'deny', 'reads no outputs'),
    c('ingest/task-role', 's3:GetObject', `${xml}/results/x.json`, 'deny', 'reads no results'),
    c('ingest/task-role', 's3:GetObject', `${xml}/manifests/exec-1.json`, 'deny', 'writes manifests, never reads them'),
    c('ingest/task-role', 's3:ListBucket', xml, 'deny', 'lists no other prefix', { 's3:prefix': 'json/' }),
    c('ingest/task-role', 's3:ListBucket', xml, 'deny', 'lists not the whole bucket'),
    c('ingest/task-role', 's3:DeleteObject', `${xml}/incoming/a.xml`, 'deny', 'deletes nothing'),
    c('ingest/task-role', 's3:GetObject', `${sftpBucket}/${home}/a.xml`, 'deny', 'reads SFTP only over SFTP, never its bucket'),
    c('ingest/task-role', 'secretsmanager:GetSecretValue', secret, 'deny', 'the key is injected by ECS, the task cannot fetch it'),
    // The lister's execution role: its image, its logs and the one secret.
    c('ingest/execution-role', 'secretsmanager:GetSecretValue', secret, 'allow', 'ECS injects SFTP_PRIVATE_KEY'),
    c('ingest/execution-role', 'ecr:BatchGetImage', repo('sftp-lister'), 'allow', 'pulls its image'),
    c('ingest/execution-role', 'logs:PutLogEvents', logs('cluster', 'logs-sftp-lister'), 'allow', 'writes its logs'),
    c('ingest/execution-role', 'secretsmanager:GetSecretValue', secret.replace(/secret:.*$/, 'secret:prod/db-password-AbCdEf'), 'deny', 'no other secret'),
    c('ingest/execution-role', 'ecr:BatchGetImage', repo('converter'), 'deny', "not the converter's image"),
    c('ingest/execution-role', 's3:GetObject', `${xml}/incoming/a.xml`, 'deny', 'no data access'),

    // The state machine runs only the two task definitions on the cluster and passes only their roles.
    c('batch/state-machine-role', 'ecs:RunTask', `${converterTd}:7`, 'allow', 'runs the converter', inCluster),
    c('batch/state-machine-role', 'ecs:RunTask', `${listerTd}:3`, 'allow', 'runs the lister', inCluster),
    c('batch/state-machine-role', 'ecs:RunTask', `${otherTd}:1`, 'deny', 'no other task definition', inCluster),
    c('batch/state-machine-role', 'ecs:RunTask', `${converterTd}:7`, 'deny', 'no other cluster', { 'ecs:cluster': cluster.replace(/[^/]+$/, 'other') }),
    // PropagateTags + tagged task definitions: RunTask creates a tagged task, which ECS also authorizes
    // as ecs:TagResource with ecs:CreateAction = RunTask (tag-on-create).
    c('batch/state-machine-role', 'ecs:TagResource', clusterTask, 'allow', 'tags the tasks RunTask creates (tag-on-create)', { 'ecs:CreateAction': 'RunTask' }),
    c('batch/state-machine-role', 'ecs:TagResource', clusterTask, 'deny', 'tags no existing task (TagResource on its own)'),
    c('batch/state-machine-role', 'ecs:TagResource', clusterTask, 'deny', 'tags on no other create action', { 'ecs:CreateAction': 'CreateService' }),
    c('batch/state-machine-role', 'ecs:TagResource', clusterTask.replace(/task\/[^/]+\//, 'task/other-cluster/'), 'deny', "tags no other cluster's tasks", {
      'ecs:CreateAction': 'RunTask',
    }),
    c('batch/state-machine-role', 'iam:PassRole', roleArn('batch/task-role'), 'allow', "passes the converter's task role to ECS", PASSED_TO_ECS),
    c('batch/state-machine-role', 'iam:PassRole', roleArn('batch/execution-role'), 'allow', "passes the converter's execution role", PASSED_TO_ECS),
    c('batch/state-machine-role', 'iam:PassRole', roleArn('ingest/task-role'), 'allow', "passes the lister's task role", PASSED_TO_ECS),
    c('batch/state-machine-role', 'iam:PassRole', roleArn('ingest/execution-role'), 'allow', "passes the lister's execution role", PASSED_TO_ECS),
    c('batch/state-machine-role', 'iam:PassRole', roleArn('batch/task-role'), 'deny', 'to ECS tasks only', { 'iam:PassedToService': 'lambda.amazonaws.com' }),
    c('batch/state-machine-role', 'iam:PassRole', roleArn('batch/state-machine-role'), 'deny', 'not its own role', PASSED_TO_ECS),
    c('batch/state-machine-role', 'iam:PassRole', roleArn('ingest/schedule-role'), 'deny', 'not the scheduler role', PASSED_TO_ECS),
    c('batch/state-machine-role', 'iam:PassRole', roleArn('sftp/user-role'), 'deny', 'not the SFTP user role', PASSED_TO_ECS),
    c('batch/state-machine-role', 'iam:PassRole', roleArn('network/flow-log-role'), 'deny', 'not the flow-log role', PASSED_TO_ECS),
    c('batch/state-machine-role', 'states:StartExecution', stateMachine, 'allow', 'Distributed Map child executions'),
    c('batch/state-machine-role', 'states:StartExecution', otherMachine, 'deny', 'no other state machine'),
    c('batch/state-machine-role', 'dynamodb:PutItem', lockTable, 'allow', 'takes the ingest lock'),
    c('batch/state-machine-role', 'dynamodb:PutItem', lockTable.replace(/[^/]+$/, 'other'), 'deny', 'no other table'),
    c('batch/state-machine-role', 's3:GetObject', `${xml}/manifests/exec-1.json`, 'allow', 'reads manifests (ItemReader)'),
    c('batch/state-machine-role', 's3:GetObject', `${xml}/results/exec-1/b.json`, 'allow', 'reads batch results'),
    c('batch/state-machine-role', 's3:GetObject', `${xml}/incoming/a.xml`, 'deny', 'never reads the XML itself'),
    c('batch/state-machine-role', 's3:GetObject', `${xml}/json/incoming/a.xml.json`, 'deny', 'reads no outputs'),
    c('batch/state-machine-role', 's3:GetObject', `${xml}/.sftp-lister/state/index.json`, 'deny', "reads not the lister's index"),
    c('batch/state-machine-role', 's3:ListBucket', xml, 'allow', 'lists the input prefix ({"prefix": "incoming/"})', { 's3:prefix': 'incoming/' }),
    c('batch/state-machine-role', 's3:ListBucket', xml, 'allow', 'lists inside the input prefix', { 's3:prefix': 'incoming/2024/' }),
    c('batch/state-machine-role', 's3:ListBucket', xml, 'deny', 'lists no prefix outside the input prefixes', { 's3:prefix': 'json/' }),
    c('batch/state-machine-role', 's3:ListBucket', xml, 'deny', "lists not the lister's index", { 's3:prefix': '.sftp-lister/' }),
    c('batch/state-machine-role', 's3:ListBucket', xml, 'deny', 'lists not the whole bucket'),
    c('batch/state-machine-role', 's3:ListBucket', sftpBucket, 'deny', 'lists not the SFTP bucket', { 's3:prefix': `${home}/` }),
    c('batch/state-machine-role', 's3:GetObject', `${sftpBucket}/${home}/a.xml`, 'deny', 'reads not the SFTP bucket'),
    c('batch/state-machine-role', 's3:PutObject', `${xml}/json/a.xml.json`, 'deny', 'writes no outputs'),
    c('batch/state-machine-role', 's3:DeleteObject', `${xml}/results/exec-1/b.json`, 'deny', 'deletes nothing'),
    c('batch/state-machine-role', 'secretsmanager:GetSecretValue', secret, 'deny', 'never sees the SFTP key'),

    // The scheduler starts only its target.
    c('ingest/schedule-role', 'states:StartExecution', stateMachine, 'allow', 'starts the pipeline'),
    c('ingest/schedule-role', 'sqs:SendMessage', dlq, 'allow', 'dead-letters failed invocations'),
    c('ingest/schedule-role', 'states:StartExecution', otherMachine, 'deny', 'no other state machine'),
    c('ingest/schedule-role', 'ecs:RunTask', `${listerTd}:1`, 'deny', 'cannot run tasks directly', inCluster),
    c('ingest/schedule-role', 'sqs:SendMessage', dlq.replace(/[^:]+$/, 'other-queue'), 'deny', 'no other queue'),

    // The Transfer user reaches only its home folder.
    c('sftp/user-role', 's3:ListBucket', sftpBucket, 'allow', 'lists its home', { 's3:prefix': `${home}/` }),
    c('sftp/user-role', 's3:PutObject', `${sftpBucket}/${home}/in/a.xml`, 'allow', 'uploads into its home'),
    c('sftp/user-role', 's3:GetObject', `${sftpBucket}/${home}/in/a.xml`, 'allow', 'downloads from its home'),
    c('sftp/user-role', 's3:DeleteObject', `${sftpBucket}/${home}/in/a.xml`, 'allow', 'removes its own files (SFTP rm)'),
    c('sftp/user-role', 's3:ListBucket', sftpBucket, 'deny', 'lists no other folder', { 's3:prefix': 'other/' }),
    c('sftp/user-role', 's3:ListBucket', sftpBucket, 'deny', 'cannot list the bucket root'),
    c('sftp/user-role', 's3:GetObject', `${sftpBucket}/other/a.xml`, 'deny', "reads no other user's folder"),
    c('sftp/user-role', 's3:PutObject', `${sftpBucket}/${home}2/a.xml`, 'deny', 'a sibling folder sharing the name prefix is outside its home'),
    c('sftp/user-role', 's3:GetObject', `${xml}/incoming/a.xml`, 'deny', 'no access to the data bucket'),
    c('sftp/user-role', 's3:PutObject', `${sftpBucket}/${home}/a.xml`, 'explicit-deny', 'TLS-only bucket policy', { 'aws:SecureTransport': 'false' }),

    // Service roles: each writes its own log group only.
    c('network/flow-log-role', 'logs:PutLogEvents', logs('network', 'flow-log-group'), 'allow', 'VPC flow logs'),
    c('network/flow-log-role', 'logs:PutLogEvents', logs('sftp', 'transfer-logs'), 'deny', 'no other log group'),
    c('network/flow-log-role', 'logs:CreateLogGroup', logs('network', 'flow-log-group').replace(/:log-stream:.*$/, ''), 'deny', 'creates no log groups'),
  ];
}

/** Who may assume each role (its trust policy). */
const TRUST: Record<string, string> = {
  'batch/task-role': 'ecs-tasks.amazonaws.com',
  'batch/execution-role': 'ecs-tasks.amazonaws.com',
  'batch/state-machine-role': 'states.amazonaws.com',
  'ingest/task-role': 'ecs-tasks.amazonaws.com',
  'ingest/execution-role': 'ecs-tasks.amazonaws.com',
  'ingest/schedule-role': 'scheduler.amazonaws.com',
  'sftp/user-role': 'transfer.amazonaws.com',
  'network/flow-log-role': 'vpc-flow-logs.amazonaws.com',
};

const decision = { allow: 'Allowed', deny: 'ImplicitlyDenied', 'explicit-deny': 'ExplicitlyDenied' } as const;

describe('IAM least privilege (simulated on the synthesized policies)', () => {
  const synth = synthesize({ env: { PIPELINE_SFTP_PUBLIC_KEYS: TEST_PUBLIC_KEY } });
  const model = buildSecurityModel(readSynthesized(synth.outdir));
  const cases = matrix(model);

  test('GIVEN every stack WHEN the roles are collected THEN all of them are found, with their policies', () => {
    expect(Object.keys(model.app.stacks).sort()).toEqual(['batch', 'cluster', 'images', 'ingest', 'monitoring', 'network', 'sftp']);
    expect(model.roles.map((r) => r.key).sort()).toEqual(Object.keys(TRUST).sort());
    for (const role of model.roles) expect(role.policies.length).toBeGreaterThan(0);
  });

  test.each(Object.keys(TRUST))('GIVEN role %s THEN only its service may assume it', (key) => {
    expect(trustedPrincipals(model.role(key).trust)).toEqual([TRUST[key]]);
  });

  test("GIVEN the SFTP user role THEN only users of this account's server may assume it", () => {
    const [st] = statementsOf(model.role('sftp/user-role').trust);
    const server = model.attrs('sftp', 'aws_transfer_server', 'server').id;
    expect(st.Condition).toEqual({
      StringEquals: { 'aws:SourceAccount': '123456789012' },
      ArnLike: { 'aws:SourceArn': `arn:aws:transfer:us-east-1:123456789012:user/${server}/*` },
    });
  });

  test('GIVEN the matrix THEN every role of every stack has at least one allowed and one denied case', () => {
    for (const role of model.roles) {
      const mine = cases.filter((x) => x.role === role.key);
      expect({ role: role.key, allows: mine.some((x) => x.expect === 'allow'), denies: mine.some((x) => x.expect !== 'allow') }).toEqual({
        role: role.key,
        allows: true,
        denies: true,
      });
    }
  });

  test.each(matrix(model).map((x) => [x.role, x.expect, x.action, x.resource.replace(/^arn:aws:[a-z0-9-]*:[a-z0-9-]*:\d*:?/, ''), x]))(
    '%s: %s %s on %s',
    async (_role, _expect, _action, _resource, x) => {
      const got = await simulate(model, model.role(x.role), x);
      expect({ why: x.why, decision: got }).toEqual({ why: x.why, decision: decision[x.expect] });
    },
  );

  test('GIVEN the Transfer user THEN its logical home maps to exactly the folder its role may reach', async () => {
    const user = model.app.stacks.sftp.resource!.aws_transfer_user.user;
    expect(user.home_directory_type).toBe('LOGICAL');
    expect(user.role).toBe('${aws_iam_role.user-role.arn}');
    const mappings = model.resolver.deep('sftp', user.home_directory_mappings) as { entry: string; target: string }[];
    const bucket = model.bucket('sftp-bucket');
    expect(mappings).toEqual([{ entry: '/', target: `/${bucket.name}/${user.user_name}` }]);
    const role = model.role('sftp/user-role');
    expect(await simulate(model, role, { action: 's3:PutObject', resource: `arn:aws:s3:::${mappings[0].target.slice(1)}/x.xml` })).toBe('Allowed');
    expect(await simulate(model, role, { action: 's3:PutObject', resource: `arn:aws:s3:::${bucket.name}/x.xml` })).toBe('ImplicitlyDenied');
  });
});

describe('IAM: input prefixes from the config scope the converter and the state machine', () => {
  // GIVEN a lab-contract user whose XML lives under lab/xml/ as well as the landing prefix
  const model = buildSecurityModel(readSynthesized(synthesize({ env: { PIPELINE_INPUT_PREFIXES: 'incoming/,lab/xml/' } }).outdir));
  const xml = model.bucket('xml-bucket').arn;
  const cases: [string, string, string, Expect, Record<string, string>?][] = [
    ['batch/task-role', 's3:GetObject', `${xml}/lab/xml/a.xml`, 'allow'],
    ['batch/task-role', 's3:GetObject', `${xml}/incoming/a.xml`, 'allow'],
    ['batch/task-role', 's3:GetObject', `${xml}/lab/other/a.xml`, 'deny'],
    ['batch/task-role', 's3:DeleteObject', `${xml}/lab/xml/a.xml`, 'deny'],
    ['batch/state-machine-role', 's3:ListBucket', xml, 'allow', { 's3:prefix': 'lab/xml/2024/' }],
    ['batch/state-machine-role', 's3:ListBucket', xml, 'deny', { 's3:prefix': 'lab/' }],
    ['batch/state-machine-role', 's3:GetObject', `${xml}/lab/xml/a.xml`, 'deny'],
  ];
  test.each(cases.map((x) => [x[0], x[1], x[2].replace(/^arn:aws:s3:::[^/]+/, 'xml-bucket'), x[3], x]))(
    '%s: %s on %s -> %s',
    async (_role, _action, _resource, _expected, x) => {
      const [role, action, resource, expected, context] = x as (typeof cases)[number];
      expect(await simulate(model, model.role(role), { action, resource, context })).toBe(decision[expected]);
    },
  );
});

/** Generic rules, on the default app and on the external-SFTP + NAT variant (a different set of resources). */
describe.each([
  ['defaults (managed Transfer server)', {}],
  [
    'external SFTP host with NAT',
    {
      PIPELINE_SFTP_SOURCE: 'external',
      PIPELINE_NAT: 'true',
      PIPELINE_SFTP_HOST: 'sftp.example.com',
      PIPELINE_SFTP_HOST_KEY_FINGERPRINTS: `SHA256:${'b'.repeat(43)}`,
    },
  ],
])('IAM policy shape: %s', (_name, env) => {
  const model = buildSecurityModel(readSynthesized(synthesize({ env }).outdir));
  const grants = model.roles.flatMap((r) => r.policies.flatMap((p) => statementsOf(p.document).map((st) => ({ role: r.key, policy: p.name, st }))));

  test('GIVEN every permission policy THEN no Allow names "*", "service:*" or any wildcard action, nor uses NotAction/NotResource', () => {
    expect(grants.length).toBeGreaterThan(10);
    const bad = grants.filter(
      ({ st }) =>
        st.Effect === 'Allow' &&
        (asArray(st.Action).some((a) => a.includes('*') || a.includes('?')) || st.NotAction !== undefined || st.NotResource !== undefined),
    );
    expect(bad).toEqual([]);
  });

  test('GIVEN every permission policy THEN "*" resources appear only for the listed actions without resource-level permissions', () => {
    const wildcard = grants.filter(({ st }) => asArray(st.Resource).includes('*'));
    const actions = [...new Set(wildcard.flatMap(({ st }) => asArray(st.Action)))];
    expect(actions.filter((a) => !(a in WILDCARD_RESOURCE_ALLOWED))).toEqual([]);
    // A "*" statement mixes in no resource-scoped action by accident.
    for (const { st } of wildcard) expect(asArray(st.Resource)).toEqual(['*']);
  });

  test('GIVEN the allow-list THEN IAM service data confirms each action has no resource-level permissions', async () => {
    for (const action of Object.keys(WILDCARD_RESOURCE_ALLOWED)) {
      const [service, name] = action.split(':');
      expect({ action, wildcardOnly: await isWildcardOnlyAction(service, name) }).toEqual({ action, wildcardOnly: true });
    }
  });

  test('GIVEN every bucket policy and trust policy THEN no Allow is granted to "*"', () => {
    const docs = [...model.buckets.flatMap((b) => (b.policy ? [b.policy] : [])), ...model.roles.map((r) => r.trust)];
    const open = docs
      .flatMap((d) => statementsOf(d))
      .filter((st) => st.Effect === 'Allow' && JSON.stringify(st.Principal ?? null).match(/^"\*"$|"AWS":"\*"|"AWS":\["\*"\]/));
    expect(open).toEqual([]);
  });

  test('GIVEN the bucket policies THEN the only service-wide action is the TLS-only Deny (a deny must cover every S3 action)', () => {
    const wide = model.buckets.flatMap((b) => statementsOf(b.policy!)).filter((st) => asArray(st.Action).some((a) => a.includes('*')));
    for (const st of wide) {
      expect(st).toMatchObject({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } });
    }
  });
});
