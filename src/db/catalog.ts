/**
 * Reads a schema's catalog and detects which mappings/vN a database is at. A version's
 * catalog is learnt by running its schema.sql inside a scratch schema in a transaction
 * that is always rolled back: PostgreSQL itself parses the DDL, so types print exactly as
 * they do in a live database (`format_type`), and nothing is left behind.
 */
import { readFile, readdir } from 'node:fs/promises';
import { assertNoTransactionControl } from './schema-guard.ts';
import path from 'node:path';
import type pg from 'pg';
import type { Catalog, ColumnInfo, TableInfo, TypeInfo } from './catalog-types.ts';
import { ident } from './connect.ts';
import { InvalidInputError, RuntimeFailure, VersionMismatchError } from '../errors.ts';
import { cachedCatalog } from './catalog-cache.ts';

export type { Catalog, TableInfo, ColumnInfo } from './catalog-types.ts';

/** Schema holding bluegreen's own state in a target database; never part of a version. */
export const STATE_SCHEMA = 'bluegreen';

/**
 * Reads every ordinary table of `schema` (default: the session's current schema), with
 * what a schema change can change and version detection therefore compares: column
 * defaults, identity kinds, generated expressions, CHECK constraints, and the schema's
 * enums (labels in order) and domains. Expressions are printed by the server
 * (pg_get_expr, pg_get_constraintdef), so a version's scratch schema and a live database
 * on the same server print them alike; the schema's own qualifier is removed, since the
 * scratch schema has another name than the live one.
 */
