/**
 * Locating a row-level conversion failure of an SQL face: which target column, which
 * source key, which value. PostgreSQL says only `value too long for type character(2)`
 * (failing inside `COPY (SELECT ...)` on the source), or names a column and a value but
 * no key (failing in `COPY ... FROM` on the target). Both are turned into a
 * RowConversionError naming the table, the column, the key and the value, with the op to
 * change. Runs only after a failure, on a usable session (a fresh connection, or a
 * savepoint of the loading transaction), and reads only.
 *
 * Source-side failures: each converted column is evaluated alone (PostgreSQL prunes the
 * unused outputs of a subquery, so only its expression runs) until one fails; then the
 * first source's rows are halved in key order until one row is left: O(log n) queries.
 */
import type pg from 'pg';
import { connect, ident, literal } from '../db/connect.ts';
import { RowConversionError, shownKey, type CompiledTable } from '../mapping/index.ts';
import { missingPartition } from '../db/apply.ts';

/** Runs one read-only query on a usable session; throws what PostgreSQL says. */
export type Probe = (sql: string) => Promise<pg.QueryResult>;

/** What a failure is located in. */
export interface LocateContext {
  /** The compiled table whose SQL face failed. */
  table: CompiledTable;
  /** Relation of each source table, as the failing SELECT read it. */
  rel: (table: string) => string;
  /** Query runner. */
  probe: Probe;
  /**
   * The target table's CHECK constraints as pg_get_constraintdef prints them: a row COPY
   * FROM refused by one (23514, no column named) is found by evaluating each over the
   * converted rows where they are read.
   */
  checks?: string[];
}

interface PgError {
  code?: string;
  where?: string;
  column?: string;
  message: string;
}

/** A failure about one value (data exceptions, NOT NULL), as opposed to a lost connection. */
export function isRowLevel(err: unknown): err is PgError {
  const code = (err as PgError | undefined)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code === '23502' || code === '23514');
}

async function fails(probe: Probe, sql: string): Promise<PgError | undefined> {
  try {
    await probe(sql);
    return undefined;
  } catch (err) {
    if (isRowLevel(err)) return err;
    throw err;
  }
}

/**
 * The located error for `err`, or `err` itself when it is not about one row (or cannot
 * be located). Never throws for a failed probe of the failing value.
 */
export async function locateRowFailure(err: unknown, ctx: LocateContext): Promise<unknown> {
  if (!isRowLevel(err)) return err;
  try {
    return (await targetSide(err, ctx)) ?? (await checkSide(err, ctx)) ?? (await sourceSide(err, ctx)) ?? err;
  } catch {
    return err; // the locating itself failed (connection gone): keep PostgreSQL's message
  }
}

const clean = (m: string) => m.replace(/^invalid input syntax for type boolean: "bluegreen: (.*)"$/s, '$1');

/** COPY FROM on the target named the column and the value: find the row on the source. */
async function targetSide(err: PgError, ctx: LocateContext): Promise<RowConversionError | undefined> {
  const ct = ctx.table;
  const m = /COPY [^,]+, line \d+, column ([^:]+): "(.*)"$/s.exec(err.where ?? '');
  const column = m?.[1] ?? (err.code === '23502' ? err.column : undefined);
  if (column === undefined || !ct.columns.includes(column)) return undefined;
  let value: string | null = m?.[2] ?? null;
  const q = `q.${ident(column)}`;
  let cond = `${q} IS NULL`;
  if (value !== null) {
    // PostgreSQL cuts long values to 100 bytes and adds "...".
    const cut = value.endsWith('...') && Buffer.byteLength(value) >= 100;
    if (cut) value = value.slice(0, -3);
    cond = cut ? `starts_with(${q}::text, ${literal(value)})` : `${q}::text = ${literal(value)}`;
  }
  const keyCols = ct.key.map((k, i) => `q.${ident(k)}::text AS k${i}`);
  const r = await ctx.probe(`SELECT ${[...keyCols, `${q}::text AS v`].join(', ')} FROM (${ct.selectSql(ctx.rel)}) q WHERE ${cond} LIMIT 1`);
  const row = r.rows[0] as Record<string, string | null> | undefined;
  const key = row && ct.key.length > 0 ? shownKey(ct.key, ct.key.map((_, i) => row[`k${i}`] ?? null)) : undefined;
  return new RowConversionError(ct.table, column, key, row ? (row.v ?? null) : value, err.message, ct.converted[column]);
}

/**
 * COPY FROM on the target refused a row by a CHECK constraint, naming neither column nor
 * key: the first converted row that fails one of the target's CHECK expressions, found by
 * evaluating it over the mapped rows on the source (an expression the source cannot
 * evaluate, say over a type only the target has, is passed over). The column named is the
 * first the expression reads.
 */
