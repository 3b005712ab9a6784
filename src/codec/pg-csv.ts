/**
 * PostgreSQL CSV codec: the exact dialect of `COPY ... TO STDOUT (FORMAT csv, HEADER true)`
 * with the default NULL (an empty unquoted field) and quote (`"`).
 *
 * Why hand-written: csv-parse can only tell NULL from `""` through a `cast` callback, which
 * made it 28-34x slower than this decoder, and csv-stringify writes NULL and '' the same way
 * unless told otherwise per value (README, Design figures; `npx tsx bench/csv-libs.ts`). This
 * codec keeps the two apart by construction. Where the time goes (bench/convert.ts, a
 * hostile 1M-user dump): decoding finds fields with `indexOf` and `slice` (a per-character
 * loop over `charCodeAt` measured 2-4x slower than V8's native search), joins doubled quotes
 * from the segments it already found instead of a regex replace, and decodes UTF-8 once per
 * chunk (TextDecoder beat `isUtf8` + `toString`); encoding writes each field straight into
 * a Buffer after one regex test, with no per-chunk string to build, flatten and re-encode.
 *
 * Dialect, as PostgreSQL writes it (CopyAttributeOutCSV):
 * - fields are separated by `,`, records end with `\n`, bytes are UTF-8;
 * - NULL is an empty unquoted field; an empty string is `""`;
 * - a field is quoted when it contains `"`, `,`, `\n` or `\r`, is '', or is `\.` alone on its
 *   line (a single-column row), which would read as the end-of-data marker; inside quotes
 *   `"` is doubled and nothing else is escaped. Re-encoding decoded COPY output therefore
 *   reproduces it byte for byte.
 * - a record of a single-column table whose value is NULL is an empty line.
 *
 * Memory bound: rows stream, so memory does not grow with the number of rows; a single huge
 * value is held a small constant number of times. The decoder keeps its record's text
 * (1 or 2 bytes a character; chunks joined once per re-scan, re-scans doubling), the value
 * (a slice of that text, or one copy when it had doubled quotes, undoubled in groups) and
 * the encoder its UTF-8 bytes at their exact size (plus a chunk for the rest of the row,
 * so the buffer is not doubled after it). While a huge record is pending, V8 is told to
 * collect sooner (src/memory.ts), so the copies the re-scans and the undoubling leave
 * behind do not pile up. Peak RSS is the process's baseline plus about 3x the largest
 * field as the file holds it (measured: 30 MB of quote-dense text and a 20 MB bytea, 194
 * MB over a 78 MB baseline; test/integration/memory.test.ts holds it under 4x). Before,
 * a segment per doubled quote (`+=`) and a regex replace per field made it about 28x.
 *
 * The decoder is strict about everything PostgreSQL never writes (a quote inside an unquoted
 * field, text after a closing quote, an unquoted `\r`, e.g. from CRLF line endings): such
 * input did not come from COPY and guessing would risk silently changing data.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { DumpError } from '../errors.ts';
import { hugeRecord, HUGE } from '../memory.ts';

/** One decoded or to-be-encoded record: `null` is SQL NULL, `''` is the empty string. */
export type CsvRow = (string | null)[];

/** A batch of records; the unit the streams exchange, to amortise per-object overhead. */
export type CsvBatch = CsvRow[];

const QUOTE = 0x22; // "
const COMMA = 0x2c; // ,
const LF = 0x0a;
const BACKSLASH = 0x5c;
const DOT = 0x2e;

