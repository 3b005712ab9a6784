/**
 * Kinds of tables real applications have, synced without losing a write: local-time
 * watermarks with the writers' zone declared (a long transaction, the autumn fold),
 * watermarks the application sets itself (clock skew), keyless append-only tables (ties,
 * a concurrent inserter, a long transaction holding a low id), keyless full reloads that
 * write nothing when unchanged, and a cutover that refuses before it freezes anything.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { query } from '../helpers/pg.ts';
import { makePair, report, type Pair } from '../helpers/pair.ts';
import { tempDir } from '../helpers/tmp.ts';
import { twoVersions } from '../helpers/mappings.ts';
import { lowerBoundSql, planWatermarks, type SourcePlan } from '../../src/sync/watermark.ts';

/**
 * orders: Berlin local time, zone declared in schema.sql; visits: New York local time (a
 * negative offset), zone declared in the mapping.
 */
const schema = (settings: string, zones = true) => `
CREATE TABLE orders (id bigint PRIMARY KEY, note text, updated_at timestamp without time zone NOT NULL DEFAULT localtimestamp);
CREATE INDEX orders_updated_at ON orders (updated_at);
COMMENT ON COLUMN orders.updated_at IS 'bluegreen:watermark${zones ? ' zone=Europe/Berlin' : ''}';
CREATE TABLE visits (id bigint PRIMARY KEY, page text, seen_at timestamp without time zone NOT NULL);
COMMENT ON COLUMN visits.seen_at IS 'bluegreen:watermark';
CREATE TABLE app_events (id bigint PRIMARY KEY, body text, changed_at timestamptz NOT NULL);
CREATE TABLE history (aid integer NOT NULL, delta integer NOT NULL, mtime timestamptz NOT NULL DEFAULT now());
CREATE INDEX history_mtime ON history (mtime);
CREATE TABLE events (seq bigserial NOT NULL, payload text);
CREATE INDEX events_seq ON events (seq);
CREATE TABLE ${settings} (name text NOT NULL, value text, meta json);
`;

const tables = (from: number, to: number, settingsFrom: string, settingsTo: string) => ({
  from,
  to,
  tables: {
    app_events: { from: 'app_events', watermark: { column: 'changed_at', skew: '30 seconds' } },
    visits: { from: 'visits', watermark: { column: 'seen_at', zone: 'America/New_York' } },
    // Names schema.sql's watermark column without a zone: the comment's zone still holds.
    orders: { from: 'orders', watermark: 'updated_at' },
    history: { from: 'history', reload: 'append', watermark: 'mtime' },
    events: { from: 'events', reload: 'append', watermark: 'seq' },
    [settingsTo]: { from: settingsFrom, reload: 'full' },
  },
});

/** A mappings folder: v1 has `settings`, v2 renames it `app_settings` (so the versions differ). */
async function mappings(zones = true): Promise<string> {
  const dir = await twoVersions('table-kinds', { v1: schema('settings', zones), v2: schema('app_settings', zones), up: tables(1, 2, 'settings', 'app_settings'), down: tables(2, 1, 'app_settings', 'settings') });
  return dir;
}

async function pair(zones = true): Promise<Pair> {
  return makePair(1, 2, await mappings(zones));
}

async function sync(p: Pair, args: string[] = []) {
  return report(await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json', ...args]));
}

const table = (r: { tables: { table: string }[] }, name: string) => r.tables.find((t) => t.table === name) as unknown as { read: number; inserted: number; updated: number; deleted: number };

/** A client writing the way an application in `zone` does. */
async function writer(url: string, zone = 'UTC'): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: 'app' });
  await c.connect();
  await c.query(`set timezone = '${zone}'`);
  return c;
}

/** Every row of `t` with its multiplicity, sorted: equal results mean equal multisets. */
async function multiset(url: string, t: string) {
  return query<{ r: string; n: number }>(url, `select t::text as r, count(*)::int as n from ${t} t group by 1 order by 1`);
}

