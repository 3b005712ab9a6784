/**
 * `drop`: a source column is deliberately not carried (and its same-named target column,
 * if any, is not filled from it). The mapping must also list it in `loses`, so a person
 * reading the file before a rollback sees what does not come back.
 */
import type { ValidationProblem } from '../../errors.ts';
import { bareName, mustResolve, needSource, type ColumnOp } from '../op.ts';
import type { DropOpSpec } from '../types.ts';

export const dropColumn: ColumnOp<DropOpSpec> = {
  validate(spec, env) {
    const problems: ValidationProblem[] = [];
    needSource(env, spec.column, '/column', problems);
    return problems;
  },
  plan(spec, env) {
    const src = mustResolve(env, spec.column);
    return { reads: [], writes: [], omits: [], drops: [src], lossy: [src], keySafe: false, sql: [], js: () => () => {} };
  },
  invert(spec) {
    // The reverse mapping can only refill the column from its DEFAULT (or NULL).
    return [{ op: 'default', column: bareName(spec.column) }];
  },
};
