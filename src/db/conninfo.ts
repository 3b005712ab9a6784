/**
 * Connection strings as libpq reads them (README "Configuration"), turned into what the pg
 * driver takes. An environment is given as a URL (`postgres://…`), as key=value conninfo
 * (`host=db dbname=app`), or as `service=NAME`; whatever it leaves out comes, in libpq's
 * order, from the service's section of a service file (src/db/service-file.ts), then from
 * the PG* environment variables, then from defaults. The PG* variables never name an
 * environment on their own: they describe one database, and blue and green are two.
 *
 * What the pg driver does not do, or does differently, is done here:
 * - key=value conninfo (pg reads URLs only), service files;
 * - sslmode with libpq's meanings. The TLS options of require, verify-ca and verify-full
 *   come from pg-connection-string's libpq-compatible mode (`useLibpqCompat`); the
 *   fallbacks of prefer (TLS, else plain) and allow (plain, else TLS) are the attempts
 *   {@link connectionAttempts} lists, tried in order by connect();
 * - ~/.pgpass (or passfile / PGPASSFILE) with libpq's permission rule, read only when the
 *   server asks for a password (pg's own pgpass lookup prints a DeprecationWarning, and its
 *   permission warnings go to stderr as plain text: ours go through process warnings, which
 *   bin/bluegreen.js prints in the log's format).
 *
 * pg is always given an explicit config (never a connection string, never ssl undefined),
 * so it neither reads PG* variables itself nor prints its sslmode SECURITY WARNING.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { lookupService, ServiceFileError } from './service-file.ts';

const require = createRequire(import.meta.url);
const { parse: parseConnectionString } = require('pg-connection-string') as typeof import('pg-connection-string');
/** pgpass's line parser and matcher (the package has no types; pinned to pg's version). */
const pgpassHelper = require('pgpass/lib/helper.js') as {
  parseLine(line: string): PgpassEntry | null;
  isValidEntry(entry: PgpassEntry): boolean;
  match(connInfo: { host: string; port: number; database: string; user: string }, entry: PgpassEntry): boolean;
};
interface PgpassEntry {
  host: string;
  port: string;
  database: string;
  user: string;
  password: string;
}

/** A conninfo that cannot be read: the message names no value (it could be a password). */
export class ConninfoError extends Error {}

/** libpq keyword -> value. */
export type Conninfo = Record<string, string>;

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/**
 * The libpq keywords bluegreen takes. `used` ones mean what libpq says; `ignored` ones are
 * accepted so a conninfo written for psql works, and do nothing here (why, beside each).
 * Any other libpq keyword is refused rather than silently dropped: gssencmode=require or
 * target_session_attrs=read-write would promise something bluegreen does not do.
 */
const USED = new Set(['host', 'hostaddr', 'port', 'dbname', 'user', 'password', 'passfile', 'service', 'options', 'sslmode', 'sslrootcert', 'sslcert', 'sslkey']);
const IGNORED: Record<string, string> = {
  application_name: 'bluegreen names its sessions itself (cutover finds its own by name)',
  fallback_application_name: 'as application_name',
  connect_timeout: '--connect-timeout governs',
  client_encoding: 'bluegreen pins UTF8',
  keepalives: 'bluegreen sets TCP keepalive itself',
  keepalives_idle: 'as keepalives',
  keepalives_interval: 'as keepalives',
  keepalives_count: 'as keepalives',
  sslsni: 'SNI is always sent for a host name',
  sslcompression: 'obsolete in libpq too',
  uselibpqcompat: "node-postgres's switch; bluegreen always reads sslmode as libpq",
};
/** Keywords accepted only with the value that means "nothing special". */
const ONLY: Record<string, string[]> = { gssencmode: ['disable', 'prefer'], target_session_attrs: ['any'], load_balance_hosts: ['disable'] };

export function isConnectionKeyword(keyword: string): boolean {
  return USED.has(keyword) || keyword in IGNORED || keyword in ONLY;
}

