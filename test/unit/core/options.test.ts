import { describe, expect, it } from 'vitest';
import { durationCoerce, numberCoerce, parseDuration } from '../../../scripts/options.ts';
import { nameFromUrl } from '../../../scripts/context.ts';

describe('flag validation', () => {
  it('reads durations as PostgreSQL writes them', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('30 seconds')).toBe(30_000);
    expect(parseDuration('2 minutes')).toBe(120_000);
    expect(parseDuration('1 hour 30 minutes')).toBe(5_400_000);
    expect(parseDuration('00:01:30')).toBe(90_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('15')).toBe(15_000);
    for (const bad of ['banana', '', '5 parsecs', '10 s banana', '1e3', '-5s']) expect(parseDuration(bad), bad).toBeUndefined();
  });

  it('normalises durations to what PostgreSQL accepts as a setting and as an interval', () => {
    expect(durationCoerce('lock-timeout')('2 minutes')).toBe('120000ms');
    expect(durationCoerce('lookback', { as: 'interval' })(' 1 minute ')).toBe('1 minute');
    expect(() => durationCoerce('lock-timeout', { min: 1 })('0s')).toThrow(/--lock-timeout must be at least 1 ms/);
    expect(() => durationCoerce('lookback')('banana')).toThrow(/--lookback must be a duration such as '30s'/);
  });

  it('refuses numbers that are not, with the flag named', () => {
    expect(numberCoerce('max-lag', { min: 0 })('300')).toBe(300);
    expect(numberCoerce('max-lag', { min: 0 })(300)).toBe(300);
    expect(() => numberCoerce('max-lag', { min: 0 })('abc')).toThrow(/--max-lag must be a number >= 0 \(got "abc"\)/);
    expect(() => numberCoerce('jobs', { integer: true, positive: true })('1.5')).toThrow(/--jobs must be a positive integer/);
    expect(() => numberCoerce('timeout', { positive: true })('0')).toThrow(/--timeout must be a positive number/);
    expect(() => numberCoerce('rows', { integer: true, min: 0 })('')).toThrow(/--rows must be an integer >= 0/);
  });

  it('names a URL-only endpoint host:port/database, never with its user or password', () => {
    expect(nameFromUrl('postgres://app:secret@db.example:6543/shop?sslmode=require')).toBe('db.example:6543/shop');
    expect(nameFromUrl('postgresql://app@localhost/app')).toBe('localhost:5432/app');
    expect(() => nameFromUrl('not a url')).toThrow(/is not a postgres:\/\/ URL/);
  });
});
