/**
 * Connection URLs checked before use, and connection failures explained by what they are.
 * The pg driver reads a URL it cannot parse against a dummy base, so a password holding an
 * unescaped `/`, `#` or `?` used to end as "getaddrinfo ENOTFOUND base" or a stack trace;
 * a multi-host URL (libpq's failover list) likewise. Neither message ever shows the password.
 * The key=value and `service=` forms (src/db/conninfo.ts) are checked here too: read,
 * their service looked up and the PG* variables applied, so a typo is exit 2 before
 * anything connects.
 */
import { UsageError } from '../errors.ts';
import { ConninfoError, connectionAttempts, isUrl, resolveConninfo } from './conninfo.ts';

/** Where an environment's URL came from (as `resolveEnvironment` says). */
export type UrlOrigin = 'flag' | 'config' | 'environment' | 'embedded';

const ORIGIN_TEXT: Record<UrlOrigin, (env: string) => string> = {
  flag: () => 'the --from-url/--to-url/--url flag',
  config: (env) => `environments.${env}.url in the config file`,
  environment: (env) => `${env.toUpperCase().replace(/-/g, '_')}_URL`,
  embedded: (env) => `the local cluster ${env} (bluegreen env up)`,
};

/** URLs resolved in this process and where each came from, so a connect failure can say where to fix it. */
const origins = new Map<string, { env: string; origin: UrlOrigin }>();

const ENCODE_HINT = 'percent-encode special characters in the user name and password: / as %2F, # as %23, ? as %3F, @ as %40, : as %3A, % as %25';

/**
 * Refuses (exit 2, one line) a URL the driver would misread: not `postgres://`, a user
 * name or password with an unescaped `/`, `?`, `#` or `@`, several hosts, or anything the
 * URL parser rejects. Remembers where the URL came from for {@link connectHint}.
 */
export function checkConnectionUrl(url: string, env: string, origin: UrlOrigin): void {
  const where = ORIGIN_TEXT[origin](env);
  if (!isUrl(url)) {
    // Another scheme, or no keyword=value at all: not a connection string (and not echoed).
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) || (url.trim() !== '' && !url.includes('='))) {
      throw new UsageError(
        `the URL of ${env} (from ${where}) is not a postgres:// URL${url.includes('://') ? '' : ' or key=value conninfo'}`,
        "write it as postgres://user:password@host:5432/database, or as key=value conninfo ('host=db dbname=app user=app')",
      );
    }
    checkResolves(url, env, where, 'connection string');
    origins.set(url, { env, origin });
    return;
  }
  const bad = (what: string, hint: string) => new UsageError(`the URL of ${env} (from ${where}) ${what}`, hint);
  const scheme = /^(postgres(?:ql)?):\/\//i.exec(url)!;
  const rest = url.slice(scheme[0].length);
  // The authority ends at the first / ? or #; an @ after that point means the user info
  // itself held one of those characters unescaped (or an unescaped @).
  const end = rest.search(/[/?#]/);
  const authority = end === -1 ? rest : rest.slice(0, end);
  const after = end === -1 ? '' : rest.slice(end);
  if (after.includes('@') || (authority.match(/@/g)?.length ?? 0) > 1) {
    throw bad('has a user name or password with an unescaped /, ?, # or @', ENCODE_HINT);
  }
  const hostPart = authority.slice(authority.lastIndexOf('@') + 1);
  if (hostPart.includes(',')) {
    throw bad(`names several hosts (${hostPart.replace(/,/g, ', ')}); bluegreen connects to one`, 'give the URL of the primary only: postgres://user:password@host:5432/database');
  }
  try {
    new URL(url);
  } catch {
    throw bad('is malformed', `check the host and port (host:5432); ${ENCODE_HINT}`);
  }
  checkResolves(url, env, where, 'URL');
  origins.set(url, { env, origin });
}

/**
 * Refuses (exit 2) a conninfo that cannot be read, or whose service, sslmode or
 * certificate files are wrong (verify-ca with no root certificate, a file not there).
 */
function checkResolves(conninfo: string, env: string, where: string, what: string): void {
  try {
    connectionAttempts(resolveConninfo(conninfo));
  } catch (err) {
    if (!(err instanceof ConninfoError)) throw err;
    throw new UsageError(
      `the ${what} of ${env} (from ${where}): ${err.message}`,
      "write it as postgres://user:password@host:5432/database, as key=value conninfo ('host=db dbname=app user=app'), or as 'service=NAME' (README \"Configuration\")",
    );
  }
}

/**
 * What to do about a failed connection, by its cause: a wrong password is not "is it
 * running?", and only the local clusters are started with `bluegreen env up`.
 */
export function connectHint(err: unknown, url: string, label?: string): string {
  const e = err as { code?: string; hostname?: string };
  const known = origins.get(url);
  const where = known ? ORIGIN_TEXT[known.origin](known.env) : 'the URL';
  switch (e.code) {
    case 'ENOPASSWORD':
      return `give the password in ${where}, PGPASSWORD, or a line host:port:database:user:password in ~/.pgpass (mode 0600)`;
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
    case 'CERT_HAS_EXPIRED':
      return `give the server's CA certificate as sslrootcert in ${where} (or PGSSLROOTCERT), or lower sslmode (require encrypts without verifying)`;
    case '28P01':
    case '28000':
      return `check the user name and password in ${where}; ${ENCODE_HINT}`;
    case '3D000':
      return `the database does not exist on that server: create it or fix its name in ${where}`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the host ${e.hostname ?? ''} is not known: check the host name in ${where}`.replace('host  is', 'host is');
    case 'ECONNREFUSED':
      if (known?.origin === 'embedded' || (!known && label && ['blue', 'green'].includes(label))) {
        return 'is it running? for the local clusters run `bluegreen env up`';
      }
      return `nothing listens there: is the server running, and are the host and port in ${where} right?`;
    default:
      return `check ${where}, that the server is running, and the credentials`;
  }
}
