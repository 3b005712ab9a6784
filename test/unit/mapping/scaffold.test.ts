import { cp, mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkMappings } from '../../../src/mapping/check.ts';
import { scaffoldVersion, tablesInSchemaSql } from '../../../src/mapping/scaffold.ts';
import { sampleCatalogs } from './sample-catalogs.ts';

describe('scaffoldVersion', () => {
  it('creates v(N+1) with identity mappings that check validates, naming the copied schema as indistinguishable', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bg-scaffold-'));
    await cp(path.join(import.meta.dirname, '../../../mappings'), dir, { recursive: true });
    const made = await scaffoldVersion(dir);
    expect(made.version).toBe(4);
    expect(await readFile(path.join(dir, 'v4/schema.sql'), 'utf8')).toBe(await readFile(path.join(dir, 'v3/schema.sql'), 'utf8'));
    const up = JSON.parse(await readFile(path.join(dir, 'v4/up.json'), 'utf8'));
    expect(up).toMatchObject({ from: 3, to: 4, loses: [] });
    expect(up.tables.user_profiles).toEqual({ from: 'user_profiles', watermark: 'updated_at' });
    // v4's catalog equals v3's: the schema was copied.
    const catalogs = { ...sampleCatalogs, 4: sampleCatalogs[3] };
    const report = await checkMappings(dir, catalogs, { version: 1, tables: {} });
    // The mappings are valid; the one problem is the copy itself: until v4/schema.sql
    // changes, no database can be told to be at v3 or at v4.
    expect(report.problems.map((p) => [path.relative(dir, p.file), p.message.slice(0, 60)])).toEqual([[path.join('v4', 'schema.sql'), 'v3 and v4 have the same schema as version detection compares']]);
    expect(report.ok).toBe(false);
    await expect(scaffoldVersion(dir)).resolves.toMatchObject({ version: 5 });
  });

  it("points $schema at a copy of the mapping schema in the mappings folder, so it resolves wherever that folder lives", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bg-scaffold-ref-'));
    await cp(path.join(import.meta.dirname, '../../../mappings'), dir, { recursive: true });
    await scaffoldVersion(dir);
    const own = await readFile(path.join(import.meta.dirname, '../../../src/schemas/mapping.schema.json'), 'utf8');
    for (const f of ['up.json', 'down.json']) {
      const file = path.join(dir, 'v4', f);
      const ref = JSON.parse(await readFile(file, 'utf8')).$schema as string;
      expect(ref.startsWith('.'), ref).toBe(true); // relative: no path into bluegreen's sources, no host
      expect(await readFile(path.resolve(path.dirname(file), ref), 'utf8')).toBe(own);
    }
  });

  it('reads table names and watermark comments from schema.sql', () => {
    expect(tablesInSchemaSql(`CREATE TABLE "Odd ""Name"" " (id int); create unlogged table if not exists plain (x int);\nCOMMENT ON COLUMN plain.x IS 'bluegreen:watermark';`)).toEqual({
      tables: ['Odd "Name" ', 'plain'],
      watermarks: { plain: 'x' },
    });
  });
});
