#!/usr/bin/env bash
# The README's test command: brings up every service the tests talk to
# (MariaDB, Redis, etcd, and a three-node MariaDB Galera cluster on
# 3311-3313 for bubble-store-mysql/tests/galera.rs: ~20 s to start, ~21 s of
# tests, BUBBLE_GALERA=off skips it; each installed from Debian packages if
# missing), runs the whole workspace's tests once (the examples run there
# too, as tests of their binaries), then the end-to-end suite a second time
# on the scale-out backends, then the TypeScript SDK's tests (bubble-js/)
# against the server binary just built. Safe to re-run.
#
# Every cargo call selects the whole workspace with the same features (the
# server's scale-out backends on, which bubble-bench turns on anyway), so
# features unify the same way each time and nothing is compiled twice.
set -euo pipefail
cd "$(dirname "$0")/.."

# A cold build of the workspace's tests takes about 3.5 GiB (target/); say so
# up front rather than fail in the linker.
free_mib=$(df -Pm . | awk 'NR == 2 { print $4 }')
if [ "$free_mib" -lt 4096 ]; then
    echo "warning: only ${free_mib} MiB free on this disk; a cold test build needs about 3.5 GiB" >&2
fi

for service in scripts/services/*.sh; do
    echo "==> ensuring service: $(basename "$service" .sh)"
    bash "$service"
done

echo "==> cargo test --workspace (embedded default backends)"
cargo test --workspace --locked --features bubble-server/scale-out

echo "==> end-to-end suite on MariaDB + Redis + etcd"
BUBBLE_E2E_BACKENDS=scale-out cargo test --workspace --locked --features bubble-server/scale-out --test e2e

# The TypeScript SDK (bubble-js/): its unit tests (docs/auth.md's vectors,
# the example frame) and its integration tests against the server binary the
# cargo run above built, then the web chat in a real Chromium. Node 20 and
# npm are part of the machine.
echo "==> bubble-js: unit, integration and browser tests (node --test)"
if ! command -v npm >/dev/null; then
    echo "npm is missing: install Node.js 20 (Debian: apt-get install nodejs npm)" >&2
    exit 1
fi
(
    cd bubble-js
    npm ci --no-audit --no-fund --loglevel=error
    BUBBLE_SERVER_BIN="$PWD/../target/debug/bubble-server" npm test
    # The web chat (bubble-js/web/) in Debian's Chromium, two users at once
    # (scripts/services/chromium.sh installs it); screenshots of each step
    # in bubble-js/test-artifacts/browser/.
    BUBBLE_SERVER_BIN="$PWD/../target/debug/bubble-server" npm run test:browser
)

# Fuzzing (docs/fuzzing.md, "In CI"): in CI, the wire tier (frames, records,
# both sides of the handshake, WebSocket messages: what any network peer
# reaches) for 60 s per target, two at a time. That tier builds bubble-proto
# alone; the server tier builds bubble-server's whole graph under ASan (48
# minutes on a loaded 2-core machine), which the 30-minute CI budget cannot
# take beside the rest, so it runs by hand or on a schedule
# (BUBBLE_FUZZ=all). A developer's run of this script fuzzes only when asked
# (BUBBLE_FUZZ=wire or all); BUBBLE_FUZZ=off skips in CI too.
fuzz=${BUBBLE_FUZZ:-}
if [ -z "$fuzz" ] && [ "${CI:-}" = true ]; then
    fuzz=wire
fi
case "$fuzz" in
    wire | all)
        echo "==> fuzzing: the $fuzz targets, ${BUBBLE_FUZZ_SECONDS:-60} s each"
        bash scripts/fuzz.sh "${BUBBLE_FUZZ_SECONDS:-60}" "$fuzz"
        ;;
    "" | off) ;;
    *) echo "BUBBLE_FUZZ must be wire, all or off, not $fuzz" >&2; exit 2 ;;
esac