/** Characters that force quoting; PostgreSQL also quotes `\.` (handled separately). */
const NEEDS_QUOTE = /[",\n\r]/;
const QUOTE_ALL = /"/g;

// ---------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------

/**
 * Encodes one field exactly as PostgreSQL's COPY CSV does, so `COPY FROM` reads it back
 * bit-exactly: NULL is nothing, '' is `""` (the trap that turns '' into NULL otherwise).
 *
 * @param alone the field is the only one of its row: then `\.` is quoted, since a line
 *   holding just `\.` is the end-of-data marker. Elsewhere `\.` is ordinary data to
 *   COPY FROM and PostgreSQL leaves it unquoted; so does this, to stay byte-identical.
 */
export function encodeField(value: string | null, alone = false): string {
  if (value === null) return '';
  if (value.length === 0) return '""';
  if (NEEDS_QUOTE.test(value)) return '"' + value.replace(QUOTE_ALL, '""') + '"';
  if (alone && value.length === 2 && value.charCodeAt(0) === BACKSLASH && value.charCodeAt(1) === DOT) return '"\\."';
  return value;
}

/**
 * Encodes one record, including its terminating `\n`.
 *
 * A single-column record whose value is NULL is an empty line, exactly as PostgreSQL
 * writes it; `COPY FROM` reads that back as NULL.
 */
export function encodeRow(row: readonly (string | null)[]): string {
  if (row.length === 1) return encodeField(row[0] ?? null, true) + '\n';
  let line = '';
  for (let i = 0; i < row.length; i++) {
    if (i > 0) line += ',';
    line += encodeField(row[i] ?? null);
  }
  return line + '\n';
}

/** Encodes whole records to one string (header first when given); for tests and golden files. */
export function encodeCsv(rows: Iterable<readonly (string | null)[]>, header?: readonly string[]): string {
  let out = header ? encodeRow(header) : '';
  for (const row of rows) out += encodeRow(row);
  return out;
}

/** Bytes a field may need at most beyond 3 per UTF-16 unit: its quotes, a comma, a newline. */
const FIELD_SLACK = 4;

/** From this many UTF-16 units a field is sized exactly and copied in segments (see writeLargeField). */
const LARGE_FIELD = 256 * 1024;

/**
 * Encodes records straight into Buffers, in the dialect of {@link encodeRow} and byte for
 * byte the same output (a test holds it to that on hostile rows), without building a string
 * per field or per chunk: one regex test decides quoting, one `buf.write` copies the field.
 * (A JS loop copying ASCII byte by byte measured 3x slower: field strings are slices of a
 * two-byte chunk, where `charCodeAt` costs more than V8's native UTF-8 writer.)
 *
 * Each UTF-16 unit needs at most 3 UTF-8 bytes (a surrogate pair: 4 for 2 units) and a
 * doubled quote 2, so `3 * length + FIELD_SLACK` free bytes always hold a field, quoted or
 * not; the buffer grows for a field larger than that.
 */
export class CsvChunkWriter {
  private buf: Buffer;
  private pos = 0;

  /**
   * @param chunkSize the size from which {@link full} is true; the buffer holds twice that
   *   so a row rarely needs it to grow.
   */
  constructor(readonly chunkSize = 64 * 1024) {
    this.buf = Buffer.allocUnsafeSlow(Math.max(2 * chunkSize, 1024));
  }

  /** Bytes written and not taken yet. */
  get length(): number {
    return this.pos;
  }

  /** At least `chunkSize` bytes are waiting: time to {@link take} them. */
  get full(): boolean {
    return this.pos >= this.chunkSize;
  }

  /** Hands over the bytes written so far (no copy) and starts a fresh buffer. */
  take(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafeSlow(Math.max(2 * this.chunkSize, 1024));
    this.pos = 0;
    return out;
  }

  /** Appends one record and its `\n`, exactly as {@link encodeRow} writes it. */
  writeRow(row: readonly (string | null | undefined)[]): void {
    const n = row.length;
    if (n === 1) {
      const v = row[0] ?? null;
      // `\.` alone on its line is the end-of-data marker: quoted, as PostgreSQL does.
      if (v !== null && v.length === 2 && v.charCodeAt(0) === BACKSLASH && v.charCodeAt(1) === DOT) {
        this.ensure(5);
        this.pos += this.buf.write('"\\."\n', this.pos, 'latin1');
        return;
      }
      this.writeField(v);
    } else {
      for (let i = 0; i < n; i++) {
        if (i > 0) {
          if (this.pos >= this.buf.length) this.ensure(1);
          this.buf[this.pos++] = COMMA;
        }
        this.writeField(row[i] ?? null);
      }
    }
    if (this.pos >= this.buf.length) this.ensure(1);
    this.buf[this.pos++] = LF;
  }

  private writeField(v: string | null): void {
    if (v === null) return;
    const len = v.length;
    if (len > LARGE_FIELD) {
      this.writeLargeField(v);
      return;
    }
    if (this.pos + 3 * len + FIELD_SLACK > this.buf.length) this.ensure(3 * len + FIELD_SLACK);
    const buf = this.buf;
    let p = this.pos;
    if (len === 0) {
      buf[p] = QUOTE;
      buf[p + 1] = QUOTE;
      this.pos = p + 2;
      return;
    }
    if (!NEEDS_QUOTE.test(v)) {
      this.pos = p + buf.write(v, p);
      return;
    }
    buf[p++] = QUOTE;
    p += buf.write(v.indexOf('"') === -1 ? v : v.replace(QUOTE_ALL, '""'), p);
    buf[p++] = QUOTE;
    this.pos = p;
  }

  /**
   * A field longer than {@link LARGE_FIELD} UTF-16 units: room for its exact UTF-8 size
   * (not 3 bytes a unit) and quotes doubled while copying segments, with no doubled copy
   * of the value as a string (a regex replace of a 30 MB value with millions of quotes
   * peaked near 400 MB). Memory: the value plus its encoding, once.
   */
  private writeLargeField(v: string): void {
    let quotes = 0;
    for (let q = v.indexOf('"'); q !== -1; q = v.indexOf('"', q + 1)) quotes++;
    const quoted = quotes > 0 || NEEDS_QUOTE.test(v);
    // Room for the rest of the row too (the separators and fields after this one), so
    // they do not grow a buffer of this size again.
    this.ensure(Buffer.byteLength(v) + quotes + FIELD_SLACK + this.chunkSize);
    const buf = this.buf;
    let p = this.pos;
    if (!quoted) {
      this.pos = p + buf.write(v, p);
      return;
    }
    buf[p++] = QUOTE;
    let seg = 0;
    for (let q = v.indexOf('"'); q !== -1; q = v.indexOf('"', seg)) {
      p += buf.write(v.slice(seg, q + 1), p);
      buf[p++] = QUOTE;
      seg = q + 1;
    }
    p += buf.write(seg === 0 ? v : v.slice(seg), p);
    buf[p++] = QUOTE;
    this.pos = p;
  }

  /**
   * Makes room for `bytes` more, moving what is written to a larger buffer if needed. A
   * small buffer doubles (rows of many fields grow it a few times, then it is reused); a
   * large one grows by what is needed plus an eighth of what it holds (at least two
   * chunks), still geometric. Doubling a buffer that had just been sized for a 40 MB
   * value, to append the newline after it, allocated 80 MB and copied 40: the largest
   * part of a huge row's peak (measured).
   */
  private ensure(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const need = this.pos + bytes;
    const headroom = Math.max(2 * this.chunkSize, this.pos >>> 3);
    const bigger = Buffer.allocUnsafeSlow(Math.max(need, Math.min(2 * this.buf.length, need + headroom)));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }
}

/** Options of {@link CsvEncoder}. */
export interface CsvEncoderOptions {
  /** Column names written as the first record (like `HEADER true`); none when omitted. */
  header?: readonly string[];
  /**
   * Minimum size of each pushed Buffer in bytes (the last one may be smaller). Default
   * 64 KiB: one COPY message per row costs ~10 CPU-s per million rows (README, Design figures).
   */
  chunkSize?: number;
}

/**
 * Object-mode batches of records in, UTF-8 Buffers of at least `chunkSize` bytes out;
 * pipe it straight into a `pg-copy-streams` `COPY ... FROM STDIN (FORMAT csv)` stream or
 * a file.
 *
 * Strings must be well-formed UTF-16: a lone surrogate is written as U+FFFD by
 * `Buffer.from`, like any Node text output, and would not round-trip.
 */
export class CsvEncoder extends Transform {
  private readonly writer: CsvChunkWriter;
  /** Records encoded so far, header excluded. */
  rowCount = 0;

  constructor(options: CsvEncoderOptions = {}) {
    super({ writableObjectMode: true, readableObjectMode: false });
    this.writer = new CsvChunkWriter(options.chunkSize ?? 64 * 1024);
    if (options.header) this.writer.writeRow(options.header);
  }

  override _transform(batch: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!Array.isArray(batch)) {
      callback(new TypeError('CsvEncoder expects batches: arrays of rows'));
      return;
    }
    const writer = this.writer;
    for (let i = 0; i < batch.length; i++) {
      writer.writeRow(batch[i] as readonly (string | null)[]);
      if (writer.full) this.push(writer.take());
    }
    this.rowCount += batch.length;
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.writer.length > 0) this.push(this.writer.take());
    callback();
  }
}

