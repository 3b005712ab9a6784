/**
 * Export then import on real PostgreSQL, as a non-superuser owner: every hostile value
 * survives; every refusal happens before the first write and changes nothing.
 */
import { readFile, writeFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, query } from '../helpers/pg.ts';
import { collect, runCli, startCli, ROOT } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { report } from '../helpers/pair.ts';

const MAPPINGS = path.join(ROOT, 'mappings');

// Dumps here reach tens of MB: removed when the file ends.
const tmp = tempDir;

/** Hostile rows written with plain SQL, independent of the fixture generator. */
const HOSTILE_SQL = `
insert into roles (name, description) values ('admin', null), ('', ''), ('a,b', E'quote " and \\\\ backslash');
insert into users (username, full_name, email, created_at, updated_at) values
  ('null-name', null, null, '2020-01-01 00:00:00+00', '2020-01-01 00:00:00+00'),
  ('empty-name', '', '', '2020-01-01 00:00:00.000001+00', '2020-01-01 00:00:00+00'),
  ('comma', 'Lee, Ann', 'a,b@c', '1999-12-31 23:59:59.999999-08', '2021-06-01 12:00:00+02'),
  ('quote', 'Ann "The" Lee', '"@"', now(), now()),
  ('newline', E'Ann\\nLee\\r\\nX\\rY', E'\\t', now(), now()),
  ('backslash', E'C:\\\\path\\\\N', E'\\\\N', now(), now()),
  ('copy-eod', E'\\\\.', E'\\\\.\\n\\\\.', now(), now()),
  ('unicode', 'Zoë 李 😀 مرحبا e\u0301', 'ü@ß.de', now(), now()),
  ('spaces', '  two  spaces  ', ' ', now(), now()),
  ('long', repeat('x,"\\n', 30000), null, now(), now());
insert into user_roles (user_id, role_id) select u.id, r.id from users u cross join roles r where u.id % 2 = 0;
insert into user_settings (id, user_id, preferences, tags, avatar, balance, last_login, active, birthday) values
  ('00000000-0000-0000-0000-000000000001', 1, '{"z": 1, "a": {"nested": [null, 1e-7, "é"]}, "": ""}', '{}', '\\x', 99999999999999.999999, '2020-02-29 23:59:59.999999+14', true, '0001-01-01'),
  ('ffffffff-ffff-ffff-ffff-ffffffffffff', 2, 'null', '{NULL,"",",","\\"q\\"","a b"}', '\\x00ff00', -99999999999999.999999, '1970-01-01 00:00:00-12', false, '9999-12-31'),
  ('12345678-1234-1234-1234-123456789abc', 3, null, null, null, null, null, null, null),
  ('abcdefab-cdef-abcd-efab-cdefabcdefab', 4, '{}', '{"ü😀"}', '\\xdeadbeef', 0.000001, 'infinity', true, '2000-02-29');
`;

async function seededBlue(): Promise<string> {
  const url = await freshDatabase('blue');
  await runOk(['schema', 'apply', '--to', 'blue', '--to-url', url, '--schema-version', '1']);
  await query(url, HOSTILE_SQL);
  return url;
}

