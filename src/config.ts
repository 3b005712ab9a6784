/**
 * Settings: where the versions live and how to reach each environment. The config file is
 * untrusted JSON until validated against src/schemas/config.schema.json; `${VAR}`
 * references are expanded from the environment only after validation, so a password
 * never has to live in the file.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, UsageError } from './errors.ts';
import { validateAgainst } from './validate.ts';
import { readClusterState } from './env/state.ts';
import { checkConnectionUrl } from './db/url.ts';

export const CONFIG_FILE = 'bluegreen.config.json';

/** The config file as its schema describes it. */
interface RawConfig {
  mappings?: string;
  stateDir?: string;
  environments?: Record<string, { url: string; version?: number }>;
}

export interface Settings {
  /** Folder of versions (v1/schema.sql, v2/up.json, …). */
  mappingsDir: string;
  /** Folder of the local embedded clusters and their state. */
  stateDir: string;
  /** Config file read, if any. */
  configFile?: string;
  /** Environments named in the config, URLs expanded. */
  environments: Record<string, { url: string; version?: number }>;
}

export interface SettingsInput {
  cwd?: string;
  /** --config */
  configPath?: string;
  /** --mappings */
  mappings?: string;
  /** Environment variables (process.env by the CLI). */
  env?: Record<string, string | undefined>;
}

/** Expands `${NAME}` from `env`; a missing variable is an error naming the key. */
function expand(value: string, env: Record<string, string | undefined>, file: string, key: string): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
    const v = env[name];
    if (v === undefined) {
      throw new ConfigError(`${file}: ${key} references \${${name}}, which is not set`, `export ${name}=… before running bluegreen`);
    }
    return v;
  });
}

export function loadSettings(input: SettingsInput = {}): Settings {
  const cwd = input.cwd ?? process.cwd();
  const env = input.env ?? process.env;
  const configFile = input.configPath
    ? path.resolve(cwd, input.configPath)
    : existsSync(path.join(cwd, CONFIG_FILE))
      ? path.join(cwd, CONFIG_FILE)
      : undefined;
  let raw: RawConfig = {};
  if (configFile) {
    let text: string;
    try {
      text = readFileSync(configFile, 'utf8');
    } catch {
      throw new ConfigError(`config file ${configFile} cannot be read`, 'check the path given to --config');
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`${configFile} is not valid JSON: ${(err as Error).message}`);
    }
    raw = validateAgainst<RawConfig>('config.schema.json', json, configFile, `invalid config ${configFile}`);
  }
  const base = configFile ? path.dirname(configFile) : cwd;
  const environments: Settings['environments'] = {};
  for (const [name, e] of Object.entries(raw.environments ?? {})) {
    environments[name] = { ...e, url: expand(e.url, env, configFile!, `/environments/${name}/url`) };
  }
  return {
    mappingsDir: input.mappings ? path.resolve(cwd, input.mappings) : path.resolve(base, raw.mappings ?? 'mappings'),
    stateDir: path.resolve(base, raw.stateDir ?? '.bluegreen'),
    configFile,
    environments,
  };
}

export interface Environment {
  /** Name: blue, green, or any configured name. */
  name: string;
  /**
   * How to connect: a postgres:// URL, key=value conninfo or `service=NAME`; the PG*
   * variables fill in what it leaves out when it is used (src/db/conninfo.ts). May hold a
   * password: print only through redactUrl.
   */
  url: string;
  /** Version pinned by config, when detection should be skipped. */
  version?: number;
  /** Where the URL came from, for status output. */
  source: 'flag' | 'config' | 'environment' | 'embedded';
}

/**
 * Resolves an environment name to a connection string: an explicit --from-url/--to-url,
 * then the config file, then NAME_URL (BLUE_URL, GREEN_URL), then the local embedded
 * cluster of that name. The PG* variables alone never name an environment: they describe
 * one database and blue and green are two, so they only fill in what a given connection
 * string leaves out (`BLUE_URL='dbname=app_blue'` with PGHOST and PGUSER set).
 */
export function resolveEnvironment(settings: Settings, name: string, urlFlag?: string, env: Record<string, string | undefined> = process.env): Environment {
  const found = findEnvironment(settings, name, urlFlag, env);
  // A URL the driver would misread is refused here, once, saying where it came from.
  if (found) checkConnectionUrl(found.url, name, found.source);
  if (found) return found;
  const known = Object.keys(settings.environments);
  throw new UsageError(
    `no database for environment "${name}"`,
    ['blue', 'green'].includes(name)
      ? `run \`bluegreen env up\` for local clusters, or set ${name.toUpperCase()}_URL (a URL, or key=value such as 'dbname=app_${name}' with PGHOST/PGUSER filling the rest), or add it to ${CONFIG_FILE}`
      : `add "${name}" to environments in ${CONFIG_FILE} or set ${name.toUpperCase()}_URL${known.length ? ` (configured: ${known.join(', ')})` : ''}`,
  );
}

function findEnvironment(settings: Settings, name: string, urlFlag: string | undefined, env: Record<string, string | undefined>): Environment | undefined {
  if (urlFlag) return { name, url: urlFlag, source: 'flag' };
  const configured = settings.environments[name];
  if (configured) return { name, url: configured.url, version: configured.version, source: 'config' };
  const fromEnv = env[`${name.toUpperCase().replace(/-/g, '_')}_URL`];
  if (fromEnv) return { name, url: fromEnv, source: 'environment' };
  const cluster = readClusterState(settings.stateDir)[name];
  if (cluster) return { name, url: cluster.url, source: 'embedded' };
  return undefined;
}
