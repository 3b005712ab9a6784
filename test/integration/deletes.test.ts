/**
 * Incremental cost follows the change: deletes found from the source's capture trigger
 * (not by comparing whole key sets), the key-bucket reconciliation kept for when capture
 * cannot be trusted, and version catalogs cached in the target's state.
 */
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { freshDatabase, query } from '../helpers/pg.ts';
import { disableCapture, enableCapture } from '../../src/sync/deletes.ts';
import { makePair, report, type Pair } from '../helpers/pair.ts';

async function v1Rows(url: string) {
  const out: Record<string, string[]> = {};
  for (const t of ['roles', 'users', 'user_roles', 'user_settings']) {
    out[t] = (await query<{ r: string }>(url, `select t::text as r from ${t} t order by 1`)).map((x) => x.r);
  }
  return out;
}

const syncJson = async (p: Pair, args: string[] = []) => report(await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json', ...args]));
/** Deletes on `url` with `where`, returning how many rows went. */
const del = async (url: string, from: string, where: string) =>
  (await query<{ n: number }>(url, `with d as (delete from ${from} where ${where} returning 1) select count(*)::int as n from d`))[0]!.n;
const table = (r: { tables: { table: string }[] }, name: string) => r.tables.find((t) => t.table === name) as Record<string, unknown>;

describe('deletes and fixed costs', () => {
  it('with capture enabled, an incremental sync takes deletes from the trigger, not from the key sets', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '200']);
    await p.ok(['capture', 'enable', '--env', 'blue']);
    // The first runs: capture was enabled after no lower bound yet, so key sets are compared.
    const first = await syncJson(p);
    expect(first.mode).toBe('full');
    await query(p.blue, `delete from user_roles where user_id in (10, 11); delete from user_settings where user_id in (10, 11); delete from users where id in (10, 11)`);
    // A key deleted and inserted again must stay.
    const [u12] = await query<{ t: string }>(p.blue, `select to_jsonb(u)::text as t from users u where id = 12`);
    await query(p.blue, `delete from user_roles where user_id = 12; delete from user_settings where user_id = 12; delete from users where id = 12`);
    await query(p.blue, `insert into users select * from jsonb_populate_record(null::users, $1::jsonb)`, [u12!.t]);
    const r = await syncJson(p);
    expect(r.mode).toBe('incremental');
    expect(table(r, 'users')).toMatchObject({ deletes: 'captured', deleted: 2 });
    expect(table(r, 'user_settings')).toMatchObject({ deletes: 'captured' });
    expect(r.check.clean).toBe(true);
    // Counts are not taken on incremental captured runs (that would scan the tables).
    expect(r.check.tables.find((t: { table: string }) => t.table === 'users').sourceRows).toBeNull();
    expect(await query(p.green, `select id::int as id from users where id in (10, 11, 12) order by id`)).toEqual([{ id: 12 }]);
    expect((await p.run(['verify'])).code).toBe(0);
    // --reconcile compares the key sets anyway (and counts rows for free).
    const rec = await syncJson(p, ['--reconcile']);
    expect(table(rec, 'users')).toMatchObject({ deletes: 'reconciled', deleted: 0 });
    const users = rec.check.tables.find((t: { table: string }) => t.table === 'users');
    expect(users.sourceRows).toBe(users.targetRows);
    expect(users.sourceRows).toBeGreaterThan(0);
    // Without anyone asking, a run reconciles once the last reconciled run is old enough.
    expect(table(await syncJson(p), 'users')).toMatchObject({ deletes: 'captured' });
    expect(table(await syncJson(p, ['--reconcile-every', '0 seconds']), 'users')).toMatchObject({ deletes: 'reconciled' });
  });

  it('without capture deletes are reconciled; a TRUNCATE or a capture newer than the lower bound falls back to reconciling', async () => {
    const p = await makePair(1, 1);
    await p.ok(['seed', '--to', 'blue', '--rows', '100']);
    await syncJson(p);
    let n = await del(p.blue, 'user_settings', 'user_id = 3');
    let r = await syncJson(p);
    expect(table(r, 'user_settings')).toMatchObject({ deletes: 'reconciled', deleted: n });
    // Enabled now: deletes before this moment were never recorded, so this run still reconciles...
    await p.ok(['capture', 'enable', '--env', 'blue']);
    n = await del(p.blue, 'user_settings', 'user_id = 4');
    r = await syncJson(p);
    expect(table(r, 'user_settings')).toMatchObject({ deletes: 'reconciled', deleted: n });
    // ...and the next one trusts the trigger.
    n = await del(p.blue, 'user_settings', 'user_id = 5');
    r = await syncJson(p);
    expect(table(r, 'user_settings')).toMatchObject({ deletes: 'captured', deleted: n });
    // A truncate names no keys: reconcile.
    await query(p.blue, `truncate user_roles`);
    r = await syncJson(p);
    expect(table(r, 'user_roles')).toMatchObject({ deletes: 'reconciled' });
    expect(await v1Rows(p.green)).toEqual(await v1Rows(p.blue));
    // Disabled: back to reconciling, nothing left on blue.
    await p.ok(['capture', 'disable', '--env', 'blue']);
    expect(await query(p.blue, `select count(*)::int as n from pg_trigger where tgname like 'bluegreen_capture%'`)).toEqual([{ n: 0 }]);
    n = await del(p.blue, 'user_settings', 'user_id = 6');
    r = await syncJson(p);
    expect(table(r, 'user_settings')).toMatchObject({ deletes: 'reconciled', deleted: n });
  });

  it('capture on a partitioned table records deletes and TRUNCATEs made through a partition', async () => {
    const url = await freshDatabase('capture');
    await query(url, `create table events (id int primary key, at date not null) partition by range (id);
                      create table events_1 partition of events for values from (0) to (100);
                      create table events_2 partition of events for values from (100) to (200);
                      insert into events select g, '2026-01-01' from generate_series(1, 150) g`);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await enableCapture(c, ['events']);
      await query(url, `delete from events_1 where id = 5; delete from events where id = 120; truncate events_2`);
      expect(await query(url, `select table_name, (old->>'id')::int as id, truncated from bluegreen.deleted_rows order by id`)).toEqual([
        { table_name: 'events', id: 5, truncated: false },
        { table_name: 'events', id: 120, truncated: false },
        { table_name: 'events', id: null, truncated: true },
      ]);
      await disableCapture(c, ['events']);
      expect(await query(url, `select count(*)::int as n from pg_trigger where tgname like 'bluegreen_capture%' and not tgisinternal`)).toEqual([{ n: 0 }]);
    } finally {
      await c.end();
    }
  });

  it('version catalogs are learnt once and then read from the target state, keyed by the schema.sql hash', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '20']);
    await syncJson(p); // the first run creates green's state, and stores the catalogs it learnt
    const rows = await query<{ n: number }>(p.green, `select count(*)::int as n from bluegreen.catalogs`);
    expect(rows[0]!.n).toBeGreaterThanOrEqual(3); // v1, v2, v3 of the sample app
    // The entries are what detection uses: spoil v2's and green no longer matches it.
    await query(p.green, `update bluegreen.catalogs set catalog = jsonb_set(catalog, '{tables,users,columns,0,type}', '"text"') where catalog->'tables'->'users'->'columns' @> '[{"name":"login"}]'`);
    const r = await p.run(['sync', '--from', 'blue', '--to', 'green']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/matches no version/);
    // Forgetting the cache learns them again.
    await query(p.green, `delete from bluegreen.catalogs`);
    await syncJson(p);
  });
});
