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
  /**
   * Differences the last verify of the pair found (full verify, a sync's check or a
   * repair's): 0 when it was clean; null when none was recorded.
   */
  verifyDifferences?: number | null;
  /**
   * Set when the target could not be read this time: the values above are not known now,
   * and the textfile carries forward what it held before (see {@link carryForward}).
   */
  stale?: boolean;
}

/** Per environment: could this run read it, and does a freeze on it hold. */
export interface EnvMetrics {
  env: string;
  up: boolean;
  /** Findings of a freeze that did not hold (0 when none or never frozen); null when unknown (down). */
  freezeBroken: number | null;
}

/** Differences counted in a `bluegreen.verifies` report, whichever step recorded it. */
export function verifyDifferences(clean: boolean, report: any): number {
  if (clean) return 0;
  const tables: any[] = report?.check?.tables ?? report?.tables ?? [];
  let n = 0;
  for (const t of tables) {
    if (t.missing || t.extra || t.changed) n += (t.missing?.count ?? 0) + (t.extra?.count ?? 0) + (t.changed?.count ?? 0) + (t.unexplainedBuckets ?? 0);
    else n += (t.mismatched ?? 0) + (t.sourceRows != null && t.targetRows != null ? Math.abs(t.sourceRows - t.targetRows) : 0);
  }
  // Not clean is at least one difference, whatever the report's shape: an alert on > 0 fires.
  return Math.max(1, n);
}

/** The last run, the last failure and the rows counter of each source recorded on `url`. */
type Facts = Pick<PairMetrics, 'lastRun' | 'lastFailure' | 'rowsTotal' | 'verifyDifferences'>;

export async function runFacts(url: string, label: string, sources: string[]): Promise<Map<string, Facts>> {
  const out = new Map<string, Facts>();
  if (sources.length === 0) return out;
  const client = await connect(url, { label, applicationName: 'bluegreen status' });
  try {
    const has = await client.query(`select to_regclass('bluegreen.runs') is not null as ok, to_regclass('bluegreen.verifies') is not null as verifies`);
    if (!has.rows[0].ok) return out;
    const cols = `kind, status, status = 'ok' as success, started_at::text as "startedAt", finished_at::text as "finishedAt",
                  extract(epoch from finished_at - started_at)::float8 as "durationSeconds", rows::float8 as rows, detail->>'error' as error`;
    for (const source of sources) {
      const last = await client.query<RunFacts>(`select ${cols} from bluegreen.runs where source = $1 order by id desc limit 1`, [source]);
      const failed = await client.query<RunFacts>(`select ${cols} from bluegreen.runs where source = $1 and status <> 'ok' order by id desc limit 1`, [source]);
      const total = await client.query<{ n: number }>(`select coalesce(sum(rows), 0)::float8 as n from bluegreen.runs where source = $1 and status = 'ok'`, [source]);
      const verify = has.rows[0].verifies
        ? (await client.query<{ clean: boolean; report: unknown }>(`select clean, report from bluegreen.verifies where source = $1 order by id desc limit 1`, [source])).rows[0]
        : undefined;
      out.set(source, {
        lastRun: last.rows[0] ?? null,
        lastFailure: failed.rows[0] ?? null,
        rowsTotal: total.rows[0]!.n,
        verifyDifferences: verify ? verifyDifferences(verify.clean, verify.report) : null,
      });
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
        verifyDifferences: f?.verifyDifferences ?? null,
      });
    }
  }
  ENVS.set(pairs, envsOf(list));
  return pairs;
}

/**
 * The environments behind a list {@link pairsOf} returned (their reachability and freeze),
 * so the textfile written from it says which side was down even where no pair is left.
 */
const ENVS = new WeakMap<PairMetrics[], EnvMetrics[]>();
export function attachEnvs(pairs: PairMetrics[], envs: EnvMetrics[]): PairMetrics[] {
  ENVS.set(pairs, envs);
  return pairs;
}
export function envsOfPairs(pairs: PairMetrics[]): EnvMetrics[] {
  return ENVS.get(pairs) ?? [];
}

export function envsOf(list: EnvironmentStatus[]): EnvMetrics[] {
  return list.map((e) => ({ env: e.name, up: e.reachable, freezeBroken: e.reachable ? (e.freezeBroken?.length ?? 0) : null }));
}

function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

const PAIR_METRICS: [string, string, string, (p: PairMetrics) => number | null][] = [
  // A frozen source has nothing the target lacks (status says null: no lag to grow forever).
  ['bluegreen_lag_seconds', 'gauge', 'Seconds the target is behind its source (since the last successful run read it); 0 while the source is frozen; NaN when not known', (p) => p.lagSeconds ?? (p.frozen && !p.stale ? 0 : null)],
  ['bluegreen_last_run_success', 'gauge', '1 if the last run of the pair committed, 0 if it failed', (p) => (p.lastRun ? (p.lastRun.success ? 1 : 0) : null)],
  ['bluegreen_last_run_duration_seconds', 'gauge', 'Duration of the last run of the pair', (p) => p.lastRun?.durationSeconds ?? null],
  ['bluegreen_last_run_timestamp_seconds', 'gauge', 'When the last run of the pair finished (Unix time)', (p) => (p.lastRun ? Date.parse(p.lastRun.finishedAt.replace(' ', 'T').replace(/([+-]\d{2})$/, '$1:00')) / 1000 : null)],
  ['bluegreen_rows_total', 'counter', 'Rows inserted, updated or deleted by successful runs of the pair', (p) => p.rowsTotal],
  ['bluegreen_frozen', 'gauge', "1 while the pair's source refuses writes (frozen by a cutover)", (p) => (p.frozen ? 1 : 0)],
  ['bluegreen_verify_differences', 'gauge', 'Differences the last verify of the pair found (0: clean)', (p) => p.verifyDifferences ?? null],
];

