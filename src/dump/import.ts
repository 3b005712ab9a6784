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
 * Fast path for an initial load (FACTS.md: index maintenance dominates an indexed load):
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
import { ensureStateSchema, recordRun } from '../db/state.ts';
import { alignSequences, type SequenceMove } from '../db/sequences.ts';
import { deferrableDdl, setUserTriggers } from '../db/bulk.ts';
import { DumpError, TargetNotEmptyError, VersionMismatchError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { compileChain } from '../mapping/index.ts';
import { versionsBetween } from '../convert/catalogs.ts';
import { convertTable, planConversion, type TablePlan } from '../convert/stream.ts';
import { openDump, type Manifest } from './manifest.ts';

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
  logger: Logger;
}

export interface ImportReport {
  environment: string;
  version: number;
  /** Version of the dump; differs from `version` when it was converted on the fly. */
  dumpVersion: number;
  tables: { table: string; rows: number; ms: number }[];
  sequences: SequenceMove[];
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

export async function importDump(opts: ImportOptions): Promise<ImportReport> {
  const started = Date.now();
  const { logger } = opts;
  // Refusals first: nothing is written before the dump is proven intact.
  const manifest = await openDump(opts.dir);
  const client = await connect(opts.url, { label: opts.environment, applicationName: 'bluegreen import' });
  try {
    const catalogs = new VersionCatalogs(opts.mappingsDir, client);
    let version: number;
    if (opts.version !== undefined) version = opts.version;
    else {
      const d = await detectVersion(client, catalogs, opts.environment);
      if (d.version === 'empty') {
        throw new VersionMismatchError(
          `${opts.environment} has no schema yet`,
          `create it first: bluegreen schema apply --to ${opts.environment} --version ${manifest.schemaVersion}`,
        );
      }
      version = d.version;
    }
    // One load step per target table: raw bytes when versions match, else converted.
    const loads: LoadStep[] = [];
    if (version === manifest.schemaVersion) {
      const target = await catalogs.get(version);
      checkDumpFitsTarget(manifest, target, opts.dir);
      for (const t of manifest.tables) loads.push({ table: t.name, columns: t.columns, raw: { file: path.join(opts.dir, t.file), rows: t.rows } });
    } else {
      const needed: Record<number, Catalog> = {};
      for (const v of versionsBetween(manifest.schemaVersion, version)) needed[v] = await catalogs.get(v);
      const chain = await compileChain(opts.mappingsDir, manifest.schemaVersion, version, needed);
      const plan = planConversion(opts.dir, manifest, chain, needed);
      for (const p of plan.tables) loads.push({ table: p.target.table, columns: p.target.columns, convert: p });
      logger.info(`dump ${opts.dir} is at v${manifest.schemaVersion}, ${opts.environment} at v${version}: converting on the fly`);
    }
    const tables = loads.map((l) => l.table);
    const occupied = await nonEmptyTables(client, tables);
    if (occupied.length > 0 && !opts.truncate) throw new TargetNotEmptyError(occupied);

    logger.info(`importing ${opts.dir} (v${manifest.schemaVersion}${version !== manifest.schemaVersion ? ` -> v${version}` : ''}, ${tables.length} tables) into ${opts.environment}`);
    const report: ImportReport = { environment: opts.environment, version, dumpVersion: manifest.schemaVersion, tables: [], sequences: [], ms: 0 };
    await client.query('begin');
    try {
      await ensureStateSchema(client);
      if (opts.truncate && occupied.length > 0) {
        await client.query(`truncate ${tables.map(ident).join(', ')}`);
      }
      // Replayed rows must keep their own updated_at and fire no application side
      // effects: user triggers are off for this transaction only (FK triggers stay).
      await setUserTriggers(client, tables, false);
      const ddl = await deferrableDdl(client, tables);
      for (const stmt of ddl.drop) await client.query(stmt);
      for (const l of loads) {
        const t0 = Date.now();
        const sink = client.query(
          copyFrom(`COPY ${ident(l.table)} (${l.columns.map(ident).join(', ')}) FROM STDIN (FORMAT csv, HEADER true)`),
        );
        let expected: number;
        if (l.raw) {
          await pipeline(createReadStream(l.raw.file, { highWaterMark: 256 * 1024 }), sink);
          expected = l.raw.rows;
        } else {
          // pipeline destroys the COPY stream on a conversion error, which aborts the COPY;
          // the transaction then rolls back below.
          const stats = await convertTable(l.convert!, { header: true, into: sink });
          expected = stats.rows;
          if (stats.orphans > 0) logger.warn(`  ${l.table}: ${stats.orphans} rows of merged tables had no partner and were dropped`, { table: l.table, orphans: stats.orphans });
        }
        if (sink.rowCount !== expected) {
          throw new DumpError(`table ${l.table}: loaded ${sink.rowCount} rows, expected ${expected}`, 'the dump is inconsistent; export it again');
        }
        report.tables.push({ table: l.table, rows: sink.rowCount, ms: Date.now() - t0 });
        logger.info(`  ${l.table}: ${sink.rowCount} rows`, { table: l.table, rows: sink.rowCount });
      }
      logger.info(`  rebuilding ${ddl.create.length} indexes and constraints`);
      for (const stmt of ddl.create) await client.query(stmt);
      await setUserTriggers(client, tables, true);
      report.sequences = await alignSequences(client, tables);
      await recordRun(client, {
        kind: 'import',
        source: manifest.source?.environment,
        fromVersion: manifest.schemaVersion,
        toVersion: version,
        startedAt: new Date(started),
        status: 'ok',
        rows: report.tables.reduce((a, t) => a + t.rows, 0),
        detail: { dump: path.resolve(opts.dir), createdAt: manifest.createdAt, convertedOnTheFly: version !== manifest.schemaVersion },
      });
      await client.query('commit');
    } catch (err) {
      await client.query('rollback').catch(() => {});
      throw err;
    }
    // Fresh statistics so the application's first queries on the new data plan well.
    for (const t of tables) await client.query(`analyze ${ident(t)}`);
    report.ms = Date.now() - started;
    return report;
  } finally {
    await client.end().catch(() => {});
  }
}
