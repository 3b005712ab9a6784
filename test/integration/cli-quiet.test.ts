/**
 * `-q` is pg_dump's and psql's quiet: errors only. A run that succeeds (or is skipped,
 * exit 75) prints nothing at all, on stdout or stderr, in text and in a JSON log, through
 * a whole deployment; what was asked for still prints (`--json`'s envelope, `env url`'s
 * value); a run ending 1, 2 or 3 still says why. It printed the whole report.
 */
import { cp, readdir } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { makePair, MAPPINGS, type Pair } from '../helpers/pair.ts';
import { freshDatabase, query } from '../helpers/pg.ts';
import { tempDir } from '../helpers/tmp.ts';

const DOWN = 'postgres://u:pw@127.0.0.1:1/down';

function silent(r: CliResult, what: string): void {
  expect(r.code, `${what}: ${r.stderr}`).toBe(0);
  expect(r.stdout, what).toBe('');
  expect(r.stderr, what).toBe('');
}

let p: Pair;
let dir: string;

beforeAll(async () => {
  p = await makePair(1, 2);
  dir = await tempDir('cli-quiet');
});

describe('-q through a whole deployment', () => {
  it('every command that succeeds prints nothing, in text and in a JSON log', async () => {
    const fresh = await freshDatabase('quiet_import');
    const steps: [string[], Record<string, string>?][] = [
      [['schema', 'apply', '--to', 'scratch', '--schema-version', '1'], { SCRATCH_URL: fresh }],
      [['seed', '--to', 'blue', '--rows', '30']],
      [['plan']],
      [['sync']],
      [['sync', '--dry-run']],
      [['verify']],
      [['status', '--env', 'blue', 'green']],
      [['export', '--from', 'blue', '--out', path.join(dir, 'dump')]],
      [['convert', '--in', path.join(dir, 'dump'), '--to-version', '2', '--out', path.join(dir, 'dump-v2'), '--via', 'blue']],
      [['import', '--to', 'scratch', '--in', path.join(dir, 'dump')], { SCRATCH_URL: fresh }],
      [['capture', 'enable', '--env', 'blue']],
      [['sync', '--reconcile']],
      [['capture', 'prune', '--env', 'blue', '--before', '2000-01-01']],
      [['capture', 'disable', '--env', 'blue']],
      [['check', '--sample-users', '10', '--via', 'blue']],
      [['cutover']],
      [['sync', '--from', 'green', '--to', 'blue']],
      [['env', 'status']],
    ];
    for (const [i, [args, env]] of steps.entries()) {
      // Text, and a JSON log (the default off a terminal), alternately: both must be silent.
      const format = i % 2 === 0 ? 'text' : 'json';
      silent(await p.run([...args, '-q', '--log-format', format], env), args.join(' '));
    }
    silent(await p.run(['unfreeze', '--env', 'blue', '--quiet']), 'unfreeze');
    silent(await p.run(['direction', '--from', 'green', '--to', 'blue', '-q']), 'direction');
    // new-version writes the next version's files into its own copy of the mappings.
    const copy = path.join(dir, 'mappings');
    await cp(MAPPINGS, copy, { recursive: true });
    silent(await runCli(['new-version', '--mappings', copy, '-q']), 'new-version');
    expect(await readdir(copy)).toContain('v4');
    // About 25 runs of the CLI, one after another.
  }, 400_000);

  it('warnings go too: capture enable with its target down says nothing', async () => {
    // Without -q it warns that green could not be reached (which tables capture serves is then not known).
    const loud = await p.run(['capture', 'enable', '--env', 'blue', '--log-format', 'text'], { GREEN_URL: DOWN });
    expect(loud.code, loud.stderr).toBe(0);
    expect(loud.stderr).toMatch(/^warn: could not reach green/m);
    silent(await p.run(['capture', 'enable', '--env', 'blue', '-q'], { GREEN_URL: DOWN }), 'capture enable, green down');
    await p.ok(['capture', 'disable', '--env', 'blue']);
  });

  it('what was asked for still prints: --json the envelope', async () => {
    const r = await p.run(['status', '--env', 'blue', '-q', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ command: 'status', ok: true, exitCode: 0 });
  });

  it('a run that fails still says why: exit 2 and 1 on stderr, exit 3 with its report', async () => {
    const usage = await p.run(['sync', '--from', 'purple', '-q', '--log-format', 'text']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^error: .*purple/m);
    const down = await p.run(['verify', '-q', '--log-format', 'text'], { GREEN_URL: DOWN });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^error: /m);
    // Green now serves (the cutover above); blue is kept from it. A row changed on blue behind its back:
    await query(p.blue, `update users set username = username || '-changed' where id = (select id from users order by id limit 1)`);
    const diff = await p.run(['verify', '--from', 'green', '--to', 'blue', '-q', '--log-format', 'text']);
    expect(diff.code, diff.stderr).toBe(3);
    expect(diff.stdout).toMatch(/changed/);
    // In a JSON log, the last line says it, at level warn.
    const json = await p.run(['verify', '--from', 'green', '--to', 'blue', '-q', '--log-format', 'json']);
    expect(json.code).toBe(3);
    const last = JSON.parse(json.stdout.trim().split('\n').at(-1)!);
    expect(last).toMatchObject({ level: 'warn', exitCode: 3 });
  });
});
