import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HOSTILE_STRINGS, V1_COLUMNS, V1_TABLES, generateV1Rows } from '../../../fixtures/generate.ts';
import {
  CsvChunkWriter,
  CsvDecoder,
  CsvEncoder,
  decodeCsv,
  encodeCsv,
  encodeField,
  encodeRow,
  type CsvBatch,
  type CsvDecoderOptions,
  type CsvRow,
} from '../../../src/codec/pg-csv.ts';
import { DumpError } from '../../../src/errors.ts';

/** Feeds `bytes` to a CsvDecoder split at `cuts`, collecting rows, columns and batch sizes. */
async function decodeChunks(bytes: Buffer, cuts: number[], options: CsvDecoderOptions = {}) {
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const c of [...new Set(cuts)].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b)) {
    chunks.push(bytes.subarray(prev, c));
    prev = c;
  }
  chunks.push(bytes.subarray(prev));
  const rows: CsvRow[] = [];
  const batchSizes: number[] = [];
  const decoder = new CsvDecoder(options);
  let header: string[] | undefined;
  decoder.on('header', (h: string[]) => (header = h));
  await pipeline(
    Readable.from(chunks, { objectMode: false }),
    decoder,
    new Writable({
      objectMode: true,
      write(batch: CsvBatch, _enc, cb) {
        batchSizes.push(batch.length);
        rows.push(...batch);
        cb();
      },
    }),
  );
  return { rows, header, columns: decoder.columns, batchSizes };
}

/** Runs rows through a CsvEncoder and collects its output Buffers. */
async function encodeStream(batches: CsvBatch[], header?: string[], chunkSize?: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(batches, { objectMode: true }),
    new CsvEncoder({ header, chunkSize }),
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        out.push(chunk);
        cb();
      },
    }),
  );
  return out;
}

function expectDumpError(fn: () => unknown, pattern: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(DumpError);
  expect((caught as Error).message).toMatch(pattern);
}

describe('encodeField', () => {
  it.each<[string | null, string]>([
    [null, ''],
    ['', '""'],
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['"', '""""'],
    ['l1\nl2', '"l1\nl2"'],
    ['cr\r', '"cr\r"'],
    ['crlf\r\n', '"crlf\r\n"'],
    ['\\.', '\\.'],
    ['\\.more', '\\.more'],
    ['\\N', '\\N'],
    ['back\\slash', 'back\\slash'],
    ['tab\there', 'tab\there'],
    [' padded ', ' padded '],
    ['🚀 ünï', '🚀 ünï'],
  ])('%j -> %j', (value, encoded) => {
    expect(encodeField(value)).toBe(encoded);
  });

  it('quotes \\. only alone on its line, like PostgreSQL (end-of-data marker)', () => {
    expect(encodeField('\\.', true)).toBe('"\\."');
    expect(encodeRow(['\\.'])).toBe('"\\."\n');
    expect(encodeRow(['\\.x'])).toBe('\\.x\n');
    expect(encodeRow(['\\.', '\\.'])).toBe('\\.,\\.\n');
    expect(decodeCsv('\\.,\\.\n"\\.",x\n').rows).toEqual([
      ['\\.', '\\.'],
      ['\\.', 'x'],
    ]);
  });

  it('keeps NULL and empty string apart in a row', () => {
    expect(encodeRow([null, '', null])).toBe(',"",\n');
  });

  it('writes a single-column NULL as an empty line, like COPY', () => {
    expect(encodeRow([null])).toBe('\n');
    expect(decodeCsv('\n\n', { columnCount: 1 }).rows).toEqual([[null], [null]]);
  });
});

