#!/usr/bin/env bash
# The IPsec baseline of issue 17: iperf3, one TCP stream, through an IKEv2/ESP tunnel between two
# strongSwan 5.9.8 sites (charon-systemd with userspace ESP, kernel-libipsec: ESP-in-UDP on 4500)
# in two network namespaces this script creates (root only). The protected hosts are addresses on
# each namespace's lo (10.250.1.1 and 10.250.2.1); all traffic stays on the namespaces' own veth
# pair (10.250.0.0/30). Prints Mbit/s. Needs a quiet machine for a number worth comparing.
#
#   sudo worker/bench/ipsec_lab.sh [seconds] [proposal] [esp proposal]
#        (default 10 s, aes256gcm16-prfsha256-curve25519, aes256gcm16)
#   source worker/bench/ipsec_lab.sh; ipsec_strongswan_pair 10     (from another bench script:
#        prints "strongswan<->strongswan ... Mbit/s"; sets IPSEC_MBPS)
#
# Needs ip, charon-systemd, swanctl, iperf3 (scripts/setup.sh test installs them).

# openssl first: strongSwan uses the first plugin that offers an algorithm, and the gcm
# plugin's software AES-GCM is 7 times slower (60 against 431 Mbit/s measured here).
ipsec_lab_plugins="random nonce openssl aes sha1 sha2 hmac gcm kdf pem pkcs1 pubkey gmp kernel-libipsec kernel-netlink socket-default vici updown"

# ipsec_lab_site DIR NS LOCAL REMOTE LOCAL_NET REMOTE_NET PROPOSAL ESP START_ACTION
# (IPSEC_LAB_CONN_EXTRA: more lines for the connection, e.g. "remote_port = 51820")
ipsec_lab_site() {
  local dir=$1 ns=$2 local=$3 remote=$4 lnet=$5 rnet=$6 prop=$7 esp=$8 start=$9
  mkdir -p "$dir"
  cat >"$dir/strongswan.conf" <<EOF
charon-systemd {
  load_modular = no
  load = $ipsec_lab_plugins
  filelog {
    lab {
      path = $dir/charon.log
      default = 1
      flush_line = yes
    }
  }
  journal {
    default = -1
  }
  plugins {
    vici {
      socket = unix://$dir/charon.vici
    }
  }
}
swanctl {
  load = pem pkcs1 pubkey openssl random
  socket = unix://$dir/charon.vici
}
EOF
  cat >"$dir/swanctl.conf" <<EOF
connections {
  lab {
    version = 2
    local_addrs = $local
    remote_addrs = $remote
    mobike = no
    encap = yes${IPSEC_LAB_CONN_EXTRA:+
    $IPSEC_LAB_CONN_EXTRA}
    proposals = $prop
    local {
      auth = psk
      id = $local
    }
    remote {
      auth = psk
      id = $remote
    }
    children {
      net {
        local_ts = $lnet
        remote_ts = $rnet
        esp_proposals = $esp
        start_action = $start
      }
    }
  }
}
secrets {
  ike-lab {
    id-1 = $local
    id-2 = $remote
    secret = "ipsec bench lab key"
  }
}
EOF
  # A socket left by an earlier charon in this directory would look like this one's.
  rm -f "$dir/charon.vici"
  STRONGSWAN_CONF="$dir/strongswan.conf" ip netns exec "$ns" charon-systemd >"$dir/charon.out" 2>&1 &
  echo $! >"$dir/pid"
  local i
  for i in $(seq 100); do
    [[ -S "$dir/charon.vici" ]] && break
    sleep 0.1
  done
  STRONGSWAN_CONF="$dir/strongswan.conf" swanctl --load-all --file "$dir/swanctl.conf" \
    --uri "unix://$dir/charon.vici" >/dev/null 2>&1
}

