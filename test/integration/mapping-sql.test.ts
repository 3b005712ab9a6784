/**
 * The SQL face of the sample mappings on real PostgreSQL agrees with the JS face (the
 * golden rows): every chain, up and down, computed by `COPY (SELECT ...)`-style queries
 * gives exactly the text the JS face gives. Also pins the hand-written unit-test catalogs
 * (test/unit/mapping/sample-catalogs.ts) to what PostgreSQL reads from each schema.sql.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/db/catalog-types.ts';
import { loadVersionCatalog } from '../../src/db/catalog.ts';
import { connect } from '../../src/db/connect.ts';
import { compileChain } from '../../src/mapping/chain.ts';
import { quoteIdent } from '../../src/mapping/sql.ts';
import { freshDatabase } from '../helpers/pg.ts';
import { sampleCatalogs } from '../unit/mapping/sample-catalogs.ts';

const ROOT = path.join(import.meta.dirname, '../..');
const MAPPINGS = path.join(ROOT, 'mappings');
type Obj = Record<string, string | null>;
const golden = (v: number) =>
  (JSON.parse(readFileSync(path.join(ROOT, `test/fixtures/mappings/golden/v${v}.json`), 'utf8')) as { tables: Record<string, Obj[]> }).tables;
// Insert order that satisfies the foreign keys.
const ORDER: Record<number, string[]> = {
  1: ['roles', 'users', 'user_roles', 'user_settings'],
  2: ['roles', 'users', 'user_roles', 'user_settings'],
  3: ['groups', 'users', 'user_profiles', 'user_groups', 'user_settings'],
};

const raw = (v: string) => v;
async function textRows(client: pg.Client, sql: string): Promise<(string | null)[][]> {
  // Every value as PostgreSQL's text output (what COPY prints), no JS parsing.
  const r = await client.query({ text: sql, rowMode: 'array', types: { getTypeParser: () => raw } } as pg.QueryConfig);
  return r.rows as (string | null)[][];
}

const sortRows = (rows: (string | null)[][]) => [...rows].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));

let client: pg.Client;
const catalogs: Record<number, Catalog> = {};

async function databaseAt(version: number): Promise<pg.Client> {
  const c = await connect(await freshDatabase(`mapsql${version}`));
  await c.query(await readFile(path.join(MAPPINGS, `v${version}/schema.sql`), 'utf8'));
  const rows = golden(version);
  for (const t of ORDER[version]!) {
    for (const o of rows[t] ?? []) {
      const cols = Object.keys(o);
      await c.query(`insert into ${quoteIdent(t)} (${cols.map(quoteIdent).join(', ')}) values (${cols.map((_, i) => `$${i + 1}`).join(', ')})`, cols.map((k) => o[k]));
    }
  }
  return c;
}

beforeAll(async () => {
  client = await connect(await freshDatabase('mapcat'));
  for (const v of [1, 2, 3]) catalogs[v] = await loadVersionCatalog(client, MAPPINGS, v);
});
afterAll(async () => {
  await client?.end();
});

describe('sample catalogs', () => {
  it.each([1, 2, 3])('v%i: the unit tests\' hand-written catalog matches schema.sql', (v) => {
    // The fields the mapping engine reads; detection's (defaults, checks, types) are not hand-written.
    const cols = (t: Catalog['tables'][string]) => t.columns.map(({ name, type, notNull, hasDefault, identity, generated }) => ({ name, type, notNull, hasDefault, identity, generated }));
    const strip = (c: Catalog) => Object.fromEntries(Object.entries(c.tables).map(([n, t]) => [n, { columns: cols(t), primaryKey: t.primaryKey, uniqueKeys: t.uniqueKeys }]));
    expect(strip(sampleCatalogs[v as 1 | 2 | 3])).toEqual(strip(catalogs[v]!));
  });
});

describe('SQL face equals JS face on the golden rows', () => {
  for (const from of [1, 2, 3]) {
    it(`from v${from} to every other version`, async () => {
      const source = await databaseAt(from);
      try {
        for (const to of [1, 2, 3]) {
          if (to === from) continue;
          const chain = await compileChain(MAPPINGS, from, to, catalogs);
          for (const [name, t] of Object.entries(chain.tables)) {
            const got = await textRows(source, t.selectSql(quoteIdent));
            // Columns left to DEFAULT are not in the SELECT; compare what it writes.
            const want = (golden(to)[name] ?? []).map((o) => t.columns.map((c) => o[c]!));
            expect(sortRows(got), `v${from} -> v${to} ${name}`).toEqual(sortRows(want));
          }
        }
      } finally {
        await source.end();
      }
    });
  }

  it('an unmapped value fails the SQL face loudly', async () => {
    const source = await databaseAt(2);
    try {
      await source.query(`alter table user_settings drop constraint user_settings_status_check`);
      await source.query(`update user_settings set status = 'suspended' where status = 'active'`);
      const chain = await compileChain(MAPPINGS, 2, 1, catalogs);
      await expect(textRows(source, chain.tables.user_settings!.selectSql(quoteIdent))).rejects.toThrow(/bluegreen: suspended is not in the value map of user_settings.active/);
    } finally {
      await source.end();
    }
  });
});