// ---------------------------------------------------------------------------------------
// Decoder

/**
 * The value of a quoted field whose content is `text[from, to)`, every `"` in it doubled,
 * the first at `first`. Segments are joined in groups: memory stays near the value's own
 * size. (A segment per `""` appended with `+=` made a rope of millions of nodes, and
 * `replaceAll('""', '"')` on a 30 MB value peaked near 400 MB: measured.)
 */
function undoubleQuotes(text: string, first: number, from: number, to: number): string {
  const groups: string[] = [];
  let parts: string[] = [];
  let seg = from;
  for (let q = first; q !== -1 && q < to; q = text.indexOf('"', seg)) {
    parts.push(text.slice(seg, q + 1));
    seg = q + 2;
    if (parts.length === 4096) {
      groups.push(parts.join(''));
      parts = [];
    }
  }
  parts.push(text.slice(seg, to));
  if (groups.length === 0) return parts.length === 2 ? parts[0]! + parts[1]! : parts.join('');
  groups.push(parts.join(''));
  return groups.join('');
}
// ---------------------------------------------------------------------------------------

/** Options of {@link CsvDecoder} and {@link decodeCsv}. */
export interface CsvDecoderOptions {
  /** The first record holds column names (COPY's `HEADER true`); it is not emitted as a row. */
  header?: boolean;
  /**
   * Column names the header must equal, in order; a mismatch fails naming the column.
   * Implies a header.
   */
  expectColumns?: readonly string[];
  /** Fields per record when there is no header; default: the first record's count. */
  columnCount?: number;
  /** Maximum records per pushed batch. Default 2000. */
  batchSize?: number;
  /** Name of the file being read, for error messages. */
  file?: string;
}

