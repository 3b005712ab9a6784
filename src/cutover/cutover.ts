/**
 * `cutover`: switch the application from one environment to the other without losing an
 * acknowledged write.
 *
 *   guardrails -> full verify unless a clean one is newer than the last sync (a sync
 *   verifying every row against its own snapshot, source still serving) -> freeze source
 *   -> final sync (+ the `changed` check of what it read, sequences moved, target
 *   unfrozen, all in one transaction) -> freeze marked complete and the reverse
 *   direction's watermarks seeded -> optional switch
 *
 * The freeze therefore costs what changed since the last sync, not the database's size
 * (src/cutover/before-freeze.ts); the report says how long writes were refused.
 *
 * The --timeout, or the caller's AbortSignal (Ctrl-C, SIGTERM), or any failure before the
 * freeze is marked complete: the cutover's own statements are cancelled, the target rolls
 * back (or, when it had already committed and the verify failed or was stopped, is frozen
 * again so nobody writes to both sides), the source is unfrozen and keeps serving, exit
 * non-zero. A process killed outright leaves the source frozen WITHOUT the completion mark;
 * `status` and the next cutover report it as interrupted and say to unfreeze it.
 * Rollback is the same command the other way round (green -> blue, down mappings).
 */
import { spawn } from 'node:child_process';
import type pg from 'pg';
import { connect } from '../db/connect.ts';
import { recordFailedRun } from '../db/state.ts';
import { detectVersion, VersionCatalogs } from '../db/catalog.ts';
import { compileChain } from '../mapping/index.ts';
import { BluegreenError, ExitCode, InvalidInputError, RuntimeFailure, VerifyDifferenceError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { sync, type Endpoint, type SyncReport } from '../sync/sync.ts';
import { freezeTimer } from '../progress.ts';
import { syncPreflight } from '../sync/preflight.ts';
import { dropFreezeTriggers, freeze, frozenBy, markFreezeCompleted, unfreeze, unfreezeNow } from './freeze.ts';
import { lastFullVerify, seedReverseWatermarks, targetHorizon } from './before-freeze.ts';
import { lockAndCheckFreeze } from '../db/freeze-guard.ts';
import { acquireTargetLock } from '../sync/lock.ts';

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
  /**
   * Stops the cutover like the timeout does (Ctrl-C, SIGTERM): own statements cancelled,
   * the target rolled back (or frozen again if it had committed), the source unfrozen.
   */
  signal?: AbortSignal;
  /** As sync's: extra margin subtracted from watermark lower bounds (PostgreSQL interval). */
  lookback?: string;
  /** As sync's: give up waiting for target table locks after this long (default: 15 s or what is left of the timeout). */
  lockTimeout?: string;
  /** The final sync re-reads every row, not only what changed since the last sync. */
  full?: boolean;
  /**
   * The check while frozen: `changed` (default) checks, inside the final sync's
   * transaction, the rows it read (every row was verified before the freeze); `full`
   * also compares every row against the final sync's snapshot, after its commit (a
   * freeze as long as the database is large).
   */
  verify?: 'full' | 'changed';
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
  /**
   * How long application writes on the source were refused or held: from the freeze
   * taking its locks to the target committing the final sync (it is writable from then),
   * or to the source being unfrozen again when the cutover failed.
   */
  freezeMs?: number;
  /** The sync with a full verify run before the freeze, when the last clean one was older than the last sync. */
  verifiedBeforeFreeze?: SyncReport;
  /** Watermarks of the reverse direction (target -> source) seeded at cutover, per table. */
  reverseWatermarks?: Record<string, string>;
  sync?: SyncReport;
  switchCommand?: { command: string; code: number | null };
  /** What the DBA does next. */
  next: string;
  ms: number;
}

/** The cutover did not happen; the source serves as before. Carries the report. */
export class CutoverRefusedError extends BluegreenError {
  constructor(
    message: string,
    readonly report: CutoverReport,
    hint?: string,
    /** 1, or 3 when the final verify found differences (the target was frozen again). */
    readonly exitCode: ExitCode = ExitCode.failure,
  ) {
    super(message, hint);
  }
}

