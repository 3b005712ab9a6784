/**
 * An incremental run's apply and check must read what changed, not the table.
 * Regression: at 5M users with 1% changed, the upsert's UPDATE and the `changed` check
 * each hash-joined the 50k staged rows to a sequential scan of all 5M target rows (the
 * planner prices 50k index probes above one scan), so an incremental sync cost a scan of
 * every table it touched. Asserted from the target's own scan counters for the
 * transaction (pg_stat_xact_user_tables), not from time.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from '../helpers/pg.ts';
import { upsert } from '../../src/db/apply.ts';
import { checkChanged } from '../../src/sync/check.ts';
import { KEY_PROBE_SHARE } from '../../src/db/key-probes.ts';

const ROWS = 200_000;
let client: pg.Client;

beforeAll(async () => {
  client = new pg.Client({ connectionString: await freshDatabase('probes') });
  await client.connect();
  await client.query(`create table big (id int primary key, v text not null, n int)`);
  await client.query(`insert into big select g, 'row ' || g, g % 97 from generate_series(1, ${ROWS}) g`);
  await client.query(`analyze big`);
});
afterAll(async () => {
  await client?.end();
});

const ct = { table: 'big', key: ['id'], columns: ['id', 'v', 'n'] };

/** Stages `share` of big's rows (every k-th, changed), applies and checks them, and returns big's scans in that transaction. */
async function run(share: number): Promise<{ seqScans: number; updated: number; clean: boolean }> {
  const every = Math.round(1 / share);
  // Staged before the transaction whose scans are counted (making it reads big whole).
  await client.query(`create temp table stage as select id, v || ' changed' as v, n from big where id % ${every} = 0`);
  const scans = async () =>
    Number((await client.query<{ n: string }>(`select coalesce(seq_scan, 0) as n from pg_stat_xact_user_tables where relname = 'big'`)).rows[0]?.n ?? 0);
  await client.query('begin');
  try {
    // Counters not yet flushed (the staging's scan) show here too: count the difference.
    const before = await scans();
    const applied = await upsert(client, ct, 'stage');
    const check = await checkChanged(client, [{ ct, stage: 'stage', whole: false }]);
    return { seqScans: (await scans()) - before, updated: applied.updated, clean: check.clean };
  } finally {
    await client.query('rollback');
    await client.query('drop table stage');
  }
}

describe('incremental apply and check on a large table', () => {
  it('1% changed: update, insert and check probe the key, and never scan the table', async () => {
    const r = await run(0.01);
    expect(r.updated).toBe(ROWS / 100);
    expect(r.clean).toBe(true);
    expect(r.seqScans).toBe(0);
  });

  it('past the threshold (a reload-sized change) the planner is left to choose, and still applies exactly', async () => {
    const r = await run(0.25);
    expect(KEY_PROBE_SHARE).toBeLessThan(0.25);
    expect(r.updated).toBe(ROWS / 4);
    expect(r.clean).toBe(true);
  });
});
