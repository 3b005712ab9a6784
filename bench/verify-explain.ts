/**
 * EXPLAIN ANALYZE of verify's per-table target query (bucket count and hash sum), the row
 * text hash grouped by sorting, the binary row hash grouped by hashing, and the binary row
 * hash's plain total (what verify runs first now; the grouped form only when totals
 * differ), on the database at GREEN_URL. `set max_parallel_workers_per_gather = 0` in
 * PGOPTIONS compares them on one core each.
 * Every column of every table with a primary key is compared, as in a same-version verify.
 * Prints one JSON line per table: median execution ms of RUNS runs each, alternating.
 *
 *   GREEN_URL=postgres://… RUNS=3 npx tsx bench/verify-explain.ts
 *
 * With COLUMNS=1 and a server on this machine (its backend's /proc entry readable), it
 * then prints the backend CPU of each table's plain total, of a bare scan, and of the total
 * without each column in turn: what each column's encoding costs per table (bench/README.md,
 * "Verify without a second read of blue").
 */
import { readFileSync } from 'node:fs';
import { connect } from '../src/db/connect.ts';
import { readEncodings } from '../src/verify/encoding.ts';
import { bucketCount, bucketSumSql, targetSide, totalSql } from '../src/verify/verify.ts';

const runs = Number(process.env.RUNS ?? 3);
const db = await connect(process.env.GREEN_URL!);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
try {
  const tables = await db.query<{ t: string; n: number; key: string[]; cols: string[] }>(
    `select c.relname as t, greatest(c.reltuples, 0)::bigint::int as n,
            (select array_agg(a.attname::text order by array_position(i.indkey::int2[], a.attnum)) from pg_index i
               join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey) where i.indrelid = c.oid and i.indisprimary) as key,
            (select array_agg(a.attname::text order by a.attnum) from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped) as cols
       from pg_class c join pg_namespace s on s.oid = c.relnamespace
      where s.nspname = 'public' and c.relkind = 'r' order by c.relname`,
  );
  const enc = await readEncodings(db, tables.rows.map((r) => r.t));
  for (const { t, n, key, cols } of tables.rows) {
    if (!key) continue;
    const buckets = bucketCount(n);
    const text = bucketSumSql(targetSide({ table: t, key }, cols), buckets);
    const binary = bucketSumSql(targetSide({ table: t, key }, cols, enc.get(t)), buckets);
    // Before: row text, grouped by sorting (the planner's choice). Now: binary row hash,
    // grouped by hashing (verify turns sorting off for this query); binary with sorting
    // separates the two effects.
    // Since: each side's plain total first (no grouping), buckets only when totals differ.
    const total = totalSql(targetSide({ table: t, key }, cols, enc.get(t)));
    const variants = { textSort: [text, 'on'], binarySort: [binary, 'on'], binaryHash: [binary, 'off'], binaryTotal: [total, 'off'] } as const;
    const ms: Record<string, number[]> = { textSort: [], binarySort: [], binaryHash: [], binaryTotal: [] };
    for (let i = 0; i < runs; i++) {
      for (const [name, [sql, sort]] of Object.entries(variants)) {
        await db.query(`set enable_sort = ${sort}`);
        const r = await db.query<{ 'QUERY PLAN': { 'Execution Time': number }[] }>(`explain (analyze, format json) ${sql}`);
        ms[name]!.push(r.rows[0]!['QUERY PLAN'][0]!['Execution Time']);
      }
    }
    await db.query('reset enable_sort');
    const encodings = Object.fromEntries([...enc.get(t)!].map(([c, e]) => [c, e.encoding]));
    const medians = Object.fromEntries(Object.entries(ms).map(([k, v]) => [`${k}Ms`, Math.round(median(v))]));
    console.log(JSON.stringify({ table: t, rows: n, ...medians, encodings }));
  }
  if (process.env.COLUMNS === '1') await columnCosts(tables.rows, enc);
} finally {
  await db.end();
}

/** Backend CPU (ms) of `sql`, median of `runs`, on one core (no parallel workers). */
async function cpuMs(sql: string): Promise<number> {
  const pid = (await db.query<{ p: number }>('select pg_backend_pid() as p')).rows[0]!.p;
  const ticks = () => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (10 ms)
  };
  await db.query('set max_parallel_workers_per_gather = 0');
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = ticks();
    await db.query(sql);
    xs.push((ticks() - t0) * 10);
  }
  await db.query('reset max_parallel_workers_per_gather');
  return median(xs);
}

async function columnCosts(tables: { t: string; key: string[]; cols: string[] }[], enc: Awaited<ReturnType<typeof readEncodings>>): Promise<void> {
  for (const { t, key, cols } of tables) {
    if (!key) continue;
    const total = (cs: string[]) => totalSql(targetSide({ table: t, key }, cs, enc.get(t)));
    const all = await cpuMs(total(cols));
    const scan = await cpuMs(`select count(*) from ${t}`);
    const without: Record<string, number> = {};
    for (const c of cols) without[c] = all - (await cpuMs(total(cols.filter((x) => x !== c))));
    console.log(JSON.stringify({ table: t, totalCpuMs: all, scanCpuMs: scan, columnCpuMs: without }));
  }
}
