/**
 * What holds a freeze against the application itself, and what shows when it did not.
 *
 * The freeze trigger stops every role that does not own the tables. The tables' OWNER can
 * walk through it (`ALTER TABLE … DISABLE TRIGGER USER`, `DISABLE TRIGGER bluegreen_freeze`,
 * `UPDATE bluegreen.freeze SET active = false`, replacing the trigger function, a new
 * partition): PostgreSQL gives a non-superuser no way to stop an owner. So:
 *
 * - **Prevent** what can be prevented: while frozen, the INSERT/UPDATE/DELETE/TRUNCATE
 *   grants (table and column grants) the owner made to other roles (an application role,
 *   PUBLIC) are revoked, so such
 *   a role is refused by privilege even if the trigger were gone; unfreezing grants back
 *   exactly what was revoked (remembered in `bluegreen.freeze_grants`). `bluegreen.freeze`
 *   lives in a schema other roles have no privilege on.
 * - **Detect** the rest with a seal (`bluegreen.freeze_seal`), written in the freezing
 *   transaction and renewed by bluegreen's own writes into the frozen side: the xmin of
 *   every freeze trigger's pg_trigger row (ALTER TABLE … DISABLE/ENABLE TRIGGER rewrites
 *   it, so disabling and re-enabling shows too), of the trigger function and of the active
 *   flag row (any UPDATE of it shows), the oid of `bluegreen.freeze` (a look-alike swapped
 *   in), each table's relfilenode (TRUNCATE, rewrites), the members of each partition tree,
 *   and a write counter per table (pg_stat n_tup_ins + n_tup_upd + n_tup_del, this
 *   transaction's own pending counts included). Every one of those is exact except the
 *   counter, whose other sessions' share reaches the statistics up to about a second after
 *   their commit: a counter that moved is therefore confirmed by looking for rows whose
 *   xmin is newer than the sealing transaction (a scan of that table only, only then).
 *
 * The safe layout is bluegreen owning the tables and the application writing as another
 * role with DML grants: then the freeze is enforced twice (trigger and privileges). With
 * the application as the owner, tampering is detected (cutover fails, status and the
 * rollback sync refuse), not prevented.
 */
import type pg from 'pg';
import { ident, literal } from './connect.ts';
import { RuntimeFailure } from '../errors.ts';

export const FREEZE_TRIGGER_NAME = 'bluegreen_freeze';

const WRITE_PRIVILEGES = ['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'];

/** Creates the guard's tables (inside the freezing transaction). */
export async function ensureGuardObjects(client: pg.Client): Promise<void> {
  await client.query(`create table if not exists bluegreen.freeze_grants (
    rel        text not null,
    grantee    text not null,
    privilege  text not null,
    grantable  boolean not null,
    primary key (rel, grantee, privilege))`);
  await client.query(`create table if not exists bluegreen.freeze_seal (
    one       boolean primary key default true check (one),
    sealed_at timestamptz not null default clock_timestamp(),
    evidence  jsonb not null)`);
  // Only the owner (bluegreen's role) may touch the flag and its guards; the schema grants
  // nothing to others already, this says so explicitly.
  await client.query(`revoke all on bluegreen.freeze, bluegreen.freeze_epoch, bluegreen.freeze_grants, bluegreen.freeze_seal from public`);
}

/**
 * Revokes the write grants that the tables' owner gave other roles (and PUBLIC) on `rels`,
 * remembering each in `bluegreen.freeze_grants`. Grants made by a third role are left (the
 * owner cannot revoke them) and returned, so the caller can say so.
 */
