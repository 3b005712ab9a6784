/**
 * Cutover under pgbench's default TPC-B script: 8 clients, each transaction updating
 * accounts, tellers and branches and inserting into history. A freeze that locked tables
 * one at a time deadlocked with it on every try (it held pgbench_history while waiting on
 * pgbench_tellers; each try stalled writes for seconds and killed pgbench transactions as
 * deadlock victims). Here the pair is cut over back and forth, each time under load, and
 * every cutover must succeed with nothing that pgbench saw commit missing on the new side.
 *
 * pgbench writes as an application role with DML grants only (the safe role layout),
 * so the freeze holds by privileges as well as by its trigger.
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { adminQuery, query } from '../helpers/pg.ts';
import { makePair, report, type Pair } from '../helpers/pair.ts';
import { ROOT } from '../helpers/cli.ts';
import { pgbenchBinary, startPgbench } from '../helpers/pgbench.ts';

const MAPPINGS = path.join(ROOT, 'examples', 'pgbench', 'mappings');
const APP_ROLE = 'bg_pgbench_app';
const APP_PASSWORD = 'pgbench-app-pw';
/** Cutovers in the test, alternating direction (blue -> green, green -> blue, ...). */
const ROUNDS = Number(process.env.BLUEGREEN_PGBENCH_ROUNDS ?? 10);
const bin = pgbenchBinary();
if (!bin && process.env.CI) throw new Error('pgbench is not installed: .ci/run installs it (postgresql-client)');

/** The URL of the same database for the application role. */
function appUrl(url: string): string {
  const u = new URL(url);
  u.username = APP_ROLE;
  u.password = APP_PASSWORD;
  return u.toString();
}

async function grantApp(url: string): Promise<void> {
  await query(url, `grant usage on schema public to ${APP_ROLE}; grant select, insert, update, delete on all tables in schema public to ${APP_ROLE}`);
}

interface Ledger {
  accounts: number;
  tellers: number;
  branches: number;
  history: number;
  deltas: number;
}

/** TPC-B's invariant: every balance sum equals the sum of the history's deltas. */
async function ledger(url: string): Promise<Ledger> {
  const [r] = await query<Ledger>(
    url,
    `select (select coalesce(sum(abalance), 0) from pgbench_accounts)::float8 as accounts,
            (select coalesce(sum(tbalance), 0) from pgbench_tellers)::float8 as tellers,
            (select coalesce(sum(bbalance), 0) from pgbench_branches)::float8 as branches,
            (select count(*) from pgbench_history)::float8 as history,
            (select coalesce(sum(delta), 0) from pgbench_history)::float8 as deltas`,
  );
  return r!;
}

/** Deadlocks PostgreSQL detected in this database (pg_stat_database; sessions report theirs as they end). */
async function deadlocks(url: string): Promise<number> {
  await new Promise((r) => setTimeout(r, 1_200)); // statistics reach the view within a second
  const [r] = await query<{ n: number }>(url, `select deadlocks::float8 as n from pg_stat_database where datname = current_database()`);
  return r!.n;
}

describe.skipIf(!bin)(`cutover under pgbench -c 8 (${ROUNDS} cutovers, alternating direction)`, () => {
  let p: Pair;

  beforeAll(async () => {
    await adminQuery(`do $$ begin if not exists (select 1 from pg_roles where rolname = '${APP_ROLE}') then create role ${APP_ROLE} login password '${APP_PASSWORD}'; end if; end $$`).catch((err) => {
      if (!/already exists|duplicate key/.test((err as Error).message)) throw err;
    });
    p = await makePair(1, 2, MAPPINGS);
    // pgbench -i's data at scale 1, by SQL (its own -i would recreate the tables without
    // the watermark columns the mapping follows).
    await query(
      p.blue,
      `insert into pgbench_branches (bid, bbalance) values (1, 0);
       insert into pgbench_tellers (tid, bid, tbalance) select t, 1, 0 from generate_series(1, 10) t;
       insert into pgbench_accounts (aid, bid, abalance, filler) select a, 1, 0, '' from generate_series(1, 100000) a;
       analyze`,
    );
    await grantApp(p.blue);
    await grantApp(p.green);
    await p.ok(['sync', '--from', 'blue', '--to', 'green']);
  });

  it('every cutover succeeds; green holds every transaction pgbench saw commit, and the ledger balances', async () => {
    const freezes: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const [from, to] = round % 2 === 0 ? ['blue', 'green'] : ['green', 'blue'];
      const [fromUrl, toUrl] = from === 'blue' ? [p.blue, p.green] : [p.green, p.blue];
      const before = await ledger(fromUrl);
      const deadlocksBefore = await deadlocks(fromUrl);
      // Runs until the freeze refuses every client (each then aborts), or 60 s at most.
      const bench = startPgbench(bin!, appUrl(fromUrl), ['-c', '8', '-j', '2', '-T', '60']);
      try {
        // Let it get going: the freeze must meet transactions in flight.
        const until = Date.now() + 20_000;
        while ((await ledger(fromUrl)).history < before.history + 200) {
          if (Date.now() > until) throw new Error(`pgbench wrote nothing on ${from}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        const r = await p.run(['cutover', '--from', from, '--to', to, '--json']);
        expect(r.code, `round ${round} (${from} -> ${to}): ${r.stderr}`).toBe(0);
        const rep = report(r);
        expect(rep.ok).toBe(true);
        freezes.push(rep.freezeMs);
      } catch (err) {
        bench.kill();
        throw err;
      }
      // Frozen, pgbench's clients are refused and abort.
      const run = await bench.done;
      // Neither side was a deadlock victim: not pgbench's transactions, not the freeze.
      expect(run.stderr, `pgbench on ${from}`).not.toMatch(/deadlock detected/);
      expect(await deadlocks(fromUrl), `deadlocks on ${from} during round ${round}`).toBe(deadlocksBefore);
      expect(run.processed, run.stdout + run.stderr).toBeGreaterThan(0);
      // The old side is frozen: what it holds is final. Every transaction pgbench saw
      // commit inserted one history row; all of them are on the new side, converted.
      const old = await ledger(fromUrl);
      const now = await ledger(toUrl);
      expect(old.history - before.history, `history rows written during round ${round}`).toBe(run.processed);
      expect(now).toEqual(old);
      expect(now.accounts).toBe(now.deltas);
      expect(now.tellers).toBe(now.deltas);
      expect(now.branches).toBe(now.deltas);
    }
    console.log(`freeze (writes refused) per cutover under pgbench -c 8: ${freezes.join(', ')} ms`);
  }, 600_000);
});
