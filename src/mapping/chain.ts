/**
 * Composition of mapping steps: vA -> vC goes through every version between, up or down.
 * A composed table has the same shape as one step's (CompiledTable), expressed in terms
 * of the ORIGINAL version's tables: its SQL face nests (step 2's SELECT reads
 * `(step 1's SELECT)`), its JS face calls the steps' transforms in turn.
 */
import { InvalidInputError } from '../errors.ts';
import { compileStep, type ColumnOrigin, type CompiledStep, type CompiledTable, type SourceTable } from './compile.ts';
import { loadMapping, parseMapping, type CatalogsByVersion, type Mapping } from './load.ts';
import type { Row } from './types.ts';

/** A compiled chain from one version to another. */
export interface CompiledChain {
  /** Version of the source rows. */
  from: number;
  /** Version of the produced rows. */
  to: number;
  /** Final target tables by name, each in terms of tables of version `from`. */
  tables: Record<string, CompiledTable>;
  /**
   * Target tables of version `to` nothing of version `from` produces (declared
   * `{"new": "empty"}` on the way), each with why: not written by sync, not compared by
   * verify, listed as not carried.
   */
  notCarried: Record<string, string>;
  /** The steps, in order (empty for from === to). */
  steps: CompiledStep[];
}

/**
 * Composes already loaded mappings (consecutive, in order) into final target tables.
 * Pure: no files, no database.
 */
export function composeMappings(mappings: Mapping[]): Record<string, CompiledTable> {
  return composeChain(mappings).tables;
}

/** Composes mappings into final target tables and the target tables that start empty. */
function composeChain(mappings: Mapping[]): Pick<CompiledChain, 'tables' | 'notCarried'> {
  let nodes: Pick<CompiledChain, 'tables' | 'notCarried'> | undefined;
  mappings.forEach((m, i) => {
    if (i > 0 && m.from !== mappings[i - 1]!.to) throw new Error(`mapping ${m.file} does not follow ${mappings[i - 1]!.file}`);
    // Inner steps keep columns left to DEFAULT (as NULL) so the next step finds every column.
    const step = compileStep(m, { fullWidth: i < mappings.length - 1 });
    nodes = nodes === undefined ? { tables: step.tables, notCarried: step.empty } : composeStep(nodes, step);
  });
  if (nodes === undefined) throw new Error('composeMappings needs at least one mapping');
  return nodes;
}

/**
 * Tables of `step` rewritten over the original sources of `prev`. A table carried from
 * one that started empty earlier in the chain starts empty too; one that would join or
 * query such a table is refused (nothing of the chain's first version is there to read).
 */
function composeStep(prev: Pick<CompiledChain, 'tables' | 'notCarried'>, step: CompiledStep): Pick<CompiledChain, 'tables' | 'notCarried'> {
  const tables: Record<string, CompiledTable> = {};
  const notCarried: Record<string, string> = { ...step.empty };
  for (const [name, t] of Object.entries(step.tables)) {
    const empty = t.sources.filter((s) => prev.notCarried[s.table] !== undefined);
    if (empty.length === 0) tables[name] = composeTable(prev.tables, t);
    else if (t.sources.length === 1 && t.query === undefined) notCarried[name] = prev.notCarried[t.sources[0]!.table]!;
    else {
      throw new InvalidInputError(
        `v${step.from} -> v${step.to}: ${name} reads ${empty.map((s) => s.table).join(', ')}, which no earlier version carries (${empty.map((s) => prev.notCarried[s.table]).join('; ')}), so the chain cannot compose it`,
        `sync through v${step.from} one step at a time, or derive ${name} in v${step.to} from tables the earlier versions carry`,
      );
    }
  }
  return { tables, notCarried };
}

