/**
 * The refusals a sync checks before it plans anything: a side frozen by a cutover (finished
 * or not), a freeze walked through, and the wrong direction. Each one guards writes the
 * other side may lack; none of them writes.
 */
import type pg from 'pg';
import { InvalidInputError, LockedError } from '../errors.ts';
import { frozenBy } from '../cutover/freeze.ts';
import { assertFreezeHeld } from '../db/freeze-guard.ts';
import type { Endpoint } from './sync.ts';
import type { Logger } from '../log.ts';
import { reconcilePair } from '../cutover/reconcile.ts';
import { pairDirection, readStatement, recordRole } from '../db/direction.ts';

/** What the guards need of a run. */
export interface GuardOptions {
  from: Endpoint;
  to: Endpoint;
  /** A cutover's final sync reads a source it has just frozen, on purpose. */
  kind: 'sync' | 'cutover';
  /** Sync against the usual direction. */
  force?: boolean;
  /** Says what reconciling an interrupted cutover did. */
  logger?: Logger;
}

/** Throws InvalidInputError when syncing `from` -> `to` now could lose or overwrite writes. */
export async function refuseUnsafeSync(src: pg.Client, dst: pg.Client, opts: GuardOptions): Promise<void> {
  const { kind } = opts;
  // A cutover of this pair killed between its freeze and its completion mark is decided
  // from the two databases first: completed if the target committed, else rolled back
  // (src/cutover/reconcile.ts). Not inside a cutover: its own freeze is such a freeze.
  if (kind !== 'cutover') {
    for (const r of await reconcilePair({ name: opts.from.name, client: src }, { name: opts.to.name, client: dst }, { write: true })) {
      opts.logger?.warn(r.detail);
    }
  }
  // A side frozen by a cutover that never finished still holds writes the other side
  // may lack; syncing into it would delete them, syncing from it would resume a flow the
  // cutover meant to end. Either way the DBA must unfreeze and decide.
  const srcFrozen = kind === 'cutover' ? undefined : await frozenBy(src);
  const dstFrozen = await frozenBy(dst);
  // A freeze the owner walked through: writing into (or reading from) that side would
  // delete or skip the writes it took (src/db/freeze-guard.ts).
  if (kind !== 'cutover') await assertFreezeHeld(src, opts.from.name);
  await assertFreezeHeld(dst, opts.to.name);
  // Left undecided after reconciling: a cutover still running (it holds the other side's
  // writer lock: skip, as for any run holding a lock), or one towards a third environment.
  for (const [side, f] of [[opts.from.name, srcFrozen], [opts.to.name, kind === 'cutover' ? undefined : dstFrozen]] as const) {
    if (f && !f.completed) {
      const other = side === opts.from.name ? opts.to.name : opts.from.name;
      if (!f.target || f.target === other) {
        throw new LockedError(`${other} (a cutover ${side} -> ${other} is running; ${side} frozen since ${f.since})`, 'the cutover', 'rerun when the cutover has ended');
      }
      throw new InvalidInputError(
        `${side} is frozen by an interrupted cutover to ${f.target} (since ${f.since}): ${side}'s writes since then may not be on ${f.target}`,
        `bluegreen status --env ${side} --env ${f.target} decides it (completes the cutover if ${f.target} committed its final sync, else unfreezes ${side}); then rerun this`,
      );
    }
  }

  // Against the pair's direction (src/db/direction.ts): syncing now would overwrite the
  // target's newer writes and delete rows the source lacks. --force syncs once anyway.
  if (kind !== 'cutover' && !opts.force && !srcFrozen) {
    const d = await pairDirection({ name: opts.from.name, client: src }, { name: opts.to.name, client: dst });
    const [from, to] = [opts.from.name, opts.to.name];
    if (d.undecided) {
      throw new InvalidInputError(
        `the direction between ${from} and ${to} is open: ${d.text}; both may have taken writes, and a sync either way overwrites the other side's`,
        `decide which side serves, then: bluegreen direction --from SERVING --to OTHER (e.g. bluegreen direction --from ${from} --to ${to}); bluegreen verify names what differs first`,
      );
    }
    if (d.flow && d.flow.from === to) {
      throw new InvalidInputError(
        `data flows ${to} -> ${from} (${d.basis}): syncing ${from} -> ${to} would overwrite ${to}'s newer writes`,
        `the usual run is: bluegreen sync --from ${to} --to ${from}; to move the application to ${from}: bluegreen cutover --from ${to} --to ${from}; to turn the flow round without a cutover (${to}'s writes since are overwritten): bluegreen direction --from ${from} --to ${to}`,
      );
    }
  }

  // After a cutover the old side is frozen and data flows the other way; syncing from
  // it would delete the new side's fresh writes. The cutover's own final sync reads a
  // source it has just frozen, on purpose.
  if (srcFrozen) {
    throw new InvalidInputError(
      `${opts.from.name} is frozen since ${srcFrozen.since} (${srcFrozen.by}): data now flows ${opts.to.name} -> ${opts.from.name}`,
      `to keep ${opts.from.name} current run: bluegreen sync --from ${opts.to.name} --to ${opts.from.name}; to move the application back to ${opts.from.name}: bluegreen cutover --from ${opts.to.name} --to ${opts.from.name}`,
    );
  }
}

/**
 * In a sync's transaction on the target: when the pair has no direction statement yet,
 * this sync's direction becomes the pair's (the target states it is fed from the source).
 */
export async function settleDirection(src: pg.Client, dst: pg.Client, from: string, to: string): Promise<void> {
  if ((await readStatement(dst, from)) || (await readStatement(src, to))) return;
  await recordRole(dst, from, 'target', 'sync');
}
