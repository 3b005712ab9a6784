/**
 * The gap and fold tests of a zoned cast (src/mapping/ops/cast.ts, zoneChecks) held
 * against every real clock change PostgreSQL knows for zones with unusual ones, from
 * 1850 to 2040: the 30-minute DST of Australia/Lord_Howe, the 2-hour DST of
 * Antarctica/Troll, the skipped day of Pacific/Apia (2011), the negative DST of
 * Europe/Dublin, Europe/Moscow's changes that were not DST, local mean time offsets in
 * seconds (Europe/Amsterdam until 1937), America/Sitka's day-long fold of 1867.
 *
 * The oracle is independent of the tests' reasoning: around each change T (found to the
 * second), every offset the zone uses within 30 hours of T is a candidate, and a local
 * time e has as many readings as there are distinct instants e - offset whose local
 * time is e: none is a gap, two or more a fold.
 */
import { describe, expect, it } from 'vitest';
import { zoneChecks } from '../../src/mapping/ops/cast.ts';
import pg from 'pg';
import { freshDatabase } from '../helpers/pg.ts';

/** Rows of `sql` in a session whose TimeZone is UTC (offsets are then plain to read). */
async function utcRows<T>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    // jit off: the estimates of these generated series are huge, and compiling costs more than running.
    await c.query(`set timezone = 'UTC'`);
    await c.query('set jit = off');
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}

const ZONES = [
  'Europe/Berlin',
  'America/New_York',
  'Australia/Lord_Howe',
  'Antarctica/Troll',
  'Pacific/Apia',
  'Europe/Dublin',
  'Europe/Moscow',
  'Europe/Amsterdam',
  'America/Sitka',
  'America/Sao_Paulo',
  'Asia/Kolkata',
];

describe('zoned cast: gap and fold tests on every real clock change', () => {
  it('agree with counting the readings of each local time', async () => {
    const url = await freshDatabase('dst_transitions');
    for (const zone of ZONES) {
      const q = zoneChecks(zone);
      const z = `'${zone}'`;
      const off = (x: string) => `((${x}) at time zone ${z} - (${x}) at time zone 'UTC')`;
      const step = (from: string, unit: string, n: number) =>
        `(select ${from} + k * interval '1 ${unit}' as s from generate_series(0, ${n - 1}) k where ${off(`${from} + k * interval '1 ${unit}'`)} <> ${off(`${from} + (k + 1) * interval '1 ${unit}'`)})`;
      // Two queries, so the planner sees how few changes there are (one query's estimates
      // run into billions of rows, and its hash tables are sized for them).
      const changes = await utcRows<{ t: string }>(
        url,
        `with days as materialized (
           select d from generate_series('1850-01-01'::timestamptz, '2040-01-01', interval '24 hours') d
           where ${off('d')} <> ${off(`d + interval '24 hours'`)}
         ), hours as materialized (select hh.s from days, lateral ${step('days.d', 'hour', 24)} hh
         ), minutes as materialized (select mm.s from hours, lateral ${step('hours.s', 'minute', 60)} mm
         )
         select (ss.s + interval '1 second')::text as t from minutes, lateral ${step('minutes.s', 'second', 60)} ss`,
      );
      const judged = await utcRows<{ t: string; e: string; readings: number; gap: boolean; fold: boolean; shifted: boolean }>(
        url,
        `with changes as (select unnest($1::timestamptz[]) as t
         ), locals as (
           select c.t, (c.t at time zone 'UTC') + o.o + dd.d as e
           from changes c,
                lateral (values (${off(`c.t - interval '1 second'`)}), (${off('c.t')})) o(o),
                lateral (select k * interval '15 minutes' as d from generate_series(-8, 8) k
                         union all values (interval '-1 second'), (interval '1 second')) dd
         )
         select t::text, e::text, ${q.gap('e', q.local('e'))} as gap, ${q.fold('e', q.local('e'))} and not ${q.gap('e', q.local('e'))} as fold, ${q.local(q.local('e'))} > e as shifted,
           (select count(distinct v) from (
              select (l.e - o) at time zone 'UTC' as v
              from (select distinct ${off(`l.t + j * interval '1 hour'`)} as o from generate_series(-30, 30) j) x
            ) c where (c.v at time zone ${z}) = l.e)::int as readings
         from locals l`,
        [changes.map((c) => c.t)],
      );
      expect(judged.length, zone).toBeGreaterThan(0);
      const wrong = judged.filter((r) => r.gap !== (r.readings === 0) || r.fold !== r.readings >= 2 || (r.gap && !r.shifted));
      expect(wrong.slice(0, 5), `${zone}: ${wrong.length} of ${judged.length} local times misjudged`).toEqual([]);
      // Each zone has both kinds (Kolkata: its last change, 1945, was a fold).
      if (zone !== 'Asia/Kolkata') expect(judged.some((r) => r.gap), zone).toBe(true);
      expect(judged.some((r) => r.fold), zone).toBe(true);
    }
  });

  it('the instant test refuses exactly the earlier instant of a fold', async () => {
    const url = await freshDatabase('dst_instants');
    const q = zoneChecks('Australia/Lord_Howe');
    // 2025-04-06 02:00 local (+11) becomes 01:30 (+10:30): 01:30-02:00 happens twice.
    const rows = await utcRows<{ x: string; refused: boolean }>(
      url,
      `select x::text, ${q.unreadable('x', q.local('x'))} as refused from unnest(array[
         '2025-04-05 14:29:59+00', '2025-04-05 14:30:00+00', '2025-04-05 14:59:59+00',
         '2025-04-05 15:00:00+00', '2025-04-05 15:29:59+00', '2025-04-05 15:30:00+00'
       ]::timestamptz[]) x`,
    );
    expect(rows.map((r) => r.refused)).toEqual([false, true, true, false, false, false]);
  });
});
