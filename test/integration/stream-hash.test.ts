/**
 * A full sync's verify takes the source side from the sync's own COPY (src/verify/stream-hash.ts):
 * the source computes each row's verify hash in the COPY query, the stream adds it up and
 * strips it. That total must be exactly what verify's own query computes in the database,
 * on either side, for every built-in type the project moves (a 41-type table of hostile
 * values, NULL in every column of one row), in both COPY formats; the rows must arrive
 * unchanged; and one byte changed after the hash was taken must show.
 */
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/db/connect.ts';
import { fieldSql, readEncodings, rowHashSql } from '../../src/verify/encoding.ts';
import { HashSum, hashStripper } from '../../src/verify/stream-hash.ts';
import { targetSide, totalSql } from '../../src/verify/verify.ts';
import { pipeCopy } from '../../src/sync/copy.ts';
import { freshDatabase } from '../helpers/pg.ts';

/** Every built-in type the project moves, each with hostile values (SQL literals). */
const TYPES: [string, string[]][] = [
  ['boolean', ['true', 'false']],
  ['smallint', ['-32768', '32767', '0']],
  ['integer', ['-2147483648', '2147483647']],
  ['bigint', ['-9223372036854775808', '9223372036854775807', '4294967297', '0']],
  ['oid', ['4294967295', '0']],
  ['numeric', [`'NaN'`, `'Infinity'`, '1.0', '1.00', '-0.000000000000000000001', '123456789012345678901234567890']],
  ['numeric(12,4)', ['1.5', '-99999999.9999']],
  ['real', [`'NaN'`, `'-0'`, `'Infinity'`, '1.17549435e-38']],
  ['double precision', [`'NaN'`, `'-Infinity'`, '0.1', '2.2250738585072014e-308']],
  ['money', ['-92233720368547758.08', '0.01']],
  ['date', [`'infinity'`, `'4713-01-01 BC'`, `'2026-02-28'`]],
  ['time', [`'24:00'`, `'00:00:00.000001'`]],
  ['time with time zone', [`'12:00+01'`, `'11:00+00'`, `'23:59:59.999999-15:59'`]],
  ['timestamp', [`'-infinity'`, `'2000-01-01 00:00:00'`, `'294276-12-31 23:59:59.999999'`]],
  ['timestamp with time zone', [`'2000-01-01 00:00:00+00'`, `'2000-01-01 01:11:34.967297+00'`, `'infinity'`]],
  ['interval', [`'1 day'`, `'24 hours'`, `'1 mon'`, `'-178000000 years'`]],
  ['text', [`''`, `'NULL'`, `'\\N'`, `E'tab\\there, "quoted", new\\nline\\r\\nback\\\\slash'`, `U&'e\\0301 \\00E9 \\+01F600'`, `repeat('x', 70000)`]],
  ['character varying(16)', [`''`, `'a,b'`, `' '`]],
  ['character(5)', [`'a'`, `' a'`, `''`]],
  ['name', [`'pg_catalog'`, `'"odd" name'`]],
  ['"char"', [`'a'`, `''`]],
  ['bytea', [`''`, `'\\x00'`, `'\\x0000'`, `'\\x0a2c22'`, `decode(repeat('ff00', 40000), 'hex')`]],
  ['uuid', [`'00000000-0000-0000-0000-000000000000'`, `'ffffffff-ffff-ffff-ffff-ffffffffffff'`]],
  ['json', [`'{"b": 1, "a": [1.0, "x\\ny"]}'`, `'null'`, `'  {"a" : 1}  '`]],
  ['jsonb', [`'{"a": 1.0}'`, `'{"a": 1.00}'`, `'"\\u00e9"'`, `'[]'`]],
  ['inet', [`'10.0.0.1/8'`, `'10.0.0.1/32'`, `'::1'`]],
  ['cidr', [`'10.0.0.0/8'`, `'2001:db8::/32'`]],
  ['macaddr', [`'08:00:2b:01:02:03'`]],
  ['macaddr8', [`'08:00:2b:01:02:03:04:05'`]],
  ['point', [`'(1,2)'`, `'(NaN,-0)'`]],
  ['box', [`'((0,0),(1,1))'`]],
  ['circle', [`'<(0,0),1.5>'`]],
  ['bit(8)', [`B'10101010'`, `B'00000000'`]],
  ['bit varying', [`B''`, `B'1'`, `B'10'`]],
  ['tsvector', [`'a:1 b:2'`, `''`]],
  ['int4range', [`'empty'`, `'[1,10)'`, `'(,)'`]],
  ['tstzrange', [`'[2026-01-01 00:00+00,infinity)'`]],
  ['integer[]', [`'{}'`, `'{1,NULL,3}'`, `'[0:1]={1,2}'`, `'{{1},{2}}'`]],
  ['text[]', [`'{NULL}'`, `'{"NULL"}'`, `'{"",","}'`, `ARRAY[E'a\\nb', '"']`]],
  ['numeric[]', [`'{1.0}'`, `'{1.00,NaN}'`]],
  ['jsonb[]', [`ARRAY['{"a": 1}'::jsonb, NULL]`]],
];

