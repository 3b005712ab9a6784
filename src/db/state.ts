/**
 * bluegreen's own state in the TARGET database (schema `bluegreen`): runs, watermarks and
 * verify results, always written in the same transaction as the data they describe, so a
 * failed run leaves no trace and a committed one cannot lose its bookkeeping. The schema
 * itself is created inside that transaction too (DDL is transactional), after every check
 * that can refuse the run: a refused or killed first run leaves no `bluegreen` schema.
 * The one exception is the record of a FAILED run, written after the rollback in its own
 * short transaction, and only where the schema already exists.
 */
import type pg from 'pg';
import { redactText } from '../redact.ts';

const DDL = `
create schema if not exists bluegreen;
create table if not exists bluegreen.runs (
  id          bigint generated always as identity primary key,
  kind        text not null,
  source      text,
  from_version integer,
  to_version  integer,
  started_at  timestamptz not null,
  finished_at timestamptz not null default clock_timestamp(),
  status      text not null,
  rows        bigint not null default 0,
  detail      jsonb not null default '{}'
);
create table if not exists bluegreen.watermarks (
  source      text not null,
  table_name  text not null,
  column_name text not null,
  value       text,
  updated_at  timestamptz not null default clock_timestamp(),
  primary key (source, table_name)
);
create table if not exists bluegreen.verifies (
  id          bigint generated always as identity primary key,
  source      text not null,
  at          timestamptz not null default clock_timestamp(),
  clean       boolean not null,
  report      jsonb not null
);
-- The horizon's memory (src/sync/horizon.ts): per source, when the last run sampled the
-- source's open transactions and which ones hid their start time.
create table if not exists bluegreen.horizons (
  source      text primary key,
  sampled_at  timestamptz not null,
  server_started timestamptz not null,
  open        jsonb not null
);
-- Each target table's storage as the last run from a source left it: TRUNCATE (and an
-- import's reload) gives a table new storage, so a changed relfilenode says the table was
-- rewritten under the stored watermarks.
-- A cutover's point of no return, on its target, written in the final sync's transaction:
-- the freeze it belongs to (by the id the source's freeze row carries) and what the source
-- must record to finish it. A source frozen without its completion mark whose target holds
-- this row is completed (rolled forward) by the next command; without it, rolled back.
create table if not exists bluegreen.cutovers (
  freeze_id   text primary key,
  source      text not null,
  from_version integer not null,
  to_version  integer not null,
  committed_at timestamptz not null default clock_timestamp(),
  reverse_watermarks jsonb not null default '[]'
);
create table if not exists bluegreen.target_tables (
  source      text not null,
  table_name  text not null,
  relfilenode oid not null,
  primary key (source, table_name)
);
`;

const TABLES = ['runs', 'watermarks', 'verifies', 'horizons', 'cutovers', 'target_tables'];

/**
 * Creates the state schema, or the tables a newer bluegreen added, if missing. Needs
 * CREATE on the database (an owner has it). Call it inside the run's transaction.
 */
export async function ensureStateSchema(client: pg.Client): Promise<void> {
  const tables = await client.query(`select count(*)::int as n from pg_tables where schemaname = 'bluegreen' and tablename = any($1)`, [TABLES]);
  if ((tables.rows[0] as { n: number }).n === TABLES.length) return;
  await client.query(DDL);
}

/** Whether `table` of the state schema exists (reads only: refusals must create nothing). */
export async function stateTableExists(client: pg.Client, table: string): Promise<boolean> {
  return (await client.query<{ ok: boolean }>(`select to_regclass($1) is not null as ok`, [`bluegreen.${table}`])).rows[0]!.ok;
}

export interface RunRecord {
  kind: 'import' | 'sync' | 'cutover';
  source?: string;
  fromVersion?: number;
  toVersion?: number;
  startedAt: Date;
  status: 'ok' | 'failed';
  rows: number;
  detail?: unknown;
}

/**
 * Records a failed run (status shows the last failure), after the run's own transaction
 * rolled back, in a short transaction of its own; only where the state schema exists, so
 * a refused first run still leaves nothing behind. Never throws: the run's own error is
 * what the user must see.
 */
