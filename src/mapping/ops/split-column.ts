/**
 * `split`: one text column into n text columns at the FIRST n-1 separators.
 *
 * The rule is chosen so that `concat` undoes it for every input, NULL included:
 *   NULL        -> all parts NULL
 *   'ann'       -> 'ann', NULL            (no separator: the rest is NULL, not '')
 *   ''          -> '', NULL
 *   ' ann'      -> '', 'ann'
 *   'ann '      -> 'ann', ''
 *   'a b c'     -> 'a', 'b c'             (the last part keeps later separators)
 * so the parts are always a run of non-NULL values followed by NULLs, with no separator
 * inside any part but the last, and concat (join until the first NULL) restores the text
 * exactly. Split is therefore lossless; concat is the lossy direction (see concat-columns).
 */
import type { ValidationProblem } from '../../errors.ts';
import { bareName, isTextType, mustResolve, needSource, needTarget, problemAt, type ColumnOp } from '../op.ts';
import { quoteLiteral } from '../sql.ts';
import type { SplitOpSpec } from '../types.ts';

/** Splits `value` into `parts` parts at the first `parts - 1` occurrences of `separator`. */
export function splitFirst(value: string | null, separator: string, parts: number): (string | null)[] {
  const result: (string | null)[] = new Array(parts).fill(null);
  let rest: string | null = value;
  for (let i = 0; i < parts - 1 && rest !== null; i++) {
    const at = rest.indexOf(separator);
    if (at < 0) {
      result[i] = rest;
      rest = null;
    } else {
      result[i] = rest.slice(0, at);
      rest = rest.slice(at + separator.length);
    }
  }
  result[parts - 1] = rest;
  return result;
}

/** SQL for the text before the first separator, or all of it when there is none. */
function sqlBefore(expr: string, sep: string): string {
  return `CASE WHEN strpos(${expr}, ${sep}) = 0 THEN ${expr} ELSE left(${expr}, strpos(${expr}, ${sep}) - 1) END`;
}
/** SQL for the text after the first separator, NULL when there is none. */
function sqlAfter(expr: string, sep: string): string {
  return `CASE WHEN strpos(${expr}, ${sep}) = 0 THEN NULL ELSE substr(${expr}, strpos(${expr}, ${sep}) + char_length(${sep})) END`;
}

export const splitColumn: ColumnOp<SplitOpSpec> = {
  validate(spec, env) {
    const problems: ValidationProblem[] = [];
    const src = needSource(env, spec.from, '/from', problems);
    if (src && !isTextType(src.column.type)) {
      problems.push(problemAt(env, '/from', `split needs a text column but ${spec.from} is ${src.column.type}`, 'cast it to text first in a function op, or map it differently'));
    }
    spec.to.forEach((name, i) => {
      const dst = needTarget(env, name, `/to/${i}`, problems);
      if (dst && !isTextType(dst.type)) problems.push(problemAt(env, `/to/${i}`, `split writes text but ${env.table}.${name} is ${dst.type}`));
      // A value without separators leaves the later parts NULL.
      if (dst && i > 0 && dst.notNull) {
        problems.push(problemAt(env, `/to/${i}`, `${env.table}.${name} is NOT NULL but split leaves it NULL when "${spec.from}" has fewer separators`, 'make the column nullable; NULL is what lets concat restore the value exactly'));
      }
    });
    return problems;
  },
  plan(spec, env) {
    const src = mustResolve(env, spec.from);
    const sep = quoteLiteral(spec.separator);
    const n = spec.to.length;
    const sql: string[] = [];
    let rest = src.sql;
    for (let i = 0; i < n - 1; i++) {
      sql.push(sqlBefore(rest, sep));
      rest = `(${sqlAfter(rest, sep)})`;
    }
    sql.push(rest);
    const separator = spec.separator;
    return {
      reads: [src],
      writes: [...spec.to],
      omits: [],
      drops: [],
      lossy: [],
      keySafe: false,
      sql,
      js: (outIndex) => {
        const i = src.index;
        if (n === 2) {
          // The common case without an intermediate array.
          const [o0, o1] = outIndex as [number, number];
          return (row, out) => {
            const v = row[i]!;
            if (v === null) {
              out[o0] = null;
              out[o1] = null;
              return;
            }
            const at = v.indexOf(separator);
            if (at < 0) {
              out[o0] = v;
              out[o1] = null;
            } else {
              out[o0] = v.slice(0, at);
              out[o1] = v.slice(at + separator.length);
            }
          };
        }
        return (row, out) => {
          const parts = splitFirst(row[i]!, separator, n);
          for (let k = 0; k < n; k++) out[outIndex[k]!] = parts[k]!;
        };
      },
    };
  },
  invert(spec) {
    return [{ op: 'concat', from: [...spec.to], to: bareName(spec.from), separator: spec.separator }];
  },
};
