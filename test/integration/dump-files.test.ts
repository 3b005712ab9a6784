/**
 * Dump file names are safe by construction. A table named `../../../tmp/x` made export
 * write outside --out, and `a/b` crashed with a stack trace; a manifest naming `..` gave an
 * EISDIR trace. Now file names are encoded table names (recorded in the manifest), and a
 * manifest naming anything but a plain file inside the dump is refused with exit 2.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { dumpFileName } from '../../src/dump/manifest.ts';
import { runCli } from '../helpers/cli.ts';
import { freshDatabase, query } from '../helpers/pg.ts';
import { tempDir } from '../helpers/tmp.ts';

const escape = `bgesc_${randomBytes(4).toString('hex')}`;
const TRAVERSAL = `../../../tmp/${escape}`;
const SCHEMA = `create table "${TRAVERSAL}" (id int primary key, v text);
create table "a/b" (id int primary key, v text);
create table "Users" (id int primary key, v text);
create table users (id int primary key, v text);
create table "..." (id int primary key);
`;

let mappings: string;
let blue: string;
beforeAll(async () => {
  mappings = await tempDir('dumpfiles-m');
  await mkdir(path.join(mappings, 'v1'));
  await writeFile(path.join(mappings, 'v1', 'schema.sql'), SCHEMA);
  blue = await freshDatabase('dumpfiles');
  const r = await runCli(['--mappings', mappings, 'schema', 'apply', '--to', 'blue', '--schema-version', '1'], { BLUE_URL: blue });
  expect(r.code, r.stderr).toBe(0);
  await query(
    blue,
    `insert into "${TRAVERSAL}" values (1, 'dots'); insert into "a/b" values (2, 'slash');
     insert into "Users" values (3, 'upper'); insert into users values (4, 'lower'); insert into "..." values (5)`,
  );
});

const run = (args: string[], env: Record<string, string> = {}) => runCli(['--mappings', mappings, '--log-format', 'text', ...args], { BLUE_URL: blue, ...env });

async function exported(): Promise<string> {
  const out = path.join(await tempDir('dumpfiles-out'), 'dump');
  const r = await run(['export', '--from', 'blue', '--out', out]);
  expect(r.code, r.stderr).toBe(0);
  return out;
}

describe('dump file names', () => {
  it('encodes any table name into a plain file name', () => {
    expect(dumpFileName('users')).toBe('users.csv');
    expect(dumpFileName('users', '.keys.csv')).toBe('users.keys.csv');
    expect(dumpFileName('../x')).toBe('%2E%2E%2Fx.csv');
    expect(dumpFileName('a/b')).toBe('a%2Fb.csv');
    expect(dumpFileName('Users')).toBe('%55sers.csv');
    expect(dumpFileName('é')).toBe('%C3%A9.csv');
    expect(dumpFileName('x.keys')).not.toBe(dumpFileName('x', '.keys.csv'));
  });

  it('export of tables named ../../../tmp/x, a/b, Users and users writes only inside --out; import reads it back', async () => {
    const out = await exported();
    expect(existsSync(`/tmp/${escape}.csv`)).toBe(false);
    const files = (await readdir(out)).sort();
    expect(files).toEqual(
      ['manifest.json', dumpFileName(TRAVERSAL), dumpFileName('a/b'), dumpFileName('Users'), 'users.csv', dumpFileName('...')].sort(),
    );
    const green = await freshDatabase('dumpfiles_green');
    expect((await run(['schema', 'apply', '--to', 'green', '--schema-version', '1'], { GREEN_URL: green })).code).toBe(0);
    const r = await run(['import', '--to', 'green', '--in', out], { GREEN_URL: green });
    expect(r.code, r.stderr).toBe(0);
    expect(await query(green, `select v from "${TRAVERSAL}" union all select v from "a/b" union all select v from "Users" union all select v from users order by 1`)).toEqual([
      { v: 'dots' },
      { v: 'lower' },
      { v: 'slash' },
      { v: 'upper' },
    ]);
  });

  for (const [label, bad] of [
    ['..', '..'],
    ['/etc/passwd', '/etc/passwd'],
    ['a directory', 'sub'],
  ] as const) {
    it(`a manifest naming ${label} is refused with exit 2 and one line`, async () => {
      const out = await exported();
      await mkdir(path.join(out, 'sub'));
      const manifestFile = path.join(out, 'manifest.json');
      const manifest = JSON.parse(await readFile(manifestFile, 'utf8'));
      manifest.tables.find((t: { name: string }) => t.name === 'users').file = bad;
      await writeFile(manifestFile, JSON.stringify(manifest));
      const green = await freshDatabase('dumpfiles_bad');
      expect((await run(['schema', 'apply', '--to', 'green', '--schema-version', '1'], { GREEN_URL: green })).code).toBe(0);
      const r = await run(['import', '--to', 'green', '--in', out], { GREEN_URL: green });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).not.toMatch(/EISDIR|\n\s+at /);
      expect(r.stderr).toMatch(/table users|\/tables\/\d+\/file/);
      expect(await query(green, `select count(*)::int as n from users`)).toEqual([{ n: 0 }]);
    });
  }
});
