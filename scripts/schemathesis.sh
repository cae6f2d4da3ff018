#!/usr/bin/env bash
# Fuzzes the real server against its own OpenAPI document with Schemathesis (pinned; installed by
# `scripts/setup.sh test` into target/schemathesis-venv): a fresh server on loopback with a fresh
# SQLite database, called with an administrator token, a reader token and a worker token, each run
# bounded in time. Fails on any 5xx, any status the document does not list for the operation, any
# response whose body does not match its schema, and any undocumented content type.
#   scripts/schemathesis.sh            (ISTHMUS_BIN=path/to/isthmus to skip the build;
#                                       SCHEMATHESIS_MAX_TIME / SCHEMATHESIS_MAX_EXAMPLES to tune)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

st=target/schemathesis-venv/bin/schemathesis
[ -x "$st" ] || { echo "schemathesis is not installed: run scripts/setup.sh test" >&2; exit 1; }
bin=${ISTHMUS_BIN:-}
if [ -z "$bin" ]; then
  cargo build --locked -q -p isthmus-server --bin isthmus
  bin=target/debug/isthmus
fi
max_time=${SCHEMATHESIS_MAX_TIME:-50}
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-25}

mkdir -p target/tmp
dir=$(mktemp -d "$root/target/tmp/schemathesis.XXXXXX")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
ISTHMUS_ADMIN_PASSWORD=$password "$bin" --data-dir "$dir" --public-address 127.0.0.1 \
  serve --listen "127.0.0.1:$port" >"$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
  [ -s "$dir/worker.token" ] && curl -fsS "$base/api/v1/health" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { cat "$dir/server.log" >&2; echo "the server exited" >&2; exit 1; }
  sleep 0.2
done

# call METHOD PATH [JSON] [COOKIE-JAR]: the JSON answer; fails on a non-2xx status.
call() {
  local jar=${4:-$dir/admin.jar}
  curl -fsS -X "$1" -b "$jar" -c "$jar" -H 'content-type: application/json' \
    ${3:+--data "$3"} "$base$2"
}
token_of() { python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'; }

call POST /api/v1/auth/login "{\"username\":\"admin\",\"password\":\"$password\"}" >/dev/null
admin_token=$(call POST /api/v1/tokens '{"name":"schemathesis"}' | token_of)
call POST /api/v1/users "{\"username\":\"reader\",\"password\":\"$password\"}" >/dev/null
# A tenant with one of everything, so reads and writes reach past the 404s.
call POST /api/v1/tenants '{"name":"demo"}' >/dev/null
call PUT /api/v1/tenants/demo/members/reader '{"role":"reader"}' >/dev/null
call POST /api/v1/tenants/demo/vnets '{"name":"v1","region":"west","address_space":["10.1.0.0/16"],"subnets":[{"name":"GatewaySubnet","prefix":"10.1.255.0/27"}]}' >/dev/null
call POST /api/v1/tenants/demo/gateways '{"name":"g1","vnet":"v1","gateway_type":"RouteBased","sku":"VpnGw1"}' >/dev/null
call POST /api/v1/tenants/demo/sites '{"name":"s1","device_host":"198.51.100.7","address_prefixes":["192.168.10.0/24"]}' >/dev/null
call POST /api/v1/tenants/demo/connections '{"name":"c1","gateway":"g1","kind":{"type":"SiteToSite","site":"s1"}}' >/dev/null
call POST /api/v1/tenants/demo/point-to-site '{"gateway":"g1","address_pool":["172.16.0.0/24"]}' >/dev/null
call POST /api/v1/auth/login "{\"username\":\"reader\",\"password\":\"$password\"}" "$dir/reader.jar" >/dev/null
reader_token=$(call POST /api/v1/tokens '{"name":"schemathesis"}' "$dir/reader.jar" | token_of)
worker_token=$(cat "$dir/worker.token")
curl -fsS "$base/api/v1/openapi.json" >"$dir/openapi.json"

status=0
run() {
  local who=$1 token=$2; shift 2
  echo "--- schemathesis as $who"
  # --mode all: schema-valid and schema-violating requests alike.
  # From the run's directory, so Schemathesis' and Hypothesis' caches stay out of the tree.
  if ! (cd "$dir" && "$root/$st" run openapi.json --url "$base" \
      -H "Authorization: Bearer $token" \
      --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance \
      --mode all --phases examples,coverage,fuzzing \
      --max-examples "$max_examples" --max-time "$max_time" --request-timeout 30 \
      --seed 1 --no-color "$@") >"$dir/$who.log" 2>&1; then
    status=1
    cat "$dir/$who.log"
  fi
  # The summary line, e.g. "===== 57 passed in 41.2s =====".
  grep -E '^=+ .* =+$' "$dir/$who.log" | tail -n 1 || tail -n 3 "$dir/$who.log"
}
# Logging out would end nothing here (bearer tokens), but keep the runs independent of it.
run administrator "$admin_token" --exclude-path-regex '^/api/v1/worker/'
run reader "$reader_token" --exclude-path-regex '^/api/v1/worker/'
run worker "$worker_token" --include-path-regex '^/api/v1/worker/'
if [ $status -ne 0 ]; then
  echo "schemathesis found problems (logs in $dir)" >&2
  tail -n 20 "$dir/server.log" >&2
fi
exit $status
