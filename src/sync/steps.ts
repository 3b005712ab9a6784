/**
 * The per-table steps of a sync, each over one table inside the run's target transaction
 * (src/sync/sync.ts composes them): stage, deletes, apply; then the run-wide check and the
 * commit of the run's state. Their order is the caller's, and it matters (see there).
 */
import type pg from 'pg';
import { ident } from '../db/connect.ts';
import { rememberTargetTables, recordRun } from '../db/state.ts';
import { upsertOrRebuild } from '../db/apply.ts';
import type { CompiledTable } from '../mapping/compile.ts';
import { sealFreeze } from '../db/freeze-guard.ts';
import type { Logger } from '../log.ts';
import { progressTap, tableEstimate, timedPhase } from '../progress.ts';
import { locateOnFreshSession } from '../convert/locate.ts';
import { assertQueryKeys, assertUniqueKeys } from '../convert/preflight.ts';
import { saveHorizonSample } from './horizon.ts';
import { appendLookup, nextLowerBound } from './watermark.ts';
import { checkChanged, type ChangedCheck } from './check.ts';
import { applyDeletes, deleteUnstaged } from './deletes.ts';
import { pipeCopy } from './copy.ts';
import type { SyncPlan, TablePlan } from './run-plan.ts';
import type { Endpoint, SyncReport } from './sync.ts';

/**
 * Stage: one streaming COPY of the table's mapped rows, straight into the (empty, index-
 * less) table on the bulk path, else into a temp stage table the later steps read.
 */
export async function stageTable(src: pg.Client, dst: pg.Client, plan: SyncPlan, t: TablePlan, index: number, from: Endpoint, logger: Logger): Promise<void> {
  const t0 = Date.now();
  const { ct, report: r } = t;
  if (t.prestaged) {
    // A query table's key, checked where its rows already are (see below).
    await assertUniqueKeys(dst, ct, t.prestaged);
    return usePrestaged(dst, plan, t, t0, logger);
  }
  const sql = ct.selectSql(t.relation);
  // Progress per table, in rows; the total is PostgreSQL's estimate of what the query reads.
  const est = t.incremental ? await plannedRows(src, sql) : (await tableEstimate(src, ct.sources[0]!.table)).rows;
  const tap = (binary: boolean, counted?: () => number) => progressTap(logger, ct.table, { format: binary ? 'binary' : 'csv', totalRows: est, phase: plan.bulk ? 'copy' : 'stage', counted });
  // A row the mapping cannot convert: name its table, column and key.
  const located = async (e: unknown) => {
    throw await locateOnFreshSession(e, ct, t.relation, from.url, from.name, plan.catalogs[plan.toVersion]?.tables[ct.table]?.checks);
  };
  if (plan.bulk) {
    // Straight into the index-less table: a query repeating a key is refused first, named
    // (the rebuilt key would refuse it later, without the query's name).
    await assertQueryKeys(src, ct, t.relation).catch(located);
    r.read = r.inserted = await pipeCopy(src, dst, sql, ident(ct.table), ct.columns, tap, t.hash).catch(located);
  } else {
    const stage = `bg_stage_${index}`;
    await dst.query(`create temp table ${stage} on commit drop as select ${ct.columns.map(ident).join(', ')} from ${ident(ct.table)} with no data`);
    r.read = await pipeCopy(src, dst, sql, stage, ct.columns, tap, t.hash).catch(located);
    // A query table's whole result is staged: its keys are checked there, on the target.
    await assertUniqueKeys(dst, ct, stage);
    t.stage = stage;
  }
  r.ms = Date.now() - t0;
}

/**
 * The planner's estimate of the rows an incremental read returns (the watermark's index
 * statistics), or undefined: a plan, never a scan. An estimate only, which the progress
 * drops once the rows read outgrow it.
 */
async function plannedRows(src: pg.Client, sql: string): Promise<number | undefined> {
  // In a savepoint: a plan that fails (a constant the mapping cannot convert) must leave the
  // snapshot's transaction usable, so the COPY reports the error with its row.
  await src.query('savepoint bg_estimate');
  try {
    const r = await src.query<{ 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] }>(`explain (format json) ${sql}`);
    await src.query('release savepoint bg_estimate');
    const n = r.rows[0]?.['QUERY PLAN'][0]?.Plan['Plan Rows'];
    return n ? Math.round(n) : undefined;
  } catch {
    await src.query('rollback to savepoint bg_estimate');
    return undefined;
  }
}

/**
 * A table --jobs staged before the transaction: on the bulk path its rows go into the
 * (empty, index-less) table in one INSERT … SELECT, else the stage table is the stage.
 */
async function usePrestaged(dst: pg.Client, plan: SyncPlan, t: TablePlan, t0: number, logger: Logger): Promise<void> {
  const { ct, report: r } = t;
  if (plan.bulk) {
    const cols = ct.columns.map(ident).join(', ');
    // OVERRIDING SYSTEM VALUE: a GENERATED ALWAYS identity keeps the source's key (COPY does).
    const sql = `insert into ${ident(ct.table)} (${cols}) overriding system value select ${cols} from ${t.prestaged}`;
    r.inserted = await timedPhase(logger, ct.table, 'copy', { rows: r.read }, async () => (await dst.query(sql)).rowCount ?? 0, (n) => ({ inserted: n }));
  } else t.stage = t.prestaged;
  r.ms += Date.now() - t0;
}

