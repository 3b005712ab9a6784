/**
 * Builds Catalogs by hand for unit tests (no database): each column is one string,
 * `name type [pk] [not null] [unique] [default] [identity] [generated]`, e.g.
 * `'id bigint pk identity'`, `'login text not null unique'`, `'balance numeric(20,6)'`.
 */
import type { Catalog, ColumnInfo, ForeignKeyInfo, TableInfo } from '../../../src/db/catalog-types.ts';

const FLAGS = ['pk', 'not null', 'unique', 'default', 'identity', 'generated'] as const;

/** One table from column strings; `extra.unique` adds composite unique keys, `extra.pk` a composite key, `extra.fk` foreign keys. */
export function table(name: string, columns: string[], extra: { pk?: string[]; unique?: string[][]; fk?: ForeignKeyInfo[] } = {}): TableInfo {
  const cols: ColumnInfo[] = [];
  const pk: string[] = [...(extra.pk ?? [])];
  const uniqueKeys: string[][] = [...(extra.unique ?? [])];
  for (const spec of columns) {
    let rest = spec.trim();
    const flags = new Set<string>();
    for (let changed = true; changed; ) {
      changed = false;
      for (const f of FLAGS) {
        if (rest.endsWith(' ' + f)) {
          flags.add(f);
          rest = rest.slice(0, -f.length - 1).trimEnd();
          changed = true;
        }
      }
    }
    const sp = rest.indexOf(' ');
    const col = rest.slice(0, sp);
    const type = rest.slice(sp + 1);
    if (flags.has('pk')) pk.push(col);
    if (flags.has('unique')) uniqueKeys.push([col]);
    cols.push({
      name: col,
      type,
      notNull: flags.has('not null') || flags.has('pk') || pk.includes(col),
      hasDefault: flags.has('default') || flags.has('identity'),
      identity: flags.has('identity'),
      generated: flags.has('generated'),
    });
  }
  return { name, columns: cols, primaryKey: pk, uniqueKeys, foreignKeys: [...(extra.fk ?? [])] };
}

/** A catalog from tables. */
export function catalog(...tables: TableInfo[]): Catalog {
  const out: Catalog = { tables: {} };
  for (const t of [...tables].sort((a, b) => a.name.localeCompare(b.name))) out.tables[t.name] = t;
  return out;
}
