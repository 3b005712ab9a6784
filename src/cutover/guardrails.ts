/**
 * The cutover's guardrails: what must hold before the source is frozen, each a small
 * check that appends what it found to the report (`plan` runs the same ones, reads only).
 * A failed guardrail refuses the cutover; a warning (`warning: true`) passes and says what
 * would make the freeze shorter.
 */
import type pg from 'pg';
import { detectVersion, VersionCatalogs } from '../db/catalog.ts';
import { compileChain, type CompiledChain } from '../mapping/index.ts';
import { syncPreflight } from '../sync/preflight.ts';
import { frozenBy } from './freeze.ts';
import { pairDirection } from '../db/direction.ts';
import { lastFullVerify } from './before-freeze.ts';
import { captureGuardrail, foreignKeyIndexGuardrail } from './delete-guardrails.ts';
import type { CutoverOptions, CutoverReport } from './report.ts';

/** Appends one guardrail to the report. */
export type Push = (name: string, ok: boolean, detail: string, warning?: boolean) => void;

/** Runs every guardrail, appending to `report.guardrails` (and setting both versions). */
export async function guardrails(opts: CutoverOptions, src: pg.Client, dst: pg.Client, report: CutoverReport): Promise<void> {
  const g: Push = (name, ok, detail, warning) => report.guardrails.push(warning ? { name, ok, detail, warning } : { name, ok, detail });
  const catalogs = new VersionCatalogs(opts.mappingsDir, dst);
  await versionGuardrails(opts, src, dst, catalogs, report, g);
  const chain = await mappingGuardrails(opts, src, dst, catalogs, report, g);
  await servingGuardrail(opts, src, g);
  await directionGuardrail(opts, src, dst, g);
  // Also with --force: it only warns, and a forced cutover freezes just as long.
  if (chain) {
    try {
      await captureGuardrail(opts, src, dst, chain, (await catalogs.all()).get(report.fromVersion!)!, g);
    } catch (err) {
      // A warning that cannot be computed must not refuse the cutover.
      g('delete capture', true, `could not tell how the final sync will find deletes: ${(err as Error).message}`, true);
    }
    try {
      await foreignKeyIndexGuardrail(opts, dst, chain, g);
    } catch (err) {
      g('foreign key indexes', true, `could not read ${opts.to.name}'s foreign keys: ${(err as Error).message}`, true);
    }
  }
  if (opts.force) return;
  await lagGuardrails(opts, dst, g);
}

async function versionGuardrails(opts: CutoverOptions, src: pg.Client, dst: pg.Client, catalogs: VersionCatalogs, report: CutoverReport, g: Push): Promise<void> {
  for (const [side, client, pinned] of [['source', src, opts.from.version], ['target', dst, opts.to.version]] as const) {
    try {
      const v = pinned ?? (await detectVersion(client, catalogs, side === 'source' ? opts.from.name : opts.to.name)).version;
      if (v === 'empty') g(`${side} version`, false, 'no schema');
      else {
        g(`${side} version`, true, `v${v}`);
        if (side === 'source') report.fromVersion = v;
        else report.toVersion = v;
      }
    } catch (err) {
      g(`${side} version`, false, (err as Error).message);
    }
  }
}

/** The chain from the source's version to the target's, when it compiles. */
async function mappingGuardrails(
  opts: CutoverOptions,
  src: pg.Client,
  dst: pg.Client,
  catalogs: VersionCatalogs,
  report: CutoverReport,
  g: Push,
): Promise<CompiledChain | undefined> {
  if (report.fromVersion === undefined || report.toVersion === undefined) return undefined;
  try {
    const all = Object.fromEntries(await catalogs.all());
    const chain = await compileChain(opts.mappingsDir, report.fromVersion, report.toVersion, all);
    g('mappings', true, `v${report.fromVersion} -> v${report.toVersion} valid`);
    // What would make the final sync refuse, found while refusing costs nothing.
    for (const c of await syncPreflight(src, dst, chain, all[report.fromVersion]!, opts.to.name, { lookback: opts.lookback, lockTimeout: opts.lockTimeout })) g(c.name, c.ok, c.detail);
    return chain;
  } catch (err) {
    g('mappings', false, (err as Error).message.split('\n')[0]!);
    return undefined;
  }
}

