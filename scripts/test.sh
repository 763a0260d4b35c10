#!/usr/bin/env bash
# The README's test command: brings up every service the tests talk to
# (MariaDB, Redis, etcd: installed from Debian packages if missing), runs the
# whole workspace's tests once, runs the end-to-end suite a second time on
# the scale-out backends, and runs the examples. Safe to re-run.
#
# Every cargo call selects the whole workspace, so features unify the same
# way each time and nothing is compiled twice.
set -euo pipefail
cd "$(dirname "$0")/.."

for service in scripts/services/*.sh; do
    echo "==> ensuring service: $(basename "$service" .sh)"
    bash "$service"
done

echo "==> cargo test --workspace (embedded default backends)"
cargo test --workspace --locked

echo "==> end-to-end suite on MariaDB + Redis + etcd"
BUBBLE_E2E_BACKENDS=scale-out cargo test --workspace --locked --test e2e

echo "==> examples"
cargo build --workspace --locked --bins
target_dir="${CARGO_TARGET_DIR:-target}/debug"
"$target_dir/quickstart"
"$target_dir/custom-backend"
embed_dir="$(mktemp -d)"
"$target_dir/embed" "$embed_dir"
"$target_dir/embed" "$embed_dir"
rm -rf "$embed_dir"
