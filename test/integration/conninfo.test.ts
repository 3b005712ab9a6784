/**
 * Every way of giving an environment's connection, through the real CLI against the test
 * server (README "Configuration"): a URL, key=value conninfo, a service file, PG*
 * variables filling a partial conninfo, a password file, and the sslmodes. Each run is
 * `status --env blue` in JSON log mode, and every line it writes must be JSON: the
 * warnings Node and pg print as plain text (pgpass's DeprecationWarning, the sslmode
 * SECURITY WARNING, an ignored ~/.pgpass) would break that.
 *
 * The embedded server has no TLS, so the TLS tests run where the server has it (CI's
 * PostgreSQL 15 with Debian's snakeoil certificate), detected with `show ssl`, and skip
 * with the reason otherwise.
 */
import { access, chmod, constants, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.ts';
import { adminQuery, freshDatabase, query } from '../helpers/pg.ts';
import { connect } from '../../src/db/connect.ts';
import { tempDir } from '../helpers/tmp.ts';

let url: string;
let parts: { host: string; port: string; dbname: string; user: string; password: string };
let ssl: boolean;
let dir: string;
/** The server's certificate file when this process can read it (CI: the snakeoil one, self-signed, so its own CA). */
let certFile: string | undefined;

beforeAll(async () => {
  url = await freshDatabase('conninfo');
  const u = new URL(url);
  parts = { host: u.hostname, port: u.port || '5432', dbname: u.pathname.slice(1), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
  ssl = (await query<{ ssl: string }>(url, 'show ssl'))[0]!.ssl === 'on';
  dir = await tempDir('conninfo');
  if (ssl) {
    const f = String((await adminQuery('show ssl_cert_file')).rows[0]!.ssl_cert_file);
    const file = path.isAbsolute(f) ? f : path.join(String((await adminQuery('show data_directory')).rows[0]!.data_directory), f);
    certFile = await access(file, constants.R_OK).then(() => file, () => undefined);
  }
});

/**
 * Nothing of the machine's connection settings reaches the CLI unless a test gives it:
 * empty PG* variables count as unset, no password file, no system service file.
 */
function isolated(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of ['PGHOST', 'PGHOSTADDR', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGPASSWORD', 'PGSERVICE', 'PGSSLMODE', 'PGSSLROOTCERT', 'PGSSLCERT', 'PGSSLKEY', 'PGAPPNAME', 'PGOPTIONS']) env[v] = '';
  return { ...env, PGPASSFILE: path.join(dir, 'no-such-pgpass'), PGSERVICEFILE: path.join(dir, 'no-such-service-file'), PGSYSCONFDIR: dir, HOME: dir };
}

interface Run {
  code: number | null;
  lines: Record<string, any>[];
  /** status's report of blue. */
  blue: { reachable: boolean; error?: string; url: string } | undefined;
  text: string;
}

/** `bluegreen status --env blue` with BLUE_URL = `conninfo`, in JSON log mode; every line must be JSON. */
async function status(conninfo: string, env: Record<string, string> = {}): Promise<Run> {
  // Run from the temporary folder: a `.bluegreen/` left in the repository by `env up` (as
  // `make demo` leaves one in CI) would name blue and green by itself.
  const r = await runCli(['status', '--mappings', path.join(ROOT, 'mappings'), '--env', 'blue', '--log-format', 'json'], { ...isolated(), BLUE_URL: conninfo, ...env }, dir);
  const text = r.stdout + r.stderr;
  const lines = text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, any>;
      } catch {
        throw new Error(`not a JSON line: ${l}\n--- whole output:\n${text}`);
      }
    });
  const result = lines.find((l) => l.report);
  return { code: r.code, lines, blue: result?.report?.environments?.[0], text };
}

/** Reached the database: status read it, and the password appeared nowhere. */
function expectReached(r: Run): void {
  expect(r.blue, r.text).toBeDefined();
  expect(r.blue!.reachable, r.text).toBe(true);
  expect(r.text).not.toContain(parts.password);
}

describe('the forms of a connection string', () => {
  it('a URL', async () => {
    expectReached(await status(url));
  });

  it('key=value conninfo, with a quoted value; the password is masked in the report', async () => {
    const r = await status(`host=${parts.host} port=${parts.port} dbname='${parts.dbname}' user=${parts.user} password='${parts.password}'`);
    expectReached(r);
    expect(r.blue!.url).toMatch(/password=\*\*\*/);
  });

  it('service=NAME from the file PGSERVICEFILE names', async () => {
    const file = path.join(dir, 'pg_service.conf');
    await writeFile(file, `# written by the test\n[other]\nhost=nowhere.invalid\n\n[bg_test]\nhost=${parts.host}\nport=${parts.port}\ndbname=${parts.dbname}\nuser=${parts.user}\npassword=${parts.password}\n`);
    expectReached(await status('service=bg_test', { PGSERVICEFILE: file }));
    // A service that is not there is exit 2 before anything connects, naming it.
    const missing = await status('service=bg_nope', { PGSERVICEFILE: file });
    expect(missing.code).toBe(2);
    expect(missing.text).toMatch(/definition of service \\?"bg_nope\\?" not found/);
  });

  it('PG* variables fill in what a partial conninfo leaves out', async () => {
    const pg = { PGHOST: parts.host, PGPORT: parts.port, PGUSER: parts.user, PGPASSWORD: parts.password };
    expectReached(await status(`dbname=${parts.dbname}`, pg));
    // The conninfo wins over them: a wrong PGDATABASE does not replace its dbname.
    expectReached(await status(`dbname=${parts.dbname}`, { ...pg, PGDATABASE: 'bg_no_such_db' }));
  });

  it('PG* variables alone do not make an environment: blue and green stay two databases', async () => {
    const r = await status('', { PGHOST: parts.host, PGPORT: parts.port, PGUSER: parts.user, PGPASSWORD: parts.password, PGDATABASE: parts.dbname });
    expect(r.code, r.text).toBe(2);
    expect(r.text).toMatch(/no database for environment \\?"blue\\?"/);
  });
});

