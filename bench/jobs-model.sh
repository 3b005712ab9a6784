#!/usr/bin/env bash
# make bench-model: measure a full sync, its verify and a cutover's freeze step by step at
# --jobs 1 and --jobs 2, feed the jobs-1 runs to the model (bench/jobs-model.ts), and check
# its 2-core prediction against the measured jobs-2 runs.
#
#   bash bench/jobs-model.sh [ROWS]          ROWS users (default 1,000,000; 5,000,000 for the README)
#   ROUNDS=3 bash bench/jobs-model.sh 200000 rounds of (sync, verify) per job count (default 3)
#
# Why it is built this way (bench/README.md, "More cores"):
# - Two throwaway PostgreSQL 15 clusters (blue, green) as in bench/run.sh: stock config,
#   TCP 127.0.0.1, trust auth, the postgres OS user, stopped by a trap.
# - Every bluegreen run logs JSON at debug level (`-v --log-format json`): the end of every
#   phase with its seconds (copy, index, analyze, ...) and verify's table lines. Beside each
#   run, bench/cpu-sample.mjs records the CPU ticks of the client, of blue and of green
#   every 100 ms, so each step's CPU seconds per process are the ticks inside its window.
# - Rounds alternate the order of jobs 1 and jobs 2 (1,2 then 2,1 ...), each into a fresh
#   green, and the figures are medians: the machine is shared.
# - One step the jobs-1 run never takes is measured alone (the "re-insert" calibration): with
#   --jobs N a bulk load COPYs into unlogged stage tables and then moves each table's rows
#   into the real table with one INSERT ... SELECT inside the run's transaction. Its cost is
#   timed on green after a jobs-1 run, table by table, never read off a jobs-2 run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ROWS=${1:-${ROWS:-1000000}}
ROUNDS=${ROUNDS:-3}
CUTOVERS=${CUTOVERS:-3}
[[ $ROWS =~ ^[0-9]+$ && $ROWS -gt 0 ]] || { echo "usage: bash bench/jobs-model.sh [ROWS] (a positive integer)" >&2; exit 2; }
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -gt 0 ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }

