/**
 * `cast`: converts a source column to the target column's type (the type comes from the
 * target schema, so the mapping cannot disagree with it).
 *
 * The SQL face is PostgreSQL's own cast. The JS face exists only where the text result is
 * known exactly without PostgreSQL: widening or narrowing integers, numeric precision and
 * added scale, text <-> varchar, boolean <-> text, and types whose `::text` is their COPY
 * output. Any other cast (numeric rounding, text -> integer, json -> jsonb...) is SQL-only:
 * offline paths run it in PostgreSQL, and unless it is a known widening it is treated as
 * lossy.
 *
 * `timestamp` <-> `timestamptz` take a `zone` (default UTC) and convert with AT TIME ZONE,
 * so the result never depends on a session's TimeZone; in UTC the JS face is exact too.
 * In any other zone the cast is SQL-only: Node's time zone database (ICU's) is another
 * release than the server's, and the two disagree on some zones' history, so offline
 * paths run the same SQL face in PostgreSQL rather than a JS twin that could differ.
 *
 * A zone's clock changes make some local times impossible (the spring gap) and others
 * ambiguous (the autumn fold). `dst` says what the cast does with them (see dstSql):
 * `refuse` (the default) fails the row, so a run names it before anything is written;
 * `shift` converts as PostgreSQL does and is a declared loss.
 * `character(n)` -> text drops the padding (as PostgreSQL does) and text -> `character(n)`
 * pads it back, so a char(n) column round-trips and only the text -> char(n) direction
 * loses (trailing spaces). A cast to a user-defined type (enum, domain, extension type)
 * produces text on the source, where the type may not exist; COPY on the target parses it.
 */
import type { ValidationProblem } from '../../errors.ts';
import { MappingValueError } from '../errors.ts';
import { bareName, mustResolve, mustTarget, needSource, needTarget, problemAt, valueFace, type ColumnOp, type OpEnv, type SourceColumn } from '../op.ts';
import { castTo, isBuiltinType, quoteLiteral, sqlFail } from '../sql.ts';
import type { CastOpSpec } from '../types.ts';

/** How one type converts to another. */
export interface CastRule {
  /** Exact JS face over text values; throws a message for values the cast refuses. Undefined: SQL-only. */
  js?: (value: string) => string;
  /** The cast can lose information (several inputs give one output). */
  lossy: boolean;
  /** Output text equals input text for every accepted value (may carry a key). */
  keySafe: boolean;
  /**
   * One-to-one on the values it accepts, and its inverse cast restores each of them: a
   * key may go through it, rows then being matched through the cast (src/mapping/keys.ts).
   */
  keyCast?: boolean;
  /** SQL expression converting `expr`. */
  sql: (expr: string) => string;
}

const INT_BITS: Record<string, bigint> = { smallint: 15n, integer: 31n, bigint: 63n };
const TEXT_LIKE = /^(text|character varying(?:\((\d+)\))?)$/;
const NUMERIC = /^numeric(?:\((\d+),(\d+)\))?$/;
// Types whose cast to text is their output function (I/O conversion), so the text is
// exactly what COPY prints. Not boolean (prints true/false), character(n) (trims),
// inet/cidr (always print the netmask), which have their own casts to text.
const TEXT_IS_OUTPUT = /^(smallint|integer|bigint|numeric(\(\d+,\d+\))?|real|double precision|uuid|date|timestamp(\(\d\))? with(out)? time zone|time(\(\d\))? without time zone|interval|jsonb|json|bytea|money)$/;

/** Exact range check for integer text; throws the message PostgreSQL would give. */
function intInRange(type: string): (value: string) => string {
  const bits = INT_BITS[type]!;
  const min = -(1n << bits);
  const max = (1n << bits) - 1n;
  return (value) => {
    const n = BigInt(value);
    if (n < min || n > max) throw new Error(`out of range for type ${type}`);
    return value;
  };
}

/** Integer digits of a numeric text value (without sign and leading zero of "0.x"). */
function integerDigits(value: string): number {
  const unsigned = value.startsWith('-') ? value.slice(1) : value;
  const intPart = unsigned.split('.')[0]!;
  return intPart === '0' ? 0 : intPart.length;
}

