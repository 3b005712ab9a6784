/**
 * The pre-flight of a sync (and so of a cutover's final sync): before anything is
 * written, every SQL expression the mapping's author wrote (sql ops, function ops' SQL
 * faces) is prepared against the source version's types in a scope of exactly its `from`
 * columns, as `check` prepares it (src/convert/faces.ts), so a typo is exit 2 naming the
 * file and JSON pointer rather than a database error half-way through a run; verify and
 * import call the same (compileExpressions). Then every column an op computes is checked, on the source and in the run's
 * snapshot, against the type of its target column: a narrowing cast, a scale, an sql or
 * function op whose value the target would refuse names its table, column and key now,
 * rather than failing the load half-way. PostgreSQL 16+ checks with pg_input_is_valid
 * (what COPY FROM on the target will accept); older servers evaluate the SQL face, which
 * still catches every failure the ops raise themselves (they check lengths, ranges and
 * scales). Columns of a user-defined type are checked by the target's COPY only.
 */
import type pg from 'pg';
import { ident, literal } from '../db/connect.ts';
import type { Catalog } from '../db/catalog-types.ts';
import { InvalidInputError, type ValidationProblem } from '../errors.ts';
import { cut } from '../text.ts';
import { MappingExpressionError, RowConversionError, shownKey, type CompiledTable, type UserExpression } from '../mapping/index.ts';
import { isBuiltinType } from '../mapping/sql.ts';
import { queryProbeSql } from '../mapping/query.ts';
import { locateOnFreshSession } from './locate.ts';

const RANK: Record<string, number> = { smallint: 1, integer: 2, bigint: 3, numeric: 4 };

/** A widening whose every source value the target holds (so no scan is spent on it). */
function neverFails(from: string | undefined, to: string): boolean {
  if (to === 'text' || to === 'character varying') return true;
  if (from === undefined) return false;
  if (from === to) return true;
  return RANK[from] !== undefined && RANK[to] !== undefined && RANK[from]! <= RANK[to]!;
}

/** Where the source is, for locating a failure on a fresh session. */
export interface PreflightSource {
  url: string;
  name: string;
}

/**
 * Throws RowConversionError for the first converted value the target cannot hold, per
 * table in `tables` order. `rel(ct)` gives the relation of each source table as the run
 * will read it (the incremental range, or the whole table).
 */
export async function preflight(
  client: pg.Client,
  tables: CompiledTable[],
  rel: (ct: CompiledTable) => (t: string) => string,
  sourceCatalog: Catalog,
  target: Catalog,
  source: PreflightSource,
): Promise<void> {
  await compileExpressions(client, tables);
  await assertUtf8(client, tables, rel, source);
  const v16 = Number((await client.query<{ v: string }>(`select current_setting('server_version_num') as v`)).rows[0]!.v) >= 160000;
  for (const ct of tables) {
    // A query table is evaluated once per run, by its copy: a value the target refuses is
    // located from the COPY's error, a repeated key in the stage (src/sync/steps.ts).
    if (ct.query) continue;
    const types = new Map(target.tables[ct.table]?.columns.map((c) => [c.name, c.type]) ?? []);
    const originType = (c: string) => {
      const o = ct.origins[c];
      if (o?.length !== 1) return undefined;
      return sourceCatalog.tables[ct.sources[o[0]!.source]!.table]?.columns.find((x) => x.name === o[0]!.column)?.type;
    };
    const cols = Object.keys(ct.converted).filter((c) => ct.columns.includes(c) && isBuiltinType(types.get(c) ?? '') && !neverFails(originType(c), types.get(c)!));
    if (cols.length === 0) continue;
    const r = rel(ct);
    const bad = (c: string) => (v16 ? `not pg_input_is_valid(q.${ident(c)}::text, ${literal(types.get(c)!)})` : 'false');
    const sql = `select ${cols.map((c, i) => `count(*) filter (where ${bad(c)}) as b${i}, count(q.${ident(c)}) as n${i}`).join(', ')} from (${ct.selectSql(r)}) q`;
    let counts: Record<string, string>;
    try {
      counts = (await client.query(sql)).rows[0] as Record<string, string>;
    } catch (err) {
      throw await locateOnFreshSession(err, ct, r, source.url, source.name);
    }
    const i = cols.findIndex((_, k) => Number(counts[`b${k}`]) > 0);
    if (i < 0) continue;
    const c = cols[i]!;
    const keys = ct.key.map((k, n) => `q.${ident(k)}::text as k${n}`);
    const row = (await client.query(`select ${[...keys, `q.${ident(c)}::text as v`].join(', ')} from (${ct.selectSql(r)}) q where ${bad(c)} limit 1`)).rows[0] as Record<string, string | null>;
    throw new RowConversionError(ct.table, c, ct.key.length ? shownKey(ct.key, ct.key.map((_, n) => row[`k${n}`] ?? null)) : undefined, row.v ?? null, `the value does not fit ${types.get(c)}`, ct.converted[c]);
  }
}

