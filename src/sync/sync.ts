/**
 * `sync`: source -> target through the mapping chain, in one streaming pass per table
 * (source `COPY (SELECT <mapping as SQL>) TO STDOUT` piped into target `COPY FROM STDIN`),
 * all target writes in ONE transaction with the new watermarks.
 *
 * The no-lost-write rule (src/sync/horizon.ts): the next run's lower bound is the oldest
 * start among transactions open just before this run's snapshot, inclusive. Rows tied on
 * the bound are re-read and resolved by key, which is also what makes a second identical
 * run change nothing.
 *
 * Deletes: the source's key set (through the mapping) is compared with the target's by
 * hash buckets; only keys in differing buckets travel, and target rows whose key is gone
 * are deleted, children before parents.
 *
 * The run is a list of steps (principle: steps, not sagas): the pair (src/sync/pair.ts),
 * the guards (src/sync/guards.ts), the plan (src/sync/run-plan.ts), per-table stage,
 * deletes and apply, the check and the run's state (src/sync/steps.ts), composed here by
 * the scheduler (src/sync/schedule.ts), then what follows the commit.
 */
import type pg from 'pg';
import { connect, ident, literal } from '../db/connect.ts';
import { readSchemaSql } from '../db/catalog.ts';
import { rememberCatalogs } from '../db/catalog-cache.ts';
import { ensureStateSchema, recordFailedRun } from '../db/state.ts';
import { deferrableDdl, rebuildDeferred, setUserTriggers } from '../db/bulk.ts';
import { alignSequences, type SequenceMove } from '../db/sequences.ts';
import { LockedError } from '../errors.ts';
import { assertFreezeHeld } from '../db/freeze-guard.ts';
import type { Logger } from '../log.ts';
import { timedPhase } from '../progress.ts';
import { startSourceSums, streamHashes, verify, type SourceSumsRun, type SourceTotal, type VerifyOptions, type VerifyReport } from '../verify/verify.ts';
import { HashSum } from '../verify/stream-hash.ts';
import type { ChangedCheck } from './check.ts';
import { reconcileDue, type DeleteResult } from './deletes.ts';
import { withPair } from './pair.ts';
import { refuseUnsafeSync, settleDirection } from './guards.ts';
import { planSync, type SyncPlan } from './run-plan.ts';
import { schedule } from './schedule.ts';
import { dropOwnStages, stageWithJobs } from './jobs.ts';
import { newRunId, sweepStaleStages } from './stage-tables.ts';
import { applyStep, checkStep, commitState, deleteStep, stageTable } from './steps.ts';
import { mirrorPartitions, withPartitionDdl, type PartitionCreated } from './partitions.ts';

export type { ChangedCheck } from './check.ts';
export { pipeCopy } from './copy.ts';

export interface Endpoint {
  /** Environment name (blue, green, …); the target keeps watermarks per source name. */
  name: string;
  url: string;
  /** Version, when it should not be detected. */
  version?: number;
}

export interface SyncOptions {
  from: Endpoint;
  to: Endpoint;
  mappingsDir: string;
  /** Ignore stored watermarks: re-read every row (and still delete what the source lacks). */
  full?: boolean;
  /** Extra margin subtracted from the next lower bound (PostgreSQL interval, e.g. '5 minutes') for application-side clocks. */
  lookback?: string;
  /** Give up waiting for table locks on the target after this long (PostgreSQL interval). */
  lockTimeout?: string;
  logger: Logger;
  /** Called with the open target transaction just before COMMIT (cutover hooks in here). */
  beforeCommit?: (target: pg.Client, report: SyncReport) => Promise<void>;
  /** The caller's own session already holds the target lock (a cutover takes it before freezing). */
  targetLockHeld?: boolean;
  /** Recorded in the run log. */
  kind?: 'sync' | 'cutover';
  /** Sync against the usual direction (the source is normally fed from the target). */
  force?: boolean;
  /**
   * After the run: `full` compares every row with verify (against the very snapshot this
   * run read); `changed` checks, inside the run's transaction, that every row read is now
   * on the target exactly and that both sides hold the same number of rows (cheap: what
   * an incremental run touched); `none` skips. `auto` (default): full after a full run,
   * changed after an incremental one.
   */
  verify?: 'auto' | 'full' | 'changed' | 'none' | boolean;
  /**
   * Find deletes by comparing key buckets of the whole tables even where captured deletes
   * would do (src/sync/deletes.ts): the periodic reconciliation. Tables without usable
   * capture are always reconciled.
   */
  reconcile?: boolean;
  /**
   * Reconcile automatically when the last reconciled run of this pair is older than this
   * (PostgreSQL interval; default '24 hours'; 'never' turns it off). Not in a cutover.
   */
  reconcileEvery?: string;
  /**
   * Stage tables on this many extra session pairs before the run's transaction
   * (src/sync/jobs.ts); 1 (default): every step on the run's own two sessions.
   */
  jobs?: number;
}

