#!/usr/bin/env bash
# A bubble cluster on this machine, for trying one out (docs/operations.md):
# MariaDB, Redis and etcd (scripts/services/*.sh: installed from Debian's
# packages if missing, started if stopped), then NODES bubble-server nodes
# (default 3) on loopback sharing them.
#
#   scripts/cluster.sh up        # build (release, scale-out) if needed, start
#   scripts/cluster.sh status    # each node's pid, ports, health and load
#   scripts/cluster.sh down      # stop the nodes (SIGTERM: they drain), keep the data
#   scripts/cluster.sh reset     # down, then forget the cluster's database, keys and logs
#
# Node i (1-based) listens on 77i0 (TCP gate), 77i1 (WebSocket gate), 77i2
# (HTTP: selector, admin API, metrics) and 77i3 (the cluster port its peers
# push through). Every node serves the same server key (made by node 1 on its
# first start, copied to the others before they start), the same admin
# secret and the same ticket secret, so a client pins one fingerprint, any
# node's selector and admin API work alike, and a device resumes its session
# on whichever node it lands. Search is off: a tantivy index is local to one node, so a
# cluster searches through Elasticsearch (search.kind = "elasticsearch").
#
# Environment (all optional):
#   NODES          how many nodes (default 3, at most 9)
#   CLUSTER_DIR    data, keys, logs and pids (default ./cluster-data)
#   BUBBLE_SERVER  the server binary (default target/release/bubble-server,
#                  built with --features scale-out when missing)
#   CLUSTER_DB     the MariaDB database (default bubble_cluster)
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${NODES:-3}
DIR=${CLUSTER_DIR:-cluster-data}
DB=${CLUSTER_DB:-bubble_cluster}
TARGET=${CARGO_TARGET_DIR:-target}
SERVER=${BUBBLE_SERVER:-$TARGET/release/bubble-server}
PREFIX=bubble_cluster

say() { echo "cluster.sh: $*" >&2; }
die() {
    say "$*"
    exit 1
}

case "$NODES" in
    [1-9]) ;;
    *) die "NODES must be 1 to 9, not $NODES" ;;
esac

