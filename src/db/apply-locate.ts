/**
 * Locating a row the apply step could not write (src/db/apply.ts): the stage table is
 * created from the target's columns without their constraints, so a NULL for a NOT NULL
 * column, a row a CHECK refuses or a reference without its parent passes the stage and
 * fails only in the UPDATE or INSERT from it, where PostgreSQL names the constraint but no
 * row. The failing row is then found in the stage (one query, LIMIT 1) and named as the
 * bulk path names a value it cannot copy: table, column, key, value and the op that
 * wrote the column. Runs after a rollback to the apply's savepoint, reads only, and a
 * probe that fails (an expression over a column the stage lacks) leaves the original
 * error standing.
 */
import type pg from 'pg';
import { ident } from './connect.ts';
import { RowConversionError, shownKey } from '../mapping/errors.ts';
import { TableError } from '../errors.ts';
import { cut } from '../text.ts';
import type { ApplyTable } from './apply.ts';

interface PgError {
  code?: string;
  message: string;
  schema?: string;
  table?: string;
  column?: string;
  constraint?: string;
}

/** Failures about one row's values that the apply step can meet: NOT NULL, CHECK, foreign key. */
export function isApplyRowFailure(err: unknown): err is PgError {
  const code = (err as PgError | undefined)?.code;
  return code === '23502' || code === '23514' || code === '23503';
}

/** A stage row found: its key (`id=7`) and the named column's value. */
interface Found {
  key: string | undefined;
  value: string | null | undefined;
}

/**
 * The located error for an apply failure `err` (which isApplyRowFailure accepts), on a
 * session rolled back to `savepoint` (still usable). Returns `err` when no row is found.
 */
export async function locateApplyFailure(dst: pg.Client, ct: ApplyTable, stage: string, err: PgError, savepoint: string): Promise<unknown> {
  // A probe that fails is rolled back, so the caller's transaction stays usable for the rollback it does next.
  const probe = async (sql: string, params: unknown[] = []): Promise<Record<string, string | null>[] | undefined> => {
    try {
      return (await dst.query(sql, params)).rows;
    } catch {
      await dst.query(`rollback to savepoint ${savepoint}`).catch(() => {});
      return undefined;
    }
  };
  const keyCols = ct.key.map((k, i) => `s.${ident(k)}::text as k${i}`);
  const find = async (cond: string, valueSql: string | undefined): Promise<Found | undefined> => {
    const rows = await probe(`select ${[...keyCols, `${valueSql ?? 'null::text'} as v`].join(', ')} from ${stage} s where ${cond} limit 1`);
    const row = rows?.[0];
    if (!row) return undefined;
    return { key: ct.key.length ? shownKey(ct.key, ct.key.map((_, i) => row[`k${i}`] ?? null)) : undefined, value: valueSql === undefined ? undefined : (row.v ?? null) };
  };
  // The constraint's catalog row, on the relation the error names (a partition's own copy, say).
  const constraint = async () => {
    if (!err.constraint || !err.table) return undefined;
    const rel = err.schema ? `${ident(err.schema)}.${ident(err.table)}` : ident(err.table);
    const rows = await probe(
      `select c.contype::text as type, pg_get_constraintdef(c.oid) as def, c.confrelid::regclass::text as parent,
              (select string_agg(a.attname, ',' order by k.n) from unnest(c.conkey) with ordinality k(num, n) join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.num) as cols,
              (select string_agg(a.attname, ',' order by k.n) from unnest(c.confkey) with ordinality k(num, n) join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.num) as fcols,
              c.confrelid = to_regclass($3) as self
         from pg_constraint c where c.conname = $1 and c.conrelid = to_regclass($2)`,
      [err.constraint, rel, ident(ct.table)],
    );
    const r = rows?.[0];
    if (!r) return undefined;
    return { type: r.type!, def: r.def!, parent: r.parent, cols: (r.cols ?? '').split(',').filter(Boolean), fcols: (r.fcols ?? '').split(',').filter(Boolean), self: r.self === 'true' || (r.self as unknown) === true };
  };
  // The column to name: one an op wrote (the op is what to change), else the first.
  const pick = (cols: string[]) => cols.find((c) => ct.converted?.[c] !== undefined) ?? cols[0]!;
  const located = (column: string, f: Found, hint: string) => new RowConversionError(ct.table, column, f.key, f.value, err.message, ct.converted?.[column], hint);

  if (err.code === '23502' && err.column) {
    const c = err.column;
    if (ct.columns.includes(c)) {
      const f = await find(`s.${ident(c)} is null`, 'null::text');
      if (f) return located(c, f, notNullHint(ct, c));
    }
    // A NOT NULL column the mapping does not write (no default on the target): every new row fails.
    return new TableError(ct.table, `${cut(err.message)}; the mapping does not write ${c}`, `give ${ct.table}.${c} a DEFAULT in schema.sql, or write it with an op`);
  }
  const con = await constraint();
  if (err.code === '23514' && con?.type === 'c' && con.cols.length && con.cols.every((c) => ct.columns.includes(c))) {
    const expr = con.def.replace(/^CHECK /, '').replace(/ NOT VALID$/, '');
    const c = pick(con.cols);
    // NULL passes a CHECK: only a false result fails it.
    const f = await find(`(${expr}) is false`, `s.${ident(c)}::text`);
    if (f) return located(c, f, checkHint(ct, c, err.constraint!, expr));
  }
  if (err.code === '23503' && con?.type === 'f' && con.parent && con.cols.length && con.cols.every((c) => ct.columns.includes(c))) {
    const cols = con.cols;
    const match = cols.map((c, i) => `p.${ident(con.fcols[i]!)} = s.${ident(c)}`).join(' and ');
    // A reference to a row of the same stage is met by the same statement's insert.
    const same = con.self ? ` and not exists (select 1 from ${stage} p where ${match})` : '';
    const value = cols.length === 1 ? `s.${ident(cols[0]!)}::text` : `row(${cols.map((c) => `s.${ident(c)}`).join(', ')})::text`;
    const f = await find(`${cols.map((c) => `s.${ident(c)} is not null`).join(' and ')} and not exists (select 1 from ${con.parent} p where ${match})${same}`, value);
    if (f) return located(cols.length === 1 ? cols[0]! : cols.join(', '), f, fkHint(ct, pick(cols), con.parent, con.fcols));
  }
  // No row found (the constraint reads columns the stage lacks, or another table's row failed): name the table at least.
  return new TableError(ct.table, cut(err.message), err.code === '23503' ? 'a row references one the target does not have: sync or import its table too, or fix the row on the source' : 'a row the target refuses: fix it on the source, convert it with an op, or relax the constraint in schema.sql');
}

