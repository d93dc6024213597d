/** Settings shared by the container entrypoint and the CLI, read from the environment. */
import { ConvertOptions, FORMATS, Format } from './convert';

export const EXIT = { OK: 0, USAGE: 64, MALFORMED: 65, IO: 74, CONFIG: 78, SIGTERM: 143 } as const;

/** A configuration or usage problem (exit 64 for the CLI, 78 for the container). */
export class ConfigError extends Error {}

function int(env: NodeJS.ProcessEnv, name: string, dflt: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  if (!/^\d+$/.test(raw) || Number(raw) < min) throw new ConfigError(`${name} must be an integer >= ${min} (got "${raw}")`);
  return Number(raw);
}

export function parseFormat(raw: string | undefined): Format {
  const f = (raw ?? 'lab') as Format;
  if (!FORMATS.includes(f)) throw new ConfigError(`format must be one of ${FORMATS.join('|')} (got "${raw}")`);
  return f;
}

export type Limits = Pick<
  ConvertOptions,
  'maxDepth' | 'maxInputBytes' | 'maxValueChars' | 'entityAmplification' | 'entityAmplificationThreshold' | 'maxChildNames' | 'spillThreshold'
>;

function factor(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  if (!/^\d+(\.\d+)?$/.test(raw) || Number(raw) < 1) throw new ConfigError(`${name} must be a number >= 1 (got "${raw}")`);
  return Number(raw);
}

/** Limits from the environment; README.md "Limits" lists each with its default and error. */
export function limitsFromEnv(env: NodeJS.ProcessEnv): Limits {
  return {
    maxDepth: int(env, 'MAX_DEPTH', 10000, 1),
    maxInputBytes: int(env, 'MAX_INPUT_BYTES', 0),
    maxValueChars: int(env, 'MAX_VALUE_CHARS', 1 << 22, 1),
    entityAmplification: factor(env, 'ENTITY_AMPLIFICATION_MAX', 100),
    entityAmplificationThreshold: int(env, 'ENTITY_AMPLIFICATION_THRESHOLD', 1 << 23),
    maxChildNames: int(env, 'MAX_CHILD_NAMES', 100_000, 1),
    spillThreshold: int(env, 'SPILL_THRESHOLD', 1 << 20, 1),
  };
}

export { int as intFromEnv };
