/**
 * Turns the raw samples of bench/run.sh into the printed table and bench/results/latest.json.
 *
 *   npx tsx bench/report.ts SAMPLES.tsv OUT.json --rows N --total T --rounds R
 *     [--seed-seconds S] [--pg MAJOR] [--rss-source TEXT] [--count table=n ...]
 *     [--pgcopydb VERSION --cores N]
 *
 * SAMPLES.tsv has one line per measurement: round, method, seconds, peak RSS in KiB ('-'
 * when not measured). The raw pipe is measured per table (raw_<table>); its round total is
 * their sum. Ratios are median over median, the baseline being the raw pipe of the same
 * tables measured in the same run (compare ratios, not seconds across machines).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';

interface Sample {
  round: number;
  method: string;
  seconds: number;
  rssKb: number | null;
  /** CPU seconds of the clients and both servers (absent in samples of older runs). */
  cpuS: number | null;
  /** The same as [client, blue, green]. */
  cpuSplit: number[] | null;
}

const [samplesPath, outPath, ...rest] = process.argv.slice(2);
if (!samplesPath || !outPath) {
  process.stderr.write('usage: tsx bench/report.ts SAMPLES.tsv OUT.json --rows N --total T --rounds R ...\n');
  process.exit(2);
}
const flags = new Map<string, string[]>();
for (let i = 0; i < rest.length; i += 2) flags.set(rest[i]!.replace(/^--/, ''), [...(flags.get(rest[i]!.replace(/^--/, '')) ?? []), rest[i + 1]!]);
const flag = (name: string) => flags.get(name)?.[0];
const rows = Number(flag('rows'));
const total = Number(flag('total'));
const counts = Object.fromEntries((flags.get('count') ?? []).map((kv) => kv.split('=')).map(([k, v]) => [k!, Number(v)]));

const samples: Sample[] = readFileSync(samplesPath, 'utf8')
  .trim()
  .split('\n')
  .slice(1)
  .map((line) => {
    const [round, method, seconds, rss, cpu, split] = line.split('\t');
    return {
      round: Number(round),
      method: method!,
      seconds: Number(seconds),
      rssKb: rss === '-' ? null : Number(rss),
      cpuS: cpu ? Number(cpu) : null,
      cpuSplit: split ? split.split('/').map(Number) : null,
    };
  });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Seconds (or CPU seconds) per round of one method (raw_* summed per round into `raw`). */
function perRound(method: string, of: 'seconds' | 'cpuS' = 'seconds'): Map<number, number> {
  const out = new Map<number, number>();
  for (const s of samples) {
    const m = s.method.startsWith('raw_') && method === 'raw' ? 'raw' : s.method;
    const v = s[of];
    if (m === method && v !== null) out.set(s.round, (out.get(s.round) ?? 0) + v);
  }
  return out;
}

const raw = perRound('raw');
const rawMedian = median([...raw.values()]);
const rawCpu = perRound('raw', 'cpuS');
const rawCpuMedian = rawCpu.size ? median([...rawCpu.values()]) : null;
const cpus = os.cpus().length;

