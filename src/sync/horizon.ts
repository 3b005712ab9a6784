/**
 * The watermark horizon: the highest lower bound the NEXT incremental read may use
 * without missing a write the coming snapshot cannot see.
 *
 * A row the snapshot cannot see was written by a transaction open when the snapshot was
 * taken, or begun after it, and its watermark is at least that transaction's start
 * (`now()` is the START time). So: the oldest start among open transactions, or the
 * present moment if none is open. It must be read BEFORE the snapshot is taken:
 * pg_stat_activity is sampled once per transaction, and a transaction that committed
 * between the snapshot and that sample would be invisible to both.
 *
 * Sessions of other roles show their database, role and application but not when their
 * transaction started (unless this role has pg_read_all_stats). Every open transaction
 * still holds a lock on its own virtual transaction id, which pg_locks shows to anyone.
 * Each run remembers (in the target's state, per source) which of those hidden
 * transactions were open when it sampled, and when: one first seen now was not open at
 * the previous sample, so it started after it, and the previous sample's time (less a
 * second for the instant between a statement's start and its transaction's lock) bounds
 * it exactly. A transaction that stays open keeps the bound it was first given. Only one
 * already open at the very first sample (or the first after a server restart, which
 * reuses transaction ids) has no earlier sample: for it, and only for it, the watermark
 * is held back a fixed 15 minutes, with a warning. `--lookback` is added on top of all
 * this (for application-set clocks); it never replaces it.
 *
 * Prepared (two-phase) transactions have neither a session nor a virtual transaction id,
 * and their rows appear at COMMIT PREPARED with watermarks from when they began: they are
 * read from pg_prepared_xacts and bounded too (boundOf). The order of the reads, and why
 * it places every lock holder, is in sampleOpenTransactions.
 *
 * Known limit: a transaction whose statement began before the sample but whose
 * virtualxid lock appears only after the lock read (its backend preempted for longer than
 * the sample takes, inside the start of its transaction) is not seen.
 */
import type pg from 'pg';
import type { Logger } from '../log.ts';
import { stateTableExists } from '../db/state.ts';

/** What one run saw, stored for the next (bluegreen.horizons). */
export interface HorizonSample {
  /** statement_timestamp() of the first sampling statement (pg_stat_activity; pg_locks is read after it). */
  sampledAt: string;
  /** pg_postmaster_start_time(): transaction ids are only comparable within one server lifetime. */
  serverStarted: string;
  /** Hidden open transactions ("pid/vxid") and the bound each was given. */
  open: Record<string, string>;
}

export interface Horizon {
  /** Lower bound for the next run (timestamptz text, UTC). */
  value: string;
  /** When it was read. */
  at: string;
  /** The open transaction that held it back, if one did. */
  heldBackBy?: string;
  /** Transactions of other roles in this database whose start this role cannot see. */
  hiddenSessions: number;
  /** Of those, how many had no earlier sample and were bounded by the 15-minute fallback. */
  guessed: number;
  /** To store with the run, for the next one. */
  sample: HorizonSample;
}

/** Hold-back for a hidden transaction already open at the first sample. */
const FALLBACK = '15 minutes';

interface OpenTx {
  key: string;
  pid: number;
  start: string | null;
  app: string | null;
  role: string | null;
  /** A prepared (two-phase) transaction: its gid, and its PREPARE time less the fallback. */
  prepared?: { gid: string; guess: string };
}

/** What readHorizon computes once per run to bound transactions whose start it cannot see. */
interface Bounds {
  /** The previous sample less a second: for a transaction first seen now. */
  afterPrev: string | null;
  /** The least of afterPrev and the previous run's horizon: for one that may have been open at that sample, unseen. */
  sincePrev: string | null;
  /** The present less the fallback: for one open at the first sample. */
  guess: string;
}

/**
 * Reads the horizon on `client` (outside any transaction). `previous` is the sample the
 * last committed run stored on this target for this source (loadHorizonSample). `lookback`
 * (a PostgreSQL interval) is subtracted on top, for application-side clocks.
 */
