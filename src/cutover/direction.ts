/**
 * `direction --from A --to B`: the one command that sets which way data flows between two
 * environments when no cutover does (src/db/direction.ts): after a finished cutover's
 * frozen side was unfrozen by hand, or to turn the flow round on purpose. It moves no
 * data; the next sync A -> B does, and overwrites what B holds that A does not.
 */
import { connect } from '../db/connect.ts';
import { pairDirection, recordRole } from '../db/direction.ts';
import { InvalidInputError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { acquireTargetLock, releaseTargetLock } from '../sync/lock.ts';
import { frozenBy } from './freeze.ts';
import { reconcilePair } from './reconcile.ts';

export interface DirectionOptions {
  from: { name: string; url: string };
  to: { name: string; url: string };
  logger: Logger;
}

export interface DirectionReport {
  from: string;
  to: string;
  /** The pair's direction before, as status shows it. */
  before: string;
  /** And after. */
  after: string;
  /** Whether anything was written (false: it was already so). */
  changed: boolean;
  next: string;
}

export async function setDirection(opts: DirectionOptions): Promise<DirectionReport> {
  const [from, to] = [opts.from.name, opts.to.name];
  if (from === to) throw new InvalidInputError(`--from and --to are both ${from}`, 'name the serving side and the side kept current from it: bluegreen direction --from green --to blue');
  const src = await connect(opts.from.url, { label: from, applicationName: 'bluegreen direction' });
  try {
    const dst = await connect(opts.to.url, { label: to, applicationName: 'bluegreen direction' });
    try {
      // No sync into the new target may run while its role changes.
      await acquireTargetLock(dst, `target ${to}`);
      try {
        for (const r of await reconcilePair({ name: from, client: src }, { name: to, client: dst }, { write: true })) opts.logger.warn(r.detail);
        const frozen = await frozenBy(src);
        if (frozen) {
          throw new InvalidInputError(
            `${from} is frozen (${frozen.by}, since ${frozen.since}): a frozen side cannot be the one that serves`,
            `to move the application to ${from}: bluegreen cutover --from ${to} --to ${from}; or unfreeze it first: bluegreen unfreeze --env ${from}`,
          );
        }
        const before = await pairDirection({ name: from, client: src }, { name: to, client: dst });
        const already = before.flow?.from === from && before.flow.to === to && !before.basis.startsWith('derived');
        if (!already) {
          // Each side states its own role; the newest statement is the pair's direction.
          for (const [client, peer, role] of [[dst, from, 'target'], [src, to, 'source']] as const) {
            await client.query('begin');
            try {
              await recordRole(client, peer, role, 'direction');
              // The new target may have taken writes its watermarks do not describe (it
              // served, or was unfrozen by hand): the next sync reads it all, so it
              // converges exactly (updates overwritten, rows the source lacks deleted).
              if (role === 'target') await client.query(`delete from bluegreen.watermarks where source = $1`, [peer]);
              await client.query('commit');
            } catch (err) {
              await client.query('rollback').catch(() => {});
              throw err;
            }
          }
        }
        const after = await pairDirection({ name: from, client: src }, { name: to, client: dst });
        return {
          from,
          to,
          before: before.text,
          after: after.text,
          changed: !already,
          next: `bluegreen sync --from ${from} --to ${to}: it reads every table in full and overwrites what ${to} holds that ${from} does not (bluegreen verify --from ${from} --to ${to} shows what differs first)`,
        };
      } finally {
        await releaseTargetLock(dst);
      }
    } finally {
      await dst.end().catch(() => {});
    }
  } finally {
    await src.end().catch(() => {});
  }
}

/** For status: the direction of every pair among `envs` that has one (unreachable sides skipped). */
export async function pairDirections(envs: { name: string; url: string }[]): Promise<{ a: string; b: string; flow?: { from: string; to: string }; undecided: boolean; text: string }[]> {
  const clients = new Map<string, import('pg').Client>();
  try {
    for (const e of envs) {
      const c = await connect(e.url, { label: e.name, applicationName: 'bluegreen status' }).catch(() => undefined);
      if (c) clients.set(e.name, c);
    }
    const out = [];
    const names = [...clients.keys()];
    for (let i = 0; i < names.length; i++) {
      for (let j = i + 1; j < names.length; j++) {
        const [a, b] = [names[i]!, names[j]!];
        const d = await pairDirection({ name: a, client: clients.get(a)! }, { name: b, client: clients.get(b)! }).catch(() => undefined);
        if (!d || (!d.flow && !d.undecided)) continue;
        out.push({ a, b, ...(d.flow ? { flow: d.flow } : {}), undecided: d.undecided, text: d.text });
      }
    }
    return out;
  } finally {
    for (const c of clients.values()) await c.end().catch(() => {});
  }
}
