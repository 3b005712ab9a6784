/**
 * The plan step of a sync: versions, the mapping chain, watermarks, the horizon, the
 * source snapshot, which tables are read incrementally, and the pre-flight of every
 * converted value. Everything here reads; the one thing it leaves open is the source's
 * repeatable-read transaction whose snapshot the whole run (and its verify) reads.
 */
import type pg from 'pg';
import { ident } from '../db/connect.ts';
import { detectVersion, loadOrder, VersionCatalogs, type Catalog } from '../db/catalog.ts';
import { storedWatermarks, targetChangesSince } from '../db/state.ts';
import { compileChain } from '../mapping/chain.ts';
import type { CompiledTable } from '../mapping/compile.ts';
import { VersionMismatchError } from '../errors.ts';
import { preflight } from '../convert/preflight.ts';
import { loadHorizonSample, readHorizon, type Horizon } from './horizon.ts';
import { deletesSinceOf, lowerBoundSql, planWatermarks, sampleHistory, sampleIntegerWatermarks, type IntegerSample, type SourcePlan } from './watermark.ts';
import { captureCovers, captureSince, capturedDeletedKeysSql, type DeleteResult } from './deletes.ts';
import type { SyncOptions, TableSyncReport } from './sync.ts';
import type { StreamHash } from './copy.ts';

/** One target table of the run, as the per-table steps see it. */
export interface TablePlan {
  /** The compiled mapping that produces the table. */
  ct: CompiledTable;
  /** Only rows past the stored watermarks are read (else the whole source tables). */
  incremental: boolean;
  /** The relation each of the table's source tables is read through in this run. */
  relation: (sourceTable: string) => string;
  /** The table's line of the report, filled in by the steps. */
  report: TableSyncReport;
  /** Where its rows were staged; undefined on the bulk path (copied straight into the table). */
  stage?: string;
  /**
   * The `bluegreen_stage` table --jobs filled before the run's transaction (src/sync/jobs.ts);
   * undefined on a one-job run.
   */
  prestaged?: string;
  /** What the deletes step found. */
  deletes?: DeleteResult;
  /** The full verify's row hash, computed by the table's COPY and added up as it streams (src/sync/sync.ts, hashInStream). */
  hash?: StreamHash;
}

/** Everything a run decided before its first write. */
export interface SyncPlan {
  kind: 'sync' | 'cutover';
  fromVersion: number;
  toVersion: number;
  /** Every version's catalog the chain needs, by version. */
  catalogs: Record<number, Catalog>;
  /** One entry per target table the mapping produces, in load order (parents first). */
  tables: TablePlan[];
  /** The same tables' names. */
  targetNames: string[];
  /** Target tables the chain does not carry (declared `{"new": "empty"}`), with why: neither read nor written. */
  notCarried: { table: string; why: string }[];
  /** Per source table: its watermark and this run's lower bound. */
  sourcePlans: Map<string, SourcePlan | null>;
  /** Integer watermarks sampled before the horizon, and the earlier runs' samples. */
  samples: IntegerSample[];
  history: IntegerSample[];
  horizon: Horizon;
  /** The source snapshot this run reads (exported: verify and extra jobs join it). */
  snapshot: string;
  mode: 'full' | 'incremental';
  /** An initial load into empty tables: indexes after data, no stage tables. */
  bulk: boolean;
}

