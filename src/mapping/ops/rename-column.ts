/**
 * `rename` / `copy`: a target column takes a source column's value unchanged. The two
 * names are one operation; `copy` reads better when the source column also feeds
 * another target column. Types must be equal: a type change is a `cast`, never implied.
 */
import type { ValidationProblem } from '../../errors.ts';
import { bareName, mustResolve, needSource, needTarget, problemAt, type ColumnOp } from '../op.ts';
import type { RenameOpSpec } from '../types.ts';

export const renameColumn: ColumnOp<RenameOpSpec> = {
  validate(spec, env) {
    const problems: ValidationProblem[] = [];
    const src = needSource(env, spec.from, '/from', problems);
    const dst = needTarget(env, spec.to, '/to', problems);
    if (src && dst && src.column.type !== dst.type) {
      problems.push(
        problemAt(env, '/to', `type differs: ${spec.from} is ${src.column.type} but ${env.table}.${spec.to} is ${dst.type}`, `use {"op": "cast", "from": "${spec.from}", "to": "${spec.to}"}`),
      );
    }
    return problems;
  },
  plan(spec, env) {
    const src = mustResolve(env, spec.from);
    return {
      reads: [src],
      writes: [spec.to],
      omits: [],
      drops: [],
      lossy: [],
      keySafe: true,
      sql: [src.sql],
      js: ([o]) => {
        const i = src.index;
        const oi = o!;
        return (row, out) => {
          out[oi] = row[i]!;
        };
      },
    };
  },
  invert(spec) {
    return [{ op: spec.op, from: spec.to, to: bareName(spec.from) }];
  },
};
