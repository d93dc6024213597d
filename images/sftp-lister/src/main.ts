#!/usr/bin/env node
/**
 * Entrypoint: `node dist/main.js`. Configuration by environment (README.md). Prints exactly one JSON
 * summary line on stdout, whatever the outcome (also for a configuration error and a forced exit);
 * logs are JSON lines on stderr.
 *
 * Exit codes: 0 all done; 1 some file, folder, completion or the manifest failed; 2 configuration
 * error; 3 refused or unable to connect (host key, authentication, unreachable); 143 terminated
 * (SIGTERM/SIGINT).
 */
import { ConfigError, loadConfig } from './config';
import { Summary, emptySummary, exitCode, makeLogger, startRun } from './ingest';
import { runMetrics } from './metrics';

let printed = false;
/** The one summary line, with the run's metrics (EMF); later calls (a forced exit racing the normal end) print nothing. */
function printSummary(summary: Summary, code: number): void {
  if (printed) return;
  printed = true;
  summary.maxRssMB = Math.round(process.resourceUsage().maxRSS / 102.4) / 10;
  process.stdout.write(`${JSON.stringify({ ...summary, ...runMetrics(summary, code) })}\n`);
}

async function main(): Promise<number> {
  let cfg;
  try {
    cfg = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'configuration error', error: e.message })}\n`);
      printSummary({ ...emptySummary(), error: e.message, errorKind: 'config' }, 2);
      return 2;
    }
    throw e;
  }
  const log = makeLogger(cfg.logLevel);
  // Keep stderr JSON-only; the SDK's notice about future Node versions is not actionable here.
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    if (!`${w.name} ${w.message}`.includes('NodeVersionSupportWarning')) log('warn', w.message, { warning: w.name });
  });
  const run = startRun(cfg, log);
  let terminated = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (terminated) return;
    terminated = true;
    log('warn', `${sig}: aborting in-flight uploads`);
    run.abort(sig);
    // ECS sends SIGKILL 30 s after SIGTERM by default: leave well before, bookkeeping or not. What
    // landed without a manifest is announced by the next run (README, "at-least-once").
    setTimeout(() => {
      log('error', 'bookkeeping did not finish within 15 s of the signal: exiting; the next run announces what landed');
      printSummary({ ...run.summary, error: run.summary.error ?? `${sig}: forced exit before the manifest was written`, errorKind: 'terminated' }, 143);
      process.exit(143);
    }, 15000).unref();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Guard: if the event loop ever drains with the run unfinished (a callback that never came),
  // fail loudly instead of exiting 0 without a summary.
  let finished = false;
  process.on('beforeExit', () => {
    if (finished) return;
    log('error', 'run stalled: no pending work left but the run did not finish');
    printSummary({ ...run.summary, error: 'run stalled', errorKind: 'run' }, 1);
    process.exit(1);
  });
  const summary = await run.done;
  finished = true;
  const code = exitCode(summary, terminated);
  printSummary(summary, code);
  return code;
}

process.on('unhandledRejection', (e) => {
  process.stderr.write(`${JSON.stringify({ level: 'error', msg: 'unexpected failure', error: String((e as Error)?.stack ?? e) })}\n`);
  printSummary({ ...emptySummary(), error: `unexpected failure: ${String((e as Error)?.message ?? e)}`, errorKind: 'run' }, 1);
  process.exit(1);
});

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`${JSON.stringify({ level: 'error', msg: 'unexpected failure', error: String((e as Error)?.stack ?? e) })}\n`);
    printSummary({ ...emptySummary(), error: `unexpected failure: ${String((e as Error)?.message ?? e)}`, errorKind: 'run' }, 1);
    process.exitCode = 1;
  },
);
