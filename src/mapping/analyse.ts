/**
 * Semantic validation of one mapping against the catalogs of its two versions, producing
 * per-table plans that compile.ts turns into SQL and JS faces. Every problem is collected
 * (never the first only), each with file, JSON pointer and a hint.
 */
import type { Catalog, ColumnInfo, TableInfo } from '../db/catalog-types.ts';
import type { ValidationProblem } from '../errors.ts';
import { columnOp } from './ops/index.ts';
import { mergeKeyOf, validateMergeKey } from './ops/merge-tables.ts';
import { sourceTable } from './ops/rename-table.ts';
import { validateSplitKeys } from './ops/split-table.ts';
import type { OpEnv, OpPlan, SourceColumn } from './op.ts';
import { normaliseQuery, querySources, type QueryPlan } from './query.ts';
import { quoteIdent } from './sql.ts';
import { isMappedTable, type LossSpec, type MappingFile, type QueryTableSpec, type TableMappingSpec } from './types.ts';

/** What a mapping is checked against. */
export interface MappingContext {
  /** The mapping file's path, for problems. */
  file: string;
  /** Version of the source rows (must equal the file's `from`). */
  sourceVersion: number;
  /** Version of the produced rows (must equal the file's `to`). */
  targetVersion: number;
  /** Catalog of the source version. */
  source: Catalog;
  /** Catalog of the target version. */
  target: Catalog;
  /** Exports of the version's functions.ts, for `function` ops. */
  functions?: Readonly<Record<string, unknown>>;
}

/** How one target column gets its value. */
export type OutputPlan =
  | { kind: 'carry'; column: string; source: SourceColumn }
  | { kind: 'op'; column: string; op: number; deps: SourceColumn[]; keySafe: boolean }
  | { kind: 'default'; column: string };

/** One source table in a table plan's input row. */
export interface InputTable {
  /** Source table. */
  table: TableInfo;
  /** Columns in the input row (non-generated, catalog order). */
  columns: ColumnInfo[];
  /** Index of its first column in the input row. */
  offset: number;
}

/** A validated target table: everything compile.ts needs. */
export interface TablePlan {
  /** Target table. */
  table: string;
  /** JSON pointer of its entry (or of `/tables` when implicit). */
  path: string;
  /** Listed in the file, or mapped implicitly from the same-named source table. */
  implicit: boolean;
  /** Target table catalog entry. */
  target: TableInfo;
  /** Source tables in input-row order (the first is the merge's driving table). */
  inputs: InputTable[];
  /** Target key columns ([] only with reload: full). */
  key: string[];
  /** Source columns (names in every input table) the key is carried from. */
  sourceKey: string[];
  /** Source watermark column, if any. */
  watermark: string | null;
  /** The mapping's zone and skew for its watermark (object form), if it gave them. */
  watermarkRule?: { zone?: string; skew?: string };
  /** `full` when the table is reloaded on every run; `append` for a keyless insert-only table. */
  reload: 'full' | 'incremental' | 'append';
  /** Every non-generated target column in catalog order. */
  outputs: OutputPlan[];
  /**
   * Generated (STORED) target columns verify compares with the source's own: never written,
   * see generatedCompared.
   */
  generated: { column: string; sql: string }[];
  /** Compiled ops, in file order. */
  ops: OpPlan[];
  /**
   * Set for a table derived by a query (`{"query": ..., "key": [...]}`): `inputs` are the
   * source tables it reads, `outputs` every non-generated target column, `ops` empty.
   */
  query?: QueryPlan;
}

/** A target table declared `{"new": "empty"}`: nothing on the source side produces it. */
export interface EmptyTablePlan {
  /** Target table. */
  table: string;
  /** JSON pointer of its entry. */
  path: string;
}

/** Result of analysing a mapping. */
export interface Analysis {
  /** Every problem found; empty when the mapping is valid. */
  problems: ValidationProblem[];
  /** Table plans (complete only when there are no problems). */
  tables: TablePlan[];
  /** Target tables that start empty: not carried, so neither written nor compared. */
  empty: EmptyTablePlan[];
  /** What the mapping actually loses: `table` or `table.column` of the source version. */
  lost: string[];
}

