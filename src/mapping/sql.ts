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
