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

/** One target table's predicted delete path. */
export interface DeletePrediction {
  path: DeletePath;
  /** Its source table(s). */
  sources: string[];
  /** `capturable`: capture is armed but began after the table's bound (one more sync fixes it). */
  late?: boolean;
  /** `whole` and `none`: why capture cannot (or need not) serve it. */
  reason?: string;
}

/** What {@link describeDeletePaths} found: the guardrail's verdict and its line. */
export interface DeletePathSummary {
  /** True when a table's deletes would be found by comparing whole tables. */
  warning: boolean;
  detail: string;
  predictions: Map<string, DeletePrediction>;
}

const EXACT = /^timestamp(\(\d\))? with time zone$/;
const LOCAL = /^(timestamp(\(\d\))? without time zone|date)$/;
const INTEGER = /^(smallint|integer|bigint|numeric(\(\d+,0\))?)$/;

/**
 * Warns (never refuses) when the final sync, inside the freeze, would find deletes by
 * comparing the key buckets of whole tables: that work grows with the database, and so
 * does the time writes are refused. Small databases do not need capture, hence no refusal.
 * Mirrors the rule of src/sync/deletes.ts: capture serves a table with one source, a key,
 * a watermark of any kind sync bounds (timestamptz, timestamp or date in a declared zone,
 * an ever-increasing integer) and a trigger armed before its bound; every other keyed table
 * is named with the reason and its estimate, never passed as `[ok]`.
 */
export async function captureGuardrail(opts: CutoverOptions, src: pg.Client, dst: pg.Client, chain: CompiledChain, catalog: Catalog, g: Push): Promise<void> {
  const s = await describeDeletePaths(opts.from.name, opts.to.name, src, dst, chain, catalog, opts.lookback);
  g('delete capture', true, s.detail, s.warning || undefined);
}

/**
 * How the next sync `from` -> `to` will find each table's deletes, and one line saying so:
 * the cutover's guardrail, and what `capture enable` reports once it armed the triggers.
 */
export async function describeDeletePaths(
  from: string,
  to: string,
  src: pg.Client,
  dst: pg.Client,
  chain: CompiledChain,
  catalog: Catalog,
  lookback?: string,
): Promise<DeletePathSummary> {
  const paths = await predictDeletePaths(from, src, dst, chain, catalog, lookback);
  const by = (path: DeletePath) => [...paths].filter(([, p]) => p.path === path);
  const capturable = by('capturable');
  const whole = by('whole');
  const captured = by('captured').map(([t]) => t);
  const append = by('none').filter(([, p]) => p.reason).map(([t, p]) => `${t} (${p.reason})`);
  const noDeletes = append.length ? `; no deletes to find: ${append.join(', ')}` : '';
  if (capturable.length === 0 && whole.length === 0) {
    const detail = captured.length ? `deletes inside the freeze come from capture (${captured.join(', ')})${noDeletes}` : `no table whose deletes capture would find${noDeletes}`;
    return { warning: false, detail, predictions: paths };
  }
  const compared = [...capturable, ...whole];
  const perSource = await estimatedRowsEach(src, [...new Set(compared.flatMap(([, p]) => p.sources))]);
  const rowsOf = (p: DeletePrediction) => p.sources.reduce<number | null>((a, t) => (a === null || perSource.get(t) == null ? null : a + perSource.get(t)!), 0);
  const named = (list: [string, DeletePrediction][]) =>
    list.map(([t, p]) => {
      const n = rowsOf(p);
      return `${t} (${n === null ? 'size unknown' : `~${Math.round(n).toLocaleString('en-US')} rows`}${p.reason ? `, ${p.reason}` : ''})`;
    });
  const total = compared.reduce<number | null>((a, [, p]) => (a === null || rowsOf(p) === null ? null : a + rowsOf(p)!), 0);
  const seconds = total === null ? undefined : total / KEY_BUCKET_ROWS_PER_SECOND;
  const size = total === null ? 'size unknown (never analyzed)' : `~${Math.round(total).toLocaleString('en-US')} rows by pg_class.reltuples, about ${seconds! < 1 ? '<1' : seconds!.toFixed(0)} s`;
  const late = capturable.filter(([, p]) => p.late).map(([t]) => t);
  const off = capturable.filter(([, p]) => !p.late).map(([t]) => t);
  const fixes = [
    off.length ? `no capture on ${off.join(', ')}: bluegreen capture enable --env ${from}, then one sync (deletes then cost what changed)` : '',
    late.length ? `capture was enabled after the last sync on ${late.join(', ')}: sync once more (bluegreen sync --from ${from} --to ${to}) before the cutover` : '',
    whole.length ? `capture cannot serve ${whole.map(([t]) => t).join(', ')} (the reason is beside each): give it a key, one source and a watermark, or accept the comparison` : '',
  ].filter(Boolean);
  return {
    warning: true,
    detail:
      `the final sync would find deletes of ${named(compared).join(', ')} by comparing whole key sets while writes are refused (${size}, growing with the database); ` +
      `${fixes.join('; ')}${captured.length ? `; from capture: ${captured.join(', ')}` : ''}${noDeletes}`,
    predictions: paths,
  };
}

/**
 * Per target table: how the final sync would find its deletes. `late`: capture is armed
 * but was enabled after the table's bound, so the next sync still compares key sets.
 */
