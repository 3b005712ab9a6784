/**
 * A session the server ends under a run (pg_terminate_backend, a restart, a failover) is
 * a runtime failure: exit 1 and one line naming the side and the SQLSTATE, never "this is
 * a bug" with a stack trace, and -v adds the trace without changing either. (Before:
 * a source session terminated mid-COPY was reported as a bug, and -v relabelled every
 * database error as one.)
 *
 * The COPY is held open deterministically: a row-security policy on blue's users sleeps
 * on one row, only inside a COPY, so the run's sessions are mid-COPY when one is ended.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { makePair, type Pair } from '../helpers/pair.ts';
import { query } from '../helpers/pg.ts';

const APP = 'bluegreen sync blue->green';

async function waitFor(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Sessions of the run in THIS database (test files share the server and the application name). */
function runSessions(url: string) {
  return query<{ pid: number }>(url, `select pid from pg_stat_activity where datname = current_database() and application_name = $1 and pid <> pg_backend_pid()`, [APP]);
}

/** Once blue's COPY sleeps, the run's one session on `url` is ended (pg_terminate_backend, as the owner role: no superuser). */
async function terminateMidCopy(p: Pair, url: string): Promise<void> {
  const sleeping = `select 1 from pg_stat_activity where datname = current_database() and application_name = $1 and wait_event = 'PgSleep' and query ilike 'copy%'`;
  await waitFor("blue's COPY sleeping", async () => (await query(p.blue, sleeping, [APP])).length > 0);
  const ended = await query<{ ok: boolean }>(url, `select pg_terminate_backend(pid) as ok from pg_stat_activity where datname = current_database() and application_name = $1`, [APP]);
  expect(ended.map((r) => r.ok)).toEqual([true]);
}

/** A pair whose blue COPY of users stalls (60 s) on one row: the run stays mid-COPY until a session is ended. */
async function pairMidCopy(): Promise<Pair> {
  const p = await makePair(1, 1);
  await p.ok(['seed', '--to', 'blue', '--rows', '300']);
  await query(
    p.blue,
    `create function bg_slow_row(id bigint) returns boolean language sql as $$
       select case when $1 = 150 and current_query() ilike 'copy%' then pg_sleep(60) is not null else true end $$;
     alter table users enable row level security;
     alter table users force row level security;
     create policy slow_copy on users using (bg_slow_row(id))`,
  );
  return p;
}

/** Exactly one error line, naming the side and 57P01; no bug report, -v or not. */
function expectLostSession(r: { code: number | null; stderr: string }, side: string, verbose: boolean): void {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).not.toMatch(/this is a bug|unexpected failure/);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
  expect(errors, r.stderr).toHaveLength(1);
  expect(errors[0]).toMatch(new RegExp(`^error: lost the session on ${side}: terminating connection due to administrator command \\(SQLSTATE 57P01 admin_shutdown\\)$`));
  expect(r.stderr).toMatch(new RegExp(`\\n  next: the server ended it \\(pg_terminate_backend, a restart, a failover\\); rerun once ${side} accepts connections again`));
  if (verbose) expect(r.stderr).toMatch(/\n  trace: /);
  else expect(r.stderr).not.toMatch(/\n\s+at /);
}

async function expectNothingLeft(p: Pair): Promise<void> {
  // Ended sessions go at once; the other side's within the server's client check (5 s).
  await waitFor('no session of the run on blue', async () => (await runSessions(p.blue)).length === 0, 15_000);
  await waitFor('no session of the run on green', async () => (await runSessions(p.green)).length === 0, 15_000);
  expect(await query(p.green, `select to_regclass('bluegreen.runs') is null as none`)).toEqual([{ none: true }]);
  expect(await query(p.green, `select count(*)::int as n from users`)).toEqual([{ n: 0 }]);
}

