/**
 * The source side of a full sync's verify, taken from the sync's own COPY: no second read.
 *
 * The source's `COPY (SELECT …)` yields one more column in front of the mapped ones, the
 * verify's row hash of that very row (./encoding.ts, computed by the source server with
 * the same SQL verify runs). The stage below takes that first field off every row before
 * the target's COPY FROM sees it, and adds it up: (rows, exact sum of the 64-bit hashes)
 * per table, which is what verify's total query returns for the source (src/verify/verify.ts,
 * totals first). The target side is still read back from the target after the commit, so
 * what verify proves is unchanged: the target holds what the source held in the sync's
 * snapshot, through the mapping.
 *
 * Cost: the source hashes each row once (it did so in a second scan before), and this
 * stage walks each row's field lengths (binary) or its quotes and newlines (CSV), copying
 * each row's bytes once; bench/README.md has the CPU split before and after.
 */
import { Transform, type TransformCallback } from 'node:stream';

/** Rows and the exact sum of their hashes, as verify's total query prints them. */
export interface HashTotal {
  rows: number;
  /** The sum of every row's signed 64-bit hash, exact, in decimal (PostgreSQL's `sum(int8)::text`). */
  sum: string;
}

const TWO32 = 4294967296;
const FLUSH = 1 << 19; // rows per Number accumulator: every partial sum stays below 2^53

/**
 * Adds signed 64-bit values exactly without a BigInt per row: the binary stream's hash as
 * its two 32-bit halves, the CSV stream's as its decimal text split at 10^9. Numbers add
 * exactly below 2^53, so partial sums go into one BigInt every FLUSH rows.
 */
export class HashSum {
  #rows = 0;
  #pending = 0;
  #hi = 0; // sum of high halves (signed), times 2^32
  #lo = 0; // sum of low halves (unsigned)
  #a = 0; // sum of the decimal digits above 10^9 (signed), times 10^9
  #b = 0; // sum of the last nine digits (signed)
  #total = 0n;

  /** One hash as its two 32-bit halves: `hi` signed, `lo` unsigned. */
  addHalves(hi: number, lo: number): void {
    this.#hi += hi;
    this.#lo += lo;
    this.#count();
  }

  /** One hash as decimal text (`-123…`), as COPY's CSV prints an int8. */
  addDecimal(text: string): void {
    const neg = text.charCodeAt(0) === 0x2d;
    const first = neg ? 1 : 0;
    const cut = Math.max(first, text.length - 9);
    const a = cut > first ? Number(text.slice(first, cut)) : 0;
    const b = Number(text.slice(cut));
    if (neg) {
      this.#a -= a;
      this.#b -= b;
    } else {
      this.#a += a;
      this.#b += b;
    }
    this.#count();
  }

  /** Rows added so far. */
  get rows(): number {
    return this.#rows;
  }

  /** Adds another sum of the same table (a --jobs range). */
  merge(other: HashSum): void {
    const o = other.total();
    this.#flush();
    this.#total += BigInt(o.sum);
    this.#rows += o.rows;
  }

