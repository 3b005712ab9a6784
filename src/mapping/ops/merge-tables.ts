/**
 * Merge tables: `"users": {"from": {"merge": ["users", "user_profiles"]}}` joins several
 * source tables on the key into one target table: the reverse of a split.
 *
 * It is a LEFT JOIN from the first table: a row of a later table without a partner in the
 * first is dropped (with a foreign key from the split piece to the first table, as in the
 * sample app, there are none), and a first-table row without a partner gets NULLs for the
 * later tables' columns. Each later table must have the key columns, by the same names and
 * types as in the first table. Unqualified column names resolve to the first table that has
 * them; write `table.column` to pick another.
 */
import type { TableInfo } from '../../db/catalog-types.ts';
import type { ValidationProblem } from '../../errors.ts';
import { quoteIdent } from '../sql.ts';

/** Problems when a later merged table lacks the first table's key columns. */
export function validateMergeKey(first: TableInfo, others: TableInfo[], key: string[], file: string, path: string): ValidationProblem[] {
  const problems: ValidationProblem[] = [];
  for (const t of others) {
    for (const k of key) {
      const a = first.columns.find((c) => c.name === k);
      const b = t.columns.find((c) => c.name === k);
      if (b === undefined) {
        problems.push({ file, path, message: `merged table ${t.name} has no key column "${k}" to join ${first.name} on`, hint: 'every merged table must have the key columns under the same names' });
      } else if (a && a.type !== b.type) {
        problems.push({ file, path, message: `key column "${k}" is ${a.type} in ${first.name} but ${b.type} in ${t.name}`, hint: 'join keys must have the same type' });
      }
    }
  }
  return problems;
}

/** `FROM <rel0> AS "s0" LEFT JOIN <rel1> AS "s1" ON "s0"."k" = "s1"."k" ...`. */
export function fromClause(rels: string[], key: string[]): string {
  let sql = `FROM ${rels[0]} AS ${quoteIdent('s0')}`;
  for (let i = 1; i < rels.length; i++) {
    const alias = quoteIdent(`s${i}`);
    const on = key.map((k) => `${quoteIdent('s0')}.${quoteIdent(k)} = ${alias}.${quoteIdent(k)}`).join(' AND ');
    sql += ` LEFT JOIN ${rels[i]} AS ${alias} ON ${on}`;
  }
  return sql;
}
