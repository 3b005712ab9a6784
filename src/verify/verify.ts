/**
 * `verify`: does the target hold exactly what the source holds, seen through the mapping
 * chain? Both sides are reduced to one canonical hash per row and compared in the
 * databases, never by shipping tables:
 *
 * 1. Canonical encoding. The source is projected through the chain's SQL face, every
 *    compared column cast to the TARGET column's type (so numeric scale, timestamp
 *    precision and jsonb key order normalise the same way on both sides), then reduced to
 *    one 64-bit hash per row. On PostgreSQL 14+ (both servers) each column is hashed from
 *    a canonical binary form, never printed: equal bytes exactly when equal text, so 1.0
 *    and 1.00, '1 day' and '24 hours', '' and NULL, ('ab','c') and ('a','bc') stay apart
 *    (./encoding.ts has the rule per type and why). Older servers hash `row(c1, c2, …)::text`,
 *    which sessions make stable by pinning DateStyle, TimeZone and extra_float_digits
 *    (src/db/connect.ts).
 * 2. Totals, then buckets. Each side first returns its row count and the exact sum of its
 *    row hashes: one scan per side, in parallel on the two servers, with no grouping (the
 *    hash aggregate over key buckets took 1.4x the plain sum on users and 1.8x on
 *    user_roles at 1M, one core each: `bench/verify-explain.ts`). Equal totals
 *    end the table. Unequal ones are compared again per bucket of a hash of the key: each
 *    side returns (bucket, count, sum of row hashes), in the same snapshots. A full sync
 *    takes the source's total from its own COPY stream (./stream-hash.ts): no second read.
 * 3. Descent. Only buckets that differ are looked at row by row: the source's (key, hash)
 *    pairs for those buckets are streamed into a temporary table on the target and joined
 *    there, which names every missing, extra and changed key without holding rows in
 *    memory.
 * 4. Recheck. On a live source, differing buckets are compared once more in fresh
 *    snapshots; only what still differs is reported (in-flight writes raise no alarm).
 *    When sync calls verify it passes its own source snapshot instead, so the comparison
 *    is exact: "the target equals the source as of the sync".
 *
 * Columns the mapping cannot carry (lossy) are excluded and listed; so are, going down
 * (a rollback), the columns the up mappings declare lost (lostGoingUp), whose original
 * values a round trip does not give back. With `jobs` > 1,
 * tables are compared in parallel, each job on its own session pair, all sessions of a
 * side in one exported snapshot.
 */
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { connect, ident } from '../db/connect.ts';
import { detectVersion, VersionCatalogs, type Catalog } from '../db/catalog.ts';
import { ensureStateSchema } from '../db/state.ts';
import { compileChain, lostGoingUp, type CompiledTable } from '../mapping/index.ts';
import { isBuiltinType } from '../mapping/sql.ts';
import { compileExpressions } from '../convert/preflight.ts';
import { locateOnFreshSession } from '../convert/locate.ts';
import { UsageError, VersionMismatchError } from '../errors.ts';
import { binaryHashAvailable, fieldSql, readEncodings, rowHashSql, type ColumnEncoding } from './encoding.ts';
import type { HashTotal } from './stream-hash.ts';
import type { Logger } from '../log.ts';

export interface VerifyEndpoint {
  name: string;
  url: string;
  version?: number;
}

export interface VerifyOptions {
  from: VerifyEndpoint;
  to: VerifyEndpoint;
  mappingsDir: string;
  logger: Logger;
  /** How many keys of each kind to name per table (counts are always complete). */
  sampleKeys?: number;
  /** Compare differing buckets again in fresh snapshots before reporting (live source). */
  recheck?: boolean;
  /** An exported snapshot of the source (pg_export_snapshot) to compare against, from sync. */
  sourceSnapshot?: string;
  /** Record the result in the target's bluegreen.verifies (default true). */
  record?: boolean;
  /** Only these target tables. */
  tables?: string[];
  /**
   * The source side's totals, already computed against `sourceSnapshot`: by the sync's own
   * COPY (streamHashes), or by startSourceSums (sync overlaps them with the target's index
   * rebuild). A table missing from it, or a failed computation, is compared the usual way.
   */
  sourceSums?: Promise<Map<string, SourceTotal>>;
  /** Version catalogs already learnt (sync passes its own: no second probe). */
  catalogs?: Record<number, Catalog>;
  /**
   * Tables compared at once (default 1), each job on its own source and target session.
   * All source sessions share one snapshot (`sourceSnapshot`, else one exported by the
   * first), and all target sessions one target snapshot, so the result is one view per side.
   */
  jobs?: number;
}

