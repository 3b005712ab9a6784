/**
 * `status` tells the truth in its exit code and its lines: it exited 0 with an environment
 * UNREACHABLE or a FREEZE BROKEN (monitoring that reads the exit code saw nothing); it
 * printed `v?->v?` for a failed run (which records no versions); and after
 * `bluegreen unfreeze` of a cutover's source it still said that source was frozen, with no
 * lag, though the application writes there again.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { query } from '../helpers/pg.ts';
import { makePair, report, type Pair } from '../helpers/pair.ts';

const text = ['--log-format', 'text'];
const NOWHERE = 'postgres://someone:pw@127.0.0.1:1/nowhere';

async function seeded(): Promise<Pair> {
  const p = await makePair(1, 2);
  await p.ok(['seed', '--to', 'blue', '--rows', '30']);
  await p.ok(['sync']);
  return p;
}

const env = (st: { environments: { name: string }[] }, name: string) => st.environments.find((e) => e.name === name) as any;

describe('status exit codes', () => {
  it('0 when every environment is read; 1 when one is unreachable (the rest still shown); a failed run shows no v?', async () => {
    const p = await seeded();
    expect((await p.run(['status', '--env', 'blue', 'green', ...text])).code).toBe(0);

    const down = await p.run(['status', '--env', 'blue', 'green', ...text], { GREEN_URL: NOWHERE });
    expect(down.code, down.stderr).toBe(1);
    expect(down.stdout).toMatch(/^green UNREACHABLE/m);
    expect(down.stdout).toMatch(/^blue v1/m);
    const json = JSON.parse((await p.run(['status', '--env', 'blue', 'green', '--json'], { GREEN_URL: NOWHERE })).stdout);
    expect(json).toMatchObject({ ok: false, exitCode: 1 });
    expect(env(json.report, 'green').reachable).toBe(false);

    // A sync that fails (a lock held on green) is recorded without versions.
    const holder = new pg.Client({ connectionString: p.green });
    await holder.connect();
    try {
      await holder.query('begin; lock table users in access exclusive mode');
      expect((await p.run(['sync', '--lock-timeout', '1'])).code).toBe(1);
    } finally {
      await holder.end();
    }
    const st = await p.run(['status', '--env', 'green', ...text]);
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/last run: sync from blue failed, 0 rows changed/);
    expect(st.stdout).not.toContain('v?');
  });

  it('3 when a freeze is broken, also when another environment is unreachable', async () => {
    const p = await seeded();
    await p.ok(['cutover']);
    expect((await p.run(['status', '--env', 'blue', 'green', ...text])).code).toBe(0);
    // The application, connected as the tables' owner, walks through the freeze.
    await query(p.blue, `alter table users disable trigger bluegreen_freeze; insert into users (username, full_name) values ('slipped', 'Slipped Through')`);
    const st = await p.run(['status', '--env', 'blue', 'green', ...text]);
    expect(st.code).toBe(3);
    expect(st.stdout).toContain('FREEZE BROKEN');
    expect((await p.run(['status', '--env', 'blue', 'green', ...text], { GREEN_URL: NOWHERE })).code).toBe(3);
    const json = JSON.parse((await p.run(['status', '--env', 'blue', '--json'])).stdout);
    expect(json).toMatchObject({ ok: false, exitCode: 3 });
    expect(env(json.report, 'blue').freezeBroken.join('\n')).toMatch(/trigger on users is disabled/);
  });
});

describe('status after a cutover and an unfreeze', () => {
  it('says nothing flows from the frozen source; once it is unfrozen, the pair has a lag again and nothing says frozen', async () => {
    const p = await seeded();
    await p.ok(['cutover']);
    let st = report(await p.ok(['status', '--env', 'blue', 'green', '--json']));
    const cut = env(st, 'green').sources.find((s: { source: string }) => s.source === 'blue');
    expect(cut.cutOverAt).toBeTruthy();
    expect(cut.lagSeconds).toBeNull();
    expect(st.pairs.find((x: { from: string }) => x.from === 'blue')).toMatchObject({ frozen: true, lagSeconds: null });
    expect((await p.ok(['status', '--env', 'blue', 'green', ...text])).stdout).toMatch(/cut over from blue at .*nothing flows from blue since \(no lag\)/);

    await p.ok(['unfreeze', '--env', 'blue']);
    await new Promise((r) => setTimeout(r, 1100));
    st = report(await p.ok(['status', '--env', 'blue', 'green', '--json']));
    const after = env(st, 'green').sources.find((s: { source: string }) => s.source === 'blue');
    expect(after.cutOverAt).toBeUndefined();
    expect(after.lagSeconds).toBeGreaterThanOrEqual(1);
    expect(env(st, 'blue').frozen).toBeUndefined();
    expect(st.pairs.find((x: { from: string }) => x.from === 'blue')).toMatchObject({ frozen: false, lagSeconds: expect.any(Number) });
    const out = (await p.ok(['status', '--env', 'blue', 'green', ...text])).stdout;
    // The pair's direction is open now (both sides may take writes): said once, on its own line.
    expect(out).toMatch(/^direction blue\/green: unfrozen by hand: choose a direction/m);
    expect(out.split('\n').filter((l) => !l.startsWith('direction ')).join('\n')).not.toMatch(/frozen|FROZEN|no lag/);
    expect(out).toMatch(/synced from blue: watermark .* \(lag \d+s\)/);
    // Shown alone, green cannot see blue: it keeps the cutover's reading.
    const alone = report(await p.ok(['status', '--env', 'green', '--json']));
    expect(env(alone, 'green').sources[0]).toMatchObject({ source: 'blue', lagSeconds: null, cutOverAt: expect.any(String) });
  });
});