/** JS face for a numeric(p,s) target receiving numeric text with `fromScale` decimals. */
function toNumeric(precision: number, scale: number, fromScale: number): (value: string) => string {
  const pad = '0'.repeat(scale - fromScale);
  return (value) => {
    if (value === 'NaN') return value;
    if (value === 'Infinity' || value === '-Infinity') throw new Error(`${value} does not fit numeric(${precision},${scale})`);
    if (integerDigits(value) > precision - scale) throw new Error(`numeric field overflow: does not fit numeric(${precision},${scale})`);
    if (pad === '') return value;
    return fromScale === 0 ? `${value}.${pad}` : value + pad;
  };
}

/** PostgreSQL's boolin: trims, case-insensitive, unique prefixes of true/false/yes/no, on/off, 1/0. */
export function parseBoolean(value: string): string {
  const v = value.trim().toLowerCase();
  const prefixOf = (word: string, min: number) => v.length >= min && word.startsWith(v);
  if (prefixOf('true', 1) || prefixOf('yes', 1) || v === 'on' || v === '1') return 't';
  if (prefixOf('false', 1) || prefixOf('no', 1) || prefixOf('off', 2) || v === '0') return 'f';
  throw new Error(`invalid input syntax for type boolean`);
}

const TIMESTAMP = /^timestamp(?:\((\d)\))? (with|without) time zone$/;
const CHAR = /^character\((\d+)\)$/;
/** Widenings that keep every value but whose text changes (so SQL-only, yet lossless). */
const WIDENING = new Set(['real>double precision', 'smallint>real', 'smallint>double precision', 'integer>double precision', 'date>timestamp without time zone', 'date>timestamp with time zone']);

/** Characters (code points) of `v`. */
function charLength(v: string): number {
  let n = 0;
  for (const _ of v) n++;
  return n;
}

/** PostgreSQL's bpchar input with typmod `n`: extra characters must be spaces; pads to n. */
function toChar(n: number, to: string): (v: string) => string {
  return (v) => {
    const chars = [...v];
    if (chars.length > n) {
      if (chars.slice(n).some((c) => c !== ' ')) throw new Error(`value too long for type ${to}`);
      return chars.slice(0, n).join('');
    }
    return v + ' '.repeat(n - chars.length);
  };
}

/** timestamp text <-> timestamptz text printed in UTC (`+00` before an optional ` BC`). */
const TS_TEXT = /^(\d{4,}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)( BC)?$/;
const TSTZ_UTC_TEXT = /^(\d{4,}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)\+00( BC)?$/;
function tsToUtc(v: string): string {
  if (v === 'infinity' || v === '-infinity') return v;
  const m = TS_TEXT.exec(v);
  if (!m) throw new Error(`unexpected timestamp text`);
  return `${m[1]!}+00${m[2] ?? ''}`;
}
function utcToTs(v: string): string {
  if (v === 'infinity' || v === '-infinity') return v;
  const m = TSTZ_UTC_TEXT.exec(v);
  if (!m) throw new Error(`unexpected timestamptz text (sessions print it in UTC)`);
  return `${m[1]!}${m[2] ?? ''}`;
}

/**
 * What a zoned cast does with local times in a gap or a fold of its zone: `refuse` both
 * (going down: the instants that would not read back), `later` refuses gap times and
 * reads a fold time as its later instant (up only; lossless: the local time comes back),
 * `shift` converts everything as PostgreSQL does (a loss).
 */
export type DstPolicy = 'refuse' | 'later' | 'shift';

/** Zones without clock changes: nothing to refuse, no check to pay for. */
export function isUtcZone(zone: string): boolean {
  return zone === 'UTC' || zone === 'Etc/UTC';
}

