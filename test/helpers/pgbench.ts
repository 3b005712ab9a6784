/**
 * pgbench, PostgreSQL's own benchmark client, as a real application writer: its default
 * TPC-B script updates accounts, tellers and branches and inserts into history in ONE
 * transaction, the shape that deadlocked a freeze locking tables one at a time. CI
 * installs it from Debian's packages (.ci/run); elsewhere a test that needs it skips,
 * saying why, unless CI is set, where its absence fails the run.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The pgbench binary: on PATH, or the newest under /usr/lib/postgresql (Debian's layout). */
export function pgbenchBinary(): string | undefined {
  try {
    execFileSync('pgbench', ['--version'], { stdio: 'ignore' });
    return 'pgbench';
  } catch {
    // Debian's wrapper is missing or finds no cluster: look for a versioned binary.
  }
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const bin = path.join(root, v, 'bin', 'pgbench');
    if (fs.existsSync(bin)) return bin;
  }
  return undefined;
}

export interface PgbenchRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** "number of transactions actually processed": the transactions pgbench saw commit. */
  processed: number;
}

/**
 * Runs pgbench's default script against `url` (a libpq URI) with `args` (-c, -j, -T …),
 * in UTC so the history's `timestamp` column holds UTC, as the mapping declares.
 */
export function startPgbench(bin: string, url: string, args: string[]): { done: Promise<PgbenchRun>; kill: () => void } {
  const child = spawn(bin, ['-n', ...args, url], { env: { ...process.env, PGTZ: 'UTC', PGAPPNAME: 'pgbench' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<PgbenchRun>((resolve) =>
    child.on('close', (code) => {
      const m = /number of transactions actually processed: (\d+)/.exec(stdout);
      resolve({ code, stdout, stderr, processed: m ? Number(m[1]) : -1 });
    }),
  );
  return { done, kill: () => child.kill('SIGTERM') };
}