describe('local-time watermarks with the writers zone declared', () => {
  it('catch a long transaction that commits after a sync began, in Berlin and New York, without a 14-hour lookback', async () => {
    const p = await pair();
    for (const [t, col, zone] of [['orders', 'updated_at', 'Europe/Berlin'], ['visits', 'seen_at', 'America/New_York']] as const) {
      const w = await writer(p.blue, zone);
      await w.query(`insert into ${t} (id, ${col === 'updated_at' ? 'note' : 'page'}, ${col}) select g, 'n' || g, localtimestamp from generate_series(1, 100) g`);
      await w.end();
    }
    expect((await sync(p)).mode).toBe('full');
    // Application transactions start (their local now() fixed), a sync runs, they commit.
    const apps = [await writer(p.blue, 'Europe/Berlin'), await writer(p.blue, 'America/New_York')];
    for (const a of apps) await a.query('begin');
    await apps[0]!.query(`update orders set note = 'long-tx', updated_at = localtimestamp where id = 7`);
    await apps[1]!.query(`update visits set page = 'long-tx', seen_at = localtimestamp where id = 7`);
    const during = await sync(p);
    expect(during.horizon.heldBackBy).toMatch(/open since/);
    for (const a of apps) {
      await a.query('commit');
      await a.end();
    }
    // New York's local time is hours behind UTC: a bound compared with the UTC horizon as
    // if it were local time skips the row forever.
    const [ny] = await query<{ naive_skips: boolean }>(p.blue, `select seen_at < $1::timestamptz::timestamp as naive_skips from visits where id = 7`, [during.watermarks.visits]);
    expect(ny!.naive_skips).toBe(true);
    const after = await sync(p);
    expect(await query(p.green, `select note from orders where id = 7`)).toEqual([{ note: 'long-tx' }]);
    expect(await query(p.green, `select page from visits where id = 7`)).toEqual([{ page: 'long-tx' }]);
    // Only what changed since the held-back horizon is read, not the last 14 hours.
    expect(table(after, 'orders').read).toBeLessThan(5);
    expect(table(after, 'visits').read).toBeLessThan(5);
    const again = await sync(p);
    expect(table(again, 'orders').read).toBe(0);
    // check accepts what sync runs: the object form of watermark, append and full reloads.
    const check = await p.run(['check', '--via', 'blue']);
    expect(check.code, check.stderr).toBe(0);
  });

  it('reads a row written in the repeated autumn hour after the horizon, which a bare local bound skips', async () => {
    const p = await pair();
    const c = new pg.Client({ connectionString: p.blue });
    await c.connect();
    try {
      await c.query(`set timezone = 'UTC'`);
      // Berlin, 2026-10-25: 03:00 CEST goes back to 02:00 CET. H = 00:45 UTC = 02:45 CEST.
      await c.query(`insert into orders (id, note, updated_at) values
        (1, 'written 01:10 UTC, local 02:10 CET, after H', '2026-10-25 02:10:00'),
        (2, 'written 23:40 UTC the day before, before H', '2026-10-25 01:40:00'),
        (3, 'written 03:30 UTC, after H', '2026-10-25 04:30:00')`);
      const catalog = { tables: { orders: { name: 'orders', columns: [{ name: 'updated_at', type: 'timestamp without time zone' }], primaryKey: ['id'], uniqueKeys: [], foreignKeys: [] } } };
      const ct = { table: 'orders', reload: 'incremental', sources: [{ table: 'orders', columns: [], key: ['id'], watermark: 'updated_at', watermarkRule: { zone: 'Europe/Berlin' } }] };
      const plans = await planWatermarks(c, [ct as never], catalog as never, new Map([['orders', '2026-10-25 00:45:00+00']]), {});
      const plan = plans.get('orders') as SourcePlan;
      expect(plan).toMatchObject({ kind: 'local', zone: 'Europe/Berlin', margin: '01:00:00' });
      const read = await c.query(`select id from orders where ${lowerBoundSql(plan)} order by id`);
      expect(read.rows.map((r) => Number(r.id))).toEqual([1, 3]);
      // The naive bound (local time of H) loses row 1.
      const naive = await c.query(`select id from orders where updated_at >= ('2026-10-25 00:45:00+00'::timestamptz at time zone 'Europe/Berlin') order by id`);
      expect(naive.rows.map((r) => Number(r.id))).toEqual([3]);
      // A date watermark in the same zone reads back to the local date of H minus the margin.
      const datePlan: SourcePlan = { ...plan, kind: 'date', type: 'date', lo: '2026-10-24 22:30:00+00' };
      const dates = await c.query(`select d::text from (values ('2026-10-23'::date), ('2026-10-24'), ('2026-10-25')) v(d) where ${lowerBoundSql({ ...datePlan, column: 'd' })}`);
      // 22:30 UTC is 00:30 CEST on the 25th; minus the 1-hour margin it is the 24th.
      expect(dates.rows.map((r) => r.d)).toEqual(['2026-10-24', '2026-10-25']);
      // The predicate can use the index on the bare column.
      await c.query('set enable_seqscan = off');
      const plan2 = await c.query(`explain select id from orders where ${lowerBoundSql(plan)}`);
      expect(plan2.rows.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/orders_updated_at/);
    } finally {
      await c.end();
    }
  });

  it('a local-time watermark without a zone is refused by sync, and by cutover before anything is frozen', async () => {
    const p = await pair(false);
    const w = await writer(p.blue);
    await w.query(`insert into orders (id, note) values (1, 'a')`);
    await w.end();
    const s = await p.run(['sync', '--from', 'blue', '--to', 'green']);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/orders.*local time.*zone=Europe\/Berlin/s);
    const c = await p.run(['cutover', '--from', 'blue', '--to', 'green', '--force', '--json']);
    expect(c.code).toBe(1);
    const r = report(c);
    expect(r.frozenAt).toBeUndefined();
    expect(r.guardrails.find((g: { name: string }) => g.name === 'watermarks')).toMatchObject({ ok: false });
    // Blue was never frozen: no freeze record, no freeze trigger, and it takes writes.
    expect(await query(p.blue, `select to_regclass('bluegreen.freeze') is null as none`)).toEqual([{ none: true }]);
    expect(await query(p.blue, `select count(*)::int as n from pg_trigger where tgname like 'bluegreen%'`)).toEqual([{ n: 0 }]);
    await query(p.blue, `insert into orders (id, note) values (2, 'still serving')`);
    // An option the final sync would choke on is refused before the freeze too.
    // An option the final sync would choke on is refused while parsing, before anything connects.
    const typo = await p.run(['cutover', '--from', 'blue', '--to', 'green', '--force', '--lookback', '14 parsecs', '--json']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/--lookback/);
    expect(await query(p.blue, `select to_regclass('bluegreen.freeze') is null as none`)).toEqual([{ none: true }]);
    // The sync options work on cutover too: the legacy lookback accepts the zone-less column.
    const ok = await p.run(['cutover', '--from', 'blue', '--to', 'green', '--force', '--lookback', '14 hours', '--lock-timeout', '5s', '--json']);
    expect(ok.code).toBe(0);
    expect(await query(p.green, `select id from orders order by id`)).toEqual([{ id: '1' }, { id: '2' }]);
  });
});

