/**
 * `cutover`: switch the application from one environment to the other without losing an
 * acknowledged write.
 *
 *   guardrails -> freeze source -> final sync (+ verify on its snapshot, sequences moved,
 *   target unfrozen in the same transaction) -> record -> optional switch command
 *
 * Any failure or the --timeout before the final sync commits: the target transaction
 * rolls back, the source is unfrozen and keeps serving, exit non-zero. Rollback is the
 * same command the other way round (green -> blue, through the down mappings).
 */
import { spawn } from 'node:child_process';
import type pg from 'pg';
import { connect } from '../db/connect.ts';
import { detectVersion, VersionCatalogs } from '../db/catalog.ts';
import { compileChain } from '../mapping/index.ts';
import { BluegreenError, ExitCode, RuntimeFailure, VerifyDifferenceError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { sync, type Endpoint, type SyncReport } from '../sync/sync.ts';
import { freeze, frozenBy, unfreeze } from './freeze.ts';

export interface CutoverOptions {
  from: Endpoint;
  to: Endpoint;
  mappingsDir: string;
  logger: Logger;
  /** Refuse when the target's watermarks lag the source by more than this (seconds). */
  maxLagSeconds?: number;
  /** Whole cutover budget after the guardrails, in milliseconds (default 60 s). */
  timeoutMs?: number;
  /** Shell command run after success (flip a load balancer, a DNS name, …). */
  switchCommand?: string;
  /** Skip the lag and last-verify guardrails (versions and mappings are always checked). */
  force?: boolean;
}

export interface Guardrail {
  name: string;
  ok: boolean;
  detail: string;
}

export interface CutoverReport {
  from: string;
  to: string;
  fromVersion?: number;
  toVersion?: number;
  guardrails: Guardrail[];
  ok: boolean;
  /** What happened, in one line. */
  outcome: string;
  frozenAt?: string;
  sync?: SyncReport;
  switchCommand?: { command: string; code: number | null };
  /** What the DBA does next. */
  next: string;
  ms: number;
}

/** The cutover did not happen; the source serves as before. Carries the report. */
export class CutoverRefusedError extends BluegreenError {
  readonly exitCode = ExitCode.failure;
  constructor(
    message: string,
    readonly report: CutoverReport,
    hint?: string,
  ) {
    super(message, hint);
  }
}

async function guardrails(opts: CutoverOptions, src: pg.Client, dst: pg.Client, report: CutoverReport): Promise<void> {
  const g = (name: string, ok: boolean, detail: string) => report.guardrails.push({ name, ok, detail });
  const catalogs = new VersionCatalogs(opts.mappingsDir, dst);
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
  if (report.fromVersion !== undefined && report.toVersion !== undefined) {
    try {
      await compileChain(opts.mappingsDir, report.fromVersion, report.toVersion, Object.fromEntries(await catalogs.all()));
      g('mappings', true, `v${report.fromVersion} -> v${report.toVersion} valid`);
    } catch (err) {
      g('mappings', false, (err as Error).message.split('\n')[0]!);
    }
  }
  const frozen = await frozenBy(src);
  g('source serving', !frozen, frozen ? `already frozen since ${frozen.since} (${frozen.by})` : 'not frozen');
  if (opts.force) return;
  const hasState = (await dst.query(`select to_regclass('bluegreen.watermarks') is not null as ok`)).rows[0].ok;
  if (!hasState) {
    g('lag', false, `${opts.to.name} was never synced from ${opts.from.name}`);
    g('last verify', false, 'none');
    return;
  }
  const lag = await dst.query<{ lag: number | null; n: number }>(
    `select max(extract(epoch from now() - value::timestamptz))::float8 as lag, count(*)::int as n from bluegreen.watermarks where source = $1`,
    [opts.from.name],
  );
  const l = lag.rows[0]!;
  const max = opts.maxLagSeconds ?? 300;
  if (l.n === 0) g('lag', false, `${opts.to.name} was never synced from ${opts.from.name}`);
  else g('lag', (l.lag ?? 0) <= max, `${Math.round(l.lag ?? 0)} s behind (max ${max} s)`);
  const v = await dst.query<{ clean: boolean; at: string }>(
    `select clean, at::text as at from bluegreen.verifies where source = $1 order by id desc limit 1`,
    [opts.from.name],
  );
  const last = v.rows[0];
  g('last verify', Boolean(last?.clean), last ? `${last.clean ? 'clean' : 'DIFFERENCES'} at ${last.at}` : 'none');
}

/** Cancels this cutover's own statements on a server (same role: no privilege needed). */
async function cancelOwn(url: string, label: string, appName: string): Promise<void> {
  const c = await connect(url, { label, applicationName: 'bluegreen cutover-abort' }).catch(() => undefined);
  if (!c) return;
  try {
    await c.query(`select pg_cancel_backend(pid) from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()`, [appName]);
  } finally {
    await c.end().catch(() => {});
  }
}

function runShell(command: string, logger: Logger): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(command, { shell: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => logger.info(`switch: ${String(d).trimEnd()}`));
    child.stderr.on('data', (d) => logger.warn(`switch: ${String(d).trimEnd()}`));
    child.on('close', (code) => resolve(code));
    child.on('error', () => resolve(127));
  });
}

