import { describe, expect, it } from 'vitest';
import { castRule, parseBoolean } from '../../../../src/mapping/ops/cast.ts';
import { runOp } from '../op-harness.ts';

describe('cast', () => {
  it('parses booleans the way PostgreSQL boolin does', () => {
    for (const t of ['t', 'TRUE', ' yes ', 'y', 'on', '1', 'tr']) expect(parseBoolean(t)).toBe('t');
    for (const f of ['f', 'False', 'no', 'n', 'off', 'of', '0']) expect(parseBoolean(f)).toBe('f');
    for (const bad of ['o', '', 'maybe', '2', 'yess']) expect(() => parseBoolean(bad)).toThrow(/invalid input syntax/);
  });

  it('has an exact JS face only where the text is known', () => {
    const exact: [string, string][] = [
      ['integer', 'bigint'],
      ['bigint', 'integer'],
      ['smallint', 'numeric(10,2)'],
      ['numeric(20,6)', 'numeric(24,6)'],
      ['numeric(20,2)', 'numeric(20,4)'],
      ['text', 'character varying(3)'],
      ['boolean', 'text'],
      ['uuid', 'text'],
      ['jsonb', 'json'],
    ];
    for (const [a, b] of exact) expect(castRule(a, b).js, `${a} -> ${b}`).toBeDefined();
    const sqlOnly: [string, string][] = [
      ['numeric(20,6)', 'numeric(20,2)'],
      ['numeric', 'numeric(10,2)'],
      ['text', 'integer'],
      ['json', 'jsonb'],
      ['timestamp without time zone', 'timestamp with time zone'],
      ['inet', 'text'],
    ];
    for (const [a, b] of sqlOnly) expect(castRule(a, b).js, `${a} -> ${b}`).toBeUndefined();
  });

  it('narrowing and precision checks fail like PostgreSQL', () => {
    expect(() => castRule('bigint', 'integer').js!('2147483648')).toThrow(/out of range for type integer/);
    expect(castRule('bigint', 'integer').js!('-2147483648')).toBe('-2147483648');
    expect(() => castRule('numeric(20,6)', 'numeric(8,6)').js!('123.000000')).toThrow(/numeric field overflow/);
    expect(castRule('integer', 'numeric(10,2)').js!('-7')).toBe('-7.00');
    expect(() => castRule('text', 'character varying(2)').js!('abc')).toThrow(/value too long/);
  });

  it('refuses a cast to the same type, and a missing cast is named in the error', () => {
    expect(() => runOp({ source: ['a integer'], target: ['a integer'], op: { op: 'cast', from: 'a' } })).toThrow(/cast does nothing/);
    expect(() => runOp({ source: ['a integer', 'b integer'], target: ['a bigint', 'b bigint'], op: { op: 'cast', from: 'a' } })).toThrow(
      /t\.b is bigint in v2 but t\.b is integer in v1 \(hint: add \{"op": "cast", "from": "b"\}\)/,
    );
  });

  it('a SQL-only cast refuses offline conversion naming the op', () => {
    const run = runOp({ source: ['p numeric(10,4)'], target: ['p numeric(10,2)'], op: { op: 'cast', from: 'p' }, upLoses: ['p'], down: [{ op: 'cast', from: 'p' }] });
    expect(run.up.jsUnsupported).toEqual(['cast p (numeric(10,4)) -> p (numeric(10,2)) at /tables/t/ops/0 has no exact JS face']);
    expect(() => run.forward(['1.2345'])).toThrow(/table t cannot be converted offline \(in Node\): cast p/);
    expect(run.up.selectSql((t) => t)).toContain('("s0"."p")::numeric AS "p"');
  });
});
