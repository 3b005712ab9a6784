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
 * Each arrow is a named step of src/cutover/steps.ts; this file only composes them.
 * The freeze therefore costs what changed since the last sync, not the database's size
 * (src/cutover/before-freeze.ts); the report says how long writes were refused.
 *
 * The --timeout, or the caller's AbortSignal (Ctrl-C, SIGTERM), or any failure: before the
 * target commits the final sync (the point of no return, recorded there with the freeze's
 * id), the target rolls back and the source is unfrozen and keeps serving, exit non-zero;
 * after it, the cutover happened and is completed on the source. Both on fresh sessions,
 * since the run's own may be what failed. A process killed outright leaves the source
 * frozen without its completion mark; the next status, sync, cutover or unfreeze decides it
 * the same way from the two databases (src/cutover/reconcile.ts).
 * Rollback is the same command the other way round (green -> blue, down mappings).
 */
import { connect } from '../db/connect.ts';
import { recordFailedRun } from '../db/state.ts';
import { ExitCode, InvalidInputError } from '../errors.ts';
import { faultPoint } from '../fault.ts';
import { freezeTimer } from '../progress.ts';
import { abandon, alreadyDone, catchUpBeforeFreeze, completeFreeze, connectControl, finalSync, finish, freezeSource, preflight, verifyBeforeFreeze, type CutoverRun } from './steps.ts';
import { Stopper } from './stop.ts';
import { CutoverRefusedError, type CutoverOptions, type CutoverReport } from './report.ts';

export { CutoverRefusedError, type CutoverOptions, type CutoverReport, type FrozenDeletes, type Guardrail } from './report.ts';
export { guardrails } from './guardrails.ts';

/** Runs the cutover's steps in order; see the module comment for what each promises. */
export async function cutover(opts: CutoverOptions): Promise<CutoverReport> {
  const started = Date.now();
  if (opts.timeoutMs !== undefined && !(opts.timeoutMs > 0)) {
    throw new InvalidInputError(`cutover timeout must be positive, got ${opts.timeoutMs / 1000} s`, 'give the seconds freeze + final sync may take, e.g. --timeout 60');
  }
  const report: CutoverReport = { from: opts.from.name, to: opts.to.name, guardrails: [], ok: false, outcome: '', next: '', ms: 0 };
  const src = await connect(opts.from.url, { label: opts.from.name, applicationName: 'bluegreen cutover-control' });
  // One way to stop, for the timeout and for the caller's signal (Ctrl-C, SIGTERM); armed by freezeSource.
  const stop = new Stopper(opts.logger, opts.from.name, opts.signal);
  let run: CutoverRun | undefined;
  try {
    run = { opts, report, started, src, dst: await connectControl(opts.to.url, opts.to.name), stop };
    if ((await preflight(run)) === 'done') return alreadyDone(run);
    await faultPoint('cutover:after-preflight');
    await verifyBeforeFreeze(run);
    await catchUpBeforeFreeze(run);
    await faultPoint('cutover:before-freeze');
    await freezeSource(run);
    await faultPoint('cutover:after-freeze');
    // A live "writes frozen on blue: N s" line until the target takes the writes (or the source is unfrozen).
    const frozenTimer = freezeTimer(opts.logger, opts.from.name);
    try {
      await finalSync(run);
      await faultPoint('cutover:after-target-commit');
      await completeFreeze(run);
      frozenTimer();
    } catch (err) {
      frozenTimer();
      await src.query('rollback').catch(() => {});
      const left = await abandon(run, err);
      if (!left.rolledForward) throw left.error;
      // Past the point of no return: the cutover happened; say how it ended.
      stop.disarm();
      opts.logger.warn(left.note);
      const done = await finish(run, left.note);
      if (left.differences) {
        throw new CutoverRefusedError(
          `${left.note}, but the verify after ${opts.to.name}'s commit found differences`,
          done,
          `bluegreen verify --from ${opts.from.name} --to ${opts.to.name} names the differing keys; ${opts.to.name} serves`,
          ExitCode.verifyDiff,
        );
      }
      return done;
    }
    await faultPoint('cutover:after-source-mark');
    // Done: neither the deadline nor a signal may undo it from here (the switch command
    // is reported on its own).
    stop.disarm();
    return await finish(run);
  } catch (err) {
    // Refused or failed before the final sync ran (guardrails, the freeze): recorded on the
    // target like any failed run; the final sync records its own failures.
    if (run && !report.frozenAt) await recordFailedRun(run.dst, { kind: 'cutover', source: opts.from.name, startedAt: new Date(started), error: err });
    throw err;
  } finally {
    stop.disarm();
    await run?.dst.end().catch(() => {});
    await src.end().catch(() => {});
  }
}
