/**
 * The `changed` check after a sync, inside its transaction: every row the run read from
 * the source snapshot is now on the target exactly. Its cost follows what the run read,
 * never the product of two table sizes:
 *
 * - Keyed tables: the stage is joined to the target ON THE KEY (a hash or index join):
 *   linear in the rows read. A row-by-row `not exists` without a key (what this replaced)
 *   was a nested loop over the whole target for every staged row: 20k rows took 166 s.
 * - Keyless tables (a full reload, or an append-only table): compared as multisets, both
 *   sides grouped by a 64-bit hash of the row's text with a count per hash, then the two
 *   groupings joined on the hash: linear in the rows on both sides.
 *
 * Row counts: a table read whole (full mode) is counted on both sides, which costs what the
 * read already cost. An incremental table is not counted (a `count(*)` is a scan of the
 * whole table); its counts come for free from the key-bucket reconciliation of deletes when
 * that ran (src/sync/deletes.ts), and are left out (null) when captured deletes made it
 * unnecessary, the periodic reconciliation (`sync --reconcile`) then being the check.
 */
import type pg from 'pg';
import { ident } from '../db/connect.ts';
import { probeByKey, withKeyProbes } from '../db/key-probes.ts';
import { estimatedRows } from '../db/catalog.ts';
import { silentLogger, type Logger } from '../log.ts';
import { timedPhase } from '../progress.ts';

/** What the check needs of a target table. */
export interface CheckedTable {
  /** Target table. */
  table: string;
  /** Columns the stage holds, in order. */
  columns: string[];
  /** Key columns; [] for a keyless table. */
  key: string[];
}

/** One staged table as the check sees it. */
export interface StagedForCheck {
  ct: CheckedTable;
  /** Temporary table holding what this run read (projected to the target). */
  stage: string;
  /** `whole`: the stage holds the entire source table (full mode); else only changed rows. */
  whole: boolean;
  /** Rows the stage holds, when known (the progress shows them). */
  rows?: number;
  /** Row counts known without a scan (from delete reconciliation), when they are. */
  counts?: { sourceRows: number; targetRows: number };
  /**
   * Keyless append table read incrementally: a target column (its watermark, indexed)
   * that finds a staged row's twins, so the target side is the rows sharing a staged
   * value of it rather than the whole table.
   */
  lookup?: string;
}

/** Result of the `changed` verification of a run. */
export interface ChangedCheck {
  clean: boolean;
  tables: {
    table: string;
    /** Rows read by this run and checked on the target. */
    checked: number;
    /** Of those, rows not on the target exactly (for a keyless table: rows missing from the multiset). */
    mismatched: number;
    /** Rows on the projected source, when known (see the module comment); null when not counted. */
    sourceRows: number | null;
    /** Rows on the target, when known; null when not counted. */
    targetRows: number | null;
    /** How the table was compared. */
    method: 'key join' | 'multiset';
  }[];
}

const rowText = (alias: string, columns: string[]) => `row(${columns.map((c) => `${alias}.${ident(c)}`).join(', ')})::text`;

/**
 * The check's one query for a table: `checked`, `mismatched` and, for a whole stage,
 * `source_rows` and `target_rows`. Exported so a test can EXPLAIN it.
 */
export function checkSql(s: StagedForCheck): string {
  const { ct, stage } = s;
  const target = ident(ct.table);
  if (ct.key.length > 0) {
    const on = ct.key.map((k) => `t.${ident(k)} = s.${ident(k)}`).join(' and ');
    // Keys are never NULL, so a NULL first key column on the right is a missing row.
    const miss = `t.${ident(ct.key[0]!)} is null or ${rowText('t', ct.columns)} <> ${rowText('s', ct.columns)}`;
    const counts = s.whole ? `, count(*)::bigint as source_rows, (select count(*) from ${target})::bigint as target_rows` : '';
    return `select count(*)::bigint as checked, count(*) filter (where ${miss})::bigint as mismatched${counts}
              from ${stage} s left join ${target} t on ${on}`;
  }
  const groups = (rel: string) => `select hashtextextended(${rowText('x', ct.columns)}, 0) as h, count(*) as n from ${rel} x group by 1`;
  if (s.whole) {
    // Equal multisets: every hash occurs as often on both sides.
    return `select coalesce(sum(s.n), 0)::bigint as checked,
                   coalesce(sum(greatest(coalesce(s.n, 0) - coalesce(t.n, 0), 0)), 0)::bigint as mismatched,
                   coalesce(sum(s.n), 0)::bigint as source_rows, coalesce(sum(t.n), 0)::bigint as target_rows,
                   coalesce(sum(abs(coalesce(s.n, 0) - coalesce(t.n, 0))), 0)::bigint as differing
              from (${groups(stage)}) s full join (${groups(target)}) t on t.h = s.h`;
  }
  // Only new rows staged (append-only): each staged row occurs on the target at least as
  // often. With a lookup column only the target rows sharing a staged value are hashed.
  const candidates = s.lookup
    ? `(select * from ${target} y where y.${ident(s.lookup)} in (select z.${ident(s.lookup)} from ${stage} z))`
    : target;
  return `select coalesce(sum(s.n), 0)::bigint as checked,
                 coalesce(sum(greatest(s.n - coalesce(t.n, 0), 0)), 0)::bigint as mismatched
            from (${groups(stage)}) s left join (${groups(candidates)}) t on t.h = s.h`;
}

/** Runs the check on the target, in the caller's (the run's) transaction. */
export async function checkChanged(dst: pg.Client, staged: StagedForCheck[], logger: Logger = silentLogger): Promise<ChangedCheck> {
  const out: ChangedCheck = { clean: true, tables: [] };
  for (const s of staged) {
    const { table: t, differing } = await timedPhase(logger, s.ct.table, 'check', { rows: s.rows }, () => checkTable(dst, s), ({ table: t }) => ({ checked: t.checked, mismatched: t.mismatched }));
    if (t.mismatched > 0 || differing > 0 || t.sourceRows !== t.targetRows) out.clean = false;
    out.tables.push(t);
  }
  return out;
}

/** One table's check query (checkSql), after the statistics it needs; `differing`: multiset rows off either way. */
async function checkTable(dst: pg.Client, s: StagedForCheck): Promise<{ table: ChangedCheck['tables'][number]; differing: number }> {
  // A fresh temp table has no statistics: without them a small stage may be joined by
  // scanning the whole target instead of probing its key index.
  await dst.query(`analyze ${s.stage}`);
  // Even with statistics, a stage of 1% of a large table is hash-joined to a scan of the
  // whole table unless told otherwise (src/db/key-probes.ts): keyed checks probe the key.
  const probe = s.ct.key.length > 0 && !s.whole && (await probeByKey(dst, s.ct.table, await estimatedRows(dst, s.stage)));
  const r = (
    await withKeyProbes(dst, probe, () =>
      dst.query<{ checked: string; mismatched: string; source_rows?: string; target_rows?: string; differing?: string }>(checkSql(s)),
    )
  ).rows[0]!;
  const sourceRows = r.source_rows !== undefined ? Number(r.source_rows) : (s.counts?.sourceRows ?? null);
  const targetRows = r.target_rows !== undefined ? Number(r.target_rows) : (s.counts?.targetRows ?? null);
  const table = {
    table: s.ct.table,
    checked: Number(r.checked),
    mismatched: Number(r.mismatched),
    sourceRows,
    targetRows,
    method: (s.ct.key.length ? 'key join' : 'multiset') as 'key join' | 'multiset',
  };
  return { table, differing: Number(r.differing ?? 0) };
}
