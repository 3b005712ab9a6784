/**
 * `status`: for each environment, its version and what bluegreen recorded there as a
 * target: watermarks per source (and the lag behind now), the last run, the last verify,
 * and whether it is frozen by a cutover.
 */
import { connect } from './db/connect.ts';
import { detectVersion, VersionCatalogs } from './db/catalog.ts';
import { BluegreenError } from './errors.ts';
import { redactUrl } from './redact.ts';
import { frozenBy, type FreezeInfo } from './cutover/freeze.ts';
import { checkFreezeSeal } from './db/freeze-guard.ts';

export interface EnvironmentStatus {
  name: string;
  url: string;
  reachable: boolean;
  error?: string;
  version?: number | 'empty';
  /** Watermarks this environment holds as a target, by source environment. */
  sources: {
    source: string;
    /** Oldest watermark across the source's tables. */
    watermark: string | null;
    /**
     * Seconds since the last successful run from this source read it; null once a
     * cutover from it completed (that source is frozen: nothing flows from it any more,
     * and a lag growing forever would fire every alert).
     */
    lagSeconds: number | null;
    /** Set when the last successful run from this source was a cutover: when it finished. */
    cutOverAt?: string;
    tables: { table: string; value: string | null }[];
  }[];
  lastRun?: { kind: string; source: string | null; status: string; rows: number; finishedAt: string; fromVersion: number | null; toVersion: number | null };
  lastVerify?: { source: string; clean: boolean; at: string };
  /** The last failed run recorded here, with its error (a failed run changes nothing else). */
  lastFailure?: { kind: string; source: string | null; finishedAt: string; error: string; exitCode: number | null };
  /**
   * Set when a cutover froze this database's writes. `completed` false: that cutover was
   * interrupted (killed); this database must be unfrozen to keep serving.
   */
  frozen?: FreezeInfo;
  /**
   * Set when bluegreen froze this database and the freeze did not hold (a trigger disabled,
   * the flag lifted, rows written since): what was found, one line each.
   */
  freezeBroken?: string[];
}

export async function environmentStatus(name: string, url: string, mappingsDir: string): Promise<EnvironmentStatus> {
  const out: EnvironmentStatus = { name, url: redactUrl(url), reachable: false, sources: [] };
  let client;
  try {
    client = await connect(url, { label: name, applicationName: 'bluegreen status' });
  } catch (err) {
    out.error = err instanceof BluegreenError ? err.message : String(err);
    return out;
  }
  try {
    out.reachable = true;
    try {
      out.version = (await detectVersion(client, new VersionCatalogs(mappingsDir, client), name)).version;
    } catch (err) {
      out.error = err instanceof BluegreenError ? err.message : String(err);
    }
    const has = await client.query(`select to_regclass('bluegreen.runs') is not null as runs, to_regclass('bluegreen.freeze') is not null as freeze`);
    if (has.rows[0].runs) {
      const marks = await client.query<{ source: string; table_name: string; value: string | null; lag: number | null }>(
        `select source, table_name, value, extract(epoch from now() - case when value ~ '^-?[0-9]+$' then null else value::timestamptz end)::float8 as lag from bluegreen.watermarks order by source, table_name`,
      );
      for (const m of marks.rows) {
        let s = out.sources.find((x) => x.source === m.source);
        if (!s) out.sources.push((s = { source: m.source, watermark: null, lagSeconds: null, tables: [] }));
        s.tables.push({ table: m.table_name, value: m.value });
        if (m.lag !== null && (s.lagSeconds === null || m.lag > s.lagSeconds)) {
          s.lagSeconds = Math.round(m.lag);
          s.watermark = m.value;
        }
      }
      // Lag = time since the last successful run read its horizon: the watermark itself
      // may be held back on purpose (open transactions, --lookback) though data is current.
      for (const s of out.sources) {
        const h = await client.query<{ lag: number | null }>(
          `select extract(epoch from now() - (detail->'horizon'->>'at')::timestamptz)::float8 as lag
             from bluegreen.runs where source = $1 and status = 'ok' and kind in ('sync', 'cutover') and detail->'horizon'->>'at' is not null
            order by id desc limit 1`,
          [s.source],
        );
        if (h.rows[0]?.lag != null) s.lagSeconds = Math.round(h.rows[0].lag);
        const last = await client.query<{ kind: string; at: string }>(
          `select kind, finished_at::text as at from bluegreen.runs where source = $1 and status = 'ok' and kind in ('sync', 'cutover') order by id desc limit 1`,
          [s.source],
        );
        if (last.rows[0]?.kind === 'cutover') {
          s.cutOverAt = last.rows[0].at;
          s.lagSeconds = null;
        }
      }
      const fail = await client.query(
        `select kind, source, finished_at::text as "finishedAt", coalesce(detail->>'error', 'unknown error') as error, (detail->>'exitCode')::int as "exitCode"
           from bluegreen.runs where status = 'failed' order by id desc limit 1`,
      );
      if (fail.rows[0]) out.lastFailure = fail.rows[0];
      const run = await client.query(
        `select kind, source, status, rows::int as rows, finished_at::text as "finishedAt", from_version as "fromVersion", to_version as "toVersion"
           from bluegreen.runs order by id desc limit 1`,
      );
      if (run.rows[0]) out.lastRun = run.rows[0];
      const ver = await client.query(`select source, clean, at::text as at from bluegreen.verifies order by id desc limit 1`);
      if (ver.rows[0]) out.lastVerify = ver.rows[0];
    }
    if (has.rows[0].freeze) out.frozen = await frozenBy(client);
    if (has.rows[0].freeze) {
      const held = await checkFreezeSeal(client);
      if (held.findings.length) out.freezeBroken = held.findings;
    }
    return out;
  } finally {
    await client.end().catch(() => {});
  }
}

