/**
 * A model of the full sync, its verify and a cutover's freeze on N cores (jobs = cores),
 * fed with runs measured at --jobs 1 (bench/jobs-model.sh makes them).
 *
 *   npx tsx bench/jobs-model.ts --runs DIR [--rows N] [--out FILE] [--load TEXT] [--seed-seconds S]
 *
 * DIR holds, per run NAME (sync-j1-r1, verify-j1-r1, cutover-j1-r1, ..., reinsert-TABLE):
 * NAME.log (the JSON log at debug level: `-v --log-format json`), NAME.json (the command's
 * --json report), NAME.cpu (bench/cpu-sample.mjs: CPU ticks of client, blue and green every
 * 100 ms) and NAME.meta (start, end, exit status, bytes of WAL green wrote).
 *
 * What it does:
 * 1. Steps, read from each log, never named here: every phase whose end the log records
 *    (copy, stage, index, analyze, deletes, apply, check, and whatever phase a later version
 *    logs) with its window [end - seconds, end], and verify's per-table lines (window from
 *    the report's per-table ms). Time no step covers is an `other` step (start-up, planning,
 *    catalogs, the commit, the gaps between statements): serial.
 * 2. CPU seconds of each step per process class (client, source = blue, target = green):
 *    the sampled ticks inside its window; where steps overlap (the ANALYZE session beside
 *    the verify), a class's ticks are shared evenly among the steps running.
 * 3. Blocks: consecutive steps of one phase kind (all copies; all index builds) and the
 *    steps that overlap them form a block; each kind in a block is a lane (the analyze lane
 *    beside the verify lane). The `other` time inside a block stays serial within it.
 * 4. A block on `jobs` sessions and `cores` cores takes the largest of:
 *    - each lane's makespan: its units spread over the jobs, largest first (LPT); a lane
 *      that the code runs on one session (below) is the sum of its steps;
 *    - CPU: on one host for all (this machine), the block's CPU seconds over the cores it
 *      gets: its jobs-1 demand (CPU s / wall) times the jobs when a lane of it is split,
 *      capped by the cores (share()); per host (source CPU / cores, target CPU / cores)
 *      when blue and green are separate hosts;
 *    - the client's CPU seconds: one Node process, one core, whatever the jobs;
 *    - (separate hosts) a copy lane's bytes / link speed.
 *    The run's prediction is the sum over blocks plus every `other` step.
 *
 * Units, and what is split:
 * - copy/stage: a table is a unit; a table whose COPY moved >= 8 MiB (the byte count of its
 *   stream, standing in for the 1024 source blocks src/sync/jobs.ts splits at) is `jobs`
 *   block ranges of equal cost (wall / jobs each): rows cost the same anywhere in the heap.
 * - verify: a table is a unit (src/verify/verify.ts runs tables, not ranges, on its jobs).
 *   The design splits a table of 65,536 rows or more (about 8 MiB at these tables' ~120
 *   bytes a row) into `jobs` block ranges on each side: bucket sums are sums, so the ranges'
 *   sums add up to the table's, bucket by bucket.
 * - An incremental stage (the cutover's) is one unit per table: the code splits only whole-table reads.
 * - index (key, index, foreign key builds) and analyze: as built, one session, serial. In the
 *   design (the `design…` predictions: bench/README.md, "More cores"), the tables are staged
 *   and swapped in, so there is no re-insert, and every statement is a unit: keys and indexes
 *   first, then the foreign keys (a step whose name ends in `_fkey`, PostgreSQL's default
 *   name, or `fkey`), two waves; analyze per table. One index build is never split further
 *   (max_parallel_maintenance_workers would: not modeled, so the biggest index bounds it).
 * - `other` steps and a cutover's freeze: serial (as built the cutover has no --jobs; its
 *   frozen part is a few statements over seconds of writes, mostly round trips).
 *
 * Assumptions (each a simplification the check against the measured --jobs 2 run tests):
 * - A unit on its own session takes its jobs-1 wall time whenever there are cores to spare:
 *   per-stream speed is set by its pipeline (source output, Node, target input), not by
 *   the number of streams. Lock, buffer and WAL-insert contention between streams on the
 *   target are not modeled (they would make large N slower than predicted).
 * - CPU seconds per unit of work do not depend on the job count, with one exception the
 *   code makes: with jobs > 1 a bulk load COPYs into UNLOGGED stage tables (no WAL) and then
 *   moves each table with one INSERT ... SELECT in the run's transaction (serial, target).
 *   That step is not in a jobs-1 run: its wall and CPU come from the re-insert calibration
 *   runs (reinsert-TABLE: the same INSERT ... SELECT timed alone on green by
 *   bench/jobs-model.sh), and the stage COPY is charged the jobs-1 COPY's CPU (its saved
 *   WAL is not credited: conservative).
 * - Opening the extra session pairs, creating the stage tables and sizing the tables cost
 *   tens of milliseconds: left out.
 * - The full sync's source-side verify hashing that runs beside the index builds (or, in a
 *   version that hashes inside the COPY stream, beside the COPY) is in those blocks' CPU,
 *   so it counts against the cores but is never on a lane of its own.
 * - Network: the bytes of each COPY stream (what the log's copy lines count) are what
 *   crosses the link; protocol framing and TCP/IP add a few percent, not counted. A link
 *   carries 94% of its line rate (1 GbE 117.5 MB/s, 10 GbE 1175 MB/s, 25 GbE 2940 MB/s).
 *   Verify moves sums, not rows: no network bound.
 * - Medians: each jobs-1 run is modeled on its own and the predictions' median is reported,
 *   against the median of the measured runs of the same job count.
 * - The check treats this machine's 2 cores as ours alone. Other work on a shared machine is
 *   bracketed (checkOthersShare, checkOthersKeep): the cores the others kept busy during
 *   each block of the jobs-1 run (the machine's busy ticks less ours) either share the cores
 *   with our doubled demand in proportion, or keep what they had.
 * - Projections: `one host` puts client, blue and green on the same N cores (like this
 *   machine); `separate hosts` gives blue and green N cores each and bounds the copy by the
 *   link. `Quiet` projections run each unit at the speed of its busiest process (its CPU
 *   seconds, see unitSeconds) rather than its wall time here, for hosts with cores to spare;
 *   the as-measured ones keep this machine's speeds. Neither models disks: a run that waits
 *   on I/O more than here is slower than predicted.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const TICK = 100; // CLK_TCK of Linux on x86-64 and arm64
const SPLIT_BYTES = 8 * 1024 * 1024;
/** The design splits a verify at this many rows (8 MiB at 128 bytes a row, about what these tables' COPY streams carry). */
const SPLIT_ROWS = 65536;
const LINKS = { '1GbE': 117.5e6, '10GbE': 1175e6, '25GbE': 2940e6 } as const;
const CORES = [1, 2, 4, 8, 16, 32];