port() { echo "77$1$2"; }
node_dir() { echo "$DIR/node-$1"; }
pid_of() {
    local f
    f="$(node_dir "$1")/pid"
    [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"
}
healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$(port "$1" 2)/healthz" >/dev/null 2>&1; }

mysql_client() {
    if command -v mariadb >/dev/null 2>&1; then mariadb "$@"; else mysql "$@"; fi
}

start_node() {
    local i=$1 dir
    dir="$(node_dir "$i")"
    mkdir -p "$dir"
    if pid_of "$i" >/dev/null; then
        say "node-$i is already running (pid $(pid_of "$i"))"
        return
    fi
    # The environment is the whole node config; docs/operations.md shows
    # the same as a file.
    env \
        BUBBLE_NODE_ID="node-$i" \
        BUBBLE_DATA_DIR="$dir/data" \
        BUBBLE_GATE_TCP="127.0.0.1:$(port "$i" 0)" \
        BUBBLE_GATE_WS="127.0.0.1:$(port "$i" 1)" \
        BUBBLE_HTTP_ADDR="127.0.0.1:$(port "$i" 2)" \
        BUBBLE_CLUSTER_RPC="127.0.0.1:$(port "$i" 3)" \
        BUBBLE_HTTP_ADMIN_SECRET="$(cat "$DIR/admin_secret")" \
        BUBBLE_CLUSTER_TICKET_SECRET="$(cat "$DIR/ticket_secret")" \
        BUBBLE_CLUSTER_RPC_SECRET="$(cat "$DIR/rpc_secret")" \
        BUBBLE_STORE_KIND=mysql \
        BUBBLE_STORE_MYSQL_URL="mysql://root@127.0.0.1:3306/$DB" \
        BUBBLE_CACHE_KIND=redis \
        BUBBLE_CACHE_REDIS_URL=redis://127.0.0.1:6379 \
        BUBBLE_CACHE_REDIS_KEY_PREFIX="$PREFIX" \
        BUBBLE_PRESENCE_KIND=redis \
        BUBBLE_PRESENCE_REDIS_URL=redis://127.0.0.1:6379 \
        BUBBLE_PRESENCE_REDIS_KEY_PREFIX="$PREFIX" \
        BUBBLE_DISCOVERY_KIND=etcd \
        BUBBLE_DISCOVERY_ETCD_ENDPOINTS=http://127.0.0.1:2379 \
        BUBBLE_DISCOVERY_ETCD_PREFIX="/$PREFIX" \
        BUBBLE_SEARCH_KIND=off \
        nohup "$SERVER" >"$dir/log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 60); do
        if healthy "$i"; then
            say "node-$i up: tcp 127.0.0.1:$(port "$i" 0), ws 127.0.0.1:$(port "$i" 1), http http://127.0.0.1:$(port "$i" 2) (pid $(cat "$dir/pid"), log $dir/log)"
            return
        fi
        kill -0 "$(cat "$dir/pid")" 2>/dev/null || die "node-$i exited at start; its log, $dir/log, ends with:
$(tail -5 "$dir/log")"
        sleep 0.5
    done
    die "node-$i did not answer /healthz within 30 s; see $dir/log"
}

up() {
    for service in scripts/services/mariadb.sh scripts/services/redis.sh scripts/services/etcd.sh; do
        bash "$service" >&2
    done
    if [ ! -x "$SERVER" ]; then
        say "building $SERVER (release, scale-out backends; ~15 minutes cold)"
        cargo build --release --locked -p bubble-server --features scale-out
    fi
    mkdir -p "$DIR"
    mysql_client --protocol=tcp -h127.0.0.1 -P3306 -uroot -e "CREATE DATABASE IF NOT EXISTS \`$DB\`"
    local secret
    for secret in admin_secret ticket_secret rpc_secret; do
        if [ ! -s "$DIR/$secret" ]; then
            (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/$secret")
        fi
    done
    # Node 1 makes the server key (and the demo app, in the shared
    # database); the others start with a copy of that key.
    start_node 1
    local key
    for i in $(seq 2 "$NODES"); do
        mkdir -p "$(node_dir "$i")/data"
        for key in server_key.pem server_key.previous.pem; do
            if [ -f "$(node_dir 1)/data/$key" ]; then
                cp -p "$(node_dir 1)/data/$key" "$(node_dir "$i")/data/$key"
            fi
        done
        start_node "$i"
    done
    local fingerprint
    fingerprint=$(curl -fsS "http://127.0.0.1:$(port 1 2)/v1/server-key" | sed -n 's/.*"fingerprint_sha256":"\([0-9a-f]*\)".*/\1/p')
    cat >&2 <<EOF
cluster.sh: $NODES nodes up. Try messages across nodes (two terminals):
  cargo run -p chat-cli -- --server http://127.0.0.1:$(port 1 2) --user alice --admin-secret "\$(cat $DIR/admin_secret)" --fingerprint $fingerprint
  cargo run -p chat-cli -- --server http://127.0.0.1:$(port 2 2) --user bob --admin-secret "\$(cat $DIR/admin_secret)" --fingerprint $fingerprint
Each client's gate is the one the selector of the node it asks picks (the least loaded of the cluster).
Stop: scripts/cluster.sh down
EOF
}

status() {
    local i pid
    for i in $(seq 1 "$NODES"); do
        if pid=$(pid_of "$i"); then
            if healthy "$i"; then
                echo "node-$i: running (pid $pid), healthy, tcp $(port "$i" 0) ws $(port "$i" 1) http $(port "$i" 2) rpc $(port "$i" 3), connections $(curl -fsS "http://127.0.0.1:$(port "$i" 2)/metrics" | awk '$1 == "bubble_connections" { print $2 }')"
            else
                echo "node-$i: running (pid $pid), NOT answering /healthz"
            fi
        else
            echo "node-$i: stopped"
        fi
    done
    if pid_of 1 >/dev/null; then
        echo "selector of node-1: $(curl -fsS "http://127.0.0.1:$(port 1 2)/v1/gate" | sed 's/"server_key":{[^}]*},\?//')"
    fi
}

down() {
    local i pid
    for i in $(seq 1 9); do
        if pid=$(pid_of "$i"); then
            kill -TERM "$pid"
            say "node-$i: SIGTERM sent (it drains its connections with GOING_AWAY)"
        fi
    done
    for i in $(seq 1 9); do
        if pid=$(pid_of "$i"); then
            for _ in $(seq 1 60); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.5
            done
            if kill -0 "$pid" 2>/dev/null; then
                say "node-$i still running after 30 s: killing it"
                kill -KILL "$pid"
            fi
        fi
        rm -f "$(node_dir "$i")/pid"
    done
}

reset() {
    down
    mysql_client --protocol=tcp -h127.0.0.1 -P3306 -uroot -e "DROP DATABASE IF EXISTS \`$DB\`" || true
    rm -rf "$DIR"
    say "forgot the cluster: database $DB dropped, $DIR removed"
}

case "${1:-}" in
    up) up ;;
    status) status ;;
    down) down ;;
    reset) reset ;;
    *)
        sed -n '2,26p' "$0" >&2
        exit 2
        ;;
esac
