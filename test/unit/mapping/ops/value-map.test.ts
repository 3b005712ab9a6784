import { describe, expect, it } from 'vitest';
import { MappingValueError } from '../../../../src/mapping/errors.ts';
import { runOp } from '../op-harness.ts';

describe('map', () => {
  const status = { op: 'map', from: 'active', to: 'status', values: [['t', 'active'], ['f', 'disabled'], [null, 'unknown']] } as const;

  it('inverts an injective map', () => {
    const run = runOp({ source: ['active boolean'], target: ['status text not null'], op: { ...status, values: status.values.map((p) => [...p]) } });
    expect(run.down.transformJs(['1', 'unknown'])).toEqual(['1', null]);
  });

  it('fails loudly on an unmapped value, in JS and in SQL', () => {
    const run = runOp({
      source: ['kind text not null'],
      target: ['kind text not null'],
      op: { op: 'map', from: 'kind', values: [['a', 'A']] },
    });
    expect(() => run.forward(['b'])).toThrow(MappingValueError);
    expect(() => run.forward(['b'])).toThrow(/t\.kind: value is not in the value map \(value "b"\)/);
    expect(run.up.selectSql((t) => t)).toContain(`ELSE ((E'bluegreen: ' || coalesce("s0"."kind"::text, 'NULL') || E' is not in the value map of t.kind')::boolean)::text END`);
  });

  it('refuses non-canonical booleans, duplicates and a missing NULL pair', () => {
    expect(() =>
      runOp({ source: ['active boolean'], target: ['status text'], op: { op: 'map', from: 'active', to: 'status', values: [['true', 'yes'], ['true', 'no']] } }),
    ).toThrow(/"true" is not how PostgreSQL prints a boolean[\s\S]*source value "true" is mapped twice[\s\S]*active can be NULL but the map has no \[null, \.\.\.\] pair/);
  });

  it('a non-injective map is lossy and must be declared', () => {
    expect(() =>
      runOp({ source: ['k text not null'], target: ['k text not null'], op: { op: 'map', from: 'k', values: [['a', 'x'], ['b', 'x']] }, down: [] }),
    ).toThrow(/source column t\.k is lost/);
  });
});
