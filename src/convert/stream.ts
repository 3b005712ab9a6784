/**
 * The one streaming converter shared by `convert` (dump -> dump) and `import` (dump ->
 * COPY FROM STDIN): per target table, the source CSV file(s) are decoded, each row goes
 * through the chain's JS face (transformJs), and the result is encoded in >= 64 KiB chunks
 * into whatever sink the caller gives. A table made from one file (the common case) is
 * converted in a single byte-to-byte stage (SingleSourceConverter); a merge pairs rows of
 * several key-sorted files in one forward pass (mergeJoin) between a CsvDecoder per file
 * and a CsvEncoder. No table is ever held in memory.
 *
 * Planning is separate from running on purpose: `planConversion` does every check that can
 * refuse (unsupported JS face, dump columns that do not fit the version, merge key types)
 * so callers can refuse before their first write. Only a value the mapping cannot convert
 * (MappingValueError) or a file that is not what the manifest says can still fail a run.
 */
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { pipeline as pipelineCallback, Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Catalog } from '../db/catalog-types.ts';
import { loadOrder } from '../db/catalog.ts';
import { CsvChunkWriter, CsvDecoder, CsvEncoder, CsvParser, type CsvBatch } from '../codec/pg-csv.ts';
import { DumpError } from '../errors.ts';
import type { Manifest } from '../dump/manifest.ts';
import { keyKind, mergeJoin, MappingValueError, RowConversionError, shownKey, type CompiledChain, type CompiledTable, type KeyKind, type Row } from '../mapping/index.ts';
import { OfflineConversionUnsupportedError } from './errors.ts';

/** Rows per batch handed to the encoder for merged tables (single-source tables keep the decoder's batches). */
const MERGE_BATCH = 2000;

/** One source table of a target table, as found in the dump. */
export interface PlannedSource {
  /** Source table name (in the dump's version). */
  table: string;
  /** Absolute path of its CSV file. */
  file: string;
  /** Columns of the file, in order (its header). */
  dumpColumns: string[];
  /** Data rows the manifest promises. */
  rows: number;
  /**
   * For each column the compiled table expects (SourceTable.columns), its index in the
   * file's rows, or -1 for a column the dump does not carry (read as NULL); null when the
   * file already has exactly the expected columns in order.
   */
  gather: number[] | null;
  /** Key column positions in the gathered row (for merges). */
  keyPositions: number[];
  /** Width of the gathered row. */
  width: number;
}

/** How one target table is produced from the dump. */
export interface TablePlan {
  /** The compiled chain for this target table. */
  target: CompiledTable;
  /** Its sources, in `target.sources` order. */
  inputs: PlannedSource[];
  /** Key kinds of the merge key (empty for a single source). */
  kinds: KeyKind[];
  /**
   * `js`: converted in Node (convertTable); `sql`: the chain has an op without a JS face,
   * so the dump's rows are converted by its SQL face in PostgreSQL (sql-fallback.ts).
   */
  face: 'js' | 'sql';
}

/** Everything needed to convert a dump, checked before any write. */
export interface ConversionPlan {
  /** Version of the dump. */
  from: number;
  /** Version produced. */
  to: number;
  /** Target tables in the target version's load order (parents first). */
  tables: TablePlan[];
}

/** What converting one table did. */
export interface TableConversionStats {
  /** Target table. */
  table: string;
  /** Rows read from each source table, by name. */
  read: Record<string, number>;
  /** Rows written. */
  rows: number;
  /** Rows of later merged tables with no partner in the first (dropped, as by LEFT JOIN). */
  orphans: number;
  /** Wall time. */
  ms: number;
}

/**
 * Checks that the dump can be converted through `chain` with the JS face and works out how
 * each file's columns feed each target table. Throws (before anything is written):
 * OfflineConversionUnsupportedError for a table whose chain has no JS face, DumpError for
 * an incremental dump, a missing source table, a column the version does not have, or a
 * missing key column; InvalidInputError for a merge key type the offline join cannot order.
 */
