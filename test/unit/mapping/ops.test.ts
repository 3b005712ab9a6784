/**
 * The runner: every column op, forward (expected rows) and back (down(up(row)) equals the
 * row, or the declared lossy result), through the whole engine, plus its SQL face.
 */
import { describe, expect, it } from 'vitest';
import { runOp } from './op-harness.ts';
import { cases } from './op-cases.ts';

describe('every op, forward and back', () => {
  for (const c of cases) {
    it(c.name, () => {
      const run = runOp(c);
      if (c.sqlOnlyUp) {
        expect(run.up.jsUnsupported).not.toEqual([]);
        expect(run.up.selectSql((t) => `"public"."${t}"`)).toContain(c.sql!);
        return;
      }
      c.rows.forEach(([src, expected]) => expect(run.forward(src)).toEqual(expected));
      if (c.sqlOnlyJs) expect(run.up.sqlUnsupported).not.toEqual([]);
      else {
        const sql = run.up.selectSql((t) => `"public"."${t}"`);
        expect(sql).toMatch(/^SELECT .* FROM "public"\."t" AS "s0"$/s);
        if (c.sql) expect(sql).toContain(c.sql);
      }
      if (c.downSqlOnly) {
        expect(() => run.roundTrip(c.rows[0]![0])).toThrow(/cannot be converted offline/);
        return;
      }
      c.rows.forEach(([src], i) => expect(run.roundTrip(src)).toEqual(c.back?.[i] ?? src));
    });
  }
});
