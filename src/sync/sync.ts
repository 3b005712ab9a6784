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
 */
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { connect, ident, literal } from '../db/connect.ts';
import { detectVersion, loadOrder, readSchemaSql, VersionCatalogs } from '../db/catalog.ts';
import { rememberCatalogs } from '../db/catalog-cache.ts';
import { ensureStateSchema, recordFailedRun, recordRun, rememberTargetTables, storedWatermarks, targetChangesSince } from '../db/state.ts';
import { deferrableDdl, setUserTriggers } from '../db/bulk.ts';
import { alignSequences, type SequenceMove } from '../db/sequences.ts';
import { upsertOrRebuild } from '../db/apply.ts';
import { compileChain } from '../mapping/chain.ts';
import type { CompiledTable } from '../mapping/compile.ts';
import { InvalidInputError, LockedError, VersionMismatchError } from '../errors.ts';
import { frozenBy } from '../cutover/freeze.ts';
import { assertFreezeHeld, sealFreeze } from '../db/freeze-guard.ts';
import type { Logger } from '../log.ts';
import { acquireTargetLock, releaseTargetLock } from './lock.ts';
import { loadHorizonSample, readHorizon, saveHorizonSample } from './horizon.ts';
import { progressTap, tableEstimate } from '../progress.ts';
import { verify, type VerifyReport } from '../verify/verify.ts';
import { locateOnFreshSession } from '../convert/locate.ts';
import { preflight } from '../convert/preflight.ts';
import { appendLookup, lowerBoundSql, nextLowerBound, planWatermarks, sampleHistory, sampleIntegerWatermarks, type SourcePlan } from './watermark.ts';
import { checkChanged, type ChangedCheck } from './check.ts';
import { applyDeletes, reconcileDue, type DeleteResult } from './deletes.ts';

export type { ChangedCheck } from './check.ts';

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
  ms: number;
}