function composeTable(prev: Record<string, CompiledTable>, t: CompiledTable): CompiledTable {
  const inner = t.sources.map((s) => {
    const node = prev[s.table];
    if (node === undefined) throw new Error(`chain: intermediate table ${s.table} is not produced by the previous step`);
    return node;
  });
  // Original sources, deduplicated (a split followed by a merge reads one table twice).
  const sources: SourceTable[] = [];
  const offsets = new Map<string, number>();
  let width = 0;
  for (const node of inner) {
    for (const s of node.sources) {
      if (offsets.has(s.table)) continue;
      offsets.set(s.table, width);
      sources.push(s);
      width += s.columns.length;
    }
  }
  const sourcePos = new Map(sources.map((s, i) => [s.table, i]));
  // Where each inner node's input row lives in the composed input row.
  const gathers = inner.map((node) => node.sources.flatMap((s) => s.columns.map((_, k) => offsets.get(s.table)! + k)));
  const identityGather = inner.length === 1 && gathers[0]!.every((g, k) => g === k) && gathers[0]!.length === width;
  // A later partner of a merge is missing when its first source's key is all NULL (the
  // LEFT JOIN filled it); its step output must then be NULLs, as the SQL face's join gives.
  const missingKey = inner.map((node) => {
    const first = node.sources[0]!;
    return first.key.map((k) => offsets.get(first.table)! + first.columns.indexOf(k));
  });

  const jsUnsupported = [...inner.flatMap((n) => n.jsUnsupported), ...t.jsUnsupported];
  const sqlUnsupported = [...inner.flatMap((n) => n.sqlUnsupported), ...t.sqlUnsupported];

  let transformJs: (row: Row) => Row;
  if (jsUnsupported.length > 0) {
    transformJs = t.transformJs; // throws UnsupportedFaceError naming the step's ops...
    if (t.jsUnsupported.length === 0) {
      const failing = inner.find((n) => n.jsUnsupported.length > 0)!;
      transformJs = failing.transformJs; // ...or an earlier step's
    }
  } else if (identityGather) {
    const node = inner[0]!;
    transformJs = (row) => t.transformJs(node.transformJs(row));
  } else {
    transformJs = (row) => {
      const joined: Row = [];
      for (let j = 0; j < inner.length; j++) {
        const node = inner[j]!;
        const keyAt = missingKey[j]!;
        if (j > 0 && keyAt.length > 0 && keyAt.every((i) => row[i] === null)) {
          for (let k = 0; k < node.columns.length; k++) joined.push(null);
          continue;
        }
        const g = gathers[j]!;
        const input: Row = new Array(g.length);
        for (let k = 0; k < g.length; k++) input[k] = row[g[k]!]!;
        for (const v of node.transformJs(input)) joined.push(v);
      }
      return t.transformJs(joined);
    };
  }

  // A carried column is converted when what it carries was (an earlier step's op).
  const converted: Record<string, string> = { ...t.converted };
  for (const [col, deps] of Object.entries(t.origins)) {
    if (converted[col] !== undefined) continue;
    for (const d of deps) {
      const at = inner[d.source]!.converted[d.column];
      if (at !== undefined) converted[col] = at;
    }
  }
  const origins: Record<string, ColumnOrigin[]> = {};
  const lossy = new Set(t.lossyColumns);
  for (const [col, deps] of Object.entries(t.origins)) {
    const list: ColumnOrigin[] = [];
    for (const d of deps) {
      const node = inner[d.source]!;
      if (node.lossyColumns.includes(d.column)) lossy.add(col);
      for (const o of node.origins[d.column] ?? []) list.push({ source: sourcePos.get(node.sources[o.source]!.table)!, column: o.column });
    }
    origins[col] = list;
  }

  // Generated columns are compared through a chain when every step compares them.
  const generated = inner.length === 1 && t.generated.every((c) => inner[0]!.generated.includes(c)) ? t.generated : [];
  return {
    table: t.table,
    fromVersion: inner[0]!.fromVersion,
    toVersion: t.toVersion,
    sources,
    columns: t.columns,
    key: t.key,
    // A full reload anywhere in the chain makes the whole chain one; append stays append.
    reload: inner.some((n) => n.reload === 'full') ? 'full' : t.reload,
    // A query anywhere in the chain: recomputed whole, no source key, no JS face.
    ...(t.query ?? inner.find((n) => n.query)?.query ? { query: t.query ?? inner.find((n) => n.query)!.query } : {}),
    lossyColumns: [...lossy],
    origins,
    converted,
    sqlUnsupported,
    jsUnsupported,
    // Each once: a split followed by a merge reads one earlier table twice.
    expressions: [...new Map([...inner.flatMap((n) => n.expressions), ...t.expressions].map((e) => [`${e.file}\0${e.path}`, e])).values()],
    generated,
    selectSql: (sourceRel, withGenerated) => {
      const g = Boolean(withGenerated) && generated.length > 0;
      return t.selectSql((table) => `(${prev[table]!.selectSql(sourceRel, g)})`, g);
    },
    transformJs,
  };
}