/** RFC 6901 JSON pointer from segments. */
export function pointer(...segments: (string | number)[]): string {
  return segments.map((s) => '/' + String(s).replaceAll('~', '~0').replaceAll('/', '~1')).join('');
}

const WATERMARK_TYPES = /^(timestamp(\(\d\))? with(out)? time zone|date|smallint|integer|bigint|numeric(\(\d+,\d+\))?)$/;

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/** Validates `spec` against the catalogs and plans every target table. */
export function analyseMapping(spec: MappingFile, ctx: MappingContext): Analysis {
  const { file } = ctx;
  const problems: ValidationProblem[] = [];
  if (spec.from !== ctx.sourceVersion) problems.push({ file, path: '/from', message: `is ${spec.from} but this file maps v${ctx.sourceVersion}`, hint: `set "from": ${ctx.sourceVersion}` });
  if (spec.to !== ctx.targetVersion) problems.push({ file, path: '/to', message: `is ${spec.to} but this file maps to v${ctx.targetVersion}`, hint: `set "to": ${ctx.targetVersion}` });

  const entries: [string, TableMappingSpec, boolean][] = [];
  const derived: [string, QueryTableSpec][] = [];
  const empty: EmptyTablePlan[] = [];
  for (const [name, entry] of Object.entries(spec.tables ?? {})) {
    if (isMappedTable(entry)) entries.push([name, entry, false]);
    else if ('query' in entry) derived.push([name, entry]);
    else if (ctx.target.tables[name] === undefined) problems.push(noTargetTable(name, pointer('tables', name), ctx));
    else empty.push({ table: name, path: pointer('tables', name) });
  }
  for (const name of Object.keys(ctx.target.tables)) {
    if (spec.tables?.[name] !== undefined) continue;
    if (ctx.source.tables[name] !== undefined) entries.push([name, { from: name }, true]);
    else {
      problems.push({
        file,
        path: '/tables',
        message: `target table ${name} (v${ctx.targetVersion}) is not produced by the mapping`,
        hint: `add "${name}": {"from": "<v${ctx.sourceVersion} table>"}, or, for a table no v${ctx.sourceVersion} table carries, "${name}": {"new": "empty"} or "${name}": {"query": "select ... from <v${ctx.sourceVersion} tables>", "key": [...]}`,
      });
    }
  }

  const tables: TablePlan[] = [];
  for (const [name, qspec] of derived) {
    const plan = planQueryTable(name, qspec, ctx, problems);
    if (plan) tables.push(plan);
  }
  // Source tables of entries that failed: their losses are unknown, so not reported.
  const unsure = new Set<string>();
  for (const [name, tspec, implicit] of entries) {
    const plan = planTable(name, tspec, implicit, ctx, problems, spec.loses ?? []);
    if (plan) tables.push(plan);
    else for (const s of typeof tspec.from === 'string' ? [tspec.from] : tspec.from.merge) unsure.add(s);
  }

  // Split tables: every piece carries the same source key.
  const bySource = new Map<string, TablePlan[]>();
  for (const t of tables) {
    if (t.inputs.length !== 1 || t.sourceKey.length === 0 || t.query) continue;
    const s = t.inputs[0]!.table.name;
    bySource.set(s, [...(bySource.get(s) ?? []), t]);
  }
  for (const [source, pieces] of bySource) {
    if (pieces.length > 1) problems.push(...validateSplitKeys(source, pieces.map((p) => ({ table: p.table, path: p.path, sourceKey: p.sourceKey })), file));
  }

  const lost = computeLosses(tables, ctx);
  const sure = (id: string) => !unsure.has(id.split('.')[0]!);
  problems.push(...checkLosses(spec.loses ?? [], { tables: lost.tables.filter(sure), columns: lost.columns.filter(sure) }, ctx, unsure));
  return { problems, tables, empty, lost: [...lost.tables, ...lost.columns] };
}

function noTargetTable(name: string, path: string, ctx: MappingContext): ValidationProblem {
  return { file: ctx.file, path, message: `target table "${name}" does not exist in v${ctx.targetVersion}`, hint: `v${ctx.targetVersion} has ${Object.keys(ctx.target.tables).join(', ')}` };
}

/**
 * A table derived by a query: its target and key checked as any table's, its inputs the
 * source tables the query names. The query's text and its columns are proven on a server
 * (check, and every live path before it writes: src/convert/preflight.ts).
 */
