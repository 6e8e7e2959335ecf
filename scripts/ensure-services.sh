#!/usr/bin/env bash
# Make sure PostgreSQL and Redis are installed and running on 127.0.0.1 for tests and CI.
#
# On a Debian machine where we are root, missing services are installed with apt-get and
# started without systemd; PostgreSQL is made to accept user `postgres` over TCP on loopback
# without a password (trust: CI/development machines only). Anywhere else (not root, no
# apt-get) the script only reports what is missing and exits 0: the tests that need a
# service skip with a reason.
#
# Prints one line per service saying what it did.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_HOST=127.0.0.1
REDIS_PORT=6379

export DEBIAN_FRONTEND=noninteractive

can_install() { [[ ${EUID:-$(id -u)} -eq 0 ]] && command -v apt-get > /dev/null; }

why_not() {
    if [[ ${EUID:-$(id -u)} -ne 0 ]]; then echo "not root"; else echo "no apt-get"; fi
}

join() {
    local out=$1
    shift
    local item
    for item in "$@"; do out+=", $item"; done
    printf '%s\n' "$out"
}

APT_UPDATED=0
apt_install() {
    if [[ $APT_UPDATED -eq 0 ]]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    apt-get install -y -qq --no-install-recommends "$@" > /dev/null
}

# ---------------------------------------------------------------- PostgreSQL

pg_ready() {
    if command -v pg_isready > /dev/null; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT"
    else
        (exec 3<> "/dev/tcp/$PG_HOST/$PG_PORT") 2> /dev/null
    fi
}

pg_trusts_postgres() {
    command -v psql > /dev/null \
        && PGCONNECT_TIMEOUT=5 psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -w -d postgres \
            -qtAc 'select 1' > /dev/null 2>&1
}

pg_installed() {
    command -v pg_ctlcluster > /dev/null && [[ -n "$(ls -A /etc/postgresql 2> /dev/null)" ]]
}

pg_version() { ls /etc/postgresql | sort -V | tail -1; }

ensure_postgres() {
    local did=()

    if ! pg_ready; then
        if ! can_install; then
            echo "postgresql: not reachable on $PG_HOST:$PG_PORT and cannot install or start it" \
                "($(why_not)); tests marked 'postgres' will skip"
            return 0
        fi
        if ! pg_installed; then
            apt_install postgresql
            did+=("installed postgresql")
        fi
        local ver
        ver=$(pg_version)
        if [[ ! -d /etc/postgresql/$ver/main ]]; then
            pg_createcluster "$ver" main > /dev/null
            did+=("created cluster $ver/main")
        fi
        if ! pg_lsclusters -h "$ver" main 2> /dev/null | grep -q online; then
            pg_ctlcluster --skip-systemctl-redirect "$ver" main start
            did+=("started cluster $ver/main")
        fi
        local i
        for ((i = 0; i < 30; i++)); do
            pg_ready && break
            sleep 1
        done
        if ! pg_ready; then
            echo "postgresql: cluster $ver/main did not accept connections on" \
                "$PG_HOST:$PG_PORT within 30 s" >&2
            pg_lsclusters >&2 || true
            tail -n 20 "/var/log/postgresql/postgresql-$ver-main.log" >&2 2> /dev/null || true
            return 1
        fi
    fi

    if ! pg_trusts_postgres; then
        local ver hba
        ver=$(pg_version 2> /dev/null || true)
        hba=/etc/postgresql/$ver/main/pg_hba.conf
        if ! command -v psql > /dev/null; then
            echo "postgresql: running on $PG_HOST:$PG_PORT; psql is not installed, so trust auth" \
                "for user postgres was not checked"
            return 0
        fi
        if ! can_install || [[ -z $ver || ! -f $hba ]]; then
            echo "postgresql: running on $PG_HOST:$PG_PORT but user postgres cannot log in over" \
                "TCP without a password, and this script cannot change that; tests marked" \
                "'postgres' may skip"
            return 0
        fi
        # A fresh Debian cluster uses scram-sha-256 for host connections; the first matching
        # pg_hba line wins, so the trust lines go first. Rewritten in place (cat >) to keep the
        # file's owner and mode.
        local tmp
        tmp=$(mktemp)
        {
            echo "# Added by scripts/ensure-services.sh (CI/development only)"
            echo "host all all 127.0.0.1/32 trust"
            echo "host all all ::1/128 trust"
            cat "$hba"
        } > "$tmp"
        cat "$tmp" > "$hba"
        rm -f "$tmp"
        pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
        local i
        for ((i = 0; i < 10; i++)); do
            pg_trusts_postgres && break
            sleep 1
        done
        if ! pg_trusts_postgres; then
            echo "postgresql: user postgres still cannot log in over TCP after editing $hba" >&2
            return 1
        fi
        did+=("enabled trust auth on loopback in $hba")
    fi

    if [[ ${#did[@]} -eq 0 ]]; then
        echo "postgresql: already running on $PG_HOST:$PG_PORT (user postgres, trust); nothing to do"
    else
        echo "postgresql: $(join "${did[@]}"); now running on $PG_HOST:$PG_PORT"
    fi
}

# ---------------------------------------------------------------- Redis

redis_ready() {
    if command -v redis-cli > /dev/null; then
        [[ $(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2> /dev/null) == PONG ]]
    else
        # No redis-cli: speak the protocol over bash's /dev/tcp, in a subshell.
        local reply
        reply=$(
            exec 2> /dev/null
            exec 3<> "/dev/tcp/$REDIS_HOST/$REDIS_PORT" \
                && printf 'PING\r\n' >&3 \
                && read -r -t 2 line <&3 \
                && printf '%s' "$line"
        ) || return 1
        [[ $reply == +PONG* ]]
    fi
}

ensure_redis() {
    local did=()

    if redis_ready; then
        echo "redis: already running on $REDIS_HOST:$REDIS_PORT; nothing to do"
        return 0
    fi
    if ! can_install; then
        echo "redis: not reachable on $REDIS_HOST:$REDIS_PORT and cannot install or start it" \
            "($(why_not)); tests that need Redis will skip"
        return 0
    fi
    if ! command -v redis-server > /dev/null; then
        apt_install redis-server
        did+=("installed redis-server")
    fi
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
        --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
    did+=("started redis-server")
    local i
    for ((i = 0; i < 15; i++)); do
        redis_ready && break
        sleep 1
    done
    if ! redis_ready; then
        echo "redis: did not answer PING on $REDIS_HOST:$REDIS_PORT within 15 s" >&2
        tail -n 20 /var/log/redis/ci.log >&2 2> /dev/null || true
        return 1
    fi
    echo "redis: $(join "${did[@]}"); now running on $REDIS_HOST:$REDIS_PORT"
}

ensure_postgres
ensure_redis
