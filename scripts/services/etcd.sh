#!/usr/bin/env bash
# Brings up a single-member etcd on loopback for the bubble-discovery-etcd tests.
#
# Idempotent: exits 0 at once when something already answers on the client
# port. Otherwise installs Debian's etcd-server if `etcd` is missing, starts
# it in the background with a throw-away data dir, and waits until it
# reports healthy (at most ~60 s).
#
# Environment (all optional):
#   ETCD_CLIENT_PORT  client port (default 2379); tests read BUBBLE_ETCD_ENDPOINTS
#   ETCD_PEER_PORT    peer port (default 2380)
#   ETCD_LOG          where etcd logs (default /tmp/bubble-etcd.log)
set -euo pipefail

client_port="${ETCD_CLIENT_PORT:-2379}"
peer_port="${ETCD_PEER_PORT:-2380}"
log="${ETCD_LOG:-/tmp/bubble-etcd.log}"
client_url="http://127.0.0.1:${client_port}"
peer_url="http://127.0.0.1:${peer_port}"

healthy() {
    # /health answers {"health":"true",...} once the member has a leader.
    local body
    body="$(curl -fsS --max-time 2 "${client_url}/health" 2>/dev/null)" || return 1
    [[ "$body" == *'"health":"true"'* ]]
}

apt_updated=""
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [[ -z "$apt_updated" ]]; then
        apt-get update -qq
        apt_updated=1
    fi
    apt-get install -y -qq "$@" >/dev/null
}

# The health check needs curl.
if ! command -v curl >/dev/null 2>&1; then
    echo "etcd: curl missing; installing it"
    apt_install curl
fi

if healthy; then
    echo "etcd: already answering on ${client_url}"
    exit 0
fi

if ! command -v etcd >/dev/null 2>&1; then
    echo "etcd: not installed; installing Debian's etcd-server"
    apt_install etcd-server
    # Where an init system runs, the package starts its own member on the
    # default ports; give it a moment and use it if it answers.
    for _ in 1 2 3; do
        if healthy; then
            echo "etcd: the package's etcd answers on ${client_url}"
            exit 0
        fi
        sleep 1
    done
fi

data_dir="$(mktemp -d /tmp/bubble-etcd-data.XXXXXX)"
echo "etcd: starting on ${client_url} (data ${data_dir}, log ${log})"
# setsid + nohup: the member outlives this script and the shell that ran it.
setsid nohup etcd \
    --name bubble-test \
    --data-dir "$data_dir" \
    --listen-client-urls "$client_url" \
    --advertise-client-urls "$client_url" \
    --listen-peer-urls "$peer_url" \
    --initial-advertise-peer-urls "$peer_url" \
    --initial-cluster "bubble-test=${peer_url}" \
    >"$log" 2>&1 </dev/null &

for _ in $(seq 1 60); do
    if healthy; then
        echo "etcd: healthy on ${client_url}"
        exit 0
    fi
    sleep 1
done

echo "etcd: did not become healthy on ${client_url} within 60 s." >&2
echo "      Last lines of ${log}:" >&2
tail -n 20 "$log" >&2 || true
echo "      Check that ports ${client_port}/${peer_port} are free (ss -ltnp), then run $0 again." >&2
exit 1