export interface KeyDiff {
  /** Number of keys of this kind. */
  count: number;
  /** The first `sampleKeys` of them, as `col=value` text. */
  keys: string[];
}

export interface TableVerifyReport {
  table: string;
  /** Rows on the source, projected to the target version. */
  sourceRows: number;
  targetRows: number;
  /** Keys the source has and the target lacks. */
  missing: KeyDiff;
  /** Keys the target has and the source lacks. */
  extra: KeyDiff;
  /** Keys on both sides whose compared columns differ. */
  changed: KeyDiff;
  /** Columns compared. */
  columns: string[];
  /** Target columns not compared because the mapping does not determine them. */
  excluded: string[];
  /** Differences seen at first and gone on recheck (writes in flight). */
  settled: number;
  /**
   * Buckets whose sums differ although no key differs: only possible for a keyless table
   * whose identical rows occur a different number of times. Counts as a difference.
   */
  unexplainedBuckets: number;
  /**
   * `key`: rows matched by key; `multiset`: a keyless table (append or full reload),
   * compared as a multiset of whole rows (count and hash per bucket), so differences are
   * named by row, and identical rows differing only in how often they occur are counted.
   */
  comparedAs?: 'key' | 'multiset';
  /** `stream`: the source's total came from the sync's own COPY of the rows (no second read). */
  sourceHashed?: 'stream' | 'query';
  ms: number;
}

export interface VerifyReport {
  from: string;
  to: string;
  fromVersion: number;
  toVersion: number;
  clean: boolean;
  tables: TableVerifyReport[];
  /** Target tables no mapping produces: not compared. */
  notCompared: string[];
  /** Target tables the mapping declares new and empty (`{"new": "empty"}`), with why: not compared. */
  notCarried?: { table: string; why: string }[];
  ms: number;
}

/**
 * Differing keys of one table as recorded in `bluegreen.verifies` for `sync --repair`:
 * the target key's `row(...)::text`, every one up to REPAIR_KEYS per kind.
 */
export interface RepairKeys {
  missing: string[];
  extra: string[];
  changed: string[];
  /** True when some kind had more than REPAIR_KEYS keys (repair then refuses: use sync --full). */
  truncated: boolean;
}

/** Most keys of one kind a verify records for repair; beyond it a full sync is cheaper anyway. */
export const REPAIR_KEYS = 100_000;

/** Buckets per table: about 1000 rows each, within [64, 16384], a power of two. */
export function bucketCount(rows: number): number {
  let n = 64;
  while (n < 16384 && n * 1000 < rows) n *= 2;
  return n;
}

/** One side of a table's comparison. */
export interface Side {
  /**
   * SQL of a relation with columns `k` (key text, to name keys), `kh` (64-bit hash of the
   * key, to pick its bucket) and `h` (row hash).
   */
  rel: string;
  /**
   * The source's row hash over the mapped row as `q` (the very row a sync's COPY selects),
   * when it needs no column that COPY lacks (a compared generated column): see streamHashes.
   */
  rowHash?: string;
}

/** How one side spells a column: the target's own, or the source's projection cast to the target's type. */
type Field = (column: string) => string;

function sideRel(key: string[], columns: string[], field: Field, from: string, encodings?: Map<string, ColumnEncoding>): string {
  const k = `row(${key.map(field).join(', ')})::text`;
  // The bucket needs only a hash that equal keys share; the binary encoding gives one
  // without printing the key. The key text is computed only where keys are named (the
  // descent), the key hash only where buckets are: the planner drops unused columns.
  const kh = encodings ? `hash_record_extended(row(${key.map((c) => fieldSql(field(c), encodings.get(c)!)).join(', ')}), 1)` : `hashtextextended(${k}, 1)`;
  return `(select ${k} as k, ${kh} as kh, ${rowHash(columns, field, encodings)} as h from ${from})`;
}

