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
}

export interface Catalog {
  /** Tables by name, sorted by name. */
  tables: Record<string, TableInfo>;
}
