/**
 * The pre-flight of a sync (and so of a cutover's final sync): before anything is
 * written, every column an op computes is checked, on the source and in the run's
 * snapshot, against the type of its target column: a narrowing cast, a scale, an sql or
 * function op whose value the target would refuse names its table, column and key now,
 * rather than failing the load half-way. PostgreSQL 16+ checks with pg_input_is_valid
 * (what COPY FROM on the target will accept); older servers evaluate the SQL face, which
 * still catches every failure the ops raise themselves (they check lengths, ranges and
 * scales). Columns of a user-defined type are checked by the target's COPY only.
 */
import type pg from 'pg';
import { ident, literal } from '../db/connect.ts';
import type { Catalog } from '../db/catalog-types.ts';
import { RowConversionError, shownKey, type CompiledTable } from '../mapping/index.ts';
import { isBuiltinType } from '../mapping/sql.ts';
import { locateOnFreshSession } from './locate.ts';

const RANK: Record<string, number> = { smallint: 1, integer: 2, bigint: 3, numeric: 4 };

/** A widening whose every source value the target holds (so no scan is spent on it). */
function neverFails(from: string | undefined, to: string): boolean {
  if (to === 'text' || to === 'character varying') return true;
  if (from === undefined) return false;
  if (from === to) return true;
  return RANK[from] !== undefined && RANK[to] !== undefined && RANK[from]! <= RANK[to]!;
}

/** Where the source is, for locating a failure on a fresh session. */
export interface PreflightSource {
  url: string;
  name: string;
}

/**
 * Throws RowConversionError for the first converted value the target cannot hold, per
 * table in `tables` order. `rel(ct)` gives the relation of each source table as the run
 * will read it (the incremental range, or the whole table).
 */
export async function preflight(
  client: pg.Client,
  tables: CompiledTable[],
  rel: (ct: CompiledTable) => (t: string) => string,
  sourceCatalog: Catalog,
  target: Catalog,
  source: PreflightSource,
): Promise<void> {
  const v16 = Number((await client.query<{ v: string }>(`select current_setting('server_version_num') as v`)).rows[0]!.v) >= 160000;
  for (const ct of tables) {
    const types = new Map(target.tables[ct.table]?.columns.map((c) => [c.name, c.type]) ?? []);
    const originType = (c: string) => {
      const o = ct.origins[c];
      if (o?.length !== 1) return undefined;
      return sourceCatalog.tables[ct.sources[o[0]!.source]!.table]?.columns.find((x) => x.name === o[0]!.column)?.type;
    };
    const cols = Object.keys(ct.converted).filter((c) => ct.columns.includes(c) && isBuiltinType(types.get(c) ?? '') && !neverFails(originType(c), types.get(c)!));
    if (cols.length === 0) continue;
    const r = rel(ct);
    const bad = (c: string) => (v16 ? `not pg_input_is_valid(q.${ident(c)}::text, ${literal(types.get(c)!)})` : 'false');
    const sql = `select ${cols.map((c, i) => `count(*) filter (where ${bad(c)}) as b${i}, count(q.${ident(c)}) as n${i}`).join(', ')} from (${ct.selectSql(r)}) q`;
    let counts: Record<string, string>;
    try {
      counts = (await client.query(sql)).rows[0] as Record<string, string>;
    } catch (err) {
      throw await locateOnFreshSession(err, ct, r, source.url, source.name);
    }
    const i = cols.findIndex((_, k) => Number(counts[`b${k}`]) > 0);
    if (i < 0) continue;
    const c = cols[i]!;
    const keys = ct.key.map((k, n) => `q.${ident(k)}::text as k${n}`);
    const row = (await client.query(`select ${[...keys, `q.${ident(c)}::text as v`].join(', ')} from (${ct.selectSql(r)}) q where ${bad(c)} limit 1`)).rows[0] as Record<string, string | null>;
    throw new RowConversionError(ct.table, c, ct.key.length ? shownKey(ct.key, ct.key.map((_, n) => row[`k${n}`] ?? null)) : undefined, row.v ?? null, `the value does not fit ${types.get(c)}`, ct.converted[c]);
  }
}
