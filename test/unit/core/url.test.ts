/** Connection URLs the driver would misread are refused; every ordinary form is accepted. */
import { describe, expect, it } from 'vitest';
import { checkConnectionUrl, connectHint } from '../../../src/db/url.ts';

const check = (url: string) => () => checkConnectionUrl(url, 'blue', 'flag');

describe('checkConnectionUrl', () => {
  it('accepts ordinary URLs', () => {
    for (const url of [
      'postgres://app:secret@db:5432/app',
      'postgresql://app@db/app',
      'postgres://app:p%2Fa%23s%3Fs%40@db:5432/app?sslmode=require',
      'postgres://app:pw@[::1]:5432/app',
      'postgres:///app?host=/var/run/postgresql',
      'postgres://localhost',
    ]) {
      expect(check(url), url).not.toThrow();
    }
  });

  it('refuses what the driver misreads, without printing the password', () => {
    for (const [url, message] of [
      ['postgres://app:pa/ss@db:5432/app', /unescaped/],
      ['postgres://app:pa#ss@db:5432/app', /unescaped/],
      ['postgres://app:pa?ss@db:5432/app', /unescaped/],
      ['postgres://app:p@ss@db:5432/app', /unescaped/],
      ['postgres://app:pw@h1:5432,h2:5432/app', /several hosts/],
      ['postgres://app:pw@db:port/app', /malformed/],
      ['mysql://app:pw@db/app', /not a postgres:\/\/ URL/],
    ] as const) {
      let err: Error | undefined;
      try {
        check(url)();
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message, url).toMatch(message);
      expect(err!.message).toContain('--from-url/--to-url/--url flag');
      expect(err!.message + (err as { hint?: string }).hint).not.toMatch(/pa.ss|p@ss/);
    }
  });

  it('hints by cause: credentials, not "env up", for a wrong password', () => {
    const url = 'postgres://app:secret@db.example:5432/app';
    checkConnectionUrl(url, 'green', 'config');
    expect(connectHint({ code: '28P01' }, url, 'green')).toMatch(/password in environments.green.url in the config file/);
    expect(connectHint({ code: 'ECONNREFUSED' }, url, 'green')).not.toMatch(/env up/);
    expect(connectHint({ code: 'ECONNREFUSED' }, 'postgres://x@localhost:1/x', 'blue')).toMatch(/env up/);
    expect(connectHint({ code: 'ENOTFOUND', hostname: 'db.example' }, url, 'green')).toMatch(/host db.example is not known/);
  });
});
