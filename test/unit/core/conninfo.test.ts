/**
 * Connection strings as libpq reads them: key=value with its quoting, URLs, service
 * files, the PG* variables filling what is left out, sslmode's attempts, password files.
 * Each expectation is what libpq does with the same input (psql was the reference).
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ConninfoError,
  connectionAttempts,
  fallsBack,
  parseConninfo,
  parseKeywordValue,
  passwordFromFile,
  resolveConninfo,
} from '../../../src/db/conninfo.ts';
import { readServiceSection } from '../../../src/db/service-file.ts';
import { checkConnectionUrl } from '../../../src/db/url.ts';
import { redactText, redactUrl } from '../../../src/redact.ts';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'bg-conninfo-'));
/** An environment with nothing of the machine's: no PG* variables, a HOME with no files. */
const bare = (more: Record<string, string> = {}) => ({ HOME: tmp(), USER: 'osuser', PGSYSCONFDIR: tmp(), ...more });

describe('key=value conninfo', () => {
  it('reads libpq quoting: spaces around =, single quotes, backslash escapes', () => {
    expect(parseKeywordValue("host=db port = 5433  dbname='my app' user=a\\ b password='it\\'s \\\\ x'")).toEqual({
      host: 'db',
      port: '5433',
      dbname: 'my app',
      user: 'a b',
      password: "it's \\ x",
    });
    expect(parseKeywordValue("password=''")).toEqual({ password: '' });
    expect(parseKeywordValue('   ')).toEqual({});
    // The last of a repeated keyword wins, as in libpq.
    expect(parseKeywordValue('dbname=a dbname=b')).toEqual({ dbname: 'b' });
  });

  it('refuses what libpq refuses, naming the keyword but never a value', () => {
    expect(() => parseKeywordValue("dbname='open")).toThrow(/unterminated quoted string/);
    expect(() => parseKeywordValue('dbname')).toThrow(/missing "=" after "dbname"/);
    expect(() => parseKeywordValue('=x')).toThrow(/missing keyword/);
    expect(() => parseConninfo('dbname=x colour=blue')).toThrow(/invalid connection option "colour"/);
    expect(() => parseConninfo('dbname=x target_session_attrs=read-write')).toThrow(/not supported/);
    // A mistyped URL is not echoed (it holds the password).
    let err: Error | undefined;
    try {
      parseKeywordValue('postgress://u:hunter2@h/db');
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(ConninfoError);
    expect(err!.message).not.toContain('hunter2');
  });
});

describe('URLs', () => {
  it('decode their parts; query keywords are libpq keywords', () => {
    expect(parseConninfo('postgresql://u%40x:p%2Fw@[::1]:6543/my%20db?sslmode=require&application_name=x')).toEqual({
      user: 'u@x',
      password: 'p/w',
      host: '::1',
      port: '6543',
      dbname: 'my db',
      sslmode: 'require',
      application_name: 'x',
    });
    expect(parseConninfo('postgres:///app?host=%2Fvar%2Frun%2Fpostgresql')).toEqual({ dbname: 'app', host: '/var/run/postgresql' });
    // node-postgres forms keep their meaning: ssl=true verified as before, no-verify is require.
    expect(parseConninfo('postgres://h/db?ssl=true').sslmode).toBe('verify-full');
    expect(parseConninfo('postgres://h/db?sslmode=no-verify').sslmode).toBe('require');
    expect(() => parseConninfo('postgres://h/db?colour=blue')).toThrow(/invalid connection option "colour"/);
  });
});

describe('resolution: conninfo, then service, then PG* variables, then defaults', () => {
  it('fills what the conninfo leaves out from PG*, never overriding it', () => {
    const env = bare({ PGHOST: 'pghost', PGPORT: '6000', PGUSER: 'pguser', PGDATABASE: 'pgdb', PGPASSWORD: 'pgpw', PGSSLMODE: 'prefer' });
    const r = resolveConninfo('dbname=app_blue', env);
    expect([r.host, r.port, r.dbname, r.user, r.password, r.sslmode]).toEqual(['pghost', 6000, 'app_blue', 'pguser', 'pgpw', 'prefer']);
    const u = resolveConninfo('postgres://me@db:5432/x', env);
    expect([u.host, u.port, u.user, u.dbname]).toEqual(['db', 5432, 'me', 'x']);
  });

  it('defaults as pg did: localhost:5432, the OS user, dbname = user, no TLS; empty variables count as unset', () => {
    const r = resolveConninfo('', bare({ PGHOST: '' }));
    expect([r.host, r.port, r.user, r.dbname, r.password, r.sslmode]).toEqual(['localhost', 5432, 'osuser', 'osuser', undefined, 'disable']);
  });

  it('reads a service from PGSERVICEFILE; the conninfo wins over it, it wins over PG*', () => {
    const dir = tmp();
    const file = path.join(dir, 'services.conf');
    writeFileSync(file, '# comment\n[other]\nhost=wrong\n\n[prod]\n  host = svc-host \nport=7000\ndbname=svcdb\nuser=svcuser\n[after]\nhost=wrong2\n');
    const env = bare({ PGSERVICEFILE: file, PGHOST: 'envhost', PGPORT: '1234' });
    const r = resolveConninfo('service=prod dbname=mine', env);
    expect([r.host, r.port, r.dbname, r.user, r.service]).toEqual(['svc-host', 7000, 'mine', 'svcuser', { name: 'prod', file }]);
    // PGSERVICE names it when the conninfo does not.
    expect(resolveConninfo('', { ...env, PGSERVICE: 'other' }).host).toBe('wrong');
    expect(() => resolveConninfo('service=nope', env)).toThrow(/definition of service "nope" not found/);
  });

  it('falls back to the system service file in PGSYSCONFDIR; the user file wins when both have it', () => {
    const sys = tmp();
    writeFileSync(path.join(sys, 'pg_service.conf'), '[shared]\nhost=system-host\n[both]\nhost=system-both\n');
    const home = tmp();
    writeFileSync(path.join(home, '.pg_service.conf'), '[both]\nhost=user-both\n');
    const env = { HOME: home, USER: 'u', PGSYSCONFDIR: sys };
    expect(resolveConninfo('service=shared', env).host).toBe('system-host');
    expect(resolveConninfo('service=both', env).host).toBe('user-both');
  });

  it('service file syntax errors name the file and line, not the value', () => {
    const known = (k: string) => ['host', 'password'].includes(k);
    expect(() => readServiceSection('[s]\nhost=a\nnonsense\n', 's', 'f.conf', known)).toThrow(/f\.conf, line 3/);
    expect(() => readServiceSection('[s]\nservice=t\n', 's', 'f.conf', known)).toThrow(/nested service/);
    expect(() => readServiceSection('[s]\ncolour=blue\n', 's', 'f.conf', known)).toThrow(/"colour" is not a connection keyword/);
    // Lines of other sections are not looked at (libpq neither).
    expect(readServiceSection('[t]\nnonsense\n[s]\npassword=a=b\n', 's', 'f.conf', known)).toEqual({ password: 'a=b' });
  });

  it('refuses several hosts, a bad port, an unknown sslmode', () => {
    expect(() => resolveConninfo('host=a,b', bare())).toThrow(/several hosts/);
    expect(() => resolveConninfo('port=54x', bare())).toThrow(/invalid port number/);
    expect(() => resolveConninfo('sslmode=sometimes', bare())).toThrow(/invalid sslmode value/);
  });
});

describe('sslmode: the attempts libpq makes', () => {
  const attempts = (mode: string, extra = '') => connectionAttempts(resolveConninfo(`host=db sslmode=${mode} ${extra}`, bare()), bare());
  it('disable plain; allow plain then TLS; prefer TLS then plain; require TLS without verification', () => {
    expect(attempts('disable')).toEqual([{ ssl: false }]);
    const allow = attempts('allow');
    expect(allow[0]).toEqual({ ssl: false });
    expect(allow[1]!.ssl).toMatchObject({ rejectUnauthorized: false });
    const prefer = attempts('prefer');
    expect(prefer[0]!.ssl).toMatchObject({ rejectUnauthorized: false });
    expect(prefer[1]).toEqual({ ssl: false });
    const require = attempts('require');
    expect(require).toHaveLength(1);
    expect(require[0]!.ssl).toMatchObject({ rejectUnauthorized: false });
  });

  it('verify-ca checks the chain against sslrootcert but not the host name; verify-full both', () => {
    const dir = tmp();
    const ca = path.join(dir, 'ca.pem');
    writeFileSync(ca, 'not really a certificate');
    const [vca] = attempts('verify-ca', `sslrootcert=${ca}`);
    const ssl = vca!.ssl as { ca?: string; rejectUnauthorized?: boolean; checkServerIdentity?: () => undefined };
    expect(ssl.ca).toBe('not really a certificate');
    expect(ssl.rejectUnauthorized).not.toBe(false);
    expect(ssl.checkServerIdentity?.()).toBeUndefined();
    const [vfull] = attempts('verify-full');
    const full = vfull!.ssl as { rejectUnauthorized?: boolean; checkServerIdentity?: unknown };
    expect(full.rejectUnauthorized).not.toBe(false);
    expect(full.checkServerIdentity).toBeUndefined();
    expect(() => attempts('verify-ca')).toThrow(/verify-ca needs a root certificate/);
    expect(() => attempts('require', 'sslrootcert=system')).toThrow(/sslrootcert=system needs sslmode=verify-full/);
  });

  it('moves on only when the kind of connection was the problem', () => {
    expect(fallsBack(new Error('The server does not support SSL connections'))).toBe(true);
    expect(fallsBack(Object.assign(new Error('no pg_hba.conf entry'), { code: '28000' }))).toBe(true);
    expect(fallsBack(Object.assign(new Error('password authentication failed'), { code: '28P01' }))).toBe(false);
    expect(fallsBack(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(false);
  });
});

describe('password file', () => {
  const write = (mode: number, text: string) => {
    const file = path.join(tmp(), 'pgpass');
    writeFileSync(file, text);
    chmodSync(file, mode);
    return file;
  };
  const text = '# comment\nother:5432:*:*:nope\ndb:5432:app:u:pa\\:ss\n*:*:*:u:fallback\n';

  it('matches host, port, database and user, with escapes and wildcards', async () => {
    const file = write(0o600, text);
    const env = bare({ PGPASSFILE: file });
    expect(await passwordFromFile(resolveConninfo('host=db dbname=app user=u', env), env)).toBe('pa:ss');
    expect(await passwordFromFile(resolveConninfo('host=elsewhere dbname=x user=u', env), env)).toBe('fallback');
    expect(await passwordFromFile(resolveConninfo('host=elsewhere dbname=x user=v', env), env)).toBeUndefined();
  });

  it('is ignored, with a warning, when its group or others can read it (libpq)', async () => {
    const file = write(0o640, text);
    const env = bare({ PGPASSFILE: file });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      expect(await passwordFromFile(resolveConninfo('host=db dbname=app user=u', env), env)).toBeUndefined();
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([`password file "${file}" has group or world access; permissions should be u=rw (0600) or less`]);
  });
});

describe('checks before connecting, and redaction', () => {
  it('a bad conninfo is exit 2 naming where it came from', () => {
    expect(() => checkConnectionUrl('dbname=x sslmode=sometimes', 'blue', 'environment')).toThrow(/connection string of blue \(from BLUE_URL\): invalid sslmode/);
    expect(() => checkConnectionUrl('host=db dbname=app', 'blue', 'environment')).not.toThrow();
  });

  it('masks key=value passwords, quoted or not, and inside JSON', () => {
    expect(redactText("host=h password='a b\\'c' dbname=x")).toBe('host=h password=*** dbname=x');
    expect(redactText('host=h password = s3cret dbname=x')).toBe('host=h password = *** dbname=x');
    expect(redactUrl("dbname=x password='p w'")).toBe('dbname=x password=***');
    const json = JSON.stringify({ msg: "at host=h password='it\\'s' user=u" });
    expect(redactText(json)).not.toMatch(/it|'s/);
    expect(redactText('PGPASSWORD=topsecret bluegreen sync')).not.toContain('topsecret');
  });
});

describe('TLS settings are checked before connecting', () => {
  it('verify-ca without a root certificate, or a certificate file not there, is exit 2 up front', () => {
    // HOME without ~/.postgresql/root.crt, so libpq's default file does not apply.
    const home = process.env.HOME;
    process.env.HOME = tmp();
    try {
      expect(() => checkConnectionUrl('host=db dbname=app sslmode=verify-ca', 'green', 'config')).toThrow(/connection string of green .*verify-ca needs a root certificate/);
      expect(() => checkConnectionUrl('postgres://db/app?sslmode=require&sslrootcert=/nonexistent/ca.pem', 'green', 'config')).toThrow(/cannot read the certificate file \/nonexistent\/ca\.pem \(ENOENT\)/);
    } finally {
      process.env.HOME = home;
    }
  });
});