/** Result of trying to parse one record at a position of the buffered text. */
const INCOMPLETE = -1;

/** Flush a batch early once it references this many characters, so huge rows stay bounded. */
const BATCH_CHARS = 4 * 1024 * 1024;

/**
 * The decoding engine behind {@link CsvDecoder} and {@link decodeCsv}, independent of
 * streams: feed it text, it calls `onBatch` with complete records. Exposed for callers that
 * want rows without a stream (e.g. a synchronous file reader).
 */
export class CsvParser {
  /** Column names from the header, once read. */
  columns: string[] | undefined;
  /** Data records decoded so far (header excluded). */
  rowCount = 0;

  private readonly wantHeader: boolean;
  private readonly batchSize: number;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  private expected: number | undefined;

  /** Buffered text and the offset of the first record not yet parsed. */
  private text = '';
  private pos = 0;
  /** Text received while waiting for an incomplete record to possibly finish. */
  private parts: string[] = [];
  private partsLength = 0;
  /** Do not re-scan an incomplete record before this many new characters arrived. */
  private waitFor = 0;

  /**
   * Next index of each special character in `text` at or after the scan position, or
   * NONE when there is none; stale when below the position. Caching keeps scanning
   * linear: each indexOf resumes where the previous answer was used up, so an unquoted
   * last field never rescans the rest of the chunk looking for a comma.
   */
  private nextNl = -1;
  private nextQuote = -1;
  private nextCr = -1;
  private nextComma = -1;

  /** Physical line (1-based) where the next record starts; quoted fields can span lines. */
  private line = 1;
  private batch: CsvBatch = [];
  private batchChars = 0;

  /**
   * @param options dialect checks and batching.
   * @param onBatch receives each full batch (and the last partial one at {@link end}).
   * @param onHeader receives the column names once the header record is read.
   */
  constructor(
    private readonly options: CsvDecoderOptions,
    private readonly onBatch: (batch: CsvBatch) => void,
    private readonly onHeader?: (columns: string[]) => void,
  ) {
    this.wantHeader = options.header === true || options.expectColumns !== undefined;
    this.batchSize = options.batchSize ?? 2000;
    this.expected = this.wantHeader ? undefined : options.columnCount;
  }

  /** Feeds decoded text (any split point); throws {@link DumpError} on malformed input. */
  write(s: string): void {
    this.feed(s, false);
  }

  /**
   * Feeds raw UTF-8 (Buffers split anywhere, even inside a character), decoded once per
   * chunk; invalid UTF-8 throws a {@link DumpError} located at the current record.
   */
  writeBytes(chunk: Uint8Array): void {
    let s: string;
    try {
      s = this.utf8.decode(chunk, { stream: true });
    } catch (err) {
      throw toDumpError(err, this);
    }
    this.write(s);
  }

  /** {@link end} for input fed through {@link writeBytes}: a truncated character is an error too. */
  endBytes(): void {
    let s: string;
    try {
      s = this.utf8.decode();
    } catch (err) {
      throw toDumpError(err, this);
    }
    this.write(s);
    this.end();
  }

