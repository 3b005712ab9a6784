/**
 * `check` and `new-version` through the real binary: the repo's mappings pass; a broken
 * copy exits 2 naming file and JSON path; a round trip that does not come back exits 1;
 * a fresh scaffold passes (offline, from the catalog cache) and converts a dump.
 */
import { cp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from '../helpers/pg.ts';
import { runCli, ROOT } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { report } from '../helpers/pair.ts';

const MAPPINGS = path.join(ROOT, 'mappings');
let catalogUrl: string;
let cache: string;
const tmp = tempDir;

async function copyOfMappings(): Promise<string> {
  const dir = path.join(await tmp('mappings'), 'mappings');
  await cp(MAPPINGS, dir, { recursive: true });
  return dir;
}
function check(mappings: string, extra: string[] = []) {
  return runCli(['--mappings', mappings, 'check', '--catalog-url', catalogUrl, '--catalog-cache', cache, ...extra]);
}
async function editJson(file: string, edit: (j: any) => void) {
  const j = JSON.parse(await readFile(file, 'utf8'));
  edit(j);
  await writeFile(file, JSON.stringify(j, null, 2));
}

beforeAll(async () => {
  catalogUrl = await freshDatabase('catalogs');
  cache = await tmp('catalog-cache');
});

describe('check', () => {
  it("passes on the repo's mappings with the sample app's hostile fixtures, listing declared losses", async () => {
    const r = await check(MAPPINGS);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/fixtures: the sample app's hostile data set \(v1, \d+ rows\)/);
    expect(r.stdout).toMatch(/v1 -> v2 -> v1\s+ok\s+lossless round trip/);
    expect(r.stdout).toMatch(/v2 -> v1 -> v2\s+ok\s+lossy columns: users.first_name, users.last_name/);
    expect(r.stdout).toContain('check passed');
    const j = report((await check(MAPPINGS, ['--json'])));
    expect(j.ok).toBe(true);
    expect(j.fixtures.kind).toBe('sample');
    expect(j.fixtures.rows.users).toBe(300);
    expect(j.roundTrips.map((t: { from: number; via: number }) => `${t.from}-${t.via}`)).toEqual(['1-2', '2-1', '2-3', '3-2']);
  });

  it('exits 2 on a broken copy with every problem at once, each with file and JSON path', async () => {
    const dir = await copyOfMappings();
    const up = path.join(dir, 'v2', 'up.json');
    await editJson(up, (j) => {
      j.tables.roles.colour = 'red'; // unknown key (JSON Schema)
    });
    await editJson(path.join(dir, 'v3', 'up.json'), (j) => {
      j.tables.user_groups.ops[0].from = 'rol_id'; // no such column (semantics)
    });
    await editJson(path.join(dir, 'v3', 'down.json'), (j) => {
      j.loses = []; // an undeclared loss
    });
    const r = await check(dir);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`${path.join('v2', 'up.json')} at /tables/roles: unknown key "colour"`);
    expect(r.stdout).toMatch(/v3\/up\.json at \/tables\/user_groups\/ops\/0/);
    expect(r.stdout).toMatch(/v3\/down\.json at \/loses: source column user_profiles\.updated_at is lost/);
    const j = report((await check(dir, ['--json'])));
    expect(j.ok).toBe(false);
    const where = j.problems.map((p: { file: string; path: string }) => `${path.relative(dir, p.file)} ${p.path}`);
    expect(where).toContain('v2/up.json /tables/roles');
    expect(where.some((w: string) => w.startsWith('v3/up.json /tables/user_groups/ops/0'))).toBe(true);
    expect(where).toContain('v3/down.json /loses');
  });

  it('exits 1 when a pair declared lossless does not round-trip', async () => {
    const dir = await copyOfMappings();
    // Valid on its own, but not the inverse of up.json: full_name is split at ' ' and joined with '-'.
    await editJson(path.join(dir, 'v2', 'down.json'), (j) => {
      j.tables.users.ops[1].separator = '-';
    });
    const r = await check(dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/v1 -> v2 -> v1\s+FAILED\s+rows did not come back/);
    expect(r.stdout).toMatch(/users: changed \["1"\] \(full_name\)/);
    expect(r.stdout).toContain('check failed: a round trip did not come back');
  });

  it("another app's versions: fixtures from mappings/fixtures/v<lowest>/*.csv, else validation only", async () => {
    const dir = path.join(await tmp('app'), 'versions');
    await mkdir(path.join(dir, 'v1'), { recursive: true });
    await writeFile(path.join(dir, 'v1', 'schema.sql'), `CREATE TABLE items (sku text PRIMARY KEY, label text, qty integer NOT NULL DEFAULT 0);`);
    const scaffold = await runCli(['--mappings', dir, 'new-version']);
    expect(scaffold.code, scaffold.stderr).toBe(0);
    await writeFile(path.join(dir, 'v2', 'schema.sql'), `CREATE TABLE items (sku text PRIMARY KEY, title text, qty integer NOT NULL DEFAULT 0);`);
    await editJson(path.join(dir, 'v2', 'up.json'), (j) => (j.tables.items.ops = [{ op: 'rename', from: 'label', to: 'title' }]));
    await editJson(path.join(dir, 'v2', 'down.json'), (j) => (j.tables.items.ops = [{ op: 'rename', from: 'title', to: 'label' }]));
    const bare = report((await check(dir, ['--json'])));
    expect(bare).toMatchObject({ ok: true, fixtures: { kind: 'none' }, roundTrips: [] });
    await mkdir(path.join(dir, 'fixtures', 'v1'), { recursive: true });
    await writeFile(path.join(dir, 'fixtures', 'v1', 'items.csv'), 'qty,sku,label\n1,a,"x, y"\n2,b,\n3,c,""\n');
    const r = await check(dir, ['--json']);
    expect(r.code, r.stdout).toBe(0);
    expect(report(r)).toMatchObject({ ok: true, fixtures: { kind: 'files', rows: { items: 3 } } });
  });
});