export interface TableSyncReport {
  table: string;
  mode: 'bulk' | 'full' | 'incremental';
  /** Rows read from the source (after the watermark filter). */
  read: number;
  inserted: number;
  updated: number;
  deleted: number;
  /** How deletes were found: from the source's capture trigger, or by comparing key buckets. */
  deletes?: DeleteResult['method'];
  ms: number;
}

export interface SyncReport {
  from: string;
  to: string;
  fromVersion: number;
  toVersion: number;
  mode: 'full' | 'incremental';
  /** Lower bound the next run will use, per source table. */
  watermarks: Record<string, string>;
  /** Why the horizon was held back (open transactions), if it was. */
  horizon: { at: string; heldBackBy?: string; hiddenSessions: number };
  tables: TableSyncReport[];
  /** Full verify against the same source snapshot, after commit. */
  verify?: VerifyReport;
  /** The cheaper check of an incremental run (see SyncOptions.verify). */
  check?: ChangedCheck;
  /** Sequences moved on the target. */
  sequences: SequenceMove[];
  /** Partitions the source gained that this run created on the target (src/sync/partitions.ts). */
  partitions?: PartitionCreated[];
  /** Target tables the mapping does not carry (new in the target's version, starting empty): not written. */
  notCarried?: { table: string; why: string }[];
  /** Stage tables an interrupted --jobs run had left on the target, dropped before this run (src/sync/stage-tables.ts). */
  sweptStageTables?: string[];
  ms: number;
}

/** Runs one sync (or a cutover's final sync): see the file's comment. */
export async function sync(opts: SyncOptions): Promise<SyncReport> {
  const started = Date.now();
  const kind = opts.kind ?? 'sync';
  const pair = `${opts.from.name}->${opts.to.name}`;
  const app = `bluegreen ${kind} ${pair}`.slice(0, 63);
  const onFailure = async (dst: pg.Client | undefined, err: unknown) => {
    // After the rollback, in its own short transaction: status shows the last failure.
    if (dst && !(err instanceof LockedError)) await recordFailedRun(dst, { kind, source: opts.from.name, startedAt: new Date(started), error: err });
  };
  return withPair({ from: opts.from, to: opts.to, app, targetLockHeld: opts.targetLockHeld, distinct: true, onFailure }, async ({ src, dst }) => {
    await refuseUnsafeSync(src, dst, { from: opts.from, to: opts.to, kind, force: opts.force, logger: opts.logger });
    // Stage tables an interrupted --jobs run left behind: ours to drop, we hold the lock.
    const runId = newRunId();
    const swept = await sweepStaleStages(dst, runId, opts.logger);
    const plan = await planSync(src, dst, opts, kind);
    const report: SyncReport = {
      from: opts.from.name,
      to: opts.to.name,
      fromVersion: plan.fromVersion,
      toVersion: plan.toVersion,
      mode: plan.mode,
      watermarks: {},
      horizon: { at: plan.horizon.at, heldBackBy: plan.horizon.heldBackBy, hiddenSessions: plan.horizon.hiddenSessions },
      tables: plan.tables.map((t) => t.report),
      sequences: [],
      ms: 0,
      ...(swept.length ? { sweptStageTables: swept } : {}),
      ...(plan.notCarried.length ? { notCarried: plan.notCarried } : {}),
    };
    const ahead: Ahead = {};
    try {
      if (effectiveVerify(opts.verify, report.mode) === 'full') await hashInStream(src, dst, plan, opts);
      if ((opts.jobs ?? 1) > 1) await stageWithJobs(src, dst, plan, { from: opts.from, to: opts.to, jobs: opts.jobs!, runId, app, logger: opts.logger });
      await writeTarget(src, dst, plan, report, opts, started, ahead);
      await afterCommit(src, dst, plan, report, opts, ahead, app);
    } catch (err) {
      await ahead.run?.cancel();
      await dropOwnStages(dst, plan); // after the rollback; the next run sweeps what this misses
      throw err;
    }
    report.ms = Date.now() - started;
    return report;
  });
}

