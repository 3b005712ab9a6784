import { describe, expect, it } from 'vitest';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createProgressRenderer, progressTap, rowCounter, type CopyFormat } from '../../../src/progress.ts';
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

  // What export counted as 166 rows for a 12-row table: lines, where values hold newlines.
  it('counts rows, not lines: CSV values with newlines, commas and quotes, split anywhere', () => {
    const csv = Buffer.from('id,note\n1,"two\nlines"\n2,"a ""quoted"", comma\n,\r\n"\n3,\n4,""\n5,"""\n"""\n');
    const count = (format: CopyFormat, data: Buffer, header: boolean, at: number[]) => {
      const c = rowCounter(format, header);
      let from = 0;
      for (const cut of [...at, data.length]) {
        c.write(data.subarray(from, cut));
        from = cut;
      }
      return c.rows(true);
    };
    for (let i = 0; i <= csv.length; i++) {
      for (let j = i; j <= csv.length; j += 3) expect(count('csv', csv, true, [i, j])).toBe(5);
    }
    // COPY's text format escapes newlines in values: one line is one row.
    expect(count('text', Buffer.from('1\ttwo\\nlines\n2\t"q"\n'), false, [5])).toBe(2);
    // A last row without its newline still counts at the end.
    expect(count('csv', Buffer.from('1,a\n2,b'), false, [])).toBe(2);
  });

  it('counts the rows of binary COPY by its tuple headers, whatever the payload holds', () => {
    const int16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
    const int32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeInt32BE(n);
      return b;
    };
    const field = (v: Buffer | null) => (v === null ? int32(-1) : Buffer.concat([int32(v.length), v]));
    const tuple = (...vs: (Buffer | null)[]) => Buffer.concat([int16(vs.length), ...vs.map(field)]);
    const data = Buffer.concat([
      Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'),
      int32(0),
      int32(3),
      Buffer.from('ext'),
      tuple(Buffer.from('a\nb\n\n'), null),
      tuple(Buffer.alloc(300, 0xff), Buffer.from([0, 1, 0, 2])),
      tuple(),
      tuple(null, null, Buffer.from('\n')),
      int16(-1),
    ]);
    for (let cut = 0; cut <= data.length; cut++) {
      const c = rowCounter('binary');
      for (const part of [data.subarray(0, cut), data.subarray(cut)]) for (let i = 0; i < part.length; i += 7) c.write(part.subarray(i, i + 7));
      expect(c.rows(true)).toBe(4);
    }
  });

  it('a statement phase: rows it works on and a timer; on a terminal what it did stays once it took a second', () => {
    let t = 1000;
    const out: string[] = [];
    const r = createProgressRenderer({ mode: 'tty', write: (l) => out.push(l), now: () => t });
    r.update('users', 0.4, undefined, { unit: 'seconds', phase: 'apply', step: 'update', rows: 200_000 });
    expect(out.at(-1)).toMatch(/users +apply update  200,000 rows  0 s/);
    t = 4000;
    r.update('users', 3.2, undefined, { unit: 'seconds', phase: 'apply', rows: 200_000, counts: { updated: 150_000, inserted: 50_000 }, final: true });
    expect(out.at(-1)).toMatch(/users +apply  200,000 rows: 150,000 updated, 50,000 inserted  in 3 s\x1b\[K\n$/);
    // A freeze timer keeps its own words.
    r.update('writes frozen on blue', 2, undefined, { unit: 'seconds', phase: 'frozen' });
    t = 5000;
    r.update('writes frozen on blue', 3, undefined, { unit: 'seconds', phase: 'frozen' });
    expect(out.at(-1)).toContain('writes frozen on blue for 3 s');
  });

  it('in a JSON log a phase that had a line also gets its last one; a phase that had none stays out', () => {
    let t = 0;
    const out: string[] = [];
    const r = createProgressRenderer({ mode: 'json', write: (l) => out.push(l), now: () => t });
    // Nothing in the first 5 s of a run.
    r.update('roles', 0, 10, { phase: 'stage' });
    r.update('roles', 10, 10, { phase: 'stage', final: true });
    r.finish('roles');
    t = 5000;
    r.update('users', 0, undefined, { unit: 'seconds', phase: 'apply', rows: 10 });
    t = 5100;
    r.update('users', 0.1, undefined, { unit: 'seconds', phase: 'apply', rows: 10, counts: { updated: 10, inserted: 0 }, final: true });
    r.finish('users');
    t = 5200;
    r.update('roles', 0, undefined, { unit: 'seconds', phase: 'check', rows: 3 });
    r.update('roles', 0.1, undefined, { unit: 'seconds', phase: 'check', rows: 3, counts: { checked: 3, mismatched: 0 }, final: true });
    const events = out.map((l) => JSON.parse(l));
    expect(events).toHaveLength(2);
    expect(events[1]).toMatchObject({ task: 'users', phase: 'apply', rows: 10, counts: { updated: 10, inserted: 0 }, final: true });
  });

  it('with --verbose a JSON log has the end of every phase, with its seconds, and still no more progress lines', () => {
    let t = 0;
    const out: string[] = [];
    const r = createProgressRenderer({ mode: 'json', write: (l) => out.push(l), now: () => t, everyPhaseEnd: true });
    r.update('roles', 0, 10, { phase: 'copy' });
    t = 250;
    r.update('roles', 10, 10, { phase: 'copy', final: true });
    r.finish('roles');
    // A short phase's end does not reset the interval: users' first line still comes at 5 s.
    t = 5000;
    r.update('users', 1, undefined, { unit: 'seconds', phase: 'index', step: 'users_pkey (1/3)' });
    t = 5100;
    r.update('users', 1.1, undefined, { unit: 'seconds', phase: 'index', step: 'users_pkey (1/3)', final: true });
    const events = out.map((l) => JSON.parse(l));
    expect(events).toHaveLength(3);
    expect(events[0]).toMatchObject({ task: 'roles', phase: 'copy', done: 10, final: true, seconds: 0.25 });
    expect(events[1].final).toBeUndefined();
    expect(events[1].seconds).toBeUndefined();
    expect(events[2]).toMatchObject({ task: 'users', phase: 'index', final: true, seconds: 0.1 });
  });

  it('createLogger turns every phase end on at debug level only', () => {
    for (const level of ['info', 'debug'] as const) {
      const lines: string[] = [];
      const logger = createLogger({ format: 'json', level, progress: true, write: (l) => lines.push(l) });
      logger.progress('roles', 10, 10, { phase: 'copy', final: true });
      expect(lines.length).toBe(level === 'debug' ? 1 : 0);
    }
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
