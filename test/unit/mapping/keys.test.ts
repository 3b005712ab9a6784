import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareIntText, compareUtf8, keyComparator, keyKind, mergeJoin } from '../../../src/mapping/keys.ts';
import type { Row } from '../../../src/mapping/types.ts';

async function* from(rows: Row[]): AsyncGenerator<Row> {
  for (const r of rows) yield r;
}
async function all(it: AsyncIterable<Row>): Promise<Row[]> {
  const out: Row[] = [];
  for await (const r of it) out.push(r);
  return out;
}

describe('key order', () => {
  it('integers compare numerically as text', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (a, b) => {
        expect(Math.sign(compareIntText(String(a), String(b)))).toBe(a < b ? -1 : a > b ? 1 : 0);
      }),
      { numRuns: 2000 },
    );
  });

  it('text compares in UTF-8 byte order (COLLATE "C"), not UTF-16 order', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        expect(Math.sign(compareUtf8(a, b))).toBe(Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
      }),
      { numRuns: 2000 },
    );
    // U+FF5E (3 UTF-8 bytes) sorts before U+1F600 (4 bytes) though its UTF-16 unit is larger.
    expect(compareUtf8('\uff5e', '😀')).toBeLessThan(0);
    expect('\uff5e' < '😀').toBe(false);
  });

  it('composite keys and kinds', () => {
    const cmp = keyComparator([keyKind('bigint'), keyKind('text')], [0, 1]);
    expect(cmp(['10', 'b'], ['9', 'z'])).toBeGreaterThan(0);
    expect(cmp(['9', 'a'], ['9', 'b'])).toBeLessThan(0);
    expect(keyKind('uuid')).toBe('uuid');
    expect(() => keyKind('timestamp with time zone')).toThrow(/cannot merge-join on a key of type timestamp with time zone/);
  });
});

describe('mergeJoin', () => {
  const opts = { kinds: ['int' as const], leftKey: [0], rightKey: [0], rightWidth: 2 };

  it('is a LEFT JOIN over sorted streams; orphans are reported', async () => {
    const orphans: Row[] = [];
    const got = await all(mergeJoin(from([['1', 'a'], ['2', 'b'], ['10', 'c']]), from([['0', 'x'], ['2', 'p'], ['10', 'q'], ['11', 'y']]), { ...opts, onOrphan: (r) => orphans.push(r) }));
    expect(got).toEqual([
      ['1', 'a', null, null],
      ['2', 'b', '2', 'p'],
      ['10', 'c', '10', 'q'],
    ]);
    expect(orphans).toEqual([['0', 'x'], ['11', 'y']]);
  });

  it('refuses unsorted or duplicate input rather than missing partners', async () => {
    await expect(all(mergeJoin(from([['2'], ['1']]), from([]), { ...opts, leftName: 'users.csv' }))).rejects.toThrow(/users.csv is not sorted by its key/);
    await expect(all(mergeJoin(from([['1'], ['5']]), from([['1', 'a'], ['1', 'b']]), { ...opts, rightName: 'user_profiles.csv' }))).rejects.toThrow(/user_profiles.csv is not sorted/);
  });

  it('chains for three tables', async () => {
    const ab = mergeJoin(from([['1'], ['2']]), from([['2', 'b']]), { ...opts, rightWidth: 2 });
    const abc = mergeJoin(ab, from([['1', 'c']]), { ...opts, rightWidth: 2 });
    expect(await all(abc)).toEqual([
      ['1', null, null, '1', 'c'],
      ['2', '2', 'b', null, null],
    ]);
  });
});
