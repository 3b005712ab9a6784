/**
 * The guardrails about deletes inside the freeze, both warnings (never refusals): the
 * final sync's deletes cost what changed only when they come from the source's capture
 * trigger (otherwise key buckets of whole tables are compared, src/sync/deletes.ts), and
 * only when every foreign key on the target has an index on its columns (otherwise each
 * deleted row scans the referencing table). Each names the fix.
 */
import type pg from 'pg';
import type { Catalog } from '../db/catalog.ts';
import { ident } from '../db/connect.ts';
import type { CompiledChain } from '../mapping/index.ts';
import { CAPTURE_TRIGGER } from '../sync/deletes.ts';
import type { Push } from './guardrails.ts';
import type { CutoverOptions } from './report.ts';

/**
 * Rows per second a key-bucket comparison gets through (keys hashed on both servers at
 * once): 1M bigint keys took 1.3-1.4 s on 2 shared cores. Wider or composite keys are
 * slower; the warning only has to give the order of magnitude.
 */
export const KEY_BUCKET_ROWS_PER_SECOND = 750_000;

/** How the final sync will find one target table's deletes, predicted before the freeze. */
type DeletePath = 'captured' | 'capturable' | 'whole' | 'none';

/**
 * Warns (never refuses) when the final sync, inside the freeze, would find deletes by
 * comparing the key buckets of whole tables: that work grows with the database, and so
 * does the time writes are refused. Small databases do not need capture, hence no refusal.
 * Mirrors the rule of src/sync/deletes.ts: capture serves a table with one source, a
 * timestamptz watermark and a trigger armed before its lower bound (the target's watermark).
 */
export async function captureGuardrail(opts: CutoverOptions, src: pg.Client, dst: pg.Client, chain: CompiledChain, catalog: Catalog, g: Push): Promise<void> {
  const paths = await predictDeletePaths(opts.from.name, src, dst, chain, catalog);
  const capturable = [...paths].filter(([, p]) => p.path === 'capturable');
  const captured = [...paths].filter(([, p]) => p.path === 'captured').map(([t]) => t);
  if (capturable.length === 0) {
    g('delete capture', true, captured.length ? `deletes inside the freeze come from capture (${captured.join(', ')})` : 'no table whose deletes capture would find');
    return;
  }
  const sources = capturable.map(([, p]) => p.source!);
  const rows = await estimatedRows(src, sources);
  const seconds = rows === null ? undefined : rows / KEY_BUCKET_ROWS_PER_SECOND;
  const size = rows === null ? 'size unknown (never analyzed)' : `~${Math.round(rows).toLocaleString('en-US')} rows by pg_class.reltuples, about ${seconds! < 1 ? '<1' : seconds!.toFixed(0)} s`;
  const late = capturable.filter(([, p]) => p.late).map(([t]) => t);
  const off = capturable.filter(([, p]) => !p.late).map(([t]) => t);
  const fixes = [
    off.length ? `no capture on ${off.join(', ')}: bluegreen capture enable --env ${opts.from.name}, then one sync (deletes then cost what changed)` : '',
    late.length ? `capture was enabled after the last sync on ${late.join(', ')}: sync once more (bluegreen sync --from ${opts.from.name} --to ${opts.to.name}) before the cutover` : '',
  ].filter(Boolean);
  g(
    'delete capture',
    true,
    `the final sync would find deletes of ${capturable.map(([t]) => t).join(', ')} by comparing whole key sets while writes are refused (${size}, growing with the database); ${fixes.join('; ')}`,
    true,
  );
}

/**
 * Per target table: how the final sync would find its deletes. `late`: capture is armed
 * but was enabled after the table's lower bound, so the next sync still compares key sets.
 */
async function predictDeletePaths(
  from: string,
  src: pg.Client,
  dst: pg.Client,
  chain: CompiledChain,
  catalog: Catalog,
): Promise<Map<string, { path: DeletePath; source?: string; late?: boolean }>> {
  const armed = await captureArmed(src, from, dst);
  const out = new Map<string, { path: DeletePath; source?: string; late?: boolean }>();
  for (const ct of Object.values(chain.tables)) {
    if (ct.key.length === 0) out.set(ct.table, { path: 'none' });
    else if (ct.reload === 'full' || ct.sources.length !== 1) out.set(ct.table, { path: 'whole' });
    else {
      const s = ct.sources[0]!;
      const type = s.watermark ? catalog.tables[s.table]?.columns.find((c) => c.name === s.watermark)?.type : undefined;
      if (!type || !/^timestamp(\(\d\))? with time zone$/.test(type) || s.key.length === 0) out.set(ct.table, { path: 'whole' });
      else {
        const a = armed.get(s.table);
        out.set(ct.table, a?.usable ? { path: 'captured', source: s.table } : { path: 'capturable', source: s.table, late: Boolean(a) });
      }
    }
  }
  return out;
}

