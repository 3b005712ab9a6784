/**
 * The pair step every source -> target command starts and ends with: connect both sides,
 * take the target lock (one writer per target, src/sync/lock.ts), run the body, then
 * release the lock and close both sessions whatever happened. sync and repair share it,
 * so the tail that must never be skipped (the lock released, the sessions ended) exists
 * once.
 */
import type pg from 'pg';
import { connect } from '../db/connect.ts';
import { InvalidInputError } from '../errors.ts';
import { acquireTargetLock, releaseTargetLock } from './lock.ts';

/** One side of a pair, as far as connecting is concerned. */
export interface PairSide {
  /** Environment name (blue, green, …), used in messages and as the session label. */
  name: string;
  /** Connection URL. */
  url: string;
}

/** The two open sessions of a run. */
export interface PairSessions {
  /** Source session (reads only). */
  src: pg.Client;
  /** Target session: it holds the target lock (unless the caller's own session does). */
  dst: pg.Client;
}

export interface PairOptions {
  from: PairSide;
  to: PairSide;
  /** application_name of both sessions, so a DBA sees who holds what. */
  app: string;
  /** The caller's own session already holds the target lock (a cutover takes it before freezing). */
  targetLockHeld?: boolean;
  /** Refuse a database paired with itself (sync --to blue with the default --from blue). */
  distinct?: boolean;
  /**
   * Called when the body (or the lock, or the same-database check) fails, with the target
   * session when it was opened, before the lock is released: sync records the failed run
   * there so status shows it.
   */
  onFailure?: (dst: pg.Client | undefined, err: unknown) => Promise<void>;
}

/** Runs `body` with both sessions open and the target lock held; always releases and closes. */
export async function withPair<T>(opts: PairOptions, body: (s: PairSessions) => Promise<T>): Promise<T> {
  const src = await connect(opts.from.url, { label: opts.from.name, applicationName: opts.app });
  let dst: pg.Client | undefined;
  try {
    dst = await connect(opts.to.url, { label: opts.to.name, applicationName: opts.app });
    if (!opts.targetLockHeld) await acquireTargetLock(dst, `target ${opts.to.name}`);
    if (opts.distinct) await assertDistinct(src, dst, opts.from.name, opts.to.name);
    return await body({ src, dst });
  } catch (err) {
    if (opts.onFailure) await opts.onFailure(dst, err);
    throw err;
  } finally {
    if (dst) {
      await releaseTargetLock(dst);
      await dst.end().catch(() => {});
    }
    await src.end().catch(() => {});
  }
}

/** Never a database into itself (sync --to blue with the default --from blue). */
async function assertDistinct(src: pg.Client, dst: pg.Client, from: string, to: string): Promise<void> {
  const whoAmI = `select current_database() as db, pg_postmaster_start_time()::text as started, coalesce(inet_server_port(), 0) as port`;
  const [me, them] = [(await src.query(whoAmI)).rows[0], (await dst.query(whoAmI)).rows[0]];
  if (JSON.stringify(me) === JSON.stringify(them)) {
    throw new InvalidInputError(`--from ${from} and --to ${to} are the same database`, 'name two different environments: bluegreen sync --from blue --to green');
  }
}
