#!/usr/bin/env bash
# Proof that the Spark reduce equals a single-machine scan.
#
# Generates the bench data set, splits it into 1, 6 and 37 shards (the 37 round-robin
# by line, so every client is in every shard), maps each shard, runs
# scripts/spark_reduce.py on a local Spark cluster for several policies, and compares
# violations.csv and clients.csv byte for byte with `scrapemeter scan`.
#
# Exit status 77: the environment could not be set up (no Java, no pyspark): skipped.
# Needs: a release build (built if missing), python3 with venv, Java 17+ (installed
# from Debian when missing and running as root). Environment:
#   SCRAPEMETER   the binary (default target/release/scrapemeter)
#   SPARK_VENV    a venv to use or create (default $WORK/venv)
#   SPARK_MASTER  default local-cluster[2,1,1024], falling back to local[2]
#   SPARK_TEST_DIR  work folder (default: a new temporary folder, removed at the end)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${SCRAPEMETER:-$ROOT/target/release/scrapemeter}
if [ -n "${SPARK_TEST_DIR:-}" ]; then WORK=$SPARK_TEST_DIR; mkdir -p "$WORK"; else
  WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT; fi
VENV=${SPARK_VENV:-$WORK/venv}
say() { echo "== spark_test: $*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[ -x "$BIN" ] || cargo build --release
apt_install() {
  if [ "$(id -u)" != 0 ]; then echo "spark_test: need $* (not root: install it yourself)" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
    || { echo "spark_test: could not install $* — skipped" >&2; exit 77; }
}
java_major() { java -version 2>&1 | awk -F'"' '/version/ { split($2, v, "."); print (v[1] == 1 ? v[2] : v[1]); exit }'; }
if ! command -v java >/dev/null || [ "$(java_major)" -lt 17 ]; then
  say "installing default-jre-headless (Spark 4 needs Java 17+)"; apt_install default-jre-headless
fi
java -version 2>&1 | head -1
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$VENV"; }
fi
"$VENV/bin/pip" install -q --disable-pip-version-check pyspark pyarrow "pandas<3" \
  || { echo "spark_test: could not install pyspark — skipped" >&2; exit 77; }
PY=$VENV/bin/python
export PYSPARK_PYTHON=$PY PYSPARK_DRIVER_PYTHON=$PY
SPARK_SUBMIT=$VENV/bin/spark-submit
say "pyspark $("$PY" -c 'import pyspark; print(pyspark.__version__)')"

say "data: generate --preset bench --files 4 --lines 20000"
"$BIN" generate --preset bench --files 4 --lines 20000 --out "$WORK/logs" >/dev/null
mkdir -p "$WORK/shards6" "$WORK/shards37"
zcat -f "$WORK"/logs/* > "$WORK/all.log"
(cd "$WORK/shards6" && split -n l/6 -d -a 2 ../all.log s && gzip -n s*)
(cd "$WORK/shards37" && split -n r/37 -d -a 2 ../all.log s && gzip -n s*)
rm "$WORK/all.log"
echo "logs: $(du -cb "$WORK"/logs/* | tail -1 | cut -f1) bytes compressed, $(ls "$WORK/logs" | wc -l) files"

say "single machine: scan at threshold 0 to pick thresholds"
"$BIN" scan "$WORK/logs" --out "$WORK/scan0" --threshold 0 --no-evidence -q
read -r P50 P99 MAX < <("$PY" -c '
import json, sys
p = json.load(open(sys.argv[1]))["population"]["peak_posts"]
print(p["p50"], p["p99"], p["max"])' "$WORK/scan0/report.json")
POLICIES=(
  "median=--threshold $P50"
  "p99=--threshold $P99"
  "top=--threshold $((MAX / 2))"
  "calendar=--threshold $P99 --mode calendar --window 12h --rounding per-started"
)
echo "thresholds: p50 $P50, p99 $P99, max/2 $((MAX / 2))"
for spec in "${POLICIES[@]}"; do
  name=${spec%%=*}; flags=${spec#*=}
  # shellcheck disable=SC2086
  "$BIN" scan "$WORK/logs" --out "$WORK/scan/$name" --no-evidence -q $flags
  echo "  $name ($flags): $(($(wc -l < "$WORK/scan/$name/violations.csv") - 1)) billed windows"
done

map_layout() { # name, buckets, then one shard per argument (a file or folder)
  local name=$1 buckets=$2; shift 2; local i=0 t
  t=$(now)
  for input in "$@"; do
    "$BIN" map "$input" --out "$WORK/parts/$name" --shard "s$i" --buckets "$buckets" -q; i=$((i + 1))
  done
  echo "map $name: $i shards in $(since "$t")s ($(awk -v n=$i -v s="$(since "$t")" 'BEGIN { printf "%.2f", s / n }')s per shard); partials $(du -sb "$WORK/parts/$name" | cut -f1) bytes in $(find "$WORK/parts/$name" -name '*.parquet' | wc -l) files"
}
say "map"
# The default 256 buckets for one shard; fewer for many small shards (fewer, larger files).
map_layout 1 256 "$WORK/logs"
map_layout 6 64 "$WORK"/shards6/*
map_layout 37 64 "$WORK"/shards37/*

MASTER=${SPARK_MASTER:-local-cluster[2,1,1024]}
policy_args=()
for spec in "${POLICIES[@]}"; do policy_args+=(--policy "$spec"); done
run_spark() { # layout
  "$SPARK_SUBMIT" --master "$MASTER" --conf spark.ui.enabled=false \
    --conf spark.executorEnv.PYSPARK_PYTHON="$PY" \
    "$ROOT/scripts/spark_reduce.py" "$WORK/parts/$1" --out "$WORK/spark/$1" \
    --scrapemeter "$BIN" --partitions 8 "${policy_args[@]}" 2> "$WORK/spark-$1.log"
}
fail=0
for layout in 1 6 37; do
  say "spark reduce of $layout shards on $MASTER"
  t=$(now)
  if ! run_spark "$layout"; then
    if [ "$MASTER" != "local[2]" ] && [ -z "${SPARK_MASTER:-}" ]; then
      echo "spark_test: $MASTER failed (last lines below); falling back to local[2]" >&2
      tail -5 "$WORK/spark-$layout.log" >&2
      MASTER="local[2]"; t=$(now); run_spark "$layout" || { tail -30 "$WORK/spark-$layout.log" >&2; exit 1; }
    else
      tail -30 "$WORK/spark-$layout.log" >&2; exit 1
    fi
  fi
  echo "spark job ($layout shards, ${#POLICIES[@]} policies, $MASTER): $(since "$t")s"
  for spec in "${POLICIES[@]}"; do
    name=${spec%%=*}
    for f in violations.csv clients.csv; do
      if cmp -s "$WORK/scan/$name/$f" "$WORK/spark/$layout/$name/$f"; then
        echo "  ok   $layout shards, $name, $f"
      else
        echo "  FAIL $layout shards, $name, $f differs from scan"; fail=1
        diff "$WORK/scan/$name/$f" "$WORK/spark/$layout/$name/$f" | head -5
      fi
    done
  done
done
[ "$fail" = 0 ] && say "Spark equals scan" || { say "Spark differs from scan"; exit 1; }