/** One row's hash: binary encoding when both servers have it, else the row text. */
function rowHash(columns: string[], field: Field, encodings?: Map<string, ColumnEncoding>): string {
  return encodings
    ? rowHashSql(columns.map((c) => fieldSql(field(c), encodings.get(c)!)))
    : `hashtextextended(row(${columns.map(field).join(', ')})::text, 0)`;
}

/**
 * (key text, key hash, row hash) for every row of the projected source. `encodings` (the
 * target's column types, see ./encoding.ts) selects the binary row hash; without it, the
 * row text.
 */
function sourceSide(ct: CompiledTable, columns: string[], target: Catalog, rel: (t: string) => string, encodings?: Map<string, ColumnEncoding>): Side {
  const generated = columns.some((c) => ct.generated.includes(c));
  const field = sourceField(ct, target);
  return { rel: sideRel(ct.key, columns, field, `(${ct.selectSql(rel, generated)}) q`, encodings), ...(generated ? {} : { rowHash: rowHash(columns, field, encodings) }) };
}

/** A source column as verify hashes it: the mapped value `q.c`, cast to the target column's type. */
function sourceField(ct: CompiledTable, target: Catalog): Field {
  // A user-defined type may exist on the target only: the source compares its text, which
  // is what the target's row prints for it too.
  const types = new Map(target.tables[ct.table]!.columns.map((c) => [c.name, isBuiltinType(c.type) ? c.type : 'text']));
  return (c) => `q.${ident(c)}::${types.get(c)}`;
}

/**
 * (key text, key hash, row hash) for every target row; exported with bucketSumSql so the
 * benchmark can EXPLAIN exactly the query verify runs.
 */
export function targetSide(ct: Pick<CompiledTable, 'table' | 'key'>, columns: string[], encodings?: Map<string, ColumnEncoding>): Side {
  return { rel: sideRel(ct.key, columns, (c) => `q.${ident(c)}`, `${ident(ct.table)} q`, encodings) };
}

function bucketOf(buckets: number): string {
  return `(kh & ${buckets - 1})::int`;
}

/** One side's row count and exact hash sum: the query both servers run first per table. */
export function totalSql(side: Side): string {
  return `select count(*)::text as n, coalesce(sum(h), 0)::text as s from ${side.rel} x`;
}

async function total(client: pg.Client, side: Side): Promise<SourceTotal> {
  const r = await client.query<{ n: string; s: string }>(totalSql(side));
  return { rows: Number(r.rows[0]!.n), sum: r.rows[0]!.s };
}

/** The per-bucket count and hash sum of one side: the query both servers run per table whose totals differ. */
export function bucketSumSql(side: Side, buckets: number): string {
  return `select ${bucketOf(buckets)} as b, count(*)::text as n, sum(h)::text as s from ${side.rel} x group by 1`;
}

async function bucketSums(client: pg.Client, side: Side, buckets: number): Promise<Map<number, string>> {
  // The planner cannot know that the bucket expression has at most `buckets` values: it
  // expects one group per row and sorts every row to group them (spilling to disk past
  // work_mem). Hashing into `buckets` groups is one pass in little memory.
  await client.query('set local enable_sort = off');
  const r = await client.query<{ b: number; n: string; s: string }>(bucketSumSql(side, buckets));
  await client.query('set local enable_sort to default');
  return new Map(r.rows.map((x) => [x.b, `${x.n}:${x.s}`]));
}

function rowsIn(m: Map<number, string>): number {
  let n = 0;
  for (const v of m.values()) n += Number(v.slice(0, v.indexOf(':')));
  return n;
}

/** Pretty key: `(7)` -> `id=7`; `(1,2)` -> `(user_id, role_id)=(1,2)`. */
function showKey(key: string[], text: string): string {
  return key.length === 1 ? `${key[0]}=${text.slice(1, -1)}` : `(${key.join(', ')})=${text}`;
}

/**
 * Compares the rows of `differing` buckets: source pairs streamed into a temp table on the
 * target, then missing / extra / changed found by joins there.
 */
