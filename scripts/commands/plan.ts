import type { CommandModule } from 'yargs';
import { plan, type PlanReport } from '../../src/plan.ts';
import { handle, pairOptions, resolvePair, type Context, type GlobalArgs, type PairArgs } from '../context.ts';
import { numberCoerce } from '../options.ts';

interface PlanArgs extends GlobalArgs, PairArgs {
  full?: boolean;
  'max-lag': number;
}

export function renderPlan(r: PlanReport): string {
  const lines = [
    `plan: ${r.mode} sync ${r.from} (v${r.fromVersion}) -> ${r.to} (v${r.toVersion}); nothing was written`,
    `  ${'table'.padEnd(18)} ${'mode'.padEnd(11)} ${'to read'.padStart(10)} ${'to delete'.padStart(10)}  key / watermark`,
    ...r.tables.map(
      (t) =>
        `  ${t.table.padEnd(18)} ${t.mode.padEnd(11)} ${String(t.estimatedRowsToRead).padStart(10)} ${(t.estimatedRowsToDelete === null ? '?' : `≥${t.estimatedRowsToDelete}`).padStart(10)}  ` +
        `key (${t.key.join(', ') || 'whole row'}); ${t.watermark ? `${t.watermark.table}.${t.watermark.column} >= ${t.watermark.from ?? '-'}` : 'no watermark'} — ${t.why}`,
    ),
    ...(r.partitions ?? []).map((x) => `  new partition ${x.partition} of ${x.table} ${x.bounds}: the sync creates it (the source has ${x.from})`),
    ...(r.manualPartitions ?? []).map((d) => `  partition to create by hand on ${r.to} before the sync: ${d}`),
    'cutover guardrails now:',
    ...r.guardrails.map((g) => `  [${g.ok ? (g.warning ? 'WARN' : 'ok') : 'FAIL'}] ${g.name}: ${g.detail}`),
    `estimated freeze during a cutover: ${r.estimatedFreezeSeconds} s (${r.freezeBasis})`,
    ...(r.reconciled ?? []).map((x) => `stopped cutover: ${x.detail}`),
  ];
  return lines.join('\n');
}

/** Runs the plan and prints it (shared by `plan` and `sync --dry-run`). */
export async function runPlan(argv: PairArgs & { full?: boolean; 'max-lag'?: number }, ctx: Context): Promise<void> {
  const pair = resolvePair(argv, ctx);
  const r = await plan({ ...pair, mappingsDir: ctx.settings.mappingsDir, logger: ctx.logger, full: argv.full, maxLagSeconds: argv['max-lag'] });
  ctx.output(r, () => renderPlan(r));
}

export const planCommand: CommandModule<GlobalArgs, PlanArgs> = {
  command: 'plan',
  describe: 'What a sync would do (per table: full or incremental, rows to read and delete) and what a cutover would check; writes nothing',
  builder: (y) =>
    pairOptions(y)
      .option('full', { type: 'boolean', describe: 'Plan a sync --full' })
      .option('max-lag', { type: 'string', default: 300, coerce: numberCoerce('max-lag', { min: 0 }), describe: "The cutover's --max-lag, for its lag guardrail" })
      .example('$0 plan --from blue --to green', 'before a sync or a cutover')
      .example('$0 plan --from green --to blue --json', 'the rollback direction, machine-readable') as never,
  handler: handle<PlanArgs>(async (argv, ctx) => runPlan(argv, ctx)),
};
