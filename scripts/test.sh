#!/usr/bin/env bash
# The README's test command: brings up every service the tests talk to, then
# runs the whole workspace's tests and the examples. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

for service in scripts/services/*.sh; do
    [ -e "$service" ] || continue
    echo "==> ensuring service: $(basename "$service" .sh)"
    bash "$service"
done

echo "==> cargo test --workspace"
cargo test --workspace --locked

echo "==> examples"
cargo run --locked -q -p quickstart
