/**
 * `concat`: several text columns into one, joined with one separator, stopping at the
 * first NULL part (a NULL first part gives NULL). It is the exact inverse of `split`.
 *
 * It cannot be undone for rows split would never produce: a separator inside a part other
 * than the last ('Mary Ann', 'Smith' comes back as 'Mary', 'Ann Smith'), or a non-NULL
 * part after a NULL one (NULL, 'Smith' comes back as NULL, NULL). So its source columns
 * are lossy and the mapping must list them in `loses`; `bluegreen check` reports rows that
 * do not come back.
 */
import type { ValidationProblem } from '../../errors.ts';
import { bareName, isTextType, mustResolve, needSource, needTarget, problemAt, type ColumnOp } from '../op.ts';
import { quoteLiteral } from '../sql.ts';
import type { ConcatOpSpec } from '../types.ts';

/** Joins `parts` with `separator` up to the first NULL; NULL when the first part is NULL. */
export function concatParts(parts: readonly (string | null)[], separator: string): string | null {
  let result = parts[0] ?? null;
  if (result === null) return null;
  for (let k = 1; k < parts.length; k++) {
    const p = parts[k]!;
    if (p === null) break;
    result += separator + p;
  }
  return result;
}

/** Whether `concat` then `split` gives `parts` back (the rows concat does not lose). */
export function concatRoundTrips(parts: readonly (string | null)[], separator: string): boolean {
  let seenNull = false;
  for (let k = 0; k < parts.length; k++) {
    const p = parts[k]!;
    if (p === null) seenNull = true;
    else if (seenNull || (k < parts.length - 1 && p.includes(separator))) return false;
  }
  return true;
}

export const concatColumns: ColumnOp<ConcatOpSpec> = {
  validate(spec, env) {
    const problems: ValidationProblem[] = [];
    spec.from.forEach((ref, i) => {
      const src = needSource(env, ref, `/from/${i}`, problems);
      if (src && !isTextType(src.column.type)) problems.push(problemAt(env, `/from/${i}`, `concat needs text columns but ${ref} is ${src.column.type}`));
    });
    const dst = needTarget(env, spec.to, '/to', problems);
    if (dst && !isTextType(dst.type)) problems.push(problemAt(env, '/to', `concat writes text but ${env.table}.${spec.to} is ${dst.type}`));
    return problems;
  },
  plan(spec, env) {
    const srcs = spec.from.map((ref) => mustResolve(env, ref));
    const sep = quoteLiteral(spec.separator);
    // CASE picks the longest non-NULL prefix of parts.
    const whens: string[] = [`WHEN ${srcs[0]!.sql} IS NULL THEN NULL`];
    for (let k = 1; k < srcs.length; k++) {
      whens.push(`WHEN ${srcs[k]!.sql} IS NULL THEN ${srcs.slice(0, k).map((s) => s.sql).join(` || ${sep} || `)}`);
    }
    const all = srcs.map((s) => s.sql).join(` || ${sep} || `);
    const separator = spec.separator;
    const idx = srcs.map((s) => s.index);
    return {
      reads: srcs,
      writes: [spec.to],
      omits: [],
      drops: [],
      lossy: srcs,
      keySafe: false,
      sql: [`CASE ${whens.join(' ')} ELSE ${all} END`],
      js: ([o]) => {
        const oi = o!;
        return (row, out) => {
          let result = row[idx[0]!]!;
          if (result !== null) {
            for (let k = 1; k < idx.length; k++) {
              const p = row[idx[k]!]!;
              if (p === null) break;
              result += separator + p;
            }
          }
          out[oi] = result;
        };
      },
    };
  },
  invert(spec) {
    return [{ op: 'split', from: spec.to, to: spec.from.map(bareName), separator: spec.separator }];
  },
};