  /** Marks the end of input: parses the last record, checks for truncation, flushes. */
  end(): void {
    this.feed('', true);
    this.flushBatch();
    if (this.wantHeader && this.columns === undefined) {
      throw this.error('no header record (the input is empty)', 'a dump CSV always starts with its column names');
    }
  }

  /** A {@link DumpError} located at the current record. */
  error(message: string, hint?: string): DumpError {
    return new DumpError(`${this.options.file ?? 'CSV input'}: line ${this.line}: ${message}`, hint);
  }

  private feed(s: string, final: boolean): void {
    if (s.length > 0) {
      this.parts.push(s);
      this.partsLength += s.length;
    }
    // An incomplete record is re-scanned only once at least as much new text as it holds
    // has arrived: a 100 MB field arriving in 64 KiB chunks is then scanned a dozen times,
    // not 1600 times (quadratic).
    if (!final && this.partsLength < this.waitFor) return;
    // A huge record: V8 collects sooner until it is parsed, converted and encoded (below,
    // in this call), so the texts each re-scan joins do not pile up (src/memory.ts).
    if (this.partsLength >= HUGE) hugeRecord(true);
    if (this.parts.length > 0) {
      // One flat string, built once: `rest + tail` made a rope that indexOf flattened into
      // yet another copy, and a huge record held several generations of it at once.
      if (this.pos < this.text.length) this.parts.unshift(this.text.slice(this.pos));
      this.text = '';
      this.text = this.parts.length === 1 ? this.parts[0]! : this.parts.join('');
      this.parts = [];
      this.partsLength = 0;
    } else {
      this.text = this.text.slice(this.pos);
    }
    this.pos = 0;
    this.nextNl = this.nextQuote = this.nextCr = this.nextComma = -1;
    const text = this.text;
    const len = text.length;
    let pos = 0;
    while (pos < len) {
      const next = this.parseRecord(text, pos, final);
      if (next === INCOMPLETE) break;
      pos = next;
    }
    this.pos = pos;
    this.waitFor = len - pos;
    hugeRecord(this.waitFor >= HUGE);
  }

  /**
   * Parses the record starting at `start`; returns the offset after it or INCOMPLETE.
   * Hands the record to {@link accept} as a side effect.
   */
  private parseRecord(text: string, start: number, final: boolean): number {
    if (this.nextNl < start) this.nextNl = indexOrNone(text, '\n', start);
    if (this.nextQuote < start) this.nextQuote = indexOrNone(text, '"', start);
    if (this.nextCr < start) this.nextCr = indexOrNone(text, '\r', start);
    let nl = this.nextNl;
    if (nl === NONE) {
      if (!final) return INCOMPLETE;
      nl = text.length; // last record without a trailing newline
    }
    if (this.nextQuote > nl && this.nextCr > nl) {
      // Fast path: nothing quoted in this record, so every field is one slice. (indexOf
      // and slice per field allocate less than slice + split and run ~1.7x faster.)
      const fields: CsvRow = [];
      this.readUnquoted(text, start, nl, fields);
      this.accept(fields, nl - start);
      this.line++;
      return nl + 1;
    }
    return this.parseQuotedRecord(text, start, final);
  }

  /** Pushes the unquoted fields of `text` from `from` to `to` (a record or a run of it). */
  private readUnquoted(text: string, from: number, to: number, fields: CsvRow): void {
    let s = from;
    for (;;) {
      if (this.nextComma < s) this.nextComma = indexOrNone(text, ',', s);
      const comma = this.nextComma;
      if (comma >= to) {
        fields.push(to === s ? null : text.slice(s, to));
        return;
      }
      fields.push(comma === s ? null : text.slice(s, comma));
      s = comma + 1;
    }
  }

