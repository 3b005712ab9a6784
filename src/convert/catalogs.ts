/**
 * Catalogs of versions for commands that work without a live source or target (`convert`,
 * `check`, `new-version` + `check`). A version's catalog is what PostgreSQL makes of its
 * schema.sql (types as format_type prints them), so it needs a server once; after that it
 * is a pure function of the file's bytes. So catalogs are cached as JSON keyed by the
 * sha256 of schema.sql: editing the file changes the key, a stale entry can never be used,
 * and a warm cache makes the commands fully offline.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { Catalog } from '../db/catalog-types.ts';
import { loadVersionCatalog, readSchemaSql } from '../db/catalog.ts';
import { connect } from '../db/connect.ts';
import { BluegreenError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { CatalogsByVersion } from '../mapping/index.ts';
import { redactText } from '../redact.ts';
import { CatalogsUnavailableError } from './errors.ts';

/** Format tag of a cache entry; bump it when Catalog's shape changes (2: what detection compares besides columns; 3: partition keys; src/db/catalog-cache.ts). */
const CACHE_FORMAT = 'bluegreen-catalog/3';

/** A database catalogs may be learnt on, tried in order. */
export interface CatalogDatabase {
  /** Name for messages (`blue`, `--catalog-url`). */
  label: string;
  /** Connection URL (may hold a password; never printed unredacted). */
  url: string;
}

/** Options of {@link resolveCatalogs}. */
export interface ResolveCatalogsOptions {
  /** Folder of versions. */
  mappingsDir: string;
  /** Versions needed. */
  versions: number[];
  /** Cache folder; undefined disables the cache. */
  cacheDir?: string;
  /** Databases to learn missing catalogs on; the first that accepts a connection is used. */
  databases: CatalogDatabase[];
  /** Says when catalogs are learnt rather than read from the cache. */
  logger: Logger;
}

/** Gives the catalogs of the versions asked for; how is the caller's business. */
export type CatalogProvider = (versions: number[]) => Promise<CatalogsByVersion>;

interface CacheEntry {
  format: typeof CACHE_FORMAT;
  schemaSha256: string;
  catalog: Catalog;
}

/** A cache entry is our own file, but a file all the same: check its shape before trusting it. */
function isCacheEntry(json: unknown, sha: string): json is CacheEntry {
  if (!json || typeof json !== 'object') return false;
  const e = json as Partial<CacheEntry>;
  if (e.format !== CACHE_FORMAT || e.schemaSha256 !== sha || !e.catalog || typeof e.catalog !== 'object') return false;
  const tables = (e.catalog as { tables?: unknown }).tables;
  if (!tables || typeof tables !== 'object') return false;
  return Object.values(tables as Record<string, unknown>).every(
    (t) => !!t && typeof t === 'object' && Array.isArray((t as { columns?: unknown }).columns) && Array.isArray((t as { primaryKey?: unknown }).primaryKey),
  );
}

/** sha256 of a version's schema.sql: the cache key. */
export async function schemaSha256(mappingsDir: string, version: number): Promise<string> {
  return createHash('sha256').update(await readSchemaSql(mappingsDir, version)).digest('hex');
}

async function readCached(cacheDir: string, sha: string): Promise<Catalog | undefined> {
  try {
    const json: unknown = JSON.parse(await readFile(path.join(cacheDir, `${sha}.json`), 'utf8'));
    return isCacheEntry(json, sha) ? json.catalog : undefined;
  } catch {
    return undefined; // absent or unreadable: learn it again
  }
}

async function writeCached(cacheDir: string, sha: string, catalog: Catalog): Promise<void> {
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  const file = path.join(cacheDir, `${sha}.json`);
  // Write then rename, so a concurrent reader never sees half a file.
  const tmp = `${file}.${process.pid}.tmp`;
  const entry: CacheEntry = { format: CACHE_FORMAT, schemaSha256: sha, catalog };
  await writeFile(tmp, JSON.stringify(entry) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

async function firstReachable(databases: CatalogDatabase[], tried: string[]): Promise<{ client: pg.Client; label: string } | undefined> {
  for (const db of databases) {
    try {
      return { client: await connect(db.url, { label: db.label, applicationName: 'bluegreen catalog' }), label: db.label };
    } catch (err) {
      if (!(err instanceof BluegreenError)) throw err;
      tried.push(redactText(`${db.label}: ${err.message}`));
    }
  }
  return undefined;
}

/**
 * The catalogs of `versions`: from the cache when schema.sql is unchanged, else learnt on
 * the first reachable database (in a rolled-back transaction) and cached. Throws
 * CatalogsUnavailableError, saying what to do, when some are missing and no database
 * answers; InvalidInputError when a schema.sql does not apply.
 */
export async function resolveCatalogs(opts: ResolveCatalogsOptions): Promise<Record<number, Catalog>> {
  const out: Record<number, Catalog> = {};
  const missing: { version: number; sha: string }[] = [];
  for (const v of [...new Set(opts.versions)].sort((a, b) => a - b)) {
    const sha = await schemaSha256(opts.mappingsDir, v);
    const cached = opts.cacheDir ? await readCached(opts.cacheDir, sha) : undefined;
    if (cached) out[v] = cached;
    else missing.push({ version: v, sha });
  }
  if (missing.length === 0) {
    opts.logger.debug(`catalogs of ${opts.versions.map((v) => `v${v}`).join(', ')} from the cache`);
    return out;
  }
  const tried: string[] = [];
  const db = await firstReachable(opts.databases, tried);
  if (!db) throw new CatalogsUnavailableError(missing.map((m) => m.version), tried, opts.cacheDir);
  try {
    opts.logger.info(`learning the catalogs of ${missing.map((m) => `v${m.version}`).join(', ')} from schema.sql on ${db.label}`);
    for (const m of missing) {
      out[m.version] = await loadVersionCatalog(db.client, opts.mappingsDir, m.version);
      if (opts.cacheDir) await writeCached(opts.cacheDir, m.sha, out[m.version]!);
    }
  } finally {
    await db.client.end().catch(() => {});
  }
  return out;
}

/**
 * The first of `databases` that accepts a connection (a server to run SQL faces on for
 * the offline commands), or undefined when none does.
 */
export async function firstReachableServer(databases: CatalogDatabase[]): Promise<{ client: pg.Client; label: string } | undefined> {
  return firstReachable(databases, []);
}

/** A CatalogProvider over {@link resolveCatalogs} with fixed cache and databases. */
export function catalogProvider(opts: Omit<ResolveCatalogsOptions, 'versions'>): CatalogProvider {
  return (versions) => resolveCatalogs({ ...opts, versions });
}

/** Every version from `a` to `b` inclusive, either direction (what a chain needs). */
export function versionsBetween(a: number, b: number): number[] {
  const out: number[] = [];
  for (let v = Math.min(a, b); v <= Math.max(a, b); v++) out.push(v);
  return out;
}
