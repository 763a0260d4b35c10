#!/usr/bin/env bash
# Brings up the three-node MariaDB Galera cluster of scripts/galera.sh
# (127.0.0.1:3311-3313, root without a password, database `test`) for
# bubble-store-mysql/tests/galera.rs: the conformance suite on Galera and a
# node killed mid-traffic. It fits the CI budget: ~22 s from nothing
# (installing galera-4 and rsync from Debian's packages if missing), ~10 s
# when the data directories exist, and the tests take ~21 s
# (docs/operations.md, "MariaDB Galera").
#
# Idempotent: returns at once when the three nodes are synced. The plain
# MariaDB on 3306 (scripts/services/mariadb.sh) is a separate server.
# BUBBLE_GALERA=off skips it (the Galera tests then print that they were
# skipped).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "${BUBBLE_GALERA:-}" = off ]; then
    echo "galera: BUBBLE_GALERA=off; not starting the cluster"
    exit 0
fi
exec bash scripts/galera.sh up
