/**
 * Tables new in a version: `{"new": "empty"}` and `{"query": ..., "key": [...]}` entries,
 * compiled and composed over a chain without a database. Refusals are fixtures in
 * test/fixtures/mappings/invalid/ (new-table-*, query-*).
 */
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../src/errors.ts';
import { parseMapping } from '../../../src/mapping/load.ts';
import { compileStep } from '../../../src/mapping/compile.ts';
import { composeMappings } from '../../../src/mapping/chain.ts';
import { applyStep } from '../../../src/mapping/check.ts';
import { UnsupportedFaceError } from '../../../src/mapping/errors.ts';
import { querySelect, tablesReadBy } from '../../../src/mapping/query.ts';
import { draftMapping } from '../../../src/mapping/scaffold.ts';
import { catalog, table } from './catalog-helper.ts';

const TS = 'timestamp with time zone';
const tickets = table('tickets', ['id bigint pk identity', 'title text not null', 'priority text not null', `updated_at ${TS} not null default`]);
const sla = table('sla_policies', ['priority text pk', 'response interval not null', 'open_tickets bigint not null']);
const notes = table('ticket_notes', ['id bigint pk identity', 'ticket_id bigint not null', 'body text not null']);
const catalogs = { 1: catalog(tickets), 2: catalog(tickets, sla, notes), 3: catalog(tickets, sla, notes) };
const QUERY = `select priority, interval '4 hours' as response, count(*) as open_tickets from tickets group by priority;`;

const up2 = () =>
  parseMapping(
    { from: 1, to: 2, tables: { sla_policies: { query: QUERY, key: ['priority'] }, ticket_notes: { new: 'empty' } } },
    { file: 'v2/up.json', sourceVersion: 1, targetVersion: 2, catalogs },
  );
const up3 = (tables: Record<string, unknown> = {}, loses: unknown[] = []) => parseMapping({ from: 2, to: 3, tables, loses }, { file: 'v3/up.json', sourceVersion: 2, targetVersion: 3, catalogs });

describe('tablesReadBy', () => {
  const names = ['tickets', 'Odd Name', 'users', 'notes'];
  it('finds table names outside literals, comments and dollar quotes; quoted names keep their case', () => {
    expect(tablesReadBy(`select * from Tickets t join "Odd Name" o using (id)`, names)).toEqual(['tickets', 'Odd Name']);
    expect(tablesReadBy(`select 'users' as x, $$notes$$, $t$users$t$ -- users\n/* notes /* nested */ users */ from tickets`, names)).toEqual(['tickets']);
    expect(tablesReadBy(`select E'it\\'s users', 'it''s notes' from "tickets"`, names)).toEqual(['tickets']);
    expect(tablesReadBy(`select 1`, names)).toEqual([]);
  });
});

describe('query and empty tables', () => {
  it('compiles a query table into a full reload over the tables it reads, with no JS face', () => {
    const step = compileStep(up2());
    const t = step.tables.sla_policies!;
    expect(t).toMatchObject({ reload: 'full', key: ['priority'], columns: ['priority', 'response', 'open_tickets'], query: 'v2/up.json at /tables/sla_policies/query' });
    expect(t.sources.map((s) => [s.table, s.watermark])).toEqual([['tickets', null]]);
    expect(t.selectSql((x) => `"${x}"`)).toBe(querySelect(QUERY.slice(0, -1), ['tickets'], t.columns, (x) => `"${x}"`));
    expect(t.selectSql((x) => `"${x}"`)).toMatch(/^WITH "bg_q0" AS \(SELECT \* FROM "tickets" AS bg_rel\), "tickets" AS \(SELECT \* FROM "bg_q0"\) SELECT/);
    expect(() => t.transformJs([])).toThrow(UnsupportedFaceError);
    expect(t.expressions[0]).toMatchObject({ path: '/tables/sla_policies/query', query: { outputs: ['priority', 'response', 'open_tickets'] } });
    expect(step.empty).toEqual({ ticket_notes: 'new in v2, starts empty' });
    expect(step.tables.ticket_notes).toBeUndefined();
    // The JS runner of `check` leaves a query table to the server.
    expect(Object.keys(applyStep(step, { tickets: [['1', 'a', 'low', '2025-01-01 00:00:00+00']] }))).toEqual(['tickets']);
  });

  it('a query carries nothing: tickets is still carried by its own table, so nothing is lost', () => {
    expect(up2().analysis.lost).toEqual([]);
  });

  it('composes over a chain: the derived table stays derived, the empty one stays not carried', () => {
    const tables = composeMappings([up2(), up3()]);
    expect(tables.sla_policies).toMatchObject({ reload: 'full', query: 'v2/up.json at /tables/sla_policies/query', fromVersion: 1, toVersion: 3 });
    expect(tables.sla_policies!.selectSql((x) => `"${x}"`)).toMatch(/ FROM \(WITH "bg_q0" AS .*\) AS "s0"$/s);
    expect(tables.ticket_notes).toBeUndefined();
  });

  it('refuses to compose a later step that queries a table no earlier version carries', () => {
    const later = up3({ sla_policies: { query: `select 'x' as priority, interval '1 hour' as response, count(*) as open_tickets from ticket_notes`, key: ['priority'] } }, [
      { table: 'sla_policies', why: 'recomputed from notes' },
    ]);
    expect(() => composeMappings([up2(), later])).toThrow(InvalidInputError);
    expect(() => composeMappings([up2(), later])).toThrow(/reads ticket_notes, which no earlier version carries \(new in v2, starts empty\)/);
  });

  it('new-version drafts a table no source table matches as starting empty, and asks', () => {
    const d = draftMapping(catalogs[1], catalogs[2], 1, 2);
    expect(d.mapping.tables!.sla_policies).toEqual({ new: 'empty' });
    expect(d.mapping._todo!.join('\n')).toMatch(/table sla_policies is new in v2: does it start empty .* "key": \["priority"\]/);
    const down = draftMapping(catalogs[2], catalogs[1], 2, 1);
    expect(down.mapping.loses!.map((l) => l.table).sort()).toEqual(['sla_policies', 'ticket_notes']);
  });
});