const cols = TYPES.map((_, i) => `c${i}`);
let src: pg.Client;
let dst: pg.Client;
let rows = 0;

beforeAll(async () => {
  src = await connect(await freshDatabase('stream_src'));
  dst = await connect(await freshDatabase('stream_dst'));
  const ddl = `create table t (id int primary key, ${TYPES.map(([ty], i) => `c${i} ${ty}`).join(', ')})`;
  await src.query(ddl);
  // Row k takes each type's value k (cycling); one row is NULL in every column.
  const longest = Math.max(...TYPES.map(([, v]) => v.length));
  for (let k = 0; k < longest * 3; k++) {
    await src.query(`insert into t values (${k}, ${TYPES.map(([, v]) => v[k % v.length]).join(', ')})`);
  }
  await src.query(`insert into t (id) values (-1)`);
  await src.query(`update t set c16 = 'MARKER-Z' where id = 7`);
  rows = Number((await src.query<{ n: string }>('select count(*)::text as n from t')).rows[0]!.n);
});
afterAll(async () => {
  await src?.end();
  await dst?.end();
});

/** verify's total query over table `t` on `client` (the target side's very SQL). */
async function dbTotal(client: pg.Client): Promise<{ rows: number; sum: string }> {
  const enc = (await readEncodings(client, ['t'])).get('t')!;
  const r = await client.query<{ n: string; s: string }>(totalSql(targetSide({ table: 't', key: ['id'] }, cols, enc)));
  return { rows: Number(r.rows[0]!.n), sum: r.rows[0]!.s };
}

/** The source's row hash over `q`, as verify's source side spells it (the target's encodings). */
async function hashSql(): Promise<string> {
  const enc = (await readEncodings(dst, ['t'])).get('t')!;
  return rowHashSql(cols.map((c) => fieldSql(`q.${c}`, enc.get(c)!)));
}

/** Sorted row text of `t`, to compare the two sides row for row. */
async function rowText(client: pg.Client): Promise<string[]> {
  return (await client.query<{ r: string }>('select t::text as r from t order by id')).rows.map((x) => x.r);
}

async function emptyTarget(): Promise<void> {
  await dst.query('drop table if exists t');
  await dst.query(`create table t (id int primary key, ${TYPES.map(([ty], i) => `c${i} ${ty}`).join(', ')})`);
}

