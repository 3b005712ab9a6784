/** Timeout flags: seconds or a PostgreSQL-style duration, refused (exit 2) before connecting. */
import { describe, expect, it } from 'vitest';
import { parseTimeout } from '../../../src/db/connect.ts';
import { ExitCode } from '../../../src/errors.ts';

describe('parseTimeout', () => {
  it.each([
    ['10', 10_000],
    ['2.5', 2_500],
    ['0', 0],
    ['30s', 30_000],
    ['500ms', 500],
    ['5min', 300_000],
    ['5 minutes', 300_000],
    ['1 hour 30 minutes', 5_400_000],
    ['1h', 3_600_000],
    [' 2 seconds ', 2_000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseTimeout('lock-timeout', text)).toBe(ms);
  });

  it.each(['banana', '-1', '5 parsecs', '', '10 s x', '1e3', 'NaN'])('refuses %j with exit 2', (text) => {
    try {
      parseTimeout('lock-timeout', text);
      expect.unreachable();
    } catch (err) {
      expect((err as { exitCode: number }).exitCode).toBe(ExitCode.invalid);
      expect((err as Error).message).toContain('--lock-timeout must be seconds or a duration');
    }
  });

  it('a connect timeout of 0 is refused (it would wait forever)', () => {
    expect(() => parseTimeout('connect-timeout', '0', false)).toThrow(/--connect-timeout/);
  });
});