export async function sync(opts: SyncOptions): Promise<SyncReport> {
  const started = Date.now();
  const { logger } = opts;
  const kind = opts.kind ?? 'sync';
  const pair = `${opts.from.name}->${opts.to.name}`;
  const app = `bluegreen ${kind} ${pair}`.slice(0, 63);
  const src = await connect(opts.from.url, { label: opts.from.name, applicationName: app });
  let dst: pg.Client | undefined;
  try {
    dst = await connect(opts.to.url, { label: opts.to.name, applicationName: app });
    if (!opts.targetLockHeld) await acquireTargetLock(dst, `target ${opts.to.name}`);

    // Never a database into itself (sync --to blue with the default --from blue).
    const whoAmI = `select current_database() as db, pg_postmaster_start_time()::text as started, coalesce(inet_server_port(), 0) as port`;
    const [me, them] = [(await src.query(whoAmI)).rows[0], (await dst.query(whoAmI)).rows[0]];
    if (JSON.stringify(me) === JSON.stringify(them)) {
      throw new InvalidInputError(`--from ${opts.from.name} and --to ${opts.to.name} are the same database`, 'name two different environments: bluegreen sync --from blue --to green');
    }
    // A side frozen by a cutover that never finished still holds writes the other side
    // may lack; syncing into it would delete them, syncing from it would resume a flow the
    // cutover meant to end. Either way the DBA must unfreeze and decide.
    const srcFrozen = kind === 'cutover' ? undefined : await frozenBy(src);
    const dstFrozen = await frozenBy(dst);
    // A freeze the owner walked through: writing into (or reading from) that side would
    // delete or skip the writes it took (src/db/freeze-guard.ts).
    if (kind !== 'cutover') await assertFreezeHeld(src, opts.from.name);
    await assertFreezeHeld(dst, opts.to.name);
    for (const [side, f] of [[opts.from.name, srcFrozen], [opts.to.name, kind === 'cutover' ? undefined : dstFrozen]] as const) {
      if (f && !f.completed) {
        const other = f.target ?? (side === opts.from.name ? opts.to.name : opts.from.name);
        throw new InvalidInputError(
          `${side} is frozen by an interrupted cutover to ${other} (since ${f.since}): ${side}'s writes since then may not be on ${other}, and ${other} is not serving`,
          `run bluegreen unfreeze --env ${side} so the application writes on ${side} again, then bluegreen sync --from ${side} --to ${other} and cut over again`,
        );
      }
    }

    // Wrong way round: the source is itself kept current from the target (its watermarks
    // say so) and the target was not frozen by a cutover. Syncing now would overwrite the
    // target's newer writes and delete rows the source lacks.
    if (kind !== 'cutover' && !opts.force) {
      const hasState = (await src.query<{ ok: boolean }>(`select to_regclass('bluegreen.watermarks') is not null as ok`)).rows[0]!.ok;
      const fed = hasState ? await src.query<{ ok: boolean }>(`select exists (select 1 from bluegreen.watermarks where source = $1) as ok`, [opts.to.name]) : undefined;
      // (A source frozen by a finished cutover is reported below, naming the new direction.)
      if (fed?.rows[0]?.ok && !dstFrozen && !srcFrozen) {
        throw new InvalidInputError(
          `${opts.from.name} is kept current from ${opts.to.name} (its watermarks say so) and ${opts.to.name} is not frozen: syncing ${opts.from.name} -> ${opts.to.name} would overwrite ${opts.to.name}'s newer writes`,
          `the usual direction is: bluegreen sync --from ${opts.to.name} --to ${opts.from.name}; to switch directions, cut over first (bluegreen cutover --from ${opts.to.name} --to ${opts.from.name}); or pass --force if you mean it`,
        );
      }
    }

    // After a cutover the old side is frozen and data flows the other way; syncing from
    // it would delete the new side's fresh writes. The cutover's own final sync reads a
    // source it has just frozen, on purpose.
    if (srcFrozen) {
      throw new InvalidInputError(
        `${opts.from.name} is frozen since ${srcFrozen.since} (${srcFrozen.by}): data now flows ${opts.to.name} -> ${opts.from.name}`,
        `to keep ${opts.from.name} current run: bluegreen sync --from ${opts.to.name} --to ${opts.from.name}; to move the application back to ${opts.from.name}: bluegreen cutover --from ${opts.to.name} --to ${opts.from.name}`,
      );
    }

    // Versions, learnt on the target so the production source only sees reads.
    const catalogs = new VersionCatalogs(opts.mappingsDir, dst);
    const fromVersion = opts.from.version ?? (await detectedVersion(src, catalogs, opts.from.name));
    const toVersion = opts.to.version ?? (await detectedVersion(dst, catalogs, opts.to.name));
    const all = Object.fromEntries(await catalogs.all());
    const sourceCatalog = all[fromVersion]!;
    const targetCatalog = all[toVersion]!;
    const chain = await compileChain(opts.mappingsDir, fromVersion, toVersion, all);
    const order = loadOrder(targetCatalog).filter((t) => chain.tables[t]);
    const unmapped = Object.keys(targetCatalog.tables).filter((t) => !chain.tables[t]);
    if (unmapped.length) logger.warn(`target tables no mapping produces (left alone): ${unmapped.join(', ')}`);

    // The state schema is created inside the run's transaction (src/db/state.ts).
    const stored = await storedWatermarks(dst, opts.from.name);
    const lower = new Map(opts.full ? [] : stored.map((r) => [r.table_name, r.value]));

    // Per source table: its watermark and the lower bound for this run, checked before
    // anything is read (src/sync/watermark.ts); integer watermarks sampled before the horizon.
    const tables = order.map((t) => chain.tables[t]!);
    const sourcePlans = await planWatermarks(src, tables, sourceCatalog, lower, { lookback: opts.lookback });
    const planFor = (table: string): SourcePlan | null => sourcePlans.get(table) ?? null;
    const samples = await sampleIntegerWatermarks(src, sourcePlans);
    const history = samples.length ? await sampleHistory(dst, opts.from.name) : [];

    // Horizon BEFORE the snapshot (src/sync/horizon.ts says why).
    const h = await readHorizon(src, opts.from.name, logger, opts.lookback, await loadHorizonSample(dst, opts.from.name));
    const horizon = h.value;

    await src.query('begin isolation level repeatable read read only');
    // The snapshot is taken here, after the horizon; exported so verify can compare the
    // target with exactly what this run read, with no false alarm from later writes.
    const snapshot = (await src.query<{ s: string }>('select pg_export_snapshot() as s')).rows[0]!.s;

    const report: SyncReport = {
      from: opts.from.name,
      to: opts.to.name,
      fromVersion,
      toVersion,
      mode: 'incremental',
      watermarks: {},
      horizon: { at: h.at, heldBackBy: h.heldBackBy, hiddenSessions: h.hiddenSessions },
      tables: [],
      sequences: [],
      ms: 0,
    };

    // A target table emptied since the last run (truncated, restored) must be refilled
    // whole: its watermark says nothing about what it lost.
    const emptyTarget = new Set<string>();
    for (const ct of tables) if (await isEmpty(dst, ct.table)) emptyTarget.add(ct.table);
    // Rewritten under the stored watermarks (an import, a TRUNCATE since the last run): read in full.
    const rewritten = await targetChangesSince(dst, opts.from.name, tables.map((t) => t.table));
    for (const [t, why] of rewritten) if (!emptyTarget.has(t) && lower.size) logger.warn(`${opts.to.name}.${t}: ${why}; reading it in full`, { table: t });
    const incremental = (ct: CompiledTable) =>
      ct.reload !== 'full' && !emptyTarget.has(ct.table) && !rewritten.has(ct.table) && ct.sources.every((s) => planFor(s.table)?.lo != null);
    if (!tables.some(incremental)) report.mode = 'full';

    // Every converted value the target would refuse, named with its key before any write.
    await preflight(src, tables, (ct) => (t) => sourceRelation(ct, t, incremental(ct), planFor), sourceCatalog, targetCatalog, opts.from);

    await dst.query('begin');
    try {
      await ensureStateSchema(dst);
      await dst.query(`set local lock_timeout = ${literal(opts.lockTimeout ?? '30s')}`);
      await assertFreezeHeld(dst, opts.to.name, { lock: true }); // held until commit: the seal renewed below absorbs nothing
      const targetNames = tables.map((t) => t.table);
      await setUserTriggers(dst, targetNames, false);
      // An initial load into empty tables takes the bulk path (indexes after data).
      const bulk = emptyTarget.size === targetNames.length && report.mode === 'full';
      const ddl = bulk ? await deferrableDdl(dst, targetNames) : { drop: [], create: [] };
      for (const stmt of ddl.drop) await dst.query(stmt);

      // Three phases, so unique values freed and taken again between two runs apply
      // cleanly: stage every table (parents first), delete what the source no longer
      // has (children first), then update changed rows before inserting new ones.
      const staged: { ct: CompiledTable; r: TableSyncReport; stage: string }[] = [];
      for (const ct of tables) {
        const t0 = Date.now();
        const inc = incremental(ct);
        const sql = ct.selectSql((table) => sourceRelation(ct, table, inc, planFor));
        const r: TableSyncReport = { table: ct.table, mode: bulk ? 'bulk' : inc ? 'incremental' : 'full', read: 0, inserted: 0, updated: 0, deleted: 0, ms: 0 };
        report.tables.push(r);
        // Progress per table; a total only when the whole source table is read.
        const est = inc ? {} : await tableEstimate(src, ct.sources[0]!.table);
        const tap = (binary: boolean) => progressTap(logger, ct.table, { totalRows: est.rows, bytesPerRow: binary ? est.bytesPerRow ?? 0 : undefined });
        if (bulk) {
          r.read = r.inserted = await pipeCopy(src, dst, sql, ident(ct.table), ct.columns, tap).catch(async (e) => {
            throw await locateOnFreshSession(e, ct, (t) => sourceRelation(ct, t, inc, planFor), opts.from.url, opts.from.name);
          });
        } else {
          const stage = `bg_stage_${staged.length}`;
          await dst.query(
            `create temp table ${stage} on commit drop as select ${ct.columns.map(ident).join(', ')} from ${ident(ct.table)} with no data`,
          );
          r.read = await pipeCopy(src, dst, sql, stage, ct.columns, tap).catch(async (e) => {
            // A row the mapping cannot convert: name its table, column and key.
            throw await locateOnFreshSession(e, ct, (t) => sourceRelation(ct, t, inc, planFor), opts.from.url, opts.from.name);
          });
          staged.push({ ct, r, stage });
        }
        r.ms = Date.now() - t0;
      }
      for (const stmt of ddl.create) await dst.query(stmt);
      const deletes = new Map<string, DeleteResult>();
      const reconcile = Boolean(opts.reconcile) || (kind !== 'cutover' && (await reconcileDue(dst, opts.from.name, opts.reconcileEvery)));
      for (const { ct, r } of [...staged].reverse()) {
        const t0 = Date.now();
        const d = await applyDeletes(src, dst, ct, { reconcile: reconcile || !incremental(ct), lowerBound: planFor });
        deletes.set(ct.table, d);
        r.deleted = d.deleted;
        r.deletes = d.method;
        r.ms += Date.now() - t0;
      }
      for (const { ct, r, stage } of staged) {
        const t0 = Date.now();
        const applied = await upsertOrRebuild(dst, ct.reload === 'append' && r.mode === 'incremental' ? { ...ct, lookup: appendLookup(ct, sourcePlans) } : ct, stage, logger);
        r.inserted = applied.inserted;
        r.updated = applied.updated;
        r.deleted += applied.deleted ?? 0;
        r.ms += Date.now() - t0;
        logger.debug(`  ${ct.table}: ${r.mode}, ${r.read} read, ${r.inserted} inserted, ${r.updated} updated, ${r.deleted} deleted`, { ...r });
      }
      await setUserTriggers(dst, targetNames, true);
      // Identity and serial columns past every imported value: an insert on the target
      // (after cutover, or a test write) never collides with a synced key.
      report.sequences = await alignSequences(dst, targetNames);

      if (effectiveVerify(opts.verify, report.mode) === 'changed') {
        // Append tables read incrementally find a staged row's twins by their watermark.
        const twins = (ct: CompiledTable) => (ct.reload === 'append' && report.tables.find((t) => t.table === ct.table)?.mode === 'incremental' ? appendLookup(ct, sourcePlans) : undefined);
        report.check = await checkChanged(
          dst,
          staged.map(({ ct, r, stage }) => {
            const c = deletes.get(ct.table)?.counts;
            return { ct, stage, whole: r.mode === 'full', lookup: twins(ct), counts: c && { sourceRows: c.sourceRows, targetRows: c.targetRowsAfterDeletes + r.inserted } };
          }),
        );
        await dst.query(`insert into bluegreen.verifies (source, clean, report) values ($1, $2, $3)`, [
          opts.from.name,
          report.check.clean,
          JSON.stringify({ mode: 'changed', ...report.check }),
        ]);
      }

      for (const [table, plan] of sourcePlans) {
        if (!plan) continue;
        const value = await nextLowerBound(src, plan, horizon, history);
        if (value === null) continue; // no safe bound yet: the next run reads it whole
        report.watermarks[table] = String(value);
        await dst.query(
          `insert into bluegreen.watermarks (source, table_name, column_name, value) values ($1, $2, $3, $4)
           on conflict (source, table_name) do update set column_name = excluded.column_name, value = excluded.value, updated_at = clock_timestamp()`,
          [opts.from.name, table, plan.column, String(value)],
        );
      }
      await saveHorizonSample(dst, opts.from.name, h.sample);
      await rememberTargetTables(dst, opts.from.name, targetNames);
      report.ms = Date.now() - started;
      await recordRun(dst, {
        kind,
        source: opts.from.name,
        fromVersion,
        toVersion,
        startedAt: new Date(started),
        status: 'ok',
        rows: report.tables.reduce((a, t) => a + t.inserted + t.updated + t.deleted, 0),
        detail: {
          mode: report.mode,
          tables: report.tables,
          horizon: report.horizon,
          reconciled: reconcile || report.mode === 'full',
          ...(samples.length ? { watermarkSamples: samples } : {}),
        },
      });
      await sealFreeze(dst); // our own writes into a frozen target are not tampering
      if (opts.beforeCommit) await opts.beforeCommit(dst, report);
      await dst.query('commit');
    } catch (err) {
      await dst.query('rollback').catch(() => {});
      throw err;
    }
    if (bulkAnalyze(report)) for (const t of report.tables) await dst.query(`analyze ${ident(t.table)}`);
    // The catalogs learnt before the state schema existed (a first run): cached for the next.
    await rememberCatalogs(dst, all, (v) => readSchemaSql(opts.mappingsDir, v)).catch(() => {});
    if (effectiveVerify(opts.verify, report.mode) === 'full') {
      report.verify = await verify({
        from: { ...opts.from, version: fromVersion },
        to: { ...opts.to, version: toVersion },
        mappingsDir: opts.mappingsDir,
        logger,
        sourceSnapshot: snapshot,
        catalogs: all,
      });
    }
    await src.query('commit');
    report.ms = Date.now() - started;
    return report;
  } catch (err) {
    // After the rollback, in its own short transaction: status shows the last failure.
    if (dst && !(err instanceof LockedError)) await recordFailedRun(dst, { kind, source: opts.from.name, startedAt: new Date(started), error: err });
    throw err;
  } finally {
    if (dst) {
      await releaseTargetLock(dst);
      await dst.end().catch(() => {});
    }
    await src.end().catch(() => {});
  }
}

