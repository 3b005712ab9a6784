/**
 * A cutover spans two databases, so its outcome must be decidable from them alone,
 * whenever and wherever it stopped. The states of a pair, and what moves it:
 *
 *   source serving --freeze commits--> source frozen, no mark
 *     --target commits the final sync (the POINT OF NO RETURN), recording the freeze's id
 *       in `bluegreen.cutovers`--> target serving, source frozen without its mark
 *     --source marks its freeze complete and stores the reverse watermarks--> cut over
 *
 * A cutover killed between two arrows leaves the source frozen without its completion
 * mark. Whether its writes reached the target is not a guess: the target either holds the
 * commit record for that freeze's id or it does not (the record commits with the final
 * sync, in one transaction). So every command that meets such a source reconciles first:
 *
 * - the target holds the record: the cutover happened. The source's freeze is marked
 *   complete and the reverse watermarks the record carries are stored (ROLLED FORWARD);
 *   the target serves, and nothing may unfreeze the source as if it had not.
 * - it does not: the cutover never reached the point of no return. The source is
 *   unfrozen (ROLLED BACK); it serves as before and the target is unchanged.
 * - the cutover is still running (it holds the target's writer lock, src/sync/lock.ts):
 *   nothing is decided; the caller says so.
 *
 * The decision is taken while holding the target's writer lock, so it can never race
 * the cutover it decides about: a live cutover holds that lock from before its freeze to
 * after its completion mark, and a dead one's lock goes with its session.
 */
import type pg from 'pg';
import { connect } from '../db/connect.ts';
import { RuntimeFailure } from '../errors.ts';
import { lockAndCheckFreeze } from '../db/freeze-guard.ts';
import { stateTableExists } from '../db/state.ts';
import { recordRole } from '../db/direction.ts';
import { holdTargetLock } from '../sync/lock.ts';
import { writeReverseWatermarks, type ReverseWatermark } from './before-freeze.ts';
import { frozenBy, markFreezeCompleted, unfreezeNow, type FreezeInfo } from './freeze.ts';

/** What the target records when it commits a cutover's final sync. */
export interface CutoverCommit {
  /** The source's freeze (FreezeInfo.id). */
  freezeId: string;
  /** The frozen source's environment name. */
  source: string;
  fromVersion: number;
  toVersion: number;
  /** What the source stores as the reverse direction's watermarks (target -> source). */
  reverseWatermarks: ReverseWatermark[];
}

/** Records the point of no return in the final sync's transaction on the target. */
export async function recordCutoverCommit(target: pg.Client, c: CutoverCommit): Promise<void> {
  // The target serves from this commit on: it states so for the pair (src/db/direction.ts).
  await recordRole(target, c.source, 'source', `cutover from ${c.source}`);
  await target.query(
    `insert into bluegreen.cutovers (freeze_id, source, from_version, to_version, reverse_watermarks) values ($1, $2, $3, $4, $5)`,
    [c.freezeId, c.source, c.fromVersion, c.toVersion, JSON.stringify(c.reverseWatermarks)],
  );
}

/** The target's commit record of the freeze `freezeId`, if it committed one. */
export async function cutoverCommit(target: pg.Client, freezeId: string): Promise<(CutoverCommit & { committedAt: string }) | undefined> {
  if (!(await stateTableExists(target, 'cutovers'))) return undefined;
  const r = await target.query<{ source: string; from_version: number; to_version: number; committed_at: string; reverse_watermarks: ReverseWatermark[] }>(
    `select source, from_version, to_version, committed_at::text as committed_at, reverse_watermarks from bluegreen.cutovers where freeze_id = $1`,
    [freezeId],
  );
  const x = r.rows[0];
  if (!x) return undefined;
  return { freezeId, source: x.source, fromVersion: x.from_version, toVersion: x.to_version, reverseWatermarks: x.reverse_watermarks, committedAt: x.committed_at };
}

/**
 * The last arrow: on the source, in one transaction, the freeze marked complete and the
 * reverse watermarks stored. Checks first (under lock) that the freeze held: a source
 * that took writes after its freeze is not a finished cutover.
 * `target` names the environment taking over (the watermarks' source).
 */
export async function completeOnSource(src: pg.Client, srcName: string, target: string, commit: CutoverCommit): Promise<Record<string, string>> {
  await src.query('begin');
  try {
    await src.query(`set local lock_timeout = '5s'`);
    const held = await lockAndCheckFreeze(src);
    if (held.findings.length) throw new RuntimeFailure(`the freeze on ${srcName} did not hold: ${held.findings.join('; ')}`);
    await markFreezeCompleted(src);
    await recordRole(src, target, 'target', `cutover to ${target}`);
    const marks = await writeReverseWatermarks(src, target, commit.reverseWatermarks);
    await src.query('commit');
    return marks;
  } catch (err) {
    await src.query('rollback').catch(() => {});
    throw err;
  }
}

