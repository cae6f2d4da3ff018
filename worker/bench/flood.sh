#!/usr/bin/env bash
# Floods at one gateway's port (issue #16, "Bad input"): while a real site (wireguard-go) pings
# through the gateway at 5 Hz and runs an iperf3 TCP stream, a sender in its own namespace
# floods the gateway's UDP port for SECONDS with (a) handshake initiations with a valid MAC1
# (what anyone holding a device configuration can send) and (b) garbage, as fast as one Python
# process goes (worker/bench/flood.py, bounded in time and count; then again with UDP GSO, 64
# datagrams per system call). Prints, per phase: the
# sender's rate, the rate the worker absorbed (datagrams it counted), the worker's counters,
# the kernel's receive-buffer drops, pings answered and TCP throughput; the first phase runs
# without a flood. Root only; all traffic stays in three namespaces this script creates
# (gateway, site, flooder; no default routes) on 10.250.0.0/30, 10.250.1.0/30 and the tunnel's
# 10.201.1.0/24 (VNet side, the worker's TUN) and 10.201.2.0/24 (the site).
#
#   sudo worker/bench/flood.sh [seconds]      (default 10 s per phase)
#
# Builds the worker in release mode (the workspace's target/); WORKER_BIN points at a
# prebuilt worker instead. Needs ip, wg, wireguard-go, iperf3, ping, python3, cargo.
set -euo pipefail
SECS="${1:-10}"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
: "${CARGO_TARGET_DIR:=$ROOT/target}"
MAX_COUNT="${MAX_COUNT:-20000000}"
if [[ -z "${WORKER_BIN:-}" ]]; then
  (cd "$ROOT" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR" cargo build --release -q -p isthmus-worker)
  WORKER_BIN="$CARGO_TARGET_DIR/release/isthmus-worker"
fi
for c in ip wg wireguard-go iperf3 ping python3; do
  command -v "$c" >/dev/null || { echo "missing $c (apt-get install wireguard-go wireguard-tools iperf3)"; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "run as root (network namespaces)"; exit 1; }

ID="f$$"
G="isw-flood-g-$ID"; S="isw-flood-s-$ID"; F="isw-flood-f-$ID"
TMP="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for n in "$G" "$S" "$F"; do ip netns del "$n" 2>/dev/null || true; done
  rm -f /var/run/wireguard/ws"$ID".sock
  rm -rf "$TMP"
}
trap cleanup EXIT

for n in "$G" "$S" "$F"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add vgs"$ID" netns "$G" type veth peer name vsg"$ID" netns "$S"
ip link add vgf"$ID" netns "$G" type veth peer name vfg"$ID" netns "$F"
ip -n "$G" addr add 10.250.0.1/30 dev vgs"$ID"; ip -n "$S" addr add 10.250.0.2/30 dev vsg"$ID"
ip -n "$G" addr add 10.250.1.1/30 dev vgf"$ID"; ip -n "$F" addr add 10.250.1.2/30 dev vfg"$ID"
ip -n "$G" link set vgs"$ID" up; ip -n "$S" link set vsg"$ID" up
ip -n "$G" link set vgf"$ID" up; ip -n "$F" link set vfg"$ID" up

KG=$(wg genkey); PG=$(echo "$KG" | wg pubkey)
KS=$(wg genkey); PS=$(echo "$KS" | wg pubkey)
PSK=$(wg genpsk)
echo "$KS" >"$TMP/s.key"; echo "$PSK" >"$TMP/psk"
q='{"tenant":"t","name":"'
cat >"$TMP/g.json" <<JSON
{"format":"isthmus.desired/v1","version":1,"gateways":[{"tenant":"t","name":"gw","gateway_type":"RouteBased",
 "private_key":"$KG","listen_port":51820,"bandwidth_limit_bps":0,
 "peers":[{"name":"c","kind":{"type":"VnetToVnet","connection":${q}c"},"remote_gateway":${q}other"}},
   "public_key":"$PS","preshared_key":"$PSK","endpoint":"10.250.0.2:51820","allowed_ips":["10.201.2.0/24"],"persistent_keepalive_secs":25}],
 "routes":[{"prefix":"10.201.1.0/24","next_hop":{"type":"Vnet","vnet":${q}v"}},"origin":{"type":"Default"},"transit_hops":0,"active":true},
   {"prefix":"10.201.2.0/24","next_hop":{"type":"VnetToVnet","connection":${q}c"},"remote_gateway":${q}other"}},"origin":{"type":"Default"},"transit_hops":0,"active":true}]}]}
JSON
ip netns exec "$G" "$WORKER_BIN" --desired-state "$TMP/g.json" --tun-name tg"$ID" \
  --tun-address 10.201.1.1/24 --status-file "$TMP/status.json" --status-interval 1 \
  >"$TMP/worker.log" 2>&1 &
WPID=$!; PIDS+=($WPID)
for _ in $(seq 100); do ip -n "$G" link show tg"$ID" >/dev/null 2>&1 && break; sleep 0.1; done
ip -n "$G" link set tg"$ID" up
ip netns exec "$S" env LOG_LEVEL=error wireguard-go -f ws"$ID" >"$TMP/wg.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do ip netns exec "$S" wg show ws"$ID" >/dev/null 2>&1 && break; sleep 0.1; done
ip netns exec "$S" wg set ws"$ID" private-key "$TMP/s.key" listen-port 51820 peer "$PG" \
  preshared-key "$TMP/psk" endpoint 10.250.0.1:51820 allowed-ips 10.201.1.0/24 persistent-keepalive 25
