/**
 * Rename table: `"groups": {"from": "roles"}`. A target table names its source table; when
 * the names differ the table is renamed. Every column rule still applies, so a renamed
 * table carries its columns by name like any other.
 */
import type { Catalog, TableInfo } from '../../db/catalog-types.ts';
import type { ValidationProblem } from '../../errors.ts';

/** The source table `name`, or a problem at `path` naming the tables there are. */
export function sourceTable(name: string, source: Catalog, sourceVersion: number, file: string, path: string, problems: ValidationProblem[]): TableInfo | undefined {
  const t = source.tables[name];
  if (t === undefined) {
    problems.push({
      file,
      path,
      message: `source table "${name}" does not exist in v${sourceVersion}`,
      hint: `v${sourceVersion} has ${Object.keys(source.tables).join(', ') || 'no tables'}`,
    });
  }
  return t;
}