async function descend(
  src: pg.Client,
  dst: pg.Client,
  s: Side,
  t: Side,
  buckets: number,
  differing: number[],
  key: string[],
  sample: number,
): Promise<{ missing: KeyDiff; extra: KeyDiff; changed: KeyDiff; repair: RepairKeys }> {
  const list = differing.join(', ');
  await dst.query(`create temp table if not exists bg_verify_src (k text, h bigint)`);
  await dst.query(`truncate bg_verify_src`);
  const out = src.query(copyTo(`COPY (select k, h from ${s.rel} x where ${bucketOf(buckets)} in (${list})) TO STDOUT`));
  const inn = dst.query(copyFrom(`COPY bg_verify_src (k, h) FROM STDIN`));
  await pipeline(out, inn);
  await dst.query(`create temp table if not exists bg_verify_dst (k text, h bigint)`);
  await dst.query(`truncate bg_verify_dst`);
  await dst.query(`insert into bg_verify_dst select k, h from ${t.rel} x where ${bucketOf(buckets)} in (${list})`);
  await dst.query(`analyze bg_verify_src; analyze bg_verify_dst`);
  const kinds = {
    missing: `from bg_verify_src s where not exists (select 1 from bg_verify_dst d where d.k = s.k)`,
    extra: `from bg_verify_dst d where not exists (select 1 from bg_verify_src s where s.k = d.k)`,
    changed: `from bg_verify_src s join bg_verify_dst d on d.k = s.k where d.h <> s.h`,
  };
  const res = { repair: { missing: [], extra: [], changed: [], truncated: false } } as unknown as {
    missing: KeyDiff;
    extra: KeyDiff;
    changed: KeyDiff;
    repair: RepairKeys;
  };
  for (const [kind, from] of Object.entries(kinds) as [keyof typeof kinds, string][]) {
    const alias = kind === 'extra' ? 'd' : 's';
    const r = await dst.query<{ n: string; keys: string[] | null }>(
      `select count(*)::text as n, (array_agg(${alias}.k order by ${alias}.k))[1:${Math.max(sample, REPAIR_KEYS)}] as keys ${from}`,
    );
    const all = r.rows[0]!.keys ?? [];
    const count = Number(r.rows[0]!.n);
    res[kind] = { count, keys: all.slice(0, sample).map((k) => showKey(key, k)) };
    res.repair[kind] = all.slice(0, REPAIR_KEYS);
    if (count > REPAIR_KEYS) res.repair.truncated = true;
  }
  return res;
}

async function detected(client: pg.Client, catalogs: VersionCatalogs, name: string): Promise<number> {
  const d = await detectVersion(client, catalogs, name);
  if (d.version === 'empty') throw new VersionMismatchError(`${name} has no schema`, `apply one first: bluegreen schema apply --to ${name} --schema-version N`);
  return d.version;
}

/** One source and one target session; each verify job owns one. */
interface Sessions {
  src: pg.Client;
  dst: pg.Client;
}

/** What to compare in one table, decided once and reused by the recheck. */
interface TablePlan {
  name: string;
  /** The compiled table; for a keyless table its key is every compared column. */
  ct: CompiledTable;
  columns: string[];
  excluded: string[];
  comparedAs: 'key' | 'multiset';
  s: Side;
  t: Side;
}

/** A table whose buckets differed, kept for the recheck. */
interface Flagged {
  plan: TablePlan;
  r: TableVerifyReport;
  buckets: number;
  differing: number[];
}

interface Prepared {
  fromVersion: number;
  toVersion: number;
  plans: TablePlan[];
  notCompared: string[];
  notCarried: { table: string; why: string }[];
}

