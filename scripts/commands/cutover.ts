import type { CommandModule } from 'yargs';
import { cutover, CutoverRefusedError, type CutoverReport } from '../../src/cutover/cutover.ts';
import { renderSync } from './sync.ts';
import { renderVerify } from '../../src/verify/verify.ts';
import { handle, pairOptions, resolvePair, type GlobalArgs, type PairArgs } from '../context.ts';
import { lookbackOption, MAX_TIMER_SECONDS, numberCoerce } from '../options.ts';
import { metricsOption, pairMetrics, writeMetrics, type MetricsArgs } from '../metrics.ts';

interface CutoverArgs extends GlobalArgs, PairArgs, MetricsArgs {
  'max-lag': number;
  timeout: number;
  'switch-command'?: string;
  force?: boolean;
  full?: boolean;
  lookback?: string;
  verify: 'full' | 'changed';
}

function render(r: CutoverReport): string {
  const lines = [`cutover ${r.from} -> ${r.to}: ${r.ok ? 'DONE' : 'NOT DONE'} (${(r.ms / 1000).toFixed(1)} s)`];
  for (const g of r.guardrails) lines.push(`  [${g.ok ? (g.warning ? 'WARN' : 'ok') : 'FAIL'}] ${g.name}: ${g.detail}`);
  if (r.verifiedBeforeFreeze?.verify) lines.push(renderVerify(r.verifiedBeforeFreeze.verify));
  if (r.sync) lines.push(renderSync(r.sync));
  if (r.freezeMs !== undefined) lines.push(`  writes on ${r.from} refused for ${(r.freezeMs / 1000).toFixed(2)} s`);
  const d = r.frozenDeletes;
  if (d && (d.captured.length || d.reconciled.length)) {
    lines.push(`  deletes while frozen: ${[d.captured.length ? `captured on ${d.captured.join(', ')}` : '', d.reconciled.length ? `key buckets of whole tables on ${d.reconciled.join(', ')}` : ''].filter(Boolean).join('; ')}`);
  }
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
      .option('timeout', { type: 'string', default: 60, coerce: numberCoerce('timeout', { positive: true, max: MAX_TIMER_SECONDS }), describe: 'Seconds for freeze + final sync; past it the source is unfrozen and keeps serving' })
      .option('switch-command', {
        type: 'string',
        // An empty command (an unset variable in a script) would switch nothing after a
        // cutover the operator expects to flip traffic: refused before anything is frozen.
        coerce: (v: unknown) => {
          if (v === undefined) return undefined;
          if (String(v).trim() === '') throw new Error('--switch-command is empty: give the command that switches traffic, or leave the flag out');
          return String(v);
        },
        describe: 'Shell command run after success, e.g. to flip a load balancer',
      })
      .option('force', { type: 'boolean', describe: 'Skip the lag and last-verify guardrails' })
      // The options sync takes, where they mean something for the final sync.
      .option('full', { type: 'boolean', describe: 'The final sync re-reads every row (a longer freeze)' })
      // Validated as sync validates them, while parsing: a typo is exit 2 before anything connects.
      .option('lookback', { ...lookbackOption, describe: `${lookbackOption.describe}, as for sync` })
      .option('verify', {
        type: 'string',
        default: 'changed',
        coerce: (v: unknown) => {
          if (v === 'full') return 'full';
          if (v === true || v === '' || v === 'true' || v === 'auto' || v === 'changed') return 'changed';
          throw new Error(`cutover --verify must be full or changed (got ${String(v)}): a cutover never skips its final verify`);
        },
        describe: 'changed (default): check the rows the final sync read, inside its transaction (every row was verified before the freeze); full: also compare every row against the final snapshot while frozen (a freeze as long as the database is large). --no-verify is refused',
      })
      .example('$0 cutover --from blue --to green', 'switch to green; blue stays read-only until rollback or unfreeze')
      .example('$0 cutover --from green --to blue', 'roll back (green writes flow back through the down mappings)')
      .example("$0 cutover --switch-command './flip-lb.sh green'", 'flip traffic once the data is there') as never,
  handler: handle<CutoverArgs>(async (argv, ctx) => {
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
        full: argv.full,
        lookback: argv.lookback,
        lockTimeout: argv['lock-timeout'],
        verify: argv.verify,
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
