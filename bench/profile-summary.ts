/**
 * Summarises one profiled sync (bench/profile.sh): wall time per phase from the target
 * server's statement log, and how busy Node was from its CPU profile.
 *
 *   npx tsx bench/profile-summary.ts GREEN.log T0 T1 [CPU.cpuprofile ...]
 *   npx tsx bench/profile-summary.ts --statements LABEL T0 T1 NAME=LOG ...
 *
 * T0/T1 are the epoch seconds around the bluegreen process. Statement durations come from
 * log_min_duration_statement = 0 (`duration: X ms  statement: …`, or the execute step of
 * an extended-protocol query); the time not covered by target statements is start-up,
 * source-only work and client time, reported as such rather than guessed at.
 */
import { readFileSync } from 'node:fs';

const LINE = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) UTC \[\d+\] LOG:  duration: ([\d.]+) ms  (?:statement|execute [^:]*): (.*)$/;

/**
 * `--statements LABEL T0 T1 NAME=LOG ...`: for a short run (an incremental sync), each
 * server's statement count, their total time and the largest ones, and the time no
 * statement of either server covers (start-up, client work, round trips).
 */
if (process.argv[2] === '--statements') {
  const [, , , label, a, b, ...logs] = process.argv;
  const wall = (Number(b) - Number(a)) * 1000;
  const out = [`profiled ${label}: ${(wall / 1000).toFixed(2)} s wall (one run, with statement logging on)`];
  for (const spec of logs) {
    const [name, file] = spec.split('=');
    const rows = readFileSync(file!, 'utf8')
      .split('\n')
      .flatMap((l) => {
        const m = LINE.exec(l);
        return m ? [{ ms: Number(m[2]), sql: m[3]!.trim().replace(/\s+/g, ' ') }] : [];
      });
    const total = rows.reduce((t, r) => t + r.ms, 0);
    out.push(`  ${name}: ${rows.length} statements, ${(total / 1000).toFixed(3)} s in all; the largest:`);
    for (const r of [...rows].sort((x, y) => y.ms - x.ms).slice(0, 6)) out.push(`    ${(r.ms / 1000).toFixed(3).padStart(7)} s  ${r.sql.slice(0, 100)}`);
  }
  process.stdout.write(out.join('\n') + '\n');
  process.exit(0);
}

const [logPath, t0s, t1s, ...profiles] = process.argv.slice(2);
const t0 = Number(t0s) * 1000;
const t1 = Number(t1s) * 1000;
const wall = t1 - t0;

const PHASES: [string, RegExp][] = [
  ['COPY into target tables', /^COPY \S+ .*FROM STDIN/i],
  ['primary keys and unique constraints', /add constraint .* (PRIMARY KEY|UNIQUE)/i],
  ['secondary indexes', /^CREATE (UNIQUE )?INDEX/i],
  ['foreign keys (validated once)', /FOREIGN KEY/i],
  ['ANALYZE', /^analyze/i],
  ['verify (bucket hashes, target side)', /hashtextextended/i],
];
const totals = new Map<string, number>();
const perTable = new Map<string, number>();
let first = Infinity;
/** [start, end] of every target statement: a sync runs some side by side (ANALYZE beside the verify). */
const spans: [number, number][] = [];
const re = LINE;
for (const line of readFileSync(logPath!, 'utf8').split('\n')) {
  const m = re.exec(line);
  if (!m) continue;
  const end = Date.parse(m[1]!.replace(' ', 'T') + 'Z');
  const ms = Number(m[2]);
  first = Math.min(first, end - ms);
  spans.push([end - ms, end]);
  const sql = m[3]!.trim();
  const phase = PHASES.find(([, r]) => r.test(sql))?.[0] ?? 'other statements (catalogs, version detection, state, sequences)';
  totals.set(phase, (totals.get(phase) ?? 0) + ms);
  const copy = /^COPY (\S+)/i.exec(sql);
  if (phase === PHASES[0]![0] && copy) perTable.set(copy[1]!, (perTable.get(copy[1]!) ?? 0) + ms);
}

// Time covered by at least one target statement (the union of their spans).
let covered = 0;
let reach = -Infinity;
for (const [a, b] of spans.sort((x, y) => x[0] - y[0])) {
  if (b > reach) covered += b - Math.max(a, reach);
  reach = Math.max(reach, b);
}
const pct = (ms: number) => `${((100 * ms) / wall).toFixed(0).padStart(3)}%`;
const s = (ms: number) => `${(ms / 1000).toFixed(2).padStart(7)} s`;
const out: string[] = [`profiled full sync: ${s(wall)} wall (one run, with statement logging on; phases that ran side by side overlap)`];
if (Number.isFinite(first)) out.push(`  ${'before the first statement (Node start-up, module loading, connect)'.padEnd(66)} ${s(first - t0)} ${pct(first - t0)}`);
for (const [phase] of [...PHASES, ['other statements (catalogs, version detection, state, sequences)']]) {
  const ms = totals.get(phase!) ?? 0;
  if (!ms) continue;
  out.push(`  ${phase!.padEnd(66)} ${s(ms)} ${pct(ms)}`);
  if (phase === PHASES[0]![0]) for (const [t, v] of perTable) out.push(`    ${t.padEnd(64)} ${s(v)}`);
}
const rest = wall - covered - (Number.isFinite(first) ? first - t0 : 0);
out.push(`  ${'not in a target statement (source-only work, client, exit)'.padEnd(66)} ${s(rest)} ${pct(rest)}`);

for (const p of profiles) {
  const prof = JSON.parse(readFileSync(p, 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string } }[];
    samples: number[];
    timeDeltas: number[];
  };
  const self = new Map<number, number>();
  prof.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0) / 1000));
  let total = 0;
  let idle = 0;
  const byFile = new Map<string, number>();
  for (const n of prof.nodes) {
    const ms = self.get(n.id) ?? 0;
    total += ms;
    if (n.callFrame.functionName === '(idle)') idle += ms;
    else {
      const f = (n.callFrame.url || `(${n.callFrame.functionName})`).replace(/^.*node_modules\/((@[^/]+\/)?[^/]+).*$/, '$1').replace(/^file:\/\/.*\/(src|scripts|dist)\//, '$1/');
      byFile.set(f, (byFile.get(f) ?? 0) + ms);
    }
  }
  if (total < 1) continue;
  out.push(`node thread ${p.split('/').pop()}: ${s(total)} sampled, ${((100 * idle) / total).toFixed(0)}% idle (waiting on the servers)`);
  for (const [f, ms] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 6)) out.push(`    ${f.slice(0, 64).padEnd(64)} ${s(ms)}`);
}
process.stdout.write(out.join('\n') + '\n');
