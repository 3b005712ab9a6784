/**
 * `sync --jobs N` (N > 1): the stage step of every table runs before the run's target
 * transaction, on up to N extra session pairs, and the transaction then applies what they
 * staged exactly as it applies the temp stage tables of a one-job run.
 *
 * - Each extra source session joins the run's exported snapshot, so every job reads the
 *   very rows the main session (its deletes, its watermarks, its verify) sees.
 * - Each extra target session COPYs into an UNLOGGED table of the `bluegreen_stage`
 *   schema named after the run's id; every COPY commits on its own. Those tables are
 *   invisible to the application (another schema) and lock nothing it uses: the real
 *   tables, the watermarks and the run log still change only in the ONE target
 *   transaction, which also drops the stage tables. Atomicity is the one-job run's.
 * - A large table read whole from a single source is split into ranges of source blocks
 *   (`ctid >= '(a,0)' and ctid < '(b,0)'`: a TID range scan on PostgreSQL 14+), so one big
 *   table is not one job.
 * - A run killed midway leaves its stage tables behind; the next run that holds the
 *   target lock drops every stage table of another run id before it starts
 *   (src/sync/stage-tables.ts), and says so.
 *
 * The extra sessions are ordinary registered sessions (src/db/connect.ts), so SIGINT and
 * SIGTERM cancel their statements too; on a job's failure the others are ended at once.
 */
import type pg from 'pg';
import { connect, ident, literal } from '../db/connect.ts';
import type { Logger } from '../log.ts';
import { progressTap } from '../progress.ts';
import { locateOnFreshSession } from '../convert/locate.ts';
import { pipeCopy } from './copy.ts';
import { HashSum } from '../verify/stream-hash.ts';
import { schedule } from './schedule.ts';
import { createStage, dropStages } from './stage-tables.ts';
import type { SyncPlan, TablePlan } from './run-plan.ts';
import type { Endpoint } from './sync.ts';

/** Below this many source blocks (8 MB) a table is one job: a range's own overhead would dominate. */
const SPLIT_MIN_BLOCKS = 1024;

/** Drops this run's own stage tables (after a failed run; best effort, the next run sweeps). */
export async function dropOwnStages(dst: pg.Client, plan: SyncPlan): Promise<void> {
  await dropStages(dst, plan.tables.flatMap((t) => (t.prestaged ? [t.prestaged] : [])));
}

/** One unit of job work: a table, or a block range of its single source. */
interface Unit {
  t: TablePlan;
  /** Source block range [from, to); `to` null: to the end of the table. */
  blocks?: { from: number; to: number | null };
  /** Which range of the table (`2/4`), for its progress line. */
  part?: string;
}

/** What the staging jobs need of the run. */
export interface JobsOptions {
  from: Endpoint;
  to: Endpoint;
  jobs: number;
  runId: string;
  /** application_name of the run; its extra sessions add " job", so a DBA (and a test) tells them apart. */
  app: string;
  logger: Logger;
}

/**
 * Stages every table of the plan into `bluegreen_stage` on `opts.jobs` extra session
 * pairs; sets each table's `prestaged` relation and read count. `src` is the run's source
 * session (inside the snapshot), `dst` its target session (holding the lock).
 */
export async function stageWithJobs(src: pg.Client, dst: pg.Client, plan: SyncPlan, opts: JobsOptions): Promise<void> {
  // Created before any job starts (a table's block ranges share it).
  for (const [i, t] of plan.tables.entries()) t.prestaged = await createStage(dst, opts.runId, i, t.ct.table, t.ct.columns);
  const units = await splitUnits(src, plan, opts.jobs);
  const pairs: { src: pg.Client; dst: pg.Client }[] = [];
  const endAll = () => Promise.all(pairs.flatMap((p) => [p.src.end().catch(() => {}), p.dst.end().catch(() => {})]));
  try {
    for (let w = 0; w < Math.min(opts.jobs, units.length); w++) {
      const s = await connect(opts.from.url, { label: opts.from.name, applicationName: `${opts.app.slice(0, 59)} job` });
      const d = await connect(opts.to.url, { label: opts.to.name, applicationName: `${opts.app.slice(0, 59)} job` }).catch(async (e) => {
        await s.end().catch(() => {});
        throw e;
      });
      pairs.push({ src: s, dst: d });
      await s.query('begin isolation level repeatable read read only');
      await s.query(`set transaction snapshot ${literal(plan.snapshot)}`);
    }
    opts.logger.info(`staging ${plan.tables.length} tables (${units.length} parts) on ${pairs.length} jobs`);
    // On the first failure the other jobs' sessions are ended, so their COPYs stop now.
    await schedule(units, { workers: pairs.length, onFailure: () => void endAll() }, (u, _i, w) => stageUnit(pairs[w]!, u, opts));
  } finally {
    await endAll();
  }
}

