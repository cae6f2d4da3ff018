#!/usr/bin/env bash
# API load benchmark (issue: control plane speed). Release build, SQLite, loopback only.
# Seeds 500 VNets (each with a GatewaySubnet) and 100 RouteBased gateways, then runs wrk at
# concurrency 32 against: a get, a list, and a validated write (PUT of a VNet, which runs the
# whole-topology validation in a transaction). Prints wrk's latency distribution (p99).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command -v wrk >/dev/null || apt-get -o DPkg::Lock::Timeout=600 install -y -q wrk >/dev/null
cargo build --release --locked -p isthmus-server >/dev/null
port=${BENCH_PORT:-18480}
data=$(mktemp -d)
trap 'kill $server 2>/dev/null; wait 2>/dev/null; rm -rf "$data"' EXIT
ISTHMUS_ADMIN_PASSWORD=bench-admin-password RUST_LOG=warn ./target/release/isthmus --data-dir "$data" \
  serve --listen 127.0.0.1:$port --portal-dir "$data/none" >/dev/null &
server=$!
base=http://127.0.0.1:$port/api/v1
for _ in $(seq 1 100); do curl -fsS $base/health >/dev/null 2>&1 && break; sleep 0.1; done
jar=$data/cookies
curl -fsS -c $jar -H 'content-type: application/json' -d '{"username":"admin","password":"bench-admin-password"}' $base/auth/login >/dev/null
token=$(curl -fsS -b $jar -H 'content-type: application/json' -d '{"name":"bench"}' $base/tokens | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
auth="authorization: Bearer $token"
curl -fsS -H "$auth" -H 'content-type: application/json' -d '{"name":"acme"}' $base/tenants >/dev/null
echo "seeding 500 VNets and 100 gateways..."
python3 - "$base" "$token" <<'PY'
import json, sys, urllib.request
base, token = sys.argv[1], sys.argv[2]
def post(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
        headers={"content-type": "application/json", "authorization": "Bearer " + token})
    urllib.request.urlopen(req).read()
for i in range(500):
    a, b = divmod(i, 250)
    post("/tenants/acme/vnets", {"name": f"vnet-{i}", "region": "westeurope",
         "address_space": [f"10.{a}.{b}.0/24"],
         "subnets": [{"name": "GatewaySubnet", "prefix": f"10.{a}.{b}.224/27"}]})
for i in range(100):
    post("/tenants/acme/gateways", {"name": f"gw-{i}", "vnet": f"vnet-{i}", "gateway_type": "RouteBased", "sku": "VpnGw1"})
PY
cat > $data/put.lua <<LUA
wrk.method = "PUT"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer $token"
wrk.body = '{"name":"vnet-499","region":"westeurope","address_space":["10.1.249.0/24"],"subnets":[{"name":"GatewaySubnet","prefix":"10.1.249.224/27"}]}'
LUA
run() { echo; echo "== $1"; shift; wrk --latency -t2 -c32 -d${BENCH_SECONDS:-10}s "$@" | grep -E 'Requests/sec|Latency|50%|90%|99%|Non-2xx'; }
run "GET one VNet (c=32)" -H "$auth" $base/tenants/acme/vnets/vnet-250
run "GET list of 100 gateways (c=32)" -H "$auth" $base/tenants/acme/gateways
run "PUT one VNet, validated against the whole topology (c=32)" -s $data/put.lua $base/tenants/acme/vnets/vnet-499