describe('the stream hash equals the in-database hash', () => {
  it('covers 41 built-in types', () => {
    expect(TYPES).toHaveLength(41);
  });

  for (const format of ['binary', 'csv'] as const) {
    it(`${format}: the stream's total is verify's total on both sides, and the rows arrive unchanged`, async () => {
      await emptyTarget();
      const sum = new HashSum();
      const select = `select (${await hashSql()})::int8, id, ${cols.join(', ')} from t q`;
      await pipeline(
        src.query(copyTo(`COPY (${select}) TO STDOUT (FORMAT ${format})`)),
        hashStripper(format, sum),
        dst.query(copyFrom(`COPY t (id, ${cols.join(', ')}) FROM STDIN (FORMAT ${format})`)),
      );
      const streamed = sum.total();
      expect(streamed.rows).toBe(rows);
      expect(streamed).toEqual(await dbTotal(src));
      expect(streamed).toEqual(await dbTotal(dst));
      expect(await rowText(dst)).toEqual(await rowText(src));
    });
  }

  it('splits at every byte: the same total and bytes whatever the chunk boundaries', async () => {
    for (const format of ['binary', 'csv'] as const) {
      const select = `select (${await hashSql()})::int8, id, ${cols.join(', ')} from t q where id < 6`;
      const chunks: Buffer[] = [];
      await pipeline(src.query(copyTo(`COPY (${select}) TO STDOUT (FORMAT ${format})`)), async function* (s) {
        for await (const c of s) chunks.push(c as Buffer);
      });
      const whole = Buffer.concat(chunks);
      const run = async (pieces: Buffer[]) => {
        const sum = new HashSum();
        const out: Buffer[] = [];
        await pipeline(pieces, hashStripper(format, sum), async function* (s) {
          for await (const c of s) out.push(c as Buffer);
        });
        return { total: sum.total(), bytes: Buffer.concat(out) };
      };
      const once = await run([whole]);
      expect(once.total.rows).toBe(7); // ids 0-5 and the all-NULL row
      for (let cut = 1; cut < Math.min(whole.length, 400); cut++) {
        const split = await run([whole.subarray(0, cut), whole.subarray(cut, cut + 3), whole.subarray(cut + 3)]);
        expect(split.total).toEqual(once.total);
        expect(split.bytes.equals(once.bytes)).toBe(true);
      }
    }
  });

  it('one byte changed after the hash was taken shows: totals differ, and only there', async () => {
    await emptyTarget();
    const sum = new HashSum();
    // A byte flipped downstream of the hash, as a fault on the way to the target would.
    const flip = () =>
      new Transform({
        transform(chunk: Buffer, _e, cb) {
          const at = chunk.indexOf('MARKER-Z');
          if (at >= 0) chunk[at + 7] = 0x59; // 'Z' -> 'Y'
          cb(null, chunk);
        },
      });
    const n = await pipeCopy(src, dst, 'select * from t', 't', ['id', ...cols], flip, { sql: await hashSql(), sum });
    expect(n).toBe(rows);
    expect((await dst.query<{ c16: string }>('select c16 from t where id = 7')).rows[0]!.c16).toBe('MARKER-Y');
    expect(sum.total()).toEqual(await dbTotal(src));
    expect(sum.total()).not.toEqual(await dbTotal(dst));
    expect(sum.total().rows).toBe((await dbTotal(dst)).rows);
  });

  it('adds exactly across --jobs ranges and at the extremes of int8', () => {
    const a = new HashSum();
    const b = new HashSum();
    const big = ['9223372036854775807', '-9223372036854775808', '-1', '0', '123', '-999999999', '1000000000'];
    let expected = 0n;
    for (let i = 0; i < 3 * (1 << 19) + 5; i++) {
      const v = big[i % big.length]!;
      expected += BigInt(v);
      if (i % 2) a.addDecimal(v);
      else {
        const x = BigInt.asUintN(64, BigInt(v));
        b.addHalves(Number(BigInt.asIntN(32, x >> 32n)), Number(x & 0xffffffffn));
      }
    }
    a.merge(b);
    expect(a.total()).toEqual({ rows: 3 * (1 << 19) + 5, sum: expected.toString() });
  });
});
