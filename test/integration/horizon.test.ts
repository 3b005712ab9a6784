/**
 * The horizon's two reads (pg_stat_activity, then pg_locks) against sessions that start,
 * end or begin a transaction exactly between them: a busy server does this all the time,
 * and each case once held a watermark back for nothing (or, the other way, must never let
 * a real open transaction go unbounded).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery, freshDatabase, query, urlFor, twoPhaseCommit } from '../helpers/pg.ts';
import { readHorizon, type Horizon } from '../../src/sync/horizon.ts';
import { createLogger } from '../../src/log.ts';

const quiet = createLogger({ format: 'json', level: 'error', write: () => {} });
let url: string;
let db: string;
const clients: pg.Client[] = [];

async function session(u: string, app: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: u, application_name: app });
  await c.connect();
  clients.push(c);
  return c;
}

/** A login role with its own password; `memberOfOwner`: the owner may see its sessions' details. */
async function role(name: string, opts: { visibleToOwner?: boolean; set?: string } = {}): Promise<string> {
  await adminQuery(`do $$ begin if not exists (select 1 from pg_roles where rolname = '${name}') then create role ${name} login password 'h'; end if; end $$`).catch((err) => {
    if (!/already exists|duplicate key/.test((err as Error).message)) throw err;
  });
  if (opts.visibleToOwner) await adminQuery(`grant ${name} to bluegreen_owner`);
  if (opts.set) await adminQuery(`alter role ${name} set ${opts.set}`);
  await query(url, `grant usage on schema public to ${name}; grant select, update on t to ${name}`);
  return urlFor(db, name, 'h');
}

async function horizon(between?: () => Promise<void>, previous?: Horizon['sample']): Promise<Horizon> {
  const c = await session(url, 'horizon reader');
  try {
    return await readHorizon(c, 'src', quiet, undefined, previous, between);
  } finally {
    clients.splice(clients.indexOf(c), 1);
    await c.end();
  }
}

beforeAll(async () => {
  url = await freshDatabase('horizon');
  db = new URL(url).pathname.slice(1);
  await query(url, `create table t (id int primary key, v int); insert into t select g, 0 from generate_series(1, 10) g`);
});

afterAll(async () => {
  for (const c of clients.splice(0)) await c.end().catch(() => {});
});