export async function readCatalog(client: pg.Client, schema?: string): Promise<Catalog> {
  const nsp = schema ?? (await client.query<{ s: string }>('select current_schema() as s')).rows[0]!.s;
  const q = (await client.query<{ q: string }>('select quote_ident($1) as q', [nsp])).rows[0]!.q;
  const local = unqualifier(nsp, q);
  const cols = await client.query<{
    table: string;
    name: string;
    type: string;
    notnull: boolean;
    hasdef: boolean;
    identity: string;
    generated: string;
    expr: string | null;
  }>(
    `select c.relname as table, a.attname as name, format_type(a.atttypid, a.atttypmod) as type,
            a.attnotnull as notnull, (a.atthasdef or a.attidentity <> '') as hasdef,
            a.attidentity::text as identity, a.attgenerated::text as generated,
            -- A default cannot refer to a column, so it deparses without its table (relid 0),
            -- which takes no lock: with the table, pg_get_expr opens it (AccessShareLock) and
            -- waits behind any session holding it exclusively. Generated columns need it.
            case when a.attgenerated <> '' then pg_get_expr(d.adbin, d.adrelid) else pg_get_expr(d.adbin, 0) end as expr
       from pg_class c
       join pg_namespace n on n.oid = c.relnamespace
       join pg_attribute a on a.attrelid = c.oid
       left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
      where n.nspname = $1 and c.relkind in ('r', 'p') and not c.relispartition
        and a.attnum > 0 and not a.attisdropped
      order by c.relname, a.attnum`,
    [nsp],
  );
  const tables: Record<string, TableInfo> = {};
  for (const r of cols.rows) {
    const t = (tables[r.table] ??= { name: r.table, columns: [], primaryKey: [], uniqueKeys: [], foreignKeys: [], checks: [] });
    const expr = r.expr === null ? null : local(r.expr);
    const generated = r.generated !== '';
    t.columns.push({
      name: r.name,
      type: r.type,
      notNull: r.notnull,
      hasDefault: r.hasdef,
      identity: r.identity !== '',
      generated,
      default: generated ? null : normalDefault(expr),
      ...(r.identity === 'a' ? { identityKind: 'always' as const } : r.identity === 'd' ? { identityKind: 'by default' as const } : {}),
      ...(generated ? { generatedAs: `(${expr ?? ''}) ${r.generated === 'v' ? 'virtual' : 'stored'}` } : {}),
    });
  }
  // CHECK constraints only: PostgreSQL 18 lists NOT NULL in pg_constraint too ('n'),
  // which nullability already covers, and 15 does not.
  // pg_get_constraintdef opens each table (AccessShareLock): a session holding one
  // exclusively (DDL, LOCK TABLE) makes this wait up to the lock timeout; say who.
  const checks = await client
    .query<{ table: string; def: string }>(
      `select c.relname as table, pg_get_constraintdef(k.oid) as def
         from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and k.contype = 'c' and c.relkind in ('r', 'p') and not c.relispartition`,
      [nsp],
    )
    .catch(async (err: { code?: string }) => {
      if (err.code !== '55P03') throw err;
      const held = await client
        .query<{ who: string }>(
          `select string_agg(format('%s (pid %s, %s)', l.relation::regclass, l.pid, coalesce(nullif(a.application_name, ''), a.usename::text)), ', ') as who
             from pg_locks l left join pg_stat_activity a on a.pid = l.pid
            where l.granted and l.mode = 'AccessExclusiveLock' and l.relation in (select oid from pg_class where relnamespace = $1::regnamespace)`,
          [q],
        )
        .then((r) => r.rows[0]?.who, () => undefined);
      throw new RuntimeFailure(
        `cannot read the schema to detect its version: ${held ? `tables held exclusively by another session: ${held}` : 'a table is held exclusively by another session'}`,
        'wait for that session (DDL, LOCK TABLE) to finish, or end it, then retry',
      );
    });
  for (const k of checks.rows) tables[k.table]?.checks!.push(local(k.def));
  for (const t of Object.values(tables)) t.checks!.sort();
  const types: Record<string, TypeInfo> = {};
  const userTypes = await client.query<{ name: string; kind: string; labels: string[] | null; base: string | null; notnull: boolean; def: string | null; checks: string[] }>(
    `select format_type(t.oid, null) as name, t.typtype::text as kind,
            case when t.typtype = 'e' then array(select e.enumlabel::text from pg_enum e where e.enumtypid = t.oid order by e.enumsortorder) end as labels,
            case when t.typtype = 'd' then format_type(t.typbasetype, t.typtypmod) end as base,
            t.typnotnull as notnull, pg_get_expr(t.typdefaultbin, 0) as def,
            array(select pg_get_constraintdef(k.oid) from pg_constraint k where k.contypid = t.oid and k.contype = 'c') as checks
       from pg_type t join pg_namespace n on n.oid = t.typnamespace
      where n.nspname = $1 and t.typtype in ('e', 'd')
        and not exists (select 1 from pg_depend x where x.classid = 'pg_type'::regclass and x.objid = t.oid and x.deptype = 'e')`,
    [nsp],
  );
  for (const t of userTypes.rows) {
    types[local(t.name)] =
      t.kind === 'e'
        ? { kind: 'enum', labels: t.labels ?? [] }
        : { kind: 'domain', base: local(t.base ?? ''), notNull: t.notnull, default: t.def === null ? null : local(t.def), checks: t.checks.map(local).sort() };
  }
  // Keys: unique indexes over plain columns (no expressions, no predicates).
  const keys = await client.query<{ table: string; primary: boolean; cols: string[] }>(
    `select c.relname as table, i.indisprimary as primary,
            array(select a.attname::text from unnest(i.indkey) with ordinality k(attnum, ord)
                  join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
                  order by k.ord) as cols
       from pg_index i
       join pg_class c on c.oid = i.indrelid
       join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and i.indisunique and i.indpred is null and i.indexprs is null
      order by c.relname, i.indisprimary desc, i.indexrelid::regclass::text`,
    [nsp],
  );
  for (const k of keys.rows) {
    const t = tables[k.table];
    if (!t) continue;
    if (k.primary) t.primaryKey = k.cols;
    else t.uniqueKeys.push(k.cols);
  }
  // Watermarks are declared in schema.sql as a column comment, so the version's DDL is
  // the one place that says which column grows on every write.
  const marks = await client.query<{ table: string; column: string; comment: string }>(
    `select c.relname as table, a.attname as column, col_description(c.oid, a.attnum) as comment
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      where n.nspname = $1 and col_description(c.oid, a.attnum) ~ 'bluegreen:watermark'`,
    [nsp],
  );
  for (const m of marks.rows) {
    const t = tables[m.table];
    if (!t) continue;
    t.watermark = m.column;
    const rule = watermarkRuleOf(m.comment);
    if (rule) t.watermarkRule = rule;
  }
  const fks = await client.query<{ table: string; cols: string[]; ref: string; refcols: string[] }>(
    `select c.relname as table, r.relname as ref,
            array(select a.attname::text from unnest(k.conkey) with ordinality x(attnum, ord)
                  join pg_attribute a on a.attrelid = k.conrelid and a.attnum = x.attnum order by x.ord) as cols,
            array(select a.attname::text from unnest(k.confkey) with ordinality x(attnum, ord)
                  join pg_attribute a on a.attrelid = k.confrelid and a.attnum = x.attnum order by x.ord) as refcols
       from pg_constraint k
       join pg_class c on c.oid = k.conrelid
       join pg_class r on r.oid = k.confrelid
       join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and k.contype = 'f'
      order by c.relname, k.conname`,
    [nsp],
  );
  for (const f of fks.rows) {
    tables[f.table]?.foreignKeys.push({ columns: f.cols, refTable: f.ref, refColumns: f.refcols });
  }
  const parts = await client.query<{ table: string; def: string; cols: string[] }>(
    `select c.relname as table, pg_get_partkeydef(c.oid) as def,
            array(select a.attname::text from unnest(p.partattrs::int2[]) with ordinality k(attnum, ord)
                  join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum order by k.ord) as cols
       from pg_partitioned_table p join pg_class c on c.oid = p.partrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and not c.relispartition`,
    [nsp],
  );
  for (const p of parts.rows) {
    const t = tables[p.table];
    if (!t) continue;
    t.partitionBy = local(p.def);
    t.partitionColumns = p.cols;
  }
  return { tables, types };
}

