#!/usr/bin/env bash
# The soak test of docs/benchmarks.md: builds bubble-server and bubble-bench
# (release), then runs `bubble-bench soak` against the bubble-server binary
# for MINUTES (default 60) on the embedded default backends (SQLite +
# tantivy), with mixed traffic: 1:1 pairs, normal groups, a super group,
# reconnect storms, slow consumers and abusive clients. Every SAMPLE seconds
# (default 10) it records the server's RSS, descriptors, CPU and the 1:1
# latency: soak.csv, four SVG charts and one JSON line in results.jsonl.
#
#   scripts/soak.sh            # one hour
#   scripts/soak.sh 5          # five minutes
#   OUT=/tmp/soak SAMPLE=5 scripts/soak.sh 30
#
# For an hour that must survive the terminal:
#   nohup scripts/soak.sh > soak.log 2>&1 &
#
# Other backends come from the environment, as for bubble-server (see
# scripts/bench.sh). Exit status 1 when a message was lost or duplicated.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=${1:-60}
SAMPLE=${SAMPLE:-10}
OUT=${OUT:-soak-results/$(date -u +%Y%m%dT%H%M%SZ)}
TARGET=${CARGO_TARGET_DIR:-target}

cargo build --release --locked -p bubble-server -p bubble-bench --features bubble-server/scale-out
mkdir -p "$OUT"
echo "==> bubble-bench soak for $MINUTES min, a sample every $SAMPLE s, into $OUT (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
status=0
"$TARGET/release/bubble-bench" soak --duration "$((MINUTES * 60))" --sample "$SAMPLE" \
    --out "$OUT" > "$OUT/summary.json" || status=$?
echo "summary: $OUT/summary.json" >&2
echo "samples: $OUT/soak.csv" >&2
echo "plots:   $OUT/soak-rss.svg $OUT/soak-fds.svg $OUT/soak-cpu.svg $OUT/soak-latency.svg" >&2
exit $status
