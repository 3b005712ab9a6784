import type { CommandModule } from 'yargs';
import { captureConsumers, environmentStatus, renderStatus, settleCutOvers, statusExitCode } from '../../src/status.ts';
import { readClusterState } from '../../src/env/state.ts';
import { reconcileEnvironments } from '../../src/cutover/reconcile.ts';
import { pairDirections } from '../../src/cutover/direction.ts';
import { pairsOf } from '../../src/metrics.ts';
import { handle, type GlobalArgs } from '../context.ts';
import { metricsOption, writeMetrics, type MetricsArgs } from '../metrics.ts';

interface StatusArgs extends GlobalArgs, MetricsArgs {
  env?: string[];
}

export const statusCommand: CommandModule<GlobalArgs, StatusArgs> = {
  command: 'status',
  describe: 'Versions, watermarks and lag, last run and last verify of every environment',
  builder: (y) =>
    metricsOption(y)
      .option('env', { type: 'string', array: true, describe: 'Environments to show', defaultDescription: 'configured ones, else blue and green' })
      .example('$0 status', 'what a DBA checks before a cutover')
      .example('$0 status --json', 'for monitoring: lag seconds, last run and last failure per pair')
      .example('$0 status --metrics-file /var/lib/node_exporter/bluegreen.prom', 'Prometheus textfile, every pair')
      .epilogue(
        'Exit 0 when every environment was read and no freeze is broken; 1 when an environment is UNREACHABLE ' +
          '(the report is incomplete); 3 when a freeze is BROKEN (writes got through a cutover\'s freeze and may be missing ' +
          'on the other side), which wins over 1. The report is printed either way.',
      ) as never,
  handler: handle<StatusArgs>(async (argv, ctx) => {
    const names = argv.env ?? [...new Set([...Object.keys(ctx.settings.environments), 'blue', 'green', ...Object.keys(readClusterState(ctx.settings.stateDir))])];
    const list: Awaited<ReturnType<typeof environmentStatus>>[] = [];
    const urls = new Map<string, string>();
    for (const name of names) {
      let env;
      try {
        env = ctx.env(name);
      } catch (err) {
        // A name asked for by --env must exist (`status --env purple` is a typo, exit 2);
        // of the default names, one configured nowhere is skipped, a bad URL is not.
        if (argv.env || !/^no database for environment/.test((err as Error).message)) throw err;
        continue; // not configured anywhere: nothing to show
      }
      urls.set(name, env.url);
      list.push(await environmentStatus(name, env.url, ctx.settings.mappingsDir));
    }
    // A cutover stopped between its freeze and its completion mark is decided first, from
    // the two databases: completed if its target committed the final sync, else rolled back.
    const reconciled = await reconcileEnvironments([...urls].map(([name, url]) => ({ name, url })), { write: true, app: 'bluegreen status' });
    for (const r of reconciled) ctx.logger.warn(r.detail);
    if (reconciled.length) {
      list.length = 0;
      for (const [name, url] of urls) list.push(await environmentStatus(name, url, ctx.settings.mappingsDir));
    }
    // A cutover's source unfrozen since (or rolled back to) is no longer "frozen, no lag".
    settleCutOvers(list);
    // What each target consumed of a source's recorded deletes needs both sides.
    await captureConsumers(list, (n) => urls.get(n));
    // Per pair (source -> target): what monitoring alerts on.
    const pairs = await pairsOf(list, (n) => urls.get(n));
    if (argv['metrics-file']) await writeMetrics(argv['metrics-file'], pairs);
    // Each pair also says what its source's delete capture holds (the source's `capture`, per target).
    const withCapture = pairs.map((p) => {
      const c = list.find((e) => e.name === p.from)?.capture;
      const mine = c?.consumers.find((x) => x.target === p.to);
      return { ...p, capture: c ? { tables: c.tables, rows: c.rows, oldest: c.oldest, consumedBefore: mine?.before ?? null, prunable: mine?.prunable ?? 0 } : null };
    });
    const decided = reconciled.map(({ frozen, target, action, detail }) => ({ frozen, target, action, detail }));
    // Which way data flows per pair (src/db/direction.ts): what sync and cutover will accept.
    const directions = await pairDirections([...urls].map(([name, url]) => ({ name, url })));
    ctx.output({ environments: list, pairs: withCapture, directions, ...(decided.length ? { reconciled: decided } : {}) }, () =>
      [
        ...decided.map((r) => `${r.action.toUpperCase()}: ${r.detail}`),
        list.length ? renderStatus(list) : 'no environments: run `bluegreen env up`, or configure blue and green',
        ...directions.map((d) =>
          d.undecided
            ? `direction ${d.a}/${d.b}: ${d.text}: bluegreen direction --from SERVING --to OTHER`
            : `direction ${d.a}/${d.b}: ${d.text}`,
        ),
      ].join('\n'),
    );
    // Monitoring and scripts read the exit code: an unreachable side or a broken freeze is not "ok".
    return statusExitCode(list);
  }),
};
