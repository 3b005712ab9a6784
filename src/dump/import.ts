/**
 * `import`: load a dump into a target, all or nothing. Everything that can refuse the
 * dump (manifest, checksums, version, invalid mapping, a table without a JS face, non-empty
 * target) runs before the first write. A dump at another version than the target is
 * converted on the fly by the same streaming converter as `convert` (decode -> transformJs
 * -> encode straight into COPY FROM STDIN); a dump at the target's version is copied byte
 * for byte, without parsing. The
 * load is one transaction: a failure or a SIGKILL at any point leaves the target as it
 * was (PostgreSQL rolls back the open transaction when the session dies).
 *
 * Fast path for an initial load (README, Design figures: index maintenance dominates an indexed load):
 * foreign keys, unique/primary constraints and secondary indexes of the loaded tables are
 * dropped inside the transaction and rebuilt after the data, which is also atomic.
 */
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { connect, ident } from '../db/connect.ts';
import { detectVersion, VersionCatalogs, type Catalog } from '../db/catalog.ts';
import { ensureStateSchema, recordFailedRun, recordRun } from '../db/state.ts';
import { acquireTargetLock } from '../sync/lock.ts';
import { alignSequences, type SequenceMove } from '../db/sequences.ts';
import { deferrableDdl, rebuildDeferred, setUserTriggers } from '../db/bulk.ts';
import { upsertOrRebuild } from '../db/apply.ts';
import { DumpError, LockedError, TargetNotEmptyError, VersionMismatchError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { compileChain } from '../mapping/index.ts';
import { versionsBetween } from '../convert/catalogs.ts';
import { convertTable, locateInConverted, planConversion, type TablePlan } from '../convert/stream.ts';
import { insertThroughSql, type Staged } from '../convert/sql-fallback.ts';
import { compileExpressions } from '../convert/preflight.ts';
import { openDump, type Manifest } from './manifest.ts';
import { hashQuery, keyOrderBy } from './export.ts';
import { progressTap, timedPhase } from '../progress.ts';
import { assertDumpReproduced } from './reproduce.ts';
import { assertFreezeHeld, sealFreeze } from '../db/freeze-guard.ts';
import { dumpOrderBy } from './keyless.ts';
import { schedule } from '../sync/schedule.ts';
import { createStage, dropStages, newRunId, sweepStaleStages } from '../sync/stage-tables.ts';

export interface ImportOptions {
  /** Target connection URL. */
  url: string;
  /** Environment name, for messages. */
  environment: string;
  mappingsDir: string;
  /** Dump directory. */
  dir: string;
  /** Replace the target's rows (TRUNCATE in the same transaction). */
  truncate?: boolean;
  /** Target version; detected when omitted. */
  version?: number;
  /** Re-read the loaded tables and compare with the dump (default true). */
  verify?: boolean;
  /**
   * Load the dump's files on this many extra sessions into stage tables before the one
   * transaction, which then moves them into the real tables (a full dump; tables converted
   * by SQL stay in the transaction). 1 (default): everything in the transaction.
   */
  jobs?: number;
  logger: Logger;
}

export interface ImportReport {
  environment: string;
  version: number;
  /** Version of the dump; differs from `version` when it was converted on the fly. */
  dumpVersion: number;
  /** Per table: rows in the dump, and for incremental dumps what changed. */
  tables: { table: string; rows: number; inserted?: number; updated?: number; deleted?: number; ms: number }[];
  sequences: SequenceMove[];
  /**
   * Verification of a same-version full import: each table re-read from the target in the
   * dump's order and format must hash to the dump file's sha256 (bit-exact). Converted
   * imports are checked by row counts.
   */
  verify?: { clean: boolean; method: 'sha256' | 'row counts'; differing: string[] };
  ms: number;
}

/** One target table to load: the dump's file as is, or converted from the dump's tables. */
interface LoadStep {
  /** Target table. */
  table: string;
  /** Columns written, in CSV order. */
  columns: string[];
  /** Same version: the file and its row count. */
  raw?: { file: string; rows: number };
  /** Other version: the conversion plan. */
  convert?: TablePlan;
  /** The `bluegreen_stage` table --jobs loaded before the transaction, and how long that took. */
  prestaged?: { rel: string; ms: number };
}

/** Tables among `tables` that hold at least one row. */
export async function nonEmptyTables(client: pg.Client, tables: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const t of tables) {
    const r = await client.query(`select 1 from ${ident(t)} limit 1`);
    if (r.rowCount) out.push(t);
  }
  return out;
}

