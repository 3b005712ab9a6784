/**
 * merge with a renamed key on real databases: v1 keeps ticket bodies in their
 * own table keyed `ticket_id`, v2 merges them into tickets. check round-trips fixtures
 * through both faces; sync carries v1 -> v2 and verify is clean.
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

async function mappings(): Promise<string> {
  const dir = await tempDir('merge-renamed');
  await mkdir(path.join(dir, 'v1'));
  await mkdir(path.join(dir, 'v2'));
  await writeFile(path.join(dir, 'v1', 'schema.sql'), v1);
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
  it('check passes both faces; sync v1 -> v2 joins on the renamed key and verifies clean', async () => {
    const dir = await mappings();
    const c = await runCli(['--mappings', dir, 'check', '--catalog-url', catalogUrl, '--catalog-cache', await tempDir('cache'), '--json']);
    expect(c.code, c.stdout + c.stderr).toBe(0);
    const p = await makePair(1, 2, dir);
    await query(p.blue, `insert into tickets (id, title) select g, 't' || g from generate_series(1, 30) g`);
    await query(p.blue, `insert into ticket_bodies (ticket_id, body) select g, 'b' || g from generate_series(1, 30, 2) g`);
    const r = report(await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json']));
    expect(r.verify?.clean ?? true).toBe(true);
    expect(await query(p.green, `select id::int, body from tickets where id in (1, 2) order by id`)).toEqual([{ id: 1, body: 'b1' }, { id: 2, body: null }]);
    await query(p.blue, `update ticket_bodies set body = 'changed', updated_at = now() where ticket_id = 3`);
    await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json']);
    expect(await query(p.green, `select body from tickets where id = 3`)).toEqual([{ body: 'changed' }]);
    const v = await p.run(['verify', '--from', 'blue', '--to', 'green', '--json']);
    expect(v.code, v.stderr).toBe(0);
  });
});