describe('horizon: sessions between the two reads', () => {
  it('a session of another role that connects and opens a transaction between the reads began after the sample: not hidden', async () => {
    const otherUrl = await role('bg_hz_other');
    let writer: pg.Client | undefined;
    const h = await horizon(async () => {
      writer = await session(otherUrl, 'hz late writer');
      await writer.query('begin');
      await writer.query('update t set v = v + 1 where id = 1');
    });
    expect(h.hiddenSessions).toBe(0);
    expect(h.heldBackBy).toBeUndefined();
    expect(h.value).toBe(h.at);
    // The next run sees it in both reads, details hidden: bounded by this run's sample.
    const next = await horizon(undefined, h.sample);
    expect(next.hiddenSessions).toBe(1);
    expect(next.heldBackBy).toMatch(/hz late writer.*begun after the previous run's sample/);
    await writer!.query('rollback');
  });

  it('an idle session of the same role that begins a transaction between the reads: not hidden, and its start is after the sample', async () => {
    const writer = await session(url, 'hz idle writer');
    const h = await horizon(async () => {
      await writer.query('begin');
      await writer.query('update t set v = v + 1 where id = 2');
    });
    expect(h.hiddenSessions).toBe(0);
    expect(h.heldBackBy).toBeUndefined();
    const next = await horizon();
    expect(next.heldBackBy).toMatch(/hz idle writer.*open since/);
    await writer.query('rollback');
  });

  it('a transaction open before the reads bounds the horizon by its start, even if a new one replaces it between the reads', async () => {
    const writer = await session(url, 'hz busy writer');
    await writer.query('begin');
    const start = (await writer.query<{ s: string }>(`select now()::text as s`)).rows[0]!.s;
    await writer.query('update t set v = v + 1 where id = 3');
    const h = await horizon(async () => {
      await writer.query('commit');
      await writer.query('begin');
      await writer.query('update t set v = v + 1 where id = 3');
    });
    expect(h.heldBackBy).toMatch(/hz busy writer.*open since/);
    const same = await query<{ eq: boolean }>(url, `select $1::timestamptz = $2::timestamptz as eq`, [h.value, start]);
    expect(same[0]!.eq).toBe(true);
    await writer.query('rollback');
  });

  it('a visible session that reports no transaction start (track_activities off) still counts as hidden: an open transaction is never dropped', async () => {
    const quietUrl = await role('bg_hz_untracked', { visibleToOwner: true, set: 'track_activities = off' });
    const writer = await session(quietUrl, 'hz untracked');
    await writer.query('begin');
    await writer.query('update t set v = v + 1 where id = 4');
    const h = await horizon();
    expect(h.hiddenSessions).toBe(1);
    expect(h.guessed).toBe(1);
    expect(h.heldBackBy).toMatch(/hz untracked.*held back 15 minutes/);
    await writer.query('rollback');
  });
});

describe('horizon: prepared (two-phase) transactions', () => {
  /** A transaction on `url` prepared as `gid`; its session ends, as XA coordinators' often do. */
  async function prepare(gid: string, id: number): Promise<void> {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('begin');
    await c.query(`update t set v = v + 1 where id = ${id}`);
    await c.query(`prepare transaction '${gid}'`);
    await c.end();
  }
  const prepared: string[] = [];
  afterAll(async () => {
    for (const gid of prepared.splice(0)) await query(url, `rollback prepared '${gid}'`).catch(() => {});
  });

  it('a transaction seen with its start and prepared between the reads keeps that start; prepared after a sample that saw it open, it is bounded by that sample', async (ctx) => {
    if (!(await twoPhaseCommit(url))) ctx.skip('this server has max_prepared_transactions = 0 (two-phase commit off)');
    // Seen open (same role: start shown), then PREPAREd between reads 1 and 2.
    const c = await session(url, 'hz xa session');
    await c.query('begin');
    const start = (await c.query<{ s: string }>(`select now()::text as s`)).rows[0]!.s;
    await c.query('update t set v = v + 1 where id = 7');
    const gidC = `hz-c-${Date.now()}`;
    const h = await horizon(async () => {
      await c.query(`prepare transaction '${gidC}'`);
      prepared.push(gidC);
    });
    expect(h.heldBackBy).toContain(`prepared transaction '${gidC}' open since`);
    expect((await query<{ eq: boolean }>(url, `select $1::timestamptz = $2::timestamptz as eq`, [h.value, start]))[0]!.eq).toBe(true);
    await query(url, `commit prepared '${gidC}'`);
    prepared.splice(prepared.indexOf(gidC), 1);

    // Open at a sample (start shown, so not stored), PREPAREd after it: bounded by that sample's horizon.
    await c.query('begin');
    const start2 = (await c.query<{ s: string }>(`select now()::text as s`)).rows[0]!.s;
    await c.query('update t set v = v + 1 where id = 8');
    const seen = await horizon();
    expect(seen.heldBackBy).toMatch(/hz xa session.*open since/);
    const gidD = `hz-d-${Date.now()}`;
    await c.query(`prepare transaction '${gidD}'`);
    prepared.push(gidD);
    const next = await horizon(undefined, seen.sample);
    expect(next.heldBackBy).toMatch(new RegExp(`prepared transaction '${gidD}'.*or bounded by its horizon`));
    expect((await query<{ ok: boolean }>(url, `select $1::timestamptz <= $2::timestamptz as ok`, [next.value, start2]))[0]!.ok).toBe(true);
    await query(url, `commit prepared '${gidD}'`);
    prepared.splice(prepared.indexOf(gidD), 1);
  });

  it('bounds a prepared transaction: its PREPARE less the fallback at the first sample, then the earlier of the previous sample and its horizon, then that bound kept', async (ctx) => {
    if (!(await twoPhaseCommit(url))) ctx.skip('this server has max_prepared_transactions = 0 (two-phase commit off)');
    const gidA = `hz-a-${Date.now()}`;
    await prepare(gidA, 5);
    prepared.push(gidA);
    const first = await horizon();
    expect(first.guessed).toBe(1);
    expect(first.heldBackBy).toContain(`prepared transaction '${gidA}'`);
    expect(first.heldBackBy).toContain('held back 15 minutes before its PREPARE');
    const exact = await query<{ ok: boolean }>(url, `select $1::timestamptz = (select prepared - interval '15 minutes' from pg_prepared_xacts where gid = $2) as ok`, [first.value, gidA]);
    expect(exact[0]!.ok).toBe(true);
    // The warning says what to do about it: no privilege shows a prepared transaction's start.
    const said: string[] = [];
    const c = await session(url, 'horizon reader');
    await readHorizon(c, 'src', createLogger({ format: 'json', level: 'warn', write: (l) => said.push(l) }));
    expect(said.join('')).toMatch(/1 of them prepared: see pg_prepared_xacts, and COMMIT PREPARED or ROLLBACK PREPARED any orphan/);

    // Kept: the same transaction has the same bound at the next sample.
    const second = await horizon(undefined, first.sample);
    expect(second.guessed).toBe(0);
    expect(second.value).toBe(first.value);
    expect(second.heldBackBy).toMatch(/open since before/);

    // A second one, prepared after `second`: bounded by the earlier of second's sample (less a second) and second's horizon.
    await query(url, `commit prepared '${gidA}'`);
    prepared.splice(prepared.indexOf(gidA), 1);
    const gidB = `hz-b-${Date.now()}`;
    await prepare(gidB, 6);
    prepared.push(gidB);
    const third = await horizon(undefined, second.sample);
    expect(third.heldBackBy).toContain(`prepared transaction '${gidB}'`);
    expect(third.heldBackBy).toMatch(/begun after the previous run's sample .* or bounded by its horizon/);
    expect(third.value).toBe(second.value); // second's horizon was the earlier bound (gidA's)
    await query(url, `commit prepared '${gidB}'`);
    prepared.splice(prepared.indexOf(gidB), 1);
  });
});
