/**
 * sync --jobs N and import --jobs N on real PostgreSQL: the same result as one job (rows,
 * report counts, a clean verify), block ranges of a large table, atomicity when a job's
 * session dies, and the sweep of stage tables a killed run left behind.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freshDatabase, query } from '../helpers/pg.ts';
import { collect, startCli } from '../helpers/cli.ts';
import { makePair, report, MAPPINGS, type Pair } from '../helpers/pair.ts';
import { tempDir } from '../helpers/tmp.ts';

const TABLES = ['roles', 'users', 'user_roles', 'user_settings'];

/** Text of every row of every v1 table, sorted: equal snapshots mean equal databases. */
async function v1Rows(url: string) {
  const out: Record<string, string[]> = {};
  for (const t of TABLES) out[t] = (await query<{ r: string }>(url, `select t::text as r from ${t} t order by 1`)).map((x) => x.r);
  return out;
}

/**
 * Blue with `rows` users whose table is spread over many blocks (fillfactor 10), so it
 * passes the size past which a whole-table read is split into block ranges.
 */
async function seeded(rows: number): Promise<Pair> {
  const p = await makePair(1, 1);
  await p.ok(['seed', '--to', 'blue', '--rows', String(rows)]);
  await query(p.blue, `alter table users set (fillfactor = 10)`);
  await query(p.blue, `vacuum full users`);
  await query(p.blue, `analyze`);
  return p;
}

/** A second green at v1, for the same sync with other flags. */
async function secondGreen(p: Pair): Promise<string> {
  const url = await freshDatabase('green2');
  const r = await p.run(['schema', 'apply', '--to', 'green', '--schema-version', '1'], { GREEN_URL: url });
  expect(r.code, r.stderr).toBe(0);
  return url;
}

async function syncTo(p: Pair, green: string, args: string[]) {
  const r = await p.run(['sync', '--from', 'blue', '--to', 'green', '--json', ...args], { GREEN_URL: green });
  expect(r.code, r.stderr).toBe(0);
  return { report: report(r), stderr: r.stderr };
}

const counts = (r: { tables: { table: string; mode: string; read: number; inserted: number; updated: number; deleted: number }[] }) =>
  r.tables.map((t) => [t.table, t.mode, t.read, t.inserted, t.updated, t.deleted]);

async function stageTables(url: string): Promise<string[]> {
  const r = await query<{ n: string }>(url, `select c.relname as n from pg_class c join pg_namespace s on s.oid = c.relnamespace where s.nspname = 'bluegreen_stage' order by 1`);
  return r.map((x) => x.n);
}

/** Waits until a run's job session is copying on `url`; returns its pid, or undefined when the run ended first. */
async function jobCopying(url: string, child: { exitCode: number | null }): Promise<number | undefined> {
  for (let i = 0; i < 2000 && child.exitCode === null; i++) {
    const [row] = await query<{ pid: number }>(
      url,
      `select pid from pg_stat_activity where datname = current_database() and application_name like 'bluegreen % job' and query ilike 'copy%' and state = 'active' limit 1`,
    );
    if (row) return row.pid;
    await new Promise((r) => setTimeout(r, 10));
  }
  return undefined;
}

