/**
 * Applying staged rows to a KEYLESS target table, where a row is only its values and
 * identical rows may occur several times: the stage and the target are compared as
 * multisets of row texts (`row(c1, c2, ...)::text`, the same for equal values of the same
 * types), and only the difference is written.
 *
 * - `append` tables (rows only ever inserted): the stage holds the rows re-read from the
 *   source since the lower bound. Every source row with a given text carries the same
 *   watermark value, so all of them are in the stage whenever one is; the target rows to
 *   compare with are those holding a watermark value the stage holds (an index lookup on
 *   the target's watermark column). A row text the stage holds n times and the target m
 *   times gets n - m inserts; m > n means rows vanished or changed on the source: the
 *   table is not append-only, and the run stops (exit 3) before writing anything.
 * - `full` reloads: the stage is the whole source table; surplus target rows are deleted
 *   (by ctid, the extra copies of a row text) and missing ones inserted, so an unchanged
 *   table costs two reads and no write (no new row versions, no dead tuples).
 */
import type pg from 'pg';
import { ident } from './connect.ts';
import { NotAppendOnlyError } from '../errors.ts';

/** What multiset applying needs to know of a keyless target table. */
export interface MultisetTable {
  /** Target table. */
  table: string;
  /** Columns the stage holds, in order. */
  columns: string[];
  /**
   * Append tables read incrementally: the target column the watermark is carried to; only
   * target rows sharing a value of it with the stage are compared. Undefined: the stage
   * holds the whole source table and is compared with the whole target.
   */
  lookup?: string;
}

function rowText(alias: string, columns: string[]): string {
  return `row(${columns.map((c) => `${alias}.${ident(c)}`).join(', ')})::text`;
}

/** Counts of row texts in `rel` (alias x), into a temp table `name` (r, n). */
async function countRows(dst: pg.Client, name: string, rel: string, columns: string[], where = ''): Promise<void> {
  await dst.query(`drop table if exists ${name}`);
  await dst.query(`create temp table ${name} on commit drop as select ${rowText('x', columns)} as r, count(*) as n from ${rel} x ${where} group by 1`);
  await dst.query(`analyze ${name}`);
}

/** Inserts the stage rows whose row text the target holds fewer times than the stage. */
async function insertSurplus(dst: pg.Client, t: MultisetTable, stage: string, counts: string): Promise<number> {
  const cols = t.columns.map(ident).join(', ');
  const r = await dst.query(
    // OVERRIDING SYSTEM VALUE: a GENERATED ALWAYS identity keeps the source's value.
    `insert into ${ident(t.table)} (${cols}) overriding system value
     select ${t.columns.map((c) => `y.${ident(c)}`).join(', ')}
       from (select x.*, ${rowText('x', t.columns)} as bg_r, row_number() over (partition by ${rowText('x', t.columns)}) as bg_rn from ${stage} x) y
       left join ${counts} c on c.r = y.bg_r
      where y.bg_rn > coalesce(c.n, 0)`,
  );
  return r.rowCount ?? 0;
}

/**
 * An append table: inserts the re-read rows the target lacks, each row text as many times
 * as the source holds it more than the target. Throws NotAppendOnlyError (exit 3) when the
 * target holds a row more often than the source's re-read rows do.
 */
export async function applyAppend(dst: pg.Client, t: MultisetTable, stage: string): Promise<{ inserted: number; updated: number; deleted?: number }> {
  const s = `${stage}_ms_s`;
  const c = `${stage}_ms_t`;
  await countRows(dst, s, stage, t.columns);
  const where = t.lookup ? `where x.${ident(t.lookup)} in (select ${ident(t.lookup)} from ${stage})` : '';
  await countRows(dst, c, ident(t.table), t.columns, where);
  const gone = await dst.query<{ rows: string; sample: string | null }>(
    `select coalesce(sum(c.n - coalesce(s.n, 0)), 0)::text as rows, min(c.r) as sample
       from ${c} c left join ${s} s on s.r = c.r where c.n > coalesce(s.n, 0)`,
  );
  const vanished = Number(gone.rows[0]!.rows);
  if (vanished > 0) {
    const sample = gone.rows[0]!.sample!;
    throw new NotAppendOnlyError(t.table, vanished, sample.length > 80 ? sample.slice(0, 80) + '…' : sample, t.lookup !== undefined);
  }
  return { inserted: await insertSurplus(dst, t, stage, c), updated: 0, deleted: 0 };
}

/**
 * A keyless full reload: makes the target the stage's multiset with the fewest writes.
 * Nothing is written when they are equal.
 */
export async function applyFullReload(dst: pg.Client, t: MultisetTable, stage: string): Promise<{ inserted: number; updated: number; deleted?: number }> {
  const s = `${stage}_ms_s`;
  const c = `${stage}_ms_t`;
  await countRows(dst, s, stage, t.columns);
  // The extra copies of each row text, by ctid (any copy will do: they are equal).
  const del = await dst.query(
    `delete from ${ident(t.table)} where ctid = any (array(
       select y.ctid from (select x.ctid, ${rowText('x', t.columns)} as r, row_number() over (partition by ${rowText('x', t.columns)}) as rn from ${ident(t.table)} x) y
         left join ${s} s on s.r = y.r
        where y.rn > coalesce(s.n, 0)))`,
  );
  await countRows(dst, c, ident(t.table), t.columns, `where ${rowText('x', t.columns)} in (select r from ${s})`);
  return { inserted: await insertSurplus(dst, t, stage, c), updated: 0, deleted: del.rowCount ?? 0 };
}
