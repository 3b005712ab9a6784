/**
 * The capture guardrail: without delete capture on the source, the final sync inside the
 * freeze compares the key buckets of whole tables, so writes are refused for longer as the
 * database grows. The cutover (and `plan`) warns before freezing, with an estimate from
 * pg_class.reltuples and the command that fixes it, never refuses; the report records where
 * the frozen part's deletes came from.
 */
import { describe, expect, it } from 'vitest';
import { makePair, report } from '../helpers/pair.ts';
import { query } from '../helpers/pg.ts';

type Guard = { name: string; ok: boolean; detail: string; warning?: boolean };
const capture = (r: { guardrails: Guard[] }) => r.guardrails.find((g) => g.name === 'delete capture');
const deleteUser = (url: string, id: number) =>
  query(url, `delete from user_roles where user_id = ${id}; delete from user_settings where user_id = ${id}; delete from users where id = ${id}`);

describe('cutover: delete capture guardrail', () => {
  it('without capture: warns with an estimate and the fix before freezing, cuts over anyway, reports key buckets', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '300']);
    await query(p.blue, 'analyze');
    await p.ok(['sync']);
    await deleteUser(p.blue, 7);

    const plan = report(await p.ok(['plan', '--json']));
    expect(capture(plan)).toMatchObject({ ok: true, warning: true });
    const r = await p.ok(['cutover', '--json']);
    const rep = report(r);
    const g = capture(rep)!;
    expect(g).toMatchObject({ ok: true, warning: true });
    expect(g.detail).toMatch(/users/);
    expect(g.detail).toMatch(/~[\d,]+ rows by pg_class\.reltuples, about <?\d+ s/);
    expect(g.detail).toMatch(/no capture on .*users.*: bluegreen capture enable --env blue/);
    // Said before the freeze: the warning is logged ahead of "freezing writes".
    expect(r.stderr.indexOf('delete capture')).toBeGreaterThanOrEqual(0);
    expect(r.stderr.indexOf('delete capture')).toBeLessThan(r.stderr.indexOf('freezing writes on blue'));
    expect(rep.ok).toBe(true);
    expect(rep.frozenDeletes.reconciled).toEqual(expect.arrayContaining(['users', 'user_settings']));
    expect(rep.frozenDeletes.captured).toEqual([]);
    expect(await query(p.green, `select id from users where id = 7`)).toEqual([]);
  });

  it('with capture armed before the last sync: no warning, and the frozen part took deletes from capture', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '300']);
    await p.ok(['sync']);
    // Enabled after the last sync: the next sync still compares key sets; the guardrail says to sync once more.
    await p.ok(['capture', 'enable', '--env', 'blue']);
    const late = capture(report(await p.ok(['plan', '--json'])))!;
    expect(late).toMatchObject({ ok: true, warning: true });
    expect(late.detail).toMatch(/capture was enabled after the last sync on .*users.*: sync once more/);
    expect(late.detail).not.toMatch(/no capture on/);

    await p.ok(['sync', '--verify', 'full']);
    await deleteUser(p.blue, 8);
    const rep = report(await p.ok(['cutover', '--json']));
    const g = capture(rep)!;
    expect(g.warning).toBeUndefined();
    expect(g.detail).toMatch(/deletes inside the freeze come from capture \(.*users/);
    expect(rep.frozenDeletes.captured).toEqual(expect.arrayContaining(['users', 'user_settings']));
    expect(rep.frozenDeletes.reconciled).not.toContain('users');
    expect(await query(p.green, `select id from users where id = 8`)).toEqual([]);
  });

  it('warns about foreign keys on the target without an index: each deleted parent row scans the referencing table', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '50']);
    const fk = (r: { guardrails: Guard[] }) => r.guardrails.find((g) => g.name === 'foreign key indexes')!;
    // The sample's v2 indexes both referencing columns; a team's schema may not: drop them
    // on green (user_roles stays indexed by its key (user_id, role_id), which covers user_id only).
    await query(p.green, `drop index user_settings_user_id_idx; drop index user_roles_role_id_idx`);
    let g = fk(report(await p.ok(['plan', '--json'])));
    expect(g).toMatchObject({ ok: true, warning: true });
    expect(g.detail).toMatch(/user_settings \(user_id\) references users: each row deleted from users scans user_settings/);
    expect(g.detail).toMatch(/user_roles \(role_id\) references roles/);
    expect(g.detail).not.toMatch(/user_roles \(user_id\)/);
    expect(g.detail).toMatch(/create index on user_roles \(role_id\); create index on user_settings \(user_id\)/);
    await query(p.green, `create index on user_settings (user_id); create index on user_roles (role_id, user_id)`);
    g = fk(report(await p.ok(['plan', '--json'])));
    expect(g.warning).toBeUndefined();
    expect(g.ok).toBe(true);
  });
});
