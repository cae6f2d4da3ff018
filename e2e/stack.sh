#!/usr/bin/env bash
# Starts the real server (fresh SQLite in a temp dir, the Trunk-built portal) and one worker.
# scripts/test.sh runs this inside a network namespace with only a loopback, so the handshakes the
# worker initiates towards the tests' site endpoints never leave the machine.
set -euo pipefail
port=${1:-18080}
if [ -n "$(ip route show default 2>/dev/null)" ] && [ "${E2E_ALLOW_HOST_NETWORK:-}" != 1 ]; then
  echo "stack.sh: this network namespace has a default route; run the browser tests through" >&2
  echo "scripts/test.sh (it isolates them), or inside 'ip netns exec NS' with only a loopback." >&2
  exit 1
fi
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${ISTHMUS_BIN_DIR:-$root/target/debug}
data=$(mktemp -d)
token="isw_e2e_$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
cleanup() { kill "${worker:-}" "${server:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT INT TERM
ISTHMUS_ADMIN_PASSWORD=${E2E_ADMIN_PASSWORD:-e2e-admin-password} ISTHMUS_WORKER_TOKEN=$token "$bin/isthmus" --data-dir "$data" serve --listen "127.0.0.1:$port" --portal-dir "$root/dist" &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/api/v1/health" >/dev/null 2>&1 && break
  sleep 0.1
done
ISTHMUS_WORKER_TOKEN=$token "$bin/isthmus-worker" --server "http://127.0.0.1:$port" --name e2e-worker --no-tun &
worker=$!
wait "$server"
