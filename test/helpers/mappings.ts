/** A two-version mappings folder written at test time: each test states only its schemas and mappings. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { tempDir } from './tmp.ts';

export interface TwoVersions {
  /** v1/schema.sql and v2/schema.sql. */
  v1: string;
  v2: string;
  /** v2/up.json and v2/down.json, as objects (written as JSON). */
  up: unknown;
  down: unknown;
}

/** Writes v1 and v2 (schema.sql, up.json, down.json) into a fresh temporary folder; returns it. */
export async function twoVersions(prefix: string, m: TwoVersions): Promise<string> {
  const dir = await tempDir(prefix);
  await mkdir(path.join(dir, 'v1'));
  await mkdir(path.join(dir, 'v2'));
  await writeFile(path.join(dir, 'v1', 'schema.sql'), m.v1);
  await writeFile(path.join(dir, 'v2', 'schema.sql'), m.v2);
  await writeFile(path.join(dir, 'v2', 'up.json'), JSON.stringify(m.up, null, 2));
  await writeFile(path.join(dir, 'v2', 'down.json'), JSON.stringify(m.down, null, 2));
  return dir;
}
