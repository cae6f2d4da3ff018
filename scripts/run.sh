#!/usr/bin/env bash
# Runs Isthmus: installs what it needs, builds the portal and the binaries, starts the server on
# http://127.0.0.1:8080 (SQLite under ./data) and a local worker connected to it. Ctrl-C stops both.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh run
# shellcheck source=env.sh
source scripts/env.sh
build_portal
cargo build --release --locked -p isthmus-server -p isthmus-worker
listen=${ISTHMUS_LISTEN:-127.0.0.1:8080}
ports=${ISTHMUS_GATEWAY_PORTS:-51820-52819}
# GW-3 / GW-10: the address devices reach the worker's gateways at. By default the IPv4 address
# of the interface that holds the default route; ISTHMUS_PUBLIC_ADDRESS (comma-separated, first
# preferred) overrides it. Without a default route, loopback (only this host can connect).
default_address() {
  local dev addr
  dev=$(ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit }}')
  [ -n "$dev" ] && addr=$(ip -4 -o addr show dev "$dev" scope global 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')
  echo "${addr:-127.0.0.1}"
}
public=${ISTHMUS_PUBLIC_ADDRESS:-$(default_address)}
mkdir -p data
# The server's --public-address is only the fallback for workers that state none.
env -u ISTHMUS_PUBLIC_ADDRESS ./target/release/isthmus --data-dir data --public-address "${public%%,*}" \
  --gateway-ports "$ports" serve --listen "$listen" --portal-dir dist &
server=$!
trap 'kill $server ${worker:-} 2>/dev/null; wait' EXIT INT TERM
for _ in $(seq 1 100); do
  [ -s data/worker.token ] && curl -fsS "http://$listen/api/v1/health" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { echo "the server exited; see its log above" >&2; exit 1; }
  sleep 0.2
done
ISTHMUS_WORKER_TOKEN=$(cat data/worker.token) ISTHMUS_PUBLIC_ADDRESS=$public \
  ./target/release/isthmus-worker --server "http://$listen" --name local-worker &
worker=$!
echo "Isthmus is running: open http://$listen/ (Ctrl-C stops it)"
echo "Devices reach the gateways at $public (set ISTHMUS_PUBLIC_ADDRESS=ADDR[,ADDR...] to change it)."
echo "Open UDP $ports inbound to $public on this host's firewall (the gateway ports; ISTHMUS_GATEWAY_PORTS changes them)."
case $public in
  127.*|::1|*,127.*|*,::1) echo "WARNING: $public is a loopback address: only this host can reach the gateways." >&2 ;;
esac
wait $server
