/**
 * Plans that follow the change. An incremental run joins a small stage (the rows it read)
 * to a large target table on the key, to update, insert or check them. PostgreSQL prices
 * a random index probe at four sequential page reads, so once a stage holds more than
 * about half a percent of a table it prefers to read the WHOLE table and hash-join it:
 * at 5M users with 1% changed (50k rows), the update and the check each scanned all 5M
 * rows (8.4 s for the update) where 50k probes of the primary key took 2.6 s. On a
 * database larger than memory the gap is the difference between reading what changed
 * and reading the table.
 *
 * So while a stage is small next to its table, the statements that join them run with
 * hash and merge joins off (a nested loop over the stage probing the key index) and JIT
 * off (probing rows one at a time gains nothing from compiling). Beyond the threshold the
 * planner chooses as usual: a run that read a large part of a table is a reload, and a
 * scan is then the right plan.
 */
import type pg from 'pg';
import { ident } from './connect.ts';
import { estimatedRows } from './catalog.ts';

/** Stages up to this share of their table's estimated rows are joined by key probes. */
export const KEY_PROBE_SHARE = 0.05;

/**
 * True when `stageRows` is small enough next to `table` (pg_class.reltuples) that joins
 * between them should probe the table's key rather than scan it.
 */
export async function probeByKey(client: pg.Client, table: string, stageRows: number): Promise<boolean> {
  const tableRows = await estimatedRows(client, ident(table));
  return tableRows > 0 && stageRows <= tableRows * KEY_PROBE_SHARE;
}

/**
 * Runs `fn` with hash joins, merge joins and JIT off for the caller's transaction when
 * `probe` is true, and restores the previous settings after (also on failure, unless
 * the transaction is aborted, when its rollback restores them).
 */
export async function withKeyProbes<T>(client: pg.Client, probe: boolean, fn: () => Promise<T>): Promise<T> {
  if (!probe) return fn();
  const names = ['enable_hashjoin', 'enable_mergejoin', 'jit'];
  const before = (
    await client.query<{ v: string[] }>(`select array[${names.map((n) => `current_setting('${n}')`).join(', ')}] as v`)
  ).rows[0]!.v;
  const set = (values: string[]) => client.query(`select ${names.map((n, i) => `set_config('${n}', $${i + 1}, true)`).join(', ')}`, values);
  await set(names.map(() => 'off'));
  try {
    return await fn();
  } finally {
    await set(before).catch(() => {});
  }
}
