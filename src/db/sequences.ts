/**
 * Sequences and identity columns on a target after a load: moved past every imported
 * value, so the application's next insert cannot collide with an imported key (the
 * logical-replication trap where sequences are left behind).
 *
 * Every sequence a loaded column draws from counts: identity and serial columns (owned
 * sequences) and plain `DEFAULT nextval('s')` defaults, including a sequence shared by
 * several columns or tables, which moves past the largest value of all of them.
 *
 * The move is `ALTER SEQUENCE ... RESTART WITH`, which is transactional (checked on the
 * server: rolled back, the sequence is where it was), unlike `setval`, which no rollback
 * undoes. It runs in the load's transaction, so a failed or killed run leaves every
 * sequence as it was. It locks the sequence until commit, so it runs only for a sequence
 * that must actually move: a run that imported nothing new blocks no nextval().
 */
import type pg from 'pg';
import { ident } from './connect.ts';

export interface SequenceMove {
  table: string;
  column: string;
  sequence: string;
  /** Value the next nextval() returns after the move. */
  next: string;
}

interface Use {
  seq: string;
  table: string;
  column: string;
}

export async function alignSequences(client: pg.Client, tables: string[]): Promise<SequenceMove[]> {
  // Integer columns of the loaded tables and the sequence each draws from.
  const uses = await client.query<Use>(
    `with cols as (
       select c.oid as rel, t as table_name, a.attname, a.attnum, format('%I.%I', n.nspname, c.relname) as qualified
         from unnest($1::text[]) t
         join pg_class c on c.oid = to_regclass(quote_ident(t))
         join pg_namespace n on n.oid = c.relnamespace
         join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        where a.atttypid in ('int2'::regtype, 'int4'::regtype, 'int8'::regtype))
     select distinct seq, table_name as "table", attname as "column" from (
       select pg_get_serial_sequence(qualified, attname)::regclass::text as seq, table_name, attname from cols
       union all
       select d.refobjid::regclass::text, cols.table_name, cols.attname
         from cols
         join pg_attrdef ad on ad.adrelid = cols.rel and ad.adnum = cols.attnum
         join pg_depend d on d.classid = 'pg_attrdef'::regclass and d.objid = ad.oid and d.refclassid = 'pg_class'::regclass
         join pg_class s on s.oid = d.refobjid and s.relkind = 'S') u
      where seq is not null
      order by 1, 2, 3`,
    [tables],
  );
  const bySeq = new Map<string, Use[]>();
  for (const u of uses.rows) bySeq.set(u.seq, [...(bySeq.get(u.seq) ?? []), u]);
  const moves: SequenceMove[] = [];
  for (const [seq, list] of bySeq) {
    const maxes = list.map((u) => `select max(${ident(u.column)})::bigint as m from ${ident(u.table)}`).join(' union all ');
    // Where the sequence stands: the value its next nextval() would return.
    const r = await client.query<{ needed: string | null; next: string; inc: string }>(
      `select (select max(m) + p.seqincrement from (${maxes}) x)::text as needed,
              (case when q.is_called then q.last_value + p.seqincrement else q.last_value end)::text as next,
              p.seqincrement::text as inc
         from ${seq} q, pg_sequence p
        where p.seqrelid = $1::regclass`,
      [seq],
    );
    const st = r.rows[0];
    // Never moved backwards; an empty table leaves it alone; descending sequences are left to their owner.
    if (!st?.needed || BigInt(st.inc) <= 0n || BigInt(st.needed) <= BigInt(st.next)) continue;
    await client.query(`alter sequence ${seq} restart with ${BigInt(st.needed)}`);
    // Reported once per column that draws from it.
    for (const u of list) moves.push({ table: u.table, column: u.column, sequence: seq, next: st.needed });
  }
  return moves;
}
