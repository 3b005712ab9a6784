/**
 * Compiles a validated mapping into, per target table, an SQL face (a SELECT over the
 * source tables, for `COPY (SELECT ...) TO STDOUT` on a live database: the fast path) and
 * a JS face (a row transform over text values, for offline convert and `check`).
 *
 * JS faces are index-based closures built once per table: the hot path allocates only the
 * output row.
 */
import { UnsupportedFaceError } from './errors.ts';
import type { Mapping } from './load.ts';
import type { TablePlan } from './analyse.ts';
import type { UserSql } from './op.ts';
import { fromClause, mergeKeyOf } from './ops/merge-tables.ts';
import { querySelect } from './query.ts';
import { quoteIdent } from './sql.ts';
import type { Row } from './types.ts';

/** A source table as a compiled table reads it. */
export interface SourceTable {
  /** Table name in the source version. */
  table: string;
  /** Its columns as they appear in the input row (non-generated, catalog order): the COPY column list to export. */
  columns: string[];
  /** Key columns in this table ([] for a keyless full-reload table). Dumps are sorted by them. */
  key: string[];
  /** Watermark column in this table (the mapping's, else schema.sql's), or null when it has none (full reload). */
  watermark: string | null;
  /** How the watermark's values are set (writers' zone, clock skew), from the same place as `watermark`. */
  watermarkRule?: { zone?: string; skew?: string };
}

/** A source column a target column's value comes from. */
export interface ColumnOrigin {
  /** Index into `sources`. */
  source: number;
  /** Column of that source table. */
  column: string;
}

/** How one target table is produced from the source version. The same shape for one step and for a chain. */
export interface CompiledTable {
  /** Target table name. */
  table: string;
  /** Version the source tables belong to. */
  fromVersion: number;
  /** Version of the target table. */
  toVersion: number;
  /**
   * Source tables. The JS input row is their rows concatenated in this order; for more
   * than one (a merge), rows are joined on the key, LEFT JOIN from the first (a missing
   * partner is all NULLs). To export incrementally, take the union of the keys changed in
   * any source and filter every source by that key set: filtering each source by its own
   * watermark would lose a change made only to a later table.
   */
  sources: SourceTable[];
  /** Target columns written, in target catalog order (generated columns and columns left to their DEFAULT are excluded). */
  columns: string[];
  /** Target key columns ([] only for a keyless full-reload table). */
  key: string[];
  /** `full`: copy the whole table on every run; `append`: keyless, insert-only, synced by its watermark. */
  reload: 'full' | 'incremental' | 'append';
  /**
   * Where the query is (`<file> at <JSON pointer>`) when the table is derived by one (in
   * this step or, in a chain, an earlier one): recomputed whole on every run (`reload`
   * is `full`), its rows have no source key, and it has no JS face.
   */
  query?: string;
  /**
   * Target columns (possibly not in `columns`) whose value is not a function of the
   * source: left to their DEFAULT here or derived from such a column earlier in a chain.
   * Verify excludes them.
   */
  lossyColumns: string[];
  /** Source columns each written target column depends on, by target column. */
  origins: Record<string, ColumnOrigin[]>;
  /**
   * Target columns an op computes (in this step or an earlier one of a chain), each with
   * where that op is (`<file> at <JSON pointer>`): the columns a row-level conversion
   * failure can be in, and what an error tells the DBA to change.
   */
  converted: Record<string, string>;
  /**
   * Generated target columns verify compares with the source's stored value (same
   * expression over columns carried unchanged; src/mapping/analyse.ts, generatedCompared).
   * Never written: not in `columns`.
   */
  generated: string[];
  /** Why `selectSql` is unavailable (ops without an SQL face); empty when available. */
  sqlUnsupported: string[];
  /** Why `transformJs` is unavailable (ops without an exact JS face); empty when available. */
  jsUnsupported: string[];
  /** Target columns written by ops without a JS face (NULL in a `partialJs` transform). */
  jsMissing?: string[];
  /**
   * Every author-written SQL expression the table's SQL face holds (this step's and, in a
   * chain, the earlier steps'), with its file and version: the live paths prepare each
   * against the catalogs before writing, as `check` does (src/convert/preflight.ts).
   */
  expressions: UserExpression[];
  /**
   * `SELECT <expr> AS "<column>", ... FROM ...` producing `columns` in order, with
   * `sourceRel(table)` as the relation of each source table (a quoted name, or a
   * parenthesised subquery). With `withGenerated`, the `generated` columns follow, read
   * from the source (for verify only). Throws UnsupportedFaceError when `sqlUnsupported`
   * is not empty.
   */
  selectSql(sourceRel: (table: string) => string, withGenerated?: boolean): string;
  /**
   * Maps one input row (source columns, see `sources`) to one target row (`columns`).
   * Throws UnsupportedFaceError when `jsUnsupported` is not empty, MappingValueError for
   * a value the mapping cannot convert.
   */
  transformJs(row: Row): Row;
}

