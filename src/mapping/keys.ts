/**
 * Key order and the streaming merge join for offline conversion of merged tables.
 *
 * Dumps are exported ORDER BY the key, text keys `COLLATE "C"` (byte order), so a merge of
 * several dumps is one forward pass over each: memory stays flat however big the tables.
 * The comparator must agree with PostgreSQL's order exactly, or the join silently misses
 * partners; so the join also checks that each input really is sorted and refuses otherwise.
 */
import { DumpError, InvalidInputError } from '../errors.ts';
import type { Row } from './types.ts';

/** How one key column is ordered. */
export type KeyKind = 'int' | 'uuid' | 'text';

/** The key kind of a PostgreSQL type (format_type spelling); throws for types the join cannot order. */
export function keyKind(type: string): KeyKind {
  if (type === 'smallint' || type === 'integer' || type === 'bigint') return 'int';
  if (type === 'uuid') return 'uuid';
  if (type === 'text' || /^character varying(\(\d+\))?$/.test(type)) return 'text';
  throw new InvalidInputError(`cannot merge-join on a key of type ${type}`, 'offline merge supports integer, uuid and text keys; convert on a live database instead');
}

/** Compares integer text ('-12' < '3') without parsing: sign, then length, then digits. */
export function compareIntText(a: string, b: string): number {
  const na = a.charCodeAt(0) === 45; // '-'
  const nb = b.charCodeAt(0) === 45;
  if (na !== nb) return na ? -1 : 1;
  let c = a.length - b.length;
  if (c === 0) c = a < b ? -1 : a > b ? 1 : 0;
  if (c === 0) return 0;
  return na ? -c : c;
}

/**
 * Compares strings in UTF-8 byte order, which is code point order. JS `<` compares UTF-16
 * units, which puts U+E000..U+FFFF after astral characters (surrogates are 0xD800..0xDFFF):
 * wrong for `COLLATE "C"` on UTF-8 databases.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x < 0xd800 && y < 0xd800) return x - y;
    const cx = a.codePointAt(i)!;
    const cy = b.codePointAt(i)!;
    if (cx !== cy) return cx - cy;
  }
  return a.length - b.length;
}

/** uuid text is lowercase fixed-width hex, so string order is byte order is PostgreSQL's. */
function compareUuid(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const BY_KIND: Record<KeyKind, (a: string, b: string) => number> = { int: compareIntText, uuid: compareUuid, text: compareUtf8 };

/** Compares the key of row `a` (at `aIdx`) with the key of row `b` (at `bIdx`); keys are never NULL. */
export type KeyComparator = (a: Row, b: Row) => number;

/** A comparator over composite keys: `kinds[i]` orders column `aIdx[i]` of a against `bIdx[i]` of b. */
export function keyComparator(kinds: KeyKind[], aIdx: number[], bIdx: number[] = aIdx): KeyComparator {
  const fns = kinds.map((k) => BY_KIND[k]);
  if (fns.length === 1) {
    const f = fns[0]!;
    const ai = aIdx[0]!;
    const bi = bIdx[0]!;
    return (a, b) => f(a[ai]!, b[bi]!);
  }
  return (a, b) => {
    for (let i = 0; i < fns.length; i++) {
      const c = fns[i]!(a[aIdx[i]!]!, b[bIdx[i]!]!);
      if (c !== 0) return c;
    }
    return 0;
  };
}

/** Options of mergeJoin. */
export interface MergeJoinOptions {
  /** Key kinds, one per key column. */
  kinds: KeyKind[];
  /** Key column positions in left rows. */
  leftKey: number[];
  /** Key column positions in right rows. */
  rightKey: number[];
  /** Number of columns of a right row (NULLs emitted when a left row has no partner). */
  rightWidth: number;
  /** Called for each right row with no left partner (it is dropped, as by LEFT JOIN). */
  onOrphan?: (row: Row) => void;
  /** Names for errors. */
  leftName?: string;
  /** Names for errors. */
  rightName?: string;
}

/**
 * LEFT JOIN of two key-sorted row streams with unique keys: yields each left row
 * concatenated with its right partner, or with NULLs. Left key positions stay valid in the
 * output, so joins chain: `mergeJoin(mergeJoin(a, b, ...), c, ...)`. Throws DumpError when
 * an input is not strictly increasing by key.
 */
export async function* mergeJoin(left: AsyncIterable<Row>, right: AsyncIterable<Row>, opts: MergeJoinOptions): AsyncGenerator<Row> {
  const cmp = keyComparator(opts.kinds, opts.leftKey, opts.rightKey);
  const cmpLeft = keyComparator(opts.kinds, opts.leftKey);
  const cmpRight = keyComparator(opts.kinds, opts.rightKey);
  const nulls: Row = new Array(opts.rightWidth).fill(null);
  const rit = right[Symbol.asyncIterator]();
  let r = await rit.next();
  let prevLeft: Row | undefined;
  let prevRight: Row | undefined;
  const advanceRight = async () => {
    prevRight = r.value as Row;
    r = await rit.next();
    if (!r.done && cmpRight(prevRight, r.value) >= 0) throw new DumpError(`${opts.rightName ?? 'right input'} is not sorted by its key (or has a duplicate key)`, 'dumps must be exported ORDER BY the key, text keys COLLATE "C"');
  };
  for await (const l of left) {
    if (prevLeft !== undefined && cmpLeft(prevLeft, l) >= 0) throw new DumpError(`${opts.leftName ?? 'left input'} is not sorted by its key (or has a duplicate key)`, 'dumps must be exported ORDER BY the key, text keys COLLATE "C"');
    prevLeft = l;
    while (!r.done && cmp(l, r.value) > 0) {
      opts.onOrphan?.(r.value);
      await advanceRight();
    }
    if (!r.done && cmp(l, r.value) === 0) {
      yield [...l, ...r.value];
      await advanceRight();
    } else {
      yield [...l, ...nulls];
    }
  }
  while (!r.done) {
    opts.onOrphan?.(r.value);
    await advanceRight();
  }
}
