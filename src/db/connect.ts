/**
 * Connections. Every session bluegreen opens pins the settings that change a value's text
 * form (`::text` depends on DateStyle, TimeZone and extra_float_digits), so a dump, a
 * conversion and a checksum read the same bytes on any server.
 *
 * Every session also carries its timeouts (connect, lock, statement: nothing waits
 * forever, under cron runs would pile up) and is registered while open, so the CLI can
 * cancel its server statements on SIGINT/SIGTERM: a killed run must not leave a backend
 * running its query and holding the target lock.
 *
 * The network is bounded too (README "Timeouts"): TCP keepalive on both ends finds a peer
 * that is gone, src/db/watchdog.ts a path that went silent with its sockets open, and
 * closing a session never waits on a dead peer for more than END_GRACE_MS. Errors a
 * session's queries fail with are remembered with the session's side (`sessionOf`), so
 * the CLI names blue or green and tells a lost session from a bug.
 */
import net from 'node:net';
import pg from 'pg';
import { RuntimeFailure, UsageError } from '../errors.ts';
import { stallBounds, watchSession } from './watchdog.ts';
import { redactUrl } from '../redact.ts';
import { connectHint } from './url.ts';
import { ConninfoError, connectionAttempts, describeTarget, fallsBack, isUrl, passwordOption, resolveConninfo, tlsFailure, type ConnectionAttempt, type ResolvedConninfo } from './conninfo.ts';

/** Session settings pinned on every connection (sent in the startup packet: no round trip). */
export const PINNED_SETTINGS: Record<string, string> = {
  DateStyle: 'ISO, MDY',
  TimeZone: 'UTC',
  IntervalStyle: 'postgres',
  extra_float_digits: '3',
  bytea_output: 'hex',
  client_encoding: 'UTF8',
  lc_monetary: 'C',
};

export type Client = pg.Client;

/**
 * TCP keepalive on our end: the first probe after this much silence, so a peer whose host
 * is gone is found by the OS's probes (their interval and count are the OS's: Linux
 * 75 s x 9) instead of never. A statement that legitimately runs for hours sends nothing
 * either; the probes are answered by the peer's kernel, so they never end a live session.
 */
export const KEEPALIVE_IDLE_MS = 10_000;

/**
 * The server's end (user-settable, every supported version; ignored on a Unix socket):
 * a backend whose client host is gone (probes unanswered for 60 s + 6 x 10 s) ends, rolls
 * back and releases its snapshot and the target lock, without waiting for the OS default
 * of two hours.
 */
const SERVER_KEEPALIVES: Record<string, string> = { tcp_keepalives_idle: '60', tcp_keepalives_interval: '10', tcp_keepalives_count: '6' };

/** How long closing a session may wait for the server to close its end before the socket is dropped. */
export const END_GRACE_MS = 3000;

/** How long bluegreen waits, in milliseconds; 0 means no limit (statement and lock only). */
export interface SessionTimeouts {
  /** TCP connect, TLS and authentication, up to the server's first ReadyForQuery. */
  connectMs: number;
  /** Waiting for a table or row lock (PostgreSQL `lock_timeout`), on both sides. */
  lockMs: number;
  /** One statement (PostgreSQL `statement_timeout`), on both sides: a COPY is one statement. */
  statementMs: number;
}

/**
 * Defaults: a server that accepts TCP and never answers is given up after 10 s; a lock
 * after 30 s (a writer holding a target table); a statement after 6 h, well above the
 * largest single COPY measured (a 5M-row table takes about two minutes), so only a hang
 * reaches it. Flags change them: --connect-timeout, --lock-timeout, --statement-timeout.
 */
export const DEFAULT_TIMEOUTS: SessionTimeouts = { connectMs: 10_000, lockMs: 30_000, statementMs: 6 * 3_600_000 };

let timeouts: SessionTimeouts = { ...DEFAULT_TIMEOUTS };

/** Sets the timeouts every later connection uses (the CLI calls it once per command). */
export function setSessionTimeouts(t: Partial<SessionTimeouts>): void {
  timeouts = { ...timeouts, ...Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined)) };
}

export function sessionTimeouts(): SessionTimeouts {
  return { ...timeouts };
}

const UNIT_MS: Record<string, number> = {
  ms: 1, msec: 1, msecs: 1, millisecond: 1, milliseconds: 1,
  s: 1000, sec: 1000, secs: 1000, second: 1000, seconds: 1000,
  min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
};

/**
 * A timeout flag in milliseconds: a number of seconds (`10`, `2.5`) or a PostgreSQL-style
 * interval (`30s`, `500ms`, `5min`, `1 hour 30 minutes`). Checked here, before anything
 * connects, so a typo is exit 2 and not a server error (a bare number means milliseconds
 * to the server's own setting, seconds here: it is converted before it is sent).
 */