/** CPU seconds by process class. */
export interface Cpu {
  client: number;
  source: number;
  target: number;
}
/** One step of a run, as its log and the CPU samples show it. */
export interface Step {
  /** table, phase and step as the log names them (`users index users_pkey (4/14)`), or `other …`. */
  name: string;
  /** The log's phase (`copy`, `stage`, `index`, `analyze`, `verify`, …) or `other`. */
  kind: string;
  table?: string;
  start: number;
  end: number;
  cpu: Cpu;
  /** Bytes the step's COPY stream moved (copy and stage steps). */
  bytes?: number;
  rows?: number;
}
interface Run {
  name: string;
  start: number;
  end: number;
  steps: Step[];
  cpu: Cpu;
  greenWalBytes: number;
  report: Record<string, unknown>;
  /** Cores other work on the machine kept busy during the run, on average (machine ticks minus ours). */
  otherCores: number;
  samples: Sample[];
}
type Sample = [number, number, number, number, number?];

type Mode = 'as-built' | 'design';
/**
 * Other work on a shared machine (the check only): `none`, the machine is ours; `share`, the
 * cores are shared in proportion to demand (share()); `keep`, the others keep the cores they
 * had during the jobs-1 run. The first flatters more jobs, the second does not: a
 * measurement on a loaded machine should fall between them.
 */
type Others = 'none' | 'share' | 'keep';
type Hosts = 'shared' | 'separate';

// ---------------------------------------------------------------------------------------
// 1-2. Steps and their CPU

