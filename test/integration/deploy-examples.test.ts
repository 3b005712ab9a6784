/**
 * examples/deploy/ is copied into production as it is, so it must be right as it is: the
 * config validated against config.schema.json with its ${VAR} secrets expanded, the
 * systemd units parsed as INI with the settings the README promises, the CronJob parsed as
 * YAML, and the command line of each (ExecStart, the container's command and args) handed
 * to the real CLI: it must get past yargs' strict parsing (no unknown flag or command,
 * exit 2) to the point of connecting, which fails here (exit 1) against a closed port.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadSettings } from '../../src/config.ts';
import { validateAgainst } from '../../src/validate.ts';
import { runCli, ROOT } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const DEPLOY = path.join(ROOT, 'examples', 'deploy');
const CONFIG = path.join(DEPLOY, 'bluegreen.config.json');

type Ini = Record<string, Record<string, string[]>>;

/** systemd's unit syntax as far as these files use it: [Section], Key=Value (repeatable), # and ; comments. */
function parseUnit(text: string, file: string): Ini {
  const out: Ini = {};
  let section: Record<string, string[]> | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const head = /^\[([A-Za-z]+)\]$/.exec(line);
    if (head) {
      section = out[head[1]!] ??= {};
      return;
    }
    const kv = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    if (!kv || !section) throw new Error(`${file}:${i + 1}: not a unit file line: ${raw}`);
    (section[kv[1]!] ??= []).push(kv[2]!);
  });
  return out;
}

/** A command line split as systemd splits ExecStart (whitespace; single or double quotes). */
function splitCommand(line: string): string[] {
  const words: string[] = [];
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g)) words.push(m[1] ?? m[2] ?? m[3]!);
  return words;
}

/** The example config with every environment pointed at a closed local port, written beside nothing else. */
async function unreachableConfig(): Promise<string> {
  const json = JSON.parse(await readFile(CONFIG, 'utf8')) as { environments: Record<string, { url: string }>; mappings: string; stateDir: string };
  for (const e of Object.values(json.environments)) e.url = e.url.replace(/@[^/]+\//, '@127.0.0.1:1/');
  const dir = await tempDir('deploy');
  json.mappings = path.join(ROOT, 'mappings');
  json.stateDir = path.join(dir, 'state');
  const file = path.join(dir, 'bluegreen.config.json');
  await writeFile(file, JSON.stringify(json));
  return file;
}

/**
 * Runs `bluegreen <args>` as the example would (its --config swapped for one whose hosts are
 * a closed port) and asserts the CLI parsed it: it got as far as connecting and failed
 * there, exit 1, not a usage error (exit 2).
 */
async function parsesAndConnects(args: string[]): Promise<void> {
  const i = args.indexOf('--config');
  expect(i, `${args.join(' ')} names its config`).toBeGreaterThanOrEqual(0);
  expect(args[i + 1]).toBe('/etc/bluegreen/bluegreen.config.json');
  const swapped = [...args];
  swapped[i + 1] = await unreachableConfig();
  const r = await runCli(['--connect-timeout', '5', ...swapped], { BLUE_PASSWORD: 'x', GREEN_PASSWORD: 'y', BLUEGREEN_LOG_FORMAT: '' });
  const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { level: string; code?: string; msg: string });
  const errors = lines.filter((l) => l.level === 'error');
  expect(errors.map((e) => e.code), r.stderr).not.toContain('UsageError');
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).toMatch(/127\.0\.0\.1:1/);
}

describe('examples/deploy', () => {
  it('bluegreen.config.json is valid and takes its passwords from the environment', async () => {
    const json: unknown = JSON.parse(await readFile(CONFIG, 'utf8'));
    expect(() => validateAgainst('config.schema.json', json, CONFIG, 'example config')).not.toThrow();
    const text = JSON.stringify(json);
    expect(text).toContain('${BLUE_PASSWORD}');
    expect(text).toContain('${GREEN_PASSWORD}');
    const s = loadSettings({ configPath: CONFIG, env: { BLUE_PASSWORD: 'pw-b', GREEN_PASSWORD: 'pw-g' } });
    expect(s.environments.blue!.url).toContain(':pw-b@');
    expect(s.environments.green!.url).toContain(':pw-g@');
    // Without the variables it is refused, naming the one missing.
    expect(() => loadSettings({ configPath: CONFIG, env: {} })).toThrow(/BLUE_PASSWORD/);
  });

  it('the systemd service runs a sync with JSON logs to the journal, 75 counted as success; the timer starts it every few minutes', async () => {
    const service = parseUnit(await readFile(path.join(DEPLOY, 'bluegreen-sync.service'), 'utf8'), 'bluegreen-sync.service');
    const svc = service.Service!;
    expect(svc.Type).toEqual(['oneshot']);
    expect(svc.SuccessExitStatus).toEqual(['75']);
    expect(svc.StandardOutput).toEqual(['journal']);
    expect(svc.StandardError).toEqual(['journal']);
    expect(svc.EnvironmentFile).toHaveLength(1);
    expect(svc.ExecStart).toHaveLength(1);
    const [bin, ...args] = splitCommand(svc.ExecStart![0]!);
    expect(path.isAbsolute(bin!) && path.basename(bin!)).toBe('bluegreen');
    expect(args.join(' ')).toMatch(/--log-format json .*sync --from blue --to green/);
    await parsesAndConnects(args);

    const timer = parseUnit(await readFile(path.join(DEPLOY, 'bluegreen-sync.timer'), 'utf8'), 'bluegreen-sync.timer');
    expect(timer.Timer!.Unit).toEqual(['bluegreen-sync.service']);
    expect(timer.Timer!.OnCalendar).toEqual(['*:0/5']);
    expect(timer.Install!.WantedBy).toEqual(['timers.target']);
  });

  it('the CronJob never overlaps, never retries at once, reads its passwords from a Secret, and runs a command the CLI accepts', async () => {
    const docs = parseAllDocuments(await readFile(path.join(DEPLOY, 'cronjob.yaml'), 'utf8'));
    for (const d of docs) expect(d.errors, String(d.errors)).toEqual([]);
    const cron = docs.map((d) => d.toJS()).find((d) => d?.kind === 'CronJob');
    expect(cron.apiVersion).toBe('batch/v1');
    expect(cron.spec.concurrencyPolicy).toBe('Forbid');
    expect(cron.spec.jobTemplate.spec.backoffLimit).toBe(0);
    const pod = cron.spec.jobTemplate.spec.template.spec;
    expect(pod.restartPolicy).toBe('Never');
    const [container] = pod.containers;
    const secrets = (container.env as { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[]).filter((e) => e.valueFrom?.secretKeyRef);
    expect(secrets.map((e) => e.name).sort()).toEqual(['BLUE_PASSWORD', 'GREEN_PASSWORD']);
    expect(container.env.every((e: { value?: string }) => e.value === undefined)).toBe(true); // no secret inline
    // The config comes from the ConfigMap mounted where --config looks.
    const mount = container.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/etc/bluegreen');
    expect(pod.volumes.find((v: { name: string }) => v.name === mount.name).configMap.name).toBe('bluegreen-config');
    expect(container.command).toEqual(['bluegreen']);
    expect(container.args.join(' ')).toMatch(/--log-format json .*sync --from blue --to green/);
    await parsesAndConnects(container.args);
  });
});
