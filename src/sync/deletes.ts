/**
 * Deletes: which target rows must go because the source no longer has them. Two ways,
 * chosen per table on every run:
 *
 * 1. Captured (cost follows the change). `bluegreen capture enable --env blue` puts a row
 *    trigger on each source table that records every deleted row in
 *    `bluegreen.deleted_rows` on the source, stamped with the deleting transaction's START
 *    time (`now()`), exactly like a watermark column. So the watermark rule applies
 *    unchanged: a run consumes the deletions stamped at or after the table's lower bound,
 *    projects the deleted rows through the mapping (the same SQL face as for rows) to get
 *    the target keys, drops those the source has again (a key deleted and re-inserted),
 *    and deletes the rest on the target by key. Needs: ownership of the source tables (or
 *    the TRIGGER privilege) and CREATE on the source database, once, at enable time.
 *    The stamp is the server's clock whatever the watermark holds, so every kind of
 *    watermark serves (src/sync/watermark.ts): a time watermark's lower bound is an instant
 *    already (for `timestamp` in a declared zone and `date` too: the bound is kept as the
 *    UTC instant and only turned into local time to select rows), and an integer
 *    watermark's deletes begin at the horizon of the last run that planned the table
 *    (`deletesSince`, recorded with its integer samples). Usable for a table only when its
 *    capture was enabled before that bound (a delete before it was never recorded), the
 *    table has one source and a key, and no TRUNCATE was recorded since (a truncate names
 *    no keys). Append tables (keyless, insert-only) have no deletes to find at all.
 * 2. Reconciled (cost follows the table). The source's key set (through the mapping) and
 *    the target's are compared by hash buckets (count and sum of 64-bit key hashes per
 *    bucket, both servers at once); only keys of differing buckets travel. Used whenever
 *    capture is not usable, on `sync --reconcile`, once the last reconciled run is older
 *    than --reconcile-every (reconcileDue), and for tables read whole. As a bonus
 *    the bucket counts give both row counts for the run's check, at no extra cost.
 *
 * Captured deletes trust the trigger: a row removed while the trigger was disabled, or
 * by a replica-mode session, is not seen until the next reconciliation, which is why a
 * periodic reconciliation (reconcileDue, or `sync --reconcile`) stays part of the design.
 */
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { ident, literal } from '../db/connect.ts';
import type { CompiledTable } from '../mapping/compile.ts';
import type { WatermarkKind } from './watermark.ts';
import { silentLogger, type Logger } from '../log.ts';
import { timedPhase, type PhaseClock } from '../progress.ts';

const BUCKETS = 1024;
/** Name of the row trigger that records deletes on a source table. */
export const CAPTURE_TRIGGER = 'bluegreen_capture';

/** How a run's deletes were found for one table. */
export interface DeleteResult {
  deleted: number;
  method: 'captured' | 'reconciled' | 'none';
  /** Known from reconciliation: projected source rows, and target rows after the deletes. */
  counts?: { sourceRows: number; targetRowsAfterDeletes: number };
}

export interface DeleteOptions {
  /** Compare key buckets even when capture is usable. */
  reconcile: boolean;
  /** This run's lower bound and watermark per source table (null: read whole); a SourcePlan. */
  lowerBound: (table: string) => CaptureBound | null;
  /** Where the phase's progress goes (the table's `deletes` phase). */
  logger?: Logger;
}

/** What capture needs of a source table's watermark plan (src/sync/watermark.ts, SourcePlan). */
export interface CaptureBound {
  lo: string | null;
  type: string;
  kind?: WatermarkKind;
  deletesSince?: string;
}

/**
 * The instant from which captured deletes cover a table this run, or undefined when its
 * watermark gives none: a time watermark's lower bound is that instant (for `local` and
 * `date` the bound is stored as the UTC instant); an integer's is the horizon of the last
 * run that planned it.
 */
export function captureSince(p: CaptureBound | null): string | undefined {
  if (!p?.lo) return undefined;
  const kind = p.kind ?? (/^timestamp(\(\d\))? with time zone$/.test(p.type) ? 'exact' : undefined);
  if (kind === 'exact' || kind === 'local' || kind === 'date') return p.lo;
  if (kind === 'integer') return p.deletesSince;
  return undefined;
}

/** Deletes on the target, in the caller's transaction, what the source no longer has. */
export async function applyDeletes(src: pg.Client, dst: pg.Client, ct: CompiledTable, opts: DeleteOptions): Promise<DeleteResult> {
  if (ct.key.length === 0) return { deleted: 0, method: 'none' };
  return timedPhase(opts.logger ?? silentLogger, ct.table, 'deletes', {}, async (clock) => {
    if (!opts.reconcile) {
      const lo = await capturedSince(src, ct, opts.lowerBound);
      if (lo !== undefined) return { deleted: await deleteCaptured(src, dst, ct, lo, clock), method: 'captured' as const };
    }
    return reconcile(src, dst, ct, clock);
  }, (r) => ({ deleted: r.deleted }));
}

