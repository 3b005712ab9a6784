/**
 * No run waits forever on a silent network. A TCP proxy that stops forwarding
 * while keeping its sockets open hung a sync for good: the server's statement_timeout
 * cannot fire while its backend waits on the client, and keepalive probes are answered by
 * the proxy's host. Each session's watchdog (src/db/watchdog.ts) now ends the run within
 * --statement-timeout plus STALL_MARGIN_MS of the last byte, with exit 1 and one line
 * naming the side; the other side's transaction is rolled back and its session ended.
 *
 * The proxy lives here, on 127.0.0.1 only: it forwards until told to stall, then stops
 * reading from both ends of every connection (and accepts new ones without forwarding
 * them), so the kernels' buffers fill and nothing moves; close() ends everything it opened.
 */
import net from 'node:net';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { collect, startCli, type CliResult } from '../helpers/cli.ts';
import { makePair, MAPPINGS, type Pair } from '../helpers/pair.ts';
import { query } from '../helpers/pg.ts';
import { STALL_MARGIN_MS } from '../../src/db/watchdog.ts';

const APP = 'bluegreen sync blue->green';
const STATEMENT_S = 5;
/** Exit within the bound (statement timeout + margin) plus a few seconds of slack for a loaded machine. */
const EXIT_WITHIN_MS = STATEMENT_S * 1000 + STALL_MARGIN_MS + 8000;

class StallingProxy {
  private server: net.Server;
  private sockets = new Set<net.Socket>();
  private pairs: [net.Socket, net.Socket][] = [];
  private stalled = false;

  private constructor(
    private host: string,
    private port: number,
  ) {
    this.server = net.createServer((client) => this.accept(client));
  }

  static async to(url: string): Promise<StallingProxy> {
    const u = new URL(url);
    const proxy = new StallingProxy(u.hostname, Number(u.port || 5432));
    await new Promise<void>((r) => proxy.server.listen(0, '127.0.0.1', r));
    opened.push(proxy);
    return proxy;
  }

  /** `url` with its host and port replaced by the proxy's. */
  url(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String((this.server.address() as net.AddressInfo).port);
    return u.toString();
  }

