/**
 * Partitions the source gained after the first sync, created on the target in the run's
 * transaction. Partitions are not part of a version (schema.sql creates the parents and
 * the first partitions; a DBA or a cron job adds a partition a month), so a monthly
 * partition on blue would otherwise stop every sync until someone created it on green by
 * hand. A routine partition should not fail a cron sync, so the run creates it, when
 * the target's partitioning mirrors the source's:
 *
 * - one source table, both sides partitioned with the same strategy (range, list or
 *   hash) over plain columns, each target partition column produced from the source's
 *   partition column at the same position (carried, renamed or cast);
 * - range and list bounds are converted through the mapping itself (its SQL face run on
 *   the source over a row holding the bound), so a `timestamp` bound on blue becomes the
 *   same instant as a `timestamptz` bound on green; hash bounds (modulus, remainder) are
 *   copied only when the column's type is the same on both sides (the hash depends on it);
 * - a source partition that is itself partitioned is left alone: a row of it then meets
 *   the one-line refusal of src/db/apply.ts (table and the row's partition key, nothing
 *   committed), whose hint gives the CREATE TABLE statement to run (`manual`).
 *
 * A partition whose bounds the target already covers (the same partition, or a coarser
 * one: yearly on green, monthly on blue) is not created: the CREATE fails on the overlap
 * inside a savepoint and the target's own partitioning stands. The new partition gets the
 * source partition's name (its table prefix replaced when the mapping renames the table),
 * and every index, key and foreign key of its parent, as PostgreSQL gives any partition.
 * CREATE TABLE ... PARTITION OF locks the parent until the run commits; the target is not
 * the side the application writes to while it is synced.
 */
import type pg from 'pg';
import { ident, literal } from '../db/connect.ts';
import type { Logger } from '../log.ts';
import type { CompiledTable } from '../mapping/compile.ts';
import { MissingPartitionError } from '../db/apply.ts';

/** What mirroring did: partitions created, and the DDL of those it could not create, by target table. */
export interface MirrorResult {
  created: PartitionCreated[];
  /**
   * For a table whose partitioning mirrors the source's: the statements that would create
   * the source partitions the run could not (a partition partitioned itself, a bound the
   * mapping does not convert). A row of theirs is refused with these in the hint.
   */
  manual: Record<string, string[]>;
}

/** A partition the run created on the target. */
export interface PartitionCreated {
  /** Target table (the partitioned parent). */
  table: string;
  /** The new partition. */
  partition: string;
  /** Its bounds, as given to CREATE TABLE ... PARTITION OF. */
  bounds: string;
  /** The source partition it mirrors. */
  from: string;
}

interface Partitioning {
  strategy: string;
  columns: (string | null)[];
  types: string[];
  /** Direct partitions: name, bound expression, its own partition key when it is partitioned itself. */
  parts: { name: string; bound: string; sub: string | null }[];
}

async function partitioning(client: pg.Client, table: string): Promise<Partitioning | undefined> {
  const r = await client.query<{ strategy: string; columns: (string | null)[]; types: string[] }>(
    `select p.partstrat::text as strategy,
            array(select a.attname::text from unnest(p.partattrs::int2[]) with ordinality k(attnum, ord)
                  left join pg_attribute a on a.attrelid = p.partrelid and a.attnum = k.attnum order by k.ord) as columns,
            array(select format_type(a.atttypid, a.atttypmod) from unnest(p.partattrs::int2[]) with ordinality k(attnum, ord)
                  left join pg_attribute a on a.attrelid = p.partrelid and a.attnum = k.attnum order by k.ord) as types
       from pg_partitioned_table p where p.partrelid = to_regclass($1)`,
    [ident(table)],
  );
  const p = r.rows[0];
  if (!p) return undefined;
  const parts = await client.query<{ name: string; bound: string; sub: string | null }>(
    `select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound, case when c.relkind = 'p' then pg_get_partkeydef(c.oid) end as sub
       from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = to_regclass($1) order by c.relname`,
    [ident(table)],
  );
  return { ...p, parts: parts.rows };
}

