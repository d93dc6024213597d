// The one typed configuration of the app. Every setting has a default, so `npm start` synthesizes with
// no input at all; each can be overridden by an environment variable or by cdktf context (cdktf.json
// "context", `CDKTF_CONTEXT_JSON`). Precedence: explicit overrides > environment > context > default.
// Invalid values throw a ConfigError naming the setting, the variable and the context key.
//
// Secrets never enter this module: the SFTP private key lives only in Secrets Manager (see README).
// A value that looks like a private key is refused, and error messages never echo key material.
import * as net from 'node:net';
import { DEFAULT_MAX_BATCH_BYTES, maxBatchSize } from './state-machine';

export type SftpSourceKind = 'transfer' | 'external';
export type CpuArchitecture = 'X86_64' | 'ARM64';

export interface TaskSize {
  /** Fargate CPU units (256 = 0.25 vCPU). */
  readonly cpu: number;
  /** Fargate memory in MiB; must be a valid pairing with `cpu`. */
  readonly memoryMiB: number;
}

/** The managed AWS Transfer Family server, created by the sftp stack. */
export interface TransferSftpSource {
  readonly kind: 'transfer';
  /** SFTP user name. @default 'sftpuser' (the lab's) */
  readonly userName: string;
  /** OpenSSH public keys of that user. @default [] (add later; the user cannot log in until then) */
  readonly publicKeys: string[];
  /** Extra networks (VPN, Direct Connect) allowed to reach the VPC endpoint on port 22. @default [] */
  readonly allowedCidrs: string[];
}

/** An SFTP host outside this app; tasks reach it through NAT and verify its host key. */
export interface ExternalSftpSource {
  readonly kind: 'external';
  readonly host: string;
  /** @default 22 */
  readonly port: number;
  readonly userName: string;
  /** Accepted host-key fingerprints, `SHA256:<43 base64 chars>`; at least one. */
  readonly hostKeyFingerprints: string[];
}

export type SftpSource = TransferSftpSource | ExternalSftpSource;

export type StateBackendConfig =
  | { readonly kind: 'local' }
  | {
      readonly kind: 's3';
      readonly bucket: string;
      /** @default the app's region */
      readonly region: string;
      /** @default `${namePrefix}/${stage}` */
      readonly keyPrefix: string;
    };

export interface PipelineConfig {
  /** Prefix of every resource name. @default 'xmlpipe' */
  readonly namePrefix: string;
  /** Deployment stage (dev, prod...). @default 'dev' */
  readonly stage: string;
  /** AWS region. @default 'us-east-1' */
  readonly region: string;
  /** Availability zones used by the VPC (2..6). @default 2 */
  readonly azCount: number;
  /** VPC IPv4 CIDR, /16 to /24. @default '10.20.0.0/16' */
  readonly vpcCidr: string;
  /** Public subnets + one NAT gateway per AZ. @default false (endpoints cover every AWS call) */
  readonly natEnabled: boolean;
  readonly sftp: SftpSource;
  /** EventBridge Scheduler expression for the ingest run. @default 'rate(5 minutes)' */
  readonly scheduleExpression: string;
  /** @default { cpu: 256, memoryMiB: 512 } */
  readonly listerTask: TaskSize;
  /** @default { cpu: 1024, memoryMiB: 2048 } */
  readonly converterTask: TaskSize;
  /** CPU architecture of images and tasks. @default 'X86_64' */
  readonly cpuArchitecture: CpuArchitecture;
  /** CloudWatch Logs retention (an allowed value). @default 30 */
  readonly logRetentionDays: number;
  /** @default { kind: 'local' } */
  readonly stateBackend: StateBackendConfig;
  /** Prefix/manifest runs: keys per converter task (Distributed Map ItemBatcher). @default 50 */
  readonly batchSize: number;
  /** Prefix/manifest runs: converter tasks running at once (Distributed Map MaxConcurrency). @default 20 */
  readonly maxConcurrency: number;
  /** Prefix/manifest runs: share (%) of batches that may fail before the run fails. @default 5 */
  readonly toleratedFailurePercentage: number;
  /** Keys one converter task converts at once (its CONCURRENCY). @default 4 */
  readonly converterConcurrency: number;
  /**
   * Key prefixes of the data bucket the converter may read and runs may name (keys, `{"prefix"}`).
   * Must include the lister's landing prefix (checked by the batch stack). @default ['incoming/']
   */
  readonly inputPrefixes: string[];

  // ---- lister (images/sftp-lister env in the ingest stack's task definition) ----
  /** SFTP folder the lister reads (SFTP_REMOTE_DIR). @default '.' (the user's home) */
  readonly sftpRemoteDir: string;
  /** Globs a path must match (INCLUDE). @default [] = every file */
  readonly sftpInclude: string[];
  /** Globs that exclude a path (EXCLUDE). @default [] */
  readonly sftpExclude: string[];
  /** Files younger than this are left for the next run (MIN_AGE_SECONDS). @default 60 */
  readonly minFileAgeSeconds: number;
  /** Files one run ingests at most (MAX_FILES). @default 10000 */
  readonly filesPerRun: number;
  /** Batch manifests: files per batch at most (BATCH_MAX_FILES, contract C3). @default 200 */
  readonly batchMaxFiles: number;
  /** Batch manifests: source bytes per batch at most (BATCH_MAX_BYTES, contract C3). @default 268435456 */
  readonly batchMaxBytes: number;
  /** Lister retries of one file after a transient error (RETRIES). @default 3 */
  readonly listerRetries: number;

  // ---- tasks as the state machine runs them ----
  /** Converter capacity provider. @default 'FARGATE' */
  readonly converterCapacity: CapacityProvider;
  /** Stop the lister task after this long (s). @default 1800 */
  readonly listerTimeoutSeconds: number;
  /** Stop a converter task (and fail its batch) after this long (s). @default 3600 */
  readonly converterTimeoutSeconds: number;
  /** Attempts of a task (lister, converter batch) before its batch/run fails. @default 3 */
  readonly taskAttempts: number;

