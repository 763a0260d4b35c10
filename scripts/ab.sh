#!/usr/bin/env bash
# An A/B of two builds on this noisy machine: runs one bubble-bench scenario
# against build A, then B, then A, ... (ROUNDS pairs, default 3), each with
# its own server and a fresh data directory, and prints every run's figure
# and the ratio of the medians (B / A). Speed drifts up to 2x within a day
# here, so only runs alternated in the same few minutes compare.
#
#   scripts/ab.sh OLD_DIR NEW_DIR FIELD -- SCENARIO ARGS...
#   scripts/ab.sh /tmp/old target/release acked_per_sec -- pairs --users 100 --window 16 --duration 10
#   scripts/ab.sh /tmp/old target/release deliveries_per_sec -- group --group-size 10 --groups 10 --window 4 --duration 10
#
# OLD_DIR and NEW_DIR each hold a bubble-bench and a bubble-server (a
# release build's target/release, or a copy of one). FIELD is a key of the
# bench's JSON (dotted for nested ones: e2e.p99_ms). The server's backends
# come from the environment, as for scripts/bench.sh. Each run's JSON line
# is kept in $OUT/ab.jsonl (default ab-results/).
set -euo pipefail

if [ $# -lt 5 ] || [ "$4" != "--" ]; then
    sed -n '2,16p' "$0" >&2
    exit 2
fi
A=$1 B=$2 FIELD=$3
shift 4
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-ab-results}
mkdir -p "$OUT"

one() {
    local dir=$1 label=$2 line value
    shift 2
    line=$("$dir/bubble-bench" "$@" --server-bin "$dir/bubble-server" --out "$OUT" 2>/dev/null | jq -c .) || {
        echo "bubble-bench failed on $label" >&2
        exit 1
    }
    value=$(jq -r ".$FIELD" <<<"$line")
    jq -c --arg build "$label" --arg dir "$dir" '. + {ab_build: $build, ab_dir: $dir}' <<<"$line" >> "$OUT/ab.jsonl"
    echo "$value"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

as=() bs=()
for ((i = 1; i <= ROUNDS; i++)); do
    a=$(one "$A" A "$@" | tail -1)
    b=$(one "$B" B "$@" | tail -1)
    echo "round $i: A $a  B $b  (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    as+=("$a") bs+=("$b")
done
ma=$(printf '%s\n' "${as[@]}" | median)
mb=$(printf '%s\n' "${bs[@]}" | median)
echo "$FIELD: A median $ma, B median $mb, B/A $(awk -v a="$ma" -v b="$mb" 'BEGIN { printf "%.2f", (a == 0) ? 0 : b / a }')"
