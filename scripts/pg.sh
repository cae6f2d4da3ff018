#!/usr/bin/env bash
# Starts a throwaway PostgreSQL (Debian's packages) on 127.0.0.1 at a random port, as the
# `postgres` user, in a temp dir. Prints `export ISTHMUS_TEST_POSTGRES=...` and `export PG_DIR=...`;
# stop it with: scripts/pg.sh stop "$PG_DIR".
set -euo pipefail
if [ "${1:-}" = stop ]; then
  dir=$2
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  su postgres -s /bin/sh -c "$bin/pg_ctl -D '$dir/db' -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$dir"
  exit 0
fi
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "PostgreSQL is not installed: run scripts/setup.sh test" >&2; exit 1; }
dir=$(mktemp -d /tmp/isthmus-pg.XXXXXX)
chown postgres "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
su postgres -s /bin/sh -c "$bin/initdb -D '$dir/db' -U postgres --auth=trust -E UTF8 >/dev/null"
su postgres -s /bin/sh -c "$bin/pg_ctl -D '$dir/db' -l '$dir/log' -w -o \"-c listen_addresses=127.0.0.1 -p $port -k '$dir' -c fsync=off -c max_connections=300\" start >/dev/null"
echo "export ISTHMUS_TEST_POSTGRES=postgres://postgres@127.0.0.1:$port"
echo "export PG_DIR=$dir"
