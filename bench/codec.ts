/**
 * Micro-benchmark of the PostgreSQL CSV codec: decode and encode throughput on synthetic
 * users-like rows (7 columns, ~10% of rows with a quoted field, NULLs, '' and non-ASCII),
 * streamed in 64 KiB chunks like COPY output.
 *
 *   npx tsx bench/codec.ts [rows=200000] [repeats=5] [synthetic|hostile]
 *
 * `hostile` uses the fixture generator's users rows instead (far more quoted fields,
 * multi-line values and non-ASCII; one ~100 KB value per 250k rows).
 *
 * Prints one JSON line per phase with the best of `repeats` runs.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CsvDecoder, CsvEncoder, type CsvBatch, type CsvRow } from '../src/codec/pg-csv.ts';
import { generateV1Rows } from '../fixtures/generate.ts';

const rowCount = Number(process.argv[2] ?? 200_000);
const repeats = Number(process.argv[3] ?? 5);
const data = process.argv[4] ?? 'synthetic';

function syntheticRows(n: number): CsvRow[] {
  const rows: CsvRow[] = [];
  const names = ['Ada Lovelace', 'Jürgen Müller', '山田 太郎', 'O"Brien, Jr.', 'line\nbreak', '', null, 'plain name'];
  for (let i = 0; i < n; i++) {
    const odd = i % 10 === 0;
    rows.push([
      String(i + 1),
      `user_${i.toString(36)}`,
      odd ? names[i % names.length]! : names[(i % 3) * 2 + 1] ?? null,
      i % 7 === 0 ? null : `user${i}@example.com`,
      '2024-03-01 12:34:56.123456+00',
      '2024-06-01 08:00:00+00',
      i % 5 === 0 ? '' : 'ok',
    ]);
  }
  return rows;
}

function batches(rows: CsvRow[], size: number): CsvBatch[] {
  const out: CsvBatch[] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}

async function encode(rows: CsvRow[]): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  await pipeline(
    Readable.from(batches(rows, 2000), { objectMode: true }),
    new CsvEncoder(),
    new Writable({
      write(chunk: Buffer, _e, cb) {
        chunks.push(chunk);
        cb();
      },
    }),
  );
  return chunks;
}

async function decode(chunks: Buffer[]): Promise<number> {
  let n = 0;
  await pipeline(
    Readable.from(chunks, { objectMode: false }),
    new CsvDecoder(),
    new Writable({
      objectMode: true,
      write(batch: CsvBatch, _e, cb) {
        n += batch.length;
        cb();
      },
    }),
  );
  return n;
}

async function best(fn: () => Promise<unknown>): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < repeats; i++) {
    const t = process.hrtime.bigint();
    await fn();
    min = Math.min(min, Number(process.hrtime.bigint() - t) / 1e9);
  }
  return min;
}

const rows = data === 'hostile' ? [...generateV1Rows('users', { users: rowCount })] : syntheticRows(rowCount);
const encoded = await encode(rows);
// Re-chunk to 64 KiB, the size pg-copy-streams and file reads deliver.
const whole = Buffer.concat(encoded);
const chunks: Buffer[] = [];
for (let i = 0; i < whole.length; i += 65536) chunks.push(whole.subarray(i, i + 65536));
const mb = whole.length / 1e6;

const decodeSeconds = await best(() => decode(chunks));
const encodeSeconds = await best(() => encode(rows));
const report = (phase: string, s: number) =>
  process.stdout.write(
    JSON.stringify({ phase, data, rows: rowCount, mb: Number(mb.toFixed(1)), seconds: Number(s.toFixed(3)), rowsPerSecond: Math.round(rowCount / s), mbPerSecond: Number((mb / s).toFixed(1)) }) + '\n',
  );
report('decode', decodeSeconds);
report('encode', encodeSeconds);
