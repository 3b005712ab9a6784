/**
 * Values echoed in messages (flag values, data values, keys) are cut, so a 131 KB flag or
 * a megabyte of jsonb does not become a 131 KB error line in a cron log or a JSON
 * envelope: what a person needs is the start of the value and that it went on.
 */

/** Longest value a message echoes, in characters. */
export const SHOWN_MAX = 200;

/** `value` cut to `max` characters, with `…` and how much was left out when cut. */
export function cut(value: string, max = SHOWN_MAX): string {
  if (value.length <= max) return value;
  return `${value.slice(0, max)}… (${value.length} characters)`;
}

/** A value for a message: quoted as JSON, cut to `max` characters first. */
export function quoted(value: string, max = SHOWN_MAX): string {
  if (value.length <= max) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, max))}… (${value.length} characters)`;
}
