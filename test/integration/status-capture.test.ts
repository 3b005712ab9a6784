/**
 * `status` shows a source's delete capture: the tables recording, the backlog of
 * `bluegreen.deleted_rows` and its oldest row, and how much of it every target consumed
 * (what `capture prune` may forget), in text and in `--json` (matching its schema); the
 * counts stay bounded on a backlog nobody prunes.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.ts';
import { makePair, report, type Pair } from '../helpers/pair.ts';
import { query } from '../helpers/pg.ts';
import { CAPTURE_COUNT_LIMIT } from '../../src/status.ts';

const addFormats = createRequire(import.meta.url)('ajv-formats') as (ajv: Ajv) => Ajv;

async function statusSchema() {
  const s = JSON.parse(await readFile(path.join(ROOT, 'src/schemas/reports/status.schema.json'), 'utf8'));
  delete s.$schema;
  delete s.$id;
  return addFormats(new Ajv({ allErrors: true, strict: false })).compile(s);
}

/** `status --json` for blue and green, validated against the report's schema. */
async function status(p: Pair) {
  const r = report(await p.ok(['status', '--env', 'blue', 'green', '--json']));
  const valid = await statusSchema();
  expect(valid(r), JSON.stringify(valid.errors)).toBe(true);
  return { blue: r.environments.find((e: { name: string }) => e.name === 'blue'), pair: r.pairs.find((x: { from: string }) => x.from === 'blue') };
}

const deleteUsers = (url: string, ids: number[]) =>
  query(url, `delete from user_roles where user_id = any($1); delete from user_settings where user_id = any($1); delete from users where id = any($1)`.replace(/\$1/g, `'{${ids.join(',')}}'::bigint[]`));

describe('status: delete capture backlog', () => {
  it('shows the capturing tables, the recorded deletes, and what the target consumed and prune may forget', async () => {
    const p = await makePair(1, 1);
    await p.ok(['seed', '--to', 'blue', '--rows', '100']);
    // Not enabled: nothing said about capture, and the pair says so with null.
    let s = await status(p);
    expect(s.blue.capture).toBeUndefined();
    await p.ok(['capture', 'enable', '--env', 'blue']);
    await p.ok(['sync', '--from', 'blue', '--to', 'green']);
    s = await status(p);
    expect(s.blue.capture).toMatchObject({ rows: 0, oldest: null, prunable: 0, atLeast: false, disarmed: [] });
    expect(s.blue.capture.tables).toEqual(expect.arrayContaining(['users', 'user_settings']));

    await deleteUsers(p.blue, [10, 11, 12]);
    const recorded = (await query<{ n: number }>(p.blue, `select count(*)::int as n from bluegreen.deleted_rows`))[0]!.n;
    expect(recorded).toBeGreaterThanOrEqual(3);
    // Recorded after green's watermarks: the next sync still needs them.
    s = await status(p);
    expect(s.blue.capture).toMatchObject({ rows: recorded, prunable: 0 });
    expect(s.blue.capture.oldest).not.toBeNull();
    expect(s.blue.capture.consumers).toEqual([expect.objectContaining({ target: 'green', prunable: 0 })]);
    expect(s.pair.capture).toMatchObject({ rows: recorded, prunable: 0 });

    // Once green consumed them, they are prunable, and the bound status names prunes exactly them.
    await p.ok(['sync', '--from', 'blue', '--to', 'green']);
    s = await status(p);
    expect(s.blue.capture).toMatchObject({ rows: recorded, prunable: recorded });
    expect(s.pair.capture).toMatchObject({ prunable: recorded });
    expect(Date.parse(s.blue.capture.pruneBefore)).toBeGreaterThan(Date.parse(s.blue.capture.oldest));
    const text = (await p.ok(['status', '--env', 'blue', 'green', '--log-format', 'text'])).stdout;
    expect(text).toMatch(new RegExp(`delete capture on .*users.*: ${recorded} recorded deletes, oldest`));
    expect(text).toMatch(/prunable: \d+ \(bluegreen capture prune --env blue --before '[^']+'\)/);
    // The bound as PostgreSQL printed it (status --json turns it into ISO-8601, same instant).
    const bound = /--before '([^']+)'/.exec(text)![1]!;
    await deleteUsers(p.blue, [20]); // newer than the bound: must survive the prune
    const pruned = report(await p.ok(['capture', 'prune', '--env', 'blue', '--before', bound, '--json']));
    expect(pruned.pruned).toBe(recorded);
    s = await status(p);
    expect(s.blue.capture.rows).toBeGreaterThan(0);
    expect(s.blue.capture.prunable).toBe(0);
  });

  it('counts a large backlog only up to a bound, and says it is a lower bound', async () => {
    const p = await makePair(1, 1);
    await p.ok(['capture', 'enable', '--env', 'blue']);
    await query(p.blue, `insert into bluegreen.deleted_rows (table_name, old) select 'users', '{}'::jsonb from generate_series(1, $1::int)`, [CAPTURE_COUNT_LIMIT + 5]);
    const s = await status(p);
    expect(s.blue.capture).toMatchObject({ rows: CAPTURE_COUNT_LIMIT, atLeast: true });
    expect((await p.ok(['status', '--env', 'blue', '--log-format', 'text'])).stdout).toMatch(new RegExp(`>=${CAPTURE_COUNT_LIMIT} recorded deletes`));
  });
});
