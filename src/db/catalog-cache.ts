/**
 * Version catalogs cached in the target's `bluegreen` state, keyed by the sha256 of the
 * version's schema.sql and the server's version. Learning a catalog runs schema.sql in a
 * rolled-back scratch schema (~0.1 s per version); every sync, verify and cutover needs
 * all of them to detect versions, so without a cache that fixed cost was paid on every
 * run. With it, detecting a version is reading the live catalog and comparing it with the
 * cached ones. Editing schema.sql changes the key, so a stale entry is never used.
 *
 * Written only where the `bluegreen` schema already exists (a database bluegreen syncs
 * into); elsewhere catalogs are learnt as before and nothing is written.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { Catalog } from './catalog-types.ts';

/**
 * Bump when Catalog's shape changes: older entries are then ignored and learnt again.
 * 2: defaults, identity kinds, generated expressions, CHECK constraints, enums and domains
 * (version detection compares them; a format-1 entry lacks them and would match more).
 * 3: partitioned tables' partition keys (detection compares them; mapping checks need
 * them to tell a key PostgreSQL cannot back with a unique index).
 */
const FORMAT = 'bluegreen-catalog/3';

/** The cached catalog of `schemaSql` on this server, else `learn()`'s (then cached). */
export async function cachedCatalog(client: pg.Client, schemaSql: string, learn: () => Promise<Catalog>): Promise<Catalog> {
  const sha = createHash('sha256').update(schemaSql).digest('hex');
  const state = await client.query<{ schema: boolean; table: boolean; server: string }>(
    `select exists (select 1 from pg_namespace where nspname = 'bluegreen') as schema,
            to_regclass('bluegreen.catalogs') is not null as table, current_setting('server_version_num') as server`,
  );
  const { schema, table, server } = state.rows[0]!;
  if (table) {
    const hit = await client.query<{ catalog: Catalog }>(
      `select catalog from bluegreen.catalogs where schema_sha256 = $1 and server_version = $2 and format = $3`,
      [sha, server, FORMAT],
    );
    if (hit.rows[0]) return hit.rows[0].catalog;
  }
  const catalog = await learn();
  if (schema) await store(client, sha, server, catalog);
  return catalog;
}

async function store(client: pg.Client, sha: string, server: string, catalog: Catalog): Promise<void> {
  try {
    await client.query(`create table if not exists bluegreen.catalogs (
      schema_sha256  text not null,
      server_version text not null,
      format         text not null,
      catalog        jsonb not null,
      learnt_at      timestamptz not null default clock_timestamp(),
      primary key (schema_sha256, server_version, format))`);
    await client.query(`insert into bluegreen.catalogs (schema_sha256, server_version, format, catalog) values ($1, $2, $3, $4) on conflict do nothing`, [
      sha,
      server,
      FORMAT,
      JSON.stringify(catalog),
    ]);
  } catch {
    // A concurrent first run created it, or this role may not write here: the catalog
    // is learnt again next time, nothing else changes.
  }
}

/**
 * Stores catalogs learnt before the `bluegreen` schema existed (a target's first sync
 * creates it after detecting versions), so the second run already reads them. Outside a
 * transaction; `schemaSql` by version.
 */
export async function rememberCatalogs(client: pg.Client, catalogs: Record<number, Catalog>, schemaSql: (version: number) => Promise<string>): Promise<void> {
  const have = await client.query<{ table: boolean; server: string }>(
    `select to_regclass('bluegreen.catalogs') is not null as table, current_setting('server_version_num') as server`,
  );
  const { table, server } = have.rows[0]!;
  const known = new Set(table ? (await client.query<{ s: string }>(`select schema_sha256 as s from bluegreen.catalogs where server_version = $1 and format = $2`, [server, FORMAT])).rows.map((r) => r.s) : []);
  for (const [version, catalog] of Object.entries(catalogs)) {
    const sha = createHash('sha256').update(await schemaSql(Number(version))).digest('hex');
    if (!known.has(sha)) await store(client, sha, server, catalog);
  }
}
