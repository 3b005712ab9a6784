/**
 * Freezing a database's writes for cutover. A statement-level trigger on every
 * application table (and on every partition of it) rejects INSERT, UPDATE, DELETE and
 * TRUNCATE with SQLSTATE 25006 (read_only_sql_transaction) while a row of
 * `bluegreen.freeze` is active. Why this shape:
 *
 * - Freezing takes SHARE ROW EXCLUSIVE on every table in one LOCK statement, in short
 *   attempts that cannot deadlock with the application (see `freeze`), which waits for every writer already
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
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { ident, literal } from '../db/connect.ts';
import { ensureStateSchema } from '../db/state.ts';
import { dropSeal, ensureGuardObjects, restoreWriteGrants, revokeWriteGrants, sealFreeze } from '../db/freeze-guard.ts';
import { RuntimeFailure } from '../errors.ts';

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
  /**
   * This freeze's identity: the cutover's target records it when it commits the final
   * sync, so an interrupted cutover is decided from the two databases alone.
   */
  id?: string;
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
    completed_at timestamptz,
    id           text)`);
  // Databases frozen by an earlier bluegreen lack the newer columns. ALTER TABLE locks
  // even when the column exists, hence the catalog check first.
  const cols = await client.query<{ attname: string }>(
    `select attname from pg_attribute where attrelid = 'bluegreen.freeze'::regclass and attnum > 0 and not attisdropped`,
  );
  const have = new Set(cols.rows.map((c) => c.attname));
  if (!have.has('target')) await client.query(`alter table bluegreen.freeze add column target text`);
  if (!have.has('completed_at')) await client.query(`alter table bluegreen.freeze add column completed_at timestamptz`);
  if (!have.has('id')) await client.query(`alter table bluegreen.freeze add column id text`);
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
  /** Longest the freeze may keep trying to lock the tables, over all its attempts (ms). */
  waitMs: number;
  /** The environment taking over, for status and hints. */
  target?: string;
  /** Record the freeze as complete at once (not a cutover in progress). */
  completed?: boolean;
  /** Checked between attempts: the caller was stopped (deadline, signal); give up at once. */
  stopped?: () => boolean;
}

/** What a freeze that committed did. */
export interface FreezeResult {
  /** The relations that now carry the trigger (every member of every partition tree). */
  rels: string[];
  /** Lock attempts it took (1 when no writer was in the way). */
  attempts: number;
  /** Date.now() when the attempt that froze began: writers queued behind it from then. */
  startedAt: number;
  /** The freeze's identity (`FreezeInfo.id`). */
  id: string;
}

/** A session that held one of the tables in a mode the freeze waits for, when it gave up. */
export interface FreezeBlocker {
  pid: number;
  user: string | null;
  application: string | null;
  /** `active`, `idle in transaction`, … (null when the role may not see it). */
  state: string | null;
  xactStart: string | null;
  query: string | null;
  tables: string[];
}

/** The freeze could not lock every table within its wait: nothing was frozen. */
export class FreezeLockError extends RuntimeFailure {
  constructor(
    message: string,
    readonly attempts: number,
    readonly blockers: FreezeBlocker[],
  ) {
    super(message);
  }
}

/** SQLSTATEs of an attempt that lost to a writer: statement or lock timeout, deadlock. */
const LOST_TO_A_WRITER = new Set(['57014', '55P03', '40P01']);

/**
 * Freezes `tables` and all their partitions in one transaction. Throws (and freezes
 * nothing) if writers keep a table for longer than `waitMs` altogether.
 *
 * Why attempts, and why they are short: locking tables one after another waits for each
 * in turn while holding the ones already locked. An application transaction that writes
 * several tables (pgbench's TPC-B script: accounts, tellers, branches, history) can hold
 * one the freeze still needs while waiting for one the freeze already holds: a deadlock.
 * PostgreSQL breaks it after `deadlock_timeout`, killing whichever side checks first, often
 * the application's transaction. So every attempt locks all tables in ONE statement whose
 * `statement_timeout` is below the server's `deadlock_timeout`: any writer that queues
 * behind the freeze started waiting after the statement began, so the freeze always gives
 * up first, releases everything and lets that writer finish. It then waits a moment (with
 * jitter, so it does not fall into step with the writers), tries again in another table
 * order, with a longer attempt each time up to that cap. No application transaction is
 * ever a deadlock victim, and writers are held at most one attempt at a time.
 */
export async function freeze(client: pg.Client, tables: string[], opts: FreezeOptions): Promise<FreezeResult> {
  const deadline = Date.now() + opts.waitMs;
  const cap = await attemptCap(client);
  let order = [...tables].sort();
  let attemptMs = Math.min(100, cap);
  const id = randomUUID();
  for (let attempt = 1; ; attempt++) {
    const startedAt = Date.now();
    const budget = Math.max(1, Math.min(attemptMs, deadline - startedAt));
    try {
      return { rels: await freezeOnce(client, order, budget, id, opts), attempts: attempt, startedAt, id };
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (!LOST_TO_A_WRITER.has(code) || opts.stopped?.()) throw err;
      if (Date.now() + 10 >= deadline) {
        const blockers = await freezeBlockers(client, tables);
        throw new FreezeLockError(
          `writers kept its tables locked for ${Math.round(opts.waitMs / 100) / 10} s (${attempt} attempt(s))` +
            (blockers.length ? `: ${blockers.map(describeBlocker).join('; ')}` : ''),
          attempt,
          blockers,
        );
      }
    }
    await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
    if (opts.stopped?.()) throw new RuntimeFailure('the freeze was stopped before it could lock the tables');
    attemptMs = Math.min(cap, Math.ceil(attemptMs * 1.5));
    order = shuffled(tables);
  }
}

/**
 * Longest single attempt: half the server's deadlock_timeout (our session's value; it is
 * superuser-only). A writer queued behind the attempt checks for a deadlock that long after
 * it began to wait, which is after the attempt began; the other half is the margin for a
 * backend that is not scheduled the moment its timer fires. At 80% a writer still lost
 * once, in the shop example's cutover under a multi-table writer on 2 cores at load 12.
 */
async function attemptCap(client: pg.Client): Promise<number> {
  const r = await client.query<{ ms: number }>(
    `select (extract(epoch from current_setting('deadlock_timeout')::interval) * 1000)::int as ms`,
  );
  return Math.max(20, Math.floor(r.rows[0]!.ms * 0.5));
}

function shuffled<T>(items: T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/**
 * Sessions holding a lock on `tables` (or their partitions) that conflicts with SHARE ROW
 * EXCLUSIVE, oldest transaction first: who kept the freeze out. A role without
 * pg_read_all_stats sees other roles' sessions without their query and times.
 */
export async function freezeBlockers(client: pg.Client, tables: string[]): Promise<FreezeBlocker[]> {
  const r = await client
    .query<FreezeBlocker>(
      `with rels as (
         select t.relid from unnest($1::text[]) as n(name), pg_partition_tree(to_regclass(n.name)) as t
         union select to_regclass(n.name) from unnest($1::text[]) as n(name))
       select a.pid, a.usename as user, a.application_name as application, a.state,
              a.xact_start::text as "xactStart", left(regexp_replace(a.query, '\s+', ' ', 'g'), 120) as query,
              array_agg(distinct l.relation::regclass::text order by l.relation::regclass::text) as tables
         from pg_locks l join pg_stat_activity a on a.pid = l.pid
        where l.granted and l.relation in (select relid from rels) and l.pid <> pg_backend_pid()
          and l.mode in ('RowExclusiveLock', 'ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
        group by a.pid, a.usename, a.application_name, a.state, a.xact_start, a.query
        order by a.xact_start nulls last, a.pid
        limit 5`,
      [tables.map(ident)],
    )
    .catch(() => ({ rows: [] as FreezeBlocker[] }));
  return r.rows;
}

function describeBlocker(b: FreezeBlocker): string {
  const who = [b.user && `user ${b.user}`, b.application && `application '${b.application}'`, b.state, b.xactStart && `in a transaction since ${b.xactStart}`]
    .filter(Boolean)
    .join(', ');
  return `pid ${b.pid} (${who}) holds ${b.tables.join(', ')}${b.query ? `: ${b.query}` : ''}`;
}

async function freezeOnce(client: pg.Client, tables: string[], attemptMs: number, id: string, opts: FreezeOptions): Promise<string[]> {
  await client.query('begin');
  try {
    // The whole LOCK is bounded, not each table's wait: see `freeze`. LOCK TABLE on a
    // partitioned table locks every partition as well.
    const saved = (await client.query<{ v: string }>(`select current_setting('statement_timeout') as v`)).rows[0]!.v;
    await client.query(`set local statement_timeout = ${literal(`${attemptMs}ms`)}`);
    await client.query(`lock table ${tables.map(ident).join(', ')} in share row exclusive mode`);
    await client.query(`set local statement_timeout = ${literal(saved)}`);
    // The tables are held: no application writer is inside the trigger, so creating or
    // altering bluegreen's own objects below cannot deadlock with one.
    await client.query(`set local lock_timeout = '5s'`);
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
      `insert into bluegreen.freeze (by, target, completed_at, id) values ($1, $2, case when $3 then clock_timestamp() end, $4)`,
      [opts.by, opts.target ?? null, Boolean(opts.completed), id],
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
  /** Runs in the unfreezing transaction with the freeze lifted (a direction statement). */
  alsoRecord?: (lifted: FreezeInfo | undefined) => Promise<void>,
): Promise<{ lifted?: FreezeInfo; dropped: string[]; inert: string[] }> {
  let lifted: FreezeInfo | undefined;
  if (await hasFreezeTable(client)) {
    await client.query('begin');
    try {
      await client.query(`set local lock_timeout = ${literal(lockTimeout)}`);
      lifted = await unfreeze(client);
      await alsoRecord?.(lifted);
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
  const r = await client.query<{ since: string; by: string; interrupted: boolean; target: string | null; id: string | null }>(
    `select since::text as since, by,
            (to_jsonb(f) ? 'completed_at' and f_json->>'completed_at' is null) as interrupted,
            f_json->>'target' as target, f_json->>'id' as id
       from bluegreen.freeze f, to_jsonb(f) as f_json
      where active order by since desc limit 1`,
  );
  const row = r.rows[0];
  if (!row) return undefined;
  const info: FreezeInfo = { since: row.since, by: row.by, completed: !row.interrupted };
  if (row.target) info.target = row.target;
  if (row.id) info.id = row.id;
  return info;
}
