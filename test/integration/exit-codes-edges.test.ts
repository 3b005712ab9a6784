/**
 * Bad input is exit 2 with one line (no stack trace, no password), named after what the
 * probes found: `verify --table nosuch` printed CLEAN; `status --env purple` exited 0; a
 * password with an unescaped `/`, `#` or `?` or a multi-host URL gave a stack trace or
 * "ENOTFOUND base"; `export --out` a file or a pseudo file system gave a trace or hung;
 * `convert --to-version 99` blamed version 4; a checksum-consistent but non-canonical dump
 * was committed and then reported as a verify difference; a wrong password's hint said
 * "run env up" for a URL given with --to-url; a cutover that lost the target lock to a
 * running sync froze the source first.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { makePair, type Pair } from '../helpers/pair.ts';
import { freshDatabase, query, urlFor, OWNER_ROLE } from '../helpers/pg.ts';
import { tempDir } from '../helpers/tmp.ts';
import type { CliResult } from '../helpers/cli.ts';

let p: Pair;
beforeAll(async () => {
  p = await makePair(1, 2);
  await query(p.blue, `insert into users (username, full_name, email) values ('ann', 'Ann Lee', 'ann@x'), ('bob', 'Bob Roe', null)`);
});

/** Exit 2, one `error:` line plus an optional `next:` line, no stack trace, no secret. */
function usage(r: CliResult, message: RegExp, secret?: string) {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at |unexpected failure|ENOTFOUND base/);
  // Progress lines may come first; the failure itself is `error:` and at most a `next:` line.
  const failure = r.stderr.slice(r.stderr.indexOf('error: ')).trim().split('\n');
  expect(failure[0]).toMatch(/^error: /);
  expect(failure.length).toBeLessThanOrEqual(2);
  if (secret) expect(r.stderr + r.stdout).not.toContain(secret);
}

const text = ['--log-format', 'text'];

describe('exit 2, one line', () => {
  it('verify --table nosuch names the tables that exist', async () => {
    usage(await p.run(['verify', '--table', 'nosuch', ...text]), /--table nosuch: no such table.*\n.*users/);
  });

  it('status --env purple', async () => {
    usage(await p.run(['status', '--env', 'purple', ...text]), /no database for environment "purple"/);
  });

  for (const [what, password] of [
    ['/', 'pa/ss'],
    ['#', 'pa#ss'],
    ['?', 'pa?ss'],
  ] as const) {
    it(`a password with an unescaped ${what} says how to percent-encode it`, async () => {
      const url = `postgres://someone:${password}@127.0.0.1:5432/db`;
      usage(await p.run(['export', '--from', 'blue', '--out', '/tmp/never', ...text], { BLUE_URL: url }), /unescaped.*\n.*percent-encode/, password);
    });
  }

  it('a multi-host URL and a bad port are refused without "ENOTFOUND base"', async () => {
    usage(await p.run(['verify', '--from-url', 'postgres://u:secretpw@h1:5432,h2:5432/db', ...text]), /several hosts/, 'secretpw');
    usage(await p.run(['verify', '--to-url', 'postgres://u:secretpw@127.0.0.1:notaport/db', ...text]), /is malformed/, 'secretpw');
  });

  it('a wrong password given with --to-url is not told to run env up', async () => {
    const wrong = urlFor(new URL(p.green).pathname.slice(1), OWNER_ROLE, 'wrong-pw');
    const r = await p.run(['schema', 'apply', '--to', 'green', '--to-url', wrong, '--schema-version', '2', ...text]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/password/);
    expect(r.stderr).toMatch(/--to-url/);
    expect(r.stderr).not.toMatch(/env up|is it running/);
  });

  it('export --out a file, a pseudo file system (/proc: used to hang), /sys', async () => {
    usage(await p.run(['export', '--from', 'blue', '--out', '/etc/hostname', ...text]), /--out \/etc\/hostname is a file/);
    const t0 = Date.now();
    usage(await p.run(['export', '--from', 'blue', '--out', '/proc/bluegreen-x', ...text]), /output directory \/proc\/bluegreen-x cannot be created/);
    expect(Date.now() - t0).toBeLessThan(20_000);
    usage(await p.run(['export', '--from', 'blue', '--out', '/sys/bluegreen-x', ...text]), /output directory \/sys\/bluegreen-x/);
  });

  it('convert --to-version 99 says which versions exist', async () => {
    const dump = path.join(await tempDir('edges'), 'd');
    await p.ok(['export', '--from', 'blue', '--out', dump]);
    usage(await p.run(['convert', '--in', dump, '--to-version', '99', '--out', path.join(dump, '..', 'v99'), ...text]), /no version 99.*\n.*v1, v2, v3/);
  });

  it('a non-canonical dump whose checksums match is refused before anything is written', async () => {
    const dump = path.join(await tempDir('edges'), 'd');
    await p.ok(['export', '--from', 'blue', '--out', dump]);
    // Quote a field PostgreSQL writes unquoted: same rows, other bytes; checksum updated.
    const file = path.join(dump, 'users.csv');
    const csv = (await readFile(file, 'utf8')).replace(',ann,', ',"ann",');
    await writeFile(file, csv);
    const manifest = JSON.parse(await readFile(path.join(dump, 'manifest.json'), 'utf8'));
    const t = manifest.tables.find((x: { name: string }) => x.name === 'users');
    t.sha256 = createHash('sha256').update(csv).digest('hex');
    t.bytes = Buffer.byteLength(csv);
    await writeFile(path.join(dump, 'manifest.json'), JSON.stringify(manifest));
    const target = await freshDatabase('edges_noncanon');
    await p.ok(['schema', 'apply', '--to', 'green', '--to-url', target, '--schema-version', '1']);
    usage(await p.run(['import', '--to', 'green', '--to-url', target, '--in', dump, ...text]), /not in PostgreSQL's own encoding: users \(users.csv\).*nothing was imported/);
    expect(await query(target, `select count(*)::int as n from users`)).toEqual([{ n: 0 }]);
  });
});

describe('cutover and the target lock', () => {
  it('a cutover that finds a sync holding the target lock exits 75 without freezing the source', async () => {
    const q = await makePair(1, 2);
    await q.ok(['sync', '--from', 'blue', '--to', 'green']);
    // A running sync's lock on green (the same advisory key).
    const holder = new pg.Client({ connectionString: q.green, application_name: 'bluegreen sync blue->green' });
    await holder.connect();
    try {
      expect((await holder.query(`select pg_try_advisory_lock(${0x6267}, ${0x6c6f636b}) as ok`)).rows[0].ok).toBe(true);
      const r = await q.run(['cutover', '--from', 'blue', '--to', 'green', ...text]);
      expect(r.code, r.stderr).toBe(75);
      const [t] = await query<{ n: number }>(q.blue, `select case when to_regclass('bluegreen.freeze') is null then 0 else 1 end as n`);
      const freezes = t!.n ? await query<{ n: number }>(q.blue, `select count(*)::int as n from bluegreen.freeze`) : [{ n: 0 }];
      expect(freezes).toEqual([{ n: 0 }]);
    } finally {
      await holder.end();
    }
  });
});
