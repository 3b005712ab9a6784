/**
 * Why bluegreen has its own CSV codec (src/codec/pg-csv.ts) instead of csv-parse and
 * csv-stringify: exactness (NULL vs '') and speed, measured on the fixture generator's
 * hostile users rows (NULL and '', quotes, commas, newlines, tabs, backslashes, non-ASCII)
 * written in PostgreSQL's own CSV dialect, as COPY writes it.
 *
 *   npx tsx bench/csv-libs.ts [users=200000] [repeats=3]
 *
 * csv-parse and csv-stringify are not dependencies of bluegreen. To include them:
 *
 *   mkdir -p /tmp/csvlibs && (cd /tmp/csvlibs && npm init -y && npm install csv-parse csv-stringify)
 *   CSV_LIBS=/tmp/csvlibs npx tsx bench/csv-libs.ts
 *
 * Without them only bluegreen's codec and a naive split are measured. For each decoder:
 * rows/s (best of `repeats`), and how many rows come back different from what was
 * written (a NULL read as '' or the reverse counts). For each encoder: rows/s, and how
 * many rows PostgreSQL would read back differently (decoded with the exact codec).
 * Prints a table and one JSON line.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CsvDecoder, CsvEncoder, decodeCsv, type CsvBatch, type CsvRow } from '../src/codec/pg-csv.ts';
import { generateV1Rows } from '../fixtures/generate.ts';

const users = Number(process.argv[2] ?? 200_000);
const repeats = Number(process.argv[3] ?? 3);

type Parse = (input: Buffer, opts: Record<string, unknown>) => unknown[][];
type Stringify = (rows: unknown[][], opts?: Record<string, unknown>) => string;
let parse: Parse | undefined;
let stringify: Stringify | undefined;
if (process.env.CSV_LIBS) {
  const req = createRequire(path.join(path.resolve(process.env.CSV_LIBS), 'package.json'));
  parse = (req('csv-parse/sync') as { parse: Parse }).parse;
  stringify = (req('csv-stringify/sync') as { stringify: Stringify }).stringify;
}

const rows: CsvRow[] = [...generateV1Rows('users', { users })];
const width = rows[0]!.length;

async function encodeOurs(input: CsvRow[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const batches: CsvBatch[] = [];
  for (let i = 0; i < input.length; i += 2000) batches.push(input.slice(i, i + 2000));
  await pipeline(Readable.from(batches, { objectMode: true }), new CsvEncoder(), new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }));
  return Buffer.concat(chunks);
}

async function decodeOurs(input: Buffer): Promise<CsvRow[]> {
  const out: CsvRow[] = [];
  const chunks: Buffer[] = [];
  for (let i = 0; i < input.length; i += 65536) chunks.push(input.subarray(i, i + 65536));
  await pipeline(Readable.from(chunks), new CsvDecoder(), new Writable({ objectMode: true, write: (b: CsvBatch, _e, cb) => (out.push(...b), cb()) }));
  return out;
}

/** Rows that differ from the originals (a NULL for '' or the reverse counts). */
function differing(got: unknown[][], want: CsvRow[]): number {
  let n = Math.abs(got.length - want.length);
  for (let i = 0; i < Math.min(got.length, want.length); i++) {
    const a = got[i]!;
    const b = want[i]!;
    if (a.length !== b.length || a.some((v, j) => v !== b[j])) n++;
  }
  return n;
}

async function best<T>(fn: () => T | Promise<T>): Promise<{ seconds: number; result: T }> {
  let min = Infinity;
  let result!: T;
  for (let i = 0; i < repeats; i++) {
    const t = process.hrtime.bigint();
    result = await fn();
    min = Math.min(min, Number(process.hrtime.bigint() - t) / 1e9);
  }
  return { seconds: min, result };
}

const pgCsv = await encodeOurs(rows);
const nulls = rows.reduce((a, r) => a + r.filter((v) => v === null).length, 0);
const empties = rows.reduce((a, r) => a + r.filter((v) => v === '').length, 0);
const results: { name: string; kind: 'decode' | 'encode'; seconds: number; rowsPerSecond: number; wrongRows: number }[] = [];
const record = (name: string, kind: 'decode' | 'encode', seconds: number, wrongRows: number) =>
  results.push({ name, kind, seconds: Math.round(seconds * 1000) / 1000, rowsPerSecond: Math.round(rows.length / seconds), wrongRows });

// Decoders.
{
  const r = await best(() => decodeOurs(pgCsv));
  record('bluegreen CsvDecoder (streaming, 64 KiB chunks)', 'decode', r.seconds, differing(r.result, rows));
}
{
  // The naive approach: split lines and fields. Wrong on every quoted comma or newline.
  const r = await best(() => pgCsv.toString('utf8').split('\n').filter(Boolean).map((l) => l.split(',').map((f) => (f === '' ? null : f))));
  record("naive split(',') (no quoting)", 'decode', r.seconds, differing(r.result, rows));
}
if (parse) {
  const p = parse;
  const plain = await best(() => p(pgCsv, { relax_column_count: true }) as unknown[][]);
  record('csv-parse, no cast (NULL and \'\' both read as \'\')', 'decode', plain.seconds, differing(plain.result, rows));
  // The only way csv-parse tells NULL from "": a cast that looks at whether the field was quoted.
  const cast = await best(
    () => p(pgCsv, { relax_column_count: true, cast: (value: string, ctx: { quoting: boolean }) => (value === '' && !ctx.quoting ? null : value) }) as unknown[][],
  );
  record('csv-parse with a cast (quoting tells NULL from \'\')', 'decode', cast.seconds, differing(cast.result, rows));
}

// Encoders: what PostgreSQL (and the exact decoder) would read back.
{
  const r = await best(() => encodeOurs(rows));
  record('bluegreen CsvEncoder', 'encode', r.seconds, differing(decodeCsv(r.result).rows, rows));
}
if (stringify) {
  const s = stringify;
  const naive = await best(() => s(rows as unknown[][]));
  record('csv-stringify, defaults (NULL and \'\' both written empty)', 'encode', naive.seconds, differing(decodeCsv(naive.result).rows, rows));
  const quoted = await best(() => s(rows as unknown[][], { cast: { string: (v: string) => (v === '' ? { value: '', quoted_empty: true } : v) } }));
  record('csv-stringify, \'\' forced quoted', 'encode', quoted.seconds, differing(decodeCsv(quoted.result).rows, rows));
}

console.log(`${rows.length} users rows x ${width} columns (${(pgCsv.length / 1024 / 1024).toFixed(1)} MB as PostgreSQL CSV; ${nulls} NULLs, ${empties} empty strings); best of ${repeats}`);
console.log(`| ${'method'.padEnd(58)} | rows/s | wrong rows |`);
console.log(`| ${'-'.repeat(58)} | ---: | ---: |`);
for (const r of results) console.log(`| ${r.name.padEnd(58)} | ${r.rowsPerSecond.toLocaleString('en-US')} | ${r.wrongRows.toLocaleString('en-US')} |`);
console.log(JSON.stringify({ users: rows.length, bytes: pgCsv.length, nulls, empties, results }));
