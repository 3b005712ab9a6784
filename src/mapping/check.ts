/**
 * `bluegreen check`: validates every mapping, refuses ops no live path can run (no SQL
 * face), and round-trips fixture rows through each version pair, both ways
 * (down(up(rows)) and up(down(rows))), with a StepRunner: the JS face here, the SQL face
 * on a server too when src/convert/check.ts has one. A difference in a column the
 * outbound mapping declares lost is expected and listed; any other difference fails.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { diffCatalogs } from '../db/catalog.ts';
import type { Catalog, TableInfo } from '../db/catalog-types.ts';
import { BluegreenError, ValidationError, type ValidationProblem } from '../errors.ts';
import { compileStep, type CompiledStep } from './compile.ts';
import { loadMapping, type CatalogsByVersion, type Mapping } from './load.ts';
import type { Row } from './types.ts';

/** Fixture rows of one version: per table, rows in catalog column order (non-generated columns). */
export interface FixtureRows {
  /** Version the rows belong to. */
  version: number;
  /** Rows by table name; a table not listed has no rows. */
  tables: Record<string, Row[]>;
}

/** Round-trip result of one table. */
export interface RoundTripTable {
  /** Table (in the version the round trip starts from). */
  table: string;
  /** Rows sent out. */
  rows: number;
  /** Keys of rows that did not come back (at most 20). */
  missing: string[];
  /** Keys of rows that came back but were not sent (at most 20). */
  extra: string[];
  /** Rows that came back different, with the differing columns (at most 20). */
  changed: { key: string; columns: string[] }[];
  /** How many rows differ only in declared-lost columns (expected). */
  lossyChanged: number;
  /** No missing, extra or undeclared change. */
  ok: boolean;
}

/** One round trip: `from` -> `via` -> `from`. */
export interface RoundTrip {
  /** Version the rows start and end at. */
  from: number;
  /** Version they visit. */
  via: number;
  /** Every table round-tripped (losses aside). */
  ok: boolean;
  /** Why the round trip could not run (a value the mapping refused, an SQL-only op...). */
  error?: string;
  /** Source columns (`table.column`) and tables the outbound mapping declares lost. */
  lossyColumns: string[];
  /** Per table. */
  tables: RoundTripTable[];
}

/** The whole check. */
export interface CheckReport {
  /** No problem and every round trip ok. */
  ok: boolean;
  /** Versions found under the mappings folder. */
  versions: number[];
  /** Problems of invalid mapping files (every one of them). */
  problems: ValidationProblem[];
  /** Round trips, two per version pair whose mappings are valid and rows available. */
  roundTrips: RoundTrip[];
}

/** Versions in `mappingsDir` (folders `v1`, `v2`...), sorted. */
export async function listMappingVersions(mappingsDir: string): Promise<number[]> {
  const entries = await readdir(mappingsDir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && /^v[1-9][0-9]*$/.test(e.name))
    .map((e) => Number(e.name.slice(1)))
    .sort((a, b) => a - b);
}

const MAX_LISTED = 20;

/** Runs one compiled step over in-memory rows (joining merged sources by key). */
export function applyStep(step: Pick<CompiledStep, 'tables'>, rows: Record<string, Row[]>): Record<string, Row[]> {
  const out: Record<string, Row[]> = {};
  for (const [name, t] of Object.entries(step.tables)) {
    // A query table has no JS face: only a server computes it (src/convert/faces.ts).
    if (t.query) continue;
    const [first, ...later] = t.sources;
    const firstRows = rows[first!.table] ?? [];
    if (later.length === 0) {
      out[name] = firstRows.map((r) => t.transformJs(r));
      continue;
    }
    const keyOf = (s: (typeof t.sources)[number], r: Row) => JSON.stringify(s.key.map((k) => r[s.columns.indexOf(k)]));
    const indexes = later.map((s) => new Map((rows[s.table] ?? []).map((r) => [keyOf(s, r), r])));
    out[name] = firstRows.map((r) => {
      const k = keyOf(first!, r);
      const joined = [...r];
      later.forEach((s, i) => joined.push(...(indexes[i]!.get(k) ?? new Array<string | null>(s.columns.length).fill(null))));
      return t.transformJs(joined);
    });
  }
  return out;
}