/**
 * The lower bound from which captured deletes cover the table, or undefined when capture
 * cannot be trusted for it this run (see the module comment).
 */
async function capturedSince(src: pg.Client, ct: CompiledTable, lowerBound: DeleteOptions['lowerBound']): Promise<string | undefined> {
  if (ct.sources.length !== 1) return undefined;
  const s = ct.sources[0]!;
  const since = captureSince(lowerBound(s.table));
  if (since === undefined || s.key.length === 0) return undefined;
  return (await captureCovers(src, s.table, since)) ? since : undefined;
}

/**
 * Whether the source's delete capture holds every row deleted from `table` since `since`:
 * armed before it, its trigger enabled, and no TRUNCATE since (whose rows it cannot list).
 */
export async function captureCovers(src: pg.Client, table: string, since: string): Promise<boolean> {
  if (!(await src.query<{ ok: boolean }>(`select to_regclass('bluegreen.capture') is not null as ok`)).rows[0]!.ok) return false;
  const r = await src.query<{ ok: boolean }>(
    `select c.enabled_at <= $2::timestamptz
            and exists (select 1 from pg_trigger g where g.tgrelid = to_regclass($3) and g.tgname = $4 and g.tgenabled <> 'D')
            and not exists (select 1 from bluegreen.deleted_rows d where d.table_name = $1 and d.truncated and d.deleted_at >= $2::timestamptz) as ok
       from bluegreen.capture c where c.table_name = $1`,
    [table, since, ident(table), CAPTURE_TRIGGER],
  );
  return r.rows[0]?.ok === true;
}

/**
 * Keys (`key`, in the source table's own names) of rows deleted from `table` since `since`,
 * as captured: a subquery for a merge's set of changed keys.
 */
export function capturedDeletedKeysSql(table: string, key: string[], since: string): string {
  return `select ${key.map((k) => `r.${ident(k)}`).join(', ')}
            from bluegreen.deleted_rows d cross join lateral jsonb_populate_record(null::${ident(table)}, d.old) r
           where d.table_name = ${literal(table)} and not d.truncated and d.deleted_at >= ${literal(since)}::timestamptz`;
}

/** Target keys of rows deleted on the source since `lo`, through the mapping; deletes them. */
async function deleteCaptured(src: pg.Client, dst: pg.Client, ct: CompiledTable, lo: string, clock: PhaseClock): Promise<number> {
  const s = ct.sources[0]!;
  const gone = `(select r.* from bluegreen.deleted_rows d cross join lateral jsonb_populate_record(null::${ident(s.table)}, d.old) r
                  where d.table_name = ${literal(s.table)} and not d.truncated and d.deleted_at >= ${literal(lo)}::timestamptz
                    and not exists (select 1 from ${ident(s.table)} x where ${s.key.map((k) => `x.${ident(k)} = r.${ident(k)}`).join(' and ')}))`;
  const keys = ct.key.map((k) => `q.${ident(k)}`).join(', ');
  const sql = `select distinct ${keys} from (${ct.selectSql((t) => (t === s.table ? gone : ident(t)))}) q`;
  await dst.query(`drop table if exists bg_deleted`);
  await dst.query(`create temp table bg_deleted on commit drop as select ${ct.key.map(ident).join(', ')} from ${ident(ct.table)} with no data`);
  clock.step('captured keys');
  const n = await copyRows(src, dst, sql, 'bg_deleted');
  if (n === 0) return 0;
  clock.step('delete', n);
  await dst.query(`analyze bg_deleted`);
  const del = await dst.query(
    `delete from ${ident(ct.table)} t using bg_deleted d where ${ct.key.map((k) => `t.${ident(k)} = d.${ident(k)}`).join(' and ')}`,
  );
  return del.rowCount ?? 0;
}

async function copyRows(src: pg.Client, dst: pg.Client, sql: string, rel: string): Promise<number> {
  const out = src.query(copyTo(`COPY (${sql}) TO STDOUT`));
  const inn = dst.query(copyFrom(`COPY ${rel} FROM STDIN`));
  await pipeline(out, inn);
  return inn.rowCount;
}

/** SQL for the text form of a key, identical on both sides for equal keys. */
function keyText(alias: string, key: string[]): string {
  return `row(${key.map((k) => `${alias}.${ident(k)}`).join(', ')})::text`;
}

