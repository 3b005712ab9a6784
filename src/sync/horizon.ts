/**
 * The watermark horizon: the highest lower bound the NEXT incremental read may use
 * without missing a write the coming snapshot cannot see.
 *
 * A row the snapshot cannot see was written by a transaction open when the snapshot was
 * taken, or begun after it, and its watermark is at least that transaction's start
 * (`now()` is the START time). So: the oldest start among open transactions, or the
 * present moment if none is open. It must be read BEFORE the snapshot is taken:
 * pg_stat_activity is sampled once per transaction, and a transaction that committed
 * between the snapshot and that sample would be invisible to both.
 */
import type pg from 'pg';
import type { Logger } from '../log.ts';

export interface Horizon {
  /** Lower bound for the next run (timestamptz text, UTC). */
  value: string;
  /** When it was read. */
  at: string;
  /** The open transaction that held it back, if one did. */
  heldBackBy?: string;
  /** Sessions of other roles whose transaction start this role cannot see. */
  hiddenSessions: number;
}

/**
 * Reads the horizon on `client` (outside any transaction). `lookback` (a PostgreSQL
 * interval) widens it for application-side clocks; when other roles' sessions are hidden
 * and no lookback is given, 15 minutes is used and a warning says how to avoid it.
 */
export async function readHorizon(client: pg.Client, label: string, logger: Logger, lookback?: string): Promise<Horizon> {
  // Sessions of other roles show NULL for everything but `query` unless this role has
  // pg_read_all_stats, so their transactions are found through pg_locks, which anyone can
  // read: every open transaction holds a lock on its own virtual transaction id.
  const r = await client.query<{ at: string; value: string; oldest: string | null; holder: string | null; hidden: number }>(
    `with open as (
       select a.pid, a.xact_start, a.application_name
         from pg_locks l left join pg_stat_activity a on a.pid = l.pid
        where l.locktype = 'virtualxid' and l.granted and l.pid <> pg_backend_pid()
          -- A visible session in another database cannot write ours; a hidden one might
          -- be in ours, so it counts.
          and (a.datname is null or a.datname = current_database()))
     select statement_timestamp()::text as at,
            least(statement_timestamp(), min(xact_start))::text as value,
            min(xact_start)::text as oldest,
            (array_agg(pid::text || coalesce(' "' || nullif(application_name, '') || '"', '') order by xact_start)
               filter (where xact_start is not null))[1] as holder,
            count(*) filter (where xact_start is null)::int as hidden
       from open`,
  );
  const row = r.rows[0]!;
  const h: Horizon = {
    value: row.value,
    at: row.at,
    heldBackBy: row.oldest && row.value === row.oldest ? `transaction of pid ${row.holder} open since ${row.oldest}` : undefined,
    hiddenSessions: row.hidden,
  };
  let back = lookback;
  if (h.hiddenSessions > 0 && !back) {
    back = '15 minutes';
    logger.warn(
      `${h.hiddenSessions} session(s) of other roles on ${label} hide their transaction start; holding the watermark back by ${back}`,
      { hint: 'GRANT pg_read_all_stats TO this role (not superuser) for an exact horizon, or pass --lookback' },
    );
  }
  if (back) h.value = (await client.query<{ v: string }>(`select ($1::timestamptz - $2::interval)::text as v`, [h.value, back])).rows[0]!.v;
  return h;
}
