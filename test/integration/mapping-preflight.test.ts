/**
 * Every author-written SQL expression of the mappings is compiled against the catalogs
 * before anything is written, on every live path: a typo in an sql op is exit 2 naming
 * the mapping file and JSON pointer, as `check` names it. Before, `sync` reached it as
 * exit 1 with only the database's message (or, for a name outside the op's `from`, ran it
 * against the outer query). Values echoed in errors are cut to 200 characters, and a
 * non-UTF-8 value of a SQL_ASCII source is named by table, key and column.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { adminQuery, freshDatabase, OWNER_ROLE, query, urlFor } from '../helpers/pg.ts';
import { tempDir } from '../helpers/tmp.ts';
import { report } from '../helpers/pair.ts';

const V1 = `create type mood as enum ('ok', 'sad');
create table items (id int primary key, cents int not null, mood mood, code text, updated_at timestamptz not null default now());
comment on column items.updated_at is 'bluegreen:watermark';
`;
const V2 = `create table items (id int primary key, price numeric(10,2) not null, feeling text, code varchar(5), updated_at timestamptz not null default now());
comment on column items.updated_at is 'bluegreen:watermark';
`;

/** A two-version folder whose up.json computes price with `priceExpr` (from: cents). */
async function folder(label: string, priceExpr: string): Promise<string> {
  const dir = path.join(await tempDir(`preflight-${label}`), 'mappings');
  await mkdir(path.join(dir, 'v1'), { recursive: true });
  await mkdir(path.join(dir, 'v2'), { recursive: true });
  await writeFile(path.join(dir, 'v1', 'schema.sql'), V1);
  await writeFile(path.join(dir, 'v2', 'schema.sql'), V2);
  const up = {
    from: 1,
    to: 2,
    tables: {
      items: {
        from: 'items',
        ops: [
          { op: 'sql', from: ['cents'], to: 'price', expr: priceExpr },
          { op: 'sql', from: ['mood'], to: 'feeling', expr: `upper(mood::text)` },
          { op: 'cast', from: 'code' },
        ],
      },
    },
  };
  const down = {
    from: 2,
    to: 1,
    tables: {
      items: {
        from: 'items',
        ops: [
          { op: 'sql', from: ['price'], to: 'cents', expr: '(price * 100)::int' },
          { op: 'sql', from: ['feeling'], to: 'mood', expr: 'lower(feeling)' },
          { op: 'cast', from: 'code' },
        ],
      },
    },
  };
  await writeFile(path.join(dir, 'v2', 'up.json'), JSON.stringify(up, null, 2));
  await writeFile(path.join(dir, 'v2', 'down.json'), JSON.stringify(down, null, 2));
  return dir;
}

async function pair(): Promise<{ blue: string; green: string }> {
  const blue = await freshDatabase('pfblue');
  const green = await freshDatabase('pfgreen');
  await query(blue, V1);
  await query(blue, `insert into items (id, cents, mood, code) values (1, 1250, 'sad', 'AB'), (2, 99, null, null)`);
  await query(green, V2);
  return { blue, green };
}

const cli = (dir: string, args: string[], urls: { blue: string; green: string }) =>
  runCli(['--mappings', dir, ...args, '--log-format', 'text'], { BLUE_URL: urls.blue, GREEN_URL: urls.green });

