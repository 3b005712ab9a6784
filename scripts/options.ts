/**
 * Interval and number flags, checked when the arguments are parsed: before any
 * connection, a bad value is a usage error (exit 2) with one line naming the flag, never a
 * server error or a NaN halfway through a run. Every form accepted here is one PostgreSQL
 * reads as an `interval`; a duration setting is passed as exact milliseconds.
 */
import { quoted } from '../src/text.ts';

const UNIT_MS: Record<string, number> = {
  us: 0.001, usec: 0.001, usecs: 0.001, microsecond: 0.001, microseconds: 0.001,
  ms: 1, msec: 1, msecs: 1, millisecond: 1, milliseconds: 1,
  s: 1000, sec: 1000, secs: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hr: 3_600_000, hrs: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
  w: 604_800_000, week: 604_800_000, weeks: 604_800_000,
};

/**
 * Milliseconds of a duration written as PostgreSQL would take it: `30s`, `500 ms`,
 * `'2 minutes'`, `1 hour 30 minutes`, `00:01:30`, or a bare number of `bareUnit`s.
 * Returns undefined when the text is not a duration.
 */
export function parseDuration(text: string, bareUnit: 'ms' | 's' = 's'): number | undefined {
  const s = text.trim().toLowerCase();
  if (s === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * (bareUnit === 's' ? 1000 : 1);
  const clock = /^(\d+):([0-5]\d)(?::([0-5]\d(?:\.\d+)?))?$/.exec(s);
  if (clock) return (Number(clock[1]) * 3600 + Number(clock[2]) * 60 + Number(clock[3] ?? 0)) * 1000;
  let total = 0;
  let matched = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)\s*([a-z]+)\s*/g)) {
    const unit = UNIT_MS[m[2]!];
    if (unit === undefined) return undefined;
    total += Number(m[1]) * unit;
    matched += m[0].length;
  }
  return matched === s.length ? total : undefined;
}

function usage(message: string): Error {
  // yargs reports an Error thrown from a coerce function through .fail(): exit 2, one line.
  return new Error(message);
}

/** yargs `coerce` for a duration flag: validated, and normalised to `<n>ms` (or `<n> seconds`). */
export function durationCoerce(flag: string, opts: { min?: number; as?: 'ms' | 'interval'; bareUnit?: 'ms' | 's' } = {}) {
  return (v: unknown): string | undefined => {
    if (v === undefined) return undefined;
    const ms = typeof v === 'number' ? v * (opts.bareUnit === 'ms' ? 1 : 1000) : parseDuration(String(v), opts.bareUnit);
    if (ms === undefined || !Number.isFinite(ms)) {
      throw usage(`--${flag} must be a duration such as '30s', '500ms' or '2 minutes' (got ${quoted(String(v))})`);
    }
    if (ms < (opts.min ?? 0)) throw usage(`--${flag} must be at least ${opts.min} ms (got ${quoted(String(v))})`);
    // An interval is passed on as written (PostgreSQL reads every form accepted here, and
    // messages then echo the user's words); a setting gets exact milliseconds.
    return opts.as === 'interval' ? String(v).trim() : `${Math.round(ms)}ms`;
  };
}

/** yargs `coerce` for a number flag: a finite number in range, an integer when asked. */
export function numberCoerce(flag: string, opts: { min?: number; max?: number; integer?: boolean; positive?: boolean } = {}) {
  return (v: unknown): number | undefined => {
    if (v === undefined) return undefined;
    const text = String(Array.isArray(v) ? v[v.length - 1] : v).trim();
    const n = text === '' ? NaN : Number(text);
    const kind = opts.integer ? 'integer' : 'number';
    const what = `${opts.positive ? `a positive ${kind}` : `${opts.integer ? 'an' : 'a'} ${kind}${opts.min !== undefined ? ` >= ${opts.min}` : ''}`}${opts.max !== undefined ? ` <= ${opts.max}` : ''}`;
    if (!Number.isFinite(n) || (opts.integer && !Number.isInteger(n)) || (opts.positive && n <= 0) || (opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
      throw usage(`--${flag} must be ${what} (got ${quoted(text)})`);
    }
    return n;
  };
}

/**
 * `--lookback`, as sync and cutover (for its final sync) take it: one definition, so the
 * two validate it the same way, before connecting.
 */
export const lookbackOption = {
  type: 'string',
  coerce: durationCoerce('lookback', { as: 'interval' }),
  describe: "Extra margin for application-side clocks (PostgreSQL interval, e.g. '2 minutes')",
} as const;

/**
 * The largest delay Node's timers take (2^31 - 1 ms): a longer one fires at once, so a
 * `cutover --timeout` past it would stop the cutover as soon as it froze the source.
 */
export const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/** What a bare `--version` becomes on a command with a schema version: refused by its coerce. */
const BARE_VERSION = '\u0000bare --version';

/** Commands with a schema version option: `--schema-version N`, or its short form `--version N`. */
export const SCHEMA_VERSION_COMMANDS = ['schema apply', 'export', 'import'];

/**
 * `--schema-version N` (schema apply, export, import), checked when the arguments are
 * parsed. `--version N` reaches it too: see {@link versionFlag}.
 */
export function schemaVersionOption(describe: string, demandOption = false) {
  const number = numberCoerce('schema-version', { integer: true, positive: true });
  return {
    type: 'string',
    demandOption,
    coerce: (v: unknown) => {
      if (v === BARE_VERSION) {
        throw new Error('--version needs a number on this command (the schema version: --version N, or --schema-version N); the tool\'s own version is `bluegreen --version`');
      }
      return number(v as never);
    },
    describe: `${describe} (short form: --version N)`,
  } as const;
}

/**
 * What `--version` means on this command line, decided before yargs parses it, as a DBA
 * expects it from pg_dump: with no value (alone, last, or followed by another option),
 * the tool's version (`print`), except on a command with a schema version, where it is
 * refused as a schema version without its number (exit 2). On a command with a schema version
 * (`schema apply`, `export`, `import`), `--version N` and `--version=N` are the short form
 * of `--schema-version N`: the arguments come back with the flag renamed, so every check
 * and message is the long flag's. On other commands, `--version` followed by a word is
 * still the tool's version (it takes no value there). `-V` is always the tool's version.
 * Arguments after `--` are not looked at.
 */
export function versionFlag(args: string[], command: string): { print: true } | { print: false; args: string[] } {
  const takesSchemaVersion = SCHEMA_VERSION_COMMANDS.includes(command);
  const out = [...args];
  for (let i = 0; i < out.length; i++) {
    const a = out[i]!;
    if (a === '--') break;
    if (a === '-V') return { print: true };
    if (a.startsWith('--version=')) {
      if (!takesSchemaVersion) return { print: true };
      out[i] = `--schema-version=${a.slice('--version='.length)}`;
    } else if (a === '--version') {
      const next = out[i + 1];
      const bare = next === undefined || (next.startsWith('-') && next !== '-' && !/^-\d/.test(next));
      if (!takesSchemaVersion) return { print: true };
      // Here a bare --version is a schema version with its number forgotten (`--version
      // "$V"` with $V unset): refused as one, never taken as a successful run that applied
      // or exported nothing.
      if (bare) {
        out[i] = `--schema-version=${BARE_VERSION}`;
        continue;
      }
      out[i] = '--schema-version';
      i++;
    }
  }
  return { print: false, args: out };
}
