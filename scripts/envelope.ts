/**
 * The `--json` envelope every reporting command prints: one shape for cron jobs, monitoring
 * and scripts, described by src/schemas/reports/envelope.schema.json, with a schema per
 * command's `report` beside it. `formatVersion` changes only when a field changes meaning
 * or disappears; fields may be added within a version.
 */

/** Bump on an incompatible change to the envelope or a report. */
export const FORMAT_VERSION = 1;

export interface Envelope {
  command: string;
  formatVersion: number;
  ok: boolean;
  exitCode: number;
  durationMs: number;
  /** The command's report (null when it failed before producing one). */
  report: unknown;
  /** Set when the command failed: the error class, its message and what to do next. */
  error?: { code: string; message: string; hint?: string };
  /**
   * Set (true) by `sync --dry-run`: nothing was written, and `report` is a plan
   * (plan.schema.json), not a sync report.
   */
  dryRun?: true;
  /** Set (true) by `sync --repair`: `report` is a repair's (sync-repair.schema.json). */
  repair?: true;
}

export function envelope(command: string, exitCode: number, durationMs: number, report: unknown, error?: Envelope['error'], variant?: 'dryRun' | 'repair'): Envelope {
  return {
    command,
    ...(variant === 'dryRun' ? { dryRun: true as const } : variant === 'repair' ? { repair: true as const } : {}),
    formatVersion: FORMAT_VERSION,
    ok: exitCode === 0,
    exitCode,
    durationMs,
    report: isoTimestamps(report),
    ...(error ? { error } : {}),
  };
}

// PostgreSQL's text output of timestamptz/timestamp (DateStyle ISO): `2026-11-30 01:58:15.123456+00`.
const PG_TIMESTAMP = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)(?:([+-]\d{2})(?::?(\d{2}))?(?::\d{2})?)?$/;

/**
 * `2026-11-30 01:58:15.123456+00` -> `2026-11-30T01:58:15.123456+00:00` (ISO-8601,
 * microseconds kept, still accepted by PostgreSQL as input). Other strings are returned as
 * they are.
 */
export function isoTimestamp(text: string): string {
  const m = PG_TIMESTAMP.exec(text);
  if (!m) return text;
  const zone = m[3] === undefined ? '' : m[3] === '+00' && (m[4] ?? '00') === '00' ? 'Z' : `${m[3]}:${m[4] ?? '00'}`;
  return `${m[1]}T${m[2]}${zone}`;
}

// Values of the application's rows (keys a verify names) are data, not report timestamps.
const DATA_KEYS = new Set(['missing', 'extra', 'changed', 'keys', 'sample', 'samples', 'rows']);

/** Every PostgreSQL timestamp string in a report, as ISO-8601 (a deep copy). */
export function isoTimestamps(value: unknown, key = ''): unknown {
  if (typeof value === 'string') return isoTimestamp(value);
  if (Array.isArray(value)) return DATA_KEYS.has(key) ? value : value.map((v) => isoTimestamps(v, key));
  if (value instanceof Date) return value.toISOString();
  if (value && typeof value === 'object') {
    if (DATA_KEYS.has(key)) return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, isoTimestamps(v, k)]));
  }
  return value;
}
