/**
 * How verify turns one row into one 64-bit hash, on both servers, without printing it.
 *
 * The old encoding, `hashtextextended(row(c1, c2, …)::text, 0)`, runs every column's text
 * output function (numeric, timestamptz with zone formatting, bytea hex, arrays, jsonb):
 * most of verify's per-row cost. The binary encoding hashes, per column, a canonical
 * byte string whose equality is exactly the equality of the column's text:
 *
 * - `direct`: text and varchar (under `COLLATE "C"`, so their hash is over the stored
 *   bytes whatever the column's collation: a case-insensitive ICU collation would
 *   otherwise hash 'A' and 'a' alike), bytea and uuid. Their extended hash functions are
 *   a hash over every byte of the value, so nothing is lost and nothing is printed.
 * - `send`: the type's binary send function (`numeric_send`, `timestamptz_send`,
 *   `interval_send`, `jsonb_send`, …, looked up in the target's pg_type), for built-in
 *   types whose send output is canonical. Hash functions are not: numeric's ignores the
 *   scale (1.0 and 1.00 hash alike), int8's and timestamptz's fold the high 32 bits into
 *   the low ones (0 and 4294967297 hash alike; so do two instants 71.6 minutes apart),
 *   interval's and timetz's follow `=` ('1 day' = '24 hours'). The send output keeps what
 *   the text shows: numeric's dscale, interval's three fields, timetz's zone.
 *   Arrays of such types use `array_send` with its has-nulls flag cleared: an array that
 *   once held a NULL keeps its null bitmap after the NULL is overwritten (`a[1] := 1`), so
 *   the flag can differ between two arrays that print the same; the element lengths (-1
 *   for NULL) already say where the NULLs are.
 * - `text`: the column's text, as before, where binary equality is not text equality or
 *   type OIDs are not portable: float4/float8 and geometric types (NaN has several bit
 *   patterns that all print `NaN`), enums, domains, composites, extension types, arrays
 *   of those, and any built-in type not listed here.
 *
 * The per-column values are combined by `hash_record_extended(row(…), 0)` (PostgreSQL 14+),
 * which hashes each field (NULL as 0) and combines them as `h * 31 + field`. That
 * combination is linear, and verify SUMS row hashes per key bucket: two rows of one
 * bucket swapping a column's values would leave the sum unchanged. One more hash over the
 * 64-bit result (`hashtextextended(h::text, 0)`: int8 text is exact and short) mixes it,
 * so a bucket's sum sees every row as a whole again.
 *
 * Both sides must encode alike, so the binary encoding is used only when both servers
 * are PostgreSQL 14 or later; otherwise both use the row text. Text and jsonb sent in
 * binary go through client_encoding, which every session pins to UTF8 (src/db/connect.ts).
 */
import type pg from 'pg';
import { ident } from '../db/connect.ts';

/** How one compared column enters the row hash. */
export type FieldEncoding = 'direct' | 'send' | 'text';

/** A target column's type, as the target's catalog has it. */
export interface ColumnEncoding {
  /** The column's type as format_type() spells it (what the source is cast to). */
  type: string;
  encoding: FieldEncoding;
  /** The send function (`numeric_send`, `array_send`) when `encoding` is `send`. */
  send?: string;
  /** True for an array sent with array_send (its has-nulls flag is cleared). */
  array?: boolean;
}

// Built-in types (pg_catalog, OID < 16384: the same OID on every server) whose send output
// is canonical, i.e. equal bytes exactly when equal text.
const SEND = new Set([
  'bool', 'int2', 'int4', 'int8', 'oid', 'numeric', 'money', 'date', 'time', 'timetz', 'timestamp', 'timestamptz',
  'interval', 'bpchar', 'name', 'char', 'json', 'jsonb', 'inet', 'cidr', 'macaddr', 'macaddr8',
]);
// Built-in types whose extended hash is a hash over all of the value's bytes.
const DIRECT = new Set(['text', 'varchar', 'bytea', 'uuid']);

interface TypeRow {
  table: string;
  column: string;
  type: string;
  oid: number;
  typname: string;
  typtype: string;
  send: string;
  elem: string | null;
  elemoid: number | null;
  elemtype: string | null;
}

/** Decides a column's encoding from its target type (pure: unit-testable). */
export function encodingOf(t: Omit<TypeRow, 'table' | 'column'>): ColumnEncoding {
  const builtin = (oid: number | null) => oid !== null && oid < 16384;
  if (t.typtype === 'b' && builtin(t.oid)) {
    if (DIRECT.has(t.typname)) return { type: t.type, encoding: 'direct' };
    if (SEND.has(t.typname)) return { type: t.type, encoding: 'send', send: t.send };
    if (t.elem && t.elemtype === 'b' && builtin(t.elemoid) && (SEND.has(t.elem) || DIRECT.has(t.elem)) && t.send === 'array_send') {
      return { type: t.type, encoding: 'send', send: 'array_send', array: true };
    }
  }
  return { type: t.type, encoding: 'text' };
}

/**
 * Every column's encoding for `tables` on the target, keyed by table then column. The
 * target is authoritative: the source is cast to these types before it is encoded.
 */
export async function readEncodings(client: pg.Client, tables: string[]): Promise<Map<string, Map<string, ColumnEncoding>>> {
  const r = await client.query<TypeRow>(
    `select c.relname as table, a.attname as column, format_type(a.atttypid, a.atttypmod) as type,
            t.oid::int as oid, t.typname, t.typtype, t.typsend::text as send,
            e.typname as elem, e.oid::int as elemoid, e.typtype as elemtype
       from pg_attribute a
       join pg_class c on c.oid = a.attrelid
       join pg_type t on t.oid = a.atttypid
       left join pg_type e on e.oid = t.typelem and t.typcategory = 'A'
      where a.attrelid = any (select to_regclass(n) from unnest($1::text[]) n)
        and a.attnum > 0 and not a.attisdropped`,
    [tables.map(ident)],
  );
  const out = new Map<string, Map<string, ColumnEncoding>>();
  for (const row of r.rows) {
    if (!out.has(row.table)) out.set(row.table, new Map());
    out.get(row.table)!.set(row.column, encodingOf(row));
  }
  return out;
}

/** True when both servers have `hash_record_extended` (PostgreSQL 14+). */
export async function binaryHashAvailable(src: pg.Client, dst: pg.Client): Promise<boolean> {
  const v = async (c: pg.Client) => Number((await c.query<{ v: string }>(`select current_setting('server_version_num') as v`)).rows[0]!.v);
  const [a, b] = await Promise.all([v(src), v(dst)]);
  return a >= 140000 && b >= 140000;
}

/**
 * One field of the row hash. `expr` is already of the target column's type (the target's
 * column itself, or the source's projection cast to it); a `text`-encoded column of a
 * user-defined type arrives from the source as text, which is what the target prints.
 */
export function fieldSql(expr: string, enc: ColumnEncoding): string {
  switch (enc.encoding) {
    case 'direct':
      return /^(text|character varying)/.test(enc.type) ? `(${expr})::text collate "C"` : `(${expr})`;
    case 'send':
      return enc.array
        ? `overlay(array_send(${expr}) placing decode('00000000', 'hex') from 5 for 4)`
        : `${enc.send}(${expr})`;
    case 'text':
      return `(${expr})::text collate "C"`;
  }
}

/** The 64-bit row hash of `fields` (see the module comment for the final mixing step). */
export function rowHashSql(fields: string[]): string {
  return `hashtextextended(hash_record_extended(row(${fields.join(', ')}), 0)::text, 0)`;
}
