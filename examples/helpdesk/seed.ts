/**
 * Deterministic data for the helpdesk example at v1, as one SQL script (run it on a
 * database holding examples/helpdesk/mappings/v1/schema.sql, in one transaction). Written
 * as the helpdesk's application writes: local times in Europe/Berlin, including the
 * repeated hour of the autumn clock change (2024-10-27 02:00-03:00 happens twice), and
 * opening times inside the spring gap (2024-03-31 02:00-03:00 never happened: tickets the
 * old phone system imported); identity keys (given here, and the identity moved past them
 * so the application's next insert does not collide); every status; details whose channel
 * is text, a number, JSON null, empty or absent; events in every monthly partition
 * (the autumn fold included: a partition key); audit
 * rows repeated verbatim (a keyless table holds duplicates).
 *
 * Ticket `n` has id `n`; agent `n` has id `n`.
 */

/** SQL filling the v1 tables with `tickets` tickets (about 2 events and 1.1 audit rows each). */
export function helpdeskSeedSql(tickets: number): string {
  return `
set local time zone 'Europe/Berlin';
insert into agents (id, email, name, updated_at) overriding system value
  select g, 'agent' || g || '@helpdesk.example',
         case g % 4 when 0 then 'Zoë "Z" 山田' when 1 then 'Ana Müller' when 2 then e'O\\'Brien, Pat' else 'Agent ' || g end,
         timestamptz '2024-01-01 09:00+01' + g * interval '1 minute'
    from generate_series(1, 8) g;
insert into tickets (id, requester, agent_id, subject, status, details, opened_at, updated_at) overriding system value
  select g, 'req' || g || '@customer.example',
         case when g % 9 = 0 then null else g % 8 + 1 end,
         case g % 6 when 0 then 'Drucker brennt' when 1 then e'Zeile 1\\nZeile 2' when 2 then 'Refund, "please"' when 3 then e'Tab\\tand \\\\ backslash' else 'Ticket ' || g end,
         (array['open', 'pending', 'closed'])[g % 3 + 1]::ticket_status,
         case g % 7
           when 0 then '{"channel": "email"}'
           when 1 then '{"channel": "phone", "lang": "de"}'
           when 2 then jsonb_build_object('channel', 'web', 'browser', 'Firefox, ' || g)
           when 3 then '{}'
           when 4 then jsonb_build_object('channel', g, 'form', 'v0')
           when 5 then '{"channel": null, "note": "山田"}'
           else '{"channel": ""}'
         end::jsonb,
         o,
         -- updated by the application (its now()): never in the spring gap
         o + (g % 50) * interval '1 minute' + g * interval '1 microsecond' + case when g % 5 <> 0 and g % 11 = 0 then interval '1 hour' else interval '0' end
    from generate_series(1, ${tickets}) g,
         lateral (select case
           -- the autumn fold: 02:00-03:00 on 2024-10-27 happened twice
           when g % 5 = 0 then timestamp '2024-10-27 02:00' + (g % 60) * interval '1 minute'
           -- the spring gap: imported from the old phone system, 02:00-03:00 on 2024-03-31 never happened
           when g % 11 = 0 then timestamp '2024-03-31 02:00' + (g % 60) * interval '1 minute'
           else timestamp '2024-09-01 00:00' + ((g * 7919) % 129600) * interval '1 minute'
         end as o) x;
select setval(pg_get_serial_sequence('agents', 'id'), 8);
select setval(pg_get_serial_sequence('tickets', 'id'), greatest(${tickets}, 1));
insert into ticket_events (ticket_id, kind, body, created_at)
  select t.id, (array['created', 'reply', 'note'])[l], case when (t.id + l) % 4 = 0 then null when (t.id + l) % 4 = 1 then '' else 'event ' || l || ' of ' || t.id end,
         greatest(t.opened_at, timestamp '2024-09-01 03:00') + (l - 1) * interval '90 minutes'
    from tickets t, generate_series(1, 1 + t.id::int % 3) l
   order by t.id, l;
insert into audit_log (at, actor, action, ticket_id)
  select t.opened_at at time zone 'Europe/Berlin', 'agent' || coalesce(t.agent_id, 0) || '@helpdesk.example', 'open', t.id
    from tickets t, generate_series(1, case when t.id % 10 = 0 then 2 else 1 end) twice;
insert into audit_log (at, actor, action, ticket_id)
  select timestamptz '2024-11-01 00:00+01', 'system', 'purge', null from generate_series(1, 2);
`;
}
