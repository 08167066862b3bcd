#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL server, then stops the server and removes it.
#
#   scripts/postgres.sh COMMAND [ARGS...]
#
# Installs Debian's `postgresql` if it is missing, creates a cluster in a temporary directory
# (trust auth, loopback only, a free port), exports COHORT_TEST_DATABASE_URL for COMMAND, and stops
# the server by its process id when COMMAND ends, whatever its outcome. PostgreSQL refuses to
# run as root, so as root the cluster belongs to the `postgres` user.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -gt 0 ]] || { echo "usage: scripts/postgres.sh COMMAND [ARGS...]" >&2; exit 2; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if [[ -z "$(pg_bin)" ]]; then
  echo "==> installing PostgreSQL from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
bin="$(pg_bin)"

as_owner=()
if [[ $(id -u) -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
  as_owner=(runuser -u postgres --)
fi

cluster="$(mktemp -d /tmp/cohort-pg.XXXXXX)"
[[ ${#as_owner[@]} -eq 0 ]] || chown postgres "$cluster"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
server_pid=""

stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -INT "$server_pid"   # fast shutdown
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$cluster"
}
trap stop_server EXIT

"${as_owner[@]}" "$bin/initdb" --pgdata="$cluster/data" --username=postgres --auth=trust --no-sync \
  --encoding=UTF8 >"$cluster/initdb.log" 2>&1 || { cat "$cluster/initdb.log" >&2; exit 1; }
"${as_owner[@]}" "$bin/pg_ctl" --pgdata="$cluster/data" --log="$cluster/server.log" --wait start \
  -o "-p $port -k $cluster -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null \
  || { cat "$cluster/server.log" >&2; exit 1; }
server_pid="$(head -1 "$cluster/data/postmaster.pid")"
"${as_owner[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres cohort_test

export COHORT_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/cohort_test"
echo "==> PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (pid $server_pid)"
"$@"
