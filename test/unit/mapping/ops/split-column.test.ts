import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatParts, concatRoundTrips } from '../../../../src/mapping/ops/concat-columns.ts';
import { splitFirst } from '../../../../src/mapping/ops/split-column.ts';
import { runOp } from '../op-harness.ts';

// Strings biased towards separators and spaces, where split rules go wrong.
const text = fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom(' ', 'a', ',', '::', 'é', '👩') }));
const nullable = fc.option(text, { nil: null });

describe('split', () => {
  it('concat(split(x)) == x for every string and NULL (2..4 parts, any separator)', () => {
    fc.assert(
      fc.property(nullable, fc.constantFrom(' ', ',', '::', '👩'), fc.integer({ min: 2, max: 4 }), (x, sep, n) => {
        expect(concatParts(splitFirst(x, sep, n), sep)).toBe(x);
      }),
      { numRuns: 2000 },
    );
  });

  it('split output is always in the set concat round-trips', () => {
    fc.assert(
      fc.property(nullable, (x) => {
        expect(concatRoundTrips(splitFirst(x, ' ', 2), ' ')).toBe(true);
      }),
    );
  });

  it('the compiled two-part fast path agrees with splitFirst', () => {
    const run = runOp({
      source: ['full_name text'],
      target: ['first_name text', 'last_name text'],
      op: { op: 'split', from: 'full_name', to: ['first_name', 'last_name'], separator: ' ' },
      downLoses: ['first_name', 'last_name'],
    });
    fc.assert(
      fc.property(nullable, (x) => {
        expect(run.forward([x])).toEqual(splitFirst(x, ' ', 2));
        expect(run.roundTrip([x])).toEqual([x]);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses a NOT NULL later part and a non-text source', () => {
    expect(() =>
      runOp({ source: ['n integer'], target: ['a text', 'b text not null'], op: { op: 'split', from: 'n', to: ['a', 'b'], separator: ' ' } }),
    ).toThrow(/split needs a text column but n is integer[\s\S]*t\.b is NOT NULL but split leaves it NULL/);
  });
});
