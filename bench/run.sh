#!/usr/bin/env bash
# make bench: bluegreen's sync against the plain tools a DBA would otherwise use, in one run.
#
#   bash bench/run.sh [ROWS]            ROWS users (default 1,000,000; user_roles ≈ 1.5x,
#                                       user_settings ≈ 1x, roles 12)
#   ROUNDS=5 bash bench/run.sh 200000   more rounds (default 3; medians are reported)
#   PROFILE=1 bash bench/run.sh 200000  also one profiled full sync (see bench/README.md)
#   BASELINE=/path/to/checkout bash bench/run.sh
#                                       also that checkout's full sync (with its verify) in
#                                       every round, beside this one's: before/after in one run
#
# Why it is built this way (details in bench/README.md):
# - Two throwaway PostgreSQL clusters (blue, green) from the machine's newest installed
#   PostgreSQL, in a temp directory, over TCP 127.0.0.1 (like README's Design figures). pg_dump must
#   match the server's major version and embedded-postgres ships no pg_dump, so the
#   benchmark cannot use the embedded PostgreSQL 18 for (e). Two clusters rather than two
#   databases on one server, because blue and green are separate servers in production
#   (separate WAL, buffers, checkpoints); the machine's own clusters are never touched.
# - The data set is generated once (`bluegreen seed`) and reused by every round; each
#   round then runs every method, the groups in a rotating order so slow drift (page
#   cache, autovacuum, other load) does not always hit the same method. Medians reported.
# - Every figure printed comes from this run; bench/report.ts turns the raw samples
#   (bench/results/samples.tsv) into the table and bench/results/latest.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ROWS=${1:-${ROWS:-1000000}}
ROUNDS=${ROUNDS:-3}
PROFILE=${PROFILE:-0}
[[ $ROWS =~ ^[0-9]+$ && $ROWS -gt 0 ]] || { echo "usage: bash bench/run.sh [ROWS] (a positive integer)" >&2; exit 2; }
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -gt 0 ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }

TABLES=(roles users user_roles user_settings) # v1 load order: parents first
RESULTS=$ROOT/bench/results
mkdir -p "$RESULTS"
SAMPLES=$RESULTS/samples.tsv

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- PostgreSQL binaries ---------------------------------------------------------------
# PG_BINDIR overrides; else the newest /usr/lib/postgresql/N/bin that has initdb AND
# pg_dump (server and pg_dump from the same major version).
if [[ -z ${PG_BINDIR:-} ]]; then
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
    if [[ -x $d/initdb && -x $d/pg_dump && -x $d/psql ]]; then PG_BINDIR=$d; break; fi
  done
fi
[[ -n ${PG_BINDIR:-} && -x $PG_BINDIR/initdb ]] || {
  echo "bench: no PostgreSQL server binaries with pg_dump found (set PG_BINDIR=/path/to/bin)" >&2
  exit 1
}
PSQL=$PG_BINDIR/psql
PG_DUMP=$PG_BINDIR/pg_dump
PG_MAJOR=$("$PG_BINDIR/pg_config" --version 2>/dev/null | grep -o '[0-9]\+' | head -1 || true)

# --- peak RSS ----------------------------------------------------------------------------
# GNU time gives the child's peak RSS exactly. Without it (minimal images) we try to
# install it, else sample VmHWM (the kernel's own high-water mark) from /proc while the
# process runs: the last sample before exit is the peak, up to the sampling interval.
TIME_BIN=/usr/bin/time
if [[ ! -x $TIME_BIN ]] && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  log "/usr/bin/time missing: installing the 'time' package"
  (apt-get install -y -qq time >/dev/null 2>&1 || true)
fi
[[ -x $TIME_BIN ]] || { TIME_BIN=""; log "/usr/bin/time unavailable: peak RSS sampled from /proc/PID/status (VmHWM)"; }