describe('passwords from a password file', () => {
  const conninfo = () => `host=${parts.host} port=${parts.port} dbname=${parts.dbname} user=${parts.user}`;
  const passfile = async (mode: number) => {
    const file = path.join(dir, `pgpass-${mode.toString(8)}`);
    // Wildcard host and database lines around the real one: the first match is used.
    await writeFile(file, `# comment\nnowhere.invalid:*:*:*:wrong\n${parts.host}:${parts.port}:${parts.dbname}:${parts.user}:${parts.password.replace(/:/g, '\\:')}\n*:*:*:*:wrong-too\n`);
    await chmod(file, mode);
    return file;
  };

  it('PGPASSFILE (0600) gives the password the conninfo leaves out', async () => {
    const r = await status(conninfo(), { PGPASSFILE: await passfile(0o600) });
    expectReached(r);
    // pg's own pgpass lookup printed a DeprecationWarning: nothing of the kind now.
    expect(r.lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('a password file others can read is ignored with a warning, as JSON; the failure says where a password goes', async () => {
    const file = await passfile(0o644);
    const r = await status(conninfo(), { PGPASSFILE: file });
    expect(r.blue?.reachable, r.text).toBe(false);
    expect(r.code).toBe(1);
    // Once, though status opens several sessions (each finds the same file).
    const warnings = r.lines.filter((l) => l.warning === 'ConnectionWarning');
    expect(warnings, r.text).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 'warn', command: 'status', msg: `password file "${file}" has group or world access; permissions should be u=rw (0600) or less` });
    expect(r.blue!.error).toMatch(/the server asks for a password and none was given/);
  });
});

describe('sslmode', () => {
  // On a server without TLS (the embedded one) this is the fallback: the TLS attempt is
  // refused and the plain one must follow. On a server with TLS, prefer uses it.
  it('prefer falls back to a plain connection on a server without TLS', async () => {
    const r = await status(`${url}?sslmode=prefer`);
    expectReached(r);
    // pg printed a plain-text SECURITY WARNING for sslmode=prefer: every line is JSON now.
    expect(r.text).not.toMatch(/SECURITY WARNING/);
  });

  it('require encrypts without verifying the certificate', async (ctx) => {
    if (!ssl) return ctx.skip('the test server has ssl=off (the embedded one has no TLS; CI PostgreSQL 15 with the snakeoil certificate has it)');
    const r = await status(`host=${parts.host} port=${parts.port} dbname=${parts.dbname} user=${parts.user} password=${parts.password} sslmode=require`);
    expectReached(r);
    expect(r.text).not.toMatch(/SECURITY WARNING/);
  });

  it('verify-full refuses a self-signed certificate, in one clear line', async (ctx) => {
    if (!ssl) return ctx.skip('the test server has ssl=off (the embedded one has no TLS; CI PostgreSQL 15 with the snakeoil certificate has it)');
    const r = await status(`${url}?sslmode=verify-full`);
    expect(r.blue?.reachable, r.text).toBe(false);
    expect(r.blue!.error).toMatch(/certificate does not verify under sslmode=verify-full \((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)/);
  });

  it('require on a server without TLS fails and says so (no silent plain connection)', async (ctx) => {
    if (ssl) return ctx.skip('the test server has TLS');
    const r = await status(`${url}?sslmode=require`);
    expect(r.blue?.reachable, r.text).toBe(false);
    expect(r.blue!.error).toMatch(/does not support SSL/);
  });
});

describe('sslmode: what the session really is (pg_stat_ssl)', () => {
  const encrypted = async (conninfo: string) => {
    const c = await connect(conninfo, { label: 'blue' });
    try {
      return (await c.query<{ ssl: boolean }>('select ssl from pg_stat_ssl where pid = pg_backend_pid()')).rows[0]!.ssl;
    } finally {
      await c.end();
    }
  };

  it('disable and allow stay plain; prefer encrypts exactly when the server can', async () => {
    expect(await encrypted(`${url}?sslmode=disable`)).toBe(false);
    expect(await encrypted(`${url}?sslmode=allow`)).toBe(false);
    expect(await encrypted(`${url}?sslmode=prefer`)).toBe(ssl);
    // No sslmode: plain, as pg always did (libpq's default would be prefer).
    expect(await encrypted(url)).toBe(false);
  });

  it('require is encrypted', async (ctx) => {
    if (!ssl) return ctx.skip('the test server has ssl=off');
    expect(await encrypted(`${url}?sslmode=require`)).toBe(true);
  });

  it("verify-ca accepts the server's own certificate as CA whatever the host name; verify-full checks the name too", async (ctx) => {
    if (!certFile) return ctx.skip(ssl ? "the server's certificate file is not readable here" : 'the test server has ssl=off');
    const ca = encodeURIComponent(certFile);
    expect(await encrypted(`${url}?sslmode=verify-ca&sslrootcert=${ca}`)).toBe(true);
    // The test server is reached by address (127.0.0.1 on CI), not by the name the
    // certificate was made for (the machine's host name): verify-full refuses, saying why.
    const host = new URL(url).hostname;
    const err = await encrypted(`${url}?sslmode=verify-full&sslrootcert=${ca}`).then(
      () => undefined,
      (e: Error) => e,
    );
    if (!err) return ctx.skip(`the certificate names ${host}: verify-full passes here`);
    expect(err.message).toMatch(/certificate is not for host|certificate does not verify/);
  });
});
