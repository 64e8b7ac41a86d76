#!/usr/bin/env bash
# What `scan --also-by` costs: wall time and peak RSS of `scan` without it, with
# `--also-by subnet`, `--also-by ua` and both, on `generate --preset bench`, run
# round-robin RUNS times (the machine is shared and noisy: medians and same-run ratios).
#
#   scripts/bench-also-by.sh                  # 4 files x 500k lines, 5 rounds
#   RUNS=7 LINES=2000000 scripts/bench-also-by.sh
#   BIN=target/release/scrapemeter EXTRA=--no-evidence scripts/bench-also-by.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
LINES=${LINES:-500000}
FILES=${FILES:-4}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/scrapemeter}
DATA=${DATA:-bench-data/also-by-${FILES}x${LINES}}
EXTRA=${EXTRA:-}
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

if [ ! -d "$DATA" ]; then
  "$BIN" generate --preset bench --files "$FILES" --lines "$LINES" --out "$DATA" >/dev/null
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

names=(none subnet ua subnet,ua)
declare -A secs rss
for ((r = 1; r <= RUNS; r++)); do
  for n in "${names[@]}"; do
    flag=()
    [ "$n" = none ] || flag=(--also-by "$n")
    /usr/bin/time -f '%e %M' -o "$out/time" "$BIN" scan "$DATA" --out "$out/o" -q $EXTRA "${flag[@]}"
    read -r s m <"$out/time"
    secs[$n]+="$s "
    rss[$n]+="$m "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
base_s=$(echo "${secs[none]}" | median)
base_m=$(echo "${rss[none]}" | median)
printf '%-10s %10s %8s %12s %8s\n' also-by "median s" ratio "median MiB" ratio
for n in "${names[@]}"; do
  s=$(echo "${secs[$n]}" | median)
  m=$(echo "${rss[$n]}" | median)
  awk -v n="$n" -v s="$s" -v m="$m" -v bs="$base_s" -v bm="$base_m" \
    'BEGIN {printf "%-10s %10.2f %8.2f %12.0f %8.2f\n", n, s, s / bs, m / 1024, m / bm}'
done
echo "($RUNS alternating runs each, $FILES files x $LINES lines, $(nproc) cores${EXTRA:+, $EXTRA})"
