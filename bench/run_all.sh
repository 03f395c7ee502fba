#!/usr/bin/env bash
# Runs every benchmark of bench/README.md in order, each with its baseline in the same run:
# cold ingest, restart, watch-to-publish latency, serving, memory, load under ingest, overload
# (flood, abandon, idle), criterion.
#
# usage: bench/run_all.sh [--workdir DIR] [--sizes "10000 100000"] [--quick] [--no-criterion]
#   --workdir DIR    corpora (cached), temp run folders and results (default /tmp/clipfeed-bench)
#   --sizes "N..."   corpus sizes for figures 1, 2, 3 and 5 (default "10000 100000"; 100000 needs
#                    about 2 GB of disk for each of its two corpora and 10 GB of free memory for Hugo)
#   --quick          one round, short runs, at the first size only (serving and load included):
#                    proves the scripts work, gives no figures; try --quick --sizes 1000
#   --no-criterion   skip `cargo bench`
# Installs hugo, nginx, wrk and time from Debian when missing (sudo apt-get when not root), builds
# the release binary once. Takes about 25 minutes at 10,000 (plus the corpora's generation the
# first time), about 1.5 h with 100000 as well. The machine should be otherwise idle.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
WORKDIR=/tmp/clipfeed-bench
SIZES="10000 100000"
QUICK=0
CRITERION=1
while [ $# -gt 0 ]; do
  case $1 in
    --workdir) WORKDIR=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --no-criterion) CRITERION=0; shift ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    *) sed -n 2,14p "$0" >&2; exit 2 ;;
  esac
done
read -r -a NS <<< "$SIZES"
[ ${#NS[@]} -gt 0 ] || { echo "--sizes is empty" >&2; exit 2; }

cd "$REPO"
echo "== cargo build --release"
cargo build --release --locked
# where cargo put it: target/ unless CARGO_TARGET_DIR or a config says otherwise
TARGET=$(cargo metadata --format-version 1 --no-deps --locked |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
BIN=$TARGET/release/clipfeed
COMMON=(--workdir "$WORKDIR" --binary "$BIN")
mkdir -p "$WORKDIR/results"
LOG=$WORKDIR/results/run_all-$(date +%Y%m%dT%H%M%S).txt
echo "== output is also written to $LOG"
exec > >(tee "$LOG") 2>&1
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r);" \
  "load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%M:%SZ); clipfeed $(git rev-parse --short HEAD)"

if [ "$QUICK" = 1 ]; then
  NS=("${NS[0]}")
  R=(--rounds 1); HR=(--hugo-rounds 1); FILES=(--files 50); HP=(--hugo-probes 3)
  SERVE=(--n "${NS[0]}" --rounds 1 --seconds 3); LOAD=(--n "${NS[0]}" --seconds 10 --first-batch 100)
  FLOOD=(--n "${NS[0]}" --seconds 8 --quiet-seconds 2); ABANDON=(--n "${NS[0]}" --requests 20)
  IDLE=(--n "${NS[0]}" --idle 500 --probes 5); COLDSTART=(--n "${NS[0]}")
else
  R=(); HR=(); FILES=(); HP=(); SERVE=(); LOAD=(); FLOOD=(); ABANDON=(); IDLE=(); COLDSTART=(--n 25000)
fi

status=0
step() {
  echo; echo "== $*"
  "$@" || { echo "!! failed: $*"; status=1; }
}

step python3 "$HERE/cold.py" "${COMMON[@]}" --n "${NS[@]}" "${R[@]}" "${HR[@]}"
step python3 "$HERE/coldstart.py" "${COMMON[@]}" "${COLDSTART[@]}" "${R[@]}"
step python3 "$HERE/restart.py" "${COMMON[@]}" --n "${NS[@]}" "${R[@]}" "${HR[@]}"
step python3 "$HERE/latency.py" "${COMMON[@]}" --n "${NS[@]}" "${FILES[@]}" "${HP[@]}"
step python3 "$HERE/serve.py" "${COMMON[@]}" "${SERVE[@]}"
step python3 "$HERE/memory.py" "${COMMON[@]}" --n "${NS[@]}" "${R[@]}" "${HR[@]}"
step python3 "$HERE/load.py" "${COMMON[@]}" "${LOAD[@]}"
step python3 "$HERE/flood.py" "${COMMON[@]}" "${FLOOD[@]}"
step python3 "$HERE/abandon.py" "${COMMON[@]}" "${ABANDON[@]}"
step python3 "$HERE/idle.py" "${COMMON[@]}" "${IDLE[@]}"
if [ "$CRITERION" = 1 ]; then
  if [ "$QUICK" = 1 ]; then
    # small data sets too: 1,000 clippings in the queried store instead of 10,000
    CLIPFEED_BENCH_STORE_N=1000 CLIPFEED_BENCH_PARSE_N=200 \
      step cargo bench --locked --bench parse --bench render --bench store -- --quick
  else
    step cargo bench --locked --bench parse --bench render --bench store
  fi
fi
echo
echo "== done; JSON results in $WORKDIR/results (NAME-latest.json is the newest of each)"
exit $status
