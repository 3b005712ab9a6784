/**
 * cutover and rollback on real PostgreSQL, under live writes: every acknowledged write
 * reaches the target; a timed-out cutover leaves the source serving and unchanged; the
 * target's sequences never collide; a rollback after writes on green converges.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { query, twoPhaseCommit } from '../helpers/pg.ts';
import { makePair, MAPPINGS, report, type Pair } from '../helpers/pair.ts';
import { collect, startCli, type CliResult } from '../helpers/cli.ts';

/** An application writer on blue: inserts and updates until told to stop, counting acks. */
function writer(url: string, id: number) {
  const acked: string[] = [];
  const refused: string[] = [];
  let stop = false;
  const done = (async () => {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {});
    await c.connect();
    for (let i = 0; !stop; i++) {
      const login = `w${id}-${i}`;
      try {
        await c.query(`insert into users (username, full_name) values ($1, 'Writer ' || $1)`, [login]);
        acked.push(login);
        if (i % 5 === 0) await c.query(`update users set email = $1 where username = $2`, [`${login}@x`, login]);
      } catch (err) {
        refused.push(`${login}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await c.end();
  })();
  return { acked, refused, stop: async () => ((stop = true), await done) };
}


/** Polls `check` until it returns true, failing after `ms`. */
async function waitFor(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A cutover run in the background, so a test can interrupt it; killed after `killAfterMs` if it hangs. */
function startCutover(p: Pair, args: string[], killAfterMs = 60_000): { child: ChildProcess; done: Promise<CliResult> } {
  const child = startCli(['--mappings', MAPPINGS, 'cutover', ...args], { BLUE_URL: p.blue, GREEN_URL: p.green });
  const hang = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  const done = collect(child).finally(() => clearTimeout(hang));
  return { child, done };
}

/** True once blue carries an active freeze. */
async function blueFrozen(p: Pair): Promise<boolean> {
  const [t] = await query<{ ok: boolean }>(p.blue, `select to_regclass('bluegreen.freeze') is not null as ok`);
  if (!t!.ok) return false;
  return (await query(p.blue, `select 1 from bluegreen.freeze where active`)).length > 0;
}

/** True once a session named like `app` waits for a lock on `url` (on `relation` if given). */
async function waitingOnLock(url: string, app: string, relation?: string): Promise<boolean> {
  const rows = await query(
    url,
    `select 1 from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where not l.granted and a.datname = current_database() and a.application_name like $1 and ($2::text is null or l.relation = to_regclass($2))`,
    [app, relation ?? null],
  );
  return rows.length > 0;
}

/** A session holding a lock until released. */
async function holdLock(url: string, sql: string): Promise<{ release: () => Promise<void>; granted: Promise<unknown> }> {
  const c = new pg.Client({ connectionString: url, application_name: 'test blocker' });
  c.on('error', () => {});
  await c.connect();
  await c.query('begin');
  const granted = c.query(sql);
  granted.catch(() => {});
  return {
    granted,
    release: async () => {
      await granted.catch(() => {});
      await c.query('rollback').catch(() => {});
      await c.end().catch(() => {});
    },
  };
}

const frozenOn = async (url: string) => (await query(url, `select 1 from bluegreen.freeze where active`).catch(() => [])).length > 0;

describe('cutover', () => {
  it('loses no acknowledged write from several concurrent writers, and leaves blue read-only', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '500']);
    await p.ok(['sync']);
    const writers = [1, 2, 3, 4].map((i) => writer(p.blue, i));
    await new Promise((r) => setTimeout(r, 500));
    await p.ok(['sync']); // the "near-current" sync cron would run
    const r = await p.run(['cutover', '--from', 'blue', '--to', 'green', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = report(r);
    expect(rep.ok).toBe(true);
    // Every row was verified before the freeze (against that sync's own snapshot, under
    // live writes), and what the final sync read was checked while frozen.
    expect(rep.verifiedBeforeFreeze.verify.clean).toBe(true);
    expect(rep.sync.check.clean).toBe(true);
    // Writers keep trying for a while after the cutover: all refused now.
    await new Promise((res) => setTimeout(res, 300));
    for (const w of writers) await w.stop();
    const acked = writers.flatMap((w) => w.acked);
    expect(acked.length).toBeGreaterThan(20);
    expect(writers.flatMap((w) => w.refused).some((m) => m.includes('frozen by a cutover'))).toBe(true);
    const onGreen = new Set((await query<{ login: string }>(p.green, `select login from users`)).map((x) => x.login));
    const lost = acked.filter((l) => !onGreen.has(l));
    expect(lost).toEqual([]);
    // Updates made before the freeze arrived too (converted to v2).
    const blueEmails = await query<{ username: string; email: string }>(p.blue, `select username, email from users where username like 'w%' and email is not null order by 1`);
    const greenEmails = await query<{ username: string; email: string }>(p.green, `select login as username, email from users where login like 'w%' and email is not null order by 1`);
    expect(greenEmails).toEqual(blueEmails);
    // Blue now refuses the application's writes.
    await expect(query(p.blue, `insert into users (username) values ('late')`)).rejects.toThrow(/frozen by a cutover/);
    // And a plain sync from the frozen side is refused with the right direction named.
    const back = await p.run(['sync', '--from', 'blue', '--to', 'green']);
    expect(back.code).toBe(2);
    expect(back.stderr).toContain('data now flows green -> blue');
  });

  it('an insert on green after cutover does not collide with imported keys', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '200']);
    await p.ok(['sync']);
    await p.ok(['cutover']);
    const [maxBlue] = await query<{ m: string }>(p.blue, `select max(id)::text as m from users`);
    const [row] = await query<{ id: string }>(p.green, `insert into users (login) values ('first-on-green') returning id::text`);
    expect(BigInt(row!.id)).toBeGreaterThan(BigInt(maxBlue!.m));
    const [role] = await query<{ id: string }>(p.green, `insert into roles (name) values ('green-role') returning id::text`);
    expect(Number(role!.id)).toBe(13);
  });

  it('refuses on guardrails and changes nothing when green was never synced', async () => {
    const p = await makePair(1, 2);
    await query(p.blue, `insert into users (username) values ('a')`);
    const r = await p.run(['cutover', '--json']);
    expect(r.code).toBe(1);
    const rep = report(r);
    expect(rep.guardrails.filter((g: { ok: boolean }) => !g.ok).map((g: { name: string }) => g.name)).toEqual(['lag', 'last verify']);
    await query(p.blue, `insert into users (username) values ('still writable')`);
    expect(await query(p.green, `select count(*)::int as n from users`)).toEqual([{ n: 0 }]);
  });

  it('a cutover that times out leaves blue writable and green unchanged', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '200']);
    await p.ok(['sync']);
    await query(p.blue, `update users set email = 'changed before cutover' where id = 3`);
    const before = await query(p.green, `select t::text from users t order by id`);
    // Something on green holds a table: the final sync cannot take its locks in time.
    const blocker = new pg.Client({ connectionString: p.green });
    await blocker.connect();
    await blocker.query('begin');
    // SHARE: the final sync's writes wait for it; reading the catalog (version detection
    // deparses CHECK constraints, which opens the table) does not.
    await blocker.query('lock table user_settings in share mode');
    const t0 = Date.now();
    const r = await p.run(['cutover', '--timeout', '3', '--json']);
    expect(Date.now() - t0).toBeLessThan(30_000);
    await blocker.query('rollback');
    await blocker.end();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unfrozen and serving/);
    await query(p.blue, `insert into users (username) values ('writable again')`);
    expect(await query(p.blue, `select count(*)::int as n from pg_trigger where tgname = 'bluegreen_freeze'`)).toEqual([{ n: 0 }]);
    expect(await query(p.green, `select t::text from users t order by id`)).toEqual(before);
  });

  it('a prepared transaction holding a table on blue: the refusal names it and says how to resolve it; nothing changed', async (ctx) => {
    const p = await makePair(1, 2);
    if (!(await twoPhaseCommit(p.blue))) ctx.skip('this server has max_prepared_transactions = 0 (two-phase commit off)');
    await p.ok(['seed', '--to', 'blue', '--rows', '100']);
    await p.ok(['sync']);
    const gid = `bg-cutover-xa-${Date.now()}`;
    const xa = new pg.Client({ connectionString: p.blue });
    await xa.connect();
    await xa.query('begin');
    await xa.query(`update users set email = 'xa' where id = 5`);
    await xa.query(`prepare transaction '${gid}'`);
    await xa.end();
    try {
      const r = await p.run(['cutover', '--timeout', '4', '--json']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`'${gid}'`);
      expect(r.stderr).toMatch(/COMMIT PREPARED or ROLLBACK PREPARED/);
      expect(await blueFrozen(p)).toBe(false);
    } finally {
      await query(p.blue, `rollback prepared '${gid}'`);
    }
    await query(p.blue, `insert into users (username) values ('still writable')`);
  });

  it('rolls back: writes on green flow to blue at v1, then cutover green -> blue, verify clean', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '300']);
    await p.ok(['sync']);
    await p.ok(['cutover']);
    // The application now writes on green, in v2 terms.
    await query(p.green, `insert into users (login, first_name, last_name) values ('green-user', 'Grace', 'Hopper')`);
    await query(p.green, `update users set first_name = 'Renamed', last_name = 'On Green' where id = 5`);
    await query(p.green, `delete from user_settings where user_id = 6`);
    await query(p.green, `update user_settings set status = 'disabled' where user_id = 7`);
    // The cutover seeded the reverse watermarks: the first rollback sync reads only what
    // was written on green since, and still carries the delete.
    const back = report(await p.ok(['sync', '--from', 'green', '--to', 'blue', '--json']));
    expect(back.mode).toBe('incremental');
    expect(back.tables.find((t: { table: string }) => t.table === 'users').read).toBe(2);
    expect(back.tables.find((t: { table: string }) => t.table === 'user_settings').deleted).toBeGreaterThan(0);
    const cut = report(await p.ok(['cutover', '--from', 'green', '--to', 'blue', '--json']));
    expect(cut.ok).toBe(true);
    expect(cut.sync.check.clean).toBe(true);
    expect(await query(p.blue, `select full_name from users where username = 'green-user'`)).toEqual([{ full_name: 'Grace Hopper' }]);
    expect(await query(p.blue, `select full_name from users where id = 5`)).toEqual([{ full_name: 'Renamed On Green' }]);
    expect(await query(p.blue, `select count(*)::int as n from user_settings where user_id = 6`)).toEqual([{ n: 0 }]);
    expect(await query(p.blue, `select distinct active from user_settings where user_id = 7`)).toEqual([{ active: false }]);
    expect((await p.run(['verify', '--from', 'green', '--to', 'blue'])).code).toBe(0);
    // Blue serves again, green is the frozen side now.
    await query(p.blue, `insert into users (username) values ('blue again')`);
    await expect(query(p.green, `insert into users (login) values ('nope')`)).rejects.toThrow(/frozen/);
  });

  it('C2: a cutover interrupted by SIGTERM or SIGINT unfreezes blue, leaves green unchanged and says so', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '200']);
    await p.ok(['sync']);
    const before = await query(p.green, `select t::text from users t order by id`);
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      // Green is held, so the final sync waits: the signal lands mid-cutover, blue frozen.
      const blocker = await holdLock(p.green, 'lock table user_settings in share mode');
      const run = startCutover(p, ['--timeout', '60']);
      try {
        await waitFor('blue frozen', () => blueFrozen(p));
        await waitFor('the final sync waiting on green', () => waitingOnLock(p.green, 'bluegreen cutover%'));
        const t0 = Date.now();
        run.child.kill(signal);
        const r = await run.done;
        expect(Date.now() - t0).toBeLessThan(15_000);
        expect(r.signal, r.stderr).toBeNull();
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr).toContain(`cutover interrupted (${signal})`);
        expect(r.stderr).toMatch(/unfrozen and serving/);
      } finally {
        await blocker.release();
      }
      expect(await frozenOn(p.blue)).toBe(false);
      await query(p.blue, `insert into users (username) values ($1)`, [`after ${signal}`]);
      expect(await query(p.green, `select t::text from users t order by id`)).toEqual(before);
    }
  });

  it('C2: a cutover killed outright before green committed is rolled back by the next status: blue unfrozen, and the retry works', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '200']);
    await p.ok(['sync']);
    const blocker = await holdLock(p.green, 'lock table user_settings in share mode');
    const run = startCutover(p, ['--timeout', '60']);
    try {
      await waitFor('blue frozen', () => blueFrozen(p));
      run.child.kill('SIGKILL');
      expect((await run.done).signal).toBe('SIGKILL');
    } finally {
      await blocker.release();
    }
    await expect(query(p.blue, `insert into users (username) values ('frozen')`)).rejects.toThrow(/frozen by a cutover/);
    await waitFor('the killed run gone from green', async () => (await query(p.green, `select 1 from pg_stat_activity where datname = current_database() and application_name like 'bluegreen cutover%'`)).length === 0);
    // status decides it from the databases: green never committed, so blue is unfrozen.
    const status = await p.ok(['status']);
    expect(status.stdout).toContain('ROLLED-BACK: the cutover blue -> green stopped before green committed its final sync: blue unfrozen and serving again');
    const statusJson = report(await p.ok(['status', '--json']));
    expect(statusJson.environments.find((e: { name: string }) => e.name === 'blue').frozen).toBeUndefined();
    await query(p.blue, `insert into users (username) values ('written after the rollback')`);
    await p.ok(['sync']);
    const cut = report(await p.ok(['cutover', '--json']));
    expect(cut.ok).toBe(true);
    expect(await query(p.green, `select count(*)::int as n from users where login = 'written after the rollback'`)).toEqual([{ n: 1 }]);
    const after = report(await p.ok(['status', '--json']));
    expect(after.environments.find((e: { name: string }) => e.name === 'blue').frozen).toMatchObject({ completed: true, target: 'green' });
  });

  it('M5: a timed-out cutover unfreezes blue promptly while a long report reads it', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '200']);
    await p.ok(['sync']);
    const report_ = new pg.Client({ connectionString: p.blue });
    await report_.connect();
    await report_.query('begin');
    await report_.query('select count(*) from users');
    const blocker = await holdLock(p.green, 'lock table user_settings in share mode');
    try {
      const t0 = Date.now();
      const r = await startCutover(p, ['--timeout', '3'], 40_000).done;
      expect(r.signal, 'the cutover hung').toBeNull();
      expect(Date.now() - t0).toBeLessThan(20_000);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/unfrozen and serving/);
      // Writable while the report is still open.
      await query(p.blue, `insert into users (username) values ('during the report')`);
    } finally {
      await blocker.release();
      await report_.query('rollback');
      await report_.end();
    }
  });

  it('verifies every row before the freeze, checks only what changed while frozen, and reports how long writes were refused', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '200']);
    await p.ok(['sync']); // full, verified: a clean full verify newer than the last sync
    await query(p.blue, `update users set email = 'before cutover ' || id where id <= 5`);
    const fresh = report(await p.ok(['cutover', '--json']));
    expect(fresh.verifiedBeforeFreeze).toBeUndefined();
    // The 5 changed users travel in the catch-up sync while blue still serves; the frozen
    // part carries only what was written after it (nothing here).
    const users = (r: { tables: { table: string; updated: number }[] }) => r.tables.find((t) => t.table === 'users')!;
    expect(users(fresh.caughtUpBeforeFreeze).updated).toBe(5);
    expect(fresh.caughtUpBeforeFreeze.check.clean).toBe(true);
    expect(fresh.guardrails.find((g: { name: string }) => g.name === 'catch-up before freeze').ok).toBe(true);
    expect(users(fresh.sync).updated).toBe(0);
    expect(fresh.sync.verify).toBeUndefined(); // no whole-database verify while frozen
    expect(fresh.sync.check.clean).toBe(true);
    expect(typeof fresh.freezeMs).toBe('number');
    expect(fresh.freezeMs).toBeGreaterThan(0);
    expect(fresh.freezeMs).toBeLessThanOrEqual(fresh.ms);
    expect(fresh.reverseWatermarks.users).toBeDefined();

    // An incremental sync since the last full verify: the cutover verifies every row first.
    const q = await makePair(1, 2);
    await q.ok(['seed', '--to', 'blue', '--rows', '200']);
    await q.ok(['sync']);
    await query(q.blue, `update users set email = 'later' where id = 9`);
    await q.ok(['sync']); // incremental: checks only what it read
    const stale = report(await q.ok(['cutover', '--json']));
    expect(stale.verifiedBeforeFreeze.verify.clean).toBe(true);
    expect(stale.guardrails.find((g: { name: string }) => g.name === 'verify before freeze').ok).toBe(true);
    expect(stale.verifiedBeforeFreeze.mode).toBe('incremental');
    expect(stale.caughtUpBeforeFreeze).toBeUndefined(); // the verify's sync was the catch-up
    expect(stale.sync.verify).toBeUndefined();
  });

  it('a final check that finds differences rolls green back, exits 3 and leaves blue serving', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '200']);
    await p.ok(['sync']);
    const [before] = await query(p.green, `select email from users where id = 3`);
    await query(p.blue, `update users set email = 'changed before cutover' where id = 3`);
    // Something on green silently swallows that update (a rule: sync turns user triggers off).
    await query(p.green, `create rule swallow as on update to users where old.id = 3 do instead nothing`);
    // --full: no catch-up sync before the freeze (it would find this first, see below), so
    // the frozen part's own check is what finds it.
    const r = await p.run(['cutover', '--full', '--json']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/final check found differences between blue and green in users/);
    expect(r.stderr).toMatch(/green rolled back/);
    expect(r.stderr).toMatch(/blue unfrozen and serving/);
    const rep = report(r);
    expect(rep.ok).toBe(false);
    expect(typeof rep.freezeMs).toBe('number');
    expect(await query(p.green, `select email from users where id = 3`)).toEqual([before]);
    await query(p.blue, `insert into users (username) values ('blue serves')`);
  });

  it('a difference found by the catch-up sync before the freeze refuses with exit 3 and never freezes blue', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '200']);
    await p.ok(['sync']);
    await query(p.blue, `update users set email = 'changed before cutover' where id = 3`);
    await query(p.green, `create rule swallow as on update to users where old.id = 3 do instead nothing`);
    const r = await p.run(['cutover', '--json']);
    expect(r.code, r.stderr).toBe(3);
    const rep = report(r);
    expect(rep.ok).toBe(false);
    expect(rep.outcome).toMatch(/catch-up sync before freezing found differences; nothing frozen/);
    expect(rep.next).toMatch(/sync --repair/);
    expect(rep.freezeMs).toBeUndefined();
    expect(await frozenOn(p.blue)).toBe(false);
  });

  it('the lag guardrail measures time since the last sync, not the watermarks a lookback set back', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '50']);
    // A 20-minute lookback (what sync picks itself when other roles' transactions are hidden).
    await p.ok(['sync', '--lookback', '20 minutes']);
    const r = await p.run(['cutover', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(report(r).guardrails.find((g: { name: string }) => g.name === 'lag').ok).toBe(true);
  });

  it('--timeout 0 or negative is a usage error', async () => {
    const p = await makePair(1, 2);
    for (const t of ['0', '-5']) {
      const r = await p.run(['cutover', `--timeout=${t}`]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/--timeout must be a positive number/);
    }
    expect(await frozenOn(p.blue)).toBe(false);
  });
});
