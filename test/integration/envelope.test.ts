/**
 * The envelope is the last line of every run, whatever the exit: cron
 * appends stdout and stderr to one log (`>> log 2>&1`), and a script reading the log's
 * last line must find the run's result there, at a level saying how it went (error for 1
 * and 2, warn for 3, info for 0 and 75), valid against envelope.schema.json and its report
 * against the command's own schema (<command, spaces as dashes>.schema.json; plan's for
 * `sync --dry-run`, which says `dryRun: true`). Runs are spawned exactly as cron's line
 * does: stdout and stderr on one file descriptor, so the order of lines is the order
 * written.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import pg from 'pg';
import { Ajv, type ValidateFunction } from 'ajv';
import { describe, expect, it } from 'vitest';
import { BIN, ROOT, runCli } from '../helpers/cli.ts';
import { makePair, MAPPINGS } from '../helpers/pair.ts';
import { freshDatabase, query } from '../helpers/pg.ts';
import { tempDir } from '../helpers/tmp.ts';

const addFormats = createRequire(import.meta.url)('ajv-formats') as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ allErrors: true, strict: false }));
const compiled = new Map<string, ValidateFunction>();

async function schema(name: string): Promise<ValidateFunction> {
  if (!compiled.has(name)) {
    // Throws (fails the test) when a command has no schema: every report must have one.
    const s = JSON.parse(await readFile(path.join(ROOT, 'src/schemas/reports', `${name}.schema.json`), 'utf8'));
    delete s.$schema;
    delete s.$id;
    compiled.set(name, ajv.compile(s));
  }
  return compiled.get(name)!;
}

interface Run {
  code: number | null;
  lines: Record<string, any>[];
  text: string;
}

/** Runs bluegreen as the README's cron line does: JSON by default (not a terminal), stdout and stderr into one file. */
async function cron(args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<Run> {
  return (await startCron(args, env, cwd)).done;
}

async function startCron(args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<{ child: ChildProcess; done: Promise<Run> }> {
  const log = path.join(await tempDir('envelope-log'), 'run.log');
  const fd = openSync(log, 'a');
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...process.env, BLUE_URL: '', GREEN_URL: '', BLUEGREEN_LOG_FORMAT: '', ...env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const done = (async () => {
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    const text = await readFile(log, 'utf8');
    const lines = text
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, any>;
        } catch {
          throw new Error(`not a JSON line: ${l}`);
        }
      });
    return { code, lines, text };
  })();
  return { child, done };
}

const LEVEL: Record<number, string> = { 0: 'info', 1: 'error', 2: 'error', 3: 'warn', 75: 'info' };

/**
 * The run's last line is its one envelope, for `command`, with exit `code` and the level
 * matching it; the envelope and its report are valid against their schemas.
 */
async function expectEnvelope(r: Run, command: string, code: number): Promise<Record<string, any>> {
  expect(r.code, r.text).toBe(code);
  const envelopes = r.lines.filter((l) => 'formatVersion' in l);
  expect(envelopes, r.text).toHaveLength(1);
  const last = r.lines.at(-1)!;
  expect(last, 'the envelope is the last line').toBe(envelopes[0]);
  const env = await schema('envelope');
  expect(env(last), JSON.stringify(env.errors)).toBe(true);
  expect(last).toMatchObject({ command, formatVersion: 1, exitCode: code, ok: code === 0, level: LEVEL[code] });
  if (code === 0) expect(last.error).toBeUndefined();
  // A failure with no report says why in `error`; one with a report (status 1, verify 3) says it there.
  if (last.report === null && code !== 0) {
    expect(typeof last.error?.code, r.text).toBe('string');
    expect(typeof last.error.message).toBe('string');
  }
  // A failure before any report says so with report null; anything else has a report of its command's shape.
  if (last.report !== null || code === 0) {
    const name = last.dryRun ? 'plan' : last.repair ? 'sync-repair' : command.replace(/ /g, '-');
    const rep = await schema(name);
    expect(rep(last.report), `${name}: ${JSON.stringify(rep.errors)}`).toBe(true);
  }
  return last;
}