/** Removes the qualifier `nsp.` (plain or quoted as `q`) from text the server printed. */
function unqualifier(nsp: string, q: string): (text: string) => string {
  const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`(?<![\\w$"])(?:${[...new Set([q, nsp, `"${nsp}"`])].map(esc).join('|')})\\.(?=[\\w"])`, 'g');
  return (text) => text.replace(re, '');
}

/** A default for comparison: any sequence's nextval is the same default. */
function normalDefault(expr: string | null): string | null {
  if (expr === null) return null;
  return /^nextval\('(?:[^']|'')+'::regclass\)$/.test(expr) ? 'nextval(sequence)' : expr;
}

/**
 * Zone and skew from a watermark comment: `bluegreen:watermark zone=Europe/Berlin skew=30s`
 * (skew in PostgreSQL interval syntax without spaces: `30s`, `2min`, `1h`). Unknown words
 * are left for PostgreSQL or the planner to refuse with the column named.
 */
export function watermarkRuleOf(comment: string): { zone?: string; skew?: string } | undefined {
  const rest = /bluegreen:watermark\b(.*)/s.exec(comment)?.[1] ?? '';
  const rule: { zone?: string; skew?: string } = {};
  for (const m of rest.matchAll(/\b(zone|skew)=(\S+)/g)) rule[m[1] as 'zone' | 'skew'] = m[2]!;
  return rule.zone !== undefined || rule.skew !== undefined ? rule : undefined;
}

/**
 * PostgreSQL's row estimate of `relation` (an identifier as SQL text, quoted where it
 * needs to be): pg_class.reltuples, 0 for a relation never analyzed or not found. Costs
 * one catalog read, never a scan.
 */
export async function estimatedRows(client: pg.Client, relation: string): Promise<number> {
  const r = await client.query<{ n: number }>(`select greatest(reltuples, 0)::float8 as n from pg_class where oid = to_regclass($1)`, [relation]);
  return r.rows[0]?.n ?? 0;
}