describe('sync --jobs', () => {
  it('gives exactly what one job gives: full then incremental, same rows and counts, verify clean, no stage tables left', async () => {
    const p = await seeded(12000);
    const green2 = await secondGreen(p);
    const one = await syncTo(p, p.green, ['--jobs', '1']);
    const two = await syncTo(p, green2, ['--jobs', '2']);
    expect(two.report.mode).toBe('full');
    expect(counts(two.report)).toEqual(counts(one.report));
    expect(two.report.verify.clean).toBe(true);
    // The users table was read in block ranges, not as one job.
    const staged = /staging (\d+) tables \((\d+) parts\) on 2 jobs/.exec(two.stderr);
    expect(staged, two.stderr).not.toBeNull();
    const blocks = await query(p.blue, `select pg_relation_size('users') / 8192 as b, current_setting('server_version') as v`);
    expect(Number(staged![2]), JSON.stringify(blocks)).toBeGreaterThan(Number(staged![1]));
    expect(await v1Rows(green2)).toEqual(await v1Rows(p.blue));

    await query(
      p.blue,
      `update users set full_name = coalesce(full_name, '') || ' changed', updated_at = clock_timestamp() where id % 5 = 0;
       delete from user_roles where user_id % 7 = 0; delete from user_settings where user_id % 11 = 0`,
    );
    const inc1 = await syncTo(p, p.green, ['--jobs', '1']);
    const inc2 = await syncTo(p, green2, ['--jobs', '2']);
    expect(inc2.report.mode).toBe('incremental');
    expect(counts(inc2.report)).toEqual(counts(inc1.report));
    expect(inc2.report.tables.find((t: { table: string }) => t.table === 'users').updated).toBeGreaterThan(0);
    expect(inc2.report.check.clean).toBe(true);
    expect(await v1Rows(green2)).toEqual(await v1Rows(p.blue));
    expect(await stageTables(green2)).toEqual([]);
    // Watermarks for the same tables as the one-job run (their values follow each run's own horizon).
    const wm = (url: string) => query(url, `select table_name from bluegreen.watermarks order by 1`);
    expect(await wm(green2)).toEqual(await wm(p.green));
  });

  it('a job whose session dies fails the run and leaves the target exactly as it was, with no stage table', async () => {
    const p = await seeded(20000);
    await syncTo(p, p.green, []);
    await query(p.blue, `update users set full_name = 'x' || id, updated_at = clock_timestamp() where id % 2 = 0`);
    const before = await v1Rows(p.green);
    const wmBefore = await query(p.green, `select * from bluegreen.watermarks order by table_name`);
    const child = startCli(['--mappings', MAPPINGS, 'sync', '--from', 'blue', '--to', 'green', '--full', '--jobs', '2'], { BLUE_URL: p.blue, GREEN_URL: p.green });
    const done = collect(child);
    const pid = await jobCopying(p.green, child);
    expect(pid, 'the run ended before a job was seen copying').toBeDefined();
    await query(p.green, `select pg_terminate_backend($1)`, [pid]);
    const r = await done;
    expect(r.code).not.toBe(0);
    expect(await v1Rows(p.green)).toEqual(before);
    expect(await query(p.green, `select * from bluegreen.watermarks order by table_name`)).toEqual(wmBefore);
    expect(await stageTables(p.green)).toEqual([]);
    // The next run converges.
    await syncTo(p, p.green, ['--jobs', '2']);
    expect(await v1Rows(p.green)).toEqual(await v1Rows(p.blue));
  });

  it('a killed run leaves stage tables that the next run sweeps, saying so', async () => {
    const p = await seeded(20000);
    await syncTo(p, p.green, []);
    const before = await v1Rows(p.green);
    const child = startCli(['--mappings', MAPPINGS, 'sync', '--from', 'blue', '--to', 'green', '--full', '--jobs', '2'], { BLUE_URL: p.blue, GREEN_URL: p.green });
    const done = collect(child);
    expect(await jobCopying(p.green, child), 'the run ended before a job was seen copying').toBeDefined();
    child.kill('SIGKILL');
    await done;
    // Wait until the server has ended the dead run's sessions.
    for (let i = 0; i < 200; i++) {
      const [n] = await query<{ n: number }>(p.green, `select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name like 'bluegreen sync%'`);
      if (n!.n === 0) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(await v1Rows(p.green)).toEqual(before);
    const left = await stageTables(p.green);
    expect(left.length).toBeGreaterThan(0);
    const next = await syncTo(p, p.green, []);
    expect(next.stderr).toMatch(new RegExp(`dropped ${left.length} stage tables`));
    expect(next.report.sweptStageTables).toEqual(left);
    // The run log says so too (status shows the last run's detail).
    const [run] = await query<{ d: { sweptStageTables?: string[] } }>(p.green, `select detail as d from bluegreen.runs order by id desc limit 1`);
    expect(run!.d.sweptStageTables).toEqual(left);
    expect(await stageTables(p.green)).toEqual([]);
    expect(await v1Rows(p.green)).toEqual(await v1Rows(p.blue));
  });
});

describe('import --jobs', () => {
  /** A v1 green, a v2 green, and a full dump of blue. */
  async function dumped(p: Pair) {
    const dump = path.join(await tempDir('jobs'), 'd');
    await p.ok(['export', '--from', 'blue', '--out', dump]);
    return dump;
  }
  async function importInto(p: Pair, url: string, dump: string, args: string[]) {
    const r = await p.run(['import', '--to', 'green', '--in', dump, '--json', ...args], { GREEN_URL: url });
    expect(r.code, r.stderr).toBe(0);
    return { report: report(r), stderr: r.stderr };
  }

  it('loads a dump as one job does, same version (sha256 verified) and converted to v2, with no stage table left', async () => {
    const p = await seeded(3000);
    const dump = await dumped(p);
    const two = await importInto(p, p.green, dump, ['--jobs', '2']);
    expect(two.stderr).toMatch(/staging 4 tables on 2 jobs/);
    expect(two.report.verify).toEqual({ clean: true, method: 'sha256', differing: [] });
    expect(await v1Rows(p.green)).toEqual(await v1Rows(p.blue));
    expect(await stageTables(p.green)).toEqual([]);
    // Converted on the fly into v2: the same rows as a one-job import.
    const v2 = async () => {
      const url = await freshDatabase('v2');
      expect((await p.run(['schema', 'apply', '--to', 'green', '--schema-version', '2'], { GREEN_URL: url })).code).toBe(0);
      return url;
    };
    const [a, b] = [await v2(), await v2()];
    const oneV2 = await importInto(p, a, dump, ['--jobs', '1']);
    const twoV2 = await importInto(p, b, dump, ['--jobs', '2']);
    const rows = (r: { tables: { table: string; rows: number }[] }) => r.tables.map((t) => [t.table, t.rows]);
    expect(rows(twoV2.report)).toEqual(rows(oneV2.report));
    const all = async (url: string) => {
      const tables = await query<{ t: string }>(url, `select tablename as t from pg_tables where schemaname = 'public' order by 1`);
      const out: Record<string, string[]> = {};
      for (const { t } of tables) out[t] = (await query<{ r: string }>(url, `select x::text as r from "${t}" x order by 1`)).map((x) => x.r);
      return out;
    };
    expect(await all(b)).toEqual(await all(a));
    expect(await stageTables(b)).toEqual([]);
  });

  it('a job whose session dies fails the import: the target stays empty, no stage table, a rerun loads it', async () => {
    const p = await seeded(40000);
    const dump = await dumped(p);
    const child = startCli(['--mappings', MAPPINGS, 'import', '--to', 'green', '--in', dump, '--jobs', '2'], { BLUE_URL: p.blue, GREEN_URL: p.green });
    const done = collect(child);
    const pid = await jobCopying(p.green, child);
    expect(pid, 'the import ended before a job was seen copying').toBeDefined();
    await query(p.green, `select pg_terminate_backend($1)`, [pid]);
    const r = await done;
    expect(r.code).not.toBe(0);
    for (const t of TABLES) expect(await query(p.green, `select count(*)::int as n from ${t}`)).toEqual([{ n: 0 }]);
    expect(await stageTables(p.green)).toEqual([]);
    await importInto(p, p.green, dump, ['--jobs', '2']);
    expect(await v1Rows(p.green)).toEqual(await v1Rows(p.blue));
  });
});
