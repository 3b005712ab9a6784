/**
 * Golden rows of the sample app (test/fixtures/mappings/golden/v1..v3.json): v1 rows with
 * hostile strings, and their exact v2 and v3 forms. Every chain, up and down, must turn
 * each version's rows into each other version's, with the JS face; and `check` must pass.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Catalog } from '../../../src/db/catalog-types.ts';
import { compileChain } from '../../../src/mapping/chain.ts';
import { applyStep, checkMappings } from '../../../src/mapping/check.ts';
import type { Row } from '../../../src/mapping/types.ts';
import { sampleCatalogs } from './sample-catalogs.ts';

type Obj = Record<string, string | null>;
const mappingsDir = path.join(import.meta.dirname, '../../../mappings');
const golden = (v: number) =>
  (JSON.parse(readFileSync(path.join(import.meta.dirname, `../../fixtures/mappings/golden/v${v}.json`), 'utf8')) as { tables: Record<string, Obj[]> }).tables;

/** Objects -> rows in catalog column order, refusing unknown or missing columns. */
function toRows(cat: Catalog, tables: Record<string, Obj[]>): Record<string, Row[]> {
  const out: Record<string, Row[]> = {};
  for (const [name, objs] of Object.entries(tables)) {
    const cols = cat.tables[name]!.columns.map((c) => c.name);
    out[name] = objs.map((o) => {
      expect(Object.keys(o).sort()).toEqual([...cols].sort());
      return cols.map((c) => o[c]!);
    });
  }
  return out;
}

const versions = [1, 2, 3] as const;

describe('golden sample-app rows', () => {
  for (const from of versions) {
    for (const to of versions) {
      if (from === to) continue;
      it(`v${from} -> v${to}`, async () => {
        const chain = await compileChain(mappingsDir, from, to, sampleCatalogs);
        const got = applyStep(chain, toRows(sampleCatalogs[from], golden(from)));
        expect(got).toEqual(toRows(sampleCatalogs[to], golden(to)));
      });
    }
  }

  it('v1 full_name cases split as documented', () => {
    const v2 = golden(2).users!;
    const byLogin = Object.fromEntries(v2.map((u) => [u.login, [u.first_name, u.last_name]]));
    expect(byLogin.bob).toEqual([null, null]);
    expect(byLogin.cher).toEqual(['Cher', null]);
    expect(byLogin.empty).toEqual(['', null]);
    expect(byLogin.space).toEqual(['', '']);
    expect(byLogin.lead).toEqual(['', ' Leading Spaces']);
    expect(byLogin.trail).toEqual(['Trailing', '']);
    expect(byLogin.multi).toEqual(['Mary', ' Ann   Smith']);
  });

  it('bluegreen check passes on the sample mappings, listing the declared losses', async () => {
    const report = await checkMappings(mappingsDir, sampleCatalogs, { version: 1, tables: toRows(sampleCatalogs[1], golden(1)) });
    expect(report.problems).toEqual([]);
    expect(report.versions).toEqual([1, 2, 3]);
    expect(report.roundTrips.map((r) => [r.from, r.via, r.ok])).toEqual([
      [1, 2, true],
      [2, 1, true],
      [2, 3, true],
      [3, 2, true],
    ]);
    expect(report.roundTrips.find((r) => r.from === 2 && r.via === 1)!.lossyColumns).toEqual(['users.first_name', 'users.last_name']);
    expect(report.roundTrips.find((r) => r.from === 3)!.lossyColumns).toEqual(['user_profiles.updated_at']);
    expect(report.ok).toBe(true);
  });

  it('check reports rows that do not come back: a v2 first_name with a space', async () => {
    const v2 = toRows(sampleCatalogs[2], golden(2));
    v2.users![0]![2] = 'Mary Ann';
    const report = await checkMappings(mappingsDir, sampleCatalogs, { version: 2, tables: v2 });
    const trip = report.roundTrips.find((r) => r.from === 2 && r.via === 1)!;
    // Declared lossy: counted, not a failure.
    expect(trip.tables.find((t) => t.table === 'users')!.lossyChanged).toBe(1);
    expect(trip.ok).toBe(true);
  });

  it('the chain SQL nests step by step over the original tables', async () => {
    const chain = await compileChain(mappingsDir, 3, 1, sampleCatalogs);
    const sql = chain.tables.users!.selectSql((t) => `"public".${JSON.stringify(t)}`);
    expect(sql).toMatch(/^SELECT "s0"\."id" AS "id", "s0"\."login" AS "username", CASE .* END AS "full_name", .* FROM \(SELECT .* FROM "public"\."users" AS "s0" LEFT JOIN "public"\."user_profiles" AS "s1" ON "s0"\."id" = "s1"\."id"\) AS "s0"$/);
    expect(chain.tables.users!.sources.map((s) => [s.table, s.key, s.watermark])).toEqual([
      ['users', ['id'], 'updated_at'],
      ['user_profiles', ['id'], 'updated_at'],
    ]);
    const roles = (await compileChain(mappingsDir, 1, 3, sampleCatalogs)).tables.user_groups!;
    expect(roles.selectSql((t) => t)).toBe(
      'SELECT "s0"."user_id" AS "user_id", "s0"."role_id" AS "group_id", "s0"."granted_at" AS "granted_at", "s0"."updated_at" AS "updated_at" FROM (SELECT "s0"."user_id" AS "user_id", ("s0"."role_id")::bigint AS "role_id", "s0"."granted_at" AS "granted_at", "s0"."updated_at" AS "updated_at" FROM user_roles AS "s0") AS "s0"',
    );
    expect(roles.sources[0]!.key).toEqual(['user_id', 'role_id']);
  });
});