/**
 * SQL faces of a zoned cast under `refuse` (and `later`): the value as PostgreSQL
 * converts it, or a failure naming the value and the zone. Exact for any zone and any size of clock change
 * (the 30-minute shifts of Australia/Lord_Howe, the odd offsets of local mean time),
 * since every test asks PostgreSQL's own zone data:
 *
 * - up (local time `e` -> instant): `u = e AT TIME ZONE z` is PostgreSQL's reading. `e`
 *   is in a gap when `u`'s local time is not `e` (PostgreSQL reads a gap time with the
 *   offset before the change, which lands after the gap: 02:30 becomes 03:30). `e` is in
 *   a fold when another instant has local time `e` too: the candidates are `e` minus the
 *   offset in force 24 hours before and after `u` (every real clock change is under a
 *   day, and changes are further apart than that), each kept when its local time is `e`
 *   and it is not `u`. PostgreSQL reads a fold time as the LATER instant (the offset
 *   after the change), so `shift` and `later` give that one; `later` skips the fold test.
 * - down (instant `x` -> local time): every instant has one local time, but the two
 *   instants of a fold share it, and reading it back gives the later one. `refuse`
 *   refuses exactly the instants that would not come back: `(x AT TIME ZONE z) AT TIME
 *   ZONE z <> x`, i.e. the earlier instant of a fold. The later one, and so everything an
 *   up cast wrote, converts.
 *
 * Both are evaluated per row the run reads (no extra scan); offsets are taken 24 HOURS
 * away (not '1 day', whose length would depend on the session's TimeZone).
 */
