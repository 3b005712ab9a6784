/**
 * The operator's surface: cron-grade JSON logs, the --json envelope and its schemas, CLI
 * conventions (flags validated before connecting, URL-only endpoints, --version, -h).
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { createRequire } from 'node:module';
import { BIN, ROOT, runCli, type CliResult } from '../helpers/cli.ts';
import { makePair, MAPPINGS, report } from '../helpers/pair.ts';
import { freshDatabase, query } from '../helpers/pg.ts';
import { tempDir } from '../helpers/tmp.ts';

const sh = promisify(execFile);
const addFormats = createRequire(import.meta.url)('ajv-formats') as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ allErrors: true, strict: false }));

async function schema(name: string) {
  const s = JSON.parse(await readFile(path.join(ROOT, 'src/schemas/reports', `${name}.schema.json`), 'utf8'));
  delete s.$schema;
  delete s.$id;
  return ajv.compile(s);
}

/** Validates what a command printed with --json: the envelope, then its report against the command's schema. */
async function expectValidEnvelope(r: CliResult, schemaName: string, command: string) {
  const printed = JSON.parse(r.stdout);
  const env = await schema('envelope');
  expect(env(printed), JSON.stringify(env.errors)).toBe(true);
  expect(printed).toMatchObject({ command, formatVersion: 1, exitCode: r.code, ok: r.code === 0 });
  const rep = await schema(schemaName);
  expect(rep(printed.report), JSON.stringify(rep.errors)).toBe(true);
  return printed;
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Every line of a JSON log: an object with time, level, msg, runId and command. */
function jsonLines(text: string): Record<string, any>[] {
  const lines = text.split('\n').filter((l) => l.length > 0);
  return lines.map((l) => {
    let o: Record<string, any>;
    try {
      o = JSON.parse(l);
    } catch {
      throw new Error(`not a JSON line: ${l}`);
    }
    expect(o.time, l).toMatch(ISO);
    expect(['debug', 'info', 'warn', 'error']).toContain(o.level);
    expect(typeof o.msg).toBe('string');
    expect(typeof o.runId).toBe('string');
    expect(typeof o.command).toBe('string');
    return o;
  });
}

describe('cron-grade output', () => {
  it("the README's cron line writes only JSON lines, with run id, command and endpoints, and never a password", async () => {
    const p = await makePair(1, 2);
    await runCli(['--mappings', MAPPINGS, 'seed', '--to', 'blue', '--rows', '50'], { BLUE_URL: p.blue });
    const dir = await tempDir('cron');
    const log = path.join(dir, 'sync.log');
    // Exactly the README's line (URLs from the environment), twice: first full, then incremental.
    for (let i = 0; i < 2; i++) {
      await sh('sh', ['-c', `cd "${ROOT}" && node bin/bluegreen.js sync --from blue --to green --log-format json --mappings "${MAPPINGS}" >> "${log}" 2>&1; echo $? >> "${log}.codes"`], {
        env: { ...process.env, BLUE_URL: p.blue, GREEN_URL: p.green, BLUEGREEN_LOG_FORMAT: '' },
      });
    }
    expect((await readFile(`${log}.codes`, 'utf8')).trim().split('\n')).toEqual(['0', '0']);
    const text = await readFile(log, 'utf8');
    expect(text).not.toContain('owner-secret-pw');
    const lines = jsonLines(text);
    const runs = new Set(lines.map((l) => l.runId));
    expect(runs.size).toBe(2);
    for (const l of lines) expect(l).toMatchObject({ command: 'sync', from: 'blue', to: 'green' });
    const finals = lines.filter((l) => l.formatVersion === 1);
    expect(finals).toHaveLength(2);
    expect(finals[0]).toMatchObject({ ok: true, exitCode: 0, report: { mode: 'full' } });
    expect(finals[1]).toMatchObject({ ok: true, exitCode: 0, report: { mode: 'incremental' } });
    expect(finals[1]!.report.horizon.at).toMatch(ISO);
  });

  it('not on a terminal, JSON is the default; a usage error is a JSON line too', async () => {
    const r = await runCli(['status', '--env', 'nowhere'], { BLUEGREEN_LOG_FORMAT: '' });
    for (const l of jsonLines(r.stdout + r.stderr)) expect(l.command).toBe('status');
    const bad = await runCli(['sync', '--bogus'], { BLUEGREEN_LOG_FORMAT: '' });
    expect(bad.code).toBe(2);
    expect(jsonLines(bad.stderr)[0]).toMatchObject({ level: 'error', code: 'UsageError', exitCode: 2 });
  });

  it('exit 75 (another run holds the lock) logs at info, with its code and hint', async () => {
    const p = await makePair(1, 2);
    const holder = new pg.Client({ connectionString: p.green });
    holder.on('error', () => {});
    await holder.connect();
    try {
      await holder.query('select pg_advisory_lock($1, $2)', [0x6267, 0x6c6f636b]);
      const r = await p.run(['sync', '--log-format', 'json']);
      expect(r.code).toBe(75);
      const [err] = jsonLines(r.stderr).filter((l) => l.exitCode === 75);
      expect(err).toMatchObject({ level: 'info', code: 'LockedError', exitCode: 75, from: 'blue', to: 'green' });
      expect(err!.hint).toMatch(/cron/);
    } finally {
      await holder.end();
    }
  });

  it('an unexpected database error is a JSON line with code, exit code and hint', async () => {
    const p = await makePair(1, 2);
    await p.ok(['sync']);
    await query(p.blue, `update users set username = username || '!' where id in (select id from users limit 1)`);
    const locker = new pg.Client({ connectionString: p.green });
    locker.on('error', () => {});
    await locker.connect();
    try {
      await locker.query('begin');
      // Readers pass (version detection, emptiness checks); the sync's writes time out.
      await locker.query('lock table users in exclusive mode');
      const r = await p.run(['sync', '--log-format', 'json', '--lock-timeout', '200ms']);
      expect(r.code).toBe(1);
      const lines = jsonLines(r.stdout + r.stderr);
      const err = lines.find((l) => l.level === 'error');
      expect(err).toMatchObject({ exitCode: 1, command: 'sync' });
      expect(typeof err!.code).toBe('string');
      expect(typeof err!.hint).toBe('string');
      if (err!.code === 'DatabaseError') expect(err!.sqlstate).toBe('55P03'); // lock_not_available
    } finally {
      await locker.query('rollback').catch(() => {});
      await locker.end();
    }
  });
});

describe('--json envelope', () => {
  it('every reporting command prints one envelope whose report matches its schema', async () => {
    const p = await makePair(null, null);
    await expectValidEnvelope(await p.run(['schema', 'apply', '--to', 'blue', '--schema-version', '1', '--json']), 'schema-apply', 'schema apply');
    await p.ok(['schema', 'apply', '--to', 'green', '--schema-version', '2']);
    await expectValidEnvelope(await p.run(['seed', '--to', 'blue', '--rows', '30', '--json']), 'seed', 'seed');
    const s = await expectValidEnvelope(await p.run(['sync', '--json']), 'sync', 'sync');
    expect(s.report.verify).toBeDefined();
    await query(p.blue, `update users set username = username || '~' where id in (select id from users order by id limit 3)`);
    await expectValidEnvelope(await p.run(['sync', '--json']), 'sync', 'sync');
    await expectValidEnvelope(await p.run(['verify', '--json']), 'verify', 'verify');
    const st = await expectValidEnvelope(await p.run(['status', '--env', 'blue', 'green', '--json']), 'status', 'status');
    expect(st.report.environments.find((e: any) => e.name === 'green').lastRun.finishedAt).toMatch(ISO);

    const dir = await tempDir('envelope');
    const ex = await expectValidEnvelope(await p.run(['export', '--from', 'blue', '--out', path.join(dir, 'd'), '--json']), 'export', 'export');
    expect(ex.report.nextSince).toMatch(ISO);
    const fresh = await freshDatabase('imp');
    await runCli(['--mappings', MAPPINGS, 'schema', 'apply', '--to-url', fresh, '--schema-version', '1']);
    await expectValidEnvelope(await runCli(['--mappings', MAPPINGS, 'import', '--to-url', fresh, '--in', path.join(dir, 'd'), '--json']), 'import', 'import');

    const cut = await expectValidEnvelope(await p.run(['cutover', '--json']), 'cutover', 'cutover');
    expect(cut.report.ok).toBe(true);
    // A refused cutover still prints its report, in an envelope saying ok: false.
    const again = await p.run(['cutover', '--json']);
    expect(again.code).toBe(1);
    const refused = await expectValidEnvelope(again, 'cutover', 'cutover');
    expect(refused).toMatchObject({ ok: false, exitCode: 1, error: { code: 'CutoverRefusedError' } });
  });

  it('a failure before any report is an envelope with the error and no report', async () => {
    const r = await runCli(['verify', '--json'], { BLUE_URL: 'postgres://u:pw@127.0.0.1:1/x', GREEN_URL: 'postgres://u:pw@127.0.0.1:1/y' });
    expect(r.code).toBe(1);
    const printed = JSON.parse(r.stdout);
    const env = await schema('envelope');
    expect(env(printed), JSON.stringify(env.errors)).toBe(true);
    expect(printed).toMatchObject({ command: 'verify', formatVersion: 1, ok: false, exitCode: 1, report: null });
    expect(typeof printed.error.code).toBe('string');
  });
});

describe('plan', () => {
  /** Evidence that nothing was written: the state schema's presence and every table's checksum. */
  async function fingerprint(url: string) {
    const [state] = await query<{ ok: boolean }>(url, `select to_regnamespace('bluegreen') is not null as ok`);
    const tables = await query<{ t: string }>(url, `select tablename as t from pg_tables where schemaname = 'public' order by 1`);
    const sums: Record<string, string> = {};
    for (const { t } of tables) sums[t] = (await query<{ h: string }>(url, `select md5(coalesce(string_agg(x::text, '|' order by x::text), '')) as h from "${t}" x`))[0]!.h;
    const schemas = await query<{ n: string }>(url, `select string_agg(nspname, ',' order by nspname) as n from pg_namespace`);
    return { state: state!.ok, sums, schemas: schemas[0]!.n };
  }

  it('says per table full or incremental, rows to read and delete, the key and watermark, the guardrails and the freeze, and writes nothing', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '50']);
    const before = { blue: await fingerprint(p.blue), green: await fingerprint(p.green) };
    const first = await expectValidEnvelope(await p.run(['plan', '--json']), 'plan', 'plan');
    expect(first.report.mode).toBe('full');
    const users = first.report.tables.find((t: any) => t.table === 'users');
    expect(users).toMatchObject({ mode: 'full', key: ['id'], estimatedRowsToRead: 50, watermark: { table: 'users', column: 'updated_at', from: null } });
    expect(first.report.guardrails.find((g: any) => g.name === 'lag')).toMatchObject({ ok: false });
    // Nothing written: no state schema on green, no scratch schema left, every table's rows the same.
    expect({ blue: await fingerprint(p.blue), green: await fingerprint(p.green) }).toEqual(before);
    expect(before.green.state).toBe(false);

    await p.ok(['sync']);
    await query(p.blue, `update users set username = username || '+' where id in (select id from users order by id limit 3)`);
    await query(p.blue, `delete from user_roles where user_id in (select id from users order by id desc limit 2)`);
    await query(p.blue, `delete from user_settings where user_id in (select id from users order by id desc limit 2)`);
    await query(p.blue, `delete from users where id in (select id from users order by id desc limit 2)`);
    const mid = { blue: await fingerprint(p.blue), green: await fingerprint(p.green) };
    const text = await p.run(['plan']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/plan: incremental sync blue \(v1\) -> green \(v2\)/);
    expect(text.stdout).toMatch(/estimated freeze during a cutover: [\d.]+ s/);
    const dry = await expectValidEnvelope(await p.run(['sync', '--dry-run', '--json']), 'plan', 'sync');
    const u = dry.report.tables.find((t: any) => t.table === 'users');
    expect(u.mode).toBe('incremental');
    expect(u.estimatedRowsToRead).toBeGreaterThanOrEqual(3);
    expect(u.estimatedRowsToRead).toBeLessThan(48);
    expect(u.estimatedRowsToDelete).toBe(2);
    expect(u.watermark.from).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect(dry.report.guardrails.find((g: any) => g.name === 'lag')).toMatchObject({ ok: true });
    expect(dry.report.estimatedFreezeSeconds).toBeGreaterThan(0);
    expect({ blue: await fingerprint(p.blue), green: await fingerprint(p.green) }).toEqual(mid);
  });
});