/** Step 1: versions, the mapping chain, and what to compare in each table. */
async function prepare(opts: VerifyOptions, first: Sessions): Promise<Prepared> {
  const catalogs = new VersionCatalogs(opts.mappingsDir, first.dst);
  const fromVersion = opts.from.version ?? (await detected(first.src, catalogs, opts.from.name));
  const toVersion = opts.to.version ?? (await detected(first.dst, catalogs, opts.to.name));
  const all = opts.catalogs ?? Object.fromEntries(await catalogs.all());
  const target = all[toVersion]!;
  const chain = await compileChain(opts.mappingsDir, fromVersion, toVersion, all);
  // A typo in an author-written expression is the mapping's fault (exit 2, file and JSON
  // pointer), not a database error on the source half-way through the comparison.
  await compileExpressions(first.src, Object.values(chain.tables));
  const names = Object.keys(chain.tables).filter((t) => !opts.tables || opts.tables.includes(t)).sort();
  const unknown = (opts.tables ?? []).filter((t) => !chain.tables[t]);
  if (unknown.length) {
    throw new UsageError(
      `--table ${unknown.join(', ')}: no such table in ${opts.to.name} (v${toVersion}) that a mapping produces`,
      `tables that can be verified: ${Object.keys(chain.tables).sort().join(', ')}`,
    );
  }
  const notCompared = Object.keys(target.tables).filter((t) => !chain.tables[t] && !chain.notCarried[t]);
  const notCarried = Object.entries(chain.notCarried).map(([table, why]) => ({ table, why })).sort((a, b) => a.table.localeCompare(b.table));
  // Going down (a rollback), what the up mappings lose cannot be expected back.
  const lostUp = fromVersion > toVersion ? await lostGoingUp(opts.mappingsDir, fromVersion, toVersion, all) : {};
  // Both sides must hash alike: the binary encoding only when both servers have it.
  const encodings = (await binaryHashAvailable(first.src, first.dst)) ? await readEncodings(first.dst, names) : undefined;
  const plans = names.map((name): TablePlan => {
    const ct = chain.tables[name]!;
    // Generated columns the mapping can compare (the same expression on both sides) are;
    // the others are excluded and listed (src/mapping/analyse.ts, generatedCompared).
    const compared = [...ct.columns, ...ct.generated];
    const excluded = target.tables[name]!.columns.map((c) => c.name).filter((c) => !compared.includes(c) || ct.lossyColumns.includes(c) || (lostUp[name]?.includes(c) ?? false));
    const columns = compared.filter((c) => !excluded.includes(c));
    // A keyless (full-reload) table is compared as a multiset: the whole row is its key.
    const keyed = ct.key.length > 0 ? ct : { ...ct, key: columns };
    const enc = encodings?.get(name);
    return {
      name,
      ct: keyed,
      columns,
      excluded,
      comparedAs: ct.key.length > 0 ? 'key' : 'multiset',
      s: sourceSide(keyed, columns, target, (t) => ident(t), enc),
      t: targetSide(keyed, columns, enc),
    };
  });
  return { fromVersion, toVersion, plans, notCompared, notCarried };
}

/**
 * Step 2: one consistent view per side for every job. The first source session takes (or
 * joins, from sync) the source snapshot and the first target session its repeatable-read
 * snapshot; with more than one job both are exported and every other session imports
 * them, so all tables are compared as of the same instant on each side.
 */
async function beginSnapshots(sessions: Sessions[], sourceSnapshot?: string): Promise<void> {
  const [first, ...others] = sessions;
  const joinAt = (snapshot: string) => `set transaction snapshot '${snapshot.replace(/'/g, "''")}'`;
  await first!.src.query('begin isolation level repeatable read read only');
  if (sourceSnapshot) await first!.src.query(joinAt(sourceSnapshot));
  await first!.dst.query('begin isolation level repeatable read');
  if (others.length === 0) return;
  const exported = async (c: pg.Client) => (await c.query<{ s: string }>('select pg_export_snapshot() as s')).rows[0]!.s;
  const src = sourceSnapshot ?? (await exported(first!.src));
  const dst = await exported(first!.dst);
  for (const o of others) {
    await o.src.query('begin isolation level repeatable read read only');
    await o.src.query(joinAt(src));
    await o.dst.query('begin isolation level repeatable read');
    await o.dst.query(joinAt(dst));
  }
}

async function endSnapshots(sessions: Sessions[]): Promise<void> {
  for (const s of sessions) {
    await s.src.query('commit');
    await s.dst.query('rollback'); // temp tables and nothing else: leave no trace
  }
}

/** Runs `work` over `items`, one at a time per session pair; the first failure wins. */
async function runJobs<T>(items: T[], sessions: Sessions[], work: (item: T, s: Sessions) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { err: unknown } | undefined;
  await Promise.all(
    sessions.map(async (s) => {
      while (!failed && next < items.length) {
        const item = items[next++]!;
        await work(item, s).catch((err: unknown) => (failed ??= { err }));
      }
    }),
  );
  if (failed) throw failed.err;
}

/**
 * Step 3: one table's totals on both sides at once; if they differ, its bucket sums on both
 * sides, then a descent into the buckets that differ.
 */