/** The PG* variables and the keyword each fills in (libpq's table, the ones bluegreen uses). */
export const ENV_VARS: Record<string, string> = {
  PGHOST: 'host',
  PGHOSTADDR: 'hostaddr',
  PGPORT: 'port',
  PGDATABASE: 'dbname',
  PGUSER: 'user',
  PGPASSWORD: 'password',
  PGPASSFILE: 'passfile',
  PGSERVICE: 'service',
  PGOPTIONS: 'options',
  PGSSLMODE: 'sslmode',
  PGSSLROOTCERT: 'sslrootcert',
  PGSSLCERT: 'sslcert',
  PGSSLKEY: 'sslkey',
  PGAPPNAME: 'application_name',
  PGCONNECT_TIMEOUT: 'connect_timeout',
};

export function isUrl(text: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(text);
}

/** Reads a URL or key=value conninfo into libpq keywords; checks the keywords. */
export function parseConninfo(text: string): Conninfo {
  const params = isUrl(text) ? parseUrl(text) : parseKeywordValue(text);
  for (const [k, v] of Object.entries(params)) checkKeyword(k, v);
  return params;
}

function checkKeyword(keyword: string, value: string): void {
  if (!isConnectionKeyword(keyword)) throw new ConninfoError(`invalid connection option "${keyword}"`);
  const only = ONLY[keyword];
  if (only && !only.includes(value)) throw new ConninfoError(`${keyword}=${value} is not supported by bluegreen (only ${only.join(' or ')})`);
}

/**
 * libpq's key=value form (fe-connect.c, conninfo_parse): `keyword = value` pairs separated
 * by white space; a value is either a run of non-space characters or single-quoted; in
 * both, a backslash takes the next character literally (`\'`, `\\`, `\ `). An empty string
 * is a valid conninfo with no keyword.
 */
