/**
 * Target tables a mapping derives by an SQL query (`"sla_policies": {"query": "select ...",
 * "key": [...]}`) rather than carrying them from a source table.
 *
 * The query names source tables unqualified, as the team wrote it against its own
 * schema. Every path runs it where the data is by giving each name it mentions a CTE over
 * the relation the path reads that table through: the live table in sync and verify, a
 * staged temp table offline, an earlier step's SQL face in a chain. Two layers of CTEs,
 * because a later CTE sees the earlier ones: the path's relations come first under
 * private names (`bg_q0`...), so a relation mentioning a source table by name (a chain's
 * SQL face does) still reads the table, and only then the team's names over them.
 *
 * Which source tables a query reads is read from the query itself: every identifier
 * outside string literals, quoted identifiers and comments that names a table of the
 * source version. A column sharing a table's name only makes that table one more input.
 */
import type { TableInfo } from '../db/catalog-types.ts';
import type { ValidationProblem } from '../errors.ts';
import { quoteIdent } from './sql.ts';

/** A query table as the compiler and the preparers need it. */
export interface QueryPlan {
  /** The query as written, without a trailing semicolon. */
  sql: string;
  /** JSON pointer of the query in the mapping file. */
  path: string;
}

/**
 * Names of `tables` the query mentions (identifiers outside literals and comments; a
 * bare identifier folds to lower case as PostgreSQL folds it), in `tables` order.
 */
export function tablesReadBy(sql: string, tables: readonly string[]): string[] {
  const seen = new Set<string>();
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      // Block comments nest in PostgreSQL.
      let depth = 0;
      do {
        if (sql[i] === '/' && sql[i + 1] === '*') (depth++, (i += 2));
        else if (sql[i] === '*' && sql[i + 1] === '/') (depth--, (i += 2));
        else i++;
      } while (i < n && depth > 0);
    } else if (c === "'") {
      // A string literal; '' is a quote inside it, and E'...' escapes a quote with \.
      const escapes = i > 0 && /[eE]/.test(sql[i - 1]!) && !/[A-Za-z0-9_$]/.test(sql[i - 2] ?? ' ');
      i++;
      while (i < n) {
        if (escapes && sql[i] === '\\') i += 2;
        else if (sql[i] === "'" && sql[i + 1] === "'") i += 2;
        else if (sql[i] === "'") break;
        else i++;
      }
      i++;
    } else if (c === '"') {
      let j = i + 1;
      let name = '';
      while (j < n) {
        if (sql[j] === '"' && sql[j + 1] === '"') (name += '"'), (j += 2);
        else if (sql[j] === '"') break;
        else name += sql[j++];
      }
      seen.add(name);
      i = j + 1;
    } else if (c === '$' && /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.test(sql.slice(i))) {
      // A dollar-quoted string: skip to its closing tag.
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i))![0];
      const end = sql.indexOf(tag, i + tag.length);
      i = end < 0 ? n : end + tag.length;
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[j]!)) j++;
      seen.add(sql.slice(i, j).toLowerCase());
      i = j;
    } else i++;
  }
  return tables.filter((t) => seen.has(t));
}

/** The query without trailing semicolons and blanks (it is embedded as a subquery). */
export function normaliseQuery(sql: string): string {
  return sql.replace(/[\s;]+$/, '');
}

/**
 * `WITH <each source as its relation> SELECT <columns> FROM (<query>) q`: the query run
 * over the relations `rel` gives for `sources`, yielding `columns` in order.
 */
export function querySelect(query: string, sources: readonly string[], columns: readonly string[], rel: (table: string) => string): string {
  const privates = sources.map((s, i) => `${quoteIdent(`bg_q${i}`)} AS (SELECT * FROM ${rel(s)} AS bg_rel)`);
  const named = sources.map((s, i) => `${quoteIdent(s)} AS (SELECT * FROM ${quoteIdent(`bg_q${i}`)})`);
  const cte = sources.length ? `WITH ${[...privates, ...named].join(', ')} ` : '';
  return `${cte}SELECT ${columns.map((c) => `bg_query.${quoteIdent(c)}`).join(', ')} FROM (${query}\n) AS bg_query`;
}

/**
 * The query over empty relations of the source tables' columns and types, for EXPLAIN:
 * it plans wherever the source tables are absent (an import target, a scratch schema of
 * another version), and the outer SELECT refuses a target column the query does not yield.
 */
export function queryProbeSql(query: string, tables: readonly { name: string; columns: readonly { name: string; type: string }[] }[], columns: readonly string[]): string {
  const rel = (t: string) => {
    const info = tables.find((x) => x.name === t)!;
    return `(SELECT ${info.columns.map((c) => `NULL::${c.type} AS ${quoteIdent(c.name)}`).join(', ')} WHERE false)`;
  };
  return querySelect(query, tables.map((t) => t.name), columns, rel);
}

/** The source tables a query reads, with problems when it names none. */
export function querySources(name: string, sql: string, source: Readonly<Record<string, TableInfo>>, sourceVersion: number, file: string, path: string, problems: ValidationProblem[]): TableInfo[] {
  const names = tablesReadBy(sql, Object.keys(source));
  if (names.length === 0) {
    problems.push({
      file,
      path,
      message: `the query of ${name} reads no v${sourceVersion} table`,
      hint: `name the v${sourceVersion} tables it is derived from (unqualified: ${Object.keys(source).join(', ')}); a table nothing on the source side fills is {"new": "empty"}`,
    });
  }
  return names.map((n) => source[n]!);
}
