/**
 * The owning role walked through a cutover freeze (`ALTER TABLE … DISABLE TRIGGER USER`,
 * `DISABLE TRIGGER bluegreen_freeze`, `UPDATE bluegreen.freeze SET active = false`) while
 * status still said FROZEN and the rollback sync then overwrote those writes. Now: a role
 * other than the owner loses its write grants during the freeze (restored exactly after);
 * every tampering path by the owner is detected (seal check, status, cutover, sync).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/db/connect.ts';
import { freeze, unfreezeNow } from '../../src/cutover/freeze.ts';
import { checkFreezeSeal, sealFreeze } from '../../src/db/freeze-guard.ts';
import { adminQuery, freshDatabase, query, urlFor } from '../helpers/pg.ts';
import { makePair, MAPPINGS } from '../helpers/pair.ts';
import { collect, startCli } from '../helpers/cli.ts';

const APP_ROLE = 'bluegreen_test_dml';
const APP_PASSWORD = 'dml-secret-pw';

let url: string;
let db: string;
beforeAll(async () => {
  url = await freshDatabase('tamper');
  db = new URL(url).pathname.slice(1);
  await query(
    url,
    `create table notes (id int primary key, body text);
     insert into notes values (1, 'before');
     create table events (id int, at date not null) partition by range (at);
     create table events_2024 partition of events for values from ('2024-01-01') to ('2025-01-01');`,
  );
  try {
    await adminQuery(`create role ${APP_ROLE} login nosuperuser password '${APP_PASSWORD}'`);
  } catch (err) {
    if (!/already exists|duplicate key/.test((err as Error).message)) throw err;
  }
  await query(
    url,
    `grant select, insert, update on notes to ${APP_ROLE}; grant delete on notes to ${APP_ROLE} with grant option; grant insert on events to public;
     grant update (at) on events_2024 to ${APP_ROLE}`,
  );
});

async function withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await connect(url);
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const frozen = () => withClient((c) => freeze(c, ['notes', 'events'], { by: 'test', waitMs: 2_000, completed: true }));
const findings = async () => (await withClient((c) => checkFreezeSeal(c))).findings.join('\n');
const grants = () =>
  query<{ g: string }>(
    url,
    `select c.relname || ' ' || coalesce(r.rolname, 'public') || ' ' || a.privilege_type || ' ' || a.is_grantable as g
       from pg_class c, aclexplode(c.relacl) a left join pg_roles r on r.oid = a.grantee
      where c.relname in ('notes', 'events', 'events_2024') and a.grantee <> c.relowner
     union all
     select c.relname || '.' || att.attname || ' ' || coalesce(r.rolname, 'public') || ' ' || a.privilege_type || ' ' || a.is_grantable
       from pg_class c join pg_attribute att on att.attrelid = c.oid and att.attacl is not null, aclexplode(att.attacl) a left join pg_roles r on r.oid = a.grantee
      where c.relname in ('notes', 'events', 'events_2024') order by 1`,
  ).then((rows) => rows.map((r) => r.g));

describe('freeze against the owner and other roles', () => {
  afterAll(async () => {
    await withClient((c) => unfreezeNow(c));
  });

  it('an untouched freeze shows nothing, and bluegreen\'s own writes (resealed) do not count as tampering', async () => {
    await frozen();
    expect(await findings()).toBe('');
    await withClient(async (c) => {
      await c.query('begin');
      await c.query('alter table notes disable trigger user');
      await c.query(`insert into notes values (50, 'rollback sync')`);
      await c.query('alter table notes enable trigger user');
      await sealFreeze(c);
      await c.query('commit');
    });
    expect(await findings()).toBe('');
    await withClient((c) => unfreezeNow(c));
  });

  it('a non-owner application role loses its write grants while frozen and gets exactly them back', async () => {
    const before = await grants();
    expect(before).toContain(`notes ${APP_ROLE} DELETE true`);
    expect(before).toContain(`events_2024.at ${APP_ROLE} UPDATE false`);
    await frozen();
    const app = urlFor(db, APP_ROLE, APP_PASSWORD);
    expect(await grants()).toEqual(before.filter((g) => !/ (INSERT|UPDATE|DELETE|TRUNCATE) /.test(g)));
    await expect(query(app, `insert into notes values (60, 'app')`)).rejects.toThrow(/permission denied|frozen/);
    await expect(query(app, `update bluegreen.freeze set active = false`)).rejects.toThrow(/permission denied/);
    expect(await findings()).toBe('');
    await withClient((c) => unfreezeNow(c));
    expect(await grants()).toEqual(before);
    await query(app, `insert into notes values (61, 'app after unfreeze')`);
  });

  const paths: [string, string, RegExp][] = [
    ['ALTER TABLE … DISABLE TRIGGER USER, write, enable again', `alter table notes disable trigger user; insert into notes values (100, 'x'); alter table notes enable trigger user`, /trigger on notes was altered[\s\S]*notes: 1 row\(s\) written after the freeze/],
    ['DISABLE TRIGGER bluegreen_freeze', `alter table notes disable trigger bluegreen_freeze; update notes set body = 'y' where id = 1`, /trigger on notes is disabled/],
    ['ENABLE REPLICA TRIGGER (never fires)', `alter table notes enable replica trigger bluegreen_freeze`, /trigger on notes is disabled/],
    ['DROP TRIGGER', `drop trigger bluegreen_freeze on notes`, /trigger on notes was dropped/],
    ['UPDATE bluegreen.freeze SET active = false', `update bluegreen.freeze set active = false`, /flag was lifted outside bluegreen/],
    ['the flag lifted and set again', `update bluegreen.freeze set active = false; insert into notes values (101, 'z'); update bluegreen.freeze set active = true where lifted is null`, /flag row was rewritten/],
    ['the trigger function replaced', `create or replace function bluegreen.reject_write() returns trigger language plpgsql as $$ begin return null; end $$`, /bluegreen.reject_write\(\) was replaced/],
    ['TRUNCATE behind a disabled trigger', `alter table notes disable trigger user; truncate notes; alter table notes enable trigger user`, /notes was truncated or rewritten/],
    ['a new partition', `create table events_2025 partition of events for values from ('2025-01-01') to ('2026-01-01'); insert into events_2025 values (1, '2025-05-01')`, /events_2025 joined a frozen partition tree/],
  ];
  for (const [name, sql, expected] of paths) {
    it(`detects: ${name}`, async () => {
      await frozen();
      try {
        await query(url, sql);
        expect(await findings()).toMatch(expected);
      } finally {
        await withClient((c) => unfreezeNow(c));
        await query(url, `drop table if exists events_2025`);
      }
    });
  }
});

describe('cutover, status and rollback sync see a freeze the owner walked through', () => {
  it('status says FREEZE BROKEN and the rollback sync refuses to overwrite the slipped-in write; a clean freeze shows neither', async () => {
    const p = await makePair(1, 2);
    await query(p.blue, `insert into users (username, full_name, email) values ('ann', 'Ann Lee', 'a@x')`);
    await p.ok(['sync', '--from', 'blue', '--to', 'green']);
    const c = await p.run(['cutover', '--from', 'blue', '--to', 'green', '--log-format', 'text']);
    expect(c.code, c.stderr).toBe(0);
    // The application writes on green; the rollback sync carries it into frozen blue
    // (bluegreen's own write renews the seal: no tampering shown).
    await query(p.green, `update users set email = 'green@x'`);
    await p.ok(['sync', '--from', 'green', '--to', 'blue']);
    expect(await query(p.blue, `select email from users`)).toEqual([{ email: 'green@x' }]);
    let st = await p.run(['status', '--env', 'blue', '--log-format', 'text']);
    expect(st.stdout).toContain('FROZEN since');
    expect(st.stdout).not.toContain('FREEZE BROKEN');
    // The application, connected as the tables' owner, walks through the freeze.
    await query(p.blue, `insert into users (username, full_name) values ('slipped', 'Slipped Through')`.replace('insert', 'alter table users disable trigger bluegreen_freeze; insert'));
    st = await p.run(['status', '--env', 'blue', '--log-format', 'text']);
    expect(st.stdout).toContain('FREEZE BROKEN');
    expect(st.stdout).toMatch(/trigger on users is disabled/);
    const back = await p.run(['sync', '--from', 'green', '--to', 'blue', '--log-format', 'text']);
    expect(back.code).toBe(1);
    expect(back.stderr).toMatch(/blue was frozen by bluegreen but the freeze did not hold/);
    expect(await query(p.blue, `select count(*)::int as n from users where username = 'slipped'`)).toEqual([{ n: 1 }]);
    // Once the DBA has recovered the write and unfrozen blue, the refusal is gone.
    await p.ok(['unfreeze', '--env', 'blue']);
    st = await p.run(['status', '--env', 'blue', '--log-format', 'text']);
    expect(st.stdout).not.toMatch(/FREEZE BROKEN|FROZEN/);
  });

  it('a cutover whose source takes writes after the freeze fails and unfreezes it', async () => {
    const p = await makePair(1, 2);
    await query(p.blue, `insert into users (username, full_name) values ('a', 'A B')`);
    await p.ok(['sync', '--from', 'blue', '--to', 'green']);
    // An owner-connected application that disables the freeze trigger as soon as it sees it.
    const app = new pg.Client({ connectionString: p.blue });
    await app.connect();
    let stop = false;
    let tampered = 0;
    const loop = (async () => {
      while (!stop) {
        try {
          const active = await app.query(`select to_regclass('bluegreen.freeze') is not null and exists (select 1 from bluegreen.freeze where active) as a`).catch(() => ({ rows: [{ a: false }] }));
          if (active.rows[0].a && tampered === 0) {
            await app.query(`alter table users disable trigger bluegreen_freeze`);
            await app.query(`update users set email = 'tampered@x' where username = 'a'`);
            tampered++;
          }
        } catch {
          /* the table may be locked for a moment */
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const child = startCli(['--mappings', MAPPINGS, 'cutover', '--from', 'blue', '--to', 'green', '--log-format', 'text'], { BLUE_URL: p.blue, GREEN_URL: p.green });
    const r = await collect(child);
    stop = true;
    await loop;
    await app.end();
    expect(tampered).toBe(1);
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(/the freeze on blue did not hold/);
    expect(r.stderr).toMatch(/blue unfrozen and serving/);
    expect(await query(p.blue, `select count(*)::int as n from bluegreen.freeze where active`)).toEqual([{ n: 0 }]);
  });
});
