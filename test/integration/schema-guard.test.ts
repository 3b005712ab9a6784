/**
 * A schema.sql holding `BEGIN; … COMMIT;` (as migration files often do) used to end the
 * rolled-back probe transaction early: `bluegreen_probe_*` schemas stayed on the target and
 * a statement after the COMMIT ran against the real tables. It is now refused, exit 2 with
 * file and line, before any of it runs, on every path that runs schema.sql.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { freshDatabase, query } from '../helpers/pg.ts';
import { tempDir } from '../helpers/tmp.ts';

const SCHEMA = `create table users (id int primary key, name text);

BEGIN;
create table audit (id int primary key);
COMMIT;
insert into users values (99, 'written by the probe');
delete from users where id = 1;
`;

let url: string;
let mappings: string;
beforeAll(async () => {
  url = await freshDatabase('schemaguard');
  await query(url, `create table users (id int primary key, name text); insert into users values (1, 'real row')`);
  mappings = await tempDir('schemaguard');
  await mkdir(path.join(mappings, 'v1'));
  await writeFile(path.join(mappings, 'v1', 'schema.sql'), SCHEMA);
});

const probes = async () =>
  (await query<{ n: number }>(url, `select count(*)::int as n from pg_namespace where nspname like 'bluegreen_probe%'`))[0]!.n;

describe('schema.sql with transaction control', () => {
  it('a probe (export detecting the version) refuses it with file and line; no probe schema left, no real row touched', async () => {
    const out = path.join(await tempDir('schemaguard-out'), 'dump');
    const r = await runCli(['--mappings', mappings, 'export', '--from', 'blue', '--out', out, '--log-format', 'text'], { BLUE_URL: url });
    expect(r.stderr).toContain(`${path.join(mappings, 'v1', 'schema.sql')}:3: BEGIN is transaction control`);
    expect(r.stderr).toContain('also at line 5');
    expect(r.stderr).not.toMatch(/\n\s+at /); // one line, no stack
    expect(r.code).toBe(2);
    expect(await probes()).toBe(0);
    expect(await query(url, `select id, name from users order by id`)).toEqual([{ id: 1, name: 'real row' }]);
    expect(await query(url, `select to_regclass('public.audit') as t`)).toEqual([{ t: null }]);
  });

  it('COMMIT inside a DO block or a procedure cannot escape either: the server refuses it inside the probe transaction', async () => {
    const dir = await tempDir('schemaguard-do');
    await mkdir(path.join(dir, 'v1'));
    await writeFile(
      path.join(dir, 'v1', 'schema.sql'),
      `create table users (id int primary key, name text);\ndo $$ begin create table leak (id int); commit; end $$;\ninsert into users values (98, 'after the DO');\n`,
    );
    const out = path.join(await tempDir('schemaguard-out'), 'dump');
    const r = await runCli(['--mappings', dir, 'export', '--from', 'blue', '--out', out, '--log-format', 'text'], { BLUE_URL: url });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/does not apply: invalid transaction termination/);
    expect(await probes()).toBe(0);
    expect(await query(url, `select id, name from users order by id`)).toEqual([{ id: 1, name: 'real row' }]);
  });

  it('schema apply refuses it too and creates nothing', async () => {
    const empty = await freshDatabase('schemaguard_empty');
    const r = await runCli(['--mappings', mappings, 'schema', 'apply', '--to', 'green', '--schema-version', '1', '--log-format', 'text'], { GREEN_URL: empty });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('schema.sql:3: BEGIN is transaction control');
    expect(await query(empty, `select count(*)::int as n from pg_tables where schemaname = 'public'`)).toEqual([{ n: 0 }]);
  });
});
