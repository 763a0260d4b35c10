#!/usr/bin/env bash
# Brings up the Redis Sentinel set-up that bubble's Sentinel tests use, on
# this machine only:
#   - a primary and one replica on 127.0.0.1:7201 and :7202
#     (BUBBLE_REDIS_SENTINEL_DATA_PORTS); after a failover the primary may be
#     either of them: the sentinels say which, no layout is forced,
#   - three sentinels on 127.0.0.1:26401-26403 (BUBBLE_REDIS_SENTINEL_PORTS),
#     quorum 2, watching the master named "bubble"
#     (BUBBLE_REDIS_SENTINEL_MASTER), with short timeouts so a failover takes
#     seconds: down-after-milliseconds 2000, failover-timeout 3000. (With
#     1000, a busy 2-core machine once made all three sentinels see a just
#     promoted primary, forking for a full sync, as down, and fail over again
#     to a replica still loading.)
# Each process has its own directory under /tmp/bubble-redis-sentinel
# (BUBBLE_REDIS_SENTINEL_DIR): config, log, pid. No persistence.
#
# Idempotent: exits 0 at once when every process answers, the sentinels agree
# on a master that says it is one, and the replica is linked to it. Otherwise
# installs Debian's redis-server and redis-sentinel if missing, starts what is
# down, and waits (at most ~60 s) until all of that holds; fails loudly,
# saying what to do, if not.
set -euo pipefail

read -r -a DATA_PORTS <<<"${BUBBLE_REDIS_SENTINEL_DATA_PORTS:-7201 7202}"
read -r -a SENTINEL_PORTS <<<"${BUBBLE_REDIS_SENTINEL_PORTS:-26401 26402 26403}"
MASTER="${BUBBLE_REDIS_SENTINEL_MASTER:-bubble}"
DIR="${BUBBLE_REDIS_SENTINEL_DIR:-/tmp/bubble-redis-sentinel}"
QUORUM=2
DEADLINE=$((SECONDS + 60))

log() { echo "redis-sentinel.sh: $*" >&2; }
fail() {
  log "FAILED: $*"
  log "look at ${DIR}/*/*.log; to start over from scratch, stop the processes listening on"
  log "ports ${DATA_PORTS[*]} ${SENTINEL_PORTS[*]} (redis-cli -p PORT shutdown nosave), remove ${DIR}"
  log "and run this script again"
  exit 1
}

cli() { redis-cli -h 127.0.0.1 -p "$@" 2>/dev/null | tr -d '\r'; }
answers() { cli "$1" ping | grep -q PONG; }
# One field of INFO REPLICATION of node $1.
replication_field() { cli "$1" info replication | sed -n "s/^$2://p"; }
# The port of the master sentinel $1 names (empty if it names none).
sentinel_master_port() {
  cli "$1" sentinel get-master-addr-by-name "$MASTER" | sed -n 2p
}
# One field of SENTINEL MASTER as sentinel $1 sees it.
sentinel_field() {
  cli "$1" sentinel master "$MASTER" | awk -v k="$2" 'prev == k { print; exit } { prev = $0 }'
}

# The port every sentinel names as the master, if they all answer and agree.
agreed_master() {
  local p port agreed=""
  for p in "${SENTINEL_PORTS[@]}"; do
    port="$(sentinel_master_port "$p")"
    [ -n "$port" ] || return 1
    [ -z "$agreed" ] || [ "$agreed" = "$port" ] || return 1
    agreed="$port"
  done
  echo "$agreed"
}

