/**
 * `convert`: a dump at vA becomes a dump at vB, offline, through the mapping chain's JS
 * face. Refusals first (manifest and every checksum, mappings, unsupported faces, columns),
 * then one streaming pass per target table into a new file hashed as it is written, and
 * the manifest last: a directory without one is never taken for a dump, and a failed run
 * removes what it wrote.
 */
import { createWriteStream } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { InvalidInputError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { hashTap } from '../dump/export.ts';
import { progressTap } from '../progress.ts';
import { dumpFileName, newManifest, openDump, prepareDumpDir, writeManifest, type DumpTable, type Manifest } from '../dump/manifest.ts';
import { compileChain } from '../mapping/index.ts';
import { versionsBetween, type CatalogProvider } from './catalogs.ts';
import { assertVersionExists } from '../db/catalog.ts';
import { convertTable, planConversion, type TableConversionStats, type TablePlan } from './stream.ts';
import type { Transform, Writable } from 'node:stream';
import type pg from 'pg';
import type { Catalog } from '../db/catalog-types.ts';
import { OfflineConversionUnsupportedError } from './errors.ts';
import { openScratch } from './faces.ts';
import { compileExpressions } from './preflight.ts';
import { copyThroughSql, type Staged } from './sql-fallback.ts';

/** Options of {@link convertDump}. */
export interface ConvertOptions {
  /** Dump directory to read. */
  dir: string;
  /** New dump directory (must not exist, or be empty). */
  out: string;
  /** Version to convert to. */
  toVersion: number;
  /** Folder of versions. */
  mappingsDir: string;
  /** Catalogs of the versions of the chain. */
  catalogs: CatalogProvider;
  /** Where progress and warnings go (src/ never prints). */
  logger: Logger;
  /**
   * A PostgreSQL to run the SQL face of tables without a JS face on (found as catalogs
   * are); nothing stays on it. Without one such tables are refused before any write.
   */
  server?: () => Promise<{ client: pg.Client; label: string } | undefined>;
}

/** What a conversion did. */
export interface ConvertReport {
  /** Input dump. */
  dir: string;
  /** Output dump. */
  out: string;
  /** Version of the input. */
  fromVersion: number;
  /** Version of the output. */
  toVersion: number;
  /** The new manifest. */
  manifest: Manifest;
  /** Per target table, in load order. */
  tables: TableConversionStats[];
  /** Rows written, all tables. */
  rows: number;
  /** Wall time of the whole run, checks included. */
  ms: number;
  /** Rows written per second of the conversion passes (checksum checks excluded). */
  rowsPerSecond: number;
}

/** One table through its SQL face on the scratch server (sql-fallback.ts), with its stats. */
async function sqlTable(client: pg.Client, p: TablePlan, source: Catalog, target: Catalog, staged: Staged, into: Writable, tap: Transform): Promise<TableConversionStats> {
  const t0 = Date.now();
  const rows = await copyThroughSql(client, p, source, target, staged, into, tap);
  return { table: p.target.table, read: Object.fromEntries(p.inputs.map((i) => [i.table, i.rows])), rows, orphans: 0, ms: Date.now() - t0 };
}

/**
 * Converts the dump in `opts.dir` to `opts.toVersion` into `opts.out`. Throws, before
 * creating anything: DumpError / ChecksumMismatchError for a damaged dump, ValidationError
 * for an invalid mapping on the chain, OfflineConversionUnsupportedError for a table
 * without a JS face. A value the mapping refuses (MappingValueError) fails the run after
 * it started; what was written is then removed.
 */
export async function convertDump(opts: ConvertOptions): Promise<ConvertReport> {
  const started = Date.now();
  const { logger } = opts;
  await assertVersionExists(opts.mappingsDir, opts.toVersion, '--to-version');
  const manifest = await openDump(opts.dir);
  const from = manifest.schemaVersion;
  const catalogs = await opts.catalogs(versionsBetween(from, opts.toVersion));
  const chain = await compileChain(opts.mappingsDir, from, opts.toVersion, catalogs);
  const plan = planConversion(opts.dir, manifest, chain, catalogs, { sqlFallback: opts.server !== undefined });
  if (path.resolve(opts.out) === path.resolve(opts.dir)) throw new InvalidInputError('--out must be another directory than --in');
  // Tables without a JS face run their SQL face on a server: find it before any write.
  const sqlTables = plan.tables.filter((p) => p.face === 'sql');
  const server = sqlTables.length > 0 ? await opts.server!() : undefined;
  if (sqlTables.length > 0 && server === undefined) {
    const t = sqlTables[0]!;
    throw new OfflineConversionUnsupportedError(t.target.table, from, opts.toVersion, t.target.jsUnsupported);
  }

  const created = await prepareDumpDir(opts.out, 'converted dump').catch(async (e: unknown) => {
    await server?.client.end().catch(() => {});
    throw e;
  });
  const written: string[] = [];
  const scratch = server
    ? await openScratch(server.client, opts.mappingsDir, from).catch(async (e: unknown) => {
        await server.client.end().catch(() => {});
        if (created) await rmdir(opts.out).catch(() => {});
        throw e;
      })
    : undefined;
  const staged: Staged = new Map();
  try {
    // Every expression the mapping's author wrote compiles before a file is written (file
    // and JSON pointer named, as check names them); offline there is nothing to compile on.
    if (server) await compileExpressions(server.client, plan.tables.map((p) => p.target));
    logger.info(`converting ${opts.dir} (v${from}) to v${opts.toVersion} in ${opts.out}`);
    for (const [table, why] of Object.entries(chain.notCarried)) logger.info(`  ${table}: not carried (${why})`, { table, notCarried: why });
    const tables: DumpTable[] = [];
    const stats: TableConversionStats[] = [];
    const t0 = Date.now();
    for (const p of plan.tables) {
      const file = dumpFileName(p.target.table);
      const full = path.join(opts.out, file);
      written.push(full);
      const tap = hashTap();
      // `wx`: never overwrite; the directory was empty, so a clash is a bug worth seeing.
      const into = createWriteStream(full, { mode: 0o600, flags: 'wx' });
      const s =
        p.face === 'sql'
          ? await sqlTable(server!.client, p, catalogs[from]!, catalogs[opts.toVersion]!, staged, into, tap)
          : await convertTable(p, { header: true, through: [tap, progressTap(logger, p.target.table, { header: true, totalRows: p.inputs[0]?.rows, phase: 'convert' })], into });
      stats.push(s);
      logger.progress('convert', stats.length, plan.tables.length, { unit: 'tables' });
      tables.push({ name: p.target.table, file, columns: p.target.columns, key: p.target.key, rows: s.rows, ...tap.digest() });
      if (s.orphans > 0) logger.warn(`  ${p.target.table}: ${s.orphans} rows of merged tables had no partner and were dropped`, { table: p.target.table, orphans: s.orphans });
      logger.info(`  ${p.target.table}: ${s.rows} rows`, { table: p.target.table, rows: s.rows, ms: s.ms });
    }
    logger.progressDone('convert');
    const convertMs = Date.now() - t0;
    const out = newManifest({
      schemaVersion: opts.toVersion,
      convertedFrom: manifest.convertedFrom ?? from,
      mode: 'full',
      ...(manifest.source ? { source: manifest.source } : {}),
      tables,
    });
    written.push(path.join(opts.out, 'manifest.json'));
    await writeManifest(opts.out, out);
    await scratch?.close();
    await server?.client.end().catch(() => {});
    const rows = stats.reduce((n, s) => n + s.rows, 0);
    return {
      dir: opts.dir,
      out: opts.out,
      fromVersion: from,
      toVersion: opts.toVersion,
      manifest: out,
      tables: stats,
      rows,
      ms: Date.now() - started,
      rowsPerSecond: Math.round(rows / Math.max(convertMs / 1000, 0.001)),
    };
  } catch (err) {
    await scratch?.close().catch(() => {});
    await server?.client.end().catch(() => {});
    // Leave the output as it was found (absent or empty) so a rerun just works.
    for (const f of written) await rm(f, { force: true }).catch(() => {});
    if (created) await rmdir(opts.out).catch(() => {});
    throw err;
  }
}