async function compareTable(
  p: TablePlan,
  s: Sessions,
  sample: number,
  repair: Record<string, RepairKeys>,
  warn: (msg: string) => void,
  ahead?: SourceTotal,
): Promise<{ r: TableVerifyReport; flagged?: Flagged }> {
  const t0 = Date.now();
  const [sourceTotal, targetTotal] = await Promise.all([ahead ?? total(s.src, p.s), total(s.dst, p.t)]);
  const none: KeyDiff = { count: 0, keys: [] };
  const r: TableVerifyReport = {
    table: p.name,
    sourceRows: sourceTotal.rows,
    targetRows: targetTotal.rows,
    missing: none,
    extra: none,
    changed: none,
    columns: p.columns,
    excluded: p.excluded,
    settled: 0,
    unexplainedBuckets: 0,
    comparedAs: p.comparedAs,
    sourceHashed: ahead?.from ?? 'query',
    ms: 0,
  };
  if (sourceTotal.rows === targetTotal.rows && sourceTotal.sum === targetTotal.sum) {
    r.ms = Date.now() - t0;
    return { r };
  }
  const buckets = bucketCount(Math.max(sourceTotal.rows, targetTotal.rows));
  const [a, b] = await Promise.all([bucketSums(s.src, p.s, buckets), bucketSums(s.dst, p.t, buckets)]);
  const differing = [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k)).sort((x, y) => x - y);
  // The buckets are read in this verify's own snapshots, on both sides: they are the truth.
  // A total from the sync's stream that they contradict was wrong (a defect, said aloud).
  r.sourceRows = rowsIn(a);
  r.targetRows = rowsIn(b);
  if (ahead && (ahead.rows !== r.sourceRows || differing.length === 0)) {
    r.sourceHashed = 'query';
    warn(`verify ${p.name}: the source total taken from the sync's COPY stream (${ahead.rows} rows) disagrees with the source's own (${r.sourceRows} rows); compared by the source's own`);
  }
  let flagged: Flagged | undefined;
  if (differing.length > 0) {
    const { repair: keys, ...found } = await descend(s.src, s.dst, p.s, p.t, buckets, differing, p.ct.key, sample);
    Object.assign(r, found);
    if (p.comparedAs === 'key') repair[p.name] = keys;
    if (r.missing.count + r.extra.count + r.changed.count === 0) r.unexplainedBuckets = differing.length;
    flagged = { plan: p, r, buckets, differing };
  }
  r.ms = Date.now() - t0;
  return { r, flagged };
}

/** Step 4: what differed, compared again in fresh snapshots; only what still differs stays. */
async function recheck(
  flagged: Flagged[],
  sessions: Sessions[],
  sample: number,
  repair: Record<string, RepairKeys>,
  locate: (p: TablePlan) => (err: unknown) => Promise<never>,
): Promise<void> {
  await beginSnapshots(sessions);
  await runJobs(flagged, sessions, async (f, s) => {
    const first = f.r.missing.count + f.r.extra.count + f.r.changed.count;
    // A fresh snapshot may hold a row written since, which the mapping cannot convert.
    const { repair: keys, ...found } = await descend(s.src, s.dst, f.plan.s, f.plan.t, f.buckets, f.differing, f.plan.ct.key, sample).catch(locate(f.plan));
    Object.assign(f.r, found);
    if (repair[f.r.table]) repair[f.r.table] = keys;
    f.r.settled = Math.max(0, first - (f.r.missing.count + f.r.extra.count + f.r.changed.count));
    if (f.r.missing.count + f.r.extra.count + f.r.changed.count > 0) f.r.unexplainedBuckets = 0;
  });
  await endSnapshots(sessions);
}

/**
 * A row the mapping cannot convert (a value not in a map, too long for the target type)
 * fails the source's hashing with the database's bare message, or a map op's
 * `invalid input syntax for type boolean: "bluegreen: ..."`: located the way sync locates
 * it (src/convert/locate.ts, on a fresh source session) into the same RowConversionError,
 * naming table, column, key, value and the op (exit 2). Any other failure passes unchanged.
 */
function located(opts: VerifyOptions, p: TablePlan): (err: unknown) => Promise<never> {
  return async (err) => {
    throw await locateOnFreshSession(err, p.ct, (t) => ident(t), opts.from.url, opts.from.name);
  };
}