  total(): HashTotal {
    this.#flush();
    return { rows: this.#rows, sum: this.#total.toString() };
  }

  #count(): void {
    this.#rows++;
    if (++this.#pending === FLUSH) this.#flush();
  }

  #flush(): void {
    if (this.#pending === 0 && this.#hi === 0 && this.#lo === 0 && this.#a === 0 && this.#b === 0) return;
    this.#total += BigInt(this.#hi) * BigInt(TWO32) + BigInt(this.#lo) + BigInt(this.#a) * 1_000_000_000n + BigInt(this.#b);
    this.#hi = this.#lo = this.#a = this.#b = this.#pending = 0;
  }
}

/**
 * A stream stage for `COPY (SELECT hash, c1, c2, …) TO STDOUT` in COPY's binary or CSV
 * format: passes every row on without its first field and adds that field to `sum`.
 * The first field must be a non-NULL int8 (verify's row hash never is NULL).
 */
export function hashStripper(format: 'binary' | 'csv', sum: HashSum): Transform {
  return format === 'binary' ? binaryStripper(sum) : csvStripper(sum);
}

/**
 * Binary COPY: an 11-byte signature, 32-bit flags, a 32-bit header-extension length and
 * that many bytes; then per tuple a 16-bit field count (-1 ends the data) and per field a
 * 32-bit length (-1 for NULL) and that many bytes. Each tuple's count goes out one lower
 * and its first field (length 8, the hash) is dropped; every other byte passes unchanged.
 *
 * Unit by unit: a unit not whole in this chunk (a header, a tuple's head, a field length)
 * waits for the next one (at most 19 bytes are carried); payloads are skipped in place.
 * Output is built in one buffer per chunk: each tuple's bytes are copied once, as a span.
 */
function binaryStripper(sum: HashSum): Transform {
  const HEADER = 0;
  const TUPLE = 1;
  const FIELD = 2;
  const TRAILER = 3;
  let state = HEADER;
  let skip = 0; // payload bytes still to pass
  let fields = 0; // fields left in the current tuple
  return stripStage(
    (buf, out) => {
      const n = buf.length;
      let o = 0;
      let span = 0; // start of the input bytes not yet copied out
      let i = 0;
      while (i < n) {
        if (skip > 0) {
          const k = Math.min(skip, n - i);
          skip -= k;
          i += k;
          continue;
        }
        if (state === FIELD) {
          if (fields === 0) {
            state = TUPLE;
            continue;
          }
          if (n - i < 4) break;
          const len = (buf[i]! << 24) | (buf[i + 1]! << 16) | (buf[i + 2]! << 8) | buf[i + 3]!;
          i += 4;
          fields--;
          if (len > 0) skip = len;
          continue;
        }
        if (state === TUPLE) {
          if (n - i < 2) break;
          const count = ((buf[i]! << 24) >> 16) | buf[i + 1]!;
          if (count === -1) {
            state = TRAILER;
            i += 2;
            continue;
          }
          if (n - i < 14) break;
          if (count < 1 || buf[i + 2]! | buf[i + 3]! | buf[i + 4]! || buf[i + 5] !== 8) throw new Error('bluegreen: the COPY stream does not start its rows with the row hash');
          sum.addHalves((buf[i + 6]! << 24) | (buf[i + 7]! << 16) | (buf[i + 8]! << 8) | buf[i + 9]!, ((buf[i + 10]! << 24) | (buf[i + 11]! << 16) | (buf[i + 12]! << 8) | buf[i + 13]!) >>> 0);
          if (i > span) o += buf.copy(out, o, span, i);
          out[o++] = ((count - 1) >> 8) & 0xff;
          out[o++] = (count - 1) & 0xff;
          i += 14;
          span = i;
          fields = count - 1;
          state = FIELD;
          continue;
        }
        if (state === HEADER) {
          if (n - i < 19) break;
          skip = buf.readInt32BE(i + 15); // the header extension, passed as it is
          i += 19;
          state = TUPLE;
          continue;
        }
        i = n; // TRAILER: nothing follows; pass whatever does
      }
      return { read: i, written: o + buf.copy(out, o, span, i) };
    },
    () => state === TRAILER,
  );
}

/**
 * CSV: each row starts with the hash's digits and a comma (an int8 is never quoted) and
 * ends at a newline outside double quotes (a quoted value may hold newlines; a doubled
 * quote inside leaves and enters the quotes at once, which changes nothing). Only a row's
 * head (at most 21 bytes) is ever carried to the next chunk.
 */
function csvStripper(sum: HashSum): Transform {
  let atStart = true; // the next byte starts a row
  let inQuote = false;
  return stripStage(
    (buf, out) => {
      const n = buf.length;
      let o = 0;
      let span = 0;
      let i = 0;
      let q = -2; // next quote at or after i (-1: none in this chunk; -2: not looked up yet)
      let nl = -2;
      while (i < n) {
        if (atStart) {
          const comma = buf.indexOf(0x2c, i);
          if (comma === -1 || comma - i > 21) {
            if (n - i > 21) throw new Error('bluegreen: the COPY stream does not start its rows with the row hash');
            break;
          }
          sum.addDecimal(buf.toString('latin1', i, comma));
          o += buf.copy(out, o, span, i);
          i = span = comma + 1;
          atStart = false;
          continue;
        }
        if (q !== -1 && q < i) q = buf.indexOf(0x22, i);
        if (inQuote) {
          if (q === -1) {
            i = n;
            break;
          }
          // A doubled quote inside a quoted value: still inside.
          if (buf[q + 1] === 0x22) q = buf.indexOf(0x22, q + 2);
          else {
            inQuote = false;
            i = q + 1;
          }
          continue;
        }
        if (nl !== -1 && nl < i) nl = buf.indexOf(0x0a, i);
        if (q !== -1 && (nl === -1 || q < nl)) {
          inQuote = true;
          i = q + 1;
          q = buf.indexOf(0x22, i);
          continue;
        }
        if (nl === -1) {
          i = n;
          break;
        }
        i = nl + 1;
        atStart = true;
      }
      return { read: i, written: o + buf.copy(out, o, span, i) };
    },
    () => atStart,
  );
}

/**
 * The frame both formats share: each chunk joined to the bytes the last one left unread,
 * scanned into one output buffer of its size (a row only ever shrinks), the unread tail
 * carried to the next chunk. `scan` returns how many bytes it read and wrote; the stream
 * may end only where `complete` says a row ended.
 */
function stripStage(scan: (buf: Buffer, out: Buffer) => { read: number; written: number }, complete: () => boolean): Transform {
  let carry: Buffer | undefined;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      const buf = carry ? Buffer.concat([carry, chunk]) : chunk;
      carry = undefined;
      const out = Buffer.allocUnsafe(buf.length);
      let r: { read: number; written: number };
      try {
        r = scan(buf, out);
      } catch (err) {
        cb(err as Error);
        return;
      }
      if (r.read < buf.length) carry = Buffer.from(buf.subarray(r.read));
      cb(null, r.written > 0 ? out.subarray(0, r.written) : undefined);
    },
    flush(cb) {
      cb(carry || !complete() ? new Error('bluegreen: the COPY stream ended inside a row') : undefined);
    },
  });
}
