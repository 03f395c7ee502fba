#!/usr/bin/env bash
# Runs one fuzz target for a bounded time and prints what the run did.
#   fuzz/run.sh parse 600      # the clipping parser and the renderers, for 10 minutes
#   fuzz/run.sh yaml 300       # the fast YAML reader against serde_yaml, for 5 minutes
#   fuzz/run.sh http_head 300  # the HTTP fast path's head reader against hyper's, for 5 minutes
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). New inputs go to
# fuzz/corpus/TARGET (minimise it with `cargo +nightly fuzz cmin TARGET fuzz/corpus/TARGET`);
# the hand-written seeds in fuzz/seeds/TARGET are read, never written. A crash leaves its input
# in fuzz/artifacts/TARGET. One job: the run uses one core.
set -euo pipefail
cd "$(dirname "$0")"

target=${1:?usage: fuzz/run.sh TARGET SECONDS}
seconds=${2:?usage: fuzz/run.sh TARGET SECONDS}
case $target in parse | yaml | http_head) ;; *) echo "unknown target $target (parse, yaml, http_head)" >&2; exit 2 ;; esac

mkdir -p "corpus/$target" "artifacts/$target"
log=$(mktemp --suffix=".fuzz-$target.log")
crashes_before=$(find "artifacts/$target" -type f | wc -l)

status=0
cargo +nightly fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
  -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=5 -max_len=8192 \
  -dict=clipping.dict -print_final_stats=1 2>"$log" || status=$?

crashes_after=$(find "artifacts/$target" -type f | wc -l)
last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
echo "== fuzz $target for ${seconds}s (exit $status), log: $log"
echo "last status line: $last"
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb|new_units_added)' "$log" || true
echo "corpus/$target: $(find "corpus/$target" -type f | wc -l) files, $(du -sh "corpus/$target" | cut -f1)"
echo "crashes: $((crashes_after - crashes_before)) new, $crashes_after in artifacts/$target"
grep -E '^(==[0-9]+==ERROR|SUMMARY|thread .* panicked)' "$log" | head -n 5 || true
exit "$status"
