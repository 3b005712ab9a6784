/**
 * Every bluegreen write into a frozen side renews the freeze seal in its own transaction.
 * `sync --repair --from green --to blue` after a cutover blue -> green did not: it disables
 * the tables' user triggers (the freeze trigger's catalog row changes) and writes rows, so
 * the seal looked walked through, status said FREEZE BROKEN and the rollback cutover
 * failed with "freeze trigger altered … rows written after the freeze". Here each command
 * that writes into a frozen side does so, then status stays clean and the rollback works.
 * Nor did the repair refuse what sync refuses: from the frozen side it put old rows back
 * over the serving side's newer writes.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { query } from '../helpers/pg.ts';
import { makePair, report, type Pair } from '../helpers/pair.ts';
import { tempDir } from '../helpers/tmp.ts';

const text = ['--log-format', 'text'];

/** A pair cut over blue -> green (after `before`), the application then writing on green. */
async function cutOver(before?: (p: Pair) => Promise<void>): Promise<Pair> {
  const p = await makePair(1, 2);
  await p.ok(['seed', '--to', 'blue', '--rows', '50']);
  await p.ok(['sync']);
  await before?.(p);
  const c = await p.run(['cutover', ...text]);
  expect(c.code, c.stderr).toBe(0);
  await query(p.green, `update users set first_name = 'Written', last_name = 'On Green' where id in (3, 4)`);
  await query(p.green, `insert into users (login, first_name, last_name) values ('green-only', 'Grace', 'Hopper')`);
  return p;
}

/** Blue (still frozen) shows no broken freeze, and the rollback cutover green -> blue succeeds. */
async function rollbackWorks(p: Pair): Promise<void> {
  const st = await p.run(['status', '--env', 'blue', ...text]);
  expect(st.stdout).toContain('FROZEN since');
  expect(st.stdout).not.toContain('FREEZE BROKEN');
  const back = await p.run(['cutover', '--from', 'green', '--to', 'blue', '--json']);
  expect(back.code, back.stderr).toBe(0);
  expect(report(back).ok).toBe(true);
  expect(await query(p.blue, `select full_name from users where username = 'green-only'`)).toEqual([{ full_name: 'Grace Hopper' }]);
  const after = await p.run(['status', '--env', 'blue', 'green', ...text]);
  expect(after.stdout).not.toContain('FREEZE BROKEN');
}

describe('a bluegreen write into a frozen side renews the seal', () => {
  it('sync --repair --from green --to blue', async () => {
    const p = await cutOver();
    // The verify records the keys green changed; the repair re-copies exactly those into blue.
    expect((await p.run(['verify', '--from', 'green', '--to', 'blue'])).code).toBe(3);
    const r = await p.run(['sync', '--repair', '--from', 'green', '--to', 'blue', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(report(r).tables.find((t: { table: string }) => t.table === 'users')).toMatchObject({ inserted: 1, updated: 2 });
    expect(await query(p.blue, `select full_name from users where id = 3`)).toEqual([{ full_name: 'Written On Green' }]);
    await rollbackWorks(p);
  });

  it('sync --repair refuses what sync refuses: from the frozen blue into the serving green', async () => {
    const p = await cutOver();
    // blue still holds the old rows: a verify blue -> green names green's newer writes…
    expect((await p.run(['verify', '--from', 'blue', '--to', 'green'])).code).toBe(3);
    // …and a repair that way would put blue's old rows back over them.
    const r = await p.run(['sync', '--repair', '--from', 'blue', '--to', 'green', ...text]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/blue is frozen since .*data now flows green -> blue/);
    expect(await query(p.green, `select first_name, last_name from users where id = 3`)).toEqual([{ first_name: 'Written', last_name: 'On Green' }]);
    expect(await query(p.green, `select count(*)::int as n from users where login = 'green-only'`)).toEqual([{ n: 1 }]);
  });

  it('sync --from green --to blue', async () => {
    const p = await cutOver();
    await p.ok(['sync', '--from', 'green', '--to', 'blue']);
    await rollbackWorks(p);
  });

  it('import --to blue of an incremental dump', async () => {
    // A dump of blue taken before the cutover, whose row 3 blue changed again since: the
    // import writes that row into the frozen blue (a real write, not a no-op upsert).
    const dir = await tempDir('seal-dump');
    const inc = path.join(dir, 'inc');
    const p = await cutOver(async (p) => {
      const full = report(await p.ok(['export', '--from', 'blue', '--out', path.join(dir, 'full'), '--json']));
      await query(p.blue, `update users set full_name = 'From The Dump' where id = 3`);
      await p.ok(['export', '--from', 'blue', '--out', inc, '--since', full.nextSince]);
      await query(p.blue, `update users set full_name = 'Later On Blue' where id = 3`);
      await p.ok(['sync']);
    });
    const r = await p.run(['import', '--to', 'blue', '--in', inc, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(report(r).tables.find((t: { table: string }) => t.table === 'users')).toMatchObject({ updated: 1 });
    expect(await query(p.blue, `select full_name from users where id = 3`)).toEqual([{ full_name: 'From The Dump' }]);
    await rollbackWorks(p);
  });

  it('capture enable --env blue', async () => {
    const p = await cutOver();
    await p.ok(['capture', 'enable', '--env', 'blue']);
    await rollbackWorks(p);
  });
});
