/**
 * Stage tables of `--jobs` runs (sync and import): UNLOGGED tables in the
 * `bluegreen_stage` schema, named `s<run id>_<n>`, filled by extra sessions before the
 * run's one target transaction, which applies and drops them. They are invisible to the
 * application (another schema) and lock nothing it uses. Only a run holding the target
 * lock creates or drops them, so a run may drop every stage table of another run id: that
 * run was killed midway (a failed run drops its own after its rollback).
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { ident } from '../db/connect.ts';
import type { Logger } from '../log.ts';

/** Schema of the stage tables --jobs fills before a run's transaction. */
export const STAGE_SCHEMA = 'bluegreen_stage';

/** A fresh id for a run's stage tables. */
export function newRunId(): string {
  return randomBytes(4).toString('hex');
}

/** Drops the stage tables of runs other than `runId` (killed midway); returns their names. */
export async function sweepStaleStages(dst: pg.Client, runId: string, logger: Logger): Promise<string[]> {
  const stale = await dst.query<{ name: string }>(
    `select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relkind = 'r' and c.relname not like $2`,
    [STAGE_SCHEMA, `s${runId}\\_%`],
  );
  const names = stale.rows.map((r) => r.name);
  if (!names.length) return names;
  await dst.query(`drop table if exists ${names.map((n) => `${ident(STAGE_SCHEMA)}.${ident(n)}`).join(', ')}`);
  logger.warn(`dropped ${names.length} stage tables an interrupted --jobs run left in ${STAGE_SCHEMA}: ${names.join(', ')}`, { stageTables: names });
  return names;
}

/**
 * Creates the run's `n`th stage table with `columns` of `table` (no rows, no index, no
 * constraint), committed at once: on the session holding the target lock, before any
 * job, since two jobs creating the schema at once would race. Returns its relation.
 */
export async function createStage(dst: pg.Client, runId: string, n: number, table: string, columns: string[]): Promise<string> {
  await dst.query(`create schema if not exists ${ident(STAGE_SCHEMA)}`);
  const rel = `${ident(STAGE_SCHEMA)}.${ident(`s${runId}_${n}`)}`;
  await dst.query(`create unlogged table ${rel} as select ${columns.map(ident).join(', ')} from ${ident(table)} with no data`);
  return rel;
}

/** Drops stage tables (`rels` as createStage returned them); best effort after a failure: the next run sweeps. */
export async function dropStages(dst: pg.Client, rels: string[]): Promise<void> {
  if (rels.length) await dst.query(`drop table if exists ${rels.join(', ')}`).catch(() => {});
}
