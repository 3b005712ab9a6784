/**
 * One writer per target at a time (a second sync exits at once with 75). A
 * session-level advisory lock on the target: released when the session ends, so a
 * SIGKILLed run never leaves it behind, and never waited for.
 */
import type pg from 'pg';
import { LockedError } from '../errors.ts';

/** Fixed key pair for pg_try_advisory_lock(int, int): "bg" and "lock". */
const LOCK_CLASS = 0x6267;
const LOCK_OBJ = 0x6c6f636b;

export async function acquireTargetLock(client: pg.Client, label: string): Promise<void> {
  const r = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, $2) as ok', [LOCK_CLASS, LOCK_OBJ]);
  if (r.rows[0]!.ok) return;
  const holder = await client.query<{ pid: number; app: string; since: string | null }>(
    `select a.pid, a.application_name as app, to_char(a.backend_start at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS"Z"') as since
       from pg_locks l left join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and l.classid = $1 and l.objid = $2 and l.granted and l.database = (select oid from pg_database where datname = current_database())`,
    [LOCK_CLASS, LOCK_OBJ],
  );
  const h = holder.rows[0];
  throw new LockedError(label, h ? `pid ${h.pid}${h.app ? ` "${h.app}"` : ''}${h.since ? ` since ${h.since}` : ''}` : 'a session that just finished');
}

export async function releaseTargetLock(client: pg.Client): Promise<void> {
  await client.query('select pg_advisory_unlock($1, $2)', [LOCK_CLASS, LOCK_OBJ]).catch(() => {});
}
