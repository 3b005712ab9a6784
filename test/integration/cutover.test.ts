/**
 * cutover and rollback on real PostgreSQL, under live writes: every acknowledged write
 * reaches the target; a timed-out cutover leaves the source serving and unchanged; the
 * target's sequences never collide; a rollback after writes on green converges.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { query } from '../helpers/pg.ts';
import { makePair, report } from '../helpers/pair.ts';

/** An application writer on blue: inserts and updates until told to stop, counting acks. */
function writer(url: string, id: number) {
  const acked: string[] = [];
  const refused: string[] = [];
  let stop = false;
  const done = (async () => {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {});
    await c.connect();
    for (let i = 0; !stop; i++) {
      const login = `w${id}-${i}`;
      try {
        await c.query(`insert into users (username, full_name) values ($1, 'Writer ' || $1)`, [login]);
        acked.push(login);
        if (i % 5 === 0) await c.query(`update users set email = $1 where username = $2`, [`${login}@x`, login]);
      } catch (err) {
        refused.push(`${login}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await c.end();
  })();
  return { acked, refused, stop: async () => ((stop = true), await done) };
}

describe('cutover', () => {
  it('loses no acknowledged write from several concurrent writers, and leaves blue read-only', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '500']);
    await p.ok(['sync']);
    const writers = [1, 2, 3, 4].map((i) => writer(p.blue, i));
    await new Promise((r) => setTimeout(r, 500));
    await p.ok(['sync']); // the "near-current" sync cron would run
    const r = await p.run(['cutover', '--from', 'blue', '--to', 'green', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = report(r);
    expect(rep.ok).toBe(true);
    expect(rep.sync.verify.clean).toBe(true);
    // Writers keep trying for a while after the cutover: all refused now.
    await new Promise((res) => setTimeout(res, 300));
    for (const w of writers) await w.stop();
    const acked = writers.flatMap((w) => w.acked);
    expect(acked.length).toBeGreaterThan(20);
    expect(writers.flatMap((w) => w.refused).some((m) => m.includes('frozen by a cutover'))).toBe(true);
    const onGreen = new Set((await query<{ login: string }>(p.green, `select login from users`)).map((x) => x.login));
    const lost = acked.filter((l) => !onGreen.has(l));
    expect(lost).toEqual([]);
    // Updates made before the freeze arrived too (converted to v2).
    const blueEmails = await query<{ username: string; email: string }>(p.blue, `select username, email from users where username like 'w%' and email is not null order by 1`);
    const greenEmails = await query<{ username: string; email: string }>(p.green, `select login as username, email from users where login like 'w%' and email is not null order by 1`);
    expect(greenEmails).toEqual(blueEmails);
    // Blue now refuses the application's writes.
    await expect(query(p.blue, `insert into users (username) values ('late')`)).rejects.toThrow(/frozen by a cutover/);
    // And a plain sync from the frozen side is refused with the right direction named.
    const back = await p.run(['sync', '--from', 'blue', '--to', 'green']);
    expect(back.code).toBe(2);
    expect(back.stderr).toContain('data now flows green -> blue');
  });

  it('an insert on green after cutover does not collide with imported keys', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '200']);
    await p.ok(['sync']);
    await p.ok(['cutover']);
    const [maxBlue] = await query<{ m: string }>(p.blue, `select max(id)::text as m from users`);
    const [row] = await query<{ id: string }>(p.green, `insert into users (login) values ('first-on-green') returning id::text`);
    expect(BigInt(row!.id)).toBeGreaterThan(BigInt(maxBlue!.m));
    const [role] = await query<{ id: string }>(p.green, `insert into roles (name) values ('green-role') returning id::text`);
    expect(Number(role!.id)).toBe(13);
  });

  it('refuses on guardrails and changes nothing when green was never synced', async () => {
    const p = await makePair(1, 2);
    await query(p.blue, `insert into users (username) values ('a')`);
    const r = await p.run(['cutover', '--json']);
    expect(r.code).toBe(1);
    const rep = report(r);
    expect(rep.guardrails.filter((g: { ok: boolean }) => !g.ok).map((g: { name: string }) => g.name)).toEqual(['lag', 'last verify']);
    await query(p.blue, `insert into users (username) values ('still writable')`);
    expect(await query(p.green, `select count(*)::int as n from users`)).toEqual([{ n: 0 }]);
  });

  it('a cutover that times out leaves blue writable and green unchanged', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '200']);
    await p.ok(['sync']);
    await query(p.blue, `update users set email = 'changed before cutover' where id = 3`);
    const before = await query(p.green, `select t::text from users t order by id`);
    // Something on green holds a table: the final sync cannot take its locks in time.
    const blocker = new pg.Client({ connectionString: p.green });
    await blocker.connect();
    await blocker.query('begin');
    await blocker.query('lock table user_settings in access exclusive mode');
    const t0 = Date.now();
    const r = await p.run(['cutover', '--timeout', '3', '--json']);
    expect(Date.now() - t0).toBeLessThan(30_000);
    await blocker.query('rollback');
    await blocker.end();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unfrozen and serving/);
    await query(p.blue, `insert into users (username) values ('writable again')`);
    expect(await query(p.blue, `select count(*)::int as n from pg_trigger where tgname = 'bluegreen_freeze'`)).toEqual([{ n: 0 }]);
    expect(await query(p.green, `select t::text from users t order by id`)).toEqual(before);
  });

  it('rolls back: writes on green flow to blue at v1, then cutover green -> blue, verify clean', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '300']);
    await p.ok(['sync']);
    await p.ok(['cutover']);
    // The application now writes on green, in v2 terms.
    await query(p.green, `insert into users (login, first_name, last_name) values ('green-user', 'Grace', 'Hopper')`);
    await query(p.green, `update users set first_name = 'Renamed', last_name = 'On Green' where id = 5`);
    await query(p.green, `delete from user_settings where user_id = 6`);
    await query(p.green, `update user_settings set status = 'disabled' where user_id = 7`);
    await p.ok(['sync', '--from', 'green', '--to', 'blue']);
    const cut = report(await p.ok(['cutover', '--from', 'green', '--to', 'blue', '--json']));
    expect(cut.ok).toBe(true);
    expect(cut.sync.verify.clean).toBe(true);
    expect(await query(p.blue, `select full_name from users where username = 'green-user'`)).toEqual([{ full_name: 'Grace Hopper' }]);
    expect(await query(p.blue, `select full_name from users where id = 5`)).toEqual([{ full_name: 'Renamed On Green' }]);
    expect(await query(p.blue, `select count(*)::int as n from user_settings where user_id = 6`)).toEqual([{ n: 0 }]);
    expect(await query(p.blue, `select distinct active from user_settings where user_id = 7`)).toEqual([{ active: false }]);
    expect((await p.run(['verify', '--from', 'green', '--to', 'blue'])).code).toBe(0);
    // Blue serves again, green is the frozen side now.
    await query(p.blue, `insert into users (username) values ('blue again')`);
    await expect(query(p.green, `insert into users (login) values ('nope')`)).rejects.toThrow(/frozen/);
  });
});