function planQueryTable(name: string, qspec: QueryTableSpec, ctx: MappingContext, problems: ValidationProblem[]): TablePlan | undefined {
  const path = pointer('tables', name);
  const before = problems.length;
  const target = ctx.target.tables[name];
  if (target === undefined) {
    problems.push(noTargetTable(name, path, ctx));
    return undefined;
  }
  const sql = normaliseQuery(qspec.query);
  const sources = querySources(name, sql, ctx.source.tables, ctx.sourceVersion, ctx.file, `${path}/query`, problems);
  validateKey(name, qspec.key, target, path, ctx, problems);
  if (problems.length > before) return undefined;
  const inputs = inputTables(sources);
  return {
    table: name,
    path,
    implicit: false,
    target,
    inputs,
    key: qspec.key,
    sourceKey: [],
    watermark: null,
    reload: 'full',
    outputs: target.columns.filter((c) => !c.generated).map((c) => ({ kind: 'default', column: c.name })),
    generated: [],
    ops: [],
    query: { sql, path: `${path}/query` },
  };
}

/** A named key: existing NOT NULL columns forming the primary key or a unique constraint. */
function validateKey(name: string, key: string[], target: TableInfo, path: string, ctx: MappingContext, problems: ValidationProblem[]): void {
  const { file } = ctx;
  key.forEach((k, i) => {
    const c = target.columns.find((x) => x.name === k);
    if (c === undefined) problems.push({ file, path: `${path}/key/${i}`, message: `key column "${k}" does not exist in ${name}` });
    else if (!c.notNull) problems.push({ file, path: `${path}/key/${i}`, message: `key column ${name}.${k} can be NULL`, hint: 'a key must be NOT NULL; add the constraint in schema.sql' });
  });
  // A partitioned table's unique index must include its partition key (PostgreSQL refuses
  // one on `id` alone), so a key without it can never be backed by one: say that, not
  // "add a UNIQUE constraint", which the DBA cannot do.
  const missing = (target.partitionColumns ?? []).filter((c) => !key.includes(c));
  if (target.partitionBy && missing.length > 0) {
    problems.push({
      file,
      path: `${path}/key`,
      message: `table ${name} is partitioned by ${target.partitionBy}: key (${key.join(', ')}) lacks the partition column ${missing.join(', ')}`,
      hint: `PostgreSQL backs a partitioned table's key with a unique index only when it includes the partition key: use "key": [${[...key, ...missing].map((k) => JSON.stringify(k)).join(', ')}] (a primary or unique key over those columns in schema.sql), or remove "key" to use the primary key`,
    });
  } else if (!sameSet(key, target.primaryKey) && !target.uniqueKeys.some((u) => sameSet(u, key))) {
    problems.push({ file, path: `${path}/key`, message: `(${key.join(', ')}) is not a primary key or unique constraint of ${name}`, hint: 'add a UNIQUE constraint over these NOT NULL columns in schema.sql' });
  }
}