# Stops the lab's charons and removes its namespaces and files (idempotent).
ipsec_lab_cleanup() {
  local s n
  if [[ -n "${IPSEC_LAB_TMP:-}" ]]; then
    for s in a b; do
      [[ -f "$IPSEC_LAB_TMP/$s/pid" ]] && kill -9 "$(cat "$IPSEC_LAB_TMP/$s/pid")" 2>/dev/null || true
    done
    sleep 0.5
  fi
  for n in ${IPSEC_LAB_NS:-}; do ip netns del "$n" 2>/dev/null || true; done
  [[ -n "${IPSEC_LAB_TMP:-}" ]] && rm -rf "$IPSEC_LAB_TMP"
  IPSEC_LAB_TMP=""; IPSEC_LAB_NS=""
}

# ipsec_strongswan_pair [SECS] [PROPOSAL] [ESP]: prints and sets IPSEC_MBPS.
ipsec_strongswan_pair() {
  local secs=${1:-10} prop=${2:-aes256gcm16-prfsha256-curve25519} esp=${3:-aes256gcm16}
  local c
  for c in ip charon-systemd swanctl iperf3; do
    command -v "$c" >/dev/null || { echo "missing $c (bash scripts/setup.sh test)"; return 1; }
  done
  [[ $(id -u) == 0 ]] || { echo "run as root (network namespaces)"; return 1; }
  local id="i$$" tmp
  local a="isw-ipsec-a-$id" b="isw-ipsec-b-$id"
  tmp=$(mktemp -d)
  IPSEC_LAB_TMP=$tmp; IPSEC_LAB_NS="$a $b"
  ip netns add "$a"; ip netns add "$b"
  ip -n "$a" link set lo up; ip -n "$b" link set lo up
  ip link add sa"$id" netns "$a" type veth peer name sb"$id" netns "$b"
  ip -n "$a" addr add 10.250.0.1/30 dev sa"$id"; ip -n "$b" addr add 10.250.0.2/30 dev sb"$id"
  ip -n "$a" link set sa"$id" up; ip -n "$b" link set sb"$id" up
  ip -n "$a" addr add 10.250.1.1/32 dev lo; ip -n "$b" addr add 10.250.2.1/32 dev lo
  ipsec_lab_site "$tmp/a" "$a" 10.250.0.1 10.250.0.2 10.250.1.0/24 10.250.2.0/24 "$prop" "$esp" none
  ipsec_lab_site "$tmp/b" "$b" 10.250.0.2 10.250.0.1 10.250.2.0/24 10.250.1.0/24 "$prop" "$esp" none
  local ok=0
  if STRONGSWAN_CONF="$tmp/a/strongswan.conf" swanctl --initiate --child net --timeout 10 \
      --uri "unix://$tmp/a/charon.vici" >"$tmp/initiate.log" 2>&1; then
    ip netns exec "$b" iperf3 -s -1 -B 10.250.2.1 >/dev/null 2>&1 &
    local srv=$!
    sleep 0.5
    if ip netns exec "$a" iperf3 -c 10.250.2.1 -B 10.250.1.1 -t "$secs" -J >"$tmp/iperf.json" 2>&1; then
      IPSEC_MBPS=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.0f" % (d["end"]["sum_received"]["bits_per_second"]/1e6))' "$tmp/iperf.json")
      echo "strongswan<->strongswan IPsec ($prop, ESP $esp, libipsec, ${secs}s): $IPSEC_MBPS Mbit/s"
      ok=1
    fi
    kill "$srv" 2>/dev/null || true
    wait "$srv" 2>/dev/null || true
  fi
  [[ $ok == 1 ]] || { echo "the IPsec baseline failed:"; cat "$tmp/initiate.log" "$tmp/a/charon.log" 2>/dev/null | tail -30; }
  ipsec_lab_cleanup
  [[ $ok == 1 ]]
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  trap ipsec_lab_cleanup EXIT
  ipsec_strongswan_pair "${1:-10}" "${2:-aes256gcm16-prfsha256-curve25519}" "${3:-aes256gcm16}"
fi
