/**
 * Huge fields take the memory-lean paths (undoubling in groups, exact-size encoding): they
 * must stay byte-identical to the small-field dialect, split anywhere across chunks.
 */
import { describe, expect, it } from 'vitest';
import { CsvChunkWriter, CsvParser, encodeRow, type CsvRow } from '../../../src/codec/pg-csv.ts';

function encode(rows: CsvRow[]): Buffer {
  const w = new CsvChunkWriter(1024);
  const out: Buffer[] = [];
  for (const r of rows) {
    w.writeRow(r);
    if (w.full) out.push(w.take());
  }
  out.push(w.take());
  return Buffer.concat(out);
}

function decode(bytes: Buffer, chunk: number): CsvRow[] {
  const rows: CsvRow[] = [];
  const p = new CsvParser({}, (b) => rows.push(...b));
  for (let i = 0; i < bytes.length; i += chunk) p.writeBytes(bytes.subarray(i, i + chunk));
  p.endBytes();
  return rows;
}

describe('huge fields', () => {
  const values = [
    'Ann "Q", é 😀\n'.repeat(40_000), // quotes, commas, newlines, two-byte and astral characters
    '"'.repeat(300_001), // nothing but quotes
    'x'.repeat(300_000), // plain, unquoted
    'a,b'.repeat(100_000) + '\r', // quoted without any quote inside
    '"' + 'y'.repeat(300_000) + '"', // quotes only at both ends
  ];
  it('encode exactly like encodeRow and decode back, in any chunking', () => {
    const rows: CsvRow[] = values.map((v, i) => [String(i), v, null, '']);
    const bytes = encode(rows);
    expect(bytes.toString('utf8')).toBe(rows.map(encodeRow).join(''));
    for (const chunk of [1000, 65_536, 7_777_777]) expect(decode(bytes, chunk)).toEqual(rows);
  });

  // Regression: the buffer sized for a huge value was doubled to append the newline (or
  // any field) after it, allocating twice the value and copying it: the largest part of a
  // huge row's peak memory in convert and import.
  it('a huge value and the fields after it fit the buffer sized for it (no doubling)', () => {
    const big = 'x'.repeat(4 * 1024 * 1024);
    const w = new CsvChunkWriter();
    w.writeRow(['1', big, 'after', null, '""', 'a,b']);
    w.writeRow(['2', 'small']);
    const out = w.take();
    expect(out.toString('utf8')).toBe(encodeRow(['1', big, 'after', null, '""', 'a,b']) + encodeRow(['2', 'small']));
    // The memory behind the bytes handed over: the value's size plus a chunk or two, not twice it.
    expect(out.buffer.byteLength).toBeLessThan(big.length * 1.1);
  });
});
