#!/usr/bin/env python3
"""Floods one UDP port with WireGuard-shaped datagrams, as fast as one process can, for a
bounded time and count; prints what it sent as JSON.

    flood.py HOST PORT MODE SECONDS MAX_COUNT [GATEWAY_PUBLIC_KEY_BASE64]

GSO=1 in the environment sends 64 datagrams per system call (UDP GSO, Linux): several times
the rate, and on a veth pair the datagrams reach the gateway's socket in GRO batches, cheaper
per datagram than floods from the Internet (one datagram per packet) are.

MODE init: handshake initiations (148 bytes) with a valid MAC1 for the gateway's public key
(what anyone holding a device configuration can send; the rest is random, so no valid MAC2,
and the static key decrypts to nothing). MODE garbage: random bytes of random lengths that
are no WireGuard message. Only for namespaces the benchmark creates (worker/bench/flood.sh).
"""

import base64
import hashlib
import json
import os
import socket
import sys
import time


def mac1_key(public: bytes) -> bytes:
    # WireGuard: mac1 = MAC(HASH(LABEL_MAC1 || Spub_responder), msg[0:116]); MAC is keyed
    # BLAKE2s-128, HASH unkeyed BLAKE2s-256 (hashlib's implementations).
    return hashlib.blake2s(b"mac1----" + public).digest()


def initiation(key: bytes) -> bytes:
    msg = bytearray(os.urandom(116))
    msg[0:4] = b"\x01\x00\x00\x00"
    mac1 = hashlib.blake2s(bytes(msg), key=key, digest_size=16).digest()
    return bytes(msg) + mac1 + bytes(16)


def garbage() -> bytes:
    n = 1 + os.urandom(1)[0] * 5 % 1400
    d = bytearray(os.urandom(n))
    d[0] = 0xF0 | (d[0] & 0x0F)  # never types 1-4
    return bytes(d)


def main() -> None:
    host, port, mode, secs, max_count = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
    if mode == "init":
        key = mac1_key(base64.b64decode(sys.argv[6]))
        pool = [initiation(key) for _ in range(256)]
    elif mode == "garbage":
        pool = [garbage() for _ in range(256)]
    else:
        raise SystemExit(f"unknown mode {mode}")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.connect((host, port))
    send = s.send
    if os.environ.get("GSO") == "1":
        # Same-size datagrams only: GSO segments one buffer into datagrams of one size.
        size = len(pool[0])
        pool = [d[:size].ljust(size, b"\xf0") for d in pool]
        s.setsockopt(socket.IPPROTO_UDP, 103, size)  # UDP_SEGMENT
        per_call = max(1, min(64, 65_000 // size))
        batches = [b"".join(pool[i:i + per_call]) for i in range(0, len(pool), per_call)]
    else:
        per_call = 1
        batches = pool
    sent = errors = 0
    start = time.monotonic()
    deadline = start + min(secs, 60.0)
    max_count = min(max_count, 100_000_000)
    while sent < max_count:
        for d in batches:
            try:
                send(d)
                sent += per_call
            except OSError:
                errors += 1
        if time.monotonic() >= deadline:
            break
    elapsed = time.monotonic() - start
    print(json.dumps({"mode": mode, "sent": sent, "errors": errors, "seconds": round(elapsed, 3),
                      "rate": round(sent / elapsed)}))


if __name__ == "__main__":
    main()