  /** General path for a record holding a quoted field (or a stray `\r`). */
  private parseQuotedRecord(text: string, start: number, final: boolean): number {
    const len = text.length;
    const fields: CsvRow = [];
    let newlines = 0;
    let p = start;
    for (;;) {
      if (p < len && text.charCodeAt(p) === QUOTE) {
        // Quoted field: find the closing quote first, building nothing, so a huge field
        // that is still arriving costs a scan per re-try and no garbage. Then a field
        // with doubled quotes is undoubled in one flat copy: joining a segment per `""`
        // built a rope of millions of nodes for a 50 MB value (over 1 GB of RSS).
        let k = p + 1;
        let doubled = 0;
        let firstDoubled = -1;
        let q: number;
        for (;;) {
          q = text.indexOf('"', k);
          if (q === -1) {
            if (!final) return INCOMPLETE;
            throw this.error(`unterminated quoted field ${fields.length + 1} at end of input`, 'the file is truncated');
          }
          if (q + 1 >= len) {
            // Cannot tell a closing quote from the first half of `""` until more arrives.
            if (!final) return INCOMPLETE;
            break;
          }
          if (text.charCodeAt(q + 1) === QUOTE) {
            if (doubled++ === 0) firstDoubled = q;
            k = q + 2;
            continue;
          }
          break;
        }
        fields.push(doubled === 0 ? text.slice(p + 1, q) : undoubleQuotes(text, firstDoubled, p + 1, q));
        // Newlines inside the value: the cached next newline tells whether there are any.
        if (this.nextNl < p) this.nextNl = indexOrNone(text, '\n', p);
        while (this.nextNl < q) {
          newlines++;
          this.nextNl = indexOrNone(text, '\n', this.nextNl + 1);
        }
        const after = q + 1;
        if (after >= len) {
          // Only reached when final: the last record had no trailing newline.
          this.accept(fields, after - start);
          this.line += 1 + newlines;
          return after;
        }
        const c = text.charCodeAt(after);
        if (c === COMMA) {
          p = after + 1;
          continue;
        }
        if (c === LF) {
          this.accept(fields, after - start);
          this.line += 1 + newlines;
          return after + 1;
        }
        throw this.error(
          `unexpected ${describeChar(c)} after the closing quote of field ${fields.length}`,
          'PostgreSQL CSV quotes whole fields; the file was not written by COPY or is corrupt',
        );
      }
      // A run of unquoted fields: it ends at the next quote (which must open the next
      // field, right after a comma) or at the end of the record.
      if (this.nextNl < p) this.nextNl = indexOrNone(text, '\n', p);
      if (this.nextQuote < p) this.nextQuote = indexOrNone(text, '"', p);
      if (this.nextCr < p) this.nextCr = indexOrNone(text, '\r', p);
      const atQuote = this.nextQuote < this.nextNl;
      let end = atQuote ? this.nextQuote : this.nextNl;
      if (end === NONE) {
        if (!final) return INCOMPLETE;
        end = len;
      }
      if (this.nextCr < end) {
        throw this.error(
          `unquoted carriage return in field ${fields.length + countCommas(text, p, this.nextCr) + 1}`,
          'PostgreSQL quotes fields containing \\r and ends lines with \\n; was the file converted to CRLF line endings?',
        );
      }
      if (atQuote) {
        if (text.charCodeAt(end - 1) !== COMMA) {
          throw this.error(
            `quote inside unquoted field ${fields.length + countCommas(text, p, end) + 1}`,
            'PostgreSQL quotes any field containing a quote; the file was not written by COPY or is corrupt',
          );
        }
        // The run ends with the comma that separates it from the quoted field.
        this.readUnquoted(text, p, end - 1, fields);
        p = end;
        continue;
      }
      this.readUnquoted(text, p, end, fields);
      this.accept(fields, end - start);
      this.line += 1 + newlines;
      return end + 1;
    }
  }

  /** Header handling, field-count check and batching for one complete record. */
  private accept(fields: CsvRow, chars: number): void {
    if (this.wantHeader && this.columns === undefined) {
      this.takeHeader(fields);
      return;
    }
    if (this.expected === undefined) this.expected = fields.length;
    if (fields.length !== this.expected) {
      throw this.error(
        `expected ${this.expected} fields, got ${fields.length}`,
        'every record of a COPY CSV has one field per column; the file is corrupt or was edited',
      );
    }
    this.batch.push(fields);
    this.rowCount++;
    this.batchChars += chars;
    if (this.batch.length >= this.batchSize || this.batchChars >= BATCH_CHARS) this.flushBatch();
  }

