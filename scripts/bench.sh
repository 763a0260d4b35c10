#!/usr/bin/env bash
# The load-generator runs behind docs/benchmarks.md, with the parameters the
# published figures used. Every run starts its own bubble-server on loopback
# and appends one JSON line to $OUT/results.jsonl; plots land in $OUT too.
#
#   scripts/bench.sh                 # every scenario (the idle one takes minutes)
#   scripts/bench.sh pairs sweep     # only these
#
# The server's backends come from the environment, as for bubble-server:
#   BUBBLE_STORE_KIND=memory BUBBLE_SEARCH_KIND=memory scripts/bench.sh
#   BUBBLE_STORE_KIND=mysql BUBBLE_STORE_MYSQL_URL=mysql://root@127.0.0.1:3306/test \
#     BUBBLE_CACHE_KIND=redis BUBBLE_CACHE_REDIS_URL=redis://127.0.0.1:6379 \
#     BUBBLE_PRESENCE_KIND=redis BUBBLE_PRESENCE_REDIS_URL=redis://127.0.0.1:6379 scripts/bench.sh
# With none set, the server's default (the embedded SQLite + tantivy) is measured.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-bench-results}
cargo build --release --locked -p bubble-server -p bubble-bench --features bubble-server/scale-out
BENCH=target/release/bubble-bench

run() {
    echo "==> bubble-bench $*  (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    "$BENCH" "$@" --out "$OUT" > /dev/null
}

scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
    scenarios=(pairs pairs-open group10 group100 group100-nosearch supergroup offline reconnect sweep idle)
fi
for s in "${scenarios[@]}"; do
    case "$s" in
        pairs)      run pairs --users 100 --window 16 --duration 10 ;;
        pairs-open) run pairs --users 100 --rate 5000 --duration 10 ;;
        group10)    run group --group-size 10 --groups 10 --window 4 --duration 10 ;;
        group100)   run group --group-size 100 --groups 2 --window 2 --duration 10 ;;
        # The same with the search index off: what messaging alone costs.
        group100-nosearch)
                    BUBBLE_SEARCH_KIND=off run group --group-size 100 --groups 2 --window 2 --duration 10 ;;
        supergroup) run supergroup --members 10000 --messages 20 ;;
        offline)    run offline --users 100 --messages 2000 --window 16 ;;
        reconnect)  run reconnect --connections 5000 --concurrency 64 ;;
        sweep)      run sweep --users 100 --rates 1000,2000,5000,10000,20000,30000 --duration 10 ;;
        # Each process needs one descriptor per connection: IDLE_CONNECTIONS must
        # stay below `ulimit -Hn` (20000 on the machine of docs/benchmarks.md).
        idle)       run idle --connections "${IDLE_CONNECTIONS:-100000}" --concurrency 64 --hold 10 ;;
        *) echo "unknown scenario $s" >&2; exit 2 ;;
    esac
done
echo "results: $OUT/results.jsonl" >&2
