import { describe, expect, it } from 'vitest';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createProgressRenderer, progressTap } from '../../../src/progress.ts';
import { createLogger } from '../../../src/log.ts';
import { envelope, isoTimestamp } from '../../../scripts/envelope.ts';
import { renderPrometheus } from '../../../src/metrics.ts';

describe('progress', () => {
  it('on a terminal: rows, bytes, percent and ETA on one live line', () => {
    let t = 0;
    const out: string[] = [];
    const r = createProgressRenderer({ mode: 'tty', write: (l) => out.push(l), now: () => t });
    r.update('users', 0, 1000, { bytes: 0 });
    t = 2000;
    r.update('users', 500, 1000, { bytes: 1_048_576 });
    const line = out.at(-1)!;
    expect(line).toMatch(/^\r  users/);
    expect(line).toContain('50.0%');
    expect(line).toContain('500 / 1,000 rows');
    expect(line).toContain('1.0 MB');
    expect(line).toContain('ETA 2 s');
    r.finish('users');
    expect(out.at(-1)).toBe('\r\x1b[K');
  });

  it('not on a terminal: JSON lines, at most one per interval', () => {
    let t = 0;
    const out: string[] = [];
    const r = createProgressRenderer({ mode: 'json', write: (l) => out.push(l), now: () => t, fields: () => ({ runId: 'r1', command: 'sync' }) });
    for (let i = 0; i < 100; i++) {
      t += 100; // 10 s of updates, every 100 ms
      r.update('users', i * 10, 1000, { bytes: i });
    }
    expect(out.length).toBe(2);
    const first = JSON.parse(out[0]!);
    expect(first).toMatchObject({ level: 'info', msg: 'progress', runId: 'r1', command: 'sync', task: 'users', total: 1000 });
    expect(first.time).toMatch(/^\d{4}-\d{2}-\d{2}T/);
  });

  it('a tap in a pipeline counts rows and bytes and passes every byte through', async () => {
    const lines: string[] = [];
    const logger = createLogger({ format: 'json', progress: true, write: (l) => lines.push(l), progressIntervalMs: 0 });
    const data = Buffer.from('a,b\n1,2\n3,4\n');
    const got: Buffer[] = [];
    await pipeline(Readable.from([data.subarray(0, 5), data.subarray(5)]), progressTap(logger, 't', { totalRows: 3 }), new Writable({ write: (c, _e, cb) => (got.push(c), cb()) }));
    expect(Buffer.concat(got)).toEqual(data);
    const last = JSON.parse(lines.filter((l) => l.includes('"progress"')).at(-1)!);
    expect(last).toMatchObject({ task: 't', done: 3, total: 3, percent: 100, bytes: data.length });
  });
});

describe('--json envelope', () => {
  it('turns PostgreSQL timestamp text into ISO-8601, keeping microseconds', () => {
    expect(isoTimestamp('2026-11-30 01:58:15.123456+00')).toBe('2026-11-30T01:58:15.123456Z');
    expect(isoTimestamp('2026-11-30 01:58:15+05:30')).toBe('2026-11-30T01:58:15+05:30');
    expect(isoTimestamp('2026-11-30 01:58:15-08')).toBe('2026-11-30T01:58:15-08:00');
    expect(isoTimestamp('hello 2026')).toBe('hello 2026');
    const e = envelope('status', 0, 12, { lastRun: { finishedAt: '2026-11-30 01:58:15.5+00' }, tables: [{ missing: { keys: ['2026-11-30 01:58:15+00'] } }] }) as any;
    expect(e).toMatchObject({ command: 'status', formatVersion: 1, ok: true, exitCode: 0, durationMs: 12 });
    expect(e.report.lastRun.finishedAt).toBe('2026-11-30T01:58:15.5Z');
    // Application data (keys a verify names) is left as it is.
    expect(e.report.tables[0].missing.keys[0]).toBe('2026-11-30 01:58:15+00');
  });
});

describe('metrics', () => {
  it('renders the Prometheus text format with from/to labels, escaping label values', () => {
    const text = renderPrometheus([
      { from: 'blue', to: 'gr"een', lagSeconds: 12, frozen: true, rowsTotal: 5, lastFailure: null,
        lastRun: { kind: 'sync', status: 'ok', success: true, startedAt: '2026-11-30 01:58:10+00', finishedAt: '2026-11-30 01:58:15+00', durationSeconds: 5, rows: 5 } },
    ]);
    expect(text).toContain('# TYPE bluegreen_lag_seconds gauge');
    expect(text).toContain('bluegreen_lag_seconds{from="blue",to="gr\\"een"} 12');
    expect(text).toContain('bluegreen_frozen{from="blue",to="gr\\"een"} 1');
    expect(text).toContain('bluegreen_last_run_timestamp_seconds{from="blue",to="gr\\"een"} 1796003895');
    expect(text.endsWith('\n')).toBe(true);
  });
});
