#!/usr/bin/env bash
# verify before and after the binary row hash, side by side in one run, on a synced pair.
#
#   BLUE_URL=… GREEN_URL=… OLD=/path/to/checkout/of/main RUNS=3 bash bench/verify-ab.sh
#
# OLD is a checkout whose verify hashes the row text. Runs alternate (old, new, new
# --jobs 2) so load on the machine hits every method alike; medians are printed, then the
# target-side query per table (bench/verify-explain.ts). Set the pair up with, e.g.:
#   node bin/bluegreen.js schema apply --to blue --schema-version 1   (and --to green)
#   node bin/bluegreen.js seed --to blue --rows 200000
#   node bin/bluegreen.js sync --full --no-verify
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BLUE_URL:?} ${GREEN_URL:?} ${OLD:?set OLD to a checkout of the previous verify}"
RUNS=${RUNS:-3}
declare -A wall=() own=()
sample() { # NAME ROOT ARGS…: one verify, which must be clean; wall seconds and its report.ms
  local name=$1 root=$2 t0 t1 out
  shift 2
  t0=$(date +%s.%N)
  out=$(cd "$root" && node bin/bluegreen.js verify --json "$@" 2>/dev/null) || {
    echo "verify-ab: $name was not clean" >&2
    exit 1
  }
  t1=$(date +%s.%N)
  wall[$name]+="$(echo "$t1 - $t0" | bc) "
  own[$name]+="$(node -e 'console.log(JSON.parse(process.argv[1]).report.ms / 1000)' "$out") "
}
for ((i = 1; i <= RUNS; i++)); do
  sample old "$OLD"
  sample new "$PWD"
  sample new-jobs2 "$PWD" --jobs 2
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
# report.ms is verify's own time (what a sync's built-in verify costs); wall adds Node
# start-up and connecting.
for k in old new new-jobs2; do
  echo "$k: verify $(echo "${own[$k]}" | median) s (runs: ${own[$k]}), wall $(echo "${wall[$k]}" | median) s (runs: ${wall[$k]})"
done
RUNS=$RUNS npx tsx bench/verify-explain.ts
