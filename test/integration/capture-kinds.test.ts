/**
 * Delete capture serves every kind of watermark: the trigger stamps a
 * delete with the server's clock whatever the watermark holds, so `timestamp` in a
 * declared zone, `date` and integer watermarks get their deletes from capture as
 * `timestamptz` ones do, and `reload: append` tables need none (insert-only). A table
 * capture cannot serve (here: one without a watermark, read whole on every run) is named
 * with its estimate by `capture enable` and by the cutover's guardrail, never `[ok]`.
 */
import { describe, expect, it } from 'vitest';
import { query, writeInZone } from '../helpers/pg.ts';
import { makePair, report, type Pair } from '../helpers/pair.ts';
import { twoVersions } from '../helpers/mappings.ts';

/** One table per kind; v2 renames `notes` (so the versions differ). */
const schema = (notes: string) => `
CREATE TABLE tickets (id bigint PRIMARY KEY, subject text, updated_at timestamp without time zone NOT NULL DEFAULT localtimestamp);
CREATE INDEX tickets_updated_at ON tickets (updated_at);
COMMENT ON COLUMN tickets.updated_at IS 'bluegreen:watermark zone=Europe/Berlin';
CREATE TABLE shifts (id bigint PRIMARY KEY, who text, day date NOT NULL DEFAULT current_date);
CREATE INDEX shifts_day ON shifts (day);
COMMENT ON COLUMN shifts.day IS 'bluegreen:watermark zone=Europe/Berlin';
CREATE TABLE events (id bigserial PRIMARY KEY, payload text);
COMMENT ON COLUMN events.id IS 'bluegreen:watermark';
CREATE TABLE orders (id bigint PRIMARY KEY, note text, changed_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX orders_changed_at ON orders (changed_at);
COMMENT ON COLUMN orders.changed_at IS 'bluegreen:watermark';
CREATE TABLE history (aid integer NOT NULL, delta integer NOT NULL, mtime timestamptz NOT NULL DEFAULT now());
CREATE INDEX history_mtime ON history (mtime);
CREATE TABLE ${notes} (id bigint PRIMARY KEY, body text);
`;

const mapping = (from: number, to: number, notesFrom: string, notesTo: string) => ({
  from,
  to,
  tables: {
    tickets: { from: 'tickets' },
    shifts: { from: 'shifts' },
    events: { from: 'events' },
    orders: { from: 'orders' },
    history: { from: 'history', reload: 'append', watermark: 'mtime' },
    [notesTo]: { from: notesFrom },
  },
});

async function pair(): Promise<Pair> {
  const dir = await twoVersions('capture-kinds', { v1: schema('notes'), v2: schema('memos'), up: mapping(1, 2, 'notes', 'memos'), down: mapping(2, 1, 'memos', 'notes') });
  return makePair(1, 2, dir);
}

/** The application: a session in Berlin, writing its local time. */
const app = (url: string, sql: string) => writeInZone(url, 'Europe/Berlin', sql);

