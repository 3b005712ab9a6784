import type { CommandModule } from 'yargs';
import { cutover, CutoverRefusedError, type CutoverReport } from '../../src/cutover/cutover.ts';
import { renderSync } from './sync.ts';
import { renderVerify } from '../../src/verify/verify.ts';
import { UsageError } from '../../src/errors.ts';
import { handle, pairOptions, resolvePair, type GlobalArgs, type PairArgs } from '../context.ts';
import { numberCoerce } from '../options.ts';
import { metricsOption, pairMetrics, writeMetrics, type MetricsArgs } from '../metrics.ts';

interface CutoverArgs extends GlobalArgs, PairArgs, MetricsArgs {
  'max-lag': number;
  timeout: number;
  'switch-command'?: string;
  force?: boolean;
}

function render(r: CutoverReport): string {
  const lines = [`cutover ${r.from} -> ${r.to}: ${r.ok ? 'DONE' : 'NOT DONE'} (${(r.ms / 1000).toFixed(1)} s)`];
  for (const g of r.guardrails) lines.push(`  [${g.ok ? 'ok' : 'FAIL'}] ${g.name}: ${g.detail}`);
  if (r.sync) lines.push(renderSync(r.sync));
  if (r.sync?.verify) lines.push(renderVerify(r.sync.verify));
  for (const s of r.sync?.sequences ?? []) lines.push(`  sequence ${s.sequence} -> next ${s.next}`);
  lines.push(`  ${r.outcome}`, `  next: ${r.next}`);
  return lines.join('\n');
}

export const cutoverCommand: CommandModule<GlobalArgs, CutoverArgs> = {
  command: 'cutover',
  describe: 'Freeze the source, final sync, verify, align sequences: the target becomes current',
  builder: (y) =>
    metricsOption(pairOptions(y, 'Environment serving now (frozen by the cutover)', 'Environment taking over'))
      .option('max-lag', { type: 'string', default: 300, coerce: numberCoerce('max-lag', { min: 0 }), describe: 'Refuse when the target is more than this many seconds behind (sync first)' })
      .option('timeout', { type: 'string', default: 60, coerce: numberCoerce('timeout', { positive: true }), describe: 'Seconds for freeze + final sync; past it the source is unfrozen and keeps serving' })
      .option('switch-command', { type: 'string', describe: 'Shell command run after success, e.g. to flip a load balancer' })
      .option('force', { type: 'boolean', describe: 'Skip the lag and last-verify guardrails' })
      .example('$0 cutover --from blue --to green', 'switch to green; blue stays read-only until rollback or unfreeze')
      .example('$0 cutover --from green --to blue', 'roll back (green writes flow back through the down mappings)')
      .example("$0 cutover --switch-command './flip-lb.sh green'", 'flip traffic once the data is there') as never,
  handler: handle<CutoverArgs>(async (argv, ctx) => {
    if (!Number.isFinite(argv.timeout) || argv.timeout <= 0) {
      throw new UsageError(`--timeout must be a positive number of seconds, got ${argv.timeout}`, 'e.g. --timeout 60');
    }
    const pair = resolvePair(argv, ctx);
    if (argv['metrics-file']) ctx.after(async () => writeMetrics(argv['metrics-file']!, await pairMetrics(ctx, pair)));
    // Ctrl-C or SIGTERM mid-cutover must not leave the source frozen: the cutover stops as
    // on its timeout and unfreezes it. Default handling comes back once it has returned.
    const abort = new AbortController();
    const onSignal = (sig: NodeJS.Signals) => abort.abort(sig);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const r = await cutover({
        ...pair,
        mappingsDir: ctx.settings.mappingsDir,
        logger: ctx.logger,
        maxLagSeconds: argv['max-lag'],
        timeoutMs: argv.timeout * 1000,
        switchCommand: argv['switch-command'],
        force: argv.force,
        signal: abort.signal,
      });
      ctx.output(r, () => render(r));
    } catch (err) {
      // The whole picture first (guardrails, what ran), then the one-line error.
      if (err instanceof CutoverRefusedError) ctx.output(err.report, () => render(err.report));
      throw err;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }),
};
