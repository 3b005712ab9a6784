/**
 * `sync --repair`: re-copies exactly the keys the last verify named, through the mapping,
 * in one transaction, and checks them again. Before it, only `sync --full` mended a
 * difference an incremental run had found.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { query } from '../helpers/pg.ts';
import { makePair, MAPPINGS, report } from '../helpers/pair.ts';
import { VersionCatalogs } from '../../src/db/catalog.ts';
import { compileChain } from '../../src/mapping/index.ts';
import { selectByKeys } from '../../src/sync/repair.ts';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}
const seqScans = (n: PlanNode): string[] => [...(n['Node Type'] === 'Seq Scan' ? [n['Relation Name']!] : []), ...(n.Plans ?? []).flatMap(seqScans)];

describe('sync --repair', () => {
  it('fixes exactly the 3 planted differences (changed, missing, extra), and verify is clean again', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '200']);
    await p.ok(['sync']);
    // Three differences on green: a changed user (through the split mapping), a missing
    // settings row (uuid key, awkward types), an extra user.
    await query(p.green, `update users set last_name = 'Tampered' where id = 4`);
    const [gone] = await query<{ id: string }>(p.green, `delete from user_settings where id = (select id from user_settings order by id limit 1) returning id::text as id`);
    await query(p.green, `insert into users (id, login) values (900001, 'extra-on-green')`);
    // Rows the repair must not touch keep their row version.
    const untouched = async () =>
      query(p.green, `select (select string_agg(xmin::text, ',' order by id) from users where id not in (4, 900001)) as u, (select string_agg(xmin::text, ',' order by id) from user_settings) as s`);
    const before = await untouched();

    const v = await p.run(['verify', '--json']);
    expect(v.code).toBe(3);
    const named = report(v).tables.filter((t: { missing: { count: number }; extra: { count: number }; changed: { count: number } }) => t.missing.count + t.extra.count + t.changed.count > 0);
    expect(named.map((t: { table: string }) => t.table).sort()).toEqual(['user_settings', 'users']);

    const r = await p.run(['sync', '--repair', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = report(r);
    expect(rep.clean).toBe(true);
    const by = Object.fromEntries(rep.tables.map((t: { table: string }) => [t.table, t]));
    expect(by.users).toMatchObject({ keys: 2, copied: 1, inserted: 0, updated: 1, deleted: 1 });
    expect(by.user_settings).toMatchObject({ keys: 1, copied: 1, inserted: 1, updated: 0, deleted: 0 });
    expect(await query(p.green, `select last_name from users where id = 4`)).not.toEqual([{ last_name: 'Tampered' }]);
    expect(await query(p.green, `select count(*)::int as n from users where id = 900001`)).toEqual([{ n: 0 }]);
    expect(await query(p.green, `select count(*)::int as n from user_settings where id = $1`, [gone!.id])).toEqual([{ n: 1 }]);
    // Nothing else was rewritten: every other row keeps its version (user_settings gained one row).
    const after = await untouched();
    expect(after[0]!.u).toBe(before[0]!.u);
    expect(String(after[0]!.s).split(',').length).toBe(String(before[0]!.s).split(',').length + 1);

    expect((await p.run(['verify'])).code).toBe(0);
    // A second repair after a clean verify has nothing to do.
    const again = report(await p.ok(['sync', '--repair', '--json']));
    expect(again.tables).toEqual([]);
  });

  it('reads the source by key through the mapping: no sequential scan of a source table', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '5000']);
    await query(p.blue, 'analyze');
    const c = new pg.Client({ connectionString: p.blue });
    await c.connect();
    try {
      const catalogs = Object.fromEntries(await new VersionCatalogs(MAPPINGS, c).all());
      const chain = await compileChain(MAPPINGS, 1, 2, catalogs);
      const keys = {
        users: `select id::text from users order by id limit 3`,
        user_settings: `select id::text from user_settings order by id limit 3`,
        user_roles: `select user_id::text, role_id::text from user_roles order by 1, 2 limit 3`,
      };
      for (const [table, sql] of Object.entries(keys)) {
        const rows = (await c.query({ text: sql, rowMode: 'array' })).rows as string[][];
        const plan = (await c.query(`explain (format json) ${selectByKeys(chain.tables[table]!, rows, catalogs[2]!.tables[table]!.columns)}`)).rows[0]['QUERY PLAN'][0].Plan;
        expect([table, seqScans(plan)]).toEqual([table, []]);
      }
    } finally {
      await c.end();
    }
  });

  it('refuses without a verify to repair from', async () => {
    const p = await makePair(1, 1);
    await p.ok(['seed', '--to', 'blue', '--rows', '10']);
    await p.ok(['sync', '--no-verify']);
    const r = await p.run(['sync', '--repair']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no verify from blue to repair from/);
  });
});
