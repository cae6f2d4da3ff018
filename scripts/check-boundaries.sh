#!/usr/bin/env bash
# Fails when a crate depends on what ARCHITECTURE.md forbids it.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
deps_of() { cargo tree --locked -p "$1" -e normal --prefix none --format '{p}' 2>/dev/null | awk '{print $1}' | sort -u; }
forbid() {
  local crate=$1; shift
  local deps; deps=$(deps_of "$crate")
  [ -n "$deps" ] || { echo "cannot list the dependencies of $crate" >&2; exit 1; }
  for bad in "$@"; do
    if grep -qx "$bad" <<<"$deps"; then
      echo "BOUNDARY BROKEN: $crate depends on $bad (see ARCHITECTURE.md, 'Invariants')" >&2
      fail=1
    fi
  done
}
forbid isthmus-shared tokio axum sea-orm boringtun leptos mio socket2
# utoipa only behind isthmus-shared's `openapi` feature, which only the server enables.
forbid isthmus-shared utoipa
forbid isthmus-frontend utoipa
forbid isthmus-worker utoipa
forbid isthmus-client utoipa
forbid isthmus-worker isthmus-server sea-orm axum
forbid isthmus-server isthmus-worker boringtun isthmus-frontend
forbid isthmus-frontend isthmus-server isthmus-worker tokio sea-orm
forbid isthmus-client isthmus-server isthmus-worker sea-orm axum
[ $fail -eq 0 ] && echo "dependency boundaries hold"
exit $fail