function planTable(name: string, tspec: TableMappingSpec, implicit: boolean, ctx: MappingContext, problems: ValidationProblem[], loses: LossSpec[] = []): TablePlan | undefined {
  const { file } = ctx;
  const path = implicit ? '/tables' : pointer('tables', name);
  const before = problems.length;
  const target = ctx.target.tables[name];
  if (target === undefined) {
    problems.push({ file, path, message: `target table "${name}" does not exist in v${ctx.targetVersion}`, hint: `v${ctx.targetVersion} has ${Object.keys(ctx.target.tables).join(', ')}` });
  }
  const names = typeof tspec.from === 'string' ? [tspec.from] : tspec.from.merge;
  const sources: TableInfo[] = [];
  names.forEach((n, i) => {
    const p = typeof tspec.from === 'string' ? `${path}/from` : `${path}/from/merge/${i}`;
    const t = sourceTable(n, ctx.source, ctx.sourceVersion, file, p, problems);
    if (t) sources.push(t);
  });
  if (target === undefined || sources.length !== names.length) return undefined;

  const inputs = inputTables(sources);
  const resolve = (ref: string): SourceColumn | undefined => {
    const dot = ref.indexOf('.');
    let candidates = inputs;
    let col = ref;
    if (dot > 0 && inputs.some((s) => s.table.name === ref.slice(0, dot))) {
      candidates = inputs.filter((s) => s.table.name === ref.slice(0, dot));
      col = ref.slice(dot + 1);
    }
    for (const s of candidates) {
      const i = s.columns.findIndex((c) => c.name === col);
      if (i >= 0) {
        const alias = quoteIdent(`s${inputs.indexOf(s)}`);
        return { table: s.table.name, column: s.columns[i]!, index: s.offset + i, sql: `${alias}.${quoteIdent(col)}` };
      }
    }
    return undefined;
  };

  // Ops: validate each, then plan the valid ones.
  const opPlans: OpPlan[] = [];
  const writer = new Map<string, number>();
  const omitted = new Set<string>();
  const dropped = new Set<string>();
  (tspec.ops ?? []).forEach((opSpec, i) => {
    const env: OpEnv = {
      file,
      path: `${path}/ops/${i}`,
      table: name,
      target,
      sourceTables: names,
      resolve,
      functions: ctx.functions ?? {},
      declaredLost: (c) => loses.some((l) => l.table === c.table && (l.column === undefined || l.column === c.column.name)),
    };
    const op = columnOp(opSpec);
    const found = op.validate(opSpec, env);
    if (found.length > 0) {
      problems.push(...found);
      return;
    }
    const plan = op.plan(opSpec, env);
    for (const w of [...plan.writes, ...plan.omits]) {
      const prev = writer.get(w);
      if (prev !== undefined) problems.push({ file, path: env.path, message: `target column ${name}.${w} is already written by op ${prev}`, hint: 'each target column gets exactly one op' });
      writer.set(w, i);
    }
    for (const o of plan.omits) omitted.add(o);
    for (const d of plan.drops) dropped.add(`${d.table}.${d.column.name}`);
    opPlans[i] = plan;
  });

  const outputs: OutputPlan[] = [];
  for (const col of target.columns) {
    if (col.generated) continue;
    const w = writer.get(col.name);
    if (w !== undefined) {
      const plan = opPlans[w];
      if (plan === undefined) continue;
      if (omitted.has(col.name)) outputs.push({ kind: 'default', column: col.name });
      else outputs.push({ kind: 'op', column: col.name, op: w, deps: plan.reads, keySafe: (plan.keySafe || plan.keyCast === true) && plan.reads.length === 1 && plan.writes.length === 1 });
      continue;
    }
    const src = resolve(col.name);
    if (src && !dropped.has(`${src.table}.${src.column.name}`)) {
      if (src.column.type !== col.type) {
        problems.push({
          file,
          path,
          message: `${name}.${col.name} is ${col.type} in v${ctx.targetVersion} but ${src.table}.${col.name} is ${src.column.type} in v${ctx.sourceVersion}`,
          hint: `add {"op": "cast", "from": "${col.name}"}${implicit ? ` in an entry "${name}": {"from": "${src.table}", "ops": [...]}` : ''}`,
        });
      }
      outputs.push({ kind: 'carry', column: col.name, source: src });
    } else if (col.notNull && !col.hasDefault) {
      problems.push({
        file,
        path,
        message: `target column ${name}.${col.name} is NOT NULL, has no DEFAULT and nothing produces it`,
        hint: `add an op writing it: {"op": "rename", "from": "<old name>", "to": "${col.name}"} or {"op": "constant", "column": "${col.name}", "value": "..."}`,
      });
    } else {
      outputs.push({ kind: 'default', column: col.name });
    }
  }

  // Key: named or the primary key; carried unchanged so rows can be matched across versions.
  const key = tspec.key ?? target.primaryKey;
  const reload = tspec.reload ?? 'incremental';
  if (key.length === 0 && reload !== 'full' && reload !== 'append') {
    problems.push({
      file,
      path,
      message: `table ${name} has no primary key in v${ctx.targetVersion}`,
      hint: 'name a unique, non-null key with "key": [...], set "reload": "append" for an insert-only table with a watermark, or "reload": "full" to copy the whole table on every run',
    });
  }
  if (tspec.key) validateKey(name, tspec.key, target, path, ctx, problems);
  const sourceKey: string[] = [];
  for (const k of key) {
    const out = outputs.find((o) => o.column === k);
    if (out?.kind === 'carry') sourceKey.push(out.source.column.name);
    else if (out?.kind === 'op' && out.keySafe) sourceKey.push(out.deps[0]!.column.name);
    else if (out !== undefined) {
      problems.push({
        file,
        path,
        message: `key column ${name}.${k} must be carried unchanged from the source`,
        hint: 'a key may be carried by name, renamed, widened by a cast, or cast one-to-one (timestamp <-> timestamptz of the same precision in UTC or a zone without daylight saving time); anything else loses track of which row is which',
      });
    }
  }
  if (sources.length > 1 && key.length === 0) {
    problems.push({ file, path: `${path}/from`, message: `merge needs a key to join on but ${name} has none`, hint: 'give the target table a primary key or name one with "key"' });
  }
  if (sources.length > 1 && sourceKey.length === key.length) {
    problems.push(...validateMergeKey(sources[0]!, sources.slice(1), sourceKey, file, `${path}/from`));
  }

  const wspec = typeof tspec.watermark === 'object' ? tspec.watermark : undefined;
  const watermark = (wspec ? wspec.column : (tspec.watermark as string | undefined)) ?? null;
  const watermarkRule = wspec && (wspec.zone !== undefined || wspec.skew !== undefined) ? { zone: wspec.zone, skew: wspec.skew } : undefined;
  if (reload === 'append' && watermark === null && sources.some((s) => s.watermark === undefined)) {
    problems.push({ file, path: `${path}/reload`, message: `append table ${name} needs a watermark`, hint: 'add "watermark": "<column>" (a timestamp or ever-increasing integer column), or use "reload": "full"' });
  }
  if (reload === 'append' && sources.length > 1) {
    problems.push({ file, path: `${path}/reload`, message: `append table ${name} cannot be a merge`, hint: 'an append-only table is keyless; map it from one table' });
  }
  if (watermark !== null) {
    for (const s of sources) {
      const c = s.columns.find((x) => x.name === watermark);
      if (c === undefined) problems.push({ file, path: `${path}/watermark`, message: `watermark column "${watermark}" does not exist in ${s.name} (v${ctx.sourceVersion})`, hint: 'the watermark is a column of the source table' });
      else if (!WATERMARK_TYPES.test(c.type)) problems.push({ file, path: `${path}/watermark`, message: `watermark ${s.name}.${watermark} is ${c.type}, which does not grow`, hint: 'use a timestamp or integer column updated on every write' });
    }
  }
  if (problems.length > before) return undefined;
  const generated = generatedCompared(target, sources, outputs);
  return { table: name, path, implicit, target, inputs, key, sourceKey, watermark, watermarkRule, reload, outputs, ops: opPlans, generated };
}

