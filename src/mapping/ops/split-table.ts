/**
 * Split table: several target tables name the same source table (`users` ->
 * `users` + `user_profiles`). Each target gets its own column list and ops, and every one
 * must carry the same source key, so the pieces can be joined back (by `merge`) and a
 * delete on the source removes the row from each piece.
 */
import type { ValidationProblem } from '../../errors.ts';

/** One target table reading a shared source table. */
export interface SplitPiece {
  /** Target table. */
  table: string;
  /** JSON pointer of its entry. */
  path: string;
  /** The source columns its key is carried from, in key order. */
  sourceKey: string[];
}

/** Problems when the pieces of one split source carry different keys. */
export function validateSplitKeys(source: string, pieces: SplitPiece[], file: string): ValidationProblem[] {
  const first = pieces[0];
  if (first === undefined) return [];
  return pieces
    .slice(1)
    .filter((p) => p.sourceKey.join('\0') !== first.sourceKey.join('\0'))
    .map((p) => ({
      file,
      path: p.path,
      message: `${p.table} and ${first.table} both split from ${source} but carry different keys (${p.sourceKey.join(', ')} vs ${first.sourceKey.join(', ')})`,
      hint: 'every piece of a split table must carry the same source key',
    }));
}
