/**
 * Runs one column op through the whole engine: a one-table mapping `t` (key `id`) from a
 * source version 1 to a target version 2 and back, with the op's `invert` as the down
 * mapping. Used by the table-driven runner (ops.test.ts) and the per-op tests.
 */
import { compileStep, type CompiledTable } from '../../../src/mapping/compile.ts';
import { parseMapping, type Mapping } from '../../../src/mapping/load.ts';
import { columnOp } from '../../../src/mapping/ops/index.ts';
import type { OpEnv } from '../../../src/mapping/op.ts';
import type { ColumnOpSpec, Row } from '../../../src/mapping/types.ts';
import { catalog, table } from './catalog-helper.ts';

/** A one-table scenario for an op. */
export interface OpScenario {
  /** Source columns besides `id bigint pk`. */
  source: string[];
  /** Target columns besides `id bigint pk`. */
  target: string[];
  /** The op under test (up). */
  op: ColumnOpSpec;
  /** Ops of the down mapping; defaults to the op's `invert`. */
  down?: ColumnOpSpec[];
  /** Source columns the up mapping loses (column names of `t`). */
  upLoses?: string[];
  /** Target columns the down mapping loses. */
  downLoses?: string[];
  /** functions.ts exports for function ops. */
  functions?: Record<string, unknown>;
}

/** The compiled up and down tables of a scenario. */
export interface OpRun {
  up: CompiledTable;
  down: CompiledTable;
  upMapping: Mapping;
  downMapping: Mapping;
  /** Up then down, on a row without `id`. */
  roundTrip(row: Row): Row;
  /** Up on a row without `id`, result without `id`. */
  forward(row: Row): Row;
}

const loses = (cols: string[] = []) => cols.map((c) => ({ table: 't', column: c, why: 'test' }));

/** Builds and compiles the scenario; throws ValidationError when the mapping is invalid. */
export function runOp(s: OpScenario): OpRun {
  const v1 = catalog(table('t', ['id bigint pk', ...s.source]));
  const v2 = catalog(table('t', ['id bigint pk', ...s.target]));
  const catalogs = { 1: v1, 2: v2 };
  const upMapping = parseMapping(
    { from: 1, to: 2, tables: { t: { from: 't', ops: [s.op] } }, loses: loses(s.upLoses) },
    { file: 'up.json', sourceVersion: 1, targetVersion: 2, catalogs, functions: s.functions },
  );
  const downOps = s.down ?? invertOp(s.op, v2.tables.t!);
  const downMapping = parseMapping(
    { from: 2, to: 1, tables: { t: { from: 't', ops: downOps } }, loses: loses(s.downLoses) },
    { file: 'down.json', sourceVersion: 2, targetVersion: 1, catalogs, functions: s.functions },
  );
  const up = compileStep(upMapping, { fullWidth: true }).tables.t!;
  const down = compileStep(downMapping, { fullWidth: true }).tables.t!;
  return {
    up,
    down,
    upMapping,
    downMapping,
    forward: (row) => up.transformJs(['1', ...row]).slice(1),
    roundTrip: (row) => down.transformJs(up.transformJs(['1', ...row])).slice(1),
  };
}

/** The op's own inverse, as the reverse mapping's ops. */
export function invertOp(op: ColumnOpSpec, target: import('../../../src/db/catalog-types.ts').TableInfo): ColumnOpSpec[] {
  const env = { table: 't', target } as unknown as OpEnv;
  const inv = columnOp(op).invert(op, env);
  if (inv === null) throw new Error(`op ${op.op} has no inverse; give the scenario a down`);
  return inv;
}