/** Step 5: the result in the target's bluegreen.verifies (with the keys `sync --repair` reads). */
async function recordVerify(dst: pg.Client, opts: VerifyOptions, report: VerifyReport, repair: Record<string, RepairKeys>): Promise<void> {
  await ensureStateSchema(dst);
  await dst.query(`insert into bluegreen.verifies (source, clean, report) values ($1, $2, $3)`, [
    opts.from.name,
    report.clean,
    // `partial` (some tables only) never counts as the full verify a cutover wants.
    JSON.stringify({ mode: opts.tables ? 'partial' : 'full', ...report, repair }),
  ]);
}

/** One table's source-side total (rows, exact sum of row hashes), computed ahead of the comparison. */
export interface SourceTotal extends HashTotal {
  /** Where it came from: the sync's COPY stream, or a query of its own. */
  from?: 'stream' | 'query';
}

/** Source-side sums under way (startSourceSums): their result, and a way to stop them. */
export interface SourceSumsRun {
  result: Promise<Map<string, SourceTotal>>;
  /** Ends the run's sessions (the sync failed): the server stops hashing at once. */
  cancel: () => Promise<void>;
}

/**
 * Starts the source side of a verify on its own session pair, joined to
 * `opts.sourceSnapshot` (required). A full sync calls it once its COPYs are done, for the
 * tables its COPY stream could not hash (streamHashes): the source then sits idle while
 * the target rebuilds keys and indexes, validates foreign keys and analyzes, so hashing
 * them meanwhile takes them out of the verify that follows the commit. The target session
 * only reads catalogs.
 */
export function startSourceSums(opts: VerifyOptions): SourceSumsRun {
  const app = `bluegreen verify ${opts.from.name}->${opts.to.name}`.slice(0, 63);
  const sessions: Partial<Sessions> = {};
  const close = async () => {
    await sessions.src?.end().catch(() => {});
    await sessions.dst?.end().catch(() => {});
  };
  const run = async (): Promise<Map<string, SourceTotal>> => {
    sessions.src = await connect(opts.from.url, { label: opts.from.name, applicationName: app });
    sessions.dst = await connect(opts.to.url, { label: opts.to.name, applicationName: app });
    const { plans } = await prepare(opts, sessions as Sessions);
    await beginSnapshots([sessions as Sessions], opts.sourceSnapshot);
    const out = new Map<string, SourceTotal>();
    for (const p of plans) out.set(p.name, { ...(await total(sessions.src, p.s)), from: 'query' });
    return out;
  };
  const result = run().finally(close);
  result.catch(() => {}); // a failure only means the verify hashes the source itself
  return { result, cancel: close };
}

/**
 * The source's row hash of each table whose verify can take its source side from a sync's
 * COPY (./stream-hash.ts): SQL over the mapped row as `q`, i.e. over `(ct.selectSql(…)) q`,
 * by target table. Run on the sync's own sessions (the source in its snapshot, the target
 * in its transaction: catalogs only). A table left out (one comparing a generated column,
 * which the COPY does not select) has its source side read by verify as before.
 */
export async function streamHashes(opts: VerifyOptions, src: pg.Client, dst: pg.Client): Promise<Map<string, string>> {
  const { plans } = await prepare(opts, { src, dst });
  return new Map(plans.flatMap((p) => (p.s.rowHash ? [[p.name, p.s.rowHash] as [string, string]] : [])));
}

/**
 * Compares the source, through the mapping chain, with the target (see the module
 * comment); `opts.jobs` tables at a time, each job with its own session pair sharing one
 * snapshot per side.
 */
