#!/usr/bin/env bash
# A three-node MariaDB Galera cluster on loopback, for running the MySQL
# store on a distributed database (bubble-store-mysql/tests/galera.rs,
# docs/operations.md "MariaDB Galera"). It leaves the plain MariaDB on
# 127.0.0.1:3306 and its config in /etc/mysql alone.
#
#   scripts/galera.sh up        # install galera-4 and rsync if missing, start what is stopped, wait for 3 synced nodes
#                               # (and, if the running nodes lost their primary component, bootstrap one)
#   scripts/galera.sh status    # each node's pid, port, state and the cluster size
#   scripts/galera.sh down      # stop every node cleanly (keeps the data; `up` starts it again)
#   scripts/galera.sh reset     # down, then forget the data
#   scripts/galera.sh kill N    # SIGKILL node N (1-3), as a crash would
#   scripts/galera.sh start N   # start node N again: it rejoins the others (IST, or SST by rsync)
#
# Node N (1-3) answers SQL on 127.0.0.1:331N (user root, no password, database
# `test`), replicates on 456N, receives incremental state on 457N and full
# state (rsync SST) on 458N. Its datadir, socket, config and log are under
# $GALERA_DIR/nodeN (default /tmp/bubble-galera). The tests' addresses:
#   BUBBLE_GALERA_URLS=mysql://root@127.0.0.1:3311/test,mysql://root@127.0.0.1:3312/test,mysql://root@127.0.0.1:3313/test
set -euo pipefail

DIR=${GALERA_DIR:-/tmp/bubble-galera}
PROVIDER=/usr/lib/galera/libgalera_smm.so
NODES=3
WAIT_SECS=90

say() { echo "galera.sh: $*" >&2; }
die() {
    say "$*"
    exit 1
}

sql_port() { echo "331$1"; }
node_dir() { echo "$DIR/node$1"; }
pid_of() {
    local f
    f="$(node_dir "$1")/pid"
    [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"
}
client() {
    if command -v mariadb >/dev/null 2>&1; then mariadb "$@"; else mysql "$@"; fi
}
# One value of SHOW STATUS on node N, empty when it does not answer.
status_of() {
    client --protocol=tcp -h127.0.0.1 -P"$(sql_port "$1")" -uroot --connect-timeout=2 -N -B \
        -e "SHOW GLOBAL STATUS LIKE '$2'" 2>/dev/null | awk '{ print $2 }'
}
check_node() {
    case "${1:-}" in
        [1-3]) ;;
        *) die "name a node, 1 to $NODES (got '${1:-}')" ;;
    esac
}

apt_updated=""
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "$apt_updated" ]; then
        apt-get update -qq || die "apt-get update failed; install $* by hand"
        apt_updated=1
    fi
    apt-get install -y -qq "$@" >/dev/null || die "installing $* failed; install it by hand"
}

install() {
    if [ ! -x /usr/sbin/mariadbd ] || ! command -v mariadb-install-db >/dev/null 2>&1; then
        say "MariaDB is not installed; installing mariadb-server from Debian's packages"
        apt_install mariadb-server mariadb-client
    fi
    if [ ! -f "$PROVIDER" ]; then
        say "the Galera provider $PROVIDER is missing; installing galera-4"
        apt_install galera-4
    fi
    if ! command -v rsync >/dev/null 2>&1; then
        say "rsync (the state transfer of a rejoining node) is missing; installing it"
        apt_install rsync
    fi
    [ -f "$PROVIDER" ] || die "galera-4 is installed but $PROVIDER is not there; check 'dpkg -L galera-4'"
}

# Node N's config file: its own everything, nothing read from /etc/mysql.
write_config() {
    local n=$1 dir others="" i
    dir="$(node_dir "$n")"
    for i in $(seq 1 "$NODES"); do
        others="${others:+$others,}127.0.0.1:456$i"
    done
    cat >"$dir/my.cnf" <<EOF
[mariadbd]
user = mysql
datadir = $dir/data
socket = $dir/mariadbd.sock
pid-file = $dir/mariadbd.pid
log-error = $dir/error.log
bind-address = 127.0.0.1
port = $(sql_port "$n")
skip-name-resolve
innodb_buffer_pool_size = 64M
innodb_log_file_size = 48M
# What Galera requires.
binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2
# Galera makes the commit durable by replicating it to the other nodes.
innodb_flush_log_at_trx_commit = 2
wsrep_on = ON
wsrep_provider = $PROVIDER
wsrep_cluster_name = bubble_galera
wsrep_cluster_address = gcomm://$others
wsrep_node_name = node$n
wsrep_node_address = 127.0.0.1:456$n
# Galera's own failure-detection timeouts (evs.suspect_timeout 5 s): with
# 3 s the two survivors of a kill, starved of CPU by a build beside them,
# once failed to agree on a new view in time and both fell out of the
# primary component.
wsrep_provider_options = "base_port=456$n;ist.recv_addr=127.0.0.1:457$n;gcache.size=64M"
wsrep_sst_method = rsync
wsrep_sst_receive_address = 127.0.0.1:458$n
EOF
}

