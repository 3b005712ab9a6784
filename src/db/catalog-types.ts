/**
 * What bluegreen knows of a schema: tables, columns, types and keys. Produced from a live
 * database's catalog (src/db/catalog.ts) and from each version's schema.sql (applied in a
 * rolled-back transaction), so both sides are described by PostgreSQL itself.
 */

export interface ColumnInfo {
  /** Column name. */
  name: string;
  /** Type as `format_type()` prints it: `text`, `numeric(20,6)`, `timestamp with time zone`, `text[]`. */
  type: string;
  /** NOT NULL constraint. */
  notNull: boolean;
  /** Has a DEFAULT expression or is an identity column. */
  hasDefault: boolean;
  /** Identity column (`GENERATED ... AS IDENTITY`); its sequence is moved at cutover. */
  identity: boolean;
  /** Generated (computed) column: never written by COPY. */
  generated: boolean;
  /**
   * The DEFAULT expression as pg_get_expr prints it (`'new'::text`, `now()`), null when
   * none; a sequence's default is `nextval(sequence)` whatever the sequence is called (a
   * serial renamed with its table keeps its old sequence, which means nothing to a
   * mapping). Compared by version detection: a `default` op writes whatever it says.
   * Absent in catalogs learnt before format 2.
   */
  default?: string | null;
  /** `always` or `by default` for an identity column (it decides whether COPY may write it). */
  identityKind?: 'always' | 'by default';
  /** A generated column's expression and kind: `(price * qty) stored`. */
  generatedAs?: string;
}

export interface ForeignKeyInfo {
  /** Columns of this table. */
  columns: string[];
  /** Referenced table. */
  refTable: string;
  /** Referenced columns. */
  refColumns: string[];
}

export interface TableInfo {
  /** Table name (unqualified; bluegreen works in one schema). */
  name: string;
  /** Columns in attnum order. */
  columns: ColumnInfo[];
  /** Primary key columns in key order; empty when the table has none. */
  primaryKey: string[];
  /** Unique constraints / unique indexes over non-null columns, each a column list. */
  uniqueKeys: string[][];
  /** Foreign keys, for load order. */
  foreignKeys: ForeignKeyInfo[];
  /**
   * Watermark column for incremental sync, declared in schema.sql with
   * `COMMENT ON COLUMN t.c IS 'bluegreen:watermark'`; absent when not declared.
   */
  watermark?: string;
  /**
   * How the watermark's values are set, from the same comment:
   * `'bluegreen:watermark zone=Europe/Berlin skew=30s'`; absent when the comment says neither.
   */
  watermarkRule?: { zone?: string; skew?: string };
  /** CHECK constraints as pg_get_constraintdef prints them, sorted (names left out). */
  checks?: string[];
  /**
   * For a partitioned table, its partition key as `pg_get_partkeydef` prints it
   * (`RANGE (created_at)`); absent for a plain table. Partitions themselves are not
   * tables of the version: they are part of their parent's data.
   */
  partitionBy?: string;
  /**
   * The plain columns of the partition key, in key order (an expression in the key has no
   * column and is left out). Every unique key of a partitioned table includes them.
   */
  partitionColumns?: string[];
}

/** An enum or a domain of the schema, as version detection compares it. */
export type TypeInfo =
  | { kind: 'enum'; /** Labels in their sort order. */ labels: string[] }
  | {
      kind: 'domain';
      /** Base type as format_type prints it. */
      base: string;
      notNull: boolean;
      /** DEFAULT expression, null when none. */
      default: string | null;
      /** CHECK constraints, sorted. */
      checks: string[];
    };

export interface Catalog {
  /** Tables by name, sorted by name. */
  tables: Record<string, TableInfo>;
  /**
   * Enums and domains of the schema by name as format_type prints it (the name columns
   * use), extension members left out. Absent in catalogs learnt before format 2.
   */
  types?: Record<string, TypeInfo>;
}
