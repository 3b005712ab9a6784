/**
 * Values written in mapping files (constants, value maps) are compared with and emitted as
 * PostgreSQL's text output. A value in a non-canonical spelling (`true` for a boolean, `1.5`
 * for numeric(10,2)) would make the JS face disagree with the SQL face and with verify, so
 * it is refused where the canonical form is known.
 */

const INT_RANGE: Record<string, [bigint, bigint]> = {
  smallint: [-32768n, 32767n],
  integer: [-2147483648n, 2147483647n],
  bigint: [-9223372036854775808n, 9223372036854775807n],
};

/** A problem with `value` as the text output of `type`, or undefined when canonical (or unknown). */
export function canonicalProblem(value: string, type: string): { message: string; hint: string } | undefined {
  if (type === 'boolean') {
    if (value !== 't' && value !== 'f') return { message: `"${value}" is not how PostgreSQL prints a boolean`, hint: 'write "t" or "f"' };
    return undefined;
  }
  const range = INT_RANGE[type];
  if (range) {
    if (!/^-?(0|[1-9][0-9]*)$/.test(value)) return { message: `"${value}" is not how PostgreSQL prints ${type}`, hint: 'write a plain integer: no sign "+", spaces or leading zeros' };
    const n = BigInt(value);
    if (n < range[0] || n > range[1]) return { message: `${value} is out of range for ${type}`, hint: `use a value between ${range[0]} and ${range[1]}` };
    return undefined;
  }
  const num = /^numeric\((\d+),(\d+)\)$/.exec(type);
  if (num) {
    const scale = Number(num[2]);
    const re = scale === 0 ? /^-?(0|[1-9][0-9]*)$/ : new RegExp(`^-?(0|[1-9][0-9]*)\\.[0-9]{${scale}}$`);
    if (!re.test(value) && value !== 'NaN') return { message: `"${value}" is not how PostgreSQL prints ${type}`, hint: `write it with exactly ${scale} decimal digits` };
    return undefined;
  }
  if (type === 'uuid' && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value)) {
    return { message: `"${value}" is not how PostgreSQL prints a uuid`, hint: 'write it in lowercase 8-4-4-4-12 form' };
  }
  const vc = /^character varying\((\d+)\)$/.exec(type);
  if (vc && [...value].length > Number(vc[1])) return { message: `"${value}" is longer than ${type} allows`, hint: 'shorten the value' };
  return undefined;
}
