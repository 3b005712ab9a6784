/**
 * merge with a renamed key: the inverse of a split that renamed its key
 * (`tickets.id` -> `ticket_bodies.ticket_id`). The later table joins on its own primary
 * key when a foreign key from it references the first table's key, paired through that
 * foreign key; the round trip split -> merge and merge -> split comes back. A primary key
 * that merely has the right width and type is refused.
 */
import { describe, expect, it } from 'vitest';
import { compileStep } from '../../../../src/mapping/compile.ts';
import { applyStep } from '../../../../src/mapping/check.ts';
import { parseMapping } from '../../../../src/mapping/load.ts';
import { ValidationError } from '../../../../src/errors.ts';
import { catalog, table } from '../catalog-helper.ts';

// v1: two tables, the body's key renamed; v2: one table.
const toTickets = { columns: ['ticket_id'], refTable: 'tickets', refColumns: ['id'] };
const v1 = catalog(table('tickets', ['id bigint pk', 'title text']), table('ticket_bodies', ['ticket_id bigint pk', 'body text'], { fk: [toTickets] }));
const merge = (v1Catalog: ReturnType<typeof catalog>) => () =>
  parseMapping({ from: 1, to: 2, tables: { tickets: { from: { merge: ['tickets', 'ticket_bodies'] } } }, loses: [] } as never, { file: 'up.json', sourceVersion: 1, targetVersion: 2, catalogs: { 1: v1Catalog, 2: v2 } });
const v2 = catalog(table('tickets', ['id bigint pk', 'title text', 'body text']));
const catalogs = { 1: v1, 2: v2 };

const up = (from: unknown = { merge: ['tickets', 'ticket_bodies'] }) =>
  parseMapping({ from: 1, to: 2, tables: { tickets: { from } }, loses: [] } as never, { file: 'up.json', sourceVersion: 1, targetVersion: 2, catalogs });
const down = () =>
  parseMapping(
    {
      from: 2,
      to: 1,
      tables: {
        tickets: { from: 'tickets', ops: [] },
        ticket_bodies: { from: 'tickets', ops: [{ op: 'rename', from: 'id', to: 'ticket_id' }] },
      },
      loses: [],
    } as never,
    { file: 'down.json', sourceVersion: 2, targetVersion: 1, catalogs },
  );