# --- pgcopydb, for (g) ---------------------------------------------------------------------
# Debian's package (0.10 on bookworm), installed the way `time` is above: only when missing
# and we are root, and only when apt would add no PostgreSQL server package with it (a
# server package creates and starts a cluster of its own on a shared machine). Otherwise
# (g) is skipped with a log line. pgcopydb runs pg_dump and pg_restore from the bindir that
# PG_CONFIG names, else from PATH: both point at $PG_BINDIR, so the dump's major version is
# the clusters'. The clone's log shows which pg_dump it used; check_clone insists on ours.
PGCOPYDB_BIN=$(command -v pgcopydb || true)
if [[ -z $PGCOPYDB_BIN ]] && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  servers=$(apt-get install -s pgcopydb 2>/dev/null | awk '/^Inst / {print $2}' | grep -E '^postgresql-[0-9]+$' || true)
  if [[ -n $servers ]]; then
    log "pgcopydb missing, and installing it would also install $(echo $servers): (g) skipped"
  else
    log "pgcopydb missing: installing the 'pgcopydb' package"
    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgcopydb >/dev/null 2>&1 || true)
    PGCOPYDB_BIN=$(command -v pgcopydb || true)
  fi
fi
PGCOPYDB_VERSION=""
if [[ -n $PGCOPYDB_BIN ]]; then
  PGCOPYDB_VERSION=$("$PGCOPYDB_BIN" --version 2>&1 | sed -n 's/^pgcopydb version //p' | head -1)
  PGCOPYDB_VERSION=${PGCOPYDB_VERSION:-unknown}
  # 0.10 prints "compatible with Postgres 10, 11, 12, 13, 14, and 15": it reads the catalogs of
  # those versions only. A line that does not name our major skips (g) rather than fail late.
  compat=$("$PGCOPYDB_BIN" --version 2>&1 | grep -i '^compatible with' || true)
  if [[ -n $compat && -n $PG_MAJOR ]] && ! grep -qw "$PG_MAJOR" <<<"$compat"; then
    log "pgcopydb $PGCOPYDB_VERSION is $compat, not $PG_MAJOR: (g) skipped"
    PGCOPYDB_BIN=""
  fi
else
  log "pgcopydb unavailable (not installed, and not root or no apt-get): (g) skipped"
fi
CORES=$(nproc)

# cpu_ticks: CPU time (user + system, in clock ticks) of everything a method runs on: this
# shell's reaped children (bluegreen, psql, pg_dump) and both clusters (each postmaster,
# its live children, and the backends it has reaped). Seconds depend on how busy the
# machine is; CPU seconds much less, and CPU seconds / cores is the least time a method
# can take on this machine, however well it overlaps its work.
TICKS=$(getconf CLK_TCK)
# Prints three counts: the clients, then each cluster in the order started (blue, green).
cpu_ticks() {
  local t f p pm dir out
  f=$(sed 's/.*) //' "/proc/$$/stat") # $$: the bench shell, which reaps every measured command
  set -- $f
  out=$((${14} + ${15}))
  for dir in "${STARTED[@]}"; do
    t=0
    pm=$(head -1 "$dir/postmaster.pid" 2>/dev/null) || continue
    for p in $pm $(pgrep -P "$pm"); do
      f=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || continue
      set -- $f
      t=$((t + ${12} + ${13} + ${14} + ${15}))
    done
    out="$out $t"
  done
  echo "$out"
}
# cpu_seconds "C0 B0 G0" "C1 B1 G1": "total client/blue/green" in seconds.
cpu_seconds() {
  local -a a=($1) b=($2)
  local c=$((b[0] - a[0])) bl=$((b[1] - a[1])) g=$((b[2] - a[2]))
  printf '%s\t%s/%s/%s' "$(echo "scale=2; ($c + $bl + $g) / $TICKS" | bc)" \
    "$(echo "scale=2; $c / $TICKS" | bc)" "$(echo "scale=2; $bl / $TICKS" | bc)" "$(echo "scale=2; $g / $TICKS" | bc)"
}

