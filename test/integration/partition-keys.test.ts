/**
 * Partitioned tables whose key goes through a cast: ticket_events is partitioned by
 * created_at and keyed by (id, created_at); v1 has it as `timestamp` (UTC by convention),
 * v2 as `timestamptz`, a `cast` with zone UTC between them. Rows are matched through the
 * cast both ways: sync (bulk into an empty green, row by row into one holding rows),
 * deletes, verify, repair, cutover and the sync back. tickets (partitioned) is referenced
 * by ticket_events (partitioned) and by watchers (a plain table). A key without the
 * partition column is refused by check with the table, the column and the fix.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, query } from '../helpers/pg.ts';
import { runCli } from '../helpers/cli.ts';
import { makePair, report, type Pair } from '../helpers/pair.ts';
import { tempDir } from '../helpers/tmp.ts';
import { twoVersions } from '../helpers/mappings.ts';

/** v1: created_at is timestamp; v2: timestamptz. Partition bounds follow the type. */
const schema = (ts: string, bound: (d: string) => string) => `
CREATE TABLE tickets (
  id bigint GENERATED ALWAYS AS IDENTITY, opened date NOT NULL, title text, updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, opened)
) PARTITION BY RANGE (opened);
CREATE TABLE tickets_2025_07 PARTITION OF tickets FOR VALUES FROM ('2025-07-01') TO ('2025-08-01');
CREATE TABLE tickets_2025_08 PARTITION OF tickets FOR VALUES FROM ('2025-08-01') TO ('2025-09-01');
COMMENT ON COLUMN tickets.updated_at IS 'bluegreen:watermark';
CREATE TABLE ticket_events (
  id bigint GENERATED ALWAYS AS IDENTITY, created_at ${ts} NOT NULL, ticket_id bigint NOT NULL, ticket_opened date NOT NULL,
  body text, updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, created_at),
  FOREIGN KEY (ticket_id, ticket_opened) REFERENCES tickets (id, opened)
) PARTITION BY RANGE (created_at);
CREATE TABLE ticket_events_2025_07 PARTITION OF ticket_events FOR VALUES FROM (${bound('2025-07-01')}) TO (${bound('2025-08-01')});
CREATE TABLE ticket_events_2025_08 PARTITION OF ticket_events FOR VALUES FROM (${bound('2025-08-01')}) TO (${bound('2025-09-01')});
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, ticket_opened);
COMMENT ON COLUMN ticket_events.updated_at IS 'bluegreen:watermark';
CREATE TABLE watchers (
  id serial PRIMARY KEY, ticket_id bigint NOT NULL, ticket_opened date NOT NULL, who text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (ticket_id, ticket_opened) REFERENCES tickets (id, opened)
);
COMMENT ON COLUMN watchers.updated_at IS 'bluegreen:watermark';
`;
const v1 = schema('timestamp', (d) => `'${d} 00:00:00'`);
const v2 = schema('timestamptz', (d) => `'${d} 00:00:00+00'`);

const cast = (from: number, to: number, extra: object = {}) => ({
  from,
  to,
  tables: { ticket_events: { from: 'ticket_events', ops: [{ op: 'cast', from: 'created_at', zone: 'UTC' }], ...extra } },
  loses: [],
});

const mappings = (extra: object = {}) => twoVersions('partition-keys', { v1, v2, up: cast(1, 2, extra), down: cast(2, 1, extra) });

/** tickets 1..n in July, three events each (ids follow), a watcher on every other ticket. */
async function fill(url: string, n: number): Promise<void> {
  await query(url, `insert into tickets (opened, title) select '2025-07-01'::date + g % 28, 't' || g from generate_series(1, $1::int) g`, [n]);
  await query(
    url,
    `insert into ticket_events (created_at, ticket_id, ticket_opened, body)
     select t.opened + make_interval(hours => e, mins => t.id::int % 60), t.id, t.opened, 'e' || t.id || '.' || e
       from tickets t, generate_series(1, 3) e order by t.id, e`,
  );
  await query(url, `insert into watchers (ticket_id, ticket_opened, who) select id, opened, 'w' || id from tickets where id % 2 = 0`);
}

