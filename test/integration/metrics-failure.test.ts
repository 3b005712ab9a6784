/**
 * What monitoring sees when a run fails. A sync that could not reach
 * green used to write HELP/TYPE lines with no sample for the lag and last_run_success,
 * rows_total 0 and frozen 0: every alert stayed silent exactly when it was needed. Here
 * the textfile a failed run writes is parsed strictly and the README's own alert rules
 * (read from its "Monitoring" section, so the docs and this test cannot drift apart) are
 * evaluated against it, as Prometheus would.
 */
import { readFile, access } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.ts';
import { makePair } from '../helpers/pair.ts';
import { query } from '../helpers/pg.ts';
import { tempDir } from '../helpers/tmp.ts';

const DOWN = 'postgres://u:pw@127.0.0.1:1/down';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A strict Prometheus text-format (0.0.4) reader: every line a HELP/TYPE comment or a
 * sample, every sample's metric declared by a TYPE line before it. NaN and ±Inf are
 * values the format allows.
 */
function parseProm(text: string): Sample[] {
  const typed = new Set<string>();
  const out: Sample[] = [];
  for (const line of text.trimEnd().split('\n')) {
    const t = /^# TYPE ([a-zA-Z_:][\w:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (t) {
      typed.add(t[1]!);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][\w:]* .*$/.test(line)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{((?:[a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample: ${line}`);
    if (!typed.has(m[1]!)) throw new Error(`sample before its TYPE line: ${line}`);
    const raw = m[3]!;
    const value = raw === 'NaN' ? NaN : raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    if (raw !== 'NaN' && Number.isNaN(value)) throw new Error(`not a number: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

interface Alert {
  expr: string;
  metric: string;
  op: string;
  bound: number;
}

/** The alert rules README's "Monitoring" section names: every `bluegreen_metric OP number` in backticks. */
async function readmeAlerts(): Promise<Alert[]> {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('### Monitoring');
  const section = readme.slice(start, readme.indexOf('\n### ', start + 1));
  return [...section.matchAll(/`(bluegreen_[a-z_]+) (>|<|>=|<=|==|!=) (-?[\d.]+)`/g)].map((m) => ({ expr: m[0].slice(1, -1), metric: m[1]!, op: m[2]!, bound: Number(m[3]) }));
}

/** The samples an alert's condition selects (PromQL's comparison filter: NaN never compares true). */
function firing(alert: Alert, samples: Sample[]): Sample[] {
  const cmp: Record<string, (a: number, b: number) => boolean> = {
    '>': (a, b) => a > b,
    '<': (a, b) => a < b,
    '>=': (a, b) => a >= b,
    '<=': (a, b) => a <= b,
    '==': (a, b) => a === b,
    '!=': (a, b) => a !== b,
  };
  return samples.filter((s) => s.name === alert.metric && cmp[alert.op]!(s.value, alert.bound));
}

function value(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length)?.value;
}

const PAIR = { from: 'blue', to: 'green' };
const PAIR_METRICS = [
  'bluegreen_lag_seconds',
  'bluegreen_last_run_success',
  'bluegreen_last_run_duration_seconds',
  'bluegreen_last_run_timestamp_seconds',
  'bluegreen_rows_total',
  'bluegreen_frozen',
  'bluegreen_verify_differences',
];

describe('metrics of a failed run', () => {
  it("a sync that cannot reach green writes every metric, rows_total does not go back, and the README's alerts fire", async () => {
    const alerts = await readmeAlerts();
    // The README names at least the lag, failure, reachability, freeze and verify alerts.
    expect(alerts.map((a) => a.metric)).toEqual(expect.arrayContaining(['bluegreen_lag_seconds', 'bluegreen_last_run_success', 'bluegreen_up', 'bluegreen_freeze_broken', 'bluegreen_verify_differences']));

    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '20']);
    const dir = await tempDir('metrics-failure');
    const file = path.join(dir, 'bluegreen-blue-green.prom');
    const ok = await p.run(['sync', '--metrics-file', file]);
    expect(ok.code, ok.stderr).toBe(0);
    const before = parseProm(await readFile(file, 'utf8'));
    const rows = value(before, 'bluegreen_rows_total', PAIR)!;
    expect(rows).toBeGreaterThanOrEqual(20);
    const lagBefore = value(before, 'bluegreen_lag_seconds', PAIR)!;
    expect(lagBefore).toBeGreaterThanOrEqual(0);
    // A healthy run fires nothing.
    for (const a of alerts) expect(firing(a, before), a.expr).toEqual([]);

    const failed = await p.run(['sync', '--metrics-file', file], { GREEN_URL: DOWN });
    expect(failed.code, failed.stderr).toBe(1);
    const after = parseProm(await readFile(file, 'utf8'));
    // Every metric has a sample for the pair (an absent series fires no alert).
    for (const name of PAIR_METRICS) expect(value(after, name, PAIR), name).not.toBeUndefined();
    expect(value(after, 'bluegreen_last_run_success', PAIR)).toBe(0);
    // A counter: carried forward from the file, not reset to 0 because green's run log was out of reach.
    expect(value(after, 'bluegreen_rows_total', PAIR)).toBe(rows);
    // The lag is not known now; it is carried forward and grows, never reads as "current".
    expect(value(after, 'bluegreen_lag_seconds', PAIR)).toBeGreaterThanOrEqual(lagBefore);
    expect(value(after, 'bluegreen_frozen', PAIR)).toBe(0);
    expect(value(after, 'bluegreen_up', { env: 'blue' })).toBe(1);
    expect(value(after, 'bluegreen_up', { env: 'green' })).toBe(0);
    expect(value(after, 'bluegreen_freeze_broken', { env: 'blue' })).toBe(0);
    expect(value(after, 'bluegreen_freeze_broken', { env: 'green' })).not.toBeUndefined();

    // Every alert's metric is in the file, and the failure alerts fire on it.
    for (const a of alerts) expect(after.some((s) => s.name === a.metric), `${a.expr}: no sample`).toBe(true);
    const fired = alerts.filter((a) => firing(a, after).length > 0).map((a) => a.expr);
    expect(fired).toEqual(expect.arrayContaining(['bluegreen_last_run_success == 0', 'bluegreen_up == 0']));
    expect(firing(alerts.find((a) => a.metric === 'bluegreen_up')!, after).map((s) => s.labels.env)).toEqual(['green']);

    // status with green still down keeps the pair in the file (its target is the one down).
    const st = await p.run(['status', '--env', 'blue', 'green', '--metrics-file', file], { GREEN_URL: DOWN });
    expect(st.code).toBe(1);
    const status = parseProm(await readFile(file, 'utf8'));
    expect(value(status, 'bluegreen_rows_total', PAIR)).toBe(rows);
    expect(value(status, 'bluegreen_up', { env: 'green' })).toBe(0);
    expect(value(status, 'bluegreen_last_run_success', PAIR)).toBe(0);

    // Green back: the next sync succeeds and the counter goes on from where it was.
    await query(p.blue, `update users set username = username || '+' where id in (select id from users order by id limit 2)`);
    const back = await p.run(['sync', '--metrics-file', file]);
    expect(back.code, back.stderr).toBe(0);
    const healed = parseProm(await readFile(file, 'utf8'));
    expect(value(healed, 'bluegreen_rows_total', PAIR)).toBeGreaterThanOrEqual(rows + 2);
    expect(value(healed, 'bluegreen_last_run_success', PAIR)).toBe(1);
    for (const a of alerts) expect(firing(a, healed), a.expr).toEqual([]);
  });

  it('a verify that finds differences is counted in bluegreen_verify_differences and its alert fires', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '20']);
    await p.ok(['sync']);
    // A row changed on green behind bluegreen's back.
    await query(p.green, `update users set login = login || '!' where id in (select id from users order by id limit 3)`);
    const v = await p.run(['verify']);
    expect(v.code).toBe(3);
    const file = path.join(await tempDir('metrics-verify'), 'status.prom');
    await p.ok(['status', '--env', 'blue', 'green', '--metrics-file', file]);
    const samples = parseProm(await readFile(file, 'utf8'));
    expect(value(samples, 'bluegreen_verify_differences', PAIR)).toBe(3);
    const alert = (await readmeAlerts()).find((a) => a.metric === 'bluegreen_verify_differences')!;
    expect(firing(alert, samples)).toHaveLength(1);
  });

  it('a --metrics-file in a missing folder is exit 2 before the sync runs', async () => {
    const p = await makePair(1, 2);
    await p.ok(['seed', '--to', 'blue', '--rows', '5']);
    const file = path.join(await tempDir('metrics-missing'), 'no-such-folder', 'x.prom');
    const r = await p.run(['sync', '--metrics-file', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--metrics-file .*does not exist/);
    // Nothing ran: green holds no state (a sync would have created bluegreen.runs) and no rows.
    const [state] = await query<{ ok: boolean }>(p.green, `select to_regclass('bluegreen.runs') is not null as ok`);
    expect(state!.ok).toBe(false);
    const [users] = await query<{ n: number }>(p.green, `select count(*)::int as n from users`);
    expect(users!.n).toBe(0);
    await expect(access(file)).rejects.toThrow();
  });
});