describe('safe defaults', () => {
  it('seed into a database that holds rows is refused before writing anything (exit 2)', async () => {
    const p = await makePair(1, null);
    await query(p.blue, `insert into roles (name) values ('mine')`);
    const r = await p.run(['seed', '--to', 'blue', '--rows', '10']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/already has rows in roles; nothing was written/);
    expect(await query(p.blue, `select (select count(*)::int from roles) as roles, (select count(*)::int from users) as users`)).toEqual([{ roles: 1, users: 0 }]);
  });

  it("export cleans a killed export's partial output, refuses a previous dump without --force, and never touches a foreign folder", async () => {
    const p = await makePair(1, null);
    await p.ok(['seed', '--to', 'blue', '--rows', '20']);
    const dir = await tempDir('exportdir');
    // What a killed export leaves: its marker and a half-written file, no manifest.
    const killed = path.join(dir, 'killed');
    await mkdir(killed);
    await writeFile(path.join(killed, '.bluegreen-export-incomplete'), 'export started\n');
    await writeFile(path.join(killed, 'zombie.csv'), 'id\n1\n');
    const retry = await p.run(['export', '--from', 'blue', '--out', killed]);
    expect(retry.code, retry.stderr).toBe(0);
    expect(retry.stderr).toMatch(/removing the partial output of an interrupted export/);
    const files = await readdir(killed);
    expect(files).toContain('manifest.json');
    expect(files).not.toContain('zombie.csv');
    expect(files).not.toContain('.bluegreen-export-incomplete');
    // A complete dump is kept unless --force.
    const again = await p.run(['export', '--from', 'blue', '--out', killed]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already holds a dump.*\n.*--force/);
    expect((await p.run(['export', '--from', 'blue', '--out', killed, '--force'])).code).toBe(0);
    // A folder that is not a dump is never emptied, --force or not.
    const foreign = path.join(dir, 'foreign');
    await mkdir(foreign);
    await writeFile(path.join(foreign, 'notes.txt'), 'mine');
    const refused = await p.run(['export', '--from', 'blue', '--out', foreign, '--force']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/is not empty and is not a bluegreen dump/);
    expect(await readdir(foreign)).toEqual(['notes.txt']);
  });

  it('env url prints the local cluster URL with its password; other environments are refused', async () => {
    const cwd = await tempDir('envurl');
    await mkdir(path.join(cwd, '.bluegreen'));
    const url = 'postgresql://app:s3cret-pw@127.0.0.1:54329/app';
    await writeFile(path.join(cwd, '.bluegreen', 'clusters.json'), JSON.stringify({ blue: { url, port: 54329, dataDir: '/nowhere' } }));
    const r = await runCli(['env', 'url', 'blue'], {}, cwd);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(url);
    // env psql execs psql on that URL; without psql on PATH it says how to connect otherwise.
    const noPsql = await runCli(['env', 'psql', 'blue'], { PATH: cwd }, cwd);
    expect(noPsql.code).toBe(1);
    expect(noPsql.stderr).toMatch(/psql is not installed[\s\S]*bluegreen env url blue/);
    const other = await runCli(['env', 'url', 'purple'], { PURPLE_URL: 'postgres://u:pw@h/db' }, cwd);
    expect(other.code).toBe(2);
    expect(other.stdout + other.stderr).not.toContain('pw@');
  });
});