function readRun(dir: string, name: string, window?: (r: Record<string, unknown>, meta: { startMs: number; endMs: number }) => [number, number]): Run {
  const meta = JSON.parse(readFileSync(join(dir, `${name}.meta`), 'utf8')) as { startMs: number; endMs: number; greenWalBytes: number; status: number };
  const envelope = readFileSync(join(dir, `${name}.json`), 'utf8').trim();
  const report = (envelope.startsWith('{') ? (JSON.parse(envelope).report ?? JSON.parse(envelope)) : { stdout: envelope }) as Record<string, unknown>;
  const [start, end] = window ? window(report, meta) : [meta.startMs, meta.endMs];
  const samples = readFileSync(join(dir, `${name}.cpu`), 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t').map(Number) as [number, number, number, number, number?]);
  const logged: Step[] = [];
  const verifyMs = new Map<string, number>();
  const vt = ((report.verify as { tables?: { table: string; ms: number }[] } | undefined)?.tables ?? (report.tables as { table: string; ms?: number }[] | undefined) ?? []) as {
    table: string;
    ms?: number;
  }[];
  for (const t of vt) if (typeof t.ms === 'number') verifyMs.set(t.table, t.ms);
  const logPath = join(dir, `${name}.log`);
  for (const line of existsSync(logPath) ? readFileSync(logPath, 'utf8').split('\n') : []) {
    if (!line.startsWith('{')) continue;
    const j = JSON.parse(line) as Record<string, unknown>;
    const at = Date.parse(j.time as string);
    if (j.event === 'progress' && j.final && typeof j.seconds === 'number' && j.phase && j.phase !== 'frozen') {
      const phase = String(j.phase);
      const task = String(j.task);
      logged.push({
        name: [task, phase, j.step].filter(Boolean).join(' '),
        kind: phase,
        table: task.split(' ')[0],
        start: at - j.seconds * 1000,
        end: at,
        cpu: zero(),
        bytes: typeof j.bytes === 'number' ? j.bytes : undefined,
        rows: phase === 'copy' || phase === 'stage' ? Number(j.done) : undefined,
      });
    }
    const v = typeof j.msg === 'string' ? /^verify (\S+): (\d+)\/(\d+) rows/.exec(j.msg) : null;
    if (v && verifyMs.has(v[1]!)) logged.push({ name: `${v[1]} verify`, kind: 'verify', table: v[1], start: at - verifyMs.get(v[1]!)!, end: at, cpu: zero(), rows: Number(v[2]) });
  }
  const inside = logged.filter((s) => s.end > start && s.start < end).map((s) => ({ ...s, start: Math.max(s.start, start), end: Math.min(s.end, end) }));
  inside.sort((a, b) => a.start - b.start || a.end - b.end);
  // Time no step covers: `other`, named after the step it precedes.
  const steps: Step[] = [];
  let covered = start;
  for (const s of inside) {
    if (s.start > covered + 1) steps.push({ name: `other before ${s.name}`, kind: 'other', start: covered, end: s.start, cpu: zero() });
    steps.push(s);
    covered = Math.max(covered, s.end);
  }
  // The tail takes what the servers did until the last sample (their reaped backends' time).
  // Its CPU is counted, its time is not: the run had ended.
  const tail = window ? end : Math.max(end, samples.at(-1)?.[0] ?? end);
  const last: Step = { name: 'other after the last step', kind: 'other', start: covered, end: tail, cpu: zero() };
  if (tail > covered + 1) steps.push(last);
  attributeCpu(steps, samples);
  last.end = Math.max(last.start, Math.min(last.end, end));
  const cpu = sumCpu(steps);
  // The machine's busy time in the run's window (a fifth column, when the sampler wrote it) less ours.
  const first = samples.find((x) => x[0] >= start) ?? samples[0];
  const lastIn = [...samples].reverse().find((x) => x[0] <= end) ?? samples.at(-1);
  const machine = first?.[4] !== undefined && lastIn?.[4] !== undefined && lastIn[0] > first[0] ? (lastIn[4]! - first[4]!) / TICK : NaN;
  const ours = first && lastIn ? (lastIn[1] + lastIn[2] + lastIn[3] - first[1] - first[2] - first[3]) / TICK : NaN;
  const otherCores = lastIn && first && lastIn[0] > first[0] ? Math.max(0, (machine - ours) / ((lastIn[0] - first[0]) / 1000)) : NaN;
  return { name, start, end, steps, cpu, greenWalBytes: meta.greenWalBytes, report, otherCores, samples };
}

function zero(): Cpu {
  return { client: 0, source: 0, target: 0 };
}
function sumCpu(steps: { cpu: Cpu }[]): Cpu {
  return steps.reduce((a, s) => ({ client: a.client + s.cpu.client, source: a.source + s.cpu.source, target: a.target + s.cpu.target }), zero());
}
const total = (c: Cpu) => c.client + c.source + c.target;

/** Cumulative ticks at time t, linear between samples. */
function ticksAt(samples: [number, number, number, number, number?][], t: number): [number, number, number] {
  if (samples.length === 0) return [0, 0, 0];
  if (t <= samples[0]![0]) return [samples[0]![1], samples[0]![2], samples[0]![3]];
  for (let i = 1; i < samples.length; i++) {
    const [t1, ...b] = samples[i]!;
    if (t <= t1) {
      const [t0, ...a] = samples[i - 1]!;
      b.length = a.length = 3;
      const f = t1 === t0 ? 1 : (t - t0) / (t1 - t0);
      return [0, 1, 2].map((k) => a[k]! + f * (b[k]! - a[k]!)) as [number, number, number];
    }
  }
  const l = samples.at(-1)!;
  return [l[1], l[2], l[3]];
}

/** Each step's CPU: the ticks in its window, shared evenly among the steps running at once. */
function attributeCpu(steps: Step[], samples: [number, number, number, number, number?][]): void {
  const cuts = [...new Set(steps.flatMap((s) => [s.start, s.end]).concat(samples.map((s) => s[0])))].sort((a, b) => a - b);
  for (let i = 1; i < cuts.length; i++) {
    const [a, b] = [cuts[i - 1]!, cuts[i]!];
    const on = steps.filter((s) => s.start <= a && s.end >= b);
    if (on.length === 0) continue;
    const x = ticksAt(samples, a);
    const y = ticksAt(samples, b);
    for (const s of on) {
      s.cpu.client += (y[0] - x[0]) / TICK / on.length;
      s.cpu.source += (y[1] - x[1]) / TICK / on.length;
      s.cpu.target += (y[2] - x[2]) / TICK / on.length;
    }
  }
}

/** Cores other work kept busy in [a, b] (machine ticks less ours), 0 when the samples lack the machine's. */
function othersIn(samples: Sample[], a: number, b: number): number {
  const inside = samples.filter((x) => x[0] >= a && x[0] <= b && x[4] !== undefined);
  if (inside.length < 2) return 0;
  const [f, l] = [inside[0]!, inside.at(-1)!];
  const machine = (l[4]! - f[4]!) / TICK;
  const ours = (l[1] + l[2] + l[3] - f[1] - f[2] - f[3]) / TICK;
  return Math.max(0, (machine - ours) / ((l[0] - f[0]) / 1000));
}

/**
 * Cores a block gets on a machine of `cores` shared with other work: its demand `d` (the
 * cores it kept busy at jobs 1 times the jobs it now runs) beside the others' `o` (what they
 * kept busy meanwhile). Below the machine's cores each gets what it asks; above, the
 * scheduler shares the cores in proportion (Linux CFS gives each runnable thread an equal
 * share, and a demand in cores counts runnable threads). With o = 0: min(d, cores).
 */
function share(d: number, o: number, cores: number): number {
  return d + o <= cores ? d : (cores * d) / (d + o);
}

// ---------------------------------------------------------------------------------------
// 3. Blocks and lanes

interface Block {
  /** `other`: one serial step; else the block's lanes (one per phase kind). */
  kind: string;
  lanes: Map<string, Step[]>;
  /** `other` time inside the block: serial within it. */
  serial: Step[];
  start: number;
  end: number;
}

function blocks(run: Run): Block[] {
  const out: Block[] = [];
  let cur: Block | undefined;
  for (const s of run.steps) {
    if (s.kind === 'other') {
      // A gap inside a block (between two copies) belongs to it; one between blocks stands alone.
      const next = run.steps.find((n) => n.start >= s.end && n.kind !== 'other');
      if (cur && next && cur.lanes.has(next.kind)) cur.serial.push(s);
      else {
        cur = undefined;
        out.push({ kind: 'other', lanes: new Map(), serial: [s], start: s.start, end: s.end });
      }
      continue;
    }
    const overlaps = cur && s.start < cur.end;
    if (!cur || (!cur.lanes.has(s.kind) && !overlaps)) {
      cur = { kind: s.kind, lanes: new Map(), serial: [], start: s.start, end: s.end };
      out.push(cur);
    }
    (cur.lanes.get(s.kind) ?? cur.lanes.set(s.kind, []).get(s.kind)!).push(s);
    cur.end = Math.max(cur.end, s.end);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// 4. A block on jobs sessions and cores cores

/** Makespan of unit times on `workers`, largest first onto the least loaded (LPT). */
function lpt(units: number[], workers: number): number {
  const w = new Array<number>(Math.max(1, workers)).fill(0);
  for (const u of [...units].sort((a, b) => b - a)) {
    let k = 0;
    for (let i = 1; i < w.length; i++) if (w[i]! < w[k]!) k = i;
    w[k] = w[k]! + u;
  }
  return Math.max(...w);
}

const wall = (s: Step) => (s.end - s.start) / 1000;

/**
 * How fast a unit runs on its own session: `measured`, as it ran here (its jobs-1 wall
 * time); `quiet`, on hosts with cores to spare, as fast as its busiest process allows: the
 * largest of its client, source and target CPU seconds (a COPY is a pipeline of the three;
 * a verify hashes both sides at once), the target's alone for a statement on the target
 * (index, analyze, apply: the source CPU beside it belongs to the verify's source hashing),
 * never more than its measured wall. A unit that waits on I/O or locks more than it
 * computes is under-estimated by `quiet`.
 */
type Speed = 'measured' | 'quiet';
function unitSeconds(s: Step, speed: Speed): number {
  if (speed === 'measured' || s.kind === 'other') return wall(s);
  const busiest = isCopy(s.kind) || s.kind === 'verify' ? Math.max(s.cpu.client, s.cpu.source, s.cpu.target) : s.cpu.target;
  return Math.min(wall(s), busiest);
}
const isCopy = (kind: string) => kind === 'copy' || kind === 'stage';

/** A lane's makespan on `jobs` sessions, as the code (or the design) runs it. */
function laneTime(kind: string, steps: Step[], jobs: number, mode: Mode, speed: Speed): number {
  const wall = (s: Step) => unitSeconds(s, speed);
  if (jobs <= 1) return steps.reduce((a, s) => a + wall(s), 0);
  // A bulk copy of a large table is split into block ranges; an incremental stage is not (src/sync/jobs.ts).
  if (kind === 'copy') return lpt(steps.flatMap((s) => ((s.bytes ?? 0) >= SPLIT_BYTES ? new Array<number>(jobs).fill(wall(s) / jobs) : [wall(s)])), jobs);
  if (kind === 'stage') return lpt(steps.map(wall), jobs);
  // The design also splits a large table's verify into block ranges: bucket sums add up, so
  // each range can be summed on its own session and the sums added per bucket.
  if (kind === 'verify') return lpt(steps.flatMap((s) => (mode === 'design' && (s.rows ?? 0) >= SPLIT_ROWS ? new Array<number>(jobs).fill(wall(s) / jobs) : [wall(s)])), jobs);
  if (mode === 'design' && kind === 'index') {
    const fk = steps.filter((s) => /fkey/.test(s.name));
    return lpt(steps.filter((s) => !fk.includes(s)).map(wall), jobs) + lpt(fk.map(wall), jobs);
  }
  if (mode === 'design' && kind === 'analyze') return lpt(steps.map(wall), jobs);
  // Everything else runs on the run's one target session.
  return steps.reduce((a, s) => a + wall(s), 0);
}

interface Reinsert {
  /** Per table: wall and CPU of its INSERT ... SELECT from the stage. */
  tables: Map<string, { s: number; cpu: Cpu }>;
}

interface Prediction {
  seconds: number;
  /** Seconds per block, for the reader: `copy 12.1 (cpu)`, which bound set it. */
  blocks: { kind: string; seconds: number; bound: string }[];
}

function predict(run: Run, jobs: number, cores: number, mode: Mode, hosts: Hosts, reinsert?: Reinsert, link?: number, speed: Speed = 'measured', others: Others = 'none'): Prediction {
  const parts: Prediction['blocks'] = [];
  for (const b of blocks(run)) {
    const serial = b.serial.reduce((a, s) => a + wall(s), 0);
    if (b.kind === 'other') {
      parts.push({ kind: 'other', seconds: serial, bound: 'serial' });
      continue;
    }
    const steps = [...b.lanes.values()].flat().concat(b.serial);
    const cpu = sumCpu(steps);
    const bounds: [string, number][] = [];
    for (const [kind, lane] of b.lanes) bounds.push([`${kind} lane`, laneTime(kind, lane, jobs, mode, speed) + serial]);
    bounds.push(['client cpu', cpu.client]);
    if (hosts === 'shared') {
      // The block's demand at jobs 1 (cores it kept busy), times the jobs it runs on now when
      // one of its lanes is split; others' load only where the caller keeps it (the check).
      const w1 = (b.end - b.start) / 1000;
      const split = [...b.lanes.keys()].some((k) => isCopy(k) || k === 'verify' || (mode === 'design' && (k === 'index' || k === 'analyze')));
      const u = w1 > 0 ? total(cpu) / w1 : 0;
      const o = others === 'none' ? 0 : othersIn(run.samples, b.start, b.end);
      const d = (split ? jobs : 1) * u;
      // `keep`: the other work keeps the cores it had; we get what is left, never less than at jobs 1.
      const c = others === 'keep' ? Math.min(d, Math.max(cores - o, u)) : share(d, o, cores);
      bounds.push(['cpu', c > 0 ? total(cpu) / c : 0]);
    } else bounds.push(['cpu', Math.max(cpu.source, cpu.target) / cores]);
    const copyBytes = [...b.lanes.entries()].filter(([k]) => isCopy(k)).flatMap(([, l]) => l).reduce((a, s) => a + (s.bytes ?? 0), 0);
    if (link && copyBytes) bounds.push(['network', copyBytes / link]);
    const [bound, seconds] = bounds.reduce((a, x) => (x[1] > a[1] ? x : a));
    parts.push({ kind: [...b.lanes.keys()].join('+'), seconds, bound });
    // With jobs > 1 the code moves each staged table into its real table, serially, in the
    // transaction (see the header); the design swaps the stage tables in instead.
    if (jobs > 1 && mode === 'as-built' && reinsert && b.lanes.has('copy')) {
      const tables = b.lanes.get('copy')!.map((s) => s.table!);
      const r = tables.map((t) => reinsert.tables.get(t) ?? { s: 0, cpu: zero() });
      const s = r.reduce((a, x) => a + (speed === 'quiet' ? Math.min(x.s, x.cpu.target) : x.s), 0);
      const c = sumCpu(r);
      parts.push({ kind: 'reinsert', seconds: Math.max(s, c.target / cores), bound: 'serial' });
    }
  }
  return { seconds: parts.reduce((a, p) => a + p.seconds, 0), blocks: parts };
}

// ---------------------------------------------------------------------------------------
// Input, output

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
const r2 = (x: number) => Math.round(x * 100) / 100;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

function args(): Record<string, string> {
  const a = process.argv.slice(2);
  const out: Record<string, string> = {};
  for (let i = 0; i < a.length; i++) if (a[i]!.startsWith('--')) out[a[i]!.slice(2)] = a[i + 1]!.startsWith('--') ? 'true' : a[++i]!;
  return out;
}

/** The per-step table of a set of runs of one command: medians over the runs, by step name. */
function stepTable(runs: Run[]): { name: string; kind: string; wallS: number; cpu: Cpu; split: string; bytes?: number }[] {
  const names = runs[0]!.steps.map((s) => s.name);
  return names.map((name) => {
    const all = runs.map((r) => r.steps.find((s) => s.name === name)).filter((s): s is Step => Boolean(s));
    const s0 = all[0]!;
    const split = isCopy(s0.kind) ? ((s0.bytes ?? 0) >= SPLIT_BYTES ? 'block ranges' : 'table') : s0.kind === 'verify' ? 'table' : s0.kind === 'index' ? 'serial (design: per index)' : s0.kind === 'analyze' ? 'serial (design: per table)' : 'serial';
    return {
      name,
      kind: s0.kind,
      wallS: r3(median(all.map(wall))),
      cpu: { client: r2(median(all.map((s) => s.cpu.client))), source: r2(median(all.map((s) => s.cpu.source))), target: r2(median(all.map((s) => s.cpu.target))) },
      split,
      ...(s0.bytes !== undefined ? { bytes: s0.bytes } : {}),
    };
  });
}

function main(): void {
  const a = args();
  const dir = a.runs;
  if (!dir) {
    console.error('usage: npx tsx bench/jobs-model.ts --runs DIR [--rows N] [--out FILE]');
    process.exit(2);
  }
  // A run that failed (a refused cutover) times nothing: left out.
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.meta') && JSON.parse(readFileSync(join(dir, f), 'utf8')).status === 0)
    .map((f) => f.slice(0, -5));
  const load = (re: RegExp, w?: Parameters<typeof readRun>[2]) => names.filter((n) => re.test(n)).sort().map((n) => readRun(dir, n, w));
  const sync1 = load(/^sync-j1-/);
  const sync2 = load(/^sync-j2-/);
  const verify1 = load(/^verify-j1-/);
  const verify2 = load(/^verify-j2-/);
  // The frozen part of a cutover: from the freeze to green's commit (the report's freezeMs).
  const cut = load(/^cutover-/, (r) => {
    const at = Date.parse(r.frozenAt as string);
    return [at, at + Number(r.freezeMs)];
  });
  const reinsert: Reinsert = { tables: new Map() };
  for (const n of names.filter((x) => x.startsWith('reinsert-'))) {
    const r = readRun(dir, n);
    // psql's \timing: the statement alone; only the target's CPU is the step's (psql is no part of a sync).
    const ms = /Time: ([\d.]+) ms/.exec(String(r.report.stdout ?? ''));
    reinsert.tables.set(n.slice('reinsert-'.length), { s: ms ? Number(ms[1]) / 1000 : (r.end - r.start) / 1000, cpu: { ...r.cpu, client: 0 } });
  }
  if (sync1.length === 0 || verify1.length === 0) throw new Error(`no jobs-1 sync or verify runs in ${dir}`);
  const measuredS = (runs: Run[]) => r2(median(runs.map((r) => (r.end - r.start) / 1000)));
  const measuredFreeze = r3(median(cut.map((r) => Number(r.report.freezeMs) / 1000)));

  const pred = (runs: Run[], jobs: number, cores: number, mode: Mode, hosts: Hosts, link?: number, speed: Speed = 'measured', others: Others = 'none') =>
    runs.length ? r2(median(runs.map((r) => predict(r, jobs, cores, mode, hosts, reinsert, link, speed, others).seconds))) : NaN;
  const err = (p: number, m: number) => r2(((p - m) / m) * 100);
  // The check: this machine (2 cores, one host for all), jobs 1 and 2.
  const check = {
    sync: {
      jobs1: { predicted: pred(sync1, 1, 2, 'as-built', 'shared'), measured: measuredS(sync1) },
      jobs2: { predicted: pred(sync1, 2, 2, 'as-built', 'shared'), measured: measuredS(sync2) },
    },
    verify: {
      jobs1: { predicted: pred(verify1, 1, 2, 'as-built', 'shared'), measured: measuredS(verify1) },
      jobs2: { predicted: pred(verify1, 2, 2, 'as-built', 'shared'), measured: measuredS(verify2) },
    },
    freeze: { jobs1: { predicted: cut.length ? pred(cut, 1, 2, 'as-built', 'shared') : NaN, measured: measuredFreeze } },
  };
  // The same check with the other work the jobs-1 runs met on the machine (block by block,
  // from the machine's counters; nothing of the jobs-2 runs is used): see share().
  const checkLoaded = (others: Others) => ({
    sync: {
      jobs1: { predicted: pred(sync1, 1, 2, 'as-built', 'shared', undefined, 'measured', others), measured: measuredS(sync1) },
      jobs2: { predicted: pred(sync1, 2, 2, 'as-built', 'shared', undefined, 'measured', others), measured: measuredS(sync2) },
    },
    verify: {
      jobs1: { predicted: pred(verify1, 1, 2, 'as-built', 'shared', undefined, 'measured', others), measured: measuredS(verify1) },
      jobs2: { predicted: pred(verify1, 2, 2, 'as-built', 'shared', undefined, 'measured', others), measured: measuredS(verify2) },
    },
  });
  const withErr = (o: Record<string, Record<string, { predicted: number; measured: number }>>) =>
    Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Object.fromEntries(Object.entries(v).map(([j, x]) => [j, { ...x, errorPct: err(x.predicted, x.measured) }]))]));

  const table = (mode: Mode, hosts: Hosts, link?: number, speed: Speed = 'measured') =>
    CORES.map((n) => ({
      cores: n,
      jobs: n,
      sync: pred(sync1, n, n, mode, hosts, link, speed),
      verify: pred(verify1, n, n, mode, hosts, undefined, speed),
      // A cutover has no --jobs: as built its frozen part runs on one session pair whatever the cores.
      freeze: cut.length ? pred(cut, mode === 'as-built' ? 1 : n, n, mode, hosts, undefined, speed) : NaN,
    }));
  const copyBytes = sync1[0]!.steps.filter((s) => isCopy(s.kind)).reduce((x, s) => x + (s.bytes ?? 0), 0);
  const copyRows = sync1[0]!.steps.filter((s) => isCopy(s.kind)).reduce((x, s) => x + (s.rows ?? 0), 0);
  const median1 = [...sync1].sort((x, y) => x.end - x.start - (y.end - y.start))[(sync1.length - 1) >> 1]!;
  const out = {
    rows: Number(a.rows ?? NaN),
    load: a.load,
    seedSeconds: a['seed-seconds'] ? Number(a['seed-seconds']) : undefined,
    runs: { sync1: sync1.length, sync2: sync2.length, verify1: verify1.length, verify2: verify2.length, cutovers: cut.length },
    check: withErr(check),
    otherCores: {
      sync1: r2(median(sync1.map((r) => r.otherCores))),
      sync2: r2(median(sync2.map((r) => r.otherCores))),
      verify1: r2(median(verify1.map((r) => r.otherCores))),
      verify2: r2(median(verify2.map((r) => r.otherCores))),
    },
    checkOthersShare: withErr(checkLoaded('share')),
    checkOthersKeep: withErr(checkLoaded('keep')),
    // jobs = cores; as built (the code today) and the 16+ design, on one host (like this
    // machine) and on separate blue and green hosts (10 GbE between them).
    predictions: {
      asBuiltOneHost: table('as-built', 'shared'),
      asBuiltSeparateHosts10GbE: table('as-built', 'separate', LINKS['10GbE']),
      designSeparateHosts10GbE: table('design', 'separate', LINKS['10GbE']),
      designSeparateHosts1GbE: table('design', 'separate', LINKS['1GbE']),
      designSeparateHosts25GbE: table('design', 'separate', LINKS['25GbE']),
      // Units at the speed of their busiest process (see unitSeconds): hosts with cores to spare.
      asBuiltSeparateHosts10GbEQuiet: table('as-built', 'separate', LINKS['10GbE'], 'quiet'),
      designSeparateHosts10GbEQuiet: table('design', 'separate', LINKS['10GbE'], 'quiet'),
      designSeparateHosts1GbEQuiet: table('design', 'separate', LINKS['1GbE'], 'quiet'),
    },
    blocksOfTheMedianJobs1Sync: Object.fromEntries(
      [
        ['cores1AsBuiltHere', 1, 'as-built', 'shared', 'measured'],
        ['cores2AsBuiltHere', 2, 'as-built', 'shared', 'measured'],
        ['cores16AsBuiltQuiet', 16, 'as-built', 'separate', 'quiet'],
        ['cores16DesignQuiet', 16, 'design', 'separate', 'quiet'],
        ['cores32DesignQuiet', 32, 'design', 'separate', 'quiet'],
      ].map(([k, n, mode, hosts, speed]) => [
        k,
        predict(median1, n as number, n as number, mode as Mode, hosts as Hosts, reinsert, LINKS['10GbE'], speed as Speed).blocks.map((b) => ({ ...b, seconds: r2(b.seconds) })),
      ]),
    ),
    steps: { sync: stepTable(sync1), verify: stepTable(verify1), freeze: cut.length ? stepTable(cut) : [] },
    cpuSeconds: {
      sync1: mapCpu(sync1.map((r) => r.cpu)),
      sync2: mapCpu(sync2.map((r) => r.cpu)),
      verify1: mapCpu(verify1.map((r) => r.cpu)),
      verify2: mapCpu(verify2.map((r) => r.cpu)),
    },
    network: {
      copyBytes,
      copyRows,
      bytesPerRow: r2(copyBytes / copyRows),
      secondsAt: Object.fromEntries(Object.entries(LINKS).map(([k, v]) => [k, r2(copyBytes / v)])),
    },
    greenWalBytes: { sync1: median(sync1.map((r) => r.greenWalBytes)), sync2: median(sync2.map((r) => r.greenWalBytes)) },
    reinsert: Object.fromEntries([...reinsert.tables].map(([t, x]) => [t, { s: r3(x.s), cpu: mapCpu([x.cpu]) }])),
    greenSizes: existsSync(join(dir, 'sizes.tsv'))
      ? Object.fromEntries(readFileSync(join(dir, 'sizes.tsv'), 'utf8').trim().split('\n').map((l) => l.split('\t')).map(([t, h, i]) => [t, { tableBytes: Number(h), indexBytes: Number(i) }]))
      : undefined,
  };
  if (a.out) writeFileSync(a.out, JSON.stringify(out, null, 2) + '\n');
  print(out);
}