/** The values of a bound clause in order: quoted literals, numbers, MINVALUE/MAXVALUE, NULL, booleans. */
function boundValues(clause: string): string[] {
  return [...clause.matchAll(/'(?:[^']|'')*'|\b(?:MINVALUE|MAXVALUE|NULL|true|false)\b|-?\d[\w.+-]*/g)].map((m) => m[0]);
}

/** A bound value as text for jsonb (null for NULL), or undefined for MINVALUE/MAXVALUE. */
function valueText(v: string): string | null | undefined {
  if (v === 'MINVALUE' || v === 'MAXVALUE') return undefined;
  if (v === 'NULL') return null;
  return v.startsWith("'") ? v.slice(1, -1).replaceAll("''", "'") : v;
}

/**
 * Converts the source bound values of partition column positions through the mapping: one
 * query on the source per bound, over a row of the source table holding the values.
 * Returns target literals (MINVALUE/MAXVALUE/NULL kept), in order.
 */
async function convertBounds(src: pg.Client, ct: CompiledTable, targetCols: string[], sourceCols: string[], values: string[]): Promise<string[]> {
  const source = ct.sources[0]!.table;
  const out: string[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const text = valueText(v);
    if (text === undefined || text === null) {
      out.push(v);
      continue;
    }
    const k = i % sourceCols.length;
    const row = `(select * from jsonb_populate_record(null::${ident(source)}, ${literal(JSON.stringify({ [sourceCols[k]!]: text }))}::jsonb))`;
    const r = await src.query<{ v: string | null }>(`select q.${ident(targetCols[k]!)}::text as v from (${ct.selectSql((t) => (t === source ? row : ident(t)))}) q`);
    const converted = r.rows[0]?.v;
    out.push(converted === null || converted === undefined ? 'NULL' : literal(converted));
  }
  return out;
}

/** The target's bound clause for a source partition's, or undefined when it cannot be mirrored. */
async function targetBound(src: pg.Client, ct: CompiledTable, s: Partitioning, t: Partitioning, bound: string): Promise<string | undefined> {
  if (bound === 'DEFAULT') return 'DEFAULT';
  const cols = t.columns as string[];
  const srcCols = s.columns as string[];
  if (s.strategy === 'h') return t.types.every((ty, i) => ty === s.types[i]) ? bound : undefined;
  const range = /^FOR VALUES FROM \((.*)\) TO \((.*)\)$/s.exec(bound);
  if (range) {
    const from = await convertBounds(src, ct, cols, srcCols, boundValues(range[1]!));
    const to = await convertBounds(src, ct, cols, srcCols, boundValues(range[2]!));
    return `FOR VALUES FROM (${from.join(', ')}) TO (${to.join(', ')})`;
  }
  const list = /^FOR VALUES IN \((.*)\)$/s.exec(bound);
  if (list) {
    // A list partition's values are of its one column.
    const values = await convertBounds(src, ct, cols, srcCols, boundValues(list[1]!));
    return `FOR VALUES IN (${[...new Set(values)].join(', ')})`;
  }
  return undefined;
}

/** A name as a DBA would type it: quoted only when it must be. */
function shown(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : ident(name);
}

/** targetBound in a savepoint of the source's transaction: a bound the mapping cannot convert is not mirrored. */
async function convertedBound(src: pg.Client, ct: CompiledTable, s: Partitioning, t: Partitioning, bound: string): Promise<string | undefined> {
  await src.query('savepoint bg_bound');
  try {
    const b = await targetBound(src, ct, s, t, bound);
    await src.query('release savepoint bg_bound');
    return b;
  } catch {
    await src.query('rollback to savepoint bg_bound');
    return undefined;
  }
}

/**
 * Whether the target's partitioning of `ct.table` mirrors the source's (see the module
 * comment): the same strategy, plain columns, each target column from the source's
 * partition column at its position.
 */
function mirrors(ct: CompiledTable, s: Partitioning, t: Partitioning): boolean {
  if (ct.sources.length !== 1 || s.strategy !== t.strategy || s.columns.length !== t.columns.length) return false;
  return t.columns.every((c, i) => {
    const from = c === null ? undefined : ct.origins[c];
    return from?.length === 1 && from[0]!.source === 0 && from[0]!.column === s.columns[i] && s.columns[i] !== null;
  });
}