const sync = async (p: Pair) => report(await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json']));
type TableLine = { table: string; deletes?: string; deleted: number };
const line = (r: { tables: TableLine[] }, t: string) => r.tables.find((x) => x.table === t)!;
type Guard = { name: string; ok: boolean; detail: string; warning?: boolean };
const captureGuard = (r: { guardrails: Guard[] }) => r.guardrails.find((g) => g.name === 'delete capture')!;

describe('delete capture for every kind of watermark', () => {
  it('timestamp in a zone, date and integer watermarks take their deletes from capture; append tables have none; a table it cannot serve is named', async () => {
    const p = await pair();
    await app(
      p.blue,
      `insert into tickets (id, subject) select g, 't' || g from generate_series(1, 200) g;
       insert into shifts (id, who) select g, 's' || g from generate_series(1, 200) g;
       insert into events (payload) select 'e' || g from generate_series(1, 200) g;
       insert into orders (id, note) select g, 'o' || g from generate_series(1, 200) g;
       insert into history (aid, delta) select g, 1 from generate_series(1, 200) g;
       insert into notes select g, 'n' || g from generate_series(1, 200) g;
       analyze`,
    );

    // Enabling says what capture will not cover: the append table needs no trigger, the
    // table without a watermark still compares key sets (named, with its estimate).
    const enable = await p.ok(['capture', 'enable', '--env', 'blue', '--json']);
    const en = report(enable);
    expect(en.appendOnly).toEqual(['history']);
    expect(en.tables).not.toContain('history');
    expect(en.tables).toEqual(expect.arrayContaining(['tickets', 'shifts', 'events', 'orders']));
    expect(en.deletes.warning).toBe(true);
    expect(en.deletes.detail).toMatch(/memos \(~200 rows, no watermark, read whole on every run\)/);
    expect(en.deletes.detail).toMatch(/capture cannot serve memos/);
    expect(en.deletes.detail).toMatch(/history \(append: insert-only, no key comparison\)/);
    expect(en.deletes.tables.tickets).toMatchObject({ path: 'capturable' });
    expect(en.deletes.tables.events).toMatchObject({ path: 'capturable' });
    const text = await p.ok(['capture', 'enable', '--env', 'blue']);
    expect(text.stdout).toMatch(/WARN deletes blue -> green: .*memos/);
    expect(text.stdout).not.toMatch(/^\s*ok /m);
    expect(await query(p.blue, `select count(*)::int as n from pg_trigger where tgname = 'bluegreen_capture' and tgrelid = 'history'::regclass`)).toEqual([{ n: 0 }]);

    expect((await sync(p)).mode).toBe('full');
    // An incremental run with nothing deleted: capture already serves every kind.
    const quiet = await sync(p);
    for (const t of ['tickets', 'shifts', 'events', 'orders']) expect(line(quiet, t)).toMatchObject({ deletes: 'captured', deleted: 0 });

    await app(
      p.blue,
      `delete from tickets where id = 5; delete from shifts where id = 6; delete from events where id = 7;
       delete from orders where id = 8; delete from notes where id = 9;
       update tickets set subject = 'changed', updated_at = localtimestamp where id = 10`,
    );
    const r = await sync(p);
    expect(r.mode).toBe('incremental');
    for (const t of ['tickets', 'shifts', 'events', 'orders']) expect(line(r, t), t).toMatchObject({ deletes: 'captured', deleted: 1 });
    expect(line(r, 'history')).toMatchObject({ deletes: 'none' });
    expect(line(r, 'memos')).toMatchObject({ deletes: 'reconciled', deleted: 1 });
    expect(r.check.clean).toBe(true);
    for (const [t, id] of [['tickets', 5], ['shifts', 6], ['events', 7], ['orders', 8], ['memos', 9]] as const) {
      expect(await query(p.green, `select id from ${t} where id = ${id}`), t).toEqual([]);
    }
    expect(await query(p.green, `select subject from tickets where id = 10`)).toEqual([{ subject: 'changed' }]);
    expect((await p.run(['verify'])).code).toBe(0);

    // The guardrail: capture serves the four kinds, the append table has no deletes, and the
    // table it cannot serve is a warning with its estimate, not [ok].
    const g = captureGuard(report(await p.ok(['plan', '--json'])));
    expect(g).toMatchObject({ ok: true, warning: true });
    expect(g.detail).toMatch(/the final sync would find deletes of memos \(~\d+ rows, no watermark/);
    expect(g.detail).toMatch(/~[\d,]+ rows by pg_class\.reltuples, about <?\d+ s/);
    expect(g.detail).toMatch(/from capture: .*tickets/);
    for (const t of ['shifts', 'events', 'orders']) expect(g.detail).toMatch(new RegExp(`from capture: .*${t}`));
    expect(g.detail).toMatch(/no deletes to find: history/);
  });

  it("a cutover takes every kind's deletes from capture while frozen", async () => {
    const p = await pair();
    await app(p.blue, `insert into tickets (id, subject) select g, 't' || g from generate_series(1, 50) g;
                       insert into shifts (id, who) select g, 's' || g from generate_series(1, 50) g;
                       insert into events (payload) select 'e' || g from generate_series(1, 50) g;
                       insert into orders (id, note) select g, 'o' || g from generate_series(1, 50) g;`);
    await p.ok(['capture', 'enable', '--env', 'blue']);
    await sync(p);
    await p.ok(['sync', '--from', 'blue', '--to', 'green', '--verify', 'full']);
    await app(p.blue, `delete from tickets where id = 1; delete from shifts where id = 2; delete from events where id = 3; delete from orders where id = 4`);
    const c = await p.run(['cutover', '--from', 'blue', '--to', 'green', '--json']);
    expect(c.code, c.stderr).toBe(0);
    const rep = report(c);
    expect(rep.frozenDeletes.captured).toEqual(expect.arrayContaining(['tickets', 'shifts', 'events', 'orders']));
    for (const t of ['tickets', 'shifts', 'events', 'orders']) expect(rep.frozenDeletes.reconciled).not.toContain(t);
    for (const [t, id] of [['tickets', 1], ['shifts', 2], ['events', 3], ['orders', 4]] as const) expect(await query(p.green, `select id from ${t} where id = ${id}`), t).toEqual([]);
  });
});
