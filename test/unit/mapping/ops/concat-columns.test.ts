import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatParts, concatRoundTrips } from '../../../../src/mapping/ops/concat-columns.ts';
import { splitFirst } from '../../../../src/mapping/ops/split-column.ts';
import { runOp } from '../op-harness.ts';

const part = fc.option(fc.string({ unit: fc.constantFrom(' ', 'a', 'b') }), { nil: null });

describe('concat', () => {
  it('split(concat(parts)) == parts exactly when concatRoundTrips says so (the declared loss is exact)', () => {
    fc.assert(
      fc.property(fc.array(part, { minLength: 2, maxLength: 4 }), (parts) => {
        const back = splitFirst(concatParts(parts, ' '), ' ', parts.length);
        expect(back.every((v, i) => v === parts[i])).toBe(concatRoundTrips(parts, ' '));
      }),
      { numRuns: 3000 },
    );
  });

  it('must be declared lost', () => {
    expect(() =>
      runOp({ source: ['a text', 'b text'], target: ['c text'], op: { op: 'concat', from: ['a', 'b'], to: 'c', separator: ' ' } }),
    ).toThrow(/source column t\.a is lost \(not carried, or only through a lossy op\) but not declared/);
  });

  it('SQL face stops at the first NULL part', () => {
    const run = runOp({
      source: ['a text', 'b text', 'c text'],
      target: ['d text'],
      op: { op: 'concat', from: ['a', 'b', 'c'], to: 'd', separator: '-' },
      upLoses: ['a', 'b', 'c'],
    });
    expect(run.up.selectSql((t) => t)).toContain(
      `CASE WHEN "s0"."a" IS NULL THEN NULL WHEN "s0"."b" IS NULL THEN "s0"."a" WHEN "s0"."c" IS NULL THEN "s0"."a" || E'-' || "s0"."b" ELSE "s0"."a" || E'-' || "s0"."b" || E'-' || "s0"."c" END AS "d"`,
    );
    expect(run.forward(['x', null, 'z'])).toEqual(['x']);
  });
});
