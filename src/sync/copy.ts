/**
 * The one streaming pass of sync and repair: the source's `COPY (SELECT …) TO STDOUT`
 * piped into the target's `COPY … FROM STDIN`, binary when that is exact, CSV otherwise.
 *
 * Neither stream waits forever: each session's watchdog (src/db/watchdog.ts) fails the
 * side on which no byte moves past its bound, and the pipeline then fails the other.
 */
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { dropSession, ident } from '../db/connect.ts';
import { RuntimeFailure } from '../errors.ts';
import { hashStripper, type HashSum } from '../verify/stream-hash.ts';

/** A progress stage for the stream: `counted`, when given, says how many rows have passed so far. */
export type CopyTap = (binary: boolean, counted?: () => number) => Transform;

/** The verify's row hash to take from the stream as it passes (src/verify/stream-hash.ts). */
export interface StreamHash {
  /** SQL of the row hash over the mapped row as `q` (src/verify/verify.ts, streamHashes). */
  sql: string;
  /** Where the rows' hashes are added up. */
  sum: HashSum;
}

/**
 * Streams `COPY (sql) TO STDOUT` on `src` into `COPY rel (columns) FROM STDIN` on `dst`.
 * With `hash`, the source also computes each row's verify hash in the same query, as a
 * first column that is added to `hash.sum` and taken off before the target sees the row.
 */
export async function pipeCopy(src: pg.Client, dst: pg.Client, sql: string, rel: string, columns: string[], tap?: CopyTap, hash?: StreamHash): Promise<number> {
  const format = (await binaryIsExact(src, dst, sql, rel, columns)) ? 'binary' : 'csv';
  // OFFSET 0 keeps the mapped row a subquery of its own: flattened, PostgreSQL would
  // compute each mapping expression twice, once for the hash and once for the column.
  const select = hash ? `select (${hash.sql})::int8 as bg_row_hash, ${columns.map((c) => `q.${ident(c)}`).join(', ')} from (select * from (${sql}) s offset 0) q` : sql;
  const before = hash?.sum.rows ?? 0;
  const out = src.query(copyTo(`COPY (${select}) TO STDOUT (FORMAT ${format})`));
  const inn = dst.query(copyFrom(`COPY ${rel} (${columns.map(ident).join(', ')}) FROM STDIN (FORMAT ${format})`));
  const stages: Transform[] = [];
  if (hash) stages.push(hashStripper(format, hash.sum));
  // The hash stage walks every row anyway: the progress counts what it counted.
  if (tap) stages.push(tap(format === 'binary', hash && (() => hash.sum.rows)));
  try {
    await pipeline([out, ...stages, inn]);
  } catch (err) {
    // The target failed (or went silent) while the source was still sending: a COPY TO
    // cannot be stopped halfway in the protocol, and the session would stay wedged
    // behind rows nobody reads (a rollback queued after them hangs). It only read, in a
    // snapshot the failed run no longer needs: end it now.
    if ((src as unknown as { _activeQuery?: unknown })._activeQuery === out) dropSession(src);
    throw err;
  }
  // The rows the stream stage counted, those the source sent and those the target took
  // are counted three ways: a stage that lost or made up a row must not agree with itself.
  if (hash && (hash.sum.rows - before !== out.rowCount || inn.rowCount !== out.rowCount)) {
    throw new RuntimeFailure(
      `the COPY into ${rel} moved ${inn.rowCount} rows, the source sent ${out.rowCount} and the stream counted ${hash.sum.rows - before}`,
      'nothing was committed; run the sync again. If the counts differ again, keep its --verbose log (a defect of bluegreen): meanwhile `sync --verify changed` does not hash in the stream, and a `bluegreen verify` after it compares every row',
    );
  }
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
