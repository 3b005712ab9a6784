#!/usr/bin/env bash
# The apply floor of an incremental sync: the same change applied by hand-written SQL.
#
#   bash bench/apply-floor.sh PSQL SOURCE_URL TARGET_URL BOUND
#
# What a DBA who knows this one mapping (v1 users -> v2 users: username becomes login,
# full_name split at its first space) would write, with nothing of bluegreen's safety:
# one `\copy` out of the source of the users whose watermark is at or after BOUND, plus the
# keys its delete capture recorded since BOUND, streamed into a temp table on the target,
# then in the same transaction an UPDATE ... FROM, an INSERT ... ON CONFLICT DO NOTHING
# for new keys and a DELETE for deleted keys. User triggers are off in that transaction,
# as in a sync, so the target keeps the source's updated_at. Prints "updated N inserted N
# deleted N" (the statements' row counts) on stdout, for the caller to check.
set -euo pipefail
PSQL=$1 SRC=$2 DST=$3 BOUND=$4
psql() { "$PSQL" -X -q -v ON_ERROR_STOP=1 "$@"; }

# Deleted keys come from blue's capture table when it exists (as in a captured sync).
deleted=""
if [[ $(psql "$SRC" -Atc "select to_regclass('bluegreen.deleted_rows') is not null") == t ]]; then
  deleted="union all select 'd', (old->>'id')::bigint, null, null, null, null, null, null
             from bluegreen.deleted_rows
            where table_name = 'users' and not truncated and deleted_at >= '$BOUND'::timestamptz"
fi

psql "$SRC" -c "\\copy (select 'u', id, username,
                               split_part(full_name, ' ', 1),
                               case when strpos(full_name, ' ') > 0 then substr(full_name, strpos(full_name, ' ') + 1) end,
                               email, created_at, updated_at
                          from users where updated_at >= '$BOUND'::timestamptz
                        $deleted) to stdout" |
  psql "$DST" -v ON_ERROR_STOP=1 -f <(cat <<'SQL'
begin;
alter table users disable trigger user;
create temp table chg (op "char", id bigint, login text, first_name text, last_name text,
                       email text, created_at timestamptz, updated_at timestamptz) on commit drop;
\copy chg from pstdin
analyze chg;
update users u
   set login = c.login, first_name = c.first_name, last_name = c.last_name, email = c.email,
       created_at = c.created_at, updated_at = c.updated_at
  from chg c
 where c.op = 'u' and u.id = c.id;
\set updated :ROW_COUNT
insert into users (id, login, first_name, last_name, email, created_at, updated_at)
select id, login, first_name, last_name, email, created_at, updated_at from chg where op = 'u'
    on conflict do nothing;
\set inserted :ROW_COUNT
delete from users u using chg c where c.op = 'd' and u.id = c.id;
\set deleted :ROW_COUNT
alter table users enable trigger user;
commit;
\echo updated :updated inserted :inserted deleted :deleted
SQL
)
