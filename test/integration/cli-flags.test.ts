/**
 * What a new user tripped over, each through the real CLI: `--version` on a command,
 * a subcommand's help, the cron example cut in two, shell completion, a --metrics-file
 * in a missing folder, a conninfo endpoint without a name, and make's messages.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.ts';
import { makePair, MAPPINGS, report } from '../helpers/pair.ts';
import { freshDatabase, query } from '../helpers/pg.ts';
import { tempDir } from '../helpers/tmp.ts';

const sh = promisify(execFile);
/** Nothing may connect here: a connection attempt would be exit 1, not 2. */
const UNREACHABLE = { BLUE_URL: 'postgres://u:pw@127.0.0.1:1/x', GREEN_URL: 'postgres://u:pw@127.0.0.1:1/y' };
let version: string;

beforeAll(async () => {
  version = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')).version;
});

describe('--version', () => {
  it.each([[['--version']], [['-V']], [['sync', '--version']], [['cutover', '--from', 'blue', '--version']], [['schema', 'apply', '-V']], [['env', 'up', '--version']]])(
    '%j prints the tool version and exits 0, touching nothing',
    async (args) => {
      const r = await runCli(args, UNREACHABLE);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`bluegreen ${version}\n`);
      expect(r.stderr).toBe('');
    },
  );

  it.each([[['schema', 'apply', '--to', 'green', '--version']], [['export', '--version', '--from', 'blue']], [['import', '--to', 'green', '--in', 'd', '--version']]])(
    '%j: a bare --version where it means the schema version is refused (exit 2), never a run that did nothing',
    async (args) => {
      const r = await runCli(args, UNREACHABLE);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).not.toMatch(/^bluegreen \d/);
      expect(r.stderr).toMatch(/--version needs a number on this command \(the schema version/);
    },
  );

  it('--schema-version N, and --version N / --version=N as its short form, on schema apply, export and import', async () => {
    const blue = await freshDatabase('ver_blue');
    const long = await runCli(['--mappings', MAPPINGS, 'schema', 'apply', '--to-url', blue, '--schema-version', '1', '--json']);
    expect(long.code, long.stderr).toBe(0);
    expect(report(long).version).toBe(1);
    const green = await freshDatabase('ver_green');
    const short = await runCli(['--mappings', MAPPINGS, 'schema', 'apply', '--to-url', green, '--version=2', '--json']);
    expect(short.code, short.stderr).toBe(0);
    expect(report(short).version).toBe(2);
    const dir = await tempDir('cli-version');
    const ex = await runCli(['--mappings', MAPPINGS, 'export', '--from-url', blue, '--version', '1', '--out', path.join(dir, 'd'), '--json']);
    expect(ex.code, ex.stderr).toBe(0);
    expect(report(ex).schemaVersion).toBe(1);
    // A bad value names the long flag, before anything connects.
    const bad = await runCli(['schema', 'apply', '--to', 'green', '--version', 'two'], UNREACHABLE);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--schema-version must be a positive integer \(got "two"\)/);
  });
});