/**
 * Throws MappingExpressionError (exit 2) naming every author-written expression of
 * `tables` that does not compile on `client`, each with its file and JSON pointer. Works
 * inside a transaction (each in a savepoint) or outside one; writes nothing (EXPLAIN).
 */
export async function compileExpressions(client: pg.Client, tables: readonly Pick<CompiledTable, 'expressions'>[]): Promise<void> {
  const problems = await expressionProblems(client, tables);
  if (problems.length > 0) throw new MappingExpressionError(problems);
}

/**
 * The expressions of `tables` that do not compile on `client`, as problems worded as
 * `check` words them. Each is planned (EXPLAIN, never run) over one row of NULLs of its
 * `from` columns' types, alone in that scope: a name outside `from` is refused here as
 * `check` refuses it, though the composed SQL face would let it reach the outer query.
 * A type this server does not know (an intermediate version's enum, a dump version's type
 * on an import target) is read as text, as the SQL face reads it there.
 */
export async function expressionProblems(client: pg.Client, tables: readonly Pick<CompiledTable, 'expressions'>[]): Promise<ValidationProblem[]> {
  const all = new Map<string, UserExpression>();
  for (const t of tables) for (const e of t.expressions) all.set(`${e.file}\0${e.path}`, e);
  if (all.size === 0) return [];
  // Inside a transaction each try gets a savepoint; outside one each statement is its own.
  const inTransaction = await client.query('savepoint bg_exprs').then(
    () => true,
    (err: { code?: string }) => {
      if (err.code === '25P01') return false; // SAVEPOINT outside a transaction block
      throw err;
    },
  );
  const attempt = async (sql: string): Promise<Error | undefined> => {
    if (inTransaction) await client.query('savepoint bg_expr');
    try {
      await client.query(sql);
      if (inTransaction) await client.query('release savepoint bg_expr');
      return undefined;
    } catch (err) {
      if (inTransaction) await client.query('rollback to savepoint bg_expr');
      return err as Error;
    }
  };
  const known = new Map<string, boolean>();
  const typeHere = async (type: string): Promise<string> => {
    if (isBuiltinType(type)) return type;
    if (!known.has(type)) known.set(type, (await attempt(`select ${literal(type)}::regtype`)) === undefined);
    return known.get(type) ? type : 'text';
  };
  const problems: ValidationProblem[] = [];
  try {
    for (const e of all.values()) {
      if (e.query) {
        const tables = [];
        for (const t of e.query.tables) tables.push({ name: t.name, columns: await Promise.all(t.columns.map(async (c) => ({ name: c.name, type: await typeHere(c.type) }))) });
        const err = await attempt(`explain ${queryProbeSql(e.expr, tables, e.query.outputs)}`);
        if (err !== undefined) problems.push(queryProblem(e.file, e.path, e.fromVersion, err, e.query.outputs));
        continue;
      }
      const scope: string[] = [];
      for (const c of e.columns) scope.push(`NULL::${await typeHere(c.type)} AS ${ident(c.name)}`);
      const err = await attempt(`explain select (${e.expr}\n) from (select ${scope.join(', ')}) as bg_in`);
      if (err === undefined) continue;
      problems.push({
        file: e.file,
        path: e.path,
        message: `does not run on v${e.fromVersion}: ${err.message}`,
        hint: `the expression may read only the op's "from" columns (${e.columns.map((c) => c.name).join(', ')}), by bare name, and types of v${e.fromVersion}`,
      });
    }
  } finally {
    if (inTransaction) await client.query('release savepoint bg_exprs');
  }
  return problems;
}

/** A query table's query that does not run, worded as `check` words it. */
export function queryProblem(file: string, path: string, fromVersion: number, err: Error, outputs: readonly string[]): ValidationProblem {
  return {
    file,
    path,
    message: `does not run on v${fromVersion}: ${err.message}`,
    hint: `the query may read v${fromVersion} tables by unqualified name and must yield every column of the table by name (${outputs.join(', ')})`,
  };
}

/**
 * A query table whose query yields one key twice: the target's key would refuse it half-way
 * through a load. Named with the table, the key and where the query is, before any write.
 */
export class QueryKeyError extends InvalidInputError {
  constructor(
    readonly table: string,
    readonly key: string,
    readonly count: number,
    readonly query: string,
  ) {
    super(`table ${table}: its query yields key ${key} ${count} times (${query})`, `make the query yield each (${table}'s key) once (group by it, or pick one row per key), or declare another key`);
  }
}

