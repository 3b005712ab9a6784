/**
 * `constant`: a target column gets the same text-form value on every row (a new NOT NULL
 * column, typically). Deterministic, so verify can compare it.
 */
import type { ValidationProblem } from '../../errors.ts';
import { mustTarget, needTarget, problemAt, type ColumnOp } from '../op.ts';
import { castToTarget, sqlText } from '../sql.ts';
import type { ConstantOpSpec } from '../types.ts';
import { canonicalProblem } from './text-form.ts';

export const constant: ColumnOp<ConstantOpSpec> = {
  validate(spec, env) {
    const problems: ValidationProblem[] = [];
    const dst = needTarget(env, spec.column, '/column', problems);
    if (dst) {
      if (spec.value === null && dst.notNull) {
        problems.push(problemAt(env, '/value', `${env.table}.${spec.column} is NOT NULL but the constant is null`, 'give a value, or use {"op": "default"} if the column has a DEFAULT'));
      }
      const bad = spec.value === null ? undefined : canonicalProblem(spec.value, dst.type);
      if (bad) problems.push(problemAt(env, '/value', bad.message, bad.hint));
    }
    return problems;
  },
  plan(spec, env) {
    const type = mustTarget(env, spec.column).type;
    const value = spec.value;
    return {
      reads: [],
      writes: [spec.column],
      omits: [],
      drops: [],
      lossy: [],
      keySafe: false,
      sql: [castToTarget(sqlText(value), type)],
      js: ([o]) => {
        const oi = o!;
        return (_row, out) => {
          out[oi] = value;
        };
      },
    };
  },
  invert(spec) {
    return [{ op: 'drop', column: spec.column }];
  },
};