async function servingGuardrail(opts: CutoverOptions, src: pg.Client, g: Push): Promise<void> {
  const frozen = await frozenBy(src);
  if (!frozen) g('source serving', true, 'not frozen');
  else if (!frozen.completed) {
    g(
      'source serving',
      false,
      `frozen since ${frozen.since} by a cutover to ${frozen.target ?? 'another environment'} that has not completed: ` +
        `bluegreen status --env ${opts.from.name} --env ${frozen.target ?? 'TARGET'} decides it (completes it if ${frozen.target ?? 'that target'} committed its final sync, else unfreezes ${opts.from.name}); then retry`,
    );
  } else g('source serving', false, `already frozen since ${frozen.since} (${frozen.by}): the application writes to ${frozen.target ?? 'the other side'}`);
}

/**
 * The pair's direction (src/db/direction.ts) must run from source to target, or be unset:
 * a cutover against it (or with the direction left open after an unfreeze by hand) would
 * overwrite the target's writes. --force passes with a warning, and reaches the cutover's
 * own syncs (the source's data wins).
 */
async function directionGuardrail(opts: CutoverOptions, src: pg.Client, dst: pg.Client, g: Push): Promise<void> {
  const [from, to] = [opts.from.name, opts.to.name];
  const d = await pairDirection({ name: from, client: src }, { name: to, client: dst });
  const against = d.undecided || (d.flow !== undefined && d.flow.from === to);
  if (!against) return g('direction', true, d.text);
  const detail = d.undecided
    ? `${d.text}: both sides may have taken writes; decide which serves: bluegreen direction --from ${from} --to ${to} (then sync), or --force to let ${from}'s data win`
    : `${d.text}: ${from} is kept current from ${to}; to move the application to ${from}: bluegreen cutover --from ${to} --to ${from}`;
  g('direction', Boolean(opts.force), opts.force ? `${detail} (--force: ${from}'s data wins)` : detail, opts.force);
}

async function lagGuardrails(opts: CutoverOptions, dst: pg.Client, g: Push): Promise<void> {
  const hasState = (await dst.query(`select to_regclass('bluegreen.watermarks') is not null as ok`)).rows[0].ok;
  if (!hasState) {
    g('lag', false, `${opts.to.name} was never synced from ${opts.from.name}`);
    g('last verify', false, 'none');
    return;
  }
  // Behind by the time since the last sync's horizon was read (its snapshot followed),
  // not by the watermarks' age: a lookback (other roles' hidden transactions, --lookback)
  // sets those minutes earlier on purpose, though the data is just as current. Runs
  // recorded before the horizon was stored fall back to the watermarks.
  const lag = await dst.query<{ lag: number | null; n: number }>(
    `select coalesce(
              (select extract(epoch from now() - (detail->'horizon'->>'at')::timestamptz)::float8
                 from bluegreen.runs
                where source = $1 and status = 'ok' and kind in ('sync', 'cutover') and detail->'horizon'->>'at' is not null
                order by id desc limit 1),
              (select max(extract(epoch from now() - value::timestamptz))::float8 from bluegreen.watermarks where source = $1 and value !~ '^-?[0-9]+$')) as lag,
            (select count(*)::int from bluegreen.watermarks where source = $1) as n`,
    [opts.from.name],
  );
  const l = lag.rows[0]!;
  const max = opts.maxLagSeconds ?? 300;
  if (l.n === 0) g('lag', false, `${opts.to.name} was never synced from ${opts.from.name}`);
  else g('lag', (l.lag ?? 0) <= max, `${Math.round(l.lag ?? 0)} s behind (max ${max} s)`);
  // A clean full verify newer than the last sync passes; otherwise one runs before the
  // freeze (verifyBeforeFreeze, src/cutover/steps.ts), and that one decides.
  const v = await lastFullVerify(dst, opts.from.name);
  g('last verify', true, v.fresh ? v.detail : `${v.detail}: verifying every row before freezing`);
}
