// The configuration module: defaults with no input, env/context precedence, and invalid values that
// fail with a message naming the setting.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'cdktf';
import { fileContext, main } from '../../main';
import { AWS_REGIONS, cidrSubnet, ConfigError, loadConfig, scheduleProblem, SETTINGS, settingsTable } from '../../stacks/config';
import { TEST_PUBLIC_KEY } from './synth';

const FINGERPRINT = 'SHA256:' + 'A'.repeat(42) + 'E';

describe('defaults', () => {
  test('GIVEN no input WHEN loading THEN every setting has its documented default', () => {
    const config = loadConfig({ env: {}, context: {} });
    expect(config).toEqual({
      namePrefix: 'xmlpipe',
      stage: 'dev',
      region: 'us-east-1',
      azCount: 2,
      vpcCidr: '10.20.0.0/16',
      natEnabled: false,
      sftp: { kind: 'transfer', userName: 'sftpuser', publicKeys: [], allowedCidrs: [] },
      scheduleExpression: 'rate(5 minutes)',
      listerTask: { cpu: 256, memoryMiB: 512 },
      converterTask: { cpu: 1024, memoryMiB: 2048 },
      cpuArchitecture: 'X86_64',
      logRetentionDays: 30,
      stateBackend: { kind: 'local' },
      batchSize: 50,
      maxConcurrency: 20,
      toleratedFailurePercentage: 5,
      converterConcurrency: 4,
      inputPrefixes: ['incoming/'],
      sftpRemoteDir: '.',
      sftpInclude: [],
      sftpExclude: [],
      minFileAgeSeconds: 60,
      filesPerRun: 10000,
      batchMaxFiles: 200,
      batchMaxBytes: 268435456,
      listerRetries: 3,
      converterCapacity: 'FARGATE',
      listerTimeoutSeconds: 1800,
      converterTimeoutSeconds: 3600,
      taskAttempts: 3,
      scheduleRetryAttempts: 3,
      scheduleMaxEventAgeSeconds: 300,
      sftpKeyInstalled: false,
      scheduleEnabled: false,
      alarmEmails: [],
      alarmListerFailures: 3,
      alarmConversionFailures: 1,
      alarmNoIngestMinutes: 0,
      runbookUrl: 'docs/runbook.md',
      sftpCompletion: 'leave',
      productionStage: false,
      forceDestroy: true,
      secretRecoveryDays: 0,
    });
  });

  test.each([
    ['dev', false],
    ['qa', false],
    ['preprod', false],
    ['prod', true],
    ['production', true],
    ['prd', true],
    ['prod2', true],
    ['live', true],
  ])('GIVEN stage %s WHEN loading THEN it is production-like: %s, and teardown protections follow', (stage, production) => {
    const config = loadConfig({ env: { PIPELINE_STAGE: stage } });
    expect(config).toMatchObject({ productionStage: production, forceDestroy: !production, secretRecoveryDays: production ? 30 : 0 });
  });

  test('GIVEN a production stage WHEN teardown settings are set explicitly THEN they win', () => {
    const config = loadConfig({ env: { PIPELINE_STAGE: 'prod', PIPELINE_FORCE_DESTROY: 'true', PIPELINE_SECRET_RECOVERY_DAYS: '7' } });
    expect(config).toMatchObject({ productionStage: true, forceDestroy: true, secretRecoveryDays: 7 });
  });

  test('GIVEN the settings table WHEN reading it THEN every env variable is unique and PIPELINE_-prefixed', () => {
    const envs = Object.values(SETTINGS).map((s) => s.env);
    expect(new Set(envs).size).toBe(envs.length);
    for (const e of envs) expect(e).toMatch(/^PIPELINE_[A-Z0-9_]+$/);
  });
});

test('GIVEN the README configuration table WHEN compared with the settings table THEN it is exactly the generated one, defaults included', () => {
  const readme = fs.readFileSync(path.resolve(__dirname, '..', '..', 'README.md'), 'utf8');
  const start = readme.indexOf('| environment variable | context key | default | meaning |');
  const end = readme.indexOf('\n\n', start);
  // On a difference: paste `node -e "console.log(require('./dist/stacks/config').settingsTable())"` (after npm run build).
  expect(readme.slice(start, end)).toBe(settingsTable());
  expect(settingsTable()).toContain('| `PIPELINE_FILES_PER_RUN` | `filesPerRun` | 10000 |');
  expect(settingsTable()).toContain('| `PIPELINE_STAGE` | `stage` | dev |');
});

test('GIVEN every PIPELINE_* variable the docs name WHEN compared with the settings THEN each is a setting (a doc never sells one that cannot be reached)', () => {
  const root = path.resolve(__dirname, '..', '..');
  const docs = [
    'README.md',
    ...fs.readdirSync(path.join(root, 'docs')).map((f) => `docs/${f}`),
    ...fs.readdirSync(path.join(root, 'images')).map((d) => `images/${d}/README.md`),
  ].filter((f) => f.endsWith('.md') && fs.existsSync(path.join(root, f)));
  expect(docs.length).toBeGreaterThan(3);
  // Named as what is NOT a setting: the typo example, and a variable the app refuses.
  const notSettings = new Set(['PIPELINE_STAGES', 'PIPELINE_SFTP_PRIVATE_KEY']);
  const known = new Set(Object.values(SETTINGS).map((s) => s.env));
  const unknown = docs
    .flatMap((f) => [...fs.readFileSync(path.join(root, f), 'utf8').matchAll(/PIPELINE_[A-Z0-9_]+/g)].map((m) => `${f}: ${m[0]}`))
    .filter((hit) => {
      const name = hit.split(': ')[1];
      return !known.has(name) && !notSettings.has(name);
    });
  expect(unknown).toEqual([]);
});

