/**
 * The scheduler sync's per-table steps run under: serially (one worker: exactly a for
 * loop, in order), or on up to `workers` workers at once (`--jobs`). A worker is an index,
 * so the caller can give each its own sessions.
 *
 * On the first failure no worker takes another item; the items already running are
 * awaited (the caller's `onFailure` can end their sessions so they stop at once), and the
 * first error is thrown. Nothing is left running behind the caller's back.
 */

export interface ScheduleOptions {
  /** How many items may run at once (1: serially, in order). */
  workers: number;
  /** Called once, at the first failure, while the other workers may still be running. */
  onFailure?: (err: unknown) => void;
}

/** Runs `step` over `items`, at most `opts.workers` at a time; resolves when all are done. */
export async function schedule<T>(items: readonly T[], opts: ScheduleOptions, step: (item: T, index: number, worker: number) => Promise<void>): Promise<void> {
  if (opts.workers <= 1) {
    for (const [i, item] of items.entries()) await step(item, i, 0);
    return;
  }
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async (w: number) => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        await step(items[i]!, i, w);
      } catch (err) {
        if (!failure) {
          failure = { err };
          opts.onFailure?.(err);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.workers, items.length) }, (_, w) => worker(w)));
  if (failure) throw failure.err;
}
