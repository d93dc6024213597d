/** The run's one SSH connection: opened with bounded retries, shared by all workers, reconnected once for all after a drop. */
import type { Config } from './config';
import { backoff, retriable, sleep } from './errors';
import type { Logger } from './log';
import { Connection, connect } from './sftp';

export class Session {
  private current?: Promise<Connection>;
  /** The host key type that matched, offered first on reconnects. */
  private readonly hostKey: { type?: string } = {};
  constructor(
    private readonly cfg: Config,
    private readonly log: Logger,
  ) {}

  get(): Promise<Connection> {
    if (this.current) {
      const cur = this.current;
      return cur.then(
        (c) => (c.closed ? this.reconnect(cur) : c),
        () => this.reconnect(cur),
      );
    }
    return this.reconnect(undefined);
  }

  private reconnect(stale: Promise<Connection> | undefined): Promise<Connection> {
    if (this.current !== stale) return this.get();
    if (stale) this.log('info', 'reconnecting', { host: this.cfg.host, port: this.cfg.port });
    this.current = connect(this.cfg, this.hostKey);
    return this.current;
  }

  close(): void {
    this.current?.then((c) => c.close()).catch(() => undefined);
  }
}

/**
 * Phase 1: the first connection, with bounded retries for transient failures (none for
 * authentication or host key). Each retry is counted; the error of the last attempt is thrown.
 */
export async function connectWithRetries(session: Session, cfg: Config, log: Logger, aborted: () => string | undefined, onRetry: () => void): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await session.get();
      return;
    } catch (e) {
      if (!retriable(e) || attempt >= cfg.retries || aborted()) throw e;
      onRetry();
      log('warn', 'connect failed, retrying', { attempt: attempt + 1, error: (e as Error).message });
      await sleep(backoff(cfg, attempt));
    }
  }
}
