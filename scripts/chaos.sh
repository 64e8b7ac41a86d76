#!/usr/bin/env bash
# Chaos loops (issue 16), longer than the test suite's short versions, with figures:
#
#   scripts/chaos.sh                      # all loops
#   RUNS=8 ROUNDS=200 scripts/chaos.sh    # the concurrency loop's size (default 8 x 200)
#   KILLS=100 FLIPS=200 scripts/chaos.sh
#
# 1. concurrency: RUNS scans at once into one --out folder, ROUNDS times. Every run must
#    exit 0 (it wrote the reports) or 3 with the lock message; after every round the
#    reports must equal a reference run's (violations.csv, clients.csv, report.json's
#    summary) and no temporary file, backup or holder file may be left.
# 2. kill: KILLS scans killed with SIGKILL at random moments into a folder holding
#    whole reports; after each, the reports must still be whole (old or new), and the
#    next run must take the folder (the lock dies with its holder).
# 3. flip: FLIPS single-bit flips spread over a partial's data pages; each reduce must
#    refuse the file or bill exactly what the intact file bills (money equal).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-8}
ROUNDS=${ROUNDS:-200}
KILLS=${KILLS:-100}
FLIPS=${FLIPS:-200}
BIN=${BIN:-target/release/scrapemeter}
[ -x "$BIN" ] || cargo build --release --quiet
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# A log of 20 clients x 2,000 posts (a scan takes some tens of ms).
for c in $(seq 0 19); do
  for i in $(seq 0 1999); do
    s=$((36000 + i))
    printf '198.51.100.%d - - [10/Oct/2026:%02d:%02d:%02d +0000] "GET /post/%d HTTP/1.1" 200 1 "-" "a"\n' \
      "$c" $((s / 3600)) $((s / 60 % 60)) $((s % 60)) "$i"
  done
done > "$WORK/a.log"
"$BIN" scan "$WORK/a.log" --threshold 100 --out "$WORK/ref" -q
summary() { python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["summary"], sort_keys=True))' "$1/report.json"; }
whole() { # folder: 0 when its reports equal the reference's and nothing is left behind
  cmp -s "$1/violations.csv" "$WORK/ref/violations.csv" &&
    cmp -s "$1/clients.csv" "$WORK/ref/clients.csv" &&
    [ "$(summary "$1")" = "$(summary "$WORK/ref")" ] &&
    tail -c 200 "$1/report.html" | grep -q '</html>' &&
    [ -z "$(find "$1" -maxdepth 1 -name '.*' ! -name . ! -name "$(basename "$1")")" ]
}

# 1. concurrency
out="$WORK/out"; wins=0; locked=0; other=0; bad_rounds=0
for round in $(seq 1 "$ROUNDS"); do
  pids=()
  for r in $(seq 1 "$RUNS"); do
    "$BIN" scan "$WORK/a.log" --threshold 100 --out "$out" -q 2>"$WORK/err.$r" & pids+=($!)
  done
  for r in $(seq 1 "$RUNS"); do
    rc=0; wait "${pids[$((r - 1))]}" || rc=$?
    if [ $rc = 0 ]; then wins=$((wins + 1))
    elif [ $rc = 3 ] && grep -q 'is in use by another run' "$WORK/err.$r"; then locked=$((locked + 1))
    else other=$((other + 1)); echo "round $round: exit $rc: $(cat "$WORK/err.$r")"; fi
  done
  whole "$out" || { bad_rounds=$((bad_rounds + 1)); echo "round $round: reports not whole"; }
done
echo "concurrency: $((RUNS * ROUNDS)) runs in $ROUNDS rounds of $RUNS: $wins wrote the reports, $locked stopped with the lock message, $other other; $((ROUNDS - bad_rounds)) of $ROUNDS rounds left whole reports"

# 2. kill -9 at random moments
killed=0; finished=0; kill_bad=0
for k in $(seq 1 "$KILLS"); do
  "$BIN" scan "$WORK/a.log" --threshold 100 --out "$out" -q 2>/dev/null & pid=$!
  sleep "0.0$((RANDOM % 10))$((RANDOM % 10))"
  if kill -9 "$pid" 2>/dev/null; then killed=$((killed + 1)); else finished=$((finished + 1)); fi
  wait "$pid" 2>/dev/null || true
  for f in violations.csv clients.csv; do cmp -s "$out/$f" "$WORK/ref/$f" || { kill_bad=$((kill_bad + 1)); echo "kill $k: $f not whole"; }; done
done
"$BIN" scan "$WORK/a.log" --threshold 100 --out "$out" -q
whole "$out" && after=whole || after=BROKEN
echo "kill: $KILLS runs, $killed killed with SIGKILL, $finished finished first; $kill_bad reports found not whole; the next run took the folder and left it $after"

# 3. bit flips in a partial
"$BIN" map "$WORK/a.log" --out "$WORK/parts" --shard a --buckets 1 -q
part=$(find "$WORK/parts" -name '*.parquet')
cp "$part" "$WORK/orig.parquet"
"$BIN" reduce "$WORK/parts" --threshold 100 --out "$WORK/good" -q
refused=0; same=0; changed=0
for k in $(seq 0 $((FLIPS - 1))); do
  python3 - "$WORK/orig.parquet" "$part" "$k" "$FLIPS" <<'PY'
import struct, sys
src, dst, k, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
b = bytearray(open(src, 'rb').read())
footer = struct.unpack('<I', b[-8:-4])[0]
end = len(b) - 8 - footer
bit = 32 + k * (end - 4) * 8 // n + k % 8
b[bit // 8] ^= 1 << (bit % 8)
open(dst, 'wb').write(b)
PY
  rm -rf "$WORK/flip"
  if "$BIN" reduce "$WORK/parts" --threshold 100 --out "$WORK/flip" -q 2>/dev/null; then
    if cmp -s "$WORK/flip/violations.csv" "$WORK/good/violations.csv" && cmp -s "$WORK/flip/clients.csv" "$WORK/good/clients.csv"; then
      same=$((same + 1)); else changed=$((changed + 1)); fi
  else refused=$((refused + 1)); fi
done
cp "$WORK/orig.parquet" "$part"
echo "flip: $FLIPS single-bit flips in a partial's data pages: $refused refused, $same billed the same money, $changed changed billing silently"
[ "$other" = 0 ] && [ "$bad_rounds" = 0 ] && [ "$kill_bad" = 0 ] && [ "$after" = whole ] && [ "$changed" = 0 ]