/** Deletes: target rows whose key the source no longer has (src/sync/deletes.ts). */
export async function deleteStep(src: pg.Client, dst: pg.Client, plan: SyncPlan, t: TablePlan, reconcile: boolean, logger: Logger): Promise<void> {
  const t0 = Date.now();
  // A query table's stage holds its whole result: what is not there goes, with no second
  // evaluation of the query on the source.
  const d =
    t.ct.query && t.stage
      ? await deleteUnstaged(dst, t.ct, t.stage)
      : await applyDeletes(src, dst, t.ct, { reconcile: reconcile || !t.incremental, lowerBound: (s) => plan.sourcePlans.get(s) ?? null, logger });
  t.deletes = d;
  t.report.deleted = d.deleted;
  t.report.deletes = d.method;
  t.report.ms += Date.now() - t0;
}

/** Apply: update what differs, insert what is new (src/db/apply.ts). */
export async function applyStep(dst: pg.Client, plan: SyncPlan, t: TablePlan, logger: Logger): Promise<void> {
  const t0 = Date.now();
  const { ct, report: r } = t;
  const applied = await upsertOrRebuild(dst, ct.reload === 'append' && r.mode === 'incremental' ? { ...ct, lookup: appendLookup(ct, plan.sourcePlans) } : ct, t.stage!, logger);
  r.inserted = applied.inserted;
  r.updated = applied.updated;
  r.deleted += applied.deleted ?? 0;
  r.ms += Date.now() - t0;
  logger.debug(`  ${ct.table}: ${r.mode}, ${r.read} read, ${r.inserted} inserted, ${r.updated} updated, ${r.deleted} deleted`, { ...r });
}

/**
 * The check of an incremental run (SyncOptions.verify `changed`), inside the transaction:
 * every staged row is on the target exactly, and the row counts agree where they are free.
 * Recorded in bluegreen.verifies with the run.
 */
export async function checkStep(dst: pg.Client, plan: SyncPlan, source: string, logger: Logger): Promise<ChangedCheck> {
  // Append tables read incrementally find a staged row's twins by their watermark.
  const twins = (ct: CompiledTable, mode: string) => (ct.reload === 'append' && mode === 'incremental' ? appendLookup(ct, plan.sourcePlans) : undefined);
  const check = await checkChanged(
    dst,
    plan.tables
      .filter((t) => t.stage)
      .map(({ ct, report: r, stage, deletes }) => {
        const c = deletes?.counts;
        return { ct, stage: stage!, whole: r.mode === 'full', lookup: twins(ct, r.mode), rows: r.read, counts: c && { sourceRows: c.sourceRows, targetRows: c.targetRowsAfterDeletes + r.inserted } };
      }),
    logger,
  );
  await dst.query(`insert into bluegreen.verifies (source, clean, report) values ($1, $2, $3)`, [source, check.clean, JSON.stringify({ mode: 'changed', ...check })]);
  return check;
}

/**
 * The run's state, in its transaction: the next lower bounds, the horizon sample, the
 * tables synced, the run record, and the freeze seal renewed.
 */
export async function commitState(src: pg.Client, dst: pg.Client, plan: SyncPlan, report: SyncReport, run: { source: string; started: number; reconciled: boolean }): Promise<void> {
  for (const [table, p] of plan.sourcePlans) {
    if (!p) continue;
    const value = await nextLowerBound(src, p, plan.horizon.value, plan.history);
    if (value === null) continue; // no safe bound yet: the next run reads it whole
    report.watermarks[table] = String(value);
    await dst.query(
      `insert into bluegreen.watermarks (source, table_name, column_name, value) values ($1, $2, $3, $4)
       on conflict (source, table_name) do update set column_name = excluded.column_name, value = excluded.value, updated_at = clock_timestamp()`,
      [run.source, table, p.column, String(value)],
    );
  }
  await saveHorizonSample(dst, run.source, plan.horizon.sample);
  await rememberTargetTables(dst, run.source, plan.targetNames);
  report.ms = Date.now() - run.started;
  await recordRun(dst, {
    kind: plan.kind,
    source: run.source,
    fromVersion: plan.fromVersion,
    toVersion: plan.toVersion,
    startedAt: new Date(run.started),
    status: 'ok',
    rows: report.tables.reduce((a, t) => a + t.inserted + t.updated + t.deleted, 0),
    detail: {
      mode: report.mode,
      tables: report.tables,
      horizon: report.horizon,
      reconciled: run.reconciled || report.mode === 'full',
      ...(plan.samples.length ? { watermarkSamples: plan.samples } : {}),
      // In the run log, so status's last run shows what an interrupted --jobs run left.
      ...(report.sweptStageTables ? { sweptStageTables: report.sweptStageTables } : {}),
    },
  });
  await sealFreeze(dst); // our own writes into a frozen target are not tampering
}
