/**
 * The shop example (examples/shop) through a whole deployment: cutover under a live
 * writer, the application writing on green in v2 terms (another currency, new statuses,
 * amounts in units, cascading deletes), and the rollback sync carrying it all back to blue
 * in v1 terms; every lossless column equal both ways, the lossy one (currency) listed.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { collect, startCli } from '../helpers/cli.ts';
import { query } from '../helpers/pg.ts';
import { report } from '../helpers/pair.ts';
import { rowsAsV1, rowsAsV2, seedShop, SHOP_MAPPINGS, shopPair, shopWriter, withClient } from '../helpers/shop.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('shop example: cutover and rollback', () => {
  it('cuts over under a writer, takes writes on green, and syncs them back to blue', async () => {
    const p = await shopPair(1, 2);
    await seedShop(p.blue, 50);
    await p.ok(['sync']);
    const w = shopWriter(p.blue, { id: 2, deleteFrom: 1, deleteUpTo: 10 });
    let cut;
    try {
      await sleep(400);
      await p.ok(['sync']);
      await sleep(200);
      cut = await p.run(['cutover', '--from', 'blue', '--to', 'green', '--json']);
      await sleep(200);
    } finally {
      await w.stop();
    }
    expect(cut.code, cut.stderr).toBe(0);
    expect(report(cut).ok).toBe(true);
    // Every acknowledged write is on green; the writer was refused only by the freeze (its
    // multi-table transactions never deadlock with it: src/cutover/freeze.ts).
    expect(w.errors.every((e) => /frozen/.test(e)), w.errors.join('\n')).toBe(true);
    const [made] = await query<{ n: number }>(p.green, `select count(*)::int as n from customers where email like 'w2-%@writer.example'`);
    expect(made!.n).toBe(w.acked.customers.length);
    expect(await rowsAsV2(p.green, 2)).toEqual(await rowsAsV2(p.blue, 1));
    expect(await rowsAsV1(p.green, 2)).toEqual(await rowsAsV1(p.blue, 1));
    await expect(query(p.blue, `insert into order_events (order_id, kind) values (gen_random_uuid(), 'late')`)).rejects.toThrow(/frozen/);

    // The application now runs on green, in v2 terms.
    await withClient(p.green, async (c) => {
      await c.query(`insert into customers (id, email, name) values ('5b000000-0000-4000-8000-000000000001', 'green@shop.example', 'Grün, "erste" Kundin')`);
      await c.query(
        `insert into orders (id, customer_id, status, total, currency, placed_at) values ('5b000000-0000-4000-8000-0000000000a1', '5b000000-0000-4000-8000-000000000001', 'pending', 12.34, 'USD', now())`,
      );
      await c.query(`insert into order_lines (order_id, line_no, sku, quantity, unit_price) values ('5b000000-0000-4000-8000-0000000000a1', 1, 'SKU-7', 2, 6.17)`);
      await c.query(`insert into order_events (order_id, kind, detail) values ('5b000000-0000-4000-8000-0000000000a1', 'created', 'on green')`);
      await c.query(`update orders set status = 'fulfilled' where id = md5('order-30')::uuid`);
      await c.query(`update products set price = 19.99, updated_at = now() where sku = 'SKU-9'`);
      await c.query(`delete from customers where id = md5('customer-40')::uuid`);
    }, 'America/New_York');

    // Rollback: green -> blue through the down mapping keeps blue current while green serves.
    const back = await p.run(['sync', '--from', 'green', '--to', 'blue', '--json']);
    expect(back.code, back.stderr).toBe(0);
    expect(await rowsAsV1(p.blue, 1)).toEqual(await rowsAsV1(p.green, 2));
    expect(await rowsAsV2(p.blue, 1)).toEqual(await rowsAsV2(p.green, 2));
    expect(await query(p.blue, `select status, total_cents::text from orders where id = '5b000000-0000-4000-8000-0000000000a1'`)).toEqual([{ status: 'new', total_cents: '1234' }]);
    expect(await query(p.blue, `select unit_price_cents::text from order_lines where order_id = '5b000000-0000-4000-8000-0000000000a1'`)).toEqual([{ unit_price_cents: '617' }]);
    expect(await query(p.blue, `select status from orders where id = md5('order-30')::uuid`)).toEqual([{ status: 'shipped' }]);
    expect(await query(p.blue, `select price_cents::text from products where sku = 'SKU-9'`)).toEqual([{ price_cents: '1999' }]);
    expect(await query(p.blue, `select count(*)::int as n from orders where customer_id = md5('customer-40')::uuid`)).toEqual([{ n: 0 }]);

    // Verify green -> blue is clean: every column v1 has is compared (the currency has no
    // v1 column to compare; the order written in USD kept its amount, as down.json declares).
    const v = await p.run(['verify', '--from', 'green', '--to', 'blue', '--json']);
    expect(v.code, v.stderr).toBe(0);
    expect(report(v).clean).toBe(true);
    expect(report(v).tables.find((t: { table: string }) => t.table === 'orders').excluded).toEqual([]);

    // And cutting back over works: blue serves again, green is frozen.
    const again = await p.run(['cutover', '--from', 'green', '--to', 'blue', '--json']);
    expect(again.code, again.stderr).toBe(0);
    await query(p.blue, `insert into order_events (order_id, kind) values (gen_random_uuid(), 'blue again')`);
    await expect(query(p.green, `insert into order_events (order_id, kind) values (gen_random_uuid(), 'nope')`)).rejects.toThrow(/frozen/);
  });

  it('freeze deadlocked by an application transaction writing several tables: the freeze retries and the cutover succeeds', async () => {
    const p = await shopPair(1, 2);
    await seedShop(p.blue, 10);
    await p.ok(['sync']);
    // The application holds orders (an order being paid)...
    const app = new pg.Client({ connectionString: p.blue });
    await app.connect();
    await app.query('begin');
    await app.query(`update orders set status = 'paid' where id = md5('order-3')::uuid`);
    const cut = startCli(['--mappings', SHOP_MAPPINGS, 'cutover', '--from', 'blue', '--to', 'green', '--json'], { BLUE_URL: p.blue, GREEN_URL: p.green });
    const done = collect(cut);
    // ...while the freeze, locking table by table, already holds customers and waits for orders.
    for (let i = 0; ; i++) {
      const [w] = await query<{ n: number }>(p.blue, `select count(*)::int as n from pg_locks where not granted and relation = 'orders'::regclass and database = (select oid from pg_database where datname = current_database())`);
      if (w!.n > 0) break;
      if (i > 400) throw new Error('the freeze never waited on orders');
      await new Promise((r) => setTimeout(r, 50));
    }
    // Then the same transaction writes customers: a deadlock the server breaks by aborting one side.
    await app.query(`insert into customers (id, email) values ('de000000-0000-4000-8000-000000000001', 'deadlock@shop.example')`);
    await app.query('commit');
    await app.end();
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    expect(report(r).ok).toBe(true);
    // The application's transaction committed before the freeze, so it is on green.
    expect(await query(p.green, `select email from customers where id = 'de000000-0000-4000-8000-000000000001'`)).toEqual([{ email: 'deadlock@shop.example' }]);
    expect(await query(p.green, `select status from orders where id = md5('order-3')::uuid`)).toEqual([{ status: 'paid' }]);
  });
});
