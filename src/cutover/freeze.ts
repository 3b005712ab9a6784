/**
 * Freezing a database's writes for cutover. A statement-level trigger on every
 * application table (and on every partition of it) rejects INSERT, UPDATE, DELETE and
 * TRUNCATE with SQLSTATE 25006 (read_only_sql_transaction) while a row of
 * `bluegreen.freeze` is active. Why this shape:
 *
 * - Freezing takes SHARE ROW EXCLUSIVE on each table (creating the trigger takes it; when
 *   the trigger is already there, LOCK TABLE does), which waits for every writer already
 *   in flight and blocks new ones until the freeze commits; after it commits, no write
 *   can succeed. So every write ever acknowledged is committed before the freeze and
 *   visible to the final sync's snapshot, taken after it. Nothing is missed.
 * - Unfreezing is one UPDATE of the flag row: transactional (it can commit together with
 *   the final sync on a cutover's target), and it takes no lock on an application table,
 *   so no open reader can hold it up. Dropping the then inert triggers needs ACCESS
 *   EXCLUSIVE, which waits behind every open SELECT; that is a separate best-effort
 *   clean-up with a short lock_timeout, allowed to fail and leave them in place.
 * - Statement triggers on a partitioned table do not fire for a statement that names a
 *   partition directly, hence a trigger on every member of the partition tree.
 * - Everything needs only table ownership, not superuser (unlike
 *   default_transaction_read_only plus terminating sessions, or session_replication_role).
 *   The trigger function is SECURITY DEFINER so an application role that cannot see the
 *   `bluegreen` schema still reads the flag.
 * - bluegreen's own sync disables user triggers in its transaction, so rollback syncs can
 *   still write into a frozen database while the application cannot.
 *
 * A snapshot subtlety: a REPEATABLE READ or SERIALIZABLE writer whose snapshot predates
 * the freeze would read the flag as it was then (inactive). Every freeze therefore bumps
 * `bluegreen.freeze_epoch`, and the trigger locks that row FOR SHARE in those isolation
 * levels: a row updated after the snapshot makes PostgreSQL raise a serialization failure
 * (40001), so such a write is refused too; a retry sees the freeze. READ COMMITTED needs
 * nothing: each statement of the (volatile) trigger function reads a fresh snapshot, taken
 * after the writer got its table lock, hence after the freeze committed.
 */
import type pg from 'pg';
import { ident, literal } from '../db/connect.ts';
import { ensureStateSchema } from '../db/state.ts';
import { dropSeal, ensureGuardObjects, restoreWriteGrants, revokeWriteGrants, sealFreeze } from '../db/freeze-guard.ts';

export const FREEZE_TRIGGER = 'bluegreen_freeze';

/** A freeze recorded in `bluegreen.freeze`. */
export interface FreezeInfo {
  /** When the freeze committed (server time, as text). */
  since: string;
  /** Who froze, e.g. `cutover to green (v2)`. */
  by: string;
  /**
   * True once the cutover that froze this database finished (its final sync committed
   * and verified). False: the cutover was interrupted (killed) and this database holds
   * writes the other side may not have; it should be unfrozen and keep serving.
   */
  completed: boolean;
  /** The environment the freezing cutover switched to, when recorded. */
  target?: string;
}

/** Raises while a freeze is active; see the module comment on REPEATABLE READ writers. */
const TRIGGER_FUNCTION = `create or replace function bluegreen.reject_write() returns trigger
  language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
    begin
      if exists (select 1 from bluegreen.freeze where active) then
        raise exception 'bluegreen: writes to % are frozen by a cutover', tg_table_name
          using errcode = '25006',
                hint = 'the application now writes to the other environment; run "bluegreen unfreeze" to allow writes here again';
      end if;
      if current_setting('transaction_isolation') <> 'read committed' then
        -- Raises 40001 if a freeze committed after this transaction's snapshot.
        perform 1 from bluegreen.freeze_epoch for share;
        if not found then
          raise exception 'bluegreen: writes to % were frozen after this transaction began', tg_table_name
            using errcode = '40001', hint = 'retry the transaction';
        end if;
      end if;
      return null;
    end $$`;

