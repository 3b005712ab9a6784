/**
 * The client-side bound on every wait for a server. The server's statement_timeout ends
 * a statement that runs too long, but not a wait on the network: when a proxy or a
 * firewall stops forwarding and keeps the sockets open, the backend waits on us, we wait
 * on it, and TCP keepalive sees nothing wrong (the proxy's host answers the probes). A
 * run then hung forever (still waiting after 400 s with the default flags).
 *
 * So each session is watched: while the server owes us bytes (a statement sent and not
 * answered, a COPY TO whose rows we are ready to take) or must take ours (bytes queued on
 * the socket), some byte has to move within the bound; past it the socket is destroyed
 * with a StalledConnectionError naming the side, which fails whatever waits on it. The
 * clock does not run when the wait is ours, so a slow side is never blamed on the other:
 *  - no statement outstanding (idle, idle in transaction while the other side works);
 *  - bytes the server sent sitting unread in our buffer (we are slow to consume them: the
 *    other side's COPY FROM holds the pipeline back);
 *  - a COPY FROM STDIN whose data we have not finished sending (the source is slow).
 *
 * Bounds (README "Timeouts"): a statement or a COPY, --statement-timeout plus
 * STALL_MARGIN_MS: the server cancels a statement at its statement_timeout and says so,
 * so only a silent network reaches the bound, and a legitimately long statement (an
 * UPDATE, a CREATE INDEX, a COPY whose first row takes minutes to find) is never cut
 * short. With --statement-timeout 0 (no limit) a statement has no client bound either
 * (keepalive still finds a dead peer), but a COPY that moves no byte for
 * COPY_IDLE_DEFAULT_MS is given up.
 */
import type net from 'node:net';
import { Readable, Writable } from 'node:stream';
import type pg from 'pg';
import { StalledConnectionError } from '../errors.ts';

/** Added to --statement-timeout: the server's cancel and its error message reach us well within it. */
export const STALL_MARGIN_MS = 10_000;

/** The no-byte bound of a COPY when --statement-timeout is 0 (no limit). */
export const COPY_IDLE_DEFAULT_MS = 10 * 60_000;

export interface StallBounds {
  /** A statement the server owes an answer to; 0: no bound. */
  statementMs: number;
  /** A COPY moving no byte either way. */
  copyMs: number;
  /** How the bound was derived, for the error message. */
  describe: (kind: 'statement' | 'copy') => string;
}

/** The bounds for a session whose statement_timeout is `statementMs` (0: none). */
export function stallBounds(statementMs: number): StallBounds {
  const statement = statementMs > 0 ? statementMs + STALL_MARGIN_MS : 0;
  return {
    statementMs: statement,
    copyMs: statement || COPY_IDLE_DEFAULT_MS,
    describe: (kind) =>
      statementMs > 0
        ? `--statement-timeout ${seconds(statementMs)} + ${seconds(STALL_MARGIN_MS)} margin`
        : `${kind === 'copy' ? `a COPY moves a byte at least every ${seconds(COPY_IDLE_DEFAULT_MS)}` : 'no bound'} with --statement-timeout 0`,
  };
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

/** What pg keeps private but the watchdog must see. */
interface ClientInternals {
  connection: { stream: net.Socket };
  _activeQuery?: unknown;
}

type Waiting = 'none' | 'statement' | 'copy';

/** Whose turn it is on this session: nobody's, the server's to answer, or the server's to move COPY bytes. */
function waitingOn(client: pg.Client, s: net.Socket): Waiting {
  const q = (client as unknown as ClientInternals)._activeQuery;
  const copy = q instanceof Readable || q instanceof Writable;
  // Our bytes queued on the socket: the server (or the path to it) must take them.
  if (s.writableLength > 0) return copy ? 'copy' : 'statement';
  if (!q) return 'none';
  // COPY FROM STDIN after the server's go-ahead and before our CopyDone (or CopyFail): the next byte is ours to send.
  if (q instanceof Writable && !(q instanceof Readable)) {
    const started = (q as unknown as { _gotCopyInResponse?: boolean })._gotCopyInResponse === true;
    if (started && !q.writableEnded && !q.destroyed) return 'none';
  }
  // Bytes already here and not yet read: we are the slow one.
  if (s.readableLength > 0) return 'none';
  return copy ? 'copy' : 'statement';
}

/**
 * Watches `client` (connected) until its socket closes; `side` names it in the error.
 * Polls counters rather than listening for 'data': pg-copy-streams takes the socket's one
 * data listener for itself during a COPY TO.
 */
export function watchSession(client: pg.Client, side: string, bounds: StallBounds): void {
  const s = (client as unknown as ClientInternals).connection.stream;
  const shortest = Math.min(...[bounds.statementMs, bounds.copyMs].filter((b) => b > 0));
  // A tenth of the bound, within 100 ms and 1 s: a stall is reported at most a tick late.
  const tickMs = Math.max(100, Math.min(1000, Math.floor(shortest / 10)));
  let last = '';
  let since = Date.now();
  const timer = setInterval(() => {
    if (s.destroyed) return clearInterval(timer);
    const now = Date.now();
    const counters = `${s.bytesRead}/${s.bytesWritten}/${s.writableLength}`;
    const moved = counters !== last;
    last = counters;
    const waiting = waitingOn(client, s);
    if (waiting === 'none' || moved) {
      since = now;
      return;
    }
    const bound = waiting === 'copy' ? bounds.copyMs : bounds.statementMs;
    if (bound > 0 && now - since >= bound) {
      clearInterval(timer);
      const what = waiting === 'copy' ? 'a COPY was under way' : 'a statement waited for its answer';
      s.destroy(new StalledConnectionError(side, what, now - since, bounds.describe(waiting)));
    }
  }, tickMs);
  timer.unref();
  s.once('close', () => clearInterval(timer));
}
