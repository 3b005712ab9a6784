/**
 * The helpdesk example (examples/helpdesk) through a whole deployment under its
 * application: a partitioned table with a foreign key, identity ALWAYS keys, a domain, an
 * enum renamed and grown, a jsonb field pulled into a column, Berlin local times (the
 * autumn fold and the spring gap included) moved to timestamptz, a table new in v2
 * derived by a query, and a keyless append-only audit table. The
 * application writes as its own role (DML grants only), several tables per transaction,
 * while bluegreen runs a full sync, incremental syncs, a cutover, the rollback sync and the
 * cutover back; after each cutover every write the application saw commit is on the other
 * side, and verify finds no difference.
 */
import { describe, expect, it } from 'vitest';
import { query } from '../helpers/pg.ts';
import { report } from '../helpers/pair.ts';
import { found, helpdeskPair, helpdeskWriter, monthlyPartitions, seedHelpdesk } from '../helpers/helpdesk.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Writes the freeze refuses: its trigger, or the revoked grants of the application's role. */
const refused = (e: string) => /frozen|permission denied/.test(e);

describe('helpdesk example: syncs, cutover and back under the application', () => {
  it('check round-trips the fixtures, each way losing only what its mapping declares (the spring gap going up; on_hold, details, sla_policies and the first hour of the autumn fold going down)', async () => {
    const p = await helpdeskPair(null, null);
    const r = await p.run(['check', '--via', 'blue', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const trips = report(r).roundTrips.map((t: { from: number; via: number; ok: boolean; lossyColumns: string[] }) => [t.from, t.via, t.ok, t.lossyColumns]);
    expect(trips).toEqual([
      [1, 2, true, ['tickets.opened_at']],
      [2, 1, true, ['sla_policies', 'tickets.status', 'tickets.details', 'tickets.opened_at', 'tickets.updated_at']],
    ]);
  });

  it('loses no acknowledged write in either cutover, and verify finds no difference', async () => {
    const p = await helpdeskPair(1, 2);
    await seedHelpdesk(p.blue, 300);

    // Full sync of the seed, then incremental syncs while the application writes on blue.
    const full = report(await p.ok(['sync', '--json']));
    expect(full.tables.find((t: { table: string }) => t.table === 'tickets').read).toBe(300);
    // The application's monthly job adds this month's and next month's event partitions on
    // blue (Berlin months): the next sync creates them on green (timestamptz bounds).
    const months = await monthlyPartitions(p.blue);
    const onBlue = helpdeskWriter(p.blue, { id: 'b', version: 1 });
    let cut;
    try {
      for (let i = 0; i < 3; i++) {
        await sleep(300);
        const inc = report(await p.ok(['sync', '--json']));
        expect(inc.mode).toBe('incremental');
        if (i === 0) expect(inc.partitions.map((x: { partition: string }) => x.partition)).toEqual(months);
      }
      cut = await p.run(['cutover', '--from', 'blue', '--to', 'green', '--json']);
      await sleep(200); // the application keeps trying against the frozen blue
    } finally {
      await onBlue.stop();
    }
    expect(cut.code, cut.stderr).toBe(0);
    expect(report(cut).ok).toBe(true);
    expect(onBlue.errors.every(refused), onBlue.errors.join('\n')).toBe(true);
    expect(onBlue.ledger.tickets.size).toBeGreaterThan(10);
    expect(onBlue.ledger.updates).toBeGreaterThan(2);
    expect(onBlue.ledger.deleted.length).toBeGreaterThan(2);
    // Every acknowledged write is on green: tickets (updated ones renamed, deleted ones
    // gone with their events), their events, and every audit row.
    expect(await found(p.green, onBlue, 'b')).toEqual({ tickets: onBlue.ledger.tickets, audit: onBlue.ledger.audit });
    const v1 = await p.run(['verify', '--from', 'blue', '--to', 'green', '--json']);
    expect(v1.code, v1.stderr).toBe(0);
    expect(report(v1).clean).toBe(true);
    // Converted on the way: the enum rename, the channel out of details, the local times.
    // (Ticket 10 opened in the repeated hour: read as its later instant, which goes back to
    // the same local time; ticket 4's channel is a number, kept in details.)
    expect(await query(p.green, `select id::int, status::text, channel, details::text from tickets where id in (2, 4, 7) order by id`)).toEqual([
      { id: 2, status: 'resolved', channel: 'web', details: '{"browser": "Firefox, 2"}' },
      { id: 4, status: 'pending', channel: null, details: '{"form": "v0", "channel": 4}' },
      { id: 7, status: 'pending', channel: 'email', details: '{}' },
    ]);
    // Ticket 10 opened in the autumn's repeated hour (its later instant, "dst": "later"),
    // ticket 11 in the spring gap (moved forward by the gap, "dst": "shift", declared).
    expect(await query(p.green, `select id::int, opened_at at time zone 'UTC' as utc from tickets where id in (10, 11) order by id`)).toEqual([
      { id: 10, utc: new Date('2024-10-27T01:10:00Z') },
      { id: 11, utc: new Date('2024-03-31T01:11:00Z') },
    ]);
    // sla_policies (new in v2) is derived from blue's tickets, the application's channel included.
    const [chat] = await query<{ n: number }>(p.blue, `select count(*)::int as n from tickets where details ->> 'channel' = 'chat' and status <> 'closed'`);
    expect(await query(p.green, `select response::text, open_tickets::int as n from sla_policies where channel = 'chat'`)).toEqual([{ response: '04:00:00', n: chat!.n }]);
    const sla = report(v1).tables.find((t: { table: string }) => t.table === 'sla_policies');
    expect([sla.sourceRows, sla.missing.count, sla.extra.count, sla.changed.count]).toEqual([sla.targetRows, 0, 0, 0]);
    expect(sla.sourceRows).toBe(5); // email, phone, web, '' and the application's chat
    // The partition key went through its cast: each event in its month's partition on green.
    const [misplaced] = await query<{ n: number }>(p.green, `select count(*)::int as n from ticket_events where tableoid::regclass::text <> 'ticket_events_' || to_char(created_at at time zone 'Europe/Berlin', 'YYYY_MM')`);
    expect(misplaced!.n).toBe(0);

    // The application now runs on green (v2 terms: on_hold, the channel column), its
    // identity keys continuing past everything synced; blue is kept current by the
    // rollback sync, then the cutover back runs under the application.
    const onGreen = helpdeskWriter(p.green, { id: 'g', version: 2 });
    let back;
    try {
      await sleep(300);
      // A ticket opened in the first hour of the autumn clock change (00:30 UTC is 02:30
      // CEST; 01:30 UTC is 02:30 CET): v1's local time cannot tell the two apart, and
      // down.json shifts it (declared lost) rather than stop every rollback sync that hour.
      await query(p.green, `insert into tickets (requester, subject, opened_at) values ('fold@example.com', 'opened in the autumn fold', '2026-10-25 00:30:00+00')`);
      const rb = report(await p.ok(['sync', '--from', 'green', '--to', 'blue', '--json']));
      expect(rb.mode).toBe('incremental');
      expect(await query(p.blue, `select opened_at::text as at from tickets where subject = 'opened in the autumn fold'`)).toEqual([{ at: '2026-10-25 02:30:00' }]);
      await sleep(300);
      back = await p.run(['cutover', '--from', 'green', '--to', 'blue', '--json']);
      await sleep(200);
    } finally {
      await onGreen.stop();
    }
    expect(back.code, back.stderr).toBe(0);
    expect(report(back).ok).toBe(true);
    expect(onGreen.errors.every(refused), onGreen.errors.join('\n')).toBe(true);
    expect(onGreen.ledger.tickets.size).toBeGreaterThan(5);
    expect(await found(p.blue, onGreen, 'g')).toEqual({ tickets: onGreen.ledger.tickets, audit: onGreen.ledger.audit });
    // Blue's tickets written before the first cutover are still there too.
    expect(await found(p.blue, onBlue, 'b')).toEqual({ tickets: onBlue.ledger.tickets, audit: onBlue.ledger.audit });
    // on_hold has no v1 value: pending (declared lost in down.json); the channel is back in details.
    expect(await query(p.blue, `select distinct status::text, details->>'channel' as channel from tickets where requester like 'g-%' and subject like '% (updated)'`)).toEqual([
      { status: 'pending', channel: 'chat' },
    ]);
    const v2 = await p.run(['verify', '--from', 'green', '--to', 'blue', '--json']);
    expect(v2.code, v2.stderr).toBe(0);
    expect(report(v2).clean).toBe(true);
    // Every v1 column is compared with what down.json makes of green's rows, the ones
    // down.json declares lossy too; not opened_at, which up.json declares lossy (a shifted
    // gap time cannot come back as it was).
    expect(report(v2).tables.find((t: { table: string }) => t.table === 'tickets').excluded).toEqual(['opened_at']);

    // Blue serves again: the application's identity keys continue past green's.
    const [max] = await query<{ n: string }>(p.blue, `select max(id)::text as n from tickets`);
    const [next] = await query<{ id: string }>(p.blue, `insert into tickets (requester, subject) values ('after@writer.example', 'after') returning id::text`);
    expect(BigInt(next!.id)).toBeGreaterThan(BigInt(max!.n));
  });
});
