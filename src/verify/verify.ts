/**
 * `verify`: does the target hold exactly what the source holds, seen through the mapping
 * chain? Both sides are reduced to one canonical text per row and compared in the
 * databases, never by shipping tables:
 *
 * 1. Canonical encoding. The source is projected through the chain's SQL face, every
 *    compared column cast to the TARGET column's type (so numeric scale, timestamp
 *    precision and jsonb key order normalise the same way on both sides), then encoded as
 *    `row(c1, c2, …)::text`: NULL is an empty unquoted field, '' is `""`, fields are
 *    separated and quoted, so ('ab','c') never equals ('a','bc'). Sessions pin DateStyle,
 *    TimeZone and extra_float_digits (src/db/connect.ts), so equal rows print equally.
 * 2. Buckets. Rows are grouped by a hash of their key into buckets; each side returns
 *    (bucket, count, sum of 64-bit row hashes). Equal tables cost one scan per side, run
 *    in parallel on the two servers.
 * 3. Descent. Only buckets that differ are looked at row by row: the source's (key, hash)
 *    pairs for those buckets are streamed into a temporary table on the target and joined
 *    there, which names every missing, extra and changed key without holding rows in
 *    memory.
 * 4. Recheck. On a live source, differing buckets are compared once more in fresh
 *    snapshots; only what still differs is reported (in-flight writes raise no alarm).
 *    When sync calls verify it passes its own source snapshot instead, so the comparison
 *    is exact: "the target equals the source as of the sync".
 *
 * Columns the mapping cannot carry (lossy) are excluded and listed.
 */
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { connect, ident } from '../db/connect.ts';
import { detectVersion, VersionCatalogs, type Catalog } from '../db/catalog.ts';
import { ensureStateSchema } from '../db/state.ts';
import { compileChain, type CompiledTable } from '../mapping/index.ts';
import { isBuiltinType } from '../mapping/sql.ts';
import { UsageError, VersionMismatchError } from '../errors.ts';
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
  /** Version catalogs already learnt (sync passes its own: no second probe). */
  catalogs?: Record<number, Catalog>;
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
function bucketCount(rows: number): number {
  let n = 64;
  while (n < 16384 && n * 1000 < rows) n *= 2;
  return n;
}

interface Side {
  /** SQL of a relation with columns `k` (key text), `h` (row hash). */
  rel: string;
}

function keyExpr(alias: string, key: string[]): string {
  return `row(${key.map((k) => `${alias}.${ident(k)}`).join(', ')})::text`;
}

/** (key text, row hash) for every row of the projected source. */
function sourceSide(ct: CompiledTable, columns: string[], target: Catalog, rel: (t: string) => string): Side {
  // A user-defined type may exist on the target only: the source compares its text, which
  // is what the target's row prints for it too.
  const types = new Map(target.tables[ct.table]!.columns.map((c) => [c.name, isBuiltinType(c.type) ? c.type : 'text']));
  const row = `row(${columns.map((c) => `q.${ident(c)}::${types.get(c)}`).join(', ')})::text`;
  const key = `row(${ct.key.map((k) => `q.${ident(k)}::${types.get(k)}`).join(', ')})::text`;
  return { rel: `(select ${key} as k, hashtextextended(${row}, 0) as h from (${ct.selectSql(rel)}) q)` };
}

function targetSide(ct: CompiledTable, columns: string[]): Side {
  const row = `row(${columns.map((c) => `q.${ident(c)}`).join(', ')})::text`;
  return { rel: `(select ${keyExpr('q', ct.key)} as k, hashtextextended(${row}, 0) as h from ${ident(ct.table)} q)` };
}

function bucketOf(expr: string, buckets: number): string {
  return `(hashtextextended(${expr}, 1) & ${buckets - 1})::int`;
}

async function bucketSums(client: pg.Client, side: Side, buckets: number): Promise<Map<number, string>> {
  const r = await client.query<{ b: number; n: string; s: string }>(
    `select ${bucketOf('k', buckets)} as b, count(*)::text as n, sum(h)::text as s from ${side.rel} x group by 1`,
  );
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
  const out = src.query(copyTo(`COPY (select k, h from ${s.rel} x where ${bucketOf('k', buckets)} in (${list})) TO STDOUT`));
  const inn = dst.query(copyFrom(`COPY bg_verify_src (k, h) FROM STDIN`));
  await pipeline(out, inn);
  await dst.query(`create temp table if not exists bg_verify_dst (k text, h bigint)`);
  await dst.query(`truncate bg_verify_dst`);
  await dst.query(`insert into bg_verify_dst select k, h from ${t.rel} x where ${bucketOf('k', buckets)} in (${list})`);
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
  if (d.version === 'empty') throw new VersionMismatchError(`${name} has no schema`, `apply one first: bluegreen schema apply --to ${name} --version N`);
  return d.version;
}

