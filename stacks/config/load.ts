// loadConfig: reads every row of the settings table (overrides > environment > context > default),
// reports unknown PIPELINE_* variables and context keys, then applies the rules between settings
// (crossFieldRules) and derives what no single setting says. Invalid input throws a ConfigError naming
// the setting, its variable and its context key; no message echoes key material.
import * as path from 'node:path';
import type { Raw } from './parse';
import { SftpSourceKind, taskAddressCapacity } from './cidr';
import { derivedNames, NAME_RULES, TERRAFORM_UNIQUE_SUFFIX } from './names';
import { DEFAULT_LAYOUT, inputPrefixesProblem } from '../constructs/refs';
import { ConfigError, FARGATE_MEMORY, SettingName, SETTINGS, settingError, SettingValue } from './settings';
import { closest } from './suggest';
import type { PipelineConfig, SftpSource, StateBackendConfig, TaskSize } from './types';

export interface LoadConfigOptions {
  /** Environment to read. @default process.env */
  readonly env?: Record<string, string | undefined>;
  /** cdktf context values (e.g. `app.node.getAllContext()`). @default {} */
  readonly context?: Record<string, unknown>;
  /** Highest-precedence values, by context key (tests). @default {} */
  readonly overrides?: Partial<Record<SettingName, Raw>>;
}

/** Every setting's value (its default when not given) and which ones were given. */
export type Values = { readonly [N in SettingName]: SettingValue<N> };

const NAMES = Object.keys(SETTINGS) as SettingName[];
const ENV_NAMES = NAMES.map((n) => SETTINGS[n].env);

/**
 * Context keys that are not settings but cdktf's own: `cdktfVersion`, `cdktfRelativeModules`, ...,
 * namespaced feature flags (`@cdktf/...`), and the logical-id flags cdktf reads from cdktf.json.
 */
function isCdktfContextKey(key: string): boolean {
  return key.startsWith('cdktf') || key.includes('/') || key === 'excludeStackIdFromLogicalIds' || key === 'allowSepCharsInLogicalIds';
}

/** Unknown PIPELINE_* variables and context keys: a typo must not silently deploy a default. */
function unknownSettings(env: Record<string, string | undefined>, context: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const name of Object.keys(env)
    .filter((n) => n.startsWith('PIPELINE_') && env[n] !== undefined)
    .sort()) {
    if (ENV_NAMES.includes(name)) continue;
    const near = closest(name, ENV_NAMES);
    problems.push(`environment variable ${name}${near ? ` (did you mean ${near}?)` : ''}`);
  }
  for (const key of Object.keys(context)
    .filter((k) => !isCdktfContextKey(k))
    .sort()) {
    if ((NAMES as string[]).includes(key)) continue;
    // Someone may use the variable's name as the key.
    const byEnv = NAMES.find((n) => SETTINGS[n].env === key);
    const near = byEnv ?? closest(key, NAMES);
    problems.push(`context key "${key}"${near ? ` (did you mean "${near}"?)` : ''}`);
  }
  return problems;
}

/** Reads and validates the whole configuration; throws ConfigError on the first invalid setting. */
export function loadConfig(options: LoadConfigOptions = {}): PipelineConfig {
  const env = options.env ?? process.env;
  const context = options.context ?? {};
  const overrides = options.overrides ?? {};

  const unknown = unknownSettings(env, context);
  if (unknown.length > 0) {
    throw new ConfigError(`Unknown configuration: ${unknown.join('; ')}. The settings are listed in README.md, "Configuration".`);
  }

  const given = new Set<SettingName>();
  const lookup = (name: SettingName): Raw | undefined => {
    const spec = SETTINGS[name];
    const o = overrides[name];
    if (o !== undefined) return o;
    const fromEnv = env[spec.env];
    if (fromEnv !== undefined && fromEnv.trim() !== '') return fromEnv;
    const fromContext = context[name];
    if (fromContext !== undefined && fromContext !== null && fromContext !== '') return fromContext as Raw;
    return undefined;
  };
  const values = {} as Record<SettingName, unknown>;
  for (const name of NAMES) {
    const raw = lookup(name);
    // A private key pasted into ANY setting is refused before a validation message could echo it.
    if (raw !== undefined && (Array.isArray(raw) ? raw : [raw]).some((x) => /PRIVATE KEY/.test(String(x)))) {
      throw settingError(name, 'looks like a PRIVATE key; no setting takes one (the private key goes into the Secrets Manager secret, see README)');
    }
    if (raw === undefined) {
      values[name] = SETTINGS[name].default;
    } else {
      given.add(name);
      values[name] = SETTINGS[name].parse(raw, (reason) => {
        throw settingError(name, reason);
      });
    }
  }
  return crossFieldRules(values as Values, given);
}

