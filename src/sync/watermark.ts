/**
 * Watermark rules: which rows an incremental run reads again, per kind of watermark column,
 * so that no row committed after the previous run's snapshot is missed.
 *
 * The horizon (src/sync/horizon.ts) is a UTC instant H read before each run's snapshot:
 * every row the snapshot cannot see was written by a transaction that started at or after
 * H. Each kind turns H into the next run's lower bound in its own terms:
 *
 * - `timestamptz` set by `now()` in a trigger (`exact`): the row's value is at least its
 *   transaction's start, so `col >= H`.
 * - `timestamp without time zone` (`local`) holding the writers' local time in a declared
 *   zone: `col AT TIME ZONE zone` is the instant again, so `(col AT TIME ZONE zone) >= H`
 *   is exact. In autumn a local hour repeats (the fold); PostgreSQL reads an ambiguous local
 *   time as the LATER of its two instants (the offset after the transition), so this never
 *   drops a row whose real instant is at or after H. To keep an index on the column usable
 *   the same predicate is also bounded on the bare column, `col >= local(H) - margin`,
 *   where margin is how far the zone's offset falls between H and the run (1 hour for
 *   Europe/Berlin across its autumn change, else 0): a row written after H can show a
 *   local time at most that much earlier.
 * - `date` in a declared zone: `col >= local date of (H - margin)`; the whole day is read
 *   again (it cannot say more).
 * - integers from a sequence (`integer`, append-only tables): sequence values are handed
 *   out in time order but committed in any order, so a transaction still open may hold an
 *   id below ids already committed. The rule: `max(col)` is sampled, with the instant S it
 *   was read (clock_timestamp, after that statement's snapshot), before the horizon. A
 *   transaction that started after S gets ids from nextval calls made after S, which are
 *   larger than every id visible at S. So when S < H, every row the snapshot cannot see
 *   has `col >= max`, and the next lower bound is that max (inclusive: ties are read
 *   again). When a long transaction began before S (H <= S), this run's sample cannot be
 *   used; earlier runs' samples (kept in the run log) with S < H can, else the bound stays
 *   where it was. Re-read rows are resolved by key, or for keyless append tables as a
 *   multiset difference (src/db/multiset.ts). The rule needs one sequence with CACHE 1
 *   (the default, and what identity columns use): per-session caches hand out ids out of
 *   time order, so an owned sequence with a larger cache is refused.
 *
 * A declared `skew` (watermarks the application sets from its own clock) is subtracted
 * from the time bound; `--lookback` is already in H.
 *
 * A wrong declared zone breaks the local rule silently, so every plan checks it
 * (checkZones): the newest value (max(col), which the column's index answers; a table
 * whose plan would scan it is not checked) is compared with the source's now() in the
 * declared zone. Declared east of the writers (Tokyo for Berlin), local values look hours
 * old: every bound is hours ahead of the rows, incremental runs read nothing and updates
 * are lost; that shows as a lag of a whole number of hours while writes happen, which is
 * warned (an idle table shows a lag too, so it cannot be refused). Declared west (UTC for
 * Berlin), values lie in the future, which no writer in that zone can produce: refused
 * beyond the skew (and --lookback) plus a minute, naming the value, the zone and the
 * offset the values fit.
 */
import type pg from 'pg';
import { ident, literal } from '../db/connect.ts';
import type { Catalog, TableInfo } from '../db/catalog-types.ts';
import type { CompiledTable } from '../mapping/compile.ts';
import { TableError } from '../errors.ts';

/**
 * Types the time-horizon rule bounds exactly. `timestamp without time zone` and `date`
 * hold the writers' LOCAL time: exact with their zone declared, else only with an
 * explicit --lookback covering the offset (and read as UTC).
 */
const EXACT_TIME_TYPE = /^timestamp(\(\d\))? with time zone$/;
const LOCAL_TIME_TYPE = /^(timestamp(\(\d\))? without time zone|date)$/;
const INTEGER_TYPE = /^(smallint|integer|bigint|numeric(\(\d+,0\))?)$/;

/** How a watermark column bounds the next read. */
export type WatermarkKind = 'exact' | 'local' | 'date' | 'integer';

