/**
 * Keyless tables in dumps. A table without a primary key is exported only when a mapping
 * of its version marks it `"reload": "full"` or `"append"` (no silent guesses): such
 * a table is dumped whole on every export (incremental ones too: without a key, deletes
 * cannot be named, so the importer compares the table as a multiset) and ordered by all
 * its columns, so the dump's bytes, and the re-read after import, are stable.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ident } from '../db/connect.ts';

/** How the mappings of a version treat its keyless tables. */
export type KeylessKind = 'full' | 'append';

/**
 * Tables of version `version` that a mapping marks for full reload or append: as targets
 * (vN/up.json, v(N+1)/down.json) or as sources (v(N+1)/up.json, vN/down.json). The files
 * are read as plain JSON here; their full validation belongs to the commands that run them.
 */
export async function keylessTables(mappingsDir: string, version: number): Promise<Map<string, KeylessKind>> {
  const out = new Map<string, KeylessKind>();
  const files: [string, 'target' | 'source'][] = [
    [path.join(mappingsDir, `v${version}`, 'up.json'), 'target'],
    [path.join(mappingsDir, `v${version + 1}`, 'down.json'), 'target'],
    [path.join(mappingsDir, `v${version + 1}`, 'up.json'), 'source'],
    [path.join(mappingsDir, `v${version}`, 'down.json'), 'source'],
  ];
  for (const [file, side] of files) {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(file, 'utf8'));
    } catch {
      continue; // absent (first or last version) or invalid: check and sync say so
    }
    const tables = (json as { tables?: unknown }).tables;
    if (!tables || typeof tables !== 'object') continue;
    for (const [name, spec] of Object.entries(tables as Record<string, unknown>)) {
      const s = spec as { from?: unknown; reload?: unknown } | null;
      if (!s || (s.reload !== 'full' && s.reload !== 'append')) continue;
      const table = side === 'target' ? name : typeof s.from === 'string' ? s.from : undefined;
      if (table && !(out.get(table) === 'full')) out.set(table, s.reload);
    }
  }
  return out;
}

/**
 * ORDER BY of a dumped table: its key, or for a keyless table its whole row as text in
 * byte order (every type prints, not every type sorts: json, point), so export and the
 * re-read after import agree.
 */
export function dumpOrderBy(keyOrder: string, key: string[], columns: string[]): string {
  return key.length ? keyOrder : `(row(${columns.map(ident).join(', ')})::text) collate "C"`;
}