/**
 * Throws QueryKeyError when a query table's rows, read through `rel`, repeat a key: one
 * more evaluation of the query, for the paths that load it without a stage to look in.
 */
export async function assertQueryKeys(client: pg.Client, ct: CompiledTable, rel: (t: string) => string): Promise<void> {
  if (ct.query) await assertUniqueKeys(client, ct, `(${ct.selectSql(rel)})`);
}

/** Throws QueryKeyError when the rows of `relation` (a query table's, staged or computed) repeat a key. */
export async function assertUniqueKeys(client: pg.Client, ct: CompiledTable, relation: string): Promise<void> {
  if (!ct.query || ct.key.length === 0) return;
  const keys = ct.key.map((k) => `q.${ident(k)}`).join(', ');
  const r = await client.query(`select ${ct.key.map((k, i) => `q.${ident(k)}::text as k${i}`).join(', ')}, count(*)::int as n from ${relation} q group by ${keys} having count(*) > 1 limit 1`);
  const row = r.rows[0] as Record<string, string | number | null> | undefined;
  if (row) throw new QueryKeyError(ct.table, shownKey(ct.key, ct.key.map((_, i) => (row[`k${i}`] ?? null) as string | null)), Number(row.n), ct.query);
}

/**
 * A SQL_ASCII database stores whatever bytes it is given and checks none; bluegreen's
 * sessions read UTF-8, so the server refuses to send a value that is not valid UTF-8 and
 * a run failed on the first such row with only "invalid byte sequence for encoding UTF8:
 * 0xe9". Named here, before anything is written: the table, the row's key and the column.
 */
export class SourceEncodingError extends InvalidInputError {
  constructor(
    readonly table: string,
    readonly column: string,
    readonly key: string | undefined,
    /** The value with bytes outside ASCII as octal escapes (`caf\351`). */
    readonly value: string,
    source: string,
  ) {
    super(
      `table ${table}, column ${column}${key === undefined ? '' : `, key ${key}`}: not valid UTF-8 (value ${cut(value)}); ${source} is a SQL_ASCII database, which stores any bytes unchecked`,
      `correct the value on ${source} (if it is LATIN1 text: update ${table} set ${column} = convert_from(convert_to(${column}, 'SQL_ASCII'), 'LATIN1') where ...), then run again`,
    );
  }
}

// One UTF-8 character, byte by byte (RFC 3629: no overlongs, no surrogates, nothing above
// U+10FFFF). In a SQL_ASCII database every byte is one character to the regex engine.
const UTF8 = String.raw`^(?:[\x01-\x7f]|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2})*$`;

/**
 * On a SQL_ASCII source, the first value of the rows the run reads that is not valid
 * UTF-8, per source table, thrown as SourceEncodingError; on any other source nothing
 * (the server checked every value on the way in). Every column is checked as text, so
 * enums and arrays of text are covered; the value and key are printed with
 * encode(..., 'escape'), which the session can receive.
 */
async function assertUtf8(client: pg.Client, tables: CompiledTable[], rel: (ct: CompiledTable) => (t: string) => string, source: PreflightSource): Promise<void> {
  const enc = (await client.query<{ e: string }>(`select current_setting('server_encoding') as e`)).rows[0]!.e;
  if (enc !== 'SQL_ASCII') return;
  const re = literal(UTF8);
  const escaped = (expr: string) => `encode(convert_to(${expr}::text, 'SQL_ASCII'), 'escape')`;
  for (const ct of tables) {
    for (const s of ct.sources) {
      if (s.columns.length === 0) continue;
      const bad = s.columns.map((c) => `not (q.${ident(c)}::text ~ ${re})`);
      const keys = s.key.map((k, n) => `${escaped(`q.${ident(k)}`)} as k${n}`);
      const which = (f: (c: string, i: number) => string) => `case ${s.columns.map((c, i) => `when ${bad[i]} then ${f(c, i)}`).join(' ')} end`;
      const sql = `select ${[...keys, `${which((_, i) => String(i))} as i`, `${which((c) => escaped(`q.${ident(c)}`))} as v`].join(', ')} from ${rel(ct)(s.table)} q where ${bad.join(' or ')} limit 1`;
      const row = (await client.query<Record<string, string | number>>(sql)).rows[0];
      if (row === undefined) continue;
      const column = s.columns[Number(row.i)]!;
      const value = String(row.v);
      throw new SourceEncodingError(s.table, column, s.key.length ? shownKey(s.key, s.key.map((_, n) => String(row[`k${n}`]))) : undefined, value, source.name);
    }
  }
}