/** One source table's watermark and this run's lower bound. */
export interface SourcePlan {
  /** Source table. */
  table: string;
  /** Watermark column. */
  column: string;
  /** Its type as format_type prints it. */
  type: string;
  /** Which rule bounds it. */
  kind: WatermarkKind;
  /** Writers' zone for `local` and `date` watermarks (UTC with --lookback and none declared). */
  zone?: string;
  /** Clock-skew allowance (interval text) subtracted from the time bound. */
  skew?: string;
  /** How far `zone`'s offset falls between the bound and the run (interval text), for the index bound. */
  margin?: string;
  /** Stored lower bound of this run (text), or null for a full read. */
  lo: string | null;
  /** `integer`: max(col) and when it was read, sampled before the horizon. */
  sample?: IntegerSample;
  /**
   * `integer`: the instant from which this run consumes captured deletes (src/sync/deletes.ts):
   * the horizon of the last successful run that planned the table, which applied every
   * delete its snapshot saw. Undefined when none is known (deletes are then reconciled).
   */
  deletesSince?: string;
}

/** `max(column)` of a table and the source's clock just after it was read. */
export interface IntegerSample {
  table: string;
  column: string;
  /** max(col) as text, null for an empty table. */
  max: string | null;
  /** clock_timestamp() after the statement's snapshot (timestamptz text). */
  after: string;
  /**
   * The horizon of the run that took the sample, set once it is read: recorded with the
   * run, it is where the next run's captured deletes of the table begin ({@link deletesSinceOf}).
   */
  horizon?: string;
}

export interface WatermarkOptions {
  /** --lookback: accepts a local watermark without a declared zone (read as UTC). */
  lookback?: string;
  /** Compare local watermarks' newest values with the source's clock in their zone (checkZones); default on. */
  zoneCheck?: boolean;
  /** Where a suspicious but possible watermark (a whole-hour lag) is reported. */
  warn?: (message: string, fields?: Record<string, unknown>) => void;
}

/**
 * Every source table's watermark plan for `tables`, with its stored lower bound, checked
 * against the source catalog. Throws TableError (exit 2) for a watermark no rule can
 * bound, before anything is read or frozen.
 */
export async function planWatermarks(
  src: pg.Client,
  tables: CompiledTable[],
  sourceCatalog: Catalog,
  stored: Map<string, string>,
  opts: WatermarkOptions,
): Promise<Map<string, SourcePlan | null>> {
  const plans = new Map<string, SourcePlan | null>();
  for (const ct of tables) {
    // A query table is recomputed whole on every run: its reads bound nothing.
    if (ct.query) continue;
    for (const s of ct.sources) {
      if (plans.has(s.table)) continue;
      const info = sourceCatalog.tables[s.table];
      // A mapping may name a source table's watermark; schema.sql's comment is the default.
      const column = s.watermark ?? info?.watermark;
      if (!info || !column) {
        plans.set(s.table, null);
        continue;
      }
      const rule = s.watermark ? s.watermarkRule : info.watermarkRule;
      plans.set(s.table, await planOne(src, s.table, column, info.columns.find((c) => c.name === column)?.type, rule ?? {}, stored.get(s.table) ?? null, opts));
    }
  }
  for (const ct of tables) if (ct.reload === 'append') appendLookup(ct, plans);
  if (opts.zoneCheck !== false) await checkZones(src, [...plans.values()].filter((p): p is SourcePlan => p !== null), opts);
  return plans;
}

/** Tolerance around a whole number of hours for the lag warning (writes happening: seconds old). */
const WHOLE_HOUR_TOLERANCE_S = 120;
/** Beyond the skew (and --lookback), how far ahead of the zone's now() a value may be. */
const FUTURE_MARGIN = '1 minute';

/**
 * The declared zone of each local and date watermark against its newest value (see the
 * module comment): refuses (TableError, exit 2) a value later than the source's now() in
 * that zone beyond the skew, --lookback and a minute; warns when a local value lags a
 * whole number of hours. One max() per table, answered by the column's index: a table
 * without one (the plan would scan it) is skipped, never scanned.
 */
