#!/usr/bin/env bash
# A private PostgreSQL for tests and local runs, from Debian's binaries: listens on 127.0.0.1 only.
#
#   eval "$(bash scripts/postgres.sh start DIR [PORT])"   # init DIR if new, start; exports FORMSCAN_POSTGRES_URL, FORMSCAN_POSTGRES_PID
#   bash scripts/postgres.sh stop DIR
#
# Idempotent: start on a running cluster only prints its URL again. Root cannot run postgres,
# so as root the cluster belongs to the `postgres` user. Authentication is `trust` on 127.0.0.1:
# for tests and one-machine use only.
set -euo pipefail

action=${1:?usage: postgres.sh start|stop DIR [PORT]}
dir=${2:?usage: postgres.sh start|stop DIR [PORT]}
port=${3:-}

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "postgres.sh: no PostgreSQL binaries under /usr/lib/postgresql (apt-get install postgresql)" >&2
  exit 1
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pid_of() {
  [ -f "$dir/postmaster.pid" ] && head -n 1 "$dir/postmaster.pid" || true
}

running() {
  local pid
  pid=$(pid_of)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

case "$action" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres: "$dir" && chmod 700 "$dir"
      as_owner test -w "$dir" || { echo "postgres.sh: user postgres cannot reach $dir (a parent folder is private)" >&2; exit 1; }
    fi
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_owner "$bindir/initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$dir.initdb.log" 2>&1 \
        || { cat "$dir.initdb.log" >&2; exit 1; }
    fi
    if running; then
      port=$(sed -n 4p "$dir/postmaster.pid")
    else
      port=${port:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
      as_owner "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=off" start >/dev/null
    fi
    echo "export FORMSCAN_POSTGRES_URL=postgresql://postgres@127.0.0.1:$port/postgres"
    echo "export FORMSCAN_POSTGRES_PID=$(pid_of)"
    ;;
  stop)
    if running; then as_owner "$bindir/pg_ctl" -D "$dir" -m fast -w stop >/dev/null; fi
    ;;
  *)
    echo "postgres.sh: unknown action $action (start or stop)" >&2
    exit 2
    ;;
esac
