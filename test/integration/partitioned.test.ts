/**
 * Partitioned tables with foreign keys: a partitioned parent referencing another
 * partitioned table and a plain one. The bulk load of an empty green drops and rebuilds
 * only the parents' constraints and indexes (partitions inherit theirs), a green that
 * already holds rows takes the row-by-row path, and a partition created on blue after the
 * first sync is part of its parent's data: read through the parent, created on green by
 * the run when green's partitioning mirrors blue's, else a one-line refusal naming the
 * table and the row's partition key, with the statement to run.
 */
import { describe, expect, it } from 'vitest';
import { query } from '../helpers/pg.ts';
import { makePair, report, type Pair } from '../helpers/pair.ts';
import { twoVersions } from '../helpers/mappings.ts';

/** v1 and v2 differ only in accounts' name column (so a cutover has two versions). */
const schema = (nameCol: string) => `
CREATE TABLE accounts (id bigint PRIMARY KEY, ${nameCol} text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
COMMENT ON COLUMN accounts.updated_at IS 'bluegreen:watermark';
CREATE TABLE tickets (
  id bigint NOT NULL, opened date NOT NULL, account_id bigint NOT NULL REFERENCES accounts (id),
  title text, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (id, opened)
) PARTITION BY RANGE (opened);
CREATE TABLE tickets_2025_07 PARTITION OF tickets FOR VALUES FROM ('2025-07-01') TO ('2025-08-01');
CREATE TABLE tickets_2025_08 PARTITION OF tickets FOR VALUES FROM ('2025-08-01') TO ('2025-09-01');
CREATE INDEX tickets_title ON tickets (title);
COMMENT ON COLUMN tickets.updated_at IS 'bluegreen:watermark';
CREATE TABLE ticket_events (
  id bigint NOT NULL, at date NOT NULL, ticket_id bigint NOT NULL, ticket_opened date NOT NULL,
  account_id bigint REFERENCES accounts (id), body text, updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, at),
  CONSTRAINT ticket_events_ticket_id_fkey FOREIGN KEY (ticket_id, ticket_opened) REFERENCES tickets (id, opened)
) PARTITION BY RANGE (at);
CREATE TABLE ticket_events_2025_07 PARTITION OF ticket_events FOR VALUES FROM ('2025-07-01') TO ('2025-08-01');
CREATE TABLE ticket_events_2025_08 PARTITION OF ticket_events FOR VALUES FROM ('2025-08-01') TO ('2025-09-01');
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, ticket_opened);
COMMENT ON COLUMN ticket_events.updated_at IS 'bluegreen:watermark';
`;

const mapping = (from: number, to: number, a: string, b: string) => ({
  from,
  to,
  tables: { accounts: { from: 'accounts', ops: [{ op: 'rename', from: a, to: b }] } },
  loses: [],
});

async function pair(): Promise<Pair> {
  const dir = await twoVersions('partitioned', { v1: schema('name'), v2: schema('display_name'), up: mapping(1, 2, 'name', 'display_name'), down: mapping(2, 1, 'display_name', 'name') });
  return makePair(1, 2, dir);
}

async function fill(url: string, from: number, to: number, month = '2025-07'): Promise<void> {
  await query(url, `insert into accounts (id, name) select g, 'a' || g from generate_series($1::int, $2::int) g on conflict do nothing`, [from, to]);
  await query(url, `insert into tickets (id, opened, account_id, title) select g, '${month}-01'::date + g % 28, g, 't' || g from generate_series($1::int, $2::int) g`, [from, to]);
  await query(
    url,
    `insert into ticket_events (id, at, ticket_id, ticket_opened, account_id, body)
     select g, '${month}-01'::date + g % 28, g, '${month}-01'::date + g % 28, case when g % 2 = 0 then g end, 'e' || g from generate_series($1::int, $2::int) g`,
    [from, to],
  );
}

const sync = async (p: Pair, from = 'blue', to = 'green') => report(await p.ok(['sync', '--from', from, '--to', to, '--json']));

