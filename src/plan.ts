/**
 * `plan`: what a sync would do and what a cutover would check, without writing anything on
 * either side. Per target table: full or incremental (the rule sync applies), the key and
 * watermark used, the rows it would read (a count bounded by the stored watermark, which
 * the watermark's index answers; PostgreSQL's estimate for a full read) and an estimate of
 * the rows it would delete; the partitions the source gained that the sync would create
 * (or that must be created by hand); then each cutover guardrail with its current value, and the
 * freeze a cutover would hold, estimated from the last runs.
 *
 * Both sessions are READ ONLY transactions that are rolled back: the plan cannot write,
 * not even the `bluegreen` state schema a first sync creates.
 */
import type pg from 'pg';
import { connect, ident } from './db/connect.ts';
import { stateTableExists, storedWatermarks } from './db/state.ts';
import { detectVersion, loadOrder, VersionCatalogs } from './db/catalog.ts';
import { compileChain } from './mapping/chain.ts';
import { guardrails, type CutoverReport, type Guardrail } from './cutover/cutover.ts';
import { VersionMismatchError } from './errors.ts';
import type { Logger } from './log.ts';
import type { Endpoint } from './sync/sync.ts';
import { reconcilePair } from './cutover/reconcile.ts';
import { checkZones, lowerBoundSql, planWatermarks, type SourcePlan } from './sync/watermark.ts';
import { planPartitions, type PartitionCreated } from './sync/partitions.ts';

export interface PlanOptions {
  from: Endpoint;
  to: Endpoint;
  mappingsDir: string;
  logger: Logger;
  /** As `sync --full`: every table read whole. */
  full?: boolean;
  /** The cutover's --max-lag, for the lag guardrail. */
  maxLagSeconds?: number;
}

export interface TablePlan {
  table: string;
  mode: 'full' | 'incremental';
  /** Why this mode. */
  why: string;
  key: string[];
  /** The source watermark and the stored lower bound the run would start from. */
  watermark: { table: string; column: string; from: string | null } | null;
  /** Rows the run would read from the source. */
  estimatedRowsToRead: number;
  /** Rows on the target beyond the source's (a lower bound of the deletes), null when unknown. */
  estimatedRowsToDelete: number | null;
}

export interface PlanReport {
  from: string;
  to: string;
  fromVersion: number;
  toVersion: number;
  mode: 'full' | 'incremental';
  tables: TablePlan[];
  /** The cutover's guardrails with their current values. */
  guardrails: Guardrail[];
  /** Seconds a cutover would hold writes on the source: the last incremental run plus the last full verify. */
  estimatedFreezeSeconds: number;
  /** How that estimate was made. */
  freezeBasis: string;
  /** Partitions the source gained that the sync would create on the target (src/sync/partitions.ts). */
  partitions?: PartitionCreated[];
  /** Source partitions the sync cannot mirror: the statements to run on the target first (else a row of theirs stops the sync). */
  manualPartitions?: string[];
  /** A cutover of the pair stopped half-way, and what the next sync, cutover, status or unfreeze will decide. */
  reconciled?: { frozen: string; target: string; action: string; detail: string }[];
}

/**
 * The count of the rows an incremental sync reads from one source table: sync's own lower
 * bound (lowerBoundSql), which an index on the watermark column answers.
 */
export function rowsToReadSql(p: SourcePlan): string {
  return `select count(*)::text as n from ${ident(p.table)} where ${lowerBoundSql(p)}`;
}

/** Exact counts below this many rows (cheap); PostgreSQL's estimate above. */
const EXACT_BELOW = 1_000_000;

