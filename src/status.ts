/**
 * `status`: for each environment, its version and what bluegreen recorded there as a
 * target: watermarks per source (and the lag behind now), the last run, the last verify,
 * and whether it is frozen by a cutover.
 */
import { connect } from './db/connect.ts';
import { detectVersion, VersionCatalogs } from './db/catalog.ts';
import { BluegreenError } from './errors.ts';
import { redactUrl } from './redact.ts';

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
    /** now() minus that watermark, in seconds. */
    lagSeconds: number | null;
    tables: { table: string; value: string | null }[];
  }[];
  lastRun?: { kind: string; source: string | null; status: string; rows: number; finishedAt: string; fromVersion: number | null; toVersion: number | null };
  lastVerify?: { source: string; clean: boolean; at: string };
  /** Set when a cutover froze this database's writes. */
  frozen?: { since: string; by: string };
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
        `select source, table_name, value, extract(epoch from now() - value::timestamptz)::float8 as lag from bluegreen.watermarks order by source, table_name`,
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
      const run = await client.query(
        `select kind, source, status, rows::int as rows, finished_at::text as "finishedAt", from_version as "fromVersion", to_version as "toVersion"
           from bluegreen.runs order by id desc limit 1`,
      );
      if (run.rows[0]) out.lastRun = run.rows[0];
      const ver = await client.query(`select source, clean, at::text as at from bluegreen.verifies order by id desc limit 1`);
      if (ver.rows[0]) out.lastVerify = ver.rows[0];
    }
    if (has.rows[0].freeze) {
      const f = await client.query(`select since::text as since, by from bluegreen.freeze where active`);
      if (f.rows[0]) out.frozen = f.rows[0];
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
    lines.push(`${e.name} ${e.reachable ? v : 'UNREACHABLE'}  ${e.url}${e.frozen ? `  FROZEN since ${e.frozen.since} (${e.frozen.by})` : ''}`);
    if (e.error) lines.push(`  ${e.error}`);
    for (const s of e.sources) lines.push(`  synced from ${s.source}: watermark ${s.watermark ?? '-'} (lag ${ago(s.lagSeconds)})`);
    if (e.lastRun) {
      const r = e.lastRun;
      lines.push(`  last run: ${r.kind} from ${r.source ?? '-'} v${r.fromVersion ?? '?'}->v${r.toVersion ?? '?'} ${r.status}, ${r.rows} rows changed, at ${r.finishedAt}`);
    }
    if (e.lastVerify) lines.push(`  last verify: ${e.lastVerify.clean ? 'clean' : 'DIFFERENCES'} against ${e.lastVerify.source} at ${e.lastVerify.at}`);
  }
  return lines.join('\n');
}
