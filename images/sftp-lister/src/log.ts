/** JSON log lines on stderr (README, "Output"). */
import type { Config } from './config';

export type Level = Config['logLevel'];
const LEVELS: Level[] = ['debug', 'info', 'warn', 'error'];

export type Logger = (level: Level, msg: string, fields?: Record<string, unknown>) => void;

export function makeLogger(min: Level): Logger {
  return (level, msg, fields) => {
    // Metric lines (EMF, `_aws`) are written at every LOG_LEVEL: CloudWatch needs each of them.
    if (LEVELS.indexOf(level) < LEVELS.indexOf(min) && !(fields && '_aws' in fields)) return;
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
  };
}