function bucketSums(rel: string, key: string[]): string {
  return `select (h & ${BUCKETS - 1})::int as b, count(*)::bigint as n, sum(h)::text as s
            from (select hashtextextended(${keyText('q', key)}, 0) as h from ${rel} q) x group by 1`;
}

/**
 * Deletes target rows whose key the source no longer has. Key sets are compared per hash
 * bucket (count and sum of 64-bit hashes); keys travel only for buckets that differ.
 */
async function reconcile(src: pg.Client, dst: pg.Client, ct: CompiledTable, clock: PhaseClock): Promise<DeleteResult> {
  clock.step('compare keys');
  const full = `(${ct.selectSql((t) => ident(t))})`;
  // Key buckets on both sides: cheaper than rows, and unlike a row count it cannot be
  // fooled by one missing row and one extra row cancelling out.
  const [a, b] = await Promise.all([
    src.query<{ b: number; n: string; s: string }>(bucketSums(full, ct.key)),
    dst.query<{ b: number; n: string; s: string }>(bucketSums(ident(ct.table), ct.key)),
  ]);
  const sourceRows = a.rows.reduce((x, r) => x + Number(r.n), 0);
  const targetRows = b.rows.reduce((x, r) => x + Number(r.n), 0);
  const source = new Map(a.rows.map((r) => [r.b, `${r.n}/${r.s}`]));
  const differing = b.rows.filter((r) => source.get(r.b) !== `${r.n}/${r.s}`).map((r) => r.b);
  if (differing.length === 0) return { deleted: 0, method: 'reconciled', counts: { sourceRows, targetRowsAfterDeletes: targetRows } };
  await dst.query(`create temp table if not exists bg_keys (k text) on commit drop`);
  await dst.query(`truncate bg_keys`);
  const list = differing.join(', ');
  const suspects = b.rows.reduce((x, r) => x + (source.get(r.b) !== `${r.n}/${r.s}` ? Number(r.n) : 0), 0);
  clock.step('differing keys');
  await copyRows(src, dst, `select k from (select ${keyText('q', ct.key)} as k from ${full} q) x where (hashtextextended(k, 0) & ${BUCKETS - 1}) in (${list})`, 'bg_keys');
  await dst.query(`analyze bg_keys`);
  // The rows of the differing buckets are the ones the DELETE looks at.
  clock.step('delete', suspects);
  const del = await dst.query(
    `delete from ${ident(ct.table)} t
      where (hashtextextended(${keyText('t', ct.key)}, 0) & ${BUCKETS - 1}) in (${list})
        and not exists (select 1 from bg_keys k where k.k = ${keyText('t', ct.key)})`,
  );
  const deleted = del.rowCount ?? 0;
  return { deleted, method: 'reconciled', counts: { sourceRows, targetRowsAfterDeletes: targetRows - deleted } };
}

/**
 * Deletes target rows whose key `stage` lacks, where `stage` holds the table's whole
 * result (a query table's, recomputed every run): the key sets compared on the target,
 * with the counts the run's check uses.
 */
export async function deleteUnstaged(dst: pg.Client, ct: CompiledTable, stage: string): Promise<DeleteResult> {
  if (ct.key.length === 0) return { deleted: 0, method: 'none' };
  const on = ct.key.map((k) => `s.${ident(k)} = t.${ident(k)}`).join(' and ');
  const del = await dst.query(`delete from ${ident(ct.table)} t where not exists (select 1 from ${stage} s where ${on})`);
  const n = await dst.query<{ s: string; t: string }>(`select (select count(*) from ${stage})::text as s, (select count(*) from ${ident(ct.table)})::text as t`);
  return { deleted: del.rowCount ?? 0, method: 'reconciled', counts: { sourceRows: Number(n.rows[0]!.s), targetRowsAfterDeletes: Number(n.rows[0]!.t) } };
}

/**
 * Whether this run should reconcile although capture is usable: the last run of the pair
 * that compared key sets (a `--reconcile` or a full run) is older than `every`, so a
 * delete the trigger could not see (a session that disabled triggers) is found within
 * that period even if nobody schedules `sync --reconcile`. Reads the target's run log.
 */
export async function reconcileDue(dst: pg.Client, source: string, every = '24 hours'): Promise<boolean> {
  if (every === 'never') return false;
  const r = await dst.query<{ due: boolean }>(
    `select coalesce(max(finished_at) < now() - $2::interval, true) as due
       from bluegreen.runs where source = $1 and status = 'ok' and (detail->>'reconciled')::boolean`,
    [source, every],
  );
  return r.rows[0]!.due;
}

