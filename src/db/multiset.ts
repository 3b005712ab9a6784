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
 *   table costs one hashing scan per side and no write (no new row versions, no dead
 *   tuples).
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

/**
 * Inserts, for every row text the stage holds n times and the target m < n times (m from
 * `counts`), n - m of the stage's copies. Only the rows of such texts are numbered.
 */
async function insertSurplus(dst: pg.Client, t: MultisetTable, stage: string, counts: string, stageCounts: string): Promise<number> {
  const cols = t.columns.map(ident).join(', ');
  const surplus = `(select s.r, s.n - coalesce(c.n, 0) as k from ${stageCounts} s left join ${counts} c on c.r = s.r where s.n > coalesce(c.n, 0))`;
  const r = await dst.query(
    // OVERRIDING SYSTEM VALUE: a GENERATED ALWAYS identity keeps the source's value.
    `insert into ${ident(t.table)} (${cols}) overriding system value
     select ${t.columns.map((c) => `y.${ident(c)}`).join(', ')}
       from (select x.*, ${rowText('x', t.columns)} as bg_r, row_number() over (partition by ${rowText('x', t.columns)}) as bg_rn
               from ${stage} x where ${rowText('x', t.columns)} in (select r from ${surplus} z)) y
       join ${surplus} z on z.r = y.bg_r
      where y.bg_rn <= z.k`,
  );
  return r.rowCount ?? 0;
}

/** count and sum of 64-bit row-text hashes of a relation: equal for equal multisets. */
async function multisetHash(dst: pg.Client, rel: string, columns: string[]): Promise<string> {
  const r = await dst.query<{ h: string }>(`select count(*)::text || ':' || coalesce(sum(hashtextextended(${rowText('x', columns)}, 0)), 0)::text as h from ${rel} x`);
  return r.rows[0]!.h;
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
  return { inserted: await insertSurplus(dst, t, stage, c, s), updated: 0, deleted: 0 };
}

/**
 * A keyless full reload: makes the target the stage's multiset with the fewest writes.
 * Both sides are first hashed whole (count and sum of 64-bit row-text hashes, one scan
 * each, no sort): equal, and nothing is written. Otherwise each row's hash is kept with its
 * ctid (one scan per side), the hashes whose counts differ are found by grouping those
 * integers, and only the rows holding them are compared by text: extra target copies
 * deleted by ctid, missing ones inserted.
 */
export async function applyFullReload(dst: pg.Client, t: MultisetTable, stage: string): Promise<{ inserted: number; updated: number; deleted?: number }> {
  // The common case, an unchanged table, costs one hashing scan per side (no grouping).
  if ((await multisetHash(dst, stage, t.columns)) === (await multisetHash(dst, ident(t.table), t.columns))) return { inserted: 0, updated: 0, deleted: 0 };
  const hashes = async (name: string, rel: string) => {
    await dst.query(`drop table if exists ${name}`);
    await dst.query(`create temp table ${name} on commit drop as select x.ctid as c, hashtextextended(${rowText('x', t.columns)}, 0) as h from ${rel} x`);
  };
  const [sh, th, d] = [`${stage}_ms_sh`, `${stage}_ms_th`, `${stage}_ms_d`];
  await hashes(sh, stage);
  await hashes(th, ident(t.table));
  await dst.query(`drop table if exists ${d}`);
  await dst.query(
    `create temp table ${d} on commit drop as
     select h from (select h, count(*) as n from ${sh} group by h) s full join (select h, count(*) as n from ${th} group by h) t using (h)
      where s.n is distinct from t.n`,
  );
  // Only the rows whose hash differs, found by ctid.
  const only = (rel: string, hashTable: string) => `(select x.ctid as bg_ctid, x.* from ${rel} x where x.ctid = any (array(select c from ${hashTable} where h in (select h from ${d}))))`;
  const [stageRows, targetRows] = [only(stage, sh), only(ident(t.table), th)];
  const s = `${stage}_ms_s`;
  const c = `${stage}_ms_t`;
  await countRows(dst, s, stageRows, t.columns);
  await countRows(dst, c, targetRows, t.columns);
  const extra = `(select c.r, c.n - coalesce(s.n, 0) as k from ${c} c left join ${s} s on s.r = c.r where c.n > coalesce(s.n, 0))`;
  // The extra copies of each row text, by ctid (any copy will do: they are equal).
  const del = await dst.query(
    `delete from ${ident(t.table)} where ctid = any (array(
       select y.bg_ctid from (select x.bg_ctid, ${rowText('x', t.columns)} as r, row_number() over (partition by ${rowText('x', t.columns)}) as rn from ${targetRows} x) y
         join ${extra} e on e.r = y.r
        where y.rn <= e.k))`,
  );
  return { inserted: await insertSurplus(dst, t, stageRows, c, s), updated: 0, deleted: del.rowCount ?? 0 };
}
