/**
 * `sql`: a target column computed by an SQL expression over source columns named by bare
 * name (`round(total_cents / 100.0, 2)`), for what the built-ins do not cover. One file
 * is one direction: the reverse file carries its own expression.
 *
 * The SQL face evaluates the expression in a scope holding exactly the `from` columns
 * (sql.ts scopedExpr), and casts the result to the target column's type. The JS face is
 * the optional twin `js` from functions.ts; without one, offline paths run the SQL face
 * in PostgreSQL. Whether the op loses information cannot be analysed: the file's `loses`
 * says so, and `check`'s round trip on fixtures tests it.
 */
import type { ValidationProblem } from '../../errors.ts';
import { MappingValueError } from '../errors.ts';
import { bareName, mustResolve, mustTarget, needSource, needTarget, problemAt, type ColumnOp } from '../op.ts';
import { castToTarget, scopedExpr } from '../sql.ts';
import type { MappingFunction, SqlOpSpec } from '../types.ts';

/** Validates a functions.ts twin name; shared with function ops' SQL faces. */
export function needFunction(name: string, functions: Readonly<Record<string, unknown>>, problems: ValidationProblem[], at: ValidationProblem): void {
  if (typeof functions[name] === 'function') return;
  const known = Object.keys(functions).filter((k) => typeof functions[k] === 'function');
  problems.push({ ...at, message: `functions.ts exports no function "${name}"`, hint: known.length ? `known: ${known.join(', ')}` : 'create functions.ts beside the mapping and export the function by that name' });
}

/** Calls a functions.ts function on one row, checking the shape of what it returns. */
export function callTwin(fn: MappingFunction, name: string, table: string, to: string, args: (string | null)[], n: number): readonly (string | null)[] {
  const result = fn(args);
  if (!Array.isArray(result) || result.length !== n || result.some((v) => v !== null && typeof v !== 'string')) {
    throw new MappingValueError(table, to, args.join(','), `function ${name} must return an array of ${n} strings or nulls`);
  }
  return result;
}

export const sqlExpression: ColumnOp<SqlOpSpec> = {
  validate(spec, env) {
    const problems: ValidationProblem[] = [];
    const seen = new Set<string>();
    spec.from.forEach((ref, i) => {
      needSource(env, ref, `/from/${i}`, problems);
      const bare = bareName(ref);
      if (seen.has(bare)) problems.push(problemAt(env, `/from/${i}`, `two source columns are named "${bare}": the expression could not tell them apart`, 'read one of them through another op'));
      seen.add(bare);
    });
    needTarget(env, spec.to, '/to', problems);
    if (spec.expr.trim() === '') problems.push(problemAt(env, '/expr', 'is empty'));
    if (spec.js !== undefined) needFunction(spec.js, env.functions, problems, problemAt(env, '/js', ''));
    return problems;
  },
  plan(spec, env) {
    const srcs = spec.from.map((ref) => mustResolve(env, ref));
    const toType = mustTarget(env, spec.to).type;
    const scope = spec.from.map((ref, i) => ({ name: bareName(ref), sql: srcs[i]!.sql }));
    const twin = spec.js === undefined ? undefined : (env.functions[spec.js] as MappingFunction);
    const table = env.table;
    return {
      reads: srcs,
      writes: [spec.to],
      omits: [],
      drops: [],
      lossy: srcs.filter((s) => env.declaredLost?.(s) ?? false),
      keySafe: false,
      sql: [castToTarget(scopedExpr(spec.expr, scope), toType)],
      js:
        twin === undefined
          ? { unsupported: `sql op at ${env.path} has no JS twin ("js")` }
          : ([o]) => {
              const idx = srcs.map((s) => s.index);
              const oi = o!;
              return (row, out) => {
                out[oi] = callTwin(twin, spec.js!, table, spec.to, idx.map((i) => row[i]!), 1)[0]!;
              };
            },
      userSql: [{ path: `${env.path}/expr`, expr: spec.expr, columns: spec.from.map((ref, i) => ({ name: bareName(ref), type: srcs[i]!.column.type })) }],
    };
  },
  invert() {
    return null; // an expression has no automatic inverse: the reverse file says it
  },
};