/** Checks that every table of the dump exists in the target with the dump's columns. */
function checkDumpFitsTarget(manifest: Manifest, target: Catalog, dir: string): void {
  for (const t of manifest.tables) {
    const tt = target.tables[t.name];
    if (!tt) throw new DumpError(`dump ${dir} holds table ${t.name}, which the target does not have`, 'the dump and target versions disagree; check the manifest');
    for (const c of t.columns) {
      if (!tt.columns.some((x) => x.name === c)) {
        throw new DumpError(`dump ${dir}: column ${t.name}.${c} does not exist in the target`, 'the dump and target versions disagree; check the manifest');
      }
    }
  }
}

/** Loads a dump into a target, all or nothing; see the file's comment. */
export async function importDump(opts: ImportOptions): Promise<ImportReport> {
  const started = Date.now();
  const { logger } = opts;
  // Refusals first: nothing is written before the dump is proven intact.
  const manifest = await openDump(opts.dir);
  const client = await connect(opts.url, { label: opts.environment, applicationName: 'bluegreen import' });
  try {
    // Every writer of a target holds the same lock as sync (a concurrent sync would store
    // watermarks over rows this import replaces); the session's end releases it.
    await acquireTargetLock(client, `target ${opts.environment}`);
    await assertFreezeHeld(client, opts.environment); // never overwrite writes that slipped through a freeze
    const catalogs = new VersionCatalogs(opts.mappingsDir, client);
    const version = await targetVersion(client, catalogs, opts, manifest);
    if (manifest.mode === 'incremental') {
      if (version !== manifest.schemaVersion) {
        throw new VersionMismatchError(
          `incremental dump ${opts.dir} is at v${manifest.schemaVersion} but ${opts.environment} is at v${version}; incremental dumps load only into their own version`,
          `between live databases of different versions use: bluegreen sync --to ${opts.environment}`,
        );
      }
      if (opts.truncate) throw new DumpError(`--truncate makes no sense with an incremental dump`, 'import a full dump with --truncate, then incremental ones on top');
      checkDumpFitsTarget(manifest, await catalogs.get(version), opts.dir);
      return await applyIncremental(client, manifest, opts, version, started);
    }
    const loads = await planLoads(client, manifest, catalogs, opts, version);
    const tables = loads.map((l) => l.table);
    const occupied = await nonEmptyTables(client, tables);
    if (occupied.length > 0 && !opts.truncate) throw new TargetNotEmptyError(occupied);

    logger.info(`importing ${opts.dir} (v${manifest.schemaVersion}${version !== manifest.schemaVersion ? ` -> v${version}` : ''}, ${tables.length} tables) into ${opts.environment}`);
    const report: ImportReport = { environment: opts.environment, version, dumpVersion: manifest.schemaVersion, tables: [], sequences: [], ms: 0 };
    const full: FullLoad = { manifest, catalogs, opts, version, started, loads, truncate: Boolean(opts.truncate && occupied.length > 0) };
    // Stage tables a killed --jobs run left behind: ours to drop, we hold the lock.
    const runId = newRunId();
    await sweepStaleStages(client, runId, logger);
    try {
      if ((opts.jobs ?? 1) > 1) await stageDumpWithJobs(client, full, opts.jobs!, runId);
      await loadFull(client, full, report);
    } catch (err) {
      await dropStages(client, loads.flatMap((l) => (l.prestaged ? [l.prestaged.rel] : []))); // after the rollback; the next run sweeps what this misses
      throw err;
    }
    // Fresh statistics so the application's first queries on the new data plan well.
    for (const t of tables) await timedPhase(logger, t, 'analyze', {}, () => client.query(`analyze ${ident(t)}`));
    if ((opts.verify ?? true) && !report.verify) report.verify = await verifyAfterCommit(client, manifest, catalogs, version, report);
    report.ms = Date.now() - started;
    return report;
  } catch (err) {
    if (!(err instanceof LockedError)) await recordFailedRun(client, { kind: 'import', startedAt: new Date(started), error: err, detail: { dump: path.resolve(opts.dir) } });
    throw err;
  } finally {
    await client.end().catch(() => {});
  }
}