export async function guardrails(opts: CutoverOptions, src: pg.Client, dst: pg.Client, report: CutoverReport): Promise<void> {
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
      const all = Object.fromEntries(await catalogs.all());
      const chain = await compileChain(opts.mappingsDir, report.fromVersion, report.toVersion, all);
      g('mappings', true, `v${report.fromVersion} -> v${report.toVersion} valid`);
      // What would make the final sync refuse, found while refusing costs nothing.
      for (const c of await syncPreflight(src, dst, chain, all[report.fromVersion]!, opts.to.name, { lookback: opts.lookback, lockTimeout: opts.lockTimeout })) g(c.name, c.ok, c.detail);
    } catch (err) {
      g('mappings', false, (err as Error).message.split('\n')[0]!);
    }
  }
  const frozen = await frozenBy(src);
  if (!frozen) g('source serving', true, 'not frozen');
  else if (!frozen.completed) {
    g(
      'source serving',
      false,
      `frozen since ${frozen.since} by an interrupted ${frozen.by}: its writes since then may not be on ${frozen.target ?? 'the target'}; ` +
        `run bluegreen unfreeze --env ${opts.from.name} and retry`,
    );
  } else g('source serving', false, `already frozen since ${frozen.since} (${frozen.by}): the application writes to ${frozen.target ?? 'the other side'}`);
  if (opts.force) return;
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
  // freeze (see cutover()), and that one decides.
  const v = await lastFullVerify(dst, opts.from.name);
  g('last verify', true, v.fresh ? v.detail : `${v.detail}: verifying every row before freezing`);
}

/**
 * Cancels the statements of the sessions named `appNames` in this database (same role: no
 * privilege needed): the final sync's and its verify's, or the control session's freeze.
 */
async function cancelOwn(url: string, label: string, appNames: string[], pids: number[] = []): Promise<void> {
  const c = await connect(url, { label, applicationName: 'bluegreen cutover-abort' }).catch(() => undefined);
  if (!c) return;
  try {
    await c.query(
      `select pg_cancel_backend(pid) from pg_stat_activity
        where (application_name = any($1) or pid = any($2)) and pid <> pg_backend_pid()
          -- Only this database's: the same role may run other pairs on the same server.
          and datname = current_database()`,
      [appNames, pids],
    );
  } catch {
    // Best effort: the caller waits a bounded time for what it tried to stop.
  } finally {
    await c.end().catch(() => {});
  }
}

/** Settles `p` or gives up after `ms`; true when it settled. */
function settled(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.then(() => true, () => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]).finally(() => clearTimeout(timer));
}