async function ensureFreezeObjects(client: pg.Client): Promise<void> {
  await ensureStateSchema(client);
  await client.query(`create table if not exists bluegreen.freeze (
    active       boolean not null default true,
    since        timestamptz not null default clock_timestamp(),
    by           text not null,
    lifted       timestamptz,
    target       text,
    completed_at timestamptz)`);
  // Databases frozen by an earlier bluegreen lack the newer columns. ALTER TABLE locks
  // even when the column exists, hence the catalog check first.
  const cols = await client.query<{ attname: string }>(
    `select attname from pg_attribute where attrelid = 'bluegreen.freeze'::regclass and attnum > 0 and not attisdropped`,
  );
  const have = new Set(cols.rows.map((c) => c.attname));
  if (!have.has('target')) await client.query(`alter table bluegreen.freeze add column target text`);
  if (!have.has('completed_at')) await client.query(`alter table bluegreen.freeze add column completed_at timestamptz`);
  await client.query(`create table if not exists bluegreen.freeze_epoch (
    one   boolean primary key default true check (one),
    epoch bigint not null default 0)`);
  await client.query(`insert into bluegreen.freeze_epoch default values on conflict do nothing`);
  await client.query(TRIGGER_FUNCTION);
  await ensureGuardObjects(client);
}

/** Every member of each table's partition tree (the table itself included), as regclass text. */
async function partitionTrees(client: pg.Client, tables: string[]): Promise<string[]> {
  const r = await client.query<{ rel: string }>(
    // pg_partition_tree returns nothing for a table outside any partition tree.
    `select n.name::regclass::text as rel from unnest($1::text[]) as n(name)
     union
     select t.relid::regclass::text from unnest($1::text[]) as n(name), pg_partition_tree(n.name::regclass) as t`,
    [tables.map(ident)],
  );
  return r.rows.map((x) => x.rel);
}

export interface FreezeOptions {
  /** Who freezes, recorded and shown (`cutover to green (v2)`). */
  by: string;
  /** Longest wait for writers in flight (a PostgreSQL interval, e.g. `15000ms`). */
  lockTimeout: string;
  /** The environment taking over, for status and hints. */
  target?: string;
  /** Record the freeze as complete at once (not a cutover in progress). */
  completed?: boolean;
}

/**
 * Freezes `tables` and all their partitions in one transaction, waiting at most
 * `lockTimeout` for writers in flight. Throws (and freezes nothing) if a writer holds a
 * table longer than that. Returns the relations that now carry the trigger.
 */
export async function freeze(client: pg.Client, tables: string[], opts: FreezeOptions): Promise<string[]> {
  // Tables are locked one by one, so an application transaction that writes several of
  // them (an order and its lines, a cascading delete) can deadlock with the freeze. The
  // server then aborts one side: when it is the freeze, nothing was frozen, so try again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await freezeOnce(client, tables, opts);
    } catch (err) {
      if ((err as { code?: string }).code !== '40P01' || attempt >= 5) throw err;
    }
  }
}

async function freezeOnce(client: pg.Client, tables: string[], opts: FreezeOptions): Promise<string[]> {
  await client.query('begin');
  try {
    await client.query(`set local lock_timeout = ${literal(opts.lockTimeout)}`);
    // Tables first: once they are held no application writer is inside the trigger, so
    // creating or altering bluegreen's own objects below cannot deadlock with one. LOCK
    // TABLE on a partitioned table locks every partition as well.
    for (const t of tables) await client.query(`lock table ${ident(t)} in share row exclusive mode`);
    await ensureFreezeObjects(client);
    const rels = await partitionTrees(client, tables);
    const armed = await client.query<{ rel: string }>(
      `select tgrelid::regclass::text as rel from pg_trigger where tgname = $1 and tgrelid = any($2::regclass[])`,
      [FREEZE_TRIGGER, rels],
    );
    const has = new Set(armed.rows.map((x) => x.rel));
    for (const rel of rels) {
      if (has.has(rel)) continue;
      await client.query(
        `create trigger ${FREEZE_TRIGGER} before insert or update or delete or truncate on ${rel}
           for each statement execute function bluegreen.reject_write()`,
      );
    }
    await client.query(`update bluegreen.freeze set active = false, lifted = clock_timestamp() where active`);
    await client.query(
      `insert into bluegreen.freeze (by, target, completed_at) values ($1, $2, case when $3 then clock_timestamp() end)`,
      [opts.by, opts.target ?? null, Boolean(opts.completed)],
    );
    await client.query(`update bluegreen.freeze_epoch set epoch = epoch + 1`);
    // Held by privileges too, for roles other than the owner; sealed, so tampering by the
    // owner shows (src/db/freeze-guard.ts).
    await revokeWriteGrants(client, rels);
    await sealFreeze(client, tables);
    await client.query('commit');
    return rels;
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  }
}