describe('the envelope is the last line of every run', () => {
  it('every command, on success (exit 0)', async () => {
    const p = await makePair(null, null);
    const pair = { BLUE_URL: p.blue, GREEN_URL: p.green };
    const run = (args: string[]) => cron(['--mappings', MAPPINGS, ...args], pair);
    await expectEnvelope(await run(['schema', 'apply', '--to', 'blue', '--schema-version', '1']), 'schema apply', 0);
    await expectEnvelope(await run(['schema', 'apply', '--to', 'green', '--schema-version', '2']), 'schema apply', 0);
    await expectEnvelope(await run(['seed', '--to', 'blue', '--rows', '30']), 'seed', 0);
    await expectEnvelope(await run(['check', '--via', 'blue']), 'check', 0);
    await expectEnvelope(await run(['plan']), 'plan', 0);
    // sync --dry-run prints a plan: labelled so, its report a plan's.
    const dry = await expectEnvelope(await run(['sync', '--dry-run']), 'sync', 0);
    expect(dry.dryRun).toBe(true);
    expect(dry.report.tables[0]).toHaveProperty('estimatedRowsToRead');
    const synced = await expectEnvelope(await run(['sync']), 'sync', 0);
    expect(synced.dryRun).toBeUndefined();
    await expectEnvelope(await run(['verify']), 'verify', 0);
    await expectEnvelope(await run(['status', '--env', 'blue', 'green']), 'status', 0);

    const dir = await tempDir('envelope-dump');
    await expectEnvelope(await run(['export', '--from', 'blue', '--out', path.join(dir, 'v1')]), 'export', 0);
    await expectEnvelope(await run(['convert', '--in', path.join(dir, 'v1'), '--to-version', '2', '--out', path.join(dir, 'v2'), '--via', 'blue']), 'convert', 0);
    const fresh = await freshDatabase('envimp');
    await runCli(['--mappings', MAPPINGS, 'schema', 'apply', '--to-url', fresh, '--schema-version', '2']);
    await expectEnvelope(await cron(['--mappings', MAPPINGS, 'import', '--to-url', fresh, '--in', path.join(dir, 'v2')]), 'import', 0);

    await expectEnvelope(await run(['capture', 'enable', '--env', 'blue']), 'capture enable', 0);
    await expectEnvelope(await run(['capture', 'prune', '--env', 'blue', '--before', '2000-01-01']), 'capture prune', 0);
    await expectEnvelope(await run(['capture', 'disable', '--env', 'blue']), 'capture disable', 0);
    await expectEnvelope(await run(['direction', '--from', 'blue', '--to', 'green']), 'direction', 0);
    await expectEnvelope(await run(['cutover']), 'cutover', 0);
    await expectEnvelope(await run(['unfreeze', '--env', 'blue']), 'unfreeze', 0);

    const versions = path.join(await tempDir('envelope-versions'), 'mappings');
    await cp(MAPPINGS, versions, { recursive: true });
    await expectEnvelope(await cron(['--mappings', versions, 'new-version']), 'new-version', 0);

    // Local clusters: none started in an empty folder; status and down still report.
    const empty = await tempDir('envelope-env');
    await expectEnvelope(await cron(['env', 'status'], {}, empty), 'env status', 0);
    await expectEnvelope(await cron(['env', 'down'], {}, empty), 'env down', 0);
    // A recorded (stopped) local cluster: env url and env status report it (env up itself
    // starts PostgreSQL and is not run here; env-up.schema.json has the shape it prints).
    const recorded = await tempDir('envelope-env-state');
    await mkdir(path.join(recorded, '.bluegreen'));
    await writeFile(path.join(recorded, '.bluegreen', 'clusters.json'), JSON.stringify({ blue: { url: 'postgres://app:pw@127.0.0.1:5999/app', port: 5999, dataDir: path.join(recorded, 'data') } }));
    // `env url` alone prints the bare URL for the shell (psql "$(bluegreen env url blue)"); asked for a JSON log, its envelope.
    const url = await expectEnvelope(await cron(['env', 'url', 'blue', '--log-format', 'json'], {}, recorded), 'env url', 0);
    expect(url.report).toEqual({ environment: 'blue', url: 'postgres://app:pw@127.0.0.1:5999/app' });
    const st = await expectEnvelope(await cron(['env', 'status', 'blue'], {}, recorded), 'env status', 0);
    expect(st.report[0]).toMatchObject({ name: 'blue', running: false, port: 5999 });
    // About 30 CLI runs in sequence: 100 s alone on this kind of machine, more beside other files.
  }, 300_000);

  it('exit 2: usage errors (the parse itself, a bad value, an unknown local cluster, a missing metrics folder) and a refused input', async () => {
    const p = await makePair(1, 2);
    const pair = { BLUE_URL: p.blue, GREEN_URL: p.green };
    const run = (args: string[]) => cron(['--mappings', MAPPINGS, ...args], pair);
    const parse = await run(['sync', '--bogus']);
    const bad = await expectEnvelope(parse, 'sync', 2);
    expect(bad).toMatchObject({ report: null, error: { code: 'UsageError' } });
    // The error line first, then the envelope, both of the one run.
    expect(parse.lines).toHaveLength(2);
    expect(parse.lines[0]).toMatchObject({ level: 'error', code: 'UsageError', runId: bad.runId });
    await expectEnvelope(await run(['schema', 'apply', '--to', 'green', '--schema-version', 'two']), 'schema apply', 2);
    await expectEnvelope(await run(['capture', 'enable']), 'capture enable', 2);
    await expectEnvelope(await cron(['--mappings', MAPPINGS, 'frobnicate']), 'frobnicate', 2);
    await expectEnvelope(await cron(['--mappings', MAPPINGS]), 'bluegreen', 2);
    await expectEnvelope(await cron(['env', 'url', 'blue'], {}, await tempDir('envelope-env')), 'env url', 2);
    await expectEnvelope(await run(['sync', '--metrics-file', '/nonexistent-bluegreen/x.prom']), 'sync', 2);
    // Not a usage error but refused input: blue is v1, and v3 has no mappings.
    await expectEnvelope(await run(['schema', 'apply', '--to', 'green', '--schema-version', '99']), 'schema apply', 2);
  });

  it('exit 1: unreachable sides, with or without a report, and a refused cutover keeping its report', async () => {
    const down = { BLUE_URL: 'postgres://u:pw@127.0.0.1:1/x', GREEN_URL: 'postgres://u:pw@127.0.0.1:1/y' };
    const run = (args: string[]) => cron(['--mappings', MAPPINGS, ...args], down);
    for (const args of [['sync'], ['verify'], ['plan'], ['cutover'], ['export', '--from', 'blue', '--out', path.join(await tempDir('envelope-x'), 'd')]]) {
      const e = await expectEnvelope(await run(args), args[0]!, 1);
      expect(e.report).toBeNull();
      expect(e.code).toBe(e.error.code); // the failed run's last line names its class, like every error line
    }
    // status reports what it could read, and exits 1 (an environment unreachable).
    const st = await expectEnvelope(await run(['status', '--env', 'blue', 'green']), 'status', 1);
    expect(st.report.environments.map((e: any) => e.reachable)).toEqual([false, false]);

    const p = await makePair(1, 2);
    const pair = { BLUE_URL: p.blue, GREEN_URL: p.green };
    await p.ok(['seed', '--to', 'blue', '--rows', '20']);
    await p.ok(['sync']);
    await p.ok(['cutover']);
    const refused = await expectEnvelope(await cron(['--mappings', MAPPINGS, 'cutover'], pair), 'cutover', 1);
    expect(refused.error.code).toBe('CutoverRefusedError');
    expect(refused.report.ok).toBe(false);
  });

  it('exit 3 (verify found differences) is the last line at warn; exit 75 (skipped) at info', async () => {
    const p = await makePair(1, 2);
    const pair = { BLUE_URL: p.blue, GREEN_URL: p.green };
    await p.ok(['seed', '--to', 'blue', '--rows', '20']);
    await p.ok(['sync']);
    await query(p.green, `update users set login = login || '!' where id in (select id from users order by id limit 2)`);
    const diff = await expectEnvelope(await cron(['--mappings', MAPPINGS, 'verify'], pair), 'verify', 3);
    expect(diff.report.clean).toBe(false);
    // sync --repair re-copies what that verify named: its report is a repair's, and the envelope says so.
    const fixed = await expectEnvelope(await cron(['--mappings', MAPPINGS, 'sync', '--repair'], pair), 'sync', 0);
    expect(fixed.repair).toBe(true);
    expect(fixed.report.clean).toBe(true);

    const holder = new pg.Client({ connectionString: p.green });
    holder.on('error', () => {});
    await holder.connect();
    try {
      // The lock every run on green takes (src/sync/lock.ts): held here, the next run is skipped.
      await holder.query('select pg_advisory_lock($1, $2)', [0x6267, 0x6c6f636b]);
      for (const args of [['sync'], ['cutover']]) {
        const skipped = await expectEnvelope(await cron(['--mappings', MAPPINGS, ...args], pair), args[0]!, 75);
        expect(skipped.error.code).toBe('LockedError');
        // Nothing at error level in a skipped run: cron's normal.
        expect(skipped.level).toBe('info');
      }
    } finally {
      await holder.end();
    }
  });

  it('an interrupted run (SIGTERM while its write waits on a lock) ends with its envelope too (exit 1)', async () => {
    const p = await makePair(1, 2);
    const pair = { BLUE_URL: p.blue, GREEN_URL: p.green };
    await p.ok(['seed', '--to', 'blue', '--rows', '20']);
    await p.ok(['sync']);
    await query(p.blue, `update users set username = username || '!' where id in (select id from users order by id limit 2)`);
    const locker = new pg.Client({ connectionString: p.green });
    locker.on('error', () => {});
    await locker.connect();
    try {
      await locker.query('begin');
      // Readers pass; the sync's writes wait here until the signal.
      await locker.query('lock table users in exclusive mode');
      const metrics = path.join(await tempDir('envelope-metrics'), 'sync.prom');
      const { child, done } = await startCron(['--mappings', MAPPINGS, 'sync', '--lock-timeout', '60s', '--metrics-file', metrics], pair);
      const deadline = Date.now() + 30_000;
      for (;;) {
        const [w] = await query<{ n: number }>(p.green, `select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database() and pid <> pg_backend_pid()`);
        if (w!.n > 0) break;
        if (Date.now() > deadline) throw new Error('the sync never waited on the lock');
        await new Promise((r) => setTimeout(r, 100));
      }
      child.kill('SIGTERM');
      const e = await expectEnvelope(await done, 'sync', 1);
      expect(e.error.code).toBe('Interrupted');
      // Its metrics file was written on the way out: the run failed.
      expect(await readFile(metrics, 'utf8')).toContain('bluegreen_last_run_success{from="blue",to="green"} 0');
    } finally {
      await locker.query('rollback').catch(() => {});
      await locker.end();
    }
  });

  it('--json on a terminal with a bad flag still prints the envelope on stdout (exit 2)', async () => {
    // --log-format text stands in for a terminal: the envelope is pretty-printed on stdout, the error on stderr.
    const r = await runCli(['sync', '--bogus', '--json'], { BLUEGREEN_LOG_FORMAT: 'text' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: Unknown argument: bogus/);
    const printed = JSON.parse(r.stdout);
    const env = await schema('envelope');
    expect(env(printed), JSON.stringify(env.errors)).toBe(true);
    expect(printed).toMatchObject({ command: 'sync', ok: false, exitCode: 2, report: null, error: { code: 'UsageError' } });
    // Without --json, text mode prints no envelope (people read the error line).
    const text = await runCli(['sync', '--bogus'], { BLUEGREEN_LOG_FORMAT: 'text' });
    expect(text.stdout).toBe('');
  });
});
