/**
 * bluegreen's own state in the TARGET database (schema `bluegreen`): runs, watermarks and
 * verify results, always written in the same transaction as the data they describe, so a
 * failed run leaves no trace and a committed one cannot lose its bookkeeping.
 */
import type pg from 'pg';

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
`;

/** Creates the state schema if missing. Needs CREATE on the database (an owner has it). */
export async function ensureStateSchema(client: pg.Client): Promise<void> {
  const exists = await client.query(`select 1 from pg_namespace where nspname = 'bluegreen'`);
  const tables = await client.query(`select count(*)::int as n from pg_tables where schemaname = 'bluegreen' and tablename in ('runs','watermarks','verifies')`);
  if (exists.rowCount === 1 && (tables.rows[0] as { n: number }).n === 3) return;
  await client.query(DDL);
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

export async function recordRun(client: pg.Client, r: RunRecord): Promise<void> {
  await client.query(
    `insert into bluegreen.runs (kind, source, from_version, to_version, started_at, status, rows, detail)
     values ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [r.kind, r.source ?? null, r.fromVersion ?? null, r.toVersion ?? null, r.startedAt, r.status, r.rows, JSON.stringify(r.detail ?? {})],
  );
}