/** A stage named like production keeps its data on destroy: prod, production, prd, prd2, live... */
export function isProductionStage(stage: string): boolean {
  return /^(prod|prd|live)/.test(stage);
}

/**
 * Every rule that involves more than one setting, and every derived value, in one place. Single
 * settings were parsed (with their bounds) from the table already.
 */
export function crossFieldRules(v: Values, given: ReadonlySet<SettingName>): PipelineConfig {
  const fail = (name: SettingName, reason: string): never => {
    throw settingError(name, reason);
  };
  const onlyWith = (names: SettingName[], what: string) => {
    for (const name of names) if (given.has(name)) fail(name, what);
  };

  let sftp: SftpSource;
  if (v.sftpSource === 'transfer') {
    onlyWith(['sftpHost', 'sftpPort', 'sftpHostKeyFingerprints'], 'only applies to sftpSource "external"; the managed server\'s host key is read from AWS');
    sftp = { kind: 'transfer', userName: v.sftpUser, publicKeys: v.sftpPublicKeys, allowedCidrs: v.sftpAllowedCidrs };
  } else {
    if (v.sftpHost === undefined) return fail('sftpHost', 'required when sftpSource is "external"');
    if (v.sftpHostKeyFingerprints.length === 0) {
      fail(
        'sftpHostKeyFingerprints',
        'required when sftpSource is "external": tasks refuse to connect to an unverified host (get it with `ssh-keyscan HOST | ssh-keygen -lf -`)',
      );
    }
    if (!v.natEnabled) fail('natEnabled', 'must be true when sftpSource is "external": private subnets have no route to an outside host otherwise');
    onlyWith(['sftpPublicKeys', 'sftpAllowedCidrs'], 'only applies to sftpSource "transfer"');
    sftp = { kind: 'external', host: v.sftpHost, port: v.sftpPort, userName: v.sftpUser, hostKeyFingerprints: v.sftpHostKeyFingerprints };
  }

  const taskSize = (cpuName: 'listerCpu' | 'converterCpu', memName: 'listerMemory' | 'converterMemory'): TaskSize => {
    const [cpu, memoryMiB] = [v[cpuName], v[memName]];
    const allowed = FARGATE_MEMORY[cpu];
    if (!allowed.includes(memoryMiB)) {
      fail(
        memName,
        `${memoryMiB} MiB is not valid with ${cpu} CPU units (allowed ${allowed[0]}-${allowed[allowed.length - 1]} in steps of ${allowed[1] - allowed[0]})`,
      );
    }
    return { cpu, memoryMiB };
  };

  // The lister refuses these at task start (exit 2); refused at synth instead.
  if (v.sftpCompletion === 'move') {
    if (v.sftpCompletionMoveDir === undefined) fail('sftpCompletionMoveDir', 'required when sftpCompletion is "move"');
    const norm = (d: string) => path.posix.normalize(d).replace(/(.)\/+$/, '$1');
    if (norm(v.sftpCompletionMoveDir!) === norm(v.sftpRemoteDir)) {
      fail('sftpCompletionMoveDir', `"${v.sftpCompletionMoveDir}" is the listed folder sftpRemoteDir "${v.sftpRemoteDir}": moved files would be listed again`);
    }
  } else {
    onlyWith(['sftpCompletionMoveDir'], 'only applies when sftpCompletion is "move"');
  }

  let stateBackend: StateBackendConfig = { kind: 'local' };
  if (v.stateBucket !== undefined) {
    stateBackend = { kind: 's3', bucket: v.stateBucket, region: v.stateRegion ?? v.region, keyPrefix: v.stateKeyPrefix ?? `${v.namePrefix}/${v.stage}` };
  } else {
    onlyWith(['stateRegion', 'stateKeyPrefix'], 'only applies with stateBucket (S3 backend)');
  }

  // First deploy: the schedule stays DISABLED until the operator says the key is in the secret.
  if (v.sftpKeyInstalled && sftp.kind === 'transfer' && sftp.publicKeys.length === 0) {
    fail(
      'sftpKeyInstalled',
      "is true but sftpPublicKeys is empty: the managed server's user cannot log in with the installed key until its public key is configured",
    );
  }

  // The data bucket's layout is DEFAULT_LAYOUT; the batch stack checks its own layout the same way.
  const prefixProblem = inputPrefixesProblem(v.inputPrefixes, DEFAULT_LAYOUT);
  if (prefixProblem) fail('inputPrefixes', prefixProblem);

  // Names AWS would refuse at apply time, after a partial deploy: refused here instead.
  for (const n of derivedNames(v.namePrefix, v.stage)) {
    const rule = NAME_RULES[n.rule];
    const problem = rule.check(n.value);
    if (problem) {
      const full = n.argument.endsWith('_prefix') ? `${n.value}${TERRAFORM_UNIQUE_SUFFIX}` : n.value;
      fail('namePrefix', `"${v.namePrefix}" (with stage "${v.stage}") gives the ${rule.what} name "${full}", which AWS refuses: ${problem} (${rule.doc})`);
    }
  }
  // A run converts with up to maxConcurrency tasks once its lister has stopped; the next scheduled
  // run's lister may start meanwhile. ECS spreads a service-less RunTask's tasks over the subnets' AZs.
  const capacity = taskAddressCapacity(v.vpcCidr, v.sftpSource as SftpSourceKind);
  const perAz = Math.ceil((v.maxConcurrency + 1) / v.azCount);
  if (capacity.perSubnet < perAz) {
    fail(
      'vpcCidr',
      `"${v.vpcCidr}" gives /${capacity.subnetPrefix} subnets with ${capacity.perSubnet} addresses per AZ for tasks (${capacity.explain}); maxConcurrency ${v.maxConcurrency} converter tasks + 1 lister task spread over azCount ${v.azCount} AZs need ${perAz} per AZ (each Fargate task takes one address): use a larger vpcCidr, a higher azCount or a lower maxConcurrency`,
    );
  }

  const productionStage = isProductionStage(v.stage);
  return {
    namePrefix: v.namePrefix,
    stage: v.stage,
    region: v.region,
    azCount: v.azCount,
    vpcCidr: v.vpcCidr,
    natEnabled: v.natEnabled,
    sftp,
    scheduleExpression: v.scheduleExpression,
    listerTask: taskSize('listerCpu', 'listerMemory'),
    converterTask: taskSize('converterCpu', 'converterMemory'),
    cpuArchitecture: v.cpuArchitecture,
    logRetentionDays: v.logRetentionDays,
    stateBackend,
    batchSize: v.batchSize,
    maxConcurrency: v.maxConcurrency,
    toleratedFailurePercentage: v.toleratedFailurePercentage,
    converterConcurrency: v.converterConcurrency,
    inputPrefixes: v.inputPrefixes,
    sftpRemoteDir: v.sftpRemoteDir,
    sftpInclude: v.sftpInclude,
    sftpExclude: v.sftpExclude,
    sftpCompletion: v.sftpCompletion,
    sftpCompletionMoveDir: v.sftpCompletionMoveDir,
    minFileAgeSeconds: v.minFileAgeSeconds,
    filesPerRun: v.filesPerRun,
    batchMaxFiles: v.batchMaxFiles,
    batchMaxBytes: v.batchMaxBytes,
    listerRetries: v.listerRetries,
    converterCapacity: v.converterCapacity,
    listerTimeoutSeconds: v.listerTimeoutSeconds,
    converterTimeoutSeconds: v.converterTimeoutSeconds,
    taskAttempts: v.taskAttempts,
    scheduleRetryAttempts: v.scheduleRetryAttempts,
    scheduleMaxEventAgeSeconds: v.scheduleMaxEventAgeSeconds,
    sftpKeyInstalled: v.sftpKeyInstalled,
    scheduleEnabled: v.sftpKeyInstalled,
    alarmEmails: v.alarmEmails,
    alarmListerFailures: v.alarmListerFailures,
    alarmConversionFailures: v.alarmConversionFailures,
    alarmNoIngestMinutes: v.alarmNoIngestMinutes,
    runbookUrl: v.runbookUrl,
    productionStage,
    forceDestroy: v.forceDestroy ?? !productionStage,
    secretRecoveryDays: v.secretRecoveryDays ?? (productionStage ? 30 : 0),
  };
}