export function parseTimeout(flag: string, value: unknown, allowZero = true): number {
  const text = String(value).trim().toLowerCase();
  let ms: number | undefined;
  if (/^\d+(\.\d+)?$/.test(text)) ms = Number(text) * 1000;
  else {
    const parts = [...text.matchAll(/(\d+(?:\.\d+)?)\s*([a-z]+)\s*/g)];
    if (parts.length && parts.map((p) => p[0]).join('') === text.replace(/^\s+/, '') && parts.every((p) => UNIT_MS[p[2]!])) {
      ms = parts.reduce((a, p) => a + Number(p[1]) * UNIT_MS[p[2]!]!, 0);
    }
  }
  if (ms === undefined || !Number.isFinite(ms) || ms < 0 || (!allowZero && ms === 0) || ms > 2_147_483_647) {
    throw new UsageError(
      `--${flag} must be seconds or a duration, got ${JSON.stringify(String(value))}`,
      `e.g. --${flag} 10, --${flag} 30s, --${flag} '5 minutes'${allowZero ? ` (0: no limit)` : ''}`,
    );
  }
  return Math.round(ms);
}

/** Sessions open now, for cancelStatements. */
const open = new Set<pg.Client>();

/**
 * Cancels whatever every open session is running (the protocol's cancel request on a
 * separate socket, as psql's Ctrl-C does: no privilege, no free connection slot needed),
 * then closes the sessions so each backend ends, rolls back its open transaction and
 * drops its session locks. Resolves when every session is closed or after `waitMs`.
 * Returns how many sessions were open.
 */
export async function cancelStatements(waitMs = 5000): Promise<number> {
  const clients = [...open];
  await Promise.all(clients.map((c) => sendCancel(c)));
  await Promise.race([
    Promise.all(clients.map((c) => c.end().catch(() => {}))),
    new Promise((resolve) => setTimeout(resolve, waitMs).unref()),
  ]);
  return clients.length;
}

function sendCancel(client: pg.Client): Promise<void> {
  const c = client as unknown as { host?: string; port?: number; processID?: number | null; secretKey?: number | null };
  if (!c.processID || c.secretKey == null) return Promise.resolve();
  return new Promise((resolve) => {
    const msg = Buffer.alloc(16);
    msg.writeInt32BE(16, 0);
    msg.writeInt32BE(80877102, 4); // CancelRequest code
    msg.writeInt32BE(c.processID!, 8);
    msg.writeInt32BE(c.secretKey!, 12);
    const sock = c.host?.startsWith('/') ? net.connect(`${c.host}/.s.PGSQL.${c.port}`) : net.connect(c.port ?? 5432, c.host ?? 'localhost');
    sock.setTimeout(2000, () => sock.destroy());
    sock.on('connect', () => sock.end(msg));
    sock.on('close', () => resolve());
    sock.on('error', () => resolve());
  });
}

export interface ConnectOptions {
  /** Shown in pg_stat_activity, so a DBA sees who holds what. */
  applicationName?: string;
  /** Name used in error messages (`blue`, `green`). */
  label?: string;
}

/** What a failed query's error came from: the session's side, and what the server said when it ended the session. */
export interface SessionOfError {
  /** The session's label (blue, green, …). */
  side: string;
  /** The server's FATAL error that ended the session earlier (a query sent after it fails without a SQLSTATE). */
  ended?: Error & { code?: string };
}

const errorSessions = new WeakMap<object, SessionOfError>();

/** The session an error of a query came from, when it came from one opened by `connect`. */
export function sessionOf(err: unknown): SessionOfError | undefined {
  return err && typeof err === 'object' ? errorSessions.get(err) : undefined;
}

/**
 * Remembers the side of every error this session's queries fail with (promise queries and
 * submittables such as COPY streams), and closes within END_GRACE_MS: pg's own end()
 * waits for the server to close its end, which a silent path never does.
 */
function instrument(client: pg.Client, side: string): void {
  let ended: SessionOfError['ended'];
  client.on('error', (err: Error & { code?: string; severity?: string }) => {
    if (!ended && err.code && (err.severity === 'FATAL' || err.severity === 'PANIC')) ended = err;
  });
  const note = (err: unknown) => {
    if (err && typeof err === 'object' && !errorSessions.has(err)) errorSessions.set(err, { side, ...(ended && ended !== err ? { ended } : {}) });
    return err;
  };
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (config: unknown, ...rest: unknown[]) => {
    const submittable = config as { submit?: unknown; handleError?: (err: unknown, ...more: unknown[]) => void };
    if (submittable && typeof submittable.submit === 'function' && typeof submittable.handleError === 'function') {
      const handleError = submittable.handleError;
      submittable.handleError = function (this: unknown, err: unknown, ...more: unknown[]) {
        return handleError.call(this, note(err), ...more);
      };
      return query(config, ...rest);
    }
    const result = query(config, ...rest);
    return result instanceof Promise ? result.catch((err: unknown) => Promise.reject(note(err))) : result;
  };
  const end = client.end.bind(client);
  (client as unknown as { end: () => Promise<void> }).end = () => {
    const stream = (client as unknown as { connection: { stream: net.Socket } }).connection.stream;
    const timer = setTimeout(() => stream.destroy(), END_GRACE_MS);
    timer.unref();
    return end().finally(() => clearTimeout(timer));
  };
}

