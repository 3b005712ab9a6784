/**
 * `map`: value-by-value translation (enum renames, boolean -> status text). Pairs are
 * [source, target] in text form, null meaning SQL NULL on either side. A value that is
 * not in the map fails the run loudly, in both faces, unless `else` names the value to
 * use; `else` or two sources mapping to one target make the map lossy.
 */
import type { ValidationProblem } from '../../errors.ts';
import { MappingValueError } from '../errors.ts';
import { bareName, mustResolve, mustTarget, needSource, needTarget, problemAt, type ColumnOp } from '../op.ts';
import { castToTarget, quoteLiteral, sqlFail, sqlText } from '../sql.ts';
import type { MapOpSpec } from '../types.ts';
import { canonicalProblem } from './text-form.ts';

/** Whether no two sources map to one target and nothing falls to `else`. */
export function isInjective(spec: MapOpSpec): boolean {
  if (spec.else !== undefined) return false;
  const seen = new Set<string | null>();
  for (const [, to] of spec.values) {
    if (seen.has(to)) return false;
    seen.add(to);
  }
  return true;
}

export const valueMap: ColumnOp<MapOpSpec> = {
  validate(spec, env) {
    const problems: ValidationProblem[] = [];
    const src = needSource(env, spec.from, '/from', problems);
    const to = spec.to ?? bareName(spec.from);
    const dst = needTarget(env, to, spec.to === undefined ? '/from' : '/to', problems);
    const seen = new Set<string | null>();
    spec.values.forEach(([from, into], i) => {
      if (seen.has(from)) problems.push(problemAt(env, `/values/${i}/0`, `source value ${JSON.stringify(from)} is mapped twice`, 'keep one pair per source value'));
      seen.add(from);
      const badFrom = src && from !== null ? canonicalProblem(from, src.column.type) : undefined;
      if (badFrom) problems.push(problemAt(env, `/values/${i}/0`, badFrom.message, badFrom.hint));
      const badTo = dst && into !== null ? canonicalProblem(into, dst.type) : undefined;
      if (badTo) problems.push(problemAt(env, `/values/${i}/1`, badTo.message, badTo.hint));
      if (dst && into === null && dst.notNull) problems.push(problemAt(env, `/values/${i}/1`, `${env.table}.${to} is NOT NULL but this pair maps to null`));
    });
    if (spec.else !== undefined && spec.else !== null && dst) {
      const bad = canonicalProblem(spec.else, dst.type);
      if (bad) problems.push(problemAt(env, '/else', bad.message, bad.hint));
    }
    if (spec.else === null && dst?.notNull) problems.push(problemAt(env, '/else', `${env.table}.${to} is NOT NULL but else is null`));
    if (src && !src.column.notNull && !seen.has(null) && spec.else === undefined) {
      problems.push(problemAt(env, '/values', `${spec.from} can be NULL but the map has no [null, ...] pair`, 'add a pair for null, or an "else" value (which makes the map lossy)'));
    }
    return problems;
  },
  plan(spec, env) {
    const src = mustResolve(env, spec.from);
    const to = spec.to ?? bareName(spec.from);
    const type = mustTarget(env, to).type;
    const nullPair = spec.values.find(([from]) => from === null);
    const pairs = spec.values.filter(([from]) => from !== null) as [string, string | null][];
    const whens = [
      ...(nullPair ? [`WHEN ${src.sql} IS NULL THEN ${sqlText(nullPair[1])}`] : []),
      ...pairs.map(([from, into]) => `WHEN ${src.sql} = ${quoteLiteral(from)} THEN ${sqlText(into)}`),
    ];
    const otherwise =
      spec.else !== undefined
        ? sqlText(spec.else)
        : sqlFail(`coalesce(${src.sql}::text, 'NULL') || ${quoteLiteral(` is not in the value map of ${env.table}.${to}`)}`);
    const lookup = new Map(pairs);
    const hasNull = nullPair !== undefined;
    const nullTo = nullPair?.[1] ?? null;
    const hasElse = spec.else !== undefined;
    const elseTo = spec.else ?? null;
    const table = env.table;
    return {
      reads: [src],
      writes: [to],
      omits: [],
      drops: [],
      lossy: isInjective(spec) ? [] : [src],
      keySafe: false,
      sql: [castToTarget(`CASE ${whens.join(' ')} ELSE ${otherwise} END`, type)],
      js: ([o]) => {
        const i = src.index;
        const oi = o!;
        return (row, out) => {
          const v = row[i]!;
          if (v === null) {
            if (hasNull) out[oi] = nullTo;
            else if (hasElse) out[oi] = elseTo;
            else throw new MappingValueError(table, to, v, 'value is not in the value map', 'add a pair for it, or an "else" value');
            return;
          }
          const mapped = lookup.get(v);
          if (mapped !== undefined) out[oi] = mapped;
          else if (hasElse) out[oi] = elseTo;
          else throw new MappingValueError(table, to, v, 'value is not in the value map', 'add a pair for it, or an "else" value');
        };
      },
    };
  },
  invert(spec) {
    if (!isInjective(spec)) return null;
    const to = spec.to ?? bareName(spec.from);
    return [{ op: 'map', from: to, to: bareName(spec.from), values: spec.values.map(([a, b]) => [b, a]) }];
  },
};
