/**
 * Local times a zone's clock changes skip (the spring gap) or show twice (the autumn
 * fold), carried by a zoned cast (`timestamp` in v1 -> `timestamptz` in v2).
 * PostgreSQL reads 02:30 on a spring-forward night in Europe/Berlin as 03:30 and an
 * ambiguous 02:30 in October as the later instant, silently; before "dst" existed, only a
 * rollback verify noticed, and its repair overwrote blue's original.
 *
 * - default `refuse`: sync, verify, import and convert stop before writing anything,
 *   exit 2, one line naming the table, column, key, value and zone, and the op's file
 *   and JSON path;
 * - `shift` with the loss declared: sync converts as PostgreSQL does; verify finds no
 *   difference either way (a rollback verify excludes and lists the lost columns); the
 *   offline convert gives what the live sync wrote, value for value, in four zones
 *   (a 1-hour DST in Europe and America, Lord Howe's 30 minutes, Moscow's changes of
 *   2011 and 2014, which were not DST); a rollback refuses only the earlier instant of a
 *   fold, and takes shifted times back as shifted.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { query } from '../helpers/pg.ts';
import { makePair, report, type Pair } from '../helpers/pair.ts';
import { twoVersions } from '../helpers/mappings.ts';
import { tempDir } from '../helpers/tmp.ts';

const ZONES = { berlin: 'Europe/Berlin', new_york: 'America/New_York', lord_howe: 'Australia/Lord_Howe', moscow: 'Europe/Moscow' } as const;
const COLS = Object.keys(ZONES) as (keyof typeof ZONES)[];

const schema = (type: string) => `
CREATE TABLE visits (
  id bigint PRIMARY KEY,
  note text,
${COLS.map((c) => `  ${c} ${type},`).join('\n')}
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX visits_updated_at ON visits (updated_at);
COMMENT ON COLUMN visits.updated_at IS 'bluegreen:watermark';
`;

/** Per row: a value for each zone's column. */
const ROWS: [number, string, [string | null, string | null, string | null, string | null]][] = [
  [1, 'gap', ['2025-03-30 02:30:00', '2025-03-09 02:30:00', '2025-10-05 02:15:00', '2011-03-27 02:30:00']],
  [2, 'fold', ['2025-10-26 02:30:00', '2025-11-02 01:30:00', '2025-04-06 01:45:00', '2014-10-26 01:30:00']],
  [3, 'just before the gap', ['2025-03-30 01:59:59.999999', '2025-03-09 01:59:59.999999', '2025-10-05 01:59:59.999999', '2011-03-27 01:59:59.999999']],
  [4, 'the end of the gap', ['2025-03-30 03:00:00', '2025-03-09 03:00:00', '2025-10-05 02:30:00', '2011-03-27 03:00:00']],
  [5, 'the start of the fold', ['2025-10-26 02:00:00', '2025-11-02 01:00:00', '2025-04-06 01:30:00', '2014-10-26 01:00:00']],
  [6, 'just after the fold', ['2025-10-26 03:00:00', '2025-11-02 02:00:00', '2025-04-06 02:00:00', '2014-10-26 02:00:00']],
  [7, 'ordinary', ['2025-06-01 12:00:00', '2025-06-01 12:00:00', '2025-06-01 12:00:00', '2025-06-01 12:00:00']],
  [8, 'null', [null, null, null, null]],
  [9, 'infinite', ['infinity', '-infinity', 'infinity', '-infinity']],
];

const castOps = (dst?: 'shift') => COLS.map((c) => ({ op: 'cast', from: c, zone: ZONES[c], ...(dst ? { dst } : {}) }));
const lost = COLS.map((c) => ({ table: 'visits', column: c, why: 'local times in a DST gap move forward' }));

async function pairWith(dst?: 'shift'): Promise<{ p: Pair; dir: string }> {
  const dir = await twoVersions('dst-cast', {
    v1: schema('timestamp without time zone'),
    v2: schema('timestamp with time zone'),
    up: { from: 1, to: 2, tables: { visits: { from: 'visits', ops: castOps(dst) } }, loses: dst ? lost : [] },
    // Down refuses (the default): everything the up cast wrote reads back.
    down: { from: 2, to: 1, tables: { visits: { from: 'visits', ops: castOps() } }, loses: [] },
  });
  const p = await makePair(1, 2, dir);
  const values = ROWS.map((_, i) => `($${i * 6 + 1}::bigint, $${i * 6 + 2}, $${i * 6 + 3}::timestamp, $${i * 6 + 4}::timestamp, $${i * 6 + 5}::timestamp, $${i * 6 + 6}::timestamp)`);
  await query(p.blue, `insert into visits (id, note, ${COLS.join(', ')}) values ${values.join(', ')}`, ROWS.flatMap(([id, note, v]) => [id, note, ...v]));
  return { p, dir };
}