export async function readHorizon(
  client: pg.Client,
  label: string,
  logger: Logger,
  lookback?: string,
  previous?: HorizonSample | null,
  between?: () => Promise<void>,
): Promise<Horizon> {
  const row = await sampleOpenTransactions(client, between);
  const prev = previous && previous.serverStarted === row.server_started ? previous : undefined;
  const bounds = (
    await client.query<Bounds>(
      `select ($1::timestamptz - interval '1 second')::text as "afterPrev",
              least($4::timestamptz - interval '1 second', $5::timestamptz)::text as "sincePrev",
              ($2::timestamptz - $3::interval)::text as guess`,
      [prev?.sampledAt ?? null, row.at, FALLBACK, previous?.sampledAt ?? null, previous?.open[HORIZON_KEY] ?? null],
    )
  ).rows[0]!;
  // Without the previous horizon (a sample stored before it was kept), a prepared transaction first seen has no exact bound.
  if (!previous?.open[HORIZON_KEY]) bounds.sincePrev = null;

  const sample: HorizonSample = { sampledAt: row.at, serverStarted: row.server_started, open: {} };
  const candidates: { at: string; why: string }[] = [{ at: row.at, why: '' }];
  let hidden = 0;
  let guessed = 0;
  let guessedPrepared = 0;
  for (const tx of row.open) {
    if (tx.start) {
      const who = tx.prepared ? `prepared transaction '${tx.prepared.gid}'` : `transaction of pid ${tx.pid}${tx.app ? ` "${tx.app}"` : ''}`;
      candidates.push({ at: tx.start, why: `${who} open since ${tx.start}` });
      if (tx.prepared) sample.open[tx.key] = tx.start; // it has no session next time: keep its start
      continue;
    }
    hidden++;
    // Prepared transactions survive a server restart, and so do their ids and the times
    // that bound them: the previous sample serves them whatever the restart.
    const b = boundOf(tx, tx.prepared ? (previous ?? undefined) : prev, bounds);
    if (b.guessed) guessed++;
    if (b.guessed && tx.prepared) guessedPrepared++;
    sample.open[tx.key] = b.at;
    candidates.push(b);
  }
  const min = (
    await client.query<{ v: string; i: number; back: string }>(
      `select x::text as v, (i - 1)::int as i, (x - coalesce($2::interval, interval '0'))::text as back
         from unnest($1::timestamptz[]) with ordinality u(x, i) order by x, i limit 1`,
      [candidates.map((c) => c.at), lookback ?? null],
    )
  ).rows[0]!;
  sample.open[HORIZON_KEY] = min.v;
  const h: Horizon = {
    value: min.back,
    at: row.at,
    heldBackBy: min.i > 0 ? candidates[min.i]!.why : undefined,
    hiddenSessions: hidden,
    guessed,
    sample,
  };
  if (guessed > 0) {
    logger.warn(
      `${guessed} transaction(s) in this database on ${label} (of other roles, or prepared) hide their transaction start and were already open at the first sample; holding the watermark back by ${FALLBACK}${lookback ? ` plus --lookback ${lookback}` : ''} this once`,
      {
        hint:
          'later runs bound them exactly by the previous run; GRANT pg_read_all_stats TO this role (not superuser) to see their start at once' +
          // No privilege shows a prepared transaction's start: only ending it does.
          (guessedPrepared > 0 ? `; ${guessedPrepared} of them prepared: see pg_prepared_xacts, and COMMIT PREPARED or ROLLBACK PREPARED any orphan` : ''),
      },
    );
  } else if (hidden > 0) {
    logger.info(`${hidden} transaction(s) on ${label} (of other roles, or prepared) hide their transaction start; each is bounded by the run sample before it was first seen`, {
      hiddenSessions: hidden,
    });
  }
  return h;
}

/**
 * Key of the sample's own horizon (before --lookback) in its `open` map. Every other key
 * holds a slash. Each transaction open at a sample had its start, or a lower bound of it,
 * among that sample's candidates, so its start is at or after that horizon.
 */
const HORIZON_KEY = 'horizon';