/** A table's rows in v1 terms (created_at as UTC wall-clock text), comparable across versions. */
async function events(url: string) {
  const tz = (await query(url, `select format_type(atttypid, atttypmod) as t from pg_attribute where attrelid = 'ticket_events'::regclass and attname = 'created_at'`))[0]!.t;
  const at = tz === 'timestamp with time zone' ? `(created_at at time zone 'UTC')` : 'created_at';
  return query(url, `select id::int, ${at}::text as at, ticket_id::int, body from ticket_events order by id, 2`);
}

const sync = async (p: Pair, from = 'blue', to = 'green') => report(await p.ok(['sync', '--from', from, '--to', to, '--json']));

let catalogUrl: string;
beforeAll(async () => {
  catalogUrl = await freshDatabase('catalogs');
});

describe('partitioned table keyed through a cast of its partition column', () => {
  it('check accepts the cast key and refuses a key without the partition column, naming table, column and fix', async () => {
    // Fixtures round-trip through the cast key both ways (v1 -> v2 -> v1 and back).
    const withFixtures = await mappings();
    await mkdir(path.join(withFixtures, 'fixtures', 'v1'), { recursive: true });
    await writeFile(path.join(withFixtures, 'fixtures', 'v1', 'tickets.csv'), 'id,opened,title,updated_at\n1,2025-07-02,a,2025-07-02 10:00:00+00\n');
    await writeFile(
      path.join(withFixtures, 'fixtures', 'v1', 'ticket_events.csv'),
      'id,created_at,ticket_id,ticket_opened,body,updated_at\n1,2025-07-02 10:00:00,1,2025-07-02,x,2025-07-02 10:00:00+00\n2,2025-07-31 23:59:59.999999,1,2025-07-02,,2025-07-02 10:00:00+00\n',
    );
    const ok = await runCli(['--mappings', withFixtures, 'check', '--catalog-url', catalogUrl, '--catalog-cache', await tempDir('cache'), '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(report(ok)).toMatchObject({ ok: true, fixtures: { kind: 'files', rows: { tickets: 1, ticket_events: 2 } } });

    const dir = await mappings({ key: ['id'] });
    const r = await runCli(['--mappings', dir, 'check', '--catalog-url', catalogUrl, '--catalog-cache', await tempDir('cache')]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toMatch(/table ticket_events is partitioned by RANGE \(created_at\): key \(id\) lacks the partition column created_at/);
    expect(r.stdout).toMatch(/"key": \["id", "created_at"\]/);
  });

  it('a cast key in a zone with daylight saving time: one-to-one unless "dst": "shift", a gap time refused before anything is written', async () => {
    // Green's partitions hold the same Berlin months as blue's, as instants.
    const berlin = (d: string) => `'${d} 00:00:00 Europe/Berlin'`;
    const zoned = (dst: object = {}) => ({ from: 'ticket_events', ops: [{ op: 'cast', from: 'created_at', zone: 'Europe/Berlin', ...dst }] });
    const shifted = await twoVersions('partition-keys-dst-shift', {
      v1,
      v2: schema('timestamptz', berlin),
      up: { ...cast(1, 2), tables: { ticket_events: zoned({ dst: 'shift' }) }, loses: [{ table: 'ticket_events', column: 'created_at', why: 'gap times move' }] },
      down: { ...cast(2, 1), tables: { ticket_events: zoned({ dst: 'shift' }) }, loses: [{ table: 'ticket_events', column: 'created_at', why: 'fold instants meet' }] },
    });
    const refused = await runCli(['--mappings', shifted, 'check', '--catalog-url', catalogUrl, '--catalog-cache', await tempDir('cache')]);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stdout).toMatch(/key column ticket_events.created_at must be carried unchanged/);

    const dir = await twoVersions('partition-keys-dst', { v1, v2: schema('timestamptz', berlin), up: { ...cast(1, 2), tables: { ticket_events: zoned() } }, down: { ...cast(2, 1), tables: { ticket_events: zoned() } } });
    const checked = await runCli(['--mappings', dir, 'check', '--catalog-url', catalogUrl, '--catalog-cache', await tempDir('cache')]);
    expect(checked.code, checked.stdout + checked.stderr).toBe(0);

    const p = await makePair(1, 2, dir);
    await fill(p.blue, 20);
    const local = (url: string, tz: boolean) =>
      query(url, `select id::int, ${tz ? `(created_at at time zone 'Europe/Berlin')` : 'created_at'}::text as at, body from ticket_events order by id`);
    expect((await sync(p)).verify.clean).toBe(true);
    expect(await local(p.green, true)).toEqual(await local(p.blue, false));
    await query(p.blue, `update ticket_events set body = 'changed', updated_at = now() where id = 5`);
    await query(p.blue, `delete from ticket_events where id = 7`);
    const inc = await sync(p);
    expect(inc.tables.find((t: { table: string }) => t.table === 'ticket_events')).toMatchObject({ updated: 1, deleted: 1 });
    expect(await local(p.green, true)).toEqual(await local(p.blue, false));
    expect((await p.run(['verify', '--from', 'blue', '--to', 'green'])).code).toBe(0);

    // A March partition on blue and a local time of the spring-forward gap in it: refused,
    // naming the value; green gains neither the row nor the partition.
    await query(p.blue, `create table ticket_events_2025_03 partition of ticket_events for values from ('2025-03-01') to ('2025-04-01')`);
    await query(p.blue, `insert into ticket_events (created_at, ticket_id, ticket_opened, body) values ('2025-03-30 02:30', 1, (select opened from tickets where id = 1), 'gap')`);
    const gap = await p.run(['sync', '--from', 'blue', '--to', 'green']);
    expect(gap.code, gap.stderr).toBe(2);
    expect(gap.stderr).toMatch(/2025-03-30 02:30:00 does not exist in Europe\/Berlin/);
    expect(await query(p.green, `select to_regclass('ticket_events_2025_03') is null as none`)).toEqual([{ none: true }]);
    expect(await local(p.green, true)).toEqual((await local(p.blue, false)).filter((r) => r.body !== 'gap'));
  });

  it('bulk sync into an empty green, deletes and updates, verify, repair, cutover and the sync back, all through the cast', async () => {
    const p = await makePair(1, 2, await mappings());
    await fill(p.blue, 40);
    const first = await sync(p);
    expect(first.tables.find((t: { table: string }) => t.table === 'ticket_events').mode).toBe('bulk');
    expect(first.verify.clean).toBe(true);
    expect(await events(p.green)).toEqual(await events(p.blue));
    // The rows sit in green's partitions by their instant.
    expect(await query(p.green, `select count(*)::int as n from ticket_events_2025_07`)).toEqual([{ n: 120 }]);

    // Changes on blue: an update, a delete (found by comparing keys through the cast), an insert.
    await query(p.blue, `update ticket_events set body = 'changed', updated_at = now() where id = 5`);
    await query(p.blue, `delete from ticket_events where id in (7, 8)`);
    await query(p.blue, `insert into ticket_events (created_at, ticket_id, ticket_opened, body) values ('2025-08-03 10:00', 1, (select opened from tickets where id = 1), 'august')`);
    const inc = await sync(p);
    expect(inc.mode).toBe('incremental');
    const te = inc.tables.find((t: { table: string }) => t.table === 'ticket_events');
    expect(te).toMatchObject({ inserted: 1, updated: 1, deleted: 2 });
    expect(await events(p.green)).toEqual(await events(p.blue));
    // Run again: nothing changes.
    const again = await sync(p);
    expect(again.tables.find((t: { table: string }) => t.table === 'ticket_events')).toMatchObject({ inserted: 0, updated: 0, deleted: 0 });

    // Green drifts behind bluegreen's back, straight into a partition: verify names the keys
    // in green's terms (counting every partition's rows), repair fixes exactly those.
    await query(p.green, `update ticket_events_2025_07 set body = 'drift' where id = 10`);
    await query(p.green, `delete from ticket_events where id = 11`);
    await query(p.green, `insert into ticket_events_2025_08 (id, created_at, ticket_id, ticket_opened, body) overriding system value values (9000, '2025-08-20 00:00+00', 1, (select opened from tickets where id = 1), 'extra')`);
    const v = await p.run(['verify', '--from', 'blue', '--to', 'green', '--json']);
    expect(v.code, v.stderr).toBe(3);
    const vt = report(v).tables.find((t: { table: string }) => t.table === 'ticket_events');
    expect(vt.targetRows).toBe(vt.sourceRows);
    expect(vt.changed.keys).toEqual([expect.stringMatching(/^\(id, created_at\)=\(10,"2025-07-\d\d \d\d:\d\d:00\+00"\)$/)]);
    expect(vt.missing.count).toBe(1);
    expect(vt.extra.keys).toEqual(['(id, created_at)=(9000,"2025-08-20 00:00:00+00")']);
    const rep = await p.run(['sync', '--repair', '--from', 'blue', '--to', 'green', '--json']);
    expect(rep.code, rep.stderr).toBe(0);
    expect(await events(p.green)).toEqual(await events(p.blue));
    expect((await p.run(['verify', '--from', 'blue', '--to', 'green'])).code).toBe(0);

    // Cutover, then green takes writes (identity past every synced key) and they flow back to v1.
    await query(p.blue, `update ticket_events set body = 'last', updated_at = now() where id = 20`);
    const cut = await p.run(['cutover', '--from', 'blue', '--to', 'green', '--json']);
    expect(cut.code, cut.stderr).toBe(0);
    // Blue stays frozen: a write naming a partition directly is refused like one through the parent.
    await expect(query(p.blue, `insert into ticket_events_2025_08 (created_at, ticket_id, ticket_opened) values ('2025-08-05', 1, (select opened from tickets where id = 1))`)).rejects.toThrow(/frozen/);
    await expect(query(p.blue, `delete from ticket_events_2025_07 where id = 1`)).rejects.toThrow(/frozen/);
    await query(p.green, `insert into ticket_events (created_at, ticket_id, ticket_opened, body) values ('2025-08-21 12:30+00', 2, (select opened from tickets where id = 2), 'on green')`);
    await query(p.green, `delete from ticket_events where id = 21`);
    await query(p.green, `update ticket_events set body = 'green edit', updated_at = now() where id = 22`);
    const back = await sync(p, 'green', 'blue');
    expect(back.mode).toBe('incremental');
    expect(await events(p.blue)).toEqual(await events(p.green));
    expect(await query(p.blue, `select created_at::text as at from ticket_events where body = 'on green'`)).toEqual([{ at: '2025-08-21 12:30:00' }]);
  });

  it('full sync into a green that already holds rows: matched through the cast, stale rows fixed, extra rows deleted; captured deletes projected through the cast', async () => {
    const p = await makePair(1, 2, await mappings());
    await fill(p.blue, 20);
    // Green holds some tickets and events already: one stale, one blue lacks.
    await query(p.green, `insert into tickets (id, opened, title) overriding system value select id, opened, title from (values (1, '2025-07-02'::date, 't1'), (2, '2025-07-03'::date, 't2')) v(id, opened, title)`);
    const e1 = (await query(p.blue, `select created_at::text as at, ticket_opened::text as o from ticket_events where id = 1`))[0]!;
    await query(p.green, `insert into ticket_events (id, created_at, ticket_id, ticket_opened, body) overriding system value values (1, $1::timestamp at time zone 'UTC', 1, $2, 'stale'), (500, '2025-07-09 00:00+00', 1, $2, 'not on blue')`, [e1.at, e1.o]);
    const r = await sync(p);
    expect(r.tables.map((t: { mode: string }) => t.mode)).not.toContain('bulk');
    expect(r.verify.clean).toBe(true);
    expect(await events(p.green)).toEqual(await events(p.blue));
    expect(await query(p.green, `select count(*)::int as n from watchers`)).toEqual([{ n: 10 }]);

    // Captured deletes (a trigger on the parent, cloned onto every partition) are projected
    // through the cast to green's keys.
    await p.ok(['capture', 'enable', '--env', 'blue']);
    await sync(p); // capture covers the runs whose lower bound follows its start
    await query(p.blue, `delete from ticket_events where id in (4, 5, 6)`);
    const inc = await sync(p);
    expect(inc.tables.find((t: { table: string }) => t.table === 'ticket_events')).toMatchObject({ deletes: 'captured', deleted: 3 });
    expect(await events(p.green)).toEqual(await events(p.blue));
  });

  it('a new month on blue is created on green with its bounds converted through the cast, and one on green after the cutover back on blue', async () => {
    const p = await makePair(1, 2, await mappings());
    await fill(p.blue, 10);
    await sync(p);
    await query(p.blue, `CREATE TABLE ticket_events_2025_09 PARTITION OF ticket_events FOR VALUES FROM ('2025-09-01 00:00') TO ('2025-10-01 00:00')`);
    await query(p.blue, `insert into ticket_events (created_at, ticket_id, ticket_opened, body) select '2025-09-01'::timestamp + make_interval(hours => id::int), id, opened, 'sept' from tickets`);
    // plan says so first, and creates nothing.
    const planned = report(await p.ok(['plan', '--from', 'blue', '--to', 'green', '--json']));
    expect(planned.partitions).toEqual([expect.objectContaining({ partition: 'ticket_events_2025_09', bounds: "FOR VALUES FROM ('2025-09-01 00:00:00+00') TO ('2025-10-01 00:00:00+00')" })]);
    expect((await p.ok(['plan', '--from', 'blue', '--to', 'green'])).stdout).toContain(
      "new partition ticket_events_2025_09 of ticket_events FOR VALUES FROM ('2025-09-01 00:00:00+00') TO ('2025-10-01 00:00:00+00'): the sync creates it",
    );
    expect(await query(p.green, `select to_regclass('ticket_events_2025_09') is null as none`)).toEqual([{ none: true }]);
    const r = await sync(p);
    expect(r.partitions).toEqual([
      { table: 'ticket_events', partition: 'ticket_events_2025_09', bounds: "FOR VALUES FROM ('2025-09-01 00:00:00+00') TO ('2025-10-01 00:00:00+00')", from: 'ticket_events_2025_09' },
    ]);
    expect(await query(p.green, `select pg_get_expr(relpartbound, oid) as b from pg_class where relname = 'ticket_events_2025_09'`)).toEqual([
      { b: "FOR VALUES FROM ('2025-09-01 00:00:00+00') TO ('2025-10-01 00:00:00+00')" },
    ]);
    expect(await query(p.green, `select count(*)::int as n from ticket_events_2025_09`)).toEqual([{ n: 10 }]);
    expect(await events(p.green)).toEqual(await events(p.blue));

    await p.ok(['cutover', '--from', 'blue', '--to', 'green', '--json']);
    await query(p.green, `CREATE TABLE ticket_events_2025_10 PARTITION OF ticket_events FOR VALUES FROM ('2025-10-01 00:00+00') TO ('2025-11-01 00:00+00')`);
    await query(p.green, `insert into ticket_events (created_at, ticket_id, ticket_opened, body) select '2025-10-31 23:30+00', id, opened, 'oct' from tickets where id = 1`);
    const back = await sync(p, 'green', 'blue');
    expect(back.partitions).toEqual([
      { table: 'ticket_events', partition: 'ticket_events_2025_10', bounds: "FOR VALUES FROM ('2025-10-01 00:00:00') TO ('2025-11-01 00:00:00')", from: 'ticket_events_2025_10' },
    ]);
    expect(await query(p.blue, `select created_at::text as at from ticket_events_2025_10`)).toEqual([{ at: '2025-10-31 23:30:00' }]);
    expect(await events(p.blue)).toEqual(await events(p.green));
  });
});
