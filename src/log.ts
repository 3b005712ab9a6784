/**
 * The only way src/ talks to a person or a log collector. Text on a terminal, one JSON
 * object per line otherwise (cron), never a password.
 */
import { redactText } from './redact.ts';
import { createProgressRenderer, type ProgressDetail, type ProgressRenderer } from './progress.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /**
   * Per-table progress: a live line on a terminal, a JSON line at most every few seconds
   * otherwise, nothing in quiet mode (src/progress.ts renders it).
   */
  progress(table: string, done: number, total?: number, detail?: ProgressDetail): void;
  /** Marks the end of a progress line. */
  progressDone(table: string): void;
}

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  format: LogFormat;
  level?: LogLevel;
  /** Report progress (a live line in text format, throttled JSON lines in json format). */
  progress?: boolean;
  /** Sink, stderr by default; tests pass their own. */
  write?: (line: string) => void;
  /**
   * Fields added to every JSON line (run id, command, endpoints); read at each line, so
   * the caller may add endpoints once it has resolved them.
   */
  fields?: Record<string, unknown>;
  /** Minimum milliseconds between two JSON progress lines (default 5000). */
  progressIntervalMs?: number;
}

export function createLogger(opts: LoggerOptions): Logger {
  const min = order[opts.level ?? 'info'];
  const write = opts.write ?? ((l: string) => process.stderr.write(l));
  const base = opts.fields ?? {};
  const bar: ProgressRenderer = createProgressRenderer({
    mode: !opts.progress ? 'off' : opts.format === 'json' ? 'json' : 'tty',
    write: (l) => write(redactText(l)),
    fields: () => base,
    intervalMs: opts.progressIntervalMs,
    // --verbose: every phase's end is in the log, with its seconds (steps timed one by one).
    everyPhaseEnd: min <= order.debug,
  });
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (order[level] < min) return;
    if (opts.format === 'json') {
      write(redactText(JSON.stringify({ time: new Date().toISOString(), level, msg, ...base, ...fields })) + '\n');
    } else {
      bar.clear();
      // Fields are for machines; a person reads the message (and sees fields with --verbose).
      const extra = min <= order.debug && fields && Object.keys(fields).length ? ' ' + formatFields(fields) : '';
      const prefix = level === 'info' ? '' : `${level}: `;
      write(redactText(`${prefix}${msg}${extra}`) + '\n');
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    progress: (table, done, total, detail) => bar.update(table, done, total, detail),
    progressDone: (table) => bar.finish(table),
  };
}

function formatFields(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

/** A logger that drops everything; for library callers that want silence. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  progress() {},
  progressDone() {},
};
