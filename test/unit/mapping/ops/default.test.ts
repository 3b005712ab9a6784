import { describe, expect, it } from 'vitest';
import { parseMapping } from '../../../../src/mapping/load.ts';
import { compileStep } from '../../../../src/mapping/compile.ts';
import { catalog, table } from '../catalog-helper.ts';
import { runOp } from '../op-harness.ts';

describe('default', () => {
  it('leaves the column out of the written list and lists it as lossy', () => {
    const v1 = catalog(table('t', ['id bigint pk']));
    const v2 = catalog(table('t', ['id bigint pk', 'created_at timestamp with time zone not null default']));
    const m = parseMapping({ from: 1, to: 2, tables: { t: { from: 't', ops: [{ op: 'default', column: 'created_at' }] } } }, { file: 'x', sourceVersion: 1, targetVersion: 2, catalogs: { 1: v1, 2: v2 } });
    const t = compileStep(m).tables.t!;
    expect(t.columns).toEqual(['id']);
    expect(t.lossyColumns).toEqual(['created_at']);
    expect(t.transformJs(['7'])).toEqual(['7']);
  });
  it('refuses a NOT NULL column without DEFAULT', () => {
    expect(() => runOp({ source: [], target: ['s text not null'], op: { op: 'default', column: 's' }, downLoses: ['s'] })).toThrow(/NOT NULL and has no DEFAULT/);
  });
});