interface Line {
  key: string;
  label: string;
  /** Rows this method moves or compares, for rows/s. */
  rows: number;
}
const changed = Math.round(counts.users ? counts.users / 100 : rows / 100);
const lines: Line[] = [
  { key: 'raw', label: '(a) psql \\copy | psql \\copy, 4 tables', rows: total },
  { key: 'raw_users', label: '    of which users alone', rows: counts.users ?? rows },
  { key: 'bg_full_sync', label: '(b) bluegreen sync v1->v2, full', rows: total },
  { key: 'bg_full_sync_noverify', label: '    the same with --no-verify', rows: total },
  { key: 'bg_full_sync_baseline', label: '    the same, BASELINE checkout', rows: total },
  { key: 'bg_full_jobs2', label: '    the same with --no-verify --jobs 2', rows: total },
  { key: 'bg_incremental', label: '(c) bluegreen sync, 1% users changed', rows: changed },
  { key: 'bg_incremental_noverify', label: '    the same with --no-verify', rows: changed },
  { key: 'bg_incremental_reconcile', label: '    the same with --reconcile (no capture)', rows: changed },
  { key: 'bg_incremental_p1', label: '    0.1% users changed', rows: Math.round(changed / 10) },
  { key: 'bg_incremental_p1_reconcile', label: '    0.1%, with --reconcile', rows: Math.round(changed / 10) },
  { key: 'apply_floor', label: '(c0) apply floor: hand-written SQL, 1%', rows: changed },
  { key: 'apply_floor_noverify', label: '    the same, beside --no-verify', rows: changed },
  { key: 'apply_floor_reconcile', label: '    the same, beside --reconcile', rows: changed },
  { key: 'apply_floor_p1', label: '    apply floor, 0.1%', rows: Math.round(changed / 10) },
  { key: 'apply_floor_p1_reconcile', label: '    the same, beside --reconcile', rows: Math.round(changed / 10) },
  { key: 'bg_verify', label: '(d) bluegreen verify', rows: total },
  { key: 'bg_verify_diff', label: '    the same with 10 rows differing', rows: total },
  { key: 'bg_repair', label: '    sync --repair of those 10 rows', rows: 10 },
  { key: 'bg_cutover', label: '(f) cutover, 1% users changed since sync', rows: changed },
  { key: 'pg_dump', label: '(e) pg_dump --data-only | psql', rows: total },
  { key: 'pgcopydb', label: '(g) pgcopydb clone, default jobs (4 + 4)', rows: total },
  { key: 'pgcopydb_jobs_cores', label: `    the same, --table/--index-jobs ${flag('cores') ?? 'cores'}`, rows: total },
];

interface Result {
  seconds: number;
  rows_per_s: number;
  ratio: number;
  per_round: number[];
  peak_rss_mb: number | null;
  /** Median CPU seconds, clients and both servers together. */
  cpu_seconds: number | null;
  /** cpu_seconds over the raw pipe's. */
  cpu_ratio: number | null;
  /** cpu_seconds / cores over (a)'s seconds: the least ratio this machine allows the method. */
  floor_ratio: number | null;
  /** CPU seconds of the round with the median cpu_seconds, per process group. */
  cpu_split: { client: number; blue: number; green: number } | null;
}
const results: Record<string, Result> = {};
for (const l of lines) {
  const r = l.key === 'raw' ? raw : perRound(l.key);
  if (r.size === 0) continue;
  const secs = median([...r.values()]);
  const rss = samples.filter((s) => s.method === l.key && s.rssKb !== null).map((s) => s.rssKb!);
  results[l.key] = {
    seconds: round3(secs),
    rows_per_s: Math.round(l.rows / secs),
    ratio: round3(secs / rawMedian),
    per_round: [...r.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => round3(v)),
    peak_rss_mb: rss.length ? round1(Math.max(...rss) / 1024) : null,
    ...cpuOf(l.key === 'raw' ? rawCpu : perRound(l.key, 'cpuS')),
    cpu_split: l.key === 'raw' ? null : splitOf(l.key),
  };
}

/** The client/blue/green split of the round whose CPU seconds are the median (one sample per round). */
function splitOf(method: string): Result['cpu_split'] {
  const xs = samples.filter((s) => s.method === method && s.cpuS !== null && s.cpuSplit?.length === 3).sort((a, b) => a.cpuS! - b.cpuS!);
  const m = xs[(xs.length - 1) >> 1];
  return m ? { client: m.cpuSplit![0]!, blue: m.cpuSplit![1]!, green: m.cpuSplit![2]! } : null;
}

function cpuOf(r: Map<number, number>): Pick<Result, 'cpu_seconds' | 'cpu_ratio' | 'floor_ratio'> {
  if (r.size === 0) return { cpu_seconds: null, cpu_ratio: null, floor_ratio: null };
  const c = median([...r.values()]);
  return { cpu_seconds: round3(c), cpu_ratio: rawCpuMedian ? round3(c / rawCpuMedian) : null, floor_ratio: round3(c / cpus / rawMedian) };
}

function round3(x: number) {
  return Math.round(x * 1000) / 1000;
}
function round1(x: number) {
  return Math.round(x * 10) / 10;
}

