/**
 * Plain DDL of a live schema, written from its catalog: what `new-version --from` puts in
 * the next version's schema.sql when the team migrated the database with its own tool.
 *
 * Everything is printed by PostgreSQL itself (format_type, pg_get_expr,
 * pg_get_constraintdef, pg_get_indexdef, pg_get_triggerdef, pg_get_functiondef) with the
 * schema alone on the search_path, so names come out unqualified and the file applies in
 * any schema, as schema.sql must. Order: types, sequences, functions, tables (columns,
 * collations, defaults, NOT NULL, identity and generated columns, primary key, unique, check and
 * exclusion constraints), foreign keys (after every table, so cycles apply), indexes,
 * triggers, sequence ownership, and the `bluegreen:` column comments (watermarks).
 * bluegreen's own objects (its state schema, the cutover freeze triggers) are left out.
 * Partitions, policies, views and grants are not written.
 */
import type pg from 'pg';
import { ident } from './connect.ts';

/** What {@link schemaDdl} wrote, besides the text. */
export interface SchemaDdl {
  /** The DDL, one statement per paragraph. */
  sql: string;
  /** Tables written, in order. */
  tables: string[];
  /** Objects seen but not written (partitions, views...), one line each. */
  skipped: string[];
}

const FREEZE_TRIGGER = 'bluegreen_freeze';

/** Reads `schema` (default: the session's current schema) and returns its DDL. */
export async function schemaDdl(client: pg.Client, schema?: string): Promise<SchemaDdl> {
  const nsp = schema ?? (await client.query<{ s: string }>('select current_schema() as s')).rows[0]!.s;
  await client.query('begin isolation level repeatable read read only');
  try {
    // Alone on the search_path, the schema's own objects print unqualified.
    await client.query(`set local search_path = ${ident(nsp)}`);
    return await readDdl(client, nsp);
  } finally {
    await client.query('rollback');
  }
}

async function rows<T extends pg.QueryResultRow>(client: pg.Client, sql: string, nsp: string): Promise<T[]> {
  return (await client.query<T>(sql, [nsp])).rows;
}

/** Objects that belong to an extension are the extension's, not the application's. */
const NOT_EXTENSION = (oid: string) => `not exists (select 1 from pg_depend d where d.objid = ${oid} and d.deptype = 'e')`;