export async function cutover(opts: CutoverOptions): Promise<CutoverReport> {
  const started = Date.now();
  const { logger } = opts;
  const report: CutoverReport = { from: opts.from.name, to: opts.to.name, guardrails: [], ok: false, outcome: '', next: '', ms: 0 };
  const src = await connect(opts.from.url, { label: opts.from.name, applicationName: 'bluegreen cutover-control' });
  let dst: pg.Client | undefined;
  try {
    dst = await connect(opts.to.url, { label: opts.to.name, applicationName: 'bluegreen cutover-control' });
    await guardrails(opts, src, dst, report);
    const failed = report.guardrails.filter((g) => !g.ok);
    if (failed.length) {
      report.outcome = 'refused by guardrails; nothing changed';
      report.next = failed.some((g) => g.name === 'lag' || g.name === 'last verify')
        ? `bluegreen sync --from ${opts.from.name} --to ${opts.to.name} (it verifies), then cutover again`
        : 'fix what the failed guardrails name, then cutover again';
      report.ms = Date.now() - started;
      throw new CutoverRefusedError(
        `cutover ${opts.from.name} -> ${opts.to.name} refused: ${failed.map((g) => `${g.name}: ${g.detail}`).join('; ')}`,
        report,
        report.next,
      );
    }
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const deadline = started + timeoutMs;
    const remaining = () => Math.max(1, deadline - Date.now());

    logger.info(`freezing writes on ${opts.from.name}`);
    const by = `cutover to ${opts.to.name} (v${report.toVersion})`;
    const catalog = await new VersionCatalogs(opts.mappingsDir, dst).get(report.fromVersion!);
    try {
      await freeze(src, Object.keys(catalog.tables), by, `${Math.min(remaining(), 15_000)}ms`);
    } catch (err) {
      report.outcome = `could not freeze ${opts.from.name}: ${(err as Error).message}`;
      report.next = `a long transaction on ${opts.from.name} holds its tables; find it in pg_stat_activity and retry`;
      report.ms = Date.now() - started;
      throw new CutoverRefusedError(`cutover failed: ${report.outcome}; nothing changed`, report, report.next);
    }
    report.frozenAt = new Date().toISOString();

    const appName = `bluegreen cutover ${opts.from.name}->${opts.to.name}`.slice(0, 63);
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const final = sync({
      from: { ...opts.from, version: report.fromVersion },
      to: { ...opts.to, version: report.toVersion },
      mappingsDir: opts.mappingsDir,
      logger,
      kind: 'cutover',
      verify: 'full', // the critical moment: compare every row, not just what changed
      lockTimeout: `${Math.min(remaining(), 15_000)}ms`,
      // The target becomes the writable side in the same transaction as its final data.
      beforeCommit: async (target) => {
        if (timedOut) throw new RuntimeFailure('cutover timed out');
        await unfreeze(target);
      },
    });
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new RuntimeFailure(`cutover timed out after ${Math.round(timeoutMs / 1000)} s`));
      }, remaining());
    });
    try {
      report.sync = await Promise.race([final, timeout]);
      if (report.sync.verify && !report.sync.verify.clean) {
        throw new VerifyDifferenceError(`final verify found differences between ${opts.from.name} and ${opts.to.name}`);
      }
    } catch (err) {
      if (timedOut) {
        await Promise.all([cancelOwn(opts.from.url, opts.from.name, appName), cancelOwn(opts.to.url, opts.to.name, appName)]);
        await final.catch(() => {});
      }
      // Leave the source serving, whatever happened.
      await unfreeze(src);
      report.outcome = `${(err as Error).message}; ${opts.from.name} unfrozen and serving`;
      report.next = `the application stays on ${opts.from.name}; investigate, then bluegreen sync and cutover again`;
      report.ms = Date.now() - started;
      const e = new CutoverRefusedError(`cutover failed: ${report.outcome}`, report, report.next);
      throw e;
    } finally {
      clearTimeout(timer);
    }

    report.ok = true;
    report.outcome = `${opts.to.name} is current at v${report.toVersion}; ${opts.from.name} is frozen (read-only)`;
    report.next =
      `point the application at ${opts.to.name}. To keep ${opts.from.name} current for a rollback: ` +
      `bluegreen sync --from ${opts.to.name} --to ${opts.from.name}; to roll back: bluegreen cutover --from ${opts.to.name} --to ${opts.from.name}`;
    if (opts.switchCommand) {
      logger.info(`running switch command`);
      const code = await runShell(opts.switchCommand, logger);
      report.switchCommand = { command: opts.switchCommand, code };
      if (code !== 0) {
        report.ms = Date.now() - started;
        throw new CutoverRefusedError(
          `cutover done but the switch command exited ${code}: the data is on ${opts.to.name}, ${opts.from.name} is frozen, traffic was NOT switched`,
          report,
          'run the switch by hand now; or bluegreen unfreeze --env ' + opts.from.name + ' to let the application keep writing there',
        );
      }
    }
    report.ms = Date.now() - started;
    return report;
  } finally {
    await dst?.end().catch(() => {});
    await src.end().catch(() => {});
  }
}
