/**
 * Benchmark of offline conversion (`bluegreen convert`'s streaming converter), no database.
 *
 *   npx tsx bench/convert.ts dump DIR [users=1000000] [seed=1]
 *       writes a full v1 dump of the fixture generator's hostile rows into DIR
 *       (roles, users, user_roles, user_settings: ~3.5 rows per user, ~125 bytes a row)
 *   npx tsx bench/convert.ts run DIR [to=2] [repeats=3]
 *       converts DIR to v`to` `repeats` times in this process (into a temp dir removed after
 *       each run) and prints one JSON line per run plus the median; catalogs come from the
 *       repo's warm cache (.bluegreen/catalogs), as the CLI would read them
 *
 * The CLI measurement the numbers in commit messages quote is the real command:
 *   /usr/bin/time -v node bin/bluegreen.js convert --in DIR --to-version 2 --out OUT
 * Profile with: node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/convert.ts run DIR 2 1
 *
 * The generator writes PostgreSQL input text, not what COPY TO would print (timestamps with
 * odd offsets, `1e3` numerics); the converter's v1 -> v2 JS face does not care, and the
 * shape (quoted fields, multi-line values, 61% non-ASCII) is the one that costs.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { CsvEncoder } from '../src/codec/pg-csv.ts';
import { catalogProvider } from '../src/convert/catalogs.ts';
import { convertDump } from '../src/convert/convert.ts';
import { newManifest, writeManifest, type DumpTable } from '../src/dump/manifest.ts';
import { silentLogger } from '../src/log.ts';
import { V1_COLUMNS, V1_TABLES, generateV1Batches } from '../fixtures/generate.ts';

const ROOT = path.join(import.meta.dirname, '..');
const [mode, dir, ...rest] = process.argv.slice(2);
if (!dir || (mode !== 'dump' && mode !== 'run')) {
  process.stderr.write('usage: bench/convert.ts dump DIR [users] [seed] | run DIR [to] [repeats]\n');
  process.exit(2);
}

/** v1 primary keys, in the order export sorts by. */
const KEYS: Record<string, string[]> = { roles: ['id'], users: ['id'], user_roles: ['user_id', 'role_id'], user_settings: ['id'] };

async function writeDump(out: string, users: number, seed: number): Promise<void> {
  await mkdir(out, { recursive: true, mode: 0o700 });
  const tables: DumpTable[] = [];
  for (const name of V1_TABLES) {
    const file = `${name}.csv`;
    const h = createHash('sha256');
    let bytes = 0;
    let rows = 0;
    const encoder = new CsvEncoder({ header: [...V1_COLUMNS[name]] });
    const tap = new Transform({
      transform(chunk: Buffer, _e, cb) {
        h.update(chunk);
        bytes += chunk.length;
        cb(null, chunk);
      },
    });
    const counted = function* () {
      for (const b of generateV1Batches(name, { users, seed }, 2000)) {
        rows += b.length;
        yield b;
      }
    };
    await pipeline(Readable.from(counted(), { objectMode: true }), encoder, tap, createWriteStream(path.join(out, file), { mode: 0o600 }));
    tables.push({ name, file, columns: [...V1_COLUMNS[name]], key: KEYS[name]!, rows, bytes, sha256: h.digest('hex') });
    process.stderr.write(`${name}: ${rows} rows, ${(bytes / 1e6).toFixed(1)} MB\n`);
  }
  await writeManifest(out, newManifest({ schemaVersion: 1, mode: 'full', tables }));
}

async function run(input: string, to: number, repeats: number): Promise<void> {
  const catalogs = catalogProvider({ mappingsDir: path.join(ROOT, 'mappings'), cacheDir: path.join(ROOT, '.bluegreen/catalogs'), server: undefined, logger: silentLogger });
  const rates: number[] = [];
  // Peak memory by kind, sampled: RSS alone does not say whether the heap or Buffers grew.
  const peak = { rss: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    for (const k of Object.keys(peak) as (keyof typeof peak)[]) peak[k] = Math.max(peak[k], Math.round(m[k] / 1e6));
  }, 50);
  for (let i = 0; i < repeats; i++) {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'bg-bench-convert-'));
    try {
      const t = process.hrtime.bigint();
      const cpu = process.cpuUsage();
      const r = await convertDump({ dir: input, out: path.join(tmp, 'out'), toVersion: to, mappingsDir: path.join(ROOT, 'mappings'), catalogs, logger: silentLogger });
      const s = Number(process.hrtime.bigint() - t) / 1e9;
      const used = process.cpuUsage(cpu);
      rates.push(r.rowsPerSecond);
      process.stdout.write(
        JSON.stringify({ run: i + 1, rows: r.rows, convertRowsPerSecond: r.rowsPerSecond, wallSeconds: Number(s.toFixed(2)), cpuSeconds: Number(((used.user + used.system) / 1e6).toFixed(2)), peakMb: { ...peak } }) + '\n',
      );
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  clearInterval(sampler);
  const sorted = [...rates].sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({ medianRowsPerSecond: sorted[Math.floor(sorted.length / 2)], runs: rates }) + '\n');
}

if (mode === 'dump') await writeDump(dir, Number(rest[0] ?? 1_000_000), Number(rest[1] ?? 1));
else await run(dir, Number(rest[0] ?? 2), Number(rest[1] ?? 3));