/** One COPY of a table (or of a block range of it) into its stage table. */
async function stageUnit(pair: { src: pg.Client; dst: pg.Client }, u: Unit, opts: JobsOptions): Promise<void> {
  const t0 = Date.now();
  const { t } = u;
  const source = t.ct.sources[0]!.table;
  const relation = (s: string) => {
    if (!u.blocks || s !== source) return t.relation(s);
    const hi = u.blocks.to === null ? '' : ` and ctid < '(${u.blocks.to},0)'::tid`;
    return `(select * from ${ident(s)} where ctid >= '(${u.blocks.from},0)'::tid${hi})`;
  };
  // Ranges of one table staged at once each have a line of their own.
  const task = u.part ? `${t.ct.table} ${u.part}` : t.ct.table;
  const tap = (binary: boolean, counted?: () => number) => progressTap(opts.logger, task, { format: binary ? 'binary' : 'csv', phase: 'stage', counted });
  // Each range adds its rows' hashes to its own sum, merged into the table's once read.
  const part = t.hash && { sql: t.hash.sql, sum: new HashSum() };
  const rows = await pipeCopy(pair.src, pair.dst, t.ct.selectSql(relation), t.prestaged!, t.ct.columns, tap, part).catch(async (e) => {
    // A row the mapping cannot convert: name its table, column and key.
    throw await locateOnFreshSession(e, t.ct, t.relation, opts.from.url, opts.from.name);
  });
  if (part) t.hash!.sum.merge(part.sum);
  t.report.read += rows;
  t.report.ms += Date.now() - t0;
}

/**
 * The units of work, largest tables first so the long ones start early. A table read whole
 * from one source, past SPLIT_MIN_BLOCKS, on PostgreSQL 14+ (TID range scans; before,
 * each range would scan the whole table) is split into `jobs` block ranges; the last range
 * is open-ended, so blocks the statistics missed are still read.
 */
async function splitUnits(src: pg.Client, plan: SyncPlan, jobs: number): Promise<Unit[]> {
  const v14 = (await src.query<{ ok: boolean }>(`select current_setting('server_version_num')::int >= 140000 as ok`)).rows[0]!.ok;
  const sized: { u: Unit; blocks: number }[] = [];
  for (const t of plan.tables) {
    const source = t.ct.sources[0]!.table;
    const blocks = Number(
      (await src.query<{ b: string }>(`select (pg_relation_size(${literal(ident(source))}::regclass) / current_setting('block_size')::int)::text as b`)).rows[0]!.b,
    );
    // A query table's query must see the whole table at once (a window, an aggregate):
    // never split into ranges, each would run the query over its own part.
    if (v14 && !t.incremental && !t.ct.query && t.ct.sources.length === 1 && blocks >= SPLIT_MIN_BLOCKS) {
      const step = Math.ceil(blocks / jobs);
      const parts = Math.ceil(blocks / step);
      for (let a = 0, k = 1; a < blocks; a += step, k++) sized.push({ u: { t, blocks: { from: a, to: a + step >= blocks ? null : a + step }, part: `${k}/${parts}` }, blocks: step });
    } else sized.push({ u: { t }, blocks });
  }
  return sized.sort((a, b) => b.blocks - a.blocks).map((s) => s.u);
}
