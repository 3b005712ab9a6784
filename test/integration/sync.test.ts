/**
 * sync on real PostgreSQL: the ways cursor-based sync tools lose writes (a long
 * transaction stamped with its start time, ties at the boundary, deletes), atomicity
 * under SIGKILL, the lock, idempotence, and the reverse direction.
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { adminQuery, query, twoPhaseCommit } from '../helpers/pg.ts';
import { collect, startCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { makePair, report, MAPPINGS, type Pair } from '../helpers/pair.ts';

/** Text of every row of every v1 table, sorted: equal snapshots mean equal databases. */
async function v1Rows(url: string) {
  const out: Record<string, string[]> = {};
  for (const t of ['roles', 'users', 'user_roles', 'user_settings']) {
    out[t] = (await query<{ r: string }>(url, `select t::text as r from ${t} t order by 1`)).map((x) => x.r);
  }
  return out;
}

async function seeded(rows = 300): Promise<Pair> {
  const p = await makePair(1, 1);
  await p.ok(['seed', '--to', 'blue', '--rows', String(rows)]);
  return p;
}

async function syncJson(p: Pair, args: string[] = []) {
  return report((await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json', ...args])));
}

describe('sync', () => {
  it('first run is a full copy of hostile data, later runs are incremental and change nothing', async () => {
    const p = await seeded();
    const first = await syncJson(p);
    expect(first.mode).toBe('full');
    expect(await v1Rows(p.green)).toEqual(await v1Rows(p.blue));
    // The bulk load is analyzed (beside the verify, on a session of its own) before the run returns.
    const analyzed = await query<{ t: string }>(p.green, `select relname::text as t from pg_stat_user_tables where schemaname = 'public' and last_analyze is not null order by 1`);
    expect(analyzed.map((r) => r.t)).toEqual(['roles', 'user_roles', 'user_settings', 'users']);
    const before = await query(p.green, `select count(*)::int as n, max(xmin::text::bigint)::text as x from users`);
    const second = await syncJson(p);
    expect(second.mode).toBe('incremental');
    for (const t of second.tables) expect([t.table, t.inserted, t.updated, t.deleted]).toEqual([t.table, 0, 0, 0]);
    // Nothing was rewritten: no row has a newer xmin.
    expect(await query(p.green, `select count(*)::int as n, max(xmin::text::bigint)::text as x from users`)).toEqual(before);
  });

  it('catches a write whose transaction started before a sync and committed after it', async () => {
    const p = await seeded(50);
    await syncJson(p);
    // The app's transaction starts (now() fixed here), then a sync runs, then it commits.
    const app = new pg.Client({ connectionString: p.blue });
    await app.connect();
    await app.query('begin');
    await app.query(`select now()`);
    await app.query(`update users set username = 'renamed-in-long-tx' where id = 7`);
    const during = await syncJson(p);
    expect(during.horizon.heldBackBy).toMatch(/open since/);
    await app.query('commit');
    await app.end();
    // Its updated_at (the transaction's start) is older than the moment that sync ran, so
    // a tool using "now" as the next lower bound would skip it forever...
    const [row] = await query<{ naive_skips: boolean; covered: boolean }>(
      p.blue,
      `select updated_at < $1::timestamptz as naive_skips, updated_at >= $2::timestamptz as covered from users where id = 7`,
      [during.horizon.at, during.watermarks.users],
    );
    expect(row).toEqual({ naive_skips: true, covered: true });
    // ...and the next sync still picks it up.
    await syncJson(p);
    expect(await query(p.green, `select username from users where id = 7`)).toEqual([{ username: 'renamed-in-long-tx' }]);
    expect(await v1Rows(p.green)).toEqual(await v1Rows(p.blue));
  });

  it('catches a long transaction of ANOTHER role it cannot see, by holding the watermark back', async () => {
    const p = await seeded(30);
    await syncJson(p);
    // The application writes as its own role; bluegreen's owner role lacks pg_read_all_stats.
    await adminQuery(`do $$ begin if not exists (select 1 from pg_roles where rolname = 'bg_app_writer') then create role bg_app_writer login password 'w'; end if; end $$`);
    await query(p.blue, `grant usage on schema public to bg_app_writer; grant select, insert, update on users to bg_app_writer; grant usage on all sequences in schema public to bg_app_writer`);
    const u = new URL(p.blue);
    u.username = 'bg_app_writer';
    u.password = 'w';
    const app = new pg.Client({ connectionString: u.toString() });
    await app.connect();
    await app.query('begin');
    await app.query(`insert into users (username) values ('hidden-writer')`);
    const during = await p.run(['sync', '--json']);
    expect(during.code).toBe(0);
    expect(during.stderr).toContain('hide their transaction start');
    await app.query('commit');
    await app.end();
    await syncJson(p);
    expect(await query(p.green, `select username from users where username = 'hidden-writer'`)).toEqual([{ username: 'hidden-writer' }]);
  });

  it('catches a write of a PREPARED (two-phase) transaction that commits after a run, and names it while it holds the watermark', async (ctx) => {
    const p = await seeded(30);
    if (!(await twoPhaseCommit(p.blue))) ctx.skip('this server has max_prepared_transactions = 0 (two-phase commit off)');
    await syncJson(p);
    const gid = `bg-xa-${Date.now()}`;
    const app = new pg.Client({ connectionString: p.blue });
    await app.connect();
    await app.query('begin');
    await app.query(`update users set email = 'xa@example.test' where id = (select min(id) from users)`);
    await app.query(`prepare transaction '${gid}'`);
    await app.end(); // a prepared transaction outlives its session
    try {
      const during = await syncJson(p);
      expect(during.horizon.heldBackBy).toContain(`prepared transaction '${gid}'`);
      expect(during.horizon.heldBackBy).toMatch(/begun after the previous run's sample .* or bounded by its horizon/);
      // status says why the watermark stands still, for the DBA who looks there first.
      const st = report(await p.ok(['status', '--json']));
      const green = st.environments.find((e: { name: string }) => e.name === 'green');
      expect(green.sources[0].heldBackBy).toContain(`prepared transaction '${gid}'`);
      expect((await p.ok(['status'])).stdout).toContain(`watermark held back by prepared transaction '${gid}'`);
    } finally {
      await query(p.blue, `commit prepared '${gid}'`);
    }
    const after = await syncJson(p);
    expect(after.tables.find((t: { table: string }) => t.table === 'users').updated).toBe(1);
    expect(await query(p.green, `select email from users where id = (select min(id) from users)`)).toEqual([{ email: 'xa@example.test' }]);
  });

  it('brings every one of 1000 rows tied on the watermark across a run boundary', async () => {
    const p = await makePair(1, 1);
    await query(p.blue, `insert into users (username, updated_at) select 'tie-a-' || g, '2030-01-01 00:00:00+00' from generate_series(1, 500) g`);
    // Stamp rows at exactly the stored watermark: the bound is inclusive.
    await syncJson(p);
    const [wm] = await query<{ value: string }>(p.green, `select value from bluegreen.watermarks where source = 'blue' and table_name = 'users'`);
    await query(p.blue, `insert into users (username, updated_at) select 'tie-b-' || g, $1::timestamptz from generate_series(1, 500) g`, [wm!.value]);
    const r = await syncJson(p);
    expect(r.tables.find((t: { table: string }) => t.table === 'users').inserted).toBe(500);
    expect(await query(p.green, `select count(*)::int as n from users`)).toEqual([{ n: 1000 }]);
  });

  it('keeps the watermark at full microsecond precision', async () => {
    const p = await makePair(1, 1);
    await query(p.blue, `insert into users (username) values ('x')`);
    await syncJson(p);
    const [wm] = await query<{ value: string }>(p.green, `select value from bluegreen.watermarks where table_name = 'users'`);
    expect(wm!.value).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{1,6}\+00$/);
  });

  it('carries deletes, children before parents', async () => {
    const p = await seeded(100);
    await syncJson(p);
    await query(p.blue, `delete from user_settings where user_id between 10 and 20; delete from users where id in (3, 5, 8)`);
    const r = await syncJson(p);
    expect(r.tables.find((t: { table: string }) => t.table === 'users').deleted).toBe(3);
    expect(await v1Rows(p.green)).toEqual(await v1Rows(p.blue));
  });

  it('--full re-reads everything and still deletes what the source lacks', async () => {
    const p = await seeded(60);
    await syncJson(p);
    await query(p.green, `delete from user_roles where user_id = 4`); // drift on the target
    await query(p.blue, `delete from users where id = 9`);
    const r = await syncJson(p, ['--full']);
    expect(r.mode).toBe('full');
    expect(await v1Rows(p.green)).toEqual(await v1Rows(p.blue));
  });

  it('a second concurrent sync exits 75 at once and names the holder', async () => {
    const p = await seeded(50);
    await syncJson(p);
    // Hold the target lock the way a running sync does.
    const holder = new pg.Client({ connectionString: p.green, application_name: 'bluegreen sync blue->green' });
    await holder.connect();
    await holder.query('select pg_advisory_lock($1, $2)', [0x6267, 0x6c6f636b]);
    const t0 = Date.now();
    const r = await p.run(['sync', '--from', 'blue', '--to', 'green', '--log-format', 'json']);
    expect(r.code).toBe(75);
    const line = JSON.parse(r.stderr.trim().split('\n').pop()!);
    expect(line.level).toBe('info'); // normal under cron, not an error
    expect(line.msg).toMatch(/holds the lock.*pid \d+ "bluegreen sync blue->green"/);
    expect(line.exitCode).toBe(75);
    expect(Date.now() - t0).toBeLessThan(15_000);
    await holder.end();
    expect((await p.run(['sync'])).code).toBe(0);
  });

  it('two syncs started together: one runs, the other exits 75 or finds nothing to do', async () => {
    const p = await seeded(2000);
    const [a, b] = await Promise.all([p.run(['sync']), p.run(['sync'])]);
    const codes = [a.code, b.code].sort();
    expect(codes[0]).toBe(0);
    expect([0, 75]).toContain(codes[1]);
    expect(await v1Rows(p.green)).toEqual(await v1Rows(p.blue));
  });

  it('SIGKILL at any point leaves target and watermark as they were; a rerun converges', async () => {
    const p = await seeded(3000);
    await syncJson(p);
    await query(p.blue, `update users set full_name = coalesce(full_name, '') || ' changed' where id % 3 = 0; delete from user_roles where user_id % 7 = 0`);
    const before = await v1Rows(p.green);
    const wmBefore = await query(p.green, `select * from bluegreen.watermarks order by table_name`);
    for (const delay of [150, 400, 700, 1000, 1300]) {
      const child = startCli(['--mappings', MAPPINGS, 'sync', '--from', 'blue', '--to', 'green'], { BLUE_URL: p.blue, GREEN_URL: p.green });
      const done = collect(child);
      await new Promise((r) => setTimeout(r, delay));
      child.kill('SIGKILL');
      const r = await done;
      if (r.code === 0) break; // finished before the kill: the rest of the check still holds
      // Wait until the server has rolled the dead session back.
      for (let i = 0; i < 100; i++) {
        const [n] = await query<{ n: number }>(p.green, `select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name like 'bluegreen sync%'`);
        if (n!.n === 0) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      // Killed before COMMIT: nothing changed. Killed after it (during verify or exit):
      // everything changed. Never anything in between.
      const now = await v1Rows(p.green);
      const wmNow = await query(p.green, `select * from bluegreen.watermarks order by table_name`);
      if (JSON.stringify(now) === JSON.stringify(before)) {
        expect(wmNow).toEqual(wmBefore);
      } else {
        expect(now).toEqual(await v1Rows(p.blue));
        expect(wmNow).not.toEqual(wmBefore);
        break;
      }
    }
    await p.ok(['sync']);
    expect(await v1Rows(p.green)).toEqual(await v1Rows(p.blue));
  });

  it('works in the reverse direction with its own watermarks', async () => {
    const p = await seeded(80);
    await syncJson(p);
    await query(p.green, `update users set username = 'written-on-green' where id = 2`);
    await query(p.green, `insert into roles (name) values ('green-only')`);
    // Before any cutover green is fed from blue: the reverse direction needs --force.
    const refused = await p.run(['sync', '--from', 'green', '--to', 'blue']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('data flows blue -> green');
    const back = report(await p.ok(['sync', '--from', 'green', '--to', 'blue', '--force', '--json']));
    expect(back.mode).toBe('full');
    expect(await v1Rows(p.blue)).toEqual(await v1Rows(p.green));
    const marks = await query<{ source: string }>(p.blue, `select distinct source from bluegreen.watermarks`);
    expect(marks).toEqual([{ source: 'green' }]);
  });

  it('applies a unique value freed and taken again between two runs (rename, delete, reuse)', async () => {
    const p = await makePair(1, 1);
    await query(p.blue, `insert into users (id, username) values (1, 'alice'), (2, 'bob'), (3, 'carol')`);
    await syncJson(p);
    // alice renames herself, a newcomer takes 'alice'; bob leaves, another takes 'bob'.
    await query(p.blue, `update users set username = 'alice.old' where id = 1; insert into users (id, username) values (4, 'alice')`);
    await query(p.blue, `delete from users where id = 2; insert into users (id, username) values (5, 'bob')`);
    await syncJson(p);
    expect(await v1Rows(p.green)).toEqual(await v1Rows(p.blue));
  });

  it('applies two rows swapping unique values between runs', async () => {
    const p = await makePair(1, 1);
    await query(p.blue, `insert into users (id, username) values (1, 'x'), (2, 'y'), (3, 'z')`);
    await query(p.blue, `insert into user_settings (id, user_id) values ('00000000-0000-0000-0000-000000000001', 1)`);
    await syncJson(p);
    await query(p.blue, `update users set username = 'tmp' where id = 1; update users set username = 'x' where id = 2; update users set username = 'y' where id = 1`);
    const r = await syncJson(p);
    expect(r.tables.find((t: { table: string }) => t.table === 'users').updated).toBe(2);
    expect(await v1Rows(p.green)).toEqual(await v1Rows(p.blue));
    // Indexes and constraints are all back.
    expect(await query(p.green, `select count(*)::int as n from pg_indexes where tablename = 'users'`)).toEqual([{ n: 3 }]);
    expect(await query(p.green, `select count(*)::int as n from pg_constraint where conrelid = 'user_settings'::regclass and contype = 'f'`)).toEqual([{ n: 1 }]);
  });

  it('an incremental run checks what it read and the row counts, and exits 3 on drift of the target', async () => {
    const p = await seeded(100);
    await syncJson(p);
    await query(p.blue, `update users set email = 'changed' where id = 3`);
    const ok = await syncJson(p);
    expect(ok.check.clean).toBe(true);
    expect(ok.check.tables.find((t: { table: string }) => t.table === 'users').checked).toBe(1);
    // Someone deletes a row on green directly: its watermark never moves, so only the
    // row counts can tell. The run says so and exits 3.
    await query(p.green, `delete from user_settings where ctid = (select ctid from user_settings limit 1)`);
    const r = await p.run(['sync', '--json']);
    expect(r.code).toBe(3);
    const rep = report(r);
    expect(rep.check.clean).toBe(false);
    const us = rep.check.tables.find((t: { table: string }) => t.table === 'user_settings');
    expect(us.targetRows).toBe(us.sourceRows - 1);
    // A full verify names the key; --full repairs it.
    expect((await p.run(['verify'])).code).toBe(3);
    await syncJson(p, ['--full']);
    expect(await v1Rows(p.green)).toEqual(await v1Rows(p.blue));
  });

  it('refuses to sync a database into itself', async () => {
    const p = await makePair(1, 1);
    const r = await p.run(['sync', '--from', 'blue', '--to', 'green', '--to-url', p.blue]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('are the same database');
  });

  it('refills a target table that was emptied since the last run', async () => {
    const p = await seeded(40);
    await syncJson(p);
    await query(p.green, `truncate user_settings`);
    const r = await syncJson(p);
    expect(r.tables.find((t: { table: string }) => t.table === 'user_settings').mode).toBe('full');
    expect(await v1Rows(p.green)).toEqual(await v1Rows(p.blue));
  });

  it('keeps the source key of a GENERATED ALWAYS identity column on incremental runs', async () => {
    // A version whose roles.id is ALWAYS (detection tells the identity kinds apart).
    const dir = await tempDir('always');
    await cp(MAPPINGS, dir, { recursive: true });
    const v1 = path.join(dir, 'v1', 'schema.sql');
    await writeFile(v1, (await readFile(v1, 'utf8')).replace('id          integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY', 'id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY'));
    const p = await makePair(1, 1, dir);
    expect(await query(p.blue, `select attidentity from pg_attribute where attrelid = 'roles'::regclass and attname = 'id'`)).toEqual([{ attidentity: 'a' }]);
    await query(p.blue, `insert into roles (name) values ('a'), ('b')`);
    await p.ok(['sync', '--from', 'blue', '--to', 'green']);
    await query(p.blue, `insert into roles (name) values ('c')`);
    await p.ok(['sync', '--from', 'blue', '--to', 'green']);
    expect(await query(p.green, `select id, name from roles order by id`)).toEqual(await query(p.blue, `select id, name from roles order by id`));
  });

  it('refuses a target that matches no version, and writes nothing', async () => {
    const p = await seeded(20);
    await query(p.green, `alter table users add column nickname text`);
    const r = await p.run(['sync']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('users.nickname');
    expect(await query(p.green, `select count(*)::int as n from users`)).toEqual([{ n: 0 }]);
  });
});
