/**
 * The shop example's JS twins (examples/shop/mappings/v2/functions.ts) against what
 * PostgreSQL prints for their SQL faces, `round(c / 100.0, 2)` into numeric(12,2) and
 * `(x * 100)::bigint`, on the edge values (exact for any bigint, no floating point).
 */
import { describe, expect, it } from 'vitest';
import { centsToUnits, unitsToCents } from '../../../examples/shop/mappings/v2/functions.ts';

describe('shop functions.ts', () => {
  it('centsToUnits prints numeric(12,2) as PostgreSQL does', () => {
    const cases: [string | null, string | null][] = [
      ['0', '0.00'],
      ['1', '0.01'],
      ['-1', '-0.01'],
      ['-5', '-0.05'],
      ['99', '0.99'],
      ['100', '1.00'],
      ['-12345', '-123.45'],
      ['999999999999', '9999999999.99'],
      ['9007199254740993', '90071992547409.93'], // beyond a double's integers
      [null, null],
    ];
    for (const [cents, units] of cases) expect([cents, centsToUnits([cents])]).toEqual([cents, [units]]);
  });

  it('unitsToCents is the exact inverse, and rounds half away from zero beyond two decimals as ::bigint does', () => {
    const cases: [string | null, string | null][] = [
      ['0.00', '0'],
      ['0.01', '1'],
      ['-0.05', '-5'],
      ['123.45', '12345'],
      ['9999999999.99', '999999999999'],
      ['5', '500'],
      ['1.5', '150'],
      ['0.005', '1'],
      ['-0.005', '-1'],
      ['0.0049', '0'],
      [null, null],
    ];
    for (const [units, cents] of cases) expect([units, unitsToCents([units])]).toEqual([units, [cents]]);
    for (const c of ['0', '-1', '7', '-99999', '999999999999']) expect(unitsToCents(centsToUnits([c]))).toEqual([c]);
  });
});
