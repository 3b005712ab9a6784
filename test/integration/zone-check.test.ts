/**
 * A declared zone the writers do not use is caught. Writers in
 * Europe/Berlin; the mapping declares another zone for a `timestamp without time zone`
 * watermark:
 *
 * - declared west of the writers (UTC): every value lies an hour in the future of UTC's
 *   local time, which no writer in UTC can produce: sync, plan and the cutover's guardrail
 *   refuse (exit 2 for sync and plan), naming the table, the value and the zone, and the
 *   offset the values fit.
 * - declared east (Asia/Tokyo): every value lies 8 hours behind Tokyo's local time, so
 *   every bound is 8 hours ahead of the rows and incremental syncs read nothing; the
 *   whole-hour lag is warned (an idle table lags too, so it is not refused).
 *
 * The check is one max() per table that the watermark's index answers: a table without
 * such an index is not checked rather than scanned.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { freshDatabase, query, writeInZone } from '../helpers/pg.ts';
import { makePair, report, type Pair } from '../helpers/pair.ts';
import { tempDir } from '../helpers/tmp.ts';
import { checkZones, planWatermarks, type SourcePlan } from '../../src/sync/watermark.ts';

const schema = (zone: string) => `
CREATE TABLE orders (id bigint PRIMARY KEY, note text, updated_at timestamp without time zone NOT NULL);
CREATE INDEX orders_updated_at ON orders (updated_at);
COMMENT ON COLUMN orders.updated_at IS 'bluegreen:watermark zone=${zone}';
`;

async function pair(zone: string): Promise<Pair> {
  const dir = await tempDir('zone-check');
  await mkdir(path.join(dir, 'v1'));
  await writeFile(path.join(dir, 'v1', 'schema.sql'), schema(zone));
  return makePair(1, 1, dir);
}

/** The application: a session in Berlin writing its local time. */
const berlinWrites = (url: string, sql: string) => writeInZone(url, 'Europe/Berlin', sql);

const insertOrders = `insert into orders select g, 'n' || g, localtimestamp from generate_series(1, 50) g`;
/** Berlin's offset from UTC today (1 in winter, 2 in summer). */
const berlinOffset = async (url: string) =>
  (await query<{ h: number }>(url, `select extract(epoch from (now() at time zone 'Europe/Berlin') - (now() at time zone 'UTC'))::int / 3600 as h`))[0]!.h;