/** Versions present in a mappings folder (`v1`, `v2`, …), ascending. */
export async function listVersions(mappingsDir: string): Promise<number[]> {
  let entries: string[];
  try {
    entries = await readdir(mappingsDir);
  } catch {
    throw new InvalidInputError(
      `mappings folder ${mappingsDir} does not exist`,
      'pass --mappings DIR pointing at your versions (v1/schema.sql, v2/…), or run from the project folder',
    );
  }
  const versions = entries
    .map((e) => /^v(\d+)$/.exec(e)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  if (versions.length === 0) {
    throw new InvalidInputError(`no versions in ${mappingsDir}`, 'a version is a folder vN holding schema.sql');
  }
  return versions;
}

/** Refuses (exit 2) a version that is not a folder of `mappingsDir`, naming those that are. */
export async function assertVersionExists(mappingsDir: string, version: number, flag = '--schema-version'): Promise<void> {
  const versions = await listVersions(mappingsDir);
  if (!Number.isInteger(version) || !versions.includes(version)) {
    throw new InvalidInputError(
      `${flag} ${version}: there is no version ${version} in ${mappingsDir}`,
      `versions there: ${versions.map((v) => `v${v}`).join(', ')}; add one with bluegreen new-version`,
    );
  }
}

export function schemaFile(mappingsDir: string, version: number): string {
  return path.join(mappingsDir, `v${version}`, 'schema.sql');
}

export async function readSchemaSql(mappingsDir: string, version: number): Promise<string> {
  const file = schemaFile(mappingsDir, version);
  let sql: string;
  try {
    sql = await readFile(file, 'utf8');
  } catch {
    throw new InvalidInputError(`version ${version} has no schema file ${file}`, `create ${file} with the DDL of version ${version}`);
  }
  // Every path that runs schema.sql reads it here: refuse BEGIN/COMMIT before any runs it.
  assertNoTransactionControl(sql, file);
  return sql;
}

/**
 * The catalog a version's schema.sql produces, learnt on `client`'s server in a scratch
 * schema inside a transaction that is rolled back. Needs only CREATE on the database.
 */
export async function loadVersionCatalog(client: pg.Client, mappingsDir: string, version: number): Promise<Catalog> {
  const sql = await readSchemaSql(mappingsDir, version);
  return catalogOfDdl(client, sql, 'bluegreen_probe', (err) =>
    new InvalidInputError(
      `${schemaFile(mappingsDir, version)} does not apply: ${err.message}`,
      'fix the DDL; it must use unqualified names and run in an empty schema',
    ),
  );
}

/**
 * The catalog that DDL `sql` produces, learnt in a scratch schema (`prefix` + pid) inside
 * a transaction that is rolled back, so nothing stays. `failed` turns the server's refusal
 * of the DDL into the caller's error.
 */
export async function catalogOfDdl(client: pg.Client, sql: string, prefix: string, failed: (err: Error) => Error): Promise<Catalog> {
  const scratch = `${prefix}_${process.pid}_${Date.now() % 1e6}`;
  await client.query('begin');
  try {
    await client.query(`create schema ${ident(scratch)}`);
    await client.query(`set local search_path = ${ident(scratch)}`);
    try {
      await client.query(sql);
    } catch (err) {
      throw failed(err as Error);
    }
    return await readCatalog(client, scratch);
  } finally {
    await client.query('rollback');
  }
}

/** Catalogs of every version, learnt once per run. */
export class VersionCatalogs {
  private readonly cache = new Map<number, Promise<Catalog>>();
  constructor(
    readonly mappingsDir: string,
    private readonly client: pg.Client,
  ) {}
  get(version: number): Promise<Catalog> {
    let c = this.cache.get(version);
    if (!c) {
      // Cached in the target's state by schema.sql's hash (src/db/catalog-cache.ts).
      c = readSchemaSql(this.mappingsDir, version).then((sql) =>
        cachedCatalog(this.client, sql, () => loadVersionCatalog(this.client, this.mappingsDir, version)),
      );
      this.cache.set(version, c);
    }
    return c;
  }
  async all(): Promise<Map<number, Catalog>> {
    const out = new Map<number, Catalog>();
    for (const v of await listVersions(this.mappingsDir)) out.set(v, await this.get(v));
    return out;
  }
}

/**
 * Differences between a live catalog and a version's, one readable line each: tables,
 * columns, types, nullability, primary keys, and what a schema change can change besides
 * (defaults, identity kinds, generated expressions, CHECK constraints, the labels and
 * their order of the enums and the definition of the domains the columns use). Parts a
 * catalog learnt before they were read lacks are not compared.
 */
export function diffCatalogs(live: Catalog, expected: Catalog): string[] {
  const out: string[] = [];
  const usedTypes = new Set<string>();
  for (const name of Object.keys(expected.tables)) {
    const e = expected.tables[name]!;
    const l = live.tables[name];
    if (!l) {
      out.push(`table ${name} is missing`);
      continue;
    }
    for (const ec of e.columns) {
      usedTypes.add(ec.type.replace(/(\[\])+$/, ''));
      const lc = l.columns.find((c) => c.name === ec.name);
      if (!lc) out.push(`column ${name}.${ec.name} (${ec.type}) is missing`);
      else if (lc.type !== ec.type) out.push(`column ${name}.${ec.name} is ${lc.type}, expected ${ec.type}`);
      else if (lc.notNull !== ec.notNull)
        out.push(`column ${name}.${ec.name} is ${lc.notNull ? 'NOT NULL' : 'nullable'}, expected ${ec.notNull ? 'NOT NULL' : 'nullable'}`);
      else out.push(...columnDrift(`${name}.${ec.name}`, lc, ec));
    }
    for (const lc of l.columns) {
      if (!e.columns.some((c) => c.name === lc.name)) out.push(`column ${name}.${lc.name} (${lc.type}) is not in the version`);
    }
    if (e.primaryKey.join(',') !== l.primaryKey.join(',')) {
      out.push(`table ${name} has primary key (${l.primaryKey.join(', ') || 'none'}), expected (${e.primaryKey.join(', ') || 'none'})`);
    }
    if ((e.partitionBy ?? null) !== (l.partitionBy ?? null)) {
      const by = (t: TableInfo) => (t.partitionBy ? `partitioned by ${t.partitionBy}` : 'not partitioned');
      out.push(`table ${name} is ${by(l)}, expected ${by(e)}`);
    }
    if (e.checks && l.checks) {
      for (const c of e.checks) if (!l.checks.includes(c)) out.push(`table ${name} lacks ${c}`);
      for (const c of l.checks) if (!e.checks.includes(c)) out.push(`table ${name} has ${c}, which the version does not`);
    }
  }
  for (const name of Object.keys(live.tables)) {
    if (!expected.tables[name]) out.push(`table ${name} is not in the version`);
  }
  if (expected.types && live.types) out.push(...typeDrift(live.types, expected.types, usedTypes));
  return out;
}

function columnDrift(at: string, l: ColumnInfo, e: ColumnInfo): string[] {
  // Catalogs of format 1 (an in-memory one, say) have no default: nothing more to compare.
  if (e.default === undefined || l.default === undefined) return [];
  const out: string[] = [];
  const identity = (c: ColumnInfo) => (c.identityKind ? `GENERATED ${c.identityKind.toUpperCase()} AS IDENTITY` : 'not an identity');
  const generated = (c: ColumnInfo) => (c.generatedAs ? `generated as ${c.generatedAs}` : 'not generated');
  if (e.identityKind !== l.identityKind) out.push(`column ${at} is ${identity(l)}, expected ${identity(e)}`);
  if (e.generatedAs !== l.generatedAs) out.push(`column ${at} is ${generated(l)}, expected ${generated(e)}`);
  if (e.default !== l.default) out.push(`column ${at} has ${l.default === null ? 'no DEFAULT' : `DEFAULT ${l.default}`}, expected ${e.default === null ? 'none' : e.default}`);
  return out;
}

/** The enums and domains the version's columns use (through domains too), compared. */
function typeDrift(live: Record<string, TypeInfo>, expected: Record<string, TypeInfo>, used: Set<string>): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const e = expected[name];
    if (e === undefined) return; // a built-in or extension type: its name says it all
    const l = live[name];
    const show = (t: TypeInfo) =>
      t.kind === 'enum'
        ? `enum (${t.labels.map((x) => `'${x}'`).join(', ')})`
        : `domain over ${t.base}${t.default !== null ? ` DEFAULT ${t.default}` : ''}${t.notNull ? ' NOT NULL' : ''}${t.checks.map((c) => ` ${c}`).join('')}`;
    if (l === undefined) out.push(`type ${name} (${show(e)}) is missing`);
    else if (show(l) !== show(e)) out.push(`type ${name} is ${show(l)}, expected ${show(e)}`);
    if (e.kind === 'domain') visit(e.base.replace(/(\[\])+$/, ''));
  };
  for (const t of [...used].sort()) visit(t);
  return out;
}

