/**
 * `convert` and `import` converting on the fly, on real PostgreSQL with the sample app's
 * hostile data: blue v1 -> dumps at v2 and v3 -> green databases;
 * green v3 -> back to v1, by convert and by import on the fly; every lossless column equal
 * row for row to the original blue; the JS face equal to the SQL face of a live `sync`.
 */
import { readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, query } from '../helpers/pg.ts';
import { runCli, ROOT } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { report } from '../helpers/pair.ts';

const MAPPINGS = path.join(ROOT, 'mappings');
const V1 = ['roles', 'users', 'user_roles', 'user_settings'];
const V2 = V1;
const V3 = ['groups', 'users', 'user_profiles', 'user_groups', 'user_settings'];

let catalogUrl: string;
let cache: string;

const tmp = tempDir;

async function run(args: string[]) {
  return runCli(['--mappings', MAPPINGS, ...args]);
}
async function ok(args: string[]) {
  const r = await run(args);
  if (r.code !== 0) throw new Error(`bluegreen ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r;
}
/** Offline commands learn catalogs on a scratch database, cached per test file. */
const offline = () => ['--catalog-url', catalogUrl, '--catalog-cache', cache];

async function databaseAt(version: number, label = 'green'): Promise<string> {
  const url = await freshDatabase(label);
  await ok(['schema', 'apply', '--to', label, '--to-url', url, '--schema-version', String(version)]);
  return url;
}

/** Every row of every table as PostgreSQL's text, sorted: equal snapshots mean equal data. */
async function snapshot(url: string, tables: string[]) {
  const out: Record<string, string[]> = {};
  for (const t of tables) out[t] = (await query<{ r: string }>(url, `select t::text as r from ${t} t order by 1`)).map((x) => x.r);
  return out;
}
async function rows(url: string, sql: string): Promise<string[]> {
  return (await query<{ r: string }>(url, `select r::text as r from (${sql}) r order by 1`)).map((x) => x.r);
}

async function exportTo(url: string, extra: string[] = []): Promise<string> {
  const dir = path.join(await tmp('dump'), 'd');
  await ok(['export', '--from', 'src', '--from-url', url, '--out', dir, ...extra]);
  return dir;
}
async function convert(dir: string, version: number): Promise<string> {
  const out = path.join(await tmp('conv'), 'd');
  await ok(['convert', '--in', dir, '--to-version', String(version), '--out', out, ...offline()]);
  return out;
}

let blue: string;
let dumpV1: string;

beforeAll(async () => {
  catalogUrl = await freshDatabase('catalogs');
  cache = await tmp('catalog-cache');
  blue = await databaseAt(1, 'blue');
  await ok(['seed', '--to', 'blue', '--to-url', blue, '--rows', '300']);
  dumpV1 = await exportTo(blue);
});

describe('blue v1 -> green v2 and v3 -> back to v1', () => {
  let green2: string;
  let green3: string;
  beforeAll(async () => {
    green2 = await databaseAt(2);
    green3 = await databaseAt(3);
    await ok(['import', '--to', 'green', '--to-url', green2, '--in', await convert(dumpV1, 2)]);
    await ok(['import', '--to', 'green', '--to-url', green3, '--in', await convert(dumpV1, 3)]);
  });

  it('v2 carries every column the mapping keeps, row for row', async () => {
    const n = await query<{ n: number }>(blue, 'select count(*)::int as n from users');
    expect(n[0]!.n).toBe(300);
    expect(await snapshot(green2, ['roles'])).toEqual(await snapshot(blue, ['roles']));
    expect(await rows(green2, 'select id, login, email, created_at, updated_at from users')).toEqual(
      await rows(blue, 'select id, username, email, created_at, updated_at from users'),
    );
    // full_name comes back from its split exactly (the join rule of down.json).
    expect(await rows(green2, `select id, case when first_name is null then null when last_name is null then first_name else first_name || ' ' || last_name end from users`)).toEqual(
      await rows(blue, 'select id, full_name from users'),
    );
    expect(await snapshot(green2, ['user_roles'])).toEqual(await snapshot(blue, ['user_roles']));
    expect(await rows(green2, `select id, user_id, preferences, tags, avatar, balance, last_login, status, birthday, updated_at from user_settings`)).toEqual(
      await rows(blue, `select id, user_id, preferences, tags, avatar, balance, last_login, case active when true then 'active' when false then 'disabled' else 'unknown' end, birthday, updated_at from user_settings`),
    );
  });

  it('v3 splits users into users + user_profiles and renames roles to groups, row for row', async () => {
    expect((await snapshot(green3, ['groups'])).groups).toEqual((await snapshot(blue, ['roles'])).roles);
    expect(await rows(green3, 'select id, login, created_at, updated_at from users')).toEqual(await rows(blue, 'select id, username, created_at, updated_at from users'));
    expect(await rows(green3, 'select id, email, updated_at from user_profiles')).toEqual(await rows(blue, 'select id, email, updated_at from users'));
    expect(await rows(green3, 'select user_id, group_id, granted_at, updated_at from user_groups')).toEqual(await rows(blue, 'select user_id, role_id, granted_at, updated_at from user_roles'));
  });

  it('green v3 -> dump -> convert to v1 -> import equals the original blue, every table, row for row', async () => {
    const dumpV3 = await exportTo(green3);
    const back = await convert(dumpV3, 1);
    const m = JSON.parse(await readFile(path.join(back, 'manifest.json'), 'utf8'));
    expect(m).toMatchObject({ schemaVersion: 1, convertedFrom: 3 });
    expect(m.tables.map((t: { name: string }) => t.name)).toEqual(V1);
    const fresh = await databaseAt(1);
    await ok(['import', '--to', 'green', '--to-url', fresh, '--in', back]);
    expect(await snapshot(fresh, V1)).toEqual(await snapshot(blue, V1));
  });

  it('import converts a v3 dump on the fly into a fresh v1, equal to the original blue', async () => {
    const dumpV3 = await exportTo(green3);
    const fresh = await databaseAt(1);
    const r = await ok(['import', '--to', 'green', '--to-url', fresh, '--in', dumpV3, '--json']);
    expect(report(r)).toMatchObject({ version: 1, dumpVersion: 3 });
    expect(await snapshot(fresh, V1)).toEqual(await snapshot(blue, V1));
    // Bulk-load DDL came back and the identity sequence moved past the imported ids.
    const [row] = await query<{ id: string }>(fresh, `insert into users (username) values ('after-import') returning id`);
    expect(Number(row!.id)).toBe(301);
  });
});

describe('import on the fly equals a live sync (JS face = SQL face on real data)', () => {
  for (const version of [2, 3]) {
    it(`v1 dump imported into v${version} equals sync blue(v1) -> green(v${version}), row for row`, async () => {
      const viaImport = await databaseAt(version);
      await ok(['import', '--to', 'green', '--to-url', viaImport, '--in', dumpV1]);
      const viaSync = await databaseAt(version);
      await ok(['sync', '--from', 'blue', '--from-url', blue, '--to', 'green', '--to-url', viaSync, '--full']);
      const tables = version === 2 ? V2 : V3;
      const a = await snapshot(viaImport, tables);
      expect(a.users!.length).toBe(300);
      expect(a).toEqual(await snapshot(viaSync, tables));
    });
  }

  it('refuses a non-empty target before converting anything', async () => {
    const green = await databaseAt(2);
    await query(green, `insert into roles (name) values ('already here')`);
    const r = await run(['import', '--to', 'green', '--to-url', green, '--in', dumpV1]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--truncate');
    expect(await query(green, 'select name from roles')).toEqual([{ name: 'already here' }]);
  });

  it('a value the down mapping cannot convert rolls the whole import back', async () => {
    const src = await databaseAt(2, 'blue');
    await ok(['import', '--to', 'blue', '--to-url', src, '--in', dumpV1]);
    await query(src, `alter table user_settings drop constraint user_settings_status_check`);
    await query(src, `update user_settings set status = 'suspended' where id = (select id from user_settings order by id limit 1)`);
    // Without its check the database is no longer v2 as detection sees it: say which it is.
    const dump = await exportTo(src, ['--schema-version', '2']);
    const green = await databaseAt(1);
    const r = await run(['import', '--to', 'green', '--to-url', green, '--in', dump]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/suspended/);
    for (const t of V1) expect(await query(green, `select count(*)::int as n from ${t}`)).toEqual([{ n: 0 }]);
    expect(await query(green, `select 1 from pg_namespace where nspname = 'bluegreen'`)).toEqual([]);
  });
});

describe('convert refuses a damaged dump before writing', () => {
  it('one flipped byte: exit 2, naming the file, output not created', async () => {
    const bad = await exportTo(blue);
    const file = path.join(bad, 'user_settings.csv');
    const bytes = await readFile(file);
    bytes[Math.floor(bytes.length / 2)] = bytes[Math.floor(bytes.length / 2)]! ^ 0x01;
    await writeFile(file, bytes);
    const out = path.join(await tmp('conv'), 'd');
    const r = await run(['convert', '--in', bad, '--to-version', '2', '--out', out, ...offline()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('user_settings.csv is corrupt');
    expect(r.stderr).not.toContain('    at ');
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
    // An existing empty output directory is left empty.
    await mkdir(out);
    expect((await run(['convert', '--in', bad, '--to-version', '2', '--out', out, ...offline()])).code).toBe(2);
    expect(await readdir(out)).toEqual([]);
  });

  it('refuses a non-empty output directory and an unknown version', async () => {
    const out = await tmp('conv');
    await writeFile(path.join(out, 'keep'), 'x');
    const r = await run(['convert', '--in', dumpV1, '--to-version', '2', '--out', out, ...offline()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is not empty');
    const r2 = await run(['convert', '--in', dumpV1, '--to-version', '9', '--out', path.join(out, 'x'), ...offline()]);
    expect(r2.code).toBe(2);
  });
});

describe('catalogs offline', () => {
  it('with a warm cache convert needs no database', async () => {
    await convert(dumpV1, 3); // warms the cache for v1..v3
    const cwd = await tmp('nodb'); // no bluegreen.config.json, no .bluegreen/clusters.json here
    const out = path.join(await tmp('conv'), 'd');
    const warm = await runCli(['--mappings', MAPPINGS, 'convert', '--in', dumpV1, '--to-version', '3', '--out', out, '--catalog-cache', cache], {}, cwd);
    expect(warm.code, warm.stderr).toBe(0);
  });

  it('a cold cache learns on a scratch server, never on a configured environment it was not told to use', async () => {
    const cwd = await tmp('cold');
    // blue is configured and reachable: before, a cold cache learnt its catalogs there.
    const blue = await freshDatabase('coldblue');
    const out = path.join(cwd, 'o1');
    const cold = await runCli(['--mappings', MAPPINGS, 'convert', '--in', dumpV1, '--to-version', '3', '--out', out, '--catalog-cache', path.join(cwd, 'cache')], { BLUE_URL: blue }, cwd);
    expect(cold.code, cold.stderr).toBe(0);
    expect(cold.stderr).toMatch(/learning the catalogs of v1, v2, v3 from schema.sql on a scratch server/);
    expect(cold.stderr).not.toMatch(/ on blue/);
    expect((await readdir(out)).sort()).toContain('manifest.json');
    // The scratch server is gone with the command.
    const port = /started a scratch PostgreSQL on 127\.0\.0\.1:(\d+)/.exec(cold.stderr)?.[1];
    expect(port).toBeDefined();
    await expect(query(`postgres://postgres@127.0.0.1:${port}/postgres`, 'select 1')).rejects.toThrow(/ECONNREFUSED/);
  });

  it('a cold cache learns on the local clusters of `bluegreen env up` when they answer', async () => {
    const cwd = await tmp('local');
    // The record env up keeps (.bluegreen/clusters.json), naming a database of the test server;
    // a stopped local cluster (green, nothing listens on port 1) is passed over.
    const local = await freshDatabase('localblue');
    await mkdir(path.join(cwd, '.bluegreen'), { recursive: true });
    await writeFile(
      path.join(cwd, '.bluegreen', 'clusters.json'),
      JSON.stringify({ green: { url: 'postgres://app@127.0.0.1:1/app', port: 1, dataDir: '/nonexistent' }, blue: { url: local, port: 0, dataDir: '/nonexistent' } }),
    );
    const r = await runCli(['--mappings', MAPPINGS, 'convert', '--in', dumpV1, '--to-version', '2', '--out', path.join(cwd, 'o'), '--catalog-cache', path.join(cwd, 'cache')], {}, cwd);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/learning the catalogs of v1, v2 from schema.sql on local blue \(bluegreen env up\)/);
    expect(r.stderr).not.toMatch(/scratch/);
  });

  it('a named --catalog-url that does not answer is refused, naming it, before anything is written', async () => {
    const cwd = await tmp('unreachable');
    const cold = await runCli(
      ['--mappings', MAPPINGS, 'convert', '--in', dumpV1, '--to-version', '3', '--out', path.join(cwd, 'o2'), '--catalog-cache', path.join(cwd, 'empty-cache'), '--catalog-url', 'postgres://nobody@127.0.0.1:1/none'],
      {},
      cwd,
    );
    expect(cold.code).toBe(1);
    expect(cold.stderr).toMatch(/cannot learn the catalogs of v1, v2, v3 from schema.sql: the server to learn them on did not answer \(--catalog-url: /);
    expect(cold.stderr).toMatch(/--catalog-url URL/);
    await expect(readdir(path.join(cwd, 'o2'))).rejects.toThrow(/ENOENT/);
  });
});
