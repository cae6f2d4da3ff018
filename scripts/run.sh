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
mkdir -p data
./target/release/isthmus --data-dir data serve --listen "$listen" --portal-dir dist &
server=$!
trap 'kill $server ${worker:-} 2>/dev/null; wait' EXIT INT TERM
for _ in $(seq 1 100); do
  [ -s data/worker.token ] && curl -fsS "http://$listen/api/v1/health" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { echo "the server exited; see its log above" >&2; exit 1; }
  sleep 0.2
done
ISTHMUS_WORKER_TOKEN=$(cat data/worker.token) ./target/release/isthmus-worker --server "http://$listen" --name local-worker &
worker=$!
echo "Isthmus is running: open http://$listen/ (Ctrl-C stops it)"
wait $server
