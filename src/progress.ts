/**
 * Progress of long steps (a table copied, hashed, loaded; a freeze held), for the person
 * at the terminal and for the log collector. The library never prints: it reports through
 * `logger.progress(...)`, and the logger hands the events to the renderer built here.
 *
 * - On a terminal: one live line, redrawn at most 10 times a second, with the phase, rows,
 *   bytes, percent and ETA when a total is known (pg_class.reltuples, the planner's
 *   estimate of an incremental read, a manifest's counts). A phase that is one SQL
 *   statement (an UPDATE from a stage, a DELETE, an index build) shows the rows it works
 *   on and a live timer, and once it took a second or more, a line that stays saying what
 *   it did.
 * - Otherwise (cron, `--log-format json`): a JSON line per event, at most one every
 *   `intervalMs` (5 s by default, the first after as long), so a log never fills with
 *   progress; a phase that had a line also gets its last one (what it did), so the log
 *   shows how it ended.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type pg from 'pg';
import type { Logger } from './log.ts';

/** Extra facts of one progress event. */
export interface ProgressDetail {
  /** Bytes moved so far. */
  bytes?: number;
  /** What `done` and `total` count (rows by default; `seconds` for a statement's elapsed time). */
  unit?: 'rows' | 'tables' | 'seconds' | 'bytes';
  /** Step name (`copy`, `stage`, `apply`, `deletes`, `check`, `index`, `analyze`, `load`, `hash`, `frozen`). */
  phase?: string;
  /** What within the phase (`update`, `insert`, an index's name). */
  step?: string;
  /** Rows the running statement works on (a timed phase: the rows staged, the keys to delete). */
  rows?: number;
  /** The phase's last event: what it did (`{ updated, inserted }`, `{ deleted }`, `{ checked, mismatched }`). */
  counts?: Record<string, number>;
  /** The phase's last event (see createProgressRenderer for where it shows). */
  final?: boolean;
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
  /**
   * JSON: also write the last event of every phase, even one that had no line yet (with
   * its `seconds`), so the log times every step (the CLI's --verbose; bench/jobs-model.ts
   * reads them).
   */
  everyPhaseEnd?: boolean;
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
  /** A JSON line of it was written (its last event is then written too). */
  logged?: boolean;
}

