/**
 * Progress of long steps (a table copied, hashed, loaded; a freeze held), for the person
 * at the terminal and for the log collector. The library never prints: it reports through
 * `logger.progress(...)`, and the logger hands the events to the renderer built here.
 *
 * - On a terminal: one live line, redrawn at most 10 times a second, with rows, bytes,
 *   percent and ETA when a total is known (pg_class.reltuples or a manifest's counts).
 * - Otherwise (cron, `--log-format json`): a JSON line per event, at most one every
 *   `intervalMs` (5 s by default), so a log never fills with progress.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type pg from 'pg';
import type { Logger } from './log.ts';

/** Extra facts of one progress event. */
export interface ProgressDetail {
  /** Bytes moved so far. */
  bytes?: number;
  /** What `done` and `total` count (rows by default). */
  unit?: 'rows' | 'tables' | 'seconds' | 'bytes';
  /** Free-form step name (`copy`, `hash`, `load`, `frozen`). */
  phase?: string;
}

export interface ProgressRendererOptions {
  /** `tty`: a live line; `json`: throttled JSON lines; `off`: nothing. */
  mode: 'tty' | 'json' | 'off';
  /** Where lines go (stderr by the CLI). */
  write: (text: string) => void;
  /** Fields added to every JSON event (run id, command, endpoints). */
  fields?: () => Record<string, unknown>;
  /** Minimum milliseconds between two JSON events (default 5000). */
  intervalMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export interface ProgressRenderer {
  update(task: string, done: number, total: number | undefined, detail?: ProgressDetail): void;
  finish(task: string): void;
  /** Erases a live line before a log line is written over it (terminal only). */
  clear(): void;
}

interface TaskState {
  started: number;
  /** Last rendered terminal text of this task. */
  line?: string;
}

export function createProgressRenderer(opts: ProgressRendererOptions): ProgressRenderer {
  const now = opts.now ?? Date.now;
  const interval = opts.intervalMs ?? 5000;
  const tasks = new Map<string, TaskState>();
  let lastDraw = 0;
  let lastJson = -Infinity;
  let drawn = false;
  const state = (task: string) => {
    let s = tasks.get(task);
    if (!s) tasks.set(task, (s = { started: now() }));
    return s;
  };
  // Every task in progress on one line (a freeze timer beside the table being copied).
  const draw = () => {
    const width = Math.max(40, (process.stderr.columns || 120) - 1);
    const text = [...tasks.values()].map((t) => t.line).filter(Boolean).join('  |') ;
    opts.write(`\r${text.length > width ? text.slice(0, width - 1) + '…' : text}\x1b[K`);
    drawn = true;
  };
  return {
    update(task, done, total, detail = {}) {
      if (opts.mode === 'off') return;
      const s = state(task);
      const t = now();
      const elapsed = (t - s.started) / 1000;
      const unit = detail.unit ?? 'rows';
      const known = total !== undefined && total > 0 && unit !== 'seconds' && unit !== 'bytes';
      const percent = known ? Math.min(100, (done / total) * 100) : undefined;
      const rate = elapsed > 0 ? done / elapsed : undefined;
      const eta = known && rate && rate > 0 && done < total ? Math.round((total - done) / rate) : undefined;
      if (opts.mode === 'json') {
        if (t - lastJson < interval) return;
        lastJson = t;
        opts.write(
          JSON.stringify({
            time: new Date(t).toISOString(),
            level: 'info',
            msg: 'progress',
            ...opts.fields?.(),
            event: 'progress',
            task,
            phase: detail.phase,
            unit,
            done: Math.round(done),
            total,
            percent: percent === undefined ? undefined : Math.round(percent * 10) / 10,
            bytes: detail.bytes,
            etaSeconds: eta,
          }) + '\n',
        );
        return;
      }
      s.line = renderLine(task, done, total, detail, percent, eta, elapsed);
      if (t - lastDraw < 100) return;
      lastDraw = t;
      draw();
    },
    finish(task) {
      if (!tasks.delete(task) || opts.mode !== 'tty') return;
      if (drawn) {
        opts.write('\r\x1b[K');
        drawn = false;
      }
      if (tasks.size > 0) draw();
    },
    clear() {
      if (opts.mode === 'tty' && drawn) {
        opts.write('\r\x1b[K');
        drawn = false;
      }
    },
  };
}

/** One terminal line: `  users  [#####.......]  42.0%  420,000 / 1,000,000 rows  61.2 MB  ETA 14 s`. */
export function renderLine(
  task: string,
  done: number,
  total: number | undefined,
  detail: ProgressDetail,
  percent: number | undefined,
  eta: number | undefined,
  elapsed: number,
): string {
  const unit = detail.unit ?? 'rows';
  if (unit === 'seconds') return `  ${task} for ${Math.floor(done)} s`;
  if (unit === 'bytes') return `  ${task.padEnd(18)} ${formatBytes(done)}${elapsed > 0.5 ? ` (${formatBytes(done / elapsed)}/s)` : ''}`;
  const width = 20;
  const bar = percent !== undefined ? '[' + '#'.repeat(Math.round((percent / 100) * width)).padEnd(width, '.') + '] ' + `${percent.toFixed(1)}%`.padStart(6) : '';
  const count = `${fmt(done)}${total !== undefined ? ` / ${fmt(total)}` : ''} ${unit}`;
  const bytes = detail.bytes !== undefined ? `  ${formatBytes(detail.bytes)}` : '';
  const speed = detail.bytes !== undefined && elapsed > 0.5 ? ` (${formatBytes(detail.bytes / elapsed)}/s)` : '';
  const left = eta !== undefined ? `  ETA ${formatSeconds(eta)}` : '';
  return `  ${task.padEnd(18)} ${bar}${bar ? ' ' : ''}${count}${bytes}${speed}${left}`;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} kB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

function formatSeconds(s: number): string {
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** How to count rows in a stream: lines (COPY text/CSV), or bytes divided by an average row size (binary COPY). */
export interface TapOptions {
  /** Estimated rows of the whole stream (percent and ETA). */
  totalRows?: number;
  /** Binary COPY has no line breaks: rows are estimated as bytes / bytesPerRow (0: unknown, bytes only). */
  bytesPerRow?: number;
  phase?: string;
}

/**
 * A pass-through stream stage that counts bytes and rows (lines of COPY text or CSV; a
 * quoted CSV newline counts as one more, so the count is an estimate) and reports them
 * as `task`'s progress. Put it between a COPY TO and a COPY FROM (or a file) in the same
 * `pipeline`: it holds nothing back.
 */
export function progressTap(logger: Logger, task: string, opts: TapOptions = {}): Transform {
  let rows = 0;
  let bytes = 0;
  const phase = opts.phase ?? 'copy';
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      bytes += chunk.length;
      if (opts.bytesPerRow === 0) {
        logger.progress(task, bytes, undefined, { bytes, phase, unit: 'bytes' });
        return cb(null, chunk);
      }
      if (opts.bytesPerRow) rows = Math.floor(bytes / opts.bytesPerRow);
      else for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) rows++;
      logger.progress(task, rows, opts.totalRows, { bytes, phase });
      cb(null, chunk);
    },
    flush(cb) {
      logger.progressDone(task);
      cb();
    },
  });
}

