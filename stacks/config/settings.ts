// THE settings table: every setting once, with its environment variable, its cdktf context key (the
// row's name), its default, its parser with bounds, and its README line. loadConfig (./load.ts) reads
// the table; README.md's Configuration table is checked against settingsTable() by
// __tests__/stacks/config.test.ts. Rules between settings live in one function, crossFieldRules (./load.ts).
//
// Typed config fields (stacks/config/types.ts PipelineConfig) added for issue #12, by consumer:
//   lister (ingest stack env):  sftpRemoteDir, sftpInclude, sftpExclude, sftpCompletion,
//                               sftpCompletionMoveDir, minFileAgeSeconds, filesPerRun,
//                               batchMaxFiles, batchMaxBytes, listerRetries
//   state machine (batch.ts):   converterCapacity ('FARGATE' | 'FARGATE_SPOT'), listerTimeoutSeconds,
//                               converterTimeoutSeconds, taskAttempts
//   schedule (ingest stack):    scheduleRetryAttempts, scheduleMaxEventAgeSeconds, sftpKeyInstalled,
//                               scheduleEnabled (derived: first deploy)
//   monitoring:                 alarmEmails, alarmListerFailures, alarmConversionFailures, alarmNoIngestMinutes,
//                               runbookUrl
//   teardown:                   forceDestroy, secretRecoveryDays, productionStage (derived)
import * as net from 'node:net';
import { DEFAULT_MAX_BATCH_BYTES, maxBatchSize } from '../state-machine';
import { checkCidr } from './cidr';
import { NAME_RULES } from './names';
import { boolean, checkPublicKey, decimal, each, integer, integerOr, list, oneOf, Parser, text } from './parse';
import { regionProblem } from './regions';
import { scheduleProblem } from './schedule';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** One row of the table. */
export interface Setting<T, D extends T | undefined = T | undefined> {
  /** Environment variable (PIPELINE_*). */
  readonly env: string;
  /** The value when the setting is not given; undefined = none, or derived from others in load.ts. */
  readonly default: D;
  /** The README's default column, when it is not the value itself (none, derived). */
  readonly shown?: string;
  /** The README's meaning column. */
  readonly doc: string;
  readonly parse: Parser<T>;
}

function setting<T, D extends T | undefined>(s: Setting<T, D>): Setting<T, D> {
  return s;
}

const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];
/** Fargate CPU units and the memory (MiB) each allows (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size). */
export const FARGATE_MEMORY: Readonly<Record<number, readonly number[]>> = {
  256: [512, 1024, 2048],
  512: range(1024, 4096, 1024),
  1024: range(2048, 8192, 1024),
  2048: range(4096, 16384, 1024),
  4096: range(8192, 30720, 1024),
  8192: range(16384, 61440, 4096),
  16384: range(32768, 122880, 8192),
};

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v += step) out.push(v);
  return out;
}
const NONE = '(none)';
const globs = list(
  /,/,
  each((g) => (/[\0\r\n]/.test(g) ? `"${g}" must not hold NUL or line breaks` : undefined)),
);
const cpu: Parser<number> = (raw, fail) => {
  const n = integer(0, Number.MAX_SAFE_INTEGER)(raw, fail);
  return FARGATE_MEMORY[n] ? n : fail(`${n} is not a Fargate CPU value (${Object.keys(FARGATE_MEMORY).join(', ')})`);
};
// Valid with the task's CPU: checked in crossFieldRules.
const memory = integer(1, Number.MAX_SAFE_INTEGER);
const region = text(regionProblem);

