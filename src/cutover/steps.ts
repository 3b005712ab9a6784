/**
 * The cutover's steps, in the order src/cutover/cutover.ts composes them. Each takes the
 * run's shared state (`CutoverRun`) and either advances it or throws the refusal to report:
 *
 *   preflight -> verifyBeforeFreeze -> catchUpBeforeFreeze -> freezeSource -> finalSync -> completeFreeze -> finish
 *                                                                             \-- on any failure: abandon
 */
import { spawn } from 'node:child_process';
import type pg from 'pg';
import { connect, sessionTimeouts, setSessionTimeouts } from '../db/connect.ts';
import { VersionCatalogs } from '../db/catalog.ts';
import { ExitCode, RuntimeFailure, VerifyDifferenceError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { sync, type SyncOptions, type SyncReport } from '../sync/sync.ts';
import { acquireTargetLock } from '../sync/lock.ts';
import { dropFreezeTriggers, freeze, FreezeLockError, unfreeze, unfreezeNow } from './freeze.ts';
import { lastFullVerify, reverseWatermarks, targetHorizon } from './before-freeze.ts';
import { checkFreezeSeal } from '../db/freeze-guard.ts';
import { completeOnSource, cutoverCommit, recordCutoverCommit, reconcilePair, type CutoverCommit } from './reconcile.ts';
import { faultPoint } from '../fault.ts';
import { guardrails } from './guardrails.ts';
import { cancelOwn, reasonText, settled, type Stopper } from './stop.ts';
import { CutoverRefusedError, type CutoverOptions, type CutoverReport, type FrozenDeletes } from './report.ts';

/** What the steps of one cutover share. */
export interface CutoverRun {
  opts: CutoverOptions;
  report: CutoverReport;
  /** Date.now() when the cutover began (for `report.ms`). */
  started: number;
  src: pg.Client;
  dst: pg.Client;
  stop: Stopper;
  /** Date.now() when the freeze began taking its locks: writers queue from here. */
  freezeStarted?: number;
  /** When the freeze committed. */
  frozenAt?: Date;
  /** The final sync, once started (the failure path waits for it). */
  final?: Promise<SyncReport>;
  /** The source's freeze (FreezeInfo.id), once it committed. */
  freezeId?: string;
  /** What the target committed with the final sync (the point of no return), once built. */
  commit?: CutoverCommit;
}

/** The refusal to throw: fills the report's outcome, next step and duration. */
export function refused(run: CutoverRun, outcome: string, next: string, message = `cutover failed: ${outcome}`, exitCode: ExitCode = ExitCode.failure): CutoverRefusedError {
  run.report.outcome = outcome;
  run.report.next = next;
  run.report.ms = Date.now() - run.started;
  return new CutoverRefusedError(message, run.report, next, exitCode);
}

/** Application names of the final sync's and its verify's sessions (cancelled on abort). */
function runApps(from: string, to: string): string[] {
  return [`bluegreen cutover ${from}->${to}`.slice(0, 63), `bluegreen verify ${from}->${to}`.slice(0, 63)];
}

/**
 * The target's writer lock, an interrupted earlier cutover decided, then every guardrail;
 * throws the refusal when one failed. 'done': an earlier run of this very cutover had
 * passed its point of no return and is now completed; there is nothing left to do.
 */
export async function preflight(run: CutoverRun): Promise<'proceed' | 'done'> {
  const { opts, report, src, dst } = run;
  const [from, to] = [opts.from.name, opts.to.name];
  // The target's lock before anything else: a sync running into it must make this
  // cutover fail before it freezes the source, not after (held until dst closes).
  await acquireTargetLock(dst, `target ${to}`);
  // An earlier cutover of this pair (either way) killed between its freeze and its
  // completion mark is decided first, from the two databases (src/cutover/reconcile.ts).
  const reconciled = await reconcilePair({ name: from, client: src }, { name: to, client: dst }, { write: true });
  for (const r of reconciled) opts.logger.warn(r.detail);
  if (reconciled.length) report.reconciled = reconciled.map(({ frozen, target, action, detail }) => ({ frozen, target, action, detail }));
  if (reconciled.some((r) => r.action === 'rolled-forward' && r.frozen === from)) return 'done';
  await guardrails(opts, src, dst, report);
  for (const w of report.guardrails.filter((g) => g.warning)) opts.logger.warn(`${w.name}: ${w.detail}`);
  const failed = report.guardrails.filter((g) => !g.ok);
  if (!failed.length) return 'proceed';
  const interrupted = failed.find((g) => g.name === 'source serving' && /has not completed/.test(g.detail));
  const open = failed.find((g) => g.name === 'direction' && /choose a direction/.test(g.detail));
  const served = failed.find((g) => (g.name === 'source serving' && /already frozen/.test(g.detail)) || g.name === 'direction');
  const next = interrupted
    ? interrupted.detail.replace(/^.*?: (bluegreen status)/, '$1')
    : open
      ? `decide which side serves: bluegreen direction --from ${from} --to ${to} (or --from ${to} --to ${from}), then bluegreen sync the same way, then cutover again; or cutover --force to let ${from}'s data win`
    : served
      ? `${to} serves now: keep ${from} current with bluegreen sync --from ${to} --to ${from}; to move the application back to ${from}: bluegreen cutover --from ${to} --to ${from}`
    : failed.some((g) => g.name === 'lag' || g.name === 'last verify')
      ? `bluegreen sync --from ${from} --to ${to} (it verifies), then cutover again`
      : 'fix what the failed guardrails name, then cutover again';
  throw refused(run, 'refused by guardrails; nothing changed', next, `cutover ${from} -> ${to} refused: ${failed.map((g) => `${g.name}: ${g.detail}`).join('; ')}`);
}

/** A sync of the pair before the freeze, the source still serving, under the control session's lock. */
function syncWhileServing(run: CutoverRun, options: Pick<SyncOptions, 'verify' | 'lockTimeout'>): Promise<SyncReport> {
  const { opts, report } = run;
  return sync({
    from: { ...opts.from, version: report.fromVersion },
    to: { ...opts.to, version: report.toVersion },
    mappingsDir: opts.mappingsDir,
    logger: opts.logger,
    lookback: opts.lookback,
    targetLockHeld: true, // by the control session
    force: opts.force, // --force reaches every sync the cutover runs
    ...options,
  });
}

/** Unless a clean full verify is newer than the last sync: a sync with a full verify, source still serving. */
export async function verifyBeforeFreeze(run: CutoverRun): Promise<void> {
  const { opts, report, dst } = run;
  const [from, to] = [opts.from.name, opts.to.name];
  if (opts.force || (await lastFullVerify(dst, from)).fresh) return;
  // Every row compared while the source still serves, against the snapshot this sync
  // read; the frozen part then checks only what changed since.
  opts.logger.info(`verifying every row before freezing ${from} (sync with a full verify)`);
  const pre = await syncWhileServing(run, { verify: 'full' });
  report.verifiedBeforeFreeze = pre;
  const clean = Boolean(pre.verify?.clean);
  report.guardrails.push({ name: 'verify before freeze', ok: clean, detail: clean ? `clean (${pre.mode} sync + full verify in ${pre.ms} ms)` : 'DIFFERENCES' });
  if (!clean) {
    throw refused(
      run,
      'refused: the verify before freezing found differences; nothing frozen',
      `bluegreen sync --repair --from ${from} --to ${to} (re-copies the keys the verify named), then cutover again`,
      `cutover ${from} -> ${to} refused: the full verify before the freeze found differences`,
      ExitCode.verifyDiff,
    );
  }
}

/** How long the catch-up waits for the target's table locks before leaving the backlog to the final sync. */
const CATCH_UP_LOCK_WAIT_MS = 5_000;

/**
 * One more incremental sync while the source still serves, when none ran just now (the
 * verify before the freeze was already fresh). Otherwise the frozen part would carry
 * everything written since cron's last run: with 1% of a 5M-user database changed, that
 * is seconds of refused writes. After it, the final sync reads only the few seconds of
 * writes since this one's snapshot, whatever the backlog was. Its own `changed` check
 * runs as in any sync; a difference refuses the cutover before anything is frozen.
 * Skipped for `--full` (the final sync rereads everything anyway).
 */
export async function catchUpBeforeFreeze(run: CutoverRun): Promise<void> {
  const { opts, report } = run;
  const [from, to] = [opts.from.name, opts.to.name];
  if (report.verifiedBeforeFreeze || opts.full) return;
  opts.logger.info(`catching up before freezing ${from} (an incremental sync while it still serves)`);
  // Only a shortcut: when something holds the target's tables, waiting the usual 30 s
  // (longer than a DBA's --timeout may be) buys nothing. The final sync then carries the
  // backlog, under the cutover's deadline, as it would without this step.
  const wait = Math.min(opts.timeoutMs ?? 60_000, CATCH_UP_LOCK_WAIT_MS);
  let pre: SyncReport;
  // Its sessions wait at most that long for any lock, the reads before its transaction too.
  const saved = sessionTimeouts();
  setSessionTimeouts({ lockMs: Math.min(saved.lockMs, wait) });
  try {
    pre = await syncWhileServing(run, { verify: 'changed', lockTimeout: `${wait}ms` });
  } catch (err) {
    if ((err as { code?: string }).code !== '55P03') throw err; // lock_not_available
    const detail = `skipped: ${to}'s tables stayed locked for ${wait} ms; the final sync carries everything since the last sync`;
    opts.logger.warn(`catch-up before freeze ${detail}`);
    report.guardrails.push({ name: 'catch-up before freeze', ok: true, warning: true, detail });
    return;
  } finally {
    setSessionTimeouts(saved);
  }
  report.caughtUpBeforeFreeze = pre;
  const clean = pre.check?.clean ?? true;
  const rows = pre.tables.reduce((a, t) => a + t.inserted + t.updated + t.deleted, 0);
  report.guardrails.push({ name: 'catch-up before freeze', ok: clean, detail: clean ? `${rows} rows in ${pre.ms} ms (${pre.mode})` : 'DIFFERENCES' });
  if (!clean) {
    throw refused(
      run,
      'refused: the catch-up sync before freezing found differences; nothing frozen',
      `bluegreen verify --from ${from} --to ${to}, then bluegreen sync --repair --from ${from} --to ${to}, then cutover again`,
      `cutover ${from} -> ${to} refused: the catch-up sync before the freeze found differences`,
      ExitCode.verifyDiff,
    );
  }
}

/**
 * Arms the deadline and the signal, then freezes the source's writes. Throws the refusal
 * (nothing changed) when the freeze did not commit; sets `freezeStarted` and `frozenAt`.
 */
export async function freezeSource(run: CutoverRun): Promise<void> {
  const { opts, report, src, dst, stop } = run;
  const [from, to] = [opts.from.name, opts.to.name];
  if (opts.signal?.aborted) throw refused(run, `interrupted (${reasonText(opts.signal.reason)}) before freezing; nothing changed`, 'cutover again when ready');
  stop.arm(opts.timeoutMs ?? 60_000);

  opts.logger.info(`freezing writes on ${from}`);
  const controlPid = (await src.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  // Every table of the source's version, carried or not: a frozen side takes no writes at
  // all, so an application still pointed at it fails loudly everywhere instead of writing
  // rows (into a table the mapping declares lost) that no side will ever show.
  const tables = Object.keys((await new VersionCatalogs(opts.mappingsDir, dst).get(report.fromVersion!)).tables);
  // Writers queue behind the freeze's locks from here (refined to the attempt that froze).
  run.freezeStarted = Date.now();
  const freezing = freeze(src, tables, {
    by: `cutover to ${to} (v${report.toVersion})`,
    target: to,
    waitMs: Math.min(stop.remaining(), 15_000),
    stopped: () => Boolean(stop.why),
  });
  let freezeSettled = false;
  void freezing.then(() => (freezeSettled = true), () => (freezeSettled = true));
  try {
    const froze = await Promise.race([freezing, stop.stopped]);
    run.freezeStarted = froze.startedAt;
    run.freezeId = froze.id;
    report.freezeAttempts = froze.attempts;
  } catch (err) {
    // Cancel only a freeze still waiting: the control session runs the unfreeze next.
    if (stop.why && !freezeSettled) await cancelOwn(opts.from.url, from, [], [controlPid]);
    // The freeze may have committed just as it was stopped: then unfreeze (abandon) follows.
    const froze = await freezing.then((f) => f, () => undefined);
    if (froze) {
      run.freezeStarted = froze.startedAt;
      run.freezeId = froze.id;
      report.freezeAttempts = froze.attempts;
    } else {
      const prepared = await preparedHint(src, from);
      if (err instanceof FreezeLockError) report.freezeAttempts = err.attempts;
      throw stop.why
        ? refused(run, `${stop.why} while freezing ${from}; nothing changed`, prepared ?? 'cutover again when ready')
        : refused(
            run,
            `could not freeze ${from}: ${(err as Error).message}; nothing changed`,
            prepared ??
              (err instanceof FreezeLockError
                ? `the sessions named hold ${from}'s tables in long transactions: let them finish (or end a stuck one with pg_terminate_backend(pid)), then cutover again; --timeout gives the freeze up to that long (15 s at most)`
                : `cutover again; if it persists, look at ${from}'s server log`),
          );
    }
  }
  run.frozenAt = new Date();
  report.frozenAt = run.frozenAt.toISOString();
}

/**
 * What to do when the freeze could not lock the source's tables in time, if prepared
 * (two-phase) transactions are open there: they keep their locks with no session, so
 * pg_stat_activity, where a DBA would look first, does not show them. Name them.
 */
async function preparedHint(src: pg.Client, from: string): Promise<string | undefined> {
  const prepared = await src
    .query<{ gid: string; owner: string; at: string }>(
      `select gid, owner::text as owner, prepared::text as at from pg_prepared_xacts where database = current_database() order by prepared`,
    )
    .then((r) => r.rows, () => []);
  if (prepared.length === 0) return undefined;
  const list = prepared.map((x) => `'${x.gid}' (owner ${x.owner}, prepared ${x.at})`).join(', ');
  return `${prepared.length} prepared transaction(s) on ${from} keep their locks until resolved: ${list}; COMMIT PREPARED or ROLLBACK PREPARED each (as its application's transaction manager would), then retry`;
}

/**
 * The final sync, its `changed` check and the target unfrozen, in one transaction on the
 * target; `freezeMs` measured when it committed (the target takes writes from then).
 */
export async function finalSync(run: CutoverRun): Promise<void> {
  const { opts, report, stop } = run;
  const [from, to] = [opts.from.name, opts.to.name];
  if (stop.why) throw new RuntimeFailure(stop.why);
  run.final = sync({
    from: { ...opts.from, version: report.fromVersion },
    to: { ...opts.to, version: report.toVersion },
    mappingsDir: opts.mappingsDir,
    logger: opts.logger,
    kind: 'cutover',
    targetLockHeld: true, // by the control session, since before the freeze
    // Every row was compared before the freeze; frozen, only what the final sync read
    // is checked, inside its transaction: a difference rolls the target back.
    verify: opts.verify ?? 'changed',
    lockTimeout: opts.lockTimeout ?? `${Math.min(stop.remaining(), 15_000)}ms`,
    lookback: opts.lookback,
    full: opts.full,
    // The target becomes the writable side in the same transaction as its final data.
    beforeCommit: async (target, r) => {
      if (stop.why) throw new RuntimeFailure(stop.why);
      if (r.check && !r.check.clean) {
        const bad = r.check.tables.filter((t) => t.mismatched || t.sourceRows !== t.targetRows).map((t) => t.table);
        throw new VerifyDifferenceError(`the final check found differences between ${from} and ${to} in ${bad.join(', ')}`);
      }
      // The owner of the tables can walk through a freeze. Checked before the point of no
      // return, so such a cutover rolls back with the source serving; completing the mark
      // checks again under lock (src/db/freeze-guard.ts).
      // On a fresh session: the control session may be what was lost.
      const held = await onFresh(opts.from.url, from, (c) => checkFreezeSeal(c));
      if (held.findings.length) throw new RuntimeFailure(`the freeze on ${from} did not hold: ${held.findings.join('; ')}`);
      const horizon = await targetHorizon(opts.to.url, to, opts.logger);
      const all = Object.fromEntries(await new VersionCatalogs(opts.mappingsDir, run.dst).all());
      const marks = await reverseWatermarks(target, {
        fromVersion: report.toVersion!,
        toVersion: report.fromVersion!,
        mappingsDir: opts.mappingsDir,
        catalogs: all,
        horizon,
      });
      run.commit = { freezeId: run.freezeId!, source: from, fromVersion: report.fromVersion!, toVersion: report.toVersion!, reverseWatermarks: marks };
      // The point of no return commits with the data: from then on the cutover happened,
      // whoever completes it (this run, or the next command if this one dies).
      await recordCutoverCommit(target, run.commit);
      await unfreeze(target);
      await faultPoint('cutover:before-target-commit');
    },
  });
  report.sync = await Promise.race([run.final, stop.stopped]);
  report.freezeMs = Date.now() - run.freezeStarted!;
  report.frozenDeletes = frozenDeletes(report.sync);
  if ((report.sync.verify && !report.sync.verify.clean) || (report.sync.check && !report.sync.check.clean)) {
    throw new VerifyDifferenceError(`the final verify found differences between ${from} and ${to} after ${to} committed`);
  }
}

/** Which tables' deletes the final sync took from capture, and which it reconciled by key buckets. */
function frozenDeletes(r: SyncReport): FrozenDeletes {
  return {
    captured: r.tables.filter((t) => t.deletes === 'captured').map((t) => t.table),
    reconciled: r.tables.filter((t) => t.deletes === 'reconciled').map((t) => t.table),
  };
}

/**
 * The last arrow (src/cutover/reconcile.ts): the source's freeze marked complete and the
 * reverse watermarks stored, in one transaction on the control session. If this run dies
 * before it, the next command does the same from the target's commit record.
 */
export async function completeFreeze(run: CutoverRun): Promise<void> {
  const { opts, report, src } = run;
  report.reverseWatermarks = await completeOnSource(src, opts.from.name, opts.to.name, run.commit!);
}

/**
 * After success: inert triggers dropped, the report's outcome, then the switch command.
 * `completedAfter`: the run was stopped or failed after the target's commit and was
 * completed anyway (rolled forward); the switch command is then left to the DBA.
 */
export async function finish(run: CutoverRun, completedAfter?: string): Promise<CutoverReport> {
  const { opts, report, dst } = run;
  const [from, to] = [opts.from.name, opts.to.name];
  // The triggers lifted on the target in the final sync's transaction are inert now.
  await dropFreezeTriggers(dst).catch(() => {});
  await faultPoint('cutover:after-complete');
  report.ok = true;
  report.outcome = `${to} is current at v${report.toVersion}; ${from} is frozen (read-only)${completedAfter ? ` (${completedAfter})` : ''}`;
  report.next =
    `point the application at ${to}. To keep ${from} current for a rollback: ` +
    `bluegreen sync --from ${to} --to ${from}; to roll back: bluegreen cutover --from ${to} --to ${from}`;
  if (completedAfter && opts.switchCommand) {
    report.next = `run the switch by hand (it was not run: the cutover completed after it was stopped), then ${report.next}`;
    report.ms = Date.now() - run.started;
    return report;
  }
  if (opts.switchCommand) {
    opts.logger.info(`running switch command`);
    const code = await runShell(opts.switchCommand, opts.logger);
    report.switchCommand = { command: opts.switchCommand, code };
    if (code !== 0) {
      report.ms = Date.now() - run.started;
      throw new CutoverRefusedError(
        `cutover done but the switch command exited ${code}: the data is on ${to}, ${from} is frozen, traffic was NOT switched`,
        report,
        'run the switch by hand now; or bluegreen unfreeze --env ' + from + ' to let the application keep writing there',
      );
    }
  }
  report.ms = Date.now() - run.started;
  return report;
}

/** How the failure path after the freeze left the pair. */
export type Abandoned =
  /** The target had committed the final sync (the point of no return): the cutover is completed. */
  | { rolledForward: true; note: string; differences: boolean }
  /** It had not: the target is unchanged; the error says how the source was left. */
  | { rolledForward: false; error: CutoverRefusedError };

/**
 * The failure path after the freeze. Whether the target committed the final sync decides,
 * read on a fresh session (the run's own may be what failed): committed, the cutover
 * happened and is completed on the source (rolled forward); not, the source is unfrozen
 * (rolled back). Every step runs on fresh sessions with short timeouts, retried; what
 * cannot be done is said exactly, with the command that finishes it.
 */
export async function abandon(run: CutoverRun, err: unknown): Promise<Abandoned> {
  const { opts, report, stop, final } = run;
  const [from, to] = [opts.from.name, opts.to.name];
  const differences = err instanceof VerifyDifferenceError;
  const why = stop.why ?? (err as Error).message;
  if (stop.why && final) {
    // Both the final sync's sessions and its verify's: the deadline holds throughout.
    const apps = runApps(from, to);
    await Promise.all([cancelOwn(opts.from.url, from, apps), cancelOwn(opts.to.url, to, apps)]);
    if (!(await settled(final, 15_000))) opts.logger.warn('the final sync did not stop in 15 s; it cannot commit any more (stopped before commit)');
  }
  const committed = run.freezeId && final ? await onFresh(opts.to.url, to, (c) => cutoverCommit(c, run.freezeId!)).then((c) => c ?? false, (e: Error) => e) : false;
  if (committed instanceof Error) {
    // Whether the target committed cannot be read: unfreezing the source could put writes
    // on both sides, completing it could skip the target's rollback. Frozen is the safe state.
    report.freezeMs = undefined;
    return {
      rolledForward: false,
      error: refused(
        run,
        `${why}; ${to} cannot be reached (${committed.message}), so whether it committed the final sync is unknown; ${from} stays frozen`,
        `when ${to} answers again: bluegreen status --env ${from} --env ${to} decides it (completes the cutover if ${to} committed, else unfreezes ${from}); to let the application write on ${from} now regardless: bluegreen unfreeze --env ${from}`,
      ),
    };
  }
  if (committed) {
    const note = `${to} had committed the final sync (the point of no return) when the cutover stopped (${why})`;
    try {
      report.reverseWatermarks = await onFresh(opts.from.url, from, (c) => completeOnSource(c, from, to, committed));
      report.freezeMs ??= Date.now() - run.freezeStarted!;
      return { rolledForward: true, note: `${note}: completed; ${to} serves, ${from} stays frozen`, differences };
    } catch (e) {
      return {
        rolledForward: false,
        error: refused(
          run,
          `${note}, but ${from}'s completion mark could not be written (${(e as Error).message}): ${to} holds every write and serves; ${from} stays frozen`,
          `bluegreen status --env ${from} --env ${to} completes it (any sync or cutover of the pair does too); then point the application at ${to}`,
        ),
      };
    }
  }
  const notes = [`${to} rolled back (unchanged)`];
  let next = `the application stays on ${from}; investigate, then bluegreen sync and cutover again`;
  try {
    await onFresh(opts.from.url, from, (c) => unfreezeNow(c));
    report.freezeMs = Date.now() - run.freezeStarted!;
    notes.push(`${from} unfrozen and serving`);
  } catch (e) {
    notes.push(`${from} is STILL FROZEN (${(e as Error).message})`);
    next = `bluegreen unfreeze --env ${from} (or bluegreen status --env ${from} --env ${to}, which rolls the stopped cutover back) so the application can write on ${from} again; then investigate, sync and cutover again`;
  }
  if (differences) {
    next = `the application stays on ${from}; bluegreen verify --from ${from} --to ${to} names the differing keys, bluegreen sync --repair re-copies them; then cutover again`;
  }
  return { rolledForward: false, error: refused(run, `${why}; ${notes.join('; ')}`, next, undefined, differences ? ExitCode.verifyDiff : ExitCode.failure) };
}

/**
 * Runs `body` on a fresh session of `url` with short timeouts, three tries a second or
 * two apart: clean-up after a failure must not depend on the session that failed.
 */
async function onFresh<T>(url: string, label: string, body: (c: pg.Client) => Promise<T>): Promise<T> {
  let last: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const c = await connect(url, { label, applicationName: 'bluegreen cutover-abort' }).catch((e: unknown) => ((last = e), undefined));
    if (c) {
      try {
        await c.query(`set statement_timeout = '10s'; set lock_timeout = '5s'`);
        return await body(c);
      } catch (e) {
        last = e;
      } finally {
        await c.end().catch(() => {});
      }
    }
    if (attempt < 3) await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
  }
  throw last;
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

/** Connects the target's control session (the source's is opened first by the caller). */
export function connectControl(url: string, label: string): Promise<pg.Client> {
  return connect(url, { label, applicationName: 'bluegreen cutover-control' });
}

/** The report of a cutover an earlier, interrupted run of it had already carried past its point of no return. */
export function alreadyDone(run: CutoverRun): CutoverReport {
  const { opts, report } = run;
  const [from, to] = [opts.from.name, opts.to.name];
  report.ok = true;
  report.outcome = `${to} already holds the cutover from ${from} (an earlier run had committed it); completed now: ${from} is frozen (read-only)`;
  report.next = `point the application at ${to}. To keep ${from} current for a rollback: bluegreen sync --from ${to} --to ${from}`;
  report.ms = Date.now() - run.started;
  return report;
}