/** The target's version: pinned, or detected (an empty target is refused). */
async function targetVersion(client: pg.Client, catalogs: VersionCatalogs, opts: ImportOptions, manifest: Manifest): Promise<number> {
  if (opts.version !== undefined) return opts.version;
  const d = await detectVersion(client, catalogs, opts.environment);
  if (d.version === 'empty') {
    throw new VersionMismatchError(
      `${opts.environment} has no schema yet`,
      `create it first: bluegreen schema apply --to ${opts.environment} --schema-version ${manifest.schemaVersion}`,
    );
  }
  return d.version;
}

/** One load step per target table: raw bytes when versions match, else converted. */
async function planLoads(client: pg.Client, manifest: Manifest, catalogs: VersionCatalogs, opts: ImportOptions, version: number): Promise<LoadStep[]> {
  const loads: LoadStep[] = [];
  if (version === manifest.schemaVersion) {
    const target = await catalogs.get(version);
    checkDumpFitsTarget(manifest, target, opts.dir);
    for (const t of manifest.tables) loads.push({ table: t.name, columns: t.columns, raw: { file: path.join(opts.dir, t.file), rows: t.rows } });
  } else {
    const needed: Record<number, Catalog> = {};
    for (const v of versionsBetween(manifest.schemaVersion, version)) needed[v] = await catalogs.get(v);
    const chain = await compileChain(opts.mappingsDir, manifest.schemaVersion, version, needed);
    // Tables whose chain lacks a JS face are converted by its SQL face right here (sql-fallback.ts).
    const plan = planConversion(opts.dir, manifest, chain, needed, { sqlFallback: true });
    // Every author-written expression compiles, or exit 2 naming its file and JSON pointer.
    await compileExpressions(client, plan.tables.map((p) => p.target));
    for (const p of plan.tables) loads.push({ table: p.target.table, columns: p.target.columns, convert: p });
    opts.logger.info(`dump ${opts.dir} is at v${manifest.schemaVersion}, ${opts.environment} at v${version}: converting on the fly`);
  }
  return loads;
}

/** What the full load's transaction needs. */
interface FullLoad {
  manifest: Manifest;
  catalogs: VersionCatalogs;
  opts: ImportOptions;
  version: number;
  started: number;
  loads: LoadStep[];
  /** Empty the occupied tables first (--truncate). */
  truncate: boolean;
}