export function planConversion(dir: string, manifest: Manifest, chain: CompiledChain, catalogs: Readonly<Record<number, Catalog>>, options: { sqlFallback?: boolean } = {}): ConversionPlan {
  if (manifest.schemaVersion !== chain.from) throw new Error(`chain starts at v${chain.from}, the dump is at v${manifest.schemaVersion}`);
  if (manifest.mode !== 'full') {
    throw new DumpError(
      `dump ${dir} is incremental; only full dumps can be converted between versions (its key set for deletes is in v${manifest.schemaVersion} terms)`,
      'export a full dump, or use `bluegreen sync` between the live databases',
    );
  }
  const source = catalogs[chain.from];
  const target = catalogs[chain.to];
  if (!source || !target) throw new Error(`planConversion needs the catalogs of v${chain.from} and v${chain.to}`);
  const byName = new Map(manifest.tables.map((t) => [t.name, t]));
  const order = loadOrder(target).filter((n) => chain.tables[n] !== undefined);
  // Tables the target catalog does not list (should not happen) still get converted, last.
  for (const n of Object.keys(chain.tables).sort()) if (!order.includes(n)) order.push(n);

  const tables: TablePlan[] = [];
  for (const name of order) {
    const t = chain.tables[name]!;
    const face = t.jsUnsupported.length > 0 ? 'sql' : 'js';
    if (face === 'sql' && (!options.sqlFallback || t.sqlUnsupported.length > 0)) throw new OfflineConversionUnsupportedError(name, chain.from, chain.to, t.jsUnsupported);
    const inputs = t.sources.map((s): PlannedSource => {
      const entry = byName.get(s.table);
      if (!entry) throw new DumpError(`dump ${dir} has no table ${s.table}, which ${name} (v${chain.to}) is made from`, 'export a full dump of every table');
      const info = source.tables[s.table];
      for (const c of entry.columns) {
        if (!s.columns.includes(c)) throw new DumpError(`dump ${dir}: column ${s.table}.${c} is not in v${chain.from}`, 'the dump and its manifest version disagree; export it again');
      }
      const gather = s.columns.map((c) => entry.columns.indexOf(c));
      gather.forEach((g, i) => {
        if (g !== -1) return;
        const col = s.columns[i]!;
        const meta = info?.columns.find((c) => c.name === col);
        // A converted dump leaves out columns left to their DEFAULT; an inner chain step
        // reads those as NULL too. A key or a NOT NULL column without a default cannot be
        // missing: that is a damaged dump, not a conversion.
        if (s.key.includes(col) || !meta || (meta.notNull && !meta.hasDefault)) {
          throw new DumpError(`dump ${dir}: table ${s.table} lacks column ${col}`, 'the dump does not match its version; export it again');
        }
      });
      const identity = gather.length === entry.columns.length && gather.every((g, i) => g === i);
      return {
        table: s.table,
        file: path.join(dir, entry.file),
        dumpColumns: entry.columns,
        rows: entry.rows,
        gather: identity ? null : gather,
        keyPositions: s.key.map((k) => s.columns.indexOf(k)),
        width: s.columns.length,
      };
    });
    let kinds: KeyKind[] = [];
    if (inputs.length > 1) {
      const first = t.sources[0]!;
      kinds = first.key.map((k) => keyKind(source.tables[first.table]?.columns.find((c) => c.name === k)?.type ?? 'unknown'));
      for (let i = 1; i < inputs.length; i++) {
        if (inputs[i]!.keyPositions.length !== kinds.length) throw new Error(`merge of ${name}: ${inputs[i]!.table} has a key of another width`);
      }
    }
    tables.push({ target: t, inputs, kinds, face });
  }
  return { from: chain.from, to: chain.to, tables };
}

/** Decoded batches of one source file, columns rearranged to what the chain expects. */
async function* sourceBatches(input: PlannedSource, read: Record<string, number>): AsyncGenerator<CsvBatch> {
  const decoder = new CsvDecoder({ expectColumns: input.dumpColumns, file: input.file });
  // The callback form returns at once and destroys both streams on any error, so the
  // decoder's iterator below throws it; returning from the loop early destroys them too.
  pipelineCallback(createReadStream(input.file, { highWaterMark: 256 * 1024 }), decoder, () => {});
  const gather = input.gather;
  for await (const batch of decoder as AsyncIterable<CsvBatch>) {
    if (gather === null) yield batch;
    else {
      const out: CsvBatch = new Array(batch.length);
      for (let i = 0; i < batch.length; i++) {
        const row = batch[i]!;
        const g: Row = new Array(gather.length);
        for (let k = 0; k < gather.length; k++) g[k] = gather[k] === -1 ? null : row[gather[k]!]!;
        out[i] = g;
      }
      yield out;
    }
  }
  read[input.table] = decoder.rowCount;
  if (decoder.rowCount !== input.rows) {
    throw new DumpError(`${input.file}: ${decoder.rowCount} rows, the manifest says ${input.rows}`, 'the dump is inconsistent; export it again');
  }
}

