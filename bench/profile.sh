# Sourced by bench/run.sh when PROFILE=1, after the rounds: where one full sync spends
# its time, then one incremental sync. Uses run.sh's clusters and helpers (admin, q, reset_green, BG, WORK, RESULTS).
#
# Two views, both from this run:
# - the servers' own statement log (log_min_duration_statement = 0 on both throwaway
#   clusters): wall time per phase (catalog work, COPY per table, key and index rebuild,
#   foreign keys, ANALYZE, verify), with the gaps between statements counted as client time;
# - `node --cpu-prof` of the bluegreen process: how much of the run Node itself is busy.
# Written to bench/results/profile.txt (and the .cpuprofile, for Chrome DevTools).

for port in "$BLUE_PORT" "$GREEN_PORT"; do
  admin "$port" -c "alter system set log_min_duration_statement = 0" -c "alter system set log_line_prefix = '%m [%p] '" -c "select pg_reload_conf()" >/dev/null
done
reset_green
green_log=$WORK/green/server.log
from_line=$(($(wc -l <"$green_log") + 1))
rm -rf "$WORK/cpuprof" && mkdir -p "$WORK/cpuprof"
node "$ROOT/bin/build.mjs" 2>/dev/null # profile the bundle a DBA runs, not tsx
t0=$(date +%s.%N)
# The bundle and tsx start the same way; --cpu-prof must be a node flag, not NODE_OPTIONS.
node --cpu-prof --cpu-prof-dir="$WORK/cpuprof" "${BG[@]:1}" --json sync --from blue --to green >"$WORK/profile-sync.json"
t1=$(date +%s.%N)
cp "$WORK"/cpuprof/*.cpuprofile "$RESULTS/" 2>/dev/null || true
tail -n +"$from_line" "$green_log" >"$WORK/profile-green.log"
npx tsx bench/profile-summary.ts "$WORK/profile-green.log" "$t0" "$t1" "$WORK"/cpuprof/*.cpuprofile | tee "$RESULTS/profile.txt"

# Then one incremental sync of 1% of users (as in (c), after a checkpoint), with both
# servers' statements: what a cron run costs each side, and what is left for the client.
blue_log=$WORK/blue/server.log
floor_db create # the same change applied again by hand-written SQL, profiled the same way below
bound=$(q "$BLUE_URL" -Atc "select now()")
change_users 97 >/dev/null
from_blue=$(($(wc -l <"$blue_log") + 1))
from_green=$(($(wc -l <"$green_log") + 1))
t0=$(date +%s.%N)
"${BG[@]}" --json sync --from blue --to green >"$WORK/profile-incremental.json"
t1=$(date +%s.%N)
tail -n +"$from_blue" "$blue_log" >"$WORK/profile-inc-blue.log"
tail -n +"$from_green" "$green_log" >"$WORK/profile-inc-green.log"
npx tsx bench/profile-summary.ts --statements "incremental sync, 1% of users" "$t0" "$t1" \
  "blue=$WORK/profile-inc-blue.log" "green=$WORK/profile-inc-green.log" | tee -a "$RESULTS/profile.txt"
settle
from_blue=$(($(wc -l <"$blue_log") + 1))
from_green=$(($(wc -l <"$green_log") + 1))
t0=$(date +%s.%N)
bash "$ROOT/bench/apply-floor.sh" "$PSQL" "$BLUE_URL" "$FLOOR_URL" "$bound" >/dev/null
t1=$(date +%s.%N)
tail -n +"$from_blue" "$blue_log" >"$WORK/profile-floor-blue.log"
tail -n +"$from_green" "$green_log" >"$WORK/profile-floor-green.log"
npx tsx bench/profile-summary.ts --statements "apply floor of the same change (bench/apply-floor.sh)" "$t0" "$t1" \
  "blue=$WORK/profile-floor-blue.log" "green=$WORK/profile-floor-green.log" | tee -a "$RESULTS/profile.txt"
floor_db drop
for port in "$BLUE_PORT" "$GREEN_PORT"; do
  admin "$port" -c "alter system reset log_min_duration_statement" -c "alter system reset log_line_prefix" -c "select pg_reload_conf()" >/dev/null
done
