/**
 * Monitoring: per pair (source -> target) the lag, the last run and the last failure, as
 * `status --json` shows them and as a Prometheus textfile (node_exporter's textfile
 * collector reads `*.prom` files from a folder: each is replaced whole, by write + rename,
 * so the collector never reads half a file).
 */
import { randomBytes } from 'node:crypto';
import { rename, writeFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { connect } from './db/connect.ts';
import type { EnvironmentStatus } from './status.ts';

export interface RunFacts {
  kind: string;
  status: string;
  /** True when the run committed (status ok). */
  success: boolean;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  /** Rows the run inserted, updated or deleted. */
  rows: number;
  /** The error a failed run recorded, when it recorded one. */
  error?: string | null;
}

export interface PairMetrics {
  from: string;
  to: string;
  /** Seconds since the last successful run's horizon (how far behind the target is). */
  lagSeconds: number | null;
  /** The source's writes are frozen (after a cutover, or an interrupted one). */
  frozen: boolean;
  lastRun: RunFacts | null;
  lastFailure: RunFacts | null;
  /** Rows written by every successful run of this pair (a counter). */
  rowsTotal: number;
}

/** The last run, the last failure and the rows counter of each source recorded on `url`. */
export async function runFacts(url: string, label: string, sources: string[]): Promise<Map<string, Pick<PairMetrics, 'lastRun' | 'lastFailure' | 'rowsTotal'>>> {
  const out = new Map<string, Pick<PairMetrics, 'lastRun' | 'lastFailure' | 'rowsTotal'>>();
  if (sources.length === 0) return out;
  const client = await connect(url, { label, applicationName: 'bluegreen status' });
  try {
    const has = await client.query(`select to_regclass('bluegreen.runs') is not null as ok`);
    if (!has.rows[0].ok) return out;
    const cols = `kind, status, status = 'ok' as success, started_at::text as "startedAt", finished_at::text as "finishedAt",
                  extract(epoch from finished_at - started_at)::float8 as "durationSeconds", rows::float8 as rows, detail->>'error' as error`;
    for (const source of sources) {
      const last = await client.query<RunFacts>(`select ${cols} from bluegreen.runs where source = $1 order by id desc limit 1`, [source]);
      const failed = await client.query<RunFacts>(`select ${cols} from bluegreen.runs where source = $1 and status <> 'ok' order by id desc limit 1`, [source]);
      const total = await client.query<{ n: number }>(`select coalesce(sum(rows), 0)::float8 as n from bluegreen.runs where source = $1 and status = 'ok'`, [source]);
      out.set(source, { lastRun: last.rows[0] ?? null, lastFailure: failed.rows[0] ?? null, rowsTotal: total.rows[0]!.n });
    }
    return out;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Every pair seen in a status: each environment's sources, as targets. */
export async function pairsOf(list: (EnvironmentStatus & { rawUrl?: string })[], urlOf: (name: string) => string | undefined): Promise<PairMetrics[]> {
  const pairs: PairMetrics[] = [];
  for (const e of list) {
    if (!e.reachable || e.sources.length === 0) continue;
    const url = urlOf(e.name);
    const facts = url ? await runFacts(url, e.name, e.sources.map((s) => s.source)) : new Map();
    for (const s of e.sources) {
      const f = facts.get(s.source);
      const source = list.find((x) => x.name === s.source);
      pairs.push({
        from: s.source,
        to: e.name,
        lagSeconds: s.lagSeconds,
        frozen: Boolean(source?.frozen),
        lastRun: f?.lastRun ?? null,
        lastFailure: f?.lastFailure ?? null,
        rowsTotal: f?.rowsTotal ?? 0,
      });
    }
  }
  return pairs;
}

function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** The Prometheus text exposition of the pairs. */
export function renderPrometheus(pairs: PairMetrics[]): string {
  const metrics: [string, string, string, (p: PairMetrics) => number | null][] = [
    ['bluegreen_lag_seconds', 'gauge', 'Seconds the target is behind its source (since the last successful run read it)', (p) => p.lagSeconds],
    ['bluegreen_last_run_success', 'gauge', '1 if the last run of the pair committed, 0 if it failed', (p) => (p.lastRun ? (p.lastRun.success ? 1 : 0) : null)],
    ['bluegreen_last_run_duration_seconds', 'gauge', 'Duration of the last run of the pair', (p) => p.lastRun?.durationSeconds ?? null],
    ['bluegreen_last_run_timestamp_seconds', 'gauge', 'When the last run of the pair finished (Unix time)', (p) => (p.lastRun ? Date.parse(p.lastRun.finishedAt.replace(' ', 'T').replace(/([+-]\d{2})$/, '$1:00')) / 1000 : null)],
    ['bluegreen_rows_total', 'counter', 'Rows inserted, updated or deleted by successful runs of the pair', (p) => p.rowsTotal],
    ['bluegreen_frozen', 'gauge', "1 while the pair's source refuses writes (frozen by a cutover)", (p) => (p.frozen ? 1 : 0)],
  ];
  const lines: string[] = [];
  for (const [name, type, help, value] of metrics) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const p of pairs) {
      const v = value(p);
      if (v === null || !Number.isFinite(v)) continue;
      lines.push(`${name}{from="${label(p.from)}",to="${label(p.to)}"} ${v}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** Replaces `file` with `text` atomically: a temporary file in the same folder, then rename. */
export async function writeMetricsFile(file: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(3).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}
