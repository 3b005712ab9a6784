#!/usr/bin/env bash
# make bench-rss: the peak RSS of every command a DBA runs, on ROWS users, from the package
# as a user installs it.
#
#   bash bench/rss.sh [ROWS]                      ROWS users (default 1,000,000)
#   RSS_WORK=/tmp/rss-5m bash bench/rss.sh 5000000
#                                                 keep the clusters and the seeded data in
#                                                 that folder and reuse them on the next run
#                                                 (a 5M seed takes several minutes)
#   SEED_ONLY=1 RSS_WORK=… bash bench/rss.sh N    seed (or reuse the seed) and stop
#
# How (details in bench/README.md, "Peak memory of every command"):
# - `npm pack`, then `npm install -g` of the tarball into a throwaway prefix (as
#   test/install/packaged.sh does): what runs is the installed `bluegreen` command, run from a
#   folder outside the repository, with the sample app's mappings the package ships.
# - Two throwaway PostgreSQL clusters (blue, green) over TCP 127.0.0.1, as bench/run.sh makes
#   them (PG binaries from PG_BINDIR, default the newest /usr/lib/postgresql/N/bin; the
#   servers run as the postgres OS user when we are root). bluegreen connects as `app`, the
#   databases' owner.
# - Blue is seeded once (`bluegreen seed`) into a template database, `seeded`; every run
#   starts from a file copy of it, so a kept work folder can be reused however the last run
#   left blue (frozen, with capture, with bluegreen's state).
# - Every command runs under GNU `time -f %M`: the peak RSS (VmHWM) of the bluegreen process.
#   It runs no child processes of its own (psql, pg_dump): the figure is the whole client.
# - Each command's exit code is checked (and the counts where it matters): a figure is only
#   printed for a command that did its job.
# Output: a table on stdout (command, peak RSS MB, seconds) and bench/results/rss.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ROWS=${1:-${ROWS:-1000000}}
[[ $ROWS =~ ^[0-9]+$ && $ROWS -gt 0 ]] || { echo "usage: bash bench/rss.sh [ROWS] (a positive integer)" >&2; exit 2; }
LIMIT_MB=${LIMIT_MB:-128}
RESULTS=$ROOT/bench/results
mkdir -p "$RESULTS"