/**
 * A lower bound for the start of a transaction whose start this role cannot see.
 * - Seen at the previous sample: the bound it was given then.
 * - A session's transaction first seen now: it was not open at the previous sample (its
 *   virtualxid would have been seen), so it began after it (less a second).
 * - A prepared transaction first seen now: it may have been open at the previous sample
 *   as a session (a different key), so it began after that sample or is bounded by that
 *   sample's horizon, whichever is earlier.
 * - Otherwise (the first sample, or a server restart): the fallback, once, with a warning;
 *   for a prepared transaction counted back from its PREPARE, which comes after its start.
 */
function boundOf(tx: OpenTx, prev: HorizonSample | undefined, bounds: Bounds): { at: string; why: string; guessed: boolean } {
  const who = tx.prepared
    ? `prepared transaction '${tx.prepared.gid}'${tx.role ? ` (role ${tx.role})` : ''}`
    : `transaction of pid ${tx.pid}${tx.app ? ` "${tx.app}"` : ''}${tx.role ? ` (role ${tx.role})` : ''}`;
  const kept = prev?.open[tx.key];
  if (kept) return { at: kept, why: `${who}, start hidden, open since before ${kept}`, guessed: false };
  const since = tx.prepared ? bounds.sincePrev : bounds.afterPrev;
  // (For a prepared transaction `prev` is the previous sample even across a server restart: see readHorizon.)
  if (prev && since) {
    return { at: since, why: `${who}, start hidden, begun after the previous run's sample at ${prev.sampledAt}${tx.prepared ? ' or bounded by its horizon' : ''}`, guessed: false };
  }
  return {
    at: tx.prepared?.guess ?? bounds.guess,
    why: `${who}, start hidden and open at the first sample: held back ${FALLBACK}${tx.prepared ? ' before its PREPARE' : ''}`,
    guessed: true,
  };
}

/**
 * The open transactions that may write rows the coming snapshot cannot see, read in
 * statements in a fixed order: (1) this database's sessions from pg_stat_activity, at
 * `at` (the statement's start); (2) the virtualxid locks; (3) the prepared transactions;
 * (4) only if needed, pg_stat_activity again for some lock holders. A lock holder is an
 * open transaction at read 2. Against read 1 it is one of:
 * - with its xact_start: that start, or an earlier one (a session that began a new
 *   transaction between the reads is bounded by the older one: the safe side);
 * - absent (its session began after read 1, so after `at`; or it is another database's,
 *   and writes no row here), or visible but showing no transaction (`idle`, or `active`
 *   in the instant before its transaction starts): read 4 looks at it again, after read
 *   2. Still in a transaction there: that transaction's start (it was open at read 2, or
 *   began after it: exact or safe). Not: the transaction read 2 saw has ended, before the
 *   coming snapshot, which therefore sees its rows. Read 1 alone could not tell a
 *   transaction begun after `at` from one whose statement began an instant before `at`
 *   and showed as `idle` still;
 * - details hidden (another role without pg_read_all_stats), or no start shown for any
 *   other reason (track_activities off): hidden, bounded by the previous run's sample.
 * A prepared transaction whose session read 1 showed (same transaction id) with its start
 * gets that start; any other is bounded by the previous sample (readHorizon).
 * One statement joining both views would read them in the plan's order, so a session
 * ending or starting between the reads showed as a hidden transaction and held the
 * watermark back for nothing. `between` runs between reads 1 and 2 (tests use it to land a
 * session exactly there).
 */