describe('a declared zone the writers do not use', () => {
  it('declared west of the writers (UTC): values in the future are refused by sync and plan (exit 2), and by the cutover before any freeze', async () => {
    const p = await pair('UTC');
    await berlinWrites(p.blue, insertOrders);
    const h = await berlinOffset(p.blue);

    const s = await p.run(['sync', '--from', 'blue', '--to', 'green']);
    expect(s.code, s.stderr).toBe(2);
    const line = s.stderr.split('\n').find((l) => /table orders/.test(l))!;
    expect(line).toMatch(/table orders: watermark updated_at holds \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\S*, later than now in its declared zone UTC/);
    // The hint names the offset the values fit (Berlin's today).
    expect(s.stderr).toMatch(new RegExp(`the values fit UTC\\+0${h}:00 now \\(e\\.g\\. Europe/`));
    // Nothing was written to green.
    expect(await query(p.green, `select count(*)::int as n from orders`)).toEqual([{ n: 0 }]);

    const plan = await p.run(['plan', '--from', 'blue', '--to', 'green']);
    expect(plan.code, plan.stderr).toBe(2);
    expect(plan.stderr).toMatch(/table orders: watermark updated_at holds .* declared zone UTC/);

    const c = await p.run(['cutover', '--from', 'blue', '--to', 'green', '--force', '--json']);
    expect(c.code).toBe(1);
    expect(report(c).frozenAt).toBeUndefined();
    expect(report(c).guardrails.find((g: { name: string }) => g.name === 'watermarks')).toMatchObject({ ok: false, detail: expect.stringMatching(/later than now in its declared zone UTC/) });
    expect(await query(p.blue, `select to_regclass('bluegreen.freeze') is null as none`)).toEqual([{ none: true }]);

    // A skew covering the offset (an application clock ahead) is what the rule allows.
    const skewed = await pair(`UTC skew=${h + 1}h`);
    await berlinWrites(skewed.blue, insertOrders);
    const ok = await skewed.run(['sync', '--from', 'blue', '--to', 'green']);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('declared east of the writers (Asia/Tokyo): the whole-hour lag is warned, naming the table, the value and the zone', async () => {
    const p = await pair('Asia/Tokyo');
    await berlinWrites(p.blue, insertOrders);
    const h = await berlinOffset(p.blue);
    const lag = 9 - h;
    const first = await p.run(['sync', '--from', 'blue', '--to', 'green']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(
      new RegExp(`table orders: the newest updated_at \\(\\d{4}-\\d\\d-\\d\\d [\\d:.]+\\) is ${lag} h behind now in its declared zone Asia/Tokyo .*values fit UTC\\+0${h}:00 now`),
    );
    // What the warning is about: an update now is below the bound, so the next sync reads nothing.
    await berlinWrites(p.blue, `update orders set note = 'changed', updated_at = localtimestamp where id = 7`);
    const next = await p.run(['sync', '--from', 'blue', '--to', 'green', '--json']);
    expect(next.code).toBe(0);
    expect(report(next).tables[0].read).toBe(0);
    expect(next.stderr).toMatch(new RegExp(`orders.*${lag} h behind now in its declared zone Asia/Tokyo`));
    // plan warns the same way.
    const plan = await p.run(['plan', '--from', 'blue', '--to', 'green']);
    expect(plan.code).toBe(0);
    expect(plan.stderr).toMatch(/orders.*h behind now in its declared zone Asia\/Tokyo/);
  });

  it('the writers zone declared: neither refused nor warned', async () => {
    const p = await pair('Europe/Berlin');
    await berlinWrites(p.blue, insertOrders);
    const s = await p.run(['sync', '--from', 'blue', '--to', 'green']);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).not.toMatch(/declared zone/);
    await berlinWrites(p.blue, `update orders set note = 'changed', updated_at = localtimestamp where id = 7`);
    const next = report(await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json']));
    expect(next.tables[0].read).toBe(1);
  });

  it('the index bound of a local watermark reaches back an hour only when an autumn change lies between the bound and the run', async () => {
    const url = await freshDatabase('margin');
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(`create table t (id bigint primary key, at timestamp not null)`);
      const catalog = { tables: { t: { name: 't', columns: [{ name: 'at', type: 'timestamp without time zone' }], primaryKey: ['id'], uniqueKeys: [], foreignKeys: [] } } };
      const ct = { table: 't', reload: 'incremental', sources: [{ table: 't', columns: [], key: ['id'], watermark: 'at', watermarkRule: { zone: 'Europe/Berlin' } }] };
      const margin = async (lo: string) => ((await planWatermarks(c, [ct as never], catalog as never, new Map([['t', lo]]), {})).get('t') as SourcePlan).margin;
      // A bound minutes ago (no change in between): the bare-column bound is the bound's local
      // time, so a run inside a cutover's freeze reads only what was written since, not the last hour.
      const [recent] = (await c.query(`select (now() - interval '10 minutes')::text as lo, now() > '2026-10-25 01:00+00' and now() < '2027-03-28 01:00+00' as winter`)).rows;
      if (recent.winter) expect(await margin(recent.lo)).toBe('00:00:00');
      // Before Berlin's autumn change (2026-10-25 01:00 UTC): an hour.
      expect(await margin('2026-10-25 00:45:00+00')).toBe('01:00:00');
      // Before the spring change (the offset rises, then falls back to where it was): none.
      expect(await margin('2026-03-29 00:30:00+00')).toBe('00:00:00');
    } finally {
      await c.end();
    }
  });

  it('reads max() through the index, a partitioned table too, and never scans a table without one', async () => {
    const url = await freshDatabase('zones');
    await query(url, `
      create table parted (id bigint, day date not null, at timestamp not null, primary key (id, day)) partition by range (day);
      create table parted_a partition of parted for values from ('2000-01-01') to ('2026-12-01');
      create table parted_b partition of parted for values from ('2026-12-01') to ('2100-01-01');
      create index on parted (at);
      create table bare (id bigint primary key, at timestamp not null);
      insert into parted select g, (now() at time zone 'Europe/Berlin')::date - (g % 30), (now() at time zone 'Europe/Berlin') - g * interval '1 minute' from generate_series(1, 20000) g;
      insert into bare select g, now() at time zone 'Europe/Berlin' from generate_series(1, 20000) g;
      analyze`);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const plan = (table: string, zone: string) => ({ table, column: 'at', type: 'timestamp without time zone', kind: 'local', zone, lo: null }) as SourcePlan;
      await c.query('begin');
      // Written in Berlin, declared UTC: refused, from the index alone.
      await expect(checkZones(c, [plan('parted', 'UTC')], {})).rejects.toThrow(/table parted: watermark at holds .* declared zone UTC/);
      // No index on bare.at: not checked, and not read either.
      await checkZones(c, [plan('bare', 'UTC')], {});
      const scans = await c.query(`select relname, seq_scan::int as seq, idx_scan::int as idx from pg_stat_xact_user_tables where relname in ('parted_a', 'parted_b', 'bare') order by 1`);
      expect(scans.rows).toEqual([
        { relname: 'bare', seq: 0, idx: 0 },
        { relname: 'parted_a', seq: 0, idx: expect.any(Number) },
        { relname: 'parted_b', seq: 0, idx: expect.any(Number) },
      ]);
      expect(scans.rows.reduce((a, r) => a + r.idx, 0)).toBeGreaterThan(0);
      await c.query('commit');
      // The session's planner setting is left as it was.
      expect((await c.query(`show enable_seqscan`)).rows[0].enable_seqscan).toBe('on');
      // planWatermarks runs the check itself (sync, plan and the cutover's guardrail call it).
      const catalog = { tables: { parted: { name: 'parted', columns: [{ name: 'at', type: 'timestamp without time zone' }], primaryKey: ['id', 'day'], uniqueKeys: [], foreignKeys: [] } } };
      const ct = { table: 'parted', reload: 'incremental', sources: [{ table: 'parted', columns: [], key: ['id', 'day'], watermark: 'at', watermarkRule: { zone: 'UTC' } }] };
      await expect(planWatermarks(c, [ct as never], catalog as never, new Map(), {})).rejects.toThrow(/declared zone UTC/);
      await expect(planWatermarks(c, [ct as never], catalog as never, new Map(), { zoneCheck: false })).resolves.toBeDefined();
    } finally {
      await c.end();
    }
  });
});
