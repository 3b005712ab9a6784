/**
 * `function`: the escape hatch. `name` is a function exported by mappings/vN/functions.ts
 * (vN = the version the mapping file lives in), called per row with the text values of
 * `from` and returning the text values of `to`. Its SQL face, for the live paths (sync,
 * verify, cutover), is optional: `"sql": {"<to>": "<expr over from columns>"}` gives one
 * expression per `to` column (evaluated like an sql op's), and `check` proves the two
 * faces equal on fixtures; without it `check` refuses the mapping, naming the live paths
 * that cannot run it. Its losses cannot be analysed: unless the op says
 * `"lossless": true` (which `bluegreen check` then tests on fixtures), its `from` columns
 * count as lossy and must be listed in `loses`.
 */
import type { ValidationProblem } from '../../errors.ts';
import { MappingValueError } from '../errors.ts';
import { bareName, mustResolve, mustTarget, needSource, needTarget, problemAt, type ColumnOp } from '../op.ts';
import { castToTarget, scopedExpr } from '../sql.ts';
import type { FunctionOpSpec, MappingFunction } from '../types.ts';

export const functionOp: ColumnOp<FunctionOpSpec> = {
  validate(spec, env) {
    const problems: ValidationProblem[] = [];
    if (typeof env.functions[spec.name] !== 'function') {
      const known = Object.keys(env.functions).filter((k) => typeof env.functions[k] === 'function');
      problems.push(
        problemAt(env, '/name', `functions.ts exports no function "${spec.name}"`, known.length ? `known: ${known.join(', ')}` : 'create functions.ts beside the mapping and export the function by that name'),
      );
    }
    spec.from.forEach((ref, i) => needSource(env, ref, `/from/${i}`, problems));
    spec.to.forEach((name, i) => needTarget(env, name, `/to/${i}`, problems));
    if (spec.sql !== undefined) {
      for (const col of Object.keys(spec.sql)) {
        if (!spec.to.includes(col)) problems.push(problemAt(env, `/sql/${col}`, `"${col}" is not one of the op's "to" columns`, `the SQL face gives one expression per column of "to": ${spec.to.join(', ')}`));
      }
      for (const col of spec.to) {
        if (spec.sql[col] === undefined) problems.push(problemAt(env, '/sql', `no expression for "${col}"`, 'the SQL face needs an expression for every "to" column'));
      }
    }
    return problems;
  },
  plan(spec, env) {
    const srcs = spec.from.map((ref) => mustResolve(env, ref));
    const fn = env.functions[spec.name] as MappingFunction;
    const table = env.table;
    const name = spec.name;
    return {
      reads: srcs,
      writes: [...spec.to],
      omits: [],
      drops: [],
      lossy: spec.lossless === true ? [] : srcs,
      keySafe: false,
      sql:
        spec.sql === undefined
          ? { unsupported: `function op "${spec.name}" at ${env.path} has no SQL face` }
          : spec.to.map((col) => castToTarget(scopedExpr(spec.sql![col]!, spec.from.map((ref, i) => ({ name: bareName(ref), sql: srcs[i]!.sql }))), mustTarget(env, col).type)),
      userSql:
        spec.sql === undefined
          ? []
          : spec.to.map((col) => ({ path: `${env.path}/sql/${col}`, expr: spec.sql![col]!, columns: spec.from.map((ref, i) => ({ name: bareName(ref), type: srcs[i]!.column.type })) })),
      js: (outIndex) => {
        const idx = srcs.map((s) => s.index);
        const n = outIndex.length;
        return (row, out) => {
          const args = idx.map((i) => row[i]!);
          const result = fn(args);
          if (!Array.isArray(result) || result.length !== n || result.some((v) => v !== null && typeof v !== 'string')) {
            throw new MappingValueError(table, spec.to.join(','), args.join(','), `function ${name} must return an array of ${n} strings or nulls`);
          }
          for (let k = 0; k < n; k++) out[outIndex[k]!] = result[k]!;
        };
      },
    };
  },
  invert() {
    return null;
  },
};

