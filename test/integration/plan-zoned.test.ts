/**
 * plan's rows-to-read on a zoned watermark (`timestamp without time zone` written as
 * Europe/Berlin local time) is what the following sync reads: both bound the column with
 * the same predicate (src/sync/watermark.ts lowerBoundSql), built from the same stored
 * watermark, and the watermark's index answers plan's count.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { query, writeInZone } from '../helpers/pg.ts';
import { makePair, report } from '../helpers/pair.ts';
import { twoVersions } from '../helpers/mappings.ts';
import { rowsToReadSql } from '../../src/plan.ts';
import { planWatermarks, type SourcePlan } from '../../src/sync/watermark.ts';

const schema = `
CREATE TABLE tickets (id bigint PRIMARY KEY, subject text, updated_at timestamp without time zone NOT NULL);
CREATE INDEX tickets_updated_at_idx ON tickets (updated_at);
COMMENT ON COLUMN tickets.updated_at IS 'bluegreen:watermark zone=Europe/Berlin';
`;
// v2 keeps the instants (timestamptz); the zone cast carries them both ways.
const v2 = `
CREATE TABLE tickets (id bigint PRIMARY KEY, subject text, updated_at timestamptz NOT NULL);
CREATE INDEX tickets_updated_at_idx ON tickets (updated_at);
COMMENT ON COLUMN tickets.updated_at IS 'bluegreen:watermark';
`;
const cast = (from: number, to: number) => ({ from, to, tables: { tickets: { from: 'tickets', ops: [{ op: 'cast', from: 'updated_at', zone: 'Europe/Berlin' }] } }, loses: [] });

/** The application: a session in Berlin writing its local time. */
const berlin = (url: string, sql: string) => writeInZone(url, 'Europe/Berlin', sql);

describe('plan on a zoned watermark', () => {
  it('counts the rows the following sync reads', async () => {
    const dir = await twoVersions('plan-zoned', { v1: schema, v2, up: cast(1, 2), down: cast(2, 1) });
    const p = await makePair(1, 2, dir);
    // 2,000 rows written before the first sync, the last 500 of them in the half hour
    // before it (Berlin time): a bound compared with the bare column as if it were UTC
    // would count those again (Berlin is ahead of UTC).
    await berlin(p.blue, `insert into tickets select g, 'old ' || g, localtimestamp - interval '1 year' + g * interval '1 minute' from generate_series(1, 1500) g`);
    await berlin(p.blue, `insert into tickets select g, 'recent ' || g, localtimestamp - (2001 - g) * interval '3 seconds' from generate_series(1501, 2000) g`);
    await p.ok(['sync']);
    // Since: 30 new rows and 20 old ones touched, in Berlin local time.
    await berlin(p.blue, `insert into tickets select g, 'new ' || g, localtimestamp from generate_series(2001, 2030) g`);
    await berlin(p.blue, `update tickets set subject = subject || '!', updated_at = localtimestamp where id <= 20`);
    await query(p.blue, 'analyze tickets');

    const planned = await p.run(['plan', '--from', 'blue', '--to', 'green', '--json']);
    expect(planned.code, planned.stderr).toBe(0);
    const t = report(planned).tables.find((x: { table: string }) => x.table === 'tickets');
    expect(t.mode).toBe('incremental');

    const synced = await p.run(['sync', '--json']);
    expect(synced.code, synced.stderr).toBe(0);
    const read = report(synced).tables.find((x: { table: string }) => x.table === 'tickets').read;
    expect(read).toBeGreaterThanOrEqual(50);
    expect(read).toBeLessThan(2000);
    expect(t.estimatedRowsToRead).toBe(read);
  });

  it("plan's count is answered by the watermark's index, not a scan of the table", async () => {
    const dir = await twoVersions('plan-zoned-idx', { v1: schema, v2, up: cast(1, 2), down: cast(2, 1) });
    const p = await makePair(1, 2, dir);
    await berlin(p.blue, `insert into tickets select g, 'old ' || g, localtimestamp - interval '1 year' + g * interval '1 second' from generate_series(1, 20000) g`);
    await p.ok(['sync']);
    await berlin(p.blue, `insert into tickets select g, 'new ' || g, localtimestamp from generate_series(20001, 20030) g`);
    await query(p.blue, 'analyze tickets');
    const [stored] = await query<{ value: string }>(p.green, `select value from bluegreen.watermarks where table_name = 'tickets'`);
    // The rule plan and sync build for the table, from the stored watermark.
    const catalog = { tables: { tickets: { name: 'tickets', columns: [{ name: 'id', type: 'bigint' }, { name: 'updated_at', type: 'timestamp without time zone' }], primaryKey: ['id'], uniqueKeys: [], foreignKeys: [], watermark: 'updated_at', watermarkRule: { zone: 'Europe/Berlin' } } } };
    const ct = { table: 'tickets', sources: [{ table: 'tickets', key: ['id'] }], reload: 'incremental' };
    const c = new pg.Client({ connectionString: p.blue });
    await c.connect();
    try {
      const rule = (await planWatermarks(c, [ct as never], catalog as never, new Map([['tickets', stored!.value]]), { zoneCheck: false })).get('tickets') as SourcePlan;
      const explain = (await c.query(`explain ${rowsToReadSql(rule)}`)).rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(explain).toMatch(/Index (Only )?Scan using tickets_updated_at_idx|Bitmap Index Scan on tickets_updated_at_idx/);
      expect(explain).not.toMatch(/Seq Scan/);
      expect(Number((await c.query(rowsToReadSql(rule))).rows[0].n)).toBe(30);
    } finally {
      await c.end();
    }
  });
});