  private track(s: net.Socket): net.Socket {
    this.sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => this.sockets.delete(s));
    return s;
  }

  private accept(client: net.Socket): void {
    this.track(client);
    if (this.stalled) return void client.pause(); // a silent network: accepted, never answered
    const upstream = this.track(net.connect(this.port, this.host));
    client.pipe(upstream);
    upstream.pipe(client);
    // One side closing closes the other, while forwarding.
    client.on('close', () => !this.stalled && upstream.destroy());
    upstream.on('close', () => !this.stalled && client.destroy());
    this.pairs.push([client, upstream]);
  }

  /** Stops forwarding: nothing is read from either end any more; every socket stays open. */
  stall(): void {
    this.stalled = true;
    for (const [a, b] of this.pairs) {
      a.unpipe(b);
      b.unpipe(a);
      a.pause();
      b.pause();
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

const opened: StallingProxy[] = [];
afterEach(async () => {
  for (const p of opened.splice(0)) await p.close();
});

async function waitFor(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Sessions of the run in THIS database, read on the server directly (not through the proxy). */
function runSessions(url: string) {
  return query<{ pid: number }>(url, `select pid from pg_stat_activity where datname = current_database() and application_name = $1 and pid <> pg_backend_pid()`, [APP]);
}

/** A seeded pair whose blue COPY of users pauses 3 s on one row (under the 5 s statement timeout): a window mid-COPY. */
async function pairWithSlowCopy(): Promise<Pair> {
  const p = await makePair(1, 1);
  await p.ok(['seed', '--to', 'blue', '--rows', '300']);
  await query(
    p.blue,
    `create function bg_slow_row(id bigint) returns boolean language sql as $$
       select case when $1 = 150 and current_query() ilike 'copy%' then pg_sleep(3) is not null else true end $$;
     alter table users enable row level security;
     alter table users force row level security;
     create policy slow_copy on users using (bg_slow_row(id))`,
  );
  return p;
}

/**
 * `bluegreen sync` on the pair, `env` overriding its URLs; a run still going after
 * `hangMs` is killed and reported as hung, so a regression fails here and not by the
 * test's timeout.
 */
function startSync(p: Pair, env: Record<string, string>, hangMs = 60_000): () => Promise<CliResult | { code: string; stderr: string }> {
  const child = startCli(['--mappings', MAPPINGS, 'sync', '--statement-timeout', `${STATEMENT_S}s`], { BLUE_URL: p.blue, GREEN_URL: p.green, ...env });
  const done = collect(child);
  return () =>
    Promise.race([
      done,
      new Promise<{ code: string; stderr: string }>((r) =>
        setTimeout(() => {
          child.kill('SIGKILL');
          r({ code: `still running ${hangMs / 1000} s after the stall`, stderr: '' });
        }, hangMs),
      ),
    ]);
}

function blueMidCopy(p: Pair) {
  const sleeping = `select 1 from pg_stat_activity where datname = current_database() and application_name = $1 and wait_event = 'PgSleep' and query ilike 'copy%'`;
  return waitFor("blue's COPY mid-way", async () => (await query(p.blue, sleeping, [APP])).length > 0);
}

function expectStalled(r: { code: number | string | null; stderr: string }, side: string, during: 'a COPY was under way' | 'a statement waited for its answer'): void {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).not.toMatch(/this is a bug|unexpected failure/);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
  expect(errors, r.stderr).toHaveLength(1);
  const escaped = during.replace(/[()]/g, '\\$&');
  expect(errors[0]).toMatch(
    new RegExp(`^error: lost the connection to ${side}: nothing moved for \\d+ s while ${escaped} \\(--statement-timeout ${STATEMENT_S} s \\+ ${STALL_MARGIN_MS / 1000} s margin\\); the network or a proxy in between stopped forwarding$`),
  );
}

describe('a stalled network ends the run within --statement-timeout plus the margin', () => {
  it('blue stalls mid-COPY: exit 1 naming blue; green rolled back and its session ended; blue\'s goes once the path closes', async () => {
    const p = await pairWithSlowCopy();
    const proxy = await StallingProxy.to(p.blue);
    const run = startSync(p, { BLUE_URL: proxy.url(p.blue) });
    await blueMidCopy(p);
    proxy.stall();
    const t0 = Date.now();
    const r = await run();
    const took = Date.now() - t0;
    console.log(`blue stalled mid-COPY: exit ${r.code} ${took} ms after the stall: ${r.stderr.trim()}`);
    expectStalled(r, 'blue', 'a COPY was under way');
    expect(took).toBeLessThan(EXIT_WITHIN_MS);
    // The other side at once: rolled back, session ended, nothing written.
    await waitFor('no session of the run on green', async () => (await runSessions(p.green)).length === 0, 2000);
    expect(await query(p.green, `select count(*)::int as n from users`)).toEqual([{ n: 0 }]);
    expect(await query(p.green, `select to_regclass('bluegreen.runs') is null as none`)).toEqual([{ none: true }]);
    // The stalled side's backend cannot be told through a silent path; it ends as soon as the path closes.
    await proxy.close();
    await waitFor('no session of the run on blue', async () => (await runSessions(p.blue)).length === 0, 10_000);
  });

  it('green stalls mid-COPY: exit 1 naming green; blue\'s snapshot released at once', async () => {
    const p = await pairWithSlowCopy();
    const proxy = await StallingProxy.to(p.green);
    const run = startSync(p, { GREEN_URL: proxy.url(p.green) });
    await blueMidCopy(p);
    proxy.stall();
    const t0 = Date.now();
    const r = await run();
    const took = Date.now() - t0;
    console.log(`green stalled mid-COPY: exit ${r.code} ${took} ms after the stall: ${r.stderr.trim()}`);
    expectStalled(r, 'green', 'a COPY was under way');
    expect(took).toBeLessThan(EXIT_WITHIN_MS);
    await waitFor('no session of the run on blue', async () => (await runSessions(p.blue)).length === 0, 2000);
    await proxy.close();
    await waitFor('no session of the run on green', async () => (await runSessions(p.green)).length === 0, 10_000);
    expect(await query(p.green, `select count(*)::int as n from users`)).toEqual([{ n: 0 }]);
    expect(await query(p.green, `select to_regclass('bluegreen.runs') is null as none`)).toEqual([{ none: true }]);
  });

  it('green stalls while the run writes inside its transaction: exit 1 naming green; the target unchanged', async () => {
    const p = await makePair(1, 1);
    await p.ok(['seed', '--to', 'blue', '--rows', '300']);
    await p.ok(['sync']);
    await query(p.blue, `update users set email = 'stalled-' || id`);
    const proxy = await StallingProxy.to(p.green);
    // The run's first write on green waits behind this lock; the path stalls while it waits.
    const blocker = new pg.Client({ connectionString: p.green });
    await blocker.connect();
    await blocker.query('begin');
    await blocker.query('lock table user_settings in share mode');
    try {
      const run = startSync(p, { GREEN_URL: proxy.url(p.green) });
      await waitFor('the sync waiting on green', async () => (await query(p.green, `select 1 from pg_stat_activity where datname = current_database() and application_name = $1 and wait_event_type = 'Lock'`, [APP])).length > 0);
      proxy.stall();
      const t0 = Date.now();
      // The statement completes on the server; its answer never arrives.
      await blocker.query('rollback');
      const r = await run();
      const took = Date.now() - t0;
      console.log(`green stalled in a statement: exit ${r.code} ${took} ms after the stall: ${r.stderr.trim()}`);
      expectStalled(r, 'green', 'a statement waited for its answer');
      expect(took).toBeLessThan(EXIT_WITHIN_MS);
    } finally {
      await blocker.end();
    }
    await waitFor('no session of the run on blue', async () => (await runSessions(p.blue)).length === 0, 2000);
    await proxy.close();
    await waitFor('no session of the run on green', async () => (await runSessions(p.green)).length === 0, 10_000);
    expect(await query(p.green, `select count(*)::int as n from users where email like 'stalled-%'`)).toEqual([{ n: 0 }]);
  });

  it('a legitimately long statement under --statement-timeout is not cut short by the client bound', async () => {
    // A lock wait of 4 s moves no byte for longer than any idle bound shorter than the
    // statement timeout would allow: the run must wait it out and succeed.
    const p = await makePair(1, 1);
    await p.ok(['seed', '--to', 'blue', '--rows', '100']);
    await p.ok(['sync']);
    await query(p.blue, `update users set email = 'late-' || id`);
    const blocker = new pg.Client({ connectionString: p.green });
    await blocker.connect();
    await blocker.query('begin');
    await blocker.query('lock table user_settings in share mode');
    try {
      const run = p.run(['sync', '--statement-timeout', `${STATEMENT_S}s`]);
      await waitFor('the sync waiting on green', async () => (await query(p.green, `select 1 from pg_stat_activity where datname = current_database() and application_name = $1 and wait_event_type = 'Lock'`, [APP])).length > 0);
      await new Promise((r) => setTimeout(r, 4000));
      await blocker.query('rollback');
      const r = await run;
      expect(r.code, r.stderr).toBe(0);
    } finally {
      await blocker.end();
    }
    expect(await query(p.green, `select count(*)::int as n from users where email like 'late-%'`)).toEqual([{ n: 100 }]);
  });
});