# Everything the tests need: all processes answer, the sentinels agree on a
# master that is one, every other data node replicates from it with its link
# up, and each sentinel knows the others and the replicas, with no failover
# under way.
healthy() {
  local p master
  for p in "${DATA_PORTS[@]}" "${SENTINEL_PORTS[@]}"; do answers "$p" || return 1; done
  master="$(agreed_master)" || return 1
  [ "$(replication_field "$master" role)" = master ] || return 1
  for p in "${DATA_PORTS[@]}"; do
    [ "$p" = "$master" ] && continue
    [ "$(replication_field "$p" role)" = slave ] || return 1
    [ "$(replication_field "$p" master_port)" = "$master" ] || return 1
    [ "$(replication_field "$p" master_link_status)" = up ] || return 1
  done
  for p in "${SENTINEL_PORTS[@]}"; do
    [ "$(sentinel_field "$p" num-other-sentinels)" = $((${#SENTINEL_PORTS[@]} - 1)) ] || return 1
    [ "$(sentinel_field "$p" num-slaves)" -ge $((${#DATA_PORTS[@]} - 1)) ] 2>/dev/null || return 1
    [ "$(sentinel_field "$p" flags)" = master ] || return 1
  done
}

if command -v redis-cli >/dev/null 2>&1 && healthy; then
  exit 0
fi

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1 ||
  ! command -v redis-sentinel >/dev/null 2>&1; then
  log "installing redis-server and redis-sentinel from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || fail "apt-get update failed (are you root with network to the Debian mirror?)"
  apt-get install -y -qq redis-server redis-sentinel redis-tools >/dev/null ||
    fail "apt-get install redis-server redis-sentinel failed"
fi

# --- which data node is the primary -----------------------------------------
# The sentinels' word if any of them answers and names one of our nodes that
# is running; else a running node that says it is a master; else the first.
primary=""
for p in "${SENTINEL_PORTS[@]}"; do
  port="$(sentinel_master_port "$p" || true)"
  if [ -n "$port" ] && answers "$port"; then primary="$port"; break; fi
done
if [ -z "$primary" ]; then
  for p in "${DATA_PORTS[@]}"; do
    if answers "$p" && [ "$(replication_field "$p" role)" = master ]; then primary="$p"; break; fi
  done
fi
primary="${primary:-${DATA_PORTS[0]}}"

# --- the data nodes ----------------------------------------------------------
start_data_node() {
  local p="$1" dir="${DIR}/$1" args=()
  mkdir -p "$dir"
  [ "$p" = "$primary" ] || args=(--replicaof 127.0.0.1 "$primary")
  # A config file of its own (empty to begin with), so the sentinels'
  # CONFIG REWRITE after a failover has somewhere to go.
  : >"${dir}/redis.conf"
  # No persistence: a node starts empty. A replica keeps its last full
  # sync's RDB on disk, which would otherwise come back as stale data.
  rm -f "${dir}/dump.rdb"
  log "starting redis-server on 127.0.0.1:${p}${args[*]:+ (replica of ${primary})}"
  # No delay before a full sync (Redis waits 5 s for more replicas by
  # default): a demoted primary is a working replica again at once.
  redis-server "${dir}/redis.conf" --daemonize yes --bind 127.0.0.1 --port "$p" \
    --dir "$dir" --logfile "${dir}/redis.log" --pidfile "${dir}/redis.pid" \
    --save "" --appendonly no --repl-diskless-sync-delay 0 "${args[@]}" >/dev/null ||
    fail "redis-server did not start on port ${p} (is the port taken?)"
}

for p in "${DATA_PORTS[@]}"; do
  answers "$p" || start_data_node "$p"
done
for p in "${DATA_PORTS[@]}"; do
  until answers "$p"; do
    [ "$SECONDS" -lt "$DEADLINE" ] || fail "redis-server on port ${p} never answered"
    sleep 0.2
  done
done
# A node left a master by a crash of everything else is made a replica of
# the primary; the sentinels would do it too, but only after ~10 s.
for p in "${DATA_PORTS[@]}"; do
  if [ "$p" != "$primary" ] && [ "$(replication_field "$p" role)" = master ] &&
    [ -z "$(cli "${SENTINEL_PORTS[0]}" ping)" ]; then
    log "making 127.0.0.1:${p} a replica of ${primary}"
    cli "$p" replicaof 127.0.0.1 "$primary" >/dev/null
  fi
done

# --- the sentinels -------------------------------------------------------------
start_sentinel() {
  local p="$1" dir="${DIR}/sentinel-$1"
  mkdir -p "$dir"
  # A fresh config watching the current primary: a sentinel rewrites its
  # config as it learns, and an old one could name a master from before the
  # last failover. The running sentinels' higher epoch wins anyway.
  cat >"${dir}/sentinel.conf" <<EOF
port ${p}
bind 127.0.0.1
daemonize yes
dir ${dir}
logfile ${dir}/sentinel.log
pidfile ${dir}/sentinel.pid
sentinel monitor ${MASTER} 127.0.0.1 ${primary} ${QUORUM}
sentinel down-after-milliseconds ${MASTER} 2000
sentinel failover-timeout ${MASTER} 3000
sentinel parallel-syncs ${MASTER} 1
EOF
  log "starting redis-sentinel on 127.0.0.1:${p} (master ${MASTER} at 127.0.0.1:${primary})"
  redis-sentinel "${dir}/sentinel.conf" >/dev/null ||
    fail "redis-sentinel did not start on port ${p} (is the port taken?)"
}

for p in "${SENTINEL_PORTS[@]}"; do
  answers "$p" || start_sentinel "$p"
done

# Sentinels find each other through the master's hello channel (every 2 s)
# and the replica through the master's INFO (every 10 s at first).
until healthy; do
  [ "$SECONDS" -lt "$DEADLINE" ] ||
    fail "the sentinels on ports ${SENTINEL_PORTS[*]} never agreed on master ${MASTER} with its replica linked"
  sleep 0.3
done
log "Redis Sentinel: master ${MASTER} at 127.0.0.1:$(agreed_master), sentinels on ports ${SENTINEL_PORTS[*]}"