const ENV_METRICS: [string, string, string, (e: EnvMetrics) => number | null][] = [
  ['bluegreen_up', 'gauge', '1 if this run could connect to the environment, 0 if not', (e) => (e.up ? 1 : 0)],
  ['bluegreen_freeze_broken', 'gauge', "Findings of a cutover's freeze that did not hold on the environment (writes got through); 0 when it holds or none", (e) => e.freezeBroken],
];

const num = (v: number | null): string => (v === null || Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v));

/**
 * The Prometheus text exposition of the pairs and environments. Every metric has a sample
 * for every pair (or environment): a value not known is written NaN, never left out, so
 * a series does not vanish when a run fails (an absent series fires no alert).
 */
export function renderPrometheus(pairs: PairMetrics[], envs: EnvMetrics[] = []): string {
  const lines: string[] = [];
  for (const [name, type, help, value] of PAIR_METRICS) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const p of pairs) lines.push(`${name}{from="${label(p.from)}",to="${label(p.to)}"} ${num(value(p))}`);
  }
  for (const [name, type, help, value] of ENV_METRICS) {
    if (!envs.length) continue;
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const e of envs) lines.push(`${name}{env="${label(e.env)}"} ${num(value(e))}`);
  }
  return lines.join('\n') + '\n';
}

/** The samples of a Prometheus textfile, by `name{labels}` as written (comments skipped). */
export function parseSamples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+\{.*\}|\S+) (\S+)$/.exec(line);
    if (!m) continue;
    const v = m[2] === '+Inf' ? Infinity : m[2] === '-Inf' ? -Infinity : Number(m[2]);
    out.set(m[1]!, v);
  }
  return out;
}

/**
 * What a run could not read now, from the textfile it replaces (`previous`, written
 * `ageSeconds` ago): a counter never goes back (rows_total is the larger of the two); a
 * pair whose target was down keeps its last values (its lag grown by the file's age, so a
 * lag alert still fires while the target stays down); an environment that was down keeps
 * its freeze finding. A pair the file held whose target is down now and that this run
 * could not list at all is kept, marked stale.
 */
export function carryForward(pairs: PairMetrics[], envs: EnvMetrics[], previous: Map<string, number>, ageSeconds: number): PairMetrics[] {
  const prev = (name: string, p: { from: string; to: string }): number | undefined => {
    const v = previous.get(`${name}{from="${label(p.from)}",to="${label(p.to)}"}`);
    return v === undefined || Number.isNaN(v) ? undefined : v;
  };
  const down = new Set(envs.filter((e) => !e.up).map((e) => e.env));
  const out = pairs.map((p) => ({ ...p }));
  // Pairs of the old file whose target could not be read now (status lists no pair for it).
  for (const key of previous.keys()) {
    const m = /^bluegreen_rows_total\{from="((?:[^"\\]|\\.)*)",to="((?:[^"\\]|\\.)*)"\}$/.exec(key);
    if (!m) continue;
    const unlabel = (v: string) => v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const [from, to] = [unlabel(m[1]!), unlabel(m[2]!)];
    if (down.has(to) && !out.some((p) => p.from === from && p.to === to)) {
      out.push({ from, to, lagSeconds: null, frozen: false, lastRun: null, lastFailure: null, rowsTotal: 0, verifyDifferences: null, stale: true });
    }
  }
  for (const p of out) {
    const rows = prev('bluegreen_rows_total', p);
    if (rows !== undefined && rows > p.rowsTotal) p.rowsTotal = rows;
    if (!p.stale && !down.has(p.to)) continue;
    const lag = prev('bluegreen_lag_seconds', p);
    if (p.lagSeconds === null && lag !== undefined) p.lagSeconds = Math.round(lag + Math.max(0, ageSeconds));
    if (p.verifyDifferences == null) p.verifyDifferences = prev('bluegreen_verify_differences', p) ?? null;
    if (down.has(p.from)) p.frozen = (prev('bluegreen_frozen', p) ?? 0) === 1;
    if (!p.lastRun) {
      const success = prev('bluegreen_last_run_success', p);
      const at = prev('bluegreen_last_run_timestamp_seconds', p);
      if (success !== undefined && at !== undefined) {
        const finishedAt = new Date(at * 1000).toISOString();
        p.lastRun = { kind: 'sync', status: success ? 'ok' : 'failed', success: success === 1, startedAt: finishedAt, finishedAt, durationSeconds: prev('bluegreen_last_run_duration_seconds', p) ?? 0, rows: 0 };
      }
    }
  }
  for (const e of envs) {
    if (e.freezeBroken !== null) continue;
    const v = previous.get(`bluegreen_freeze_broken{env="${label(e.env)}"}`);
    if (v !== undefined && !Number.isNaN(v)) e.freezeBroken = v;
  }
  return out;
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
