/** `--metrics-file PATH` (status, sync, cutover): a Prometheus textfile, replaced atomically. */
import { accessSync, constants, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Argv } from 'yargs';
import { ExitCode, RuntimeFailure } from '../src/errors.ts';
import { environmentStatus, type EnvironmentStatus } from '../src/status.ts';
import { attachEnvs, carryForward, envsOf, envsOfPairs, pairsOf, parseSamples, renderPrometheus, writeMetricsFile, type EnvMetrics, type PairMetrics } from '../src/metrics.ts';
import type { Context } from './context.ts';

export interface MetricsArgs {
  'metrics-file'?: string;
}

/**
 * The file's folder must exist and be writable when the arguments are parsed: a typo is
 * exit 2 before anything runs, not a sync that committed and then could not say so.
 */
export function checkMetricsFile(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  const file = String(v);
  if (file === '' || file.endsWith('/')) throw new Error(`--metrics-file must name a file (got ${JSON.stringify(file)})`);
  const dir = path.dirname(path.resolve(file));
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new Error(`--metrics-file ${file}: the folder ${dir} does not exist (create it, or fix the path); nothing was run`);
  }
  if (!isDir) throw new Error(`--metrics-file ${file}: ${dir} is not a folder; nothing was run`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new Error(`--metrics-file ${file}: the folder ${dir} is not writable by this user; nothing was run`);
  }
  // The file is replaced by a rename, which cannot replace a folder.
  let isFolder = false;
  try {
    isFolder = statSync(file).isDirectory();
  } catch {
    // Not there yet: the first run creates it.
  }
  if (isFolder) throw new Error(`--metrics-file ${file} is a folder: name a file in it (e.g. ${path.join(file, 'bluegreen.prom')}); nothing was run`);
  return file;
}

export function metricsOption<T>(y: Argv<T>) {
  return y.option('metrics-file', {
    type: 'string',
    coerce: checkMetricsFile,
    describe: "Write Prometheus metrics here (node_exporter textfile collector; replaced by write + rename). One file per pair: e.g. /var/lib/node_exporter/bluegreen-blue-green.prom",
  });
}

/**
 * Writes `pairs` (and the environments behind them) to the --metrics-file; what this run
 * could not read is carried forward from the file it replaces (src/metrics.ts
 * carryForward: the rows counter never goes back). A failure to write is one clear error
 * (exit 1).
 */
export async function writeMetrics(file: string, pairs: PairMetrics[], envs: EnvMetrics[] = envsOfPairs(pairs)): Promise<void> {
  let previous = new Map<string, number>();
  let ageSeconds = 0;
  try {
    const [text, st] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    previous = parseSamples(text);
    ageSeconds = (Date.now() - st.mtimeMs) / 1000;
  } catch {
    // No file yet (first run): nothing to carry forward.
  }
  const all = carryForward(pairs, envs, previous, ageSeconds);
  try {
    await writeMetricsFile(file, renderPrometheus(all, envs));
  } catch (err) {
    throw new RuntimeFailure(`cannot write the metrics file ${file}: ${(err as Error).message}`, 'check that its folder exists and is writable by this user');
  }
}

/** An environment's status, or "down" when even reading it failed (the metrics are still written). */
async function statusOf(name: string, url: string, mappingsDir: string): Promise<EnvironmentStatus> {
  try {
    return await environmentStatus(name, url, mappingsDir);
  } catch (err) {
    return { name, url: '', reachable: false, error: (err as Error).message, sources: [] };
  }
}

/**
 * The pair's metrics after a sync or cutover, whatever its outcome: read from the target's
 * state, with this run's own outcome over it (a run that failed, exit 1 or 2, is the
 * pair's last run and it did not succeed, even when the target could not record it).
 */
export async function pairMetrics(ctx: Context, pair: { from: { name: string; url: string }; to: { name: string; url: string } }): Promise<PairMetrics[]> {
  const to = await statusOf(pair.to.name, pair.to.url, ctx.settings.mappingsDir);
  const from = await statusOf(pair.from.name, pair.from.url, ctx.settings.mappingsDir);
  let mine: PairMetrics[] = [];
  try {
    const pairs = await pairsOf([to, from], (n) => (n === pair.to.name ? pair.to.url : n === pair.from.name ? pair.from.url : undefined));
    mine = pairs.filter((p) => p.from === pair.from.name && p.to === pair.to.name);
  } catch (err) {
    ctx.logger.warn(`metrics: could not read the run log on ${pair.to.name}: ${(err as Error).message}`);
  }
  if (!mine.length) {
    mine = [{ from: pair.from.name, to: pair.to.name, lagSeconds: null, frozen: Boolean(from.frozen), lastRun: null, lastFailure: null, rowsTotal: 0, verifyDifferences: null, stale: !to.reachable }];
  }
  const outcome = ctx.outcome;
  if (outcome && (outcome.exitCode === ExitCode.failure || outcome.exitCode === ExitCode.invalid)) {
    const finishedAt = new Date().toISOString();
    const failed = {
      kind: outcome.command,
      status: 'failed',
      success: false,
      startedAt: new Date(Date.now() - outcome.durationMs).toISOString(),
      finishedAt,
      durationSeconds: outcome.durationMs / 1000,
      rows: 0,
      error: outcome.error ?? null,
    };
    mine = mine.map((p) => ({ ...p, lastRun: failed, lastFailure: failed }));
  }
  return attachEnvs(mine, envsOf([from, to]));
}
