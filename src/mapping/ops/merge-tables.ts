/**
 * Merge tables: `"users": {"from": {"merge": ["users", "user_profiles"]}}` joins several
 * source tables on the key into one target table: the reverse of a split.
 *
 * It is a LEFT JOIN from the first table: a row of a later table without a partner in the
 * first is dropped (with a foreign key from the split piece to the first table, as in the
 * sample app, there are none), and a first-table row without a partner gets NULLs for the
 * later tables' columns. Each later table joins on the key columns by the same names when
 * it has them all; else on its own primary key when that key is declared to refer to the
 * first table's (a foreign key from exactly the primary key's columns to the first table's
 * key columns: the inverse of a split that renamed the key, `tickets.id` ->
 * `ticket_bodies.ticket_id`), paired column for column through that foreign key, with the
 * key's types. A primary key of the right width and type alone is not enough: a table
 * `ticket_bodies (body_id PRIMARY KEY, ticket_id UNIQUE REFERENCES tickets)` would join
 * `tickets.id = body_id`, and verify, joining the same way, would call it clean; `check`
 * refuses it instead. Unqualified column names resolve to the first table that has them;
 * write `table.column` to pick another.
 */
import type { TableInfo } from '../../db/catalog-types.ts';
import type { ValidationProblem } from '../../errors.ts';
import { quoteIdent } from '../sql.ts';

/**
 * The columns a later merged table `t` joins on, in the order of the first table's `key`:
 * the same names when it has them all, else its own primary key when a foreign key from
 * exactly those columns references `first`'s `key` (a key renamed by the split this merge
 * undoes), paired through that foreign key; undefined when neither.
 */
export function mergeKeyOf(t: TableInfo, first: string, key: string[]): string[] | undefined {
  if (key.every((k) => t.columns.some((c) => c.name === k))) return key;
  if (key.length === 0 || t.primaryKey.length !== key.length) return undefined;
  for (const fk of t.foreignKeys) {
    if (fk.refTable !== first || fk.columns.length !== key.length) continue;
    if (!fk.columns.every((c) => t.primaryKey.includes(c))) continue;
    const join = key.map((k) => fk.columns[fk.refColumns.indexOf(k)]);
    if (join.every((c): c is string => c !== undefined)) return join;
  }
  return undefined;
}

/** Problems when a later merged table has no key matching the first table's. */
export function validateMergeKey(first: TableInfo, others: TableInfo[], key: string[], file: string, path: string): ValidationProblem[] {
  const problems: ValidationProblem[] = [];
  for (const t of others) {
    const join = mergeKeyOf(t, first.name, key);
    if (join === undefined) {
      const missing = key.filter((k) => !t.columns.some((c) => c.name === k));
      const pk = t.primaryKey.join(', ');
      problems.push({
        file,
        path,
        message: `merged table ${t.name} has no key column${missing.length > 1 ? 's' : ''} ${missing.map((k) => `"${k}"`).join(', ')} to join ${first.name} on, and its primary key (${pk || 'none'}) is not declared to refer to ${first.name} (${key.join(', ')})`,
        hint: `when ${t.name}'s primary key is ${first.name}'s key renamed, declare it: FOREIGN KEY (${pk || '...'}) REFERENCES ${first.name} (${key.join(', ')}); else make the column${key.length > 1 ? 's' : ''} referring to ${first.name} its primary key, or name ${key.length > 1 ? 'them' : 'it'} as in ${first.name}`,
      });
      continue;
    }
    key.forEach((k, i) => {
      const a = first.columns.find((c) => c.name === k);
      const b = t.columns.find((c) => c.name === join[i]);
      if (a && b && a.type !== b.type) {
        problems.push({ file, path, message: `key column "${k}" is ${a.type} in ${first.name} but "${join[i]}" is ${b.type} in ${t.name}`, hint: 'join keys must have the same type' });
      }
    });
  }
  return problems;
}

/**
 * `FROM <rel0> AS "s0" LEFT JOIN <rel1> AS "s1" ON "s0"."k" = "s1"."k" ...`; `keys[i]` are
 * the join columns of `rels[i]` ({@link mergeKeyOf}), `keys[0]` the first table's key.
 */
export function fromClause(rels: string[], keys: string[][]): string {
  let sql = `FROM ${rels[0]} AS ${quoteIdent('s0')}`;
  const key = keys[0] ?? [];
  for (let i = 1; i < rels.length; i++) {
    const alias = quoteIdent(`s${i}`);
    const on = key.map((k, n) => `${quoteIdent('s0')}.${quoteIdent(k)} = ${alias}.${quoteIdent(keys[i]![n]!)}`).join(' AND ');
    sql += ` LEFT JOIN ${rels[i]} AS ${alias} ON ${on}`;
  }
  return sql;
}
