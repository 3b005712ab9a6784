import { describe, expect, it } from 'vitest';
import { redactText, redactUrl } from '../../../src/redact.ts';
import { createLogger } from '../../../src/log.ts';

describe('passwords never printed', () => {
  it('masks the password of a URL and of password= parameters', () => {
    expect(redactUrl('postgres://app:s3cr%40t@db:5432/app')).toBe('postgres://app:***@db:5432/app');
    expect(redactUrl('postgresql://db/app?password=hunter2&sslmode=require')).toContain('password=***');
    expect(redactText('cannot connect to postgres://u:pw@h/db: refused')).toBe('cannot connect to postgres://u:***@h/db: refused');
    expect(redactText('host=h password=pw dbname=x')).toBe('host=h password=*** dbname=x');
  });

  it('the logger redacts in both formats', () => {
    const lines: string[] = [];
    for (const format of ['text', 'json'] as const) {
      const log = createLogger({ format, write: (l) => lines.push(l) });
      log.info('connected to postgres://app:topsecret@h/db', { url: 'postgres://app:topsecret@h/db' });
      log.error('failed');
    }
    expect(lines.join('')).not.toContain('topsecret');
    expect(JSON.parse(lines[2]!)).toMatchObject({ level: 'info', msg: 'connected to postgres://app:***@h/db' });
  });

  it('drops progress when not on a terminal (cron logs stay quiet)', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'json', progress: false, write: (l) => lines.push(l) });
    log.progress('users', 10, 100);
    log.progressDone('users');
    expect(lines).toEqual([]);
  });
});