# measure LABEL ROUND CMD...: runs CMD, appends "round method seconds rss_kb cpu_s cpu_split"
# to SAMPLES. rss_kb is the peak RSS of CMD's process (meaningful for bluegreen; for pgcopydb,
# GNU time's figure is its largest process, itself or one it waited for; '-' for pipelines); cpu_s the CPU seconds it cost, clients and servers together (cpu_ticks), and
# cpu_split the same as client/blue/green.
measure() {
  local label=$1 round=$2; shift 2
  local t0 t1 rss=- out=$WORK/time.out status=0
  # Others may edit the working tree during a long run: rebuild the bundle (untimed) so
  # every bluegreen run starts like an installed CLI, on the current code.
  [[ $label == bg_* ]] && node "$ROOT/bin/build.mjs" 2>/dev/null
  local c0 c1
  c0=$(cpu_ticks)
  t0=$(date +%s.%N)
  if [[ ($label == bg_* || $label == pgcopydb*) && -n $TIME_BIN ]]; then
    "$TIME_BIN" -f '%M' -o "$out" "$@" || status=$?
    rss=$(tail -1 "$out")
  elif [[ $label == bg_* || $label == pgcopydb* ]]; then
    "$@" &
    local pid=$! hwm=0 v
    while kill -0 "$pid" 2>/dev/null; do
      v=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
      [[ -n $v && $v -gt $hwm ]] && hwm=$v
      sleep 0.05
    done
    wait "$pid" || status=$?
    rss=$hwm
  else
    "$@" || status=$?
  fi
  t1=$(date +%s.%N)
  sleep 0.3 # (untimed) the postmasters reap the method's backends, whose CPU time then counts
  c1=$(cpu_ticks)
  printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$label" "$(echo "$t1 - $t0" | bc)" "$rss" "$(cpu_seconds "$c0" "$c1")" >>"$SAMPLES"
  # The command's own status, so callers can insist on it (verify's 0 or 3).
  return "$status"
}

# --- clusters ----------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/bluegreen-bench.XXXXXX)
chmod 755 "$WORK"
source "$ROOT/bench/clusters.sh" # start_cluster, stop_clusters, as_pg, admin, q

