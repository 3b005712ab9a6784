import { describe, expect, it } from 'vitest';
import { runOp } from '../op-harness.ts';

describe('constant', () => {
  it('refuses non-canonical text for typed targets', () => {
    expect(() => runOp({ source: [], target: ['n integer'], op: { op: 'constant', column: 'n', value: '+1' }, downLoses: ['n'] })).toThrow(/"\+1" is not how PostgreSQL prints integer/);
    expect(() => runOp({ source: [], target: ['m numeric(5,2)'], op: { op: 'constant', column: 'm', value: '1.5' }, downLoses: ['m'] })).toThrow(/exactly 2 decimal digits/);
  });
  it('refuses NULL for a NOT NULL column', () => {
    expect(() => runOp({ source: [], target: ['s text not null'], op: { op: 'constant', column: 's', value: null }, downLoses: ['s'] })).toThrow(/NOT NULL but the constant is null/);
  });
});