function keyString(t: TableInfo, row: Row): string {
  const cols = t.columns.filter((c) => !c.generated);
  const key = t.primaryKey.length > 0 ? t.primaryKey : cols.map((c) => c.name);
  return JSON.stringify(key.map((k) => row[cols.findIndex((c) => c.name === k)]));
}

function compareTable(t: TableInfo, sent: Row[], back: Row[], lost: Set<string>): RoundTripTable {
  const cols = t.columns.filter((c) => !c.generated).map((c) => c.name);
  const backByKey = new Map(back.map((r) => [keyString(t, r), r]));
  const sentKeys = new Set<string>();
  const result: RoundTripTable = { table: t.name, rows: sent.length, missing: [], extra: [], changed: [], lossyChanged: 0, ok: true };
  const tableLost = lost.has(t.name);
  for (const row of sent) {
    const key = keyString(t, row);
    sentKeys.add(key);
    const b = backByKey.get(key);
    if (b === undefined) {
      if (!tableLost) {
        result.ok = false;
        if (result.missing.length < MAX_LISTED) result.missing.push(key);
      }
      continue;
    }
    const differ = cols.filter((_, i) => row[i] !== b[i]);
    if (differ.length === 0) continue;
    if (tableLost || differ.every((c) => lost.has(`${t.name}.${c}`))) result.lossyChanged++;
    else {
      result.ok = false;
      if (result.changed.length < MAX_LISTED) result.changed.push({ key, columns: differ });
    }
  }
  for (const key of backByKey.keys()) {
    if (!sentKeys.has(key)) {
      result.ok = false;
      if (result.extra.length < MAX_LISTED) result.extra.push(key);
    }
  }
  return result;
}

/**
 * Runs one mapping over in-memory rows of its source version, giving rows of its target
 * version (every column, those left to DEFAULT as NULL). The default is the JS face;
 * `bluegreen check` with a server runs the SQL face in PostgreSQL too, proves the two
 * equal, and so also covers tables whose ops have no JS face.
 */
export type StepRunner = (mapping: Mapping, rows: Record<string, Row[]>) => Promise<Record<string, Row[]>>;

/** The JS face only (no server). */
export const jsStepRunner: StepRunner = async (m, rows) => applyStep(compileStep(m, { fullWidth: true }), rows);

/**
 * Problems that make a mapping unrunnable on some path: an op without an SQL face cannot
 * run in sync, verify or cutover (which convert inside PostgreSQL). An op without a JS
 * face is fine: offline paths run its SQL face in PostgreSQL.
 */
export function pathProblems(m: Mapping): ValidationProblem[] {
  const out: ValidationProblem[] = [];
  for (const t of m.analysis.tables) {
    t.ops.forEach((op, i) => {
      if (op === undefined || Array.isArray(op.sql)) return;
      out.push({
        file: m.file,
        path: `${t.path}/ops/${i}`,
        message: `${op.sql.unsupported}: sync, verify and cutover (which convert inside PostgreSQL) cannot run this mapping`,
        hint: 'give the function op an SQL face, "sql": {"<to column>": "<expression over the from columns>"}, or use an sql op with "js" naming the function',
      });
    });
  }
  return out;
}

async function roundTrip(from: number, via: number, out: Mapping, back: Mapping, rows: Record<string, Row[]>, catalog: Catalog, run: StepRunner): Promise<RoundTrip> {
  const lossyColumns = out.analysis.lost;
  const trip: RoundTrip = { from, via, ok: true, lossyColumns, tables: [] };
  try {
    const there = await run(out, rows);
    const again = await run(back, there);
    const lost = new Set(lossyColumns);
    for (const t of Object.values(catalog.tables)) {
      const r = compareTable(t, rows[t.name] ?? [], again[t.name] ?? [], lost);
      trip.tables.push(r);
      if (!r.ok) trip.ok = false;
    }
  } catch (e) {
    if (!(e instanceof BluegreenError)) throw e;
    trip.ok = false;
    trip.error = e.message;
  }
  return trip;
}

