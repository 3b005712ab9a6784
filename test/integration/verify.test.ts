/**
 * verify on real PostgreSQL: every planted difference is named with its exact key and
 * kind; equal data full of hostile values is clean; lossy columns are excluded and
 * listed; both directions and across versions.
 */
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { query } from '../helpers/pg.ts';
import { makePair, report, MAPPINGS, type Pair } from '../helpers/pair.ts';

interface TableReport {
  table: string;
  sourceRows: number;
  targetRows: number;
  missing: { count: number; keys: string[] };
  extra: { count: number; keys: string[] };
  changed: { count: number; keys: string[] };
  excluded: string[];
}

async function verifyJson(p: Pair, args: string[] = []) {
  const r = await p.run(['verify', '--json', ...args]);
  return { code: r.code, report: report<{ clean: boolean; tables: TableReport[] }>(r) };
}

function table(r: { tables: TableReport[] }, name: string): TableReport {
  return r.tables.find((t) => t.table === name)!;
}

describe('verify, same version', () => {
  let p: Pair;
  beforeAll(async () => {
    p = await makePair(1, 1);
    await p.ok(['seed', '--to', 'blue', '--rows', '400']);
    await p.ok(['sync', '--no-verify']);
  });

  it('finds equal hostile data clean (exit 0) and records the result on the target', async () => {
    const { code, report: r } = await verifyJson(p);
    expect(code).toBe(0);
    expect(r.clean).toBe(true);
    expect(table(r, 'users').sourceRows).toBe(400);
    expect(await query(p.green, `select clean from bluegreen.verifies order by id desc limit 1`)).toEqual([{ clean: true }]);
  });

  // Each plant is made on green and undone after, so the cases stay independent.
  const plants: { name: string; table: string; kind: 'missing' | 'extra' | 'changed'; key: string; plant: string; undo: string }[] = [
    { name: 'a missing row', table: 'user_roles', kind: 'missing', key: '(user_id, role_id)=', plant: `delete from user_roles where (user_id, role_id) = (select user_id, role_id from user_roles order by 1, 2 limit 1) returning user_id, role_id`, undo: '' },
    { name: 'an extra row', table: 'roles', kind: 'extra', key: 'id=9999', plant: `insert into roles (id, name) values (9999, 'planted')`, undo: `delete from roles where id = 9999` },
    { name: "NULL vs ''", table: 'users', kind: 'changed', key: 'id=11', plant: `update users set email = case when email is null then '' else null end where id = 11`, undo: '' },
    { name: 'a trailing space', table: 'users', kind: 'changed', key: 'id=12', plant: `update users set username = username || ' ' where id = 12`, undo: `update users set username = rtrim(username, ' ') where id = 12` },
    { name: 'a microsecond', table: 'users', kind: 'changed', key: 'id=13', plant: `update users set created_at = created_at + interval '1 microsecond' where id = 13`, undo: `update users set created_at = created_at - interval '1 microsecond' where id = 13` },
    { name: 'a numeric digit at the 6th decimal', table: 'user_settings', kind: 'changed', key: 'id=', plant: `update user_settings set balance = coalesce(balance, 0) + 0.000001 where id = (select id from user_settings where balance <> 'NaN' or balance is null order by id limit 1)`, undo: '' },
    { name: 'a jsonb value', table: 'user_settings', kind: 'changed', key: 'id=', plant: `update user_settings set preferences = coalesce(preferences, '{}') || '{"planted": 1}' where id = (select id from user_settings order by id offset 3 limit 1)`, undo: '' },
    { name: 'a text[] element', table: 'user_settings', kind: 'changed', key: 'id=', plant: `update user_settings set tags = coalesce(tags, '{}') || '{x}'::text[] where id = (select id from user_settings order by id offset 5 limit 1)`, undo: '' },
    { name: 'a bytea byte', table: 'user_settings', kind: 'changed', key: 'id=', plant: `update user_settings set avatar = coalesce(avatar, '') || '\\x00'::bytea where id = (select id from user_settings order by id offset 7 limit 1)`, undo: '' },
    { name: 'a boolean', table: 'user_settings', kind: 'changed', key: 'id=', plant: `update user_settings set active = not coalesce(active, false) where id = (select id from user_settings order by id offset 9 limit 1)`, undo: '' },
    { name: 'a date', table: 'user_settings', kind: 'changed', key: 'id=', plant: `update user_settings set birthday = '2001-02-03' where id = (select id from user_settings where birthday is distinct from '2001-02-03' order by id offset 11 limit 1)`, undo: '' },
  ];

  for (const c of plants) {
    it(`names ${c.name} as ${c.kind} in ${c.table}`, async () => {
      // Fresh, equal pair state for each plant: resync from blue first.
      await p.ok(['sync', '--full', '--no-verify']);
      await query(p.green, c.plant);
      const { code, report: r } = await verifyJson(p);
      expect(code).toBe(3);
      const t = table(r, c.table);
      expect(t[c.kind].count).toBe(1);
      expect(t[c.kind].keys[0]).toContain(c.key);
      for (const other of r.tables) {
        const total = other.missing.count + other.extra.count + other.changed.count;
        expect([other.table, total]).toEqual([other.table, other.table === c.table ? 1 : 0]);
      }
      if (c.undo) await query(p.green, c.undo);
    });
  }

  it('does not report a jsonb written with its keys in another order (jsonb normalises)', async () => {
    await p.ok(['sync', '--full', '--no-verify']);
    await query(p.blue, `update user_settings set preferences = '{"a": 1, "b": [1, 2]}' where id = (select id from user_settings order by id limit 1)`);
    await p.ok(['sync', '--no-verify']);
    // With the app's updated_at trigger off, so only the jsonb is rewritten.
    await query(
      p.green,
      `alter table user_settings disable trigger user;
       update user_settings set preferences = '{"b": [1, 2], "a": 1}' where id = (select id from user_settings order by id limit 1);
       alter table user_settings enable trigger user;`,
    );
    const { code } = await verifyJson(p);
    expect(code).toBe(0);
  });

  it('names every key when there are many, and caps the list at --keys', async () => {
    await p.ok(['sync', '--full', '--no-verify']);
    await query(p.green, `update users set email = 'x' || id where id between 100 and 149`);
    const { report: r } = await verifyJson(p, ['--keys', '5']);
    expect(table(r, 'users').changed.count).toBe(50);
    expect(table(r, 'users').changed.keys).toEqual(['id=100', 'id=101', 'id=102', 'id=103', 'id=104']);
  });
});