export async function plan(opts: PlanOptions): Promise<PlanReport> {
  const src = await connect(opts.from.url, { label: opts.from.name, applicationName: 'bluegreen plan' });
  let dst: pg.Client | undefined;
  try {
    dst = await connect(opts.to.url, { label: opts.to.name, applicationName: 'bluegreen plan' });
    // A cutover of this pair stopped half-way: what the next command will decide (reads only).
    const reconciled = (await reconcilePair({ name: opts.from.name, client: src }, { name: opts.to.name, client: dst }, { write: false })).map(
      ({ frozen, target, action, detail }) => ({ frozen, target, action, detail }),
    );
    // Guardrails first, as a cutover runs them (reads only).
    const cut: CutoverReport = { from: opts.from.name, to: opts.to.name, guardrails: [], ok: false, outcome: '', next: '', ms: 0 };
    await guardrails({ from: opts.from, to: opts.to, mappingsDir: opts.mappingsDir, logger: opts.logger, maxLagSeconds: opts.maxLagSeconds }, src, dst, cut);

    const catalogs = new VersionCatalogs(opts.mappingsDir, dst);
    const fromVersion = opts.from.version ?? (await version(src, catalogs, opts.from.name));
    const toVersion = opts.to.version ?? (await version(dst, catalogs, opts.to.name));
    const all = Object.fromEntries(await catalogs.all());
    const chain = await compileChain(opts.mappingsDir, fromVersion, toVersion, all);
    const order = loadOrder(all[toVersion]!).filter((t) => chain.tables[t]);
    // The stored watermarks, as sync reads them (none with --full).
    const stored = new Map(opts.full ? [] : (await storedWatermarks(dst, opts.from.name)).map((r) => [r.table_name, r.value] as const));
    const hasState = await stateTableExists(dst, 'runs');
    // Watermark rules and lower bounds as sync plans them (src/sync/watermark.ts), from the
    // same stored watermarks, read before the snapshot's transaction (a refused zone or skew
    // is a failed statement): a rule sync refuses is already a failed guardrail above, and
    // its table's count is then the whole table. A declared zone the newest values
    // contradict refuses the plan as it refuses sync (exit 2).
    const rules = await planWatermarks(src, order.map((t) => chain.tables[t]!), all[fromVersion]!, stored, { zoneCheck: false }).catch(() => undefined);
    if (rules) await checkZones(src, [...rules.values()].filter((p): p is SourcePlan => p !== null), { warn: (m, f) => opts.logger.warn(m, f) });

    await src.query('begin isolation level repeatable read read only');
    await dst.query('begin isolation level repeatable read read only');
    const tables: TablePlan[] = [];
    for (const name of order) {
      const ct = chain.tables[name]!;
      const first = ct.sources[0]!;
      const targetEmpty = (await dst.query(`select 1 from ${ident(name)} limit 1`)).rowCount === 0;
      const lo = first.watermark ? stored.get(first.table) ?? null : null;
      const incremental = ct.reload !== 'full' && !targetEmpty && ct.sources.every((s) => s.watermark && stored.has(s.table));
      const why = ct.query
        ? `derived by its query (${ct.query}), recomputed whole on every run`
        : ct.reload === 'full'
        ? 'the mapping reloads it whole'
        : targetEmpty
          ? 'the target table is empty'
          : opts.full
            ? '--full'
            : !first.watermark
              ? 'no watermark column'
              : !stored.has(first.table)
                ? `never synced from ${opts.from.name}`
                : `rows whose ${first.watermark} reached the stored watermark`;
      const sourceRows = await rowCount(src, first.table);
      // The rows sync's own bound selects (a local watermark compares in its zone); none
      // when sync would read the table whole (no bound, or one stored for another kind).
      const rule = rules?.get(first.table);
      const read = incremental && rule?.lo != null ? Number((await src.query<{ n: string }>(rowsToReadSql(rule))).rows[0]!.n) : sourceRows;
      const targetRows = targetEmpty ? 0 : await rowCount(dst, name);
      tables.push({
        table: name,
        mode: incremental ? 'incremental' : 'full',
        why,
        key: ct.key,
        watermark: first.watermark ? { table: first.table, column: first.watermark, from: lo } : null,
        estimatedRowsToRead: read,
        // A split or merge changes row counts between versions: only a 1:1 table compares.
        estimatedRowsToDelete: ct.sources.length === 1 ? Math.max(0, targetRows - sourceRows) : null,
      });
    }
    const parts = await planPartitions(src, dst, order.map((t) => chain.tables[t]!));
    const manual = Object.values(parts.manual).flat();
    const freeze = await freezeEstimate(dst, opts.from.name, hasState);
    return {
      from: opts.from.name,
      to: opts.to.name,
      fromVersion,
      toVersion,
      mode: tables.some((t) => t.mode === 'incremental') ? 'incremental' : 'full',
      tables,
      guardrails: cut.guardrails,
      estimatedFreezeSeconds: freeze.seconds,
      freezeBasis: freeze.basis,
      ...(parts.create.length ? { partitions: parts.create } : {}),
      ...(manual.length ? { manualPartitions: manual } : {}),
      ...(reconciled.length ? { reconciled } : {}),
    };
  } finally {
    // Read-only transactions, rolled back: nothing of the plan stays on either side.
    await src.query('rollback').catch(() => {});
    await dst?.query('rollback').catch(() => {});
    await dst?.end().catch(() => {});
    await src.end().catch(() => {});
  }
}

