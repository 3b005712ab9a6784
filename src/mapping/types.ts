/**
 * Types of a mapping file (they follow src/schemas/mapping.schema.json, the single source
 * of truth for the format) and of the rows the JS face works on.
 */

/**
 * One row as PostgreSQL prints it (COPY text values with DateStyle=ISO, TimeZone=UTC,
 * extra_float_digits=3, bytea_output=hex, IntervalStyle=postgres): one entry per column
 * in table column order, `null` for SQL NULL. NULL and '' are different values.
 */
export type Row = (string | null)[];

/** `up`: vN-1 -> vN (cutover); `down`: vN -> vN-1 (rollback). */
export type Direction = 'up' | 'down';

/** Target column `to` takes source column `from` unchanged. */
export interface RenameOpSpec {
  op: 'rename' | 'copy';
  from: string;
  to: string;
}
/** Target column gets the same value on every row. */
export interface ConstantOpSpec {
  op: 'constant';
  column: string;
  value: string | null;
}
/** Target column is left to its DEFAULT. */
export interface DefaultOpSpec {
  op: 'default';
  column: string;
}
/** Source column deliberately not carried. */
export interface DropOpSpec {
  op: 'drop';
  column: string;
}
/** One text column split at the first separator(s) into several. */
export interface SplitOpSpec {
  op: 'split';
  from: string;
  to: string[];
  separator: string;
}
/** Several text columns joined with one separator (inverse of split). */
export interface ConcatOpSpec {
  op: 'concat';
  from: string[];
  to: string;
  separator: string;
}
/** Value-by-value map (enum renames). */
export interface MapOpSpec {
  op: 'map';
  from: string;
  to?: string;
  values: [string | null, string | null][];
  else?: string | null;
}
/** Type change to the target column's type. */
export interface CastOpSpec {
  op: 'cast';
  from: string;
  to?: string;
  /**
   * For `timestamp` <-> `timestamptz`: the zone the local times are in (IANA name, e.g.
   * `Europe/Berlin`). Without it, UTC.
   */
  zone?: string;
  /**
   * With a `zone`: what to do with local times the zone's clock changes skip (gap) or
   * show twice (fold). `refuse` (default) fails the run naming the row; `later` (up only)
   * refuses gap times and reads a fold time as its later instant; `shift` converts as
   * PostgreSQL does and must be declared in `loses`.
   */
  dst?: 'refuse' | 'later' | 'shift';
}
/** Named TypeScript function from the version's functions.ts. */
export interface FunctionOpSpec {
  op: 'function';
  name: string;
  from: string[];
  to: string[];
  lossless?: boolean;
  /** SQL face: per `to` column, an expression over the `from` columns (by bare name). */
  sql?: Record<string, string>;
}
/** An SQL expression over source columns (by bare name), with an optional JS twin. */
export interface SqlOpSpec {
  op: 'sql';
  /** Source columns the expression reads. */
  from: string[];
  /** Target column. */
  to: string;
  /** SQL expression over the `from` columns. */
  expr: string;
  /** Name of a twin in functions.ts, proven equal to `expr` on fixtures by `check`. */
  js?: string;
}
/** Target = source × factor, exact decimal arithmetic (integer cents <-> numeric). */
export interface ScaleOpSpec {
  op: 'scale';
  from: string;
  /** Target column; defaults to `from`. */
  to?: string;
  /** Decimal factor in text, e.g. `0.01` or `100`. */
  factor: string;
}

/** Any column operation of a table mapping. */
export type ColumnOpSpec =
  | RenameOpSpec
  | ConstantOpSpec
  | DefaultOpSpec
  | DropOpSpec
  | SplitOpSpec
  | ConcatOpSpec
  | MapOpSpec
  | CastOpSpec
  | FunctionOpSpec
  | SqlOpSpec
  | ScaleOpSpec;

/** A watermark column and how its values are set (see src/sync/watermark.ts). */
export interface WatermarkSpec {
  /** Source column. */
  column: string;
  /** The writers' zone (IANA name) for a `timestamp without time zone` or `date` watermark. */
  zone?: string;
  /** Clock-skew allowance (PostgreSQL interval) for a watermark the application sets itself. */
  skew?: string;
}

/** How one target table is produced. */
export interface TableMappingSpec {
  /** Source table, or several joined on the key (LEFT JOIN from the first). */
  from: string | { merge: string[] };
  /** Target key columns; defaults to the target primary key. */
  key?: string[];
  /** Source column that grows on every write, or that column with how its values are set. */
  watermark?: string | WatermarkSpec;
  /** `full`: copy the whole table on every run; `append`: keyless, insert-only, synced by its watermark. */
  reload?: 'full' | 'incremental' | 'append';
  /** What changed; everything else is carried by name. */
  ops?: ColumnOpSpec[];
}

/** A target table nothing on the source side produces: it starts empty and is not carried. */
export interface NewTableSpec {
  new: 'empty';
  /** Free text for people. */
  description?: string;
}

/** A target table derived from source tables by one SQL query, recomputed on every run. */
export interface QueryTableSpec {
  /** A SELECT over source tables (unqualified names) yielding every non-generated target column by name. */
  query: string;
  /** Target key columns; the query yields each key once. */
  key: string[];
  /** Free text for people. */
  description?: string;
}

/** One entry of a mapping's `tables`: mapped from source tables, new and empty, or derived by a query. */
export type TableEntrySpec = TableMappingSpec | NewTableSpec | QueryTableSpec;

/** The entry is a table mapped from source tables (it has `from`). */
export function isMappedTable(spec: TableEntrySpec): spec is TableMappingSpec {
  return (spec as TableMappingSpec).from !== undefined;
}

/** A declared loss: a whole source table (no column) or one source column. */
export interface LossSpec {
  table: string;
  column?: string;
  why: string;
}

/** A mapping file as validated by the JSON Schema. */
export interface MappingFile {
  $schema?: string;
  description?: string;
  from: number;
  to: number;
  tables?: Record<string, TableEntrySpec>;
  loses?: LossSpec[];
  /** Decisions left open by `new-version --from`; a mapping with any is refused until they are made. */
  _todo?: string[];
}

/**
 * Escape-hatch function exported from mappings/vN/functions.ts: receives the values of the
 * op's `from` columns and returns the values of its `to` columns, all in text form.
 */
export type MappingFunction = (values: readonly (string | null)[]) => readonly (string | null)[];
