/**
 * Applying staged rows to a target table, shared by sync and incremental import: only
 * rows that really differ are written, updates before inserts, and a swap of unique
 * values falls back to rebuilding the table's indexes, all inside the caller's
 * transaction.
 */
import type pg from 'pg';
import { ident } from './connect.ts';
import { deferrableDdl, rebuildDeferred } from './bulk.ts';
import { silentLogger, type Logger } from '../log.ts';
import { timedPhase } from '../progress.ts';
import { applyAppend, applyFullReload } from './multiset.ts';
import { probeByKey, withKeyProbes } from './key-probes.ts';
import { TableError } from '../errors.ts';
import { cut } from '../text.ts';
import { isApplyRowFailure, locateApplyFailure } from './apply-locate.ts';

/** What applying needs to know of a target table. */
export interface ApplyTable {
  /** Target table. */
  table: string;
  /** Key columns ([] for a keyless table reloaded whole). */
  key: string[];
  /** Columns the stage holds, in order. */
  columns: string[];
  /** `append`: keyless and insert-only (src/db/multiset.ts); otherwise by key, or a keyless full reload. */
  reload?: 'full' | 'incremental' | 'append';
  /** Append tables read incrementally: the target column their watermark is carried to. */
  lookup?: string;
  /** Columns an op writes, with where the op is: what a row the target refuses names (src/db/apply-locate.ts). */
  converted?: Record<string, string>;
  /** Source columns each target column comes from (index into `sources`). */
  origins?: Record<string, readonly { source: number; column: string }[]>;
  /** Source tables, for naming a carried column's origin. */
  sources?: readonly { table: string }[];
}

/**
 * Applies staged rows: UPDATE the rows that really differ (compared as text, which works
 * for every type, json included, so a repeated sync writes nothing), then INSERT the new
 * ones. Updates first: a unique value another row gave up is free before a new row takes
 * it. (Two existing rows swapping unique values within one run still violate a
 * non-deferrable unique constraint; the run then fails whole and says so.)
 */
export async function upsert(dst: pg.Client, ct: ApplyTable, stage: string, logger: Logger = silentLogger): Promise<Applied> {
  const cols = ct.columns.map(ident).join(', ');
  // Keyless tables are compared as multisets: append tables only ever get inserts, full
  // reloads write only the difference (nothing when the table did not change).
  if (ct.reload === 'append') return timedPhase(logger, ct.table, 'apply', { step: 'append' }, () => applyAppend(dst, ct, stage), appliedCounts);
  if (ct.key.length === 0) return timedPhase(logger, ct.table, 'apply', { step: 'reload' }, () => applyFullReload(dst, ct, stage), appliedCounts);
  const on = ct.key.map((k) => `t.${ident(k)} = s.${ident(k)}`).join(' and ');
  const nonKey = ct.columns.filter((c) => !ct.key.includes(c));
  // A few changed rows next to a large table: probe its key, never scan it (src/db/key-probes.ts).
  const staged = Number((await dst.query<{ n: string }>(`select count(*) as n from ${stage}`)).rows[0]!.n);
  // Each statement applies every staged row at once: its progress is a timer over the rows staged.
  return withKeyProbes(dst, await probeByKey(dst, ct.table, staged), () => timedPhase(logger, ct.table, 'apply', { step: 'update', rows: staged }, async (clock) => {
    let updated = 0;
    if (nonKey.length) {
      const u = await dst.query(
        `update ${ident(ct.table)} t set ${nonKey.map((c) => `${ident(c)} = s.${ident(c)}`).join(', ')}
           from ${stage} s
          where ${on}
            and row(${nonKey.map((c) => `t.${ident(c)}`).join(', ')})::text is distinct from row(${nonKey.map((c) => `s.${ident(c)}`).join(', ')})::text`,
      );
      updated = u.rowCount ?? 0;
    }
    clock.step('insert');
    const i = await dst.query(
      // OVERRIDING SYSTEM VALUE: a GENERATED ALWAYS identity keeps the source's key.
      `insert into ${ident(ct.table)} (${cols}) overriding system value
       select ${ct.columns.map((c) => `s.${ident(c)}`).join(', ')} from ${stage} s
        where not exists (select 1 from ${ident(ct.table)} t where ${on})`,
    );
    return { inserted: i.rowCount ?? 0, updated };
  }, appliedCounts));
}

