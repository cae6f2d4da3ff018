#!/usr/bin/env bash
# Issue 16: failover times of a redundant gateway, with the real server, two workers and a
# wireguard-go site in network namespaces this script's test creates (root only; nothing leaves
# them): the median and worst of ROUNDS unplanned failovers (kill -9 of the active worker) and
# ROUNDS planned drains (with an iperf3 stream through the tunnel), as the time without traffic
# seen by a 100 Hz ping from a VNet host to a host behind the site.
#
#   sudo worker/bench/failover.sh            (5 rounds each)
#   sudo ROUNDS=3 worker/bench/failover.sh
#
# Builds the server and the worker in release mode (the workspace's target/). Needs ip, wg,
# wireguard-go, iperf3, ping, curl, cargo.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
[[ $(id -u) == 0 ]] || { echo "run as root (network namespaces)"; exit 1; }
for c in ip wg wireguard-go iperf3 ping curl; do
  command -v "$c" >/dev/null || { echo "missing $c"; exit 1; }
done
cd "$ROOT"
cargo build --release -q -p isthmus-server
echo "load before: $(uptime)"
out="$(mktemp)"
status=0
ISTHMUS_BENCH_ROUNDS="${ROUNDS:-5}" cargo test --release -q -p isthmus-worker --test integration \
  bench_failover -- --ignored --nocapture --test-threads 1 >"$out" 2>&1 || status=$?
grep -E "^(RESULT|MEASURED)" "$out" || true
[[ $status == 0 ]] || { echo "the benchmark failed:"; tail -n 60 "$out"; }
rm -f "$out"
echo "load after: $(uptime)"
exit "$status"