describe('metrics', () => {
  it('status --json has lag, last run and last failure per pair; --metrics-file writes a Prometheus textfile atomically', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '20']);
    const dir = await tempDir('metrics');
    const file = path.join(dir, 'bluegreen.prom');
    const s = await p.run(['sync', '--metrics-file', file]);
    expect(s.code, s.stderr).toBe(0);
    const samples = parseProm(await readFile(file, 'utf8'));
    expect(samples.get('bluegreen_last_run_success{from="blue",to="green"}')).toBe(1);
    expect(samples.get('bluegreen_rows_total{from="blue",to="green"}')).toBeGreaterThanOrEqual(20);
    expect(samples.get('bluegreen_frozen{from="blue",to="green"}')).toBe(0);
    expect(samples.get('bluegreen_lag_seconds{from="blue",to="green"}')).toBeGreaterThanOrEqual(0);
    expect(samples.get('bluegreen_last_run_duration_seconds{from="blue",to="green"}')).toBeGreaterThan(0);
    const st = report(await p.ok(['status', '--env', 'blue', 'green', '--json', '--metrics-file', file]));
    expect(st.pairs).toEqual([expect.objectContaining({ from: 'blue', to: 'green', frozen: false, lastRun: expect.objectContaining({ success: true, status: 'ok' }) })]);
    expect(st.pairs[0].lagSeconds).toBeGreaterThanOrEqual(0);
    await p.ok(['cutover', '--metrics-file', file]);
    expect(parseProm(await readFile(file, 'utf8')).get('bluegreen_frozen{from="blue",to="green"}')).toBe(1);
    // Replaced by rename: no temporary file left beside it.
    expect((await readdir(dir)).filter((f) => f !== 'bluegreen.prom')).toEqual([]);
  });
});

