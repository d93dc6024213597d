#!/usr/bin/env node
/**
 * Entrypoint: `node dist/main.js`. Configuration by environment (README.md). Prints one JSON
 * summary line on stdout; logs are JSON lines on stderr.
 *
 * Exit codes: 0 all done; 1 some file (or the manifest) failed; 2 configuration error;
 * 3 refused or unable to connect (host key, authentication, unreachable); 143 terminated (SIGTERM/SIGINT).
 */
import { ConfigError, loadConfig } from './config';
import { makeLogger, startRun } from './ingest';

async function main(): Promise<number> {
  let cfg;
  try {
    cfg = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'configuration error', error: e.message })}\n`);
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
    // ECS sends SIGKILL 30 s after SIGTERM by default: leave well before, bookkeeping or not.
    setTimeout(() => process.exit(143), 15000).unref();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Guard: if the event loop ever drains with the run unfinished (a callback that never came),
  // fail loudly instead of exiting 0 without a summary.
  let finished = false;
  process.on('beforeExit', () => {
    if (finished) return;
    log('error', 'run stalled: no pending work left but the run did not finish');
    process.exit(1);
  });
  const summary = await run.done;
  finished = true;
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  if (terminated) return 143;
  if (summary.error && summary.ingested === 0 && summary.failed === 0) return 3;
  return summary.failed > 0 || summary.completionFailed > 0 || summary.error ? 1 : 0;
}

process.on('unhandledRejection', (e) => {
  process.stderr.write(`${JSON.stringify({ level: 'error', msg: 'unexpected failure', error: String((e as Error)?.stack ?? e) })}\n`);
  process.exit(1);
});

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`${JSON.stringify({ level: 'error', msg: 'unexpected failure', error: String((e as Error)?.stack ?? e) })}\n`);
    process.exitCode = 1;
  },
);