describe('decodeCsv', () => {
  it('reads NULL, empty string and quoted specials', () => {
    const text = 'id,a,b\n1,,""\n2,"x,y","q""q"\n3,"multi\nline","\\."\n4,\\N,\\.x\n';
    expect(decodeCsv(text, { header: true })).toEqual({
      columns: ['id', 'a', 'b'],
      rows: [
        ['1', null, ''],
        ['2', 'x,y', 'q"q'],
        ['3', 'multi\nline', '\\.'],
        ['4', '\\N', '\\.x'],
      ],
    });
  });

  it('accepts a last record without a trailing newline', () => {
    expect(decodeCsv('a,b\n1,2').rows).toEqual([
      ['a', 'b'],
      ['1', '2'],
    ]);
    expect(decodeCsv('1,"x"').rows).toEqual([['1', 'x']]);
    expect(decodeCsv('1,').rows).toEqual([['1', null]]);
  });

  it('keeps CR and CRLF inside quoted fields', () => {
    expect(decodeCsv('"a\r\nb","\r",""\n').rows).toEqual([['a\r\nb', '\r', '']]);
  });

  it('reads an empty input without a header as no rows', () => {
    expect(decodeCsv('').rows).toEqual([]);
  });

  describe('errors', () => {
    it('names the file and line of a wrong field count', () => {
      expectDumpError(() => decodeCsv('a,b\n1,2\n3\n', { header: true, file: 'users.csv' }), /^users\.csv: line 3: expected 2 fields, got 1$/);
    });

    it('counts lines inside quoted fields', () => {
      expectDumpError(() => decodeCsv('a,b\n"x\ny\nz",2\n1,2,3\n', { header: true }), /line 5: expected 2 fields, got 3/);
    });

    it('uses columnCount without a header', () => {
      expectDumpError(() => decodeCsv('1,2\n', { columnCount: 3 }), /line 1: expected 3 fields, got 2/);
    });

    it('refuses an unterminated quote at end of input', () => {
      expectDumpError(() => decodeCsv('a\n"open\n'), /line 2: unterminated quoted field 1 at end of input/);
      expectDumpError(() => decodeCsv('"x""'), /unterminated/);
    });

    it('refuses a quote inside an unquoted field', () => {
      expectDumpError(() => decodeCsv('ab"c,d\n'), /quote inside unquoted field 1/);
      expectDumpError(() => decodeCsv('"ok",b"\n'), /quote inside unquoted field 2/);
    });

    it('refuses text after a closing quote', () => {
      expectDumpError(() => decodeCsv('"ab"c,d\n'), /unexpected character "c" after the closing quote of field 1/);
    });

    it('refuses CRLF line endings', () => {
      expectDumpError(() => decodeCsv('a,b\r\n'), /unquoted carriage return in field 2/);
      expectDumpError(() => decodeCsv('a,"b"\r\n'), /carriage return after the closing quote/);
    });

    it('refuses invalid UTF-8', () => {
      expectDumpError(() => decodeCsv(Buffer.from([0x61, 0xff, 0x0a]), { file: 'f.csv' }), /^f\.csv: line 1: invalid UTF-8/);
    });

    it('checks the header against the expected columns, naming the column', () => {
      const opts = { expectColumns: ['id', 'username', 'email'] };
      expectDumpError(() => decodeCsv('id,user_name,email\n', opts), /header mismatch: column 2 is "user_name", expected "username"/);
      expectDumpError(() => decodeCsv('id,username\n', opts), /missing column "email" \(column 3\)/);
      expectDumpError(() => decodeCsv('id,username,email,x\n', opts), /unexpected extra column "x" \(column 4\)/);
      expect(decodeCsv('id,username,email\n', opts).columns).toEqual(['id', 'username', 'email']);
    });

    it('refuses a missing header and an empty header column', () => {
      expectDumpError(() => decodeCsv('', { header: true }), /no header record/);
      expectDumpError(() => decodeCsv('a,,b\n', { header: true }), /header column 2 is empty/);
    });

    it('fails the stream with a DumpError', async () => {
      await expect(decodeChunks(Buffer.from('a,b\n1\n'), [], { header: true, file: 't.csv' })).rejects.toThrow(
        /t\.csv: line 2: expected 2 fields/,
      );
      await expect(decodeChunks(Buffer.from('a\n"x'), [2, 3], { header: true })).rejects.toBeInstanceOf(DumpError);
      await expect(decodeChunks(Buffer.from([0x61, 0xe2, 0x82]), [2])).rejects.toThrow(/invalid UTF-8/);
    });
  });
});