async function* rowsOf(batches: AsyncIterable<CsvBatch>): AsyncGenerator<Row> {
  for await (const batch of batches) yield* batch;
}

/**
 * The converted rows of one target table, in batches, streamed: rows come out in the
 * order of the first source file (its key order). Fills `stats` as it goes.
 */
export async function* convertedBatches(plan: TablePlan, stats: TableConversionStats): AsyncGenerator<CsvBatch> {
  const transform = keyedTransform(plan);
  const [first, ...later] = plan.inputs;
  if (later.length === 0) {
    for await (const batch of sourceBatches(first!, stats.read)) {
      const out: CsvBatch = new Array(batch.length);
      for (let i = 0; i < batch.length; i++) out[i] = transform(batch[i]!);
      stats.rows += out.length;
      yield out;
    }
    return;
  }
  // LEFT JOIN chain; left key positions stay valid as rows widen (see mergeJoin).
  let joined: AsyncIterable<Row> = rowsOf(sourceBatches(first!, stats.read));
  for (const input of later) {
    joined = mergeJoin(joined, rowsOf(sourceBatches(input, stats.read)), {
      kinds: plan.kinds,
      leftKey: first!.keyPositions,
      rightKey: input.keyPositions,
      rightWidth: input.width,
      onOrphan: () => void stats.orphans++,
      leftName: first!.file,
      rightName: input.file,
    });
  }
  let out: CsvBatch = [];
  for await (const row of joined) {
    out.push(transform(row));
    if (out.length >= MERGE_BATCH) {
      stats.rows += out.length;
      yield out;
      out = [];
    }
  }
  if (out.length > 0) {
    stats.rows += out.length;
    yield out;
  }
}

/**
 * The table's JS face, whose value errors also name the row's key and the op to change
 * (the key is the first source's, which every input row starts with).
 */
export function keyedTransform(plan: TablePlan): (row: Row) => Row {
  const t = plan.target;
  const transform = t.transformJs;
  const first = t.sources[0]!;
  const at = first.key.map((k) => first.columns.indexOf(k));
  return (row) => {
    try {
      return transform(row);
    } catch (err) {
      if (!(err instanceof MappingValueError)) throw err;
      const key = at.length > 0 ? shownKey(first.key, at.map((i) => row[i] ?? null)) : undefined;
      throw new RowConversionError(t.table, err.column, key, err.value, err.reason, t.converted[err.column]);
    }
  };
}

/** Bytes read from a source file per chunk: one decode, one synchronous pass over its rows. */
const READ_CHUNK = 64 * 1024;

/**
 * A single-source table in one stage: source CSV bytes in, converted CSV bytes out. Each
 * chunk is decoded, its rows are transformed and encoded into the output buffer in one
 * synchronous pass, so no row outlives the chunk it came in: nothing survives a young
 * generation GC, no object-mode stream buffers thousands of rows between stages, and there
 * is no await per batch. (The decoder -> generator -> encoder chain it replaces spent a
 * quarter of its time in GC and peaked near 400 MB RSS on a 1M-user dump.)
 */
class SingleSourceConverter extends Transform {
  private readonly parser: CsvParser;
  private readonly writer = new CsvChunkWriter();

  constructor(
    private readonly input: PlannedSource,
    private readonly transform: (row: Row) => Row,
    header: readonly string[] | undefined,
    private readonly stats: TableConversionStats,
  ) {
    super({ writableObjectMode: false, readableObjectMode: false });
    this.parser = new CsvParser({ expectColumns: input.dumpColumns, file: input.file }, (batch) => this.convert(batch));
    if (header) this.writer.writeRow(header);
  }

