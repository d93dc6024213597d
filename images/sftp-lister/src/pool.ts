/** Runs `work` over `items` with `width` workers; once `stop()` says so, nothing new starts and `skipped(n)` gets what was left. */
export async function pool<T>(
  width: number,
  items: readonly T[],
  work: (item: T) => Promise<void>,
  stop: () => boolean,
  skipped: (n: number) => void,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length && !stop()) await work(items[next++]);
    }),
  );
  if (next < items.length) skipped(items.length - next);
}

/** At most `permits` holders at once; the others wait in arrival order. */
export class Semaphore {
  private readonly waiters: (() => void)[] = [];
  constructor(private permits: number) {}

  async acquire(): Promise<void> {
    if (this.permits > 0) {
      this.permits--;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.permits++;
  }
}
