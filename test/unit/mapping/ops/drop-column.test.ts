import { describe, expect, it } from 'vitest';
import { runOp } from '../op-harness.ts';

describe('drop', () => {
  it('must be declared in loses', () => {
    expect(() => runOp({ source: ['x text'], target: [], op: { op: 'drop', column: 'x' } })).toThrow(/source column t\.x is lost/);
  });
  it('stops a same-named target column from being carried', () => {
    const run = runOp({ source: ['x text'], target: ['x text'], op: { op: 'drop', column: 'x' }, upLoses: ['x'], down: [] });
    expect(run.forward(['secret'])).toEqual([null]);
    expect(run.up.lossyColumns).toEqual(['x']);
  });
  it('an over-declared loss is refused', () => {
    expect(() => runOp({ source: ['x text'], target: ['x text'], op: { op: 'copy', from: 'x', to: 'x' }, upLoses: ['x'] })).toThrow(/t\.x is declared lost but the mapping carries it/);
  });
});