export async function connect(url: string, opts: ConnectOptions = {}): Promise<pg.Client> {
  const t = timeouts;
  const settings = { ...PINNED_SETTINGS, ...SERVER_KEEPALIVES, statement_timeout: String(t.statementMs), lock_timeout: String(t.lockMs) };
  const pinned = Object.entries(settings)
    .map(([k, v]) => `-c ${k}=${v.replace(/ /g, '\\ ')}`)
    .join(' ');
  const side = opts.label ?? 'database';
  // The URL, key=value conninfo or service, with the PG* variables filling its gaps
  // (src/db/conninfo.ts); resolveEnvironment has refused one that cannot be read.
  let target: ResolvedConninfo;
  let attempts: ConnectionAttempt[];
  try {
    target = resolveConninfo(url);
    attempts = connectionAttempts(target);
  } catch (err) {
    if (err instanceof ConninfoError) throw new UsageError(`the connection string of ${side}: ${err.message}`, 'README "Configuration" lists the forms and keywords bluegreen reads');
    throw err;
  }
  const shown = isUrl(url) ? redactUrl(url) : describeTarget(target);
  const password = passwordOption(target);
  // The conninfo's own options (-c settings) first: the pinned ones after them win.
  const options = [target.params.options, pinned].filter(Boolean).join(' ');
  let client: pg.Client | undefined;
  for (const [i, attempt] of attempts.entries()) {
    client = new pg.Client({
      host: target.params.hostaddr || target.host,
      port: target.port,
      database: target.dbname,
      user: target.user,
      password,
      ssl: attempt.ssl,
      application_name: opts.applicationName ?? 'bluegreen',
      options,
      connectionTimeoutMillis: t.connectMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
    });
    // An idle client whose server goes away emits 'error'; without a listener that kills
    // the process with a stack trace. The next query reports the failure properly.
    client.on('error', () => {});
    instrument(client, side);
    try {
      await client.connect();
      break;
    } catch (err) {
      await client.end().catch(() => {});
      // sslmode prefer / allow: the other kind of connection, as libpq tries it.
      if (i + 1 < attempts.length && fallsBack(err)) continue;
      throw connectFailure(err, url, shown, target, opts.label, t.connectMs);
    }
  }
  const c = client!;
  try {
    watchSession(c, side, stallBounds(t.statementMs));
    // A backend whose client died mid-statement notices it only when it next writes to
    // the socket; PostgreSQL 14+ can poll for it, so even a SIGKILLed run's statement
    // (and the target lock its session holds) ends within seconds.
    await c.query(
      `select set_config('client_connection_check_interval', '5000', false) where current_setting('server_version_num')::int >= 140000`,
    );
  } catch (err) {
    await c.end().catch(() => {});
    throw connectFailure(err, url, shown, target, opts.label, t.connectMs);
  }
  open.add(c);
  c.once('end', () => open.delete(c));
  return c;
}

function connectFailure(err: unknown, url: string, shown: string, target: ResolvedConninfo, label: string | undefined, connectMs: number): RuntimeFailure {
  const msg = (err as Error).message;
  const timedOut = /timeout/i.test(msg) && !(err as { code?: string }).code;
  const tls = tlsFailure(err, target);
  return new RuntimeFailure(
    `cannot connect to ${label ?? 'database'} at ${shown}: ${timedOut ? `no answer within ${connectMs / 1000} s (--connect-timeout)` : tls ?? msg}`,
    connectHint(err, url, label),
  );
}

/**
 * Ends a session at once by closing its socket: its backend rolls back and goes. For a
 * session whose protocol state cannot be recovered (a COPY TO abandoned halfway: the
 * server keeps sending rows nobody reads, and every later query would queue behind them).
 */
export function dropSession(client: pg.Client): void {
  (client as unknown as { connection: { stream: net.Socket } }).connection.stream.destroy();
}

/** Runs `fn` with a connection and always closes it. */
export async function withClient<T>(url: string, opts: ConnectOptions, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(url, opts);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Quotes an identifier for SQL (`"weird ""name"""`). */
export function ident(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/** Quotes a string literal for SQL. */
export function literal(value: string): string {
  return "'" + value.replace(/'/g, "''") + "'";
}