/**
 * Versions whose schema.sql version detection cannot tell apart (src/db/catalog.ts,
 * diffCatalogs): a database at either matches both, so sync, verify and cutover refuse
 * it. Caught here, where the fix is an edit, rather than on the first live run.
 */
export function indistinguishable(mappingsDir: string, versions: number[], catalogs: CatalogsByVersion): ValidationProblem[] {
  const out: ValidationProblem[] = [];
  for (const [i, b] of versions.entries()) {
    for (const a of versions.slice(0, i)) {
      const ca = catalogs[a];
      const cb = catalogs[b];
      if (!ca || !cb || diffCatalogs(ca, cb).length > 0 || diffCatalogs(cb, ca).length > 0) continue;
      out.push({
        file: path.join(mappingsDir, `v${b}`, 'schema.sql'),
        path: '',
        message: `v${a} and v${b} have the same schema as version detection compares them (tables, columns, types, keys, defaults, identity and generated columns, checks, enums, domains): a database at either matches both and is refused`,
        hint: `make v${b}/schema.sql say what changed since v${a} (a new enum label, a check, a default...), or remove v${b} if nothing did`,
      });
    }
  }
  return out;
}

/**
 * Validates every mapping under `mappingsDir` against `catalogs` (which must hold every
 * version) and round-trips `fixtureRows` through each version pair, both directions. The
 * fixture rows are carried to the other versions through the mappings themselves.
 * Never throws for invalid mappings: they are reported in `problems`.
 */
export async function checkMappings(mappingsDir: string, catalogs: CatalogsByVersion, fixtureRows: FixtureRows, run: StepRunner = jsStepRunner): Promise<CheckReport> {
  const versions = await listMappingVersions(mappingsDir);
  const problems: ValidationProblem[] = [...indistinguishable(mappingsDir, versions, catalogs)];
  const up = new Map<number, Mapping>();
  const down = new Map<number, Mapping>();
  for (const v of versions.slice(1)) {
    for (const [dir, into] of [['up', up], ['down', down]] as const) {
      try {
        const m = await loadMapping(mappingsDir, v, dir, catalogs);
        into.set(v, m);
        problems.push(...pathProblems(m));
      } catch (e) {
        if (e instanceof ValidationError) problems.push(...e.problems);
        else throw e;
      }
    }
  }

  // Carry the fixture rows to every version reachable through valid mappings.
  const rowsAt = new Map<number, Record<string, Row[]>>([[fixtureRows.version, fixtureRows.tables]]);
  const carry = async (m: Mapping | undefined, fromV: number, toV: number) => {
    const rows = rowsAt.get(fromV);
    if (m === undefined || rows === undefined) return;
    try {
      rowsAt.set(toV, await run(m, rows));
    } catch (e) {
      if (!(e instanceof BluegreenError)) throw e;
      problems.push({ file: m.file, path: '', message: `fixture rows of v${fromV} cannot be converted: ${e.message}`, ...(e.hint ? { hint: e.hint } : {}) });
    }
  };
  for (let v = fixtureRows.version + 1; v <= (versions.at(-1) ?? 0); v++) await carry(up.get(v), v - 1, v);
  for (let v = fixtureRows.version; v > (versions[0] ?? 0); v--) await carry(down.get(v), v, v - 1);

  const roundTrips: RoundTrip[] = [];
  for (const v of versions.slice(1)) {
    const u = up.get(v);
    const d = down.get(v);
    if (u === undefined || d === undefined) continue;
    const below = rowsAt.get(v - 1);
    const above = rowsAt.get(v);
    if (below) roundTrips.push(await roundTrip(v - 1, v, u, d, below, catalogs[v - 1]!, run));
    if (above) roundTrips.push(await roundTrip(v, v - 1, d, u, above, catalogs[v]!, run));
  }
  return { ok: problems.length === 0 && roundTrips.every((r) => r.ok), versions, problems, roundTrips };
}
