/**
 * One ingest run, in four phases read top to bottom in `run`:
 *   1. connect (session.ts): the SSH connection, with bounded retries;
 *   2. list and decide (decide.ts): list the folder, read the index, pick the files to check;
 *   3. transfer (transfer.ts): HeadObject, then stream each new file version to S3;
 *   4. finish (finish.ts): manifest, then index, then completion (move/delete).
 * The order of the finish is what makes announcement at-least-once: the index vouches for a file
 * version (no request next time) only once a manifest naming its key was written, so an object that
 * landed in a run that was killed, stopped or failed to write its manifest is found by the next
 * run's HeadObject and announced in that run's manifest. A source is moved or deleted only after
 * that manifest exists, and only when this run streamed exactly its bytes into the object.
 */
import { S3Client } from '@aws-sdk/client-s3';
import type { Config } from './config';
import { Outcome, RunContext, Transfer } from './context';
import { Decision, listAndDecide, RemoteConfigError } from './decide';
import { describe } from './errors';
import { finish } from './finish';
import { Logger, makeLogger } from './log';
import { connectWithRetries, Session } from './session';
import { ConnectError, FatalError } from './sftp';
import { emptySummary, round, Summary } from './summary';
import { Ingestor } from './transfer';

export { makeLogger } from './log';
export type { Logger } from './log';
export { emptySummary, exitCode } from './summary';
export type { Summary } from './summary';

export function s3ClientFor(cfg: Config): S3Client {
  return new S3Client({
    ...(cfg.s3Endpoint ? { endpoint: cfg.s3Endpoint } : {}),
    forcePathStyle: cfg.s3ForcePathStyle,
  });
}

export interface RunHandle {
  /** Resolves with the summary once the run is over (also after `abort`). */
  readonly done: Promise<Summary>;
  /** The summary as it stands (for a forced exit before `done`). */
  readonly summary: Summary;
  /** Stops the run: in-flight uploads are aborted (never completed), nothing new starts. */
  abort(reason: string): void;
}

export function startRun(cfg: Config, log: Logger = makeLogger(cfg.logLevel)): RunHandle {
  let abortReason: string | undefined;
  const active = new Set<Transfer>();
  const summary = emptySummary();
  const abort = (reason: string) => {
    abortReason = reason;
    for (const t of active) {
      t.stream.destroy(new Error(`aborted: ${reason}`));
      // A request S3 is sitting on (stalled) would otherwise hold the run until the forced exit.
      t.abort.abort(new Error(`aborted: ${reason}`));
    }
  };
  const ctx: RunContext = { cfg, log, s3: s3ClientFor(cfg), session: new Session(cfg, log), summary, aborted: () => abortReason, active };
  return { done: run(ctx), summary, abort };
}

async function run(ctx: RunContext): Promise<Summary> {
  const { cfg, log, s3, session, summary, aborted } = ctx;
  const t0 = performance.now();
  const outcome = new Outcome();
  let decision: Decision | undefined;
  try {
    await connectWithRetries(session, cfg, log, aborted, () => summary.retries++).catch((e) => {
      summary.errorKind = 'connect';
      throw e;
    });
    summary.connectSeconds = round((performance.now() - t0) / 1000, 3);
    decision = await listAndDecide(ctx);
    await new Ingestor(ctx, outcome).run(decision.toCheck);
  } catch (e) {
    summary.error = e instanceof FatalError || e instanceof RemoteConfigError ? (e as Error).message : describe(e);
    if (e instanceof RemoteConfigError) summary.errorKind = 'config';
    else if (e instanceof FatalError || e instanceof ConnectError) summary.errorKind = 'connect';
    else summary.errorKind ??= 'run';
    log('error', summary.errorKind === 'run' ? 'run failed' : 'refused', { error: summary.error });
  }

  await finish(ctx, outcome, decision);
  session.close();
  s3.destroy();
  if (aborted()) summary.errorKind ??= 'terminated';
  summary.seconds = round((performance.now() - t0) / 1000, 3);
  summary.maxRssMB = round(process.resourceUsage().maxRSS / 1024, 1);
  return summary;
}
