/**
 * What keeps a cutover's freeze short, whatever the database's size:
 *
 * - Whole-database verification happens BEFORE the freeze, while the source still serves:
 *   a cutover wants a clean full verify newer than the last sync. When the last one is
 *   older (cron's incremental runs check only what they read), it runs a sync with a full
 *   verify first, compared against exactly the snapshot that sync read (a verify of a live
 *   source between syncs would flag every write since the last run). The frozen part then
 *   checks only what the final sync read (the `changed` check, src/sync/check.ts).
 * - The reverse direction's watermarks are seeded at cutover, so the first rollback sync
 *   (target -> source) reads only what was written on the target since, not everything.
 */
import type pg from 'pg';
import { connect, ident } from '../db/connect.ts';
import type { Catalog } from '../db/catalog.ts';
import { ensureStateSchema } from '../db/state.ts';
import { compileChain } from '../mapping/index.ts';
import type { Logger } from '../log.ts';
import { readHorizon } from '../sync/horizon.ts';
import { nextLowerBound, planWatermarks, type SourcePlan } from '../sync/watermark.ts';

/** The last clean full verify and the last sync of `source` into the target `dst`. */
export async function lastFullVerify(dst: pg.Client, source: string): Promise<{ fresh: boolean; detail: string }> {
  if (!(await dst.query(`select to_regclass('bluegreen.verifies') is not null and to_regclass('bluegreen.runs') is not null as ok`)).rows[0].ok) {
    return { fresh: false, detail: 'never verified' };
  }
  // `changed` (a sync's own check) and `repair` records cover only some rows.
  const r = await dst.query<{ verified: string | null; clean: boolean | null; synced: string | null; fresh: boolean }>(
    `with v as (select at, clean from bluegreen.verifies
                 where source = $1 and coalesce(report->>'mode', 'full') = 'full' order by id desc limit 1),
          s as (select max(finished_at) as at from bluegreen.runs where source = $1 and status = 'ok' and kind in ('sync', 'cutover'))
     select (select at::text from v) as verified, (select clean from v) as clean, (select at::text from s) as synced,
            coalesce((select clean from v) and (select at from v) >= coalesce((select at from s), '-infinity'), false) as fresh`,
    [source],
  );
  const x = r.rows[0]!;
  const detail = !x.verified
    ? 'no full verify yet'
    : `last full verify ${x.clean ? 'clean' : 'found DIFFERENCES'} at ${x.verified}${x.synced && !x.fresh && x.clean ? `, older than the last sync (${x.synced})` : ''}`;
  return { fresh: x.fresh, detail };
}

/**
 * Reads the target's horizon from a fresh session (pg_stat_activity is sampled once per
 * transaction): the oldest start of an open transaction there, or now. Read just before
 * the target becomes writable, every application write on it afterwards carries a
 * watermark at least this (its transaction started after, or was open and counted).
 */
export async function targetHorizon(url: string, label: string, logger: Logger): Promise<string> {
  const c = await connect(url, { label, applicationName: 'bluegreen cutover-horizon' });
  try {
    return (await readHorizon(c, label, logger)).value;
  } finally {
    await c.end().catch(() => {});
  }
}

export interface ReverseSeed {
  /** Version on the cutover's target (the reverse source) and on its source. */
  fromVersion: number;
  toVersion: number;
  mappingsDir: string;
  catalogs: Record<number, Catalog>;
  /** Horizon read on the cutover's target just before it became writable (timestamptz text). */
  horizon: string;
}

/** One watermark of the reverse direction, as `bluegreen.watermarks` stores it. */
export interface ReverseWatermark {
  table: string;
  column: string;
  value: string;
}

/**
 * The reverse direction's watermarks (target -> source) a cutover leaves on its source,
 * for every kind of watermark the reverse mapping declares, in the form the next sync
 * stores it (src/sync/watermark.ts): `timestamptz`, local times and dates in their zone
 * (append tables too) bounded by the horizon read just before the target became writable,
 * minus the declared skew; integers by their current max(), read in the final sync's
 * transaction on the target (`client`), which no writer but that sync has touched: every
 * row written on the target afterwards gets an id past it (its sequences were moved past
 * every imported value in the same transaction). A table whose watermark no rule bounds is
 * left out: the first rollback sync reads it whole. Computed before the target commits,
 * so the target's commit record carries them and whoever completes the cutover writes
 * the same.
 */
export async function reverseWatermarks(client: pg.Client, seed: ReverseSeed): Promise<ReverseWatermark[]> {
  const chain = await compileChain(seed.mappingsDir, seed.fromVersion, seed.toVersion, seed.catalogs);
  const out: ReverseWatermark[] = [];
  const seen = new Set<string>();
  for (const ct of Object.values(chain.tables)) {
    // One table at a time: a watermark no rule bounds leaves out that table only.
    const plans = await planWatermarks(client, [ct], seed.catalogs[seed.fromVersion]!, new Map(), { zoneCheck: false }).catch(() => undefined);
    for (const p of plans?.values() ?? []) {
      if (!p || seen.has(p.table)) continue;
      seen.add(p.table);
      out.push(...(await seedOne(client, p, seed.horizon)));
    }
  }
  return out;
}

/** One table's seed, in the form the next sync stores it; none when the table is empty (integer). */
async function seedOne(client: pg.Client, p: SourcePlan, horizon: string): Promise<ReverseWatermark[]> {
  const value =
    p.kind === 'integer'
      ? (await client.query<{ v: string | null }>(`select max(${ident(p.column)})::text as v from ${ident(p.table)}`)).rows[0]!.v
      : await nextLowerBound(client, p, horizon);
  return value === null ? [] : [{ table: p.table, column: p.column, value }];
}

/** Writes `marks` as the watermarks of `source` on `client`, in the caller's transaction. */
export async function writeReverseWatermarks(client: pg.Client, source: string, marks: ReverseWatermark[]): Promise<Record<string, string>> {
  await ensureStateSchema(client);
  for (const m of marks) {
    await client.query(
      `insert into bluegreen.watermarks (source, table_name, column_name, value) values ($1, $2, $3, $4)
       on conflict (source, table_name) do update set column_name = excluded.column_name, value = excluded.value, updated_at = clock_timestamp()`,
      [source, m.table, m.column, m.value],
    );
  }
  return Object.fromEntries(marks.map((m) => [m.table, m.value]));
}