export async function verify(opts: VerifyOptions): Promise<VerifyReport> {
  const started = Date.now();
  const sample = opts.sampleKeys ?? 10;
  const app = `bluegreen verify ${opts.from.name}->${opts.to.name}`.slice(0, 63);
  const src = await connect(opts.from.url, { label: opts.from.name, applicationName: app });
  let dst: pg.Client | undefined;
  try {
    dst = await connect(opts.to.url, { label: opts.to.name, applicationName: app });
    const catalogs = new VersionCatalogs(opts.mappingsDir, dst);
    const fromVersion = opts.from.version ?? (await detected(src, catalogs, opts.from.name));
    const toVersion = opts.to.version ?? (await detected(dst, catalogs, opts.to.name));
    const all = opts.catalogs ?? Object.fromEntries(await catalogs.all());
    const target = all[toVersion]!;
    const chain = await compileChain(opts.mappingsDir, fromVersion, toVersion, all);
    const names = Object.keys(chain.tables).filter((t) => !opts.tables || opts.tables.includes(t)).sort();
    const unknown = (opts.tables ?? []).filter((t) => !chain.tables[t]);
    if (unknown.length) {
      throw new UsageError(
        `--table ${unknown.join(', ')}: no such table in ${opts.to.name} (v${toVersion}) that a mapping produces`,
        `tables that can be verified: ${Object.keys(chain.tables).sort().join(', ')}`,
      );
    }
    const notCompared = Object.keys(target.tables).filter((t) => !chain.tables[t]);

    const begin = async () => {
      await src.query('begin isolation level repeatable read read only');
      if (opts.sourceSnapshot) await src.query(`set transaction snapshot '${opts.sourceSnapshot.replace(/'/g, "''")}'`);
      await dst!.query('begin isolation level repeatable read');
    };
    const end = async () => {
      await src.query('commit');
      await dst!.query('rollback'); // temp tables and nothing else: leave no trace
    };

    const report: VerifyReport = { from: opts.from.name, to: opts.to.name, fromVersion, toVersion, clean: true, tables: [], notCompared, ms: 0 };
    await begin();
    const flagged: { ct: CompiledTable; r: TableVerifyReport; s: Side; t: Side; buckets: number; differing: number[] }[] = [];
    // Every differing key (up to REPAIR_KEYS per kind), recorded for `sync --repair` only.
    const repair: Record<string, RepairKeys> = {};
    for (const name of names) {
      const t0 = Date.now();
      const ct = chain.tables[name]!;
      const excluded = target.tables[name]!.columns.map((c) => c.name).filter((c) => !ct.columns.includes(c) || ct.lossyColumns.includes(c));
      const columns = ct.columns.filter((c) => !excluded.includes(c));
      // A keyless (full-reload) table is compared as a multiset: the whole row is its key.
      const keyed = ct.key.length > 0 ? ct : { ...ct, key: columns };
      const s = sourceSide(keyed, columns, target, (t) => ident(t));
      const t = targetSide(keyed, columns);
      const est = await dst.query<{ n: number }>(`select greatest(reltuples, 0)::bigint::int as n from pg_class where oid = to_regclass($1)`, [ident(name)]);
      const buckets = bucketCount(est.rows[0]?.n ?? 0);
      const [a, b] = await Promise.all([bucketSums(src, s, buckets), bucketSums(dst, t, buckets)]);
      const differing = [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k)).sort((x, y) => x - y);
      const none: KeyDiff = { count: 0, keys: [] };
      const r: TableVerifyReport = {
        table: name,
        sourceRows: rowsIn(a),
        targetRows: rowsIn(b),
        missing: none,
        extra: none,
        changed: none,
        columns,
        excluded,
        settled: 0,
        unexplainedBuckets: 0,
        comparedAs: ct.key.length > 0 ? 'key' : 'multiset',
        ms: 0,
      };
      if (differing.length > 0) {
        const { repair: keys, ...found } = await descend(src, dst, s, t, buckets, differing, keyed.key, sample);
        Object.assign(r, found);
        if (ct.key.length > 0) repair[name] = keys;
        if (r.missing.count + r.extra.count + r.changed.count === 0) r.unexplainedBuckets = differing.length;
        flagged.push({ ct: keyed, r, s, t, buckets, differing });
      }
      r.ms = Date.now() - t0;
      report.tables.push(r);
      opts.logger.debug(`verify ${name}: ${r.sourceRows}/${r.targetRows} rows, ${differing.length} differing buckets`);
      opts.logger.progress('verify', report.tables.length, names.length, { unit: 'tables', phase: 'hash' });
    }
    opts.logger.progressDone('verify');
    await end();

    // Recheck what differed, in fresh snapshots, unless we compared against a fixed one.
    if (flagged.length > 0 && (opts.recheck ?? true) && !opts.sourceSnapshot) {
      await begin();
      for (const f of flagged) {
        const first = f.r.missing.count + f.r.extra.count + f.r.changed.count;
        const { repair: keys, ...found } = await descend(src, dst, f.s, f.t, f.buckets, f.differing, f.ct.key, sample);
        Object.assign(f.r, found);
        if (repair[f.r.table]) repair[f.r.table] = keys;
        f.r.settled = Math.max(0, first - (f.r.missing.count + f.r.extra.count + f.r.changed.count));
        if (f.r.missing.count + f.r.extra.count + f.r.changed.count > 0) f.r.unexplainedBuckets = 0;
      }
      await end();
    }
    report.clean = report.tables.every((t) => t.missing.count + t.extra.count + t.changed.count + t.unexplainedBuckets === 0);
    report.ms = Date.now() - started;
    if (opts.record ?? true) {
      await ensureStateSchema(dst);
      await dst.query(`insert into bluegreen.verifies (source, clean, report) values ($1, $2, $3)`, [
        opts.from.name,
        report.clean,
        // `partial` (some tables only) never counts as the full verify a cutover wants.
        JSON.stringify({ mode: opts.tables ? 'partial' : 'full', ...report, repair }),
      ]);
    }
    return report;
  } finally {
    await dst?.end().catch(() => {});
    await src.end().catch(() => {});
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
  return lines.join('\n');
}