export type DetectedVersion = { version: number; catalog: Catalog } | { version: 'empty'; catalog: Catalog };

/**
 * The version whose schema.sql matches the database's current schema exactly (see
 * diffCatalogs for what is compared). An empty schema is reported as 'empty'; a schema
 * matching no version is refused with a drift report against the closest one; a schema
 * matching two versions is refused naming them (`check` refuses such versions too):
 * guessing one would run the wrong mapping, or none where one was needed.
 */
export async function detectVersion(client: pg.Client, catalogs: VersionCatalogs, label = 'database'): Promise<DetectedVersion> {
  const live = await readCatalog(client);
  if (Object.keys(live.tables).length === 0) return { version: 'empty', catalog: live };
  let best: { version: number; drift: string[] } | undefined;
  const matches: number[] = [];
  for (const [version, catalog] of await catalogs.all()) {
    const drift = diffCatalogs(live, catalog);
    if (drift.length === 0) matches.push(version);
    else if (!best || drift.length < best.drift.length) best = { version, drift };
  }
  if (matches.length > 1) {
    const names = matches.map((v) => `v${v}`);
    throw new VersionMismatchError(
      `${label} matches ${names.slice(0, -1).join(', ')} and ${names.at(-1)} alike in ${catalogs.mappingsDir}: their schema.sql describe the same schema, so which version it is cannot be told`,
      `make the versions differ in what detection compares (bluegreen check names such versions), or pass --schema-version (export, import) or the environment's "version" in the config to say which it is`,
    );
  }
  if (matches.length === 1) return { version: matches[0]!, catalog: live };
  const shown = best!.drift.slice(0, 12);
  throw new VersionMismatchError(
    `${label} matches no version in ${catalogs.mappingsDir}; closest is v${best!.version} with ${best!.drift.length} difference(s): ${shown.join('; ')}${best!.drift.length > shown.length ? '; …' : ''}`,
    `bring the schema to a version (or add one: bluegreen new-version), or pass --schema-version (export, import) or the environment's "version" in the config to say which it is`,
    best!.drift,
  );
}

/** Tables ordered so that every table comes after the tables it references (load order). */
export function loadOrder(catalog: Catalog): string[] {
  const names = Object.keys(catalog.tables).sort();
  const done = new Set<string>();
  const out: string[] = [];
  const visit = (n: string, stack: Set<string>) => {
    if (done.has(n) || stack.has(n)) return; // cycles: fall back to name order
    stack.add(n);
    for (const fk of catalog.tables[n]?.foreignKeys ?? []) if (fk.refTable !== n && catalog.tables[fk.refTable]) visit(fk.refTable, stack);
    stack.delete(n);
    done.add(n);
    out.push(n);
  };
  for (const n of names) visit(n, new Set());
  return out;
}