ip -n "$S" addr add 10.201.2.1/24 dev ws"$ID"
ip -n "$S" link set ws"$ID" mtu 1420 up
ip -n "$S" route add 10.201.1.0/24 dev ws"$ID" 2>/dev/null || true
ok=0
for _ in $(seq 30); do ip netns exec "$S" ping -c1 -W1 -I 10.201.2.1 10.201.1.1 >/dev/null 2>&1 && { ok=1; break; }; done
[[ $ok == 1 ]] || { echo "tunnel did not come up"; cat "$TMP"/*.log; exit 1; }

# The gateway's counters from the status file (written every second), and the kernel's UDP
# receive-buffer drops in the gateway's namespace.
counters() {
  sleep 1.5
  python3 - "$TMP/status.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["gateways"][0]["drops"]
print(" ".join(str(d.get(k, 0)) for k in ("cookie_replies", "handshakes_shed", "garbage", "invalid", "unknown_peer", "queue_overflows")))
PY
}
rcvbuf_errors() { ip netns exec "$G" awk '/^Udp:/ {n++; if (n == 2) print $6}' /proc/net/snmp; }
# The host's per-CPU input backlog drops (netdev_max_backlog; veth packets queue there before
# any socket, for every namespace): a flood's loss the worker cannot steer.
backlog_drops() { python3 -c 'print(sum(int(l.split()[1], 16) for l in open("/proc/net/softnet_stat")))'; }
# Drops so far of each socket of the gateway's port (51820 = 0xCA6C): with the handshake queue
# (io.rs) the first socket is the data socket, the second the handshakes'.
socket_drops() { ip netns exec "$G" awk '$2 ~ /:CA6C$/ {printf "%s ", $NF}' /proc/net/udp; }

# phase <label> <mode|none> [gso 0|1]
phase() {
  local label=$1 mode=$2 gso=${3:-0}
  local c0 k0 c1 k1 b0 b1 fpid=""
  # The previous flood's backlog in the untrusted queue drains first.
  sleep 3
  read -r -a c0 < <(counters); k0=$(rcvbuf_errors); b0=$(backlog_drops)
  ip netns exec "$G" iperf3 -s -1 -B 10.201.1.1 >/dev/null 2>&1 &
  PIDS+=($!)
  sleep 0.3
  if [[ $mode != none ]]; then
    ip netns exec "$F" env GSO="$gso" python3 "$HERE/flood.py" 10.250.1.1 51820 "$mode" "$SECS" "$MAX_COUNT" "$PG" >"$TMP/flood.json" &
    fpid=$!; PIDS+=($fpid)
    sleep 0.5
  fi
  ip netns exec "$S" ping -q -i 0.2 -c $((SECS * 5)) -W 1 -I 10.201.2.1 10.201.1.1 >"$TMP/ping.txt" 2>&1 &
  local ppid=$!; PIDS+=($ppid)
  local out
  out=$(ip netns exec "$S" iperf3 -c 10.201.1.1 -B 10.201.2.1 -t "$SECS" -J 2>/dev/null || echo '{}')
  wait "$ppid" || true
  [[ -n $fpid ]] && { wait "$fpid" || true; }
  read -r -a c1 < <(counters); k1=$(rcvbuf_errors); b1=$(backlog_drops)
  local mbps pings rate sent absorbed
  mbps=$(python3 -c 'import json,sys; e=json.load(sys.stdin).get("end",{}).get("sum_received",{}); print(round(e.get("bits_per_second",0)/1e6))' <<<"$out")
  pings=$(grep -o '[0-9]* received' "$TMP/ping.txt" | awk '{print $1}')
  if [[ $mode != none ]]; then
    read -r sent rate secs < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["sent"], d["rate"], d["seconds"])' "$TMP/flood.json")
    local counted=$(( (c1[0]-c0[0]) + (c1[1]-c0[1]) + (c1[2]-c0[2]) + (c1[3]-c0[3]) + (c1[4]-c0[4]) ))
    absorbed=$(python3 -c "print(round($counted / $secs))")
    printf '%-22s sent %9s at %7s/s; worker counted %9s (%7s/s): cookies %s shed %s garbage %s invalid %s unknown_peer %s; queue_overflows %s; kernel rcvbuf drops %s (per socket, cumulative: %s)\n' \
      "$label" "$sent" "$rate" "$counted" "$absorbed" $((c1[0]-c0[0])) $((c1[1]-c0[1])) $((c1[2]-c0[2])) $((c1[3]-c0[3])) $((c1[4]-c0[4])) $((c1[5]-c0[5])) $((k1-k0)) "$(socket_drops)"
  fi
  printf '%-22s pings %s/%s answered, iperf3 TCP %s Mbit/s; host backlog drops %s\n' "$label" "${pings:-0}" $((SECS * 5)) "$mbps" $((b1 - b0))
}

echo "floods at one gateway's port, ${SECS}s per phase, $(nproc) cores; load before: $(uptime)"
phase "no flood" none
phase "valid-MAC1 initiations" init
phase "garbage" garbage
phase "initiations, GSO" init 1
phase "garbage, GSO" garbage 1
phase "no flood (after)" none
echo "load after: $(uptime)"