/**
 * Generated columns are never written (PostgreSQL computes them on the target from the
 * target's own columns), but their values are compared by verify when they must be equal:
 * the source table (one, not a merge) has a generated column of the same name with the
 * same expression, and every column that expression names is carried by name unchanged.
 * The source's stored value is then read beside the projected row. Any other generated
 * column (a new one, an expression changed between the versions, or one over a renamed or
 * converted column) is a function of compared columns under the target's own expression:
 * verify excludes it and lists it with the excluded columns.
 */
function generatedCompared(target: TableInfo, sources: TableInfo[], outputs: OutputPlan[]): { column: string; sql: string }[] {
  if (sources.length !== 1) return [];
  const out: { column: string; sql: string }[] = [];
  for (const col of target.columns) {
    if (!col.generated || col.generatedAs === undefined) continue;
    const src = sources[0]!.columns.find((c) => c.name === col.name);
    if (!src?.generated || src.generatedAs !== col.generatedAs) continue;
    const named = target.columns.filter((c) => c.name !== col.name && new RegExp(`(?<![\\w$])"?${c.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"?(?![\\w$])`).test(col.generatedAs!));
    const carried = named.every((c) => outputs.some((o) => o.kind === 'carry' && o.column === c.name && o.source.column.name === c.name && o.source.column.type === c.type));
    if (carried) out.push({ column: col.name, sql: `${quoteIdent('s0')}.${quoteIdent(col.name)}` });
  }
  return out;
}