function mapCpu(cs: Cpu[]): Cpu & { total: number } {
  const m = (f: (c: Cpu) => number) => r2(median(cs.map(f)));
  return { client: m((c) => c.client), source: m((c) => c.source), target: m((c) => c.target), total: m(total) };
}

function print(o: {
  rows: number;
  check: Record<string, Record<string, { predicted: number; measured: number; errorPct: number }>>;
  checkOthersShare: Record<string, Record<string, { predicted: number; measured: number; errorPct: number }>>;
  checkOthersKeep: Record<string, Record<string, { predicted: number; measured: number; errorPct: number }>>;
  predictions: Record<string, { cores: number; sync: number; verify: number; freeze: number }[]>;
  network: { bytesPerRow: number; secondsAt: Record<string, number> };
}): void {
  const lines = [`jobs model, ${o.rows} users`, '', 'check on this machine (2 cores, one host), medians, as if the machine were ours alone:', '| run | jobs | predicted s | measured s | error |', '| --- | ---: | ---: | ---: | ---: |'];
  for (const [cmd, v] of Object.entries(o.check)) for (const [j, x] of Object.entries(v)) lines.push(`| ${cmd} | ${j.slice(4)} | ${x.predicted} | ${x.measured} | ${x.errorPct}% |`);
  for (const [title, c] of [
    ['with the other work the jobs-1 runs met, cores shared in proportion to demand', o.checkOthersShare],
    ['with the other work the jobs-1 runs met, keeping the cores it had', o.checkOthersKeep],
  ] as const) {
    lines.push('', `${title}:`, '| run | jobs | predicted s | measured s | error |', '| --- | ---: | ---: | ---: | ---: |');
    for (const [cmd, v] of Object.entries(c)) for (const [j, x] of Object.entries(v)) lines.push(`| ${cmd} | ${j.slice(4)} | ${x.predicted} | ${x.measured} | ${x.errorPct}% |`);
  }
  for (const [k, rows] of Object.entries(o.predictions)) {
    lines.push('', `${k}:`, '| cores = jobs | full sync s | verify s | freeze s |', '| ---: | ---: | ---: | ---: |');
    for (const r of rows) lines.push(`| ${r.cores} | ${r.sync} | ${r.verify} | ${r.freeze} |`);
  }
  lines.push('', `network: ${o.network.bytesPerRow} bytes per row; the COPY bytes take ${Object.entries(o.network.secondsAt).map(([k, v]) => `${v} s at ${k}`).join(', ')}`);
  console.log(lines.join('\n'));
}

main();
