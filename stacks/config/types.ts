// The typed configuration the stacks read (stacks trust it: loadConfig has validated every field).
// Each field comes from one row of the settings table (./settings.ts) or is derived in ./load.ts.
import type { SftpSourceKind } from './cidr';

export type { SftpSourceKind };
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
  /** What the lister does with an ingested file on SFTP (COMPLETION). @default 'leave' */
  readonly sftpCompletion: 'leave' | 'move' | 'delete';
  /** Where `move` puts ingested files (COMPLETION_MOVE_DIR); set exactly when sftpCompletion is 'move'. */
  readonly sftpCompletionMoveDir?: string;
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
  /** Where docs/runbook.md is published; alarm descriptions link to `<runbookUrl>#<section>`. @default 'docs/runbook.md' */
  readonly runbookUrl: string;

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
