/**
 * Every file in test/fixtures/mappings/invalid/ is a mapping that must be refused with the
 * listed problems (JSON pointer + a distinctive part of the message), all in one error.
 * A fixture checks against the sample app's catalogs, or against its own `catalogs`
 * (version -> table -> column strings as catalog-helper.ts reads them).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/errors.ts';
import { parseMapping } from '../../../src/mapping/load.ts';
import { catalog, table } from './catalog-helper.ts';
import { sampleCatalogs } from './sample-catalogs.ts';

interface InvalidFixture {
  description: string;
  versions: [number, number];
  expect: { path: string; message: string }[];
  mapping: unknown;
  catalogs?: Record<string, Record<string, string[]>>;
}

/** The fixture's own catalogs, if it has them. */
function catalogsOf(fx: InvalidFixture) {
  if (fx.catalogs === undefined) return sampleCatalogs;
  return Object.fromEntries(Object.entries(fx.catalogs).map(([v, tables]) => [Number(v), catalog(...Object.entries(tables).map(([name, cols]) => table(name, cols)))]));
}

const dir = path.join(import.meta.dirname, '../../fixtures/mappings/invalid');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

describe('invalid mapping fixtures', () => {
  it('there are at least 30', () => expect(files.length).toBeGreaterThanOrEqual(30));
  for (const f of files) {
    const fx = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as InvalidFixture;
    it(`${f}: ${fx.description}`, () => {
      let err: unknown;
      try {
        parseMapping(fx.mapping, { file: f, sourceVersion: fx.versions[0], targetVersion: fx.versions[1], catalogs: catalogsOf(fx) });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ValidationError);
      const problems = (err as ValidationError).problems;
      for (const p of problems) {
        expect(p.file).toBe(f);
      }
      for (const want of fx.expect) {
        const found = problems.some((p) => p.path === want.path && p.message.includes(want.message));
        expect(found, `expected ${want.path}: ${want.message}\n got:\n${problems.map((p) => `${p.path}: ${p.message}`).join('\n')}`).toBe(true);
      }
    });
  }
});
