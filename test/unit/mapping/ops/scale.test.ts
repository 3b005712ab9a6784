import { describe, expect, it } from 'vitest';
import { formatDecimal, parseDecimal, scaleJs } from '../../../../src/mapping/ops/scale.ts';
import { runOp } from '../op-harness.ts';

describe('scale', () => {
  it('multiplies exactly and prints what PostgreSQL prints for the target type', () => {
    expect(scaleJs('0.01', 'numeric(12,2)')('1234')).toBe('12.34');
    expect(scaleJs('0.01', 'numeric(12,2)')('-5')).toBe('-0.05');
    expect(scaleJs('0.01', 'numeric(12,4)')('7')).toBe('0.0700');
    expect(scaleJs('0.01', 'numeric')('7')).toBe('0.07');
    expect(scaleJs('100', 'numeric')('0.07')).toBe('7.00');
    expect(scaleJs('100', 'bigint')('12.34')).toBe('1234');
    expect(scaleJs('100', 'integer')('-0.01')).toBe('-1');
    expect(scaleJs('100', 'bigint')('92233720368547758.07')).toBe('9223372036854775807');
  });

  it('refuses what the target cannot hold exactly, never rounds', () => {
    expect(() => scaleJs('100', 'bigint')('0.001')).toThrow(/is not a whole number/);
    expect(() => scaleJs('0.001', 'numeric(12,2)')('5')).toThrow(/more than 2 decimals/);
    expect(() => scaleJs('0.01', 'numeric(4,2)')('12345')).toThrow(/numeric field overflow/);
    expect(() => scaleJs('100', 'integer')('21474836.48')).toThrow(/out of range for type integer/);
    expect(() => scaleJs('100', 'integer')('NaN')).toThrow(/not a finite decimal/);
  });

  it('decimal helpers round-trip', () => {
    for (const t of ['0', '-0.05', '12.340', '100']) expect(formatDecimal(parseDecimal(t), parseDecimal(t).s)).toBe(t);
  });

  it('cents <-> numeric(12,2) round-trips through the engine, and its failure names the column and value', () => {
    const run = runOp({ source: ['total_cents bigint'], target: ['total numeric(12,2)'], op: { op: 'scale', from: 'total_cents', to: 'total', factor: '0.01' } });
    expect(run.forward(['199'])).toEqual(['1.99']);
    expect(run.roundTrip(['-199'])).toEqual(['-199']);
    expect(run.upMapping.analysis.lost).toEqual([]);
    const narrow = runOp({ source: ['total_cents bigint'], target: ['total numeric(4,2)'], op: { op: 'scale', from: 'total_cents', to: 'total', factor: '0.01' } });
    expect(() => narrow.forward(['123456'])).toThrow(/t\.total: scale by 0\.01 failed: numeric field overflow.*\(value "123456"\)/);
  });

  it('refuses non-numeric columns and a zero factor at their JSON paths', () => {
    expect(() => runOp({ source: ['a text'], target: ['a numeric'], op: { op: 'scale', from: 'a', factor: '2' } })).toThrow(/\/tables\/t\/ops\/0\/from.*scale works on integer and numeric/);
    expect(() => runOp({ source: ['a integer'], target: ['a real'], op: { op: 'scale', from: 'a', factor: '2' } })).toThrow(/writes integer and numeric columns exactly/);
    expect(() => runOp({ source: ['a integer'], target: ['a bigint'], op: { op: 'scale', from: 'a', factor: '0.0' } })).toThrow(/\/factor: is zero/);
  });
});
