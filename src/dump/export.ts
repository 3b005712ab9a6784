/**
 * `export`: every table read in ONE snapshot (REPEATABLE READ; parallel workers join it
 * with SET TRANSACTION SNAPSHOT), streamed from COPY TO STDOUT straight to files while
 * being hashed: no row is parsed or held in memory.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { connect, ident, literal } from '../db/connect.ts';
import { readHorizon } from '../sync/horizon.ts';
import { sinceFilter } from '../sync/watermark.ts';
import { detectVersion, loadOrder, VersionCatalogs, type Catalog, type TableInfo } from '../db/catalog.ts';
import { InvalidInputError, TableError, VersionMismatchError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { redactUrl } from '../redact.ts';
import { dumpOrderBy, keylessTables } from './keyless.ts';
import { dumpFileName, newManifest, writeManifest, type DumpTable, type Manifest } from './manifest.ts';
import { progressTap, tableEstimate } from '../progress.ts';
import { markDumpComplete, prepareExportDir } from './outdir.ts';

export interface ExportOptions {
  /** Source connection URL. */
  url: string;
  /** Environment name, for messages and the manifest. */
  environment: string;
  mappingsDir: string;
  /** Dump directory to create (must not exist or be empty). */
  out: string;
  /** Version of the source; detected from its catalog when omitted. */
  version?: number;
  /** Parallel table workers sharing the snapshot. */
  jobs?: number;
  /**
   * Incremental: only rows whose watermark is at or after this value (inclusive), plus
   * every table's full key set so the importer can detect deletes. Tables without a
   * watermark are exported whole.
   */
  since?: string;
  /** Extra margin for the next `since` (PostgreSQL interval), for application clocks. */
  lookback?: string;
  /** Replace a previous complete dump in `out` (a killed export's partial output is always cleaned). */
  force?: boolean;
  logger: Logger;
}

export interface TableReport {
  table: string;
  rows: number;
  bytes: number;
  ms: number;
}

export interface ExportReport {
  dir: string;
  manifest: Manifest;
  /** The `--since` value for the next incremental export: nothing committed later is missed. */
  nextSince: string;
  tables: TableReport[];
  ms: number;
}

/** Columns COPY can read and write: everything but generated columns. */
export function copyColumns(t: TableInfo): string[] {
  return t.columns.filter((c) => !c.generated).map((c) => c.name);
}

const COLLATABLE = /^(text|character varying|character|citext|name)\b/;

/**
 * ORDER BY for a table's key in a byte-stable order: text keys compare by bytes (COLLATE
 * "C") so offline merge joins in JS agree with the database's order.
 */
export function keyOrderBy(t: TableInfo, key: string[]): string {
  return key
    .map((k) => {
      const type = t.columns.find((c) => c.name === k)?.type ?? '';
      return COLLATABLE.test(type) ? `${ident(k)} collate "C"` : ident(k);
    })
    .join(', ');
}

/** A table's key: its primary key, else refused (no silent guesses). */
export function tableKey(t: TableInfo): string[] {
  if (t.primaryKey.length > 0) return t.primaryKey;
  throw new TableError(
    t.name,
    'has no primary key',
    'add a primary key, or name a unique non-null key (or "reload": "full") for it in the mapping',
  );
}

/** A pass-through that hashes and counts what flows through it. */
export function hashTap(): Transform & { digest(): { sha256: string; bytes: number } } {
  const h = createHash('sha256');
  let bytes = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
  }) as Transform & { digest(): { sha256: string; bytes: number } };
  t.digest = () => ({ sha256: h.digest('hex'), bytes });
  return t;
}

