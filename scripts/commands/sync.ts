import type { CommandModule } from 'yargs';
import { sync, type SyncReport } from '../../src/sync/sync.ts';
import { repair, type RepairReport } from '../../src/sync/repair.ts';
import { renderVerify } from '../../src/verify/verify.ts';
import { ExitCode } from '../../src/errors.ts';
import { handle, pairOptions, resolvePair, type GlobalArgs, type PairArgs } from '../context.ts';
import { lookbackOption, numberCoerce } from '../options.ts';
import { runPlan } from './plan.ts';
import { metricsOption, pairMetrics, writeMetrics, type MetricsArgs } from '../metrics.ts';

interface SyncArgs extends GlobalArgs, PairArgs, MetricsArgs {
  full?: boolean;
  'dry-run'?: boolean;
  lookback?: string;
  force?: boolean;
  verify: 'auto' | 'full' | 'changed' | 'none' | boolean;
  reconcile?: boolean;
  'reconcile-every'?: string;
  repair?: boolean;
  jobs: number;
}

export function renderSync(r: SyncReport): string {
  const lines = [
    `${r.mode} sync ${r.from} (v${r.fromVersion}) -> ${r.to} (v${r.toVersion}) in ${(r.ms / 1000).toFixed(1)} s`,
    `  ${'table'.padEnd(18)} ${'mode'.padEnd(11)} ${'read'.padStart(9)} ${'inserted'.padStart(9)} ${'updated'.padStart(9)} ${'deleted'.padStart(9)}`,
    ...r.tables.map(
      (t) =>
        `  ${t.table.padEnd(18)} ${t.mode.padEnd(11)} ${String(t.read).padStart(9)} ${String(t.inserted).padStart(9)} ${String(t.updated).padStart(9)} ${String(t.deleted).padStart(9)}`,
    ),
  ];
  if (r.check) {
    const bad = r.check.tables.filter((t) => t.mismatched || t.sourceRows !== t.targetRows);
    // Row counts are compared only where they cost nothing (src/sync/check.ts).
    const counted = r.check.tables.some((t) => t.sourceRows !== null);
    const what = counted ? 'changed rows and row counts' : 'changed rows; deletes captured, row counts at the next --reconcile';
    lines.push(
      r.check.clean
        ? `  verified (${what}): clean — ${r.check.tables.reduce((a, t) => a + t.checked, 0)} rows checked`
        : `  verify (${what}): DIFFERENCES in ${bad.map((t) => `${t.table} (${t.mismatched} rows differ${t.sourceRows !== null ? `, ${t.sourceRows} vs ${t.targetRows} rows` : ''})`).join(', ')}; run bluegreen verify for the keys, then bluegreen sync --repair`,
    );
  }
  if (r.sweptStageTables) lines.push(`  dropped ${r.sweptStageTables.length} stage tables an interrupted --jobs run had left`);
  if (r.horizon.heldBackBy) lines.push(`  watermark held back by ${r.horizon.heldBackBy} (its rows are read again next run)`);
  return lines.join('\n');
}

export function renderRepair(r: RepairReport): string {
  if (!r.verifiedAt || r.tables.length === 0) return `repair ${r.from} -> ${r.to}: nothing to repair (the last verify${r.verifiedAt ? ` at ${r.verifiedAt}` : ''} was clean)`;
  const lines = [
    `repair ${r.from} (v${r.fromVersion}) -> ${r.to} (v${r.toVersion}) of the keys the verify at ${r.verifiedAt} named, in ${(r.ms / 1000).toFixed(1)} s: ${r.clean ? 'CLEAN' : 'STILL DIFFERENT'}`,
    `  ${'table'.padEnd(18)} ${'keys'.padStart(7)} ${'copied'.padStart(7)} ${'inserted'.padStart(9)} ${'updated'.padStart(9)} ${'deleted'.padStart(9)}`,
    ...r.tables.map(
      (t) =>
        `  ${t.table.padEnd(18)} ${String(t.keys).padStart(7)} ${String(t.copied).padStart(7)} ${String(t.inserted).padStart(9)} ${String(t.updated).padStart(9)} ${String(t.deleted).padStart(9)}`,
    ),
  ];
  return lines.join('\n');
}

