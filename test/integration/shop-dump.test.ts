/**
 * The shop example (examples/shop) on the offline paths: `check` validates its mappings
 * and round-trips its fixture files both ways; a dump of blue converted offline, and the
 * same dump imported with conversion on the fly, give exactly what sync produced.
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { freshDatabase } from '../helpers/pg.ts';
import { report, type Pair } from '../helpers/pair.ts';
import { SHOP_MAPPINGS, SHOP_TABLES, seedShop, shopPair, withClient } from '../helpers/shop.ts';
import { tempDir } from '../helpers/tmp.ts';

let catalogUrl: string;
let cache: string;
const offline = () => ['--catalog-url', catalogUrl, '--catalog-cache', cache];

async function run(args: string[]) {
  return runCli(['--mappings', SHOP_MAPPINGS, ...args]);
}
async function ok(args: string[]) {
  const r = await run(args);
  if (r.code !== 0) throw new Error(`bluegreen ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r;
}

/** Every column of every table as PostgreSQL's text (UTC), sorted: same-version databases compare whole. */
async function snapshot(url: string) {
  return withClient(
    url,
    async (c) => {
      const out: Record<string, string[]> = {};
      for (const t of SHOP_TABLES) out[t] = (await c.query<{ r: string }>(`select t::text as r from ${t} t order by 1`)).rows.map((x) => x.r);
      return out;
    },
    'UTC',
  );
}

async function v2Database(): Promise<string> {
  const url = await freshDatabase('green');
  await ok(['schema', 'apply', '--to', 'green', '--to-url', url, '--schema-version', '2']);
  return url;
}

beforeAll(async () => {
  catalogUrl = await freshDatabase('catalogs');
  cache = await tempDir('shop-catalogs');
});

describe('shop example: check', () => {
  it('validates both mappings and round-trips the fixture files both ways', async () => {
    const r = await run(['check', '--json', ...offline()]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const rep = report(r);
    expect(rep.problems).toEqual([]);
    expect(rep.fixtures.kind).toBe('files');
    expect(rep.fixtures.files.map((f: string) => path.basename(f)).sort()).toEqual(['customers.csv', 'order_events.csv', 'order_lines.csv', 'orders.csv', 'products.csv']);
    expect(rep.roundTrips.map((t: { from: number; via: number; ok: boolean }) => [t.from, t.via, t.ok])).toEqual([
      [1, 2, true],
      [2, 1, true],
    ]);
    // v2 -> v1 -> v2 loses the currency and the first hour of the autumn fold (Berlin local
    // times on v1), and says so.
    expect(rep.roundTrips[1].lossyColumns).toEqual(['customers.created_at', 'customers.updated_at', 'order_events.recorded_at', 'orders.currency', 'orders.placed_at', 'orders.updated_at', 'products.updated_at']);
  });
});

describe('shop example: mappings in a folder of their own', () => {
  it('work from a folder outside the repository, functions.ts included, whose JS twins check proves', async () => {
    // Teams keep their versions in their own repository, not inside bluegreen's package.
    const dir = path.join(await tempDir('shop-own'), 'db', 'versions');
    await cp(SHOP_MAPPINGS, dir, { recursive: true });
    const r = await runCli(['--mappings', dir, 'check', '--json', ...offline()]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(report(r).roundTrips.every((t: { ok: boolean }) => t.ok)).toBe(true);
    // A JS twin that disagrees with its SQL face (`round(unit_price_cents / 100.0, 2)`): check refuses it.
    const fn = path.join(dir, 'v2', 'functions.ts');
    await writeFile(fn, (await readFile(fn, 'utf8')).replace("padStart(2, '0')", "padStart(1, '0')"));
    const bad = await runCli(['--mappings', dir, 'check', '--json', ...offline()]);
    expect(bad.code, bad.stdout).toBe(2);
    const differ = report(bad).problems.filter((p: { message: string }) => /SQL face and JS face differ/.test(p.message));
    expect(differ).toEqual([expect.objectContaining({ path: expect.stringContaining('order_lines'), message: expect.stringContaining('column unit_price: SQL gives "0.01", JS gives "0.1"') })]);
  });
});

describe('shop example: export, convert, import', () => {
  let p: Pair;
  let dump: string;
  beforeAll(async () => {
    p = await shopPair(1, 2);
    await seedShop(p.blue, 50);
    await p.ok(['sync']);
    dump = path.join(await tempDir('shop-dump'), 'd');
    await ok(['export', '--from', 'blue', '--from-url', p.blue, '--out', dump]);
  });

  it('convert to v2 then import gives exactly what sync produced', async () => {
    const converted = path.join(await tempDir('shop-conv'), 'd');
    await ok(['convert', '--in', dump, '--to-version', '2', '--out', converted, ...offline()]);
    const target = await v2Database();
    await ok(['import', '--to', 'green', '--to-url', target, '--in', converted]);
    expect(await snapshot(target)).toEqual(await snapshot(p.green));
  });

  it('a dump of green (v2) converted down and imported into an empty v1 gives back blue exactly', async () => {
    const greenDump = path.join(await tempDir('shop-dump-v2'), 'd');
    await ok(['export', '--from', 'green', '--from-url', p.green, '--out', greenDump]);
    const down = path.join(await tempDir('shop-conv-v1'), 'd');
    await ok(['convert', '--in', greenDump, '--to-version', '1', '--out', down, ...offline()]);
    const v1 = await freshDatabase('blue');
    await ok(['schema', 'apply', '--to', 'blue', '--to-url', v1, '--schema-version', '1']);
    await ok(['import', '--to', 'blue', '--to-url', v1, '--in', down]);
    expect(await snapshot(v1)).toEqual(await snapshot(p.blue));
  });

  it('import of the v1 dump into v2, converting on the fly, gives exactly what sync produced', async () => {
    const target = await v2Database();
    await ok(['import', '--to', 'green', '--to-url', target, '--in', dump]);
    expect(await snapshot(target)).toEqual(await snapshot(p.green));
  });
});