export async function revokeWriteGrants(client: pg.Client, rels: string[]): Promise<{ revoked: number; kept: string[] }> {
  // Table grants, then column grants (INSERT (col), UPDATE (col)), each as the privilege
  // text GRANT and REVOKE take.
  const r = await client.query<{ rel: string; grantee: string; privilege: string; grantable: boolean; by_owner: boolean }>(
    `select c.oid::regclass::text as rel,
            case when a.grantee = 0 then 'public' else quote_ident(g.rolname) end as grantee,
            a.privilege_type as privilege, a.is_grantable as grantable, a.grantor = c.relowner as by_owner
       from pg_class c, aclexplode(c.relacl) a left join pg_roles g on g.oid = a.grantee
      where c.oid = any($1::regclass[]) and a.grantee <> c.relowner and a.privilege_type = any($2)
     union all
     select c.oid::regclass::text,
            case when a.grantee = 0 then 'public' else quote_ident(g.rolname) end,
            a.privilege_type || ' (' || quote_ident(att.attname) || ')', a.is_grantable, a.grantor = c.relowner
       from pg_class c join pg_attribute att on att.attrelid = c.oid and att.attnum > 0 and not att.attisdropped and att.attacl is not null,
            aclexplode(att.attacl) a left join pg_roles g on g.oid = a.grantee
      where c.oid = any($1::regclass[]) and a.grantee <> c.relowner and a.privilege_type = any($2)
      order by 1, 2, 3`,
    [rels, WRITE_PRIVILEGES],
  );
  const kept: string[] = [];
  let revoked = 0;
  for (const g of r.rows) {
    if (!g.by_owner) {
      kept.push(`${g.privilege} on ${g.rel} to ${g.grantee} (granted by another role)`);
      continue;
    }
    await client.query(
      `insert into bluegreen.freeze_grants (rel, grantee, privilege, grantable) values ($1, $2, $3, $4) on conflict do nothing`,
      [g.rel, g.grantee, g.privilege, g.grantable],
    );
    await client.query(`revoke ${g.privilege} on ${g.rel} from ${g.grantee} cascade`);
    revoked++;
  }
  return { revoked, kept };
}

/** Grants back exactly what the freeze revoked, then forgets it. Tables gone since are skipped. */
export async function restoreWriteGrants(client: pg.Client): Promise<number> {
  if (!(await client.query(`select to_regclass('bluegreen.freeze_grants') is not null as ok`)).rows[0].ok) return 0;
  const r = await client.query<{ rel: string; grantee: string; privilege: string; grantable: boolean; exists: boolean }>(
    `select rel, grantee, privilege, grantable, to_regclass(rel) is not null as exists from bluegreen.freeze_grants order by rel, grantee, privilege`,
  );
  let n = 0;
  for (const g of r.rows) {
    if (!g.exists) continue;
    // A role dropped since cannot get its grant back; the rest still must.
    const role = g.grantee === 'public' ? true : (await client.query(`select to_regrole($1) is not null as ok`, [g.grantee])).rows[0].ok;
    if (!role) continue;
    await client.query(`grant ${g.privilege} on ${g.rel} to ${g.grantee}${g.grantable ? ' with grant option' : ''}`);
    n++;
  }
  await client.query(`delete from bluegreen.freeze_grants`);
  return n;
}

/** What the seal records; see the module comment. */
interface Evidence {
  /** Transaction that sealed (its xid as text): rows newer than it were written after. */
  xid: string;
  /** The tables frozen (partition roots), to find partitions added since. */
  tables: string[];
  flagTable: string | null;
  flag: string | null;
  fn: string | null;
  rels: Record<string, { trigger: string | null; filenode: string | null; writes: number }>;
}

/** Evidence as it stands now, in this transaction (own pending counts included). */
async function currentEvidence(client: pg.Client, tables: string[], rels: string[], sealing = false): Promise<Evidence> {
  // Statistics are cached per transaction once read: read them fresh.
  await client.query('select pg_stat_clear_snapshot()');
  const r = await client.query<{ e: Omit<Evidence, 'tables'> }>(
    `select jsonb_build_object(
       'xid', case when $3 then txid_current()::text end,
       'flagTable', to_regclass('bluegreen.freeze')::oid::text,
       'flag', (select f.xmin::text from bluegreen.freeze f where active order by since desc limit 1),
       'fn', (select p.xmin::text || ':' || md5(p.prosrc || coalesce(array_to_string(p.proconfig, ','), '') || p.prosecdef::text)
                from pg_proc p where p.oid = to_regprocedure('bluegreen.reject_write()')),
       'rels', coalesce((select jsonb_object_agg(c.oid::regclass::text, jsonb_build_object(
          'trigger', (select t.xmin::text || ':' || t.tgenabled::text from pg_trigger t where t.tgrelid = c.oid and t.tgname = $2),
          'filenode', pg_relation_filenode(c.oid)::text,
          'writes', pg_stat_get_tuples_inserted(c.oid) + pg_stat_get_tuples_updated(c.oid) + pg_stat_get_tuples_deleted(c.oid)
                  + pg_stat_get_xact_tuples_inserted(c.oid) + pg_stat_get_xact_tuples_updated(c.oid) + pg_stat_get_xact_tuples_deleted(c.oid)))
         from pg_class c where c.oid = any(array(select to_regclass(x) from unnest($1::text[]) x where to_regclass(x) is not null))), '{}'::jsonb)) as e`,
    [rels, FREEZE_TRIGGER_NAME, sealing],
  );
  return { ...r.rows[0]!.e, tables };
}

