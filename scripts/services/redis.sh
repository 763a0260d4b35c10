#!/usr/bin/env bash
# Brings up the Redis that bubble's tests use, on this machine only:
#   - one server on 127.0.0.1:6379 (BUBBLE_REDIS_PORT),
#   - a three-primary Redis Cluster on 127.0.0.1:7101-7103
#     (BUBBLE_REDIS_CLUSTER_PORTS), for the cluster-mode tests.
# Idempotent: exits 0 at once when both answer. Otherwise installs Debian's
# redis-server if it is missing, starts what is down, and waits (at most
# ~60 s) until everything answers; fails loudly, saying what to do, if not.
set -euo pipefail

PORT="${BUBBLE_REDIS_PORT:-6379}"
read -r -a CLUSTER_PORTS <<<"${BUBBLE_REDIS_CLUSTER_PORTS:-7101 7102 7103}"
CLUSTER_DIR="${BUBBLE_REDIS_CLUSTER_DIR:-/tmp/bubble-redis-cluster}"
DEADLINE=$((SECONDS + 60))

log() { echo "redis.sh: $*" >&2; }
fail() {
  log "FAILED: $*"
  log "see ${CLUSTER_DIR}/*/redis.log for the cluster nodes; start the single server by hand with:"
  log "  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port ${PORT} --save \"\" --appendonly no"
  exit 1
}

answers() { redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG; }
# One field of CLUSTER INFO as node $1 sees it.
cluster_field() {
  redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}
# Every node answers, sees the cluster as ok and knows all the others.
cluster_ok() {
  local p
  for p in "${CLUSTER_PORTS[@]}"; do
    [ "$(cluster_field "$p" cluster_state)" = ok ] || return 1
    [ "$(cluster_field "$p" cluster_known_nodes)" = "${#CLUSTER_PORTS[@]}" ] || return 1
  done
}
# How many nodes have no slots at all (fresh nodes).
empty_nodes() {
  local p n=0
  for p in "${CLUSTER_PORTS[@]}"; do
    [ "$(cluster_field "$p" cluster_slots_assigned)" = 0 ] && n=$((n + 1))
  done
  echo "$n"
}

if command -v redis-cli >/dev/null 2>&1 && answers "$PORT" && cluster_ok; then
  exit 0
fi

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  log "installing redis-server from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || fail "apt-get update failed (are you root with network to the Debian mirror?)"
  apt-get install -y -qq redis-server redis-tools >/dev/null || fail "apt-get install redis-server failed"
fi

# --- the single server -------------------------------------------------------
if ! answers "$PORT"; then
  log "starting redis-server on 127.0.0.1:${PORT}"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$PORT" \
    --save "" --appendonly no >/dev/null ||
    fail "redis-server did not start on port ${PORT} (is the port taken?)"
fi

# --- the cluster -------------------------------------------------------------
start_node() {
  local p="$1" dir="${CLUSTER_DIR}/$1"
  mkdir -p "$dir"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$p" \
    --cluster-enabled yes --cluster-config-file "${dir}/nodes.conf" \
    --cluster-node-timeout 2000 --dir "$dir" --logfile "${dir}/redis.log" \
    --save "" --appendonly no >/dev/null ||
    fail "redis-server did not start on port ${p} (is the port taken?)"
}

create_cluster() {
  local nodes=() p
  for p in "${CLUSTER_PORTS[@]}"; do nodes+=("127.0.0.1:${p}"); done
  log "creating the cluster on ${nodes[*]}"
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null ||
    return 1
}

# Forgets a half-made cluster (e.g. nodes that remember different clusters).
reset_cluster() {
  local p
  log "resetting the cluster nodes"
  for p in "${CLUSTER_PORTS[@]}"; do
    redis-cli -h 127.0.0.1 -p "$p" flushall >/dev/null 2>&1 || true
    redis-cli -h 127.0.0.1 -p "$p" cluster reset hard >/dev/null 2>&1 || true
  done
}

if ! cluster_ok; then
  for p in "${CLUSTER_PORTS[@]}"; do
    answers "$p" || { log "starting cluster node on 127.0.0.1:${p}"; start_node "$p"; }
  done
  for p in "${CLUSTER_PORTS[@]}"; do
    until answers "$p"; do
      [ "$SECONDS" -lt "$DEADLINE" ] || fail "cluster node ${p} never answered"
      sleep 0.2
    done
  done
  # Nodes that kept their nodes.conf re-form the old cluster by themselves
  # (give them a few seconds); fresh ones have no slots and need creating;
  # a mix of both, or a cluster that stays broken, is reset and created anew.
  settle_until=$((SECONDS + 8))
  until cluster_ok; do
    [ "$SECONDS" -lt "$DEADLINE" ] || fail "the Redis Cluster on ports ${CLUSTER_PORTS[*]} never reached cluster_state:ok"
    empty="$(empty_nodes)"
    if [ "$empty" = "${#CLUSTER_PORTS[@]}" ]; then
      create_cluster || true
    elif [ "$empty" != 0 ] || [ "$SECONDS" -ge "$settle_until" ]; then
      reset_cluster
      create_cluster || true
      settle_until=$((SECONDS + 8))
    fi
    sleep 0.3
  done
fi

until answers "$PORT"; do
  [ "$SECONDS" -lt "$DEADLINE" ] || fail "redis-server on port ${PORT} never answered"
  sleep 0.2
done
log "Redis answers on 127.0.0.1:${PORT}, Redis Cluster on ports ${CLUSTER_PORTS[*]}"
