/**
 * verify's binary row hash (src/verify/encoding.ts) on real PostgreSQL: it must never call
 * two values equal that the row text tells apart, and it must call equal what both sides
 * produce equal (the source cast to the target's type). Where a plain type hash would be
 * fooled (numeric scale, int8/timestamptz folding, a bucket sum of swapped values), the
 * test also shows that the naive hash collides, so these cases really test the encoding.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connect } from '../../src/db/connect.ts';
import { fieldSql, readEncodings, rowHashSql } from '../../src/verify/encoding.ts';
import { freshDatabase, query } from '../helpers/pg.ts';
import { makePair, report, MAPPINGS, type Pair } from '../helpers/pair.ts';
import { verify } from '../../src/verify/verify.ts';
import { silentLogger } from '../../src/log.ts';

let db: pg.Client;
let n = 0;

beforeAll(async () => {
  db = await connect(await freshDatabase('hash'));
});
afterAll(async () => {
  await db?.end();
});

/**
 * Makes a table with `types` as columns c0, c1, …, inserts each row of `rows` (SQL
 * expressions, one per column) and returns every row's verify hash (target side) and the
 * naive `hash_record_extended` over the raw columns, in insertion order.
 */
async function hashes(types: string[], rows: string[][], after = ''): Promise<{ ours: string[]; naive: string[] }> {
  const t = `t${n++}`;
  const cols = types.map((ty, i) => `c${i} ${ty}`).join(', ');
  await db.query(`create table ${t} (id int primary key, ${cols})`);
  for (const [i, r] of rows.entries()) await db.query(`insert into ${t} values (${i}, ${r.join(', ')})`);
  if (after) await db.query(after.replaceAll('$T', t));
  const enc = (await readEncodings(db, [t])).get(t)!;
  const names = types.map((_, i) => `c${i}`);
  const ours = rowHashSql(names.map((c) => fieldSql(`q.${c}`, enc.get(c)!)));
  const naive = `hash_record_extended(row(${names.map((c) => `q.${c}`).join(', ')}), 0)`;
  const r = await db.query<{ h: string; n: string }>(`select ${ours}::text as h, ${naive}::text as n from ${t} q order by id`);
  return { ours: r.rows.map((x) => x.h), naive: r.rows.map((x) => x.n) };
}

