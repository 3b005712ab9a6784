/**
 * `unfreeze`: let the application write on a frozen environment again. A freeze left by a
 * cutover that stopped before its completion mark is decided first (src/cutover/reconcile.ts),
 * because the answer to "may this side take writes?" depends on what the other side
 * committed: unfreezing a side whose cutover already passed its point of no return would
 * let the application write on both sides.
 */
import { connect } from '../db/connect.ts';
import { RuntimeFailure } from '../errors.ts';
import type { Logger } from '../log.ts';
import { frozenBy, unfreezeNow, type FreezeInfo } from './freeze.ts';
import { reconcileCutover, type Reconciliation } from './reconcile.ts';
import { recordRole } from '../db/direction.ts';

export interface UnfreezeOptions {
  env: { name: string; url: string };
  /**
   * The environment the interrupted cutover was switching to, resolved by the caller from
   * the freeze's record (`target`); undefined when it is not configured here.
   */
  resolveTarget: (name: string) => { name: string; url: string } | undefined;
  /** Unfreeze without deciding an interrupted cutover first (its target is unreachable). */
  force?: boolean;
  logger: Logger;
}

export interface UnfreezeReport {
  environment: string;
  lifted: FreezeInfo | null;
  triggersDropped: string[];
  triggersLeftInert: string[];
  /** An interrupted cutover decided before unfreezing, if there was one. */
  reconciled?: Pick<Reconciliation, 'frozen' | 'target' | 'action' | 'detail'>;
}

export async function unfreezeEnvironment(opts: UnfreezeOptions): Promise<UnfreezeReport> {
  const { env } = opts;
  const client = await connect(env.url, { label: env.name, applicationName: 'bluegreen unfreeze' });
  try {
    const f = await frozenBy(client);
    let reconciled: UnfreezeReport['reconciled'];
    if (f && !f.completed && f.target && !opts.force) {
      const decided = await decide(opts, client, f);
      reconciled = { frozen: decided.frozen, target: decided.target, action: decided.action, detail: decided.detail };
      opts.logger.warn(decided.detail);
      if (decided.action === 'rolled-back') {
        return { environment: env.name, lifted: f, triggersDropped: [], triggersLeftInert: [], reconciled };
      }
      if (decided.action === 'rolled-forward') {
        throw new RuntimeFailure(
          `${env.name} was NOT unfrozen: ${decided.detail}. Unfreezing ${env.name} now would let the application write on both sides`,
          `point the application at ${f.target}; to move it back to ${env.name}: bluegreen cutover --from ${f.target} --to ${env.name}; to let ${env.name} take writes anyway, run this unfreeze again`,
        );
      }
      throw new RuntimeFailure(
        `${env.name} was NOT unfrozen: ${decided.detail}`,
        `wait for that cutover: it completes or unfreezes ${env.name} itself (Ctrl-C or SIGTERM on it unfreezes ${env.name})`,
      );
    }
    // Lifting the freeze is one UPDATE, which no reader holds up; dropping the then
    // inert triggers is best effort and skips a table an open transaction is reading.
    // A finished cutover's frozen side taking writes again: both sides may now, and only a
    // person can say which one wins; the pair's direction says so until then.
    const r = await unfreezeNow(client, '5s', async (lifted) => {
      if (lifted?.completed && lifted.target) await recordRole(client, lifted.target, 'undecided', 'unfreeze');
    });
    return { environment: env.name, lifted: r.lifted ?? null, triggersDropped: r.dropped, triggersLeftInert: r.inert, ...(reconciled ? { reconciled } : {}) };
  } finally {
    await client.end().catch(() => {});
  }
}

/** Decides the interrupted cutover from `env` to the freeze's target, or says why it cannot. */
async function decide(opts: UnfreezeOptions, client: import('pg').Client, f: FreezeInfo): Promise<Reconciliation> {
  const target = f.target!;
  const cannot = (why: string) =>
    new RuntimeFailure(
      `${opts.env.name} was NOT unfrozen: it was frozen by a cutover to ${target} that stopped before completing, and ${why}, so whether ${target} committed that cutover's final sync (and may already hold new writes) cannot be told`,
      `make ${target} reachable (configure it, or BLUE_URL/GREEN_URL) and rerun; if you are sure the application will not use ${target}: bluegreen unfreeze --env ${opts.env.name} --force`,
    );
  let other: { name: string; url: string } | undefined;
  try {
    other = opts.resolveTarget(target);
  } catch {
    other = undefined;
  }
  if (!other) throw cannot(`${target} is not configured here`);
  const oc = await connect(other.url, { label: other.name, applicationName: 'bluegreen unfreeze' }).catch((e: Error) => {
    throw cannot(`${target} cannot be reached (${e.message})`);
  });
  try {
    const r = await reconcileCutover({ name: opts.env.name, client }, { name: other.name, client: oc }, { write: true });
    // Nothing left to decide (a concurrent command decided it): unfreeze as asked.
    return r ?? { frozen: opts.env.name, target, action: 'rolled-back', detail: `${opts.env.name}'s interrupted cutover was decided meanwhile`, freeze: f };
  } finally {
    await oc.end().catch(() => {});
  }
}