function effectiveVerify(v: SyncOptions['verify'], mode: SyncReport['mode']): 'full' | 'changed' | 'none' {
  const m = v === false ? 'none' : v === true || v === undefined ? 'auto' : v;
  return m === 'auto' ? (mode === 'full' ? 'full' : 'changed') : m;
}

function bulkAnalyze(r: SyncReport): boolean {
  return r.tables.some((t) => t.mode === 'bulk');
}

async function detectedVersion(client: pg.Client, catalogs: VersionCatalogs, name: string): Promise<number> {
  const d = await detectVersion(client, catalogs, name);
  if (d.version === 'empty') {
    throw new VersionMismatchError(`${name} has no schema yet`, `create it first: bluegreen schema apply --to ${name} --version N`);
  }
  return d.version;
}

async function isEmpty(client: pg.Client, table: string): Promise<boolean> {
  return (await client.query(`select 1 from ${ident(table)} limit 1`)).rowCount === 0;
}

/**
 * The relation a compiled table reads a source table through. Incremental: rows whose
 * watermark reached the lower bound; for a merge, every source restricted to the union of
 * keys changed in ANY of them (a change to one side must bring its partner along).
 */
function sourceRelation(ct: CompiledTable, table: string, incremental: boolean, planFor: (t: string) => SourcePlan | null): string {
  if (!incremental) return ident(table);
  const changed = (s: { table: string; key: string[] }) => {
    const p = planFor(s.table)!;
    return `select ${s.key.map(ident).join(', ')} from ${ident(s.table)} where ${lowerBoundSql(p)}`;
  };
  if (ct.sources.length === 1) {
    const p = planFor(table)!;
    return `(select * from ${ident(table)} where ${lowerBoundSql(p)})`;
  }
  const me = ct.sources.find((s) => s.table === table)!;
  const keys = ct.sources.map(changed).join(' union ');
  return `(select * from ${ident(table)} where (${me.key.map(ident).join(', ')}) in (${keys}))`;
}

