/**
 * Real databases for integration tests: each call makes a fresh database owned by a
 * NON-superuser role, so every test also proves bluegreen needs no superuser (least
 * privilege). Databases are dropped when the test file ends.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, inject } from 'vitest';

export const OWNER_ROLE = 'bluegreen_owner';
const OWNER_PASSWORD = 'owner-secret-pw';

export function adminUrl(): string {
  return inject('adminUrl');
}

export async function adminQuery(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: adminUrl() });
  await c.connect();
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

let roleReady: Promise<void> | undefined;
function ensureOwnerRole(): Promise<void> {
  roleReady ??= (async () => {
    try {
      await adminQuery(`create role ${OWNER_ROLE} login nosuperuser nocreaterole password '${OWNER_PASSWORD}'`);
    } catch (err) {
      // Another test file (or an earlier run on a shared server) made it already.
      // (Two files creating it at once lose the race with a unique violation instead.)
      if (!/already exists|duplicate key value/.test((err as Error).message)) throw err;
    }
  })();
  return roleReady;
}

const created: string[] = [];
afterAll(async () => {
  for (const db of created.splice(0)) {
    await adminQuery(`drop database if exists "${db}" with (force)`).catch(() => {});
  }
});

/** URL of `db` for `role`, on the test server. */
export function urlFor(db: string, role = OWNER_ROLE, password = OWNER_PASSWORD): string {
  const u = new URL(adminUrl());
  u.username = role;
  u.password = password;
  u.pathname = '/' + db;
  return u.toString();
}

/** A fresh, empty database owned by the non-superuser role; returns its URL. */
export async function freshDatabase(label = 'db'): Promise<string> {
  await ensureOwnerRole();
  const name = `bg_${label}_${randomBytes(5).toString('hex')}`;
  await adminQuery(`create database "${name}" owner ${OWNER_ROLE}`);
  created.push(name);
  return urlFor(name);
}

/** Runs one query on `url` and returns its rows. */
export async function query<T extends pg.QueryResultRow = Record<string, unknown>>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** Whether the server behind `url` takes prepared (two-phase) transactions: max_prepared_transactions > 0. */
export async function twoPhaseCommit(url: string): Promise<boolean> {
  return (await query<{ max: number }>(url, `select current_setting('max_prepared_transactions')::int as max`))[0]!.max > 0;
}

/**
 * Runs `sql` as an application in `zone` would: a session of its own (application_name
 * `app`) whose TimeZone is the writers', so now() and local-time literals are theirs.
 */
export async function writeInZone(url: string, zone: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: url, application_name: 'app' });
  await c.connect();
  try {
    await c.query(`set timezone = '${zone}'`);
    await c.query(sql);
  } finally {
    await c.end();
  }
}