export async function verify(opts: VerifyOptions): Promise<VerifyReport> {
  const started = Date.now();
  const sample = opts.sampleKeys ?? 10;
  const app = `bluegreen verify ${opts.from.name}->${opts.to.name}`.slice(0, 63);
  const open = async (): Promise<Sessions> => {
    const src = await connect(opts.from.url, { label: opts.from.name, applicationName: app });
    const dst = await connect(opts.to.url, { label: opts.to.name, applicationName: app }).catch(async (err: unknown) => {
      await src.end().catch(() => {});
      throw err;
    });
    return { src, dst };
  };
  const sessions: Sessions[] = [await open()];
  try {
    const { fromVersion, toVersion, plans, notCompared, notCarried } = await prepare(opts, sessions[0]!);
    const jobs = Math.max(1, Math.min(opts.jobs ?? 1, plans.length));
    while (sessions.length < jobs) sessions.push(await open());
    const report: VerifyReport = { from: opts.from.name, to: opts.to.name, fromVersion, toVersion, clean: true, tables: [], notCompared, ...(notCarried.length ? { notCarried } : {}), ms: 0 };
    // Every differing key (up to REPAIR_KEYS per kind), recorded for `sync --repair` only.
    const repair: Record<string, RepairKeys> = {};
    const results = new Map<string, { r: TableVerifyReport; flagged?: Flagged }>();
    // Sums computed ahead must be of the very snapshot this verify compares against.
    const ahead = opts.sourceSums && opts.sourceSnapshot ? await opts.sourceSums.catch(() => undefined) : undefined;
    await beginSnapshots(sessions, opts.sourceSnapshot);
    await runJobs(plans, sessions, async (p, s) => {
      const res = await compareTable(p, s, sample, repair, (m) => opts.logger.warn(m), ahead?.get(p.name)).catch(located(opts, p));
      results.set(p.name, res);
      opts.logger.debug(`verify ${p.name}: ${res.r.sourceRows}/${res.r.targetRows} rows, ${res.flagged?.differing.length ?? 0} differing buckets`);
      opts.logger.progress('verify', results.size, plans.length, { unit: 'tables', phase: 'hash' });
    });
    opts.logger.progressDone('verify');
    await endSnapshots(sessions);
    report.tables = plans.map((p) => results.get(p.name)!.r);
    const flagged = plans.flatMap((p) => results.get(p.name)!.flagged ?? []);
    // Recheck what differed, in fresh snapshots, unless we compared against a fixed one.
    if (flagged.length > 0 && (opts.recheck ?? true) && !opts.sourceSnapshot) await recheck(flagged, sessions, sample, repair, (p) => located(opts, p));
    report.clean = report.tables.every((t) => t.missing.count + t.extra.count + t.changed.count + t.unexplainedBuckets === 0);
    report.ms = Date.now() - started;
    if (opts.record ?? true) await recordVerify(sessions[0]!.dst, opts, report, repair);
    return report;
  } finally {
    for (const s of sessions) {
      await s.dst.end().catch(() => {});
      await s.src.end().catch(() => {});
    }
  }
}

/** A table for people: one line per table, then the differing keys. */
export function renderVerify(r: VerifyReport): string {
  const lines = [
    `verify ${r.from} (v${r.fromVersion}) -> ${r.to} (v${r.toVersion}): ${r.clean ? 'CLEAN' : 'DIFFERENCES FOUND'} (${(r.ms / 1000).toFixed(1)} s)`,
    `  ${'table'.padEnd(18)} ${'source'.padStart(9)} ${'target'.padStart(9)} ${'missing'.padStart(8)} ${'extra'.padStart(8)} ${'changed'.padStart(8)}  excluded`,
  ];
  for (const t of r.tables) {
    lines.push(
      `  ${t.table.padEnd(18)} ${String(t.sourceRows).padStart(9)} ${String(t.targetRows).padStart(9)} ${String(t.missing.count).padStart(8)} ${String(t.extra.count).padStart(8)} ${String(t.changed.count).padStart(8)}  ${t.excluded.join(', ') || '-'}`,
    );
  }
  for (const t of r.tables) {
    for (const kind of ['missing', 'extra', 'changed'] as const) {
      const d = t[kind];
      if (d.count) lines.push(`  ${t.table} ${kind} (${d.count}): ${d.keys.join(', ')}${d.count > d.keys.length ? ', …' : ''}`);
    }
    if (t.unexplainedBuckets) lines.push(`  ${t.table}: identical rows occur a different number of times on each side (${t.sourceRows} vs ${t.targetRows} rows)`);
    if (t.comparedAs === 'multiset') lines.push(`  ${t.table}: keyless, compared as a multiset of whole rows (count + hash)`);
    if (t.settled) lines.push(`  ${t.table}: ${t.settled} difference(s) settled on recheck (writes in flight)`);
  }
  if (r.notCompared.length) lines.push(`  not compared (no mapping produces them): ${r.notCompared.join(', ')}`);
  for (const n of r.notCarried ?? []) lines.push(`  not carried: ${n.table} (${n.why})`);
  return lines.join('\n');
}