/** Rows of `sql` in a UTC session (timestamptz printed as COPY prints it there). */
async function utc(url: string, sql: string): Promise<Record<string, string | null>[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`set timezone = 'UTC'`);
    return (await c.query({ text: sql, types: { getTypeParser: () => (v: string) => v } })).rows;
  } finally {
    await c.end();
  }
}

const visits = (url: string) => utc(url, `select id::text, ${COLS.join(', ')} from visits order by id`);

/** The one stderr line that names the failure. */
const errorLine = (stderr: string) => stderr.split('\n').find((l) => /table visits, column/.test(l)) ?? stderr;

describe('zoned cast, dst "refuse" (the default)', () => {
  let p: Pair;
  let dump: string;
  beforeAll(async () => {
    ({ p } = await pairWith());
    dump = path.join(await tempDir('dst-dump'), 'v1');
    await p.ok(['export', '--from', 'blue', '--out', dump]);
  });

  it('sync stops before writing, naming table, column, key, value, zone and the op (exit 2)', async () => {
    const r = await p.run(['sync', '--from', 'blue', '--to', 'green']);
    expect(r.code, r.stderr).toBe(2);
    const line = errorLine(r.stderr);
    expect(line).toMatch(/table visits, column berlin, key id=1: 2025-03-30 02:30:00 does not exist in Europe\/Berlin \(DST gap; "dst": "shift" makes it 2025-03-30 03:30:00\) \(value "2025-03-30 02:30:00"\)/);
    expect(r.stderr).toMatch(/up\.json at \/tables\/visits\/ops\/0/);
    expect(await query(p.green, `select count(*)::int as n from visits`)).toEqual([{ n: 0 }]);
    expect(await query(p.green, `select count(*)::int as n from bluegreen.watermarks`).catch(() => [{ n: 0 }])).toEqual([{ n: 0 }]);
  });

  it('a fold time is refused too, once the gap time is gone', async () => {
    await query(p.blue, `update visits set berlin = '2025-06-01 12:00' where id = 1`);
    const r = await p.run(['sync', '--from', 'blue', '--to', 'green']);
    expect(r.code, r.stderr).toBe(2);
    expect(errorLine(r.stderr)).toMatch(/table visits, column berlin, key id=2: 2025-10-26 02:30:00 occurs twice in Europe\/Berlin \(DST fold; "dst": "shift" takes the later instant, 2025-10-26 01:30:00\+00\)/);
    expect(await query(p.green, `select count(*)::int as n from visits`)).toEqual([{ n: 0 }]);
    await query(p.blue, `update visits set berlin = '2025-03-30 02:30' where id = 1`);
  });

  it('verify, import and the offline convert refuse the same row the same way', async () => {
    const v = await p.run(['verify', '--from', 'blue', '--to', 'green']);
    expect(v.code, v.stderr).toBe(2);
    expect(errorLine(v.stderr)).toMatch(/table visits, column berlin, key id=1: 2025-03-30 02:30:00 does not exist in Europe\/Berlin/);

    const i = await p.run(['import', '--to', 'green', '--in', dump]);
    expect(i.code, i.stderr).toBe(2);
    expect(errorLine(i.stderr)).toMatch(/table visits, column berlin, key id=1: 2025-03-30 02:30:00 does not exist in Europe\/Berlin/);
    expect(await query(p.green, `select count(*)::int as n from visits`)).toEqual([{ n: 0 }]);

    const out = path.join(await tempDir('dst-out'), 'v2');
    const c = await p.run(['convert', '--in', dump, '--to-version', '2', '--out', out, '--via', 'blue']);
    expect(c.code, c.stderr).toBe(2);
    expect(errorLine(c.stderr)).toMatch(/table visits, column berlin, key id=1: 2025-03-30 02:30:00 does not exist in Europe\/Berlin/);
  });
});