const full = results.bg_full_sync;
const inc = results.bg_incremental;
const fullNv = results.bg_full_sync_noverify;
const incNv = results.bg_incremental_noverify;
const incRec = results.bg_incremental_reconcile;
/**
 * Each incremental sync against the apply floor of the same change (bench/apply-floor.sh),
 * measured beside it in the same round: the goal is sync ≤ 1.3 × floor + 0.3 s, so
 * `excess_s` (sync − 1.3 × floor, medians) should stay ≤ 0.3. `per_round_ratio` pairs the
 * two runs of each round (the same change, one right after the other).
 */
const applyFloor = Object.fromEntries(
  (['', '_noverify', '_reconcile', '_p1', '_p1_reconcile'] as const).flatMap((suffix) => {
    const syncKey = `bg_incremental${suffix}`;
    const floorKey = `apply_floor${suffix}`;
    const sy = results[syncKey];
    const fl = results[floorKey];
    if (!sy || !fl) return [];
    const s = perRound(syncKey);
    const f = perRound(floorKey);
    const paired = [...s.entries()].filter(([r]) => f.has(r)).sort((a, b) => a[0] - b[0]);
    return [
      [
        syncKey,
        {
          floor: floorKey,
          sync_s: sy.seconds,
          floor_s: fl.seconds,
          ratio: round3(sy.seconds / fl.seconds),
          excess_s: round3(sy.seconds - 1.3 * fl.seconds),
          per_round_ratio: paired.map(([r, v]) => round3(v / f.get(r)!)),
          sync_cpu_s: sy.cpu_seconds,
          floor_cpu_s: fl.cpu_seconds,
        },
      ],
    ];
  }),
);
/** Writes refused on blue during each round's cutover (the report's freezeMs), in ms. */
const freezeRounds = [...perRound('cutover_freeze').entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => Math.round(v * 1000));
const bgRss = ['bg_full_sync', 'bg_full_sync_noverify', 'bg_full_jobs2', 'bg_incremental', 'bg_incremental_noverify', 'bg_incremental_reconcile', 'bg_verify', 'bg_verify_diff', 'bg_repair', 'bg_cutover'].map((k) => results[k]?.peak_rss_mb ?? 0);
const report = {
  rows,
  total_rows: total,
  table_rows: counts,
  rounds: Number(flag('rounds')),
  postgres_major: flag('pg') ? Number(flag('pg')) : null,
  machine: { cpus: os.cpus().length, node: process.version, loadavg_start_end: flag('load') ?? null },
  cli: flag('cli') ?? null,
  /** Median seconds of `bluegreen --help` per way of starting it (bench/startup.sh). */
  startup_seconds: flag('startup') ? (JSON.parse(flag('startup')!) as Record<string, number>) : null,
  seed_seconds: flag('seed-seconds') ? round3(Number(flag('seed-seconds'))) : null,
  /** (g)'s pgcopydb: its version ('0.10-1'), and the jobs of pgcopydb_jobs_cores; null when (g) was skipped. */
  pgcopydb: flag('pgcopydb') ? { version: flag('pgcopydb')!, jobs_cores: Number(flag('cores')) } : null,
  ratios: {
    full_sync: full?.ratio ?? null,
    incremental: inc?.ratio ?? null,
    verify: results.bg_verify?.ratio ?? null,
    /** verify naming 10 planted differences. */
    verify_10_differences: results.bg_verify_diff?.ratio ?? null,
    pg_dump: results.pg_dump?.ratio ?? null,
    /** (g) pgcopydb clone of the whole database (schema, data, indexes, constraints) into an empty one, its default jobs. */
    pgcopydb: results.pgcopydb?.ratio ?? null,
    /** The same with --table-jobs and --index-jobs set to the number of cores. */
    pgcopydb_jobs_cores: results.pgcopydb_jobs_cores?.ratio ?? null,
    /** The full sync (with its verify) over pgcopydb clone with its default jobs (below 1: bluegreen faster). */
    full_sync_over_pgcopydb: full && results.pgcopydb ? round3(full.seconds / results.pgcopydb.seconds) : null,
    /** sync --no-verify: the transfer alone (when the build has the flag). */
    full_sync_noverify: fullNv?.ratio ?? null,
    /** sync --no-verify --jobs 2 into an empty target, and its time over one job's (below 1: faster). */
    full_sync_noverify_jobs2: results.bg_full_jobs2?.ratio ?? null,
    jobs2_over_jobs1: fullNv && results.bg_full_jobs2 ? round3(results.bg_full_jobs2.seconds / fullNv.seconds) : null,
    incremental_noverify: incNv?.ratio ?? null,
    /** The goal for incremental over full sync (≤ 0.03). */
    incremental_over_full: full && inc ? round3(inc.seconds / full.seconds) : null,
    incremental_over_full_noverify: fullNv && incNv ? round3(incNv.seconds / fullNv.seconds) : null,
    /** Incremental with deletes found by comparing key buckets (what runs without capture). */
    incremental_reconcile: incRec?.ratio ?? null,
    incremental_over_full_reconcile: full && incRec ? round3(incRec.seconds / full.seconds) : null,
    /** sync --repair of the 10 planted differences. */
    repair: results.bg_repair?.ratio ?? null,
    /** The whole cutover command (guardrails, freeze, final sync, check). */
    cutover: results.bg_cutover?.ratio ?? null,
    /** The least full_sync this machine allows: its CPU seconds spread over every core, over (a)'s seconds. */
    full_sync_floor: full?.floor_ratio ?? null,
    /** The least incremental_over_full this machine allows: the incremental's CPU seconds over every core, over the full sync's seconds. */
    incremental_over_full_floor: full && inc?.cpu_seconds != null ? round3(inc.cpu_seconds / cpus / full.seconds) : null,
    /** The 1% incremental sync over the apply floor of the same change (goal: ≤ 1.3, plus 0.3 s fixed). */
    incremental_over_apply_floor: applyFloor.bg_incremental?.ratio ?? null,
    /** The full sync's CPU seconds with its verify over without (goal ≤ 1.15: the verify costs at most 15% more). */
    full_sync_verify_cpu_over_noverify: full?.cpu_seconds && fullNv?.cpu_seconds ? round3(full.cpu_seconds / fullNv.cpu_seconds) : null,
    /** The same for the BASELINE checkout's full sync (bench/run.sh BASELINE=…), against this run's --no-verify. */
    full_sync_baseline_verify_cpu_over_noverify:
      results.bg_full_sync_baseline?.cpu_seconds && fullNv?.cpu_seconds ? round3(results.bg_full_sync_baseline.cpu_seconds / fullNv.cpu_seconds) : null,
    /** incremental − 1.3 × apply floor, in seconds (goal ≤ 0.3). */
    incremental_minus_1_3_apply_floor_s: applyFloor.bg_incremental?.excess_s ?? null,
  },
  /** Each incremental sync beside the apply floor of the same change, keyed by the sync's method. */
  apply_floor: applyFloor,
  /** Median of the cutover reports' freezeMs: how long writes on blue were refused (goal ≤ 2000). */
  cutover_freeze_ms: freezeRounds.length ? median(freezeRounds) : null,
  cutover_freeze_ms_per_round: freezeRounds,
  peak_rss_mb: Math.max(...bgRss),
  peak_rss_source: flag('rss-source') ?? null,
  medians_seconds: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.seconds])),
  methods: results,
  generated_at: new Date().toISOString(),
};
writeFileSync(outPath, JSON.stringify(report, null, 2) + '\n');