/** Every constraint and index of the partition trees, as the catalog has them, with validity. */
async function shape(url: string) {
  return query(
    url,
    `select c.conrelid::regclass::text as rel, c.conname as name, c.contype as type, c.convalidated as valid, c.conparentid <> 0 as inherited
       from pg_constraint c join pg_class r on r.oid = c.conrelid join pg_namespace n on n.oid = r.relnamespace
      where n.nspname = current_schema() and c.contype in ('p', 'f', 'u')
     union all
     select i.indrelid::regclass::text, i.indexrelid::regclass::text, 'i', i.indisvalid, x.inhparent is not null
       from pg_index i join pg_class r on r.oid = i.indrelid join pg_namespace n on n.oid = r.relnamespace
       left join pg_inherits x on x.inhrelid = i.indexrelid
      where n.nspname = current_schema()
      order by 1, 2, 3`,
  );
}

async function rows(url: string, t: string) {
  return query(url, `select id::int, t::text as r from ${t} t order by 1, 2`);
}

describe('partitioned tables with foreign keys', () => {
  it('a first full sync into an empty green bulk-loads them and rebuilds only the parents constraints; partitions keep theirs', async () => {
    const p = await pair();
    const before = await shape(p.green);
    await fill(p.blue, 1, 200);
    await fill(p.blue, 201, 300, '2025-08');
    const r = await sync(p);
    expect(r.tables.map((t: { mode: string }) => t.mode)).toContain('bulk');
    // A full run verifies against its own snapshot.
    expect(r.verify).toMatchObject({ clean: true });
    for (const t of ['tickets', 'ticket_events']) expect(await rows(p.green, t)).toEqual(await rows(p.blue, t));
    // The same constraints and indexes, on every partition, valid and attached to the parents'.
    expect(await shape(p.green)).toEqual(before);
    // The rebuilt foreign keys hold: a row pointing nowhere is refused on a partition.
    await expect(query(p.green, `insert into ticket_events (id, at, ticket_id, ticket_opened) values (9999, '2025-07-02', 9999, '2025-07-02')`)).rejects.toThrow(/ticket_events_ticket_id_fkey/);
    const v = await p.run(['verify', '--from', 'blue', '--to', 'green', '--json']);
    expect(v.code, v.stderr).toBe(0);
  });

  it('a partition blue has and an empty green lacks is created on green in the run, and the bulk load goes on', async () => {
    const p = await pair();
    await query(p.blue, `CREATE TABLE tickets_2025_09 PARTITION OF tickets FOR VALUES FROM ('2025-09-01') TO ('2025-10-01')`);
    await query(p.blue, `CREATE TABLE ticket_events_2025_09 PARTITION OF ticket_events FOR VALUES FROM ('2025-09-01') TO ('2025-10-01')`);
    await fill(p.blue, 1, 20, '2025-09');
    const run = await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json']);
    const r = report(run);
    expect(r.tables.map((t: { mode: string }) => t.mode)).toContain('bulk');
    expect(r.partitions).toEqual([
      { table: 'tickets', partition: 'tickets_2025_09', bounds: "FOR VALUES FROM ('2025-09-01') TO ('2025-10-01')", from: 'tickets_2025_09' },
      { table: 'ticket_events', partition: 'ticket_events_2025_09', bounds: "FOR VALUES FROM ('2025-09-01') TO ('2025-10-01')", from: 'ticket_events_2025_09' },
    ]);
    expect(run.stderr).toMatch(/tickets: creating partition tickets_2025_09 FOR VALUES FROM \('2025-09-01'\) TO \('2025-10-01'\) on the target in this run's transaction/);
    for (const t of ['tickets', 'ticket_events']) expect(await rows(p.green, t)).toEqual(await rows(p.blue, t));
    // The new partitions carry their parents' keys, indexes and foreign keys, valid and attached.
    expect(await shape(p.green)).toEqual(await shape(p.blue));
    // Once there, they are green's: the next run creates nothing.
    expect(report(await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json'])).partitions).toBeUndefined();
  });

  it('a new partition green cannot mirror (partitioned itself) is refused before anything commits, with the statement to run', async () => {
    const p = await pair();
    await fill(p.blue, 1, 50);
    await sync(p);
    await query(p.blue, `CREATE TABLE tickets_2025_09 PARTITION OF tickets FOR VALUES FROM ('2025-09-01') TO ('2025-10-01') PARTITION BY RANGE (id)`);
    await query(p.blue, `CREATE TABLE tickets_2025_09_a PARTITION OF tickets_2025_09 FOR VALUES FROM (MINVALUE) TO (MAXVALUE)`);
    await query(p.blue, `CREATE TABLE ticket_events_2025_09 PARTITION OF ticket_events FOR VALUES FROM ('2025-09-01') TO ('2025-10-01')`);
    await fill(p.blue, 101, 110, '2025-09');
    await query(p.blue, `update accounts set name = 'renamed', updated_at = now() where id = 1`);
    const refused = await p.run(['sync', '--from', 'blue', '--to', 'green']);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(/table tickets: no partition of it on the target takes the row with \(opened\) = \(2025-09-\d\d\)/);
    expect(refused.stderr).toContain(`CREATE TABLE tickets_2025_09 PARTITION OF tickets FOR VALUES FROM ('2025-09-01') TO ('2025-10-01') PARTITION BY RANGE (id)`);
    // Nothing committed: not the account's new name, not the partition green could mirror.
    expect(await query(p.green, `select display_name from accounts where id = 1`)).toEqual([{ display_name: 'a1' }]);
    expect(await query(p.green, `select to_regclass('ticket_events_2025_09') is null as none`)).toEqual([{ none: true }]);
    await query(p.green, `CREATE TABLE tickets_2025_09 PARTITION OF tickets FOR VALUES FROM ('2025-09-01') TO ('2025-10-01')`);
    await fill(p.blue, 111, 112, '2025-09');
    const r = await sync(p);
    expect(r.partitions).toEqual([expect.objectContaining({ table: 'ticket_events', partition: 'ticket_events_2025_09' })]);
    for (const t of ['tickets', 'ticket_events']) expect(await rows(p.green, t)).toEqual(await rows(p.blue, t));
  });

  it('a full sync into a green that already holds rows, a partition added on blue afterwards, verify and a cutover', async () => {
    const p = await pair();
    await fill(p.blue, 1, 100);
    // Green holds some of them already, one with stale data, and one blue does not have.
    await query(p.green, `insert into accounts (id, display_name) select g, 'a' || g from generate_series(1, 10) g`);
    await query(p.green, `insert into tickets (id, opened, account_id, title) select g, '2025-07-01'::date + g % 28, g, 'stale' from generate_series(1, 10) g`);
    const first = await sync(p);
    expect(first.tables.map((t: { mode: string }) => t.mode)).not.toContain('bulk');
    expect(await rows(p.green, 'tickets')).toEqual(await rows(p.blue, 'tickets'));

    // A new month: blue gets its partitions after the first sync, with rows.
    await query(p.blue, `CREATE TABLE tickets_2025_09 PARTITION OF tickets FOR VALUES FROM ('2025-09-01') TO ('2025-10-01')`);
    await query(p.blue, `CREATE TABLE ticket_events_2025_09 PARTITION OF ticket_events FOR VALUES FROM ('2025-09-01') TO ('2025-10-01')`);
    await fill(p.blue, 101, 150, '2025-09');
    await query(p.blue, `update tickets set title = 'changed', updated_at = now() where id in (3, 120)`);
    // Green has no partition for them yet: the run creates them, in its transaction.
    const inc = await sync(p);
    expect(inc.partitions.map((x: { partition: string }) => x.partition)).toEqual(['tickets_2025_09', 'ticket_events_2025_09']);
    // Detection ignores partitions: green is still at v2, and the new month syncs incrementally.
    expect(inc.mode).toBe('incremental');
    for (const t of ['tickets', 'ticket_events']) expect(await rows(p.green, t)).toEqual(await rows(p.blue, t));
    // The rows of the new month are in green's partition of that month, under blue's name.
    expect(await query(p.green, `select count(*)::int as n from ticket_events_2025_09`)).toEqual([{ n: 50 }]);
    const v = await p.run(['verify', '--from', 'blue', '--to', 'green', '--json']);
    expect(v.code, v.stderr).toBe(0);
    expect(report(v).clean).toBe(true);

    await query(p.blue, `update ticket_events set body = 'last', updated_at = now() where id = 140`);
    const cut = await p.run(['cutover', '--from', 'blue', '--to', 'green', '--json']);
    expect(cut.code, cut.stderr).toBe(0);
    expect(await query(p.green, `select body from ticket_events where id = 140`)).toEqual([{ body: 'last' }]);
    // Green takes writes on the new partition after the cutover, and they sync back.
    await query(p.green, `insert into tickets (id, opened, account_id, title) values (500, '2025-09-15', 1, 'on green')`);
    const back = await sync(p, 'green', 'blue');
    expect(back.mode).toBe('incremental');
    expect(await query(p.blue, `select title from tickets where id = 500`)).toEqual([{ title: 'on green' }]);
  });
});
