-- Example application "helpdesk", schema version 1: a support desk whose framework stores
-- local wall-clock times (`timestamp without time zone`, written in Europe/Berlin), keys
-- from identity columns the application may not set (GENERATED ALWAYS), an e-mail domain,
-- a status enum, free-form ticket details in jsonb, ticket events partitioned by month and
-- a keyless audit trail. Unqualified names: bluegreen applies this file inside a scratch
-- schema to learn the version's catalog, and into the database's schema for `schema apply`.

CREATE DOMAIN email_address AS text CHECK (VALUE ~ '^[^@[:space:]]+@[^@[:space:]]+$');
CREATE TYPE ticket_status AS ENUM ('open', 'pending', 'closed');

CREATE FUNCTION helpdesk_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- now() is the transaction's start; a `timestamp` column stores it as the session's
  -- local time (Europe/Berlin).
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

-- details holds what the web form sent, e.g. {"channel": "email", "browser": "..."}.
CREATE TABLE tickets (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  requester   email_address NOT NULL,
  agent_id    bigint REFERENCES agents (id) ON DELETE SET NULL,
  subject     text NOT NULL,
  status      ticket_status NOT NULL DEFAULT 'open',
  details     jsonb NOT NULL DEFAULT '{}',
  opened_at   timestamp without time zone NOT NULL DEFAULT now(),
  updated_at  timestamp without time zone NOT NULL DEFAULT now()
);
CREATE INDEX tickets_agent_idx ON tickets (agent_id);
CREATE INDEX tickets_updated_at_idx ON tickets (updated_at);

-- What happened to a ticket, partitioned by month on its (Berlin local) time; the key must
-- hold the partition key. Events go with their ticket (ON DELETE CASCADE) and are never
-- updated.
CREATE TABLE ticket_events (
  id          bigint GENERATED ALWAYS AS IDENTITY,
  ticket_id   bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
  kind        text NOT NULL,
  body        text,
  created_at  timestamp without time zone NOT NULL DEFAULT now(),
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE ticket_events_2024_09 PARTITION OF ticket_events FOR VALUES FROM ('2024-09-01 00:00:00') TO ('2024-10-01 00:00:00');
CREATE TABLE ticket_events_2024_10 PARTITION OF ticket_events FOR VALUES FROM ('2024-10-01 00:00:00') TO ('2024-11-01 00:00:00');
CREATE TABLE ticket_events_2024_11 PARTITION OF ticket_events FOR VALUES FROM ('2024-11-01 00:00:00') TO ('2024-12-01 00:00:00');
-- Later months' partitions are created by the application's monthly job, not by this file.
CREATE INDEX ticket_events_ticket_idx ON ticket_events (ticket_id);
CREATE INDEX ticket_events_created_at_idx ON ticket_events (created_at);

-- Audit trail: no key, rows are only ever inserted, identical rows are possible.
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
COMMENT ON COLUMN tickets.updated_at IS 'bluegreen:watermark zone=Europe/Berlin';
COMMENT ON COLUMN ticket_events.created_at IS 'bluegreen:watermark zone=Europe/Berlin';
COMMENT ON COLUMN audit_log.at IS 'bluegreen:watermark';
