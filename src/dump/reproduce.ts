/**
 * A same-version full import must reproduce its dump bit for bit: each table, re-read in
 * the dump's order and format, hashes to the file's sha256. A file whose checksum matches
 * the manifest but that PostgreSQL would not have written (a field quoted differently,
 * `1.50` for a numeric(…,1), a time zone spelled another way, an edited file with its
 * checksum updated) loads, yet differs from its dump. This check runs inside the import's
 * transaction, before its commit, so such a dump is refused (exit 2) with nothing written,
 * instead of committed and reported as a verify difference afterwards.
 */
import type pg from 'pg';
import { ident } from '../db/connect.ts';
import type { Catalog } from '../db/catalog-types.ts';
import { DumpError } from '../errors.ts';
import { hashQuery, keyOrderBy } from './export.ts';
import { dumpOrderBy } from './keyless.ts';
import type { Manifest } from './manifest.ts';

export interface ReproduceResult {
  clean: true;
  method: 'sha256';
  differing: string[];
}

/** Throws DumpError naming every table whose loaded rows do not hash to its dump file. */
export async function assertDumpReproduced(client: pg.Client, manifest: Manifest, target: Catalog, dir: string): Promise<ReproduceResult> {
  const differing: string[] = [];
  for (const t of manifest.tables) {
    // The dump's own order: by key, or by the whole row as text for a keyless table.
    const sql = `select ${t.columns.map(ident).join(', ')} from ${ident(t.name)} order by ${dumpOrderBy(t.key.length ? keyOrderBy(target.tables[t.name]!, t.key) : '', t.key, t.columns)}`;
    const again = await hashQuery(client, sql);
    if (again.sha256 !== t.sha256) differing.push(`${t.name} (${t.file})`);
  }
  if (differing.length) {
    throw new DumpError(
      `dump ${dir} is not in PostgreSQL's own encoding: ${differing.join(', ')} load${differing.length === 1 ? 's' : ''} but PostgreSQL writes ${differing.length === 1 ? 'it' : 'them'} back differently; nothing was imported`,
      'the files were edited or not written by bluegreen export (checksums updated to match): export again',
    );
  }
  return { clean: true, method: 'sha256', differing };
}