describe('the binary row hash tells apart what the text tells apart', () => {
  // [what, column types, row A, row B, does a naive hash_record_extended collide?]
  const pairs: [string, string[], string[], string[], boolean][] = [
    ['numeric scale 1.0 vs 1.00', ['numeric'], ['1.0'], ['1.00'], true],
    ['numeric NaN vs Infinity', ['numeric'], [`'NaN'`], [`'Infinity'`], false],
    ['numeric Infinity vs -Infinity', ['numeric'], [`'Infinity'`], [`'-Infinity'`], false],
    ['float8 0 vs -0', ['float8'], ['0'], [`'-0'`], false],
    ['float8 NaN vs Infinity', ['float8'], [`'NaN'`], [`'Infinity'`], false],
    ["interval '1 day' vs '24 hours'", ['interval'], [`'1 day'`], [`'24 hours'`], true],
    ["interval '1 mon' vs '30 days'", ['interval'], [`'1 mon'`], [`'30 days'`], true],
    ['jsonb number scale', ['jsonb'], [`'{"a": 1.0}'`], [`'{"a": 1.00}'`], true],
    ["text '' vs NULL", ['text'], [`''`], ['NULL'], false],
    ["bytea '' vs NULL", ['bytea'], [`''`], ['NULL'], false],
    ['bytea one zero byte vs two', ['bytea'], [`'\\x00'`], [`'\\x0000'`], false],
    ['text[] {NULL} vs {"NULL"}', ['text[]'], [`'{NULL}'`], [`'{"NULL"}'`], false],
    ['int[] {1,2} vs {{1},{2}}', ['int[]'], [`'{1,2}'`], [`'{{1},{2}}'`], true],
    ['int[] lower bound 1 vs 0', ['int[]'], [`'{1,2}'`], [`'[0:1]={1,2}'`], true],
    ['numeric[] scale', ['numeric[]'], [`'{1.0}'`], [`'{1.00}'`], true],
    ["('ab','c') vs ('a','bc') across columns", ['text', 'text'], [`'ab'`, `'c'`], [`'a'`, `'bc'`], false],
    ["(NULL,'a') vs ('a',NULL)", ['text', 'text'], ['NULL', `'a'`], [`'a'`, 'NULL'], false],
    ['timestamptz 1 µs apart', ['timestamptz'], [`'2026-01-01 00:00:00+00'`], [`'2026-01-01 00:00:00.000001+00'`], false],
    // 0 and 2^32+1 µs after 2000-01-01: int8's hash folds the high half into the low one.
    ['timestamptz 71.6 minutes apart (hash folding)', ['timestamptz'], [`'2000-01-01 00:00:00+00'`], [`'2000-01-01 01:11:34.967297+00'`], true],
    ['bigint 0 vs 4294967297 (hash folding)', ['bigint'], ['0'], ['4294967297'], true],
    ["timetz '12:00+01' vs '11:00+00'", ['timetz'], [`'12:00+01'`], [`'11:00+00'`], false],
    ["char(3) 'a' vs ' a'", ['char(3)'], [`'a'`], [`' a'`], false],
    ['inet /8 vs /32', ['inet'], [`'10.0.0.1/8'`], [`'10.0.0.1/32'`], false],
    ['uuid', ['uuid'], [`'00000000-0000-0000-0000-000000000001'`], [`'00000000-0000-0000-0000-000000000002'`], false],
    ['boolean', ['boolean'], ['true'], ['false'], false],
    ['date', ['date'], [`'2026-01-01'`], [`'2026-01-02'`], false],
    ['é precomposed vs decomposed', ['text'], [`U&'\\00E9'`], [`U&'e\\0301'`], false],
  ];

  for (const [what, types, a, b, naiveCollides] of pairs) {
    it(what, async () => {
      const h = await hashes(types, [a, b]);
      expect(h.ours[0]).not.toBe(h.ours[1]);
      // Where a type's own hash is fooled, this proves the case exercises the encoding.
      if (naiveCollides) expect(h.naive[0]).toBe(h.naive[1]);
    });
  }

  it("text under a case-insensitive collation: 'A' vs 'a'", async () => {
    await db.query(`create collation if not exists ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)`);
    const h = await hashes(['text collate ci'], [[`'A'`], [`'a'`]]);
    expect(h.ours[0]).not.toBe(h.ours[1]);
    expect(h.naive[0]).toBe(h.naive[1]);
  });

  it('a bucket sum sees two rows swapping a value (row hashes are mixed, not linear)', async () => {
    const sum = async (rows: string[][]) => {
      const h = await hashes(['int', 'text'], rows);
      const s = (xs: string[]) => xs.reduce((acc, x) => BigInt.asIntN(64, acc + BigInt(x)), 0n);
      return { ours: s(h.ours), naive: s(h.naive) };
    };
    const before = await sum([['1', `'x'`], ['2', `'y'`]]);
    const swapped = await sum([['1', `'y'`], ['2', `'x'`]]);
    expect(swapped.ours).not.toBe(before.ours);
    expect(swapped.naive).toBe(before.naive);
  });
});

