/**
 * One writer per target at a time (a second run exits at once with 75). A session-level
 * advisory lock on the target, taken by every command that writes it (sync, cutover's
 * final sync, import): released when the session ends, so a SIGKILLed run never leaves it
 * behind once its backend is gone, and never waited for.
 *
 * A backend can outlive its client, though: one busy in a statement notices a dead client
 * only when it next writes to it (bluegreen's sessions poll for it on PostgreSQL 14+), and
 * one idle in a transaction whose client's machine vanished waits for TCP keepalive. The
 * 75 message therefore says who holds the lock, since when and doing what, and when the
 * holder looks abandoned, the exact statement that ends it.
 */
import { readFile } from 'node:fs/promises';
import type pg from 'pg';
import { LockedError } from '../errors.ts';

/** Fixed key pair for pg_try_advisory_lock(int, int): "bg" and "lock". */
const LOCK_CLASS = 0x6267;
const LOCK_OBJ = 0x6c6f636b;

/** A holder idle inside a transaction this long is not a bluegreen run at work. */
const IDLE_IN_TRANSACTION_LIMIT_S = 300;

interface Holder {
  pid: number;
  app: string | null;
  since: string | null;
  state: string | null;
  state_since: string | null;
  state_age: number | null;
  query_age: number | null;
  client_addr: string | null;
  client_port: number | null;
  /** This session's own client address: loopback means we run on the server's machine. */
  my_addr: string | null;
  server_port: number | null;
  statement_timeout_ms: number;
}

export async function acquireTargetLock(client: pg.Client, label: string): Promise<void> {
  const r = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, $2) as ok', [LOCK_CLASS, LOCK_OBJ]);
  if (r.rows[0]!.ok) return;
  const holder = await client.query<Holder>(
    `select a.pid, a.application_name as app,
            to_char(a.backend_start at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS"Z"') as since,
            a.state, to_char(a.state_change at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS"Z"') as state_since,
            extract(epoch from now() - a.state_change)::float8 as state_age,
            extract(epoch from now() - a.query_start)::float8 as query_age,
            host(a.client_addr) as client_addr, a.client_port,
            host(inet_client_addr()) as my_addr, inet_server_port() as server_port,
            (select setting::int from pg_settings where name = 'statement_timeout') as statement_timeout_ms
       from pg_locks l left join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and l.classid = $1 and l.objid = $2 and l.granted and l.database = (select oid from pg_database where datname = current_database())`,
    [LOCK_CLASS, LOCK_OBJ],
  );
  const h = holder.rows[0];
  if (!h) throw new LockedError(label, 'a session that just finished');
  const who = [
    `pid ${h.pid}${h.app ? ` "${h.app}"` : ''}`,
    h.since ? `connected since ${h.since}` : undefined,
    h.state ? `${h.state} since ${h.state_since}` : undefined,
  ].filter(Boolean).join(', ');
  const gone = await abandoned(h);
  if (!gone) throw new LockedError(label, who);
  throw new LockedError(
    label,
    `${who}; ${gone}`,
    `if no bluegreen run is alive, end that session on ${label.replace(/^target /, '')} (same role, no superuser needed): select pg_terminate_backend(${h.pid}); then rerun`,
  );
}

/** Why the holder looks abandoned by its client, or undefined when it looks at work. */
async function abandoned(h: Holder): Promise<string | undefined> {
  if (h.state?.startsWith('idle in transaction') && (h.state_age ?? 0) > IDLE_IN_TRANSACTION_LIMIT_S) {
    return `idle in a transaction for ${Math.round(h.state_age!)} s: its client is gone or stuck`;
  }
  if (h.state === 'active' && h.statement_timeout_ms > 0 && (h.query_age ?? 0) * 1000 > h.statement_timeout_ms + 60_000) {
    return `one statement running for ${Math.round(h.query_age!)} s, past bluegreen's statement timeout: its client is gone`;
  }
  // Client and server on this machine: its TCP connection must still exist here.
  if (h.client_port && h.server_port && isLoopback(h.client_addr) && isLoopback(h.my_addr) && !(await clientAlive(h.client_port, h.server_port))) {
    return `its client (${h.client_addr}:${h.client_port}) no longer exists on this machine`;
  }
  return undefined;
}

function isLoopback(addr: string | null): boolean {
  return addr === '127.0.0.1' || addr === '::1';
}

/**
 * Whether the client end of that connection is still open on this machine: a socket from
 * `port` to the server's port, ESTABLISHED (a dead process's socket lingers a minute in
 * FIN_WAIT2, owned by nobody). Linux /proc; true when it cannot tell.
 */
async function clientAlive(port: number, serverPort: number): Promise<boolean> {
  let any = false;
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(f, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    any = true;
    for (const line of text.split('\n').slice(1)) {
      const [, local, remote, state] = line.trim().split(/\s+/);
      if (!local || !remote) continue;
      const portOf = (a: string) => parseInt(a.split(':').pop()!, 16);
      if (portOf(local) === port && portOf(remote) === serverPort && state === '01') return true;
    }
  }
  return !any;
}

export async function releaseTargetLock(client: pg.Client): Promise<void> {
  await client.query('select pg_advisory_unlock($1, $2)', [LOCK_CLASS, LOCK_OBJ]).catch(() => {});
}

/**
 * Takes the target's writer lock on `client` if it is free (or already this session's:
 * advisory locks stack per session), without waiting. Returns its release, or undefined
 * while another session holds it: a run writing that target, a cutover in particular.
 */
export async function holdTargetLock(client: pg.Client): Promise<(() => Promise<void>) | undefined> {
  const r = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, $2) as ok', [LOCK_CLASS, LOCK_OBJ]);
  if (!r.rows[0]!.ok) return undefined;
  return () => releaseTargetLock(client);
}