function ago(seconds: number | null): string {
  if (seconds === null) return '-';
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  return `${(seconds / 3600).toFixed(1)}h`;
}

export function renderStatus(list: EnvironmentStatus[]): string {
  const lines: string[] = [];
  for (const e of list) {
    const v = e.version === undefined ? '?' : e.version === 'empty' ? 'empty' : `v${e.version}`;
    const f = e.frozen;
    const frozen = !f
      ? ''
      : f.completed
        ? `  FROZEN since ${f.since} (${f.by})`
        : `  FROZEN by an interrupted ${f.target ? `cutover to ${f.target}` : f.by}: run bluegreen unfreeze --env ${e.name}`;
    lines.push(`${e.name} ${e.reachable ? v : 'UNREACHABLE'}  ${e.url}${e.freezeBroken ? '  FREEZE BROKEN' : frozen}`);
    if (e.freezeBroken) {
      lines.push(`  bluegreen froze ${e.name} but writes could get through: ${e.freezeBroken.join('; ')}`);
      lines.push(`  they may be missing on the other side: bluegreen verify names them; recover them, then bluegreen unfreeze --env ${e.name}`);
    }
    if (f && !f.completed) {
      lines.push(`  frozen since ${f.since}; the cutover stopped before its final sync completed, so writes made here may be missing elsewhere: unfreeze, let the application write here, then cutover again`);
    }
    if (e.error) lines.push(`  ${e.error}`);
    for (const s of e.sources) {
      lines.push(
        s.cutOverAt
          ? `  cut over from ${s.source} at ${s.cutOverAt}: ${s.source} is frozen, nothing flows from it (no lag)`
          : `  synced from ${s.source}: watermark ${s.watermark ?? '-'} (lag ${ago(s.lagSeconds)})`,
      );
    }
    if (e.lastRun) {
      const r = e.lastRun;
      lines.push(`  last run: ${r.kind} from ${r.source ?? '-'} v${r.fromVersion ?? '?'}->v${r.toVersion ?? '?'} ${r.status}, ${r.rows} rows changed, at ${r.finishedAt}`);
    }
    if (e.lastFailure) {
      const f = e.lastFailure;
      lines.push(`  last failure: ${f.kind}${f.source ? ` from ${f.source}` : ''} at ${f.finishedAt} (exit ${f.exitCode ?? 1}): ${f.error}`);
    }
    if (e.lastVerify) lines.push(`  last verify: ${e.lastVerify.clean ? 'clean' : 'DIFFERENCES'} against ${e.lastVerify.source} at ${e.lastVerify.at}`);
  }
  return lines.join('\n');
}
