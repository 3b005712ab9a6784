/**
 * `function`: the escape hatch. `name` is a function exported by mappings/vN/functions.ts
 * (vN = the version the mapping file lives in), called per row with the text values of
 * `from` and returning the text values of `to`. It has no SQL face, so a table using it
 * is converted in Node. Its losses cannot be analysed: unless the op says
 * `"lossless": true` (which `bluegreen check` then tests on fixtures), its `from` columns
 * count as lossy and must be listed in `loses`.
 */
import type { ValidationProblem } from '../../errors.ts';
import { MappingValueError } from '../errors.ts';
import { mustResolve, needSource, needTarget, problemAt, type ColumnOp } from '../op.ts';
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
      sql: { unsupported: `function op "${spec.name}" at ${env.path} has no SQL face` },
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