  // ---- schedule ----
  /** Scheduler retries of a failed StartExecution. @default 3 */
  readonly scheduleRetryAttempts: number;
  /** Give up on an invocation older than this (s); then it goes to the DLQ. @default 300 */
  readonly scheduleMaxEventAgeSeconds: number;
  /** First deploy: the private key was put into the secret (the operator says so). @default false */
  readonly sftpKeyInstalled: boolean;
  /**
   * Derived (not a setting): the schedule is ENABLED only once sftpKeyInstalled is true and, for the
   * managed server, a public key is configured; until then it is created DISABLED.
   */
  readonly scheduleEnabled: boolean;

  // ---- monitoring (H6) ----
  /** E-mail addresses subscribed to the alarm topic. @default [] */
  readonly alarmEmails: string[];
  /** Alarm when this many lister runs in a row fail. @default 3 */
  readonly alarmListerFailures: number;
  /** Alarm when at least this many files fail conversion in a period. @default 1 */
  readonly alarmConversionFailures: number;
  /** Alarm when no file was ingested for this many minutes; 0 = no such alarm. @default 0 */
  readonly alarmNoIngestMinutes: number;

  // ---- teardown ----
  /** Stage named like production (prod, production, prd, live...): protections default on. Derived. */
  readonly productionStage: boolean;
  /**
   * `cdktf destroy` removes everything: buckets with objects (force_destroy), ECR repositories with
   * images (force_delete). @default false for a production-like stage, true otherwise
   */
  readonly forceDestroy: boolean;
  /** Secrets Manager recovery window on delete: 0 (at once) or 7-30 days. @default 30 production-like, 0 otherwise */
  readonly secretRecoveryDays: number;
}

export type CapacityProvider = 'FARGATE' | 'FARGATE_SPOT';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The error for an invalid setting, naming it, its variable and its context key (stacks use it too). */
export function settingError(name: SettingName, reason: string): ConfigError {
  const spec = SETTINGS[name];
  return new ConfigError(`Invalid configuration: ${name} (env ${spec.env}, context "${spec.key}"): ${reason}`);
}

type Raw = string | number | boolean | string[] | undefined;

/** One setting: where it is read from and what it means (also drives the README table). */
export interface SettingSpec {
  readonly key: string;
  readonly env: string;
  readonly default: string;
  readonly description: string;
}

