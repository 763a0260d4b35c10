#!/usr/bin/env bash
# The README's test command: brings up every service the tests talk to
# (MariaDB, Redis, etcd: installed from Debian packages if missing), runs the
# whole workspace's tests once, runs the end-to-end suite a second time on
# the scale-out backends (same build), and runs the examples. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

for service in scripts/services/*.sh; do
    echo "==> ensuring service: $(basename "$service" .sh)"
    bash "$service"
done

echo "==> cargo test --workspace (embedded default backends)"
cargo test --workspace --locked

echo "==> end-to-end suite on MariaDB + Redis + etcd"
BUBBLE_E2E_BACKENDS=scale-out cargo test --locked -p bubble-server --test e2e

echo "==> examples"
cargo run --locked -q -p quickstart
cargo run --locked -q -p custom-backend
embed_dir="$(mktemp -d)"
cargo run --locked -q -p embed -- "$embed_dir"
cargo run --locked -q -p embed -- "$embed_dir"
rm -rf "$embed_dir"