describe('verify across versions', () => {
  it('v1 -> v2 and back: clean after sync, then names a change made on either side', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '300']);
    const s = report(await p.ok(['sync', '--json']));
    expect(s.verify.clean).toBe(true);
    // Backwards through the down mapping, also clean.
    expect((await p.run(['verify', '--from', 'green', '--to', 'blue'])).code).toBe(0);
    // A change on green's split column shows up as a change of users on both directions.
    await query(p.green, `update users set last_name = coalesce(last_name, '') || 'x' where id = 21`);
    const up = await verifyJson(p);
    expect(table(up.report, 'users').changed.keys).toEqual(['id=21']);
    const down = await verifyJson(p, ['--from', 'green', '--to', 'blue']);
    expect(table(down.report, 'users').changed.keys).toEqual(['id=21']);
  });

  it('excludes and lists a target column the mapping does not determine', async () => {
    // An app whose v2 adds users.nickname left to its DEFAULT: nothing in v1 determines
    // it, so verify v1 -> v2 must not compare it, and must say so.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bg-maps-'));
    await cp(MAPPINGS + '/v1', dir + '/v1', { recursive: true });
    await mkdir(dir + '/v2');
    const v1 = await readFile(dir + '/v1/schema.sql', 'utf8');
    await writeFile(dir + '/v2/schema.sql', v1.replace('  email      text,', "  email      text,\n  nickname   text NOT NULL DEFAULT 'none',"));
    const schema = path.join(MAPPINGS, '../src/schemas/mapping.schema.json');
    await writeFile(dir + '/v2/up.json', JSON.stringify({ $schema: schema, from: 1, to: 2, tables: { users: { from: 'users', ops: [{ op: 'default', column: 'nickname' }] } } }));
    await writeFile(
      dir + '/v2/down.json',
      JSON.stringify({ $schema: schema, from: 2, to: 1, tables: { users: { from: 'users', ops: [{ op: 'drop', column: 'nickname' }] } }, loses: [{ table: 'users', column: 'nickname', why: 'v1 has no nickname' }] }),
    );
    const p = await makePair(1, 2, dir);
    await query(p.blue, `insert into users (username) values ('a'), ('b')`);
    await p.ok(['sync', '--no-verify']);
    // The app's trigger would also move updated_at; keep this a nickname-only change.
    await query(p.green, `alter table users disable trigger user; update users set nickname = 'set on green' where username = 'a'; alter table users enable trigger user`);
    const up = await verifyJson(p);
    expect(up.code).toBe(0);
    expect(table(up.report, 'users').excluded).toEqual(['nickname']);
    // Going down, nickname simply is not in v1: nothing to exclude, and still clean.
    const down = await verifyJson(p, ['--from', 'green', '--to', 'blue']);
    expect(down.code).toBe(0);
  });
});