export const SETTINGS = {
  namePrefix: { key: 'namePrefix', env: 'PIPELINE_NAME_PREFIX', default: 'xmlpipe', description: 'Prefix of resource names: lower-case letters, digits, hyphens; 2-20 chars, starts with a letter' },
  stage: { key: 'stage', env: 'PIPELINE_STAGE', default: 'dev', description: 'Stage name, 1-10 lower-case letters/digits; part of names, tags and the state key' },
  region: { key: 'region', env: 'PIPELINE_REGION', default: 'us-east-1', description: 'AWS region of every stack' },
  azCount: { key: 'azCount', env: 'PIPELINE_AZ_COUNT', default: '2', description: 'Availability zones (2-6); one private (and, with NAT, one public) subnet each' },
  vpcCidr: { key: 'vpcCidr', env: 'PIPELINE_VPC_CIDR', default: '10.20.0.0/16', description: 'VPC IPv4 CIDR, /16 to /24, split into /(n+4) subnets' },
  natEnabled: { key: 'natEnabled', env: 'PIPELINE_NAT', default: 'false', description: 'Public subnets, internet gateway and one NAT gateway per AZ (needed for an external SFTP host)' },
  sftpSource: { key: 'sftpSource', env: 'PIPELINE_SFTP_SOURCE', default: 'transfer', description: '`transfer` (managed AWS Transfer Family server) or `external` (your own SFTP host)' },
  sftpUser: { key: 'sftpUser', env: 'PIPELINE_SFTP_USER', default: 'sftpuser', description: 'SFTP user name (service-managed user for `transfer`)' },
  sftpPublicKeys: { key: 'sftpPublicKeys', env: 'PIPELINE_SFTP_PUBLIC_KEYS', default: '(none)', description: 'OpenSSH public key(s) of the SFTP user, one per line (context: array). Never a private key' },
  sftpAllowedCidrs: { key: 'sftpAllowedCidrs', env: 'PIPELINE_SFTP_ALLOWED_CIDRS', default: '(none)', description: '`transfer` only: extra networks (VPN/Direct Connect) allowed to the SFTP VPC endpoint, comma-separated; the VPC itself is always allowed' },
  sftpHost: { key: 'sftpHost', env: 'PIPELINE_SFTP_HOST', default: '(none)', description: '`external` only (required): host name or IP' },
  sftpPort: { key: 'sftpPort', env: 'PIPELINE_SFTP_PORT', default: '22', description: '`external` only: TCP port' },
  sftpHostKeyFingerprints: { key: 'sftpHostKeyFingerprints', env: 'PIPELINE_SFTP_HOST_KEY_FINGERPRINTS', default: '(none)', description: '`external` only (required): accepted host-key fingerprints `SHA256:...`, comma-separated' },
  scheduleExpression: { key: 'scheduleExpression', env: 'PIPELINE_SCHEDULE', default: 'rate(5 minutes)', description: 'EventBridge Scheduler expression: `rate(...)`, `cron(...)` (6 fields) or `at(...)`' },
  listerCpu: { key: 'listerCpu', env: 'PIPELINE_LISTER_CPU', default: '256', description: 'SFTP lister task CPU units' },
  listerMemory: { key: 'listerMemory', env: 'PIPELINE_LISTER_MEMORY', default: '512', description: 'SFTP lister task memory (MiB), a valid Fargate pairing' },
  converterCpu: { key: 'converterCpu', env: 'PIPELINE_CONVERTER_CPU', default: '1024', description: 'Converter task CPU units' },
  converterMemory: { key: 'converterMemory', env: 'PIPELINE_CONVERTER_MEMORY', default: '2048', description: 'Converter task memory (MiB), a valid Fargate pairing' },
  cpuArchitecture: { key: 'cpuArchitecture', env: 'PIPELINE_CPU_ARCHITECTURE', default: 'X86_64', description: '`X86_64` or `ARM64` (images are built for it, tasks run on it)' },
  logRetentionDays: { key: 'logRetentionDays', env: 'PIPELINE_LOG_RETENTION_DAYS', default: '30', description: 'CloudWatch Logs retention in days (an allowed value: 1, 3, 5, 7, 14, 30, 60, 90, ...)' },
  stateBucket: { key: 'stateBucket', env: 'PIPELINE_STATE_BUCKET', default: '(none: local state)', description: 'S3 bucket for Terraform state; when set, the S3 backend with a lockfile is used' },
  stateRegion: { key: 'stateRegion', env: 'PIPELINE_STATE_REGION', default: '(the region)', description: 'Region of the state bucket' },
  stateKeyPrefix: { key: 'stateKeyPrefix', env: 'PIPELINE_STATE_KEY_PREFIX', default: '<namePrefix>/<stage>', description: 'State object key prefix; each stack is `<prefix>/<stack>.tfstate`' },
  batchSize: { key: 'batchSize', env: 'PIPELINE_BATCH_SIZE', default: '50', description: `Prefix/manifest runs: keys per converter task, 1-${maxBatchSize()} (a batch's input is also capped at ${DEFAULT_MAX_BATCH_BYTES} bytes to stay within ECS's 8 KiB override limit)` },
  maxConcurrency: { key: 'maxConcurrency', env: 'PIPELINE_MAX_CONCURRENCY', default: '20', description: 'Prefix/manifest runs: converter tasks at once, 1-10000 (the Distributed Map limit; mind the Fargate vCPU quota)' },
  toleratedFailurePercentage: { key: 'toleratedFailurePercentage', env: 'PIPELINE_TOLERATED_FAILURE_PERCENTAGE', default: '5', description: 'Prefix/manifest runs: percentage (0-100) of batches that may fail before the run fails' },
  inputPrefixes: { key: 'inputPrefixes', env: 'PIPELINE_INPUT_PREFIXES', default: 'incoming/', description: 'Key prefixes of the data bucket the converter may read and runs may name, comma-separated (context: array), each ending in `/`; must include the landing prefix `incoming/`. Keys or a prefix outside them are rejected' },
  converterConcurrency: { key: 'converterConcurrency', env: 'PIPELINE_CONVERTER_CONCURRENCY', default: '4', description: 'Keys one converter task converts at once (its `CONCURRENCY`), 1-64' },
  sftpRemoteDir: { key: 'sftpRemoteDir', env: 'PIPELINE_SFTP_REMOTE_DIR', default: '.', description: 'SFTP folder the lister reads (`.` = the user\'s home)' },
  sftpInclude: { key: 'sftpInclude', env: 'PIPELINE_SFTP_INCLUDE', default: '(none: every file)', description: 'Globs a file path must match to be ingested, comma-separated (context: array)' },
  sftpExclude: { key: 'sftpExclude', env: 'PIPELINE_SFTP_EXCLUDE', default: '(none)', description: 'Globs of file paths never ingested, comma-separated (context: array)' },
  minFileAgeSeconds: { key: 'minFileAgeSeconds', env: 'PIPELINE_MIN_FILE_AGE_SECONDS', default: '60', description: 'Files modified less than this many seconds ago are left for a later run (still being written), 0-86400' },
  filesPerRun: { key: 'filesPerRun', env: 'PIPELINE_FILES_PER_RUN', default: '10000', description: 'Files one scheduled run ingests at most (oldest first), 1-100000' },
  batchMaxFiles: { key: 'batchMaxFiles', env: 'PIPELINE_BATCH_MAX_FILES', default: '200', description: 'Scheduled runs: files per converter task (batch manifest) at most, 1-10000' },
  batchMaxBytes: { key: 'batchMaxBytes', env: 'PIPELINE_BATCH_MAX_BYTES', default: '268435456', description: 'Scheduled runs: source bytes per converter task at most (a larger file is a batch of its own), 1048576-68719476736' },
  listerRetries: { key: 'listerRetries', env: 'PIPELINE_LISTER_RETRIES', default: '3', description: 'Lister retries of one file after a dropped connection or transient error, 0-20' },
  converterCapacity: { key: 'converterCapacity', env: 'PIPELINE_CONVERTER_CAPACITY', default: 'FARGATE', description: '`FARGATE` or `FARGATE_SPOT` (cheaper; a reclaimed converter task is retried)' },
  listerTimeoutSeconds: { key: 'listerTimeoutSeconds', env: 'PIPELINE_LISTER_TIMEOUT_SECONDS', default: '1800', description: 'Stop the lister task after this many seconds, 60-604800' },
  converterTimeoutSeconds: { key: 'converterTimeoutSeconds', env: 'PIPELINE_CONVERTER_TIMEOUT_SECONDS', default: '3600', description: 'Stop a converter task (its batch fails) after this many seconds, 60-604800' },
  taskAttempts: { key: 'taskAttempts', env: 'PIPELINE_TASK_ATTEMPTS', default: '3', description: 'Attempts of a failed task (lister, converter batch) before it counts as failed, 1-10' },
  scheduleRetryAttempts: { key: 'scheduleRetryAttempts', env: 'PIPELINE_SCHEDULE_RETRY_ATTEMPTS', default: '3', description: 'EventBridge Scheduler retries of a failed StartExecution, 0-185' },
  scheduleMaxEventAgeSeconds: { key: 'scheduleMaxEventAgeSeconds', env: 'PIPELINE_SCHEDULE_MAX_EVENT_AGE_SECONDS', default: '300', description: 'EventBridge Scheduler gives up on an invocation this old (then it goes to the dead-letter queue), 60-86400' },
  sftpKeyInstalled: { key: 'sftpKeyInstalled', env: 'PIPELINE_SFTP_KEY_INSTALLED', default: 'false', description: 'Set to true once the SFTP private key is in its secret (Deploy step 5); until then, and for `transfer` until a public key is set, the schedule is created disabled' },
  alarmEmails: { key: 'alarmEmails', env: 'PIPELINE_ALARM_EMAILS', default: '(none)', description: 'E-mail addresses subscribed to the alarm topic, comma-separated (context: array); each must confirm the subscription' },
  alarmListerFailures: { key: 'alarmListerFailures', env: 'PIPELINE_ALARM_LISTER_FAILURES', default: '3', description: 'Alarm when this many lister runs in a row fail, 1-100' },
  alarmConversionFailures: { key: 'alarmConversionFailures', env: 'PIPELINE_ALARM_CONVERSION_FAILURES', default: '1', description: 'Alarm when at least this many files fail conversion in a period, 1-100000' },
  alarmNoIngestMinutes: { key: 'alarmNoIngestMinutes', env: 'PIPELINE_ALARM_NO_INGEST_MINUTES', default: '0', description: 'Alarm when no file was ingested for this many minutes, 0 (off) or 10-10080' },
  forceDestroy: { key: 'forceDestroy', env: 'PIPELINE_FORCE_DESTROY', default: 'true (false for a production-like stage)', description: '`cdktf destroy` also deletes buckets holding objects and ECR repositories holding images. A stage named like production (`prod...`, `prd...`, `live...`) defaults to false' },
  secretRecoveryDays: { key: 'secretRecoveryDays', env: 'PIPELINE_SECRET_RECOVERY_DAYS', default: '0 (30 for a production-like stage)', description: 'Days a deleted SFTP key secret stays recoverable: 0 (deleted at once, so a redeploy can reuse the name) or 7-30' },
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof SETTINGS;

export interface LoadConfigOptions {
  /** Environment to read. @default process.env */
  readonly env?: Record<string, string | undefined>;
  /** cdktf context values (e.g. `app.node.getAllContext()`). @default {} */
  readonly context?: Record<string, unknown>;
  /** Highest-precedence values, by context key (tests). @default {} */
  readonly overrides?: Partial<Record<SettingName, Raw>>;
}

const FARGATE_MEMORY: Record<number, number[]> = {
  256: [512, 1024, 2048],
  512: range(1024, 4096, 1024),
  1024: range(2048, 8192, 1024),
  2048: range(4096, 16384, 1024),
  4096: range(8192, 30720, 1024),
  8192: range(16384, 61440, 4096),
  16384: range(32768, 122880, 8192),
};

const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

const SSH_KEY_TYPES = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
];

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v += step) out.push(v);
  return out;
}