describe('a session ended under a sync is a runtime failure naming its side', () => {
  for (const verbose of [false, true]) {
    const v = verbose ? ['-v'] : [];
    it(`blue's session terminated mid-COPY: exit 1, "lost the session on blue" with SQLSTATE 57P01${verbose ? ', the same with -v' : ''}`, async () => {
      const p = await pairMidCopy();
      const run = p.run(['sync', ...v]);
      await terminateMidCopy(p, p.blue);
      const t0 = Date.now();
      const r = await run;
      expect(Date.now() - t0).toBeLessThan(10_000);
      expectLostSession(r, 'blue', verbose);
      await expectNothingLeft(p);
    });

    it(`green's session terminated mid-COPY: exit 1, "lost the session on green" with SQLSTATE 57P01${verbose ? ', the same with -v' : ''}`, async () => {
      const p = await pairMidCopy();
      const run = p.run(['sync', ...v]);
      await terminateMidCopy(p, p.green);
      const t0 = Date.now();
      const r = await run;
      // Not the 60 s blue's COPY would still take: its session is dropped with the run.
      expect(Date.now() - t0).toBeLessThan(10_000);
      expectLostSession(r, 'green', verbose);
      await expectNothingLeft(p);
    });
  }

  it("blue's session terminated while idle in the run's transaction: its next query names blue and 57P01; JSON carries side and sqlstate", async () => {
    const p = await makePair(1, 1);
    await p.ok(['seed', '--to', 'blue', '--rows', '300']);
    await p.ok(['sync']);
    await query(p.blue, `update users set email = 'lost-session-' || id`);
    // The sync waits on green (disabling triggers waits behind this) with blue idle in its snapshot.
    const blocker = new pg.Client({ connectionString: p.green });
    await blocker.connect();
    await blocker.query('begin');
    await blocker.query('lock table user_settings in share mode');
    try {
      const run = p.run(['sync', '--log-format', 'json']);
      await waitFor('the sync waiting on green', async () => (await query(p.green, `select 1 from pg_stat_activity where datname = current_database() and application_name = $1 and wait_event_type = 'Lock'`, [APP])).length > 0);
      await query(p.blue, `select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = $1`, [APP]);
      await waitFor('blue ended', async () => (await runSessions(p.blue)).length === 0);
      await blocker.query('rollback');
      const r = await run;
      expect(r.code, r.stderr).toBe(1);
      const errors = r.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.level === 'error');
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ code: 'ConnectionLostError', side: 'blue', sqlstate: '57P01', exitCode: 1 });
      expect(errors[0].msg).toMatch(/^lost the session on blue: terminating connection due to administrator command \(SQLSTATE 57P01 admin_shutdown\)$/);
    } finally {
      await blocker.end();
    }
    await waitFor('no session of the run on green', async () => (await runSessions(p.green)).length === 0, 15_000);
    expect(await query(p.green, `select count(*)::int as n from users where email like 'lost-session-%'`)).toEqual([{ n: 0 }]);
  });

  it('-v keeps a lock timeout what it is: a database error on green, exit 1, with the trace added', async () => {
    const p = await makePair(1, 1);
    await p.ok(['seed', '--to', 'blue', '--rows', '50']);
    await p.ok(['sync']);
    await query(p.blue, `update users set email = 'locked-' || id`);
    const blocker = new pg.Client({ connectionString: p.green });
    await blocker.connect();
    await blocker.query('begin');
    await blocker.query('lock table users in access exclusive mode');
    try {
      const r = await p.run(['sync', '--lock-timeout', '1', '-v']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).not.toMatch(/this is a bug|unexpected failure/);
      expect(r.stderr).toMatch(/^error: the database refused an operation on green: canceling statement due to lock timeout \(SQLSTATE 55P03/m);
      expect(r.stderr).toMatch(/\n  next: nothing was committed; something held a table lock longer than --lock-timeout/);
      expect(r.stderr).toMatch(/\n  trace: /);
    } finally {
      await blocker.end();
    }
  });
});
