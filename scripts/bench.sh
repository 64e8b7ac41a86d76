#!/usr/bin/env bash
# Speed and memory of `scrapemeter scan` against decompressor anchors measured in the
# same run (the machine is shared and noisy: only medians and same-run ratios mean much).
#
#   scripts/bench.sh            # full set: 4 gzip files x 2M lines, plus zstd and 8-file sets
#   RUNS=3 scripts/bench.sh     # fewer repetitions
#   LINES=500000 scripts/bench.sh   # a smaller set (figures then are not the targets' set)
#   BASE=/path/to/old/scrapemeter scripts/bench.sh   # also time an older build, same rounds
#   WRITE=0 scripts/bench.sh    # print only; by default the table also replaces the
#                               # "last run" block at the top of BENCHMARKS.md
#
# Generates its data with `scrapemeter generate --preset bench` into bench-data/ (kept
# between runs, ignored by git), installs the anchors from Debian when missing, runs the
# commands round-robin RUNS times, prints a table of medians and peak RSS, the ratios, and
# one line per target: met or not.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
LINES=${LINES:-2000000}
FILES=${FILES:-4}
DATA=${DATA:-bench-data}
GOACCESS=${GOACCESS:-1}   # 0 skips GoAccess (about 100 s a run on the full set)
# The many-flagged set: the same gzip set at a threshold that flags about 2,000 ordinary
# clients, each in every file (1,950 at 75 with the default LINES and FILES).
MANY=${MANY:-75}
WRITE=${WRITE:-1}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u +"%Y-%m-%d %H:%M")

need() { command -v "$1" >/dev/null 2>&1; }
install_anchors() {
  local missing=()
  need libdeflate-gunzip || missing+=(libdeflate-tools)
  need pigz || missing+=(pigz)
  need zstd || missing+=(zstd)
  [ "$GOACCESS" = 0 ] || need goaccess || missing+=(goaccess)
  [ -x /usr/bin/time ] || missing+=(time)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} ..." >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
install_anchors

cargo build --release -q
BIN=${CARGO_TARGET_DIR:-target}/release/scrapemeter
# The floors: the same inflater over the same files on the same threads, lines counted;
# + a bare field walk; + a plain hash-map count of (client, second) pairs a file;
# + scan's own aggregate instead (benches/inflate_floor.rs).
FLOOR=$(cargo bench --bench inflate_floor --no-run --message-format=json -q 2>/dev/null \
  | python3 -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="inflate_floor"][-1])')
BASE=${BASE:-}

