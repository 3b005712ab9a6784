/**
 * The one streaming pass of sync and repair: the source's `COPY (SELECT …) TO STDOUT`
 * piped into the target's `COPY … FROM STDIN`, binary when that is exact, CSV otherwise.
 */
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { ident } from '../db/connect.ts';

/** Streams `COPY (sql) TO STDOUT` on `src` into `COPY rel (columns) FROM STDIN` on `dst`. */
export async function pipeCopy(src: pg.Client, dst: pg.Client, sql: string, rel: string, columns: string[], tap?: (binary: boolean) => Transform): Promise<number> {
  const format = (await binaryIsExact(src, dst, sql, rel, columns)) ? 'binary' : 'csv';
  const out = src.query(copyTo(`COPY (${sql}) TO STDOUT (FORMAT ${format})`));
  const inn = dst.query(copyFrom(`COPY ${rel} (${columns.map(ident).join(', ')}) FROM STDIN (FORMAT ${format})`));
  if (tap) await pipeline(out, tap(format === 'binary'), inn);
  else await pipeline(out, inn);
  return inn.rowCount;
}

/**
 * Binary COPY moves values without printing and parsing them: about half the time of CSV
 * on the sample app's tables (timestamps, numerics, arrays, bytea; see bench/README.md).
 * It is exact only when each column the source query yields has the very type of its
 * target column: the target's receive function reads the value with no conversion (it
 * still applies the column's typmod, as the input function does), and type OIDs mean the
 * same thing on two servers only for built-in types. Anything else (a column the target
 * converts from text, an enum, a domain, an extension type) keeps CSV, whose text the
 * target's input function converts as before.
 */
async function binaryIsExact(src: pg.Client, dst: pg.Client, sql: string, rel: string, columns: string[]): Promise<boolean> {
  const FIRST_USER_OID = 16384; // FirstNormalObjectId: below it, built in and fixed
  const produced = (await src.query(`select * from (${sql}) q limit 0`)).fields.map((f) => f.dataTypeID);
  const target = await dst.query<{ name: string; type: number }>(
    'select attname as name, atttypid::int as type from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped',
    [rel],
  );
  const typeOf = new Map(target.rows.map((r) => [r.name, r.type]));
  return produced.length === columns.length && columns.every((c, i) => typeOf.get(c) === produced[i] && produced[i]! < FIRST_USER_OID);
}