async function checkSide(err: PgError, ctx: LocateContext): Promise<RowConversionError | undefined> {
  if (err.code !== '23514' || !ctx.checks?.length) return undefined;
  const ct = ctx.table;
  for (const def of ctx.checks) {
    const expr = /^CHECK \((.*)\)( NOT VALID)?$/s.exec(def)?.[1];
    if (expr === undefined) continue;
    const column = ct.columns.find((c) => new RegExp(`(^|[^\\w$"])"?${c.replace(/[^\w]/g, '\\$&')}"?($|[^\\w$"])`).test(expr));
    if (column === undefined) continue;
    const cols = [...ct.key.map((k, i) => `q.${ident(k)}::text AS k${i}`), `q.${ident(column)}::text AS v`];
    const r = await ctx.probe(`SELECT ${cols.join(', ')} FROM (${ct.selectSql(ctx.rel)}) q WHERE NOT (${expr}) LIMIT 1`).catch(() => undefined);
    const row = r?.rows[0] as Record<string, string | null> | undefined;
    if (!row) continue;
    const key = ct.key.length > 0 ? shownKey(ct.key, ct.key.map((_, i) => row[`k${i}`] ?? null)) : undefined;
    return new RowConversionError(ct.table, column, key, row.v ?? null, err.message, ct.converted[column]);
  }
  return undefined;
}

/** The SELECT failed on the source: find the column, then halve the rows down to one. */
async function sourceSide(err: PgError, ctx: LocateContext): Promise<RowConversionError | undefined> {
  const ct = ctx.table;
  const candidates = Object.keys(ct.converted).length > 0 ? Object.keys(ct.converted) : ct.columns;
  let column: string | undefined;
  let reason = err.message;
  for (const c of candidates) {
    if (!ct.columns.includes(c)) continue;
    const e = await fails(ctx.probe, `SELECT count(q.${ident(c)}) FROM (${ct.selectSql(ctx.rel)}) q`);
    if (e) {
      column = c;
      reason = e.message;
      break;
    }
  }
  if (column === undefined) return undefined;
  const first = ct.sources[0]!;
  const op = ct.converted[column];
  if (first.key.length === 0) return new RowConversionError(ct.table, column, undefined, undefined, clean(reason), op);
  const keys = first.key.map(ident).join(', ');
  const base = ctx.rel(first.table);
  const n = Number((await ctx.probe(`SELECT count(*)::text AS n FROM ${base} bg_c`)).rows[0].n);
  const window = (lo: number, size: number) => (t: string) =>
    t === first.table ? `(SELECT * FROM ${base} bg_w WHERE (${keys}) IN (SELECT ${keys} FROM ${base} bg_o ORDER BY ${keys} OFFSET ${lo} LIMIT ${size}))` : ctx.rel(t);
  let lo = 0;
  let size = n;
  while (size > 1) {
    const half = Math.ceil(size / 2);
    if (await fails(ctx.probe, `SELECT count(q.${ident(column)}) FROM (${ct.selectSql(window(lo, half))}) q`)) size = half;
    else {
      lo += half;
      size -= half;
    }
  }
  // The reason of the row found, not of whichever failing row the whole-table probe met
  // first (a message that names a value must name this row's).
  const own = n > 0 ? await fails(ctx.probe, `SELECT count(q.${ident(column)}) FROM (${ct.selectSql(window(lo, 1))}) q`) : undefined;
  if (own) reason = own.message;
  // The value: the first source column the target column is computed from, if in the first table.
  const origin = ct.origins[column]?.find((o) => o.source === 0);
  const cols = [...first.key.map((k, i) => `${ident(k)}::text AS k${i}`), origin ? `${ident(origin.column)}::text AS v` : 'NULL::text AS v'];
  const r = await ctx.probe(`SELECT ${cols.join(', ')} FROM ${base} bg_k ORDER BY ${keys} OFFSET ${lo} LIMIT 1`);
  const row = r.rows[0] as Record<string, string | null> | undefined;
  if (!row) return new RowConversionError(ct.table, column, undefined, undefined, clean(reason), op);
  return new RowConversionError(ct.table, column, shownKey(first.key, first.key.map((_, i) => row[`k${i}`] ?? null)), origin ? (row.v ?? null) : undefined, clean(reason), op);
}

/**
 * locateRowFailure on a fresh session of `url`: the failed run's own session is aborted
 * (and its COPY may still be draining), so the probes get their own connection.
 */
export async function locateOnFreshSession(err: unknown, table: CompiledTable, rel: (t: string) => string, url: string, label: string, checks?: string[]): Promise<unknown> {
  // A row the target's partitions do not take is no conversion failure: probing the
  // source's columns would scan it for nothing.
  const partition = missingPartition(table.table, err);
  if (partition) return partition;
  if (!isRowLevel(err)) return err;
  let client: pg.Client | undefined;
  try {
    client = await connect(url, { label, applicationName: 'bluegreen locate' });
    const c = client;
    return await locateRowFailure(err, { table, rel, probe: (sql) => c.query(sql), checks });
  } catch {
    return err;
  } finally {
    await client?.end().catch(() => {});
  }
}