export async function checkZones(src: pg.Client, plans: SourcePlan[], opts: WatermarkOptions): Promise<void> {
  for (const p of plans) {
    if ((p.kind !== 'local' && p.kind !== 'date') || p.zone === undefined) continue;
    const zone = literal(p.zone);
    const allowance = `(${literal(p.skew ?? '0')}::interval + ${literal(opts.lookback ?? '0')}::interval + ${literal(FUTURE_MARGIN)}::interval)`;
    const localNow = `(now() at time zone ${zone})`;
    const future = p.kind === 'date' ? `m > (${localNow} + ${allowance})::date` : `m > ${localNow} + ${allowance}`;
    const sql = `select m::text as newest, ${localNow}::text as local_now, ${future} as future,
                        extract(epoch from m::timestamp - ${localNow})::float8 as ahead,
                        extract(epoch from ${localNow} - (now() at time zone 'UTC'))::float8 as zone_offset
                   from (select max(${ident(p.column)}) as m from ${ident(p.table)}) x`;
    const r = await indexOnly(src, sql);
    if (!r || r.newest === null) continue; // no index to answer max(), or an empty table
    if (r.future) {
      const fits = await zonesAt(src, r.zone_offset + Math.round(r.ahead / 900) * 900);
      throw new TableError(
        p.table,
        `watermark ${p.column} holds ${r.newest}, later than now in its declared zone ${p.zone} (${r.local_now.slice(0, 19)})${p.skew ? ` beyond its skew ${p.skew}` : ''}: the writers' zone is not ${p.zone}`,
        `declare the zone the writers use${fits ? ` (the values fit ${fits})` : ''} in the mapping ("watermark": {"column": "${p.column}", "zone": ...}) or the schema.sql comment (zone=...); if the application's clock runs ahead, declare a skew`,
      );
    }
    const lag = -r.ahead;
    const hours = Math.round(lag / 3600);
    if (p.kind === 'local' && hours >= 1 && hours <= 26 && Math.abs(lag - hours * 3600) <= WHOLE_HOUR_TOLERANCE_S + skewSeconds(p.skew)) {
      const fits = await zonesAt(src, r.zone_offset - hours * 3600);
      opts.warn?.(
        `table ${p.table}: the newest ${p.column} (${r.newest}) is ${hours} h behind now in its declared zone ${p.zone} (${r.local_now.slice(0, 19)}); ` +
          `if writes are happening, the writers' zone is not ${p.zone}${fits ? ` (the values fit ${fits})` : ''} and incremental syncs miss their rows for ${hours} h`,
        { table: p.table, column: p.column, newest: r.newest, zone: p.zone, lagHours: hours },
      );
    }
  }
}

/**
 * Runs `sql` (one row) unless its plan scans a table: with sequential scans disabled the
 * planner still picks one only when no index can answer, and then nothing is run.
 */
async function indexOnly(src: pg.Client, sql: string): Promise<{ newest: string | null; local_now: string; future: boolean; ahead: number; zone_offset: number } | undefined> {
  const before = (await src.query<{ v: string }>(`select current_setting('enable_seqscan') as v`)).rows[0]!.v;
  await src.query(`select set_config('enable_seqscan', 'off', false)`);
  try {
    const plan = (await src.query(`explain (format json) ${sql}`)).rows[0]!['QUERY PLAN'];
    if (JSON.stringify(plan).includes('"Seq Scan"')) return undefined;
    return (await src.query(sql)).rows[0];
  } finally {
    await src.query(`select set_config('enable_seqscan', $1, false)`, [before]);
  }
}

/** A UTC offset in seconds as the values' zone: `UTC+01:00 now (e.g. Europe/Berlin, ...)`, the server's own zone first. */
async function zonesAt(src: pg.Client, offsetSeconds: number): Promise<string | undefined> {
  const r = await src.query<{ names: string[] | null; label: string }>(
    `select (array_agg(name order by name = current_setting('TimeZone') desc,
                      case split_part(name, '/', 1) when 'Europe' then 0 when 'America' then 1 when 'Asia' then 2 else 3 end, name))[1:3] as names,
            to_char(make_interval(secs => $1), 'HH24:MI') as label
       from pg_timezone_names
      where utc_offset = make_interval(secs => $1) and name ~ '^(Europe|America|Asia|Africa|Australia|Pacific|Atlantic|Indian)/'`,
    [offsetSeconds],
  );
  const x = r.rows[0]!;
  const sign = offsetSeconds < 0 ? '-' : '+';
  const label = `UTC${sign}${x.label.replace(/^-/, '')}`;
  return x.names?.length ? `${label} now (e.g. ${x.names.join(', ')})` : undefined;
}