const out: string[] = [];
out.push(
  `bluegreen bench: ${rows.toLocaleString('en')} users (${total.toLocaleString('en')} rows in 4 tables), PostgreSQL ${report.postgres_major ?? '?'}, ` +
    `${report.machine.cpus} CPUs, medians of ${report.rounds} rounds`,
);
out.push(`load average (1/5/15 min) at start / end: ${report.machine.loadavg_start_end ?? '?'}`);
out.push('');
out.push(`${'method'.padEnd(42)} ${'seconds'.padStart(8)} ${'rows/s'.padStart(10)} ${'ratio'.padStart(6)} ${'peak RSS'.padStart(9)} ${'CPU s'.padStart(7)} ${'floor'.padStart(6)}   per round`);
for (const l of lines) {
  const r = results[l.key];
  if (!r) {
    if (l.key === 'bg_verify') out.push(`${l.label.padEnd(42)} ${'skipped: no verify command in this build'}`);
    continue;
  }
  out.push(
    `${l.label.padEnd(42)} ${r.seconds.toFixed(2).padStart(8)} ${r.rows_per_s.toLocaleString('en').padStart(10)} ${r.ratio.toFixed(2).padStart(6)} ` +
      `${(r.peak_rss_mb === null ? '' : `${r.peak_rss_mb} MB`).padStart(9)} ${(r.cpu_seconds?.toFixed(2) ?? '').padStart(7)} ${(r.floor_ratio?.toFixed(2) ?? '').padStart(6)}   ` +
      r.per_round.map((x) => x.toFixed(2)).join(' '),
  );
}
out.push('');
out.push(`CPU s = CPU seconds of the clients and both servers; floor = CPU s / ${cpus} cores / (a)'s seconds: the least ratio this machine allows, however well the work overlaps.`);
const splits = (['bg_full_sync', 'bg_full_sync_noverify', 'bg_full_sync_baseline', 'bg_incremental', 'pgcopydb', 'pgcopydb_jobs_cores'] as const).flatMap((k) => {
  const c = results[k]?.cpu_split;
  return c ? [`${k.replace('bg_', '')} ${c.client}/${c.blue}/${c.green}`] : [];
});
if (splits.length) out.push(`CPU s as client/blue/green: ${splits.join('; ')}.`);
out.push(`ratio = median seconds / median of (a); rows/s for (c) counts the changed rows. Goals: full sync ≤ 0.45, incremental ≤ 0.03 of full, peak RSS ≤ 128 MB.`);
out.push(
  `full sync ${report.ratios.full_sync ?? '-'}x (a)` +
    (report.ratios.full_sync_noverify !== null ? ` (${report.ratios.full_sync_noverify}x with --no-verify)` : '') +
    (report.ratios.jobs2_over_jobs1 !== null ? ` (--jobs 2: ${report.ratios.jobs2_over_jobs1}x the time of one job)` : '') +
    '; ' +
    `incremental ${report.ratios.incremental_over_full ?? '-'}x full sync` +
    (report.ratios.incremental_over_full_noverify !== null ? ` (${report.ratios.incremental_over_full_noverify}x with --no-verify)` : '') +
    `; peak RSS ${report.peak_rss_mb} MB (${report.peak_rss_source})`,
);
if (report.ratios.full_sync_verify_cpu_over_noverify !== null) {
  out.push(
    `full sync CPU with its verify / without: ${report.ratios.full_sync_verify_cpu_over_noverify}x (goal ≤ 1.15)` +
      (report.ratios.full_sync_baseline_verify_cpu_over_noverify !== null ? `; BASELINE checkout: ${report.ratios.full_sync_baseline_verify_cpu_over_noverify}x` : ''),
  );
}
for (const [k, a] of Object.entries(applyFloor)) {
  out.push(`${k} / ${a.floor}: ${a.sync_s} s / ${a.floor_s} s = ${a.ratio}x (per round ${a.per_round_ratio.join(', ')}); sync - 1.3 x floor = ${a.excess_s} s (goal ≤ 0.3)`);
}
if (report.ratios.pgcopydb !== null) {
  out.push(
    `pgcopydb ${report.pgcopydb?.version ?? ''} clone (whole database into an empty one: schema, data, indexes, constraints) ${report.ratios.pgcopydb}x (a)` +
      (report.ratios.pgcopydb_jobs_cores !== null ? ` (${report.ratios.pgcopydb_jobs_cores}x with ${report.pgcopydb?.jobs_cores} jobs)` : '') +
      `; full sync ${report.ratios.full_sync_over_pgcopydb ?? '-'}x pgcopydb's time`,
  );
}
if (report.cutover_freeze_ms !== null) {
  out.push(
    `cutover freeze (writes refused on blue): ${report.cutover_freeze_ms} ms median (${freezeRounds.join(', ')} ms); ` +
      `incremental with --reconcile ${report.ratios.incremental_over_full_reconcile ?? '-'}x full sync`,
  );
}
if (report.startup_seconds) {
  const s = report.startup_seconds;
  out.push(
    `start-up (--help, median of ${s.runs}): node alone ${s.node} s, bundle ${s.dist ?? '-'} s, tsx from source ${s.tsx} s, ` +
      `npx ${s.npx ?? '-'} s (npx from source ${s.npx_tsx} s); runs above used: ${report.cli}`,
  );
}
out.push(`seed: ${report.seed_seconds ?? '?'} s (not in any ratio). Written: ${outPath}`);
process.stdout.write(out.join('\n') + '\n');
