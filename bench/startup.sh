#!/usr/bin/env bash
# The CLI's own start-up cost: `bluegreen --help` from the bundle (dist/), from the
# TypeScript sources through tsx, and through npx, against bare `node -e 0`. Medians of N
# runs each, interleaved. Prints one JSON object (seconds) on stdout.
#
#   bash bench/startup.sh [N=9]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-9}

# Build the bundle as `npm ci` would (prepare script); without it only tsx is measured.
node bin/build.mjs 2>/dev/null || true
have_dist=0
[[ -f dist/cli.js ]] && have_dist=1

secs() { # secs CMD...: wall seconds of one run
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

declare -A S
for ((i = 0; i < N; i++)); do
  S[node]+="$(secs node -e 0) "
  [[ $have_dist == 1 ]] && S[dist]+="$(secs node bin/bluegreen.js --help) "
  S[tsx]+="$(BLUEGREEN_FROM_SOURCE=1 secs node bin/bluegreen.js --help) "
  [[ $have_dist == 1 ]] && S[npx]+="$(secs npx --no-install bluegreen --help) "
  S[npx_tsx]+="$(BLUEGREEN_FROM_SOURCE=1 secs npx --no-install bluegreen --help) "
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {printf "%.3f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
json="{\"runs\": $N"
for k in node dist tsx npx npx_tsx; do
  [[ -n ${S[$k]:-} ]] && json+=", \"$k\": $(echo "${S[$k]}" | median)"
done
echo "$json}"
