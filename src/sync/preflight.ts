/**
 * Checks that can refuse a sync, run where refusing is still free: a cutover calls them
 * BEFORE it freezes the source, so a mapping its final sync cannot run, a watermark no
 * rule can bound, or a target another run holds never costs the application a freeze.
 */
import type pg from 'pg';
import type { Catalog } from '../db/catalog-types.ts';
import type { CompiledChain } from '../mapping/chain.ts';
import { acquireTargetLock, releaseTargetLock } from './lock.ts';
import { expressionProblems } from '../convert/preflight.ts';
import { quoted } from '../text.ts';
import { planWatermarks, type WatermarkOptions } from './watermark.ts';

/** One named check and what it found. */
export interface PreflightCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/**
 * The sync-side checks for `chain` from `src` into `dst`: every table has an SQL face (the
 * sync runs the mapping inside PostgreSQL), every expression the mapping's author wrote
 * compiles on the source (file and JSON pointer named, as `check` names them, so a typo
 * refuses the cutover before the freeze), every watermark has a rule (types, zones,
 * skews), and the target's writer lock is free right now.
 */
export async function syncPreflight(
  src: pg.Client,
  dst: pg.Client,
  chain: CompiledChain,
  sourceCatalog: Catalog,
  targetLabel: string,
  opts: WatermarkOptions & { lockTimeout?: string },
): Promise<PreflightCheck[]> {
  const out: PreflightCheck[] = [];
  const whoAmI = `select current_database() as db, pg_postmaster_start_time()::text as started, coalesce(inet_server_port(), 0) as port`;
  const [me, them] = [(await src.query(whoAmI)).rows[0], (await dst.query(whoAmI)).rows[0]];
  out.push(JSON.stringify(me) === JSON.stringify(them) ? { name: 'two databases', ok: false, detail: 'source and target are the same database' } : { name: 'two databases', ok: true, detail: 'distinct' });
  // Options the final sync hands to PostgreSQL, tried where a typo costs nothing.
  const bad: string[] = [];
  if (opts.lookback !== undefined && !(await dst.query(`select $1::interval`, [opts.lookback]).then(() => true, () => false))) bad.push(`--lookback ${quoted(opts.lookback)} is not an interval`);
  if (opts.lockTimeout !== undefined) {
    await dst.query('begin');
    const ok = await dst.query(`select set_config('lock_timeout', $1, true)`, [opts.lockTimeout]).then(() => true, () => false);
    await dst.query('rollback');
    if (!ok) bad.push(`--lock-timeout ${quoted(opts.lockTimeout)} is not a duration PostgreSQL takes (e.g. 5s, 2min)`);
  }
  out.push({ name: 'options', ok: bad.length === 0, detail: bad.join('; ') || 'valid' });
  const tables = Object.values(chain.tables);
  const noSql = tables.filter((t) => t.sqlUnsupported.length > 0);
  out.push(
    noSql.length
      ? { name: 'mapping runs in SQL', ok: false, detail: noSql.map((t) => `${t.table}: ${t.sqlUnsupported.join('; ')}`).join('; ') }
      : { name: 'mapping runs in SQL', ok: true, detail: `${tables.length} tables` },
  );
  const exprs = await expressionProblems(src, tables);
  const count = new Set(tables.flatMap((t) => t.expressions.map((e) => `${e.file}\0${e.path}`))).size;
  out.push(
    exprs.length
      ? { name: 'mapping expressions', ok: false, detail: exprs.map((p) => `${p.file}: ${p.path}: ${p.message}`).join('; ') }
      : { name: 'mapping expressions', ok: true, detail: count ? `${count} compile on the source` : 'none' },
  );
  try {
    const plans = await planWatermarks(src, tables, sourceCatalog, new Map(), opts);
    const kinds = [...plans.values()].filter((p) => p).map((p) => `${p!.table}.${p!.column} (${p!.kind}${p!.zone ? ` ${p!.zone}` : ''})`);
    out.push({ name: 'watermarks', ok: true, detail: kinds.join(', ') || 'none (full reloads)' });
  } catch (err) {
    out.push({ name: 'watermarks', ok: false, detail: `${(err as Error).message}${(err as { hint?: string }).hint ? ` — ${(err as { hint?: string }).hint}` : ''}` });
  }
  try {
    await acquireTargetLock(dst, `target ${targetLabel}`);
    await releaseTargetLock(dst);
    out.push({ name: 'target lock', ok: true, detail: 'free' });
  } catch (err) {
    out.push({ name: 'target lock', ok: false, detail: (err as Error).message });
  }
  return out;
}