/** Every target write of the run, in ONE transaction, committed last. */
async function writeTarget(src: pg.Client, dst: pg.Client, plan: SyncPlan, report: SyncReport, opts: SyncOptions, started: number, ahead: Ahead): Promise<void> {
  let manual: Record<string, string[]> = {};
  await dst.query('begin');
  try {
    await ensureStateSchema(dst);
    await dst.query(`set local lock_timeout = ${literal(opts.lockTimeout ?? '30s')}`);
    await assertFreezeHeld(dst, opts.to.name, { lock: true }); // held until commit: the seal renewed below absorbs nothing
    await setUserTriggers(dst, plan.targetNames, false);
    // New partitions of the source (a new month) before any row needs them.
    const partitions = await mirrorPartitions(src, dst, plan.tables.map((t) => t.ct), opts.logger);
    if (partitions.created.length) report.partitions = partitions.created;
    manual = partitions.manual;
    // An initial load into empty tables takes the bulk path (indexes after data).
    const ddl = plan.bulk ? await deferrableDdl(dst, plan.targetNames) : { drop: [], create: [] };
    for (const stmt of ddl.drop) await dst.query(stmt);

    // Three phases, so unique values freed and taken again between two runs apply
    // cleanly: stage every table (parents first), delete what the source no longer
    // has (children first), then update changed rows before inserting new ones.
    await schedule(plan.tables, { workers: 1 }, (t, i) => stageTable(src, dst, plan, t, i, opts.from, opts.logger));
    // Every row is read, and the COPYs hashed what they read (hashInStream). From here the
    // source sits idle while the target rebuilds, applies and analyzes, so the tables the
    // COPYs could not hash are hashed now, on their own sessions.
    if (effectiveVerify(opts.verify, report.mode) === 'full') ahead.run = sourceTotals(plan, opts);
    await rebuildDeferred(dst, ddl.create, opts.logger);
    const staged = plan.tables.filter((t) => t.stage);
    const reconcile = Boolean(opts.reconcile) || (plan.kind !== 'cutover' && (await reconcileDue(dst, opts.from.name, opts.reconcileEvery)));
    for (const t of [...staged].reverse()) await deleteStep(src, dst, plan, t, reconcile, opts.logger);
    for (const t of staged) await applyStep(dst, plan, t, opts.logger);
    await setUserTriggers(dst, plan.targetNames, true);
    // Identity and serial columns past every imported value: an insert on the target
    // (after cutover, or a test write) never collides with a synced key.
    // Tables not carried too: rows the target's application wrote there keep their keys.
    report.sequences = await alignSequences(dst, [...plan.targetNames, ...plan.notCarried.map((n) => n.table)]);

    if (effectiveVerify(opts.verify, report.mode) === 'changed') report.check = await checkStep(dst, plan, opts.from.name, opts.logger);
    // --jobs stage tables go with the transaction that applied them.
    const prestaged = plan.tables.flatMap((t) => (t.prestaged ? [t.prestaged] : []));
    if (prestaged.length) await dst.query(`drop table ${prestaged.join(', ')}`);
    await commitState(src, dst, plan, report, { source: opts.from.name, started, reconciled: reconcile });
    // The first sync of a pair sets its direction; later ones never turn it (src/db/direction.ts).
    if (plan.kind === 'sync' && !opts.force) await settleDirection(src, dst, opts.from.name, opts.to.name);
    if (opts.beforeCommit) await opts.beforeCommit(dst, report);
    await dst.query('commit');
  } catch (err) {
    await dst.query('rollback').catch(() => {});
    throw withPartitionDdl(err, manual);
  }
}

/**
 * After the commit: statistics of a bulk load, the catalog cache, and the full verify.
 * The source is idle by now and only the target works, so a full verify's target hashing
 * and the bulk load's ANALYZE run side by side, on two target sessions: neither needs the
 * other (the bucket counts come from the source, or from reltuples, which the index
 * builds already set), and on a server with two cores or more the ANALYZE then costs
 * next to no time (bench/README.md, "Full sync: where the time goes").
 */
