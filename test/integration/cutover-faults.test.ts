/**
 * A cutover killed (SIGKILL, as a lost machine) at every step boundary, then the command
 * status suggests and cron's sync: status must tell the truth at each point, and no write
 * the application saw acknowledged, on either side, may be lost. The outcome is decided
 * from the databases alone: green's commit of the final sync is the point of no return.
 * Before it, the next command unfreezes blue (rolled back); after it, the next command
 * completes blue's mark (rolled forward), and green's new writes flow back to blue.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { query } from '../helpers/pg.ts';
import { makePair, report, type Pair } from '../helpers/pair.ts';
import type { CliResult } from '../helpers/cli.ts';

/** Inserts users on `url` until stopped, recording what was acknowledged. */
function appWriter(url: string, prefix: string) {
  const acked: string[] = [];
  let stop = false;
  const done = (async () => {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {});
    await c.connect();
    for (let i = 0; !stop; i++) {
      const name = `${prefix}-${i}`;
      try {
        await c.query(`insert into users (username, full_name) values ($1, 'app')`, [name]);
        acked.push(name);
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await c.end().catch(() => {});
  })();
  return { acked, stop: async () => ((stop = true), await done) };
}

const frozen = async (url: string) =>
  (await query<{ completed: boolean }>(url, `select completed_at is not null as completed from bluegreen.freeze where active`).catch(() => []))[0];

/** The kill points, in the order the cutover reaches them, and which side of the point of no return each lies on. */
const POINTS: [string, 'back' | 'forward'][] = [
  ['cutover:after-preflight', 'back'],
  ['cutover:before-freeze', 'back'],
  ['cutover:after-freeze', 'back'],
  ['cutover:before-target-commit', 'back'],
  ['cutover:after-target-commit', 'forward'],
  ['cutover:after-source-mark', 'forward'],
  ['cutover:after-complete', 'forward'],
];

async function greenSessionsGone(p: Pair): Promise<void> {
  const until = Date.now() + 10_000;
  while ((await query(p.green, `select 1 from pg_stat_activity where datname = current_database() and application_name like 'bluegreen cutover%'`)).length) {
    if (Date.now() > until) throw new Error('the killed cutover is still on green');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a cutover killed at every step boundary converges without losing a write', () => {
  it.each(POINTS)('killed at %s: status tells the truth (rolled %s) and the suggested commands converge', async (point, expected) => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '300']);
    await p.ok(['sync']);
    const onBlue = appWriter(p.blue, 'blue');
    await new Promise((r) => setTimeout(r, 300));
    const killed = await p.run(['cutover', '--from', 'blue', '--to', 'green'], { BLUEGREEN_FAULT: point });
    await onBlue.stop();
    expect(killed.signal, `the cutover ran past ${point}: ${killed.stderr}`).toBe('SIGKILL');
    expect(onBlue.acked.length).toBeGreaterThan(0);
    // The killed run's green sessions end with it (the server notices the closed socket).
    await greenSessionsGone(p);

    // plan says what the next command will decide, and decides nothing itself.
    if (point !== 'cutover:after-preflight' && point !== 'cutover:before-freeze' && point !== 'cutover:after-source-mark' && point !== 'cutover:after-complete') {
      const pl = report(await p.ok(['plan', '--json']));
      expect(pl.reconciled?.[0]?.action).toBe(expected === 'forward' ? 'would-roll-forward' : 'would-roll-back');
      expect(await frozen(p.blue)).toEqual({ completed: false });
    }
    // status decides the stopped cutover and says which way.
    const st = await p.run(['status', '--json']);
    const rep = report(st);
    const blue = rep.environments.find((e: { name: string }) => e.name === 'blue');
    if (expected === 'forward') {
      // Past green's commit: blue stays frozen, now marked complete; green serves.
      if (point === 'cutover:after-target-commit') expect(rep.reconciled?.[0]?.action, st.stderr).toBe('rolled-forward');
      expect(blue.frozen).toMatchObject({ completed: true, target: 'green' });
      expect(await frozen(p.blue)).toEqual({ completed: true });
      await expect(query(p.blue, `insert into users (username) values ('late')`)).rejects.toThrow(/frozen by a cutover|permission denied/);
      // Every write blue acknowledged is on green.
      const onGreen = new Set((await query<{ login: string }>(p.green, `select login from users`)).map((x) => x.login));
      expect(onBlue.acked.filter((l) => !onGreen.has(l))).toEqual([]);
      // The application moves to green and writes there; green's ids stay past blue's.
      const [maxBlue] = await query<{ m: string }>(p.blue, `select max(id)::text as m from users`);
      const [row] = await query<{ id: string }>(p.green, `insert into users (login) values ('written on green') returning id::text`);
      expect(BigInt(row!.id)).toBeGreaterThan(BigInt(maxBlue!.m));
      // Cron, as the cutover's report says, now keeps blue current from green.
      const back = await p.run(['sync', '--from', 'green', '--to', 'blue']);
      expect(back.code, back.stderr).toBe(0);
      expect(await query(p.blue, `select 1 from users where username = 'written on green'`)).toHaveLength(1);
      expect(await query(p.green, `select 1 from users where login = 'written on green'`)).toHaveLength(1);
      // A second status has nothing left to decide.
      expect(report(await p.ok(['status', '--json'])).reconciled).toBeUndefined();
    } else {
      // Before green's commit: blue unfrozen and serving, green unchanged.
      if (point !== 'cutover:after-preflight' && point !== 'cutover:before-freeze') {
        expect(rep.reconciled?.[0]?.action, st.stderr).toBe('rolled-back');
      }
      expect(blue.frozen).toBeUndefined();
      await query(p.blue, `insert into users (username) values ('after the kill')`);
      // Cron's sync converges, and the cutover run again succeeds with every write.
      const cron = await p.run(['sync', '--from', 'blue', '--to', 'green']);
      expect(cron.code, cron.stderr).toBe(0);
      const cut = await p.run(['cutover', '--from', 'blue', '--to', 'green', '--json']);
      expect(cut.code, cut.stderr).toBe(0);
      const onGreen = new Set((await query<{ login: string }>(p.green, `select login from users`)).map((x) => x.login));
      expect([...onBlue.acked, 'after the kill'].filter((l) => !onGreen.has(l))).toEqual([]);
    }
    expect(st.code, st.stderr).toBe(0);
  });

  it('the same cutover run again after a kill past the point of no return completes it and says so', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '100']);
    await p.ok(['sync']);
    const killed = await p.run(['cutover'], { BLUEGREEN_FAULT: 'cutover:after-target-commit' });
    expect(killed.signal).toBe('SIGKILL');
    await greenSessionsGone(p);
    const again = await p.run(['cutover', '--json']);
    expect(again.code, again.stderr).toBe(0);
    const rep = report(again);
    expect(rep.reconciled[0].action).toBe('rolled-forward');
    expect(rep.outcome).toMatch(/already holds the cutover/);
    expect(await frozen(p.blue)).toEqual({ completed: true });
  });

  it('unfreeze after a kill past the point of no return completes the cutover instead, and keeps blue frozen', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '100']);
    await p.ok(['sync']);
    expect((await p.run(['cutover'], { BLUEGREEN_FAULT: 'cutover:after-target-commit' })).signal).toBe('SIGKILL');
    await greenSessionsGone(p);
    const un = await p.run(['unfreeze', '--env', 'blue']);
    expect(un.code).toBe(1);
    expect(un.stderr).toMatch(/NOT unfrozen.*committed the final sync/);
    expect(await frozen(p.blue)).toEqual({ completed: true });
  });

  /** A cutover paused inside green's final transaction, 500 ms into a 2.5 s pause; resolves to its run. */
  async function pausedBeforeTargetCommit(p: Pair): Promise<{ run: Promise<CliResult> }> {
    await p.ok(['seed', '--to', 'blue', '--rows', '100']);
    await p.ok(['sync']);
    const run = p.run(['cutover', '--json'], { BLUEGREEN_FAULT: 'cutover:before-target-commit=pause:2500' });
    const until = Date.now() + 30_000;
    while (!(await frozen(p.blue))) {
      if (Date.now() > until) throw new Error('blue never froze');
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 500));
    return { run }; // wrapped: an async function returning the promise would wait for it
  }

  /** Ends every session of this database whose application name starts with `app`. */
  const terminate = (url: string, app: string) =>
    query(url, `select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name like $1 and pid <> pg_backend_pid()`, [`${app}%`]);

  it('blue\'s sessions lost after the freeze, green\'s final transaction open: green still commits, and the cutover completes on fresh sessions', async () => {
    const p = await makePair(1, 2);
    const { run } = await pausedBeforeTargetCommit(p); // into the pause, green's transaction open
    await terminate(p.blue, 'bluegreen');
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    expect(report(r).outcome).toMatch(/point of no return/);
    expect(await frozen(p.blue)).toEqual({ completed: true });
  });

  it('both sides\' sessions lost before green committed: green rolled back, blue unfrozen through a fresh session, and the line says so', async () => {
    const p = await makePair(1, 2);
    const { run } = await pausedBeforeTargetCommit(p);
    await terminate(p.green, 'bluegreen');
    await terminate(p.blue, 'bluegreen');
    const r = await run;
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/green rolled back \(unchanged\); blue unfrozen and serving/);
    expect(r.stderr).not.toMatch(/could NOT be frozen again|STILL FROZEN/);
    expect(await frozen(p.blue)).toBeUndefined();
    await query(p.blue, `insert into users (username) values ('blue serves')`);
    expect(await query(p.green, `select 1 from bluegreen.cutovers`).catch(() => [])).toEqual([]);
  });
});
