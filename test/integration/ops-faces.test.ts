/**
 * Every scenario of the table-driven op runner (test/unit/mapping/op-cases.ts), run on
 * real PostgreSQL: where an op has both faces, its SQL face (the SELECT sync and verify
 * run) gives exactly the text its JS face (what convert and import run) gives, up and
 * down. Where it has only one, that one runs here.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/db/connect.ts';
import { textRows } from '../../src/convert/faces.ts';
import type { CompiledTable } from '../../src/mapping/compile.ts';
import { quoteIdent } from '../../src/mapping/sql.ts';
import type { Row } from '../../src/mapping/types.ts';
import { freshDatabase } from '../helpers/pg.ts';
import { cases } from '../unit/mapping/op-cases.ts';
import { runOp } from '../unit/mapping/op-harness.ts';

let client: pg.Client;
beforeAll(async () => {
  client = await connect(await freshDatabase('opfaces'));
  await client.query(`create type order_status as enum ('new', 'paid', 'shipped')`);
});
afterAll(async () => {
  await client?.end();
});

/** `t` in a fresh schema with `columns` (runner spellings are DDL), holding `rows` (id first). */
async function tableWith(schema: string, columns: string[], rows: Row[]): Promise<void> {
  await client.query(`create schema ${quoteIdent(schema)}`);
  await client.query(`set search_path = ${quoteIdent(schema)}, public`);
  await client.query(`create table t (id bigint primary key, ${columns.join(', ')})`);
  for (const r of rows) await client.query(`insert into t values (${r.map((_, i) => `$${i + 1}`).join(', ')})`, r);
}

async function sqlFace(t: CompiledTable): Promise<Row[]> {
  return textRows(client, `select * from (${t.selectSql(quoteIdent)}) q order by 1`);
}

describe('SQL face == JS face for every op of the runner', () => {
  cases.forEach((c, n) => {
    it(c.name, async () => {
      const run = runOp(c);
      const source: Row[] = c.rows.map(([src], i) => [String(i + 1), ...src]);
      await tableWith(`up_${n}`, c.source, source);
      if (run.up.sqlUnsupported.length === 0) {
        const sql = await sqlFace(run.up);
        if (run.up.jsUnsupported.length === 0) expect(sql, 'up').toEqual(source.map((r) => run.up.transformJs(r)));
        else expect(sql).toHaveLength(source.length);
      }
      if (run.up.jsUnsupported.length > 0) return;
      const target = source.map((r) => run.up.transformJs(r));
      // Down from the target rows (columns left to DEFAULT go in as NULL, as fullWidth has them).
      await tableWith(`down_${n}`, c.target, target);
      if (run.down.sqlUnsupported.length === 0 && run.down.jsUnsupported.length === 0) {
        expect(await sqlFace(run.down), 'down').toEqual(target.map((r) => run.down.transformJs(r)));
      }
    });
  });
});