function skewSeconds(skew: string | undefined): number {
  // The skew is interval text as PostgreSQL prints it (hh:mm:ss, or with days): seconds suffice here.
  const m = skew ? /(?:(\d+) days? )?(-)?(\d+):(\d+):(\d+(?:\.\d+)?)$/.exec(skew) : null;
  if (!m) return 0;
  return Number(m[1] ?? 0) * 86400 + Number(m[3]) * 3600 + Number(m[4]) * 60 + Number(m[5]);
}

async function planOne(
  src: pg.Client,
  table: string,
  column: string,
  type: string | undefined,
  rule: { zone?: string; skew?: string },
  lo: string | null,
  opts: WatermarkOptions,
): Promise<SourcePlan> {
  const where = 'fix the watermark in the mapping ("watermark": {"column": ..., "zone": ..., "skew": ...}) or the schema.sql comment';
  if (!type) throw new TableError(table, `watermark column ${column} does not exist`, where);
  const kind: WatermarkKind | undefined = EXACT_TIME_TYPE.test(type) ? 'exact' : LOCAL_TIME_TYPE.test(type) ? (type === 'date' ? 'date' : 'local') : INTEGER_TYPE.test(type) ? 'integer' : undefined;
  if (!kind) {
    throw new TableError(
      table,
      `watermark ${column} is ${type}; sync bounds timestamp, timestamptz, date and integer watermarks only`,
      'use a timestamptz column kept current by a trigger, an ever-increasing integer (append-only tables), or no watermark (full reload)',
    );
  }
  if (rule.zone !== undefined && kind !== 'local' && kind !== 'date') {
    throw new TableError(table, `watermark ${column} is ${type}: a zone applies only to timestamp without time zone and date watermarks`, `remove "zone" from the watermark of ${table}`);
  }
  if (rule.skew !== undefined && kind === 'integer') {
    throw new TableError(table, `watermark ${column} is ${type}: a clock skew applies only to time watermarks`, `remove "skew" from the watermark of ${table}`);
  }
  if (kind === 'integer') {
    // Per-session caches hand out ids out of time order, which the sampled-max rule relies on.
    const cache = await src.query<{ seq: string; cache: string }>(
      `select s.seqrelid::regclass::text as seq, s.seqcache::text as cache from pg_sequence s where s.seqrelid = pg_get_serial_sequence($1, $2)::regclass`,
      [ident(table), column],
    );
    const c = cache.rows[0];
    if (c && Number(c.cache) > 1) {
      throw new TableError(table, `integer watermark ${column} comes from sequence ${c.seq} with CACHE ${c.cache}: sessions hand out its values out of order`, `ALTER SEQUENCE ${c.seq} CACHE 1, or use a timestamptz watermark`);
    }
  }
  let zone = rule.zone;
  if ((kind === 'local' || kind === 'date') && zone === undefined) {
    if (!opts.lookback) {
      throw new TableError(
        table,
        `watermark ${column} is ${type}, which holds the writers' local time; sync needs their zone to compare it with transaction start times`,
        `declare it: "watermark": {"column": "${column}", "zone": "Europe/Berlin"} in the mapping, or COMMENT ON COLUMN ${table}.${column} IS 'bluegreen:watermark zone=Europe/Berlin' in schema.sql (or pass --lookback at least the writers' UTC offset)`,
      );
    }
    zone = 'UTC'; // --lookback covers the offset, as before zones could be declared
  }
  // A bound stored for another kind of watermark (the mapping switched columns) says
  // nothing about this one: read the table whole once.
  if (lo !== null && (kind === 'integer') !== /^-?\d+$/.test(lo)) lo = null;
  const plan: SourcePlan = { table, column, type, kind, lo };
  if (rule.skew !== undefined) {
    plan.skew = await checked(src, `select $1::interval::text as v`, [rule.skew], table, `skew ${JSON.stringify(rule.skew)} of watermark ${column} is not an interval`, 'e.g. "skew": "30 seconds" (or skew=30s in the comment)');
  }
  if (zone !== undefined) {
    // The fold margin: how far the zone's offset falls between the bound and this run (a
    // day past now, for the snapshot taken after this). A row written after the bound
    // shows a local time at most that much before the bound's. Only when an autumn change
    // lies in between is it an hour; otherwise none, and the index bound reads just what
    // was written since the bound, not the last hour of writes (which, inside a cutover's
    // freeze, cost far more than the seconds since its catch-up). Offsets last months, so
    // hourly samples see every one. Without a bound (a full read, or plan's count): the
    // largest change over two years around now.
    plan.margin = await checked(
      src,
      lo === null
        ? `select (max(o) - min(o))::text as v from (select (d at time zone $1) - (d at time zone 'UTC') as o
             from generate_series(now() - interval '400 days', now() + interval '400 days', interval '1 day') d) x`
        : `select greatest(interval '0', max(o) filter (where first) - min(o))::text as v
             from (select u = $2::timestamptz as first, (u at time zone $1) - (u at time zone 'UTC') as o
                     from generate_series($2::timestamptz, greatest($2::timestamptz, now()) + interval '1 day', interval '1 hour') u) x`,
      lo === null ? [zone] : [zone, lo],
      table,
      `zone ${JSON.stringify(zone)} of watermark ${column} is not a time zone PostgreSQL knows`,
      'use an IANA zone name such as Europe/Berlin or UTC (see pg_timezone_names)',
    );
    plan.zone = zone;
  }
  return plan;
}

