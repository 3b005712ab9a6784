/**
 * freeze/unfreeze on real PostgreSQL, on tables made here (no mapping needed): what the
 * freeze refuses (partitions named directly, writers whose snapshot predates it, an
 * application role that cannot see bluegreen's schema), and that unfreezing never waits
 * behind a reader.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/db/connect.ts';
import { freeze, frozenBy, unfreeze, unfreezeNow } from '../../src/cutover/freeze.ts';
import { adminQuery, freshDatabase, query, urlFor } from '../helpers/pg.ts';

const APP_ROLE = 'bluegreen_test_app';
const APP_PASSWORD = 'app-secret-pw';

let url: string;
let db: string;
beforeAll(async () => {
  url = await freshDatabase('freeze');
  db = new URL(url).pathname.slice(1);
  await query(url, `create table notes (id int primary key, body text)`);
  // A partitioned table two levels deep: events -> events_2024 (leaf), events_2025 -> events_2025_eu (leaf).
  await query(
    url,
    `create table events (id int, at date not null, region text not null) partition by range (at);
     create table events_2024 partition of events for values from ('2024-01-01') to ('2025-01-01');
     create table events_2025 partition of events for values from ('2025-01-01') to ('2026-01-01') partition by list (region);
     create table events_2025_eu partition of events_2025 for values in ('eu')`,
  );
  try {
    await adminQuery(`create role ${APP_ROLE} login nosuperuser password '${APP_PASSWORD}'`);
  } catch (err) {
    if (!/already exists/.test((err as Error).message)) throw err;
  }
  await query(url, `grant insert, select, update, delete on notes to ${APP_ROLE}`);
});

async function withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await connect(url);
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const frozenError = /frozen by a cutover/;

describe('freeze', () => {
  afterAll(async () => {
    await withClient((c) => unfreezeNow(c));
  });

  it('M6: a write straight into a partition is refused while frozen, at any depth', async () => {
    await withClient((c) => freeze(c, ['events'], { by: 'test', waitMs: 2_000 }));
    try {
      await expect(query(url, `insert into events values (1, '2024-05-01', 'us')`)).rejects.toThrow(frozenError);
      await expect(query(url, `insert into events_2024 values (2, '2024-05-01', 'us')`)).rejects.toThrow(frozenError);
      await expect(query(url, `insert into events_2025 values (3, '2025-05-01', 'eu')`)).rejects.toThrow(frozenError);
      await expect(query(url, `insert into events_2025_eu values (4, '2025-05-01', 'eu')`)).rejects.toThrow(frozenError);
      await expect(query(url, `truncate events_2025_eu`)).rejects.toThrow(frozenError);
    } finally {
      await withClient((c) => unfreezeNow(c));
    }
    await query(url, `insert into events_2025_eu values (5, '2025-05-01', 'eu')`);
    expect(await query(url, `select id from events order by id`)).toEqual([{ id: 5 }]);
  });

  it('M5: unfreezing lifts the freeze at once while a reader holds the table open, and the freeze still stops writes', async () => {
    await withClient((c) => freeze(c, ['notes'], { by: 'test', waitMs: 2_000 }));
    // A long report: an open transaction that has read the table (ACCESS SHARE until it ends).
    const reader = new pg.Client({ connectionString: url });
    await reader.connect();
    try {
      await reader.query('begin');
      await reader.query('select count(*) from notes');
      const t0 = Date.now();
      const r = await Promise.race([
        withClient((c) => unfreezeNow(c)),
        new Promise<'hung'>((res) => setTimeout(() => res('hung'), 10_000)),
      ]);
      expect(r).not.toBe('hung');
      expect(Date.now() - t0).toBeLessThan(5_000);
      // The clean-up could not take the table from the reader: the trigger stays, inert.
      expect(r !== 'hung' && r.inert).toEqual(['notes']);
      await query(url, `insert into notes values (1, 'writable while the report runs')`);
      // An inert trigger left behind does not weaken the next freeze.
      await withClient((c) => freeze(c, ['notes'], { by: 'test', waitMs: 2_000 }));
      await expect(query(url, `insert into notes values (2, 'no')`)).rejects.toThrow(frozenError);
    } finally {
      await reader.query('rollback');
      await reader.end();
    }
    const r = await withClient((c) => unfreezeNow(c));
    expect(r.dropped).toContain('notes');
    expect(await query(url, `select count(*)::int as n from pg_trigger where tgname = 'bluegreen_freeze'`)).toEqual([{ n: 0 }]);
  });

  it('waits for a writer in flight even when an inert trigger is already there', async () => {
    await withClient(async (c) => {
      await freeze(c, ['notes'], { by: 'test', waitMs: 2_000 });
      await c.query('begin');
      await unfreeze(c); // lifted, triggers left in place
      await c.query('commit');
    });
    const writer = new pg.Client({ connectionString: url });
    await writer.connect();
    try {
      await writer.query('begin');
      await writer.query(`insert into notes values (10, 'in flight')`);
      await expect(withClient((c) => freeze(c, ['notes'], { by: 'test', waitMs: 300 }))).rejects.toThrow(/writers kept its tables locked .*pid \d+/);
      expect(await withClient((c) => frozenBy(c))).toBeUndefined();
    } finally {
      await writer.query('commit');
      await writer.end();
    }
    await withClient((c) => unfreezeNow(c));
  });

  it('refuses a REPEATABLE READ writer whose snapshot predates the freeze', async () => {
    for (const inertTriggerFirst of [false, true]) {
      if (inertTriggerFirst) {
        await withClient(async (c) => {
          await freeze(c, ['notes'], { by: 'test', waitMs: 2_000 });
          await c.query('begin');
          await unfreeze(c);
          await c.query('commit');
        });
      }
      const rr = new pg.Client({ connectionString: url });
      await rr.connect();
      try {
        await rr.query('begin isolation level repeatable read');
        await rr.query('select count(*) from notes'); // snapshot taken before the freeze
        await withClient((c) => freeze(c, ['notes'], { by: 'test', waitMs: 2_000 }));
        await expect(rr.query(`insert into notes values (20, 'old snapshot')`)).rejects.toThrow(/serializ|frozen/);
      } finally {
        await rr.query('rollback');
        await rr.end();
      }
      await withClient((c) => unfreezeNow(c));
    }
    expect(await query(url, `select count(*)::int as n from notes where id = 20`)).toEqual([{ n: 0 }]);
  });

  it('works for an application role that cannot see the bluegreen schema', async () => {
    const app = urlFor(db, APP_ROLE, APP_PASSWORD);
    await withClient((c) => freeze(c, ['notes'], { by: 'test', waitMs: 2_000 }));
    // Refused by privilege first: a non-owner's write grants are revoked while frozen.
    await expect(query(app, `insert into notes values (30, 'app')`)).rejects.toThrow(/permission denied for table notes/);
    // Lifted but still present (a reader keeps the clean-up away): the app writes normally.
    await withClient(async (c) => {
      await c.query('begin');
      await unfreeze(c);
      await c.query('commit');
    });
    await query(app, `insert into notes values (31, 'app')`);
    await query(app, `update notes set body = 'app again' where id = 31`);
    await withClient((c) => unfreezeNow(c));
  });
});
