/**
 * The helpdesk example (examples/helpdesk) driven as its application would be: a pair at
 * given versions whose sessions write Europe/Berlin local times, seed data, and the
 * application's own role (DML grants only, as in a safe role layout) writing several
 * tables in one transaction, with a ledger of every write it saw commit.
 */
import path from 'node:path';
import pg from 'pg';
import { helpdeskSeedSql } from '../../examples/helpdesk/seed.ts';
import { ROOT } from './cli.ts';
import { makePair, type Pair } from './pair.ts';
import { adminQuery, query } from './pg.ts';

export const HELPDESK_MAPPINGS = path.join(ROOT, 'examples', 'helpdesk', 'mappings');
export const HELPDESK_TABLES = ['agents', 'tickets', 'ticket_events', 'audit_log'] as const;

const APP_ROLE = 'bg_helpdesk_app';
const APP_PASSWORD = 'helpdesk-app-pw';

/** A pair of fresh databases with the helpdesk's schema; both write Berlin local time by default. */
export async function helpdeskPair(blueVersion: number | null = 1, greenVersion: number | null = 2): Promise<Pair> {
  await adminQuery(`do $$ begin if not exists (select 1 from pg_roles where rolname = '${APP_ROLE}') then create role ${APP_ROLE} login password '${APP_PASSWORD}'; end if; end $$`).catch((err) => {
    if (!/already exists|duplicate key/.test((err as Error).message)) throw err;
  });
  const p = await makePair(blueVersion, greenVersion, HELPDESK_MAPPINGS);
  for (const url of [p.blue, p.green]) {
    await query(url, `alter database "${decodeURIComponent(new URL(url).pathname.slice(1))}" set timezone to 'Europe/Berlin'`);
    // The application's role: DML and its sequences, nothing else (no DDL, no bluegreen schema).
    await query(
      url,
      `grant connect on database "${decodeURIComponent(new URL(url).pathname.slice(1))}" to ${APP_ROLE};
       grant usage on schema public to ${APP_ROLE};
       grant select, insert, update, delete on all tables in schema public to ${APP_ROLE};
       grant usage on all sequences in schema public to ${APP_ROLE}`,
    );
  }
  return p;
}

/** The URL of the same database for the application's role. */
export function appUrl(url: string): string {
  const u = new URL(url);
  u.username = APP_ROLE;
  u.password = APP_PASSWORD;
  return u.toString();
}

/** Fills a v1 database with the example's deterministic data. */
export async function seedHelpdesk(url: string, tickets = 200): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('begin');
    await c.query(helpdeskSeedSql(tickets));
    await c.query('commit');
  } finally {
    await c.end();
  }
}

/**
 * The application's monthly job: ticket_events partitions for this month and the next
 * (Berlin months, local bounds as v1 has them), created on `url` only. Returns their names.
 */
export async function monthlyPartitions(url: string): Promise<string[]> {
  const month = (m: number) => `(date_trunc('month', now() at time zone 'Europe/Berlin') + interval '${m} month')`;
  const names: string[] = [];
  for (const m of [0, 1]) {
    const [r] = await query<{ name: string; lo: string; hi: string }>(
      url,
      `select 'ticket_events_' || to_char(${month(m)}, 'YYYY_MM') as name, ${month(m)}::text as lo, ${month(m + 1)}::text as hi`,
    );
    await query(url, `create table ${r!.name} partition of ticket_events for values from ('${r!.lo}') to ('${r!.hi}')`);
    names.push(r!.name);
  }
  return names;
}

/** What the application saw commit, per ticket it opened (by subject), and its audit rows. */
export interface Ledger {
  /** subject -> the ticket's expected subject now (renamed when updated) and event count; absent once deleted. */
  tickets: Map<string, { subject: string; events: number }>;
  deleted: string[];
  updates: number;
  audit: number;
}

/**
 * The application writing until stopped, as role `appUrl(url)`, in Berlin time: each
 * iteration is ONE transaction over several tables (a ticket with its first event and an
 * audit row; every 3rd also updates an earlier ticket of its own with an event; every 4th
 * deletes one, its events going by cascade), in the terms of `version` (v2 puts a ticket
 * on hold and fills the channel column). Writes the freeze refuses are counted as errors,
 * never as acknowledged.
 */
