import { describe, expect, it } from 'vitest';
import { castToTarget, isBuiltinType, scopedExpr } from '../../../src/mapping/sql.ts';

describe('SQL text helpers for user-defined types and expressions', () => {
  it('tells built-in types (as format_type prints them) from user-defined ones', () => {
    for (const t of ['integer', 'numeric(12,2)', 'character varying(20)', 'character(2)', 'timestamp(3) with time zone', 'text[]', 'jsonb', 'uuid', '"char"', 'interval day to second', 'bit varying(8)']) expect(isBuiltinType(t), t).toBe(true);
    for (const t of ['order_status', 'citext', 'public.mood', 'hstore', 'order_status[]', 'money2']) expect(isBuiltinType(t), t).toBe(false);
  });

  it('casts to a user-defined type as text (parsed by the target), to a built-in one without its typmod', () => {
    expect(castToTarget('x', 'order_status')).toBe('(x)::text');
    expect(castToTarget('x', 'character varying(3)')).toBe('(x)::character varying');
  });

  it('scopes an expression to exactly the named columns, without touching its text', () => {
    expect(scopedExpr(`note || ' "a" -- b'`, [{ name: 'note', sql: '"s0"."note"' }])).toBe(`(SELECT (note || ' "a" -- b'\n) FROM (VALUES ("s0"."note")) AS bg_in("note"))`);
  });
});
