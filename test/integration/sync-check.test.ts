/**
 * The `changed` check after a sync must cost what the run read, linearly. Regression: a
 * correlated `not exists` without a key on a keyless table was a nested loop over the
 * target for every staged row (pgbench's history table: 20k rows took 166 s, ~48 h at
 * 483k). Asserted from the planner's cost, not from time, so a loaded machine cannot
 * make it pass or fail.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from '../helpers/pg.ts';
import { checkChanged, checkSql, type StagedForCheck } from '../../src/sync/check.ts';

let client: pg.Client;
beforeAll(async () => {
  client = new pg.Client({ connectionString: await freshDatabase('check') });
  await client.connect();
});
afterAll(async () => {
  await client?.end();
});

/** Target and stage of `n` rows each (history-like: no key), analysed. */
async function seed(name: string, n: number, keyed: boolean): Promise<StagedForCheck> {
  const target = `${name}_${n}`;
  const stage = `${name}_stage_${n}`;
  await client.query(`create table ${target} (id int ${keyed ? 'primary key' : ''}, delta int, mtime timestamptz, note text)`);
  await client.query(`insert into ${target} select g, g % 97, '2026-01-01'::timestamptz + g * interval '1 s', 'row ' || g from generate_series(1, ${n}) g`);
  await client.query(`create table ${stage} as select * from ${target}`);
  await client.query(`analyze ${target}; analyze ${stage}`);
  return { ct: { table: target, columns: ['id', 'delta', 'mtime', 'note'], key: keyed ? ['id'] : [] }, stage, whole: !keyed };
}

interface PlanNode {
  'Node Type': string;
  'Total Cost': number;
  'Parent Relationship'?: string;
  'Subplan Name'?: string;
  Plans?: PlanNode[];
}

async function plan(sql: string): Promise<PlanNode> {
  const r = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`explain (format json) ${sql}`);
  return r.rows[0]!['QUERY PLAN'][0].Plan;
}

/**
 * Shapes whose real cost is rows x rows whatever the planner estimates: a correlated
 * SubPlan (run once per outer row; the planner prices an EXISTS at its first match, so
 * its total cost looks linear), or a nested loop rescanning a sequential scan.
 */
function quadraticShapes(node: PlanNode, out: string[] = []): string[] {
  if (node['Parent Relationship'] === 'SubPlan' && !/hashed/.test(node['Subplan Name'] ?? '')) out.push(`correlated ${node['Subplan Name']}`);
  if (node['Node Type'] === 'Nested Loop' && node.Plans?.[1]?.['Node Type'] === 'Seq Scan') out.push('nested loop over a seq scan');
  for (const p of node.Plans ?? []) quadraticShapes(p, out);
  return out;
}

/**
 * The planned cost of the work under the check's final count. PostgreSQL 15 estimates the
 * join of two grouped relations on a computed hash at n²/200 rows (default selectivity: no
 * statistics on the hash), so the final aggregate's estimate grows quadratically although
 * the hash join matches each group at most once; PostgreSQL 18 estimates it as n. The
 * join and everything below it is what the plan does, so that is what must stay linear.
 */
function workCost(node: PlanNode): number {
  return node['Node Type'] === 'Aggregate' && node.Plans?.length === 1 ? node.Plans[0]!['Total Cost'] : node['Total Cost'];
}

/** The check the keyless case used to run (kept here to prove the test can fail). */
function quadraticSql(s: StagedForCheck): string {
  const cols = (a: string) => `row(${s.ct.columns.map((c) => `${a}.${c}`).join(', ')})::text`;
  return `select count(*) filter (where not exists (select 1 from ${s.ct.table} t where ${cols('t')} = ${cols('s')})) from ${s.stage} s`;
}

describe('changed check', () => {
  for (const keyed of [false, true]) {
    it(`planned cost grows linearly with rows (10k, 20k, 40k), ${keyed ? 'keyed: join on the key' : 'keyless: multiset by hash and count'}`, async () => {
      const costs: number[] = [];
      for (const n of [10_000, 20_000, 40_000]) {
        const s = await seed(keyed ? 'keyed' : 'keyless', n, keyed);
        const p = await plan(checkSql(s));
        expect(quadraticShapes(p)).toEqual([]);
        costs.push(workCost(p));
        // The replaced query: the shape check catches it (its estimated cost does not).
        if (!keyed) expect(quadraticShapes(await plan(quadraticSql(s))).join()).toMatch(/correlated/);
      }
      // Doubling the rows about doubles the cost (sorts/hashes add a log factor at most).
      expect(costs[1]! / costs[0]!).toBeGreaterThan(1.6);
      expect(costs[1]! / costs[0]!).toBeLessThan(2.4);
      expect(costs[2]! / costs[1]!).toBeLessThan(2.4);
    });
  }

  it('keyless multiset: a duplicated row and a missing row are both differences; equal multisets are clean', async () => {
    const s = await seed('multi', 100, false);
    expect((await checkChanged(client, [s])).clean).toBe(true);
    // Same row count, different multiset: one row twice, another gone.
    await client.query(`delete from ${s.ct.table} where id = 5`);
    await client.query(`insert into ${s.ct.table} select * from ${s.ct.table} where id = 6`);
    const r = await checkChanged(client, [s]);
    expect(r.clean).toBe(false);
    expect(r.tables[0]).toMatchObject({ method: 'multiset', checked: 100, mismatched: 1, sourceRows: 100, targetRows: 100 });
  });

  it('keyed: a changed and a missing row are mismatches', async () => {
    const s = await seed('drift', 100, true);
    await client.query(`update ${s.ct.table} set note = 'x' where id = 3`);
    await client.query(`delete from ${s.ct.table} where id = 4`);
    const r = await checkChanged(client, [{ ...s, whole: false }]);
    expect(r.tables[0]).toMatchObject({ method: 'key join', checked: 100, mismatched: 2, sourceRows: null, targetRows: null });
    expect(r.clean).toBe(false);
  });
});