export async function recordFailedRun(client: pg.Client, r: Omit<RunRecord, 'status' | 'rows'> & { error: unknown }): Promise<void> {
  try {
    if (!(await stateTableExists(client, 'runs'))) return;
    const e = r.error as { message?: string; name?: string; exitCode?: number; hint?: string; code?: string };
    await client.query('rollback').catch(() => {});
    // Short and bounded: a lock on the run log must not hold up the failure's report.
    await client.query('begin');
    await client.query(`set local lock_timeout = '2s'; set local statement_timeout = '5s'`);
    await recordRun(client, {
      ...r,
      status: 'failed',
      rows: 0,
      detail: {
        ...(r.detail as object | undefined),
        error: redactText(String(e?.message ?? r.error).split('\n')[0]!.slice(0, 500)),
        errorName: e?.name,
        exitCode: e?.exitCode ?? 1,
        sqlstate: e?.code,
      },
    });
    await client.query('commit');
  } catch {
    await client.query('rollback').catch(() => {});
    // The session may be gone (a network failure): nothing to record with.
  }
}

export async function recordRun(client: pg.Client, r: RunRecord): Promise<void> {
  await client.query(
    `insert into bluegreen.runs (kind, source, from_version, to_version, started_at, status, rows, detail)
     values ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [r.kind, r.source ?? null, r.fromVersion ?? null, r.toVersion ?? null, r.startedAt, r.status, r.rows, JSON.stringify(r.detail ?? {})],
  );
}

/** The watermarks stored for `source` (none before the first run; creates nothing). */
export async function storedWatermarks(client: pg.Client, source: string): Promise<{ table_name: string; value: string }[]> {
  if (!(await stateTableExists(client, 'watermarks'))) return [];
  return (await client.query<{ table_name: string; value: string }>('select table_name, value from bluegreen.watermarks where source = $1', [source])).rows;
}

/**
 * Target tables changed under the watermarks stored for `source`, each with why: all of
 * them when an import committed after the last successful run from that source (its rows
 * replaced or overwrote what the watermarks describe), or those whose storage changed
 * since that run (TRUNCATE, an import's reload; also VACUUM FULL and CLUSTER, which only
 * cost a full read). Such a table must be read in full: its watermark says nothing about
 * what it lost.
 */
export async function targetChangesSince(client: pg.Client, source: string, tables: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!(await stateTableExists(client, 'target_tables'))) return out;
  const imp = await client.query<{ at: string }>(
    `select finished_at::text as at from bluegreen.runs
      where kind = 'import' and status = 'ok'
        and id > coalesce((select max(id) from bluegreen.runs where source = $1 and kind in ('sync', 'cutover') and status = 'ok'), 0)
      order by id desc limit 1`,
    [source],
  );
  if (imp.rows[0]) {
    for (const t of tables) out.set(t, `an import at ${imp.rows[0].at} wrote it after the last run from ${source}`);
    return out;
  }
  const r = await client.query<{ table_name: string }>(
    `select s.table_name from bluegreen.target_tables s
      where s.source = $1 and s.table_name = any($2)
        and s.relfilenode is distinct from (select c.relfilenode from pg_class c where c.oid = to_regclass(quote_ident(s.table_name)))`,
    [source, tables],
  );
  for (const row of r.rows) out.set(row.table_name, 'its storage changed since the last run (TRUNCATE, a reload, VACUUM FULL)');
  return out;
}

/** Remembers each target table's storage as this run leaves it (in the run's transaction). */
export async function rememberTargetTables(client: pg.Client, source: string, tables: string[]): Promise<void> {
  await client.query(
    `insert into bluegreen.target_tables (source, table_name, relfilenode)
     select $1, t, c.relfilenode from unnest($2::text[]) t join pg_class c on c.oid = to_regclass(quote_ident(t))
     on conflict (source, table_name) do update set relfilenode = excluded.relfilenode`,
    [source, tables],
  );
}