TABLES=(roles users user_roles user_settings)
RESULTS=$ROOT/bench/results
mkdir -p "$RESULTS"
log() { printf '%s jobs-model: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
[[ -x $PG_BINDIR/initdb && -x $PG_BINDIR/psql ]] || { echo "jobs-model: no PostgreSQL binaries in $PG_BINDIR (set PG_BINDIR)" >&2; exit 1; }
PSQL=$PG_BINDIR/psql

WORK=$(mktemp -d /tmp/bluegreen-jobs-model.XXXXXX)
chmod 755 "$WORK"
RUNS=$WORK/runs
mkdir -p "$RUNS"
source "$ROOT/bench/clusters.sh" # start_cluster, stop_clusters, as_pg, admin, q
cleanup() {
  local rc=$?
  stop_clusters
  [[ ${KEEP_WORK:-0} == 1 ]] || rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start_cluster blue BLUE_PORT
start_cluster green GREEN_PORT
BLUE_PM=$(head -1 "${STARTED[0]}/postmaster.pid")
GREEN_PM=$(head -1 "${STARTED[1]}/postmaster.pid")
admin "$BLUE_PORT" -c "create role app login" -c "create database app owner app"
admin "$GREEN_PORT" -c "create role app login" -c "create database app owner app"
BLUE_URL=postgresql://app@127.0.0.1:$BLUE_PORT/app
GREEN_URL=postgresql://app@127.0.0.1:$GREEN_PORT/app
export BLUE_URL GREEN_URL
node "$ROOT/bin/build.mjs" 2>/dev/null || true # the bundle, as after `npm ci`
BG=(node "$ROOT/bin/bluegreen.js" --log-format json)
log "PostgreSQL from $PG_BINDIR; work dir $WORK; $ROWS users, $ROUNDS rounds; load $(cut -d' ' -f1-3 /proc/loadavg)"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

"${BG[@]}" -q schema apply --to blue --schema-version 1 >/dev/null
log "seeding blue with $ROWS users"
seed_t0=$(date +%s.%N)
"${BG[@]}" -q seed --to blue --rows "$ROWS" >/dev/null
SEED_S=$(echo "$(date +%s.%N) - $seed_t0" | bc)
q "$BLUE_URL" -c "vacuum analyze $(IFS=,; echo "${TABLES[*]}")"
"${BG[@]}" -q capture enable --env blue >/dev/null 2>&1 || true
declare -A COUNT
for t in "${TABLES[@]}"; do COUNT[$t]=$(q "$BLUE_URL" -Atc "select count(*) from $t"); done
log "seeded in ${SEED_S}s: $(for t in "${TABLES[@]}"; do printf '%s %s, ' "$t" "${COUNT[$t]}"; done)"

settle() {
  q "$BLUE_URL" -c "set client_min_messages = error" -c vacuum
  q "$GREEN_URL" -c "set client_min_messages = error" -c vacuum
  admin "$BLUE_PORT" -c checkpoint
  admin "$GREEN_PORT" -c checkpoint
}
reset_green() {
  admin "$GREEN_PORT" -c "drop database app (force)" -c "create database app owner app"
  "${BG[@]}" -q schema apply --to green --schema-version 2 >/dev/null
  settle
}
check_green() {
  local t n
  for t in "${TABLES[@]}"; do
    n=$(q "$GREEN_URL" -Atc "select count(*) from $t")
    [[ $n == "${COUNT[$t]}" ]] || { log "$1: green.$t has $n rows, blue has ${COUNT[$t]}"; KEEP_WORK=1; exit 1; }
  done
}
wal_lsn() { admin "$GREEN_PORT" -Atc "select pg_current_wal_lsn()"; }

# run NAME CMD...: runs a bluegreen command (or any client) with the CPU sampler beside it.
# Leaves NAME.log (stderr: the JSON log), NAME.json (stdout: the --json report), NAME.cpu
# (samples), NAME.meta (start and end in ms, exit status, green WAL bytes written).
run() {
  local name=$1 pid status=0 w0 w1; shift
  w0=$(wal_lsn)
  # The client waits 0.3 s before it starts, so the sampler's first sample sees it at zero.
  bash -c 'sleep 0.3; date +%s%3N >"$0"; exec "$@"' "$RUNS/$name.start" "$@" >"$RUNS/$name.json" 2>"$RUNS/$name.log" &
  pid=$!
  node "$ROOT/bench/cpu-sample.mjs" "$RUNS/$name.cpu" 100 "$pid" "$BLUE_PM" "$GREEN_PM" &
  local sampler=$!
  wait "$pid" || status=$?
  local end
  end=$(date +%s%3N)
  wait "$sampler" || true
  w1=$(wal_lsn)
  printf '{"name":"%s","startMs":%s,"endMs":%s,"status":%s,"greenWalBytes":%s}\n' "$name" "$(cat "$RUNS/$name.start")" "$end" "$status" \
    "$(admin "$GREEN_PORT" -Atc "select pg_wal_lsn_diff('$w1', '$w0')::bigint")" >"$RUNS/$name.meta"
  return "$status"
}

# One round: for each job count (order alternating): a full sync into a fresh green (it
# verifies every row by default), then a standalone verify with the same job count.
one_jobs() {
  local j=$1 r=$2 rc
  reset_green
  log "round $r: full sync --jobs $j"
  run "sync-j$j-r$r" "${BG[@]}" -v --json sync --from blue --to green --jobs "$j" || { log "sync --jobs $j failed (see $RUNS)"; KEEP_WORK=1; exit 1; }
  check_green "sync-j$j-r$r"
  settle
  log "round $r: verify --jobs $j"
  rc=0
  run "verify-j$j-r$r" "${BG[@]}" -v --json verify --from blue --to green --jobs "$j" || rc=$?
  [[ $rc == 0 ]] || { log "verify --jobs $j exited $rc on equal data"; KEEP_WORK=1; exit 1; }
}

# The re-insert a --jobs run adds (see the header): on green, after a jobs-1 sync, each
# table's rows are copied into an unlogged stage (untimed), then moved into an empty copy of
# the table with the INSERT ... SELECT the staged path runs (timed, with the sampler).
calibrate_reinsert() {
  local t
  for t in "${TABLES[@]}"; do
    q "$GREEN_URL" -c "set client_min_messages = warning" -c "drop table if exists bg_cal_stage, bg_cal_target" \
      -c "create unlogged table bg_cal_stage as select * from $t" -c "create table bg_cal_target (like $t)"
    settle
    # psql's \timing (on stdout, NAME.json) is the statement's own time, without psql's start-up.
    run "reinsert-$t" "$PSQL" -X -q -v ON_ERROR_STOP=1 "$GREEN_URL" -c '\timing on' -c "insert into bg_cal_target select * from bg_cal_stage"
    q "$GREEN_URL" -c "drop table bg_cal_stage, bg_cal_target"
  done
}

for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2 == 1)); then one_jobs 1 "$r"; one_jobs 2 "$r"; else one_jobs 2 "$r"; one_jobs 1 "$r"; fi
done
# Green's table and index sizes after the last run: the staging space a --jobs run needs
# (its stage tables hold the heap once more until the transaction drops them).
q "$GREEN_URL" -At -F $'\t' -c "select relname, pg_table_size(oid), pg_indexes_size(oid) from pg_class
  where relname = any('{roles,users,user_roles,user_settings}') and relkind = 'r'" >"$RUNS/sizes.tsv"
log "re-insert calibration on green"
calibrate_reinsert

# The cutover's freeze: after a full verify, 1% of users change on blue, then a cutover; blue
# is unfrozen and the direction set back afterwards (as bench/run.sh does), CUTOVERS times.
for ((c = 1; c <= CUTOVERS; c++)); do
  "${BG[@]}" -q sync --from blue --to green --verify full >/dev/null
  q "$BLUE_URL" -c "update users set email = coalesce(email, '') || '.m$c' where id % 100 = $((c + 30))" >/dev/null
  settle
  log "cutover $c/$CUTOVERS"
  # --max-lag: on a loaded machine the verifying sync before it can take longer than the
  # default 300 s of lag a cutover accepts (a 5M run at load 10 was refused at 346 s).
  run "cutover-j1-r$c" "${BG[@]}" -v --json cutover --from blue --to green --max-lag 3600 || { log "cutover failed (see $RUNS)"; KEEP_WORK=1; exit 1; }
  "${BG[@]}" -q unfreeze --env blue >/dev/null
  "${BG[@]}" -q direction --from blue --to green >/dev/null
  q "$BLUE_URL" -c "delete from bluegreen.watermarks where source = 'green'" >/dev/null
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
rm -rf "$RESULTS/jobs-model-runs-$ROWS"
cp -r "$RUNS" "$RESULTS/jobs-model-runs-$ROWS"
npx tsx bench/jobs-model.ts --runs "$RESULTS/jobs-model-runs-$ROWS" --rows "$ROWS" --load "$LOAD_START / $LOAD_END" \
  --seed-seconds "$SEED_S" --out "$RESULTS/jobs-model-$ROWS.json"
cp "$RESULTS/jobs-model-$ROWS.json" "$RESULTS/jobs-model.json"