export function dstSql(direction: 'up' | 'down', zone: string, to: string, later = false): (e: string) => string {
  const q = zoneChecks(zone);
  const z = quoteLiteral(zone);
  // A scalar subquery names the value and its conversion once: PostgreSQL evaluates an
  // expression as often as it is written, and each conversion searches the zone's rules.
  if (direction === 'down') {
    return (x) => {
      const fail = sqlFail(`bg_x::text || ${quoteLiteral(' is ')} || bg_l::text || ${quoteLiteral(` in ${zone}, which occurs twice (DST fold) and reads back as `)} || ${q.local('bg_l')}::text`);
      return castTo(`(SELECT CASE WHEN ${q.unreadable('bg_x', 'bg_l')} THEN (${fail})::timestamp without time zone ELSE bg_l END FROM (SELECT (${x}) AS bg_x, ((${x}) AT TIME ZONE ${z}) AS bg_l) AS bg_dst)`, to);
    };
  }
  return (e) => {
    const gap = sqlFail(`bg_t::text || ${quoteLiteral(` does not exist in ${zone} (DST gap; "dst": "shift" makes it `)} || ${q.local('bg_u')}::text || ')'`);
    const fold = sqlFail(`bg_t::text || ${quoteLiteral(` occurs twice in ${zone} (DST fold; "dst": "shift" takes the later instant, `)} || bg_u::text || ')'`);
    const folds = later ? '' : ` WHEN ${q.fold('bg_t', 'bg_u')} THEN (${fold})::timestamp with time zone`;
    return castTo(
      `(SELECT CASE WHEN NOT isfinite(bg_t) THEN bg_u WHEN ${q.gap('bg_t', 'bg_u')} THEN (${gap})::timestamp with time zone${folds} ELSE bg_u END FROM (SELECT (${e}) AS bg_t, ((${e}) AT TIME ZONE ${z}) AS bg_u) AS bg_dst)`,
      to,
    );
  };
}

/**
 * The tests dstSql is made of, as SQL boolean expressions over a local time `t` and
 * PostgreSQL's instant for it `u` (`t AT TIME ZONE zone`), or an instant `x` and its local
 * time `l`; exported so tests can hold them against every real clock change of a zone.
 */
export function zoneChecks(zone: string): {
  /** `x` in the zone: a timestamp gives the instant PostgreSQL reads, an instant its local time. */
  local(x: string): string;
  /** The local time `t` does not exist (finite `t`). */
  gap(t: string, u: string): string;
  /** The local time `t` exists twice (finite `t` not in a gap). */
  fold(t: string, u: string): string;
  /** The instant `x`'s local time `l` reads back as another instant. */
  unreadable(x: string, l: string): string;
} {
  const z = quoteLiteral(zone);
  const local = (x: string) => `((${x}) AT TIME ZONE ${z})`;
  return {
    local,
    gap: (t, u) => `(${local(u)} <> (${t}))`,
    fold: (t, u) => {
      const other = (d: '-' | '+') => {
        const at = `((${u}) ${d} interval '24 hours')`;
        const away = local(at);
        // The same offset a day away (the usual case, one conversion): no other reading
        // on that side (the candidate below would be u itself).
        const moved = `${away} <> ((${t}) ${d} interval '24 hours')`;
        const v = `(((${t}) - (${away} - (${at} AT TIME ZONE 'UTC'))) AT TIME ZONE 'UTC')`;
        return `(${moved} AND ${local(v)} = (${t}) AND ${v} <> (${u}))`;
      };
      // Outside these bounds `u` plus or minus a day leaves timestamp's range (and no zone changes there).
      const inRange = `(${t}) BETWEEN '4713-11-26 00:00:00 BC'::timestamp AND '294276-12-29 00:00:00'::timestamp`;
      return `(${inRange} AND (${other('-')} OR ${other('+')}))`;
    },
    unreadable: (x, l) => `(${local(l)} <> (${x}))`,
  };
}

/** timestamp <-> timestamptz in `zone` (undefined: UTC); undefined when not such a cast. */
function zoneRule(from: string, to: string, zone: string | undefined, dst: DstPolicy): CastRule | undefined {
  const f = TIMESTAMP.exec(from);
  const t = TIMESTAMP.exec(to);
  if (!f || !t || f[2] === t[2]) return undefined;
  const z = zone ?? 'UTC';
  const utc = isUtcZone(z);
  const checked = dst !== 'shift' && !utc;
  const sql = checked ? dstSql(f[2] === 'without' ? 'up' : 'down', z, to, dst === 'later') : (e: string) => castTo(`(${e}) AT TIME ZONE ${quoteLiteral(z)}`, to);
  // Same or more fractional digits: the instant's text is the local time's, in UTC.
  const keepsDigits = (t[1] === undefined ? 6 : Number(t[1])) >= (f[1] === undefined ? 6 : Number(f[1]));
  const js = utc && keepsDigits ? (f[2] === 'without' ? tsToUtc : utcToTs) : undefined;
  // A key through it must map back: the same precision both ways, and a zone whose offset
  // never changes, or DST times refused. In a zone with daylight saving time the repeated
  // autumn hour gives two instants one local time and the skipped spring hour's local times
  // none; `refuse` (and `later`, which reads a fold as its later instant) stops at those
  // values, so every value the cast accepts maps to exactly one value that maps back.
  // `shift` moves gap times (up) or folds two instants into one local time (down): two keys
  // could meet.
  const sameDigits = (t[1] ?? '6') === (f[1] ?? '6');
  return { ...(js ? { js } : {}), lossy: !keepsDigits || (dst === 'shift' && !utc), keySafe: false, keyCast: sameDigits && (dst !== 'shift' || fixedOffsetZone(z)), sql };
}

const fixedZones = new Map<string, boolean>();
/**
 * Whether `zone` keeps one UTC offset (UTC, Etc/GMT+5, Asia/Kolkata): sampled in January
 * and July of every year from 1970 to 2037, the range applications' timestamps live in.
 */
export function fixedOffsetZone(zone: string): boolean {
  let fixed = fixedZones.get(zone);
  if (fixed !== undefined) return fixed;
  try {
    const f = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' });
    const offset = (ms: number) => f.formatToParts(ms).find((p) => p.type === 'timeZoneName')?.value;
    const first = offset(Date.UTC(1970, 0, 1));
    fixed = true;
    for (let y = 1970; y <= 2037 && fixed; y++) fixed = offset(Date.UTC(y, 0, 1)) === first && offset(Date.UTC(y, 6, 1)) === first;
  } catch {
    fixed = false;
  }
  fixedZones.set(zone, fixed);
  return fixed;
}

/**
 * The rule for casting `from` to `to` (format_type spellings); `zone` and `dst` for
 * timestamp <-> timestamptz.
 */
export function castRule(from: string, to: string, zone?: string, dst: DstPolicy = 'refuse'): CastRule {
  const plain = (expr: string) => castTo(expr, to);
  const sqlOnly = (lossy: boolean): CastRule => ({ lossy, keySafe: false, sql: plain });
  if (from === to) return { js: (v) => v, lossy: false, keySafe: true, sql: (e) => e };
  const zoned = zoneRule(from, to, zone, dst);
  if (zoned) return zoned;

  const tFrom0 = TEXT_LIKE.exec(from);
  const tTo0 = TEXT_LIKE.exec(to);
  const cFrom = CHAR.exec(from);
  const cTo = CHAR.exec(to);
  // User-defined types: text on the source, parsed by the target's COPY.
  if (!isBuiltinType(to)) {
    const exactText = tFrom0 !== null || !isBuiltinType(from) || TEXT_IS_OUTPUT.test(from);
    return { ...(exactText ? { js: (v: string) => v } : {}), lossy: false, keySafe: false, sql: (e) => `(${e})::text` };
  }
  if (!isBuiltinType(from)) {
    if (tTo0 && tTo0[2] === undefined) return { js: (v) => v, lossy: false, keySafe: false, sql: (e) => `(${e})::text` };
    return { lossy: true, keySafe: false, sql: (e) => castTo(`(${e})::text`, to) };
  }
  if (cFrom && (tTo0 || cTo)) {
    // char(n) -> text drops the padding, as PostgreSQL's cast does; back to char(m) pads.
    const limit = tTo0?.[2] === undefined ? undefined : Number(tTo0[2]);
    const pad = cTo ? toChar(Number(cTo[1]), to) : undefined;
    const js = (v: string) => {
      const t = v.replace(/ +$/, '');
      if (pad) return pad(t);
      if (limit !== undefined && charLength(t) > limit) throw new Error(`value too long for type ${to}`);
      return t;
    };
    const sql = cTo
      ? (e: string) => `CASE WHEN char_length((${e})::text) <= ${cTo[1]} THEN (${e})::${to} ELSE ${sqlFail(`${quoteLiteral(`value too long for type ${to}: `)} || (${e})::text`)}::${to} END`
      : limit === undefined
        ? (e: string) => `(${e})::text`
        : (e: string) => `CASE WHEN char_length((${e})::text) <= ${limit} THEN (${e})::text::character varying ELSE ${sqlFail(`${quoteLiteral(`value too long for type ${to}: `)} || (${e})::text`)}::character varying END`;
    return { js, lossy: false, keySafe: false, sql };
  }
  if (tFrom0 && cTo) {
    const n = Number(cTo[1]);
    return {
      js: toChar(n, to),
      // Trailing spaces do not survive: char(n) does not keep them apart from padding.
      lossy: true,
      keySafe: false,
      sql: (e) => `CASE WHEN char_length(rtrim(${e}, ' ')) <= ${n} THEN (${e})::${to} ELSE ${sqlFail(`${quoteLiteral(`value too long for type ${to}: `)} || ${e}`)}::${to} END`,
    };
  }
  if (WIDENING.has(`${from}>${to}`)) return sqlOnly(false);

  if (INT_BITS[from] !== undefined && INT_BITS[to] !== undefined) {
    const widening = INT_BITS[to]! >= INT_BITS[from]!;
    return { js: widening ? (v) => v : intInRange(to), lossy: false, keySafe: true, sql: plain };
  }
  const nTo = NUMERIC.exec(to);
  const nFrom = NUMERIC.exec(from);
  if (INT_BITS[from] !== undefined && nTo) {
    if (nTo[1] === undefined) return { js: (v) => v, lossy: false, keySafe: true, sql: plain };
    const js = toNumeric(Number(nTo[1]), Number(nTo[2]), 0);
    // The typmod matters here: it gives the output its scale, so cast with it.
    return { js, lossy: false, keySafe: nTo[2] === '0', sql: (e) => `(${e})::${to}` };
  }
  if (nFrom && nTo) {
    if (nTo[1] === undefined) return { js: (v) => v, lossy: false, keySafe: true, sql: plain };
    if (nFrom[1] === undefined) return sqlOnly(true); // rounds to the target scale
    const [p, s, ps] = [Number(nTo[1]), Number(nTo[2]), Number(nFrom[2])];
    if (s < ps) return sqlOnly(true);
    return { js: toNumeric(p, s, ps), lossy: false, keySafe: s === ps, sql: (e) => `(${e})::${to}` };
  }
  const tFrom = TEXT_LIKE.exec(from);
  const tTo = TEXT_LIKE.exec(to);
  if (tFrom && tTo) {
    const limit = tTo[2] === undefined ? undefined : Number(tTo[2]);
    if (limit === undefined) return { js: (v) => v, lossy: false, keySafe: true, sql: plain };
    return {
      js: (v) => {
        // varchar(n) counts characters (code points), not UTF-16 units.
        let n = 0;
        for (const _ of v) if (++n > limit) throw new Error(`value too long for type ${to}`);
        return v;
      },
      lossy: false,
      keySafe: true,
      sql: (e) => `CASE WHEN char_length(${e}) <= ${limit} THEN (${e})::character varying ELSE ${sqlFail(`${quoteLiteral(`value too long for type ${to}: `)} || ${e}`)}::character varying END`,
    };
  }
  if (from === 'boolean' && tTo) return { js: (v) => (v === 't' ? 'true' : 'false'), lossy: false, keySafe: false, sql: (e) => `(${e})::text` };
  if (tFrom && to === 'boolean') return { js: parseBoolean, lossy: true, keySafe: false, sql: plain };
  if (tTo && TEXT_IS_OUTPUT.test(from)) {
    const limit = tTo[2] === undefined ? undefined : Number(tTo[2]);
    if (limit === undefined) return { js: (v) => v, lossy: false, keySafe: true, sql: (e) => `(${e})::text` };
  }
  if (from === 'jsonb' && to === 'json') return { js: (v) => v, lossy: false, keySafe: false, sql: plain };
  // Exact only inside PostgreSQL (rounding, parsing, time zones): conservative.
  const lossless = /^timestamp(\(\d\))? with(out)? time zone$/.test(from) && /^timestamp(\(\d\))? with(out)? time zone$/.test(to);
  return sqlOnly(!lossless);
}

/** A zone name PostgreSQL and ICU both know (check confirms it on a server too). */
function validZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/**
 * `dst` against the zone and the file's `loses`: `shift` is a loss the file must declare,
 * and a zoned cast that refuses loses nothing, so declaring it lost hides nothing but
 * is wrong (verify would stop comparing a column it can compare).
 */
function dstProblems(spec: CastOpSpec, env: OpEnv, src: SourceColumn, toType: string): ValidationProblem[] {
  const zone = spec.zone ?? 'UTC';
  const col = `${src.table}.${src.column.name}`;
  if (spec.dst !== undefined && (!TIMESTAMP.test(src.column.type) || isUtcZone(zone))) {
    return [problemAt(env, '/dst', `"dst" does nothing ${spec.zone === undefined ? 'without "zone" (UTC)' : `in ${zone}`}: every local time exists exactly once there`, spec.zone === undefined ? 'add "zone" (the zone the local times are in), or remove "dst"' : 'remove "dst"')];
  }
  if (spec.zone === undefined || isUtcZone(zone)) return [];
  const up = src.column.type.includes('without');
  if (spec.dst === 'later' && !up) {
    return [problemAt(env, '/dst', `"later" reads a local time of a DST fold as its later instant, but this cast goes from instants to local times (${src.column.type} -> ${toType}), where each instant has one local time`, 'use "refuse" (the default: refuses the earlier instant of a fold, whose local time would read back as the later one) or "shift" (converts it, declared in "loses")')];
  }
  const lost = env.declaredLost?.(src) ?? false;
  if (spec.dst === 'shift' && !lost) {
    return [
      problemAt(
        env,
        '/dst',
        up
          ? `"shift" moves local times in a DST gap of ${zone} forward (02:30 becomes 03:30) and reads a fold time as its later instant, so ${col} is not carried exactly`
          : `"shift" gives both instants of a DST fold in ${zone} the same local time, which reads back as the later one, so ${col} is not carried exactly`,
        `add {"table": "${src.table}", "column": "${src.column.name}", "why": "..."} to "loses"; or ${up ? '"dst": "later" (fold times become the later instant, which reads back unchanged; gap times are refused) or ' : ''}remove "dst" to refuse such values`,
      ),
    ];
  }
  if (spec.dst !== 'shift' && lost && !castRule(src.column.type, toType, zone, 'refuse').lossy) {
    return [
      problemAt(
        env,
        spec.dst === undefined ? '' : '/dst',
        `${col} is declared lost, but this cast carries it: it refuses (exit 2, naming the row) ${up ? `local times in a DST gap${spec.dst === 'later' ? '' : ' or fold'} of ${zone}` : `instants of a DST fold in ${zone} that would not read back`} rather than change them${spec.dst === 'later' ? ', and a fold time\'s later instant reads back unchanged' : ''}`,
        'to convert such values as PostgreSQL does, add "dst": "shift" (the loss is then right); else remove the entry from "loses"',
      ),
    ];
  }
  return [];
}

export const cast: ColumnOp<CastOpSpec> = {
  validate(spec, env) {
    const problems: ValidationProblem[] = [];
    const src = needSource(env, spec.from, '/from', problems);
    const to = spec.to ?? bareName(spec.from);
    const dst = needTarget(env, to, spec.to === undefined ? '/from' : '/to', problems);
    if (src && dst && src.column.type === dst.type) {
      problems.push(problemAt(env, '', `cast does nothing: ${spec.from} and ${env.table}.${to} are both ${dst.type}`, spec.to === undefined || spec.to === bareName(spec.from) ? 'remove the op; the column is carried by name' : `use {"op": "rename"}`));
    }
    if (spec.zone !== undefined) {
      const tz = /^timestamp(\(\d\))? with(out)? time zone$/;
      if (src && dst && !(tz.test(src.column.type) && tz.test(dst.type) && src.column.type.includes('without') !== dst.type.includes('without'))) {
        problems.push(problemAt(env, '/zone', `"zone" applies only to timestamp <-> timestamptz, not ${src.column.type} -> ${dst.type}`, 'remove "zone"'));
      } else if (!validZone(spec.zone)) {
        problems.push(problemAt(env, '/zone', `unknown time zone "${spec.zone}"`, 'use an IANA name such as UTC or Europe/Berlin'));
      }
    }
    if (problems.length === 0 && src && dst) problems.push(...dstProblems(spec, env, src, dst.type));
    return problems;
  },
  plan(spec, env) {
    const src = mustResolve(env, spec.from);
    const to = spec.to ?? bareName(spec.from);
    const toType = mustTarget(env, to).type;
    const rule = castRule(src.column.type, toType, spec.zone, spec.dst);
    const jsRule = rule.js;
    const table = env.table;
    return {
      reads: [src],
      writes: [to],
      omits: [],
      drops: [],
      lossy: rule.lossy ? [src] : [],
      keySafe: rule.keySafe,
      keyCast: rule.keyCast ?? false,
      sql: [rule.sql(src.sql)],
      js:
        jsRule === undefined
          ? { unsupported: `cast ${spec.from} (${src.column.type}) -> ${to} (${toType}) at ${env.path} has no exact JS face` }
          : valueFace(src.index, jsRule, (v, e) => new MappingValueError(table, to, v, `cast from ${src.column.type} to ${toType} failed: ${e.message}`)),
    };
  },
  invert(spec) {
    const to = spec.to ?? bareName(spec.from);
    return [{ op: 'cast', from: to, to: bareName(spec.from), ...(spec.zone === undefined ? {} : { zone: spec.zone }) }];
  },
};