/** One side of the pair being reconciled. */
export interface Side {
  name: string;
  client: pg.Client;
}

/** What reconciling found and did. */
export interface Reconciliation {
  /** The side that was frozen by the interrupted cutover. */
  frozen: string;
  /** The side the cutover was switching to. */
  target: string;
  action: 'rolled-forward' | 'rolled-back' | 'in-progress' | 'would-roll-forward' | 'would-roll-back';
  /** One line for the log and the report. */
  detail: string;
  freeze: FreezeInfo;
}

/**
 * Finds a cutover from `frozen` to `other` that stopped before its completion mark and
 * decides it (see the module comment). `write: false` (plan) only says what it would do.
 * Returns undefined when `frozen` carries no such freeze (or one towards another
 * environment, which this pair cannot decide).
 */
export async function reconcileCutover(frozen: Side, other: Side, opts: { write: boolean }): Promise<Reconciliation | undefined> {
  const f = await frozenBy(frozen.client);
  if (!f || f.completed) return undefined;
  if (f.target && f.target !== other.name) return undefined;
  const base = { frozen: frozen.name, target: other.name, freeze: f };
  // Held by a live cutover from before its freeze until after its mark: then it decides.
  const release = await holdTargetLock(other.client);
  if (!release) {
    return { ...base, action: 'in-progress', detail: `a cutover ${frozen.name} -> ${other.name} is running (it holds ${other.name}'s writer lock); ${frozen.name} is frozen until it ends` };
  }
  try {
    const commit = f.id ? await cutoverCommit(other.client, f.id) : undefined;
    if (commit) {
      if (!opts.write) {
        return { ...base, action: 'would-roll-forward', detail: `${other.name} committed the final sync of the cutover from ${frozen.name} at ${commit.committedAt}; the next sync, cutover, status or unfreeze marks ${frozen.name}'s freeze complete` };
      }
      await completeOnSource(frozen.client, frozen.name, other.name, commit);
      return {
        ...base,
        action: 'rolled-forward',
        detail: `the cutover ${frozen.name} -> ${other.name} had passed its point of no return (${other.name} committed the final sync at ${commit.committedAt}) but stopped before ${frozen.name} recorded it: completed now; ${other.name} serves, ${frozen.name} stays frozen`,
      };
    }
    if (!opts.write) {
      return { ...base, action: 'would-roll-back', detail: `the cutover ${frozen.name} -> ${other.name} stopped before ${other.name} committed anything; the next sync, cutover, status or unfreeze unfreezes ${frozen.name}` };
    }
    await unfreezeNow(frozen.client);
    return {
      ...base,
      action: 'rolled-back',
      detail: `the cutover ${frozen.name} -> ${other.name} stopped before ${other.name} committed its final sync: ${frozen.name} unfrozen and serving again, ${other.name} unchanged`,
    };
  } finally {
    await release();
  }
}

/** Reconciles both directions of a pair (either side may carry an interrupted cutover's freeze). */
export async function reconcilePair(a: Side, b: Side, opts: { write: boolean }): Promise<Reconciliation[]> {
  const out: Reconciliation[] = [];
  for (const [frozen, other] of [[a, b], [b, a]] as const) {
    const r = await reconcileCutover(frozen, other, opts);
    if (r) out.push(r);
  }
  return out;
}

/**
 * For `status`: every environment frozen by a cutover that stopped before its mark, whose
 * target is among `envs`, decided (write) or described (plan). Unreachable sides are
 * skipped: status reports them on their own.
 */
export async function reconcileEnvironments(envs: { name: string; url: string }[], opts: { write: boolean; app: string }): Promise<Reconciliation[]> {
  const out: Reconciliation[] = [];
  for (const env of envs) {
    const client = await connect(env.url, { label: env.name, applicationName: opts.app }).catch(() => undefined);
    if (!client) continue;
    try {
      const f = await frozenBy(client).catch(() => undefined);
      const target = f && !f.completed && f.target ? envs.find((e) => e.name === f.target) : undefined;
      if (!target) continue;
      const other = await connect(target.url, { label: target.name, applicationName: opts.app }).catch(() => undefined);
      if (!other) continue;
      try {
        const r = await reconcileCutover({ name: env.name, client }, { name: target.name, client: other }, opts);
        if (r) out.push(r);
      } finally {
        await other.end().catch(() => {});
      }
    } finally {
      await client.end().catch(() => {});
    }
  }
  return out;
}
