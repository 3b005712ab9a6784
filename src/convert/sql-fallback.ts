/**
 * Offline paths for tables whose mapping chain has an op without a JS face (a zone cast,
 * json -> jsonb, an sql op without a twin): the dump's source tables are staged in
 * temporary tables of a PostgreSQL session at the dump's own version, and the chain's
 * SQL face converts them there, exactly as sync would on a live source.
 *
 * - import: the target's own session, inside the import's transaction (`on commit drop`),
 *   `INSERT INTO target SELECT <SQL face>`;
 * - convert: a scratch schema (the dump version's schema.sql, for its types) on a
 *   reachable server, in a transaction that is rolled back, `COPY (<SQL face>) TO STDOUT`.
 *
 * A row the SQL face refuses is located (table, column, key) before anything is kept.
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Writable, Transform } from 'node:stream';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { Catalog } from '../db/catalog-types.ts';
import { ident } from '../db/connect.ts';
import { DumpError } from '../errors.ts';
import type { CompiledTable } from '../mapping/index.ts';
import { isBuiltinType } from '../mapping/sql.ts';
import { locateRowFailure, type Probe } from './locate.ts';
import { assertQueryKeys } from './preflight.ts';
import type { TablePlan } from './stream.ts';

/** Source tables already staged in this session: source table -> temp table. */
export type Staged = Map<string, string>;

/**
 * Stages the dump files `plan` reads as temp tables with the source version's column
 * types (text for a user-defined type this server does not know).
 */
export async function stageSources(client: pg.Client, plan: TablePlan, source: Catalog, staged: Staged): Promise<void> {
  for (const input of plan.inputs) {
    if (staged.has(input.table)) continue;
    const name = `bg_src_${staged.size}`;
    const s = plan.target.sources.find((x) => x.table === input.table)!;
    const info = source.tables[input.table];
    const cols: string[] = [];
    for (const c of s.columns) {
      let type = info?.columns.find((x) => x.name === c)?.type ?? 'text';
      if (!isBuiltinType(type)) {
        const known = await client.query<{ ok: boolean }>(`select to_regtype($1) is not null as ok`, [type]);
        if (!known.rows[0]!.ok) type = 'text';
      }
      cols.push(`${ident(c)} ${type}`);
    }
    await client.query(`create temp table ${name} (${cols.join(', ')}) on commit drop`);
    const sink = client.query(copyFrom(`COPY ${name} (${input.dumpColumns.map(ident).join(', ')}) FROM STDIN (FORMAT csv, HEADER true)`));
    await pipeline(createReadStream(input.file, { highWaterMark: 256 * 1024 }), sink);
    if (sink.rowCount !== input.rows) throw new DumpError(`${input.file}: ${sink.rowCount} rows, the manifest says ${input.rows}`, 'the dump is inconsistent; export it again');
    await client.query(`analyze ${name}`);
    staged.set(input.table, name);
  }
}

/** A probe that runs each query in its own savepoint (the session is inside a transaction). */
export function savepointProbe(client: pg.Client): Probe {
  return async (sql) => {
    await client.query('savepoint bg_probe');
    try {
      const r = await client.query(sql);
      await client.query('release savepoint bg_probe');
      return r;
    } catch (err) {
      await client.query('rollback to savepoint bg_probe');
      throw err;
    }
  };
}

async function located<T>(client: pg.Client, t: CompiledTable, staged: Staged, run: () => Promise<T>): Promise<T> {
  await client.query('savepoint bg_load');
  try {
    const r = await run();
    await client.query('release savepoint bg_load');
    return r;
  } catch (err) {
    await client.query('rollback to savepoint bg_load');
    throw await locateRowFailure(err, { table: t, rel: (name) => staged.get(name)!, probe: savepointProbe(client) });
  }
}

/** import: converts staged sources into the target table; returns the rows inserted. */
export async function insertThroughSql(client: pg.Client, plan: TablePlan, source: Catalog, target: Catalog, staged: Staged): Promise<number> {
  await stageSources(client, plan, source, staged);
  const t = plan.target;
  const types = new Map(target.tables[t.table]?.columns.map((c) => [c.name, c.type]) ?? []);
  // The SQL face yields text for user-defined types (it is written for the source side);
  // INSERT has no assignment cast from text to them, so name them. Built-in types keep the
  // assignment cast, which refuses (rather than truncates) a too-long value, as COPY does.
  const outputs = t.columns.map((c) => {
    const type = types.get(c);
    return type !== undefined && !isBuiltinType(type) ? `q.${ident(c)}::${type}` : `q.${ident(c)}`;
  });
  return located(client, t, staged, async () => {
    // A query table's key repeated: named here, not as the target key's bare 23505.
    await assertQueryKeys(client, t, (name) => staged.get(name)!);
    const r = await client.query(`insert into ${ident(t.table)} (${t.columns.map(ident).join(', ')}) select ${outputs.join(', ')} from (${t.selectSql((name) => staged.get(name)!)}) q`);
    return r.rowCount ?? 0;
  });
}

/**
 * convert: the converted rows as CSV with a header, in key order (text keys in byte
 * order, as the offline merge join expects), into `into`; returns the rows written.
 */
export async function copyThroughSql(client: pg.Client, plan: TablePlan, source: Catalog, target: Catalog, staged: Staged, into: Writable, through?: Transform): Promise<number> {
  await stageSources(client, plan, source, staged);
  const t = plan.target;
  const types = new Map(target.tables[t.table]?.columns.map((c) => [c.name, c.type]) ?? []);
  const order = t.key.map((k) => (/^(text|character varying|character)\b/.test(types.get(k) ?? '') ? `q.${ident(k)} COLLATE "C"` : `q.${ident(k)}`));
  const sql = `select * from (${t.selectSql((name) => staged.get(name)!)}) q${order.length ? ` order by ${order.join(', ')}` : ''}`;
  // Evaluate once first so a failing row is located before a file is written.
  await located(client, t, staged, async () => {
    await assertQueryKeys(client, t, (name) => staged.get(name)!);
    return client.query(`select count(x) from (${sql}) x`);
  });
  const out = client.query(copyTo(`COPY (${sql}) TO STDOUT (FORMAT csv, HEADER true)`));
  if (through) await pipeline(out, through, into);
  else await pipeline(out, into);
  return out.rowCount;
}