/** Whether the final sync committed on the target: its run record is there. */
async function targetCommitted(dst: pg.Client, source: string, since: Date): Promise<boolean | 'unknown'> {
  try {
    if (!(await dst.query(`select to_regclass('bluegreen.runs') is not null as ok`)).rows[0].ok) return false;
    const r = await dst.query(`select 1 from bluegreen.runs where kind = 'cutover' and status = 'ok' and source = $1 and started_at >= $2`, [source, since]);
    return (r.rowCount ?? 0) > 0;
  } catch {
    return 'unknown';
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
  if (opts.timeoutMs !== undefined && !(opts.timeoutMs > 0)) {
    throw new InvalidInputError(`cutover timeout must be positive, got ${opts.timeoutMs / 1000} s`, 'give the seconds freeze + final sync may take, e.g. --timeout 60');
  }
  const report: CutoverReport = { from: opts.from.name, to: opts.to.name, guardrails: [], ok: false, outcome: '', next: '', ms: 0 };
  const from = opts.from.name;
  const to = opts.to.name;
  const refused = (outcome: string, next: string, message = `cutover failed: ${outcome}`, exitCode: ExitCode = ExitCode.failure) => {
    report.outcome = outcome;
    report.next = next;
    report.ms = Date.now() - started;
    return new CutoverRefusedError(message, report, next, exitCode);
  };
  const src = await connect(opts.from.url, { label: from, applicationName: 'bluegreen cutover-control' });
  let dst: pg.Client | undefined;
  // One way to stop, for the timeout and for the caller's signal (Ctrl-C, SIGTERM).
  let stopped: string | undefined;
  let rejectStop!: (err: Error) => void;
  const stop = new Promise<never>((_, reject) => (rejectStop = reject));
  stop.catch(() => {});
  const halt = (why: string) => {
    if (stopped) return;
    stopped = why;
    logger.warn(`${why}: stopping; ${from} will be unfrozen and keep serving`);
    rejectStop(new RuntimeFailure(why));
  };
  const onAbort = () => halt(`cutover interrupted (${reasonText(opts.signal?.reason)})`);
  let timer: NodeJS.Timeout | undefined;
  try {
    dst = await connect(opts.to.url, { label: to, applicationName: 'bluegreen cutover-control' });
    // The target's lock before anything else: a sync running into it must make this
    // cutover fail before it freezes the source, not after (held until dst closes).
    await acquireTargetLock(dst, `target ${to}`);
    await guardrails(opts, src, dst, report);
    const failed = report.guardrails.filter((g) => !g.ok);
    if (failed.length) {
      const interrupted = failed.find((g) => g.name === 'source serving' && /interrupted/.test(g.detail));
      const next = interrupted
        ? `bluegreen unfreeze --env ${from}, then cutover again`
        : failed.some((g) => g.name === 'lag' || g.name === 'last verify')
          ? `bluegreen sync --from ${from} --to ${to} (it verifies), then cutover again`
          : 'fix what the failed guardrails name, then cutover again';
      throw refused(
        'refused by guardrails; nothing changed',
        next,
        `cutover ${from} -> ${to} refused: ${failed.map((g) => `${g.name}: ${g.detail}`).join('; ')}`,
      );
    }
    if (!opts.force && !(await lastFullVerify(dst, from)).fresh) {
      // Every row compared while the source still serves, against the snapshot this sync
      // read; the frozen part then checks only what changed since.
      logger.info(`verifying every row before freezing ${from} (sync with a full verify)`);
      const pre = await sync({
        from: { ...opts.from, version: report.fromVersion },
        to: { ...opts.to, version: report.toVersion },
        mappingsDir: opts.mappingsDir,
        logger,
        verify: 'full',
        lookback: opts.lookback,
        targetLockHeld: true, // by the control session
      });
      report.verifiedBeforeFreeze = pre;
      const clean = Boolean(pre.verify?.clean);
      report.guardrails.push({ name: 'verify before freeze', ok: clean, detail: clean ? `clean (${pre.mode} sync + full verify in ${pre.ms} ms)` : 'DIFFERENCES' });
      if (!clean) {
        throw refused(
          'refused: the verify before freezing found differences; nothing frozen',
          `bluegreen sync --repair --from ${from} --to ${to} (re-copies the keys the verify named), then cutover again`,
          `cutover ${from} -> ${to} refused: the full verify before the freeze found differences`,
          ExitCode.verifyDiff,
        );
      }
    }
    if (opts.signal?.aborted) throw refused(`interrupted (${reasonText(opts.signal.reason)}) before freezing; nothing changed`, 'cutover again when ready');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    const remaining = () => Math.max(1, deadline - Date.now());
    timer = setTimeout(() => halt(`cutover timed out after ${Math.round(timeoutMs / 1000)} s`), timeoutMs);

    logger.info(`freezing writes on ${from}`);
    const controlPid = (await src.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    const catalog = await new VersionCatalogs(opts.mappingsDir, dst).get(report.fromVersion!);
    // Writers queue behind the freeze's locks from here: the refused time starts now.
    const freezeStarted = Date.now();
    const freezing = freeze(src, Object.keys(catalog.tables), {
      by: `cutover to ${to} (v${report.toVersion})`,
      target: to,
      lockTimeout: `${Math.min(remaining(), 15_000)}ms`,
    });
    let freezeSettled = false;
    void freezing.then(() => (freezeSettled = true), () => (freezeSettled = true));
    try {
      await Promise.race([freezing, stop]);
    } catch (err) {
      // Cancel only a freeze still waiting: the control session runs the unfreeze next.
      if (stopped && !freezeSettled) await cancelOwn(opts.from.url, from, [], [controlPid]);
      // The freeze may have committed just as it was stopped: then unfreeze below.
      const froze = await freezing.then(() => true, () => false);
      if (!froze) {
        throw stopped
          ? refused(`${stopped} while freezing ${from}; nothing changed`, 'cutover again when ready')
          : refused(
              `could not freeze ${from}: ${(err as Error).message}; nothing changed`,
              `a long transaction on ${from} holds its tables; find it in pg_stat_activity and retry`,
            );
      }
    }
    const frozenAt = new Date();
    report.frozenAt = frozenAt.toISOString();
    // A live "writes frozen on blue: N s" line until the target takes the writes (or the source is unfrozen).
    const frozenTimer = freezeTimer(logger, from);

    const runApps = [`bluegreen cutover ${from}->${to}`.slice(0, 63), `bluegreen verify ${from}->${to}`.slice(0, 63)];
    let final: Promise<SyncReport> | undefined;
    let reverseHorizon: string | undefined;
    try {
      if (stopped) throw new RuntimeFailure(stopped);
      final = sync({
        from: { ...opts.from, version: report.fromVersion },
        to: { ...opts.to, version: report.toVersion },
        mappingsDir: opts.mappingsDir,
        logger,
        kind: 'cutover',
        targetLockHeld: true, // by the control session, since before the freeze
        // Every row was compared before the freeze; frozen, only what the final sync read
        // is checked, inside its transaction: a difference rolls the target back.
        verify: opts.verify ?? 'changed',
        lockTimeout: opts.lockTimeout ?? `${Math.min(remaining(), 15_000)}ms`,
        lookback: opts.lookback,
        full: opts.full,
        // The target becomes the writable side in the same transaction as its final data.
        beforeCommit: async (target, r) => {
          if (stopped) throw new RuntimeFailure(stopped);
          if (r.check && !r.check.clean) {
            const bad = r.check.tables.filter((t) => t.mismatched || t.sourceRows !== t.targetRows).map((t) => t.table);
            throw new VerifyDifferenceError(`the final check found differences between ${from} and ${to} in ${bad.join(', ')}`);
          }
          reverseHorizon = await targetHorizon(opts.to.url, to, logger);
          await unfreeze(target);
        },
      });
      report.sync = await Promise.race([final, stop]);
      report.freezeMs = Date.now() - freezeStarted;
      if ((report.sync.verify && !report.sync.verify.clean) || (report.sync.check && !report.sync.check.clean)) {
        throw new VerifyDifferenceError(`the final verify found differences between ${from} and ${to} after ${to} committed`);
      }
      // Only now is the freeze a finished cutover's: a source frozen without this mark was
      // left by a killed run, and its writes may not be on the target. The reverse
      // direction's watermarks commit with it.
      await src.query('begin');
      await src.query(`set local lock_timeout = '5s'`);
      // The owner of the tables can walk through a freeze: a cutover whose source took
      // writes after the freeze is not a clean one. Checked under lock, so the seal the
      // completion renews absorbs nothing (src/db/freeze-guard.ts).
      const held = await lockAndCheckFreeze(src);
      if (held.findings.length) throw new RuntimeFailure(`the freeze on ${from} did not hold: ${held.findings.join('; ')}`);
      await markFreezeCompleted(src);
      if (reverseHorizon) {
        const all = Object.fromEntries(await new VersionCatalogs(opts.mappingsDir, dst).all());
        report.reverseWatermarks = await seedReverseWatermarks(src, {
          source: to,
          fromVersion: report.toVersion!,
          toVersion: report.fromVersion!,
          mappingsDir: opts.mappingsDir,
          catalogs: all,
          horizon: reverseHorizon,
        });
      }
      await src.query('commit');
      frozenTimer();
    } catch (err) {
      frozenTimer();
      await src.query('rollback').catch(() => {});
      throw await abandon(err);
    }
    // Done: neither the deadline nor a signal may undo it from here (the switch command
    // below is reported on its own).
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);

    // The triggers lifted on the target in the final sync's transaction are inert now.
    await dropFreezeTriggers(dst).catch(() => {});
    report.ok = true;
    report.outcome = `${to} is current at v${report.toVersion}; ${from} is frozen (read-only)`;
    report.next =
      `point the application at ${to}. To keep ${from} current for a rollback: ` +
      `bluegreen sync --from ${to} --to ${from}; to roll back: bluegreen cutover --from ${to} --to ${from}`;
    if (opts.switchCommand) {
      logger.info(`running switch command`);
      const code = await runShell(opts.switchCommand, logger);
      report.switchCommand = { command: opts.switchCommand, code };
      if (code !== 0) {
        report.ms = Date.now() - started;
        throw new CutoverRefusedError(
          `cutover done but the switch command exited ${code}: the data is on ${to}, ${from} is frozen, traffic was NOT switched`,
          report,
          'run the switch by hand now; or bluegreen unfreeze --env ' + from + ' to let the application keep writing there',
        );
      }
    }
    report.ms = Date.now() - started;
    return report;

    /**
     * The failure path after the freeze: stop what runs, put the target back the way the
     * application must see it, unfreeze the source. Returns the error to throw.
     */
    async function abandon(err: unknown): Promise<CutoverRefusedError> {
      const differences = err instanceof VerifyDifferenceError;
      const why = stopped ?? (err as Error).message;
      if (stopped && final) {
        // Both the final sync's sessions and its verify's: the deadline holds throughout.
        await Promise.all([cancelOwn(opts.from.url, from, runApps), cancelOwn(opts.to.url, to, runApps)]);
        if (!(await settled(final, 15_000))) logger.warn('the final sync did not stop in 15 s; it cannot commit any more (stopped before commit)');
      }
      const notes: string[] = [];
      // Once the target committed (the run ended in verify, or the stop came after the
      // commit) it is current and writable: freeze it again so nobody writes to both.
      const committed = final ? await targetCommitted(dst!, from, frozenAt) : false;
      if (committed !== false) {
        try {
          const targetCatalog = await new VersionCatalogs(opts.mappingsDir, dst!).get(report.toVersion!);
          await freeze(dst!, Object.keys(targetCatalog.tables), {
            by: `failed cutover from ${from}: ${differences ? 'final verify found differences' : why}`,
            target: from,
            completed: true,
            lockTimeout: '5s',
          });
          notes.push(`${to} had committed the final sync: frozen again`);
        } catch (e) {
          notes.push(`${to} may have committed the final sync and could NOT be frozen again (${(e as Error).message}): keep the application off ${to}`);
        }
      } else {
        notes.push(`${to} rolled back`);
      }
      let next = `the application stays on ${from}; investigate, then bluegreen sync and cutover again`;
      try {
        await unfreezeNow(src);
        report.freezeMs = Date.now() - freezeStarted;
        notes.push(`${from} unfrozen and serving`);
      } catch (e) {
        notes.push(`${from} is STILL FROZEN (${(e as Error).message})`);
        next = `run bluegreen unfreeze --env ${from} now so the application can write again; then investigate, sync and cutover again`;
      }
      if (differences) {
        next = `the application stays on ${from}; bluegreen verify --from ${from} --to ${to} names the differing keys, bluegreen sync --repair re-copies them; then cutover again`;
      }
      return refused(`${why}; ${notes.join('; ')}`, next, undefined, differences ? ExitCode.verifyDiff : ExitCode.failure);
    }
  } catch (err) {
    // Refused or failed before the final sync ran (guardrails, the freeze): recorded on the
    // target like any failed run; the final sync records its own failures.
    if (dst && !report.frozenAt) await recordFailedRun(dst, { kind: 'cutover', source: from, startedAt: new Date(started), error: err });
    throw err;
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    await dst?.end().catch(() => {});
    await src.end().catch(() => {});
  }
}

function reasonText(reason: unknown): string {
  if (typeof reason === 'string') return reason;
  if (reason instanceof Error) return reason.message;
  return 'aborted';
}
