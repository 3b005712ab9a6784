/**
 * How a cutover stops once it may freeze: one way for the --timeout and for the caller's
 * AbortSignal (Ctrl-C, SIGTERM), and the cancellation of this cutover's own statements.
 */
import { connect } from '../db/connect.ts';
import { RuntimeFailure } from '../errors.ts';
import type { Logger } from '../log.ts';

/**
 * The deadline and the signal, armed just before the freeze. `halt` rejects `stopped`,
 * which every wait of the frozen part races against; `why` says what stopped it.
 */
export class Stopper {
  /** Why the cutover was stopped (timeout, signal), once it was. */
  why?: string;
  /** Rejects when the cutover is stopped; never resolves. */
  readonly stopped: Promise<never>;
  private reject!: (err: Error) => void;
  private timer?: NodeJS.Timeout;
  private deadline = 0;
  private readonly onAbort = () => this.halt(`cutover interrupted (${reasonText(this.signal?.reason)})`);

  constructor(
    private readonly logger: Logger,
    /** The source, named in the warning: it is unfrozen and keeps serving. */
    private readonly from: string,
    private readonly signal?: AbortSignal,
  ) {
    this.stopped = new Promise<never>((_, reject) => (this.reject = reject));
    this.stopped.catch(() => {});
  }

  /** Stops the cutover (once): waits racing `stopped` fail with a RuntimeFailure. */
  halt(why: string): void {
    if (this.why) return;
    this.why = why;
    this.logger.warn(`${why}: stopping; ${this.from} will be unfrozen and keep serving`);
    this.reject(new RuntimeFailure(why));
  }

  /** Starts the deadline and listens to the signal. */
  arm(timeoutMs: number): void {
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.deadline = Date.now() + timeoutMs;
    this.timer = setTimeout(() => this.halt(`cutover timed out after ${Math.round(timeoutMs / 1000)} s`), timeoutMs);
  }

  /** Milliseconds left before the deadline (at least 1). */
  remaining(): number {
    return Math.max(1, this.deadline - Date.now());
  }

  /** Neither the deadline nor the signal may stop the cutover from here. Idempotent. */
  disarm(): void {
    clearTimeout(this.timer);
    this.signal?.removeEventListener('abort', this.onAbort);
  }
}

/** A signal's reason, as words for the report. */
export function reasonText(reason: unknown): string {
  if (typeof reason === 'string') return reason;
  if (reason instanceof Error) return reason.message;
  return 'aborted';
}

/**
 * Cancels the statements of the sessions named `appNames` in this database (same role: no
 * privilege needed): the final sync's and its verify's, or the control session's freeze.
 */
export async function cancelOwn(url: string, label: string, appNames: string[], pids: number[] = []): Promise<void> {
  const c = await connect(url, { label, applicationName: 'bluegreen cutover-abort' }).catch(() => undefined);
  if (!c) return;
  try {
    await c.query(
      `select pg_cancel_backend(pid) from pg_stat_activity
        where (application_name = any($1) or pid = any($2)) and pid <> pg_backend_pid()
          -- Only this database's: the same role may run other pairs on the same server.
          and datname = current_database()`,
      [appNames, pids],
    );
  } catch {
    // Best effort: the caller waits a bounded time for what it tried to stop.
  } finally {
    await c.end().catch(() => {});
  }
}

/** Settles `p` or gives up after `ms`; true when it settled. */
export function settled(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.then(() => true, () => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]).finally(() => clearTimeout(timer));
}