/** The mappings from `from` to `to`, loaded and validated (up or down as needed). */
export async function loadChain(mappingsDir: string, from: number, to: number, catalogs: CatalogsByVersion): Promise<Mapping[]> {
  const mappings: Mapping[] = [];
  if (from < to) for (let v = from + 1; v <= to; v++) mappings.push(await loadMapping(mappingsDir, v, 'up', catalogs));
  else for (let v = from; v > to; v--) mappings.push(await loadMapping(mappingsDir, v, 'down', catalogs));
  return mappings;
}

/**
 * Compiles the chain of mappings from version `fromVersion` to `toVersion` (either
 * direction; equal versions give the identity). `catalogs` must hold every version in
 * between. Throws ValidationError for an invalid mapping on the way.
 */
export async function compileChain(mappingsDir: string, fromVersion: number, toVersion: number, catalogs: CatalogsByVersion): Promise<CompiledChain> {
  if (fromVersion === toVersion) {
    if (catalogs[fromVersion] === undefined) throw new InvalidInputError(`no catalog for v${fromVersion}`);
    const identity = parseMapping({ from: fromVersion, to: toVersion }, { file: `identity v${fromVersion}`, sourceVersion: fromVersion, targetVersion: toVersion, catalogs });
    return { from: fromVersion, to: toVersion, tables: compileStep(identity).tables, notCarried: {}, steps: [] };
  }
  const mappings = await loadChain(mappingsDir, fromVersion, toVersion, catalogs);
  return {
    from: fromVersion,
    to: toVersion,
    ...composeChain(mappings),
    steps: mappings.map((m, i) => compileStep(m, { fullWidth: i < mappings.length - 1 })),
  };
}

/**
 * For a chain going down (`from` > `to`): the columns of each `to` table that the up
 * mappings between the two versions declare lost, carried down to `to` (a column lost
 * at an intermediate version taints every `to` column computed from it). A row that went
 * up and comes back down may differ there by design (a DST gap time shifted, a value a
 * lossy map merged), so a rollback verify excludes and lists them rather than reporting
 * every such row, which a repair would then "fix" by overwriting the original.
 * Empty when going up: there the target holds exactly what the mapping computes.
 */
export async function lostGoingUp(mappingsDir: string, from: number, to: number, catalogs: CatalogsByVersion): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (let v = to + 1; v <= from; v++) {
    const lost = new Set((await loadMapping(mappingsDir, v, 'up', catalogs)).analysis.lost);
    if (lost.size === 0) continue;
    const add = (table: string, col: string) => {
      const cols = (out[table] ??= []);
      if (!cols.includes(col)) cols.push(col);
    };
    if (v - 1 === to) {
      // Lost in `to`'s own terms (a whole table lost has no rows to compare anyway).
      for (const id of lost) if (id.includes('.')) add(id.slice(0, id.indexOf('.')), id.slice(id.indexOf('.') + 1));
      continue;
    }
    const tables = (await compileChain(mappingsDir, v - 1, to, catalogs)).tables;
    for (const [name, t] of Object.entries(tables)) {
      for (const [col, deps] of Object.entries(t.origins)) {
        if (deps.some((d) => lost.has(`${t.sources[d.source]!.table}.${d.column}`))) add(name, col);
      }
    }
  }
  return out;
}