/** The whole load in ONE transaction: indexes after data, the run recorded, committed last. */
async function loadFull(client: pg.Client, f: FullLoad, report: ImportReport): Promise<void> {
  const { manifest, opts, version } = f;
  const tables = f.loads.map((l) => l.table);
  await client.query('begin');
  try {
    await assertFreezeHeld(client, opts.environment, { lock: true }); // held until commit: the seal renewed below absorbs nothing
    await ensureStateSchema(client);
    if (f.truncate) {
      await client.query(`truncate ${tables.map(ident).join(', ')}`);
    }
    // Replayed rows must keep their own updated_at and fire no application side
    // effects: user triggers are off for this transaction only (FK triggers stay).
    await setUserTriggers(client, tables, false);
    const ddl = await deferrableDdl(client, tables);
    for (const stmt of ddl.drop) await client.query(stmt);
    const staged: Staged = new Map();
    for (const l of f.loads) report.tables.push(await loadTable(client, l, f, staged));
    // --jobs stage tables go with the transaction that moved their rows.
    const prestaged = f.loads.flatMap((l) => (l.prestaged ? [l.prestaged.rel] : []));
    if (prestaged.length) await client.query(`drop table ${prestaged.join(', ')}`);
    opts.logger.info(`  rebuilding ${ddl.create.length} indexes and constraints`);
    await rebuildDeferred(client, ddl.create, opts.logger);
    await setUserTriggers(client, tables, true);
    report.sequences = await alignSequences(client, tables);
    // The target's rows were replaced: watermarks from earlier syncs no longer describe
    // them, so the next sync into it starts over with a full run.
    await client.query(`delete from bluegreen.watermarks`);
    await recordImport(client, manifest, opts.dir, version, f.started, report.tables.reduce((a, t) => a + t.rows, 0), {
      convertedOnTheFly: version !== manifest.schemaVersion,
    });
    // Bit-exact reproduction is checked before the commit: a dump that does not reproduce is refused, not imported.
    if ((opts.verify ?? true) && version === manifest.schemaVersion) report.verify = await assertDumpReproduced(client, manifest, await f.catalogs.get(version), opts.dir);
    await sealFreeze(client); // our own writes into a frozen target are not tampering
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  }
}

/** One table of a full load: its file copied as is, or converted on the way in. */
async function loadTable(client: pg.Client, l: LoadStep, f: FullLoad, staged: Staged): Promise<ImportReport['tables'][number]> {
  const { logger } = f.opts;
  const t0 = Date.now();
  if (l.convert?.face === 'sql') {
    const rows = await insertThroughSql(client, l.convert, await f.catalogs.get(f.manifest.schemaVersion), await f.catalogs.get(f.version), staged);
    logger.info(`  ${l.table}: ${rows} rows (converted in PostgreSQL)`, { table: l.table, rows });
    return { table: l.table, rows, ms: Date.now() - t0 };
  }
  if (l.prestaged) {
    const cols = l.columns.map(ident).join(', ');
    // OVERRIDING SYSTEM VALUE: a GENERATED ALWAYS identity keeps the dump's value (COPY does).
    const sql = `insert into ${ident(l.table)} (${cols}) overriding system value select ${cols} from ${l.prestaged.rel}`;
    const rows = await timedPhase(logger, l.table, 'load', { rows: f.manifest.tables.find((t) => t.name === l.table)?.rows }, async () => (await client.query(sql)).rowCount ?? 0, (n) => ({ inserted: n }));
    logger.info(`  ${l.table}: ${rows} rows`, { table: l.table, rows });
    return { table: l.table, rows, ms: l.prestaged.ms + Date.now() - t0 };
  }
  const rows = await copyLoad(client, l, ident(l.table), logger);
  logger.info(`  ${l.table}: ${rows} rows`, { table: l.table, rows });
  return { table: l.table, rows, ms: Date.now() - t0 };
}

/** COPYs one load step's file (as is, or converted on the way) into `rel`; checks the row count. */
async function copyLoad(client: pg.Client, l: LoadStep, rel: string, logger: Logger): Promise<number> {
  const sink = client.query(copyFrom(`COPY ${rel} (${l.columns.map(ident).join(', ')}) FROM STDIN (FORMAT csv, HEADER true)`));
  let expected: number;
  if (l.raw) {
    await pipeline(createReadStream(l.raw.file, { highWaterMark: 256 * 1024 }), progressTap(logger, l.table, { header: true, totalRows: l.raw.rows, phase: 'load' }), sink);
    expected = l.raw.rows;
  } else {
    // pipeline destroys the COPY stream on a conversion error, which aborts the COPY;
    // the transaction then rolls back below.
    // The first input's rows: what a 1:1 table, a split's part or a merge (a left join) yields.
    const through = progressTap(logger, l.table, { header: true, totalRows: l.convert!.inputs[0]?.rows, phase: 'load' });
    const stats = await convertTable(l.convert!, { header: true, through, into: sink }).catch(async (e: unknown) => {
      throw await locateInConverted(e, l.convert!); // a value the target refused: which row
    });
    expected = stats.rows;
    if (stats.orphans > 0) logger.warn(`  ${l.table}: ${stats.orphans} rows of merged tables had no partner and were dropped`, { table: l.table, orphans: stats.orphans });
  }
  if (sink.rowCount !== expected) {
    throw new DumpError(`table ${l.table}: loaded ${sink.rowCount} rows, expected ${expected}`, 'the dump is inconsistent; export it again');
  }
  return sink.rowCount;
}