export function createProgressRenderer(opts: ProgressRendererOptions): ProgressRenderer {
  const now = opts.now ?? Date.now;
  const interval = opts.intervalMs ?? 5000;
  const tasks = new Map<string, TaskState>();
  let lastDraw = 0;
  // The first JSON line comes once a run has lasted an interval: a short cron run logs no progress.
  let lastJson = now();
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
      // An estimate the count outgrew (reltuples, the planner's) says nothing any more.
      const known = total !== undefined && total > 0 && done <= total && unit !== 'seconds' && unit !== 'bytes';
      const percent = known ? (done / total) * 100 : undefined;
      const rate = elapsed > 0 ? done / elapsed : undefined;
      const eta = known && rate && rate > 0 && done < total ? Math.round((total - done) / rate) : undefined;
      if (opts.mode === 'json') {
        const extraEnd = Boolean(detail.final && !s.logged && opts.everyPhaseEnd);
        if (t - lastJson < interval && !(detail.final && s.logged) && !extraEnd) return;
        if (!extraEnd) lastJson = t; // a short phase's end does not hold back the next progress line
        s.logged = true;
        opts.write(
          JSON.stringify({
            time: new Date(t).toISOString(),
            level: 'info',
            msg: 'progress',
            ...opts.fields?.(),
            event: 'progress',
            task,
            phase: detail.phase,
            step: detail.step,
            unit,
            done: unit === 'seconds' ? Math.round(done * 10) / 10 : Math.round(done),
            total,
            percent: percent === undefined ? undefined : Math.round(percent * 10) / 10,
            rows: detail.rows,
            bytes: detail.bytes,
            etaSeconds: eta,
            counts: detail.counts,
            final: detail.final || undefined,
            // From the task's first event to its last: what the phase took.
            seconds: detail.final ? Math.round(elapsed * 1000) / 1000 : undefined,
          }) + '\n',
        );
        return;
      }
      s.line = renderLine(task, done, known ? total : undefined, detail, percent, eta, elapsed);
      if (detail.final && unit === 'seconds' && done >= 1) {
        // A statement watched for a second or more: what it did stays on the screen.
        opts.write(`\r${s.line}\x1b[K\n`);
        drawn = false;
        s.line = undefined;
        return;
      }
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

/**
 * One terminal line: `  users              stage    [#####.......]  42.0%  420,000 / 1,000,000 rows  61.2 MB  ETA 14 s`,
 * or for a statement `  users              apply update  200,000 rows  4 s`.
 */
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
  const phase = [detail.phase, detail.step].filter(Boolean).join(' ');
  if (unit === 'seconds' && detail.phase === 'frozen') return `  ${task} for ${Math.floor(done)} s`;
  if (unit === 'seconds') {
    const rows = detail.rows !== undefined ? `  ${fmt(detail.rows)} rows` : '';
    const counts = detail.counts ? `: ${Object.entries(detail.counts).map(([k, v]) => `${fmt(v)} ${k}`).join(', ')}` : '';
    return `  ${task.padEnd(18)} ${phase}${rows}${counts}  ${detail.final ? 'in ' : ''}${formatSeconds(Math.floor(done))}`;
  }
  const name = `  ${task.padEnd(18)} ${phase ? phase.padEnd(8) + ' ' : ''}`;
  if (unit === 'bytes') return `${name}${formatBytes(done)}${elapsed > 0.5 ? ` (${formatBytes(done / elapsed)}/s)` : ''}`;
  const width = 20;
  const bar = percent !== undefined ? '[' + '#'.repeat(Math.round((percent / 100) * width)).padEnd(width, '.') + '] ' + `${percent.toFixed(1)}%`.padStart(6) : '';
  const count = `${fmt(done)}${total !== undefined ? ` / ${fmt(total)}` : ''} ${unit}`;
  const bytes = detail.bytes !== undefined ? `  ${formatBytes(detail.bytes)}` : '';
  const speed = detail.bytes !== undefined && elapsed > 0.5 ? ` (${formatBytes(detail.bytes / elapsed)}/s)` : '';
  const left = eta !== undefined ? `  ETA ${formatSeconds(eta)}` : '';
  return `${name}${bar}${bar ? ' ' : ''}${count}${bytes}${speed}${left}`;
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

/** How a tapped stream is counted: rows, never lines (a value may hold newlines). */
export interface TapOptions {
  /** What the stream holds: COPY's CSV (the default), text or binary format. */
  format?: CopyFormat;
  /** The first CSV line is a header, not a row. */
  header?: boolean;
  /** Expected rows of the whole stream (percent and ETA); an estimate is fine. */
  totalRows?: number;
  phase?: string;
  /**
   * Rows already counted by an earlier stage of the same pipeline (a stage that walks the
   * rows anyway, src/verify/stream-hash.ts): used instead of a second walk.
   */
  counted?: () => number;
}

/** The formats COPY writes. */
export type CopyFormat = 'csv' | 'text' | 'binary';

/**
 * A pass-through stream stage that counts the rows and bytes of a COPY stream (see
 * rowCounter) and reports them as `task`'s progress. Put it between a COPY TO and a COPY
 * FROM (or a file) in the same `pipeline`: it holds nothing back.
 */
export function progressTap(logger: Logger, task: string, opts: TapOptions = {}): Transform {
  const counted = opts.counted;
  const counter: RowCounter = counted ? { write() {}, rows: () => counted() } : rowCounter(opts.format ?? 'csv', opts.header ?? false);
  let bytes = 0;
  const phase = opts.phase ?? 'copy';
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      bytes += chunk.length;
      counter.write(chunk);
      logger.progress(task, counter.rows(), opts.totalRows, { bytes, phase });
      cb(null, chunk);
    },
    flush(cb) {
      logger.progress(task, counter.rows(true), opts.totalRows, { bytes, phase, final: true });
      logger.progressDone(task);
      cb();
    },
  });
}

/** Counts the rows of a COPY stream fed to it chunk by chunk. */
export interface RowCounter {
  write(chunk: Buffer): void;
  /** Rows complete so far; `end`: the stream is over (a last row without its newline counts). */
  rows(end?: boolean): number;
}

/**
 * Rows of a COPY stream, exactly, at the cost of a scan for two bytes:
 * - text: one line per row (COPY escapes a newline inside a value as `\n`);
 * - csv: newlines outside double quotes (a quoted value may hold newlines; a doubled
 *   quote inside it leaves and enters the quotes at once, which changes nothing);
 * - binary: the tuple headers, found by walking field lengths (a payload is skipped, never read).
 */
export function rowCounter(format: CopyFormat, header = false): RowCounter {
  if (format === 'binary') return binaryRowCounter();
  let lines = 0;
  let inQuote = false;
  let open = false; // bytes after the last line end
  const quotes = format === 'csv';
  return {
    write(chunk) {
      const n = chunk.length;
      if (n === 0) return;
      // indexOf jumps to the next quote or newline; both positions are kept until passed,
      // so a chunk costs a call per quote and per line, not a step per byte.
      let i = 0;
      let q = quotes ? chunk.indexOf(0x22) : -1;
      let nl = chunk.indexOf(0x0a);
      while (i < n) {
        if (inQuote) {
          if (q === -1) break;
          // A doubled quote inside a quoted value: still inside.
          if (chunk[q + 1] === 0x22) q = chunk.indexOf(0x22, q + 2);
          else {
            inQuote = false;
            i = q + 1;
            q = chunk.indexOf(0x22, i);
          }
          continue;
        }
        if (nl !== -1 && nl < i) nl = chunk.indexOf(0x0a, i);
        if (q !== -1 && (nl === -1 || q < nl)) {
          inQuote = true;
          i = q + 1;
          q = chunk.indexOf(0x22, i);
          continue;
        }
        if (nl === -1) break;
        lines++;
        i = nl + 1;
        nl = chunk.indexOf(0x0a, i);
      }
      open = inQuote || chunk[n - 1] !== 0x0a;
    },
    rows(end = false) {
      return Math.max(0, lines + (end && open ? 1 : 0) - (header ? 1 : 0));
    },
  };
}