/** An author-written expression of a mapping file (an sql op's, a function op's SQL face). */
export interface UserExpression extends UserSql {
  /** The mapping file it is in. */
  file: string;
  /** The version whose rows it reads (the file's source version). */
  fromVersion: number;
  /**
   * Set for a query table's query (`expr`, `columns` empty): the source tables it may
   * read with their columns, and the target columns it must yield, by name.
   */
  query?: { tables: { name: string; columns: { name: string; type: string }[] }[]; outputs: string[] };
}

/** The compiled form of one mapping file. */
export interface CompiledStep {
  /** Source version. */
  from: number;
  /** Target version. */
  to: number;
  /** Target tables by name. */
  tables: Record<string, CompiledTable>;
  /** Source tables (`t`) and columns (`t.c`) this step loses, as declared and checked. */
  lost: string[];
  /** Target tables that start empty (`{"new": "empty"}`), each with why: not carried. */
  empty: Record<string, string>;
}

/** Options for compileStep. */
export interface CompileOptions {
  /**
   * Also output the columns left to their DEFAULT, as NULL. Used for the inner steps of a
   * chain, whose rows feed a later step rather than a table.
   */
  fullWidth?: boolean;
  /**
   * Build the JS face even when some ops have none, their columns left NULL (listed in
   * `jsMissing`): `check` compares the other columns with the SQL face.
   */
  partialJs?: boolean;
}

/** Compiles every target table of a loaded mapping. */
export function compileStep(mapping: Mapping, options: CompileOptions = {}): CompiledStep {
  const tables: Record<string, CompiledTable> = {};
  for (const plan of mapping.analysis.tables) {
    tables[plan.table] = plan.query ? compileQueryTable(plan, mapping.from, mapping.to, mapping.file) : compileTable(plan, mapping.from, mapping.to, options.fullWidth ?? false, mapping.file, options.partialJs ?? false);
  }
  const empty: Record<string, string> = {};
  for (const e of mapping.analysis.empty) empty[e.table] = emptyReason(mapping.from, mapping.to);
  return { from: mapping.from, to: mapping.to, tables, lost: mapping.analysis.lost, empty };
}

/** Why a table declared `{"new": "empty"}` is not carried, as reports list it. */
export function emptyReason(from: number, to: number): string {
  return to > from ? `new in v${to}, starts empty` : `not in v${from}, starts empty`;
}

/**
 * A table derived by a query (src/mapping/query.ts): its SQL face is the query over the
 * relations the path reads its source tables through; it has no JS face, so offline
 * paths run it in PostgreSQL as they run an sql op without a twin.
 */
function compileQueryTable(plan: TablePlan, fromVersion: number, toVersion: number, file: string): CompiledTable {
  const q = plan.query!;
  const table = plan.table;
  const columns = plan.outputs.map((o) => o.column);
  const sources = plan.inputs.map((inp) => inp.table.name);
  const at = `${file} at ${q.path}`;
  const jsUnsupported = [`${table} is derived by the query at ${at}, which runs in PostgreSQL`];
  return {
    table,
    fromVersion,
    toVersion,
    sources: plan.inputs.map((inp) => ({
      table: inp.table.name,
      columns: inp.columns.map((c) => c.name),
      key: inp.table.primaryKey,
      // Read whole on every run: no watermark bounds what a query reads.
      watermark: null,
    })),
    columns,
    key: plan.key,
    reload: 'full',
    query: at,
    lossyColumns: [],
    origins: Object.fromEntries(columns.map((c) => [c, []])),
    converted: Object.fromEntries(columns.map((c) => [c, at])),
    generated: [],
    sqlUnsupported: [],
    jsUnsupported,
    jsMissing: columns,
    expressions: [
      {
        path: q.path,
        expr: q.sql,
        columns: [],
        file,
        fromVersion,
        query: { tables: plan.inputs.map((inp) => ({ name: inp.table.name, columns: inp.columns.map((c) => ({ name: c.name, type: c.type })) })), outputs: columns },
      },
    ],
    selectSql: (sourceRel) => querySelect(q.sql, sources, columns, sourceRel),
    transformJs: () => {
      throw new UnsupportedFaceError(table, 'js', jsUnsupported);
    },
  };
}