cleanup() {
  local rc=$?
  stop_clusters
  [[ ${KEEP_WORK:-0} == 1 ]] || rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "PostgreSQL $PG_MAJOR from $PG_BINDIR; work dir $WORK; $ROWS users, $ROUNDS rounds"
# The CLI's start-up cost, measured first (nothing else of ours running). It also builds
# dist/ as `npm ci` does, so every run below is the CLI a DBA gets after installing.
log "measuring the CLI's start-up (bench/startup.sh)"
STARTUP=$(bash "$ROOT/bench/startup.sh" 5)
CLI_MODE=$([[ -f $ROOT/dist/cli.js ]] && echo "bundle (dist/cli.js)" || echo "tsx from source")
if [[ -n ${BASELINE:-} ]]; then
  [[ -x $BASELINE/bin/bluegreen.js || -f $BASELINE/bin/bluegreen.js ]] || { echo "bench: BASELINE=$BASELINE is not a bluegreen checkout" >&2; exit 2; }
  (cd "$BASELINE" && node bin/build.mjs) # its own bundle, as an install of that version runs
fi
start_cluster blue BLUE_PORT
start_cluster green GREEN_PORT
# bluegreen runs as `app`, an owner and not a superuser (least privilege).
admin "$BLUE_PORT" -c "create role app login" -c "create database app owner app"
admin "$GREEN_PORT" -c "create role app login" -c "create database app owner app" -c "create database raw owner app"
BLUE_URL=postgresql://app@127.0.0.1:$BLUE_PORT/app
GREEN_URL=postgresql://app@127.0.0.1:$GREEN_PORT/app
RAW_URL=postgresql://app@127.0.0.1:$GREEN_PORT/raw # v1 tables for the psql and pg_dump baselines
export BLUE_URL GREEN_URL

# The CLI as a DBA runs it; BLUE_URL/GREEN_URL name the environments. --log-format json
# because a benchmark is not a terminal (no progress bars).
BG=(node "$ROOT/bin/bluegreen.js" --log-format json)

# --- data set ----------------------------------------------------------------------------
"${BG[@]}" -q schema apply --to blue --schema-version 1 >/dev/null
"${BG[@]}" -q schema apply --to-url "$RAW_URL" --to raw --schema-version 1 >/dev/null
# The baselines load into v1 tables with their primary keys, unique and secondary indexes
# (the shape of README's Design figures) but without the foreign keys: per-row RI checks would slow (a) and (e)
# by a third or more, and bluegreen's bulk path validates foreign keys once after the
# data, so keeping them would flatter bluegreen's ratio. Conservative on purpose.
q "$RAW_URL" -Atc "select format('alter table %s drop constraint %I;', conrelid::regclass, conname)
                     from pg_constraint where contype = 'f'" | q "$RAW_URL"
log "seeding blue with $ROWS users (bluegreen seed, once for all rounds)"
seed_t0=$(date +%s.%N)
"${BG[@]}" -q seed --to blue --rows "$ROWS" >/dev/null
SEED_S=$(echo "$(date +%s.%N) - $seed_t0" | bc)
# Set hint bits and the visibility map now, so round 1's readers do not pay for it.
q "$BLUE_URL" -c "vacuum analyze $(IFS=,; echo "${TABLES[*]}")"
declare -A COUNT
for t in "${TABLES[@]}"; do COUNT[$t]=$(q "$BLUE_URL" -Atc "select count(*) from $t"); done
TOTAL=0; for t in "${TABLES[@]}"; do TOTAL=$((TOTAL + COUNT[$t])); done
log "seeded in ${SEED_S}s: $(for t in "${TABLES[@]}"; do printf '%s %s, ' "$t" "${COUNT[$t]}"; done)total $TOTAL rows"

# Delete capture (opt-in, needs table ownership) is what makes an incremental run's delete
# detection follow the change; the bench runs with it, as a large deployment would, and
# measures the key-bucket reconciliation (`--reconcile`, the path without capture) apart.
HAS_CAPTURE=0
if "${BG[@]}" capture --help >/dev/null 2>&1; then
  HAS_CAPTURE=1
  "${BG[@]}" -q capture enable --env blue >/dev/null
fi

HAS_VERIFY=0 HAS_NO_VERIFY=0
if "${BG[@]}" verify --help >/dev/null 2>&1; then HAS_VERIFY=1; else log "no 'verify' command in this build: (d) skipped"; fi
if "${BG[@]}" sync --help 2>/dev/null | grep -q -- '--verify'; then HAS_NO_VERIFY=1; fi

printf 'round\tmethod\tseconds\trss_kb\tcpu_s\tcpu_split\n' >"$SAMPLES"
# Other work on the machine skews seconds (less so ratios): the load is reported.
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# Before each measured method: empty targets and flush both clusters' dirty buffers, so
# one method's checkpoint work does not land in the next one's time.
settle() {
  # VACUUM first (untimed): autovacuum would otherwise make its first pass over freshly
  # loaded or changed tables in the middle of the next timed method (a 1M-user incremental
  # sync took 0.8 s in one round and 3.9-4.0 s in the next two, while its --no-verify twin
  # run right after stayed at 0.8 s). A cron sync meets a green autovacuum has settled.
  q "$BLUE_URL" -c "set client_min_messages = error" -c vacuum
  q "$GREEN_URL" -c "set client_min_messages = error" -c vacuum
  [[ -z $FLOOR_URL ]] || q "$FLOOR_URL" -c "set client_min_messages = error" -c vacuum
  admin "$BLUE_PORT" -c checkpoint
  admin "$GREEN_PORT" -c checkpoint
}
truncate_raw() {
  q "$RAW_URL" -c "truncate $(IFS=,; echo "${TABLES[*]}")"
  settle
}

# (a) psql \copy out of blue piped into psql \copy into green's indexed v1 tables, table
# by table in load order (the real v1 schema: keys, indexes and foreign keys).
raw_pipe() {
  local round=$1
  truncate_raw
  for t in "${TABLES[@]}"; do
    measure "raw_$t" "$round" bash -o pipefail -c \
      "'$PSQL' -X -q -v ON_ERROR_STOP=1 '$BLUE_URL' -c '\\copy (select * from $t) to stdout' | '$PSQL' -X -q -v ON_ERROR_STOP=1 '$RAW_URL' -c '\\copy $t from stdin'"
  done
}

# (e) pg_dump --data-only of the same tables piped into psql, into the same empty tables.
pg_dump_pipe() {
  local round=$1
  truncate_raw
  measure pg_dump "$round" bash -o pipefail -c \
    "'$PG_DUMP' --data-only $(printf -- '-t %s ' "${TABLES[@]}") '$BLUE_URL' | '$PSQL' -X -q -v ON_ERROR_STOP=1 '$RAW_URL' >/dev/null"
}

# (g) pgcopydb clone of blue's whole app database into a fresh empty database on green,
# `clone`: schema (pg_dump/pg_restore pre-data), COPY of every table into index-less
# tables, then CREATE INDEX in parallel, primary keys on those indexes, foreign keys and
# the rest of post-data, VACUUM ANALYZE and sequences; all in the source snapshot it
# exports. That is how a DBA copies a database to a server of the same major version.
# The whole database and not a filter of the 4 tables: a DBA copying the application's
# database copies all of it, and the tables' delete-capture triggers call a function in
# the `bluegreen` schema, which a 4-table filter would leave behind. What it brings beyond
# the 4 tables (bluegreen's small state tables) is a few rows. Measured twice, each
# into a new database: with pgcopydb's defaults (4 COPY jobs, 4 CREATE INDEX jobs) and
# with both set to the number of cores.
CLONE_URL=postgresql://app@127.0.0.1:$GREEN_PORT/clone
pgcopydb_clone() {
  local round=$1
  [[ -n $PGCOPYDB_BIN ]] || { log "round $round: pgcopydb unavailable, (g) skipped"; return 0; }
  clone_one pgcopydb "$round"
  clone_one pgcopydb_jobs_cores "$round" --table-jobs "$CORES" --index-jobs "$CORES"
}
clone_one() {
  local label=$1 round=$2 dir=$WORK/pgcopydb-work; shift 2
  admin "$GREEN_PORT" -c "set client_min_messages = warning" -c "drop database if exists clone (force)" -c "create database clone owner app"
  rm -rf "$dir"
  settle
  # env -u: PGCOPYDB_* in the caller's environment would change the jobs measured.
  measure "$label" "$round" env -u PGCOPYDB_TABLE_JOBS -u PGCOPYDB_INDEX_JOBS -u PGCOPYDB_SPLIT_TABLES_LARGER_THAN \
    -u PGCOPYDB_DROP_IF_EXISTS -u PGCOPYDB_SNAPSHOT PG_CONFIG="$PG_BINDIR/pg_config" PATH="$PG_BINDIR:$PATH" \
    "$PGCOPYDB_BIN" clone --source "$BLUE_URL" --target "$CLONE_URL" --dir "$dir" "$@" >"$WORK/$label-$round.log" 2>&1 ||
    { log "round $round: $label failed (see $WORK/$label-$round.log)"; KEEP_WORK=1; exit 1; }
  check_clone "$round" "$WORK/$label-$round.log"
  admin "$GREEN_PORT" -c "drop database clone (force)"
  rm -rf "$dir"
}
# The clone must hold every row, and the same indexes and constraints as blue's tables,
# made by the clusters' own pg_dump/pg_restore.
check_clone() {
  local t n want sig="select coalesce(string_agg(d, ' | ' order by d), '') from (
      select indexdef as d from pg_indexes where schemaname = 'public'
      union all
      select conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) from pg_constraint where connamespace = 'public'::regnamespace) x"
  for t in "${TABLES[@]}"; do
    want=${COUNT[$t]}
    n=$(q "$CLONE_URL" -Atc "select count(*) from $t")
    [[ $n == "$want" ]] || { log "round $1: clone.$t has $n rows, blue has $want (see $2)"; KEEP_WORK=1; exit 1; }
  done
  [[ $(q "$CLONE_URL" -Atc "$sig") == "$(q "$BLUE_URL" -Atc "$sig")" ]] ||
    { log "round $1: the clone's indexes and constraints differ from blue's (see $2)"; KEEP_WORK=1; exit 1; }
  grep -q " $PG_BINDIR/pg_dump -Fc " "$2" && grep -q " $PG_BINDIR/pg_restore " "$2" ||
    { log "round $1: pgcopydb did not run $PG_BINDIR/pg_dump and pg_restore (see $2)"; KEEP_WORK=1; exit 1; }
}