describe('the binary row hash calls equal what is equal', () => {
  // [what, target type, stored on the target, source expression of another type]
  const equal: [string, string, string, string][] = [
    ['numeric rescaled by the target type', 'numeric(20,6)', '1.5', `'1.5'::numeric`],
    ['numeric NaN', 'numeric', `'NaN'`, `'NaN'::text`],
    ['int4 into bigint', 'bigint', '7', '7::int4'],
    ['timestamptz written in another zone', 'timestamptz', `'2026-01-01 00:00:00+00'`, `'2026-01-01 01:00:00+01'::timestamptz`],
    ['timestamp into timestamptz (UTC pinned)', 'timestamptz', `'2026-01-01 00:00:00+00'`, `'2026-01-01 00:00:00'::timestamp`],
    ['jsonb from json with keys in another order', 'jsonb', `'{"b": 1, "a": [2]}'`, `'{"a": [2], "b": 1}'::json`],
    ['text[] from varchar[] with a NULL', 'text[]', `'{a,NULL}'`, `array['a', null]::varchar[]`],
    ['char(3) padding', 'char(3)', `'a'`, `'a'::text`],
    ['interval built another way', 'interval', `'1 day'`, `make_interval(days => 1)`],
    ['float8 NaN with other bits', 'float8', `'NaN'`, `'Infinity'::float8 * 0`],
    ['float8 from numeric', 'float8', '0.1', `0.1::numeric`],
    ['numeric -0 is 0', 'numeric', '0', `'-0'::numeric`],
    ['uuid from text', 'uuid', `'00000000-0000-0000-0000-00000000000a'`, `'00000000-0000-0000-0000-00000000000A'::text`],
    ['bytea', 'bytea', `'\\x00ff'`, `decode('00ff', 'hex')`],
    ['varchar(5) from text', 'varchar(5)', `'abc'`, `'abc'::text`],
    ["'' stays ''", 'text', `''`, `''::varchar`],
  ];
  for (const [what, type, stored, source] of equal) {
    it(what, async () => {
      const t = `t${n++}`;
      await db.query(`create table ${t} (c ${type})`);
      await db.query(`insert into ${t} values (${stored})`);
      const enc = (await readEncodings(db, [t])).get(t)!.get('c')!;
      const target = await db.query<{ h: string }>(`select ${rowHashSql([fieldSql('q.c', enc)])}::text as h from ${t} q`);
      // As verify builds the source side: the projection cast to the target column's type.
      const src = await db.query<{ h: string }>(`select ${rowHashSql([fieldSql(`q.c::${type}`, enc)])}::text as h from (select ${source} as c) q`);
      expect(src.rows[0]!.h).toBe(target.rows[0]!.h);
    });
  }

  it('an array whose NULL was overwritten (null bitmap kept) equals a fresh one', async () => {
    const h = await hashes(['int[]'], [[`'{NULL,2}'`], [`'{1,2}'`]], `update $T set c0[1] = 1 where id = 0`);
    expect(h.ours[0]).toBe(h.ours[1]);
  });

  it('an enum arrives from the source as text and equals the target enum', async () => {
    await db.query(`create type mood as enum ('sad', 'happy')`);
    const t = `t${n++}`;
    await db.query(`create table ${t} (c mood)`);
    await db.query(`insert into ${t} values ('happy')`);
    const enc = (await readEncodings(db, [t])).get(t)!.get('c')!;
    expect(enc.encoding).toBe('text');
    const a = await db.query<{ h: string }>(`select ${rowHashSql([fieldSql('q.c', enc)])}::text as h from ${t} q`);
    const b = await db.query<{ h: string }>(`select ${rowHashSql([fieldSql(`q.c::text`, enc)])}::text as h from (select 'happy'::text as c) q`);
    expect(b.rows[0]!.h).toBe(a.rows[0]!.h);
  });
});