gen() { # dir files lines compression seed
  local dir=$1
  if [ ! -f "$dir/.done" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    echo "generating $dir ($2 files x $3 lines, $4) ..." >&2
    "$BIN" generate --preset bench --out "$dir" --files "$2" --lines "$3" --compression "$4" --seed "$5" >&2
    touch "$dir/.done"
  fi
}
gen "$DATA/gz" "$FILES" "$LINES" gzip 7
gen "$DATA/zst" "$FILES" "$LINES" zstd 7
gen "$DATA/gz8" "$((2 * FILES))" "$LINES" gzip 7

GZ=$(ls "$DATA"/gz/*.gz | tr '\n' ' ')
ZST=$(ls "$DATA"/zst/*.zst | tr '\n' ' ')
GZ8=$(ls "$DATA"/gz8/*.gz | tr '\n' ' ')
ONE=$(ls "$DATA"/gz/*.gz | head -1)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

declare -A CMD=(
  [scan]="$BIN scan $GZ --out $OUT/a -q --threads 2"
  [scan_noev]="$BIN scan $GZ --out $OUT/f -q --threads 2 --no-evidence"
  [scan_t1]="$BIN scan $GZ --out $OUT/b -q --threads 1"
  [scan_one]="$BIN scan $ONE --out $OUT/c -q --threads 2"
  [scan_zstd]="$BIN scan $ZST --out $OUT/d -q --threads 2"
  [scan_x2]="$BIN scan $GZ8 --out $OUT/e -q --threads 2"
  [scan_many]="$BIN scan $GZ --out $OUT/g -q --threads 2 --threshold $MANY"
  [scan_many_noev]="$BIN scan $GZ --out $OUT/h -q --threads 2 --threshold $MANY --no-evidence"
  [floor]="$FLOOR --threads 2 $GZ"
  [floor_one]="$FLOOR --threads 2 $ONE"
  [floor_walk]="$FLOOR --threads 2 --mode walk $GZ"
  [floor_count]="$FLOOR --threads 2 --mode count $GZ"
  [floor_agg]="$FLOOR --threads 2 --mode aggregate $GZ"
  [floor_agg_one]="$FLOOR --threads 2 --split --mode aggregate $ONE"
  [floor_agg_zstd]="$FLOOR --threads 2 --mode aggregate $ZST"
  [libdeflate]="sh -c 'for f in $GZ; do libdeflate-gunzip -c \$f; done > /dev/null'"
  [libdeflate_one]="sh -c 'libdeflate-gunzip -c $ONE > /dev/null'"
  [pigz]="sh -c 'pigz -dc $GZ > /dev/null'"
  [zcat]="sh -c 'zcat $GZ > /dev/null'"
  [zstd]="sh -c 'zstd -qdc $ZST > /dev/null'"
)
ORDER=(scan libdeflate pigz zcat floor floor_walk floor_count floor_agg scan_noev scan_t1 scan_one libdeflate_one floor_one floor_agg_one scan_zstd zstd floor_agg_zstd scan_x2 scan_many scan_many_noev)
if [ -n "$BASE" ]; then
  # The same scans with an older build, in the same rounds: before/after ratios.
  for name in scan scan_noev scan_t1 scan_one; do
    CMD[base_$name]=${CMD[$name]/#$BIN/$BASE}
    CMD[base_$name]=${CMD[base_$name]/$OUT\//$OUT/base_}
    ORDER+=(base_$name)
  done
fi

TIMES=$OUT/times.tsv
: >"$TIMES"
for run in $(seq "$RUNS"); do
  for name in "${ORDER[@]}"; do
    /usr/bin/time -f "$name	%e	%M" -a -o "$TIMES" sh -c "${CMD[$name]}" >/dev/null 2>"$OUT/err" \
      || { echo "command failed: $name"; cat "$OUT/err"; exit 1; }
  done
  echo "run $run/$RUNS done" >&2
done
if [ "$GOACCESS" != 0 ]; then
  # One run only: GoAccess reads about 0.08 M lines/s.
  /usr/bin/time -f "goaccess	%e	%M" -a -o "$TIMES" sh -c \
    "zcat $GZ | goaccess - --log-format=COMBINED -o $OUT/goaccess.json" >/dev/null 2>&1 || true
fi

python3 - "$TIMES" "$OUT/a/report.json" "$DATA/gz" "$OUT/g/clients.csv" "$MANY" <<'PY' | tee "$OUT/table.txt"
import json, os, statistics, sys
times, report, data, many_clients, many = sys.argv[1:6]
rows = {}
for line in open(times):
    parts = line.rstrip("\n").split("\t")
    if len(parts) == 3 and parts[1]:
        rows.setdefault(parts[0], []).append((float(parts[1]), int(parts[2])))
# /usr/bin/time counts hundredths: a toy run (small LINES) may time 0.00.
med = {k: max(statistics.median(t for t, _ in v), 0.005) for k, v in rows.items()}
rss = {k: max(m for _, m in v) for k, v in rows.items()}
r = json.load(open(report))
lines = r["totals"]["lines"]
text = sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data) if f.endswith(".gz"))
buckets = r["population"].get("buckets", 0)
print(f"\ninput: {r['totals']['files']} gzip files, {lines:,} lines, {text/1e6:,.0f} MB compressed; "
      f"{r['population']['clients']:,} clients, {buckets:,} distinct (client, second) pairs")
print(f"\n{'command':<16}{'median s':>10}{'runs':>6}{'peak RSS MiB':>14}")
for k in ["scan","scan_noev","scan_t1","scan_one","scan_zstd","scan_x2","scan_many","scan_many_noev","floor","floor_walk","floor_count","floor_agg","floor_one","floor_agg_one","floor_agg_zstd","libdeflate","libdeflate_one","pigz","zcat","zstd","goaccess","base_scan","base_scan_noev","base_scan_t1","base_scan_one"]:
    if k in med:
        print(f"{k:<16}{med[k]:>10.3f}{len(rows[k]):>6}{rss[k]/1024:>14.1f}")
print(f"\nscan: {lines/med['scan']/1e6:.2f} M lines/s; peak RSS {rss['scan']/1024:.1f} MiB"
      + (f", {rss['scan']*1024/buckets:.0f} bytes per (client, second) pair" if buckets else ""))
def target(name, value, op, bound):
    ok = value <= bound if op == "<=" else value >= bound
    print(f"{'MET    ' if ok else 'NOT MET'} {name:<46} {value:8.2f} {op} {bound}")
print()
target("scan / libdeflate-gunzip", med["scan"]/med["libdeflate"], "<=", 0.7)
target("scan / pigz -dc", med["scan"]/med["pigz"], "<=", 0.6)
if "goaccess" in med:
    target("goaccess / scan", med["goaccess"]/med["scan"], ">=", 50)
target("one file: scan / libdeflate-gunzip", med["scan_one"]/med["libdeflate_one"], "<=", 1.0)
target("zstd set: scan / zstd -qdc", med["scan_zstd"]/med["zstd"], "<=", 1.3)
target("speed-up --threads 1 -> 2", med["scan_t1"]/med["scan"], ">=", 1.8)
target("twice the input: time ratio", med["scan_x2"]/med["scan"], "<=", 2.1)
target("peak RSS MiB", rss["scan"]/1024, "<=", 160)
if buckets:
    # The issue's measure: the highest peak of the runs over the distinct pairs.
    target("peak RSS bytes per (client, second) pair", rss["scan"]*1024/buckets, "<=", 26)
print("\nwithout the second read (--no-evidence: no evidence lines, tops or members):")
target("  scan --no-evidence / libdeflate-gunzip", med["scan_noev"]/med["libdeflate"], "<=", 0.7)
target("  scan --no-evidence / pigz -dc", med["scan_noev"]/med["pigz"], "<=", 0.6)
print("\nfloors (benches/inflate_floor.rs, 2 threads: zlib-rs inflate and lines counted; + a bare")
print("field walk; + (client, second) pairs counted in a plain hash map a file (a design, not a")
print("floor); + each request added to scan's own aggregate instead (the floor of its counting")
print("design: no validation, time zone, weights, digest or record):")
print(f"  floor / libdeflate-gunzip           {med['floor']/med['libdeflate']:8.2f}")
print(f"  floor_walk / libdeflate-gunzip      {med['floor_walk']/med['libdeflate']:8.2f}")
print(f"  floor_count / libdeflate-gunzip     {med['floor_count']/med['libdeflate']:8.2f}")
def floor(name, value, bound):
    print(f"  {name:<36}{value:8.2f}"
          + (f"   (over {bound}: out of reach of scan's counting design)" if value > bound else ""))
floor("floor_agg / libdeflate-gunzip", med['floor_agg']/med['libdeflate'], 0.7)
floor("floor_agg / pigz -dc", med['floor_agg']/med['pigz'], 0.6)
# One file with --split: inflated on one thread, its blocks shared by two workers.
floor("one file: floor_agg / libdeflate", med['floor_agg_one']/med['libdeflate_one'], 1.0)
floor("zstd set: floor_agg / zstd -qdc", med['floor_agg_zstd']/med['zstd'], 1.3)
print(f"  scan --no-evidence / floor_agg      {med['scan_noev']/med['floor_agg']:8.2f}")
print(f"  one file: floor / libdeflate-gunzip {med['floor_one']/med['libdeflate_one']:8.2f}")
print(f"  scan / floor                        {med['scan']/med['floor']:8.2f}")
print(f"  scan --no-evidence / floor          {med['scan_noev']/med['floor']:8.2f}")
flagged = sum(1 for _ in open(many_clients)) - 1
print(f"\nmany flagged clients (scan_many: --threshold {many}, {flagged:,} flagged, in every file):")
print(f"  scan_many / scan_many --no-evidence {med['scan_many']/med['scan_many_noev']:8.2f}")
print(f"  scan_many / libdeflate-gunzip       {med['scan_many']/med['libdeflate']:8.2f}")
print(f"  default scan / scan --no-evidence   {med['scan']/med['scan_noev']:8.2f}")
if "base_scan" in med:
    print("\nthis build / the older one (BASE), same rounds:")
    for k in ["scan", "scan_noev", "scan_t1", "scan_one"]:
        print(f"  {k:<14}{med[k]/med['base_' + k]:8.2f}")
    print(f"  speed-up --threads 1 -> 2 of the older one: {med['base_scan_t1']/med['base_scan']:.2f}")
PY

if [ "$WRITE" != 0 ]; then
  # The table, with what it was measured on, replaces the block between the markers.
  {
    echo "Last output of \`$(env | grep -E '^(RUNS|LINES|FILES|DATA|GOACCESS|BASE|MANY)=' | sort | tr '\n' ' ')scripts/bench.sh\`"
    echo "(commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ', with uncommitted changes'); $STARTED UTC;"
    echo "load average $LOAD_BEFORE before, $(cut -d' ' -f1-3 /proc/loadavg) after;"
    echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); $(rustc --version))."
    echo
    echo '```'
    sed '1{/^$/d}' "$OUT/table.txt"
    echo '```'
  } > "$OUT/block.md"
  python3 - "$OUT/block.md" BENCHMARKS.md <<'PY'
import sys
block, path = open(sys.argv[1]).read(), sys.argv[2]
begin, end = "<!-- bench.sh: last run -->", "<!-- bench.sh: end -->"
text = open(path).read()
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    text = head + begin + "\n" + block + rest[rest.index(end):]
else:
    title, _, body = text.partition("\n")
    text = f"{title}\n\n{begin}\n{block}{end}\n{body}"
open(path, "w").write(text)
print(f"wrote the table into {path}", file=sys.stderr)
PY
fi
