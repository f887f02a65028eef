#!/usr/bin/env bash
# scripts/pg.sh start DIR PORT | stop DIR : a throwaway PostgreSQL cluster on 127.0.0.1 for tests.
# scripts/pg.sh halt DIR | resume DIR : stop the server keeping its data, and start it again (outage tests).
# initdb refuses root, so the cluster runs as the unprivileged "postgres" user.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
cmd=$1 dir=$2 port=${3:-5433}
pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "$cmd" in
  start)
    [ -n "$(pgbin)" ] || apt_install postgresql
    BIN=$(pgbin)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    run_pg "$BIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    echo "$opts" >"$dir.opts"
    run_pg "$BIN/pg_ctl" -D "$dir" -l "$dir/log" -w -o "$opts" start >/dev/null
    echo "PostgreSQL ready on 127.0.0.1:$port"
    ;;
  halt)
    run_pg "$(pgbin)/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    ;;
  resume)
    run_pg "$(pgbin)/pg_ctl" -D "$dir" -l "$dir/log" -w -o "$(cat "$dir.opts")" start >/dev/null
    ;;
  stop)
    BIN=$(pgbin)
    run_pg "$BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null || true
    rm -rf "$dir" "$dir.opts"
    ;;
  *) echo "usage: $0 start DIR [PORT] | stop DIR | halt DIR | resume DIR" >&2; exit 2 ;;
esac