/** Reads and validates the whole configuration; throws ConfigError on the first invalid setting. */
export function loadConfig(options: LoadConfigOptions = {}): PipelineConfig {
  const env = options.env ?? process.env;
  const context = options.context ?? {};
  const overrides = options.overrides ?? {};

  const lookup = (name: SettingName): Raw => {
    const spec = SETTINGS[name];
    if (name in overrides && overrides[name] !== undefined) return overrides[name];
    const fromEnv = env[spec.env];
    if (fromEnv !== undefined && fromEnv.trim() !== '') return fromEnv;
    const fromContext = context[spec.key];
    if (fromContext !== undefined && fromContext !== null && fromContext !== '') return fromContext as Raw;
    return undefined;
  };
  // A private key pasted into ANY setting is refused before a validation message could echo it into a log.
  const raw = (name: SettingName): Raw => {
    const v = lookup(name);
    if ((Array.isArray(v) ? v : [v]).some((x) => /PRIVATE KEY/.test(String(x)))) {
      fail(name, 'looks like a PRIVATE key; no setting takes one (the private key goes into the Secrets Manager secret, see README)');
    }
    return v;
  };
  const fail = (name: SettingName, reason: string): never => {
    throw settingError(name, reason);
  };
  const str = (name: SettingName, dflt?: string): string | undefined => {
    const v = raw(name);
    if (v === undefined) return dflt;
    if (Array.isArray(v)) fail(name, 'expected a single value, got a list');
    return String(v).trim();
  };
  const int = (name: SettingName, dflt: number): number => {
    const v = str(name);
    if (v === undefined) return dflt;
    if (!/^-?\d+$/.test(v)) fail(name, `expected an integer, got "${v}"`);
    return Number(v);
  };
  const bool = (name: SettingName, dflt: boolean): boolean => {
    const v = str(name);
    if (v === undefined) return dflt;
    const lower = v.toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(lower)) return true;
    if (['false', '0', 'no', 'off'].includes(lower)) return false;
    return fail(name, `expected true or false, got "${v}"`);
  };
  // Lists: arrays from context, or strings split on `separator`.
  const list = (name: SettingName, separator: RegExp): string[] => {
    const v = raw(name);
    if (v === undefined) return [];
    const items = Array.isArray(v) ? v.map(String) : String(v).split(separator);
    return items.map((s) => s.trim()).filter((s) => s !== '');
  };

  const namePrefix = str('namePrefix', 'xmlpipe')!;
  if (!/^[a-z][a-z0-9-]{1,19}$/.test(namePrefix) || namePrefix.endsWith('-')) {
    fail('namePrefix', `"${namePrefix}" must be 2-20 lower-case letters, digits or hyphens, start with a letter and not end with a hyphen`);
  }
  const stage = str('stage', 'dev')!;
  if (!/^[a-z0-9]{1,10}$/.test(stage)) fail('stage', `"${stage}" must be 1-10 lower-case letters or digits`);

  const region = str('region', 'us-east-1')!;
  if (!/^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/.test(region)) fail('region', `"${region}" is not an AWS region name (like us-east-1)`);

  const azCount = int('azCount', 2);
  if (azCount < 2) fail('azCount', `must be at least 2 (tasks and endpoints span two or more AZs), got ${azCount}`);
  if (azCount > 6) fail('azCount', `must be at most 6, got ${azCount}`);

  const vpcCidr = str('vpcCidr', '10.20.0.0/16')!;
  const cidrProblem = checkCidr(vpcCidr, 16, 24);
  if (cidrProblem) fail('vpcCidr', cidrProblem);

  const natEnabled = bool('natEnabled', false);

  const sourceKind = str('sftpSource', 'transfer')!;
  if (sourceKind !== 'transfer' && sourceKind !== 'external') {
    fail('sftpSource', `expected "transfer" or "external", got "${sourceKind}"`);
  }
  const userName = str('sftpUser', 'sftpuser')!;
  // Transfer Family user names: 3-100 chars of [\w@.-], not starting with a hyphen.
  if (!/^[\w][\w@.-]{2,99}$/.test(userName)) fail('sftpUser', `"${userName}" must be 3-100 letters, digits, _ @ . or -, not starting with - @ or .`);

  let sftp: SftpSource;
  if (sourceKind === 'transfer') {
    const publicKeys = list('sftpPublicKeys', /\r?\n/);
    publicKeys.forEach((k, i) => {
      const problem = checkPublicKey(k);
      if (problem) fail('sftpPublicKeys', `key #${i + 1} ${problem}`);
    });
    const allowedCidrs = list('sftpAllowedCidrs', /[,\s]+/);
    allowedCidrs.forEach((c) => {
      const problem = checkCidr(c, 1, 32);
      if (problem) fail('sftpAllowedCidrs', problem);
    });
    for (const name of ['sftpHost', 'sftpPort', 'sftpHostKeyFingerprints'] as const) {
      if (raw(name) !== undefined) fail(name, 'only applies to sftpSource "external"; the managed server\'s host key is read from AWS');
    }
    sftp = { kind: 'transfer', userName, publicKeys, allowedCidrs };
  } else {
    const host = str('sftpHost');
    if (!host) fail('sftpHost', 'required when sftpSource is "external"');
    if (!net.isIP(host!) && !/^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(host!)) {
      fail('sftpHost', `"${host}" is not a host name or IP address`);
    }
    const port = int('sftpPort', 22);
    if (port < 1 || port > 65535) fail('sftpPort', `must be 1-65535, got ${port}`);
    const hostKeyFingerprints = list('sftpHostKeyFingerprints', /[,\s]+/).map((f) => f.replace(/=+$/, ''));
    if (hostKeyFingerprints.length === 0) {
      fail('sftpHostKeyFingerprints', 'required when sftpSource is "external": tasks refuse to connect to an unverified host (get it with `ssh-keyscan HOST | ssh-keygen -lf -`)');
    }
    hostKeyFingerprints.forEach((f) => {
      if (!/^SHA256:[A-Za-z0-9+/]{43}$/.test(f)) fail('sftpHostKeyFingerprints', `"${f}" is not an OpenSSH SHA256 fingerprint (SHA256: followed by 43 base64 characters)`);
    });
    if (!natEnabled) fail('natEnabled', 'must be true when sftpSource is "external": private subnets have no route to an outside host otherwise');
    for (const name of ['sftpPublicKeys', 'sftpAllowedCidrs'] as const) {
      if (raw(name) !== undefined) fail(name, 'only applies to sftpSource "transfer"');
    }
    sftp = { kind: 'external', host: host!, port, userName, hostKeyFingerprints };
  }

  const scheduleExpression = str('scheduleExpression', 'rate(5 minutes)')!;
  const scheduleProblem = checkSchedule(scheduleExpression);
  if (scheduleProblem) fail('scheduleExpression', scheduleProblem);

  const taskSize = (cpuName: SettingName, memName: SettingName, cpu: number, mem: number): TaskSize => {
    const c = int(cpuName, cpu);
    const m = int(memName, mem);
    const allowed = FARGATE_MEMORY[c];
    if (!allowed) fail(cpuName, `${c} is not a Fargate CPU value (${Object.keys(FARGATE_MEMORY).join(', ')})`);
    if (!allowed!.includes(m)) fail(memName, `${m} MiB is not valid with ${c} CPU units (allowed ${allowed![0]}-${allowed![allowed!.length - 1]} in steps of ${allowed![1] - allowed![0]})`);
    return { cpu: c, memoryMiB: m };
  };
  const listerTask = taskSize('listerCpu', 'listerMemory', 256, 512);
  const converterTask = taskSize('converterCpu', 'converterMemory', 1024, 2048);

  const arch = str('cpuArchitecture', 'X86_64')!.toUpperCase();
  if (arch !== 'X86_64' && arch !== 'ARM64') fail('cpuArchitecture', `expected X86_64 or ARM64, got "${arch}"`);

  const logRetentionDays = int('logRetentionDays', 30);
  if (!LOG_RETENTION_DAYS.includes(logRetentionDays)) {
    fail('logRetentionDays', `${logRetentionDays} is not a CloudWatch Logs retention value (${LOG_RETENTION_DAYS.join(', ')})`);
  }

  let stateBackend: StateBackendConfig = { kind: 'local' };
  const stateBucket = str('stateBucket');
  if (stateBucket) {
    const bucketProblem = NAME_RULES.s3Bucket.check(stateBucket);
    if (bucketProblem) fail('stateBucket', `"${stateBucket}" is not an S3 bucket name: ${bucketProblem} (${NAME_RULES.s3Bucket.doc})`);
    const stateRegion = str('stateRegion', region)!;
    if (!/^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/.test(stateRegion)) fail('stateRegion', `"${stateRegion}" is not an AWS region name`);
    const keyPrefix = str('stateKeyPrefix', `${namePrefix}/${stage}`)!.replace(/^\/+|\/+$/g, '');
    if (!/^[A-Za-z0-9!_.*'()/-]+$/.test(keyPrefix)) fail('stateKeyPrefix', `"${keyPrefix}" has characters unsafe in an S3 key`);
    stateBackend = { kind: 's3', bucket: stateBucket, region: stateRegion, keyPrefix };
  } else {
    for (const name of ['stateRegion', 'stateKeyPrefix'] as const) {
      if (raw(name) !== undefined) fail(name, 'only applies with stateBucket (S3 backend)');
    }
  }

  // Batching: bounds are the Step Functions / ECS limits the state machine builder enforces too.
  const batchSize = int('batchSize', 50);
  if (batchSize < 1 || batchSize > maxBatchSize()) {
    fail('batchSize', `must be 1-${maxBatchSize()} (a batch's input is capped at ${DEFAULT_MAX_BATCH_BYTES} bytes so its key list fits ECS's 8 KiB container-override limit; more keys could never fit), got ${batchSize}`);
  }
  const maxConcurrency = int('maxConcurrency', 20);
  if (maxConcurrency < 1 || maxConcurrency > 10000) fail('maxConcurrency', `must be 1-10000 (a Distributed Map runs at most 10000 child executions at once), got ${maxConcurrency}`);
  const toleratedText = str('toleratedFailurePercentage');
  let toleratedFailurePercentage = 5;
  if (toleratedText !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(toleratedText)) fail('toleratedFailurePercentage', `expected a number from 0 to 100, got "${toleratedText}"`);
    toleratedFailurePercentage = Number(toleratedText);
    if (toleratedFailurePercentage > 100) fail('toleratedFailurePercentage', `must be 0-100, got ${toleratedFailurePercentage}`);
  }
  const converterConcurrency = int('converterConcurrency', 4);
  if (converterConcurrency < 1 || converterConcurrency > 64) fail('converterConcurrency', `must be 1-64, got ${converterConcurrency}`);

  // Input prefixes scope the converter's reads (IAM) and what the state machine accepts.
  const inputPrefixes = raw('inputPrefixes') === undefined ? ['incoming/'] : list('inputPrefixes', /[,\s]+/);
  if (inputPrefixes.length === 0) fail('inputPrefixes', 'at least one prefix is required');
  if (inputPrefixes.length > 10) fail('inputPrefixes', `at most 10 prefixes (each is a policy resource and a state machine rule), got ${inputPrefixes.length}`);
  for (const p of inputPrefixes) {
    if (!/^[A-Za-z0-9!_.'()=+,@$&;:-][A-Za-z0-9!_.'()=+,@$&;:/-]*\/$/.test(p) || p.includes('//')) {
      fail('inputPrefixes', `"${p}" must be a key prefix ending in "/", not starting with "/", without "*", "?" or empty segments (the whole bucket cannot be an input: it holds outputs, manifests and results)`);
    }
  }
  for (const a of inputPrefixes) {
    for (const b of inputPrefixes) {
      if (a !== b && b.startsWith(a)) fail('inputPrefixes', `"${b}" is inside "${a}"; list only the outer one`);
    }
  }
  if (new Set(inputPrefixes).size !== inputPrefixes.length) fail('inputPrefixes', 'lists a prefix twice');

  const intIn = (name: SettingName, dflt: number, min: number, max: number, why = ''): number => {
    const v = int(name, dflt);
    if (v < min || v > max) fail(name, `must be ${min}-${max}${why}, got ${v}`);
    return v;
  };
  // Lister settings (reach the lister's env in the ingest stack).
  const sftpRemoteDir = str('sftpRemoteDir', '.')!;
  if (/[\0\r\n]/.test(sftpRemoteDir)) fail('sftpRemoteDir', 'must not hold NUL or line breaks');
  const globs = (name: SettingName): string[] => {
    const items = list(name, /,/);
    for (const g of items) if (/[\0\r\n]/.test(g)) fail(name, `"${g}" must not hold NUL or line breaks`);
    return items;
  };
  const sftpInclude = globs('sftpInclude');
  const sftpExclude = globs('sftpExclude');
  const minFileAgeSeconds = intIn('minFileAgeSeconds', 60, 0, 86400);
  const filesPerRun = intIn('filesPerRun', 10000, 1, 100000);
  const batchMaxFiles = intIn('batchMaxFiles', 200, 1, 10000);
  const batchMaxBytes = intIn('batchMaxBytes', 268435456, 1048576, 68719476736);
  const listerRetries = intIn('listerRetries', 3, 0, 20);

  const capacity0 = str('converterCapacity', 'FARGATE')!.toUpperCase();
  if (capacity0 !== 'FARGATE' && capacity0 !== 'FARGATE_SPOT') fail('converterCapacity', `expected FARGATE or FARGATE_SPOT, got "${capacity0}"`);
  const listerTimeoutSeconds = intIn('listerTimeoutSeconds', 1800, 60, 604800);
  const converterTimeoutSeconds = intIn('converterTimeoutSeconds', 3600, 60, 604800);
  const taskAttempts = intIn('taskAttempts', 3, 1, 10);

  const scheduleRetryAttempts = intIn('scheduleRetryAttempts', 3, 0, 185);
  const scheduleMaxEventAgeSeconds = intIn('scheduleMaxEventAgeSeconds', 300, 60, 86400);
  const sftpKeyInstalled = bool('sftpKeyInstalled', false);
  if (sftpKeyInstalled && sftp.kind === 'transfer' && sftp.publicKeys.length === 0) {
    fail('sftpKeyInstalled', 'is true but sftpPublicKeys is empty: the managed server\'s user cannot log in with the installed key until its public key is configured');
  }
  const scheduleEnabled = sftpKeyInstalled;

  const alarmEmails = list('alarmEmails', /[,\s]+/);
  for (const e of alarmEmails) {
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(e)) fail('alarmEmails', `"${e}" is not an e-mail address`);
  }
  const alarmListerFailures = intIn('alarmListerFailures', 3, 1, 100);
  const alarmConversionFailures = intIn('alarmConversionFailures', 1, 1, 100000);
  const alarmNoIngestMinutes = int('alarmNoIngestMinutes', 0);
  if (alarmNoIngestMinutes !== 0 && (alarmNoIngestMinutes < 10 || alarmNoIngestMinutes > 10080)) {
    fail('alarmNoIngestMinutes', `must be 0 (off) or 10-10080, got ${alarmNoIngestMinutes}`);
  }

  const productionStage = isProductionStage(stage);
  const forceDestroy = bool('forceDestroy', !productionStage);
  const secretRecoveryDays = int('secretRecoveryDays', productionStage ? 30 : 0);
  if (secretRecoveryDays !== 0 && (secretRecoveryDays < 7 || secretRecoveryDays > 30)) {
    fail('secretRecoveryDays', `must be 0 or 7-30 (Secrets Manager's recovery window), got ${secretRecoveryDays}`);
  }

  // Names and addresses AWS would refuse at apply time, after a partial deploy: refused here instead.
  for (const n of derivedNames(namePrefix, stage)) {
    const rule = NAME_RULES[n.rule];
    const problem = rule.check(n.value);
    if (problem) {
      const full = n.argument.endsWith('_prefix') ? `${n.value}${TERRAFORM_UNIQUE_SUFFIX}` : n.value;
      fail('namePrefix', `"${namePrefix}" (with stage "${stage}") gives the ${rule.what} name "${full}", which AWS refuses: ${problem} (${rule.doc})`);
    }
  }
  const capacity = taskAddressCapacity(vpcCidr, sourceKind as SftpSourceKind);
  // A run converts with up to maxConcurrency tasks once its lister has stopped; the next scheduled
  // run's lister may start meanwhile. ECS spreads a service-less RunTask's tasks over the subnets' AZs.
  const tasks = maxConcurrency + 1;
  const perAz = Math.ceil(tasks / azCount);
  if (capacity.perSubnet < perAz) {
    fail('vpcCidr', `"${vpcCidr}" gives /${capacity.subnetPrefix} subnets with ${capacity.perSubnet} addresses per AZ for tasks (${capacity.explain}); maxConcurrency ${maxConcurrency} converter tasks + 1 lister task spread over azCount ${azCount} AZs need ${perAz} per AZ (each Fargate task takes one address): use a larger vpcCidr, a higher azCount or a lower maxConcurrency`);
  }

  return {
    namePrefix,
    stage,
    region,
    azCount,
    vpcCidr,
    natEnabled,
    sftp,
    scheduleExpression,
    listerTask,
    converterTask,
    cpuArchitecture: arch as CpuArchitecture,
    logRetentionDays,
    stateBackend,
    batchSize,
    maxConcurrency,
    toleratedFailurePercentage,
    converterConcurrency,
    inputPrefixes,
    sftpRemoteDir,
    sftpInclude,
    sftpExclude,
    minFileAgeSeconds,
    filesPerRun,
    batchMaxFiles,
    batchMaxBytes,
    listerRetries,
    converterCapacity: capacity0 as CapacityProvider,
    listerTimeoutSeconds,
    converterTimeoutSeconds,
    taskAttempts,
    scheduleRetryAttempts,
    scheduleMaxEventAgeSeconds,
    sftpKeyInstalled,
    scheduleEnabled,
    alarmEmails,
    alarmListerFailures,
    alarmConversionFailures,
    alarmNoIngestMinutes,
    productionStage,
    forceDestroy,
    secretRecoveryDays,
  };
}