async function checked(src: pg.Client, sql: string, params: unknown[], table: string, message: string, hint: string): Promise<string> {
  try {
    return (await src.query<{ v: string }>(sql, params)).rows[0]!.v;
  } catch {
    throw new TableError(table, message, hint);
  }
}

/**
 * The target column an append table's rows are matched on when re-read: the one its
 * source watermark is carried to. Re-read rows are compared with target rows holding the
 * same watermark value, so the column must reach the target (and identical rows then
 * carry identical watermarks). Throws TableError when the mapping drops it.
 */
export function appendLookup(ct: CompiledTable, plans: Map<string, SourcePlan | null>): string {
  const plan = plans.get(ct.sources[0]!.table);
  if (!plan) throw new TableError(ct.table, 'is an append table without a watermark', 'give it a watermark (timestamp or ever-increasing integer) or use "reload": "full"');
  const carried = ct.columns.find((c) => {
    const o = ct.origins[c] ?? [];
    return o.length === 1 && o[0]!.column === plan.column;
  });
  if (!carried) {
    throw new TableError(ct.table, `append table: its watermark ${plan.column} is not carried to the target`, 'carry the watermark column (rename or cast it, do not drop it), or use "reload": "full"');
  }
  return carried;
}

/**
 * SQL predicate over the source table selecting the rows this run reads: those whose
 * watermark may be at or after the stored lower bound (see the rules above).
 */
export function lowerBoundSql(p: SourcePlan): string {
  const col = ident(p.column);
  const lo = literal(p.lo!);
  switch (p.kind) {
    case 'exact':
    case 'integer':
      return `${col} >= ${lo}::${p.type}`;
    case 'local': {
      const zone = literal(p.zone!);
      // The first conjunct lets an index on the column bound the scan; the second is exact.
      return `${col} >= (${lo}::timestamptz at time zone ${zone}) - ${literal(p.margin!)}::interval and (${col} at time zone ${zone}) >= ${lo}::timestamptz`;
    }
    case 'date':
      return `${col} >= ((${lo}::timestamptz at time zone ${literal(p.zone!)}) - ${literal(p.margin!)}::interval)::date`;
  }
}

/**
 * Samples max(col) of every integer watermark. Call BEFORE reading the horizon: the
 * sample is usable only when it was read before every transaction open at the horizon.
 */
