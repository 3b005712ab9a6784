import { describe, expect, it } from 'vitest';
import { parseMapping } from '../../../src/mapping/load.ts';
import { compileStep } from '../../../src/mapping/compile.ts';
import { catalog, table } from './catalog-helper.ts';

describe('smoke', () => {
  it('compiles a rename + split', () => {
    const v1 = catalog(table('users', ['id bigint pk identity', 'username text not null', 'full_name text']));
    const v2 = catalog(table('users', ['id bigint pk identity', 'login text not null', 'first_name text', 'last_name text']));
    const m = parseMapping(
      { from: 1, to: 2, tables: { users: { from: 'users', ops: [{ op: 'rename', from: 'username', to: 'login' }, { op: 'split', from: 'full_name', to: ['first_name', 'last_name'], separator: ' ' }] } } },
      { file: 'up.json', sourceVersion: 1, targetVersion: 2, catalogs: { 1: v1, 2: v2 } },
    );
    const step = compileStep(m);
    const t = step.tables.users!;
    expect(t.columns).toEqual(['id', 'login', 'first_name', 'last_name']);
    expect(t.transformJs(['1', 'ann', 'Ann Lee Smith'])).toEqual(['1', 'ann', 'Ann', 'Lee Smith']);
  });
});