# (b) full v1 -> v2 sync into an empty v2 green, (c) an incremental sync after 1% of users
# changed, (d) verify of the now equal data. `sync` verifies its own result by default
# (a sync is export+convert+import+verify); when the build has --no-verify, (b) and (c) are
# also measured without it, so the transfer and the check can be told apart.
reset_green() {
  admin "$GREEN_PORT" -c "drop database app (force)" -c "create database app owner app"
  "${BG[@]}" -q schema apply --to green --schema-version 2 >/dev/null
  settle
}
# change_users RESIDUE [MODULUS]: the users whose id % MODULUS (100: 1%) is RESIDUE change
# on blue (a real column; the v1 trigger moves updated_at), scattered over the whole table
# and different each time; prints how many rows changed.
change_users() {
  q "$BLUE_URL" -Atc "with u as (update users set email = coalesce(email, '') || '.c$1' where id % ${2:-100} = $1 returning 1) select count(*) from u"
  settle
}
# The apply floor (bench/apply-floor.sh): each incremental sync's change applied again by
# hand-written SQL (COPY into a temp table, UPDATE ... FROM, INSERT ... ON CONFLICT, DELETE,
# one transaction) to a second green database, `floor`: a file copy of green made right
# after the full sync, so both start from the same heap and index pages and take the same
# changes after. Sync and floor run one after the other with a settle (vacuum, checkpoint)
# between them, their order alternating from one change to the next.
FLOOR_URL="" FLOOR_TURN=0
floor_db() {
  FLOOR_URL=""
  admin "$GREEN_PORT" -c "drop database if exists floor (force)"
  [[ $1 == create ]] || return 0
  admin "$GREEN_PORT" -c "create database floor owner app template app strategy file_copy"
  FLOOR_URL=postgresql://app@127.0.0.1:$GREEN_PORT/floor
}
# The changed users, read back the same way from green and from the floor, must agree.
check_floor() {
  local sql="select count(*) || ' ' || md5(string_agg(u::text, '|' order by id)) from users u where id % $2 = $1" a b
  a=$(q "$GREEN_URL" -Atc "$sql") b=$(q "$FLOOR_URL" -Atc "$sql")
  [[ $a == "$b" ]] || { log "the apply floor left other rows than the sync (green: $a, floor: $b)"; KEEP_WORK=1; exit 1; }
}
# incremental LABEL ROUND RESIDUE [MODULUS [sync options]]
incremental() {
  local label=$1 round=$2 residue=$3 modulus=${4:-100} changed bound floor out; shift 3; shift $(($# > 0 ? 1 : 0))
  bound=$(q "$BLUE_URL" -Atc "select now()")
  changed=$(change_users "$residue" "$modulus")
  floor=${label/bg_incremental/apply_floor}
  if [[ -n $FLOOR_URL && $((FLOOR_TURN++ % 2)) == 1 ]]; then
    measure "$floor" "$round" bash "$ROOT/bench/apply-floor.sh" "$PSQL" "$BLUE_URL" "$FLOOR_URL" "$bound" >"$WORK/$floor-$round.out"
    settle
  fi
  measure "$label" "$round" "${BG[@]}" --json sync --from blue --to green "$@" >"$WORK/$label-$round.json" 2>"$WORK/$label-$round.log"
  check_incremental "$WORK/$label-$round.json" "$changed"
  if [[ -n $FLOOR_URL && ! -s $WORK/$floor-$round.out ]]; then
    settle
    measure "$floor" "$round" bash "$ROOT/bench/apply-floor.sh" "$PSQL" "$BLUE_URL" "$FLOOR_URL" "$bound" >"$WORK/$floor-$round.out"
  fi
  if [[ -n $FLOOR_URL ]]; then
    out=$(cat "$WORK/$floor-$round.out")
    [[ $out == "updated $changed inserted 0 deleted 0" ]] || { log "apply floor: '$out', expected $changed updated"; KEEP_WORK=1; exit 1; }
    check_floor "$residue" "$modulus"
  fi
}
bluegreen_syncs() {
  local round=$1
  reset_green
  measure bg_full_sync "$round" "${BG[@]}" --json sync --from blue --to green >"$WORK/full-$round.json"
  check_green "$round"
  floor_db create
  settle
  incremental bg_incremental "$round" $(((2 * round) % 100))
  if [[ $HAS_NO_VERIFY == 1 ]]; then
    incremental bg_incremental_noverify "$round" $(((2 * round + 1) % 100)) 100 --no-verify
  fi
  if [[ $HAS_CAPTURE == 1 ]]; then
    incremental bg_incremental_reconcile "$round" $(((2 * round + 20) % 100)) 100 --reconcile
  fi
  # 0.1% of users, scattered the same way (every 1000th id).
  incremental bg_incremental_p1 "$round" $(((7 * round + 3) % 1000)) 1000
  if [[ $HAS_CAPTURE == 1 ]]; then
    incremental bg_incremental_p1_reconcile "$round" $(((7 * round + 503) % 1000)) 1000 --reconcile
  fi
  floor_db drop
  if [[ $HAS_VERIFY == 1 ]]; then
    local rc=0
    measure bg_verify "$round" "${BG[@]}" --json verify --from blue --to green >"$WORK/verify-$round.json" || rc=$?
    [[ $rc == 0 ]] || { log "verify exited $rc on equal data (see $WORK/verify-$round.json)"; KEEP_WORK=1; exit 1; }
    # (d2) the same with 10 planted differences: verify must exit 3 and name all 10.
    q "$GREEN_URL" -c "update users set email = coalesce(email, '') || '.planted' where id in (select id from users order by id offset $((round * 7)) limit 10)" >/dev/null
    settle
    rc=0
    measure bg_verify_diff "$round" "${BG[@]}" --json verify --from blue --to green --keys 10 >"$WORK/verify-diff-$round.json" || rc=$?
    [[ $rc == 3 ]] || { log "verify exited $rc with 10 planted differences (see $WORK/verify-diff-$round.json)"; KEEP_WORK=1; exit 1; }
    node -e '
      const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const r = j.report ?? j; // --json prints the envelope {command, ok, report}
      const u = r.tables.find((t) => t.table === "users");
      const others = r.tables.filter((t) => t.table !== "users").reduce((a, t) => a + t.missing.count + t.extra.count + t.changed.count, 0);
      if (u.changed.count !== 10 || u.changed.keys.length !== 10 || others !== 0) {
        console.error(`bench: verify did not name exactly the 10 planted rows: ${JSON.stringify(u.changed)}, others ${others}`);
        process.exit(1);
      }' "$WORK/verify-diff-$round.json"
    # (d3) sync --repair re-copies exactly those 10 keys.
    if "${BG[@]}" sync --help 2>/dev/null | grep -q -- '--repair'; then
      measure bg_repair "$round" "${BG[@]}" --json sync --from blue --to green --repair >"$WORK/repair-$round.json"
      node -e '
        const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const r = j.report ?? j; // --json prints the envelope {command, ok, report}
        const u = r.tables.find((t) => t.table === "users");
        if (!r.clean || !u || u.updated !== 10) { console.error(`bench: repair did not fix the 10 planted rows: ${JSON.stringify(r.tables)}`); process.exit(1); }' "$WORK/repair-$round.json"
    fi
  fi
  if [[ $HAS_NO_VERIFY == 1 ]]; then
    reset_green
    measure bg_full_sync_noverify "$round" "${BG[@]}" --json sync --from blue --to green --no-verify >"$WORK/full-noverify-$round.json"
    check_green "$round"
    if [[ -n ${BASELINE:-} ]]; then
      reset_green
      measure bg_full_sync_baseline "$round" node "$BASELINE/bin/bluegreen.js" --log-format json --json sync --from blue --to green >"$WORK/full-baseline-$round.json"
      check_green "$round"
    fi
    # (b2) the same full sync with its tables (and block ranges of users) staged on two
    # connection pairs, beside (b)'s --no-verify: 1 vs 2 jobs in the same round.
    if "${BG[@]}" sync --help 2>/dev/null | grep -q -- '--jobs'; then
      reset_green
      measure bg_full_jobs2 "$round" "${BG[@]}" --json sync --from blue --to green --no-verify --jobs 2 >"$WORK/full-jobs2-$round.json"
      check_green "$round"
    fi
  fi
  if "${BG[@]}" cutover --help 2>/dev/null | grep -q -- '--timeout'; then cutover_freeze "$round"; fi
  # Keep blue steady across rounds: clean the dead rows now, outside every timing.
  q "$BLUE_URL" -c "vacuum analyze users"
}

# (f) cutover with 1% of users changed since the last (verified) sync: the freeze must
# cost that 1%, not the database. The report's freezeMs (writes refused on blue) is
# recorded as its own sample; afterwards blue is unfrozen and the reverse watermarks the
# cutover seeded are removed, so the next round starts as this one did.
cutover_freeze() {
  local round=$1 changed
  "${BG[@]}" -q sync --from blue --to green --verify full >/dev/null # a clean full verify newer than the last sync
  changed=$(change_users $(((2 * round + 50) % 100)))
  # --max-lag: the lag guard measures how far green is behind; on a loaded machine at 5M the
  # verifying sync just before can take longer than its 300 s default, and the freeze being
  # measured is the same either way.
  measure bg_cutover "$round" "${BG[@]}" --json cutover --from blue --to green --max-lag 3600 >"$WORK/cutover-$round.json"
  node -e '
    const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const r = j.report ?? j; // --json prints the envelope {command, ok, report}
    // The changed users travel in the catch-up sync before the freeze, and whatever was
    // written after it in the final sync: together, exactly the changed users.
    const users = (s) => (s ? s.tables.find((t) => t.table === "users").updated : 0);
    const updated = users(r.caughtUpBeforeFreeze) + users(r.sync);
    if (!r.ok || r.verifiedBeforeFreeze || r.sync.mode !== "incremental" || updated !== Number(process.argv[2]) || typeof r.freezeMs !== "number") {
      console.error(`bench: cutover ${process.argv[1]}: ok ${r.ok}, users updated ${updated} (expected ${process.argv[2]}), freezeMs ${r.freezeMs}`);
      process.exit(1);
    }
    process.stdout.write(`${process.argv[3]}\tcutover_freeze\t${r.freezeMs / 1000}\t-\n`);' "$WORK/cutover-$round.json" "$changed" "$round" >>"$SAMPLES"
  "${BG[@]}" -q unfreeze --env blue >/dev/null
  # An unfreeze by hand leaves the pair's direction open (the next sync refuses until someone
  # decides): blue keeps serving, as before the cutover.
  "${BG[@]}" -q direction --from blue --to green >/dev/null
  q "$BLUE_URL" -c "delete from bluegreen.watermarks where source = 'green'" >/dev/null
  settle
}

# A full sync must have moved every row, else its time means nothing.
check_green() {
  local t n want
  for t in "${TABLES[@]}"; do
    want=${COUNT[$t]}
    n=$(q "$GREEN_URL" -Atc "select count(*) from $t")
    [[ $n == "$want" ]] || { log "round $1: green.$t has $n rows, blue has $want"; exit 1; }
  done
}
# An incremental sync must have been incremental and updated exactly the changed users.
check_incremental() {
  node -e '
    const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const r = j.report ?? j; // --json prints the envelope {command, ok, report}
    const users = r.tables.find((t) => t.table === "users");
    if (r.mode !== "incremental" || users.updated !== Number(process.argv[2])) {
      console.error(`bench: ${process.argv[1]}: mode ${r.mode}, users updated ${users && users.updated}, expected ${process.argv[2]}`);
      process.exit(1);
    }' "$1" "$2"
}

GROUPS_=(raw_pipe bluegreen_syncs pg_dump_pipe pgcopydb_clone)
for ((round = 1; round <= ROUNDS; round++)); do
  for ((g = 0; g < ${#GROUPS_[@]}; g++)); do
    group=${GROUPS_[$(((g + round - 1) % ${#GROUPS_[@]}))]}
    log "round $round/$ROUNDS: $group"
    $group "$round"
  done
done
cp "$WORK"/*.json "$WORK"/*.log "$WORK"/*.out "$RESULTS/" 2>/dev/null || true

if [[ $PROFILE == 1 ]]; then
  log "profiling one more full sync (statement log on green, node --cpu-prof)"
  source "$ROOT/bench/profile.sh"
fi

npx tsx bench/report.ts "$SAMPLES" "$RESULTS/latest.json" \
  --rows "$ROWS" --total "$TOTAL" --rounds "$ROUNDS" --seed-seconds "$SEED_S" \
  --pg "$PG_MAJOR" --startup "$STARTUP" --cli "$CLI_MODE" --load "$LOAD_START / $(cut -d' ' -f1-3 /proc/loadavg)" --rss-source "$([[ -n $TIME_BIN ]] && echo 'GNU time' || echo 'VmHWM sampling')" \
  $(for t in "${TABLES[@]}"; do printf -- '--count %s=%s ' "$t" "${COUNT[$t]}"; done) \
  $([[ -z $PGCOPYDB_BIN ]] || printf -- '--pgcopydb %s --cores %s' "$PGCOPYDB_VERSION" "$CORES")
cp "$RESULTS/latest.json" "$RESULTS/rows-$ROWS.json"