async function afterCommit(src: pg.Client, dst: pg.Client, plan: SyncPlan, report: SyncReport, opts: SyncOptions, ahead: Ahead, app: string): Promise<void> {
  // The catalogs learnt before the state schema existed (a first run): cached for the next.
  await rememberCatalogs(dst, plan.catalogs, (v) => readSchemaSql(opts.mappingsDir, v)).catch(() => {});
  const tables = bulkAnalyze(report) ? report.tables.map((t) => ident(t.table)) : [];
  if (effectiveVerify(opts.verify, report.mode) === 'full') {
    const stats = analyzeAside(tables, opts, app);
    report.verify = await verify({ ...verifyOptions(plan, opts), sourceSums: ahead.run?.result }).finally(() => stats);
  } else {
    for (const t of tables) await analyze(dst, t, opts.logger);
  }
  await src.query('commit');
}

/**
 * ANALYZE of the bulk-loaded tables on a session of its own, named like the run's (`app`:
 * a cutover cancels its final sync's sessions by that name); a failure leaves them to
 * autovacuum, with a warning.
 */
async function analyzeAside(tables: string[], opts: SyncOptions, app: string): Promise<void> {
  if (tables.length === 0) return;
  try {
    const c = await connect(opts.to.url, { label: opts.to.name, applicationName: app });
    try {
      for (const t of tables) await analyze(c, t, opts.logger);
    } finally {
      await c.end().catch(() => {});
    }
  } catch (err) {
    opts.logger.warn(`could not analyze the loaded tables on ${opts.to.name}: ${(err as Error).message}`, {
      hint: `autovacuum will; or run ANALYZE on ${opts.to.name} before the next sync`,
    });
  }
}

/** ANALYZE of a loaded table (`rel` quoted), as its timed `analyze` phase. */
function analyze(client: pg.Client, rel: string, logger: Logger): Promise<unknown> {
  return timedPhase(logger, rel.replace(/^"(.*)"$/, '$1').replaceAll('""', '"'), 'analyze', {}, () => client.query(`analyze ${rel}`));
}

/** The full verify's source side, when started ahead of the commit (src/verify/verify.ts, startSourceSums). */
interface Ahead {
  run?: SourceSumsRun;
}

/**
 * A full verify's source side from the run's own COPYs: each table read whole gets the
 * verify's row hash computed by the same COPY query and added up as its rows stream past
 * (src/verify/stream-hash.ts), so the source is not read a second time.
 */
async function hashInStream(src: pg.Client, dst: pg.Client, plan: SyncPlan, opts: SyncOptions): Promise<void> {
  const hashes = await streamHashes(verifyOptions(plan, opts), src, dst);
  for (const t of plan.tables) {
    const sql = hashes.get(t.ct.table);
    if (sql && !t.incremental) t.hash = { sql, sum: new HashSum() };
  }
}

/** Every table's source total: from its COPY stream, else hashed on sessions of their own meanwhile. */
function sourceTotals(plan: SyncPlan, opts: SyncOptions): SourceSumsRun {
  const streamed = new Map<string, SourceTotal>(plan.tables.flatMap((t) => (t.hash ? [[t.ct.table, { ...t.hash.sum.total(), from: 'stream' as const }]] : [])));
  const rest = plan.tables.filter((t) => !t.hash).map((t) => t.ct.table);
  if (rest.length === 0) return { result: Promise.resolve(streamed), cancel: async () => {} };
  const run = startSourceSums({ ...verifyOptions(plan, opts), tables: rest });
  // A failure there costs only those tables (verify hashes them itself), not the streamed ones.
  return { result: run.result.then((m) => new Map([...streamed, ...m]), () => streamed), cancel: run.cancel };
}

/** The run's full verify: against the very snapshot it read, with the catalogs it learnt. */
function verifyOptions(plan: SyncPlan, opts: SyncOptions): VerifyOptions {
  return {
    from: { ...opts.from, version: plan.fromVersion },
    to: { ...opts.to, version: plan.toVersion },
    mappingsDir: opts.mappingsDir,
    logger: opts.logger,
    sourceSnapshot: plan.snapshot,
    catalogs: plan.catalogs,
    jobs: opts.jobs, // tables compared in parallel too, each job joining the snapshot
  };
}

function effectiveVerify(v: SyncOptions['verify'], mode: SyncReport['mode']): 'full' | 'changed' | 'none' {
  const m = v === false ? 'none' : v === true || v === undefined ? 'auto' : v;
  return m === 'auto' ? (mode === 'full' ? 'full' : 'changed') : m;
}

function bulkAnalyze(r: SyncReport): boolean {
  return r.tables.some((t) => t.mode === 'bulk');
}
