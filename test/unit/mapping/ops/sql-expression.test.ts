import { describe, expect, it } from 'vitest';
import { runOp } from '../op-harness.ts';

const centsToTotal = ([c]: (string | null)[]) => [c === null ? null : (Number(c) / 100).toFixed(2)];
const totalToCents = ([t]: (string | null)[]) => [t === null ? null : String(Math.round(Number(t) * 100))];

describe('sql op', () => {
  it('evaluates the expression in a scope of exactly its from columns, cast to the target type', () => {
    const run = runOp({
      source: ['total_cents bigint'],
      target: ['total numeric(12,2)'],
      op: { op: 'sql', from: ['total_cents'], to: 'total', expr: 'round(total_cents / 100.0, 2)', js: 'centsToTotal' },
      down: [{ op: 'sql', from: ['total'], to: 'total_cents', expr: '(total * 100)::bigint', js: 'totalToCents' }],
      functions: { centsToTotal, totalToCents },
    });
    expect(run.up.selectSql((t) => t)).toContain(`(SELECT (round(total_cents / 100.0, 2)\n) FROM (VALUES ("s0"."total_cents")) AS bg_in("total_cents"))`);
    expect(run.forward(['1999'])).toEqual(['19.99']);
    expect(run.roundTrip(['1999'])).toEqual(['1999']);
    // The loss is what `loses` says: nothing declared, nothing lost (check's round trip tests it).
    expect(run.upMapping.analysis.lost).toEqual([]);
  });

  it('without a JS twin, the JS face is missing (offline paths run the SQL face in PostgreSQL)', () => {
    const run = runOp({
      source: ['a text'],
      target: ['b text'],
      op: { op: 'sql', from: ['a'], to: 'b', expr: 'upper(a)' },
      down: [{ op: 'sql', from: ['b'], to: 'a', expr: 'lower(b)' }],
      upLoses: ['a'],
      downLoses: ['b'],
    });
    expect(run.up.jsUnsupported).toEqual(['sql op at /tables/t/ops/0 has no JS twin ("js")']);
    expect(run.up.sqlUnsupported).toEqual([]);
    expect(run.upMapping.analysis.lost).toEqual(['t.a']);
  });

  it('a target of a user-defined type gets text (the type may exist on the target only)', () => {
    const run = runOp({ source: ['a text'], target: ['b mood'], op: { op: 'sql', from: ['a'], to: 'b', expr: "coalesce(a, 'ok')" }, down: [{ op: 'sql', from: ['b'], to: 'a', expr: 'b::text' }] });
    expect(run.up.selectSql((t) => t)).toContain(`::text AS "b"`);
  });

  it('an unknown twin or source column is refused with its JSON path', () => {
    expect(() => runOp({ source: ['a text'], target: ['b text'], op: { op: 'sql', from: ['nope'], to: 'b', expr: 'nope', js: 'missing' }, down: [] })).toThrow(
      /\/tables\/t\/ops\/0\/from\/0: source column "nope" does not exist[\s\S]*\/tables\/t\/ops\/0\/js: functions\.ts exports no function "missing"/,
    );
  });
});

describe('function op with an SQL face', () => {
  it('gives one expression per to column and keeps its JS face', () => {
    const run = runOp({
      source: ['full_name text'],
      target: ['first text', 'last text'],
      op: { op: 'function', name: 'split2', from: ['full_name'], to: ['first', 'last'], sql: { first: "split_part(full_name, ' ', 1)", last: "split_part(full_name, ' ', 2)" } },
      down: [{ op: 'function', name: 'join2', from: ['first', 'last'], to: ['full_name'], sql: { full_name: "first || ' ' || last" } }],
      upLoses: ['full_name'],
      downLoses: ['first', 'last'],
      functions: { split2: ([v]: (string | null)[]) => (v ?? ' ').split(' ').slice(0, 2), join2: ([a, b]: (string | null)[]) => [`${a} ${b}`] },
    });
    expect(run.up.sqlUnsupported).toEqual([]);
    expect(run.up.selectSql((t) => t)).toContain(`(SELECT (split_part(full_name, ' ', 2)\n) FROM (VALUES ("s0"."full_name")) AS bg_in("full_name"))`);
    expect(run.forward(['Ann Lee'])).toEqual(['Ann', 'Lee']);
  });

  it('an SQL face must cover exactly the to columns', () => {
    expect(() =>
      runOp({ source: ['a text'], target: ['b text', 'c text'], op: { op: 'function', name: 'f', from: ['a'], to: ['b', 'c'], sql: { b: 'a', x: 'a' } }, functions: { f: () => [] }, down: [] }),
    ).toThrow(/\/sql\/x: "x" is not one of the op's "to" columns[\s\S]*\/sql: no expression for "c"/);
  });
});