describe('cutover', () => {
  it('seeds the reverse watermarks of every kind (local times in two zones, an integer append table): the first rollback sync reads only what green wrote', async () => {
    const p = await pair();
    const w = await writer(p.blue, 'Europe/Berlin');
    await w.query(`insert into orders (id, note) select g, 'o' from generate_series(1, 300) g`);
    await w.query(`insert into visits (id, page, seen_at) select g, 'p', now() at time zone 'America/New_York' from generate_series(1, 300) g`);
    await w.query(`insert into events (payload) select 'e' || g from generate_series(1, 300) g`);
    await w.end();
    await sync(p);
    const cut = report(await p.ok(['cutover', '--from', 'blue', '--to', 'green', '--json']));
    expect(Object.keys(cut.reverseWatermarks)).toEqual(expect.arrayContaining(['orders', 'visits', 'events']));
    const g = await writer(p.green, 'Europe/Berlin');
    await g.query(`insert into orders (id, note) values (1001, 'on green')`);
    await g.query(`insert into events (payload) values ('g1'), ('g2')`);
    await g.end();
    const back = report(await p.ok(['sync', '--from', 'green', '--to', 'blue', '--json']));
    expect(table(back, 'orders')).toMatchObject({ inserted: 1 });
    expect(table(back, 'orders').read).toBeLessThan(10);
    expect(table(back, 'events')).toMatchObject({ inserted: 2 });
    expect(table(back, 'events').read).toBeLessThan(10);
    expect(table(back, 'visits').read).toBeLessThan(10);
  });

  it('carries every kind of table exactly, with a Berlin writer committing after the last sync', async () => {
    const p = await pair();
    const w = await writer(p.blue, 'Europe/Berlin');
    await w.query(`insert into orders (id, note) select g, 'n' || g from generate_series(1, 30) g`);
    await w.query(`insert into visits (id, page, seen_at) select g, 'p' || g, now() at time zone 'America/New_York' from generate_series(1, 30) g`);
    await w.query(`insert into app_events select g, 'b' || g, now() from generate_series(1, 30) g`);
    await w.query(`insert into history (aid, delta) select g % 3, 1 from generate_series(1, 30) g`);
    await w.query(`insert into events (payload) select 'e' || g from generate_series(1, 30) g`);
    await w.query(`insert into settings values ('a', '1'), ('a', '1')`);
    await sync(p);
    await w.query('begin');
    await w.query(`update orders set note = 'after last sync', updated_at = localtimestamp where id = 3`);
    await w.query(`insert into history (aid, delta) values (1, 1)`); // identical to rows already on green
    await w.query(`insert into events (payload) values ('after last sync')`);
    await w.query('commit');
    await w.end();
    const r = await p.run(['cutover', '--from', 'blue', '--to', 'green', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = report(r);
    expect(rep.guardrails.find((g: { name: string }) => g.name === 'watermarks').detail).toMatch(/orders\.updated_at \(local Europe\/Berlin\)/);
    // Every row verified before the freeze (when the last full verify was older than the
    // last sync), what the final sync read checked while frozen.
    if (rep.verifiedBeforeFreeze) expect(rep.verifiedBeforeFreeze.verify.clean).toBe(true);
    expect(rep.sync.check.clean).toBe(true);
    expect(await query(p.green, `select note from orders where id = 3`)).toEqual([{ note: 'after last sync' }]);
    for (const [b, g] of [['history', 'history'], ['events', 'events'], ['settings', 'app_settings']]) expect(await multiset(p.green, g!)).toEqual(await multiset(p.blue, b!));
  });
});

describe('watermarks the application sets', () => {
  it('a declared skew catches a row stamped by a clock 20 s behind, committed after the sync', async () => {
    const p = await pair();
    await query(p.blue, `insert into app_events values (1, 'first', now())`);
    const first = await sync(p);
    // The application's clock runs 20 s behind the database's.
    await query(p.blue, `insert into app_events values (2, 'late clock', now() - interval '20 seconds')`);
    const [row] = await query<{ before_horizon: boolean; covered: boolean }>(
      p.blue,
      `select changed_at < $1::timestamptz as before_horizon, changed_at >= $2::timestamptz as covered from app_events where id = 2`,
      [first.horizon.at, first.watermarks.app_events],
    );
    expect(row).toEqual({ before_horizon: true, covered: true });
    await sync(p);
    expect(await query(p.green, `select body from app_events order by id`)).toEqual([{ body: 'first' }, { body: 'late clock' }]);
  });
});

describe('append-only keyless tables', () => {
  it('every row exactly once under a concurrent inserter, with ties and a long transaction holding a low id', async () => {
    const p = await pair();
    await query(p.blue, `insert into history (aid, delta) select g, g from generate_series(1, 50) g`);
    await query(p.blue, `insert into events (payload) select 'e' || g from generate_series(1, 50) g`);
    await sync(p);
    // A long transaction takes a low id and a mtime, then waits.
    const long = await writer(p.blue);
    await long.query('begin');
    await long.query(`insert into events (payload) values ('long-tx')`);
    await long.query(`insert into history (aid, delta) values (-1, -1), (-1, -1)`);
    // The application keeps inserting: three identical rows per transaction (tied on
    // mtime and identical whole), and events with ever higher ids.
    let stop = false;
    const app = await writer(p.blue);
    const inserting = (async () => {
      let i = 0;
      while (!stop) {
        i++;
        await app.query(`insert into history (aid, delta) select ${i}, 0 from generate_series(1, 3)`);
        await app.query(`insert into events (payload) values ('app-${i}')`);
        await new Promise((r) => setTimeout(r, 25));
      }
      return i;
    })();
    let n: number;
    try {
      await sync(p);
      await sync(p);
      // The long transaction's id is below ids already on green: a bound at max(seq) would skip it.
      const greenMax = (await query<{ m: string }>(p.green, `select max(seq)::text as m from events`))[0]!.m;
      const longSeq = (await long.query<{ s: string }>(`select seq::text as s from events where payload = 'long-tx'`)).rows[0]!.s;
      expect(BigInt(longSeq)).toBeLessThan(BigInt(greenMax));
      await long.query('commit');
      await sync(p);
    } finally {
      stop = true;
      n = await inserting.catch(() => 0);
      await app.end().catch(() => {});
      await long.end().catch(() => {});
    }
    expect(n).toBeGreaterThan(3);
    const last = await sync(p);
    // An incremental run checks what it read (a full one would verify instead).
    expect(last.mode).toBe('incremental');
    expect(last.check).toMatchObject({ clean: true });
    expect(await multiset(p.green, 'history')).toEqual(await multiset(p.blue, 'history'));
    expect(await multiset(p.green, 'events')).toEqual(await multiset(p.blue, 'events'));
    expect(await query(p.green, `select count(*)::int as n from events where payload = 'long-tx'`)).toEqual([{ n: 1 }]);
    expect(await query(p.green, `select count(*)::int as n from history where aid = -1`)).toEqual([{ n: 2 }]);
    // A run with nothing new inserts nothing and rewrites nothing.
    const idle = await sync(p);
    expect(table(idle, 'history')).toMatchObject({ inserted: 0, updated: 0, deleted: 0 });
    expect(table(idle, 'events')).toMatchObject({ inserted: 0, updated: 0, deleted: 0 });
    // Verify compares them as multisets and says so.
    const v = report(await p.ok(['verify', '--from', 'blue', '--to', 'green', '--json']));
    expect(v.clean).toBe(true);
    expect(v.tables.find((t: { table: string }) => t.table === 'history').comparedAs).toBe('multiset');
  });

  it('refuses an integer watermark whose sequence caches values per session', async () => {
    const p = await pair();
    await query(p.blue, `alter sequence events_seq_seq cache 20`);
    const r = await p.run(['sync', '--from', 'blue', '--to', 'green']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/events.*CACHE 20.*ALTER SEQUENCE/s);
  });

  it('exit 3 naming what it saw when a row of an append table changed on the source', async () => {
    const p = await pair();
    await query(p.blue, `insert into history (aid, delta) select g, g from generate_series(1, 20) g`);
    await sync(p);
    // Hold the horizon back so the next run reads this row again.
    const hold = await writer(p.blue);
    await hold.query('begin');
    await hold.query('select now()');
    await query(p.blue, `insert into history (aid, delta) values (999, 1)`);
    await sync(p);
    await query(p.blue, `update history set delta = 2 where aid = 999`);
    const r = await p.run(['sync', '--from', 'blue', '--to', 'green']);
    await hold.query('commit');
    await hold.end();
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/history is not append-only: 1 row\(s\).*\(999,1,/);
    expect(await query(p.green, `select delta from history where aid = 999`)).toEqual([{ delta: 1 }]); // nothing written
    // A change outside the re-read window: verify's multiset comparison finds it.
    await query(p.blue, `delete from history where aid = 3`);
    await query(p.blue, `update history set delta = 1 where aid = 999`);
    const v = await p.run(['verify', '--from', 'blue', '--to', 'green', '--json']);
    expect(v.code).toBe(3);
    const t = report(v).tables.find((x: { table: string }) => x.table === 'history');
    expect(t).toMatchObject({ comparedAs: 'multiset', sourceRows: 20, targetRows: 21 });
    expect(t.extra.count).toBe(1);
  });
});

describe('keyless full reloads', () => {
  it('write nothing when the table did not change, and only the difference when it did', async () => {
    const p = await pair();
    await query(p.blue, `insert into settings values ('a', '1'), ('b', '2'), ('dup', 'x'), ('dup', 'x'), ('n', null)`);
    await sync(p);
    const before = await query(p.green, `select ctid::text, xmin::text, name from app_settings order by ctid`);
    const idle = await sync(p);
    expect(table(idle, 'app_settings')).toMatchObject({ inserted: 0, updated: 0, deleted: 0 });
    // No row was rewritten: same tuples, same xmin.
    expect(await query(p.green, `select ctid::text, xmin::text, name from app_settings order by ctid`)).toEqual(before);
    await query(p.blue, `update settings set value = '3' where name = 'b'; delete from settings where ctid = (select min(ctid) from settings where name = 'dup')`);
    const changed = await sync(p);
    expect(table(changed, 'app_settings')).toMatchObject({ inserted: 1, deleted: 2 });
    expect(await multiset(p.green, 'app_settings')).toEqual(await multiset(p.blue, 'settings'));
  });

  it('export and import carry keyless full-reload and append tables, full and incremental', async () => {
    const dir = await mappings();
    const p = await makePair(1, 1, dir);
    await query(p.blue, `insert into settings values ('a', '1', '{"b": 1, "a": [2]}'), ('a', '1', '{"b": 1, "a": [2]}'); insert into history (aid, delta) values (1, 1), (1, 1); insert into events (payload) values ('x')`);
    await query(p.blue, `insert into orders (id, note, updated_at) values (1, 'old', '2000-01-01'); insert into visits values (1, 'old', '2000-01-01')`);
    const out = await tempDir('kinds-dump');
    const full = await p.run(['export', '--from', 'blue', '--out', path.join(out, 'full'), '--json']);
    expect(full.code, full.stderr).toBe(0);
    await p.ok(['import', '--to', 'green', '--in', path.join(out, 'full')]);
    // Offline convert to v2 carries the keyless tables too (settings becomes app_settings).
    const conv = await p.run(['convert', '--in', path.join(out, 'full'), '--to-version', '2', '--out', path.join(out, 'v2'), '--via', 'blue', '--json']);
    expect(conv.code, conv.stderr).toBe(0);
    const converted = JSON.parse(await readFile(path.join(out, 'v2', 'manifest.json'), 'utf8'));
    expect(converted.tables.find((t: { name: string }) => t.name === 'app_settings')).toMatchObject({ rows: 2, key: [] });
    for (const t of ['settings', 'history', 'events']) expect(await multiset(p.green, t)).toEqual(await multiset(p.blue, t));
    await query(p.blue, `insert into settings values ('b', '2'); delete from settings where ctid = (select min(ctid) from settings where name = 'a'); insert into history (aid, delta) values (2, 2)`);
    // Berlin and New York writers change a row each after the full export.
    for (const [zone, sql] of [['Europe/Berlin', `update orders set note = 'new', updated_at = localtimestamp`], ['America/New_York', `update visits set page = 'new', seen_at = localtimestamp`]]) {
      const w = await writer(p.blue, zone);
      await w.query(sql!);
      await w.end();
    }
    const since = report(full).nextSince;
    await p.ok(['export', '--from', 'blue', '--since', since, '--out', path.join(out, 'inc')]);
    await p.ok(['import', '--to', 'green', '--in', path.join(out, 'inc')]);
    for (const t of ['settings', 'history', 'events', 'orders', 'visits']) expect(await multiset(p.green, t)).toEqual(await multiset(p.blue, t));
  });
});
