-- pgbench's TPC-B tables, schema version 2: version 1 with the branches' and tellers'
-- `filler` renamed (`branch_note`, `teller_note`), so the versions differ as a release's
-- would while pgbench's default script runs on both. Version 1's notes: the tables
-- `pgbench -i` creates, with their
-- primary keys, plus what bluegreen needs to follow them incrementally: an `updated_at`
-- watermark kept by a trigger on the three keyed tables, and an index on the history's
-- own `mtime` (pgbench writes CURRENT_TIMESTAMP there: its sessions' local time, UTC
-- when run with PGTZ=UTC). pgbench's default script runs unchanged against it.
-- Unqualified names: bluegreen applies this file inside a scratch schema to learn the
-- version's catalog, and into the database's default schema for `schema apply`.

CREATE FUNCTION pgbench_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;

CREATE TABLE pgbench_branches (
  bid        integer NOT NULL PRIMARY KEY,
  bbalance   integer,
  branch_note character(88),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pgbench_branches_updated_at_idx ON pgbench_branches (updated_at);

CREATE TABLE pgbench_tellers (
  tid        integer NOT NULL PRIMARY KEY,
  bid        integer,
  tbalance   integer,
  teller_note character(84),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pgbench_tellers_updated_at_idx ON pgbench_tellers (updated_at);

CREATE TABLE pgbench_accounts (
  aid        integer NOT NULL PRIMARY KEY,
  bid        integer,
  abalance   integer,
  filler     character(84),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pgbench_accounts_updated_at_idx ON pgbench_accounts (updated_at);

CREATE TABLE pgbench_history (
  tid    integer,
  bid    integer,
  aid    integer,
  delta  integer,
  mtime  timestamp without time zone,
  filler character(22)
);
CREATE INDEX pgbench_history_mtime_idx ON pgbench_history (mtime);

CREATE TRIGGER pgbench_branches_touch BEFORE UPDATE ON pgbench_branches
  FOR EACH ROW EXECUTE FUNCTION pgbench_touch();
CREATE TRIGGER pgbench_tellers_touch BEFORE UPDATE ON pgbench_tellers
  FOR EACH ROW EXECUTE FUNCTION pgbench_touch();
CREATE TRIGGER pgbench_accounts_touch BEFORE UPDATE ON pgbench_accounts
  FOR EACH ROW EXECUTE FUNCTION pgbench_touch();
