/**
 * `sync --repair`: re-copy exactly the keys the last full verify named (missing, extra,
 * changed; verify records every one of them, up to a cap, in the target's
 * `bluegreen.verifies`), through the mapping, in ONE target transaction, then check those
 * rows again before committing. Cost follows the number of differences, not the tables:
 * the source is read by key (`(key) in (<the named keys>)` over the mapping's SELECT,
 * which the planner turns into index lookups when the mapping carries the key columns
 * unchanged), the target is written by key.
 *
 * Per key: the source's current row (a fresh snapshot: the source is the truth) is upserted;
 * a key the source no longer has is deleted. Watermarks are left alone. Keyless tables
 * cannot be repaired by key (`sync --full` reloads them).
 *
 * The refusals are sync's (src/sync/guards.ts): no repair of a database from itself, from
 * a side frozen by a cutover, into or out of a side frozen by an interrupted one, or
 * against the usual direction without --force. A target frozen by a cutover (the old
 * side, repaired during a rollback) is written as sync writes it: the freeze seal is
 * checked under lock first (a walked-through freeze is refused, its writes are not
 * overwritten) and renewed before the commit, because disabling the user triggers and
 * writing rows is exactly what tampering looks like (src/db/freeze-guard.ts).
 */
import type pg from 'pg';
import { ident, literal } from '../db/connect.ts';
import { detectVersion, loadOrder, VersionCatalogs, type Catalog } from '../db/catalog.ts';
import { ensureStateSchema, recordRun } from '../db/state.ts';
import { setUserTriggers } from '../db/bulk.ts';
import { assertFreezeHeld, sealFreeze } from '../db/freeze-guard.ts';
import { upsertOrRebuild } from '../db/apply.ts';
import { compileChain } from '../mapping/chain.ts';
import type { CompiledTable } from '../mapping/compile.ts';
import { InvalidInputError, VersionMismatchError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { RepairKeys } from '../verify/verify.ts';
import { withPair } from './pair.ts';
import { refuseUnsafeSync } from './guards.ts';
import { checkChanged, type ChangedCheck } from './check.ts';
import type { Endpoint } from './sync.ts';
import { pipeCopy } from './copy.ts';

export interface RepairOptions {
  from: Endpoint;
  to: Endpoint;
  mappingsDir: string;
  logger: Logger;
  /** Give up waiting for table locks on the target after this long (PostgreSQL interval). */
  lockTimeout?: string;
  /** Repair against the usual direction (as `sync --force`). */
  force?: boolean;
}

export interface TableRepairReport {
  table: string;
  /** Keys the verify named for this table. */
  keys: number;
  /** Source rows found for them (the rest are gone from the source and deleted). */
  copied: number;
  inserted: number;
  updated: number;
  deleted: number;
}

export interface RepairReport {
  from: string;
  to: string;
  fromVersion: number;
  toVersion: number;
  /** When the verify whose keys were repaired ran (null: no verify found differences). */
  verifiedAt: string | null;
  tables: TableRepairReport[];
  /** The repaired rows compared again, inside the repair's transaction. */
  check: ChangedCheck;
  clean: boolean;
  ms: number;
}

async function version(client: pg.Client, catalogs: VersionCatalogs, name: string, pinned?: number): Promise<number> {
  if (pinned !== undefined) return pinned;
  const d = await detectVersion(client, catalogs, name);
  if (d.version === 'empty') throw new VersionMismatchError(`${name} has no schema`, `apply one first: bluegreen schema apply --to ${name} --schema-version N`);
  return d.version;
}

/** What the repair decided before its transaction: the versions, the chain, the keys. */
interface RepairPlan {
  report: RepairReport;
  chain: Awaited<ReturnType<typeof compileChain>>;
  /** The target version's catalog. */
  target: Catalog;
  /** Tables with named keys, in load order (parents first). */
  tables: string[];
  /** Per table, the keys the last verify named. */
  repair: Record<string, RepairKeys>;
}

/** A table's named keys and the source rows found for them, in temp tables. */
interface StagedRepair {
  ct: CompiledTable;
  r: TableRepairReport;
  stage: string;
  keys: string;
}

/** Re-copies the keys the last verify named, in one transaction; see the file's comment. */
export async function repair(opts: RepairOptions): Promise<RepairReport> {
  const started = Date.now();
  const app = `bluegreen repair ${opts.from.name}->${opts.to.name}`.slice(0, 63);
  return withPair({ from: opts.from, to: opts.to, app, distinct: true }, async ({ src, dst }) => {
    const plan = await planRepair(src, dst, opts, started);
    if ('clean' in plan) return plan;
    await repairInTransaction(src, dst, plan, opts, started);
    plan.report.ms = Date.now() - started;
    return plan.report;
  });
}

/**
 * The refusals and the keys: the last full verify of this pair, at these versions, with
 * every difference recorded. A clean verify returns the (empty) report itself.
 */
async function planRepair(src: pg.Client, dst: pg.Client, opts: RepairOptions, started: number): Promise<RepairPlan | RepairReport> {
  // What sync refuses, repair refuses: it writes the same target from the same source (from
  // a side frozen by a cutover it would overwrite the new side's writes with old rows).
  await refuseUnsafeSync(src, dst, { from: opts.from, to: opts.to, kind: 'sync', force: opts.force });
  const catalogs = new VersionCatalogs(opts.mappingsDir, dst);
  const fromVersion = await version(src, catalogs, opts.from.name, opts.from.version);
  const toVersion = await version(dst, catalogs, opts.to.name, opts.to.version);
  const all = Object.fromEntries(await catalogs.all());
  const chain = await compileChain(opts.mappingsDir, fromVersion, toVersion, all);
  await ensureStateSchema(dst);
  const last = (
    await dst.query<{ at: string; clean: boolean; from_version: number; to_version: number; repair: Record<string, RepairKeys> | null }>(
      `select at::text as at, clean, (report->>'fromVersion')::int as from_version, (report->>'toVersion')::int as to_version, report->'repair' as repair
         from bluegreen.verifies where source = $1 and coalesce(report->>'mode', 'full') in ('full', 'partial') order by id desc limit 1`,
      [opts.from.name],
    )
  ).rows[0];
  const report: RepairReport = {
    from: opts.from.name,
    to: opts.to.name,
    fromVersion,
    toVersion,
    verifiedAt: last?.at ?? null,
    tables: [],
    check: { clean: true, tables: [] },
    clean: true,
    ms: 0,
  };
  const hint = `run bluegreen verify --from ${opts.from.name} --to ${opts.to.name} first (it records the keys), then sync --repair`;
  if (!last) throw new InvalidInputError(`${opts.to.name} has no verify from ${opts.from.name} to repair from`, hint);
  if (last.from_version !== fromVersion || last.to_version !== toVersion) {
    throw new InvalidInputError(`the last verify compared v${last.from_version} -> v${last.to_version}, the databases are now v${fromVersion} -> v${toVersion}`, hint);
  }
  if (last.clean) {
    report.ms = Date.now() - started;
    return report;
  }
  if (!last.repair) throw new InvalidInputError(`the last verify (${last.at}) recorded no keys to repair`, hint);
  for (const [table, keys] of Object.entries(last.repair)) {
    if (keys.truncated) {
      throw new InvalidInputError(`the last verify found more differences in ${table} than it records for repair`, `a full reload is cheaper: bluegreen sync --full --from ${opts.from.name} --to ${opts.to.name}`);
    }
  }
  const tables = loadOrder(all[toVersion]!).filter((t) => chain.tables[t] && last.repair![t]);
  return { report, chain, target: all[toVersion]!, tables, repair: last.repair };
}

/** Stage, delete, upsert and check the named keys, and record the run: one target transaction. */
async function repairInTransaction(src: pg.Client, dst: pg.Client, plan: RepairPlan, opts: RepairOptions, started: number): Promise<void> {
  const { report, tables } = plan;
  await src.query('begin isolation level repeatable read read only');
  await dst.query('begin');
  try {
    await dst.query(`set local lock_timeout = ${literal(opts.lockTimeout ?? '30s')}`);
    await assertFreezeHeld(dst, opts.to.name, { lock: true }); // held until commit: the seal renewed below absorbs nothing
    await setUserTriggers(dst, tables, false);
    const staged: StagedRepair[] = [];
    for (const [i, name] of tables.entries()) {
      const s = await stageRepair(src, dst, plan, name, i);
      staged.push(s);
      report.tables.push(s.r);
    }
    // Children first for deletes, parents first for upserts (as sync does).
    for (const { ct, r, stage, keys } of [...staged].reverse()) {
      const on = (a: string, b: string) => ct.key.map((c) => `${a}.${ident(c)} = ${b}.${ident(c)}`).join(' and ');
      const del = await dst.query(
        `delete from ${ident(ct.table)} t using ${keys} k where ${on('t', 'k')} and not exists (select 1 from ${stage} s where ${on('s', 't')})`,
      );
      r.deleted = del.rowCount ?? 0;
    }
    for (const { ct, r, stage } of staged) {
      const applied = await upsertOrRebuild(dst, ct, stage, opts.logger);
      r.inserted = applied.inserted;
      r.updated = applied.updated;
    }
    await setUserTriggers(dst, tables, true);
    report.check = await checkChanged(dst, staged.map(({ ct, stage }) => ({ ct, stage, whole: false })), opts.logger);
    report.clean = report.check.clean;
    report.ms = Date.now() - started;
    await dst.query(`insert into bluegreen.verifies (source, clean, report) values ($1, $2, $3)`, [
      opts.from.name,
      report.clean,
      JSON.stringify({ mode: 'repair', ...report }),
    ]);
    await recordRun(dst, {
      kind: 'sync',
      source: opts.from.name,
      fromVersion: report.fromVersion,
      toVersion: report.toVersion,
      startedAt: new Date(started),
      status: 'ok',
      rows: report.tables.reduce((a, t) => a + t.inserted + t.updated + t.deleted, 0),
      detail: { mode: 'repair', tables: report.tables },
    });
    await sealFreeze(dst); // our own writes into a frozen target are not tampering
    await dst.query('commit');
  } catch (err) {
    await dst.query('rollback').catch(() => {});
    throw err;
  } finally {
    await src.query('commit').catch(() => {});
  }
}

/** One table's named keys into a temp table, and the source's current rows for them into a stage. */
async function stageRepair(src: pg.Client, dst: pg.Client, plan: RepairPlan, name: string, i: number): Promise<StagedRepair> {
  const ct = plan.chain.tables[name]!;
  const k = plan.repair[name]!;
  const named = [...new Set([...k.missing, ...k.extra, ...k.changed])];
  const keys = `bg_repair_keys_${i}`;
  const stage = `bg_repair_stage_${i}`;
  // The named keys, typed: a key's text is the row literal of the key columns.
  await dst.query(`create temp table ${keys} on commit drop as select ${ct.key.map(ident).join(', ')} from ${ident(name)} with no data`);
  await dst.query(`insert into ${keys} select (k::${keys}).* from unnest($1::text[]) k`, [named]);
  await dst.query(`create temp table ${stage} on commit drop as select ${ct.columns.map(ident).join(', ')} from ${ident(name)} with no data`);
  const r: TableRepairReport = { table: name, keys: named.length, copied: 0, inserted: 0, updated: 0, deleted: 0 };
  r.copied = await pipeCopy(src, dst, selectByKeys(ct, await keyRows(dst, ct, keys), plan.target.tables[name]!.columns), stage, ct.columns);
  await dst.query(`analyze ${keys}; analyze ${stage}`);
  return { ct, r, stage, keys };
}

/** The keys in the target's temp table `keys`, each column as text (exact for every type). */
async function keyRows(dst: pg.Client, ct: CompiledTable, keys: string): Promise<string[][]> {
  const r = await dst.query({ text: `select ${ct.key.map((k) => `${ident(k)}::text`).join(', ')} from ${keys}`, rowMode: 'array' });
  return r.rows as string[][];
}

/**
 * The mapping's SELECT restricted to `rows` (target key values as text), typed by the
 * target's key column types. A VALUES list, whose length the planner knows: a few keys
 * are probed through the source's key index, many are hashed. Exported so a test can
 * EXPLAIN it.
 */
export function selectByKeys(ct: CompiledTable, rows: string[][], columns: { name: string; type: string }[]): string {
  const types = ct.key.map((k) => columns.find((c) => c.name === k)!.type);
  const select = `select q.* from (${ct.selectSql((t) => ident(t))}) q`;
  if (rows.length === 0) return `${select} where false`;
  const values = rows.map((r) => `(${r.map((v, i) => `${literal(v)}::${types[i]}`).join(', ')})`).join(', ');
  return `${select} where (${ct.key.map((k) => `q.${ident(k)}`).join(', ')}) in (values ${values})`;
}
