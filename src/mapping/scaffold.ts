/**
 * `bluegreen new-version`: creates mappings/v(N+1) from vN so a developer edits only what
 * changes: schema.sql copied verbatim, and identity up.json/down.json that list each table
 * with its watermark (tables are carried by name anyway; listing them gives the developer
 * the place to add ops).
 */
import { mkdir, readFile, writeFile, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../errors.ts';
import { listMappingVersions } from './check.ts';
import type { MappingFile, TableMappingSpec } from './types.ts';

/** What scaffoldVersion created. */
export interface ScaffoldResult {
  /** The new version number. */
  version: number;
  /** Its folder. */
  dir: string;
  /** Files written. */
  files: string[];
}

/** Table names and watermark columns declared in a schema.sql (`COMMENT ... IS 'bluegreen:watermark'`). */
export function tablesInSchemaSql(sql: string): { tables: string[]; watermarks: Record<string, string> } {
  const unquote = (s: string) => (s.startsWith('"') ? s.slice(1, -1).replaceAll('""', '"') : s.toLowerCase());
  const name = String.raw`("(?:[^"]|"")+"|[A-Za-z_][\w$]*)`;
  const tables = [...sql.matchAll(new RegExp(String.raw`CREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?${name}`, 'gi'))].map((m) => unquote(m[1]!));
  const watermarks: Record<string, string> = {};
  for (const m of sql.matchAll(new RegExp(String.raw`COMMENT\s+ON\s+COLUMN\s+${name}\.${name}\s+IS\s+'bluegreen:watermark'`, 'gi'))) {
    watermarks[unquote(m[1]!)] = unquote(m[2]!);
  }
  return { tables, watermarks };
}

function identity(from: number, to: number, tables: string[], watermarks: Record<string, string>): MappingFile {
  const entries: Record<string, TableMappingSpec> = {};
  for (const t of tables) entries[t] = watermarks[t] === undefined ? { from: t } : { from: t, watermark: watermarks[t] };
  return { $schema: '../../src/schemas/mapping.schema.json', from, to, tables: entries, loses: [] };
}

/**
 * Creates v(N+1) after the highest version N in `mappingsDir`. `schemaRef` is the `$schema`
 * path written into the mapping files (relative to the new folder). Throws UsageError when
 * there is no version to copy.
 */
export async function scaffoldVersion(mappingsDir: string, schemaRef = '../../src/schemas/mapping.schema.json'): Promise<ScaffoldResult> {
  const versions = await listMappingVersions(mappingsDir);
  const current = versions.at(-1);
  if (current === undefined) throw new UsageError(`no version folder (v1, v2...) in ${mappingsDir}`, 'create v1/schema.sql with your current schema first');
  const next = current + 1;
  const dir = path.join(mappingsDir, `v${next}`);
  const schema = path.join(mappingsDir, `v${current}`, 'schema.sql');
  const sql = await readFile(schema, 'utf8');
  const { tables, watermarks } = tablesInSchemaSql(sql);
  // `recursive: false` so an existing folder (a half-made version) is never overwritten.
  await mkdir(dir, { recursive: false }).catch((e: NodeJS.ErrnoException) => {
    throw e.code === 'EEXIST' ? new UsageError(`${dir} already exists`, 'finish or remove it first') : e;
  });
  const files = [path.join(dir, 'schema.sql'), path.join(dir, 'up.json'), path.join(dir, 'down.json')];
  await copyFile(schema, files[0]!);
  const write = (file: string, m: MappingFile) => writeFile(file, JSON.stringify({ ...m, $schema: schemaRef }, null, 2) + '\n');
  await write(files[1]!, identity(current, next, tables, watermarks));
  await write(files[2]!, identity(next, current, tables, watermarks));
  return { version: next, dir, files };
}
