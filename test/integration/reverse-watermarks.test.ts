/**
 * A cutover seeds the reverse direction's watermarks for every kind of watermark, so the
 * first rollback sync reads only what was written on the new side: before, only
 * `timestamptz` ones were seeded, and the first rollback sync read all of pgbench_history
 * (an append table with a local-time watermark) and every local-time table.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { query } from '../helpers/pg.ts';
import { makePair, report } from '../helpers/pair.ts';
import { ROOT } from '../helpers/cli.ts';
import { seedShop, shopPair } from '../helpers/shop.ts';

const PGBENCH = path.join(ROOT, 'examples', 'pgbench', 'mappings');

describe('reverse watermarks seeded at cutover', () => {
  it('pgbench: a timestamptz table and an append table with a local-time watermark; the first rollback sync reads only what green wrote', async () => {
    const p = await makePair(1, 2, PGBENCH);
    await query(
      p.blue,
      `insert into pgbench_branches (bid, bbalance) values (1, 0);
       insert into pgbench_tellers (tid, bid, tbalance) select t, 1, 0 from generate_series(1, 10) t;
       insert into pgbench_accounts (aid, bid, abalance) select a, 1, 0 from generate_series(1, 2000) a;
       insert into pgbench_history (tid, bid, aid, delta, mtime) select 1, 1, a, 1, (now() at time zone 'UTC') - interval '1 hour' from generate_series(1, 500) a`,
    );
    await p.ok(['sync']);
    const cut = report(await p.ok(['cutover', '--json']));
    expect(Object.keys(cut.reverseWatermarks).sort()).toEqual(['pgbench_accounts', 'pgbench_branches', 'pgbench_history', 'pgbench_tellers']);
    await new Promise((r) => setTimeout(r, 50));
    // What the application writes on green, as pgbench's script would.
    await query(
      p.green,
      `update pgbench_accounts set abalance = abalance + 5 where aid in (7, 8);
       insert into pgbench_history (tid, bid, aid, delta, mtime) values (1, 1, 7, 5, now() at time zone 'UTC'), (1, 1, 8, 5, now() at time zone 'UTC')`,
    );
    const back = report(await p.ok(['sync', '--from', 'green', '--to', 'blue', '--json']));
    const t = (name: string) => back.tables.find((x: { table: string }) => x.table === name);
    expect(back.mode).toBe('incremental');
    expect(t('pgbench_history')).toMatchObject({ mode: 'incremental', inserted: 2 });
    expect(t('pgbench_history').read).toBeLessThan(10);
    expect(t('pgbench_accounts')).toMatchObject({ mode: 'incremental', updated: 2 });
    expect(t('pgbench_accounts').read).toBeLessThan(10);
    expect(await query(p.blue, `select count(*)::int as n from pgbench_history`)).toEqual([{ n: 502 }]);
  });

  it('shop: after the rollback cutover, blue local times in Europe/Berlin (one with a declared skew, an append table) are seeded on green; the next sync reads only what blue wrote', async () => {
    const p = await shopPair(1, 2);
    await seedShop(p.blue, 40);
    await p.ok(['sync']);
    await p.ok(['cutover']);
    await p.ok(['sync', '--from', 'green', '--to', 'blue']);
    // Back to blue: the reverse sources are now blue's v1 tables, which hold local times.
    const cut = report(await p.ok(['cutover', '--from', 'green', '--to', 'blue', '--json']));
    expect(Object.keys(cut.reverseWatermarks).sort()).toEqual(['customers', 'order_events', 'order_lines', 'orders', 'products']);
    const forward = report(await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json']));
    expect(forward.mode).toBe('incremental');
    for (const table of Object.keys(cut.reverseWatermarks)) {
      const t = forward.tables.find((x: { table: string }) => x.table === table);
      expect(t.mode, table).toBe('incremental');
      expect(t.read, table).toBeLessThan(20);
    }
  });
});