/** What applying a table's stage did. */
export interface Applied {
  inserted: number;
  updated: number;
  /** Rows a keyless full reload removed. */
  deleted?: number;
}

const appliedCounts = (r: Applied) => ({ updated: r.updated, inserted: r.inserted, ...(r.deleted ? { deleted: r.deleted } : {}) });

/**
 * upsert, and when two rows swapped unique values since the last run (a non-deferrable
 * unique constraint fails row by row even though the end state is valid): roll back to a
 * savepoint, drop the table's keys and indexes, apply, and rebuild them, which checks
 * uniqueness once against the final rows. Still one transaction; rare, so the rebuild
 * cost is acceptable.
 */
export async function upsertOrRebuild(dst: pg.Client, ct: ApplyTable, stage: string, logger: Logger): Promise<Applied> {
  await dst.query('savepoint bg_upsert');
  try {
    const r = await upsert(dst, ct, stage, logger);
    await dst.query('release savepoint bg_upsert');
    return r;
  } catch (err) {
    if ((err as { code?: string }).code !== '23505') throw await applyFailure(dst, ct, stage, err);
    await dst.query('rollback to savepoint bg_upsert');
    logger.warn(`${ct.table}: rows swapped unique values since the last run; applying with its indexes rebuilt`, {
      table: ct.table,
      constraint: (err as { constraint?: string }).constraint,
    });
    const ddl = await deferrableDdl(dst, [ct.table]);
    for (const stmt of ddl.drop) await dst.query(stmt);
    try {
      const r = await upsert(dst, ct, stage, logger);
      await rebuildDeferred(dst, ddl.create, logger);
      return r;
    } catch (e) {
      throw await applyFailure(dst, ct, stage, e);
    }
  }
}

/**
 * What an apply failure is reported as: a missing partition, or a row the target's
 * constraints refuse (NOT NULL, CHECK, foreign key: the stage has none of them) located in
 * the stage after a rollback to the apply's savepoint. Anything else as it is.
 */
async function applyFailure(dst: pg.Client, ct: ApplyTable, stage: string, err: unknown): Promise<unknown> {
  const partition = missingPartition(ct.table, err);
  if (partition) return partition;
  if (!isApplyRowFailure(err)) return err;
  try {
    await dst.query('rollback to savepoint bg_upsert');
  } catch {
    return err; // the session is gone: PostgreSQL's message is all there is
  }
  return locateApplyFailure(dst, ct, stage, err, 'bg_upsert');
}

/**
 * A row no partition of the target table takes (PostgreSQL's routing failure, 23514):
 * typically a partition the source gained after the first sync. Partitions are not part
 * of a version (detection and schema.sql's parents ignore them), so the target keeps the
 * ones it was created with; the rows of a new one are the parent's data all the same, and
 * the target needs the same partition before they can land. Returns the one-line error
 * naming the table and the row's partition key, or undefined for any other failure.
 */
export function missingPartition(table: string, err: unknown): MissingPartitionError | undefined {
  const e = err as { code?: string; message?: string; detail?: string } | undefined;
  const m = e?.code === '23514' ? /^no partition of relation "((?:[^"]|"")+)" found for row/.exec(e.message ?? '') : null;
  if (!m) return undefined;
  const rel = m[1]!.replaceAll('""', '"');
  const row = /^Partition key of the failing row contains (.*)\.$/s.exec(e!.detail ?? '')?.[1];
  return new MissingPartitionError(
    table,
    `no partition of ${rel === table ? 'it' : rel} on the target takes the row with ${row ? cut(row) : 'its partition key'}`,
    `a partition added on the source after the first sync holds rows of ${table}: create it on the target with the source's bounds (CREATE TABLE <name> PARTITION OF ${rel} FOR VALUES ...), then rerun; nothing was committed`,
  );
}

/** A row the target's partitions do not take (see missingPartition); the hint says what to create. */
export class MissingPartitionError extends TableError {}
