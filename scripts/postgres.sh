#!/usr/bin/env bash
# A throwaway PostgreSQL for the memory tests, on 127.0.0.1 and a free port.
#
#   eval "$(scripts/postgres.sh start)"   # installs Debian's postgresql if missing, starts a
#                                         # cluster in a temp folder, prints
#                                         # `export HARNESS_PG_URL=...; export HARNESS_PG_DIR=...`
#   scripts/postgres.sh stop              # stops it and removes the folder ($HARNESS_PG_DIR)
#
# PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user.
set -euo pipefail

bin_dir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    echo "$d"
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local bin
    bin=$(bin_dir)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "installing postgresql (Debian)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        bin=$(bin_dir)
    fi
    local dir port
    dir=$(mktemp -d /tmp/harness-pg.XXXXXX)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
    as_owner "$bin/initdb" -D "$dir/data" -U harness --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on" start >&2 ||
        { cat "$dir/server.log" >&2; exit 1; }
    echo "export HARNESS_PG_URL='host=127.0.0.1 port=$port user=harness dbname=postgres'"
    echo "export HARNESS_PG_DIR='$dir'"
}

stop() {
    local dir=${HARNESS_PG_DIR:-}
    [ -n "$dir" ] && [ -d "$dir/data" ] || return 0
    as_owner "$(bin_dir)/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