describe('merge of a table whose key its split renamed', () => {
  it('joins the later table on its own primary key, on both faces', () => {
    const t = compileStep(up(), { fullWidth: true }).tables.tickets!;
    expect(t.sources.map((s) => [s.table, s.key])).toEqual([
      ['tickets', ['id']],
      ['ticket_bodies', ['ticket_id']],
    ]);
    expect(t.selectSql((n) => n)).toMatch(/LEFT JOIN ticket_bodies AS "s1" ON "s0"\."id" = "s1"\."ticket_id"/);
    const out = applyStep({ tables: { tickets: t } }, { tickets: [['1', 'a'], ['2', 'b']], ticket_bodies: [['2', 'body of 2'], ['9', 'orphan']] });
    expect(out.tickets).toEqual([
      ['1', 'a', null],
      ['2', 'b', 'body of 2'],
    ]);
  });

  it('round-trips: v1 -> v2 -> v1 and v2 -> v1 -> v2 come back exactly', () => {
    const u = compileStep(up(), { fullWidth: true });
    const d = compileStep(down(), { fullWidth: true });
    const v1Rows = { tickets: [['1', 'a'], ['2', 'b'], ['3', null]], ticket_bodies: [['1', 'x'], ['3', '']] };
    const v2Rows = applyStep(u, v1Rows);
    const back = applyStep(d, v2Rows);
    expect(back.tickets).toEqual(v1Rows.tickets);
    // A ticket without a body comes back with a NULL body row: the split's own loss rule.
    expect(back.ticket_bodies!.filter((r) => r[1] !== null)).toEqual(v1Rows.ticket_bodies);
    expect(applyStep(u, applyStep(d, v2Rows))).toEqual(v2Rows);
  });

  it('still refuses a later table whose key pairs with nothing, naming it', () => {
    const bad = catalog(table('tickets', ['id bigint pk', 'title text']), table('ticket_bodies', ['a bigint', 'body text'], { pk: [] }));
    const e = (() => {
      try {
        parseMapping({ from: 1, to: 2, tables: { tickets: { from: { merge: ['tickets', 'ticket_bodies'] } } }, loses: [] } as never, { file: 'up.json', sourceVersion: 1, targetVersion: 2, catalogs: { 1: bad, 2: v2 } });
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(ValidationError);
    expect(String((e as Error).message)).toMatch(/merged table ticket_bodies has no key column "id" to join tickets on/);
  });

  it('refuses a primary key of the right width and type that is not declared to refer to the first table (it would join on the wrong column)', () => {
    // body_id is the body's own number; ticket_id is what refers to tickets.
    const own = catalog(
      table('tickets', ['id bigint pk', 'title text']),
      table('ticket_bodies', ['body_id bigint pk', 'ticket_id bigint not null unique', 'body text'], { fk: [toTickets] }),
    );
    expect(merge(own)).toThrow(/up\.json.*merged table ticket_bodies has no key column "id" to join tickets on, and its primary key \(body_id\) is not declared to refer to tickets \(id\)/s);
    // Without any foreign key, the same.
    const bare = catalog(table('tickets', ['id bigint pk', 'title text']), table('ticket_bodies', ['ticket_id bigint pk', 'body text']));
    expect(merge(bare)).toThrow(/primary key \(ticket_id\) is not declared to refer to tickets/);
    // A foreign key from the primary key to another table is no reference to the first.
    const elsewhere = catalog(
      table('tickets', ['id bigint pk', 'title text']),
      table('ticket_bodies', ['ticket_id bigint pk', 'body text'], { fk: [{ columns: ['ticket_id'], refTable: 'bodies_archive', refColumns: ['id'] }] }),
    );
    expect(merge(elsewhere)).toThrow(/is not declared to refer to tickets/);
  });

  it('pairs a composite key through the foreign key, whatever the primary key order', () => {
    const v1c = catalog(
      table('tickets', ['tenant bigint', 'id bigint', 'title text'], { pk: ['tenant', 'id'] }),
      table('ticket_bodies', ['t_id bigint', 't_tenant bigint', 'body text'], { pk: ['t_id', 't_tenant'], fk: [{ columns: ['t_tenant', 't_id'], refTable: 'tickets', refColumns: ['tenant', 'id'] }] }),
    );
    const v2c = catalog(table('tickets', ['tenant bigint', 'id bigint', 'title text', 'body text'], { pk: ['tenant', 'id'] }));
    const m = parseMapping({ from: 1, to: 2, tables: { tickets: { from: { merge: ['tickets', 'ticket_bodies'] } } }, loses: [] } as never, { file: 'up.json', sourceVersion: 1, targetVersion: 2, catalogs: { 1: v1c, 2: v2c } });
    expect(compileStep(m, { fullWidth: true }).tables.tickets!.selectSql((n) => n)).toMatch(/ON "s0"\."tenant" = "s1"\."t_tenant" AND "s0"\."id" = "s1"\."t_id"/);
  });

  it('refuses a renamed key of another type', () => {
    const other = catalog(table('tickets', ['id bigint pk', 'title text']), table('ticket_bodies', ['ticket_id text pk', 'body text'], { fk: [toTickets] }));
    expect(() => parseMapping({ from: 1, to: 2, tables: { tickets: { from: { merge: ['tickets', 'ticket_bodies'] } } }, loses: [] } as never, { file: 'up.json', sourceVersion: 1, targetVersion: 2, catalogs: { 1: other, 2: v2 } })).toThrow(
      /key column "id" is bigint in tickets but "ticket_id" is text in ticket_bodies/,
    );
  });
});