describe('a bad sql op is found before anything is written', () => {
  let dir: string;
  let urls: { blue: string; green: string };
  let upFile: string;
  beforeAll(async () => {
    dir = await folder('typo', 'round(centz / 100.0, 2)');
    upFile = path.join(dir, 'v2', 'up.json');
    urls = await pair();
  });
  const named = (stderr: string) => expect(stderr).toContain(`${upFile}: /tables/items/ops/0/expr: does not run on v1: column "centz" does not exist`);

  it('sync: exit 2 naming file and JSON pointer, nothing written', async () => {
    const r = await cli(dir, ['sync', '--from', 'blue', '--to', 'green'], urls);
    expect(r.code, r.stderr).toBe(2);
    named(r.stderr);
    expect(r.stderr).not.toMatch(/DatabaseError/);
    expect(await query(urls.green, `select count(*)::int as n from items`)).toEqual([{ n: 0 }]);
  });

  it('sync --log-format json: the error line says MappingExpressionError, exit code 2', async () => {
    const r = await runCli(['--mappings', dir, 'sync', '--from', 'blue', '--to', 'green', '--log-format', 'json'], { BLUE_URL: urls.blue, GREEN_URL: urls.green });
    expect(r.code).toBe(2);
    const lines = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    const err = lines.find((l) => l.level === 'error');
    expect(err).toMatchObject({ code: 'MappingExpressionError', exitCode: 2 });
  });

  it('verify: exit 2 naming file and JSON pointer', async () => {
    const r = await cli(dir, ['verify', '--from', 'blue', '--to', 'green'], urls);
    expect(r.code, r.stderr).toBe(2);
    named(r.stderr);
  });

  it('cutover: refused by a guardrail naming file and JSON pointer before the freeze', async () => {
    const r = await runCli(['--mappings', dir, 'cutover', '--from', 'blue', '--to', 'green', '--json'], { BLUE_URL: urls.blue, GREEN_URL: urls.green });
    expect(r.code).not.toBe(0);
    const g = (report(r).guardrails ?? []) as { name: string; ok: boolean; detail: string }[];
    const expr = g.find((x) => x.name === 'mapping expressions');
    expect(expr, r.stdout + r.stderr).toBeDefined();
    expect(expr?.ok).toBe(false);
    expect(expr?.detail).toContain(`${upFile}: /tables/items/ops/0/expr: does not run on v1: column "centz" does not exist`);
    expect(await query(urls.blue, `select count(*)::int as n from pg_namespace where nspname = 'bluegreen'`)).toEqual([{ n: 0 }]);
  });

  it('import of a v1 dump into v2: exit 2 naming file and JSON pointer, nothing written', async () => {
    const out = path.join(await tempDir('preflight-dump'), 'd');
    const e = await cli(dir, ['export', '--from', 'blue', '--out', out], urls);
    expect(e.code, e.stderr).toBe(0);
    const r = await cli(dir, ['import', '--to', 'green', '--in', out], urls);
    expect(r.code, r.stderr).toBe(2);
    named(r.stderr);
    expect(await query(urls.green, `select count(*)::int as n from items`)).toEqual([{ n: 0 }]);
  });

  it('a name outside the op\'s "from" is refused as check refuses it (it used to reach the outer query)', async () => {
    const other = await folder('outside', 'round((cents + id) / 100.0, 2)');
    const r = await cli(other, ['sync', '--from', 'blue', '--to', 'green'], urls);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`${path.join(other, 'v2', 'up.json')}: /tables/items/ops/0/expr: does not run on v1: column "id" does not exist`);
  });
});

describe('good expressions pass the same preflight', () => {
  it('sync runs: an expression over an enum of the source, a cast', async () => {
    const dir = await folder('good', 'round(cents / 100.0, 2)');
    const urls = await pair();
    const r = await cli(dir, ['sync', '--from', 'blue', '--to', 'green'], urls);
    expect(r.code, r.stderr).toBe(0);
    expect(await query(urls.green, `select id, price::text, feeling, code from items order by id`)).toEqual([
      { id: 1, price: '12.50', feeling: 'SAD', code: 'AB' },
      { id: 2, price: '0.99', feeling: null, code: null },
    ]);
  });
});

describe('values echoed in errors are cut', () => {
  it('a 1000-character value that does not fit is shown as its first 200 characters', async () => {
    const dir = await folder('long', 'round(cents / 100.0, 2)');
    const urls = await pair();
    await query(urls.blue, `insert into items (id, cents, code) values (3, 1, repeat('x', 1000))`);
    const r = await cli(dir, ['sync', '--from', 'blue', '--to', 'green'], urls);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`table items, column code, key id=3`);
    expect(r.stderr).toContain(`"${'x'.repeat(200)}"… (1000 characters)`);
    expect(r.stderr).not.toContain('x'.repeat(201));
  });
});

describe('a SQL_ASCII source', () => {
  it('a non-UTF-8 value is named by table, key and column, exit 2, nothing written; valid UTF-8 passes', async () => {
    const green = await freshDatabase('pfgreen'); // also makes the owner role
    const name = `bg_sqlascii_${Date.now() % 1e6}`;
    await adminQuery(`create database "${name}" owner ${OWNER_ROLE} encoding 'SQL_ASCII' lc_collate 'C' lc_ctype 'C' template template0`);
    try {
      const blue = urlFor(name);
      await query(blue, V1);
      await query(blue, `insert into items (id, cents, code) values (1, 100, E'caf\\xc3\\xa9'), (7, 200, E'caf\\xe9')`);
      await query(green, V2);
      const dir = await folder('ascii', 'round(cents / 100.0, 2)');
      const r = await cli(dir, ['sync', '--from', 'blue', '--to', 'green'], { blue, green });
      expect(r.code, r.stderr).toBe(2);
      // It used to be exit 1: "invalid byte sequence for encoding "UTF8": 0xe9", no table, row or column.
      expect(r.stderr).toContain('table items, column code, key id=7: not valid UTF-8 (value caf\\351); blue is a SQL_ASCII database');
      expect(await query(green, `select count(*)::int as n from items`)).toEqual([{ n: 0 }]);
      // Valid UTF-8 (row 1's é as two bytes) passes: corrected, the run goes through.
      await query(blue, `update items set code = 'cafe' where id = 7`);
      const again = await cli(dir, ['sync', '--from', 'blue', '--to', 'green'], { blue, green });
      expect(again.code, again.stderr).toBe(0);
      expect(await query(green, `select id, code from items order by id`)).toEqual([{ id: 1, code: 'café' }, { id: 7, code: 'cafe' }]);
    } finally {
      await adminQuery(`drop database if exists "${name}" with (force)`);
    }
  });
});