function compileTable(plan: TablePlan, fromVersion: number, toVersion: number, fullWidth: boolean, file: string, partialJs: boolean): CompiledTable {
  const outputs = plan.outputs.filter((o) => fullWidth || o.kind !== 'default');
  const columns = outputs.map((o) => o.column);
  const outIndex = new Map(columns.map((c, i) => [c, i]));
  const sourceIndex = new Map(plan.inputs.map((inp, i) => [inp.table.name, i]));

  const sqlUnsupported: string[] = [];
  const jsUnsupported: string[] = [];
  for (const op of plan.ops) {
    if (op === undefined) continue;
    if (!Array.isArray(op.sql)) sqlUnsupported.push(op.sql.unsupported);
    if (typeof op.js !== 'function') jsUnsupported.push(op.js.unsupported);
  }

  // SQL face: one expression per output column.
  const exprs = outputs.map((o) => {
    if (o.kind === 'carry') return o.source.sql;
    if (o.kind === 'default') return 'NULL';
    const op = plan.ops[o.op]!;
    return Array.isArray(op.sql) ? op.sql[op.writes.indexOf(o.column)]! : 'NULL';
  });
  const select = exprs.map((e, i) => `${e} AS ${quoteIdent(columns[i]!)}`).join(', ');
  const table = plan.table;
  // Each source's own key columns: a later merged table may join on its renamed key.
  const inputKeys = plan.inputs.map((inp, i) => (i === 0 ? plan.sourceKey : (mergeKeyOf(inp.table, plan.inputs[0]!.table.name, plan.sourceKey) ?? plan.sourceKey)));
  const generated = plan.generated.map((g) => `, ${g.sql} AS ${quoteIdent(g.column)}`).join('');
  const selectSql = (sourceRel: (t: string) => string, withGenerated = false): string => {
    if (sqlUnsupported.length > 0) throw new UnsupportedFaceError(table, 'sql', sqlUnsupported);
    return `SELECT ${select}${withGenerated ? generated : ''} ${fromClause(plan.inputs.map((i) => sourceRel(i.table.name)), inputKeys)}`;
  };

  // JS face.
  const width = columns.length;
  const inWidth = plan.inputs.reduce((n, i) => n + i.columns.length, 0);
  const carryFrom: number[] = [];
  const carryTo: number[] = [];
  const nullAt: number[] = [];
  outputs.forEach((o, i) => {
    if (o.kind === 'carry') {
      carryFrom.push(o.source.index);
      carryTo.push(i);
    } else if (o.kind === 'default') nullAt.push(i);
  });
  const writers: ((src: Row, out: Row) => void)[] = [];
  for (const op of plan.ops) {
    if (op === undefined || typeof op.js !== 'function' || op.writes.length === 0) continue;
    writers.push(op.js(op.writes.map((w) => outIndex.get(w)!)));
  }
  const jsMissing: string[] = [];
  for (const op of plan.ops) {
    if (op === undefined || typeof op.js === 'function') continue;
    for (const w of op.writes) if (outIndex.has(w)) jsMissing.push(w);
  }
  if (partialJs) for (const w of jsMissing) nullAt.push(outIndex.get(w)!);
  const nCarry = carryFrom.length;
  const transformJs =
    jsUnsupported.length > 0 && !partialJs
      ? (): Row => {
          throw new UnsupportedFaceError(table, 'js', jsUnsupported);
        }
      : (row: Row): Row => {
          if (row.length !== inWidth) throw new Error(`${table}: input row has ${row.length} values, expected ${inWidth}`);
          const out: Row = new Array(width);
          for (let k = 0; k < nCarry; k++) out[carryTo[k]!] = row[carryFrom[k]!]!;
          for (let k = 0; k < nullAt.length; k++) out[nullAt[k]!] = null;
          for (let k = 0; k < writers.length; k++) writers[k]!(row, out);
          return out;
        };

  const converted: Record<string, string> = {};
  for (const o of outputs) if (o.kind === 'op') converted[o.column] = `${file} at ${plan.path}/ops/${o.op}`;
  const origins: Record<string, ColumnOrigin[]> = {};
  for (const o of outputs) {
    const deps = o.kind === 'carry' ? [o.source] : o.kind === 'op' ? o.deps : [];
    origins[o.column] = deps.map((d) => ({ source: sourceIndex.get(d.table)!, column: d.column.name }));
  }
  return {
    table,
    fromVersion,
    toVersion,
    sources: plan.inputs.map((inp, i) => ({
      table: inp.table.name,
      columns: inp.columns.map((c) => c.name),
      key: inputKeys[i]!,
      // The mapping's watermark, else the one schema.sql declares (COMMENT 'bluegreen:watermark').
      watermark: plan.watermark ?? inp.table.watermark ?? null,
      // The mapping's zone and skew; else schema.sql's, when it names the same column.
      watermarkRule: plan.watermarkRule ?? (plan.watermark === null || plan.watermark === inp.table.watermark ? inp.table.watermarkRule : undefined),
    })),
    columns,
    key: plan.key,
    reload: plan.reload,
    lossyColumns: plan.outputs.filter((o) => o.kind === 'default').map((o) => o.column),
    origins,
    converted,
    generated: plan.generated.map((g) => g.column),
    sqlUnsupported,
    jsUnsupported,
    jsMissing,
    expressions: plan.ops.flatMap((op) => (op?.userSql ?? []).map((u) => ({ ...u, file, fromVersion }))),
    selectSql,
    transformJs,
  };
}
