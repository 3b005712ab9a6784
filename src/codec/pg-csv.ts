/**
 * PostgreSQL CSV codec: the exact dialect of `COPY ... TO STDOUT (FORMAT csv, HEADER true)`
 * with the default NULL (an empty unquoted field) and quote (`"`).
 *
 * Why hand-written: csv-parse can only tell NULL from `""` through a `cast` callback, which
 * makes it ~9x slower (FACTS.md), and csv-stringify writes NULL and '' the same way. This
 * codec keeps the two apart by construction and is tuned for the common case where a row
 * has no quoted field at all: such a row costs one `indexOf('\n')` and one `split(',')`.
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
 * The decoder is strict about everything PostgreSQL never writes (a quote inside an unquoted
 * field, text after a closing quote, an unquoted `\r`, e.g. from CRLF line endings): such
 * input did not come from COPY and guessing would risk silently changing data.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { DumpError } from '../errors.ts';

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
const DOUBLED_QUOTE = /""/g;
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

/** Options of {@link CsvEncoder}. */
export interface CsvEncoderOptions {
  /** Column names written as the first record (like `HEADER true`); none when omitted. */
  header?: readonly string[];
  /**
   * Minimum size of each pushed Buffer in bytes (the last one may be smaller). Default
   * 64 KiB: one COPY message per row costs ~10 CPU-s per million rows (FACTS.md).
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
  /** Text encoded but not pushed yet; string `+=` is a cheap rope append in V8. */
  private pending = '';
  private readonly chunkSize: number;
  /** Records encoded so far, header excluded. */
  rowCount = 0;

  constructor(options: CsvEncoderOptions = {}) {
    super({ writableObjectMode: true, readableObjectMode: false });
    this.chunkSize = options.chunkSize ?? 64 * 1024;
    if (options.header) this.pending = encodeRow(options.header);
  }

  override _transform(batch: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!Array.isArray(batch)) {
      callback(new TypeError('CsvEncoder expects batches: arrays of rows'));
      return;
    }
    const size = this.chunkSize;
    for (const row of batch as readonly (readonly (string | null)[])[]) {
      this.pending += encodeRow(row);
      // Pending length counts UTF-16 units, each of which is at least one UTF-8 byte, so
      // every pushed Buffer is at least `size` bytes.
      if (this.pending.length >= size) {
        this.push(Buffer.from(this.pending, 'utf8'));
        this.pending = '';
      }
    }
    this.rowCount += batch.length;
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.pending.length > 0) this.push(Buffer.from(this.pending, 'utf8'));
    this.pending = '';
    callback();
  }
}

// ---------------------------------------------------------------------------------------
// Decoder
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
   * Infinity when there is none; stale when below the position. Caching keeps scanning
   * linear: each indexOf resumes where the previous answer was used up, so an unquoted
   * last field never rescans the rest of the chunk looking for a comma.
   */
  private nextNl = -1;
  private nextQuote = -1;
  private nextComma = -1;
  private nextCr = -1;

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
    if (this.parts.length > 0) {
      const tail = this.parts.length === 1 ? this.parts[0]! : this.parts.join('');
      this.text = this.pos < this.text.length ? this.text.slice(this.pos) + tail : tail;
      this.parts = [];
      this.partsLength = 0;
    } else {
      this.text = this.text.slice(this.pos);
    }
    this.pos = 0;
    this.nextNl = this.nextQuote = this.nextComma = this.nextCr = -1;
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
  }

  /**
   * Parses the record starting at `start`; returns the offset after it or INCOMPLETE.
   * Hands the record to {@link accept} as a side effect.
   */
  private parseRecord(text: string, start: number, final: boolean): number {
    if (this.nextNl < start) this.nextNl = indexOrInfinity(text, '\n', start);
    if (this.nextQuote < start) this.nextQuote = indexOrInfinity(text, '"', start);
    if (this.nextCr < start) this.nextCr = indexOrInfinity(text, '\r', start);
    let nl = this.nextNl;
    if (nl === Infinity) {
      if (!final) return INCOMPLETE;
      nl = text.length; // last record without a trailing newline
    }
    if (this.nextQuote > nl && this.nextCr > nl) {
      // Fast path: nothing quoted in this record, so every field is one slice.
      const fields: CsvRow = text.slice(start, nl).split(',');
      for (let i = 0; i < fields.length; i++) if (fields[i] === '') fields[i] = null;
      this.accept(fields, nl - start);
      this.line++;
      return nl + 1;
    }
    return this.parseQuotedRecord(text, start, final);
  }

  /** General path for a record holding a quoted field (or a stray `\r`). */
  private parseQuotedRecord(text: string, start: number, final: boolean): number {
    const len = text.length;
    const fields: CsvRow = [];
    let newlines = 0;
    let p = start;
    for (;;) {
      if (p < len && text.charCodeAt(p) === QUOTE) {
        // Quoted field: find the closing quote, skipping doubled ones.
        let k = p + 1;
        let doubled = false;
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
            doubled = true;
            k = q + 2;
            continue;
          }
          break;
        }
        let value = text.slice(p + 1, q);
        if (doubled) value = value.replace(DOUBLED_QUOTE, '"');
        for (let i = value.indexOf('\n'); i !== -1; i = value.indexOf('\n', i + 1)) newlines++;
        fields.push(value);
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
      // Unquoted field: ends at the next comma or newline.
      if (this.nextComma < p) this.nextComma = indexOrInfinity(text, ',', p);
      if (this.nextNl < p) this.nextNl = indexOrInfinity(text, '\n', p);
      const comma = this.nextComma;
      let end = comma < this.nextNl ? comma : this.nextNl;
      if (end === Infinity) {
        if (!final) return INCOMPLETE;
        end = len;
      }
      if (this.nextQuote < p) this.nextQuote = indexOrInfinity(text, '"', p);
      if (this.nextCr < p) this.nextCr = indexOrInfinity(text, '\r', p);
      if (this.nextQuote < end) {
        throw this.error(
          `quote inside unquoted field ${fields.length + 1}`,
          'PostgreSQL quotes any field containing a quote; the file was not written by COPY or is corrupt',
        );
      }
      if (this.nextCr < end) {
        throw this.error(
          `unquoted carriage return in field ${fields.length + 1}`,
          'PostgreSQL quotes fields containing \\r and ends lines with \\n; was the file converted to CRLF line endings?',
        );
      }
      fields.push(end === p ? null : text.slice(p, end));
      if (end === comma) {
        p = end + 1;
        continue;
      }
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
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
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
      this.parser.write(typeof chunk === 'string' ? chunk : this.utf8.decode(chunk, { stream: true }));
      callback();
    } catch (err) {
      callback(this.wrapError(err));
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.parser.write(this.utf8.decode());
      this.parser.end();
      callback();
    } catch (err) {
      callback(this.wrapError(err));
    }
  }

  /** TextDecoder's invalid-UTF-8 TypeError becomes a DumpError; ours pass through. */
  private wrapError(err: unknown): Error {
    return toDumpError(err, this.parser);
  }
}

function toDumpError(err: unknown, parser: CsvParser): Error {
  if (err instanceof DumpError) return err;
  if ((err as { code?: unknown } | null)?.code === 'ERR_ENCODING_INVALID_ENCODED_DATA') {
    return parser.error('invalid UTF-8', 'COPY writes UTF-8 when client_encoding is UTF8; was the file re-encoded?');
  }
  return err instanceof Error ? err : new Error(String(err));
}

function indexOrInfinity(text: string, ch: string, from: number): number {
  const i = text.indexOf(ch, from);
  return i === -1 ? Infinity : i;
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