async function readDdl(client: pg.Client, nsp: string): Promise<SchemaDdl> {
  const out: string[] = [];
  const skipped: string[] = [];

  for (const e of await rows<{ name: string; labels: string[] }>(
    client,
    `select quote_ident(t.typname) as name, array_agg(quote_literal(e.enumlabel) order by e.enumsortorder) as labels
       from pg_type t join pg_namespace n on n.oid = t.typnamespace join pg_enum e on e.enumtypid = t.oid
      where n.nspname = $1 and ${NOT_EXTENSION('t.oid')} group by t.typname order by t.typname`,
    nsp,
  )) out.push(`CREATE TYPE ${e.name} AS ENUM (${e.labels.join(', ')});`);

  for (const d of await rows<{ name: string; base: string; notnull: boolean; def: string | null; checks: string[] }>(
    client,
    `select quote_ident(t.typname) as name, format_type(t.typbasetype, t.typtypmod) as base, t.typnotnull as notnull, t.typdefault as def,
            array(select 'CONSTRAINT ' || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid) from pg_constraint c where c.contypid = t.oid and c.contype = 'c' order by c.conname) as checks
       from pg_type t join pg_namespace n on n.oid = t.typnamespace
      where n.nspname = $1 and t.typtype = 'd' and ${NOT_EXTENSION('t.oid')} order by t.typname`,
    nsp,
  )) out.push(`CREATE DOMAIN ${d.name} AS ${d.base}${d.def !== null ? ` DEFAULT ${d.def}` : ''}${d.notnull ? ' NOT NULL' : ''}${d.checks.map((c) => ` ${c}`).join('')};`);

  // Sequences other than identity columns' (those come with their column).
  const sequences = await rows<{ name: string; type: string; inc: string; min: string; max: string; start: string; cache: string; cycle: boolean; owner: string | null }>(
    client,
    `select quote_ident(c.relname) as name, format_type(s.seqtypid, null) as type, s.seqincrement::text as inc, s.seqmin::text as min,
            s.seqmax::text as max, s.seqstart::text as start, s.seqcache::text as cache, s.seqcycle as cycle,
            (select quote_ident(t.relname) || '.' || quote_ident(a.attname) from pg_depend d
               join pg_class t on t.oid = d.refobjid join pg_attribute a on a.attrelid = t.oid and a.attnum = d.refobjsubid
              where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'a' limit 1) as owner
       from pg_class c join pg_namespace n on n.oid = c.relnamespace join pg_sequence s on s.seqrelid = c.oid
      where n.nspname = $1 and c.relkind = 'S' and ${NOT_EXTENSION('c.oid')}
        and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'i')
      order by c.relname`,
    nsp,
  );
  for (const s of sequences) {
    out.push(`CREATE SEQUENCE ${s.name} AS ${s.type} INCREMENT BY ${s.inc} MINVALUE ${s.min} MAXVALUE ${s.max} START WITH ${s.start} CACHE ${s.cache}${s.cycle ? ' CYCLE' : ''};`);
  }

  for (const f of await rows<{ def: string; name: string }>(
    client,
    `select pg_get_functiondef(p.oid) as def, p.proname as name
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = $1 and p.prokind in ('f', 'p') and ${NOT_EXTENSION('p.oid')}
      order by p.proname, p.oid`,
    nsp,
  )) {
    // pg_get_functiondef always qualifies the function's own name.
    const def = f.def.replace(/^(CREATE OR REPLACE (?:FUNCTION|PROCEDURE) )(?:"(?:[^"]|"")+"|[^.\s(]+)\./, '$1').trimEnd();
    out.push(def.endsWith(';') ? def : `${def};`);
  }

  const tables = await rows<{ oid: string; name: string; kind: string; partkey: string | null; ispart: boolean }>(
    client,
    `select c.oid::text as oid, quote_ident(c.relname) as name, c.relkind as kind, c.relispartition as ispart,
            case when c.relkind = 'p' then pg_get_partkeydef(c.oid) end as partkey
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relkind in ('r', 'p') and ${NOT_EXTENSION('c.oid')}
      order by c.relname`,
    nsp,
  );
  const written: string[] = [];
  for (const t of tables) {
    if (t.ispart) {
      skipped.push(`partition ${t.name} (create partitions after applying the file)`);
      continue;
    }
    const cols = await client.query<{ name: string; type: string; notnull: boolean; def: string | null; identity: string; generated: string; collation: string | null }>(
      `select quote_ident(a.attname) as name, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as notnull,
              pg_get_expr(ad.adbin, ad.adrelid) as def, a.attidentity as identity, a.attgenerated as generated,
              case when a.attcollation <> 0 and a.attcollation <> ty.typcollation then quote_ident(co.collname) end as collation
         from pg_attribute a left join pg_attrdef ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
         join pg_type ty on ty.oid = a.atttypid left join pg_collation co on co.oid = a.attcollation
        where a.attrelid = $1::oid and a.attnum > 0 and not a.attisdropped order by a.attnum`,
      [t.oid],
    );
    const lines = cols.rows.map((c) => {
      let line = `  ${c.name} ${c.type}${c.collation !== null ? ` COLLATE ${c.collation}` : ''}`;
      if (c.generated === 's') line += ` GENERATED ALWAYS AS (${c.def}) STORED`;
      else if (c.identity === 'a') line += ' GENERATED ALWAYS AS IDENTITY';
      else if (c.identity === 'd') line += ' GENERATED BY DEFAULT AS IDENTITY';
      else if (c.def !== null) line += ` DEFAULT ${c.def}`;
      if (c.notnull && c.identity === '') line += ' NOT NULL';
      return line;
    });
    // Primary key, unique, check and exclusion constraints belong to the table; foreign
    // keys come after every table. (PostgreSQL 18 also lists NOT NULL as constraints: 'n'.)
    const cons = await client.query<{ name: string; def: string }>(
      `select quote_ident(conname) as name, pg_get_constraintdef(oid) as def from pg_constraint
        where conrelid = $1::oid and contype in ('p', 'u', 'c', 'x') and not coninhcount > 0
        order by case contype when 'p' then 0 when 'u' then 1 else 2 end, conname`,
      [t.oid],
    );
    for (const c of cons.rows) lines.push(`  CONSTRAINT ${c.name} ${c.def}`);
    out.push(`CREATE TABLE ${t.name} (\n${lines.join(',\n')}\n)${t.partkey ? ` PARTITION BY ${t.partkey}` : ''};`);
    written.push(t.name);
  }

  const fks = await rows<{ tbl: string; name: string; def: string }>(
    client,
    `select quote_ident(c.relname) as tbl, quote_ident(k.conname) as name, pg_get_constraintdef(k.oid) as def
       from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and k.contype = 'f' and not c.relispartition and not k.coninhcount > 0
      order by c.relname, k.conname`,
    nsp,
  );
  if (fks.length > 0) out.push(fks.map((f) => `ALTER TABLE ${f.tbl} ADD CONSTRAINT ${f.name} ${f.def};`).join('\n'));

  const indexes = await rows<{ def: string }>(
    client,
    `select pg_get_indexdef(i.indexrelid) as def
       from pg_index i join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
       join pg_class ic on ic.oid = i.indexrelid
      where n.nspname = $1 and c.relkind in ('r', 'p') and not c.relispartition
        and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid and k.conrelid = i.indrelid)
      order by c.relname, ic.relname`,
    nsp,
  );
  // pg_get_indexdef and pg_get_triggerdef qualify the table whatever the search_path.
  const q = `${(await client.query<{ q: string }>('select quote_ident($1) as q', [nsp])).rows[0]!.q}.`;
  const unqualify = (def: string) => def.replaceAll(` ON ${q}`, ' ON ').replaceAll(` ON ONLY ${q}`, ' ON ONLY ');
  if (indexes.length > 0) out.push(indexes.map((i) => `${unqualify(i.def)};`).join('\n'));

  const triggers = await rows<{ def: string }>(
    client,
    `select pg_get_triggerdef(g.oid) as def
       from pg_trigger g join pg_class c on c.oid = g.tgrelid join pg_namespace n on n.oid = c.relnamespace
       join pg_proc p on p.oid = g.tgfoid join pg_namespace pn on pn.oid = p.pronamespace
      where n.nspname = $1 and not g.tgisinternal and g.tgname <> '${FREEZE_TRIGGER}' and pn.nspname <> 'bluegreen'
        and not c.relispartition
      order by c.relname, g.tgname`,
    nsp,
  );
  if (triggers.length > 0) out.push(triggers.map((g) => `${unqualify(g.def)};`).join('\n'));

  const owned = sequences.filter((s) => s.owner !== null);
  if (owned.length > 0) out.push(owned.map((s) => `ALTER SEQUENCE ${s.name} OWNED BY ${s.owner};`).join('\n'));

  const comments = await rows<{ tbl: string; col: string; text: string }>(
    client,
    `select quote_ident(c.relname) as tbl, quote_ident(a.attname) as col, quote_literal(col_description(c.oid, a.attnum)) as text
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      where n.nspname = $1 and c.relkind in ('r', 'p') and col_description(c.oid, a.attnum) like 'bluegreen:%'
      order by c.relname, a.attnum`,
    nsp,
  );
  if (comments.length > 0) out.push(comments.map((m) => `COMMENT ON COLUMN ${m.tbl}.${m.col} IS ${m.text};`).join('\n'));

  for (const v of await rows<{ name: string; kind: string }>(
    client,
    `select c.relname as name, case c.relkind when 'v' then 'view' when 'm' then 'materialized view' when 'f' then 'foreign table' end as kind
       from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind in ('v', 'm', 'f') order by 1`,
    nsp,
  )) skipped.push(`${v.kind} ${v.name}`);

  return { sql: out.join('\n\n') + '\n', tables: written, skipped };
}
