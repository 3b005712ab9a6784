-- Example application "helpdesk", schema version 2: ticket times become timestamptz, the
-- status enum renames `closed` to `resolved` and gains `on_hold`, the channel a ticket
-- came through moves out of details into a column of its own, ticket events' times
-- (their partition key) become timestamptz, and a new table holds response times per
-- channel.

CREATE DOMAIN email_address AS text CHECK (VALUE ~ '^[^@[:space:]]+@[^@[:space:]]+$');
CREATE TYPE ticket_status AS ENUM ('open', 'pending', 'on_hold', 'resolved');

CREATE FUNCTION helpdesk_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;

CREATE TABLE agents (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email       email_address NOT NULL UNIQUE,
  name        text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agents_updated_at_idx ON agents (updated_at);

CREATE TABLE tickets (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  requester   email_address NOT NULL,
  agent_id    bigint REFERENCES agents (id) ON DELETE SET NULL,
  subject     text NOT NULL,
  status      ticket_status NOT NULL DEFAULT 'open',
  channel     text,
  details     jsonb NOT NULL DEFAULT '{}',
  opened_at   timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tickets_agent_idx ON tickets (agent_id);
CREATE INDEX tickets_updated_at_idx ON tickets (updated_at);

-- created_at becomes timestamptz: the partition key, and part of the primary key; the
-- months are Berlin's, as in v1.
CREATE TABLE ticket_events (
  id          bigint GENERATED ALWAYS AS IDENTITY,
  ticket_id   bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
  kind        text NOT NULL,
  body        text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE ticket_events_2024_09 PARTITION OF ticket_events FOR VALUES FROM ('2024-09-01 00:00:00+02') TO ('2024-10-01 00:00:00+02');
CREATE TABLE ticket_events_2024_10 PARTITION OF ticket_events FOR VALUES FROM ('2024-10-01 00:00:00+02') TO ('2024-11-01 00:00:00+01');
CREATE TABLE ticket_events_2024_11 PARTITION OF ticket_events FOR VALUES FROM ('2024-11-01 00:00:00+01') TO ('2024-12-01 00:00:00+01');
CREATE INDEX ticket_events_ticket_idx ON ticket_events (ticket_id);
CREATE INDEX ticket_events_created_at_idx ON ticket_events (created_at);

-- New in v2: response times per channel, first derived from the v1 tickets by a query
-- (up.json); once v2 serves, the support leads edit it.
CREATE TABLE sla_policies (
  channel       text PRIMARY KEY,
  response      interval NOT NULL,
  open_tickets  bigint NOT NULL
);

CREATE TABLE audit_log (
  at         timestamptz NOT NULL DEFAULT now(),
  actor      text NOT NULL,
  action     text NOT NULL,
  ticket_id  bigint
);
CREATE INDEX audit_log_at_idx ON audit_log (at);

CREATE TRIGGER agents_touch BEFORE UPDATE ON agents
  FOR EACH ROW EXECUTE FUNCTION helpdesk_touch();
CREATE TRIGGER tickets_touch BEFORE UPDATE ON tickets
  FOR EACH ROW EXECUTE FUNCTION helpdesk_touch();

COMMENT ON COLUMN agents.updated_at IS 'bluegreen:watermark';
COMMENT ON COLUMN tickets.updated_at IS 'bluegreen:watermark';
COMMENT ON COLUMN ticket_events.created_at IS 'bluegreen:watermark';
COMMENT ON COLUMN audit_log.at IS 'bluegreen:watermark';