init_node() {
    local n=$1 dir
    dir="$(node_dir "$n")"
    mkdir -p "$dir"
    write_config "$n"
    # mariadbd runs as mysql even when we are root: the rsync daemon of a
    # state transfer, started by it, would otherwise drop to nobody and
    # could not write the datadir.
    chown -R mysql:mysql "$dir"
    if [ ! -d "$dir/data/mysql" ]; then
        mariadb-install-db --defaults-file="$dir/my.cnf" --user=mysql --auth-root-authentication-method=normal \
            --skip-test-db >"$dir/install.log" 2>&1 \
            || die "mariadb-install-db failed for node$n; see $dir/install.log"
    fi
}

# Starts node N; `bootstrap` makes it a new cluster's first node.
start_node() {
    local n=$1 how=${2:-join} dir pid
    dir="$(node_dir "$n")"
    if pid=$(pid_of "$n"); then
        [ "$how" = join ] || say "node$n is already running (pid $pid)"
        return
    fi
    init_node "$n"
    local args=()
    if [ "$how" = bootstrap ]; then
        args=(--wsrep-new-cluster)
        # The node chosen to bootstrap must be allowed to (grastate.dat).
        sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' "$dir/data/grastate.dat" 2>/dev/null || true
    fi
    say "starting node$n ($how) on 127.0.0.1:$(sql_port "$n")"
    nohup /usr/sbin/mariadbd --defaults-file="$dir/my.cnf" "${args[@]}" >>"$dir/stdout.log" 2>&1 &
    echo $! >"$dir/pid"
}

# Waits until node N is synced with the cluster and answers queries.
wait_synced() {
    local n=$1 waited=0
    while [ "$waited" -lt "$WAIT_SECS" ]; do
        if [ "$(status_of "$n" wsrep_ready)" = ON ] && [ "$(status_of "$n" wsrep_local_state_comment)" = Synced ]; then
            return
        fi
        if ! pid_of "$n" >/dev/null; then
            die "node$n exited while starting; its log, $(node_dir "$n")/error.log, ends with:
$(tail -15 "$(node_dir "$n")/error.log")"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    die "node$n is not synced after ${WAIT_SECS}s; see $(node_dir "$n")/error.log"
}

# The position (seqno) of the last transaction node N committed, read by
# `mariadbd --wsrep-recover` from its InnoDB log; -1 when it has none.
recovered_seqno() {
    local n=$1 dir log pos
    dir="$(node_dir "$n")"
    log="$dir/wsrep-recover.log"
    rm -f "$log"
    /usr/sbin/mariadbd --defaults-file="$dir/my.cnf" --wsrep-recover --log-error="$log" >/dev/null 2>&1 || true
    pos=$(grep -o 'Recovered position: [0-9a-f-]*:-\?[0-9]*' "$log" 2>/dev/null | tail -1 | sed 's/.*://')
    echo "${pos:--1}"
}

# The node that may start a new cluster: the one that stopped last (Galera
# marks it safe_to_bootstrap), else node 1 on a fresh directory. When every
# node stopped uncleanly (a crash, a power cut, the machine stopped), none is
# marked, and the one holding the newest data is the one whose InnoDB log
# recovers the highest seqno (Galera's documented procedure; a tie goes to
# the lowest node number). Bootstrapping any other would make the rest
# throw away transactions they committed.
bootstrap_node() {
    local i seqno best="" best_seqno=""
    for i in $(seq 1 "$NODES"); do
        if grep -q '^safe_to_bootstrap: 1' "$(node_dir "$i")/data/grastate.dat" 2>/dev/null; then
            echo "$i"
            return
        fi
    done
    if [ ! -f "$(node_dir 1)/data/grastate.dat" ]; then
        echo 1
        return
    fi
    say "every node of $DIR stopped uncleanly; recovering each one's last committed seqno"
    for i in $(seq 1 "$NODES"); do
        [ -f "$(node_dir "$i")/data/grastate.dat" ] || continue
        init_node "$i"
        seqno=$(recovered_seqno "$i")
        say "node$i recovered seqno $seqno"
        if [ -z "$best" ] || [ "$seqno" -gt "$best_seqno" ]; then
            best=$i
            best_seqno=$seqno
        fi
    done
    [ -n "$best" ] && [ "$best_seqno" -ge 0 ] \
        || die "no node of $DIR could recover its position (see $DIR/node*/wsrep-recover.log); start afresh: $0 reset"
    say "bootstrapping from node$best, which holds the newest data (seqno $best_seqno)"
    echo "$best"
}