async function sampleOpenTransactions(client: pg.Client, between?: () => Promise<void>): Promise<{ at: string; server_started: string; open: OpenTx[] }> {
  // Sessions without a role (autovacuum, background workers) write no rows.
  const a = (
    await client.query<{ at: string; server_started: string; sessions: Session[] }>(
      `select statement_timestamp()::text as at, pg_postmaster_start_time()::text as server_started,
              coalesce(json_agg(json_build_object('pid', a.pid, 'start', a.xact_start::text, 'xid', a.backend_xid::text,
                                                  'visible', a.state is not null and a.state <> 'disabled',
                                                  'app', nullif(a.application_name, ''), 'role', a.usename)) filter (where a.pid is not null), '[]') as sessions
         from (select 1) one
         left join pg_stat_activity a on a.datname = current_database() and a.usesysid is not null and a.pid <> pg_backend_pid()`,
    )
  ).rows[0]!;
  await between?.();
  const locks = (await client.query<{ pid: number; key: string }>(
    `select pid, pid || '/' || virtualxid as key from pg_locks where locktype = 'virtualxid' and granted and pid <> pg_backend_pid() order by pid`,
  )).rows;
  // Prepared (two-phase) transactions hold no virtualxid and belong to no session, yet
  // their rows appear at COMMIT PREPARED, with watermarks from when they began.
  const prepared = (
    await client.query<{ key: string; xid: string; gid: string; role: string | null; guess: string }>(
      `select 'prepared/' || transaction::text as key, transaction::text as xid, gid, owner::text as role, (prepared - $1::interval)::text as guess
         from pg_prepared_xacts where database = current_database() order by prepared`,
      [FALLBACK],
    )
  ).rows;
  const sessions = new Map(a.sessions.map((s) => [s.pid, s]));
  const open: OpenTx[] = [];
  const again: { pid: number; key: string }[] = [];
  for (const l of locks) {
    const s = sessions.get(l.pid);
    if (s?.start || (s && !s.visible)) open.push({ key: l.key, pid: l.pid, start: s.start, app: s.app, role: s.role });
    else again.push(l);
  }
  open.push(...(await lookAgain(client, again)));
  const startOfXid = new Map(a.sessions.flatMap((s) => (s.xid && s.start ? [[s.xid, s.start] as const] : [])));
  for (const p of prepared) {
    open.push({ key: p.key, pid: 0, start: startOfXid.get(p.xid) ?? null, app: null, role: p.role, prepared: { gid: p.gid, guess: p.guess } });
  }
  return { at: a.at, server_started: a.server_started, open };
}

/** One session of read 1 (sampleOpenTransactions). */
interface Session {
  pid: number;
  start: string | null;
  /** Its transaction id, once it has one (a prepared transaction keeps it). */
  xid: string | null;
  /** Its state and start are shown to this role (and tracked). */
  visible: boolean;
  app: string | null;
  role: string | null;
}

/**
 * Read 4: lock holders read 1 could not place, those still in a transaction now, with its
 * start. Sessions without a role (autovacuum) write no rows, as in read 1.
 */
async function lookAgain(client: pg.Client, holders: { pid: number; key: string }[]): Promise<OpenTx[]> {
  if (holders.length === 0) return [];
  const now = await client.query<{ pid: number; start: string; app: string | null; role: string | null }>(
    `select pid, xact_start::text as start, nullif(application_name, '') as app, usename as role
       from pg_stat_activity
      where pid = any($1::int[]) and datname = current_database() and usesysid is not null and xact_start is not null`,
    [holders.map((h) => h.pid)],
  );
  const key = new Map(holders.map((h) => [h.pid, h.key]));
  return now.rows.map((r) => ({ key: key.get(r.pid)!, pid: r.pid, start: r.start, app: r.app, role: r.role }));
}

/** The sample the last committed run from `source` stored on this target, if any. */
export async function loadHorizonSample(target: pg.Client, source: string): Promise<HorizonSample | null> {
  if (!(await stateTableExists(target, 'horizons'))) return null;
  const r = await target.query<{ sampled_at: string; server_started: string; open: Record<string, string> }>(
    `select sampled_at::text, server_started::text, open from bluegreen.horizons where source = $1`,
    [source],
  );
  const s = r.rows[0];
  return s ? { sampledAt: s.sampled_at, serverStarted: s.server_started, open: s.open } : null;
}

/** Stores this run's sample, in the run's transaction (a failed run keeps the previous one). */
export async function saveHorizonSample(target: pg.Client, source: string, sample: HorizonSample): Promise<void> {
  await target.query(
    `insert into bluegreen.horizons (source, sampled_at, server_started, open) values ($1, $2, $3, $4)
     on conflict (source) do update set sampled_at = excluded.sampled_at, server_started = excluded.server_started, open = excluded.open`,
    [source, sample.sampledAt, sample.serverStarted, JSON.stringify(sample.open)],
  );
}