async function hasFreezeTable(client: pg.Client): Promise<boolean> {
  return (await client.query(`select to_regclass('bluegreen.freeze') is not null as ok`)).rows[0].ok;
}

/**
 * Lifts the active freeze: one UPDATE, in the caller's transaction if one is open (a
 * cutover commits it with the final sync). No DDL, no lock on an application table: an
 * open reader cannot hold it up. The triggers stay, inert; `dropFreezeTriggers` removes
 * them when it can. Returns the freeze lifted, if there was one.
 */
export async function unfreeze(client: pg.Client): Promise<FreezeInfo | undefined> {
  const active = await frozenBy(client);
  if (active) await client.query(`update bluegreen.freeze set active = false, lifted = clock_timestamp() where active`);
  // Also when the flag was lifted behind bluegreen's back: the grants come back either way.
  if (await hasFreezeTable(client)) {
    await restoreWriteGrants(client);
    await dropSeal(client);
  }
  return active;
}

/** Marks the active freeze complete: the cutover that made it finished. */
export async function markFreezeCompleted(client: pg.Client): Promise<void> {
  await client.query(`update bluegreen.freeze set completed_at = clock_timestamp() where active and completed_at is null`);
  // That update rewrote the flag row: the seal records it anew.
  await sealFreeze(client);
}

/** `unfreeze` in its own transaction, bounded by `lockTimeout`, then the best-effort clean-up. */
export async function unfreezeNow(
  client: pg.Client,
  lockTimeout = '5s',
): Promise<{ lifted?: FreezeInfo; dropped: string[]; inert: string[] }> {
  let lifted: FreezeInfo | undefined;
  if (await hasFreezeTable(client)) {
    await client.query('begin');
    try {
      await client.query(`set local lock_timeout = ${literal(lockTimeout)}`);
      lifted = await unfreeze(client);
      await client.query('commit');
    } catch (err) {
      await client.query('rollback').catch(() => {});
      throw err;
    }
  }
  return { lifted, ...(await dropFreezeTriggers(client)) };
}

/**
 * Drops inert freeze triggers, one table per transaction, each waiting at most
 * `lockTimeout` (DROP TRIGGER takes ACCESS EXCLUSIVE, so it queues behind open readers
 * and every new reader queues behind it: keep the wait short). A table it cannot lock in
 * time keeps its inert trigger; that is harmless. Never drops a trigger while a freeze is
 * active (checked after the lock, so a concurrent freeze cannot slip in between).
 * Must run outside a transaction.
 */
export async function dropFreezeTriggers(client: pg.Client, lockTimeout = '250ms'): Promise<{ dropped: string[]; inert: string[] }> {
  const r = await client.query<{ rel: string }>(
    `select tgrelid::regclass::text as rel from pg_trigger where tgname = $1 order by 1`,
    [FREEZE_TRIGGER],
  );
  const dropped: string[] = [];
  const inert: string[] = [];
  for (const { rel } of r.rows) {
    try {
      await client.query('begin');
      await client.query(`set local lock_timeout = ${literal(lockTimeout)}`);
      await client.query(`lock table only ${rel} in access exclusive mode`);
      if ((await hasFreezeTable(client)) && (await client.query(`select 1 from bluegreen.freeze where active`)).rowCount) {
        await client.query('rollback');
        inert.push(rel);
        continue;
      }
      await client.query(`drop trigger if exists ${FREEZE_TRIGGER} on ${rel}`);
      await client.query('commit');
      dropped.push(rel);
    } catch {
      await client.query('rollback').catch(() => {});
      inert.push(rel);
    }
  }
  return { dropped, inert };
}

/** The active freeze, if any. */
export async function frozenBy(client: pg.Client): Promise<FreezeInfo | undefined> {
  if (!(await hasFreezeTable(client))) return undefined;
  // Through to_jsonb: a freeze table from before `completed_at` existed reads as complete
  // (that bluegreen left a source frozen only after a finished cutover, or when killed,
  // which it could not tell apart).
  const r = await client.query<{ since: string; by: string; interrupted: boolean; target: string | null }>(
    `select since::text as since, by,
            (to_jsonb(f) ? 'completed_at' and f_json->>'completed_at' is null) as interrupted,
            f_json->>'target' as target
       from bluegreen.freeze f, to_jsonb(f) as f_json
      where active order by since desc limit 1`,
  );
  const row = r.rows[0];
  if (!row) return undefined;
  const info: FreezeInfo = { since: row.since, by: row.by, completed: !row.interrupted };
  if (row.target) info.target = row.target;
  return info;
}
