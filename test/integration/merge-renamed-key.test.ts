/**
 * merge with a renamed key on real databases: v1 keeps ticket bodies in their
 * own table keyed `ticket_id` (a foreign key to tickets), v2 merges them into tickets.
 * check round-trips fixtures through both faces; sync carries v1 -> v2 (a changed and a
 * deleted body included) and verify is clean; after a cutover, green's writes sync back
 * through the split that renames the key. A primary key that has the right width and
 * type but does not refer to tickets is refused by check: joining on it would pair rows
 * wrongly, and verify, joining the same way, would not see it.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, query } from '../helpers/pg.ts';
import { runCli } from '../helpers/cli.ts';
import { makePair, report } from '../helpers/pair.ts';
import { tempDir } from '../helpers/tmp.ts';

const v1 = `
CREATE TABLE tickets (id bigint PRIMARY KEY, title text, updated_at timestamptz NOT NULL DEFAULT now());
COMMENT ON COLUMN tickets.updated_at IS 'bluegreen:watermark';
CREATE TABLE ticket_bodies (ticket_id bigint PRIMARY KEY REFERENCES tickets (id), body text, updated_at timestamptz NOT NULL DEFAULT now());
COMMENT ON COLUMN ticket_bodies.updated_at IS 'bluegreen:watermark';
`;
const v2 = `
CREATE TABLE tickets (id bigint PRIMARY KEY, title text, body text, updated_at timestamptz NOT NULL DEFAULT now());
COMMENT ON COLUMN tickets.updated_at IS 'bluegreen:watermark';
`;

async function mappings(v1Schema = v1): Promise<string> {
  const dir = await tempDir('merge-renamed');
  await mkdir(path.join(dir, 'v1'));
  await mkdir(path.join(dir, 'v2'));
  await writeFile(path.join(dir, 'v1', 'schema.sql'), v1Schema);
  await writeFile(path.join(dir, 'v2', 'schema.sql'), v2);
  await writeFile(
    path.join(dir, 'v2', 'up.json'),
    JSON.stringify({ from: 1, to: 2, tables: { tickets: { from: { merge: ['tickets', 'ticket_bodies'] } } }, loses: [{ table: 'ticket_bodies', column: 'updated_at', why: 'one timestamp per ticket in v2' }] }, null, 2),
  );
  await writeFile(
    path.join(dir, 'v2', 'down.json'),
    JSON.stringify(
      { from: 2, to: 1, tables: { tickets: { from: 'tickets' }, ticket_bodies: { from: 'tickets', ops: [{ op: 'rename', from: 'id', to: 'ticket_id' }] } }, loses: [] },
      null,
      2,
    ),
  );
  await mkdir(path.join(dir, 'fixtures', 'v1'), { recursive: true });
  await writeFile(path.join(dir, 'fixtures', 'v1', 'tickets.csv'), 'id,title,updated_at\n1,a,2025-01-01 00:00:00+00\n2,,2025-01-01 00:00:00+00\n');
  await writeFile(path.join(dir, 'fixtures', 'v1', 'ticket_bodies.csv'), 'ticket_id,body,updated_at\n1,"x, y",2025-01-01 00:00:00+00\n2,,2025-01-01 00:00:00+00\n');
  return dir;
}

let catalogUrl: string;
beforeAll(async () => {
  catalogUrl = await freshDatabase('catalogs');
});

describe('merge of a table whose key its split renamed', () => {
  it('check passes both faces; sync v1 -> v2 joins on the renamed key, clears a deleted body, and verifies clean', async () => {
    const dir = await mappings();
    const c = await runCli(['--mappings', dir, 'check', '--catalog-url', catalogUrl, '--catalog-cache', await tempDir('cache'), '--json']);
    expect(c.code, c.stdout + c.stderr).toBe(0);
    const p = await makePair(1, 2, dir);
    await query(p.blue, `insert into tickets (id, title) select g, 't' || g from generate_series(1, 30) g`);
    await query(p.blue, `insert into ticket_bodies (ticket_id, body) select g, 'b' || g from generate_series(1, 30, 2) g`);
    const r = report(await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json']));
    // The first run is full, so it verifies against its own snapshot.
    expect(r.mode).toBe('full');
    expect(r.verify).toMatchObject({ clean: true });
    expect(await query(p.green, `select id::int, body from tickets where id in (1, 2) order by id`)).toEqual([{ id: 1, body: 'b1' }, { id: 2, body: null }]);
    await query(p.blue, `update ticket_bodies set body = 'changed', updated_at = now() where ticket_id = 3`);
    await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json']);
    expect(await query(p.green, `select body from tickets where id = 3`)).toEqual([{ body: 'changed' }]);
    // A body deleted on blue: green's ticket stays, its merged column cleared.
    await query(p.blue, `delete from ticket_bodies where ticket_id = 5`);
    // No watermark moved and no ticket key went: a merge is read whole on every run, so
    // the run (its one table a merge) is full and verifies.
    const d = report(await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json']));
    expect(d.tables).toMatchObject([{ table: 'tickets', mode: 'full', updated: 1, deleted: 0 }]);
    expect(d.verify).toMatchObject({ clean: true });
    expect(await query(p.green, `select id::int, title, body from tickets where id in (5, 7) order by id`)).toEqual([
      { id: 5, title: 't5', body: null },
      { id: 7, title: 't7', body: 'b7' },
    ]);
    const v = await p.run(['verify', '--from', 'blue', '--to', 'green', '--json']);
    expect(v.code, v.stderr).toBe(0);
  });

  it('with delete capture on blue, a merge stays incremental: a deleted body reaches green through its captured key', async () => {
    const dir = await mappings();
    const p = await makePair(1, 2, dir);
    await query(p.blue, `insert into tickets (id, title) select g, 't' || g from generate_series(1, 30) g`);
    await query(p.blue, `insert into ticket_bodies (ticket_id, body) select g, 'b' || g from generate_series(1, 30, 2) g`);
    await p.ok(['capture', 'enable', '--env', 'blue']);
    await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json']);
    await query(p.blue, `delete from ticket_bodies where ticket_id = 5`);
    await query(p.blue, `update ticket_bodies set body = 'changed', updated_at = now() where ticket_id = 9`);
    const d = report(await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json']));
    // Only the two tickets whose bodies changed are read, not the table.
    expect(d.tables).toMatchObject([{ table: 'tickets', mode: 'incremental', read: 2, updated: 2, deleted: 0 }]);
    expect(d.check).toMatchObject({ clean: true });
    expect(await query(p.green, `select id::int, body from tickets where id in (5, 7, 9) order by id`)).toEqual([
      { id: 5, body: null },
      { id: 7, body: 'b7' },
      { id: 9, body: 'changed' },
    ]);
    const v = await p.run(['verify', '--from', 'blue', '--to', 'green', '--json']);
    expect(v.code, v.stderr).toBe(0);
  });

  it('after a cutover, green\'s writes sync back through the split that renames the key, and verify is clean', async () => {
    const dir = await mappings();
    const p = await makePair(1, 2, dir);
    // Every ticket has its body: the split back gives each ticket a body row (a NULL body
    // for one without), so only then is v1 -> v2 -> v1 exact.
    await query(p.blue, `insert into tickets (id, title) select g, 't' || g from generate_series(1, 20) g`);
    await query(p.blue, `insert into ticket_bodies (ticket_id, body) select g, 'b' || g from generate_series(1, 20) g`);
    await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json']);
    const up = await p.run(['cutover', '--from', 'blue', '--to', 'green', '--json']);
    expect(up.code, up.stderr).toBe(0);
    // Green's application writes in v2 terms.
    await query(p.green, `insert into tickets (id, title, body) values (100, 'on green', 'green body')`);
    await query(p.green, `update tickets set body = 'edited on green', updated_at = now() where id = 1`);
    await query(p.green, `update tickets set body = null, updated_at = now() where id = 7`);
    const back = report(await p.ok(['sync', '--from', 'green', '--to', 'blue', '--json']));
    expect(back.mode).toBe('incremental');
    expect(back.tables).toMatchObject([
      { table: 'tickets', inserted: 1, updated: 2 },
      { table: 'ticket_bodies', inserted: 1, updated: 2 },
    ]);
    expect(back.check).toMatchObject({ clean: true });
    expect(await query(p.blue, `select ticket_id::int as id, body from ticket_bodies where ticket_id in (1, 2, 7, 100) order by 1`)).toEqual([
      { id: 1, body: 'edited on green' },
      { id: 2, body: 'b2' },
      { id: 7, body: null },
      { id: 100, body: 'green body' },
    ]);
    expect(await query(p.blue, `select title from tickets where id = 100`)).toEqual([{ title: 'on green' }]);
    const vb = await p.run(['verify', '--from', 'green', '--to', 'blue', '--json']);
    expect(vb.code, vb.stdout + vb.stderr).toBe(0);
    expect(report(vb)).toMatchObject({ clean: true });
  });

  it('check refuses a later table whose primary key does not refer to the first table, naming both and the fix', async () => {
    // body_id is the body's own number, ticket_id what refers to tickets: a join on the
    // primary key would put body 1 on ticket 1 whatever ticket it belongs to.
    const wrong = `
CREATE TABLE tickets (id bigint PRIMARY KEY, title text, updated_at timestamptz NOT NULL DEFAULT now());
COMMENT ON COLUMN tickets.updated_at IS 'bluegreen:watermark';
CREATE TABLE ticket_bodies (body_id bigint PRIMARY KEY, ticket_id bigint NOT NULL UNIQUE REFERENCES tickets (id), body text, updated_at timestamptz NOT NULL DEFAULT now());
COMMENT ON COLUMN ticket_bodies.updated_at IS 'bluegreen:watermark';
`;
    const dir = await mappings(wrong);
    const c = await runCli(['--mappings', dir, 'check', '--catalog-url', catalogUrl, '--catalog-cache', await tempDir('cache')]);
    expect(c.code, c.stdout + c.stderr).toBe(2);
    // Every problem is listed, one a line, before the failure.
    const line = c.stdout.split('\n').find((l) => l.includes('merged table ticket_bodies'));
    expect(line, c.stdout + c.stderr).toMatch(/v2\/up\.json at /);
    expect(line).toContain('/tables/tickets/from');
    expect(line).toContain('its primary key (body_id) is not declared to refer to tickets (id)');
    expect(line).toContain('FOREIGN KEY (body_id) REFERENCES tickets (id)');
  });
});