/**
 * Source tables whose capture trigger is armed and enabled; `usable` when capture began at
 * or before the target's watermark for that table (the final sync's lower bound).
 */
async function captureArmed(src: pg.Client, from: string, dst: pg.Client): Promise<Map<string, { usable: boolean }>> {
  const out = new Map<string, { usable: boolean }>();
  if (!(await src.query<{ ok: boolean }>(`select to_regclass('bluegreen.capture') is not null as ok`)).rows[0]!.ok) return out;
  const r = await src.query<{ table_name: string; enabled_at: string }>(
    `select c.table_name, c.enabled_at::text as enabled_at from bluegreen.capture c
      where exists (select 1 from pg_trigger g where g.tgrelid = to_regclass(quote_ident(c.table_name)) and g.tgname = $1 and g.tgenabled <> 'D')`,
    [CAPTURE_TRIGGER],
  );
  if (r.rows.length === 0) return out;
  const hasMarks = (await dst.query(`select to_regclass('bluegreen.watermarks') is not null as ok`)).rows[0].ok;
  const marks = hasMarks
    ? await dst.query<{ table_name: string; value: string }>(`select table_name, value from bluegreen.watermarks where source = $1 and value !~ '^-?[0-9]+$'`, [from])
    : { rows: [] };
  for (const c of r.rows) {
    const mark = marks.rows.find((m) => m.table_name === c.table_name);
    // Compared on the source's clock, where both were stamped.
    const usable = mark ? (await src.query<{ ok: boolean }>(`select $1::timestamptz <= $2::timestamptz as ok`, [c.enabled_at, mark.value])).rows[0]!.ok : false;
    out.set(c.table_name, { usable });
  }
  return out;
}

/** Sum of PostgreSQL's row estimates (pg_class.reltuples) of `tables`; null when one was never analyzed. */
async function estimatedRows(src: pg.Client, tables: string[]): Promise<number | null> {
  const r = await src.query<{ n: number | null }>(
    // reltuples is -1 for a table never vacuumed or analyzed (PostgreSQL 14 and later);
    // a partitioned parent counts its partitions.
    `select case when bool_or(c.reltuples < 0) then null else sum(c.reltuples) end::float8 as n
       from unnest($1::text[]) as n(name)
       cross join lateral (select relid from pg_partition_tree(to_regclass(n.name)) union select to_regclass(n.name)) t
       join pg_class c on c.oid = t.relid and c.relkind in ('r', 'm')`,
    [tables.map(ident)],
  );
  return r.rows[0]!.n;
}

/**
 * Warns (never refuses) about foreign keys on the target whose referencing columns lead no
 * index: every row the final sync deletes from the referenced table makes PostgreSQL look
 * for referencing rows (the cascade, or the check) by scanning the referencing table, so
 * a few deletes cost a scan of that table each, while writes are refused.
 */
export async function foreignKeyIndexGuardrail(opts: CutoverOptions, dst: pg.Client, chain: CompiledChain, g: Push): Promise<void> {
  const r = await dst.query<{ child: string; parent: string; cols: string; rows: number | null }>(
    `select c.conrelid::regclass::text as child, c.confrelid::regclass::text as parent,
            (select string_agg(quote_ident(a.attname), ', ' order by k.ord)
               from unnest(c.conkey) with ordinality k(attnum, ord)
               join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum) as cols,
            nullif(greatest(t.reltuples, -1), -1)::float8 as rows
       from pg_constraint c join pg_class t on t.oid = c.conrelid
      where c.contype = 'f' and c.conparentid = 0
        and c.conrelid in (select to_regclass(x) from unnest($1::text[]) x)
        and c.confrelid in (select to_regclass(x) from unnest($1::text[]) x)
        -- Any index whose leading columns are the key's columns (in any order) serves the lookup.
        and not exists (
          select 1 from pg_index i
           where i.indrelid = c.conrelid
             and (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(c.conkey)] @> c.conkey
             and (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(c.conkey)] <@ c.conkey)
      order by 1, 3`,
    [Object.keys(chain.tables).map(ident)],
  );
  if (r.rows.length === 0) {
    g('foreign key indexes', true, `every foreign key on ${opts.to.name} has an index on its columns`);
    return;
  }
  const each = r.rows.map(
    (x) => `${x.child} (${x.cols}) references ${x.parent}: each row deleted from ${x.parent} scans ${x.child}${x.rows === null ? '' : ` (~${Math.round(x.rows).toLocaleString('en-US')} rows)`}`,
  );
  const fix = r.rows.map((x) => `create index on ${x.child} (${x.cols})`).join('; ');
  g('foreign key indexes', true, `on ${opts.to.name}, ${each.join('; ')}, while writes are refused; fix on ${opts.to.name} (and in the version's schema.sql): ${fix}`, true);
}
