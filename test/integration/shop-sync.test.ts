/**
 * The shop example (examples/shop), an application unlike the sample: uuid and composite
 * keys, cents that become numeric(12,2), Berlin local times (`timestamp`) that become
 * timestamptz, renamed statuses, ON DELETE CASCADE, and a keyless append-only table.
 * sync v1 -> v2: full, incremental under a live writer (a long transaction, cascading
 * deletes), idempotent; verify clean and planted differences named.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { query } from '../helpers/pg.ts';
import { report, type Pair } from '../helpers/pair.ts';
import { counts, rowsAsV1, rowsAsV2, seedShop, shopPair, shopWriter, withClient } from '../helpers/shop.ts';

async function syncJson(p: Pair, args: string[] = []) {
  return report(await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json', ...args]));
}

/** Green holds exactly blue's rows, compared both as v2 rows and as v1 rows. */
async function expectEqual(p: Pair) {
  expect(await rowsAsV2(p.green, 2)).toEqual(await rowsAsV2(p.blue, 1));
  expect(await rowsAsV1(p.green, 2)).toEqual(await rowsAsV1(p.blue, 1));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('shop example: sync v1 -> v2', () => {
  it('a full sync carries every table converted, and a second sync writes nothing', async () => {
    const p = await shopPair(1, 2);
    await seedShop(p.blue, 60);
    const first = await syncJson(p);
    expect(first.mode).toBe('full');
    await expectEqual(p);
    expect(await counts(p.green)).toEqual(await counts(p.blue));
    // Spot checks of each conversion, independent of the projections above.
    const [o1] = await query<{ total: string; status: string; currency: string }>(p.green, `select total::text, status, currency from orders where id = md5('order-1')::uuid`);
    expect(o1).toEqual({ total: '9999999999.99', status: 'paid', currency: 'EUR' });
    expect(await query(p.green, `select distinct status from orders order by 1`)).toEqual(['canceled', 'fulfilled', 'paid', 'pending'].map((status) => ({ status })));
    // Berlin local time, read as such: 2023-03-26 00:00:01 is before that night's clock change (UTC+1).
    const [c1] = await query<{ utc: string }>(p.green, `select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') as utc from customers where id = md5('customer-1')::uuid`);
    expect(c1!.utc).toBe('2023-03-25 23:00:01.000001');
    // The keyless table keeps its verbatim duplicates.
    const [dups] = await query<{ n: number }>(p.green, `select count(*)::int as n from (select order_id, kind, detail, recorded_at from order_events group by 1, 2, 3, 4 having count(*) > 1) d`);
    expect(dups!.n).toBeGreaterThan(0);

    const before = await query(p.green, `select (select max(xmin::text::bigint) from order_events)::text as ev, (select max(xmin::text::bigint) from products)::text as pr`);
    const second = await syncJson(p);
    expect(second.mode).toBe('incremental');
    for (const t of second.tables) expect([t.table, t.inserted ?? 0, t.updated ?? 0, t.deleted ?? 0]).toEqual([t.table, 0, 0, 0]);
    expect(await query(p.green, `select (select max(xmin::text::bigint) from order_events)::text as ev, (select max(xmin::text::bigint) from products)::text as pr`)).toEqual(before);
  });

  it('incremental syncs under a live writer catch a long transaction committed after a sync began, and cascading deletes', async () => {
    const p = await shopPair(1, 2);
    await seedShop(p.blue, 80);
    await syncJson(p);
    const w = shopWriter(p.blue, { id: 1, deleteFrom: 1, deleteUpTo: 20 });
    try {
      await sleep(400);
      // The application's long transaction: now() (its start) stamps its rows.
      const app = new pg.Client({ connectionString: p.blue });
      await app.connect();
      await app.query(`set time zone 'Europe/Berlin'`);
      await app.query('begin');
      await app.query(`select now()`);
      await app.query(`update orders set status = 'shipped' where id = md5('order-150')::uuid`);
      await app.query(`insert into order_events (order_id, kind, detail) values (md5('order-150')::uuid, 'shipped', 'long transaction')`);
      await app.query(`insert into customers (id, email, name) values (md5('long-tx')::uuid, 'long@tx.example', 'Long Transaction')`);
      await sleep(200);
      const during = await syncJson(p);
      await app.query('commit');
      await app.end();
      // The first sync could not see those rows; they carry a time older than its start.
      expect(await query(p.green, `select count(*)::int as n from customers where id = md5('long-tx')::uuid`)).toEqual([{ n: 0 }]);
      expect(during.mode).toBe('incremental');
      expect(during.horizon.heldBackBy).toMatch(/open since/);
      await sleep(400);
      await syncJson(p);
    } finally {
      await w.stop();
    }
    expect(w.errors).toEqual([]);
    expect(w.acked.deleted.length).toBeGreaterThan(3);
    await syncJson(p);
    await expectEqual(p);
    // The long transaction's writes arrived, converted.
    expect(await query(p.green, `select status from orders where id = md5('order-150')::uuid`)).toEqual([{ status: 'fulfilled' }]);
    expect(await query(p.green, `select kind from order_events where detail = 'long transaction'`)).toEqual([{ kind: 'shipped' }]);
    expect(await query(p.green, `select name from customers where id = md5('long-tx')::uuid`)).toEqual([{ name: 'Long Transaction' }]);
    // Deleted customers took their orders and lines with them on green too; their events stay (append-only).
    const gone = w.acked.deleted.map((n) => `md5('customer-${n}')::uuid`).join(', ');
    expect(await query(p.green, `select count(*)::int as n from customers where id in (${gone})`)).toEqual([{ n: 0 }]);
    expect(await query(p.green, `select count(*)::int as n from orders where customer_id in (${gone})`)).toEqual([{ n: 0 }]);
    const [ev] = await query<{ n: number }>(p.green, `select count(*)::int as n from order_events where order_id = md5('order-1')::uuid`);
    expect(ev!.n).toBeGreaterThan(0); // customer 2's order 1 is gone, its events are not
    // Every acknowledged new customer and price change is there.
    const [made] = await query<{ n: number }>(p.green, `select count(*)::int as n from customers where email like 'w1-%@writer.example'`);
    expect(made!.n).toBe(w.acked.customers.length);
  });

  it('verify is clean after a sync, and names every planted difference by table and key', async () => {
    const p = await shopPair(1, 2);
    await seedShop(p.blue, 40);
    await syncJson(p);
    const clean = await p.run(['verify', '--json']);
    expect(clean.code, clean.stderr).toBe(0);
    expect(report(clean).clean).toBe(true);

    const [ids] = await query<{ o5: string; o7: string; o9: string }>(p.blue, `select md5('order-5')::uuid::text as o5, md5('order-7')::uuid::text as o7, md5('order-9')::uuid::text as o9`);
    await withClient(p.green, async (c) => {
      await c.query(`update orders set total = total + 0.01 where id = md5('order-5')::uuid`);
      await c.query(`delete from order_lines where order_id = md5('order-7')::uuid and line_no = 1`);
      await c.query(`insert into customers (id, email) values ('00000000-0000-4000-8000-00000000beef', 'planted@example')`);
      await c.query(`update products set price = price + 1 where sku = 'SKU-10'`);
      await c.query(`update orders set placed_at = placed_at + interval '1 microsecond' where id = md5('order-9')::uuid`);
      await c.query(`insert into order_events select * from order_events where order_id = md5('order-3')::uuid limit 1`);
    });
    const r = await p.run(['verify', '--json']);
    expect(r.code, r.stderr).toBe(3);
    const rep = report(r);
    expect(rep.clean).toBe(false);
    const t = (name: string) => rep.tables.find((x: { table: string }) => x.table === name);
    expect(t('orders').changed.count).toBe(2);
    expect(t('orders').changed.keys.join(' ')).toContain(ids!.o5);
    expect(t('orders').changed.keys.join(' ')).toContain(ids!.o9);
    expect(t('order_lines').missing.count).toBe(1);
    expect(t('order_lines').missing.keys[0]).toContain(ids!.o7);
    expect(t('customers').extra.count).toBe(1);
    expect(t('customers').extra.keys[0]).toContain('00000000-0000-4000-8000-00000000beef');
    expect(t('products').changed.keys).toEqual([expect.stringContaining('SKU-10')]);
    // The keyless table is compared as a multiset: one row more on green.
    const ev = t('order_events');
    expect(ev.targetRows).toBe(ev.sourceRows + 1);
    expect(JSON.stringify(ev)).toMatch(/multiset/i);
  });
});
