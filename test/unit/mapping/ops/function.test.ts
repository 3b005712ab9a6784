import { describe, expect, it } from 'vitest';
import { runOp } from '../op-harness.ts';

describe('function', () => {
  const functions = { upper: ([v]: (string | null)[]) => [v?.toUpperCase() ?? null], bad: () => ['a', 'b'] };
  it('runs in JS only and is lossy unless it says otherwise', () => {
    const run = runOp({ source: ['a text'], target: ['a text'], op: { op: 'function', name: 'upper', from: ['a'], to: ['a'] }, upLoses: ['a'], down: [], functions });
    expect(run.forward(['abc'])).toEqual(['ABC']);
    expect(() => run.up.selectSql((t) => t)).toThrow(/function op "upper" at \/tables\/t\/ops\/0 has no SQL face/);
  });
  it('names unknown functions and checks the result shape', () => {
    expect(() => runOp({ source: ['a text'], target: ['a text'], op: { op: 'function', name: 'nope', from: ['a'], to: ['a'], lossless: true }, functions })).toThrow(/functions.ts exports no function "nope" \(hint: known: upper, bad\)/);
    const run = runOp({ source: ['a text'], target: ['a text'], op: { op: 'function', name: 'bad', from: ['a'], to: ['a'] }, upLoses: ['a'], down: [], functions });
    expect(() => run.forward(['x'])).toThrow(/function bad must return an array of 1 strings or nulls/);
  });
});
