/**
 * JS twins of the shop's `sql` ops (v2/up.json and v2/down.json), so an offline convert
 * can run them without PostgreSQL; `bluegreen check` proves each equal to its SQL face on
 * the fixtures. Signature of every mapping function: text values of the op's `from`
 * columns in, text values of its `to` columns out, `null` for SQL NULL.
 */

/** Parses decimal text into an integer count of 10^-scale units (exact, no floats). */
function toUnits(text: string): { units: bigint; scale: number } {
  const m = /^\s*([+-]?)(\d*)(?:\.(\d*))?\s*$/.exec(text);
  if (m === null || (m[2] === '' && (m[3] ?? '') === '')) throw new Error(`not a number: ${text}`);
  const frac = m[3] ?? '';
  const units = BigInt((m[2] || '0') + frac) * (m[1] === '-' ? -1n : 1n);
  return { units, scale: frac.length };
}

/** Rounds units at `scale` to an integer, half away from zero (as numeric -> bigint does). */
function roundToInteger(units: bigint, scale: number): bigint {
  if (scale === 0) return units;
  const d = 10n ** BigInt(scale);
  const q = units / d;
  const r = units % d;
  const twice = (r < 0n ? -r : r) * 2n;
  return twice >= d ? q + (units < 0n ? -1n : 1n) : q;
}

/** `round(cents / 100.0, 2)` printed as numeric(12,2): 12345 -> "123.45", -5 -> "-0.05". */
export function centsToUnits([cents]: readonly (string | null)[]): (string | null)[] {
  if (cents === null || cents === undefined) return [null];
  const n = BigInt(cents.trim());
  const abs = n < 0n ? -n : n;
  const whole = abs / 100n;
  const frac = (abs % 100n).toString().padStart(2, '0');
  return [`${n < 0n ? '-' : ''}${whole}.${frac}`];
}

/** `(amount * 100)::bigint`: "123.45" -> "12345", "-0.05" -> "-5". */
export function unitsToCents([amount]: readonly (string | null)[]): (string | null)[] {
  if (amount === null || amount === undefined) return [null];
  const { units, scale } = toUnits(amount);
  // amount * 100 has scale - 2 decimals (or none).
  const cents = scale <= 2 ? units * 10n ** BigInt(2 - scale) : roundToInteger(units, scale - 2);
  return [cents.toString()];
}
