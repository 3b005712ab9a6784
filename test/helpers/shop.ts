/**
 * The shop example (examples/shop) driven as its application would be: a pair at given
 * versions with blue's sessions writing Europe/Berlin local times, seed data, a concurrent
 * writer, and the rows of every table projected independently of bluegreen (hand-written
 * SQL equivalents of the mappings) so tests compare databases across versions.
 */
import path from 'node:path';
import pg from 'pg';
import { shopSeedSql } from '../../examples/shop/seed.ts';
import { ROOT } from './cli.ts';
import { makePair, type Pair } from './pair.ts';

export const SHOP_MAPPINGS = path.join(ROOT, 'examples', 'shop', 'mappings');
export const SHOP_TABLES = ['customers', 'products', 'orders', 'order_lines', 'order_events'] as const;
export type ShopTable = (typeof SHOP_TABLES)[number];

const BERLIN = `'Europe/Berlin'`;

/** A pair of fresh databases with the shop's schema; v1 sides write Berlin local time by default. */
export async function shopPair(blueVersion: number | null = 1, greenVersion: number | null = 2): Promise<Pair> {
  const p = await makePair(blueVersion, greenVersion, SHOP_MAPPINGS);
  // The application's sessions run in Berlin: now() into a `timestamp` column is Berlin time.
  for (const url of [p.blue, p.green]) await withClient(url, (c) => c.query(`alter database "${dbName(url)}" set timezone to ${BERLIN}`));
  return p;
}

export function dbName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1));
}

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>, timeZone?: string): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    if (timeZone) await c.query(`set time zone '${timeZone}'`);
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Fills a v1 database with the example's deterministic data. */
export async function seedShop(url: string, customers = 60): Promise<void> {
  await withClient(url, async (c) => {
    await c.query('begin');
    await c.query(shopSeedSql(customers));
    await c.query('commit');
  });
}

/** Every table's rows as `row(...)::text`, sorted (a keyless table is a multiset). */
export type TableTexts = Record<ShopTable, string[]>;

const V1_NATIVE: Record<ShopTable, string> = {
  customers: `select row(id, email, name, created_at, updated_at)::text from customers`,
  products: `select row(sku, title, price_cents, updated_at)::text from products`,
  orders: `select row(id, customer_id, status, total_cents, placed_at, updated_at)::text from orders`,
  order_lines: `select row(order_id, line_no, sku, quantity, unit_price_cents, updated_at)::text from order_lines`,
  order_events: `select row(order_id, kind, detail, recorded_at)::text from order_events`,
};

const local = (c: string) => `${c} at time zone ${BERLIN}`;
/** v1 rows computed on a v2 database: the down mapping, written by hand. */
const V1_FROM_V2: Record<ShopTable, string> = {
  customers: `select row(id, email, name, ${local('created_at')}, ${local('updated_at')})::text from customers`,
  products: `select row(sku, title, (price * 100)::bigint, ${local('updated_at')})::text from products`,
  orders: `select row(id, customer_id, case status when 'pending' then 'new' when 'fulfilled' then 'shipped' when 'canceled' then 'cancelled' else status end,
                  (total * 100)::bigint, ${local('placed_at')}, ${local('updated_at')})::text from orders`,
  order_lines: `select row(order_id, line_no, sku, quantity, (unit_price * 100)::bigint, updated_at)::text from order_lines`,
  order_events: `select row(order_id, kind, detail, ${local('recorded_at')})::text from order_events`,
};

/** v2 rows without the lossy `currency` (v1 cannot carry it). */
const V2_NATIVE: Record<ShopTable, string> = {
  customers: `select row(id, email, name, created_at, updated_at)::text from customers`,
  products: `select row(sku, title, price, updated_at)::text from products`,
  orders: `select row(id, customer_id, status, total, placed_at, updated_at)::text from orders`,
  order_lines: `select row(order_id, line_no, sku, quantity, unit_price, updated_at)::text from order_lines`,
  order_events: `select row(order_id, kind, detail, recorded_at)::text from order_events`,
};

/** v2 rows computed on a v1 database: the up mapping, written by hand. */
const V2_FROM_V1: Record<ShopTable, string> = {
  customers: `select row(id, email, name, ${local('created_at')}, ${local('updated_at')})::text from customers`,
  products: `select row(sku, title, (price_cents / 100.0)::numeric(12,2), ${local('updated_at')})::text from products`,
  orders: `select row(id, customer_id, case status when 'new' then 'pending' when 'shipped' then 'fulfilled' when 'cancelled' then 'canceled' else status end,
                  (total_cents / 100.0)::numeric(12,2), ${local('placed_at')}, ${local('updated_at')})::text from orders`,
  order_lines: `select row(order_id, line_no, sku, quantity, (unit_price_cents / 100.0)::numeric(12,2), updated_at)::text from order_lines`,
  order_events: `select row(order_id, kind, detail, ${local('recorded_at')})::text from order_events`,
};

