/**
 * `new-version --from`: a team migrates its database with its own tool (here: hand-written
 * SQL), and bluegreen writes the next version's schema.sql from that database's catalog
 * and drafts the mappings. The written schema must be detected as matching the database;
 * every change must be named; `check` must refuse the drafts until the open decisions
 * are made, and accept them after.
 */
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect } from '../../src/db/connect.ts';
import { detectVersion, VersionCatalogs } from '../../src/db/catalog.ts';
import { runCli } from '../helpers/cli.ts';
import { freshDatabase, query } from '../helpers/pg.ts';
import { SHOP_MAPPINGS } from '../helpers/shop.ts';
import { tempDir } from '../helpers/tmp.ts';
import { report } from '../helpers/pair.ts';

/** A mappings folder holding only the shop's v1. */
async function shopV1Folder(): Promise<string> {
  const dir = path.join(await tempDir('newver'), 'mappings');
  await mkdir(path.join(dir, 'v1'), { recursive: true });
  await cp(path.join(SHOP_MAPPINGS, 'v1', 'schema.sql'), path.join(dir, 'v1', 'schema.sql'));
  return dir;
}

async function bluegreen(dir: string, args: string[]) {
  return runCli(['--mappings', dir, ...args]);
}

async function detected(url: string, dir: string): Promise<number | string> {
  const c = await connect(url);
  try {
    return (await detectVersion(c, new VersionCatalogs(dir, c))).version;
  } finally {
    await c.end();
  }
}

// The migration a team's own tool (Flyway, Sqitch, a framework) would run for its v2.
const MIGRATION = `
alter table customers rename column name to full_name;
alter table customers alter column created_at type timestamptz using created_at at time zone 'Europe/Berlin';
alter table orders rename column total_cents to total;
alter table orders alter column total type numeric(12,2) using total / 100.0;
alter table orders add column currency text not null default 'EUR';
create type priority as enum ('low', 'normal', 'high');
alter table orders add column priority priority not null default 'normal';
alter table products drop column title;
alter table products add column position serial;
alter table products alter column sku type text collate "C";
create unique index products_position_key on products (position);
create sequence "Order Numbers" start 1000;
alter table order_events add column seq bigint not null default nextval('"Order Numbers"');
alter table order_events add constraint order_events_kind_check check (kind <> '');
comment on column order_events.seq is 'bluegreen:watermark';
`;