async function runOk(args: string[]) {
  const r = await runCli(['--mappings', MAPPINGS, ...args]);
  if (r.code !== 0) throw new Error(`bluegreen ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r;
}

/** Rows of every v1 table as text, for comparing two databases in SQL terms. */
async function snapshot(url: string) {
  const out: Record<string, string[]> = {};
  for (const t of ['roles', 'users', 'user_roles', 'user_settings']) {
    const rows = await query<{ r: string }>(url, `select t::text as r from ${t} t order by 1`);
    out[t] = rows.map((x) => x.r);
  }
  return out;
}

describe('export then import', () => {
  let blue: string;
  let dump: string;
  beforeAll(async () => {
    blue = await seededBlue();
    dump = path.join(await tmp('dump'), 'd');
    await runOk(['export', '--from', 'blue', '--from-url', blue, '--out', dump]);
  });

  it('carries every hostile value bit-exactly, row for row, as a non-superuser owner', async () => {
    expect(await query(blue, 'select rolsuper from pg_roles where rolname = current_user')).toEqual([{ rolsuper: false }]);
    const green = await freshDatabase('green');
    await runOk(['schema', 'apply', '--to', 'green', '--to-url', green, '--schema-version', '1']);
    await runOk(['import', '--to', 'green', '--to-url', green, '--in', dump]);
    const a = await snapshot(blue);
    const b = await snapshot(green);
    expect(b).toEqual(a);
    expect(a.users).toHaveLength(10);
    // NULL and '' stay apart.
    const e = await query<{ username: string; n: boolean; e: boolean }>(
      green,
      `select username, full_name is null as n, full_name = '' as e from users where username in ('null-name', 'empty-name') order by 1`,
    );
    expect(e).toEqual([
      { username: 'empty-name', n: false, e: true },
      { username: 'null-name', n: true, e: null },
    ]);
  });

  it('writes a manifest with checksums and owner-only files', async () => {
    const manifest = JSON.parse(await readFile(path.join(dump, 'manifest.json'), 'utf8'));
    expect(manifest.format).toBe('bluegreen-dump/1');
    expect(manifest.schemaVersion).toBe(1);
    expect(manifest.tables.map((t: { name: string }) => t.name)).toEqual(['roles', 'users', 'user_roles', 'user_settings']);
    expect(manifest.source.url).not.toContain('owner-secret-pw');
    expect((await stat(dump)).mode & 0o777).toBe(0o700);
    for (const f of await readdir(dump)) expect((await stat(path.join(dump, f))).mode & 0o777).toBe(0o600);
  });

  it('moves identity sequences past imported keys, so the next insert does not collide', async () => {
    const green = await freshDatabase('green');
    await runOk(['schema', 'apply', '--to', 'green', '--to-url', green, '--schema-version', '1']);
    await runOk(['import', '--to', 'green', '--to-url', green, '--in', dump]);
    const [row] = await query<{ id: string }>(green, `insert into users (username) values ('fresh') returning id`);
    expect(Number(row!.id)).toBe(11);
  });
});

describe('refusals change nothing', () => {
  let blue: string;
  let dump: string;
  beforeAll(async () => {
    blue = await seededBlue();
    dump = path.join(await tmp('dump'), 'd');
    await runOk(['export', '--from', 'blue', '--from-url', blue, '--out', dump]);
  });

  async function emptyGreen(version = 1) {
    const green = await freshDatabase('green');
    await runOk(['schema', 'apply', '--to', 'green', '--to-url', green, '--schema-version', String(version)]);
    return green;
  }

  it('refuses a dump with one flipped byte (exit 2), before writing anything', async () => {
    const bad = path.join(await tmp('bad'), 'd');
    await runOk(['export', '--from', 'blue', '--from-url', blue, '--out', bad]);
    const file = path.join(bad, 'users.csv');
    const bytes = await readFile(file);
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0x01;
    await writeFile(file, bytes);
    const green = await emptyGreen();
    const r = await runCli(['--mappings', MAPPINGS, 'import', '--to', 'green', '--to-url', green, '--in', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('users.csv is corrupt');
    expect(r.stderr).not.toContain('    at '); // no stack trace for an expected failure
    expect(await query(green, 'select * from users')).toEqual([]);
    expect(await query(green, `select 1 from pg_namespace where nspname = 'bluegreen'`)).toEqual([]);
  });

  it('refuses an invalid manifest, naming the file and JSON path', async () => {
    const bad = path.join(await tmp('bad'), 'd');
    await runOk(['export', '--from', 'blue', '--from-url', blue, '--out', bad]);
    const mf = path.join(bad, 'manifest.json');
    const m = JSON.parse(await readFile(mf, 'utf8'));
    m.tables[1].rows = -1;
    delete m.tables[0].sha256;
    await writeFile(mf, JSON.stringify(m));
    const r = await runCli(['--mappings', MAPPINGS, 'import', '--to', 'green', '--to-url', await emptyGreen(), '--in', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('/tables/1/rows');
    expect(r.stderr).toContain('missing required key "sha256"');
  });

  it('refuses a target at another version', async () => {
    const green = await freshDatabase('green');
    // A database that is not at v1: drop a column.
    await runOk(['schema', 'apply', '--to', 'green', '--to-url', green, '--schema-version', '1']);
    await query(green, 'alter table users drop column email');
    const r = await runCli(['--mappings', MAPPINGS, 'import', '--to', 'green', '--to-url', green, '--in', dump]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/matches no version.*closest is v1.*column users\.email.*is missing/);
    expect(await query(green, 'select * from roles')).toEqual([]);
  });

  it('refuses a non-empty target without --truncate, and replaces it with --truncate', async () => {
    const green = await emptyGreen();
    await query(green, `insert into roles (name) values ('already here')`);
    const r = await runCli(['--mappings', MAPPINGS, 'import', '--to', 'green', '--to-url', green, '--in', dump]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--truncate');
    expect(await query(green, 'select name from roles')).toEqual([{ name: 'already here' }]);
    await runOk(['import', '--to', 'green', '--to-url', green, '--in', dump, '--truncate']);
    expect(await snapshot(green)).toEqual(await snapshot(blue));
  });

  it('leaves the target unchanged when the import is SIGKILLed midway', async () => {
    // A big table makes the load take long enough to kill it in the middle.
    const big = await freshDatabase('big');
    await runOk(['schema', 'apply', '--to', 'blue', '--to-url', big, '--schema-version', '1']);
    await query(big, `insert into users (username, full_name) select 'u' || g, repeat('n', 200) from generate_series(1, 300000) g`);
    const bigDump = path.join(await tmp('big'), 'd');
    await runOk(['export', '--from', 'blue', '--from-url', big, '--out', bigDump]);
    const green = await emptyGreen();
    const child = startCli(['--mappings', MAPPINGS, 'import', '--to', 'green', '--to-url', green, '--in', bigDump, '--log-format', 'json']);
    const done = collect(child);
    // Kill once the COPY into users has started on the server.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const active = await query<{ n: number }>(
        green,
        `select count(*)::int as n from pg_stat_activity where datname = current_database() and query ilike 'COPY "users"%'`,
      );
      if (active[0]!.n > 0) break;
      if (Date.now() > deadline) throw new Error('import never reached the users COPY');
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    const r = await done;
    expect(r.signal).toBe('SIGKILL');
    // The server notices the dead session and rolls back; wait for it to go.
    for (let i = 0; i < 100; i++) {
      const left = await query<{ n: number }>(green, `select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name like 'bluegreen%'`);
      if (left[0]!.n === 0) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(await query(green, 'select count(*)::int as n from users')).toEqual([{ n: 0 }]);
    expect(await query(green, 'select count(*)::int as n from roles')).toEqual([{ n: 0 }]);
    // Indexes and constraints dropped for the bulk load are back.
    const idx = await query<{ n: number }>(green, `select count(*)::int as n from pg_indexes where tablename = 'users'`);
    expect(idx[0]!.n).toBe(3);
    // And a rerun converges.
    await runOk(['import', '--to', 'green', '--to-url', green, '--in', bigDump]);
    expect(await query(green, 'select count(*)::int as n from users')).toEqual([{ n: 300000 }]);
  });
});

describe('incremental export and import', () => {
  it('export --since carries changed rows and deletes; re-applying changes nothing', async () => {
    const blue = await seededBlue();
    const green = await freshDatabase('green');
    await runOk(['schema', 'apply', '--to', 'green', '--to-url', green, '--schema-version', '1']);
    const full = path.join(await tmp('full'), 'd');
    const first = report((await runOk(['export', '--from', 'blue', '--from-url', blue, '--out', full, '--json'])));
    await runOk(['import', '--to', 'green', '--to-url', green, '--in', full]);
    // Changes after the full export: an update, an insert, deletes in parent and child.
    await query(blue, `update users set full_name = 'Changed Name' where username = 'comma'`);
    await query(blue, `insert into users (username, full_name) values ('new-one', null)`);
    await query(blue, `delete from user_settings where id = '12345678-1234-1234-1234-123456789abc'`);
    await query(blue, `delete from users where username = 'spaces'`);
    const inc = path.join(await tmp('inc'), 'd');
    const second = report((await runOk(['export', '--from', 'blue', '--from-url', blue, '--out', inc, '--since', first.nextSince, '--json'])));
    expect(second.mode).toBe('incremental');
    const manifest = JSON.parse(await readFile(path.join(inc, 'manifest.json'), 'utf8'));
    const users = manifest.tables.find((t: { name: string }) => t.name === 'users');
    expect(users.rows).toBe(2); // the update and the insert, not the 10 seeded rows
    expect(users.keysFile.rows).toBe(10);
    expect(users.watermark.from).toBe(first.nextSince);
    const r = report((await runOk(['import', '--to', 'green', '--to-url', green, '--in', inc, '--json'])));
    expect(r.tables.find((t: { table: string }) => t.table === 'users')).toMatchObject({ inserted: 1, updated: 1, deleted: 1 });
    expect(await snapshot(green)).toEqual(await snapshot(blue));
    const again = report((await runOk(['import', '--to', 'green', '--to-url', green, '--in', inc, '--json'])));
    for (const t of again.tables) expect([t.table, t.inserted, t.updated, t.deleted]).toEqual([t.table, 0, 0, 0]);
  });

  it('verifies a full import bit-exactly and reports it', async () => {
    const blue = await seededBlue();
    const green = await freshDatabase('green');
    await runOk(['schema', 'apply', '--to', 'green', '--to-url', green, '--schema-version', '1']);
    const d = path.join(await tmp('full'), 'd');
    await runOk(['export', '--from', 'blue', '--from-url', blue, '--out', d]);
    const r = report((await runOk(['import', '--to', 'green', '--to-url', green, '--in', d, '--json'])));
    expect(r.verify).toEqual({ clean: true, method: 'sha256', differing: [] });
  });
});