/** Where a carried column comes from, for a hint: `source column users.email`. */
function sourceOf(ct: ApplyTable, column: string): string {
  const o = ct.origins?.[column]?.[0];
  const table = o && ct.sources?.[o.source]?.table;
  return o && table ? `source column ${table}.${o.column}` : `the source's ${column}`;
}

function notNullHint(ct: ApplyTable, c: string): string {
  const op = ct.converted?.[c];
  return op
    ? `change the op at ${op} so it gives ${ct.table}.${c} a value for every row (NOT NULL on the target), or drop the NOT NULL in schema.sql`
    : `${sourceOf(ct, c)} is NULL in this row and ${ct.table}.${c} is NOT NULL: fill it on the source, write it with an op (sql: coalesce), or drop the NOT NULL in schema.sql`;
}

function checkHint(ct: ApplyTable, c: string, name: string, expr: string): string {
  const op = ct.converted?.[c];
  const what = `CHECK ${name} ${cut(expr.replace(/^\((.*)\)$/s, '$1'), 120)}`;
  return op
    ? `change the op at ${op} so every row meets ${what}, or relax it in schema.sql`
    : `this row's ${sourceOf(ct, c)} fails ${what}: fix it on the source, convert it with an op, or relax the constraint in schema.sql`;
}

function fkHint(ct: ApplyTable, c: string, parent: string, fcols: string[]): string {
  const op = ct.converted?.[c];
  const missing = `the target has no ${parent} row with that ${fcols.join(', ')}`;
  return op
    ? `${missing}: change the op at ${op}, or sync the ${parent} row first`
    : `${missing}: the parent is missing on the source's side of the mapping, or ${parent} is not synced; fix the row on the source or sync ${parent} too`;
}
