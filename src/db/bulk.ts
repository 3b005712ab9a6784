/**
 * Bulk-load fast path (README, Design figures: index maintenance dominates an indexed load; loading
 * into bare tables and building indexes afterwards takes ~0.4x the time). Foreign keys,
 * primary/unique constraints and secondary indexes of the loaded tables are dropped
 * inside the caller's transaction and rebuilt after the data, so the whole thing stays
 * atomic: a failure rolls the drops back with the rows.
 */
import type pg from 'pg';
import { ident } from './connect.ts';
import { silentLogger, type Logger } from '../log.ts';
import { timedPhase } from '../progress.ts';

export interface DeferredDdl {
  /** Statements run before the load. */
  drop: string[];
  /** Statements run after it, in dependency order. */
  create: string[];
}

export async function deferrableDdl(client: pg.Client, tables: string[]): Promise<DeferredDdl> {
  const rel = `array(select to_regclass(quote_ident(t)) from unnest($1::text[]) t)`;
  const fks = await client.query<{ tbl: string; name: string; def: string }>(
    `select conrelid::regclass::text as tbl, conname as name, pg_get_constraintdef(oid) as def
       from pg_constraint where contype = 'f' and (conrelid = any(${rel}) or confrelid = any(${rel}))
        -- Only a constraint of its own (conparentid 0): PostgreSQL clones a partitioned
        -- table's foreign key onto each of its partitions, and one referencing a
        -- partitioned table once per referenced partition (same name, or name_1, _2...);
        -- the clones go with the parent's drop and come back with its add.
        and conparentid = 0
      order by 1, 2`,
    [tables],
  );
  const keys = await client.query<{ tbl: string; name: string; def: string }>(
    `select conrelid::regclass::text as tbl, conname as name, pg_get_constraintdef(oid) as def
       from pg_constraint where contype in ('p', 'u') and conrelid = any(${rel}) and conparentid = 0
      order by contype, 1, 2`,
    [tables],
  );
  const idx = await client.query<{ name: string; def: string }>(
    `select i.indexrelid::regclass::text as name, pg_get_indexdef(i.indexrelid) as def
       from pg_index i
      where i.indrelid = any(${rel})
        and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)
        -- A partition's index attached to its parent's goes with the parent's drop.
        and not exists (select 1 from pg_inherits h where h.inhrelid = i.indexrelid)
      order by 1`,
    [tables],
  );
  return {
    drop: [
      ...fks.rows.map((f) => `alter table ${f.tbl} drop constraint ${ident(f.name)}`),
      ...keys.rows.map((k) => `alter table ${k.tbl} drop constraint ${ident(k.name)}`),
      ...idx.rows.map((i) => `drop index ${i.name}`),
    ],
    create: [
      ...keys.rows.map((k) => `alter table ${k.tbl} add constraint ${ident(k.name)} ${k.def}`),
      // pg_get_indexdef writes a partitioned table's index as CREATE INDEX ... ON ONLY, which
      // builds an invalid index on the parent alone; without ONLY it recurses to every partition.
      ...idx.rows.map((i) => i.def.replace(/^(CREATE (?:UNIQUE )?INDEX (?:"(?:[^"]|"")+"|\S+) ON )ONLY /, '$1')),
      ...fks.rows.map((f) => `alter table ${f.tbl} add constraint ${ident(f.name)} ${f.def}`),
    ],
  };
}

/**
 * Runs a DeferredDdl's `create` statements in order, each a timed `index` phase of its
 * table named after the key, index or foreign key it builds: on a large load one index
 * build can take minutes, and nothing else moves meanwhile.
 */
export async function rebuildDeferred(client: pg.Client, create: string[], logger: Logger = silentLogger): Promise<void> {
  for (const [i, stmt] of create.entries()) {
    const m = /^alter table (\S+) add constraint ("(?:[^"]|"")+"|\S+)/.exec(stmt) ?? /^CREATE (?:UNIQUE )?INDEX ("(?:[^"]|"")+"|\S+) ON (\S+)/.exec(stmt);
    const [table, name] = !m ? ['indexes', ''] : stmt.startsWith('alter') ? [m[1]!, m[2]!] : [m[2]!.replace(/^public\./, ''), m[1]!];
    const bare = (n: string) => n.replace(/^"(.*)"$/, '$1').replaceAll('""', '"'); // names as a person reads them
    await timedPhase(logger, bare(table), 'index', { step: `${bare(name)} (${i + 1}/${create.length})`.trim() }, () => client.query(stmt));
  }
}

/** Turns user triggers off (or back on) for the caller's transaction; FK triggers stay. */
export async function setUserTriggers(client: pg.Client, tables: string[], enabled: boolean): Promise<void> {
  for (const t of tables) await client.query(`alter table ${ident(t)} ${enabled ? 'enable' : 'disable'} trigger user`);
}