export async function sampleIntegerWatermarks(src: pg.Client, plans: Map<string, SourcePlan | null>): Promise<IntegerSample[]> {
  const out: IntegerSample[] = [];
  for (const p of plans.values()) {
    if (p?.kind !== 'integer') continue;
    const r = await src.query<{ max: string | null; after: string }>(`select max(${ident(p.column)})::text as max, clock_timestamp()::text as after from ${ident(p.table)}`);
    p.sample = { table: p.table, column: p.column, ...r.rows[0]! };
    out.push(p.sample);
  }
  return out;
}

/**
 * Where an integer-watermarked table's captured deletes begin this run: the horizon the
 * newest recorded sample of the table was taken under (`history` is newest first). That
 * run applied every delete its snapshot saw; a delete it could not see was made by a
 * transaction that started at or after its horizon, so it is stamped at or after it.
 */
export function deletesSinceOf(p: SourcePlan, history: IntegerSample[]): string | undefined {
  if (p.kind !== 'integer' || p.lo === null) return undefined;
  return history.find((s) => s.table === p.table)?.horizon;
}

/** Integer samples recorded by the last runs from `source` (newest first), for {@link nextLowerBound}. */
export async function sampleHistory(dst: pg.Client, source: string): Promise<IntegerSample[]> {
  // A target never synced has no state schema yet (it is created inside the run's transaction).
  if (!(await dst.query<{ ok: boolean }>(`select to_regclass('bluegreen.runs') is not null as ok`)).rows[0]!.ok) return [];
  const r = await dst.query<{ s: IntegerSample[] | null }>(
    `select detail->'watermarkSamples' as s from bluegreen.runs
      where source = $1 and status = 'ok' and kind in ('sync', 'cutover') and detail ? 'watermarkSamples'
      order by id desc limit 20`,
    [source],
  );
  return r.rows.flatMap((x) => (Array.isArray(x.s) ? x.s : []));
}

/**
 * The lower bound the next run uses for `p`, given this run's horizon (UTC instant text,
 * --lookback already subtracted), as text in the form {@link lowerBoundSql} reads. Null
 * when no safe bound is known yet (the next run reads the table whole).
 */
export async function nextLowerBound(src: pg.Client, p: SourcePlan, horizon: string, history: IntegerSample[] = []): Promise<string | null> {
  if (p.kind === 'integer') {
    const candidates = [p.sample, ...history].filter((s): s is IntegerSample => !!s && s.table === p.table && s.column === p.column && s.max !== null);
    const r = await src.query<{ v: string | null }>(
      `select max(m)::text as v from (
         select $1::numeric as m where $1 is not null
         union all select (s->>'max')::numeric from jsonb_array_elements($2::jsonb) s where (s->>'after')::timestamptz < $3::timestamptz) x`,
      [p.lo, JSON.stringify(candidates), horizon],
    );
    return r.rows[0]!.v;
  }
  const skew = p.skew ?? '0';
  if (p.kind === 'exact' && p.zone === undefined) {
    // As text, in the column's own type: a JS Date would drop the microseconds.
    return (await src.query<{ v: string }>(`select (($1::timestamptz - $2::interval)::${p.type})::text as v`, [horizon, skew])).rows[0]!.v;
  }
  // local and date keep the UTC instant; lowerBoundSql converts it to the zone's time.
  return (await src.query<{ v: string }>(`select ($1::timestamptz - $2::interval)::text as v`, [horizon, skew])).rows[0]!.v;
}

/**
 * The `export --since` filter for a table's watermark (schema.sql's), by the same rules as
 * sync: a predicate over the table, or null to export it whole (an integer watermark,
 * which a point in time cannot bound, or a watermark no rule bounds). Call outside the
 * export's snapshot transaction: a refused zone or skew is a failed statement.
 */
export async function sinceFilter(src: pg.Client, table: TableInfo, since: string): Promise<string | null> {
  const column = table.watermark;
  if (!column) return null;
  let plan: SourcePlan;
  try {
    plan = await planOne(src, table.name, column, table.columns.find((c) => c.name === column)?.type, table.watermarkRule ?? {}, since, {});
  } catch {
    return null;
  }
  return plan.kind === 'integer' || plan.lo === null ? null : lowerBoundSql(plan);
}