export function helpdeskWriter(url: string, opts: { id: string; version: 1 | 2 }) {
  const ledger: Ledger = { tickets: new Map(), deleted: [], updates: 0, audit: 0 };
  const errors: string[] = [];
  let stop = false;
  const actor = `writer-${opts.id}`;
  const done = (async () => {
    const c = new pg.Client({ connectionString: appUrl(url) });
    c.on('error', () => {});
    await c.connect();
    await c.query(`set time zone 'Europe/Berlin'`);
    const open = () => [...ledger.tickets.keys()];
    for (let i = 0; !stop; i++) {
      const tag = `${opts.id}-${i}`;
      try {
        await c.query('begin');
        const cols = opts.version === 1 ? `requester, subject, details` : `requester, subject, details, channel`;
        const vals = opts.version === 1 ? `$1 || '@writer.example', $1, '{"channel": "chat"}'` : `$1 || '@writer.example', $1, '{}', 'chat'`;
        const [t] = (await c.query<{ id: string }>(`insert into tickets (${cols}) values (${vals}) returning id`, [tag])).rows;
        await c.query(`insert into ticket_events (ticket_id, kind, body) values ($1, 'created', $2)`, [t!.id, tag]);
        await c.query(`insert into audit_log (actor, action, ticket_id) values ($1, 'open', $2)`, [actor, t!.id]);
        let updated: string | undefined;
        let deleted: string | undefined;
        const mine = open();
        if (i % 3 === 2 && mine.length > 1) {
          updated = mine[mine.length - 2]!;
          const status = opts.version === 1 ? 'pending' : 'on_hold';
          await c.query(`update tickets set subject = subject || ' (updated)', status = $2 where subject = $1`, [ledger.tickets.get(updated)!.subject, status]);
          await c.query(`insert into ticket_events (ticket_id, kind, body) select id, 'reply', 'updated' from tickets where subject = $1 || ' (updated)'`, [ledger.tickets.get(updated)!.subject]);
          await c.query(`insert into audit_log (actor, action) values ($1, 'update')`, [actor]);
        }
        if (i % 4 === 3 && mine.length > 3) {
          deleted = mine[0]!;
          const subject = updated === deleted ? `${ledger.tickets.get(deleted)!.subject} (updated)` : ledger.tickets.get(deleted)!.subject;
          await c.query(`delete from tickets where subject = $1`, [subject]);
          await c.query(`insert into audit_log (actor, action) values ($1, 'delete')`, [actor]);
        }
        await c.query('commit');
        // Acknowledged: the server said COMMIT.
        ledger.tickets.set(tag, { subject: tag, events: 1 });
        ledger.audit++;
        if (updated) {
          const u = ledger.tickets.get(updated)!;
          ledger.tickets.set(updated, { subject: `${u.subject} (updated)`, events: u.events + 1 });
          ledger.updates++;
          ledger.audit++;
        }
        if (deleted) {
          ledger.tickets.delete(deleted);
          ledger.deleted.push(deleted);
          ledger.audit++;
        }
      } catch (err) {
        errors.push(`${tag}: ${(err as Error).message}`);
        await c.query('rollback').catch(() => {});
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await c.end();
  })();
  return { ledger, errors, actor, stop: async () => ((stop = true), await done) };
}

/**
 * The writer's tickets, their event counts and its audit rows as `url` holds them, in the
 * ledger's shape: equal to the ledger when every acknowledged write arrived.
 */
export async function found(url: string, w: { ledger: Ledger; actor: string }, id: string) {
  const rows = await query<{ subject: string; events: number }>(
    url,
    `select t.subject, (select count(*)::int from ticket_events e where e.ticket_id = t.id) as events from tickets t where t.requester like $1 || '-%@writer.example'`,
    [id],
  );
  const [a] = await query<{ n: number }>(url, `select count(*)::int as n from audit_log where actor = $1`, [w.actor]);
  const byTag = new Map(rows.map((r) => [r.subject.replace(/( \(updated\))+$/, ''), { subject: r.subject, events: r.events }]));
  return { tickets: byTag, audit: a!.n };
}
