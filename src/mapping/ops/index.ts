/**
 * The registry of column operations, by the `op` name used in mapping files.
 */
import type { ColumnOp } from '../op.ts';
import type { ColumnOpSpec } from '../types.ts';
import { cast } from './cast.ts';
import { concatColumns } from './concat-columns.ts';
import { constant } from './constant.ts';
import { defaultValue } from './default.ts';
import { dropColumn } from './drop-column.ts';
import { functionOp } from './function.ts';
import { renameColumn } from './rename-column.ts';
import { scale } from './scale.ts';
import { sqlExpression } from './sql-expression.ts';
import { splitColumn } from './split-column.ts';
import { valueMap } from './value-map.ts';

const OPS: { [K in ColumnOpSpec['op']]: ColumnOp<Extract<ColumnOpSpec, { op: K }>> } = {
  rename: renameColumn,
  copy: renameColumn,
  constant,
  default: defaultValue,
  drop: dropColumn,
  split: splitColumn,
  concat: concatColumns,
  map: valueMap,
  cast,
  function: functionOp,
  sql: sqlExpression,
  scale,
};

/** The implementation of `spec.op`. */
export function columnOp(spec: ColumnOpSpec): ColumnOp {
  return OPS[spec.op] as ColumnOp;
}