describe('new-version --from', () => {
  it('writes schema.sql from a hand-migrated database (detected as matching it) and drafts the mappings with every change named', async () => {
    const dir = await shopV1Folder();
    const db = await freshDatabase('migrated');
    expect((await bluegreen(dir, ['schema', 'apply', '--to', 'app', '--to-url', db, '--schema-version', '1'])).code).toBe(0);
    await query(db, MIGRATION);

    const r = await bluegreen(dir, ['new-version', '--from-url', db, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = report(r);
    expect(out.version).toBe(2);
    expect(out.drift).toEqual([]);
    expect(out.skipped).toEqual([]);

    // The database is now detected as v2 through the written file...
    expect(await detected(db, dir)).toBe(2);
    // ...and the file builds that same schema in an empty database.
    const rebuilt = await freshDatabase('rebuilt');
    const applied = await bluegreen(dir, ['schema', 'apply', '--to', 'app', '--to-url', rebuilt, '--schema-version', '2']);
    expect(applied.code, applied.stderr).toBe(0);
    expect(await detected(rebuilt, dir)).toBe(2);
    const schema = await readFile(path.join(dir, 'v2', 'schema.sql'), 'utf8');
    expect(schema).not.toMatch(/public\./);
    for (const part of [
      `CREATE TYPE priority AS ENUM ('low', 'normal', 'high');`,
      'CREATE SEQUENCE "Order Numbers"',
      `seq bigint DEFAULT nextval('"Order Numbers"'::regclass) NOT NULL`,
      'ON DELETE CASCADE',
      'CREATE INDEX orders_updated_at_idx ON orders USING btree (updated_at);',
      'CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION shop_touch();',
      `COMMENT ON COLUMN orders.updated_at IS 'bluegreen:watermark zone=Europe/Berlin';`,
      `COMMENT ON COLUMN order_events.seq IS 'bluegreen:watermark';`,
      'CHECK ((kind <> \'\'::text))',
      'ALTER SEQUENCE products_position_seq OWNED BY products."position";',
      'sku text COLLATE "C" NOT NULL',
    ]) expect(schema).toContain(part);
    // Same constraints, indexes and triggers as the migrated database.
    const objects = (url: string) =>
      query(
        url,
        `select (select array_agg(conname || ' ' || pg_get_constraintdef(oid) order by conname) from pg_constraint where connamespace = 'public'::regnamespace and contype <> 'n') as cons,
                (select array_agg(indexdef order by indexname) from pg_indexes where schemaname = 'public') as idx,
                (select array_agg(tgname order by tgname) from pg_trigger where not tgisinternal) as trg`,
      );
    expect(await objects(rebuilt)).toEqual(await objects(db));

    const changes = out.changes.map((c: { kind: string; table: string; column?: string }) => `${c.kind} ${c.table}.${c.column ?? ''}`).sort();
    expect(changes).toEqual(
      [
        'column added order_events.seq',
        'column added orders.currency',
        'column added orders.priority',
        'column added products.position',
        'column dropped products.title',
        'column renamed? customers.full_name',
        'column renamed? orders.total',
        'column retyped customers.created_at',
      ].sort(),
    );
    const up = JSON.parse(await readFile(path.join(dir, 'v2', 'up.json'), 'utf8'));
    expect(up.tables.customers.ops).toEqual([
      { op: 'cast', from: 'created_at', zone: 'UTC' },
      { op: 'rename', from: 'name', to: 'full_name' },
    ]);
    expect(up.tables.orders.ops).toEqual([{ op: 'scale', from: 'total_cents', to: 'total', factor: '0.01' }]);
    expect(up.tables.products.ops).toEqual([{ op: 'drop', column: 'title' }]);
    expect(up._todo.join('\n')).toMatch(/customers\.full_name: GUESS renamed from customers\.name/);
    expect(up._todo.join('\n')).toMatch(/orders\.total: GUESS/);
    expect(up._todo.join('\n')).toMatch(/zone/);
    // The keyless audit table is guessed append-only (it has a watermark), and says so.
    expect(up.tables.order_events.reload).toBe('append');
    expect(up._todo.join('\n')).toMatch(/order_events has no key: GUESS "reload": "append"/);
    const down = JSON.parse(await readFile(path.join(dir, 'v2', 'down.json'), 'utf8'));
    expect(down.tables.orders.ops).toEqual([
      { op: 'scale', from: 'total', to: 'total_cents', factor: '100' },
      { op: 'drop', column: 'currency' },
      { op: 'drop', column: 'priority' },
    ]);

    // check lists what is left to decide, file and JSON path, and refuses the drafts.
    const checked = await bluegreen(dir, ['check', '--json', '--catalog-url', db]);
    expect(checked.code).toBe(2);
    const problems = report(checked).problems as { file: string; path: string; message: string }[];
    const todo = problems.filter((p) => p.path.startsWith('/_todo/'));
    expect(todo.length).toBe(up._todo.length + down._todo.length);
    expect(todo.every((p) => p.message.startsWith('open decision: '))).toBe(true);
    // The new columns without a value are named by the mapping analysis too.
    expect(problems.some((p) => p.file.endsWith('up.json') && /currency/.test(p.message))).toBe(true);

    // The developer makes the decisions; check then passes.
    delete up._todo;
    up.tables.customers.ops[0].zone = 'Europe/Berlin';
    up.tables.orders.ops.push({ op: 'default', column: 'currency' }, { op: 'default', column: 'priority' });
    up.tables.products.ops.push({ op: 'default', column: 'position' });
    up.tables.order_events.ops = [{ op: 'default', column: 'seq' }];
    up.loses = [{ table: 'products', column: 'title', why: 'v2 shows no product titles' }];
    delete down._todo;
    down.tables.customers.ops[0].zone = 'Europe/Berlin';
    down.tables.products.ops.push({ op: 'constant', column: 'title', value: '' });
    down.loses = down.loses.map((l: { why: string }) => ({ ...l, why: 'v1 has no such column' }));
    await writeFile(path.join(dir, 'v2', 'up.json'), JSON.stringify(up, null, 2));
    await writeFile(path.join(dir, 'v2', 'down.json'), JSON.stringify(down, null, 2));
    const final = await bluegreen(dir, ['check', '--catalog-url', db]);
    expect(final.code, final.stdout + final.stderr).toBe(0);
  });

  it("keeps earlier decisions: the shop's append-only table stays append-only in v3, with and without --from", async () => {
    const copy = async () => {
      const dir = path.join(await tempDir('newver-shop'), 'mappings');
      await cp(SHOP_MAPPINGS, dir, { recursive: true });
      return dir;
    };
    // Identity scaffold: v3 = copy of v2, the table kinds of v2/up.json carried.
    const plain = await copy();
    expect((await bluegreen(plain, ['new-version'])).code).toBe(0);
    const idUp = JSON.parse(await readFile(path.join(plain, 'v3', 'up.json'), 'utf8'));
    const idDown = JSON.parse(await readFile(path.join(plain, 'v3', 'down.json'), 'utf8'));
    expect([idUp.tables.order_events.reload, idDown.tables.order_events.reload]).toEqual(['append', 'append']);
    const db = await freshDatabase('shopv2');
    const checked = await bluegreen(plain, ['check', '--json', '--catalog-url', db]);
    const v3Problems = report(checked).problems.filter((p: { file: string }) => p.file.includes(`${path.sep}v3${path.sep}`));
    // The copy's one problem: nothing tells a database at v2 from one at v3 yet.
    expect(v3Problems.map((p: { message: string }) => p.message)).toEqual([expect.stringMatching(/^v2 and v3 have the same schema as version detection compares them/)]);

    // --from a v2 database the team migrated: only the new column is left to decide.
    const dir = await copy();
    expect((await bluegreen(dir, ['schema', 'apply', '--to', 'app', '--to-url', db, '--schema-version', '2'])).code).toBe(0);
    await query(db, `alter table customers add column phone text`);
    const r = await bluegreen(dir, ['new-version', '--from-url', db, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = report(r);
    expect(out.drift).toEqual([]);
    expect(out.changes).toEqual([{ kind: 'column added', table: 'customers', column: 'phone', detail: 'text' }]);
    expect(out.upTodo).toEqual([expect.stringMatching(/^customers\.phone \(text\) is new/)]);
    expect(out.downTodo).toEqual([expect.stringMatching(/^customers\.phone is not in v2/)]);
    const up = JSON.parse(await readFile(path.join(dir, 'v3', 'up.json'), 'utf8'));
    expect(up.tables.order_events).toEqual({ from: 'order_events', reload: 'append' });
    expect(await detected(db, dir)).toBe(3);
  });

  it('finds no change when the database is still at the current version', async () => {
    const dir = await shopV1Folder();
    const db = await freshDatabase('same');
    expect((await bluegreen(dir, ['schema', 'apply', '--to', 'app', '--to-url', db, '--schema-version', '1'])).code).toBe(0);
    const r = await bluegreen(dir, ['new-version', '--from-url', db, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = report(r);
    expect([out.changes, out.drift]).toEqual([[], []]);
    // The only decision: how to sync the keyless table (nothing earlier says so).
    for (const todo of [out.upTodo, out.downTodo]) expect(todo).toEqual([expect.stringMatching(/^table order_events has no key: GUESS "reload": "append"/)]);
    const up = JSON.parse(await readFile(path.join(dir, 'v2', 'up.json'), 'utf8'));
    expect(Object.values(up.tables).every((t) => !('ops' in (t as object)))).toBe(true);
    // Both files describe the same schema: the database matches v1 and v2 alike, and
    // detection refuses to guess which (it took v1, the first, before).
    await expect(detected(db, dir)).rejects.toThrow(/matches v1 and v2 alike/);
  });
});