describe('verify names a subtle planted difference by key (exit 3)', () => {
  let p: Pair;
  beforeAll(async () => {
    p = await makePair(1, 1);
    await p.ok(['seed', '--to', 'blue', '--rows', '300']);
    await p.ok(['sync', '--no-verify']);
  });

  async function changed(args: string[] = []) {
    const r = await p.run(['verify', '--json', ...args]);
    const rep = report<{ clean: boolean; tables: { table: string; changed: { count: number; keys: string[] } }[] }>(r);
    return { code: r.code, rep, changed: Object.fromEntries(rep.tables.map((t) => [t.table, t.changed.keys])) };
  }

  it('a jsonb number written 1.00 on green where blue has 1.0', async () => {
    const id = (await query<{ id: string }>(p.blue, `select id from user_settings order by id limit 1`))[0]!.id;
    await query(p.blue, `update user_settings set preferences = '{"n": 1.0}' where id = $1`, [id]);
    await p.ok(['sync', '--no-verify']);
    await query(p.green, `alter table user_settings disable trigger user; update user_settings set preferences = '{"n": 1.00}' where id = '${id}'; alter table user_settings enable trigger user`);
    for (const jobs of ['1', '2']) {
      const r = await changed(['--jobs', jobs]);
      expect(r.code).toBe(3);
      expect(r.changed).toMatchObject({ user_settings: [`id=${id}`], users: [], roles: [], user_roles: [] });
    }
    await p.ok(['sync', '--full', '--no-verify']);
  });

  it('two users of one key bucket swapping their emails', async () => {
    // verify's bucket of a bigint key with 64 buckets (tables under 64k rows).
    const [a, b] = await query<{ id: number }>(
      p.green,
      `select id from (select id, (hash_record_extended(row(int8send(id)), 1) & 63) as b, count(*) over (partition by hash_record_extended(row(int8send(id)), 1) & 63) as n
         from users where email is not null) x where n > 1 order by b, id limit 2`,
    );
    await query(
      p.green,
      `alter table users disable trigger user;
       update users u set email = o.email from users o where (u.id, o.id) in ((${a!.id}, ${b!.id}), (${b!.id}, ${a!.id}));
       alter table users enable trigger user`,
    );
    const r = await changed();
    expect(r.code).toBe(3);
    expect(r.changed.users).toEqual([`id=${a!.id}`, `id=${b!.id}`].sort());
    await p.ok(['sync', '--full', '--no-verify']);
  });

  it('raises no alarm for an array that kept its null bitmap on blue', async () => {
    await query(p.blue, `update user_settings set tags = '{NULL,b}' where id = (select id from user_settings order by id offset 2 limit 1)`);
    await query(p.blue, `update user_settings set tags[1] = 'a' where id = (select id from user_settings order by id offset 2 limit 1)`);
    await p.ok(['sync', '--no-verify']);
    const r = await changed(['--jobs', '3']);
    expect(r.code).toBe(0);
    expect(r.rep.clean).toBe(true);
  });
});

describe('verify --jobs: every job reads one snapshot per side', () => {
  it('all jobs compare as of the source snapshot they are given; without it, later writes show', async () => {
    const p = await makePair(1, 1);
    await p.ok(['seed', '--to', 'blue', '--rows', '200']);
    await p.ok(['sync', '--no-verify']);
    const holder = await connect(p.blue);
    try {
      await holder.query('begin isolation level repeatable read read only');
      const snapshot = (await holder.query<{ s: string }>('select pg_export_snapshot() as s')).rows[0]!.s;
      // After the snapshot, a change in every table: whichever job compares a table, it
      // must not see them.
      await query(
        p.blue,
        `insert into roles (id, name) values (9001, 'later');
         update users set email = 'later' where id = 5;
         delete from user_roles where (user_id, role_id) = (select user_id, role_id from user_roles order by 1, 2 limit 1);
         update user_settings set active = not coalesce(active, false) where id = (select id from user_settings order by id limit 1)`,
      );
      const endpoints = { from: { name: 'blue', url: p.blue }, to: { name: 'green', url: p.green }, mappingsDir: MAPPINGS, logger: silentLogger, record: false };
      const then = await verify({ ...endpoints, sourceSnapshot: snapshot, jobs: 4 });
      expect(then.tables.map((t) => [t.table, t.missing.count + t.extra.count + t.changed.count])).toEqual([
        ['roles', 0],
        ['user_roles', 0],
        ['user_settings', 0],
        ['users', 0],
      ]);
      const now = await verify({ ...endpoints, jobs: 4 });
      expect(now.tables.map((t) => [t.table, t.missing.count + t.extra.count + t.changed.count])).toEqual([
        ['roles', 1],
        ['user_roles', 1],
        ['user_settings', 1],
        ['users', 1],
      ]);
    } finally {
      await holder.end();
    }
  });
});