  private takeHeader(fields: CsvRow): void {
    const names: string[] = [];
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i];
      if (f === null || f === undefined) {
        throw this.error(`header column ${i + 1} is empty`, 'the first line must hold the column names');
      }
      names.push(f);
    }
    const want = this.options.expectColumns;
    if (want) {
      for (let i = 0; i < Math.max(want.length, names.length); i++) {
        const got = names[i];
        const exp = want[i];
        if (got === exp) continue;
        const msg =
          exp === undefined
            ? `unexpected extra column "${got}" (column ${i + 1})`
            : got === undefined
              ? `missing column "${exp}" (column ${i + 1})`
              : `column ${i + 1} is "${got}", expected "${exp}"`;
        throw this.error(`header mismatch: ${msg}`, `expected columns: ${want.join(', ')}`);
      }
    }
    this.columns = names;
    this.expected = names.length;
    this.onHeader?.(names);
  }

  /** Hands the records parsed so far to `onBatch` now, even if the batch is not full. */
  flush(): void {
    this.flushBatch();
  }

  private flushBatch(): void {
    if (this.batch.length === 0) return;
    const batch = this.batch;
    this.batch = [];
    this.batchChars = 0;
    this.onBatch(batch);
  }
}

/**
 * Streaming decoder: Buffers split anywhere (inside a UTF-8 sequence, inside a quoted field,
 * right after a `"`) in, object-mode batches of records (`(string|null)[][]`) out.
 *
 * After the header record it emits a `'header'` event with the column names, also available
 * as {@link CsvDecoder.columns}. Malformed input (including invalid UTF-8) fails the stream
 * with a {@link DumpError} naming the file and the physical line the record starts on.
 *
 * Memory note: values are V8 slices of the decoded chunk and keep that chunk alive while
 * referenced. Code that keeps values long after their batch (a key set, a cache) should
 * store a copy (`Buffer.from(s).toString()`) or a hash, not the value itself.
 */
export class CsvDecoder extends Transform {
  private readonly parser: CsvParser;

  constructor(options: CsvDecoderOptions = {}) {
    super({ writableObjectMode: false, readableObjectMode: true });
    this.parser = new CsvParser(
      options,
      (batch) => this.push(batch),
      (columns) => this.emit('header', columns),
    );
  }

  /** Column names from the header, once read. */
  get columns(): string[] | undefined {
    return this.parser.columns;
  }

  /** Data records decoded so far (header excluded). */
  get rowCount(): number {
    return this.parser.rowCount;
  }

  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      if (typeof chunk === 'string') this.parser.write(chunk);
      else this.parser.writeBytes(chunk);
      callback();
    } catch (err) {
      callback(toError(err));
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.parser.endBytes();
      callback();
    } catch (err) {
      callback(toError(err));
    }
  }
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** TextDecoder's invalid-UTF-8 TypeError becomes a DumpError at the current record; ours pass through. */
function toDumpError(err: unknown, parser: CsvParser): Error {
  if (err instanceof DumpError) return err;
  if ((err as { code?: unknown } | null)?.code === 'ERR_ENCODING_INVALID_ENCODED_DATA') {
    return parser.error('invalid UTF-8', 'COPY writes UTF-8 when client_encoding is UTF8; was the file re-encoded?');
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** Commas in `text` from `from` to `to` (exclusive): field numbers for error messages. */
function countCommas(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = text.indexOf(',', from); i !== -1 && i < to; i = text.indexOf(',', i + 1)) n++;
  return n;
}

/**
 * "Not found" for the cached positions: above any string index (V8 strings hold < 2^29
 * characters) yet a small integer, so the caches never turn into boxed doubles.
 */
const NONE = 0x3fffffff;

function indexOrNone(text: string, ch: string, from: number): number {
  const i = text.indexOf(ch, from);
  return i === -1 ? NONE : i;
}

function describeChar(c: number): string {
  if (Number.isNaN(c)) return 'end of input';
  if (c === 0x0d) return 'carriage return';
  return `character ${JSON.stringify(String.fromCharCode(c))}`;
}

/** Result of {@link decodeCsv}. */
export interface DecodedCsv {
  /** Column names when a header was read. */
  columns: string[] | undefined;
  /** All data records. */
  rows: CsvRow[];
}

/**
 * Decodes a whole CSV text or Buffer at once (tests, golden files, small inputs); same
 * dialect, checks and errors as {@link CsvDecoder}.
 */
export function decodeCsv(input: string | Buffer, options: CsvDecoderOptions = {}): DecodedCsv {
  const rows: CsvRow[] = [];
  const parser = new CsvParser(options, (batch) => {
    for (const r of batch) rows.push(r);
  });
  try {
    parser.write(typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input));
    parser.end();
  } catch (err) {
    throw toDumpError(err, parser);
  }
  return { columns: parser.columns, rows };
}