/** Streams `COPY (sql) TO STDOUT` (CSV with header) into `file` (0600); returns its facts. */
export async function copyQueryToFile(
  client: pg.Client,
  sql: string,
  file: string,
  progress?: Transform,
): Promise<{ rows: number; bytes: number; sha256: string }> {
  const source = client.query(copyTo(`COPY (${sql}) TO STDOUT (FORMAT csv, HEADER true)`));
  const tap = hashTap();
  if (progress) await pipeline(source, tap, progress, createWriteStream(file, { mode: 0o600 }));
  else await pipeline(source, tap, createWriteStream(file, { mode: 0o600 }));
  // The stream ends at CopyDone; its rowCount arrives with the CommandComplete after it,
  // which the pipeline does not wait for (a manifest once said 0 rows for 311). The client
  // runs queries in order, so the next one returns after the COPY is complete.
  await client.query('select 1');
  return { rows: source.rowCount, ...tap.digest() };
}

/** sha256 and size of `COPY (sql) TO STDOUT` (CSV with header), without keeping it. */
export async function hashQuery(client: pg.Client, sql: string): Promise<{ sha256: string; bytes: number }> {
  const tap = hashTap();
  await pipeline(client.query(copyTo(`COPY (${sql}) TO STDOUT (FORMAT csv, HEADER true)`)), tap, new Writable({ write: (_c, _e, cb) => cb() }));
  return tap.digest();
}

/** Opens a REPEATABLE READ READ ONLY transaction; returns its exported snapshot id. */
export async function beginSnapshot(client: pg.Client): Promise<{ snapshot: string; now: string }> {
  await client.query('begin isolation level repeatable read read only');
  const r = await client.query<{ snapshot: string; now: string }>(
    `select pg_export_snapshot() as snapshot, to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as now`,
  );
  return r.rows[0]!;
}

export async function joinSnapshot(client: pg.Client, snapshot: string): Promise<void> {
  await client.query('begin isolation level repeatable read read only');
  await client.query(`set transaction snapshot '${snapshot.replace(/'/g, "''")}'`);
}

/** Runs `work` over `items` with at most `jobs` in flight, each worker owning a client. */
export async function runPool<T>(items: T[], clients: pg.Client[], work: (item: T, client: pg.Client) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  await Promise.all(
    clients.map(async (client) => {
      while (failed === undefined && next < items.length) {
        const item = items[next++]!;
        try {
          await work(item, client);
        } catch (err) {
          failed ??= err;
        }
      }
    }),
  );
  if (failed !== undefined) throw failed;
}

