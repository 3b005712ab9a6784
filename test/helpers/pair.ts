/** A blue/green pair of fresh databases at given versions, and the CLI bound to them. */
import path from 'node:path';
import { freshDatabase } from './pg.ts';
import { runCli, ROOT, type CliResult } from './cli.ts';

export const MAPPINGS = path.join(ROOT, 'mappings');

export interface Pair {
  blue: string;
  green: string;
  /** Runs bluegreen with BLUE_URL/GREEN_URL set to this pair. */
  run(args: string[], env?: Record<string, string>): Promise<CliResult>;
  /** Same, failing the test unless it exits 0. */
  ok(args: string[]): Promise<CliResult>;
}

export async function makePair(blueVersion: number | null = 1, greenVersion: number | null = 1, mappings = MAPPINGS): Promise<Pair> {
  const blue = await freshDatabase('blue');
  const green = await freshDatabase('green');
  const run = (args: string[], env: Record<string, string> = {}) =>
    runCli(['--mappings', mappings, ...args], { BLUE_URL: blue, GREEN_URL: green, ...env });
  const ok = async (args: string[]) => {
    const r = await run(args);
    if (r.code !== 0) throw new Error(`bluegreen ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r;
  };
  if (blueVersion !== null) await ok(['schema', 'apply', '--to', 'blue', '--schema-version', String(blueVersion)]);
  if (greenVersion !== null) await ok(['schema', 'apply', '--to', 'green', '--schema-version', String(greenVersion)]);
  return { blue, green, run, ok };
}

/** Parses the JSON report printed by a command run with --json (the envelope's `report`). */
export function report<T = any>(r: CliResult): T {
  const printed = JSON.parse(r.stdout);
  return (printed && typeof printed === 'object' && 'formatVersion' in printed ? printed.report : printed) as T;
}
