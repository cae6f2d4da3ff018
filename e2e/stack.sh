#!/usr/bin/env bash
# Starts the real server (fresh SQLite in a temp dir, the Trunk-built portal) and one worker.
# scripts/test.sh runs this inside a network namespace with only a loopback, so the handshakes the
# worker initiates towards the tests' site endpoints never leave the machine.
#
# `stack.sh PORT redundant` (issue 16, e2e/tests/instances.spec.ts) starts instead a server with a
# 3-second lease and its own gateway ports, and two --no-tun workers on two loopback addresses
# (e2e-a on 127.0.0.1, zone-a; e2e-b on 127.0.0.2, zone-b), each with its own heartbeat port, so
# every gateway runs as two instances. The workers' process ids go to E2E_PID_DIR/NAME.pid (when
# set), so a test can kill one.
set -euo pipefail
port=${1:-18080}
mode=${2:-single}
if [ -n "$(ip route show default 2>/dev/null)" ] && [ "${E2E_ALLOW_HOST_NETWORK:-}" != 1 ]; then
  echo "stack.sh: this network namespace has a default route; run the browser tests through" >&2
  echo "scripts/test.sh (it isolates them), or inside 'ip netns exec NS' with only a loopback." >&2
  exit 1
fi
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${ISTHMUS_BIN_DIR:-$root/target/debug}
data=$(mktemp -d)
token="isw_e2e_$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
workers=()
cleanup() { kill "${workers[@]}" "${server:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT INT TERM
server_args=(--data-dir "$data")
serve_args=(serve --listen "127.0.0.1:$port" --portal-dir "$root/dist")
if [ "$mode" = redundant ]; then
  # Gateway ports apart from the shared stack's (51820-52819) and first_try.spec's (53820-53899).
  server_args+=(--gateway-ports 54820-54869)
  serve_args+=(--lease-seconds 3)
fi
ISTHMUS_ADMIN_PASSWORD=${E2E_ADMIN_PASSWORD:-e2e-admin-password} ISTHMUS_WORKER_TOKEN=$token "$bin/isthmus" "${server_args[@]}" "${serve_args[@]}" &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/api/v1/health" >/dev/null 2>&1 && break
  sleep 0.1
done
worker() { # NAME ARGS...
  local name=$1
  shift
  ISTHMUS_WORKER_TOKEN=$token "$bin/isthmus-worker" --server "http://127.0.0.1:$port" --name "$name" --no-tun "$@" &
  workers+=($!)
  if [ -n "${E2E_PID_DIR:-}" ]; then echo $! >"$E2E_PID_DIR/$name.pid"; fi
}
if [ "$mode" = redundant ]; then
  # Two addresses, two heartbeat ports: never the same address and port twice (SO_REUSEPORT
  # would let a second bind share it silently).
  worker e2e-a --bind-address 127.0.0.1 --public-address 127.0.0.1 --heartbeat-port 54901 --zone zone-a --status-interval 1
  worker e2e-b --bind-address 127.0.0.2 --public-address 127.0.0.2 --heartbeat-port 54902 --zone zone-b --status-interval 1
else
  worker e2e-worker
fi
wait "$server"