async function predictDeletePaths(
  from: string,
  src: pg.Client,
  dst: pg.Client,
  chain: CompiledChain,
  catalog: Catalog,
  lookback?: string,
): Promise<Map<string, DeletePrediction>> {
  const armed = await captureArmed(src);
  const out = new Map<string, DeletePrediction>();
  for (const ct of Object.values(chain.tables)) {
    const sources = ct.sources.map((x) => x.table);
    const whole = (reason: string) => out.set(ct.table, { path: 'whole', sources, reason });
    if (ct.reload === 'append') out.set(ct.table, { path: 'none', sources, reason: 'append: insert-only, no key comparison' });
    else if (ct.key.length === 0) whole('keyless, reloaded whole on every run');
    else if (ct.reload === 'full') whole('"reload": "full", read whole on every run');
    else if (ct.sources.length !== 1) whole(`merged from ${sources.join(' and ')}`);
    else {
      const s = ct.sources[0]!;
      const type = s.watermark ? catalog.tables[s.table]?.columns.find((c) => c.name === s.watermark)?.type : undefined;
      const zone = (s.watermarkRule ?? catalog.tables[s.table]?.watermarkRule)?.zone;
      if (!s.watermark) whole('no watermark, read whole on every run');
      else if (!type) whole(`watermark ${s.watermark} not found`);
      else if (s.key.length === 0) whole(`no key on ${s.table}`);
      else if (!EXACT.test(type) && !INTEGER.test(type) && !(LOCAL.test(type) && (zone !== undefined || lookback))) whole(`watermark ${s.watermark} is ${type}${LOCAL.test(type) ? ' without a declared zone' : ''}`);
      else {
        const a = armed.get(s.table);
        const usable = a ? await captureUsable(src, dst, from, s.table, INTEGER.test(type), a.enabledAt) : false;
        out.set(ct.table, usable ? { path: 'captured', sources } : { path: 'capturable', sources, late: Boolean(a) });
      }
    }
  }
  return out;
}

/** Source tables whose capture trigger is armed and enabled, with when capture began. */
async function captureArmed(src: pg.Client): Promise<Map<string, { enabledAt: string }>> {
  const out = new Map<string, { enabledAt: string }>();
  if (!(await src.query<{ ok: boolean }>(`select to_regclass('bluegreen.capture') is not null as ok`)).rows[0]!.ok) return out;
  const r = await src.query<{ table_name: string; enabled_at: string }>(
    `select c.table_name, c.enabled_at::text as enabled_at from bluegreen.capture c
      where exists (select 1 from pg_trigger g where g.tgrelid = to_regclass(quote_ident(c.table_name)) and g.tgname = $1 and g.tgenabled <> 'D')`,
    [CAPTURE_TRIGGER],
  );
  for (const c of r.rows) out.set(c.table_name, { enabledAt: c.enabled_at });
  return out;
}

/**
 * Whether capture began at or before the bound the next sync consumes deletes from (as
 * src/sync/deletes.ts decides): a time watermark's stored value on the target, or, for an
 * integer watermark, the horizon recorded with the last run's sample of the table.
 */
async function captureUsable(src: pg.Client, dst: pg.Client, from: string, table: string, integer: boolean, enabledAt: string): Promise<boolean> {
  if (!(await dst.query(`select to_regclass('bluegreen.watermarks') is not null and to_regclass('bluegreen.runs') is not null as ok`)).rows[0].ok) return false;
  const mark = (await dst.query<{ value: string }>(`select value from bluegreen.watermarks where source = $1 and table_name = $2`, [from, table])).rows[0]?.value;
  if (mark === undefined || /^-?[0-9]+$/.test(mark) !== integer) return false;
  let bound = mark;
  if (integer) {
    const h = await dst.query<{ h: string | null }>(
      `select s->>'horizon' as h from bluegreen.runs r cross join lateral jsonb_array_elements(r.detail->'watermarkSamples') s
        where r.source = $1 and r.status = 'ok' and r.kind in ('sync', 'cutover') and jsonb_typeof(r.detail->'watermarkSamples') = 'array' and s->>'table' = $2
        order by r.id desc limit 1`,
      [from, table],
    );
    if (!h.rows[0]?.h) return false;
    bound = h.rows[0].h;
  }
  // Compared on the source's clock, where both were stamped.
  return (await src.query<{ ok: boolean }>(`select $1::timestamptz <= $2::timestamptz as ok`, [enabledAt, bound])).rows[0]!.ok;
}

/** PostgreSQL's row estimate (pg_class.reltuples) per table, partitions summed; null when one was never analyzed. */
async function estimatedRowsEach(src: pg.Client, tables: string[]): Promise<Map<string, number | null>> {
  const r = await src.query<{ name: string; n: number | null }>(
    // reltuples is -1 for a table never vacuumed or analyzed (PostgreSQL 14 and later);
    // a partitioned parent counts its partitions.
    `select n.name, case when bool_or(c.reltuples < 0) then null else sum(c.reltuples) end::float8 as n
       from unnest($1::text[], $2::text[]) as n(name, rel)
       cross join lateral (select relid from pg_partition_tree(to_regclass(n.rel)) union select to_regclass(n.rel)) t
       join pg_class c on c.oid = t.relid and c.relkind in ('r', 'm')
      group by n.name`,
    [tables, tables.map(ident)],
  );
  return new Map(tables.map((t) => [t, r.rows.find((x) => x.name === t)?.n ?? null]));
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