export const syncCommand: CommandModule<GlobalArgs, SyncArgs> = {
  command: 'sync',
  describe: 'Bring the target up to date with the source through the mappings (incremental after the first run)',
  builder: (y) =>
    metricsOption(pairOptions(y))
      .option('full', { type: 'boolean', describe: 'Ignore stored watermarks and re-read every row' })
      .option('dry-run', { type: 'boolean', describe: 'Print what the sync would do (bluegreen plan) and write nothing' })
      .option('lookback', lookbackOption)
      .option('verify', {
        type: 'string',
        default: 'auto',
        // --no-verify arrives as false; anything else must be one of the modes.
        coerce: (v: unknown) => {
          if (v === false || v === 'false') return 'none';
          if (v === true || v === '' || v === 'true') return 'auto';
          if (['auto', 'full', 'changed', 'none'].includes(String(v))) return String(v);
          throw new Error(`--verify must be one of auto, full, changed, none (got ${String(v)})`);
        },
        describe:
          'full: compare every row against the snapshot this run read; changed: check the rows this run read and the row counts (cheap); auto: full after a full run, changed after an incremental one; --no-verify skips',
      })
      .option('reconcile', {
        type: 'boolean',
        describe: 'Find deletes by comparing the whole key sets even where captured deletes would do (the periodic check; automatic without bluegreen capture)',
      })
      .option('reconcile-every', {
        type: 'string',
        describe: "Reconcile by itself when the last reconciled run is older than this (PostgreSQL interval, default '24 hours'; 'never' turns it off)",
      })
      .option('repair', {
        type: 'boolean',
        describe: 'Re-copy exactly the keys the last verify named (missing, extra, changed) in one transaction, and check them again',
      })
      .option('jobs', {
        type: 'string',
        default: 1,
        coerce: numberCoerce('jobs', { integer: true, positive: true }),
        describe: 'Stage tables (and block ranges of large ones) on this many extra connection pairs, then apply them in the one transaction',
      })
      .option('force', { type: 'boolean', describe: 'Sync against the usual direction (the source is normally kept current from the target)' })
      .example('$0 sync --from blue --to green', 'first run full, then only what changed since the last run')
      .example('$0 sync --from green --to blue', 'rollback direction, through the down mappings')
      .example('$0 sync --full --jobs 4', 'a large full sync: tables and block ranges staged on 4 connection pairs, applied in one transaction')
      .example('$0 sync --reconcile', 'nightly: compare whole key sets for deletes (when bluegreen capture is enabled)')
      .example('*/5 * * * * cd /srv/bluegreen && node bin/bluegreen.js sync --log-format json >> sync.log 2>&1', 'cron: exit 75 means another run was busy') as never,
  handler: handle<SyncArgs>(async (argv, ctx) => {
    if (argv['dry-run']) return runPlan(argv, ctx);
    const pair = resolvePair(argv, ctx);
    // Metrics describe the run whatever its outcome (a failed run sets last_run_success 0).
    if (argv['metrics-file']) ctx.after(async () => writeMetrics(argv['metrics-file']!, await pairMetrics(ctx, pair)));
    if (argv.repair) {
      const fixed = await repair({ ...pair, mappingsDir: ctx.settings.mappingsDir, lockTimeout: argv['lock-timeout'], force: argv.force, logger: ctx.logger });
      ctx.output(fixed, () => renderRepair(fixed));
      return fixed.clean ? ExitCode.ok : ExitCode.verifyDiff;
    }
    const r = await sync({
      ...pair,
      mappingsDir: ctx.settings.mappingsDir,
      full: argv.full,
      lookback: argv.lookback,
      lockTimeout: argv['lock-timeout'],
      verify: argv.verify,
      force: argv.force,
      reconcile: argv.reconcile,
      reconcileEvery: argv['reconcile-every'],
      jobs: argv.jobs,
      logger: ctx.logger,
    });
    ctx.output(r, () => renderSync(r) + (r.verify ? '\n' + renderVerify(r.verify) : ''));
    return (r.verify && !r.verify.clean) || (r.check && !r.check.clean) ? ExitCode.verifyDiff : ExitCode.ok;
  }),
};