async function version(client: pg.Client, catalogs: VersionCatalogs, name: string): Promise<number> {
  const d = await detectVersion(client, catalogs, name);
  if (d.version === 'empty') throw new VersionMismatchError(`${name} has no schema yet`, `create it first: bluegreen schema apply --to ${name} --schema-version N`);
  return d.version;
}

/**
 * An exact count for small tables, PostgreSQL's estimate (reltuples) for large ones. A
 * partitioned table's own reltuples stays -1 (autovacuum never analyzes the parent), so its
 * estimate is the sum of its partitions': otherwise every plan would count it whole.
 */
async function rowCount(client: pg.Client, table: string): Promise<number> {
  const est = await client.query<{ n: number | null }>(
    `select sum(greatest(c.reltuples, 0))::float8 as n from pg_partition_tree(to_regclass($1)) t join pg_class c on c.oid = t.relid where t.isleaf`,
    [ident(table)],
  );
  const n = est.rows[0]?.n ?? -1;
  if (n >= EXACT_BELOW) return Math.round(n);
  return Number((await client.query<{ n: string }>(`select count(*)::text as n from ${ident(table)}`)).rows[0]!.n);
}

/**
 * A cutover's freeze holds writes for its final incremental sync and that sync's check of
 * what it read. The verify of every row (when the last one is stale) and a catch-up sync
 * run before the freeze, while the source serves, so the final sync reads only the seconds
 * of writes since: the last incremental run's duration, as the target recorded it, is an
 * upper bound. Without history, unknown (0, and the basis says so).
 */
async function freezeEstimate(dst: pg.Client, source: string, hasState: boolean): Promise<{ seconds: number; basis: string }> {
  if (!hasState) return { seconds: 0, basis: 'no run recorded yet: sync first, then plan again' };
  const last = (incremental: boolean) =>
    dst.query<{ s: number | null }>(
      `select extract(epoch from finished_at - started_at)::float8 as s from bluegreen.runs
        where source = $1 and status = 'ok' and kind in ('sync', 'cutover') ${incremental ? `and detail->>'mode' = 'incremental'` : ''} order by id desc limit 1`,
      [source],
    );
  const inc = (await last(true)).rows[0]?.s ?? null;
  const any = inc === null ? ((await last(false)).rows[0]?.s ?? null) : null;
  const seconds = Math.round((inc ?? any ?? 0) * 10) / 10;
  const basis = [
    inc !== null ? `at most the last incremental run, ${inc.toFixed(1)} s` : any !== null ? `no incremental run yet, so the last full run's ${any.toFixed(1)} s (an upper bound)` : 'no run yet',
    'the full verify and a catch-up sync run before the freeze, while the source serves',
  ].join('; ');
  return { seconds, basis };
}
