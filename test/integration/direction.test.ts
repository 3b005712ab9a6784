/**
 * The pair's direction after an unfreeze by hand. Before it was explicit, a cutover, the
 * README's `unfreeze`, then each command the tool suggested went round in a circle (each
 * direction's sync pointed at the other, `cutover --force` never reached its own syncs,
 * and only a hand-written DELETE of watermarks got out). Here every suggested command is
 * followed in turn until a sync exits 0 both ways and a rollback cutover succeeds.
 */
import { describe, expect, it } from 'vitest';
import { query } from '../helpers/pg.ts';
import { makePair, report, type Pair } from '../helpers/pair.ts';

const directions = async (p: Pair) => report(await p.run(['status', '--json'])).directions as { a: string; b: string; flow?: { from: string; to: string }; undecided: boolean; text: string }[];

describe('direction', () => {
  it('cutover, unfreeze by hand, then every suggested command converges: a sync exits 0 both ways and the rollback cutover succeeds', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '200']);
    await p.ok(['sync']);
    expect((await directions(p))[0]).toMatchObject({ flow: { from: 'blue', to: 'green' }, undecided: false });

    await p.ok(['cutover']);
    expect((await directions(p))[0]).toMatchObject({ flow: { from: 'green', to: 'blue' } });

    // The runbook's "let the application write on a frozen side again".
    await p.ok(['unfreeze', '--env', 'blue']);
    await query(p.blue, `insert into users (username) values ('written on blue after the unfreeze')`);
    await query(p.green, `insert into users (login) values ('written on green after the cutover')`);
    const open = (await directions(p))[0]!;
    expect(open.undecided).toBe(true);
    expect(open.text).toMatch(/unfrozen by hand: choose a direction/);

    // Each way, the sync refuses and names the one command that decides; so do cutover and plan.
    for (const [from, to] of [['green', 'blue'], ['blue', 'green']]) {
      const r = await p.run(['sync', '--from', from!, '--to', to!]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/direction between .* is open/);
      expect(r.stderr).toMatch(/bluegreen direction --from/);
    }
    const cut = await p.run(['cutover', '--from', 'blue', '--to', 'green', '--json']);
    expect(cut.code).toBe(1);
    expect(report(cut).guardrails.find((g: { name: string }) => g.name === 'direction')).toMatchObject({ ok: false });
    expect(report(cut).next).toMatch(/bluegreen direction --from blue --to green/);
    const plan = report(await p.ok(['plan', '--from', 'green', '--to', 'blue', '--json']));
    expect(plan.guardrails.find((g: { name: string }) => g.name === 'direction')).toMatchObject({ ok: false });

    // The DBA decides: green serves. The next sync reads everything and blue converges to green.
    const set = await p.run(['direction', '--from', 'green', '--to', 'blue', '--json']);
    expect(set.code, set.stderr).toBe(0);
    expect(report(set).next).toMatch(/bluegreen sync --from green --to blue/);
    expect((await directions(p))[0]).toMatchObject({ flow: { from: 'green', to: 'blue' }, undecided: false });
    const back = await p.run(['sync', '--from', 'green', '--to', 'blue', '--json']);
    expect(back.code, back.stderr).toBe(0);
    expect(report(back).mode).toBe('full');
    expect(await query(p.blue, `select 1 from users where username = 'written on green after the cutover'`)).toHaveLength(1);
    expect(await query(p.blue, `select 1 from users where username = 'written on blue after the unfreeze'`)).toHaveLength(0);
    // Cron runs it again: nothing refused, nothing changed.
    expect((await p.run(['sync', '--from', 'green', '--to', 'blue'])).code).toBe(0);
    expect((await p.run(['verify', '--from', 'green', '--to', 'blue'])).code).toBe(0);

    // The rollback cutover, then the other way's sync.
    const rollback = await p.run(['cutover', '--from', 'green', '--to', 'blue']);
    expect(rollback.code, rollback.stderr).toBe(0);
    expect((await directions(p))[0]).toMatchObject({ flow: { from: 'blue', to: 'green' } });
    const forward = await p.run(['sync', '--from', 'blue', '--to', 'green']);
    expect(forward.code, forward.stderr).toBe(0);
  });

  it('cutover --force reaches the cutover\'s own syncs: with the direction open, the source\'s data wins', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '100']);
    await p.ok(['sync']);
    await p.ok(['cutover']);
    await p.ok(['unfreeze', '--env', 'blue']);
    await query(p.blue, `insert into users (username) values ('blue wins')`);
    const r = await p.run(['cutover', '--from', 'blue', '--to', 'green', '--force', '--full', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(report(r).guardrails.find((g: { name: string }) => g.name === 'direction')).toMatchObject({ ok: true, warning: true });
    expect(await query(p.green, `select 1 from users where login = 'blue wins'`)).toHaveLength(1);
    expect((await directions(p))[0]).toMatchObject({ flow: { from: 'green', to: 'blue' } });
  });

  it('direction refuses a frozen side as the one that serves, and needs both sides named', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '50']);
    await p.ok(['sync']);
    await p.ok(['cutover']);
    const r = await p.run(['direction', '--from', 'blue', '--to', 'green']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/blue is frozen .*cannot be the one that serves/);
    const bare = await p.run(['direction']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/--from ENV/);
  });
});
