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

export type Limits = Pick<ConvertOptions, 'maxDepth' | 'maxInputBytes' | 'maxEntityExpansion' | 'spillThreshold'>;

/**
 * Limits from the environment:
 * - `MAX_DEPTH` deepest element nesting (default 10000);
 * - `MAX_INPUT_BYTES` largest input in bytes, 0 = unlimited (default 0);
 * - `MAX_ENTITY_EXPANSION` characters one attribute may grow to through DTD entities (default 1048576);
 * - `SPILL_THRESHOLD` characters of one buffered value held in memory before spilling to TMPDIR
 *   (default 4194304).
 */
export function limitsFromEnv(env: NodeJS.ProcessEnv): Limits {
  return {
    maxDepth: int(env, 'MAX_DEPTH', 10000, 1),
    maxInputBytes: int(env, 'MAX_INPUT_BYTES', 0),
    maxEntityExpansion: int(env, 'MAX_ENTITY_EXPANSION', 1 << 20),
    spillThreshold: int(env, 'SPILL_THRESHOLD', 1 << 22, 1),
  };
}

export { int as intFromEnv };
