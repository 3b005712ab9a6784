/**
 * The one rule, statically: an op without an SQL face cannot run on the live paths, so
 * `check` refuses it naming them; an op without a JS face is fine (offline paths run its
 * SQL face in PostgreSQL).
 */
import { describe, expect, it } from 'vitest';
import { pathProblems } from '../../../src/mapping/check.ts';
import { runOp } from './op-harness.ts';

const fns = { f: ([v]: (string | null)[]) => [v], g: ([v]: (string | null)[]) => [v] };

describe('pathProblems', () => {
  it('refuses a function op without an SQL face, at its JSON path, naming sync, verify and cutover', () => {
    const run = runOp({ source: ['a text'], target: ['b text'], op: { op: 'function', name: 'f', from: ['a'], to: ['b'], lossless: true }, down: [{ op: 'function', name: 'g', from: ['b'], to: ['a'], lossless: true }], functions: fns });
    const p = pathProblems(run.upMapping);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ file: 'up.json', path: '/tables/t/ops/0' });
    expect(p[0]!.message).toMatch(/sync, verify and cutover .* cannot run this mapping/);
    expect(p[0]!.hint).toMatch(/"sql": \{"<to column>"/);
  });

  it('accepts the same op with an SQL face, and SQL-only ops', () => {
    const withSql = runOp({
      source: ['a text'],
      target: ['b text'],
      op: { op: 'function', name: 'f', from: ['a'], to: ['b'], lossless: true, sql: { b: 'a' } },
      down: [{ op: 'sql', from: ['b'], to: 'a', expr: 'b' }],
      functions: fns,
    });
    expect(pathProblems(withSql.upMapping)).toEqual([]);
    expect(pathProblems(withSql.downMapping)).toEqual([]);
  });
});