/** What mirroring would do, decided by reading both catalogs (nothing created). */
export interface PartitionPlan {
  /** Partitions to create, in order; one whose bounds the target covers already is skipped at creation. */
  create: PartitionCreated[];
  /** As MirrorResult.manual. */
  manual: Record<string, string[]>;
}

/**
 * The source partitions of the run's tables that the target lacks and can mirror, with
 * their target bounds, and the statements for those it cannot. Reads only (the bounds are
 * converted by SELECTs on the source): `plan` shows it, the run creates it.
 */
export async function planPartitions(src: pg.Client, dst: pg.Client, tables: CompiledTable[]): Promise<PartitionPlan> {
  const create: PartitionCreated[] = [];
  const manual: Record<string, string[]> = {};
  for (const ct of tables) {
    if (ct.sources.length !== 1 || ct.sqlUnsupported.length > 0) continue;
    const source = ct.sources[0]!.table;
    const t = await partitioning(dst, ct.table);
    if (!t) continue;
    const s = await partitioning(src, source);
    if (!s || !mirrors(ct, s, t)) continue;
    const names = new Set(t.parts.map((p) => p.name));
    const bounds = new Set(t.parts.map((p) => p.bound));
    for (const p of s.parts) {
      const name = p.name.startsWith(source) && source !== ct.table ? ct.table + p.name.slice(source.length) : p.name;
      // The same name on both sides: mirrored earlier, or made by the DBA; either way the target's.
      if (names.has(name)) continue;
      const bound = await convertedBound(src, ct, s, t, p.bound);
      if (bound === undefined || p.sub !== null) {
        const ddl = `CREATE TABLE ${shown(name)} PARTITION OF ${shown(ct.table)} ${bound ?? `${p.bound} (the source's bound: convert it to v${ct.toVersion}'s type)`}`;
        (manual[ct.table] ??= []).push(p.sub === null ? ddl : `${ddl} PARTITION BY ${p.sub} (and its partitions, as ${p.name} has them on the source)`);
        continue;
      }
      if (bounds.has(bound)) continue;
      names.add(name);
      bounds.add(bound);
      create.push({ table: ct.table, partition: name, bounds: bound, from: p.name });
    }
  }
  return { create, manual };
}

/**
 * Creates on the target, in the caller's transaction, each partition of the run's source
 * tables that the target lacks and can mirror; returns them (also logged).
 */
export async function mirrorPartitions(src: pg.Client, dst: pg.Client, tables: CompiledTable[], logger: Logger): Promise<MirrorResult> {
  const planned = await planPartitions(src, dst, tables);
  const created: PartitionCreated[] = [];
  for (const c of planned.create) {
    await dst.query('savepoint bg_partition');
    try {
      await dst.query(`create table ${ident(c.partition)} partition of ${ident(c.table)} ${c.bounds}`);
      await dst.query('release savepoint bg_partition');
    } catch (err) {
      await dst.query('rollback to savepoint bg_partition');
      // 42P17: the target has a partition over these bounds already (a coarser one, or a
      // DEFAULT holding such rows); 42P07: the name is taken by another relation.
      const code = (err as { code?: string }).code;
      if (code === '42P17' || code === '42P07' || code === '23514') {
        logger.debug(`${c.table}: not mirroring partition ${c.from} of the source: ${(err as Error).message}`, { table: c.table });
        continue;
      }
      throw err;
    }
    created.push(c);
    logger.info(`${c.table}: creating partition ${c.partition} ${c.bounds} on the target in this run's transaction, as the source has it (${c.from})`, {
      table: c.table,
      partition: c.partition,
    });
  }
  return { created, manual: planned.manual };
}

/**
 * The run's error, with the statements to run in its hint when it is a row no target
 * partition takes and the run knows which source partitions it could not mirror.
 */
export function withPartitionDdl(err: unknown, manual: Record<string, string[]>): unknown {
  if (!(err instanceof MissingPartitionError)) return err;
  const ddl = manual[err.table];
  if (!ddl?.length) return err;
  const message = err.message.replace(/^table [^:]+: /, '');
  return new MissingPartitionError(err.table, message, `create on the target what the source gained, then rerun (nothing was committed): ${ddl.map((d) => `${d};`).join(' ')}`);
}
