#!/usr/bin/env bash
# What the embedded default's database holds per message: runs one
# bubble-bench scenario against a build on a fresh data directory, lets the
# server stop (its WAL folded into the file), then prints one JSON line:
# messages acked, the SQLite file's size and the bytes its pages use (free
# pages left by deleted outbox and dedup rows not counted), the search
# index's size, and each per acked message and per delivery.
#
#   scripts/db-size.sh BIN_DIR -- SCENARIO ARGS...
#   scripts/db-size.sh target/release -- offline --users 100 --messages 200
#   scripts/db-size.sh target/release -- group --group-size 100 --groups 2 --window 2 --duration 10
#
# BIN_DIR holds a bubble-bench and a bubble-server (as for scripts/ab.sh).
# With TABLES=1 it also prints the bytes of each table and index (SQLite's
# dbstat), largest first. Needs sqlite3 and jq.
set -euo pipefail

if [ $# -lt 3 ] || [ "$2" != "--" ]; then
    sed -n '2,15p' "$0" >&2
    exit 2
fi
bin=$1
shift 2
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

# The bench exits non-zero when some sends were refused (an overloaded
# group run): what was stored still counts, by its `acked`.
line=$("$bin/bubble-bench" "$@" --server-bin "$bin/bubble-server" --data-dir "$data" \
    --out "$data/bench" 2>/dev/null | jq -c .) || true
[ -n "$line" ] || { echo "bubble-bench printed no result" >&2; exit 1; }
db=$(find "$data" -name '*.db' -not -path '*/bench/*' | head -1)
[ -n "$db" ] || { echo "no SQLite database under $data" >&2; exit 1; }
pages() { sqlite3 "$db" "PRAGMA $1;"; }
page_size=$(pages page_size)
file=$(stat -c %s "$db")
used=$(( ($(pages page_count) - $(pages freelist_count)) * page_size ))
wal=$(stat -c %s "$db-wal" 2>/dev/null || echo 0)
search=0
[ -d "$data/search" ] && search=$(du -sb "$data/search" | cut -f1)
jq -c --argjson file "$file" --argjson used "$used" --argjson wal "$wal" --argjson search "$search" '{
    scenario, load, acked, delivered,
    db_file_bytes: $file, db_used_bytes: $used, wal_bytes_left: $wal, search_bytes: $search,
    db_used_per_msg: (if .acked > 0 then ($used / .acked | floor) else null end),
    db_used_per_delivery: (if .delivered > 0 then ($used / .delivered | floor) else null end),
    search_per_msg: (if .acked > 0 then ($search / .acked | floor) else null end)
}' <<<"$line"
if [ "${TABLES:-0}" = 1 ]; then
    sqlite3 -separator ' ' "$db" \
        "SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC;"
fi