/**
 * import --jobs N: every file (tables converted by SQL excepted: they read other staged
 * tables inside the transaction) COPYed on up to N extra sessions into an unlogged stage
 * table (src/sync/stage-tables.ts), each COPY committed on its own. The real tables change
 * only in the one transaction that moves the rows and drops the stage tables, so the
 * import stays all or nothing. On a job's failure the other sessions are ended at once.
 */
async function stageDumpWithJobs(client: pg.Client, f: FullLoad, jobs: number, runId: string): Promise<void> {
  const { opts } = f;
  const parallel = f.loads.filter((l) => l.convert?.face !== 'sql');
  const rels = new Map<LoadStep, string>();
  // Created before any job starts, on the session holding the target lock.
  for (const [i, l] of parallel.entries()) rels.set(l, await createStage(client, runId, i, l.table, l.columns));
  for (const [l, rel] of rels) l.prestaged = { rel, ms: 0 };
  const sessions: pg.Client[] = [];
  const endAll = () => Promise.all(sessions.map((c) => c.end().catch(() => {})));
  try {
    for (let w = 0; w < Math.min(jobs, parallel.length); w++) {
      sessions.push(await connect(opts.url, { label: opts.environment, applicationName: 'bluegreen import job' }));
    }
    opts.logger.info(`staging ${parallel.length} tables on ${sessions.length} jobs`);
    await schedule(parallel, { workers: sessions.length, onFailure: () => void endAll() }, async (l, _i, w) => {
      const t0 = Date.now();
      await copyLoad(sessions[w]!, l, l.prestaged!.rel, opts.logger);
      l.prestaged!.ms = Date.now() - t0;
    });
  } finally {
    await endAll();
  }
}

/** The verify of an import not checked before its commit: sha256 at the same version, else row counts. */
async function verifyAfterCommit(client: pg.Client, manifest: Manifest, catalogs: VersionCatalogs, version: number, report: ImportReport): Promise<ImportReport['verify']> {
  if (version === manifest.schemaVersion) {
    const target = await catalogs.get(version);
    const differing: string[] = [];
    for (const t of manifest.tables) {
      const sql = `select ${t.columns.map(ident).join(', ')} from ${ident(t.name)} order by ${dumpOrderBy(t.key.length ? keyOrderBy(target.tables[t.name]!, t.key) : '', t.key, t.columns)}`;
      const again = await hashQuery(client, sql);
      if (again.sha256 !== t.sha256) differing.push(t.name);
    }
    return { clean: differing.length === 0, method: 'sha256', differing };
  }
  const differing: string[] = [];
  for (const t of report.tables) {
    const n = await client.query<{ n: string }>(`select count(*)::text as n from ${ident(t.table)}`);
    if (Number(n.rows[0]!.n) !== t.rows) differing.push(t.table);
  }
  return { clean: differing.length === 0, method: 'row counts', differing };
}

/**
 * An incremental dump on top of a target at the same version, in one transaction:
 * stage each table's changed rows and its full key set, delete target rows whose key is
 * gone (children first), then update what differs and insert what is new (parents first).
 * Re-applying the same dump changes nothing.
 */