# When nodes run but none is in a primary component (the survivors of a
# failure could not agree on a view), the first of them that runs starts
# a new primary component; the others merge into it.
recover_primary() {
    local i st first=""
    for i in $(seq 1 "$NODES"); do
        pid_of "$i" >/dev/null || continue
        st=$(status_of "$i" wsrep_cluster_status)
        # Not answering: still starting, or dying; wait_synced judges it.
        [ -n "$st" ] || continue
        [ "$st" = Primary ] && return
        [ -n "$first" ] || first=$i
    done
    [ -n "$first" ] || return 0
    say "no running node is in a primary component; making node$first one (pc.bootstrap)"
    client --protocol=tcp -h127.0.0.1 -P"$(sql_port "$first")" -uroot \
        -e "SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'" \
        || die "could not bootstrap a primary component on node$first; try '$0 down' then '$0 up'"
    wait_synced "$first"
}

up() {
    install
    local i running=0 first
    for i in $(seq 1 "$NODES"); do
        pid_of "$i" >/dev/null && running=$((running + 1))
    done
    recover_primary
    if [ "$running" -eq 0 ]; then
        first=$(bootstrap_node)
        start_node "$first" bootstrap
        wait_synced "$first"
    fi
    for i in $(seq 1 "$NODES"); do
        start_node "$i" join
        # One joiner at a time: two state transfers at once from one donor
        # make the second wait for the first anyway.
        wait_synced "$i"
    done
    local size
    size=$(status_of 1 wsrep_cluster_size)
    [ "$size" = "$NODES" ] || die "wsrep_cluster_size is '$size', expected $NODES; see $DIR/node*/error.log"
    # root over TCP without a password (mariadb-install-db made
    # root@localhost; loopback TCP logins are root@127.0.0.1) and `test`.
    # Both replicate to every node.
    client --protocol=socket -S "$(node_dir 1)/mariadbd.sock" -uroot -e "
        CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
        GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
        CREATE DATABASE IF NOT EXISTS test;" || die "could not create root@127.0.0.1 and test on node1"
    for i in $(seq 1 "$NODES"); do
        client --protocol=tcp -h127.0.0.1 -P"$(sql_port "$i")" -uroot -D test -e "SELECT 1" >/dev/null \
            || die "root cannot log in to node$i over TCP"
    done
    say "$NODES nodes synced: 127.0.0.1:3311-331$NODES (root, no password, database test)"
}

status() {
    local i pid
    for i in $(seq 1 "$NODES"); do
        if pid=$(pid_of "$i"); then
            echo "node$i: running (pid $pid), port $(sql_port "$i"), ready $(status_of "$i" wsrep_ready), state $(status_of "$i" wsrep_local_state_comment), cluster size $(status_of "$i" wsrep_cluster_size)"
        else
            echo "node$i: stopped"
        fi
    done
}

stop_node() {
    local n=$1 pid
    pid=$(pid_of "$n") || return 0
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || {
            say "node$n stopped"
            return
        }
        sleep 0.5
    done
    say "node$n still running after 30 s: killing it"
    kill -KILL "$pid"
}

down() {
    # Last node first, so node 1 stops last and is the one safe to bootstrap.
    local i
    for i in $(seq "$NODES" -1 1); do
        stop_node "$i"
    done
}

kill_node() {
    local n=$1 pid
    check_node "$n"
    pid=$(pid_of "$n") || die "node$n is not running"
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    say "node$n (pid $pid) killed with SIGKILL"
}

start_one() {
    local n=$1 i others=0
    check_node "$n"
    install
    for i in $(seq 1 "$NODES"); do
        [ "$i" != "$n" ] && pid_of "$i" >/dev/null && others=$((others + 1))
    done
    [ "$others" -gt 0 ] || die "no other node is running for node$n to join; use '$0 up'"
    start_node "$n" join
    wait_synced "$n"
    say "node$n rejoined: cluster size $(status_of "$n" wsrep_cluster_size)"
}

case "${1:-}" in
    up) up ;;
    status) status ;;
    down) down ;;
    reset)
        down
        rm -rf "$DIR"
        say "removed $DIR"
        ;;
    kill) kill_node "${2:-}" ;;
    start) start_one "${2:-}" ;;
    *)
        sed -n '2,19p' "$0" >&2
        exit 2
        ;;
esac