test('GIVEN the README Deploy section WHEN read THEN the schedule is turned on only after the key is in the secret, and teardown comes last', () => {
  const readme = fs.readFileSync(path.resolve(__dirname, '..', '..', 'README.md'), 'utf8');
  const deploy = readme.slice(readme.indexOf('## Deploy'), readme.indexOf('\n## ', readme.indexOf('## Deploy') + 1));
  const steps = [
    "npx cdktf deploy '*'",
    'put-secret-value',
    'PIPELINE_SFTP_KEY_INSTALLED=true',
    'npx cdktf deploy ingest',
    'list-subscriptions-by-topic',
    "npx cdktf destroy '*'",
  ];
  const at = steps.map((s) => deploy.indexOf(s));
  expect(at.filter((i) => i < 0)).toEqual([]);
  expect([...at].sort((a, b) => a - b)).toEqual(at);
});

describe('sources and precedence', () => {
  test('GIVEN context values WHEN loading THEN they override defaults, typed values included', () => {
    const config = loadConfig({
      env: {},
      context: { stage: 'prod', azCount: 3, natEnabled: true, sftpPublicKeys: [TEST_PUBLIC_KEY], converterCpu: 2048, converterMemory: 8192 },
    });
    expect(config.stage).toBe('prod');
    expect(config.azCount).toBe(3);
    expect(config.natEnabled).toBe(true);
    expect(config.sftp).toMatchObject({ kind: 'transfer', publicKeys: [TEST_PUBLIC_KEY] });
    expect(config.converterTask).toEqual({ cpu: 2048, memoryMiB: 8192 });
  });

  test('GIVEN batching settings in env and context WHEN loading THEN they are typed, at their bounds included', () => {
    // 10000 tasks need 3 AZs of a /16 (4086 task addresses per /20 subnet).
    expect(
      loadConfig({
        env: {
          PIPELINE_BATCH_SIZE: '512',
          PIPELINE_MAX_CONCURRENCY: '10000',
          PIPELINE_AZ_COUNT: '3',
          PIPELINE_TOLERATED_FAILURE_PERCENTAGE: '12.5',
          PIPELINE_CONVERTER_CONCURRENCY: '64',
        },
      }),
    ).toMatchObject({ batchSize: 512, maxConcurrency: 10000, toleratedFailurePercentage: 12.5, converterConcurrency: 64 });
    expect(loadConfig({ env: {}, context: { batchSize: 1, maxConcurrency: 1, toleratedFailurePercentage: 0, converterConcurrency: 1 } })).toMatchObject({
      batchSize: 1,
      maxConcurrency: 1,
      toleratedFailurePercentage: 0,
      converterConcurrency: 1,
    });
  });

  test('GIVEN input prefixes in env and context WHEN loading THEN they are a list', () => {
    expect(loadConfig({ env: { PIPELINE_INPUT_PREFIXES: 'incoming/, lab/xml/' } }).inputPrefixes).toEqual(['incoming/', 'lab/xml/']);
    expect(loadConfig({ env: {}, context: { inputPrefixes: ['incoming/', 'partner-a/'] } }).inputPrefixes).toEqual(['incoming/', 'partner-a/']);
  });

  test('GIVEN both env and context WHEN loading THEN the environment wins', () => {
    const config = loadConfig({ env: { PIPELINE_STAGE: 'qa', PIPELINE_AZ_COUNT: '4' }, context: { stage: 'prod', azCount: 3 } });
    expect(config.stage).toBe('qa');
    expect(config.azCount).toBe(4);
  });

  test('GIVEN several public keys in one env variable WHEN loading THEN each line is one key', () => {
    // an ed25519 key body labelled ssh-rsa
    const mislabelled = TEST_PUBLIC_KEY.replace('ssh-ed25519', 'ssh-rsa');
    // ssh-rsa blob that encodes its own type name (the prefix of any real RSA key)
    const rsa = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB rsa@h1';
    const config = loadConfig({ env: { PIPELINE_SFTP_PUBLIC_KEYS: `${TEST_PUBLIC_KEY}\n${rsa}\n` } });
    expect(config.sftp.kind === 'transfer' && config.sftp.publicKeys).toEqual([TEST_PUBLIC_KEY, rsa]);
    expect(() => loadConfig({ env: { PIPELINE_SFTP_PUBLIC_KEYS: mislabelled } })).toThrow(
      /sftpPublicKeys.*key #1 has a key body that does not encode a ssh-rsa key/,
    );
  });

  test('GIVEN an external host with NAT and a fingerprint WHEN loading THEN the external source is configured', () => {
    const config = loadConfig({
      env: {
        PIPELINE_SFTP_SOURCE: 'external',
        PIPELINE_SFTP_HOST: 'sftp.example.com',
        PIPELINE_SFTP_PORT: '2222',
        PIPELINE_SFTP_HOST_KEY_FINGERPRINTS: `${FINGERPRINT}=, ${FINGERPRINT.replace('E', 'Q')}`,
        PIPELINE_NAT: 'yes',
      },
    });
    expect(config.sftp).toEqual({
      kind: 'external',
      host: 'sftp.example.com',
      port: 2222,
      userName: 'sftpuser',
      hostKeyFingerprints: [FINGERPRINT, FINGERPRINT.replace('E', 'Q')],
    });
  });

  test('GIVEN a state bucket WHEN loading THEN the S3 backend defaults its region and key prefix', () => {
    expect(loadConfig({ env: { PIPELINE_STATE_BUCKET: 'my-tf-state', PIPELINE_STAGE: 'prod' } }).stateBackend).toEqual({
      kind: 's3',
      bucket: 'my-tf-state',
      region: 'us-east-1',
      keyPrefix: 'xmlpipe/prod',
    });
  });

  test('GIVEN cdktf context on the App WHEN main-style loading THEN the context reaches the config', () => {
    const app = new App({ context: { vpcCidr: '10.99.0.0/20' } });
    expect(loadConfig({ env: {}, context: app.node.getAllContext() }).vpcCidr).toBe('10.99.0.0/20');
  });
});

