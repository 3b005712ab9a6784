import { describe, expect, it } from 'vitest';
import { runOp } from '../op-harness.ts';

describe('rename', () => {
  it('is keySafe: a renamed key carries', () => {
    const run = runOp({ source: ['a text'], target: ['b text'], op: { op: 'rename', from: 'a', to: 'b' } });
    expect(run.up.origins.b).toEqual([{ source: 0, column: 'a' }]);
  });
  it('refuses a type change and unknown columns', () => {
    expect(() => runOp({ source: ['a text'], target: ['b integer'], op: { op: 'rename', from: 'a', to: 'b' } })).toThrow(/type differs: a is text but t\.b is integer \(hint: use \{"op": "cast"/);
    expect(() => runOp({ source: ['a text'], target: ['b text'], op: { op: 'rename', from: 'nope', to: 'b' } })).toThrow(/source column "nope" does not exist in t/);
  });
});
