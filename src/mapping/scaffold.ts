/**
 * `bluegreen new-version`: creates mappings/v(N+1) from vN so a developer edits only what
 * changes: schema.sql copied verbatim, and identity up.json/down.json that list each table
 * with its watermark (tables are carried by name anyway; listing them gives the developer
 * the place to add ops).
 *
 * `new-version --from ENV` instead starts from a database the team already migrated with
 * its own tool: schema.sql is written from that database's catalog, and up.json/down.json
 * are drafted from the differences with vN, every open decision listed in `_todo` (which
 * `check` reports until it is emptied).
 */
import { mkdir, readFile, writeFile, copyFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { catalogOfDdl, diffCatalogs, loadVersionCatalog, readCatalog } from '../db/catalog.ts';
import type { Catalog, TableInfo } from '../db/catalog-types.ts';
import { schemaDdl } from '../db/schema-ddl.ts';
import { RuntimeFailure, UsageError } from '../errors.ts';
import { listMappingVersions } from './check.ts';
import { isMappedTable, type ColumnOpSpec, type LossSpec, type MappingFile, type NewTableSpec, type TableMappingSpec } from './types.ts';
import { schemaPath } from '../validate.ts';

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

/**
 * `$schema` of drafted mapping files: the copy of mapping.schema.json that drafting writes at
 * the root of the mappings folder, so editors find it wherever that folder lives (a team's
 * own repository, a global install of bluegreen), not a path into bluegreen's sources.
 */
export const MAPPING_SCHEMA_REF = '../mapping.schema.json';

/**
 * Writes (or refreshes) `<mappingsDir>/mapping.schema.json` from the running bluegreen's own
 * schema: the copy editors read through `$schema`. The CLI itself always validates against
 * its own file, so a copy older than the tool only makes an editor's hints stale.
 */
export async function copyMappingSchema(mappingsDir: string): Promise<string> {
  const file = path.join(mappingsDir, 'mapping.schema.json');
  await copyFile(schemaPath('mapping.schema.json'), file);
  return file;
}

type TableKind = Pick<TableMappingSpec, 'key' | 'reload'>;

function identity(from: number, to: number, tables: string[], watermarks: Record<string, string>, kinds: Record<string, TableKind>): MappingFile {
  const entries: Record<string, TableMappingSpec> = {};
  for (const t of tables) entries[t] = { from: t, ...(watermarks[t] === undefined ? {} : { watermark: watermarks[t] }), ...kinds[t] };
  return { $schema: MAPPING_SCHEMA_REF, from, to, tables: entries, loses: [] };
}

/**
 * The table kinds (`key`, `reload`) vN's up.json gives its target tables: a keyless table
 * stays keyless in a copy of the schema, and the decision how to sync it was made already.
 */
async function previousTableKinds(mappingsDir: string, version: number): Promise<Record<string, TableKind>> {
  let spec: MappingFile;
  try {
    spec = JSON.parse(await readFile(path.join(mappingsDir, `v${version}`, 'up.json'), 'utf8')) as MappingFile;
  } catch {
    return {}; // v1, or an unreadable file `check` will name anyway
  }
  const kinds: Record<string, TableKind> = {};
  for (const [name, t] of Object.entries(spec.tables ?? {})) {
    // A new or derived table's kind is its own: the next version carries it as a table.
    if (!isMappedTable(t)) continue;
    const kind: TableKind = {};
    if (t.key !== undefined) kind.key = t.key;
    if (t.reload !== undefined) kind.reload = t.reload;
    if (Object.keys(kind).length > 0) kinds[name] = kind;
  }
  return kinds;
}

/**
 * Creates v(N+1) after the highest version N in `mappingsDir`. `schemaRef` is the `$schema`
 * path written into the mapping files (relative to the new folder). Throws UsageError when
 * there is no version to copy.
 */
export async function scaffoldVersion(mappingsDir: string, schemaRef = MAPPING_SCHEMA_REF): Promise<ScaffoldResult> {
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
  await copyMappingSchema(mappingsDir);
  const write = (file: string, m: MappingFile) => writeFile(file, JSON.stringify({ ...m, $schema: schemaRef }, null, 2) + '\n');
  const kinds = await previousTableKinds(mappingsDir, current);
  await write(files[1]!, identity(current, next, tables, watermarks, kinds));
  await write(files[2]!, identity(next, current, tables, watermarks, kinds));
  return { version: next, dir, files };
}

// ---------------------------------------------------------------------------------------
// `new-version --from ENV`: the next version from a database the team already migrated.

/** One change between two catalogs, as `new-version --from` names it. */
export interface SchemaChange {
  /** What happened. */
  kind: 'table added' | 'table dropped' | 'table renamed?' | 'column added' | 'column dropped' | 'column retyped' | 'column renamed?';
  /** Table (in the new version; the old name for a dropped table). */
  table: string;
  /** Column, for column changes. */
  column?: string;
  /** Readable detail: `bigint -> numeric(12,2)`, `was total_cents`. */
  detail: string;
}

/** A drafted mapping and the decisions it leaves open. */
export interface DraftMapping {
  /** The file contents; `_todo` lists what a developer must still decide. */
  mapping: MappingFile;
  /** Every change, in both drafts' terms. */
  changes: SchemaChange[];
}

const TIMESTAMP = /^timestamp(\(\d\))? without time zone$/;
const TIMESTAMPTZ = /^timestamp(\(\d\))? with time zone$/;
const INTEGER = /^(smallint|integer|bigint)$/;
const NUMERIC = /^numeric(\(\d+,\d+\))?$/;

/** Names that probably mean the same thing: one contains the other, or they share a stem (`total_cents`, `total`). */
function related(a: string, b: string): boolean {
  const stem = (s: string) => s.replace(/_(cents|id|at|on|ts|amount|value|name)$/, '').replace(/^(is|has)_/, '');
  return a.includes(b) || b.includes(a) || stem(a) === stem(b);
}

/** Pairs a dropped and an added column (or table) that probably are one renamed: same type first, then related names. */
function guessRenames<T>(dropped: T[], added: T[], sameType: (d: T, a: T) => boolean, name: (x: T) => string): [T, T][] {
  const pairs: [T, T][] = [];
  const free = new Set(added);
  for (const d of dropped) {
    const candidates = [...free].filter((a) => sameType(d, a));
    const byName = [...free].filter((a) => related(name(d), name(a)));
    // A unique same-type candidate, or a unique related name among the same-type ones or overall.
    const pick =
      candidates.length === 1 && dropped.filter((x) => sameType(x, candidates[0]!)).length === 1
        ? candidates[0]
        : candidates.filter((a) => related(name(d), name(a))).length === 1
          ? candidates.find((a) => related(name(d), name(a)))
          : byName.length === 1
            ? byName[0]
            : undefined;
    if (pick !== undefined) {
      pairs.push([d, pick]);
      free.delete(pick);
    }
  }
  return pairs;
}

/** The op drafted for a column whose type changes (`from` a column of type `a` into `to` of type `b`). */
function retypeOp(from: string, to: string, a: string, b: string, todo: string[], where: string): ColumnOpSpec {
  const target = from === to ? {} : { to };
  if (TIMESTAMP.test(a) && TIMESTAMPTZ.test(b)) {
    todo.push(`${where}: ${a} -> ${b}: in which zone were the local times written? Set "zone" on the cast (drafted as UTC)`);
    return { op: 'cast', from, ...target, zone: 'UTC' };
  }
  if (TIMESTAMPTZ.test(a) && TIMESTAMP.test(b)) {
    todo.push(`${where}: ${a} -> ${b}: local time of which zone? Set "zone" on the cast (drafted as UTC)`);
    return { op: 'cast', from, ...target, zone: 'UTC' };
  }
  if (INTEGER.test(a) && NUMERIC.test(b) && /cents/.test(from) && !/cents/.test(to)) {
    todo.push(`${where}: ${a} -> ${b}: GUESS integer cents become units ("scale" by 0.01); confirm the factor`);
    return { op: 'scale', from, to, factor: '0.01' };
  }
  if (NUMERIC.test(a) && INTEGER.test(b) && /cents/.test(to) && !/cents/.test(from)) {
    todo.push(`${where}: ${a} -> ${b}: GUESS units become integer cents ("scale" by 100); confirm the factor`);
    return { op: 'scale', from, to, factor: '100' };
  }
  return { op: 'cast', from, ...target };
}

/**
 * What a table without a primary key needs: a unique non-null key when it has one, else
 * (a guess, listed in `todo`) `append` when the source declares a watermark, `full` otherwise.
 */
function keylessSettings(target: TableInfo, source: TableInfo, todo: string[]): Pick<TableMappingSpec, 'key' | 'reload'> {
  if (target.primaryKey.length > 0) return {};
  const notNull = (c: string) => target.columns.find((x) => x.name === c)?.notNull === true;
  const key = target.uniqueKeys.find((k) => k.every(notNull));
  if (key) return { key };
  if (source.watermark !== undefined) {
    todo.push(`table ${target.name} has no key: GUESS "reload": "append" (rows only ever inserted, read by the watermark ${source.watermark}); use "full" if rows change or vanish`);
    return { reload: 'append' } as Pick<TableMappingSpec, 'reload'>;
  }
  todo.push(`table ${target.name} has no key and no watermark: drafted "reload": "full" (copied whole on every run); name a unique non-null "key" if it has one`);
  return { reload: 'full' };
}

/**
 * Drafts the mapping `from` -> `to` between two catalogs: tables and columns carried by
 * name are left implicit; every change gets an op where one follows from the catalogs
 * (a cast for a retyped column, a rename for a likely renamed one, a drop with a declared
 * loss for a dropped one) and a line in `_todo` where a developer must decide (guesses,
 * zones, values for new columns, what a loss means).
 */
export function draftMapping(from: Catalog, to: Catalog, fromVersion: number, toVersion: number, kinds: Record<string, TableKind> = {}): DraftMapping {
  const todo: string[] = [];
  const changes: SchemaChange[] = [];
  const tables: Record<string, TableMappingSpec | NewTableSpec> = {};
  const loses: LossSpec[] = [];
  const cols = (t: TableInfo) => t.columns.filter((c) => !c.generated);
  const shape = (t: TableInfo) => cols(t).map((c) => `${c.name} ${c.type}`).sort().join(',');

  const droppedTables = Object.keys(from.tables).filter((t) => !to.tables[t]);
  const addedTables = Object.keys(to.tables).filter((t) => !from.tables[t]);
  const tableRenames = guessRenames(droppedTables, addedTables, (d, a) => shape(from.tables[d]!) === shape(to.tables[a]!), (x) => x);
  const sourceOf = new Map<string, string>(tableRenames.map(([d, a]) => [a, d]));

  for (const name of Object.keys(to.tables)) {
    const target = to.tables[name]!;
    const sourceName = from.tables[name] ? name : sourceOf.get(name);
    if (sourceName === undefined) {
      changes.push({ kind: 'table added', table: name, detail: `new in v${toVersion}` });
      // Drafted as starting empty, the one reading that needs no source; the line asks.
      tables[name] = { new: 'empty' };
      todo.push(
        `table ${name} is new in v${toVersion}: does it start empty (as drafted, {"new": "empty"}: v${toVersion}'s application fills it), is it derived from v${fromVersion} tables by a query ({"query": "select ... from <v${fromVersion} tables>", "key": [${target.primaryKey.map((k) => JSON.stringify(k)).join(', ')}]}), or are its rows those of a v${fromVersion} table ({"from": "<table>"})?`,
      );
      continue;
    }
    const source = from.tables[sourceName]!;
    const ops: ColumnOpSpec[] = [];
    if (sourceName !== name) {
      changes.push({ kind: 'table renamed?', table: name, detail: `was ${sourceName} (same columns)` });
      todo.push(`table ${name}: GUESS renamed from ${sourceName} (same columns and types); confirm, or map it otherwise`);
    }
    const added = cols(target).filter((c) => !source.columns.some((s) => s.name === c.name));
    const dropped = cols(source).filter((c) => !target.columns.some((t) => t.name === c.name));
    for (const c of cols(target)) {
      const s = source.columns.find((x) => x.name === c.name);
      if (s && s.type !== c.type) {
        changes.push({ kind: 'column retyped', table: name, column: c.name, detail: `${s.type} -> ${c.type}` });
        ops.push(retypeOp(c.name, c.name, s.type, c.type, todo, `${name}.${c.name}`));
      }
    }
    const renames = guessRenames(dropped, added, (d, a) => d.type === a.type, (x) => x.name);
    for (const [d, a] of renames) {
      changes.push({ kind: 'column renamed?', table: name, column: a.name, detail: `was ${d.name}${d.type === a.type ? '' : ` (${d.type} -> ${a.type})`}` });
      if (d.type === a.type) {
        todo.push(`${name}.${a.name}: GUESS renamed from ${sourceName}.${d.name} (one column dropped, one added, same type); confirm, or replace the rename`);
        ops.push({ op: 'rename', from: d.name, to: a.name });
      } else {
        todo.push(`${name}.${a.name}: GUESS made from ${sourceName}.${d.name} (related names, ${d.type} -> ${a.type}); confirm the op`);
        ops.push(retypeOp(d.name, a.name, d.type, a.type, [], `${name}.${a.name}`));
      }
    }
    for (const a of added.filter((x) => !renames.some(([, r]) => r === x))) {
      changes.push({ kind: 'column added', table: name, column: a.name, detail: `${a.type}${a.notNull ? ' NOT NULL' : ''}${a.hasDefault ? ' with a default' : ''}` });
      todo.push(`${name}.${a.name} (${a.type}) is new: give it a value (constant, default, copy, sql or function op)`);
    }
    for (const d of dropped.filter((x) => !renames.some(([r]) => r === x))) {
      changes.push({ kind: 'column dropped', table: name, column: d.name, detail: `${d.type}, not in v${toVersion}` });
      ops.push({ op: 'drop', column: d.name });
      loses.push({ table: sourceName, column: d.name, why: `TODO: v${toVersion} has no ${d.name}; say what is lost for the people running this direction` });
      todo.push(`${sourceName}.${d.name} is not in v${toVersion}: confirm it is dropped and say why in "loses" (or carry it into a new column)`);
    }
    const known = kinds[name] ?? kinds[sourceName];
    const spec: TableMappingSpec = { from: sourceName, ...(known !== undefined && target.primaryKey.length === 0 ? known : keylessSettings(target, source, todo)) };
    if (ops.length > 0) spec.ops = ops;
    tables[name] = spec;
  }
  for (const d of droppedTables.filter((t) => !tableRenames.some(([r]) => r === t))) {
    changes.push({ kind: 'table dropped', table: d, detail: `not in v${toVersion}` });
    loses.push({ table: d, why: `TODO: v${toVersion} has no table ${d}; say what is lost` });
    todo.push(`table ${d} is not in v${toVersion}: confirm its rows are lost (see "loses"), or map it into a v${toVersion} table`);
  }
  const mapping: MappingFile = {
    description: `v${fromVersion} -> v${toVersion}, drafted by bluegreen new-version --from: ${changes.length === 0 ? 'no change found' : changes.map((c) => `${c.table}${c.column ? `.${c.column}` : ''} ${c.kind} (${c.detail})`).join('; ')}.`,
    from: fromVersion,
    to: toVersion,
    tables,
    loses,
  };
  if (todo.length > 0) mapping._todo = todo;
  return { mapping, changes };
}

/** What {@link scaffoldFromDatabase} wrote and found. */
export interface ScaffoldFromDatabaseResult extends ScaffoldResult {
  /** Tables and columns that changed from the previous version. */
  changes: SchemaChange[];
  /** Decisions left open in up.json (`_todo`). */
  upTodo: string[];
  /** Decisions left open in down.json (`_todo`). */
  downTodo: string[];
  /** Objects of the database not written into schema.sql. */
  skipped: string[];
  /** Differences between the database and the written schema.sql as version detection sees them (none expected). */
  drift: string[];
}

/**
 * Creates v(N+1) from the live schema `client` is connected to: schema.sql written from
 * its catalog, up.json and down.json drafted from the differences with vN. The new
 * schema.sql is applied in a rolled-back scratch schema to learn its catalog, so a file
 * that does not apply is refused before anything is written, and `drift` reports any
 * difference version detection would find (none when the file is faithful).
 */
export async function scaffoldFromDatabase(client: pg.Client, mappingsDir: string, schemaRef = MAPPING_SCHEMA_REF, sourceLabel = 'a database'): Promise<ScaffoldFromDatabaseResult> {
  const versions = await listMappingVersions(mappingsDir);
  const current = versions.at(-1);
  if (current === undefined) throw new UsageError(`no version folder (v1, v2...) in ${mappingsDir}`, 'create v1/schema.sql with your current schema first');
  const next = current + 1;
  const dir = path.join(mappingsDir, `v${next}`);
  const ddl = await schemaDdl(client);
  if (ddl.tables.length === 0) throw new UsageError(`${sourceLabel} has no table in its current schema`, 'point --from at the database your migration tool brought to the new version');
  const sql = `-- Version ${next}, written by \`bluegreen new-version --from\` from the catalog of ${sourceLabel}.\n-- Unqualified names: bluegreen applies this file in a scratch schema to learn the version.\n\n${ddl.sql}`;
  const previous = await loadVersionCatalog(client, mappingsDir, current);
  const learnt = await catalogOfSql(client, sql, path.join(dir, 'schema.sql'));
  const drift = diffCatalogs(await readCatalog(client), learnt);
  const kinds = await previousTableKinds(mappingsDir, current);
  const up = draftMapping(previous, learnt, current, next, kinds);
  const down = draftMapping(learnt, previous, next, current, kinds);
  await mkdir(dir, { recursive: false }).catch((e: NodeJS.ErrnoException) => {
    throw e.code === 'EEXIST' ? new UsageError(`${dir} already exists`, 'finish or remove it first') : e;
  });
  const files = [path.join(dir, 'schema.sql'), path.join(dir, 'up.json'), path.join(dir, 'down.json')];
  await writeFile(files[0]!, sql);
  await copyMappingSchema(mappingsDir);
  const write = (file: string, m: MappingFile) => writeFile(file, JSON.stringify({ $schema: schemaRef, ...m }, null, 2) + '\n');
  await write(files[1]!, up.mapping);
  await write(files[2]!, down.mapping);
  return { version: next, dir, files, changes: up.changes, upTodo: up.mapping._todo ?? [], downTodo: down.mapping._todo ?? [], skipped: ddl.skipped, drift };
}

/** The catalog `sql` produces, learnt in a scratch schema in a rolled-back transaction. */
function catalogOfSql(client: pg.Client, sql: string, file: string): Promise<Catalog> {
  return catalogOfDdl(client, sql, 'bluegreen_scaffold', (err) =>
    new RuntimeFailure(`the schema written from the database does not apply (${file}): ${err.message}`, 'report this as a bug; the database holds something new-version --from cannot write yet'),
  );
}
