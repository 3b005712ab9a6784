/**
 * `status`: for each environment, its version and what bluegreen recorded there as a
 * target: watermarks per source (and the lag behind now), the last run, the last verify,
 * and whether it is frozen by a cutover. As a source: whether its deletes are captured, and
 * the backlog of `bluegreen.deleted_rows` (how much of it every target has consumed).
 */
import { connect } from './db/connect.ts';
import { detectVersion, VersionCatalogs } from './db/catalog.ts';
import { BluegreenError } from './errors.ts';
import { redactUrl } from './redact.ts';
import { frozenBy, type FreezeInfo } from './cutover/freeze.ts';
import { checkFreezeSeal } from './db/freeze-guard.ts';
import { CAPTURE_TRIGGER } from './sync/deletes.ts';
import type pg from 'pg';

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
    /**
     * Set when the last successful run from this source was a cutover: when it finished.
     * Left out once the source is known to write again (unfrozen, or rolled back to):
     * then the lag is real again (see {@link settleCutOvers}).
     */
    cutOverAt?: string;
    /**
     * The open transaction that held the last run's watermark back, if one did (a long
     * or prepared transaction on the source): its rows are read again until it ends.
     */
    heldBackBy?: string;
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
  /** Set when delete capture was ever enabled on this database (as a source). */
  capture?: CaptureStatus;
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
        const h = await client.query<{ lag: number | null; held: string | null }>(
          `select extract(epoch from now() - (detail->'horizon'->>'at')::timestamptz)::float8 as lag, detail->'horizon'->>'heldBackBy' as held
             from bluegreen.runs where source = $1 and status = 'ok' and kind in ('sync', 'cutover') and detail->'horizon'->>'at' is not null
            order by id desc limit 1`,
          [s.source],
        );
        if (h.rows[0]?.lag != null) s.lagSeconds = Math.round(h.rows[0].lag);
        if (h.rows[0]?.held) s.heldBackBy = h.rows[0].held;
        const last = await client.query<{ kind: string; at: string }>(
          `select kind, finished_at::text as at from bluegreen.runs where source = $1 and status = 'ok' and kind in ('sync', 'cutover') order by id desc limit 1`,
          [s.source],
        );
        if (last.rows[0]?.kind === 'cutover') {
          s.cutOverAt = last.rows[0].at;
          lagAfterCutover.set(s, s.lagSeconds);
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
    const capture = await captureStatus(client);
    if (capture) out.capture = capture;
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

/**
 * The lag a pair whose last run was a cutover would have, kept out of the report: it is
 * shown again only if the source turns out to write again ({@link settleCutOvers}).
 */
const lagAfterCutover = new WeakMap<EnvironmentStatus['sources'][number], number | null>();

/**
 * A target only knows that its last run from a source was a cutover, not whether that
 * source is still frozen: after `bluegreen unfreeze` of it, or a rollback cutover back to
 * it, it writes again, and "frozen, nothing flows from it (no lag)" would be stale. When
 * the source is among `list` and reachable, its own freeze decides: not frozen, the pair
 * is an ordinary one again (its lag since the cutover shown). A source not shown, or
 * unreachable, keeps the cutover's reading.
 */
export function settleCutOvers(list: EnvironmentStatus[]): void {
  for (const target of list) {
    for (const s of target.sources) {
      if (!s.cutOverAt) continue;
      const source = list.find((e) => e.name === s.source);
      if (!source?.reachable || source.frozen) continue;
      delete s.cutOverAt;
      s.lagSeconds = lagAfterCutover.get(s) ?? null;
    }
  }
}

/**
 * What `status` exits with: 3 when a freeze did not hold (writes may be missing on the
 * other side: the most urgent), else 1 when an environment could not be read (the report
 * is incomplete), else 0.
 */
export function statusExitCode(list: EnvironmentStatus[]): 0 | 1 | 3 {
  if (list.some((e) => e.freezeBroken?.length)) return 3;
  if (list.some((e) => !e.reachable)) return 1;
  return 0;
}

/**
 * Counts of `bluegreen.deleted_rows` stop here (per table) and are reported as "at least":
 * status must stay cheap on a source whose backlog nobody prunes.
 */
export const CAPTURE_COUNT_LIMIT = 100_000;

/** Delete capture on a source and the backlog it keeps (src/sync/deletes.ts). */
export interface CaptureStatus {
  /** Source tables whose deletes are recorded now (capture trigger present and enabled). */
  tables: string[];
  /** Tables capture was enabled on whose trigger is gone or disabled: their deletes are not recorded. */
  disarmed: string[];
  /** Rows in `bluegreen.deleted_rows` (counted up to CAPTURE_COUNT_LIMIT per table). */
  rows: number;
  /** True when a count stopped at the limit: `rows` (and `prunable`) are lower bounds. */
  atLeast: boolean;
  /** When the oldest recorded delete's transaction started; null when none is recorded. */
  oldest: string | null;
  /** Its age in seconds; null when none is recorded. */
  oldestAgeSeconds: number | null;
  /**
   * Per target kept current from this source: the oldest watermark of the captured tables
   * there (a run reads recorded deletes from its table's watermark on, so older ones are
   * consumed) and how many recorded deletes are older. Filled by `captureConsumers`.
   */
  consumers: { target: string; before: string | null; prunable: number }[];
  /**
   * The bound for `bluegreen capture prune --before`: the oldest `before` of all consumers
   * (null when a consumer has no watermark for a captured table yet, or there is none).
   */
  pruneBefore: string | null;
  /** Recorded deletes older than `pruneBefore`: what that prune would forget. */
  prunable: number;
}

/**
 * Capture on this database as a source, undefined when it was never enabled. Cheap on any
 * backlog: per table, the oldest row and a count bounded by CAPTURE_COUNT_LIMIT, both read
 * from the (table_name, deleted_at) index capture creates, nothing from application tables.
 */
async function captureStatus(client: pg.Client): Promise<CaptureStatus | undefined> {
  const has = await client.query<{ ok: boolean }>(`select to_regclass('bluegreen.capture') is not null and to_regclass('bluegreen.deleted_rows') is not null as ok`);
  if (!has.rows[0]!.ok) return undefined;
  const tables = await client.query<{ table_name: string; armed: boolean }>(
    `select c.table_name,
            exists (select 1 from pg_trigger g where g.tgrelid = to_regclass(quote_ident(c.table_name)) and g.tgname = $1 and g.tgenabled <> 'D') as armed
       from bluegreen.capture c order by 1`,
    [CAPTURE_TRIGGER],
  );
  const out: CaptureStatus = { tables: [], disarmed: [], rows: 0, atLeast: false, oldest: null, oldestAgeSeconds: null, consumers: [], pruneBefore: null, prunable: 0 };
  for (const t of tables.rows) (t.armed ? out.tables : out.disarmed).push(t.table_name);
  for (const t of tables.rows) {
    const r = await client.query<{ n: number; oldest: string | null; age: number | null }>(
      `select (select count(*)::int from (select 1 from bluegreen.deleted_rows where table_name = $1 limit $2) x) as n,
              o.at::text as oldest, extract(epoch from now() - o.at)::float8 as age
         from (select min(deleted_at) as at from bluegreen.deleted_rows where table_name = $1) o`,
      [t.table_name, CAPTURE_COUNT_LIMIT],
    );
    const x = r.rows[0]!;
    out.rows += x.n;
    if (x.n >= CAPTURE_COUNT_LIMIT) out.atLeast = true;
    if (x.age !== null && (out.oldestAgeSeconds === null || x.age > out.oldestAgeSeconds)) {
      out.oldestAgeSeconds = Math.round(x.age);
      out.oldest = x.oldest;
    }
  }
  return out;
}

/** Recorded deletes of `tables` stamped before `before`, each table's count bounded like captureStatus's. */
async function countBefore(client: pg.Client, tables: string[], before: string): Promise<{ n: number; atLeast: boolean }> {
  let n = 0;
  let atLeast = false;
  for (const t of tables) {
    const r = await client.query<{ n: number }>(
      `select count(*)::int as n from (select 1 from bluegreen.deleted_rows where table_name = $1 and deleted_at < $2::timestamptz limit $3) x`,
      [t, before, CAPTURE_COUNT_LIMIT],
    );
    n += r.rows[0]!.n;
    if (r.rows[0]!.n >= CAPTURE_COUNT_LIMIT) atLeast = true;
  }
  return { n, atLeast };
}

/**
 * Fills each capturing source's `consumers`, `pruneBefore` and `prunable` from the
 * watermarks its targets hold (`list` is every environment `status` read). A run of a pair
 * consumes a table's recorded deletes from that table's watermark on (its lower bound), so
 * those stamped earlier are consumed by that pair; a watermark already allows for
 * transactions open at the sync (the horizon). A pair syncing with --lookback reads further
 * back: prune before `pruneBefore` minus that margin.
 */
export async function captureConsumers(list: EnvironmentStatus[], urlOf: (name: string) => string | undefined): Promise<void> {
  for (const source of list) {
    const cap = source.capture;
    const url = urlOf(source.name);
    if (!cap || !url || cap.tables.length + cap.disarmed.length === 0) continue;
    const captured = [...cap.tables, ...cap.disarmed];
    const client = await connect(url, { label: source.name, applicationName: 'bluegreen status' });
    try {
      let unknown = false;
      for (const target of list) {
        const pair = target.sources.find((s) => s.source === source.name);
        if (!pair || pair.cutOverAt) continue;
        const marks = pair.tables.filter((t) => captured.includes(t.table) && t.value !== null && !/^-?[0-9]+$/.test(t.value)).map((t) => t.value!);
        // Compared on the source's server: the texts may carry different zones.
        const before = marks.length
          ? (await client.query<{ at: string }>(`select min(v::timestamptz)::text as at from unnest($1::text[]) v`, [marks])).rows[0]!.at
          : null;
        if (before === null) unknown = true;
        const prunable = before === null ? 0 : (await countBefore(client, captured, before)).n;
        cap.consumers.push({ target: target.name, before, prunable });
      }
      const bounds = cap.consumers.map((c) => c.before);
      if (!unknown && bounds.length) {
        cap.pruneBefore = (await client.query<{ at: string }>(`select min(v::timestamptz)::text as at from unnest($1::text[]) v`, [bounds])).rows[0]!.at;
        const c = await countBefore(client, captured, cap.pruneBefore);
        cap.prunable = c.n;
        if (c.atLeast) cap.atLeast = true;
      }
    } finally {
      await client.end().catch(() => {});
    }
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
        : `  FROZEN by a cutover to ${f.target ?? '?'} that has not completed (still running, or its target could not be read here)`;
    lines.push(`${e.name} ${e.reachable ? v : 'UNREACHABLE'}  ${e.url}${e.freezeBroken ? '  FREEZE BROKEN' : frozen}`);
    if (e.freezeBroken) {
      lines.push(`  bluegreen froze ${e.name} but writes could get through: ${e.freezeBroken.join('; ')}`);
      lines.push(`  they may be missing on the other side: bluegreen verify names them; recover them, then bluegreen unfreeze --env ${e.name}`);
    }
    if (f && !f.completed) {
      lines.push(
        `  frozen since ${f.since}; a running cutover completes or unfreezes it itself; a stopped one is decided by the next status, sync or cutover that reaches ${f.target ?? 'its target'} (completed if ${f.target ?? 'it'} committed the final sync, else unfrozen)`,
      );
    }
    if (e.error) lines.push(`  ${e.error}`);
    for (const s of e.sources) {
      lines.push(
        s.cutOverAt
          ? `  cut over from ${s.source} at ${s.cutOverAt}: nothing flows from ${s.source} since (no lag)`
          : `  synced from ${s.source}: watermark ${s.watermark ?? '-'} (lag ${ago(s.lagSeconds)})`,
      );
      if (s.heldBackBy && !s.cutOverAt) lines.push(`    watermark held back by ${s.heldBackBy} (its rows are read again each run until it ends)`);
    }
    if (e.lastRun) {
      const r = e.lastRun;
      // A failed run records no versions: say only what is known.
      const versions = r.fromVersion != null && r.toVersion != null ? ` v${r.fromVersion}->v${r.toVersion}` : '';
      lines.push(`  last run: ${r.kind} from ${r.source ?? '-'}${versions} ${r.status}, ${r.rows} rows changed, at ${r.finishedAt}`);
    }
    if (e.lastFailure) {
      const f = e.lastFailure;
      lines.push(`  last failure: ${f.kind}${f.source ? ` from ${f.source}` : ''} at ${f.finishedAt} (exit ${f.exitCode ?? 1}): ${f.error}`);
    }
    if (e.lastVerify) lines.push(`  last verify: ${e.lastVerify.clean ? 'clean' : 'DIFFERENCES'} against ${e.lastVerify.source} at ${e.lastVerify.at}`);
    if (e.capture) lines.push(...renderCapture(e.name, e.capture));
  }
  return lines.join('\n');
}

function renderCapture(env: string, c: CaptureStatus): string[] {
  const lines: string[] = [];
  const n = (x: number) => `${c.atLeast ? '>=' : ''}${x}`;
  lines.push(
    c.tables.length
      ? `  delete capture on ${c.tables.join(', ')}: ${n(c.rows)} recorded deletes${c.oldest ? `, oldest ${c.oldest} (${ago(c.oldestAgeSeconds)} ago)` : ''}`
      : `  delete capture: off (syncs from ${env} compare whole key sets for deletes)`,
  );
  if (c.disarmed.length) lines.push(`  capture NOT recording on ${c.disarmed.join(', ')} (trigger dropped or disabled): bluegreen capture enable --env ${env}`);
  for (const x of c.consumers) lines.push(`    consumed by ${x.target} up to ${x.before ?? '- (no watermark yet)'}: ${x.prunable} older`);
  if (c.pruneBefore && c.prunable > 0) lines.push(`    prunable: ${n(c.prunable)} (bluegreen capture prune --env ${env} --before '${c.pruneBefore}')`);
  return lines;
}
