/** Runs the real `bluegreen` binary, as cron or a DBA would, and captures what it says. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin', 'bluegreen.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts bluegreen. Output is text unless the test says otherwise (`--log-format json`,
 * or BLUEGREEN_LOG_FORMAT: '' for the not-a-terminal default, which is JSON).
 */
export function startCli(args: string[], env: Record<string, string> = {}, cwd = ROOT): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...process.env, BLUE_URL: '', GREEN_URL: '', BLUEGREEN_LOG_FORMAT: 'text', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export function collect(child: ChildProcess): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

export function runCli(args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<CliResult> {
  return collect(startCli(args, env, cwd));
}
