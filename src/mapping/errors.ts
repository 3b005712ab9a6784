/**
 * Failures of the mapping engine beyond file validation (which is a ValidationError).
 */
import { InvalidInputError, type ValidationProblem } from '../errors.ts';
import { cut, quoted } from '../text.ts';

/** A table's mapping has no face for the requested path (SQL or offline JS). */
export class UnsupportedFaceError extends InvalidInputError {
  constructor(
    /** Target table. */
    readonly table: string,
    /** `sql` (live databases) or `js` (offline convert). */
    readonly face: 'sql' | 'js',
    /** One line per op without that face, naming it. */
    readonly reasons: string[],
  ) {
    super(
      `table ${table} cannot be converted ${face === 'js' ? 'offline (in Node)' : 'inside PostgreSQL'}: ${reasons.join('; ')}`,
      face === 'js'
        ? 'give the offline command a PostgreSQL to run the SQL face on (--catalog-url or --via), import the dump (it converts in the target), or give the op a JS twin in functions.ts'
        : 'give the function op an SQL face, "sql": {"<to column>": "<expression>"}, or use an sql op; `bluegreen check` names every op without one',
    );
  }
}

/** A row value the mapping cannot convert (an unmapped value, an out-of-range cast...). */
export class MappingValueError extends InvalidInputError {
  constructor(
    /** Target table. */
    readonly table: string,
    /** Target column. */
    readonly column: string,
    /** The offending source value (text form). */
    readonly value: string | null,
    /** What went wrong, without the table, column and value. */
    readonly reason: string,
    hint?: string,
  ) {
    super(`${table}.${column}: ${cut(reason)} (value ${value === null ? 'NULL' : quoted(value)})`, hint);
  }
}

/** A value cut for messages (src/text.ts). */
export function shownValue(value: string | null | undefined): string {
  if (value === undefined) return '';
  if (value === null) return ' (value NULL)';
  return ` (value ${quoted(value)})`;
}

/** `id=7`, `(a, b)=(1,x)`: a key for messages (each value cut, a key can be text too). */
export function shownKey(columns: readonly string[], values: readonly (string | null)[]): string {
  const v = values.map((x) => (x === null ? 'NULL' : cut(x)));
  return columns.length === 1 ? `${columns[0]}=${v[0]}` : `(${columns.join(', ')})=(${v.join(',')})`;
}

/**
 * A row the mapping could not convert, located: the target table and column, the
 * source key of the row and its value, and what to change. Raised by sync, import,
 * convert and cutover alike, before anything is committed.
 */
export class RowConversionError extends InvalidInputError {
  constructor(
    /** Target table. */
    readonly table: string,
    /** Target column. */
    readonly column: string,
    /** The row's source key (`id=7`), when found. */
    readonly key: string | undefined,
    /** The offending value (text form), when known. */
    readonly value: string | null | undefined,
    /** What went wrong (PostgreSQL's or the op's message). */
    readonly reason: string,
    /** Where the op producing the column is (`<file> at <JSON pointer>`); undefined when carried by name. */
    readonly op: string | undefined,
    /** What to change, when the default (make the value fit the column) does not apply: a constraint the row fails. */
    hint?: string,
  ) {
    super(
      // The server's reason may quote the value itself ("value too long ...: xxx"): cut too.
      `table ${table}, column ${column}${key === undefined ? '' : `, key ${key}`}: ${cut(reason)}${shownValue(value)}`,
      hint ??
        (op === undefined
          ? `the value does not fit ${table}.${column}: widen the column in schema.sql, or convert it with an op (map, sql) and declare in "loses" what that drops`
          : `change the op at ${op} so every value fits ${table}.${column} (or widen the column), and declare in "loses" what the new op drops`),
    );
  }
}

/**
 * Author-written SQL expressions of the mappings (sql ops, function ops' SQL faces) that
 * do not compile against the catalogs: found before anything is written, each named with
 * its file and JSON pointer as `check` names it, on one line.
 */
export class MappingExpressionError extends InvalidInputError {
  constructor(readonly problems: ValidationProblem[]) {
    super(
      problems.map((p) => `${p.file}: ${p.path}: ${cut(p.message)}`).join('; '),
      `${problems[0]?.hint ?? 'fix the expression'}; bluegreen check proves every expression before a run`,
    );
  }
}
