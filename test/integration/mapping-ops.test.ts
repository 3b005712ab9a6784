/**
 * The new mapping ops on real PostgreSQL, through an app unlike the sample: integer cents
 * that become numeric (scale), local timestamps that become timestamptz in a declared
 * zone, char(2) that becomes text, and a status column that becomes an enum that exists
 * on the target only. Sync both ways, verify, faces equal, and a located row failure.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/db/catalog-types.ts';
import { loadVersionCatalog } from '../../src/db/catalog.ts';
import { connect } from '../../src/db/connect.ts';
import { silentLogger } from '../../src/log.ts';
import { compileChain } from '../../src/mapping/chain.ts';
import { quoteIdent } from '../../src/mapping/sql.ts';
import { RowConversionError } from '../../src/mapping/errors.ts';
import { sync } from '../../src/sync/sync.ts';
import { exportDump } from '../../src/dump/export.ts';
import { importDump } from '../../src/dump/import.ts';
import { convertDump } from '../../src/convert/convert.ts';
import { OfflineConversionUnsupportedError } from '../../src/convert/errors.ts';
import { verify } from '../../src/verify/verify.ts';
import { freshDatabase, query } from '../helpers/pg.ts';
import { tempDir } from '../helpers/tmp.ts';

const V1 = `
create table orders (
  id bigint primary key,
  country character(2) not null,
  total_cents bigint not null,
  status text not null,
  placed_at timestamp without time zone not null,
  note text,
  updated_at timestamptz not null default now()
);
comment on column orders.updated_at is 'bluegreen:watermark';
`;
const V2 = `
create type order_status as enum ('new', 'paid', 'shipped');
create table orders (
  id bigint primary key,
  country text not null,
  total numeric(12,2) not null,
  status order_status not null,
  placed_at timestamp with time zone not null,
  note text,
  updated_at timestamptz not null default now()
);
comment on column orders.updated_at is 'bluegreen:watermark';
`;
const UP = {
  from: 1,
  to: 2,
  tables: {
    orders: {
      from: 'orders',
      ops: [
        { op: 'cast', from: 'country' },
        { op: 'scale', from: 'total_cents', to: 'total', factor: '0.01' },
        { op: 'cast', from: 'status' },
        // Row 2 is in the autumn fold: read as its later instant, which goes back unchanged.
        { op: 'cast', from: 'placed_at', zone: 'Europe/Berlin', dst: 'later' },
        { op: 'sql', from: ['note'], to: 'note', expr: "nullif(trim(note), '')", js: 'trimNote' },
      ],
    },
  },
  loses: [{ table: 'orders', column: 'note', why: 'surrounding blanks and empty notes' }],
};
const DOWN = {
  from: 2,
  to: 1,
  tables: {
    orders: {
      from: 'orders',
      ops: [
        { op: 'cast', from: 'country' },
        { op: 'scale', from: 'total', to: 'total_cents', factor: '100' },
        { op: 'cast', from: 'status' },
        { op: 'cast', from: 'placed_at', zone: 'Europe/Berlin' },
      ],
    },
  },
  loses: [{ table: 'orders', column: 'country', why: 'char(2): trailing blanks, and longer codes are refused' }],
};
const FUNCTIONS = `export const trimNote = ([n]) => [n === null || n.trim() === '' ? null : n.trim()];\n`;

let dir: string;
let probe: pg.Client;
const catalogs: Record<number, Catalog> = {};

async function app(): Promise<string> {
  dir = await tempDir('ordersapp');
  for (const [v, sql] of [[1, V1], [2, V2]] as const) {
    await mkdir(path.join(dir, `v${v}`), { recursive: true });
    await writeFile(path.join(dir, `v${v}`, 'schema.sql'), sql);
  }
  await writeFile(path.join(dir, 'v2', 'up.json'), JSON.stringify(UP, null, 2));
  await writeFile(path.join(dir, 'v2', 'down.json'), JSON.stringify(DOWN, null, 2));
  await writeFile(path.join(dir, 'v2', 'functions.ts'), FUNCTIONS);
  return dir;
}

async function databaseAt(version: 1 | 2): Promise<string> {
  const url = await freshDatabase(`ops${version}`);
  await query(url, version === 1 ? V1 : V2);
  return url;
}

const ROWS = `insert into orders (id, country, total_cents, status, placed_at, note) values
  (1, 'DE', 1999, 'paid', '2024-03-31 01:30:00', '  hello '),
  (2, 'F', -1, 'new', '2024-10-27 02:30:00', ''),
  (3, 'US', 0, 'shipped', '2024-07-01 12:00:00.123456', null),
  (4, 'GB', 99999999999, 'paid', '2000-01-01 00:00:00', 'x')`;

beforeAll(async () => {
  await app();
  probe = await connect(await freshDatabase('opscat'));
  for (const v of [1, 2]) catalogs[v] = await loadVersionCatalog(probe, dir, v);
});
afterAll(async () => {
  await probe?.end();
});

const endpoints = (blue: string, green: string) => ({ from: { name: 'blue', url: blue }, to: { name: 'green', url: green } });

describe('new ops on real PostgreSQL', () => {
  it('the SQL face gives the expected text: scale, char(n) -> text, an enum of the target only, Berlin local times across DST', async () => {
    const blue = await databaseAt(1);
    await query(blue, ROWS);
    const c = await connect(blue);
    try {
      const chain = await compileChain(dir, 1, 2, catalogs);
      const t = chain.tables.orders!;
      const sqlRows = (await c.query({ text: `select * from (${t.selectSql(quoteIdent)}) q order by id`, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } } as pg.QueryConfig)).rows as (string | null)[][];
      // placed_at has no JS face in Europe/Berlin: offline paths run this SQL face in PostgreSQL.
      const at = t.columns.indexOf('placed_at');
      expect(t.jsUnsupported).toEqual([`cast placed_at (timestamp without time zone) -> placed_at (timestamp with time zone) at /tables/orders/ops/3 has no exact JS face`]);
      expect(sqlRows.map((r) => [r[0], r[1], r[2], r[3], r[at], r[5]])).toEqual([
        ['1', 'DE', '19.99', 'paid', '2024-03-31 00:30:00+00', 'hello'],
        ['2', 'F', '-0.01', 'new', '2024-10-27 01:30:00+00', null],
        ['3', 'US', '0.00', 'shipped', '2024-07-01 10:00:00.123456+00', null],
        ['4', 'GB', '999999999.99', 'paid', '1999-12-31 23:00:00+00', 'x'],
      ]);
    } finally {
      await c.end();
    }
  });

  it('syncs up into an enum the source does not have, verifies clean, and back down', async () => {
    const blue = await databaseAt(1);
    const green = await databaseAt(2);
    await query(blue, ROWS);
    const up = await sync({ ...endpoints(blue, green), mappingsDir: dir, logger: silentLogger });
    expect(up.verify?.clean).toBe(true);
    expect(await query(green, `select id, country, total::text, status::text, placed_at::text from orders order by id`)).toEqual([
      { id: '1', country: 'DE', total: '19.99', status: 'paid', placed_at: '2024-03-31 00:30:00+00' },
      { id: '2', country: 'F', total: '-0.01', status: 'new', placed_at: '2024-10-27 01:30:00+00' },
      { id: '3', country: 'US', total: '0.00', status: 'shipped', placed_at: '2024-07-01 10:00:00.123456+00' },
      { id: '4', country: 'GB', total: '999999999.99', status: 'paid', placed_at: '1999-12-31 23:00:00+00' },
    ]);
    const v = await verify({ ...endpoints(blue, green), mappingsDir: dir, logger: silentLogger, record: false });
    expect(v.clean).toBe(true);
    expect(v.tables[0]!.columns).toContain('status');

    // Rollback direction into a fresh v1: lossless columns come back exactly.
    const blue2 = await databaseAt(1);
    const down = await sync({ from: { name: 'green', url: green }, to: { name: 'blue2', url: blue2 }, mappingsDir: dir, logger: silentLogger });
    expect(down.verify?.clean).toBe(true);
    const key = `id, country, total_cents, status, placed_at`;
    expect(await query(blue2, `select ${key} from orders order by id`)).toEqual(await query(blue, `select ${key} from orders order by id`));
  });

  it('value too long for type character(2) when syncing down names table, column and key', async () => {
    const green = await databaseAt(2);
    const blue = await databaseAt(1);
    await query(green, `insert into orders (id, country, total, status, placed_at) select g, 'DE', 1, 'new', now() from generate_series(1, 200) g`);
    await query(green, `update orders set country = 'DEU' where id = 137`);
    const err = await sync({ from: { name: 'green', url: green }, to: { name: 'blue', url: blue }, mappingsDir: dir, logger: silentLogger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RowConversionError);
    const e = err as RowConversionError;
    expect([e.table, e.column, e.key, e.value]).toEqual(['orders', 'country', 'id=137', 'DEU']);
    expect(e.message).toMatch(/^table orders, column country, key id=137: value too long for type character\(2\): DEU \(value "DEU"\)$/);
    expect(e.hint).toMatch(/change the op at .*down\.json at \/tables\/orders\/ops\/0/);
    expect(await query(blue, `select count(*)::int as n from orders`)).toEqual([{ n: 0 }]);
  });

  it('the pre-flight names a computed value the target type would refuse before anything is written', async () => {
    const alt = await tempDir('ordersalt');
    await cp(dir, alt, { recursive: true });
    const down = JSON.parse(JSON.stringify(DOWN));
    down.tables.orders.ops[0] = { op: 'sql', from: ['country'], to: 'country', expr: 'upper(country)' };
    await writeFile(path.join(alt, 'v2', 'down.json'), JSON.stringify(down));
    const green = await databaseAt(2);
    const blue = await databaseAt(1);
    await query(green, `insert into orders (id, country, total, status, placed_at) select g, 'de', 1, 'new', now() from generate_series(1, 30) g`);
    await query(green, `update orders set country = 'deu' where id = 17`);
    const err = await sync({ from: { name: 'green', url: green }, to: { name: 'blue', url: blue }, mappingsDir: alt, logger: silentLogger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RowConversionError);
    const e = err as RowConversionError;
    expect([e.table, e.column, e.key, e.value]).toEqual(['orders', 'country', 'id=17', 'DEU']);
    // PostgreSQL 16+ refuses it in the pre-flight (pg_input_is_valid); older servers have no
    // such check, so the target's COPY refuses it and the failure is located the same way.
    expect(e.message).toMatch(/the value does not fit character\(2\)|value too long for type character\(2\)/);
    expect(e.hint).toMatch(/down\.json at \/tables\/orders\/ops\/0/);
    // Refused before any write: no row, not even the tool's state schema.
    expect(await query(blue, `select (select count(*) from orders)::int as rows, to_regclass('bluegreen.runs') is null as untouched`)).toEqual([{ rows: 0, untouched: true }]);
  });

  it('a value the target column refuses (COPY FROM fails on the target) is located too', async () => {
    const blue = await databaseAt(1);
    const green = await databaseAt(2);
    await query(blue, ROWS);
    await query(blue, `update orders set status = 'bogus' where id = 3`);
    const err = await sync({ ...endpoints(blue, green), mappingsDir: dir, logger: silentLogger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RowConversionError);
    const e = err as RowConversionError;
    expect([e.table, e.column, e.key, e.value]).toEqual(['orders', 'status', 'id=3', 'bogus']);
    expect(e.message).toMatch(/invalid input value for enum order_status/);
  });

  it('a scaled value the target type cannot hold is located on the source, nothing written', async () => {
    const blue = await databaseAt(1);
    const green = await databaseAt(2);
    await query(blue, ROWS);
    await query(blue, `insert into orders (id, country, total_cents, status, placed_at) select g, 'DE', g, 'new', now() from generate_series(10, 300) g`);
    await query(blue, `update orders set total_cents = 1000000000000 where id = 222`);
    const err = await sync({ ...endpoints(blue, green), mappingsDir: dir, logger: silentLogger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RowConversionError);
    const e = err as RowConversionError;
    expect([e.table, e.column, e.key, e.value]).toEqual(['orders', 'total', 'id=222', '1000000000000']);
    expect(e.message).toMatch(/does not fit numeric\(12,2\)/);
    expect(await query(green, `select count(*)::int as n from orders`)).toEqual([{ n: 0 }]);
  });
});

describe('offline paths run the SQL face in PostgreSQL where an op has no JS face', () => {
  const cols = `id, country, total::text, status::text, placed_at::text, note`;
  const catalogsOf = async () => catalogs;

  it('convert (scratch schema on a reachable server) and import-on-the-fly give what sync gives', async () => {
    const blue = await databaseAt(1);
    await query(blue, ROWS);
    const bySync = await databaseAt(2);
    await sync({ from: { name: 'blue', url: blue }, to: { name: 'green', url: bySync }, mappingsDir: dir, logger: silentLogger });
    const want = await query(bySync, `select ${cols} from orders order by id`);

    const dump = path.join(await tempDir('odump'), 'd');
    await exportDump({ url: blue, environment: 'blue', mappingsDir: dir, out: dump, logger: silentLogger });

    // Without a server, convert refuses before writing, naming the op.
    const refused = await convertDump({ dir: dump, out: path.join(await tempDir('oc0'), 'd'), toVersion: 2, mappingsDir: dir, catalogs: catalogsOf, logger: silentLogger }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OfflineConversionUnsupportedError);
    expect((refused as Error).message).toMatch(/cast placed_at .* at \/tables\/orders\/ops\/3 has no exact JS face/);

    const scratchUrl = await freshDatabase('scratch');
    const converted = path.join(await tempDir('oc'), 'd');
    const r = await convertDump({
      dir: dump,
      out: converted,
      toVersion: 2,
      mappingsDir: dir,
      catalogs: catalogsOf,
      logger: silentLogger,
      server: async () => ({ client: await connect(scratchUrl), label: 'scratch' }),
    });
    expect(r.rows).toBe(4);
    // Nothing stays on the scratch server.
    expect(await query(scratchUrl, `select count(*)::int as n from pg_namespace where nspname like 'bluegreen_scratch%'`)).toEqual([{ n: 0 }]);
    const fromConvert = await databaseAt(2);
    await importDump({ url: fromConvert, environment: 'c', mappingsDir: dir, dir: converted, logger: silentLogger });
    expect(await query(fromConvert, `select ${cols} from orders order by id`)).toEqual(want);

    const onTheFly = await databaseAt(2);
    const imp = await importDump({ url: onTheFly, environment: 'f', mappingsDir: dir, dir: dump, logger: silentLogger });
    expect(imp.verify?.clean).toBe(true);
    expect(await query(onTheFly, `select ${cols} from orders order by id`)).toEqual(want);
  });

  it('import-on-the-fly locates a row the SQL face refuses and loads nothing', async () => {
    const green = await databaseAt(2);
    await query(green, `insert into orders (id, country, total, status, placed_at) select g, 'DE', 1, 'new', now() from generate_series(1, 40) g`);
    await query(green, `update orders set country = 'XYZ' where id = 33`);
    const dump = path.join(await tempDir('gdump'), 'd');
    await exportDump({ url: green, environment: 'green', mappingsDir: dir, out: dump, logger: silentLogger });
    const blue = await databaseAt(1);
    const err = await importDump({ url: blue, environment: 'blue', mappingsDir: dir, dir: dump, logger: silentLogger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RowConversionError);
    expect([(err as RowConversionError).column, (err as RowConversionError).key, (err as RowConversionError).value]).toEqual(['country', 'id=33', 'XYZ']);
    expect(await query(blue, `select count(*)::int as n from orders`)).toEqual([{ n: 0 }]);
  });

  it('convert through the JS face names the key of a row it cannot convert, and leaves no output', async () => {
    const alt = await tempDir('ordersutc');
    await cp(dir, alt, { recursive: true });
    const down = JSON.parse(JSON.stringify(DOWN));
    delete down.tables.orders.ops[3].zone; // UTC: every op of the table has a JS face
    const upUtc = JSON.parse(JSON.stringify(UP));
    delete upUtc.tables.orders.ops[3].zone;
    delete upUtc.tables.orders.ops[3].dst;
    await writeFile(path.join(alt, 'v2', 'down.json'), JSON.stringify(down));
    await writeFile(path.join(alt, 'v2', 'up.json'), JSON.stringify(upUtc));
    const green = await databaseAt(2);
    await query(green, `insert into orders (id, country, total, status, placed_at) select g, 'DE', 1, 'new', now() from generate_series(1, 40) g`);
    await query(green, `update orders set country = 'XYZ' where id = 29`);
    const dump = path.join(await tempDir('gdump2'), 'd');
    await exportDump({ url: green, environment: 'green', mappingsDir: alt, out: dump, logger: silentLogger });
    const out = path.join(await tempDir('gout'), 'd');
    const err = await convertDump({ dir: dump, out, toVersion: 1, mappingsDir: alt, catalogs: catalogsOf, logger: silentLogger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RowConversionError);
    const e = err as RowConversionError;
    expect([e.table, e.column, e.key, e.value]).toEqual(['orders', 'country', 'id=29', 'XYZ']);
    expect(e.message).toMatch(/value too long for type character\(2\)/);
    expect(e.hint).toMatch(/down\.json at \/tables\/orders\/ops\/0/);
    expect(existsSync(out)).toBe(false);
  });

  it('import through the JS face names the row whose converted value the target refuses', async () => {
    const alt = await tempDir('ordersutc2');
    await cp(dir, alt, { recursive: true });
    const upUtc = JSON.parse(JSON.stringify(UP));
    delete upUtc.tables.orders.ops[3].zone;
    delete upUtc.tables.orders.ops[3].dst;
    await writeFile(path.join(alt, 'v2', 'up.json'), JSON.stringify(upUtc));
    const blue = await databaseAt(1);
    await query(blue, ROWS);
    await query(blue, `update orders set status = 'lost' where id = 2`);
    const dump = path.join(await tempDir('bdump'), 'd');
    await exportDump({ url: blue, environment: 'blue', mappingsDir: alt, out: dump, logger: silentLogger });
    const green = await databaseAt(2);
    const err = await importDump({ url: green, environment: 'green', mappingsDir: alt, dir: dump, logger: silentLogger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RowConversionError);
    const e = err as RowConversionError;
    expect([e.table, e.column, e.key, e.value]).toEqual(['orders', 'status', 'id=2', 'lost']);
    expect(e.message).toMatch(/invalid input value for enum order_status/);
    expect(await query(green, `select count(*)::int as n from orders`)).toEqual([{ n: 0 }]);
  });
});
