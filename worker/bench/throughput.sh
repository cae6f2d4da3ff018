#!/usr/bin/env bash
# iperf3 TCP through one WireGuard tunnel between two network namespaces this script creates
# (root only), in three pairings: worker<->worker, worker<->wireguard-go, wireguard-go<->wireguard-go;
# and through one IPsec (IKEv2, ESP in UDP) tunnel: worker<->worker, worker<->strongSwan,
# strongSwan<->strongSwan (5.9.8, userspace ESP: the baseline of issue 17); then the ceiling: raw ChaCha20-Poly1305 (ring) on 1420-byte packets, one core
# (worker/benches/chacha.rs). Prints the machine load (uptime) before and after: the numbers only
# compare within one run. All traffic stays on the namespaces' own veth pair (10.250.0.0/30) and
# tunnel addresses.
#
#   sudo worker/bench/throughput.sh [seconds]      (default 10 s per pairing)
#   sudo ROUNDS=3 worker/bench/throughput.sh 5     (3 interleaved rounds, then the medians)
#   sudo BEFORE_BIN=/path/to/old/isthmus-worker ROUNDS=3 worker/bench/throughput.sh 5
#                                                  (A/B: this build and another, worker <-> worker)
#
# Builds the worker and the ChaCha bench in release mode (CARGO_TARGET_DIR, default the
# workspace's target/); WORKER_BIN points at a prebuilt worker instead. Needs ip, wg,
# wireguard-go, iperf3, cargo.
set -euo pipefail
SECS="${1:-10}"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
: "${CARGO_TARGET_DIR:=$ROOT/target}"
if [[ -z "${WORKER_BIN:-}" ]]; then
  (cd "$ROOT" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR" cargo build --release -q -p isthmus-worker)
  WORKER_BIN="$CARGO_TARGET_DIR/release/isthmus-worker"
fi
(cd "$ROOT" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR" cargo bench -q -p isthmus-worker --bench chacha --no-run)
for c in ip wg wireguard-go iperf3; do
  command -v "$c" >/dev/null || { echo "missing $c (apt-get install wireguard-go wireguard-tools iperf3)"; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "run as root (network namespaces)"; exit 1; }

# IPsec pairings (issue 17): ipsec = the worker with an IPsec connection, swan = strongSwan 5.9.8
# with userspace ESP (worker/bench/ipsec_lab.sh); one proposal for all of them.
: "${IPSEC_PROPOSAL:=aes256gcm16-prfsha256-curve25519}" "${IPSEC_ESP:=aes256gcm16}"
# shellcheck source=ipsec_lab.sh
source "$HERE/ipsec_lab.sh"

ID="b$$"
A="isw-bench-a-$ID"; B="isw-bench-b-$ID"
TMP="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${SWAN_PIDS[@]:-}"; do [[ -n "$p" ]] && kill -9 "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  rm -f /var/run/wireguard/wa"$ID".sock /var/run/wireguard/wb"$ID".sock
  rm -rf "$TMP"
}
trap cleanup EXIT

SWAN_PIDS=()
setup_ns() {
  for p in "${SWAN_PIDS[@]:-}"; do [[ -n "$p" ]] && kill -9 "$p" 2>/dev/null || true; done
  SWAN_PIDS=()
  for p in "${PIDS[@]:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=(); TUNNEL_PIDS=()
  ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true
  rm -f /var/run/wireguard/wa"$ID".sock /var/run/wireguard/wb"$ID".sock
  ip netns add "$A"; ip netns add "$B"
  ip -n "$A" link set lo up; ip -n "$B" link set lo up
  ip link add va"$ID" netns "$A" type veth peer name vb"$ID" netns "$B"
  ip -n "$A" addr add 10.250.0.1/30 dev va"$ID"; ip -n "$B" addr add 10.250.0.2/30 dev vb"$ID"
  ip -n "$A" link set va"$ID" up; ip -n "$B" link set vb"$ID" up
}

KA=$(wg genkey); PA=$(echo "$KA" | wg pubkey)
KB=$(wg genkey); PB=$(echo "$KB" | wg pubkey)
PSK=$(wg genpsk)
echo "$KA" >"$TMP/a.key"; echo "$KB" >"$TMP/b.key"; echo "$PSK" >"$TMP/psk"

# desired <name> <private> <peer public> <peer endpoint> <own /24> <peer /24>
desired() {
  local q='{"tenant":"t","name":"'
  cat <<JSON
{"format":"isthmus.desired/v1","version":1,"gateways":[{"tenant":"t","name":"$1","gateway_type":"RouteBased",
 "private_key":"$2","listen_port":51820,"bandwidth_limit_bps":0,
 "peers":[{"name":"c","kind":{"type":"VnetToVnet","connection":${q}c"},"remote_gateway":${q}other"}},
   "public_key":"$3","preshared_key":"$PSK","endpoint":"$4","allowed_ips":["$6"],"persistent_keepalive_secs":25}],
 "routes":[{"prefix":"$5","next_hop":{"type":"Vnet","vnet":${q}v"}},"origin":{"type":"Default"},"transit_hops":0,"active":true},
   {"prefix":"$6","next_hop":{"type":"VnetToVnet","connection":${q}c"},"remote_gateway":${q}other"}},"origin":{"type":"Default"},"transit_hops":0,"active":true}]}]}
JSON
}

# desired_ipsec <name> <mode> <peer endpoint> <own ip> <peer ip> <own /24> <peer /24>: a gateway
# with one IPsec site-to-site connection (issue 17), $IPSEC_PROPOSAL / $IPSEC_ESP.
desired_ipsec() {
  local q='{"tenant":"t","name":"' c cipher prf dh
  IFS=- read -r cipher prf dh <<<"$IPSEC_PROPOSAL"
  c=${q}c'"},"site":'${q}s'"}'
  cat <<JSON
{"format":"isthmus.desired/v1","version":1,"gateways":[{"tenant":"t","name":"$1","gateway_type":"RouteBased",
 "private_key":"$KA","listen_port":51820,"bandwidth_limit_bps":0,
 "peers":[{"name":"c","kind":{"type":"SiteToSite","connection":$c},
   "public_key":"","endpoint":"$3","allowed_ips":["$7"],
   "ipsec":{"psk":"ipsec bench lab key","local_id":"$4","remote_id":"$5","parameters":{
     "ike_proposals":[{"cipher":"$cipher","prf":"$prf","dh_group":"$dh"}],"esp_ciphers":["$IPSEC_ESP"],
     "ike_lifetime_secs":28800,"child_lifetime_secs":3600,"dpd_interval_secs":30,"mode":"$2"}}}],
 "routes":[{"prefix":"$6","next_hop":{"type":"Vnet","vnet":${q}v"}},"origin":{"type":"Default"},"transit_hops":0,"active":true},
   {"prefix":"$7","next_hop":{"type":"SiteToSite","connection":$c},"origin":{"type":"Default"},"transit_hops":0,"active":true}]}]}
JSON
}

# side <ns> <kind worker|wg|ipsec|swan> <tag a|b> <own key> <peer pub> <peer endpoint> <own net> <own addr> <peer net>
side() {
  local ns=$1 kind=$2 tag=$3 key=$4 peer=$5 ep=$6 net=$7 addr=$8 pnet=$9
  if [[ $kind == swan ]]; then
    # strongSwan 5.9.8 with userspace ESP (libipsec); its protected host on lo; it answers.
    local own=${ep%:*} me
    me=$([[ $tag == a ]] && echo 10.250.0.1 || echo 10.250.0.2)
    ip -n "$ns" addr add "${addr%/*}/32" dev lo
    rm -rf "$TMP/swan-$tag"
    IPSEC_LAB_CONN_EXTRA="remote_port = 51820
    local_port = 4500" ipsec_lab_site "$TMP/swan-$tag" "$ns" "$me" "$own" "$net" "$pnet" \
      "$IPSEC_PROPOSAL" "$IPSEC_ESP" none
    # charon-systemd outside systemd may linger on SIGTERM: it gets SIGKILL (SWAN_PIDS).
    TUNNEL_PIDS+=("$(cat "$TMP/swan-$tag/pid")"); SWAN_PIDS+=("$(cat "$TMP/swan-$tag/pid")")
    return
  fi
  if [[ $kind == worker || $kind == ipsec ]]; then
    if [[ $kind == ipsec ]]; then
      # a initiates, b answers; the peer's IKE port: 500 for strongSwan, the gateway port else.
      local mode=ResponderOnly peer_ep=$ep me=10.250.0.2 other=10.250.0.1
      [[ $tag == a ]] && { mode=InitiatorOnly; me=10.250.0.1; other=10.250.0.2; }
      [[ ${PEER_KIND:-} == swan ]] && peer_ep="${ep%:*}:500"
      desired_ipsec "g$tag" "$mode" "$peer_ep" "$me" "$other" "$net" "$pnet" >"$TMP/$tag.json"
    else
      desired "g$tag" "$key" "$peer" "$ep" "$net" "$pnet" >"$TMP/$tag.json"
    fi
    ip netns exec "$ns" "$WORKER_BIN" --desired-state "$TMP/$tag.json" --tun-name t"$tag$ID" \
      --tun-address "$addr" ${WORKER_ARGS:-} >"$TMP/worker-$tag.log" 2>&1 &
    PIDS+=($!); TUNNEL_PIDS+=($!)
    for _ in $(seq 100); do ip -n "$ns" link show t"$tag$ID" >/dev/null 2>&1 && break; sleep 0.1; done
    ip -n "$ns" link set t"$tag$ID" up
    # The worker routes its tunnels' prefixes onto its TUN itself; a build from before it did
    # (BEFORE_BIN) gets the route from here.
    for _ in $(seq 20); do [[ -n $(ip -n "$ns" route show "$pnet" dev t"$tag$ID" 2>/dev/null) ]] && break; sleep 0.1; done
    [[ -n $(ip -n "$ns" route show "$pnet" dev t"$tag$ID") ]] || ip -n "$ns" route add "$pnet" dev t"$tag$ID"
  else
    ip netns exec "$ns" env LOG_LEVEL=error wireguard-go -f w"$tag$ID" >"$TMP/wg-$tag.log" 2>&1 &
    PIDS+=($!); TUNNEL_PIDS+=($!)
    for _ in $(seq 100); do ip netns exec "$ns" wg show w"$tag$ID" >/dev/null 2>&1 && break; sleep 0.1; done
    ip netns exec "$ns" wg set w"$tag$ID" private-key "$TMP/$tag.key" listen-port 51820 peer "$peer" \
      preshared-key "$TMP/psk" endpoint "$ep" allowed-ips "$pnet" persistent-keepalive 25
    ip -n "$ns" addr add "$addr" dev w"$tag$ID"
    ip -n "$ns" link set w"$tag$ID" mtu 1420 up
    ip -n "$ns" route add "$pnet" dev w"$tag$ID"
  fi
}

# pair <kind a> <kind b> [label]: one iperf3 run; the result is recorded under the label
# (default "a-b").
pair() {
  local ka=$1 kb=$2 label=${3:-$1-$2}
  setup_ns
  PEER_KIND=$kb side "$A" "$ka" a "$KA" "$PB" 10.250.0.2:51820 10.201.1.0/24 10.201.1.1/24 10.201.2.0/24
  PEER_KIND=$ka side "$B" "$kb" b "$KB" "$PA" 10.250.0.1:51820 10.201.2.0/24 10.201.2.1/24 10.201.1.0/24
  ip netns exec "$B" iperf3 -s -1 -B 10.201.2.1 >/dev/null 2>&1 &
  PIDS+=($!)
  sleep 0.5
  local ok=0
  for _ in $(seq 20); do ip netns exec "$A" ping -c1 -W1 -I 10.201.1.1 10.201.2.1 >/dev/null 2>&1 && { ok=1; break; }; done
  if [[ $ok != 1 ]]; then echo "$ka <-> $kb: tunnel did not come up"; cat "$TMP"/*.log; return; fi
  # CPU time of the two tunnel processes (user + system, clock ticks) around the transfer: what
  # the data plane costs per byte, which the machine's load changes far less than the rate.
  local c0 c1 out bps bytes
  c0=$(tunnel_cpu)
  out=$(ip netns exec "$A" iperf3 -c 10.201.2.1 -B 10.201.1.1 -t "$SECS" -J)
  c1=$(tunnel_cpu)
  read -r bps bytes < <(python3 -c 'import json,sys; e=json.load(sys.stdin)["end"]["sum_received"]; print(e["bits_per_second"], e["bytes"])' <<<"$out")
  local mbps cpu
  mbps=$(printf '%.0f' "$(echo "$bps / 1000000" | bc -l)")
  cpu=$(printf '%.0f' "$(echo "($c1 - $c0) * 1000 / $(getconf CLK_TCK) / ($bytes / 1073741824)" | bc -l)")
  printf '%-28s %8s Mbit/s %6s CPU ms/GiB\n' "${label/-/ <-> }" "$mbps" "$cpu"
  echo "$mbps" >>"$TMP/result-$label"
  echo "$cpu" >>"$TMP/cpu-$label"
}

# User + system clock ticks of the tunnel processes (workers or wireguard-go) started by side().
tunnel_cpu() {
  local t=0 p
  for p in "${TUNNEL_PIDS[@]}"; do
    [[ -r /proc/$p/stat ]] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}

median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

echo "iperf3 TCP, ${SECS}s, one tunnel, $(nproc) cores"
echo "load before: $(uptime)"
ROUNDS="${ROUNDS:-1}"
# BEFORE_BIN=path: A/B against another build of the worker (e.g. the commit before a change),
# worker <-> worker only, both builds interleaved in every round.
pairings=(${PAIRINGS:-worker-worker worker-wg wg-wg ipsec-ipsec ipsec-swan swan-swan})
# Odd rounds run this build first, even rounds the other one, so neither always goes first.
[[ -n "${BEFORE_BIN:-}" ]] && pairings=(worker-worker before-before wg-wg)
AFTER_BIN="$WORKER_BIN"
for r in $(seq "$ROUNDS"); do
  [[ $ROUNDS == 1 ]] || echo "round $r"
  order=("${pairings[@]}")
  [[ -n "${BEFORE_BIN:-}" && $((r % 2)) == 0 ]] && order=(before-before worker-worker wg-wg)
  for p in "${order[@]}"; do
    if [[ $p == swan-swan ]]; then
      # The baseline of issue 17: strongSwan <-> strongSwan, both libipsec.
      if out=$(ipsec_strongswan_pair "$SECS" "$IPSEC_PROPOSAL" "$IPSEC_ESP"); then
        mbps=$(grep -Eo '[0-9]+ Mbit/s' <<<"$out" | tail -1 | cut -d' ' -f1)
        printf '%-28s %8s Mbit/s\n' "swan <-> swan" "$mbps"
        echo "$mbps" >>"$TMP/result-swan-swan"
      else
        echo "$out"
      fi
    elif [[ $p == before-before ]]; then
      WORKER_BIN="$BEFORE_BIN"; pair worker worker before-before; WORKER_BIN="$AFTER_BIN"
    else
      pair "${p%-*}" "${p#*-}"
    fi
  done
done
if [[ $ROUNDS != 1 || -n "${BEFORE_BIN:-}" ]]; then
  echo "medians of $ROUNDS rounds${BEFORE_BIN:+ (before-before: $BEFORE_BIN)}"
  for p in worker-worker before-before worker-wg wg-wg ipsec-ipsec ipsec-swan swan-swan; do
    [[ -f "$TMP/result-$p" ]] && printf '%-28s %8s Mbit/s %6s CPU ms/GiB\n' "${p/-/ <-> }" "$(median "$TMP/result-$p")" "$( [[ -f "$TMP/cpu-$p" ]] && median "$TMP/cpu-$p")"
  done
fi
(cd "$ROOT" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR" cargo bench -q -p isthmus-worker --bench chacha -- "$SECS" 2>/dev/null | grep chacha)
echo "load after:  $(uptime)"
