/**
 * A full sync takes the source side of its verify from its own COPY stream
 * (src/verify/stream-hash.ts), and hashes any table the stream could not while the target
 * rebuilds (startSourceSums). Either total must be exactly what verify computes itself:
 * the same snapshot, differences still named by key.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { makePair, MAPPINGS, report } from '../helpers/pair.ts';
import { twoVersions } from '../helpers/mappings.ts';
import { silentLogger, type Logger } from '../../src/log.ts';
import { startSourceSums, verify, type VerifyOptions } from '../../src/verify/verify.ts';

async function query(url: string, sql: string): Promise<Record<string, unknown>[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

describe('verify with the source side computed ahead', () => {
  it('a full sync verifies clean through the sums computed ahead', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '300']);
    const r = report(await p.ok(['sync', '--json']));
    expect(r.mode).toBe('full');
    expect(r.verify.clean).toBe(true);
    expect(r.verify.tables.find((t: { table: string }) => t.table === 'users').sourceRows).toBe(300);
    // Every table's source side came from the sync's own COPY: blue was read once.
    expect(r.verify.tables.map((t: { sourceHashed: string }) => t.sourceHashed)).toEqual(['stream', 'stream', 'stream', 'stream']);
  });

  it('with --jobs 2 each job hashes what it copies, and a difference planted after is still found', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '300']);
    const r = report(await p.ok(['sync', '--json', '--jobs', '2']));
    expect(r.verify.clean).toBe(true);
    expect(r.verify.tables.every((t: { sourceHashed: string }) => t.sourceHashed === 'stream')).toBe(true);
    await query(p.green, `update users set email = 'planted' where id = 11`);
    const v = report(await p.run(['verify', '--json']));
    expect(v.tables.find((t: { table: string }) => t.table === 'users').changed.keys).toEqual(['id=11']);
  });

  it('the sums computed ahead equal verify\'s own, and a planted difference is still named by key', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '300']);
    await p.ok(['sync']);
    const snap = new pg.Client({ connectionString: p.blue });
    await snap.connect();
    try {
      await snap.query('begin isolation level repeatable read read only');
      const snapshot = (await snap.query<{ s: string }>('select pg_export_snapshot() as s')).rows[0]!.s;
      const opts: VerifyOptions = {
        from: { name: 'blue', url: p.blue, version: 1 },
        to: { name: 'green', url: p.green, version: 2 },
        mappingsDir: MAPPINGS,
        logger: silentLogger,
        sourceSnapshot: snapshot,
        record: false,
      };
      // A write after the snapshot is seen by neither side's sums.
      await query(p.blue, `update users set email = 'after the snapshot' where id = 9`);
      const ahead = startSourceSums(opts);
      const sums = await ahead.result;
      expect([...sums.keys()].sort()).toEqual(['roles', 'user_roles', 'user_settings', 'users']);
      // Clean as of the snapshot, though blue moved on since.
      expect((await verify({ ...opts, sourceSums: ahead.result })).clean).toBe(true);
      await query(p.green, `update users set email = 'planted' where id = 7`);
      const own = await verify(opts);
      const fromAhead = await verify({ ...opts, sourceSums: ahead.result });
      const strip = (v: typeof own) => v.tables.map(({ ms: _ms, ...t }) => t);
      expect(strip(fromAhead)).toEqual(strip(own));
      expect(fromAhead.clean).toBe(false);
      const users = fromAhead.tables.find((t) => t.table === 'users')!;
      expect(users.changed.keys).toEqual(['id=7']);
      expect(users.missing.count + users.extra.count).toBe(0);
      // A wrong total from the stream (a defect) is contradicted by the buckets, which are
      // the truth: the table is compared by the source's own rows, and the warning says so.
      await query(p.green, `update users set email = (select email from users where id = 7) where id = 7`);
      const warnings: string[] = [];
      const logger: Logger = { ...silentLogger, warn: (m: string) => void warnings.push(m) };
      const wrong = Promise.resolve(new Map([['roles', { rows: 13, sum: '12345', from: 'stream' as const }]]));
      const v = await verify({ ...opts, logger, sourceSums: wrong });
      const roles = v.tables.find((t) => t.table === 'roles')!;
      expect([roles.sourceRows, roles.targetRows, roles.sourceHashed]).toEqual([12, 12, 'query']);
      expect(warnings.join('\n')).toMatch(/roles: the source total taken from the sync's COPY stream \(13 rows\) disagrees/);
    } finally {
      await snap.query('rollback').catch(() => {});
      await snap.end();
    }
  });

  it('--jobs splits a big table into ranges whose sums add up, and never splits a query table', async () => {
    const T = `CREATE TABLE tickets (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, title text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
COMMENT ON COLUMN tickets.updated_at IS 'bluegreen:watermark';`;
    const dir = await twoVersions('ranks', {
      v1: T,
      v2: `${T}\nCREATE TABLE ticket_ranks (id bigint PRIMARY KEY, pos bigint NOT NULL);`,
      up: { from: 1, to: 2, tables: { ticket_ranks: { query: 'select id, row_number() over (order by id) as pos from tickets', key: ['id'] } }, loses: [] },
      down: { from: 2, to: 1, loses: [{ table: 'ticket_ranks', why: 'derived from tickets' }] },
    });
    const p = await makePair(1, 2, dir);
    // Past 1024 blocks: tickets is staged in two block ranges, one per job.
    await query(p.blue, `insert into tickets (title) select repeat('x', 200) from generate_series(1, 60000)`);
    await query(p.blue, 'analyze tickets');
    const s = report(await p.ok(['sync', '--json', '--jobs', '2']));
    expect(s.verify.clean).toBe(true);
    expect(s.verify.tables.map((t: { table: string; sourceHashed: string; sourceRows: number }) => [t.table, t.sourceHashed, t.sourceRows])).toEqual([
      ['ticket_ranks', 'stream', 60000],
      ['tickets', 'stream', 60000],
    ]);
    // The window ran over the whole table once: every rank is its id.
    expect(await query(p.green, 'select count(*)::int as n from ticket_ranks where pos <> id')).toEqual([{ n: 0 }]);
    await query(p.green, `update tickets set title = 'planted' where id = 30001`);
    const v = report(await p.run(['verify', '--json']));
    expect(v.tables.find((t: { table: string }) => t.table === 'tickets').changed.keys).toEqual(['id=30001']);
  }, 300_000);
});
