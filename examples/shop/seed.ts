/**
 * Deterministic data for the shop example at v1, as one SQL script (run it on a database
 * holding examples/shop/mappings/v1/schema.sql). Written as the shop's application writes:
 * local times in Europe/Berlin, including the ambiguous hour of the autumn clock change
 * (2024-10-27 02:00-03:00 happens twice), cents from negative refunds to the largest
 * amount numeric(12,2) holds, every order status, NULL and '' names, quotes, commas,
 * newlines and non-ASCII text, order events repeated verbatim (a keyless table holds
 * duplicates), and events of orders that no longer exist.
 *
 * Keys are uuids derived from the row number (`md5('customer-17')::uuid`), so tests can
 * name rows: {@link customerId}, {@link orderId}.
 */

/** The uuid of customer `n` (1-based) in the seeded data. */
export function customerId(n: number): string {
  return `md5('customer-${n}')::uuid`;
}

/** The uuid of order `n` (1-based) in the seeded data. */
export function orderId(n: number): string {
  return `md5('order-${n}')::uuid`;
}

/** SQL filling the v1 tables with `customers` customers (about 2 orders and 5 lines each). */
export function shopSeedSql(customers: number): string {
  const orders = customers * 2;
  return `
set local time zone 'Europe/Berlin';
insert into products (sku, title, price_cents, updated_at)
  select 'SKU-' || g,
         case g % 5 when 0 then 'Räucherkerze "Tanne", 3 Stück' when 1 then e'Tasse\\nmit Zeilenumbruch' when 2 then 'mug, blue' else 'Produkt ' || g end,
         case g when 1 then 0 when 2 then 1 when 3 then 999999999999 else (g * 1999) % 100000 end,
         timestamp '2024-01-01 00:00' + g * interval '1 minute 0.000001 second'
    from generate_series(1, 40) g;
insert into customers (id, email, name, created_at, updated_at)
  select md5('customer-' || g)::uuid,
         'c' || g || '@shop.example',
         case when g % 7 = 0 then null when g % 11 = 0 then '' when g % 5 = 0 then e'Zoë "Z" 山田\\tTab, Komma' else 'Kunde ' || g end,
         timestamp '2023-03-26 00:00' + (g % 7000) * interval '1 second' + g * interval '1 microsecond',
         timestamp '2024-10-27 01:30' + (g % 120) * interval '1 minute' + g * interval '1 microsecond'
    from generate_series(1, ${customers}) g;
insert into orders (id, customer_id, status, total_cents, placed_at, updated_at)
  select md5('order-' || g)::uuid,
         md5('customer-' || (g % ${customers} + 1))::uuid,
         (array['new', 'paid', 'shipped', 'cancelled'])[g % 4 + 1],
         case when g % 13 = 0 then -((g * 37) % 5000) when g = 1 then 999999999999 else (g * 12347) % 10000000 end,
         timestamp '2024-10-27 02:00' + (g % 60) * interval '1 minute',
         timestamp '2024-10-27 02:00' + (g % 90) * interval '1 minute' + (g % 1000) * interval '1 microsecond'
    from generate_series(1, ${orders}) g;
insert into order_lines (order_id, line_no, sku, quantity, unit_price_cents, updated_at)
  select md5('order-' || g)::uuid, l, 'SKU-' || ((g * 7 + l) % 40 + 1), l,
         case when (g + l) % 17 = 0 then 0 else (g * 311 + l) % 250000 end,
         timestamptz '2024-06-01 12:00+02' + g * interval '1 second'
    from generate_series(1, ${orders}) g, generate_series(1, 1 + g % 4) l;
insert into order_events (order_id, kind, detail, recorded_at)
  select md5('order-' || g)::uuid, 'created', case when g % 3 = 0 then null when g % 3 = 1 then '' else '{"via": "web, app"}' end,
         timestamp '2024-10-27 02:00' + (g % 60) * interval '1 minute'
    from generate_series(1, ${orders}) g, generate_series(1, 1 + g % 2) twice;
insert into order_events (order_id, kind, detail, recorded_at)
  select md5('gone-' || g)::uuid, 'deleted', 'the order is gone, its events stay', timestamp '2024-02-29 23:59:59.999999'
    from generate_series(1, 3) g;
`;
}
