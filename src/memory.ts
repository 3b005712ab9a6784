/**
 * While a huge record is in memory, V8 collects garbage sooner.
 *
 * Why: V8 starts a major collection when the old generation has grown by a factor (up to
 * 2x and more) over what survived the last one, and it does not know that a 40 MB string
 * it just made left one as large dead. A huge record leaves such copies behind: its text
 * joined again at each re-scan while it arrives, the groups a quoted value is undoubled
 * from, the previous table's record. They piled up on top of what was live: the memory
 * test's dump (a 30 MB text, a 20 MB bytea) peaked at 251-257 MB converting, 197-199 MB
 * with a growing factor of 1.2 while each huge record is parsed, converted and encoded
 * (test/integration/memory.test.ts). For a whole run the same factor cost 15-30% more CPU
 * on an ordinary 300k-user convert, so it is set only around huge records and put back
 * after; forcing full collections (`gc()`) at chosen points instead did not lower the peak
 * reliably (measured: 221-319 MB).
 *
 * `v8.setFlagsFromString` is how bin/bluegreen.js tunes the young generation too; V8
 * reads this flag each time it sets the next collection's threshold.
 */
import v8 from 'node:v8';

/** From this many characters a record is huge. */
export const HUGE = 4 * 1024 * 1024;

let tight = false;

/** Collect sooner (`on`) while a huge record is handled, or on V8's default schedule. */
export function hugeRecord(on: boolean): void {
  if (on === tight) return;
  tight = on;
  v8.setFlagsFromString(on ? '--heap-growing-percent=20' : '--heap-growing-percent=0');
}