/** Every member of the partition trees of `tables` that still exist (regclass text). */
async function treeMembers(client: pg.Client, tables: string[]): Promise<string[]> {
  const r = await client.query<{ rel: string }>(
    `select t.relid::regclass::text as rel
       from unnest($1::text[]) as n(name), pg_partition_tree(to_regclass(n.name)) as t
      where to_regclass(n.name) is not null
     union select to_regclass(n.name)::text from unnest($1::text[]) as n(name) where to_regclass(n.name) is not null`,
    [tables],
  );
  return r.rows.map((x) => x.rel);
}

/**
 * Seals the freeze in the caller's (freezing or writing) transaction: records the evidence
 * `checkFreezeSeal` compares with. A writer renewing it must have checked it with
 * {@link lockAndCheckFreeze} earlier in the same transaction. `tables` are the frozen tables (partition roots); when
 * omitted, those of the existing seal.
 */
export async function sealFreeze(client: pg.Client, tables?: string[]): Promise<void> {
  const roots = tables?.map(ident) ?? (await readSeal(client))?.tables;
  if (!roots) return;
  const evidence = await currentEvidence(client, roots, await treeMembers(client, roots), true);
  await client.query(
    `insert into bluegreen.freeze_seal (evidence) values ($1)
     on conflict (one) do update set evidence = excluded.evidence, sealed_at = clock_timestamp()`,
    [JSON.stringify(evidence)],
  );
}

async function readSeal(client: pg.Client): Promise<Evidence | undefined> {
  if (!(await client.query(`select to_regclass('bluegreen.freeze_seal') is not null as ok`)).rows[0].ok) return undefined;
  const r = await client.query<{ evidence: Evidence }>(`select evidence from bluegreen.freeze_seal`);
  return r.rows[0]?.evidence;
}

/** Forgets the seal (bluegreen lifted the freeze itself), in the caller's transaction. */
export async function dropSeal(client: pg.Client): Promise<void> {
  if (await readSeal(client)) await client.query(`delete from bluegreen.freeze_seal`);
}

export interface SealCheck {
  /** A seal exists: bluegreen froze this database and has not lifted the freeze. */
  sealed: boolean;
  /** What was tampered with, one line each; empty when the freeze held. */
  findings: string[];
}

/**
 * Compares the seal with the database as it is now. A write counter that moved is
 * confirmed by counting rows written after the seal (xmin newer than the sealing
 * transaction): that costs a scan of those tables only, and excludes writes committed just
 * before the freeze whose statistics arrived late. `confirmRows: false` reports a moved
 * counter as it is, without the scan.
 */
