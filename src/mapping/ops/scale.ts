/**
 * `scale`: target = source × factor in exact decimal arithmetic (integer cents <->
 * numeric money: `"factor": "0.01"` up, `"100"` down), in the target column's type.
 *
 * Both faces compute the exact product (BigInt in JS, numeric in SQL) and then require
 * that the target type holds it exactly: an integer target needs a whole number, a
 * numeric(p,s) target needs no digit beyond s and at most p-s integer digits. Anything
 * else fails the row (never rounds), so the op loses nothing and needs no `loses` entry.
 * The text each face produces is what PostgreSQL prints for that type: an integer, a
 * numeric(p,s) with exactly s decimals, an unconstrained numeric with the scales of the
 * source and the factor added (numeric multiplication's display scale).
 */
import type { ValidationProblem } from '../../errors.ts';
import { MappingValueError } from '../errors.ts';
import { bareName, mustResolve, mustTarget, needSource, needTarget, problemAt, valueFace, type ColumnOp } from '../op.ts';
import { castTo, quoteLiteral, sqlFail } from '../sql.ts';
import type { ScaleOpSpec } from '../types.ts';

const INT_BITS: Record<string, bigint> = { smallint: 15n, integer: 31n, bigint: 63n };
const NUMERIC = /^numeric(?:\((\d+),(\d+)\))?$/;

/** A decimal as mantissa and scale: `-12.50` is {m: -1250n, s: 2}. */
export interface Decimal {
  m: bigint;
  s: number;
}

/** Parses PostgreSQL integer or numeric text; throws for NaN, infinities and junk. */
export function parseDecimal(text: string): Decimal {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) throw new Error(`"${text}" is not a finite decimal`);
  const frac = m[3] ?? '';
  return { m: BigInt(`${m[1]!}${m[2]!}${frac}`), s: frac.length };
}

/** Prints `d` with exactly `scale` decimals (scale >= d.s). */
export function formatDecimal(d: Decimal, scale: number): string {
  const m = d.m * 10n ** BigInt(scale - d.s);
  const neg = m < 0n;
  let digits = (neg ? -m : m).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, '0');
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  return (neg ? '-' : '') + digits;
}

/** `d` at `scale` decimals, or undefined when that would drop a non-zero digit. */
function atScale(d: Decimal, scale: number): Decimal | undefined {
  if (scale >= d.s) return { m: d.m * 10n ** BigInt(scale - d.s), s: scale };
  const div = 10n ** BigInt(d.s - scale);
  return d.m % div === 0n ? { m: d.m / div, s: scale } : undefined;
}

/** The JS face: source text -> target text, throwing PostgreSQL-like messages. */
export function scaleJs(factor: string, toType: string): (value: string) => string {
  const f = parseDecimal(factor);
  const bits = INT_BITS[toType];
  const n = NUMERIC.exec(toType);
  return (value) => {
    const v = parseDecimal(value);
    const p: Decimal = { m: v.m * f.m, s: v.s + f.s };
    if (bits !== undefined) {
      const whole = atScale(p, 0);
      if (whole === undefined) throw new Error(`${formatDecimal(p, p.s)} is not a whole number, which ${toType} needs`);
      if (whole.m < -(1n << bits) || whole.m >= 1n << bits) throw new Error(`${whole.m} is out of range for type ${toType}`);
      return whole.m.toString();
    }
    if (n![1] === undefined) return formatDecimal(p, p.s);
    const [precision, scale] = [Number(n![1]), Number(n![2])];
    const exact = atScale(p, scale);
    if (exact === undefined) throw new Error(`${formatDecimal(p, p.s)} has more than ${scale} decimals, which ${toType} cannot hold exactly`);
    const abs = exact.m < 0n ? -exact.m : exact.m;
    if (abs >= 10n ** BigInt(precision)) throw new Error(`numeric field overflow: ${formatDecimal(exact, scale)} does not fit ${toType}`);
    return formatDecimal(exact, scale);
  };
}

/**
 * The SQL face over `expr` (source value): same checks, same text. The product is written
 * out where it is needed rather than bound in a subquery (about 40% cheaper per row), and
 * checks the types make impossible are left out: an integer times a factor with at most
 * s decimals always fits s decimals, and an integer is never NaN.
 */