/** Result of enabling or disabling capture. */
export interface CaptureChange {
  tables: string[];
}

/**
 * Arms delete capture on `tables` of the source (idempotent). A row trigger (also cloned
 * onto every partition) and a TRUNCATE statement trigger, both SECURITY DEFINER so an
 * application role that cannot see the `bluegreen` schema still records. Creating the
 * triggers takes SHARE ROW EXCLUSIVE on each table: it waits for writers in flight, so
 * every delete committed after this returns is recorded.
 */
export async function enableCapture(client: pg.Client, tables: string[]): Promise<CaptureChange> {
  await client.query('begin');
  try {
    await client.query(`create schema if not exists bluegreen`);
    await client.query(`create table if not exists bluegreen.deleted_rows (
      id          bigint generated always as identity primary key,
      table_name  text not null,
      deleted_at  timestamptz not null default now(),
      truncated   boolean not null default false,
      old         jsonb)`);
    await client.query(`create index if not exists deleted_rows_table_at on bluegreen.deleted_rows (table_name, deleted_at)`);
    await client.query(`create table if not exists bluegreen.capture (
      table_name  text primary key,
      enabled_at  timestamptz not null default clock_timestamp())`);
    await client.query(`create or replace function bluegreen.capture_delete() returns trigger
      language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
        begin
          if tg_op = 'TRUNCATE' then
            insert into bluegreen.deleted_rows (table_name, truncated) values (tg_argv[0], true);
          else
            insert into bluegreen.deleted_rows (table_name, old) values (tg_argv[0], to_jsonb(old));
          end if;
          return null;
        end $$`);
    for (const t of tables) {
      const armed = await client.query(`select 1 from pg_trigger where tgrelid = $1::regclass and tgname = $2`, [ident(t), CAPTURE_TRIGGER]);
      if (armed.rowCount) continue;
      await client.query(
        `create trigger ${CAPTURE_TRIGGER} after delete on ${ident(t)} for each row execute function bluegreen.capture_delete(${literal(t)})`,
      );
      // Row triggers are cloned onto partitions; statement triggers are not, and a TRUNCATE
      // of one partition fires only that partition's: arm every member of the tree.
      for (const rel of [ident(t), ...(await partitions(client, t))]) {
        await client.query(`create trigger ${CAPTURE_TRIGGER}_truncate after truncate on ${rel} for each statement execute function bluegreen.capture_delete(${literal(t)})`);
      }
      // After the trigger exists (and its lock is held): deletes stamped from here on are recorded.
      await client.query(
        `insert into bluegreen.capture (table_name) values ($1) on conflict (table_name) do update set enabled_at = clock_timestamp()`,
        [t],
      );
    }
    await client.query('commit');
    return { tables };
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  }
}

/** Removes the capture triggers and recorded deletes of `tables` (sync falls back to reconciliation). */
export async function disableCapture(client: pg.Client, tables: string[]): Promise<CaptureChange> {
  await client.query('begin');
  try {
    for (const t of tables) {
      await client.query(`drop trigger if exists ${CAPTURE_TRIGGER} on ${ident(t)}`);
      for (const rel of [ident(t), ...(await partitions(client, t))]) await client.query(`drop trigger if exists ${CAPTURE_TRIGGER}_truncate on ${rel}`);
    }
    if ((await client.query<{ ok: boolean }>(`select to_regclass('bluegreen.capture') is not null as ok`)).rows[0]!.ok) {
      await client.query(`delete from bluegreen.capture where table_name = any($1)`, [tables]);
      await client.query(`delete from bluegreen.deleted_rows where table_name = any($1)`, [tables]);
    }
    await client.query('commit');
    return { tables };
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  }
}

/** Partitions of `table` at every level (none for a plain table), as regclass text. */
async function partitions(client: pg.Client, table: string): Promise<string[]> {
  const r = await client.query<{ rel: string }>(
    `select relid::regclass::text as rel from pg_partition_tree($1::regclass) where relid <> $1::regclass`,
    [ident(table)],
  );
  return r.rows.map((x) => x.rel);
}

/**
 * Forgets recorded deletes stamped before `before` (a timestamptz): run it with a bound
 * older than every consumer's watermark (`bluegreen status` shows them).
 */
export async function pruneCapture(client: pg.Client, before: string): Promise<number> {
  if (!(await client.query<{ ok: boolean }>(`select to_regclass('bluegreen.deleted_rows') is not null as ok`)).rows[0]!.ok) return 0;
  return (await client.query(`delete from bluegreen.deleted_rows where deleted_at < $1::timestamptz`, [before])).rowCount ?? 0;
}
