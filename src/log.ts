/**
 * The only way src/ talks to a person or a log collector. Text on a terminal, one JSON
 * object per line otherwise (cron), never a password.
 */
import { redactText } from './redact.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** Per-table progress; drawn as a bar on a terminal, dropped in json/quiet mode. */
  progress(table: string, done: number, total?: number): void;
  /** Marks the end of a progress line. */
  progressDone(table: string): void;
}

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  format: LogFormat;
  level?: LogLevel;
  /** Draw progress (only meaningful on a TTY). */
  progress?: boolean;
  /** Sink, stderr by default; tests pass their own. */
  write?: (line: string) => void;
}

export function createLogger(opts: LoggerOptions): Logger {
  const min = order[opts.level ?? 'info'];
  const write = opts.write ?? ((l: string) => process.stderr.write(l));
  const lastDraw = new Map<string, number>();
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (order[level] < min) return;
    if (opts.format === 'json') {
      write(redactText(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })) + '\n');
    } else {
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
    progress(table, done, total) {
      if (!opts.progress || opts.format === 'json') return;
      const now = Date.now();
      if (now - (lastDraw.get(table) ?? 0) < 100) return;
      lastDraw.set(table, now);
      const width = 24;
      const bar =
        total && total > 0
          ? '[' + '#'.repeat(Math.min(width, Math.round((done / total) * width))).padEnd(width, '.') + ']'
          : '';
      write(`\r  ${table.padEnd(20)} ${bar} ${done.toLocaleString('en-US')}${total ? ' / ' + total.toLocaleString('en-US') : ''} rows\x1b[K`);
    },
    progressDone(table) {
      if (!opts.progress || opts.format === 'json') return;
      if (lastDraw.has(table)) write('\r\x1b[K');
      lastDraw.delete(table);
    },
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
