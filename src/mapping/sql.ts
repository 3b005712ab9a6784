/**
 * SQL text helpers for the SQL face of mappings. Everything here builds text that goes
 * into `COPY (SELECT ...) TO STDOUT`, so it must not depend on session settings.
 */

/** Quotes an identifier always, so reserved words and mixed case survive. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Quotes a string literal as E'...': correct whatever standard_conforming_strings says,
 * because backslashes are escaped explicitly instead of relying on the setting.
 */
export function quoteLiteral(value: string): string {
  return `E'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

/** A text-form value as SQL: NULL or a quoted literal. */
export function sqlText(value: string | null): string {
  return value === null ? 'NULL' : quoteLiteral(value);
}

/**
 * Casts an op's result to the target column's type, so a chained step sees the same type
 * (and so the same text output) as the catalog promises. Length- and scale-constrained
 * types are cast to their unconstrained base: an explicit `::varchar(3)` or
 * `::numeric(10,2)` truncates or rounds silently, while COPY FROM into the target refuses
 * a too-long value, which is what the JS face does too.
 */
export function castTo(expr: string, type: string): string {
  return `(${expr})::${unconstrainedType(type)}`;
}

/** `character varying(20)` -> `character varying`; `numeric(20,6)` -> `numeric`. */
export function unconstrainedType(type: string): string {
  const m = /^(character varying|character|numeric|bit varying|bit)\(\d+(?:,\d+)?\)(\[\])?$/.exec(type);
  if (m) return m[1] === 'character' ? `text${m[2] ?? ''}` : `${m[1]}${m[2] ?? ''}`;
  return type;
}

/**
 * An expression that fails the query with a message built from `messageExpr` (a text
 * expression) when evaluated. Plain SQL has no RAISE; casting a sentence to boolean fails
 * with "invalid input syntax for type boolean: <sentence>". The operand is not a
 * constant, so the planner cannot fold it and fail a query whose rows never reach it.
 */
export function sqlFail(messageExpr: string): string {
  return `((${quoteLiteral('bluegreen: ')} || ${messageExpr})::boolean)::text`;
}

// Built-in types as format_type() spells them (arrays of them too). Anything else is an
// enum, a domain, a composite or an extension type, which may exist on one side only.
const BUILTIN = new RegExp(
  '^(' +
    [
      'smallint', 'integer', 'bigint', 'numeric(\\(\\d+,-?\\d+\\))?', 'real', 'double precision', 'money',
      'text', 'character varying(\\(\\d+\\))?', 'character(\\(\\d+\\))?', '"char"', 'name', 'boolean', 'bytea',
      'date', 'time(\\(\\d\\))? with(out)? time zone', 'timestamp(\\(\\d\\))? with(out)? time zone', 'interval( .*)?',
      'uuid', 'json', 'jsonb', 'jsonpath', 'xml', 'inet', 'cidr', 'macaddr8?', 'bit( varying)?(\\(\\d+\\))?',
      'point', 'line', 'lseg', 'box', 'path', 'polygon', 'circle', 'tsvector', 'tsquery', 'oid', 'pg_lsn',
      'int4range', 'int8range', 'numrange', 'tsrange', 'tstzrange', 'daterange',
      'int4multirange', 'int8multirange', 'nummultirange', 'tsmultirange', 'tstzmultirange', 'datemultirange',
    ].join('|') +
    ')(\\[\\])*$',
);

/**
 * A type PostgreSQL has built in (same name and meaning on every server). Others (enums,
 * domains, extension types) may exist on one side only, so the SQL face never names
 * them on the source: it produces text and the target's input function converts it.
 */
export function isBuiltinType(type: string): boolean {
  return BUILTIN.test(type);
}

/**
 * Like castTo, but a user-defined target type becomes text: the SELECT runs on the
 * source, where that type may not exist, and COPY FROM on the target parses the text.
 */
export function castToTarget(expr: string, type: string): string {
  return isBuiltinType(type) ? castTo(expr, type) : `(${expr})::text`;
}

/**
 * An expression written over source columns by bare name, evaluated in a scope that
 * exposes exactly those columns under those names: a scalar subquery over a one-row
 * VALUES list of the qualified references. No text substitution inside the expression
 * (so strings, quoted names and comments in it are never touched); a name it uses that
 * is not in `columns` falls through to the outer query, which `check` refuses by
 * preparing the expression in a scope without one.
 */
export function scopedExpr(expr: string, columns: readonly { name: string; sql: string }[]): string {
  const names = columns.map((c) => quoteIdent(c.name)).join(', ');
  // The newline ends a trailing `-- comment` of the expression before the closing parenthesis.
  return `(SELECT (${expr}\n) FROM (VALUES (${columns.map((c) => c.sql).join(', ')})) AS bg_in(${names}))`;
}