/** Parses a Prometheus text exposition strictly: every line a comment or `name{labels} number`. */
function parseProm(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.trimEnd().split('\n')) {
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m = /^([a-z_]+\{(?:[a-z_]+="[^"]*",?)*\}) (-?[0-9.e+]+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

describe('CLI conventions', () => {
  const unreachable = { BLUE_URL: 'postgres://u:pw@127.0.0.1:1/x', GREEN_URL: 'postgres://u:pw@127.0.0.1:1/y' };
  it.each([
    [['sync', '--lookback', 'banana'], /--lookback must be a duration/],
    [['sync', '--lock-timeout', 'banana'], /--lock-timeout must be seconds or a duration/],
    [['cutover', '--max-lag', 'abc'], /--max-lag must be a number/],
    [['cutover', '--timeout', '0'], /--timeout must be a positive number/],
    [['export', '--from', 'blue', '--out', '/tmp/x', '--jobs', 'two'], /--jobs must be a positive integer/],
    [['export', '--from', 'blue', '--out', '/tmp/x', '--lookback', '5 parsecs'], /--lookback must be a duration/],
    [['verify', '--keys', '-1'], /--keys must be an integer/],
    [['seed', '--rows', '1e3x'], /--rows must be an integer/],
    [['schema', 'apply', '--to', 'green', '--schema-version', 'two'], /--schema-version must be a positive integer/],
    [['schema', 'apply', '--to', 'green', '--version', 'two'], /--schema-version must be a positive integer/],
  ])('%j is refused before connecting (exit 2, one line)', async (args, message) => {
    const r = await runCli(args as string[], unreachable);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stderr).not.toMatch(/ECONNREFUSED|connect|    at /);
  });

  it('--version prints the tool version; -h is help; help lists global options after the command\'s own', async () => {
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
    const v = await runCli(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toBe(`bluegreen ${pkg.version}`);
    const h = await runCli(['sync', '-h']);
    expect(h.code).toBe(0);
    const own = h.stdout.indexOf('--full');
    const globals = h.stdout.indexOf('Global options:');
    expect(own).toBeGreaterThan(0);
    expect(globals).toBeGreaterThan(own);
    expect((await runCli(['-h'])).stdout).toMatch(/Commands:/);
  });

  it('URL flags alone suffice in schema apply, export, import, sync; the endpoint is named after the URL', async () => {
    const blue = await freshDatabase('urlb');
    const green = await freshDatabase('urlg');
    const base = ['--mappings', MAPPINGS];
    const applied = report(await runCli([...base, 'schema', 'apply', '--to-url', blue, '--schema-version', '1', '--json']));
    const u = new URL(blue);
    const name = `${u.hostname}:${u.port}${u.pathname}`;
    expect(applied.environment).toBe(name);
    await runCli([...base, 'schema', 'apply', '--to-url', green, '--schema-version', '2']);
    await runCli([...base, 'seed', '--to-url', blue, '--rows', '20']);
    const dir = await tempDir('urlonly');
    const ex = await runCli([...base, 'export', '--from-url', blue, '--out', path.join(dir, 'd'), '--json']);
    expect(ex.code, ex.stderr).toBe(0);
    const s = await runCli([...base, 'sync', '--from-url', blue, '--to-url', green, '--json']);
    expect(s.code, s.stderr).toBe(0);
    expect(report(s)).toMatchObject({ from: name, to: expect.stringMatching(/\/bg_urlg_/) });
    expect(s.stdout + s.stderr).not.toContain('owner-secret-pw');
    const fresh = await freshDatabase('urli');
    await runCli([...base, 'schema', 'apply', '--to-url', fresh, '--schema-version', '1']);
    const im = await runCli([...base, 'import', '--to-url', fresh, '--in', path.join(dir, 'd'), '--json']);
    expect(im.code, im.stderr).toBe(0);
    expect(report(im).environment).toMatch(/\/bg_urli_/);
  });

  it("make targets name bluegreen's own exit code (make itself exits 2 on any failure)", async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '20']);
    await p.ok(['sync']);
    await query(p.green, `delete from user_settings where id in (select id from user_settings limit 1)`);
    const env = { ...process.env, BLUE_URL: p.blue, GREEN_URL: p.green, BLUEGREEN_LOG_FORMAT: 'text' };
    const r = await sh('make', ['-s', '--no-print-directory', 'verify', `BG=node bin/bluegreen.js --mappings ${MAPPINGS}`], { cwd: ROOT, env }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('bluegreen exited 3: verify found differences');
  });

  it('bin is executable from any directory', async () => {
    const r = await sh(process.execPath, [BIN, '--version'], { cwd: '/' });
    expect(r.stdout).toMatch(/^bluegreen \d/);
  });
});