async function applyIncremental(client: pg.Client, manifest: Manifest, opts: ImportOptions, version: number, started: number): Promise<ImportReport> {
  const { logger } = opts;
  const tables = manifest.tables.map((t) => t.name);
  const report: ImportReport = { environment: opts.environment, version, dumpVersion: manifest.schemaVersion, tables: [], sequences: [], ms: 0 };
  logger.info(`applying incremental dump ${opts.dir} (v${version}, ${tables.length} tables) to ${opts.environment}`);
  const copyInto = async (rel: string, columns: string[], file: { file: string; rows: number }, table: string, phase: string) => {
    const sink = client.query(copyFrom(`COPY ${rel} (${columns.map(ident).join(', ')}) FROM STDIN (FORMAT csv, HEADER true)`));
    const tap = progressTap(logger, table, { header: true, totalRows: file.rows, phase });
    await pipeline(createReadStream(path.join(opts.dir, file.file), { highWaterMark: 256 * 1024 }), tap, sink);
    return sink.rowCount;
  };
  await client.query('begin');
  try {
    await assertFreezeHeld(client, opts.environment, { lock: true }); // held until commit: the seal renewed below absorbs nothing
    await ensureStateSchema(client);
    await setUserTriggers(client, tables, false);
    const staged = [];
    for (const [i, t] of manifest.tables.entries()) {
      const stage = `bg_stage_${i}`;
      await client.query(`create temp table ${stage} on commit drop as select ${t.columns.map(ident).join(', ')} from ${ident(t.name)} with no data`);
      const rows = await copyInto(stage, t.columns, t, t.name, 'stage');
      if (rows !== t.rows) throw new DumpError(`table ${t.name}: read ${rows} rows, the manifest says ${t.rows}`, 'the dump is inconsistent; export it again');
      let keys: string | undefined;
      if (t.keysFile && t.key.length) {
        keys = `bg_keys_${i}`;
        await client.query(`create temp table ${keys} on commit drop as select ${t.key.map(ident).join(', ')} from ${ident(t.name)} with no data`);
        await copyInto(keys, t.key, t.keysFile, t.name, 'keys');
        await client.query(`analyze ${keys}`);
      }
      staged.push({ t, stage, keys, deleted: 0 });
    }
    for (const x of [...staged].reverse()) {
      if (!x.keys) continue;
      const on = x.t.key.map((k) => `k.${ident(k)} = t.${ident(k)}`).join(' and ');
      const sql = `delete from ${ident(x.t.name)} t where not exists (select 1 from ${x.keys} k where ${on})`;
      x.deleted = await timedPhase(logger, x.t.name, 'deletes', {}, async () => (await client.query(sql)).rowCount ?? 0, (n) => ({ deleted: n }));
    }
    for (const x of staged) {
      const t0 = Date.now();
      const r = await upsertOrRebuild(client, { table: x.t.name, key: x.t.key, columns: x.t.columns }, x.stage, logger);
      report.tables.push({ table: x.t.name, rows: x.t.rows, inserted: r.inserted, updated: r.updated, deleted: x.deleted + (r.deleted ?? 0), ms: Date.now() - t0 });
      logger.info(`  ${x.t.name}: ${r.inserted} inserted, ${r.updated} updated, ${x.deleted} deleted`, { table: x.t.name, ...r, deleted: x.deleted });
    }
    await setUserTriggers(client, tables, true);
    report.sequences = await alignSequences(client, tables);
    await recordImport(client, manifest, opts.dir, version, started, report.tables.reduce((a, t) => a + (t.inserted ?? 0) + (t.updated ?? 0) + (t.deleted ?? 0), 0), {
      mode: 'incremental',
      tables: report.tables,
    });
    await sealFreeze(client); // our own writes into a frozen target are not tampering
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  }
  report.ms = Date.now() - started;
  return report;
}

/** The run record of an import, in the import's transaction. */
async function recordImport(client: pg.Client, manifest: Manifest, dir: string, version: number, started: number, rows: number, detail: Record<string, unknown>): Promise<void> {
  await recordRun(client, {
    kind: 'import',
    source: manifest.source?.environment,
    fromVersion: manifest.schemaVersion,
    toVersion: version,
    startedAt: new Date(started),
    status: 'ok',
    rows,
    detail: { dump: path.resolve(dir), createdAt: manifest.createdAt, ...detail },
  });
}