const ROWS = {
  namePrefix: setting({
    env: 'PIPELINE_NAME_PREFIX',
    default: 'xmlpipe',
    doc: 'Prefix of resource names: lower-case letters, digits, hyphens; 2-20 chars, starts with a letter',
    parse: text((v) =>
      /^[a-z][a-z0-9-]{1,19}$/.test(v) && !v.endsWith('-')
        ? undefined
        : `"${v}" must be 2-20 lower-case letters, digits or hyphens, start with a letter and not end with a hyphen`,
    ),
  }),
  stage: setting({
    env: 'PIPELINE_STAGE',
    default: 'dev',
    doc: 'Stage name, 1-10 lower-case letters/digits; part of names, tags and the state key',
    parse: text((v) => (/^[a-z0-9]{1,10}$/.test(v) ? undefined : `"${v}" must be 1-10 lower-case letters or digits`)),
  }),
  region: setting({ env: 'PIPELINE_REGION', default: 'us-east-1', doc: 'AWS region of every stack (checked against the list of AWS Regions)', parse: region }),
  azCount: setting({
    env: 'PIPELINE_AZ_COUNT',
    default: 2,
    doc: 'Availability zones (2-6); one private (and, with NAT, one public) subnet each',
    parse: (raw, fail) => {
      const n = integer(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)(raw, fail);
      if (n < 2) return fail(`must be at least 2 (tasks and endpoints span two or more AZs), got ${n}`);
      return n > 6 ? fail(`must be at most 6, got ${n}`) : n;
    },
  }),
  vpcCidr: setting({
    env: 'PIPELINE_VPC_CIDR',
    default: '10.20.0.0/16',
    doc: 'VPC IPv4 CIDR, /16 to /24, split into /(n+4) subnets',
    parse: text((v) => checkCidr(v, 16, 24)),
  }),
  natEnabled: setting({
    env: 'PIPELINE_NAT',
    default: false,
    doc: 'Public subnets, internet gateway and one NAT gateway per AZ (needed for an external SFTP host)',
    parse: boolean(),
  }),
  sftpSource: setting({
    env: 'PIPELINE_SFTP_SOURCE',
    default: 'transfer',
    doc: '`transfer` (managed AWS Transfer Family server) or `external` (your own SFTP host)',
    parse: oneOf(['transfer', 'external'] as const),
  }),
  sftpUser: setting({
    env: 'PIPELINE_SFTP_USER',
    default: 'sftpuser',
    doc: 'SFTP user name (service-managed user for `transfer`)',
    // Transfer Family user names: 3-100 chars of [\w@.-], not starting with a hyphen.
    parse: text((v) => (/^[\w][\w@.-]{2,99}$/.test(v) ? undefined : `"${v}" must be 3-100 letters, digits, _ @ . or -, not starting with - @ or .`)),
  }),
  sftpPublicKeys: setting({
    env: 'PIPELINE_SFTP_PUBLIC_KEYS',
    default: [] as string[],
    doc: 'OpenSSH public key(s) of the SFTP user, one per line (context: array). Never a private key',
    parse: list(
      /\r?\n/,
      each((k, i) => {
        const problem = checkPublicKey(k);
        return problem ? `key #${i + 1} ${problem}` : undefined;
      }),
    ),
  }),
  sftpAllowedCidrs: setting({
    env: 'PIPELINE_SFTP_ALLOWED_CIDRS',
    default: [] as string[],
    doc: '`transfer` only: extra networks (VPN/Direct Connect) allowed to the SFTP VPC endpoint, comma-separated; the VPC itself is always allowed',
    parse: list(
      /[,\s]+/,
      each((c) => checkCidr(c, 1, 32)),
    ),
  }),
  sftpHost: setting({
    env: 'PIPELINE_SFTP_HOST',
    default: undefined,
    doc: '`external` only (required): host name or IP',
    parse: text((v) =>
      net.isIP(v) || /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(v)
        ? undefined
        : `"${v}" is not a host name or IP address`,
    ),
  }),
  sftpPort: setting({ env: 'PIPELINE_SFTP_PORT', default: 22, doc: '`external` only: TCP port', parse: integer(1, 65535) }),
  sftpHostKeyFingerprints: setting({
    env: 'PIPELINE_SFTP_HOST_KEY_FINGERPRINTS',
    default: [] as string[],
    doc: '`external` only (required): accepted host-key fingerprints `SHA256:...`, comma-separated',
    parse: (raw, fail) =>
      list(/[,\s]+/)(raw, fail).map((f) => {
        const unpadded = f.replace(/=+$/, '');
        return /^SHA256:[A-Za-z0-9+/]{43}$/.test(unpadded)
          ? unpadded
          : fail(`"${f}" is not an OpenSSH SHA256 fingerprint (SHA256: followed by 43 base64 characters)`);
      }),
  }),
  scheduleExpression: setting({
    env: 'PIPELINE_SCHEDULE',
    default: 'rate(5 minutes)',
    doc: 'EventBridge Scheduler expression: `rate(...)`, `cron(...)` (6 fields) or `at(...)`, checked against the documented grammar',
    parse: text(scheduleProblem),
  }),
  listerCpu: setting({ env: 'PIPELINE_LISTER_CPU', default: 256, doc: 'SFTP lister task CPU units', parse: cpu }),
  listerMemory: setting({ env: 'PIPELINE_LISTER_MEMORY', default: 512, doc: 'SFTP lister task memory (MiB), a valid Fargate pairing', parse: memory }),
  converterCpu: setting({ env: 'PIPELINE_CONVERTER_CPU', default: 1024, doc: 'Converter task CPU units', parse: cpu }),
  converterMemory: setting({ env: 'PIPELINE_CONVERTER_MEMORY', default: 2048, doc: 'Converter task memory (MiB), a valid Fargate pairing', parse: memory }),
  cpuArchitecture: setting({
    env: 'PIPELINE_CPU_ARCHITECTURE',
    default: 'X86_64' as const,
    doc: '`X86_64` or `ARM64` (images are built for it, tasks run on it)',
    parse: oneOf(['X86_64', 'ARM64'] as const),
  }),
  logRetentionDays: setting({
    env: 'PIPELINE_LOG_RETENTION_DAYS',
    default: 30,
    doc: 'CloudWatch Logs retention in days (an allowed value: 1, 3, 5, 7, 14, 30, 60, 90, ...)',
    parse: (raw, fail) => {
      const n = integer(0, Number.MAX_SAFE_INTEGER)(raw, fail);
      return LOG_RETENTION_DAYS.includes(n) ? n : fail(`${n} is not a CloudWatch Logs retention value (${LOG_RETENTION_DAYS.join(', ')})`);
    },
  }),
  stateBucket: setting({
    env: 'PIPELINE_STATE_BUCKET',
    default: undefined,
    shown: '(none: local state)',
    doc: 'S3 bucket for Terraform state; when set, the S3 backend with a lockfile is used',
    parse: text((v) => {
      const problem = NAME_RULES.s3Bucket.check(v);
      return problem ? `"${v}" is not an S3 bucket name: ${problem} (${NAME_RULES.s3Bucket.doc})` : undefined;
    }),
  }),
  stateRegion: setting({ env: 'PIPELINE_STATE_REGION', default: undefined, shown: '(the region)', doc: 'Region of the state bucket', parse: region }),
  stateKeyPrefix: setting({
    env: 'PIPELINE_STATE_KEY_PREFIX',
    default: undefined,
    shown: '<namePrefix>/<stage>',
    doc: 'State object key prefix; each stack is `<prefix>/<stack>.tfstate`',
    parse: (raw, fail) => {
      const v = text()(raw, fail).replace(/^\/+|\/+$/g, '');
      return /^[A-Za-z0-9!_.*'()/-]+$/.test(v) ? v : fail(`"${v}" has characters unsafe in an S3 key`);
    },
  }),
  batchSize: setting({
    env: 'PIPELINE_BATCH_SIZE',
    default: 50,
    doc: `Prefix/manifest runs: keys per converter task, 1-${maxBatchSize()} (a batch's input is also capped at ${DEFAULT_MAX_BATCH_BYTES} bytes to stay within ECS's 8 KiB override limit)`,
    parse: integer(
      1,
      maxBatchSize(),
      ` (a batch's input is capped at ${DEFAULT_MAX_BATCH_BYTES} bytes so its key list fits ECS's 8 KiB container-override limit; more keys could never fit)`,
    ),
  }),
  maxConcurrency: setting({
    env: 'PIPELINE_MAX_CONCURRENCY',
    default: 20,
    doc: 'Prefix/manifest runs: converter tasks at once, 1-10000 (the Distributed Map limit; mind the Fargate vCPU quota)',
    parse: integer(1, 10000, ' (a Distributed Map runs at most 10000 child executions at once)'),
  }),
  toleratedFailurePercentage: setting({
    env: 'PIPELINE_TOLERATED_FAILURE_PERCENTAGE',
    default: 5,
    doc: 'Prefix/manifest runs: percentage (0-100) of batches that may fail before the run fails',
    parse: decimal(100),
  }),
  inputPrefixes: setting({
    env: 'PIPELINE_INPUT_PREFIXES',
    default: ['incoming/'],
    doc: 'Key prefixes of the data bucket the converter may read and runs may name, comma-separated (context: array), each ending in `/`; must include the landing prefix `incoming/`. Keys or a prefix outside them are rejected',
    parse: list(/[,\s]+/, inputPrefixesProblem),
  }),
  converterConcurrency: setting({
    env: 'PIPELINE_CONVERTER_CONCURRENCY',
    default: 4,
    doc: 'Keys one converter task converts at once (its `CONCURRENCY`), 1-64',
    parse: integer(1, 64),
  }),
  sftpRemoteDir: setting({
    env: 'PIPELINE_SFTP_REMOTE_DIR',
    default: '.',
    doc: "SFTP folder the lister reads (`.` = the user's home)",
    parse: text((v) => (/[\0\r\n]/.test(v) ? 'must not hold NUL or line breaks' : undefined)),
  }),
  sftpInclude: setting({
    env: 'PIPELINE_SFTP_INCLUDE',
    default: [] as string[],
    shown: '(none: every file)',
    doc: 'Globs a file path must match to be ingested, comma-separated (context: array)',
    parse: globs,
  }),
  sftpExclude: setting({
    env: 'PIPELINE_SFTP_EXCLUDE',
    default: [] as string[],
    doc: 'Globs of file paths never ingested, comma-separated (context: array)',
    parse: globs,
  }),
  // The lister's COMPLETION / COMPLETION_MOVE_DIR (images/sftp-lister/README.md); docs/scale.md
  // recommends move or delete above a few thousand files a day.
  sftpCompletion: setting({
    env: 'PIPELINE_SFTP_COMPLETION',
    default: 'leave' as const,
    doc: "What the lister does with a file on SFTP once its object and the run's manifest are in S3: `leave`, `move` (to `PIPELINE_SFTP_COMPLETION_MOVE_DIR`) or `delete`. With `leave` every run lists everything still there: use `move` or `delete` above a few thousand files a day (docs/scale.md)",
    parse: oneOf(['leave', 'move', 'delete'] as const),
  }),
  sftpCompletionMoveDir: setting({
    env: 'PIPELINE_SFTP_COMPLETION_MOVE_DIR',
    default: undefined,
    doc: 'Required with `move`, only then: SFTP folder ingested files are moved to (sub-paths kept); not the listed folder',
    parse: text((v) => (/[\0\r\n]/.test(v) ? 'must not hold NUL or line breaks' : undefined)),
  }),
  minFileAgeSeconds: setting({
    env: 'PIPELINE_MIN_FILE_AGE_SECONDS',
    default: 60,
    doc: 'Files modified less than this many seconds ago are left for a later run (still being written), 0-86400',
    parse: integer(0, 86400),
  }),
  filesPerRun: setting({
    env: 'PIPELINE_FILES_PER_RUN',
    default: 10000,
    doc: 'Files one scheduled run ingests at most (oldest first), 1-100000',
    parse: integer(1, 100000),
  }),
  batchMaxFiles: setting({
    env: 'PIPELINE_BATCH_MAX_FILES',
    default: 200,
    doc: 'Scheduled runs: files per converter task (batch manifest) at most, 1-10000',
    parse: integer(1, 10000),
  }),
  batchMaxBytes: setting({
    env: 'PIPELINE_BATCH_MAX_BYTES',
    default: 268435456,
    doc: 'Scheduled runs: source bytes per converter task at most (a larger file is a batch of its own), 1048576-68719476736',
    parse: integer(1048576, 68719476736),
  }),
  listerRetries: setting({
    env: 'PIPELINE_LISTER_RETRIES',
    default: 3,
    doc: 'Lister retries of one file after a dropped connection or transient error, 0-20',
    parse: integer(0, 20),
  }),
  converterCapacity: setting({
    env: 'PIPELINE_CONVERTER_CAPACITY',
    default: 'FARGATE' as const,
    doc: '`FARGATE` or `FARGATE_SPOT` (cheaper; a reclaimed converter task is retried)',
    parse: oneOf(['FARGATE', 'FARGATE_SPOT'] as const),
  }),
  listerTimeoutSeconds: setting({
    env: 'PIPELINE_LISTER_TIMEOUT_SECONDS',
    default: 1800,
    doc: 'Stop the lister task after this many seconds, 60-604800',
    parse: integer(60, 604800),
  }),
  converterTimeoutSeconds: setting({
    env: 'PIPELINE_CONVERTER_TIMEOUT_SECONDS',
    default: 3600,
    doc: 'Stop a converter task (its batch fails) after this many seconds, 60-604800',
    parse: integer(60, 604800),
  }),
  taskAttempts: setting({
    env: 'PIPELINE_TASK_ATTEMPTS',
    default: 3,
    doc: 'Runs of a failed converter batch task before its keys count as failed, 1-10 (a lister task that ran and failed is not re-run; the next scheduled run lists again)',
    parse: integer(1, 10),
  }),
  // https://docs.aws.amazon.com/scheduler/latest/APIReference/API_RetryPolicy.html
  scheduleRetryAttempts: setting({
    env: 'PIPELINE_SCHEDULE_RETRY_ATTEMPTS',
    default: 3,
    doc: 'EventBridge Scheduler retries of a failed StartExecution, 0-185',
    parse: integer(0, 185),
  }),
  scheduleMaxEventAgeSeconds: setting({
    env: 'PIPELINE_SCHEDULE_MAX_EVENT_AGE_SECONDS',
    default: 300,
    doc: 'EventBridge Scheduler gives up on an invocation this old (then it goes to the dead-letter queue), 60-86400',
    parse: integer(60, 86400),
  }),
  sftpKeyInstalled: setting({
    env: 'PIPELINE_SFTP_KEY_INSTALLED',
    default: false,
    doc: 'Set to true once the SFTP private key is in its secret (Deploy step 5); until then, and for `transfer` until a public key is set, the schedule is created disabled',
    parse: boolean(),
  }),
  alarmEmails: setting({
    env: 'PIPELINE_ALARM_EMAILS',
    default: [] as string[],
    doc: 'E-mail addresses subscribed to the alarm topic, comma-separated (context: array); each must confirm the subscription',
    parse: list(
      /[,\s]+/,
      each((e) => (/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(e) ? undefined : `"${e}" is not an e-mail address`)),
    ),
  }),
  alarmListerFailures: setting({
    env: 'PIPELINE_ALARM_LISTER_FAILURES',
    default: 3,
    doc: 'Alarm when this many lister runs in a row fail, 1-100',
    parse: integer(1, 100),
  }),
  alarmConversionFailures: setting({
    env: 'PIPELINE_ALARM_CONVERSION_FAILURES',
    default: 1,
    doc: 'Alarm when at least this many files fail conversion in a period, 1-100000',
    parse: integer(1, 100000),
  }),
  alarmNoIngestMinutes: setting({
    env: 'PIPELINE_ALARM_NO_INGEST_MINUTES',
    default: 0,
    doc: 'Alarm when no file was ingested for this many minutes, 0 (off) or 10-10080',
    parse: integerOr(0, 10, 10080, '(off)'),
  }),
  runbookUrl: setting({
    env: 'PIPELINE_RUNBOOK_URL',
    default: 'docs/runbook.md',
    doc: "Where `docs/runbook.md` is published (e.g. `https://github.com/<org>/<repo>/blob/main/docs/runbook.md`); each alarm's description and the out-of-memory notification link to `<this>#<section>`",
    parse: text(runbookUrlProblem),
  }),
  forceDestroy: setting({
    env: 'PIPELINE_FORCE_DESTROY',
    default: undefined,
    shown: 'true (false for a production-like stage)',
    doc: '`cdktf destroy` also deletes buckets holding objects and ECR repositories holding images. A stage named like production (`prod...`, `prd...`, `live...`) defaults to false',
    parse: boolean(),
  }),
  secretRecoveryDays: setting({
    env: 'PIPELINE_SECRET_RECOVERY_DAYS',
    default: undefined,
    shown: '0 (30 for a production-like stage)',
    doc: 'Days a deleted SFTP key secret stays recoverable: 0 (deleted at once, so a redeploy can reuse the name) or 7-30',
    parse: integerOr(0, 7, 30, '(deleted at once)'),
  }),
};

/** An https:// URL or a relative path, without a fragment (the alarm adds `#<section>`) or spaces. */
function runbookUrlProblem(v: string): string | undefined {
  if (/[\s#"<>\\]/.test(v) || v.length > 700)
    return `"${v}" must be a URL or path of at most 700 characters without spaces, "#", quotes, "<", ">" or "\\" (each alarm appends #<section>)`;
  if (/^[a-z][a-z0-9+.-]*:/i.test(v)) {
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      return `"${v}" is not a valid URL`;
    }
    return url.protocol === 'https:' ? undefined : `"${v}" must be an https:// URL (or a relative path such as docs/runbook.md)`;
  }
  return undefined;
}

function inputPrefixesProblem(prefixes: string[]): string | undefined {
  if (prefixes.length === 0) return 'at least one prefix is required';
  if (prefixes.length > 10) return `at most 10 prefixes (each is a policy resource and a state machine rule), got ${prefixes.length}`;
  for (const p of prefixes) {
    if (!/^[A-Za-z0-9!_.'()=+,@$&;:-][A-Za-z0-9!_.'()=+,@$&;:/-]*\/$/.test(p) || p.includes('//')) {
      return `"${p}" must be a key prefix ending in "/", not starting with "/", without "*", "?" or empty segments (the whole bucket cannot be an input: it holds outputs, manifests and results)`;
    }
  }
  for (const a of prefixes) {
    for (const b of prefixes) if (a !== b && b.startsWith(a)) return `"${b}" is inside "${a}"; list only the outer one`;
  }
  return new Set(prefixes).size !== prefixes.length ? 'lists a prefix twice' : undefined;
}

export type SettingName = keyof typeof ROWS;

/** A row with its context key (the row's name). */
export type SettingSpec<N extends SettingName = SettingName> = (typeof ROWS)[N] & { readonly key: N };

export const SETTINGS = Object.fromEntries(Object.entries(ROWS).map(([key, row]) => [key, { ...row, key }])) as { readonly [N in SettingName]: SettingSpec<N> };

/** The value type of a setting, `| undefined` when it has no default. */
export type SettingValue<N extends SettingName> = (typeof ROWS)[N] extends Setting<infer T, infer D> ? (undefined extends D ? T | undefined : T) : never;

/** The error for an invalid setting, naming it, its variable and its context key (stacks use it too). */
export function settingError(name: SettingName, reason: string): ConfigError {
  return new ConfigError(`Invalid configuration: ${name} (env ${SETTINGS[name].env}, context "${name}"): ${reason}`);
}

/** The README's default column for a setting. */
function shownDefault(s: Setting<unknown>): string {
  if (s.shown !== undefined) return s.shown;
  if (s.default === undefined || (Array.isArray(s.default) && s.default.length === 0)) return NONE;
  return Array.isArray(s.default) ? s.default.join(', ') : String(s.default);
}

/** The README's Configuration table, generated from the settings table. */
export function settingsTable(): string {
  const rows = Object.values(SETTINGS).map((s) => `| \`${s.env}\` | \`${s.key}\` | ${shownDefault(s as Setting<unknown>)} | ${s.doc} |`);
  return ['| environment variable | context key | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
