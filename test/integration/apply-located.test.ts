/**
 * A row the target's constraints refuse at apply (incremental sync, repair) is located as
 * the bulk path locates it: the stage table has none of the target's NOT NULL, CHECK or
 * foreign keys, so such a row passes the stage and fails in the UPDATE/INSERT from it,
 * where PostgreSQL names only the constraint. The run exits 2 with table, column, key,
 * value and the op's file and JSON path, and commits nothing (rows and watermark unchanged).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { freshDatabase, query } from '../helpers/pg.ts';
import { tempDir } from '../helpers/tmp.ts';
import { report } from '../helpers/pair.ts';

const V1 = `create table customers (id int primary key, name text not null, updated_at timestamptz not null default now());
comment on column customers.updated_at is 'bluegreen:watermark';
create table orders (id int primary key, customer_id int, note text, qty int not null, updated_at timestamptz not null default now());
comment on column orders.updated_at is 'bluegreen:watermark';
`;
// v2 tightens orders: label (from note by an op) is NOT NULL, qty must be positive, and customer_id references customers.
const V2 = `create table customers (id int primary key, name text not null, updated_at timestamptz not null default now());
comment on column customers.updated_at is 'bluegreen:watermark';
create table orders (id int primary key, customer_id int references customers, label text not null, qty int not null constraint orders_qty_positive check (qty > 0), updated_at timestamptz not null default now());
comment on column orders.updated_at is 'bluegreen:watermark';
`;

async function folder(): Promise<{ dir: string; upFile: string }> {
  const dir = path.join(await tempDir('apply-located'), 'mappings');
  await mkdir(path.join(dir, 'v1'), { recursive: true });
  await mkdir(path.join(dir, 'v2'), { recursive: true });
  await writeFile(path.join(dir, 'v1', 'schema.sql'), V1);
  await writeFile(path.join(dir, 'v2', 'schema.sql'), V2);
  const up = { from: 1, to: 2, tables: { customers: { from: 'customers' }, orders: { from: 'orders', ops: [{ op: 'sql', from: ['note'], to: 'label', expr: 'upper(note)' }] } } };
  const down = { from: 2, to: 1, tables: { customers: { from: 'customers' }, orders: { from: 'orders', ops: [{ op: 'sql', from: ['label'], to: 'note', expr: 'lower(label)' }] } } };
  await writeFile(path.join(dir, 'v2', 'up.json'), JSON.stringify(up, null, 2));
  await writeFile(path.join(dir, 'v2', 'down.json'), JSON.stringify(down, null, 2));
  return { dir, upFile: path.join(dir, 'v2', 'up.json') };
}

describe('a row the target refuses at apply is located', () => {
  let dir: string;
  let upFile: string;
  let urls: { blue: string; green: string };
  const cli = (args: string[]) => runCli(['--mappings', dir, ...args, '--from', 'blue', '--to', 'green', '--log-format', 'text'], { BLUE_URL: urls.blue, GREEN_URL: urls.green });
  const state = async () => ({
    orders: await query(urls.green, `select id, customer_id, label, qty from orders order by id`),
    watermarks: await query(urls.green, `select table_name, value from bluegreen.watermarks order by table_name`),
  });

  beforeAll(async () => {
    ({ dir, upFile } = await folder());
  });
  // Each case starts from a pair synced once (the bulk path), so the bad row comes by the incremental one.
  beforeEach(async () => {
    urls = { blue: await freshDatabase('alblue'), green: await freshDatabase('algreen') };
    await query(urls.blue, V1);
    await query(urls.green, V2);
    await query(urls.blue, `insert into customers (id, name) values (1, 'Ann'), (2, 'Bob');
      insert into orders (id, customer_id, note, qty) values (10, 1, 'first', 1), (11, 2, 'second', 2)`);
    const r = await cli(['sync']);
    expect(r.code, r.stderr).toBe(0);
  });

  /** The run fails with exit 2 and `line` (its error line), and green is as it was. */
  async function refused(args: string[], line: string, hint: string): Promise<void> {
    const before = await state();
    const r = await cli(args);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(line);
    expect(r.stderr).toContain(hint);
    expect(await state()).toEqual(before);
  }

  it('the first full load (the bulk path) locates a CHECK failure on a carried column too', async () => {
    const fresh = await freshDatabase('albulk');
    await query(fresh, V2);
    await query(urls.blue, `update orders set qty = 0, updated_at = now() where id = 11`);
    const r = await runCli(['--mappings', dir, 'sync', '--from', 'blue', '--to', 'fresh', '--log-format', 'text'], { BLUE_URL: urls.blue, FRESH_URL: fresh });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/table orders, column qty, key id=11: .*orders_qty_positive.* \(value "0"\)/);
    expect(await query(fresh, `select count(*)::int as n from orders`)).toEqual([{ n: 0 }]);
  });

  it('a NULL an op writes into a NOT NULL column: the op named by file and JSON path', async () => {
    await query(urls.blue, `insert into orders (id, customer_id, note, qty) values (12, 1, 'ok', 3), (13, 1, null, 4)`);
    await refused(
      ['sync'],
      'error: table orders, column label, key id=13: null value in column "label" of relation "orders" violates not-null constraint (value NULL)',
      `change the op at ${upFile} at /tables/orders/ops/0 so it gives orders.label a value for every row`,
    );
  });

  it('an update that fails a CHECK on a carried column: the source column named', async () => {
    await query(urls.blue, `update orders set qty = 0, updated_at = now() where id = 11`);
    await refused(
      ['sync'],
      'error: table orders, column qty, key id=11: new row for relation "orders" violates check constraint "orders_qty_positive" (value "0")',
      `this row's source column orders.qty fails CHECK orders_qty_positive (qty > 0)`,
    );
  });

  it('a reference without its parent on green', async () => {
    await query(urls.blue, `insert into orders (id, customer_id, note, qty) values (14, 99, 'orphan', 1)`);
    await refused(
      ['sync'],
      'error: table orders, column customer_id, key id=14: insert or update on table "orders" violates foreign key constraint "orders_customer_id_fkey" (value "99")',
      'the target has no customers row with that id',
    );
  });

  it('an incremental import whose row references a parent the target no longer has', async () => {
    // Two v2 databases: blue2 exports, green takes a full import, then loses customer 2.
    const blue2 = await freshDatabase('alblue2');
    await query(blue2, V2);
    await query(blue2, `insert into customers (id, name) values (1, 'Ann'), (2, 'Bob'); insert into orders (id, customer_id, label, qty) values (10, 1, 'A', 1)`);
    const green = await freshDatabase('algreen2');
    await query(green, V2);
    const io = (args: string[]) => runCli(['--mappings', dir, ...args, '--log-format', 'text'], { BLUE_URL: blue2, GREEN_URL: green });
    const full = path.join(await tempDir('al-full'), 'd');
    const first = await io(['export', '--from', 'blue', '--out', full, '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect((await io(['import', '--to', 'green', '--in', full])).code).toBe(0);
    await query(green, `delete from customers where id = 2`);
    await query(blue2, `insert into orders (id, customer_id, label, qty) values (15, 2, 'B', 1)`);
    const inc = path.join(await tempDir('al-inc'), 'd');
    expect((await io(['export', '--from', 'blue', '--out', inc, '--since', report(first).nextSince])).code).toBe(0);
    const before = await query(green, `select id from orders order by id`);
    const r = await io(['import', '--to', 'green', '--in', inc]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('error: table orders, column customer_id, key id=15: insert or update on table "orders" violates foreign key constraint "orders_customer_id_fkey" (value "2")');
    expect(await query(green, `select id from orders order by id`)).toEqual(before);
  });

  it('cutover: its sync stops on the row, located, and blue stays writable', async () => {
    await query(urls.blue, `insert into orders (id, customer_id, note, qty) values (13, 1, null, 4)`);
    const before = await state();
    const r = await cli(['cutover']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('table orders, column label, key id=13: null value in column "label" of relation "orders" violates not-null constraint (value NULL)');
    expect(r.stderr).toContain(`change the op at ${upFile} at /tables/orders/ops/0`);
    expect(await state()).toEqual(before);
    await query(urls.blue, `update orders set qty = 5 where id = 13`); // not frozen
  });

  it('sync --repair locates the same way', async () => {
    await query(urls.green, `update orders set label = 'TAMPERED' where id = 10`);
    // The source row the repair re-copies now has no label for green.
    await query(urls.blue, `update orders set note = null where id = 10`);
    const v = await cli(['verify']);
    expect(v.code, v.stderr).toBe(3);
    await refused(
      ['sync', '--repair'],
      'error: table orders, column label, key id=10: null value in column "label" of relation "orders" violates not-null constraint (value NULL)',
      `change the op at ${upFile} at /tables/orders/ops/0`,
    );
  });
});