describe('CsvDecoder streaming', () => {
  const text = 'k,v\n1,"a""b"\n2,"x\r\ny"\n3,€😀\n4,""\n5,\n';
  const expected = [
    ['1', 'a"b'],
    ['2', 'x\r\ny'],
    ['3', '€😀'],
    ['4', ''],
    ['5', null],
  ];

  it('decodes the same at every single split point and in 1-byte chunks', async () => {
    const bytes = Buffer.from(text);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const got = await decodeChunks(bytes, [cut], { header: true });
      expect(got.rows, `split at ${cut}`).toEqual(expected);
    }
    const oneByte = await decodeChunks(bytes, Array.from({ length: bytes.length }, (_, i) => i), { header: true });
    expect(oneByte.rows).toEqual(expected);
    expect(oneByte.header).toEqual(['k', 'v']);
    expect(oneByte.columns).toEqual(['k', 'v']);
  });

  it('emits rows in batches of at most batchSize', async () => {
    const rows = Array.from({ length: 2500 }, (_, i) => [String(i), i % 2 ? 'x,y' : 'plain']);
    const got = await decodeChunks(Buffer.from(encodeCsv(rows)), [100, 5000, 20000], { batchSize: 1000 });
    expect(got.rows).toEqual(rows);
    expect(got.batchSizes).toEqual([1000, 1000, 500]);
  });

  it('decodes a single-column file (no comma anywhere) in linear time', () => {
    // Regression: without the cached comma position each record would search the rest of
    // the buffered text for a comma it will never find.
    const text = 'v\n' + 'abcdefgh\n'.repeat(300_000);
    const t0 = Date.now();
    expect(decodeCsv(text, { header: true }).rows).toHaveLength(300_000);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('decodes a 1 MB quoted field arriving in small chunks in reasonable time', async () => {
    const big = 'a"b,\n'.repeat(200_000);
    const bytes = Buffer.from(encodeCsv([['1', big], ['2', 'x']]));
    const cuts = Array.from({ length: Math.floor(bytes.length / 1000) }, (_, i) => i * 1000);
    const started = Date.now();
    const got = await decodeChunks(bytes, cuts);
    expect(got.rows).toEqual([
      ['1', big],
      ['2', 'x'],
    ]);
    // Without the re-scan throttle this is ~1000 scans of up to 1 MB (seconds); with it, ms.
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('CsvEncoder', () => {
  it('writes the header and rows, in chunks of at least chunkSize bytes', async () => {
    const rows: CsvBatch = Array.from({ length: 5000 }, (_, i) => [String(i), i % 3 ? 'héllo, wörld' : null, '']);
    const chunks = await encodeStream([rows.slice(0, 1234), rows.slice(1234)], ['id', 'greeting', 'empty'], 16 * 1024);
    expect(chunks.length).toBeGreaterThan(3);
    for (const c of chunks.slice(0, -1)) expect(c.length).toBeGreaterThanOrEqual(16 * 1024);
    const all = Buffer.concat(chunks).toString('utf8');
    expect(all).toBe(encodeCsv(rows, ['id', 'greeting', 'empty']));
    expect(decodeCsv(all, { header: true }).rows).toEqual(rows);
  });

  it('defaults to 64 KiB chunks', async () => {
    const rows: CsvBatch = Array.from({ length: 20_000 }, (_, i) => [String(i), 'some text']);
    const chunks = await encodeStream([rows]);
    for (const c of chunks.slice(0, -1)) expect(c.length).toBeGreaterThanOrEqual(64 * 1024);
  });

  it('writes bytes identical to the reference string encoder (encodeCsv) on hostile rows, at any chunk size', async () => {
    const tables: { rows: CsvRow[]; header: string[] }[] = V1_TABLES.map((t) => ({ rows: [...generateV1Rows(t, { users: 300, seed: 3 })], header: [...V1_COLUMNS[t]] }));
    // Single-column rows: `\.` alone on its line is quoted, NULL is an empty line.
    tables.push({ rows: [...HOSTILE_STRINGS.map((v) => [v]), [null], ['\\.'], ['\\.x'], ['']], header: ['only'] });
    // Lone surrogates: written as U+FFFD, like Buffer.from on the reference string.
    tables.push({ rows: [['\ud800', 'a\udc00b', '\udc00\ud800,'], ['😀', null, '']], header: ['a', 'b', 'c'] });
    for (const { rows, header } of tables) {
      const want = Buffer.from(encodeCsv(rows, header), 'utf8');
      for (const chunkSize of [1, 100, 64 * 1024]) {
        const got = Buffer.concat(await encodeStream([rows.slice(0, 50), rows.slice(50)], header, chunkSize));
        expect(got.equals(want), `${header.join(',')} at chunkSize ${chunkSize}`).toBe(true);
      }
    }
  });

  it('grows its buffer for a field larger than a chunk and starts small again', () => {
    const writer = new CsvChunkWriter(1024);
    const big = 'é"'.repeat(100_000);
    writer.writeRow(['1', big]);
    expect(writer.full).toBe(true);
    expect(writer.take().toString('utf8')).toBe(encodeRow(['1', big]));
    writer.writeRow(['2', null]);
    expect(writer.full).toBe(false);
    expect(writer.take().toString('utf8')).toBe('2,\n');
  });

  it('rejects a non-batch chunk', async () => {
    await expect(encodeStream(['not a batch' as unknown as CsvBatch])).rejects.toThrow(/expects batches/);
  });
});

describe('round trip (property)', () => {
  const special = fc.constantFrom('', '"', ',', '\n', '\r\n', '\r', '\\', '\\N', '\\.', '""', ' ', '\t', '😀', 'é', '\u0301', '中', '\u05d0');
  // Strings made of specials and arbitrary well-formed unicode (no lone surrogates: they
  // cannot be UTF-8 encoded).
  const field = fc.option(
    fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 12 }),
      fc.array(fc.oneof(special, fc.string({ unit: 'binary', maxLength: 4 })), { maxLength: 8 }).map((a) => a.join('')),
      special,
    ),
    { nil: null, freq: 5 },
  );

  it('encode -> decode in random chunk splits returns the original rows', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }).chain((width) =>
          fc.tuple(
            fc.constant(width),
            fc.array(fc.array(field, { minLength: width, maxLength: width }), { maxLength: 20 }),
            fc.array(fc.nat(), { maxLength: 30 }),
            fc.boolean(),
          ),
        ),
        async ([width, rows, cutSeeds, oneByte]) => {
          const header = Array.from({ length: width }, (_, i) => `c${i}`);
          const bytes = Buffer.from(encodeCsv(rows, header), 'utf8');
          const cuts = oneByte ? Array.from({ length: bytes.length }, (_, i) => i) : cutSeeds.map((n) => n % (bytes.length + 1));
          const got = await decodeChunks(bytes, cuts, { expectColumns: header, batchSize: 3 });
          expect(got.rows).toEqual(rows);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('the encoder stream and encodeCsv agree, and decode back', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(field, { minLength: 3, maxLength: 3 }), { maxLength: 30 }), fc.integer({ min: 1, max: 64 }), async (rows, chunkSize) => {
        const out = Buffer.concat(await encodeStream([rows.slice(0, 7), rows.slice(7)], undefined, chunkSize));
        expect(out.toString('utf8')).toBe(encodeCsv(rows));
        expect(decodeCsv(out, { columnCount: 3 }).rows).toEqual(rows);
      }),
      { numRuns: 200 },
    );
  });
});