/** Streams `COPY (sql) TO STDOUT` on `src` into `COPY rel (columns) FROM STDIN` on `dst`. */
export async function pipeCopy(src: pg.Client, dst: pg.Client, sql: string, rel: string, columns: string[], tap?: (binary: boolean) => Transform): Promise<number> {
  const format = (await binaryIsExact(src, dst, sql, rel, columns)) ? 'binary' : 'csv';
  const out = src.query(copyTo(`COPY (${sql}) TO STDOUT (FORMAT ${format})`));
  const inn = dst.query(copyFrom(`COPY ${rel} (${columns.map(ident).join(', ')}) FROM STDIN (FORMAT ${format})`));
  if (tap) await pipeline(out, tap(format === 'binary'), inn);
  else await pipeline(out, inn);
  return inn.rowCount;
}

/**
 * Binary COPY moves values without printing and parsing them: about half the time of CSV
 * on the sample app's tables (timestamps, numerics, arrays, bytea; see bench/README.md).
 * It is exact only when each column the source query yields has the very type of its
 * target column: the target's receive function reads the value with no conversion (it
 * still applies the column's typmod, as the input function does), and type OIDs mean the
 * same thing on two servers only for built-in types. Anything else (a column the target
 * converts from text, an enum, a domain, an extension type) keeps CSV, whose text the
 * target's input function converts as before.
 */
async function binaryIsExact(src: pg.Client, dst: pg.Client, sql: string, rel: string, columns: string[]): Promise<boolean> {
  const FIRST_USER_OID = 16384; // FirstNormalObjectId: below it, built in and fixed
  const produced = (await src.query(`select * from (${sql}) q limit 0`)).fields.map((f) => f.dataTypeID);
  const target = await dst.query<{ name: string; type: number }>(
    'select attname as name, atttypid::int as type from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped',
    [rel],
  );
  const typeOf = new Map(target.rows.map((r) => [r.name, r.type]));
  return produced.length === columns.length && columns.every((c, i) => typeOf.get(c) === produced[i] && produced[i]! < FIRST_USER_OID);
}