async function texts(url: string, queries: Record<ShopTable, string>): Promise<TableTexts> {
  // Text of a timestamptz depends on the session's zone: read everything in UTC.
  return withClient(
    url,
    async (c) => {
      const out = {} as TableTexts;
      for (const t of SHOP_TABLES) out[t] = (await c.query<{ row: string }>(queries[t])).rows.map((r) => r.row).sort();
      return out;
    },
    'UTC',
  );
}

/** Rows of a database as v1 rows, whichever version it is at. */
export function rowsAsV1(url: string, version: 1 | 2): Promise<TableTexts> {
  return texts(url, version === 1 ? V1_NATIVE : V1_FROM_V2);
}

/** Lossless columns of a database as v2 rows (every column but orders.currency). */
export function rowsAsV2(url: string, version: 1 | 2): Promise<TableTexts> {
  return texts(url, version === 2 ? V2_NATIVE : V2_FROM_V1);
}

/** Row counts per table. */
export async function counts(url: string): Promise<Record<ShopTable, number>> {
  return withClient(url, async (c) => {
    const out = {} as Record<ShopTable, number>;
    for (const t of SHOP_TABLES) out[t] = (await c.query<{ n: number }>(`select count(*)::int as n from ${t}`)).rows[0]!.n;
    return out;
  });
}

/**
 * The shop's application writing to a v1 database in Berlin time until stopped: new
 * customers with orders, lines and events; status changes with their event; product price
 * changes stamped by the application's own clock 5 s behind the database's; customers
 * deleted (their orders and lines go with them by ON DELETE CASCADE, their events stay).
 * Deletes take seeded customers from `deleteFrom` upwards, one per iteration's turn.
 */
export function shopWriter(url: string, opts: { id: number; deleteFrom: number; deleteUpTo: number }) {
  const acked = { customers: [] as string[], deleted: [] as number[], statusChanges: 0, priceChanges: 0 };
  const errors: string[] = [];
  let stop = false;
  let nextDelete = opts.deleteFrom;
  const done = (async () => {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {});
    await c.connect();
    await c.query(`set time zone ${BERLIN}`);
    for (let i = 0; !stop; i++) {
      const tag = `w${opts.id}-${i}`;
      try {
        await c.query('begin');
        await c.query(
          `with cu as (insert into customers (id, email, name) values (md5($1)::uuid, $1 || '@writer.example', 'Writer ' || $1) returning id),
                o as (insert into orders (id, customer_id, status, total_cents, placed_at) select md5('o' || $1)::uuid, id, 'new', 4200 + $2, localtimestamp from cu returning id)
           insert into order_lines (order_id, line_no, sku, quantity, unit_price_cents) select id, l, 'SKU-' || (l + 4), l, 1050 * l from o, generate_series(1, 2) l`,
          [tag, i],
        );
        await c.query(`insert into order_events (order_id, kind, detail) values (md5('o' || $1)::uuid, 'created', $1)`, [tag]);
        await c.query('commit');
        acked.customers.push(tag);
        if (i % 3 === 2) {
          // Pay an order placed two iterations ago: the trigger moves its watermark.
          const prev = `w${opts.id}-${i - 2}`;
          await c.query('begin');
          await c.query(`update orders set status = 'paid' where id = md5('o' || $1)::uuid`, [prev]);
          await c.query(`insert into order_events (order_id, kind, detail) values (md5('o' || $1)::uuid, 'paid', null)`, [prev]);
          await c.query('commit');
          acked.statusChanges++;
        }
        if (i % 5 === 4) {
          // The back office's clock runs 5 s behind the database's (within the declared skew).
          await c.query(`update products set price_cents = price_cents + 1, updated_at = localtimestamp - interval '5 seconds' where sku = $1`, [`SKU-${(i % 30) + 5}`]);
          acked.priceChanges++;
        }
        if (i % 4 === 3 && nextDelete <= opts.deleteUpTo) {
          await c.query(`delete from customers where id = md5('customer-' || $1)::uuid`, [nextDelete]);
          acked.deleted.push(nextDelete++);
        }
      } catch (err) {
        errors.push(`${tag}: ${(err as Error).message}`);
        await c.query('rollback').catch(() => {});
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await c.end();
  })();
  return { acked, errors, stop: async () => ((stop = true), await done) };
}
