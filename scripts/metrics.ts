/** `--metrics-file PATH` (status, sync, cutover): a Prometheus textfile, replaced atomically. */
import type { Argv } from 'yargs';
import { RuntimeFailure } from '../src/errors.ts';
import { environmentStatus } from '../src/status.ts';
import { pairsOf, renderPrometheus, writeMetricsFile, type PairMetrics } from '../src/metrics.ts';
import type { Context } from './context.ts';

export interface MetricsArgs {
  'metrics-file'?: string;
}

export function metricsOption<T>(y: Argv<T>) {
  return y.option('metrics-file', {
    type: 'string',
    describe: "Write Prometheus metrics here (node_exporter textfile collector; replaced by write + rename). One file per pair: e.g. /var/lib/node_exporter/bluegreen-blue-green.prom",
  });
}

/** Writes `pairs` to the --metrics-file; a failure to write is one clear error (exit 1). */
export async function writeMetrics(file: string, pairs: PairMetrics[]): Promise<void> {
  try {
    await writeMetricsFile(file, renderPrometheus(pairs));
  } catch (err) {
    throw new RuntimeFailure(`cannot write the metrics file ${file}: ${(err as Error).message}`, 'check that its folder exists and is writable by this user');
  }
}

/** The pair's metrics after a sync or cutover (whatever its outcome), from the target's state. */
export async function pairMetrics(ctx: Context, pair: { from: { name: string; url: string }; to: { name: string; url: string } }): Promise<PairMetrics[]> {
  const [to, from] = [
    await environmentStatus(pair.to.name, pair.to.url, ctx.settings.mappingsDir),
    await environmentStatus(pair.from.name, pair.from.url, ctx.settings.mappingsDir),
  ];
  const pairs = await pairsOf([to, from], (n) => (n === pair.to.name ? pair.to.url : n === pair.from.name ? pair.from.url : undefined));
  const mine = pairs.filter((p) => p.from === pair.from.name && p.to === pair.to.name);
  return mine.length ? mine : [{ from: pair.from.name, to: pair.to.name, lagSeconds: null, frozen: Boolean(from.frozen), lastRun: null, lastFailure: null, rowsTotal: 0 }];
}