describe('help', () => {
  it.each([
    ['schema apply', /^bluegreen schema apply\n\nCreate a version's tables/, /--schema-version/],
    ['capture enable', /^bluegreen capture enable\n\nArm delete triggers/, /--tables/],
    ['capture prune', /^bluegreen capture prune\n\nForget recorded deletes/, /--before[\s\S]*\[required\]/],
    ['env status', /^bluegreen env status \[names\.\.\]\n\nPorts, data directories/, /bluegreen env status --json/],
  ])('%s --help is its own, not its parent\'s', async (words, head, body) => {
    const r = await runCli([...words.split(' '), '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(head);
    expect(r.stdout).toMatch(body);
    expect(r.stdout).not.toMatch(/^Commands:/m);
  });

  it('sync --help at COLUMNS=80: the cron example is one line, ready to paste', async () => {
    const r = await runCli(['sync', '--help'], { COLUMNS: '80' });
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines).toContain('  */5 * * * * cd /srv/bluegreen && node bin/bluegreen.js sync --log-format json >> sync.log 2>&1');
    // Descriptions are wrapped at the width asked for.
    const options = lines.slice(0, lines.indexOf('Examples:'));
    for (const l of options) expect(l.length, l).toBeLessThanOrEqual(80);
  });
});

describe('completion', () => {
  it('bluegreen completion prints a bash script that asks bluegreen for its words; they are its commands', async () => {
    const script = await runCli(['completion'], { SHELL: '/bin/bash' });
    expect(script.code).toBe(0);
    expect(script.stdout).toMatch(/^###-begin-bluegreen-completions-###/);
    expect(script.stdout).toContain('bluegreen --get-yargs-completions');
    expect(script.stdout).toMatch(/complete .* bluegreen\n/);
    const zsh = await runCli(['completion'], { SHELL: '/usr/bin/zsh' });
    expect(zsh.stdout).toMatch(/^#compdef bluegreen/);
    // What the script gets back for `bluegreen <TAB>`, `bluegreen env <TAB>`, `bluegreen sync --f<TAB>`.
    const words = async (...typed: string[]) => (await runCli(['--get-yargs-completions', 'bluegreen', ...typed])).stdout.split('\n').map((w) => w.split(':')[0]);
    expect(await words('')).toEqual(expect.arrayContaining(['env', 'schema', 'sync', 'verify', 'cutover', 'status', 'capture', 'export', 'import', 'completion']));
    expect(await words('env', '')).toEqual(expect.arrayContaining(['up', 'down', 'status', 'url', 'psql']));
    expect(await words('sync', '--f')).toEqual(expect.arrayContaining(['--from', '--full', '--force']));
  });
});

describe('--metrics-file is checked before anything connects', () => {
  it.each([['sync'], ['cutover'], ['status']])('%s: a missing folder, a folder for a file: exit 2, one line naming the path', async (command) => {
    const dir = await tempDir('cli-metrics');
    const missing = path.join(dir, 'no-such-folder', 'x.prom');
    const r = await runCli([command, '--metrics-file', missing], UNREACHABLE);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(`error: --metrics-file ${missing}: the folder ${path.dirname(missing)} does not exist (create it, or fix the path); nothing was run`);
    expect(r.stderr).not.toMatch(/ECONNREFUSED|connect/);
    const folder = path.join(dir, 'a-folder.prom');
    await mkdir(folder);
    const f = await runCli([command, '--metrics-file', folder], UNREACHABLE);
    expect(f.code).toBe(2);
    expect(f.stderr.split('\n')[0]).toMatch(new RegExp(`^error: --metrics-file ${folder} is a folder`));
  });
});

describe('an endpoint given as key=value conninfo is named after it, like a URL', () => {
  it('sync --from-url/--to-url conninfo, no --from/--to: host:port/database', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '10']);
    const conninfo = (url: string) => {
      const u = new URL(url);
      return `host=${u.hostname} port=${u.port} dbname='${u.pathname.slice(1)}' user=${decodeURIComponent(u.username)} password='${decodeURIComponent(u.password)}'`;
    };
    const r = await p.run(['sync', '--from-url', conninfo(p.blue), '--to-url', conninfo(p.green), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const name = (url: string) => `${new URL(url).hostname}:${new URL(url).port}${new URL(url).pathname}`;
    expect(report(r)).toMatchObject({ from: name(p.blue), to: name(p.green) });
    // The same name as the URL form: its watermarks are the ones a URL-named run keeps.
    const again = await p.run(['sync', '--from-url', p.blue, '--to-url', p.green, '--json']);
    expect(report(again).mode).toBe('incremental');
    const [n] = await query<{ n: number }>(p.green, 'select count(*)::int as n from users');
    expect(n!.n).toBe(10);
  });
});

describe('make', () => {
  /** `make TARGET` with bluegreen replaced by a command exiting `code`: what make says. */
  async function makeSays(target: string, code: number): Promise<string> {
    return sh('make', ['-s', '--no-print-directory', target, `BG=sh -c 'exit ${code}'`], { cwd: ROOT }).then(
      () => '',
      (e: { stderr: string }) => e.stderr.split('\n').find((l) => l.startsWith('bluegreen exited')) ?? e.stderr,
    );
  }

  it("names what each target's exit code means for that target", async () => {
    expect(await makeSays('status', 3)).toBe("bluegreen exited 3: a freeze is BROKEN (writes got through a cutover's freeze); see the report");
    expect(await makeSays('status', 1)).toBe('bluegreen exited 1: an environment is UNREACHABLE (the report is incomplete)');
    expect(await makeSays('verify', 3)).toBe('bluegreen exited 3: verify found differences');
    expect(await makeSays('sync', 3)).toMatch(/^bluegreen exited 3: the sync's check found differences/);
    expect(await makeSays('sync', 75)).toBe('bluegreen exited 75: another run holds the lock (skipped)');
    expect(await makeSays('cutover', 3)).toMatch(/^bluegreen exited 3: the cutover happened, but its verify found differences/);
    expect(await makeSays('check', 1)).toMatch(/^bluegreen exited 1: a round trip did not come back/);
    expect(await makeSays('cutover', 1)).toMatch(/^bluegreen exited 1: the cutover was refused or failed; the source still serves/);
    expect(await makeSays('plan', 2)).toBe('bluegreen exited 2: invalid input or usage');
  });
});
