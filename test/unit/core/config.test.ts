import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSettings, resolveEnvironment } from '../../../src/config.ts';
import { ConfigError, UsageError, ValidationError } from '../../../src/errors.ts';

async function withConfig(json: unknown): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bg-config-'));
  await writeFile(path.join(dir, 'bluegreen.config.json'), typeof json === 'string' ? json : JSON.stringify(json));
  return dir;
}

describe('config', () => {
  it('expands ${VAR} from the environment after validation', async () => {
    const cwd = await withConfig({ environments: { blue: { url: 'postgres://app:${PW}@h/db' } } });
    const s = loadSettings({ cwd, env: { PW: 's3cret' } });
    expect(s.environments.blue!.url).toBe('postgres://app:s3cret@h/db');
    expect(s.mappingsDir).toBe(path.join(cwd, 'mappings'));
  });

  it('names the key whose variable is missing', async () => {
    const cwd = await withConfig({ environments: { green: { url: 'postgres://app:${GREEN_PW}@h/db' } } });
    expect(() => loadSettings({ cwd, env: {} })).toThrow(ConfigError);
    expect(() => loadSettings({ cwd, env: {} })).toThrow(/\/environments\/green\/url references \$\{GREEN_PW\}/);
  });

  it('reports every schema problem at once with its JSON path', async () => {
    const cwd = await withConfig({ environmnets: {}, mappings: 3, environments: { blue: { uri: 'x' } } });
    try {
      loadSettings({ cwd, env: {} });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      const lines = (err as ValidationError).problems.map((p) => `${p.path}: ${p.message}`);
      expect(lines).toEqual(
        expect.arrayContaining([
          '/: unknown key "environmnets"',
          '/mappings: must be string',
          '/environments/blue: missing required key "url"',
          '/environments/blue: unknown key "uri"',
        ]),
      );
      expect((err as ValidationError).exitCode).toBe(2);
    }
  });

  it('refuses a config that is not JSON, naming the file', async () => {
    const cwd = await withConfig('{ not json');
    expect(() => loadSettings({ cwd, env: {} })).toThrow(/bluegreen\.config\.json is not valid JSON/);
  });

  it('resolves flag, then config, then NAME_URL, and says what to do otherwise', async () => {
    const cwd = await withConfig({ environments: { blue: { url: 'postgres://config/blue' } } });
    const s = loadSettings({ cwd, env: {} });
    expect(resolveEnvironment(s, 'blue', 'postgres://flag', {}).url).toBe('postgres://flag');
    expect(resolveEnvironment(s, 'blue', undefined, { BLUE_URL: 'postgres://env' }).source).toBe('config');
    expect(resolveEnvironment(s, 'green', undefined, { GREEN_URL: 'postgres://env/green' }).url).toBe('postgres://env/green');
    expect(() => resolveEnvironment(s, 'green', undefined, {})).toThrow(UsageError);
    expect(() => resolveEnvironment(s, 'green', undefined, {})).toThrow(/no database for environment "green"/);
  });
});