/** Plans a run; leaves the source inside the run's repeatable-read transaction. */
export async function planSync(src: pg.Client, dst: pg.Client, opts: SyncOptions, kind: SyncPlan['kind']): Promise<SyncPlan> {
  const { logger } = opts;
  // Versions, learnt on the target so the production source only sees reads.
  const catalogs = new VersionCatalogs(opts.mappingsDir, dst);
  const fromVersion = opts.from.version ?? (await detectedVersion(src, catalogs, opts.from.name));
  const toVersion = opts.to.version ?? (await detectedVersion(dst, catalogs, opts.to.name));
  const all = Object.fromEntries(await catalogs.all());
  const sourceCatalog = all[fromVersion]!;
  const targetCatalog = all[toVersion]!;
  const chain = await compileChain(opts.mappingsDir, fromVersion, toVersion, all);
  const order = loadOrder(targetCatalog).filter((t) => chain.tables[t]);
  const unmapped = Object.keys(targetCatalog.tables).filter((t) => !chain.tables[t] && !chain.notCarried[t]);
  if (unmapped.length) logger.warn(`target tables no mapping produces (left alone): ${unmapped.join(', ')}`);
  const notCarried = Object.entries(chain.notCarried).map(([table, why]) => ({ table, why })).sort((a, b) => a.table.localeCompare(b.table));
  for (const n of notCarried) logger.info(`  ${n.table}: not carried (${n.why})`, { table: n.table, notCarried: n.why });

  // The state schema is created inside the run's transaction (src/db/state.ts).
  const stored = await storedWatermarks(dst, opts.from.name);
  const lower = new Map(opts.full ? [] : stored.map((r) => [r.table_name, r.value]));

  // Per source table: its watermark and the lower bound for this run, checked before
  // anything is read (src/sync/watermark.ts); integer watermarks sampled before the horizon.
  const tables = order.map((t) => chain.tables[t]!);
  // Each local watermark's declared zone is checked against its newest value, except in a
  // cutover's final sync: its guardrails and the sync before the freeze checked it, and
  // writes are refused while this one runs.
  const sourcePlans = await planWatermarks(src, tables, sourceCatalog, lower, {
    lookback: opts.lookback,
    zoneCheck: kind !== 'cutover',
    warn: (message, fields) => logger.warn(message, fields),
  });
  const planFor = (table: string): SourcePlan | null => sourcePlans.get(table) ?? null;
  const samples = await sampleIntegerWatermarks(src, sourcePlans);
  const history = samples.length ? await sampleHistory(dst, opts.from.name) : [];
  // Integer watermarks bound no time, so their captured deletes begin at the horizon of the
  // last run that planned the table (src/sync/deletes.ts).
  for (const p of sourcePlans.values()) if (p?.kind === 'integer') p.deletesSince = deletesSinceOf(p, history);

  // Horizon BEFORE the snapshot (src/sync/horizon.ts says why).
  const horizon = await readHorizon(src, opts.from.name, logger, opts.lookback, await loadHorizonSample(dst, opts.from.name));
  // Recorded with the run's samples: where the next run's captured deletes of those tables begin.
  for (const s of samples) s.horizon = horizon.value;

  await src.query('begin isolation level repeatable read read only');
  // The snapshot is taken here, after the horizon; exported so verify can compare the
  // target with exactly what this run read, with no false alarm from later writes.
  const snapshot = (await src.query<{ s: string }>('select pg_export_snapshot() as s')).rows[0]!.s;

  // A target table emptied since the last run (truncated, restored) must be refilled
  // whole: its watermark says nothing about what it lost.
  const emptyTarget = new Set<string>();
  for (const ct of tables) if (await isEmpty(dst, ct.table)) emptyTarget.add(ct.table);
  // Rewritten under the stored watermarks (an import, a TRUNCATE since the last run): read in full.
  const rewritten = await targetChangesSince(dst, opts.from.name, tables.map((t) => t.table));
  for (const [t, why] of rewritten) if (!emptyTarget.has(t) && lower.size) logger.warn(`${opts.to.name}.${t}: ${why}; reading it in full`, { table: t });
  // A merge: a row deleted from a later merged table moves no watermark and removes no
  // target key. Read incrementally only when the source's delete capture lists those
  // deletes (their keys join the changed keys, so the first table's row is read again and
  // its merged columns cleared); otherwise read whole.
  const captured = new Map<string, Map<string, string>>();
  for (const ct of tables.filter((t) => t.sources.length > 1)) {
    const since = new Map<string, string>();
    for (const s of ct.sources.slice(1)) {
      const from = captureSince(planFor(s.table));
      if (from !== undefined && s.key.length > 0 && (await captureCovers(src, s.table, from))) since.set(s.table, from);
    }
    if (since.size === ct.sources.length - 1) captured.set(ct.table, since);
  }
  const incremental = (ct: CompiledTable) =>
    ct.reload !== 'full' &&
    (ct.sources.length === 1 || captured.has(ct.table)) &&
    !emptyTarget.has(ct.table) &&
    !rewritten.has(ct.table) &&
    ct.sources.every((s) => planFor(s.table)?.lo != null);
  const mode = tables.some(incremental) ? 'incremental' : 'full';

  // Every converted value the target would refuse, named with its key before any write.
  await preflight(src, tables, (ct) => (t) => sourceRelation(ct, t, incremental(ct), planFor, captured.get(ct.table)), sourceCatalog, targetCatalog, opts.from);

  // An initial load into empty tables takes the bulk path (indexes after data).
  const bulk = emptyTarget.size === tables.length && mode === 'full';
  return {
    kind,
    fromVersion,
    toVersion,
    catalogs: all,
    tables: tables.map((ct) => {
      const inc = incremental(ct);
      const report: TableSyncReport = { table: ct.table, mode: bulk ? 'bulk' : inc ? 'incremental' : 'full', read: 0, inserted: 0, updated: 0, deleted: 0, ms: 0 };
      return { ct, incremental: inc, relation: (t: string) => sourceRelation(ct, t, inc, planFor, captured.get(ct.table)), report };
    }),
    targetNames: tables.map((t) => t.table),
    notCarried,
    sourcePlans,
    samples,
    history,
    horizon,
    snapshot,
    mode,
    bulk,
  };
}

async function detectedVersion(client: pg.Client, catalogs: VersionCatalogs, name: string): Promise<number> {
  const d = await detectVersion(client, catalogs, name);
  if (d.version === 'empty') {
    throw new VersionMismatchError(`${name} has no schema yet`, `create it first: bluegreen schema apply --to ${name} --schema-version N`);
  }
  return d.version;
}

async function isEmpty(client: pg.Client, table: string): Promise<boolean> {
  return (await client.query(`select 1 from ${ident(table)} limit 1`)).rowCount === 0;
}

/**
 * The relation a compiled table reads a source table through. Incremental: rows whose
 * watermark reached the lower bound; for a merge (incremental only with `captured`, the
 * capture bound of each later table), every source restricted to the union of keys
 * changed in ANY of them and of keys deleted from a later one (a change to one side must
 * bring its partner along, and a partner's delete must clear what it filled).
 */
function sourceRelation(
  ct: CompiledTable,
  table: string,
  incremental: boolean,
  planFor: (t: string) => SourcePlan | null,
  captured?: Map<string, string>,
): string {
  if (!incremental) return ident(table);
  if (ct.sources.length === 1) return `(select * from ${ident(table)} where ${lowerBoundSql(planFor(table)!)})`;
  const changed = ct.sources.map((s) => `select ${s.key.map(ident).join(', ')} from ${ident(s.table)} where ${lowerBoundSql(planFor(s.table)!)}`);
  const deleted = ct.sources.slice(1).map((s) => capturedDeletedKeysSql(s.table, s.key, captured!.get(s.table)!));
  const me = ct.sources.find((s) => s.table === table)!;
  return `(select * from ${ident(table)} where (${me.key.map(ident).join(', ')}) in (${[...changed, ...deleted].join(' union ')}))`;
}
