/**
 * What a zoned cast's `dst` policy costs per row: the SQL face of `timestamp` ->
 * `timestamptz` in Europe/Berlin (and back) over N local times, none in a gap or fold
 * (the usual case), under `shift` (PostgreSQL's bare conversion), `later` and `refuse`.
 *
 *   npx tsx bench/dst-cast.ts postgres://user@host/db [rows] [rounds]
 *
 * Reads only (a temporary table in its own session); prints the best of `rounds` per face.
 */
import pg from 'pg';
import { castRule } from '../src/mapping/ops/cast.ts';

const [url, rowsArg, roundsArg] = process.argv.slice(2);
if (!url) {
  console.error('usage: npx tsx bench/dst-cast.ts URL [rows] [rounds]');
  process.exit(2);
}
const rows = Number(rowsArg ?? 1_000_000);
const rounds = Number(roundsArg ?? 3);
const LOCAL = 'timestamp without time zone';
const INSTANT = 'timestamp with time zone';
const ZONE = 'Europe/Berlin';

const c = new pg.Client({ connectionString: url });
await c.connect();
try {
  await c.query(`set jit = off`);
  // Every 31 seconds from January on, the clock changes' hours left out.
  await c.query(
    `create temp table bench_local as select x from (select timestamp '2025-01-01' + g * interval '31 seconds' as x from generate_series(1, ${rows}) g) s
     where x not between '2025-03-30 02:00' and '2025-03-30 03:00' and x not between '2025-10-26 02:00' and '2025-10-26 03:00'`,
  );
  await c.query(`create temp table bench_instant as select x at time zone '${ZONE}' as x from bench_local`);
  const faces: [string, string, string][] = [
    ['up, shift', 'bench_local', castRule(LOCAL, INSTANT, ZONE, 'shift').sql('x')],
    ['up, later', 'bench_local', castRule(LOCAL, INSTANT, ZONE, 'later').sql('x')],
    ['up, refuse', 'bench_local', castRule(LOCAL, INSTANT, ZONE, 'refuse').sql('x')],
    ['down, shift', 'bench_instant', castRule(INSTANT, LOCAL, ZONE, 'shift').sql('x')],
    ['down, refuse', 'bench_instant', castRule(INSTANT, LOCAL, ZONE, 'refuse').sql('x')],
  ];
  const n = (await c.query(`select count(*)::int as n from bench_local`)).rows[0].n as number;
  console.log(`${n} rows, ${ZONE}, best of ${rounds}`);
  for (const [name, table, sql] of faces) {
    let best = Infinity;
    for (let i = 0; i < rounds; i++) {
      const t0 = process.hrtime.bigint();
      await c.query(`select count(${sql}) from ${table}`);
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
    }
    console.log(`${name.padEnd(14)} ${(best / 1000).toFixed(2)} s  ${((best * 1000) / n).toFixed(2)} µs/row`);
  }
} finally {
  await c.end();
}
