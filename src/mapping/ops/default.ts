/**
 * `default`: a target column is left out of the written column list, so PostgreSQL fills
 * it from its DEFAULT (or NULL). Its value is not a function of the source, so verify
 * cannot compare it: the compiled table lists it among its lossy columns.
 */
import type { ValidationProblem } from '../../errors.ts';
import { needTarget, problemAt, type ColumnOp } from '../op.ts';
import type { DefaultOpSpec } from '../types.ts';

export const defaultValue: ColumnOp<DefaultOpSpec> = {
  validate(spec, env) {
    const problems: ValidationProblem[] = [];
    const dst = needTarget(env, spec.column, '/column', problems);
    if (dst && dst.notNull && !dst.hasDefault) {
      problems.push(problemAt(env, '/column', `${env.table}.${spec.column} is NOT NULL and has no DEFAULT`, 'use {"op": "constant"} to give every row a value'));
    }
    return problems;
  },
  plan(spec) {
    return { reads: [], writes: [], omits: [spec.column], drops: [], lossy: [], keySafe: false, sql: [], js: () => () => {} };
  },
  invert(spec) {
    return [{ op: 'drop', column: spec.column }];
  },
};