  private convert(batch: CsvBatch): void {
    const { transform, writer } = this;
    const gather = this.input.gather;
    for (let i = 0; i < batch.length; i++) {
      let row: Row = batch[i]!;
      if (gather !== null) {
        const g: Row = new Array(gather.length);
        for (let k = 0; k < gather.length; k++) g[k] = gather[k] === -1 ? null : row[gather[k]!]!;
        row = g;
      }
      writer.writeRow(transform(row));
      if (writer.full) this.push(writer.take());
    }
    this.stats.rows += batch.length;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.parser.writeBytes(chunk);
      // Convert what this chunk completed now: rows then never outlive their chunk.
      this.parser.flush();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.parser.endBytes();
      const { input, parser, stats } = this;
      stats.read[input.table] = parser.rowCount;
      if (parser.rowCount !== input.rows) {
        throw new DumpError(`${input.file}: ${parser.rowCount} rows, the manifest says ${input.rows}`, 'the dump is inconsistent; export it again');
      }
      if (this.writer.length > 0) this.push(this.writer.take());
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }
}

/** Where {@link convertTable} writes a table's CSV. */
export interface ConversionSink {
  /** Write a header record first (a dump file), or not. */
  header: boolean;
  /** Optional stages between the encoder and the sink (a hash tap, a progress tap). */
  through?: Transform | Transform[];
  /** The file or COPY FROM STDIN stream; it ends when the table is done. */
  into: Writable;
}

/**
 * Converts one target table into `sink.into` (CSV in PostgreSQL's dialect, chunks of at
 * least 64 KiB) through `pipeline`, so a failure anywhere destroys every stage: a file is
 * left incomplete (callers delete it), a COPY FROM is aborted and rolled back.
 */
export async function convertTable(plan: TablePlan, sink: ConversionSink): Promise<TableConversionStats> {
  const t0 = Date.now();
  const stats: TableConversionStats = { table: plan.target.table, read: {}, rows: 0, orphans: 0, ms: 0 };
  const header = sink.header ? plan.target.columns : undefined;
  const through = [sink.through ?? []].flat();
  if (plan.inputs.length === 1) {
    const input = plan.inputs[0]!;
    const source = createReadStream(input.file, { highWaterMark: READ_CHUNK });
    const converter = new SingleSourceConverter(input, keyedTransform(plan), header, stats);
    await pipeline(source, converter, ...through, sink.into);
  } else {
    // Merges pair rows of several files through async iterators (mergeJoin); batches of
    // converted rows go through the encoder stage.
    const encoder = new CsvEncoder(header ? { header } : {});
    await pipeline(Readable.from(convertedBatches(plan, stats)), encoder, ...through, sink.into);
  }
  stats.ms = Date.now() - t0;
  return stats;
}

/**
 * A row the target's COPY FROM refused while loading converted rows (its error names the
 * column and the value, not the row): the table is converted again, streamed, until a
 * row has that value in that column, and the error says which key. Anything else is
 * returned as it was.
 */
export async function locateInConverted(err: unknown, plan: TablePlan): Promise<unknown> {
  const e = err as { code?: string; where?: string; message?: string };
  const m = /COPY [^,]+, line \d+, column ([^:]+): "(.*)"$/s.exec(e?.where ?? '');
  const t = plan.target;
  if (!m || typeof e.code !== 'string' || !/^(22|23)/.test(e.code) || !t.columns.includes(m[1]!)) return err;
  const column = m[1]!;
  let value = m[2]!;
  const cut = value.endsWith('...') && Buffer.byteLength(value) >= 100;
  if (cut) value = value.slice(0, -3);
  const at = t.columns.indexOf(column);
  const keyAt = t.key.map((k) => t.columns.indexOf(k));
  try {
    const stats: TableConversionStats = { table: t.table, read: {}, rows: 0, orphans: 0, ms: 0 };
    for await (const batch of convertedBatches(plan, stats)) {
      for (const row of batch) {
        const v = row[at];
        if (v === null || v === undefined || (cut ? !v.startsWith(value) : v !== value)) continue;
        const key = keyAt.length > 0 ? shownKey(t.key, keyAt.map((i) => row[i] ?? null)) : undefined;
        return new RowConversionError(t.table, column, key, v, e.message ?? String(err), t.converted[column]);
      }
    }
  } catch {
    // the file cannot be read again: keep PostgreSQL's message
  }
  return err;
}
