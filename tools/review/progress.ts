// Progress of a long run (`npm run review` plans every stack with terraform: minutes) on stderr, so the
// report on stdout stays clean. On a terminal: one status line rewritten in place, with the elapsed
// time ticking, cut to the terminal width. Elsewhere (CI logs, pipes): one plain line per event.

export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

export interface ProgressOptions {
  readonly stream?: ProgressStream;
  readonly now?: () => number;
  /** Redraw interval of the status line on a terminal (ms); 0 redraws on events only. */
  readonly tickMs?: number;
}

export class Progress {
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  private readonly started: number;
  private readonly running = new Map<string, string>();
  private phase = '';
  private done = 0;
  private total = 0;
  private timer?: NodeJS.Timeout;
  private drawn = false;

  constructor(options: ProgressOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.now = options.now ?? Date.now;
    this.started = this.now();
    const tick = options.tickMs ?? 1000;
    if (this.stream.isTTY && tick > 0) {
      this.timer = setInterval(() => this.draw(), tick);
      this.timer.unref();
    }
  }

  private seconds(): string {
    return `${Math.round((this.now() - this.started) / 1000)} s`;
  }

  private draw(): void {
    if (!this.stream.isTTY || !this.phase) return;
    const items = [...this.running].map(([item, step]) => `${item} (${step})`).join(', ');
    const count = this.total ? ` ${this.done}/${this.total}` : '';
    const line = `${this.phase}${count}${items ? `: ${items}` : ''} ... ${this.seconds()}`;
    const width = Math.max(20, (this.stream.columns ?? 80) - 1);
    this.stream.write(`\r\x1b[K${line.length > width ? `${line.slice(0, width - 3)}...` : line}`);
    this.drawn = true;
  }

  private say(line: string): void {
    if (this.stream.isTTY) this.draw();
    else this.stream.write(`${line}\n`);
  }

  /** A new phase (`planning 7 stacks with terraform`); `total` items to count, if any. */
  begin(phase: string, total = 0): void {
    this.phase = phase;
    this.done = 0;
    this.total = total;
    this.running.clear();
    this.say(`${phase}${total ? ` (${total})` : ''} ... ${this.seconds()}`);
  }

  /** An item of the phase reached a step (`batch`, `init`). */
  step(item: string, step: string): void {
    this.running.set(item, step);
    this.say(`  ${item}: ${step} ... ${this.seconds()}`);
  }

  /** An item of the phase finished, with a one-line outcome. */
  finish(item: string, outcome: string): void {
    this.running.delete(item);
    this.done++;
    this.say(`  ${item}: ${outcome} (${this.total ? `${this.done}/${this.total}, ` : ''}${this.seconds()})`);
  }

  /** Stops ticking and clears the status line (the report follows on stdout). */
  end(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.stream.isTTY && this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}
