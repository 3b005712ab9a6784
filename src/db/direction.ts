/**
 * Which way data flows between two environments: one explicit state per pair, read by
 * every command that moves data and shown by `status` and `plan`.
 *
 * Each database keeps, per peer, the last statement made about the pair on its side
 * (`bluegreen.direction`): "I am the SOURCE towards that peer" (I serve, it is kept current
 * from me), "I am its TARGET", or UNDECIDED (a finished cutover's frozen side was unfrozen
 * by hand: both sides may take writes, and only a person can say which one wins). The
 * pair's direction is the newest statement on either side. Who states what, always in the
 * transaction of the change it describes:
 *
 * - a sync A -> B: B says "target of A", only when the pair had no direction yet (a sync
 *   never turns the flow round; --force syncs once against it and records nothing);
 * - a cutover A -> B: B says "source towards A" with its final sync (the point of no
 *   return), and A says "target of B" with its completion mark;
 * - `unfreeze` of a side a finished cutover froze: that side says UNDECIDED;
 * - `bluegreen direction --from A --to B`: A says source, B says target.
 *
 * Databases from before this table existed have no statements: the direction is then
 * derived as it always was, from which side holds watermarks of the other and which side
 * a finished cutover froze.
 */
import type pg from 'pg';
import { ensureStateSchema, stateTableExists } from './state.ts';

export type Role = 'source' | 'target' | 'undecided';

export interface Statement {
  role: Role;
  /** When it was made (server time, ISO-ish text). */
  since: string;
  /** Who made it: `sync`, `cutover to green`, `unfreeze`, `direction`. */
  by: string;
}

/** The pair's direction as every command sees it. */
export interface PairDirection {
  /** The flow, when one is set: data goes from `from` to `to`. */
  flow?: { from: string; to: string };
  /** Both sides may take writes (unfrozen by hand after a cutover): a person must choose. */
  undecided: boolean;
  /** For status and plan: `blue -> green (since …, by …)`, `unfrozen by hand: choose a direction`, … */
  text: string;
  /** The statement it rests on, or `derived` for databases without statements. */
  basis: string;
}

const DDL = `create table if not exists bluegreen.direction (
  peer  text primary key,
  role  text not null check (role in ('source', 'target', 'undecided')),
  since timestamptz not null default clock_timestamp(),
  by    text not null)`;

/** This database's statement about `peer`, if it made one. */
export async function readStatement(client: pg.Client, peer: string): Promise<Statement | undefined> {
  if (!(await stateTableExists(client, 'direction'))) return undefined;
  const r = await client.query<Statement>(
    `select role, to_char(since at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as since, by from bluegreen.direction where peer = $1`,
    [peer],
  );
  return r.rows[0];
}

/** Records this database's role towards `peer`, in the caller's transaction. */
export async function recordRole(client: pg.Client, peer: string, role: Role, by: string): Promise<void> {
  await ensureStateSchema(client);
  await client.query(DDL);
  await client.query(
    `insert into bluegreen.direction (peer, role, by) values ($1, $2, $3)
     on conflict (peer) do update set role = excluded.role, by = excluded.by, since = clock_timestamp()
     where bluegreen.direction.role is distinct from excluded.role or bluegreen.direction.by is distinct from excluded.by`,
    [peer, role, by],
  );
}

/** One side of a pair. */
export interface DirectionSide {
  name: string;
  client: pg.Client;
}

/** The pair's direction from both sides' statements (or, without any, derived from their state). */
export async function pairDirection(a: DirectionSide, b: DirectionSide): Promise<PairDirection> {
  const said: { side: DirectionSide; other: DirectionSide; s: Statement }[] = [];
  for (const [side, other] of [[a, b], [b, a]] as const) {
    const s = await readStatement(side.client, other.name);
    if (s) said.push({ side, other, s });
  }
  if (said.length) {
    const newest = said.sort((x, y) => (x.s.since < y.s.since ? 1 : -1))[0]!;
    const { side, other, s } = newest;
    const basis = `${side.name} at ${s.since} (${s.by})`;
    if (s.role === 'undecided') {
      return { undecided: true, text: `unfrozen by hand: choose a direction (${basis})`, basis };
    }
    const flow = s.role === 'source' ? { from: side.name, to: other.name } : { from: other.name, to: side.name };
    return { flow, undecided: false, text: `${flow.from} -> ${flow.to} (${basis})`, basis };
  }
  return derived(a, b);
}

/** Databases without statements: who holds watermarks of whom, and a finished cutover's freeze. */
async function derived(a: DirectionSide, b: DirectionSide): Promise<PairDirection> {
  const fedFrom = async (side: DirectionSide, peer: string) => {
    if (!(await stateTableExists(side.client, 'watermarks'))) return false;
    return (await side.client.query<{ ok: boolean }>(`select exists (select 1 from bluegreen.watermarks where source = $1) as ok`, [peer])).rows[0]!.ok;
  };
  const completedFreeze = async (side: DirectionSide) => {
    if (!(await stateTableExists(side.client, 'freeze'))) return false;
    const r = await side.client.query(`select 1 from bluegreen.freeze f where active and (to_jsonb(f)->>'completed_at') is not null`);
    return (r.rowCount ?? 0) > 0;
  };
  const [aFed, bFed] = [await fedFrom(a, b.name), await fedFrom(b, a.name)];
  const basis = 'derived (no direction recorded yet)';
  const flowing = (from: string, to: string): PairDirection => ({ flow: { from, to }, undecided: false, text: `${from} -> ${to} (${basis})`, basis });
  if (bFed && !aFed) return flowing(a.name, b.name);
  if (aFed && !bFed) return flowing(b.name, a.name);
  if (aFed && bFed) {
    const [aFrozen, bFrozen] = [await completedFreeze(a), await completedFreeze(b)];
    if (aFrozen && !bFrozen) return flowing(b.name, a.name);
    if (bFrozen && !aFrozen) return flowing(a.name, b.name);
    return { undecided: true, text: `unfrozen by hand: choose a direction (${basis}: each side holds watermarks of the other)`, basis };
  }
  return { undecided: false, text: 'none yet (never synced)', basis };
}
