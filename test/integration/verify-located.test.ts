/**
 * verify meets a row the mapping cannot convert: an enum value the way down does
 * not map. It stops with the same located error sync gives (table, column, key, value, the
 * op's file and JSON path), exit 2, instead of the database's bare message.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { query } from '../helpers/pg.ts';
import { makePair } from '../helpers/pair.ts';
import { tempDir } from '../helpers/tmp.ts';

const v1 = `
CREATE TYPE ticket_status AS ENUM ('open', 'closed');
CREATE TABLE tickets (id bigint PRIMARY KEY, status ticket_status NOT NULL, title text);
`;
const v2 = `
CREATE TYPE ticket_state AS ENUM ('new', 'on_hold', 'done');
CREATE TABLE tickets (id bigint PRIMARY KEY, state ticket_state NOT NULL, title text);
`;

async function mappings(): Promise<string> {
  const dir = await tempDir('verify-located');
  await mkdir(path.join(dir, 'v1'));
  await mkdir(path.join(dir, 'v2'));
  await writeFile(path.join(dir, 'v1', 'schema.sql'), v1);
  await writeFile(path.join(dir, 'v2', 'schema.sql'), v2);
  const table = (from: string, to: string, values: [string, string][]) => ({ tickets: { from: 'tickets', ops: [{ op: 'map', from, to, values }] } });
  await writeFile(path.join(dir, 'v2', 'up.json'), JSON.stringify({ from: 1, to: 2, tables: table('status', 'state', [['open', 'new'], ['closed', 'done']]), loses: [] }, null, 2));
  // on_hold has no way down: a v2 row holding it cannot be carried to v1.
  await writeFile(path.join(dir, 'v2', 'down.json'), JSON.stringify({ from: 2, to: 1, tables: table('state', 'status', [['new', 'open'], ['done', 'closed']]), loses: [] }, null, 2));
  return dir;
}

describe('verify of a row the mapping cannot convert', () => {
  it('names table, column, key, value and the op, exit 2, like sync', async () => {
    const p = await makePair(2, 1, await mappings());
    await query(p.blue, `insert into tickets (id, state, title) select g, case when g % 2 = 0 then 'new' else 'done' end::ticket_state, 't' || g from generate_series(1, 40) g`);
    await p.ok(['sync', '--from', 'blue', '--to', 'green', '--json']);
    await query(p.blue, `update tickets set state = 'on_hold' where id = 17`);
    const sync = await p.run(['sync', '--from', 'blue', '--to', 'green']);
    const v = await p.run(['verify', '--from', 'blue', '--to', 'green']);
    const located = /table tickets, column status, key id=17: .*on_hold.*not in the value map/;
    expect(sync.code, sync.stderr).toBe(2);
    expect(sync.stderr).toMatch(located);
    expect(v.code, v.stderr).toBe(sync.code);
    expect(v.stderr).toMatch(located);
    expect(v.stderr).toMatch(/down\.json at \/tables\/tickets\/ops\/0/);
    expect(v.stderr).not.toMatch(/invalid input syntax for type boolean|this is a bug/);
    // --json carries the same error.
    const j = await p.run(['verify', '--from', 'blue', '--to', 'green', '--json']);
    expect(j.code).toBe(2);
    expect(j.stdout + j.stderr).toMatch(located);
  });
});
