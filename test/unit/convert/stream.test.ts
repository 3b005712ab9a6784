/**
 * The streaming converter on small CSVs (written from memory to a temp dir), no database:
 * the sample app's golden rows through every chain, a merge (v3 users + user_profiles ->
 * v1 users), and each refusal or failure the converter promises.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeCsv, encodeCsv } from '../../../src/codec/pg-csv.ts';
import type { Catalog } from '../../../src/db/catalog-types.ts';
import { convertDump } from '../../../src/convert/convert.ts';
import { OfflineConversionUnsupportedError } from '../../../src/convert/errors.ts';
import { convertTable, planConversion } from '../../../src/convert/stream.ts';
import { newManifest, writeManifest, type Manifest } from '../../../src/dump/manifest.ts';
import { DumpError } from '../../../src/errors.ts';
import { silentLogger } from '../../../src/log.ts';
import { compileChain } from '../../../src/mapping/index.ts';
import { sampleCatalogs } from '../mapping/sample-catalogs.ts';
import { V1_COLUMNS, V1_TABLES, generateV1Rows } from '../../../fixtures/generate.ts';

type Obj = Record<string, string | null>;
const ROOT = path.join(import.meta.dirname, '../../..');
const MAPPINGS = path.join(ROOT, 'mappings');
const golden = async (v: number) => (JSON.parse(await readFile(path.join(ROOT, `test/fixtures/mappings/golden/v${v}.json`), 'utf8')) as { tables: Record<string, Obj[]> }).tables;
const catalogs = sampleCatalogs as unknown as Record<number, Catalog>;
const provider = async () => catalogs;

const temps: string[] = [];
const tmp = async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'bg-convert-unit-'));
  temps.push(d);
  return d;
};
afterAll(async () => {
  for (const d of temps.splice(0)) await rm(d, { recursive: true, force: true });
});
const cols = (v: number, t: string) => catalogs[v]!.tables[t]!.columns.map((c) => c.name);
const byKey = (a: (string | null)[], b: (string | null)[]) => JSON.stringify(a).localeCompare(JSON.stringify(b));

/** Writes a dump of `tables` (objects) at version `v`, rows sorted by numeric/uuid key as export would. */
async function writeDump(v: number, tables: Record<string, Obj[]>, opts: { columns?: Record<string, string[]>; raw?: Record<string, string> } = {}): Promise<string> {
  const dir = await tmp();
  const entries: Manifest['tables'] = [];
  for (const [name, objs] of Object.entries(tables)) {
    const columns = opts.columns?.[name] ?? cols(v, name);
    const key = catalogs[v]!.tables[name]!.primaryKey;
    const rows = objs.map((o) => columns.map((c) => o[c] ?? null));
    const ki = key.map((k) => columns.indexOf(k));
    rows.sort((a, b) => {
      for (const i of ki) {
        const x = a[i]!;
        const y = b[i]!;
        const c = /^-?\d+$/.test(x) ? Number(x) - Number(y) : x < y ? -1 : x > y ? 1 : 0;
        if (c !== 0) return c;
      }
      return 0;
    });
    const text = opts.raw?.[name] ?? encodeCsv(rows, columns);
    await writeFile(path.join(dir, `${name}.csv`), text);
    const buf = Buffer.from(text);
    entries.push({ name, file: `${name}.csv`, columns, key, rows: rows.length, bytes: buf.length, sha256: createHash('sha256').update(buf).digest('hex') });
  }
  await writeManifest(dir, newManifest({ schemaVersion: v, mode: 'full', tables: entries }));
  return dir;
}

async function readDump(dir: string): Promise<{ manifest: Manifest; tables: Record<string, (string | null)[][]> }> {
  const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const tables: Record<string, (string | null)[][]> = {};
  for (const t of manifest.tables) {
    const { columns, rows } = decodeCsv(await readFile(path.join(dir, t.file)), { header: true });
    expect(columns).toEqual(t.columns);
    tables[t.name] = rows;
  }
  return { manifest, tables };
}