describe('new-version', () => {
  it('scaffolds the next version; check round-trips it offline and names it indistinguishable from v3; a dump converts to it', async () => {
    const dir = await copyOfMappings();
    const r = await runCli(['--mappings', dir, 'new-version']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('created v4');
    expect(r.stdout).toMatch(/v4\/schema\.sql/);
    expect(r.stdout).toMatch(/bluegreen check/);
    expect((await readdir(path.join(dir, 'v4'))).sort()).toEqual(['down.json', 'schema.sql', 'up.json']);
    // v4's schema.sql is v3's, so its catalog is already cached: no database needed.
    await check(MAPPINGS); // warms the cache for v1..v3
    const cwd = await tmp('nodb');
    const offline = await runCli(['--mappings', dir, 'check', '--catalog-cache', cache], {}, cwd);
    expect(offline.stdout).toMatch(/v4 -> v3 -> v4\s+ok/);
    // Until v4/schema.sql says what changes, no database can be told to be at v3 or v4:
    // check says so, naming both (exit 2); the round trips still run.
    expect(offline.code, offline.stdout + offline.stderr).toBe(2);
    expect(offline.stdout).toContain(`${path.join('v4', 'schema.sql')}: v3 and v4 have the same schema as version detection compares them`);
    expect(offline.stdout).toContain('1 problem:');

    // A dump converts to the scaffolded version: identical to converting to v3.
    const blue = await freshDatabase('blue');
    const cli = (args: string[]) => runCli(['--mappings', dir, ...args]);
    expect((await cli(['schema', 'apply', '--to', 'blue', '--to-url', blue, '--schema-version', '1'])).code).toBe(0);
    expect((await cli(['seed', '--to', 'blue', '--to-url', blue, '--rows', '100'])).code).toBe(0);
    const dump = path.join(await tmp('dump'), 'd');
    expect((await cli(['export', '--from', 'blue', '--from-url', blue, '--out', dump])).code).toBe(0);
    const out3 = path.join(await tmp('c3'), 'd');
    const out4 = path.join(await tmp('c4'), 'd');
    for (const [v, out] of [[3, out3], [4, out4]] as const) {
      const c = await cli(['convert', '--in', dump, '--to-version', String(v), '--out', out, '--catalog-cache', cache, '--catalog-url', catalogUrl]);
      expect(c.code, c.stderr).toBe(0);
    }
    const m3 = JSON.parse(await readFile(path.join(out3, 'manifest.json'), 'utf8'));
    const m4 = JSON.parse(await readFile(path.join(out4, 'manifest.json'), 'utf8'));
    expect(m4.schemaVersion).toBe(4);
    expect(m4.tables.map((t: { name: string; sha256: string; rows: number }) => [t.name, t.sha256, t.rows])).toEqual(
      m3.tables.map((t: { name: string; sha256: string; rows: number }) => [t.name, t.sha256, t.rows]),
    );
    expect(m4.tables.find((t: { name: string }) => t.name === 'users').rows).toBe(100);
  });
});

describe('check proves every path on a server', () => {
  const V1 = `CREATE TABLE orders (id bigint PRIMARY KEY, total_cents bigint NOT NULL, placed_at timestamp NOT NULL, note text);`;
  const V2 = `CREATE TYPE order_state AS ENUM ('open', 'closed');
CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(12,2) NOT NULL, placed_at timestamptz NOT NULL, note text, state order_state);`;
  const up = (noteOp: object) => ({
    from: 1,
    to: 2,
    tables: { orders: { from: 'orders', ops: [{ op: 'sql', from: ['total_cents'], to: 'total', expr: 'round(total_cents / 100.0, 2)', js: 'centsToTotal' }, { op: 'cast', from: 'placed_at', zone: 'Europe/Berlin' }, noteOp, { op: 'constant', column: 'state', value: 'open' }] } },
  });
  const down = {
    from: 2,
    to: 1,
    tables: { orders: { from: 'orders', ops: [{ op: 'scale', from: 'total', to: 'total_cents', factor: '100' }, { op: 'cast', from: 'placed_at', zone: 'Europe/Berlin' }, { op: 'drop', column: 'state' }] } },
    loses: [{ table: 'orders', column: 'state', why: 'v1 has no state' }],
  };
  async function app(noteOp: object, functions: string): Promise<string> {
    const dir = path.join(await tmp('orders'), 'versions');
    for (const [v, sql] of [[1, V1], [2, V2]] as const) {
      await mkdir(path.join(dir, `v${v}`), { recursive: true });
      await writeFile(path.join(dir, `v${v}`, 'schema.sql'), sql);
    }
    await writeFile(path.join(dir, 'v2', 'up.json'), JSON.stringify(up(noteOp)));
    await writeFile(path.join(dir, 'v2', 'down.json'), JSON.stringify(down));
    await writeFile(path.join(dir, 'v2', 'functions.ts'), functions);
    // Outside this repository an ES module needs its own package.json to say so.
    await writeFile(path.join(dir, 'package.json'), '{"type": "module"}\n');
    await mkdir(path.join(dir, 'fixtures', 'v1'), { recursive: true });
    await writeFile(path.join(dir, 'fixtures', 'v1', 'orders.csv'), 'id,total_cents,placed_at,note\n1,1999,2024-03-31 01:30:00,hi\n2,-5,2024-07-01 12:00:00.5,\n3,0,2000-01-01 00:00:00,""\n');
    return dir;
  }
  const twin = `export const centsToTotal = ([c]) => [c === null ? null : (Number(c) / 100).toFixed(2)];\nexport const upper = ([n]) => [n === null ? null : n.toUpperCase()];\nexport const wrongTwin = ([c]) => [c === null ? null : (Number(c) / 10).toFixed(2)];\n`;

  it('passes a mapping whose zone cast has no JS face: the server runs its SQL face in the round trip', async () => {
    const dir = await app({ op: 'copy', from: 'note', to: 'note' }, twin);
    const r = await check(dir, ['--json']);
    const j = report(r);
    expect(r.code, JSON.stringify(j.problems) + JSON.stringify(j.roundTrips)).toBe(0);
    expect(j.server).toBe('--catalog-url');
    expect(j.roundTrips.map((t: { ok: boolean }) => t.ok)).toEqual([true, true]);
  });

  it('exits 2 naming file and JSON path for a typo in an expression and a JS twin that disagrees with its SQL face', async () => {
    const dir = await app({ op: 'copy', from: 'note', to: 'note' }, twin);
    await editJson(path.join(dir, 'v2', 'down.json'), (j) => j.tables.orders.ops.push({ op: 'sql', from: ['note'], to: 'note', expr: 'lower(nothere)' }));
    // The table also has a zone cast without a JS face: its other columns are still compared.
    await editJson(path.join(dir, 'v2', 'up.json'), (j) => (j.tables.orders.ops[0].js = 'wrongTwin'));
    const r = await check(dir);
    expect(r.code, r.stdout).toBe(2);
    expect(r.stdout).toMatch(/v2\/down\.json at \/tables\/orders\/ops\/3\/expr: does not run on v2: column "nothere" does not exist/);
    expect(r.stdout).toMatch(/v2\/up\.json at \/tables\/orders: SQL face and JS face differ on the fixture rows of v1: column total: SQL gives "19\.99", JS gives "199\.90"/);
  });

  it('exits 2 for a function op without an SQL face, naming the paths that cannot run it', async () => {
    const dir = await app({ op: 'function', name: 'upper', from: ['note'], to: ['note'], lossless: true }, twin);
    const r = await check(dir);
    expect(r.code, r.stdout).toBe(2);
    expect(r.stdout).toMatch(/v2\/up\.json at \/tables\/orders\/ops\/2: function op "upper" .* has no SQL face: sync, verify and cutover .* cannot run this mapping/);
  });

  it('an expression may read only its from columns', async () => {
    const dir = await app({ op: 'sql', from: ['note'], to: 'note', expr: 'note || total_cents::text', js: 'upper' }, twin);
    await editJson(path.join(dir, 'v2', 'up.json'), (j) => (j.loses = [{ table: 'orders', column: 'note', why: 'test' }]));
    const r = await check(dir);
    expect(r.code, r.stdout).toBe(2);
    expect(r.stdout).toMatch(/v2\/up\.json at \/tables\/orders\/ops\/2\/expr: does not run on v1: column "total_cents" does not exist/);
  });

  it('without fixture rows, expressions are still prepared against the source version', async () => {
    const dir = await app({ op: 'copy', from: 'note', to: 'note' }, twin);
    await rm(path.join(dir, 'fixtures'), { recursive: true });
    // A type only the target version has would fail every sync on the source.
    await editJson(path.join(dir, 'v2', 'up.json'), (j) => (j.tables.orders.ops[0] = { op: 'sql', from: ['total_cents'], to: 'total', expr: "total_cents::numeric / 100 + 'open'::order_state::text::numeric" }));
    const r = await check(dir);
    expect(r.code, r.stdout).toBe(2);
    expect(r.stdout).toMatch(/v2\/up\.json at \/tables\/orders\/ops\/0\/expr: does not run on v1: type "order_state" does not exist/);
  });
});