log() { printf '%s rss: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ -z ${PG_BINDIR:-} ]]; then
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
    if [[ -x $d/initdb && -x $d/psql ]]; then PG_BINDIR=$d; break; fi
  done
fi
[[ -n ${PG_BINDIR:-} && -x $PG_BINDIR/initdb ]] || { echo "rss: no PostgreSQL server binaries found (set PG_BINDIR=/path/to/bin)" >&2; exit 1; }
PSQL=$PG_BINDIR/psql
TIME_BIN=/usr/bin/time
if [[ ! -x $TIME_BIN ]] && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  log "/usr/bin/time missing: installing the 'time' package"
  (apt-get install -y -qq time >/dev/null 2>&1 || true)
fi
[[ -x $TIME_BIN ]] || { echo "rss: GNU time (/usr/bin/time) is needed for the peak RSS" >&2; exit 1; }

# --- work folder and clusters ------------------------------------------------------------
if [[ -n ${RSS_WORK:-} ]]; then
  WORK=$RSS_WORK KEEP_WORK=1
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d /tmp/bluegreen-rss.XXXXXX)
fi
chmod 755 "$WORK"
source "$ROOT/bench/clusters.sh" # start_cluster (a kept work folder keeps its initdb), stop_clusters, as_pg, admin, q
cleanup() {
  local rc=$?
  stop_clusters
  rm -rf "$WORK/run" "$WORK/prefix" "$WORK/pack"
  [[ ${KEEP_WORK:-0} == 1 ]] || rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the package as a user installs it ---------------------------------------------------
log "npm pack + npm install -g into $WORK/prefix"
rm -rf "$WORK/pack" "$WORK/prefix" "$WORK/run"
mkdir -p "$WORK/pack" "$WORK/run"
(cd "$ROOT" && npm pack --silent --pack-destination "$WORK/pack" >/dev/null)
npm install -g --prefix "$WORK/prefix" --omit=optional --no-audit --no-fund "$WORK"/pack/bluegreen-*.tgz >"$WORK/install.log" 2>&1 ||
  { cat "$WORK/install.log" >&2; exit 1; }
PKG=$WORK/prefix/lib/node_modules/bluegreen
BG_BIN=$WORK/prefix/bin/bluegreen
[[ -x $BG_BIN ]] || { echo "rss: no bluegreen command in $WORK/prefix/bin" >&2; exit 1; }
# From a folder outside the repository, with the mappings the package ships (the sample
# app: v1, v2, v3). --log-format json: not a terminal, no progress bars.
cd "$WORK/run"
BG=("$BG_BIN" --mappings "$PKG/mappings" --log-format json)
log "$("$BG_BIN" --version) installed; PostgreSQL from $PG_BINDIR; work folder $WORK"

start_cluster blue BLUE_PORT
start_cluster green GREEN_PORT
BLUE_URL=postgresql://app@127.0.0.1:$BLUE_PORT/app
GREEN_URL=postgresql://app@127.0.0.1:$GREEN_PORT/app
export BLUE_URL GREEN_URL

# --- peak RSS ----------------------------------------------------------------------------
SAMPLES=$WORK/rss.tsv
: >"$SAMPLES"
# measure NAME CMD...: runs CMD under GNU time; appends "NAME rss_kb seconds" to SAMPLES;
# returns CMD's exit code (callers insist on the one they expect).
measure() {
  local name=$1 status=0 t0 t1; shift
  t0=$(date +%s.%N)
  "$TIME_BIN" -f '%M' -o "$WORK/time.out" "$@" || status=$?
  t1=$(date +%s.%N)
  printf '%s\t%s\t%s\t%s\n' "$name" "$(tail -1 "$WORK/time.out")" "$(echo "$t1 - $t0" | bc)" "$status" >>"$SAMPLES"
  return "$status"
}
# run NAME EXPECTED_CODE bluegreen-args...: measure one bluegreen command; its --json
# envelope goes to NAME.json, its log to NAME.log.
run() {
  local name=$1 want=$2 rc=0; shift 2
  log "$name: bluegreen $*"
  measure "$name" "${BG[@]}" "$@" >"$WORK/$name.json" 2>"$WORK/$name.log" || rc=$?
  [[ $rc == "$want" ]] || { log "$name exited $rc, expected $want (see $WORK/$name.log)"; tail -5 "$WORK/$name.log" >&2; KEEP_WORK=1; exit 1; }
}
report() { node -e 'const e=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(JSON.stringify(eval("e."+process.argv[2])))' "$WORK/$1.json" "$2"; }

# --- data set: seeded once, in a template ----------------------------------------------------
if [[ $(cat "$WORK/seeded" 2>/dev/null) != "$ROWS" ]]; then
  log "seeding blue with $ROWS users into the template database 'seeded'"
  admin "$BLUE_PORT" -c "drop database if exists app (force)" -c "drop database if exists seeded (force)" \
    -c "do \$\$ begin create role app login; exception when duplicate_object then null; end \$\$" -c "create database seeded owner app"
  SEED_URL=postgresql://app@127.0.0.1:$BLUE_PORT/seeded
  "${BG[@]}" -q schema apply --to-url "$SEED_URL" --to blue --schema-version 1
  measure seed "${BG[@]}" -q seed --to-url "$SEED_URL" --to blue --rows "$ROWS"
  cp "$SAMPLES" "$WORK/seed.tsv" # a kept work folder seeds once: its figure is reported by every run
  q "$SEED_URL" -c "set client_min_messages = error" -c "vacuum analyze"
  echo "$ROWS" >"$WORK/seeded"
fi
[[ ${SEED_ONLY:-0} == 1 ]] && { log "seeded ($WORK); SEED_ONLY: stopping"; exit 0; }
cp "$WORK/seed.tsv" "$SAMPLES" 2>/dev/null || : >"$SAMPLES"

admin "$BLUE_PORT" -c "drop database if exists app (force)" -c "create database app owner app template seeded strategy file_copy"
admin "$GREEN_PORT" -c "do \$\$ begin create role app login; exception when duplicate_object then null; end \$\$" \
  -c "drop database if exists app (force)" -c "drop database if exists imp1 (force)" -c "drop database if exists imp2 (force)" \
  -c "create database app owner app" -c "create database imp1 owner app" -c "create database imp2 owner app"
IMP1_URL=postgresql://app@127.0.0.1:$GREEN_PORT/imp1
IMP2_URL=postgresql://app@127.0.0.1:$GREEN_PORT/imp2
q "$BLUE_URL" -c "set client_min_messages = error" -c "vacuum analyze"
rm -rf "$WORK/dumps" && mkdir -p "$WORK/dumps"
D=$WORK/dumps
USERS=$(q "$BLUE_URL" -Atc "select count(*) from users")
TOTAL=$(q "$BLUE_URL" -Atc "select (select count(*) from users) + (select count(*) from roles) + (select count(*) from user_roles) + (select count(*) from user_settings)")
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "blue: $USERS users, $TOTAL rows in 4 tables; load $LOAD_START"
# change_users RESIDUE: 1% of users get a new email on blue (the v1 trigger moves updated_at).
change_users() { q "$BLUE_URL" -Atc "with u as (update users set email = coalesce(email, '') || '.r$1' where id % 100 = $1 returning 1) select count(*) from u"; }

# --- every command, in the order a DBA meets them ----------------------------------------
run schema_apply_green 0 --json schema apply --to green --schema-version 2
run check 0 --json check --via green
run capture_enable 0 --json capture enable --env blue
run status_first 0 --json status
run plan_full 0 --json plan --from blue --to green
run sync_full 0 --json sync --from blue --to green --full
[[ $(report sync_full report.mode) == '"full"' ]] || { log "sync --full did not run full"; exit 1; }
# Dumps first: a cutover's lag guardrail wants the last sync recent, and --since needs a change.
SINCE=$(q "$BLUE_URL" -Atc "select now()")
CHANGED=$(change_users 1)
run export_full 0 --json export --from blue --out "$D/v1-full"
run export_since 0 --json export --from blue --since "$SINCE" --out "$D/v1-since"
run convert_up 0 --json convert --in "$D/v1-full" --to-version 2 --out "$D/v2-full" --via green
run convert_down 0 --json convert --in "$D/v2-full" --to-version 1 --out "$D/v1-back" --via green
run schema_apply_imp1 0 --json schema apply --to-url "$IMP1_URL" --to imp1 --schema-version 1
run schema_apply_imp2 0 --json schema apply --to-url "$IMP2_URL" --to imp2 --schema-version 2
run import_full 0 --json import --to-url "$IMP1_URL" --to imp1 --in "$D/v1-back"
run import_convert 0 --json import --to-url "$IMP2_URL" --to imp2 --in "$D/v1-full"
run import_incremental 0 --json import --to-url "$IMP1_URL" --to imp1 --in "$D/v1-since"
[[ $(q "$IMP1_URL" -Atc "select count(*) from users") == "$USERS" && $(q "$IMP2_URL" -Atc "select count(*) from users") == "$USERS" ]] ||
  { log "an import did not load $USERS users"; exit 1; }
rm -rf "$D" # several GB at 5M
run plan_incremental 0 --json plan --from blue --to green
run sync_incremental 0 --json sync --from blue --to green
[[ $(report sync_incremental report.mode) == '"incremental"' ]] || { log "the second sync was not incremental"; exit 1; }
run verify 0 --json verify --from blue --to green
run status 0 --json status
change_users 2 >/dev/null
run cutover 0 --json cutover --from blue --to green
run sync_rollback 0 --json sync --from green --to blue
run verify_rollback 0 --json verify --from green --to blue
run cutover_rollback 0 --json cutover --from green --to blue
run unfreeze 0 --json unfreeze --env green
run direction 0 --json direction --from blue --to green
run status_last 0 --json status
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# --- table and JSON ------------------------------------------------------------------------
node - "$SAMPLES" "$RESULTS/rss.json" "$ROWS" "$TOTAL" "$LIMIT_MB" "$LOAD_START" "$LOAD_END" "$("$BG_BIN" --version)" <<'JS'
const fs = require('fs');
const [samples, out, rows, total, limit, loadStart, loadEnd, version] = process.argv.slice(2);
const cmds = fs.readFileSync(samples, 'utf8').trim().split('\n').map((l) => {
  const [name, kb, s, code] = l.split('\t');
  return { command: name, peak_rss_mb: Math.round(Number(kb) / 1024), seconds: Number(Number(s).toFixed(1)), exit_code: Number(code) };
});
const over = cmds.filter((c) => c.peak_rss_mb > Number(limit));
console.log(`| command | peak RSS MB | s |\n| --- | ---: | ---: |`);
for (const c of cmds) console.log(`| ${c.command} | ${c.peak_rss_mb} | ${c.seconds} |`);
const max = cmds.reduce((a, c) => (c.peak_rss_mb > a.peak_rss_mb ? c : a));
console.log(`\nlargest: ${max.command} ${max.peak_rss_mb} MB; ${over.length ? `OVER ${limit} MB: ${over.map((c) => c.command).join(', ')}` : `every command <= ${limit} MB`}`);
fs.writeFileSync(out, JSON.stringify({ rows: Number(rows), total_rows: Number(total), version, limit_mb: Number(limit), max_peak_rss_mb: max.peak_rss_mb, over_limit: over.map((c) => c.command), load_start: loadStart, load_end: loadEnd, commands: cmds }, null, 2) + '\n');
JS