function scaleSql(expr: string, factor: string, fromType: string, toType: string, where: string): string {
  const p = `((${expr})::numeric * ${factor}::numeric)`;
  const fail = (why: string, as: string) => `(${sqlFail(`${p}::text || ${quoteLiteral(` ${why} (${where})`)}`)})::${as}`;
  const fromScale = INT_BITS[fromType] !== undefined ? 0 : NUMERIC.exec(fromType)?.[2];
  const productScale = fromScale === undefined ? undefined : Number(fromScale) + parseDecimal(factor).s;
  const bits = INT_BITS[toType];
  const n = NUMERIC.exec(toType);
  if (bits !== undefined) {
    if (productScale === 0) return `${p}::${toType}`;
    return `CASE WHEN ${p} <> trunc(${p}) THEN ${fail(`is not a whole number, which ${toType} needs`, toType)} ELSE ${p}::${toType} END`;
  }
  if (n![1] === undefined) {
    // As the JS face: NaN and infinities are not decimals (compared as text: older servers have no numeric infinity).
    if (INT_BITS[fromType] !== undefined) return p;
    return `CASE WHEN ${p}::text IN ('NaN', 'Infinity', '-Infinity') THEN ${fail('is not a finite decimal', 'numeric')} ELSE ${p} END`;
  }
  const [precision, scale] = [Number(n![1]), Number(n![2])];
  const decimals = productScale !== undefined && productScale <= scale ? '' : `WHEN ${p} <> round(${p}, ${scale}) THEN ${fail(`has more than ${scale} decimals, which ${toType} cannot hold exactly`, 'numeric')} `;
  // round() also gives the result exactly `scale` decimals, the text the JS face prints.
  return castTo(`CASE ${decimals}WHEN abs(${p}) >= 1e${precision - scale} THEN ${fail(`does not fit ${toType}`, 'numeric')} ELSE round(${p}, ${scale}) END`, toType);
}

const scalable = (type: string) => INT_BITS[type] !== undefined || NUMERIC.test(type);

export const scale: ColumnOp<ScaleOpSpec> = {
  validate(spec, env) {
    const problems: ValidationProblem[] = [];
    const src = needSource(env, spec.from, '/from', problems);
    const to = spec.to ?? bareName(spec.from);
    const dst = needTarget(env, to, spec.to === undefined ? '/from' : '/to', problems);
    if (src && !scalable(src.column.type)) problems.push(problemAt(env, '/from', `${spec.from} is ${src.column.type}; scale works on integer and numeric columns`, 'use a cast first, or an sql op'));
    if (dst && !scalable(dst.type)) problems.push(problemAt(env, spec.to === undefined ? '/from' : '/to', `${env.table}.${to} is ${dst.type}; scale writes integer and numeric columns exactly`, 'make the target numeric(p,s), or use an sql op'));
    if (/^0+(\.0+)?$/.test(spec.factor)) problems.push(problemAt(env, '/factor', 'is zero', 'a factor of zero loses every value'));
    return problems;
  },
  plan(spec, env) {
    const src = mustResolve(env, spec.from);
    const to = spec.to ?? bareName(spec.from);
    const toType = mustTarget(env, to).type;
    const js = scaleJs(spec.factor, toType);
    const table = env.table;
    return {
      reads: [src],
      writes: [to],
      omits: [],
      drops: [],
      lossy: [],
      keySafe: false,
      // NULL in, NULL out: every branch of the face is NULL for a NULL product.
      sql: [scaleSql(src.sql, spec.factor, src.column.type, toType, `${table}.${to} = ${spec.from} × ${spec.factor}`)],
      js: valueFace(src.index, js, (v, e) => new MappingValueError(table, to, v, `scale by ${spec.factor} failed: ${e.message}`, `make ${table}.${to} wide enough, or change the op at ${env.path}`)),
    };
  },
  invert(spec) {
    // The reciprocal is exact only for powers of ten.
    const f = parseDecimal(spec.factor);
    const digits = f.m.toString();
    if (!/^10*$/.test(digits)) return null;
    const exp = digits.length - 1 - f.s; // factor = 10^exp
    const back = exp >= 0 ? (exp === 0 ? '1' : `0.${'0'.repeat(exp - 1)}1`) : `1${'0'.repeat(-exp)}`;
    return [{ op: 'scale', from: spec.to ?? bareName(spec.from), to: bareName(spec.from), factor: back }];
  },
};