export function parseKeywordValue(text: string): Conninfo {
  const out: Conninfo = {};
  let i = 0;
  const n = text.length;
  const space = (c: string | undefined) => c !== undefined && /\s/.test(c);
  while (i < n) {
    while (space(text[i])) i++;
    if (i >= n) break;
    const start = i;
    while (i < n && text[i] !== '=' && !space(text[i])) i++;
    const keyword = text.slice(start, i);
    while (space(text[i])) i++;
    if (text[i] !== '=') {
      // Name the keyword only when it looks like one: a mistyped URL would be printed whole.
      throw new ConninfoError(/^[A-Za-z_][A-Za-z0-9_]{0,40}$/.test(keyword) ? `missing "=" after "${keyword}" in connection info string` : 'is neither a postgres:// URL nor key=value conninfo');
    }
    i++;
    while (space(text[i])) i++;
    let value = '';
    if (text[i] === "'") {
      i++;
      for (;;) {
        if (i >= n) throw new ConninfoError('unterminated quoted string in connection info string');
        const c = text[i]!;
        if (c === '\\' && i + 1 < n) {
          value += text[i + 1];
          i += 2;
        } else if (c === "'") {
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
    } else {
      while (i < n && !space(text[i])) {
        if (text[i] === '\\' && i + 1 < n) {
          value += text[i + 1];
          i += 2;
        } else value += text[i++];
      }
    }
    if (keyword === '') throw new ConninfoError('missing keyword before "=" in connection info string');
    // A keyword given twice: the last one wins, as in libpq.
    out[keyword] = value;
  }
  return out;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * libpq's URI form: postgres[ql]://[user[:password]@][host][:port][/dbname][?keyword=value&…].
 * Host, user, password and dbname are percent-decoded; a host may be [IPv6] or a
 * percent-encoded socket directory (%2Fvar%2Frun%2Fpostgresql). Query parameters are
 * libpq keywords and win over the parts before them. `ssl=true` (a node-postgres form)
 * keeps what it meant there: verify-full; `sslmode=no-verify` (node-postgres too) is
 * libpq's require. url.ts has already refused what this cannot read.
 */
export function parseUrl(text: string): Conninfo {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new ConninfoError('malformed URL');
  }
  const out: Conninfo = {};
  if (u.username) out.user = decode(u.username);
  if (u.password) out.password = decode(u.password);
  const host = decode(u.hostname.replace(/^\[(.*)\]$/, '$1'));
  if (host) out.host = host;
  if (u.port) out.port = u.port;
  const db = u.pathname.replace(/^\//, '');
  if (db) out.dbname = decode(db);
  for (const [k, v] of u.searchParams) {
    if (k === 'ssl') {
      if (['true', '1'].includes(v)) out.sslmode = 'verify-full';
      else if (['false', '0'].includes(v)) out.sslmode = 'disable';
      else throw new ConninfoError(`invalid value for ssl: use true or false, or sslmode=`);
    } else if (k === 'sslmode' && v === 'no-verify') out.sslmode = 'require';
    else if (v !== '' || !(k in out)) out[k] = v;
  }
  return out;
}

/** A conninfo with the service, the PG* variables and the defaults applied. */
export interface ResolvedConninfo {
  host: string;
  port: number;
  dbname: string;
  user: string;
  password?: string;
  sslmode: SslMode;
  /** Every keyword that ended up set (password included: never print this object). */
  params: Conninfo;
  /** The service section used, if any. */
  service?: { name: string; file: string };
}

/**
 * Applies libpq's order to a parsed conninfo: what it gives, then its service's section
 * (`service=` or PGSERVICE), then PG* variables, then defaults. An empty variable counts
 * as unset. Defaults are pg's, not all libpq's: host localhost (libpq: the socket
 * directory), port 5432, user the OS user, dbname the user, and sslmode **disable**
 * (libpq: prefer), so a URL that worked before keeps connecting exactly as it did.
 */
export function resolveConninfo(text: string, env: Record<string, string | undefined> = process.env): ResolvedConninfo {
  const params: Conninfo = { ...parseConninfo(text) };
  const fill = (from: Conninfo) => {
    for (const [k, v] of Object.entries(from)) if (!(k in params) && v !== '') params[k] = v;
  };
  const serviceName = params.service || env.PGSERVICE;
  let service: ResolvedConninfo['service'];
  if (serviceName) {
    try {
      const def = lookupService(serviceName, env, isConnectionKeyword);
      for (const [k, v] of Object.entries(def.params)) checkKeyword(k, v);
      fill(def.params);
      service = { name: serviceName, file: def.file };
    } catch (err) {
      if (err instanceof ServiceFileError) throw new ConninfoError(err.message);
      throw err;
    }
  }
  for (const [name, keyword] of Object.entries(ENV_VARS)) {
    const v = env[name];
    if (v && !(keyword in params)) params[keyword] = v;
  }
  const user = params.user || env.USER || os.userInfo().username;
  const portText = params.port || '5432';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) throw new ConninfoError(`invalid port number: "${portText}"`);
  const host = params.host || params.hostaddr || 'localhost';
  if (host.includes(',') || (params.hostaddr ?? '').includes(',') || portText.includes(',')) {
    throw new ConninfoError(`names several hosts (${host}); bluegreen connects to one`);
  }
  const sslmode = (params.sslmode || 'disable') as SslMode;
  if (!SSL_MODES.includes(sslmode)) throw new ConninfoError(`invalid sslmode value: "${params.sslmode}" (one of ${SSL_MODES.join(', ')})`);
  return { host, port, dbname: params.dbname || user, user, password: params.password || undefined, sslmode, params, service };
}

/** `host:port/dbname as user`, for messages (no password). */
export function describeTarget(r: ResolvedConninfo): string {
  return `${r.host}:${r.port}/${r.dbname} as ${r.user}${r.service ? ` (service ${r.service.name})` : ''}${r.sslmode !== 'disable' ? ` sslmode=${r.sslmode}` : ''}`;
}

/** One way of connecting: plain, or TLS with these options. */
export interface ConnectionAttempt {
  ssl: false | ConnectionOptions;
}

/**
 * libpq's default certificate files (~/.postgresql/root.crt, postgresql.crt and .key),
 * used when they exist and the conninfo names none, as libpq does.
 */
function defaultCertFiles(params: Conninfo, env: Record<string, string | undefined>): Conninfo {
  const dir = path.join(env.HOME || os.homedir(), '.postgresql');
  const out: Conninfo = {};
  if (!params.sslrootcert && existsSync(path.join(dir, 'root.crt'))) out.sslrootcert = path.join(dir, 'root.crt');
  if (!params.sslcert && !params.sslkey && existsSync(path.join(dir, 'postgresql.crt')) && existsSync(path.join(dir, 'postgresql.key'))) {
    out.sslcert = path.join(dir, 'postgresql.crt');
    out.sslkey = path.join(dir, 'postgresql.key');
  }
  return out;
}

/**
 * The TLS options of an encrypted attempt, from pg-connection-string's libpq-compatible
 * reading of sslmode (require: encrypt, verify nothing, or the chain only when a root
 * certificate is given; verify-ca: the chain, not the host name; verify-full: both). It
 * also reads the certificate files. `sslrootcert=system` (libpq 16) is the platform's CAs,
 * allowed with verify-full only, as in libpq.
 */
function tlsOptions(r: ResolvedConninfo, mode: 'require' | 'verify-ca' | 'verify-full', env: Record<string, string | undefined>): ConnectionOptions {
  const files = { ...defaultCertFiles(r.params, env), ...pick(r.params, ['sslrootcert', 'sslcert', 'sslkey']) };
  if (files.sslrootcert === 'system') {
    if (mode !== 'verify-full') throw new ConninfoError(`sslrootcert=system needs sslmode=verify-full (not ${r.sslmode}), as in libpq`);
    delete files.sslrootcert;
  } else if (mode === 'verify-ca' && !files.sslrootcert) {
    throw new ConninfoError('sslmode=verify-ca needs a root certificate to verify against: set sslrootcert (or PGSSLROOTCERT), or put it in ~/.postgresql/root.crt');
  }
  const q = new URLSearchParams({ sslmode: mode, ...files });
  let ssl: unknown;
  try {
    ssl = parseConnectionString(`postgres://localhost/?${q.toString()}`, { useLibpqCompat: true }).ssl;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConninfoError(e.code === 'ENOENT' || e.code === 'EACCES' ? `cannot read the certificate file ${e.path ?? ''} (${e.code})` : e.message);
  }
  const options = { ...(typeof ssl === 'object' && ssl ? ssl : {}) } as ConnectionOptions;
  // Connecting to hostaddr, the certificate is still checked against host (libpq's split).
  if (r.params.hostaddr && r.params.host) options.servername = r.params.host;
  return options;
}

function pick(params: Conninfo, keys: string[]): Conninfo {
  return Object.fromEntries(keys.filter((k) => params[k]).map((k) => [k, params[k]!]));
}

/**
 * The attempts sslmode makes, in order: disable plain; allow plain then TLS; prefer TLS
 * then plain; require, verify-ca and verify-full TLS only. {@link fallsBack} says whether a
 * failed attempt moves on to the next one.
 */
export function connectionAttempts(r: ResolvedConninfo, env: Record<string, string | undefined> = process.env): ConnectionAttempt[] {
  switch (r.sslmode) {
    case 'disable':
      return [{ ssl: false }];
    case 'allow':
      return [{ ssl: false }, { ssl: tlsOptions(r, 'require', env) }];
    case 'prefer':
      return [{ ssl: tlsOptions(r, 'require', env) }, { ssl: false }];
    default:
      return [{ ssl: tlsOptions(r, r.sslmode, env) }];
  }
}

/**
 * Whether a failed attempt of prefer/allow moves on to the next: the server has no TLS
 * (its answer to the SSL request is N), the TLS handshake failed, or the server refused
 * this kind of connection (pg_hba.conf: hostssl / hostnossl, SQLSTATE 28000). A wrong
 * password or a server that is down fails the same way either way: no second attempt.
 */
export function fallsBack(err: unknown): boolean {
  const e = err as { message?: string; code?: string };
  if (e?.code === '28000') return true;
  if (typeof e?.message === 'string' && /does not support SSL connections|error establishing an SSL connection/.test(e.message)) return true;
  return typeof e?.code === 'string' && (e.code.startsWith('ERR_SSL') || e.code === 'EPROTO');
}

/** Says what a TLS attempt failed on, in one line (the snakeoil certificate: self-signed). */
export function tlsFailure(err: unknown, r: ResolvedConninfo): string | undefined {
  const e = err as { code?: string; message?: string };
  if (r.sslmode === 'disable' || !e?.code) return undefined;
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(e.code)) {
    return `the server's certificate does not verify under sslmode=${r.sslmode} (${e.code}): give its CA as sslrootcert, or use sslmode=require to encrypt without verifying`;
  }
  if (e.code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `the server's certificate is not for host ${r.host} (sslmode=verify-full): connect by the name in its certificate, or use sslmode=verify-ca`;
  }
  return undefined;
}

const warned = new Set<string>();

/**
 * Warnings about connection settings (a password file ignored), as process warnings; each
 * once per process (a command opens several sessions, and the file is the same for all).
 */
export function connectionWarning(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  process.emitWarning(message, { type: 'ConnectionWarning' });
}

/** The password file libpq would read: passfile, PGPASSFILE (already in params), else ~/.pgpass. */
export function passfileOf(r: ResolvedConninfo, env: Record<string, string | undefined> = process.env): string {
  return r.params.passfile || path.join(env.HOME || os.homedir(), '.pgpass');
}

/**
 * The password from the password file, or undefined. libpq's permission rule: on Unix a
 * file that is not a plain file, or that its group or others can read or write, is
 * ignored with a warning (pgpass's own check cannot be used: it reads PGPASSWORD from the
 * process, where an empty one would skip the file libpq reads). Lines are parsed and
 * matched by the pgpass package (`\:` and `\\` escapes, `*` wildcards), the first
 * matching line winning as in libpq (pgpass's own reader lets a later match in the same
 * chunk overwrite it); a socket directory matches the host name localhost, as in libpq.
 */
export async function passwordFromFile(r: ResolvedConninfo, env: Record<string, string | undefined> = process.env): Promise<string | undefined> {
  const file = passfileOf(r, env);
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) {
      connectionWarning(`password file "${file}" is not a plain file`);
      return undefined;
    }
    if (process.platform !== 'win32' && st.mode & 0o077) {
      connectionWarning(`password file "${file}" has group or world access; permissions should be u=rw (0600) or less`);
      return undefined;
    }
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const host = r.host.startsWith('/') ? 'localhost' : r.host;
  const wanted = { host, port: r.port, database: r.dbname, user: r.user };
  for (const line of text.split(/\r?\n/)) {
    if (line.startsWith('#')) continue;
    const entry = pgpassHelper.parseLine(line);
    if (entry && pgpassHelper.isValidEntry(entry) && pgpassHelper.match(wanted, entry)) return entry.password;
  }
  return undefined;
}

/**
 * pg's password: the conninfo's (or PGPASSWORD's), else a function pg calls only when the
 * server asks for one, reading the password file then; with none, a clear error rather
 * than pg's "client password must be a string".
 */
export function passwordOption(r: ResolvedConninfo, env: Record<string, string | undefined> = process.env): string | (() => Promise<string>) {
  if (r.password !== undefined) return r.password;
  return async () => {
    const found = await passwordFromFile(r, env);
    if (found !== undefined) return found;
    const err = new Error(`the server asks for a password and none was given (not in the conninfo, PGPASSWORD or ${passfileOf(r, env)})`) as Error & { code: string };
    err.code = 'ENOPASSWORD';
    throw err;
  };
}