/** A stage named like production keeps its data on destroy: prod, production, prd, prd2, live... */
export function isProductionStage(stage: string): boolean {
  return /^(prod|prd|live)/.test(stage);
}

/** Parses `a.b.c.d/n` into a 32-bit network number and prefix length; undefined if malformed. */
export function parseCidr(cidr: string): { network: number; prefix: number } | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix > 32) return undefined;
  const network = (((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0);
  return { network, prefix };
}

function checkCidr(cidr: string, minPrefix: number, maxPrefix: number): string | undefined {
  const parsed = parseCidr(cidr);
  if (!parsed) return `"${cidr}" is not an IPv4 CIDR block like 10.0.0.0/16`;
  if (parsed.prefix < minPrefix || parsed.prefix > maxPrefix) return `"${cidr}" must have a prefix length from /${minPrefix} to /${maxPrefix}`;
  const hostBits = 32 - parsed.prefix;
  const hostMask = hostBits === 32 ? 0xffffffff : (2 ** hostBits - 1);
  if ((parsed.network & hostMask) !== 0) return `"${cidr}" has host bits set (the network address is ${formatIp(parsed.network & ~hostMask >>> 0)}/${parsed.prefix})`;
  return undefined;
}

function formatIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

/** The `index`-th subnet of `cidr` with `newBits` more prefix bits (what Terraform's cidrsubnet does). */
export function cidrSubnet(cidr: string, newBits: number, index: number): string {
  const parsed = parseCidr(cidr);
  if (!parsed) throw new Error(`cidrSubnet: "${cidr}" is not an IPv4 CIDR`);
  const prefix = parsed.prefix + newBits;
  if (prefix > 32 || index < 0 || index >= 2 ** newBits) throw new Error(`cidrSubnet: cannot take subnet ${index} of ${cidr} with ${newBits} new bits`);
  const network = (parsed.network + index * 2 ** (32 - prefix)) >>> 0;
  return `${formatIp(network)}/${prefix}`;
}

// ---- VPC address arithmetic (the network stack lays subnets out with these) ----

/**
 * Interface endpoints, one per AWS API called from inside the VPC: ECR api+dkr (image pulls), CloudWatch
 * Logs (awslogs) and Secrets Manager (the injected SFTP key). S3 has a gateway endpoint, which takes no
 * address. No task calls STS (task credentials come from the ECS credentials endpoint) or Step Functions.
 */
export const INTERFACE_ENDPOINT_SERVICES = ['ecr.api', 'ecr.dkr', 'logs', 'secretsmanager'] as const;

/** Subnets are /(vpc+4): private ones take indexes 0..5, public ones 8..13. */
export const SUBNET_NEW_BITS = 4;

/**
 * Addresses per private subnet left for Fargate tasks: AWS reserves the first four and the last address
 * of every subnet (https://docs.aws.amazon.com/vpc/latest/userguide/subnet-sizing.html); each interface
 * endpoint puts one network interface in each of its subnets
 * (https://docs.aws.amazon.com/vpc/latest/privatelink/create-interface-endpoint.html), and so does the
 * Transfer server's VPC endpoint; each awsvpc task takes one more
 * (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-networking.html).
 */
export function taskAddressCapacity(vpcCidr: string, sftpKind: SftpSourceKind): { subnetPrefix: number; perSubnet: number; explain: string } {
  const parsed = parseCidr(vpcCidr);
  if (!parsed) throw new Error(`taskAddressCapacity: "${vpcCidr}" is not an IPv4 CIDR`);
  const subnetPrefix = parsed.prefix + SUBNET_NEW_BITS;
  const size = 2 ** (32 - subnetPrefix);
  const endpoints = INTERFACE_ENDPOINT_SERVICES.length;
  const transfer = sftpKind === 'transfer' ? 1 : 0;
  const explain = `${size} - 5 reserved by AWS - ${endpoints} interface endpoints${transfer ? ' - 1 Transfer endpoint' : ''}`;
  return { subnetPrefix, perSubnet: size - 5 - endpoints - transfer, explain };
}

// ---- resource names: AWS's own rules for every name built from namePrefix and stage ----

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
    check: (name: string) => first(
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
    check: (name: string) => first(
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
    check: (name: string) => first(
      length(name, 1, 512),
      chars(name, /^[.\-_/#A-Za-z0-9]+$/, 'letters, digits and ._-/#'),
      name.startsWith('aws/') ? 'must not start with "aws/"' : undefined,
    ),
  },
  ssmParameter: {
    what: 'SSM parameter',
    doc: 'https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-parameter-name-constraints.html',
    check: (name: string) => first(
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
    check: (name: string) => first(length(name, 1, 64), chars(name, /^[0-9a-zA-Z_.-]+$/, 'letters, digits, hyphens, underscores and periods')),
  },
} as const satisfies Record<string, NameRule>;

export type NameRuleId = keyof typeof NAME_RULES;

export interface DerivedName {
  /** Terraform resource type and the argument holding the name. */
  readonly resource: string;
  readonly argument: 'name' | 'name_prefix' | 'bucket_prefix' | 'family';
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
    ...d('aws_cloudwatch_log_group', 'name', 'logGroup', `/vpc/${n('vpc')}/flow-logs`, `/aws/transfer/${n('sftp')}`, `/ecs/${n('sftp-lister')}`, `/ecs/${n('converter')}`, `/aws/vendedlogs/states/${n('pipeline')}`),
    ...d('aws_iam_role', 'name', 'iamRole', ...['vpc-flow-logs', 'sftp-user', 'lister-task', 'lister-exec', 'schedule', 'converter-task', 'converter-exec', 'state-machine'].map(n)),
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
  ];
}

function checkPublicKey(key: string): string | undefined {
  // Never echo the value: a misplaced private key must not land in logs.
  if (/PRIVATE KEY/.test(key)) return 'looks like a PRIVATE key; only public keys go in configuration (the private key goes into the Secrets Manager secret, see README)';
  const parts = key.split(/\s+/);
  if (parts.length < 2 || !SSH_KEY_TYPES.includes(parts[0])) return `is not an OpenSSH public key line ("${SSH_KEY_TYPES.join('|')} AAAA... [comment]")`;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(parts[1])) return 'has a key body that is not base64';
  // The blob starts with its own type name (uint32 length + string); a mismatch means a mangled key.
  const blob = Buffer.from(parts[1], 'base64');
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (len <= 0 || 4 + len > blob.length || blob.subarray(4, 4 + len).toString('latin1') !== parts[0]) {
    return `has a key body that does not encode a ${parts[0]} key`;
  }
  return undefined;
}

function checkSchedule(expr: string): string | undefined {
  const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expr);
  if (rate) {
    const n = Number(rate[1]);
    if (n < 1) return `"${expr}": the rate must be a positive number`;
    const singular = !rate[2].endsWith('s');
    if (n === 1 && !singular) return `"${expr}": use the singular unit for 1 (e.g. rate(1 minute))`;
    if (n !== 1 && singular) return `"${expr}": use the plural unit for ${n} (e.g. rate(${n} ${rate[2]}s))`;
    return undefined;
  }
  const cron = /^cron\((.+)\)$/.exec(expr);
  if (cron) {
    const fields = cron[1].trim().split(/\s+/);
    if (fields.length !== 6) return `"${expr}": cron() needs 6 fields (minutes hours day-of-month month day-of-week year), got ${fields.length}`;
    if (fields[2] !== '?' && fields[4] !== '?') return `"${expr}": cron() needs "?" in day-of-month or day-of-week`;
    return undefined;
  }
  if (/^at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)$/.test(expr)) return undefined;
  return `"${expr}" is not a schedule expression: use rate(N unit), cron(6 fields) or at(yyyy-mm-ddThh:mm:ss)`;
}