export async function checkFreezeSeal(client: pg.Client, opts: { confirmRows?: boolean } = {}): Promise<SealCheck> {
  const seal = await readSeal(client);
  if (!seal) return { sealed: false, findings: [] };
  const now = await currentEvidence(client, seal.tables, await treeMembers(client, seal.tables));
  const findings: string[] = [];
  if (now.flagTable !== seal.flagTable) findings.push('bluegreen.freeze was dropped or replaced');
  else if (now.flag === null) findings.push('the freeze flag was lifted outside bluegreen (bluegreen.freeze has no active row)');
  else if (now.flag !== seal.flag) findings.push('the freeze flag row was rewritten outside bluegreen (UPDATE bluegreen.freeze)');
  if (now.fn !== seal.fn) findings.push('the freeze trigger function bluegreen.reject_write() was replaced, altered or dropped');
  for (const [rel, was] of Object.entries(seal.rels)) {
    const is = now.rels[rel];
    if (!is) {
      findings.push(`${rel} was dropped or renamed since the freeze`);
      continue;
    }
    if (!is.trigger) findings.push(`the freeze trigger on ${rel} was dropped`);
    else if (!/:[OA]$/.test(is.trigger)) findings.push(`the freeze trigger on ${rel} is disabled (ALTER TABLE … DISABLE TRIGGER)`);
    else if (is.trigger !== was.trigger) findings.push(`the freeze trigger on ${rel} was altered since the freeze (disabled and enabled again?)`);
    if (is.filenode !== was.filenode) findings.push(`${rel} was truncated or rewritten since the freeze`);
    const moved = is.writes - was.writes;
    if (moved > 0) {
      if (opts.confirmRows === false) findings.push(`${rel}: ${moved} row write(s) counted since the freeze (pg_stat_user_tables)`);
      else {
        const rows = await rowsWrittenAfter(client, rel, seal.xid);
        if (rows > 0) findings.push(`${rel}: ${rows} row(s) written after the freeze`);
      }
    }
  }
  for (const rel of Object.keys(now.rels)) {
    if (!seal.rels[rel]) findings.push(`${rel} joined a frozen partition tree after the freeze and carries no freeze trigger`);
  }
  return { sealed: true, findings };
}

/** Rows of `rel` (itself only) whose xmin is newer than transaction `xid` (a txid_current value). */
async function rowsWrittenAfter(client: pg.Client, rel: string, xid: string): Promise<number> {
  // txid_current is 64-bit (epoch and xid); a row's xmin is its low 32 bits. age() compares
  // both against the next xid, wraparound-safe within the 2^31 window PostgreSQL keeps.
  const xid32 = (BigInt(xid) & 0xffffffffn).toString();
  const r = await client.query<{ n: number }>(
    `select count(*)::int as n from only ${rel} where age(xmin) < age(${literal(xid32)}::xid)`,
  );
  return r.rows[0]!.n;
}

/**
 * {@link checkFreezeSeal} after locking what the seal covers until the caller's transaction
 * ends (the frozen tables in SHARE ROW EXCLUSIVE, as ALTER TABLE … TRIGGER takes it, and
 * the flag table against updates): nothing can then change between this check and the
 * seal the same transaction renews, so a renewal never absorbs a walk-through.
 */
export async function lockAndCheckFreeze(client: pg.Client): Promise<SealCheck> {
  const seal = await readSeal(client);
  if (!seal) return { sealed: false, findings: [] };
  for (const rel of Object.keys(seal.rels)) {
    const ok = (await client.query(`select to_regclass($1) is not null as ok`, [rel])).rows[0].ok;
    if (ok) await client.query(`lock table only ${rel} in share row exclusive mode`);
  }
  if ((await client.query(`select to_regclass('bluegreen.freeze') is not null as ok`)).rows[0].ok) {
    await client.query(`lock table bluegreen.freeze in share mode`);
  }
  return checkFreezeSeal(client);
}

/**
 * Refuses to go on when `env` was frozen by bluegreen and the freeze did not hold: writes
 * made there since may be missing on the other side, and a sync into it (rollback) would
 * delete or overwrite them. `bluegreen unfreeze` clears the seal once the DBA has decided.
 */
export async function assertFreezeHeld(client: pg.Client, env: string, opts: { lock?: boolean } = {}): Promise<void> {
  const c = opts.lock ? await lockAndCheckFreeze(client) : await checkFreezeSeal(client);
  if (c.findings.length === 0) return;
  throw new RuntimeFailure(
    `${env} was frozen by bluegreen but the freeze did not hold: ${c.findings.join('; ')}`,
    `writes may have reached ${env} that the other side lacks: compare with bluegreen verify, recover them, then bluegreen unfreeze --env ${env} and decide which side serves`,
  );
}