/**
 * PostgreSQL's own size estimate of a table (pg_class.reltuples and the heap's bytes), or
 * an empty object when it has none yet (never analyzed or vacuumed).
 */
export async function tableEstimate(client: pg.Client, table: string): Promise<{ rows?: number; bytesPerRow?: number }> {
  const r = await client.query<{ n: number | null; b: number | null }>(
    `select reltuples::float8 as n, pg_relation_size(oid)::float8 as b from pg_class where oid = to_regclass($1)`,
    [quoteIdent(table)],
  );
  const n = r.rows[0]?.n;
  const b = r.rows[0]?.b;
  if (n === null || n === undefined || n <= 0) return {};
  return { rows: Math.round(n), bytesPerRow: b ? Math.max(1, b / n) : undefined };
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * A live "writes frozen on blue for N s" line while a cutover holds its freeze. Returns
 * the stop function; the timer never keeps the process alive.
 */
export function freezeTimer(logger: Logger, environment: string): () => void {
  const started = Date.now();
  const task = `writes frozen on ${environment}`;
  const tick = () => logger.progress(task, (Date.now() - started) / 1000, undefined, { unit: 'seconds', phase: 'frozen' });
  tick();
  const timer = setInterval(tick, 250);
  timer.unref();
  return () => {
    clearInterval(timer);
    logger.progressDone(task);
  };
}