describe('zoned cast, dst "shift" with the loss declared', () => {
  let p: Pair;
  beforeAll(async () => {
    ({ p } = await pairWith('shift'));
  });

  it('sync converts as PostgreSQL does, verify finds nothing, and the offline convert agrees value for value', async () => {
    await p.ok(['sync', '--from', 'blue', '--to', 'green']);
    const green = await visits(p.green);
    const byId = (id: number) => green.find((r) => r.id === String(id))!;
    // Gap: forward by the gap (1 hour; 30 minutes at Lord Howe). Fold: the later instant.
    expect(byId(1)).toMatchObject({ berlin: '2025-03-30 01:30:00+00', new_york: '2025-03-09 07:30:00+00', lord_howe: '2025-10-04 15:45:00+00', moscow: '2011-03-26 23:30:00+00' });
    expect(byId(2)).toMatchObject({ berlin: '2025-10-26 01:30:00+00', new_york: '2025-11-02 06:30:00+00', lord_howe: '2025-04-05 15:15:00+00', moscow: '2014-10-25 22:30:00+00' });
    expect(byId(9)).toMatchObject({ berlin: 'infinity', new_york: '-infinity' });

    const v = report(await p.ok(['verify', '--from', 'blue', '--to', 'green', '--json']));
    expect(v.tables.find((t: { table: string }) => t.table === 'visits')).toMatchObject({ changed: { count: 0 }, missing: { count: 0 }, extra: { count: 0 } });

    const dump = path.join(await tempDir('dst-dump'), 'v1');
    await p.ok(['export', '--from', 'blue', '--out', dump]);
    const out = path.join(await tempDir('dst-out'), 'v2');
    await p.ok(['convert', '--in', dump, '--to-version', '2', '--out', out, '--via', 'green']);
    const [header, ...lines] = (await readFile(path.join(out, 'visits.csv'), 'utf8')).trim().split('\n');
    const names = header!.split(',');
    const offline = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [names[i], v === '' ? null : v])));
    for (const row of green) {
      const o = offline.find((x) => x.id === row.id)!;
      for (const c of COLS) expect(o[c], `id ${row.id} ${c}`).toBe(row[c]);
    }
  });

  it('a rollback excludes and lists the lost columns, refuses only the earlier instant of a fold, and takes shifted times back as shifted', async () => {
    const back = report(await p.ok(['verify', '--from', 'green', '--to', 'blue', '--json']));
    const t = back.tables.find((x: { table: string }) => x.table === 'visits');
    expect(t).toMatchObject({ changed: { count: 0 }, missing: { count: 0 }, extra: { count: 0 } });
    expect(t.excluded).toEqual(expect.arrayContaining(COLS));

    // Written on green: row 1 touched, row 10 at 02:30 CEST, the first of Berlin's two 02:30s.
    await query(p.green, `update visits set note = 'touched on green', updated_at = now() where id = 1`);
    await query(p.green, `insert into visits (id, note, berlin) values (10, 'earlier fold instant', '2025-10-26 00:30:00+00')`);
    const refused = await p.run(['sync', '--from', 'green', '--to', 'blue', '--force']);
    expect(refused.code, refused.stderr).toBe(2);
    expect(errorLine(refused.stderr)).toMatch(/table visits, column berlin, key id=10: 2025-10-26 00:30:00\+00 is 2025-10-26 02:30:00 in Europe\/Berlin, which occurs twice \(DST fold\) and reads back as 2025-10-26 01:30:00\+00/);
    expect(refused.stderr).toMatch(/down\.json at \/tables\/visits\/ops\/0/);
    expect(await query(p.blue, `select count(*)::int as n from visits where id = 10`)).toEqual([{ n: 0 }]);

    // The later instant reads back; so does everything the up cast wrote.
    await query(p.green, `update visits set berlin = '2025-10-26 01:30:00+00', updated_at = now() where id = 10`);
    await p.ok(['sync', '--from', 'green', '--to', 'blue', '--force']);
    const blue = await visits(p.blue);
    expect(blue.find((r) => r.id === '10')!.berlin).toBe('2025-10-26 02:30:00');
    // Row 1 came back from green: its gap time as shifted (the declared loss).
    expect(blue.find((r) => r.id === '1')!.berlin).toBe('2025-03-30 03:30:00');
    expect(blue.find((r) => r.id === '2')!.berlin).toBe('2025-10-26 02:30:00');
    const again = report(await p.ok(['verify', '--from', 'green', '--to', 'blue', '--json']));
    expect(again.tables.find((x: { table: string }) => x.table === 'visits')).toMatchObject({ changed: { count: 0 }, missing: { count: 0 }, extra: { count: 0 } });
  });
});
