#!/usr/bin/env bash
# Brings up MariaDB for bubble's tests: 127.0.0.1:3306, user root with an empty
# password over TCP, and a database `test` (the tests create and drop their own
# bubble_test_* databases next to it).
#
# Idempotent: exits 0 at once when that already works. Otherwise installs
# MariaDB from Debian's packages if it is missing, initialises the data
# directory if it is empty, starts the server, waits for it (at most ~60 s),
# and lets root in over TCP without a password.
set -euo pipefail

HOST=127.0.0.1
PORT=3306
WAIT_SECS=60
DATADIR=/var/lib/mysql

say() { echo "mariadb.sh: $*" >&2; }
die() {
    say "$*"
    say "start it by hand: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql"
    say "its log: /var/log/mysql/error.log (or $DATADIR/*.err); or point BUBBLE_MYSQL_URL at another MySQL 8 / MariaDB 10.11"
    exit 1
}

client() {
    if command -v mariadb >/dev/null 2>&1; then mariadb "$@"; else mysql "$@"; fi
}
admin() {
    if command -v mariadb-admin >/dev/null 2>&1; then mariadb-admin "$@"; else mysqladmin "$@"; fi
}
# The tests can log in and run a query.
usable() {
    client --protocol=tcp -h"$HOST" -P"$PORT" -uroot --connect-timeout=2 -e "SELECT 1" >/dev/null 2>&1
}
# Everything the tests need is there.
ready() {
    client --protocol=tcp -h"$HOST" -P"$PORT" -uroot --connect-timeout=2 -D test -e "SELECT 1" >/dev/null 2>&1
}
# The server answers at all (ping succeeds even when access is denied).
alive() {
    admin --protocol=tcp -h"$HOST" -P"$PORT" --connect-timeout=2 ping >/dev/null 2>&1
}

if ready; then
    exit 0
fi

if ! alive; then
    if [ ! -x /usr/sbin/mariadbd ]; then
        say "MariaDB is not installed; installing mariadb-server from Debian's packages"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq || die "apt-get update failed"
        apt-get install -y -qq mariadb-server mariadb-client >/dev/null || die "installing mariadb-server failed"
    fi
    mkdir -p /run/mysqld /var/log/mysql
    chown mysql:mysql /run/mysqld /var/log/mysql 2>/dev/null || true
    if [ ! -d "$DATADIR/mysql" ]; then
        say "initialising $DATADIR"
        mariadb-install-db --user=mysql --datadir="$DATADIR" >/dev/null || die "mariadb-install-db failed"
    fi
    say "starting mariadbd"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql \
        || die "start-stop-daemon could not start /usr/sbin/mariadbd"
    for _ in $(seq 1 "$WAIT_SECS"); do
        alive && break
        sleep 1
    done
    alive || die "mariadbd did not answer on $HOST:$PORT within ${WAIT_SECS}s"
fi

if ! usable; then
    # A fresh Debian install lets root in only through the unix socket; the
    # tests log in over TCP with an empty password.
    say "letting root in over TCP without a password"
    client --protocol=socket -uroot -e "
        ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
        CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
        GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
        FLUSH PRIVILEGES;" || die "could not grant root access over TCP (tried through the unix socket)"
    usable || die "root still cannot log in over TCP at $HOST:$PORT"
fi

client --protocol=tcp -h"$HOST" -P"$PORT" -uroot -e "CREATE DATABASE IF NOT EXISTS test" \
    || die "could not create the database test"
say "MariaDB answers on $HOST:$PORT"
