/**
 * Sequences and identity columns on a target after a load: moved past every imported
 * value, so the application's next insert cannot collide with an imported key (the
 * logical-replication trap where sequences are left behind).
 */
import type pg from 'pg';
import { ident, literal } from './connect.ts';

export interface SequenceMove {
  table: string;
  column: string;
  sequence: string;
  /** Value the next nextval() returns after the move. */
  next: string;
}

export async function alignSequences(client: pg.Client, tables: string[]): Promise<SequenceMove[]> {
  const moves: SequenceMove[] = [];
  for (const table of tables) {
    const cols = await client.query<{ column: string; seq: string }>(
      `select a.attname as column, pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) as seq
         from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
        where c.oid = to_regclass(${literal(ident(table))}) and a.attnum > 0 and not a.attisdropped
          and pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) is not null`,
    );
    for (const { column, seq } of cols.rows) {
      // setval(seq, v, true): the next nextval returns v+1. Never moved backwards; an
      // empty table leaves the sequence alone.
      const r = await client.query<{ next: string | null }>(
        `select (setval(${literal(seq)}, greatest(m, (select last_value from ${seq})), true) + 1)::text as next
           from (select max(${ident(column)})::bigint as m from ${ident(table)}) s where m is not null`,
      );
      if (r.rows[0]?.next) moves.push({ table, column, sequence: seq, next: r.rows[0].next });
    }
  }
  return moves;
}
