#!/usr/bin/env bash
# Short runs of the fuzz targets (docs/fuzzing.md), two at a time:
#
#   scripts/fuzz.sh                  # every target, $BUBBLE_FUZZ_SECONDS (default 60) each
#   scripts/fuzz.sh 600              # ten minutes each
#   scripts/fuzz.sh 60 wire          # the wire tier only (what CI runs: see scripts/test.sh)
#   scripts/fuzz.sh 60 record_layer  # only these targets
#
# Each target starts from its seeds (built from real data: see
# fuzz/harness/) and from fuzz/corpus/<target>/, which grows across runs.
# A crash fails the script; its input is in fuzz/artifacts/<target>/: fix
# the bug, then move the input to fuzz/regressions/<target>/, where
# `cargo test` replays it from then on.
#
# cargo-fuzz needs nightly features; on a stable toolchain this sets
# RUSTC_BOOTSTRAP=1 (for this build only). It installs cargo-fuzz if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-${BUBBLE_FUZZ_SECONDS:-60}}
shift || true
# The wire tier needs only bubble-proto (and tungstenite): a build of a few
# minutes. The server tier builds bubble-server's whole graph.
wire=(frame_decode record_layer handshake_server handshake_client ws_message)
server=(admin_api config_toml sqlite_rows redis_values mysql_rows)
targets=("$@")
case "${targets[*]:-all}" in
    all) targets=("${wire[@]}" "${server[@]}") ;;
    wire) targets=("${wire[@]}") ;;
esac
features=(--no-default-features)
for t in "${targets[@]}"; do
    for s in "${server[@]}"; do
        [ "$t" = "$s" ] && features=()
    done
done
# Two cores: two targets at a time (each libFuzzer process uses one).
jobs=${BUBBLE_FUZZ_JOBS:-2}

if ! cargo fuzz --version > /dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

target_dir=${BUBBLE_FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/fuzz}
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
bin_dir="$target_dir/x86_64-unknown-linux-gnu/release"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

started=$(date +%s)
echo "==> cargo fuzz build (ASan, release with debug assertions)"
(cd fuzz && cargo fuzz build "${features[@]}" --target-dir "$target_dir")

# Each target writes its own seeds (real frames, hellos, answers, rows,
# configs: `seeds()` in fuzz/harness/<target>.rs) when asked to.
for t in "${targets[@]}"; do
    BUBBLE_FUZZ_SEEDS="$work/seeds" "$bin_dir/$t" -runs=0 > "$work/$t.seeds.log" 2>&1 \
        || { echo "$t: writing its seeds failed:" >&2; cat "$work/$t.seeds.log" >&2; exit 1; }
done
built=$(date +%s)

# One target: its own corpus, the seeds, libFuzzer's final stats in a log.
run_one() {
    local t=$1
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    "$bin_dir/$t" "fuzz/corpus/$t" "$work/seeds/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" \
        > "$work/$t.log" 2>&1
}

summary() {
    local t=$1 status=$2 log="$work/$1.log" execs cov ft
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -Eo 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    local crashes=0
    [ "$status" -ne 0 ] && crashes=1
    printf '| %s | %s | %s | %s | %s | %s |\n' "$t" "$seconds" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$crashes"
}

echo "==> fuzzing ${#targets[@]} targets for ${seconds}s each, $jobs at a time"
declare -A status
failed=()
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
    batch=("${targets[@]:i:jobs}")
    pids=()
    for t in "${batch[@]}"; do
        run_one "$t" &
        pids+=($!)
    done
    for k in "${!batch[@]}"; do
        t=${batch[$k]}
        if wait "${pids[$k]}"; then status[$t]=0; else status[$t]=$?; failed+=("$t"); fi
    done
done
finished=$(date +%s)

echo "| target | seconds | execs | cov | ft | crashes |"
echo "|--------|---------|-------|-----|----|---------|"
for t in "${targets[@]}"; do
    summary "$t" "${status[$t]}"
done
echo "fuzz: seeds + build $((built - started))s, runs $((finished - built))s, total $((finished - started))s"

if [ ${#failed[@]} -gt 0 ]; then
    for t in "${failed[@]}"; do
        echo "==> $t FAILED (exit ${status[$t]}); the end of its log:" >&2
        tail -40 "$work/$t.log" >&2
        ls -1 "fuzz/artifacts/$t/" >&2 || true
    done
    exit 1
fi