describe('convertDump on the golden rows', () => {
  for (const [from, to] of [[1, 2], [1, 3], [3, 1], [3, 2], [2, 3], [2, 2]] as const) {
    it(`v${from} -> v${to} gives the golden v${to} rows, with a valid manifest`, async () => {
      const input = await writeDump(from, await golden(from));
      const out = path.join(await tmp(), 'out');
      const r = await convertDump({ dir: input, out, toVersion: to, mappingsDir: MAPPINGS, catalogs: provider, logger: silentLogger });
      const { manifest, tables } = await readDump(out);
      expect(manifest.schemaVersion).toBe(to);
      expect(manifest.convertedFrom).toBe(from);
      const want = await golden(to);
      expect(Object.keys(tables).sort()).toEqual(Object.keys(want).sort());
      for (const t of manifest.tables) {
        // Columns left to DEFAULT are not written; compare what is.
        const expected = want[t.name]!.map((o) => t.columns.map((c) => o[c] ?? null));
        expect([...tables[t.name]!].sort(byKey), `${t.name}`).toEqual(expected.sort(byKey));
        expect(t.rows).toBe(expected.length);
        const bytes = await readFile(path.join(out, t.file));
        expect(t.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
        expect(t.bytes).toBe(bytes.length);
        expect((await stat(path.join(out, t.file))).mode & 0o777).toBe(0o600);
      }
      expect((await stat(out)).mode & 0o777).toBe(0o700);
      expect(r.rows).toBe(manifest.tables.reduce((n, t) => n + t.rows, 0));
    });
  }

  it('writes tables in the target load order', async () => {
    const input = await writeDump(1, await golden(1));
    const out = path.join(await tmp(), 'out');
    await convertDump({ dir: input, out, toVersion: 3, mappingsDir: MAPPINGS, catalogs: provider, logger: silentLogger });
    const { manifest } = await readDump(out);
    // The hand-written catalogs have no foreign keys, so load order is name order here.
    expect(manifest.tables.map((t) => t.name)).toEqual(['groups', 'user_groups', 'user_profiles', 'user_settings', 'users']);
  });
});

describe('single-source tables (one decode -> transform -> encode pass per chunk)', () => {
  /** A v1 dump of the fixture generator's hostile rows (NULL vs '', quotes, CR/LF, `\\.`, ~100 KB values). */
  async function hostileDump(): Promise<string> {
    const tables: Record<string, Obj[]> = {};
    for (const t of V1_TABLES) {
      tables[t] = [...generateV1Rows(t, { users: 300, seed: 7 })].map((r) => Object.fromEntries(V1_COLUMNS[t].map((c, i) => [c, r[i] ?? null])));
    }
    return writeDump(1, tables);
  }

  for (const to of [2, 3]) {
    it(`v1 -> v${to}: every file is byte for byte decode -> transformJs -> the reference string encoder`, async () => {
      const dir = await hostileDump();
      const { openDump } = await import('../../../src/dump/manifest.ts');
      const chain = await compileChain(MAPPINGS, 1, to, catalogs);
      const plan = planConversion(dir, await openDump(dir), chain, catalogs);
      for (const t of plan.tables) {
        expect(t.inputs).toHaveLength(1);
        const chunks: Buffer[] = [];
        const into = new Writable({
          write(chunk: Buffer, _e, cb) {
            chunks.push(chunk);
            cb();
          },
        });
        const stats = await convertTable(t, { header: true, into });
        const input = t.inputs[0]!;
        const { rows } = decodeCsv(await readFile(input.file), { header: true });
        const gathered = rows.map((r) => (input.gather ? input.gather.map((g) => (g === -1 ? null : r[g]!)) : r));
        const want = Buffer.from(encodeCsv(gathered.map((r) => t.target.transformJs(r)), t.target.columns), 'utf8');
        expect(Buffer.concat(chunks).equals(want), t.target.table).toBe(true);
        expect(stats).toMatchObject({ rows: rows.length, read: { [input.table]: rows.length } });
      }
    });
  }

  it('fails when a file holds other than the rows its manifest promises', async () => {
    const dir = await writeDump(1, await golden(1));
    const mf = path.join(dir, 'manifest.json');
    const m = JSON.parse(await readFile(mf, 'utf8')) as Manifest;
    m.tables.find((t) => t.name === 'roles')!.rows += 1;
    await writeFile(mf, JSON.stringify(m));
    const chain = await compileChain(MAPPINGS, 1, 2, catalogs);
    const plan = planConversion(dir, m, chain, catalogs).tables.find((t) => t.target.table === 'roles')!;
    const into = new Writable({ write: (_c, _e, cb) => cb() });
    await expect(convertTable(plan, { header: true, into })).rejects.toThrow(/roles\.csv: \d+ rows, the manifest says \d+/);
  });
});

describe('merge (v3 users + user_profiles -> v2 users)', () => {
  const users = [
    { id: '2', login: 'b', created_at: 'c2', updated_at: 'u2' },
    { id: '10', login: 'j', created_at: 'c10', updated_at: 'u10' },
    { id: '9', login: 'i', created_at: 'c9', updated_at: 'u9' },
  ];
  const profiles = [
    { id: '2', first_name: 'Bo', last_name: null, email: '', updated_at: 'p2' },
    { id: '5', first_name: 'Orphan', last_name: 'X', email: null, updated_at: 'p5' },
    { id: '10', first_name: '', last_name: 'Ten, "quoted"\nline', email: 'e', updated_at: 'p10' },
  ];

  async function plan(dir: string) {
    const chain = await compileChain(MAPPINGS, 3, 2, catalogs);
    const { openDump } = await import('../../../src/dump/manifest.ts');
    return planConversion(dir, await openDump(dir), chain, catalogs).tables.find((t) => t.target.table === 'users')!;
  }

  async function run(p: Awaited<ReturnType<typeof plan>>) {
    let text = '';
    const into = new Writable({
      write(chunk: Buffer, _e, cb) {
        text += chunk.toString();
        cb();
      },
    });
    const stats = await convertTable(p, { header: true, into });
    return { stats, rows: decodeCsv(text, { header: true }).rows };
  }

  it('joins on the key in one pass, integer keys in numeric order; a missing partner is NULLs, an orphan is counted', async () => {
    const dir = await writeDump(3, { groups: [], users, user_profiles: profiles, user_groups: [], user_settings: [] });
    const { stats, rows } = await run(await plan(dir));
    // v2 users: id, login, first_name, last_name, email, created_at, updated_at
    expect(rows).toEqual([
      ['2', 'b', 'Bo', null, '', 'c2', 'u2'],
      ['9', 'i', null, null, null, 'c9', 'u9'],
      ['10', 'j', '', 'Ten, "quoted"\nline', 'e', 'c10', 'u10'],
    ]);
    expect(stats).toMatchObject({ table: 'users', rows: 3, orphans: 1, read: { users: 3, user_profiles: 3 } });
  });

  it('refuses a source file that is not sorted by its key', async () => {
    const header = cols(3, 'user_profiles');
    const unsorted = encodeCsv(
      [
        ['10', 'a', 'b', 'c', 'u'],
        ['2', 'a', 'b', 'c', 'u'],
      ],
      header,
    );
    const dir = await writeDump(3, { groups: [], users, user_profiles: profiles, user_groups: [], user_settings: [] }, { raw: { user_profiles: unsorted } });
    await expect(run(await plan(dir))).rejects.toThrow(/user_profiles\.csv is not sorted by its key/);
  });
});

describe('refusals', () => {
  it('refuses a table whose chain has no JS face, naming table and op, before any file exists', async () => {
    const g = await golden(1);
    const input = await writeDump(1, g);
    const chain = await compileChain(MAPPINGS, 1, 2, catalogs);
    chain.tables.users = { ...chain.tables.users!, jsUnsupported: ['function op "shout" at /tables/users/ops/0 has no exact JS face'] };
    const { openDump } = await import('../../../src/dump/manifest.ts');
    const manifest = await openDump(input);
    expect(() => planConversion(input, manifest, chain, catalogs)).toThrow(OfflineConversionUnsupportedError);
    expect(() => planConversion(input, manifest, chain, catalogs)).toThrow(/table users cannot be converted from a dump \(v1 -> v2\): function op "shout"/);
  });

  it('refuses dump columns the version does not have, and a missing key column', async () => {
    const g = await golden(1);
    const extra = await writeDump(1, { ...g, roles: g.roles!.map((r) => ({ ...r, colour: 'red' })) }, { columns: { roles: [...cols(1, 'roles'), 'colour'] } });
    const out = path.join(await tmp(), 'out');
    await expect(convertDump({ dir: extra, out, toVersion: 2, mappingsDir: MAPPINGS, catalogs: provider, logger: silentLogger })).rejects.toThrow(/column roles\.colour is not in v1/);
    const noKey = await writeDump(1, g, { columns: { roles: cols(1, 'roles').filter((c) => c !== 'id') } });
    await expect(convertDump({ dir: noKey, out, toVersion: 2, mappingsDir: MAPPINGS, catalogs: provider, logger: silentLogger })).rejects.toThrow(/table roles lacks column id/);
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
  });

  it('reads a column a converted dump left out (it had a DEFAULT) as NULL', async () => {
    const g = await golden(2);
    const settings = cols(2, 'user_settings').filter((c) => c !== 'updated_at');
    const dir = await writeDump(2, g, { columns: { user_settings: settings } });
    const out = path.join(await tmp(), 'out');
    await convertDump({ dir, out, toVersion: 3, mappingsDir: MAPPINGS, catalogs: provider, logger: silentLogger });
    const { manifest, tables } = await readDump(out);
    const t = manifest.tables.find((x) => x.name === 'user_settings')!;
    const at = t.columns.indexOf('updated_at');
    expect(tables.user_settings!.every((r) => r[at] === null)).toBe(true);
  });

  it('a value the mapping refuses fails the run and leaves no output behind', async () => {
    const g = await golden(2);
    const bad = { ...g, user_settings: g.user_settings!.map((s, i) => (i === 0 ? { ...s, status: 'suspended' } : s)) };
    const dir = await writeDump(2, bad);
    const out = path.join(await tmp(), 'out');
    await expect(convertDump({ dir, out, toVersion: 1, mappingsDir: MAPPINGS, catalogs: provider, logger: silentLogger })).rejects.toThrow(/suspended/);
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
  });

  it('refuses a non-empty output directory and a corrupt input before writing', async () => {
    const dir = await writeDump(1, await golden(1));
    const busy = await tmp();
    await writeFile(path.join(busy, 'x'), 'x');
    await expect(convertDump({ dir, out: busy, toVersion: 2, mappingsDir: MAPPINGS, catalogs: provider, logger: silentLogger })).rejects.toThrow(/not empty/);
    const users = path.join(dir, 'users.csv');
    const bytes = await readFile(users);
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 1;
    await writeFile(users, bytes);
    const out = path.join(await tmp(), 'out');
    await expect(convertDump({ dir, out, toVersion: 2, mappingsDir: MAPPINGS, catalogs: provider, logger: silentLogger })).rejects.toThrow(/users\.csv is corrupt/);
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
  });

  it('refuses an incremental dump', async () => {
    const dir = await writeDump(1, await golden(1));
    const mf = path.join(dir, 'manifest.json');
    await writeFile(mf, (await readFile(mf, 'utf8')).replace('"mode": "full"', '"mode": "incremental"'));
    const out = path.join(await tmp(), 'out');
    await expect(convertDump({ dir, out, toVersion: 2, mappingsDir: MAPPINGS, catalogs: provider, logger: silentLogger })).rejects.toThrow(DumpError);
  });
});