/**
 * Binary COPY: an 11-byte signature, 32-bit flags and a header extension of a given
 * length, then per tuple a 16-bit field count (-1 ends the data) and per field a 32-bit
 * length (-1 for NULL) followed by that many bytes.
 */
function binaryRowCounter(): RowCounter {
  const COUNT = 0;
  const LENGTH = 1;
  const EXTENSION = 2;
  const TRAILER = 3;
  let state = EXTENSION;
  let skip = 11 + 4; // signature and flags
  let want = 4; // bytes of the integer being read
  let got = 0;
  let acc = 0;
  let fields = 0;
  let rows = 0;
  return {
    write(chunk) {
      const n = chunk.length;
      let i = 0;
      while (i < n && state !== TRAILER) {
        if (skip > 0) {
          const k = Math.min(skip, n - i);
          skip -= k;
          i += k;
          continue;
        }
        let v: number;
        if (got === 0 && i + want <= n) {
          // The common case: the whole integer is in this chunk.
          v = want === 2 ? ((chunk[i]! << 24) >> 16) | chunk[i + 1]! : (chunk[i]! << 24) | (chunk[i + 1]! << 16) | (chunk[i + 2]! << 8) | chunk[i + 3]!;
          i += want;
        } else {
          acc = acc * 256 + chunk[i++]!;
          if (++got < want) continue;
          v = want === 2 ? (acc >= 0x8000 ? acc - 0x10000 : acc) : acc >= 0x80000000 ? acc - 0x100000000 : acc;
          acc = got = 0;
        }
        if (state === EXTENSION) {
          skip = v;
          state = COUNT;
          want = 2;
        } else if (state === COUNT) {
          if (v < 0) state = TRAILER;
          else {
            rows++;
            fields = v;
            if (fields > 0) [state, want] = [LENGTH, 4];
          }
        } else {
          if (v > 0) {
            const k = Math.min(v, n - i); // the value's bytes, skipped unread
            i += k;
            skip = v - k;
          }
          if (--fields === 0) [state, want] = [COUNT, 2];
        }
      }
    },
    rows: () => rows,
  };
}

/**
 * A phase that is one or a few SQL statements (an UPDATE … FROM a stage, a DELETE, an
 * index build): it reports no rows done until it ends, so its progress is the rows it works
 * on and a live elapsed timer; `end` reports what it did.
 */
export interface PhaseClock {
  /** Moves to the next statement of the phase (`insert` after `update`). */
  step(step: string, rows?: number): void;
  /** The phase succeeded: reports what it did (`counts` replace the step, which said what it was doing) and ends its line. */
  end(counts?: Record<string, number>): void;
  /** The phase failed: ends its line and reports nothing. */
  stop(): void;
}

/** Starts a timed phase of `task` (a table); the timer never keeps the process alive. */
export function startPhase(logger: Logger, task: string, phase: string, opts: { step?: string; rows?: number } = {}): PhaseClock {
  const started = Date.now();
  let { step, rows } = opts;
  const tick = (extra: Partial<ProgressDetail> = {}) =>
    logger.progress(task, (Date.now() - started) / 1000, undefined, { unit: 'seconds', phase, step, rows, ...extra });
  tick();
  const timer = setInterval(tick, 250);
  timer.unref();
  const stop = () => {
    clearInterval(timer);
    logger.progressDone(task);
  };
  return {
    step(next, n) {
      step = next;
      if (n !== undefined) rows = n;
      tick();
    },
    end(counts) {
      clearInterval(timer);
      if (counts) step = undefined;
      tick({ counts, final: true });
      logger.progressDone(task);
    },
    stop,
  };
}

/** Runs `work` as a timed phase of `task`; `counts` says what it did. */
export async function timedPhase<T>(
  logger: Logger,
  task: string,
  phase: string,
  opts: { step?: string; rows?: number },
  work: (clock: PhaseClock) => Promise<T>,
  counts?: (result: T) => Record<string, number>,
): Promise<T> {
  const clock = startPhase(logger, task, phase, opts);
  try {
    const r = await work(clock);
    clock.end(counts?.(r));
    return r;
  } catch (err) {
    clock.stop();
    throw err;
  }
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