describe('invalid configuration fails with a message naming the setting', () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ['malformed CIDR', { PIPELINE_VPC_CIDR: '10.0.0/16' }, /vpcCidr \(env PIPELINE_VPC_CIDR, context "vpcCidr"\): "10\.0\.0\/16" is not an IPv4 CIDR/],
    ['CIDR octet over 255', { PIPELINE_VPC_CIDR: '10.300.0.0/16' }, /vpcCidr.*not an IPv4 CIDR/],
    ['CIDR too large', { PIPELINE_VPC_CIDR: '10.0.0.0/8' }, /vpcCidr.*prefix length from \/16 to \/24/],
    ['CIDR with host bits', { PIPELINE_VPC_CIDR: '10.0.1.0/16' }, /vpcCidr.*host bits set \(the network address is 10\.0\.0\.0\/16\)/],
    ['zero AZs', { PIPELINE_AZ_COUNT: '0' }, /azCount.*at least 2.*got 0/],
    ['one AZ', { PIPELINE_AZ_COUNT: '1' }, /azCount.*at least 2/],
    ['AZ count not a number', { PIPELINE_AZ_COUNT: 'two' }, /azCount.*expected an integer, got "two"/],
    ['too many AZs', { PIPELINE_AZ_COUNT: '7' }, /azCount.*at most 6/],
    [
      'external SFTP without host key',
      { PIPELINE_SFTP_SOURCE: 'external', PIPELINE_SFTP_HOST: 'h.example.com', PIPELINE_NAT: 'true' },
      /sftpHostKeyFingerprints.*required when sftpSource is "external"/,
    ],
    ['external SFTP without host', { PIPELINE_SFTP_SOURCE: 'external', PIPELINE_NAT: 'true' }, /sftpHost \(env PIPELINE_SFTP_HOST.*required/],
    [
      'external SFTP without NAT',
      { PIPELINE_SFTP_SOURCE: 'external', PIPELINE_SFTP_HOST: 'h.example.com', PIPELINE_SFTP_HOST_KEY_FINGERPRINTS: FINGERPRINT },
      /natEnabled.*must be true when sftpSource is "external"/,
    ],
    [
      'fingerprint in MD5 form',
      { PIPELINE_SFTP_SOURCE: 'external', PIPELINE_SFTP_HOST: 'h', PIPELINE_NAT: 'true', PIPELINE_SFTP_HOST_KEY_FINGERPRINTS: 'MD5:12:34' },
      /sftpHostKeyFingerprints.*not an OpenSSH SHA256 fingerprint/,
    ],
    [
      'fingerprint for the managed server',
      { PIPELINE_SFTP_HOST_KEY_FINGERPRINTS: FINGERPRINT },
      /sftpHostKeyFingerprints.*only applies to sftpSource "external"/,
    ],
    ['port for the managed server', { PIPELINE_SFTP_PORT: '2222' }, /sftpPort.*only applies to sftpSource "external"/],
    ['unknown SFTP source', { PIPELINE_SFTP_SOURCE: 'ftp' }, /sftpSource.*expected "transfer" or "external", got "ftp"/],
    ['bad port', { PIPELINE_SFTP_SOURCE: 'external', PIPELINE_SFTP_HOST: 'h', PIPELINE_NAT: 'true', PIPELINE_SFTP_PORT: '70000' }, /sftpPort.*1-65535/],
    ['not a public key', { PIPELINE_SFTP_PUBLIC_KEYS: 'hello world' }, /sftpPublicKeys.*key #1 is not an OpenSSH public key line/],
    ['bad name prefix', { PIPELINE_NAME_PREFIX: 'My_App' }, /namePrefix.*"My_App" must be/],
    ['bad stage', { PIPELINE_STAGE: 'Production!' }, /stage.*1-10 lower-case/],
    ['bad region', { PIPELINE_REGION: 'mars-1' }, /region.*"mars-1" is not an AWS Region; see https:\/\/docs\.aws\.amazon\.com/],
    [
      'region that looks right but does not exist',
      { PIPELINE_REGION: 'us-east-7' },
      /region \(env PIPELINE_REGION, context "region"\): "us-east-7" is not an AWS Region \(did you mean us-east-1\?\)/,
    ],
    [
      'state region that does not exist',
      { PIPELINE_STATE_BUCKET: 'tf-state', PIPELINE_STATE_REGION: 'eu-wset-1' },
      /stateRegion.*"eu-wset-1" is not an AWS Region \(did you mean eu-west-1\?\)/,
    ],
    ['bad boolean', { PIPELINE_NAT: 'maybe' }, /natEnabled.*expected true or false, got "maybe"/],
    ['bad schedule', { PIPELINE_SCHEDULE: 'every 5 minutes' }, /scheduleExpression.*not a schedule expression/],
    ['rate with wrong unit number', { PIPELINE_SCHEDULE: 'rate(1 minutes)' }, /scheduleExpression.*singular unit/],
    ['cron with 5 fields', { PIPELINE_SCHEDULE: 'cron(0 12 * * ?)' }, /scheduleExpression.*6 fields/],
    ['Fargate CPU that does not exist', { PIPELINE_LISTER_CPU: '300' }, /listerCpu.*300 is not a Fargate CPU value/],
    [
      'memory not valid for the CPU',
      { PIPELINE_CONVERTER_CPU: '256', PIPELINE_CONVERTER_MEMORY: '4096' },
      /converterMemory.*4096 MiB is not valid with 256 CPU units/,
    ],
    ['architecture', { PIPELINE_CPU_ARCHITECTURE: 'sparc' }, /cpuArchitecture.*expected "X86_64" or "ARM64", got "sparc"/],
    ['log retention', { PIPELINE_LOG_RETENTION_DAYS: '10' }, /logRetentionDays.*10 is not a CloudWatch Logs retention value/],
    ['state bucket name', { PIPELINE_STATE_BUCKET: 'Bad_Bucket' }, /stateBucket.*not an S3 bucket name/],
    [
      'state bucket name S3 reserves',
      { PIPELINE_STATE_BUCKET: 'tf-state--x-s3' },
      /stateBucket.*"tf-state--x-s3" is not an S3 bucket name: must not end with "--x-s3"/,
    ],
    ['state key prefix without bucket', { PIPELINE_STATE_KEY_PREFIX: 'x' }, /stateKeyPrefix.*only applies with stateBucket/],
    ['batch size zero', { PIPELINE_BATCH_SIZE: '0' }, /batchSize \(env PIPELINE_BATCH_SIZE, context "batchSize"\): must be 1-512 .*8 KiB.*got 0/],
    ['batch size beyond what 6 KiB of keys can hold', { PIPELINE_BATCH_SIZE: '513' }, /batchSize.*must be 1-512.*got 513/],
    ['batch size not a number', { PIPELINE_BATCH_SIZE: 'fifty' }, /batchSize.*expected an integer, got "fifty"/],
    ['concurrency zero', { PIPELINE_MAX_CONCURRENCY: '0' }, /maxConcurrency \(env PIPELINE_MAX_CONCURRENCY.*must be 1-10000.*got 0/],
    ['concurrency over the Distributed Map limit', { PIPELINE_MAX_CONCURRENCY: '10001' }, /maxConcurrency.*must be 1-10000.*got 10001/],
    [
      'failure percentage over 100',
      { PIPELINE_TOLERATED_FAILURE_PERCENTAGE: '101' },
      /toleratedFailurePercentage \(env PIPELINE_TOLERATED_FAILURE_PERCENTAGE.*must be 0-100, got 101/,
    ],
    ['negative failure percentage', { PIPELINE_TOLERATED_FAILURE_PERCENTAGE: '-1' }, /toleratedFailurePercentage.*expected a number from 0 to 100, got "-1"/],
    [
      'failure percentage with a % sign',
      { PIPELINE_TOLERATED_FAILURE_PERCENTAGE: '5%' },
      /toleratedFailurePercentage.*expected a number from 0 to 100, got "5%"/,
    ],
    ['converter concurrency zero', { PIPELINE_CONVERTER_CONCURRENCY: '0' }, /converterConcurrency \(env PIPELINE_CONVERTER_CONCURRENCY.*must be 1-64, got 0/],
    ['converter concurrency too high', { PIPELINE_CONVERTER_CONCURRENCY: '65' }, /converterConcurrency.*must be 1-64, got 65/],
    [
      'input prefix without trailing slash',
      { PIPELINE_INPUT_PREFIXES: 'incoming/,lab' },
      /inputPrefixes \(env PIPELINE_INPUT_PREFIXES, context "inputPrefixes"\): "lab" must be a key prefix ending in "\/"/,
    ],
    ['input prefix with a wildcard', { PIPELINE_INPUT_PREFIXES: 'incoming/,l*/' }, /inputPrefixes.*"l\*\/" must be a key prefix.*without "\*"/],
    ['input prefix of the whole bucket', { PIPELINE_INPUT_PREFIXES: '/' }, /inputPrefixes.*"\/" must be a key prefix.*not starting with "\/"/],
    ['input prefix inside another', { PIPELINE_INPUT_PREFIXES: 'incoming/,incoming/2024/' }, /inputPrefixes.*"incoming\/2024\/" is inside "incoming\/"/],
    ['input prefix listed twice', { PIPELINE_INPUT_PREFIXES: 'lab/,incoming/,lab/' }, /inputPrefixes.*lists a prefix twice/],
    ['files per run zero', { PIPELINE_FILES_PER_RUN: '0' }, /filesPerRun \(env PIPELINE_FILES_PER_RUN, context "filesPerRun"\): must be 1-100000, got 0/],
    ['files per run too high', { PIPELINE_FILES_PER_RUN: '100001' }, /filesPerRun.*must be 1-100000, got 100001/],
    [
      'completion not known',
      { PIPELINE_SFTP_COMPLETION: 'archive' },
      /sftpCompletion \(env PIPELINE_SFTP_COMPLETION, context "sftpCompletion"\): expected "leave" or "move" or "delete", got "archive"/,
    ],
    [
      'move without a folder',
      { PIPELINE_SFTP_COMPLETION: 'move' },
      /sftpCompletionMoveDir \(env PIPELINE_SFTP_COMPLETION_MOVE_DIR.*required when sftpCompletion is "move"/,
    ],
    [
      'move folder without move',
      { PIPELINE_SFTP_COMPLETION: 'delete', PIPELINE_SFTP_COMPLETION_MOVE_DIR: 'done' },
      /sftpCompletionMoveDir.*only applies when sftpCompletion is "move"/,
    ],
    [
      'move folder that is the listed folder',
      { PIPELINE_SFTP_REMOTE_DIR: '/outbox', PIPELINE_SFTP_COMPLETION: 'move', PIPELINE_SFTP_COMPLETION_MOVE_DIR: '/outbox/' },
      /sftpCompletionMoveDir.*"\/outbox\/" is the listed folder sftpRemoteDir "\/outbox": moved files would be listed again/,
    ],
    ['negative minimum age', { PIPELINE_MIN_FILE_AGE_SECONDS: '-1' }, /minFileAgeSeconds.*must be 0-86400, got -1/],
    ['batch max files zero', { PIPELINE_BATCH_MAX_FILES: '0' }, /batchMaxFiles.*must be 1-10000, got 0/],
    ['batch max bytes under 1 MiB', { PIPELINE_BATCH_MAX_BYTES: '1048575' }, /batchMaxBytes.*must be 1048576-68719476736, got 1048575/],
    ['lister retries too high', { PIPELINE_LISTER_RETRIES: '21' }, /listerRetries.*must be 0-20, got 21/],
    ['capacity provider', { PIPELINE_CONVERTER_CAPACITY: 'EC2' }, /converterCapacity.*expected "FARGATE" or "FARGATE_SPOT", got "EC2"/],
    ['lister timeout under a minute', { PIPELINE_LISTER_TIMEOUT_SECONDS: '59' }, /listerTimeoutSeconds.*must be 60-604800, got 59/],
    ['converter timeout over a week', { PIPELINE_CONVERTER_TIMEOUT_SECONDS: '604801' }, /converterTimeoutSeconds.*must be 60-604800, got 604801/],
    ['task attempts zero', { PIPELINE_TASK_ATTEMPTS: '0' }, /taskAttempts.*must be 1-10, got 0/],
    ['schedule retries over the Scheduler limit', { PIPELINE_SCHEDULE_RETRY_ATTEMPTS: '186' }, /scheduleRetryAttempts.*must be 0-185, got 186/],
    ['schedule event age under a minute', { PIPELINE_SCHEDULE_MAX_EVENT_AGE_SECONDS: '30' }, /scheduleMaxEventAgeSeconds.*must be 60-86400, got 30/],
    ['key installed but no public key for the managed server', { PIPELINE_SFTP_KEY_INSTALLED: 'true' }, /sftpKeyInstalled.*sftpPublicKeys is empty/],
    ['alarm e-mail without a domain', { PIPELINE_ALARM_EMAILS: 'ops@example.com,ops' }, /alarmEmails.*"ops" is not an e-mail address/],
    ['lister failure threshold zero', { PIPELINE_ALARM_LISTER_FAILURES: '0' }, /alarmListerFailures.*must be 1-100, got 0/],
    ['conversion failure threshold zero', { PIPELINE_ALARM_CONVERSION_FAILURES: '0' }, /alarmConversionFailures.*must be 1-100000, got 0/],
    ['no-ingest alarm period too short', { PIPELINE_ALARM_NO_INGEST_MINUTES: '5' }, /alarmNoIngestMinutes.*must be 0 \(off\) or 10-10080, got 5/],
    [
      'runbook URL over plain http',
      { PIPELINE_RUNBOOK_URL: 'http://git.example.com/docs/runbook.md' },
      /runbookUrl \(env PIPELINE_RUNBOOK_URL, context "runbookUrl"\): "http:\/\/git\.example\.com\/docs\/runbook\.md" must be an https:\/\/ URL/,
    ],
    [
      'runbook URL with its own fragment',
      { PIPELINE_RUNBOOK_URL: 'https://git.example.com/runbook.md#top' },
      /runbookUrl.*without spaces, "#".*each alarm appends #<section>/,
    ],
    ['runbook URL with a space', { PIPELINE_RUNBOOK_URL: 'docs/run book.md' }, /runbookUrl.*without spaces/],
    ['runbook URL that does not parse', { PIPELINE_RUNBOOK_URL: 'https://' }, /runbookUrl.*"https:\/\/" is not a valid URL/],
    ['secret recovery window AWS refuses', { PIPELINE_SECRET_RECOVERY_DAYS: '3' }, /secretRecoveryDays.*must be 0 \(deleted at once\) or 7-30, got 3/],
    ['force destroy not a boolean', { PIPELINE_FORCE_DESTROY: 'please' }, /forceDestroy.*expected true or false, got "please"/],
    [
      'input prefixes without the landing prefix',
      { PIPELINE_INPUT_PREFIXES: 'lab/' },
      /inputPrefixes \(env PIPELINE_INPUT_PREFIXES, context "inputPrefixes"\): \[lab\/\] must include the lister's landing prefix "incoming\/"/,
    ],
    [
      'input prefix holding the outputs',
      { PIPELINE_INPUT_PREFIXES: 'incoming/,json/' },
      /inputPrefixes.*"json\/" and outputPrefix "json\/" must not contain one another/,
    ],
    ['input prefix inside the results', { PIPELINE_INPUT_PREFIXES: 'incoming/,results/old/' }, /inputPrefixes.*"results\/old\/" and resultPrefix "results\/"/],
    [
      'input prefix of the lister index',
      { PIPELINE_INPUT_PREFIXES: 'incoming/,.sftp-lister/' },
      /inputPrefixes.*"\.sftp-lister\/" and the lister's index prefix/,
    ],
    ['allowed CIDR malformed', { PIPELINE_SFTP_ALLOWED_CIDRS: '192.168.0.0/33' }, /sftpAllowedCidrs.*not an IPv4 CIDR/],
    // Names AWS refuses at apply time (stacks/config/names.ts NAME_RULES cites each rule).
    [
      'prefix S3 reserves for IDNs',
      { PIPELINE_NAME_PREFIX: 'xn--ab' },
      /namePrefix \(env PIPELINE_NAME_PREFIX, context "namePrefix"\): "xn--ab" \(with stage "dev"\) gives the S3 bucket name "xn--ab-dev-sftp-\d{26}".*must not start with "xn--"/,
    ],
    [
      'prefix with a double hyphen',
      { PIPELINE_NAME_PREFIX: 'ab--cd' },
      /namePrefix.*"ab--cd" \(with stage "dev"\) gives the ECR repository name "ab--cd-dev\/sftp-lister".*separated by one "\.", "_" or "-"/,
    ],
    ['prefix S3 reserves (sthree-)', { PIPELINE_NAME_PREFIX: 'sthree' }, /namePrefix.*S3 bucket name "sthree-dev-sftp-\d+".*"sthree-"/],
    ['prefix S3 reserves (amzn-s3-demo-)', { PIPELINE_NAME_PREFIX: 'amzn-s3-demo-lab' }, /namePrefix.*S3 bucket name.*"amzn-s3-demo-"/],
    [
      'prefix EC2 reserves for security group ids',
      { PIPELINE_NAME_PREFIX: 'sg' },
      /namePrefix.*security group name "sg-dev-endpoints".*must not start with "sg-"/,
    ],
    ['prefix SSM reserves (aws)', { PIPELINE_NAME_PREFIX: 'awsdata' }, /namePrefix.*SSM parameter name "\/awsdata\/dev\/repo_uri_sftp".*"aws" or "ssm"/],
    ['prefix SSM reserves (ssm)', { PIPELINE_NAME_PREFIX: 'ssm-lab' }, /namePrefix.*SSM parameter name "\/ssm-lab\/dev\/repo_uri_sftp"/],
    // Address arithmetic: /24 -> /28 subnets: 16 - 5 reserved - 4 interface endpoints - 1 Transfer endpoint = 6 per AZ.
    [
      'a /24 VPC for the default concurrency',
      { PIPELINE_VPC_CIDR: '10.0.0.0/24' },
      /vpcCidr \(env PIPELINE_VPC_CIDR, context "vpcCidr"\): "10\.0\.0\.0\/24" gives \/28 subnets with 6 addresses per AZ for tasks \(16 - 5 reserved by AWS - 4 interface endpoints - 1 Transfer endpoint\); maxConcurrency 20 converter tasks \+ 1 lister task spread over azCount 2 AZs need 11 per AZ/,
    ],
    [
      'a /24 VPC one task over',
      { PIPELINE_VPC_CIDR: '10.0.0.0/24', PIPELINE_MAX_CONCURRENCY: '12' },
      /vpcCidr.*6 addresses per AZ.*maxConcurrency 12 converter tasks \+ 1 lister task spread over azCount 2 AZs need 7 per AZ/,
    ],
    [
      'more tasks than a /16 over 2 AZs holds',
      { PIPELINE_MAX_CONCURRENCY: '10000' },
      /vpcCidr.*"10\.20\.0\.0\/16" gives \/20 subnets with 4086 addresses per AZ.*maxConcurrency 10000.*azCount 2 AZs need 5001 per AZ/,
    ],
  ];
  test.each(cases)('GIVEN %s WHEN loading THEN a ConfigError names the setting', (_name, env, message) => {
    expect(() => loadConfig({ env })).toThrow(ConfigError);
    expect(() => loadConfig({ env })).toThrow(message);
  });

  test('GIVEN a private key where a public key belongs WHEN loading THEN it is refused without echoing the key', () => {
    const secret = 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ-H1-PLANTED';
    const privateKey = `-----BEGIN OPENSSH PRIVATE KEY-----\n${secret}\n-----END OPENSSH PRIVATE KEY-----`;
    let message = '';
    try {
      loadConfig({ context: { sftpPublicKeys: [privateKey] } });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/sftpPublicKeys.*looks like a PRIVATE key/);
    expect(message).not.toContain(secret);
  });

  test('GIVEN an invalid env variable WHEN the app (main) synthesizes THEN synth fails with the ConfigError', () => {
    const before = process.env.PIPELINE_AZ_COUNT;
    process.env.PIPELINE_AZ_COUNT = '0';
    try {
      expect(() => main()).toThrow(/Invalid configuration: azCount \(env PIPELINE_AZ_COUNT, context "azCount"\): must be at least 2/);
    } finally {
      if (before === undefined) delete process.env.PIPELINE_AZ_COUNT;
      else process.env.PIPELINE_AZ_COUNT = before;
    }
  });
});

describe('VPC address capacity', () => {
  test('GIVEN a /24 VPC WHEN the tasks fit exactly THEN it is accepted; without the Transfer endpoint one more task fits', () => {
    expect(loadConfig({ env: { PIPELINE_VPC_CIDR: '10.0.0.0/24', PIPELINE_MAX_CONCURRENCY: '11' } }).maxConcurrency).toBe(11);
    const external = {
      PIPELINE_SFTP_SOURCE: 'external',
      PIPELINE_SFTP_HOST: 'h.example.com',
      PIPELINE_NAT: 'true',
      PIPELINE_SFTP_HOST_KEY_FINGERPRINTS: FINGERPRINT,
      PIPELINE_VPC_CIDR: '10.0.0.0/24',
    };
    expect(loadConfig({ env: { ...external, PIPELINE_MAX_CONCURRENCY: '13' } }).maxConcurrency).toBe(13);
    expect(() => loadConfig({ env: { ...external, PIPELINE_MAX_CONCURRENCY: '14' } })).toThrow(
      /vpcCidr.*7 addresses per AZ for tasks \(16 - 5 reserved by AWS - 4 interface endpoints\).*need 8 per AZ/,
    );
  });

  test('GIVEN a /24 VPC over 3 AZs WHEN the default concurrency THEN more AZs make it fit', () => {
    expect(() => loadConfig({ env: { PIPELINE_VPC_CIDR: '10.0.0.0/24', PIPELINE_AZ_COUNT: '3' } })).toThrow(/need 7 per AZ/);
    expect(loadConfig({ env: { PIPELINE_VPC_CIDR: '10.0.0.0/23', PIPELINE_AZ_COUNT: '3' } }).vpcCidr).toBe('10.0.0.0/23');
  });
});

describe('cidrSubnet', () => {
  test('GIVEN a /16 WHEN taking /20 subnets THEN they match Terraform cidrsubnet()', () => {
    expect(cidrSubnet('10.20.0.0/16', 4, 0)).toBe('10.20.0.0/20');
    expect(cidrSubnet('10.20.0.0/16', 4, 1)).toBe('10.20.16.0/20');
    expect(cidrSubnet('10.20.0.0/16', 4, 8)).toBe('10.20.128.0/20');
    expect(cidrSubnet('192.168.4.0/24', 4, 15)).toBe('192.168.4.240/28');
    expect(() => cidrSubnet('10.0.0.0/30', 4, 0)).toThrow(/cannot take subnet/);
  });
});

describe('cdktf.json as main.ts reads it', () => {
  const write = (text: string) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h5-cdktf-json-'));
    fs.writeFileSync(path.join(dir, 'cdktf.json'), text);
    return path.join(dir, 'cdktf.json');
  };
  const saved = process.env.CDKTF_CONTEXT_JSON;
  beforeEach(() => delete process.env.CDKTF_CONTEXT_JSON);
  afterEach(() => (saved === undefined ? delete process.env.CDKTF_CONTEXT_JSON : (process.env.CDKTF_CONTEXT_JSON = saved)));

  test('GIVEN a context object WHEN read THEN it is the settings context', () => {
    expect(fileContext(write('{"app": "x", "context": {"stage": "qa"}}'))).toEqual({ stage: 'qa' });
  });

  test('GIVEN a trailing comma WHEN read THEN a ConfigError names the file, line and column', () => {
    const file = write('{\n  "context": {\n    "stage": "qa",\n  }\n}\n');
    expect(() => fileContext(file)).toThrow(ConfigError);
    expect(() => fileContext(file)).toThrow(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:4:3: not valid JSON`));
  });

  test('GIVEN a context that is not an object WHEN read THEN a ConfigError says so', () => {
    expect(() => fileContext(write('{"context": ["stage"]}'))).toThrow(/cdktf\.json: "context" must be an object of settings/);
  });
});

describe('unknown settings are reported, never ignored', () => {
  test.each([
    [
      'a misspelt variable',
      { env: { PIPELINE_STAGES: 'prod' } },
      /^Unknown configuration: environment variable PIPELINE_STAGES \(did you mean PIPELINE_STAGE\?\)\. The settings are listed in README\.md, "Configuration"\.$/,
    ],
    ['a variable with no near setting', { env: { PIPELINE_COLOUR: 'blue' } }, /^Unknown configuration: environment variable PIPELINE_COLOUR\. /],
    ['a misspelt context key', { context: { stgae: 'prod' } }, /^Unknown configuration: context key "stgae" \(did you mean "stage"\?\)/],
    ['a variable name used as a context key', { context: { PIPELINE_NAT: true } }, /context key "PIPELINE_NAT" \(did you mean "natEnabled"\?\)/],
    [
      'several at once, all named',
      { env: { PIPELINE_REGON: 'eu-west-1' }, context: { azCont: 3 } },
      /environment variable PIPELINE_REGON \(did you mean PIPELINE_REGION\?\); context key "azCont" \(did you mean "azCount"\?\)/,
    ],
  ])('GIVEN %s WHEN loading THEN a ConfigError names it', (_what, options, message) => {
    expect(() => loadConfig(options)).toThrow(ConfigError);
    expect(() => loadConfig(options)).toThrow(message);
  });

  test('GIVEN an unknown variable holding a private key WHEN loading THEN the error names the variable, never the value', () => {
    const value = '-----BEGIN OPENSSH PRIVATE KEY-----\nH5-PLANTED\n-----END OPENSSH PRIVATE KEY-----';
    expect(() => loadConfig({ env: { PIPELINE_SFTP_PRIVATE_KEY: value } })).toThrow(/^Unknown configuration: environment variable PIPELINE_SFTP_PRIVATE_KEY/);
    expect(() => loadConfig({ env: { PIPELINE_SFTP_PRIVATE_KEY: value } })).not.toThrow(/H5-PLANTED/);
  });

  test('GIVEN the context a cdktf App carries (its version, feature flags) WHEN loading THEN it is not a setting and not reported', () => {
    const app = new App({ context: { stage: 'qa' }, stackTraces: false });
    expect(Object.keys(app.node.getAllContext())).toEqual(expect.arrayContaining(['cdktfVersion', '@cdktf/disable_stack_trace_in_metadata']));
    expect(loadConfig({ env: {}, context: app.node.getAllContext() }).stage).toBe('qa');
  });

  test('GIVEN PIPELINE_STAGES=prod (a typo) WHEN the app (main) synthesizes THEN it fails instead of deploying dev', () => {
    process.env.PIPELINE_STAGES = 'prod';
    try {
      expect(() => main()).toThrow(/^Unknown configuration: environment variable PIPELINE_STAGES \(did you mean PIPELINE_STAGE\?\)/);
    } finally {
      delete process.env.PIPELINE_STAGES;
    }
  });

  test("GIVEN other environment variables (not PIPELINE_*) WHEN loading THEN they are none of the config's business", () => {
    expect(loadConfig({ env: { PATH: '/bin', PIPELINE: 'x', AWS_REGION: 'eu-west-1' } }).region).toBe('us-east-1');
  });
});

describe('regions', () => {
  // The partition data AWS SDKs resolve endpoints from (a pinned dev dependency); a Region added there
  // must be added to stacks/config/regions.ts too.
  const sdkRegions = (): string[] => {
    const file = path.join(path.dirname(require.resolve('@aws-sdk/core/package.json')), 'dist-es/submodules/client/util-endpoints/lib/aws/partitions.js');
    const data = JSON.parse(
      fs
        .readFileSync(file, 'utf8')
        .replace(/^export const partitionsInfo = /, '')
        .replace(/;\s*$/, ''),
    ) as { partitions: { id: string; regions: Record<string, unknown> }[] };
    return data.partitions.flatMap((p) =>
      Object.keys(p.regions)
        .filter((r) => !r.endsWith('-global'))
        .map((r) => `${p.id}:${r}`),
    );
  };

  test('GIVEN the AWS SDK partition data WHEN compared with the list THEN every partition and Region matches', () => {
    const ours = Object.entries(AWS_REGIONS).flatMap(([p, regions]) => regions.map((r) => `${p}:${r}`));
    expect(ours.sort()).toEqual(sdkRegions().sort());
  });

  test.each(['us-east-1', 'eu-central-2', 'ap-southeast-7', 'cn-north-1', 'us-gov-west-1', 'mx-central-1'])(
    'GIVEN %s WHEN loading THEN it is accepted',
    (region) => {
      expect(loadConfig({ env: { PIPELINE_REGION: region } }).region).toBe(region);
    },
  );
});

describe('schedule expressions (EventBridge Scheduler grammar)', () => {
  test.each([
    'rate(1 minute)',
    'rate(5 minutes)',
    'rate(1 hour)',
    'rate(12 hours)',
    'rate(1 day)',
    'cron(0 12 * * ? *)',
    'cron(0/15 * * * ? *)',
    'cron(0 8 1 * ? *)',
    'cron(15 10 ? * MON-FRI *)',
    'cron(0 18 ? * 6L 2026-2030)',
    'cron(0 9 ? * 2#1 *)',
    'cron(0 0 L * ? *)',
    'cron(0 0 15W * ? *)',
    'cron(5,35 14 * JAN,JUL ? *)',
    'at(2027-02-28T23:59:59)',
  ])('GIVEN %s WHEN checked THEN it is accepted', (expr) => {
    expect(scheduleProblem(expr)).toBeUndefined();
  });

  test.each([
    ['rate(0 minutes)', /the rate must be a positive integer/],
    ['rate(5 hour)', /use the plural unit for 5 \(e\.g\. rate\(5 hours\)\)/],
    ['rate(1 days)', /use the singular unit for 1 \(e\.g\. rate\(1 day\)\)/],
    ['rate(5 seconds)', /rate\(\) takes "<positive integer> minute\(s\)\|hour\(s\)\|day\(s\)"/],
    ['rate(1.5 hours)', /rate\(\) takes/],
    ['cron(0 12 * * *)', /cron\(\) needs 6 fields .* got 5/],
    ['cron(60 12 * * ? *)', /minutes "60": "60" is not a value \(0-59\)/],
    ['cron(0 24 * * ? *)', /hours "24": "24" is not a value \(0-23\)/],
    ['cron(0 12 32 * ? *)', /day-of-month "32"/],
    ['cron(0 12 * 13 ? *)', /month "13": "13" is not a value \(1-12 or JAN-DEC\)/],
    ['cron(0 12 ? * 8 *)', /day-of-week "8": "8" is not a value \(1-7 or SUN-SAT\)/],
    ['cron(0 12 ? * FUN *)', /day-of-week "FUN"/],
    ['cron(0 12 * * ? 1969)', /year "1969": "1969" is not a value \(1970-2199\)/],
    ['cron(0 12 * * * *)', /exactly one of day-of-month and day-of-week must be "\?"/],
    ['cron(0 12 ? * ? *)', /exactly one of day-of-month and day-of-week must be "\?"/],
    ['cron(? 12 * * ? *)', /minutes "\?": "\?" is allowed only in day-of-month and day-of-week/],
    ['cron(0/0 * * * ? *)', /minutes "0\/0": the increment after "\/" must be 1-59/],
    ['cron(30-10 * * * ? *)', /minutes "30-10": a range must go from low to high/],
    ['cron(0 12 ? * 2#6 *)', /day-of-week "2#6": the week after "#" must be 1-5/],
    ['cron(0 12 L * 2 *)', /exactly one of day-of-month and day-of-week/],
    ['cron(0 12 15W * ? *) ', /not a schedule expression/],
    ['at(2027-02-29T00:00:00)', /not a real date and time/],
    ['at(2027-01-01 10:00:00)', /not a schedule expression/],
    ['every 5 minutes', /not a schedule expression: use rate\(N unit\), cron\(6 fields\) or at\(yyyy-mm-ddThh:mm:ss\)/],
  ])('GIVEN %s WHEN checked THEN it is refused: %p', (expr, message) => {
    expect(scheduleProblem(expr)).toMatch(message);
  });

  test('GIVEN an invalid cron in the environment WHEN loading THEN the ConfigError names the setting and the field', () => {
    expect(() => loadConfig({ env: { PIPELINE_SCHEDULE: 'cron(0 25 * * ? *)' } })).toThrow(
      /^Invalid configuration: scheduleExpression \(env PIPELINE_SCHEDULE, context "scheduleExpression"\): "cron\(0 25 \* \* \? \*\)": hours "25"/,
    );
  });
});