export async function exportDump(opts: ExportOptions): Promise<ExportReport> {
  const started = Date.now();
  const { logger } = opts;
  const main = await connect(opts.url, { label: opts.environment, applicationName: 'bluegreen export' });
  const extra: pg.Client[] = [];
  try {
    const catalogs = new VersionCatalogs(opts.mappingsDir, main);
    let version: number;
    let catalog: Catalog;
    if (opts.version !== undefined) {
      version = opts.version;
      catalog = await catalogs.get(version);
    } else {
      const detected = await detectVersion(main, catalogs, opts.environment);
      if (detected.version === 'empty') {
        throw new VersionMismatchError(`${opts.environment} has no tables to export`, `apply a schema first: bluegreen schema apply --to ${opts.environment} --schema-version N`);
      }
      version = detected.version;
      catalog = await catalogs.get(version);
    }
    await prepareExportDir(opts.out, { force: opts.force, logger });
    const order = loadOrder(catalog);
    // Keyless tables a mapping reloads whole or appends to: dumped whole (src/dump/keyless.ts).
    const keyless = await keylessTables(opts.mappingsDir, version);
    const plans = order.map((name) => {
      const t = catalog.tables[name]!;
      const whole = t.primaryKey.length === 0 && keyless.has(name);
      return { t, key: whole ? [] : tableKey(t), columns: copyColumns(t) };
    });
    // The next --since must cover transactions still open when this snapshot is taken,
    // so it is read first (src/sync/horizon.ts).
    const horizon = await readHorizon(main, opts.environment, logger, opts.lookback);
    if (opts.since !== undefined) {
      const ok = await main.query<{ v: string | null }>(`select $1::timestamptz::text as v`, [opts.since]).catch(() => undefined);
      if (!ok) throw new InvalidInputError(`--since ${JSON.stringify(opts.since)} is not a timestamp`, "pass the nextSince of the previous export, e.g. --since '2026-11-26 12:00:00+00'");
    }
    // Each watermark bounded by its own rule (zone, skew), decided before the snapshot.
    const sinceFilters = new Map<string, string | null>();
    if (opts.since !== undefined) for (const p of plans) if (p.key.length) sinceFilters.set(p.t.name, await sinceFilter(main, p.t, opts.since));
    const { snapshot, now } = await beginSnapshot(main);
    const serverVersion = (await main.query<{ v: string }>('show server_version')).rows[0]!.v;
    const jobs = Math.max(1, Math.min(opts.jobs ?? 1, plans.length));
    for (let i = 1; i < jobs; i++) {
      const c = await connect(opts.url, { label: opts.environment, applicationName: 'bluegreen export' });
      extra.push(c);
      await joinSnapshot(c, snapshot);
    }
    logger.info(`exporting ${opts.environment} (v${version}, ${plans.length} tables) to ${opts.out}`);
    const results = new Map<string, DumpTable>();
    const reports: TableReport[] = [];
    await runPool(plans, [main, ...extra], async (p, client) => {
      const t0 = Date.now();
      const file = dumpFileName(p.t.name);
      const wm = p.t.watermark ? p.t.columns.find((c) => c.name === p.t.watermark) : undefined;
      const bound = sinceFilters.get(p.t.name);
      const filter = bound ? ` where ${bound}` : '';
      const sql = `select ${p.columns.map(ident).join(', ')} from ${ident(p.t.name)}${filter} order by ${dumpOrderBy(p.key.length ? keyOrderBy(p.t, p.key) : '', p.key, p.columns)}`;
      const est = opts.since === undefined ? await tableEstimate(client, p.t.name) : {};
      const facts = await copyQueryToFile(client, sql, path.join(opts.out, file), progressTap(logger, p.t.name, { header: true, totalRows: est.rows, phase: 'export' }));
      const entry: DumpTable = { name: p.t.name, file, columns: p.columns, key: p.key, ...facts };
      if (opts.since !== undefined && p.key.length) {
        // Every key at the snapshot: target rows whose key is not here were deleted.
        const keysFile = dumpFileName(p.t.name, '.keys.csv');
        const keys = await copyQueryToFile(
          client,
          `select ${p.key.map(ident).join(', ')} from ${ident(p.t.name)} order by ${keyOrderBy(p.t, p.key)}`,
          path.join(opts.out, keysFile),
        );
        entry.keysFile = { file: keysFile, ...keys };
        if (wm && bound) {
          const to = (await client.query<{ v: string }>(`select ${literal(horizon.value)}::timestamptz::${wm.type}::text as v`)).rows[0]!.v;
          entry.watermark = { column: wm.name, from: opts.since, to };
        }
      }
      results.set(p.t.name, entry);
      reports.push({ table: p.t.name, rows: facts.rows, bytes: facts.bytes, ms: Date.now() - t0 });
      logger.info(`  ${p.t.name}: ${facts.rows} rows`, { table: p.t.name, rows: facts.rows, bytes: facts.bytes });
    });
    for (const c of [main, ...extra]) await c.query('commit');
    const manifest = newManifest({
      schemaVersion: version,
      mode: opts.since !== undefined ? 'incremental' : 'full',
      source: { environment: opts.environment, url: redactUrl(opts.url), serverVersion, snapshotTime: now },
      tables: order.map((n) => results.get(n)!),
    });
    // The manifest is written last: a directory without one is never taken for a dump.
    await writeManifest(opts.out, manifest);
    await markDumpComplete(opts.out);
    return { dir: opts.out, manifest, nextSince: horizon.value, tables: reports, ms: Date.now() - started };
  } finally {
    for (const c of [main, ...extra]) await c.end().catch(() => {});
  }
}