interface Losses {
  tables: string[];
  columns: string[];
}

function computeLosses(tables: TablePlan[], ctx: MappingContext): Losses {
  const kept = new Set<string>();
  const used = new Set<string>();
  for (const t of tables) {
    // A query derives its table from what it reads; it carries none of it.
    if (t.query) continue;
    t.inputs.forEach((inp, i) => {
      used.add(inp.table.name);
      // A merged table's join key duplicates the first table's key: nothing is lost.
      if (i > 0) for (const k of mergeKeyOf(inp.table, t.inputs[0]!.table.name, t.sourceKey) ?? t.sourceKey) kept.add(`${inp.table.name}.${k}`);
    });
    for (const o of t.outputs) if (o.kind === 'carry') kept.add(`${o.source.table}.${o.source.column.name}`);
    for (const op of t.ops) {
      if (op === undefined) continue;
      for (const r of op.reads) if (!op.lossy.includes(r)) kept.add(`${r.table}.${r.column.name}`);
    }
  }
  const lost: Losses = { tables: [], columns: [] };
  for (const [name, t] of Object.entries(ctx.source.tables)) {
    if (!used.has(name)) {
      lost.tables.push(name);
      continue;
    }
    for (const c of t.columns) if (!c.generated && !kept.has(`${name}.${c.name}`)) lost.columns.push(`${name}.${c.name}`);
  }
  return lost;
}

function checkLosses(declared: LossSpec[], lost: Losses, ctx: MappingContext, unsure: Set<string>): ValidationProblem[] {
  const { file } = ctx;
  const problems: ValidationProblem[] = [];
  const declaredKeys = new Set<string>();
  declared.forEach((l, i) => {
    const t = ctx.source.tables[l.table];
    const id = l.column === undefined ? l.table : `${l.table}.${l.column}`;
    if (declaredKeys.has(id)) problems.push({ file, path: `/loses/${i}`, message: `${id} is declared lost twice`, hint: 'remove the duplicate entry' });
    declaredKeys.add(id);
    if (t === undefined) {
      problems.push({ file, path: `/loses/${i}/table`, message: `source table "${l.table}" does not exist in v${ctx.sourceVersion}`, hint: '"loses" names tables and columns of the source version' });
    } else if (l.column !== undefined && !t.columns.some((c) => c.name === l.column)) {
      problems.push({ file, path: `/loses/${i}/column`, message: `source column ${l.table}.${l.column} does not exist in v${ctx.sourceVersion}`, hint: '"loses" names tables and columns of the source version' });
    } else if (unsure.has(l.table)) {
      // Its table's entry failed: whether this loss is real is unknown until that is fixed.
    } else if (l.column === undefined ? !lost.tables.includes(l.table) : !lost.columns.includes(id) && !lost.tables.includes(l.table)) {
      problems.push({
        file,
        path: `/loses/${i}`,
        message: `${id} is declared lost but the mapping carries ${l.column === undefined ? 'that table' : 'it'}`,
        hint: 'remove the entry: an over-declared loss hides real ones from verify and check',
      });
    }
  });
  for (const t of lost.tables) {
    if (!declaredKeys.has(t)) {
      problems.push({ file, path: '/loses', message: `source table ${t} is not mapped to any target table, so all its rows are lost`, hint: `map it in "tables", or add {"table": "${t}", "why": "..."} to "loses"` });
    }
  }
  for (const c of lost.columns) {
    const [table, column] = [c.slice(0, c.indexOf('.')), c.slice(c.indexOf('.') + 1)];
    if (!declaredKeys.has(c)) {
      problems.push({
        file,
        path: '/loses',
        message: `source column ${c} is lost (not carried, or only through a lossy op) but not declared`,
        hint: `carry it, or add {"table": "${table}", "column": "${column}", "why": "..."} to "loses"`,
      });
    }
  }
  return problems;
}

/** The tables a target table reads, each with the columns it reads (generated ones are never carried) and where they start in a joined row. */
function inputTables(sources: TableInfo[]): InputTable[] {
  const inputs: InputTable[] = [];
  let offset = 0;
  for (const t of sources) {
    const columns = t.columns.filter((c) => !c.generated);
    inputs.push({ table: t, columns, offset });
    offset += columns.length;
  }
  return inputs;
}
