/**
 * Freezing a database's writes for cutover. A statement-level trigger on every
 * application table rejects INSERT, UPDATE, DELETE and TRUNCATE with SQLSTATE 25006
 * (read_only_sql_transaction). Why triggers:
 *
 * - Creating them takes SHARE ROW EXCLUSIVE on each table, which waits for every writer
 *   already in flight and blocks new ones until the freeze commits; after it commits, no
 *   write can succeed. So every write ever acknowledged is committed before the freeze
 *   and visible to the final sync's snapshot, taken after it. Nothing is missed.
 * - They are transactional (a failed freeze leaves nothing behind) and persistent (the
 *   source stays read-only after the cutover process exits, until rollback or unfreeze).
 * - They need only table ownership, not superuser (unlike default_transaction_read_only
 *   plus terminating sessions, or session_replication_role).
 * - bluegreen's own sync disables user triggers in its transaction, so rollback syncs can
 *   still write into a frozen database while the application cannot.
 */
import type pg from 'pg';
import { ident, literal } from '../db/connect.ts';
import { ensureStateSchema } from '../db/state.ts';

export const FREEZE_TRIGGER = 'bluegreen_freeze';

async function ensureFreezeObjects(client: pg.Client): Promise<void> {
  await ensureStateSchema(client);
  await client.query(`create table if not exists bluegreen.freeze (
    active boolean not null default true,
    since  timestamptz not null default clock_timestamp(),
    by     text not null,
    lifted timestamptz)`);
  await client.query(`create or replace function bluegreen.reject_write() returns trigger language plpgsql as $$
    begin
      raise exception 'bluegreen: writes to % are frozen by a cutover', tg_table_name
        using errcode = '25006',
              hint = 'the application now writes to the other environment; run "bluegreen unfreeze" to allow writes here again';
    end $$`);
}

/**
 * Freezes `tables` in one transaction, waiting at most `lockTimeout` for writers in
 * flight. Throws (and freezes nothing) if a writer holds a table longer than that.
 */
export async function freeze(client: pg.Client, tables: string[], by: string, lockTimeout: string): Promise<void> {
  await client.query('begin');
  try {
    await client.query(`set local lock_timeout = ${literal(lockTimeout)}`);
    await ensureFreezeObjects(client);
    for (const t of tables) {
      await client.query(`drop trigger if exists ${FREEZE_TRIGGER} on ${ident(t)}`);
      await client.query(
        `create trigger ${FREEZE_TRIGGER} before insert or update or delete or truncate on ${ident(t)}
           for each statement execute function bluegreen.reject_write()`,
      );
    }
    await client.query(`update bluegreen.freeze set active = false, lifted = clock_timestamp() where active`);
    await client.query(`insert into bluegreen.freeze (by) values ($1)`, [by]);
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  }
}

/** Removes every freeze trigger (in the caller's transaction if one is open). */
export async function unfreeze(client: pg.Client): Promise<string[]> {
  const r = await client.query<{ tbl: string }>(
    `select c.relname as tbl from pg_trigger g join pg_class c on c.oid = g.tgrelid
      where g.tgname = $1 and c.relnamespace = current_schema()::regnamespace`,
    [FREEZE_TRIGGER],
  );
  for (const { tbl } of r.rows) await client.query(`drop trigger if exists ${FREEZE_TRIGGER} on ${ident(tbl)}`);
  if ((await client.query(`select to_regclass('bluegreen.freeze') is not null as ok`)).rows[0].ok) {
    await client.query(`update bluegreen.freeze set active = false, lifted = clock_timestamp() where active`);
  }
  return r.rows.map((x) => x.tbl);
}

/** The active freeze, if any. */
export async function frozenBy(client: pg.Client): Promise<{ since: string; by: string } | undefined> {
  if (!(await client.query(`select to_regclass('bluegreen.freeze') is not null as ok`)).rows[0].ok) return undefined;
  const r = await client.query<{ since: string; by: string }>(`select since::text as since, by from bluegreen.freeze where active order by since desc limit 1`);
  return r.rows[0];
}
