//! The core's per-packet cost, without sockets or a TUN device: one RouteBased gateway with one
//! site-to-site peer (a real boringtun tunnel, handshaken first), then
//! - VNet → site: 1420-byte TCP segments into [`Core::handle_tun`], encrypted datagrams drained;
//! - site → VNet: datagrams the site's tunnel encrypted beforehand into
//!   [`Core::handle_network`], the TUN writes drained (TUN offload on, as the worker runs, so
//!   consecutive segments are coalesced).
//!
//!   cargo bench -p isthmus-worker --bench core_path [-- PACKETS]
//!
//! Prints nanoseconds per packet and the equivalent rate of 1420-byte packets on one core.
//! `ISTHMUS_BENCH_MSS_CLAMP=false` runs the gateway with its MSS clamp off. For numbers that do
//! not depend on the machine's load, count instructions with callgrind at two packet counts and
//! divide the difference by the packet difference:
//!
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/deps/core_path-* 20000
//!
//! The desired state is written as JSON (what the server sends), so the same file builds
//! against older versions of the core. A benchmark, not a test.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use isthmus_shared::desired::DesiredStateMessage;
use isthmus_worker::core::Core;

const PORT: u16 = 51820;
const PACKET: usize = 1420;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The one's-complement sum of `data` folded into 16 bits (not inverted).
fn sum16(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

/// An IPv4 TCP segment (ACK, 20-byte headers) of `PACKET` bytes with valid checksums.
fn tcp_segment(src: [u8; 4], dst: [u8; 4], seq: u32) -> Vec<u8> {
    let mut p = vec![0u8; PACKET];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(PACKET as u16).to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    let c = !(sum16(0, &p[..20]) as u16);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let t = 20;
    p[t..t + 2].copy_from_slice(&40000u16.to_be_bytes());
    p[t + 2..t + 4].copy_from_slice(&5201u16.to_be_bytes());
    p[t + 4..t + 8].copy_from_slice(&seq.to_be_bytes());
    p[t + 8..t + 12].copy_from_slice(&1u32.to_be_bytes());
    p[t + 12] = 5 << 4;
    p[t + 13] = 0x10; // ACK
    p[t + 14..t + 16].copy_from_slice(&65535u16.to_be_bytes());
    for (i, b) in p[t + 20..].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let tcp_len = (PACKET - 20) as u32;
    let mut pseudo = sum16(0, &src);
    pseudo = sum16(pseudo, &dst);
    pseudo += 6 + tcp_len;
    let c = !(sum16(pseudo, &p[t..]) as u16);
    p[t + 16..t + 18].copy_from_slice(&c.to_be_bytes());
    p
}

fn desired_json(gw_private: &[u8; 32], site_public: &[u8; 32], clamp: Option<bool>) -> String {
    let q = |n: &str| format!(r#"{{"tenant":"t","name":"{n}"}}"#);
    let clamp = clamp.map_or(String::new(), |c| format!(r#""mss_clamp":{c},"#));
    format!(
        r#"{{"format":"isthmus.desired/v1","version":1,"gateways":[{{"tenant":"t","name":"gw",
 "gateway_type":"RouteBased","private_key":"{gk}","listen_port":{PORT},"bandwidth_limit_bps":0,{clamp}
 "peers":[{{"name":"c","kind":{{"type":"SiteToSite","connection":{c},"site":{s}}},
   "public_key":"{sk}","endpoint":"10.9.0.2:51900","allowed_ips":["10.2.0.0/16"],
   "persistent_keepalive_secs":25}}],
 "routes":[{{"prefix":"10.1.0.0/16","next_hop":{{"type":"Vnet","vnet":{v}}},"origin":{{"type":"Default"}},"transit_hops":0,"active":true}},
   {{"prefix":"10.2.0.0/16","next_hop":{{"type":"SiteToSite","connection":{c},"site":{s}}},"origin":{{"type":"Default"}},"transit_hops":0,"active":true}}]}}]}}"#,
        gk = b64(gw_private),
        sk = b64(site_public),
        c = q("c"),
        s = q("s"),
        v = q("v"),
    )
}

fn main() {
    let packets: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let clamp = std::env::var("ISTHMUS_BENCH_MSS_CLAMP")
        .ok()
        .map(|v| v != "false");
    let gw_private = [0x11u8; 32];
    let site_private = [0x22u8; 32];
    let gw_public = PublicKey::from(&StaticSecret::from(gw_private));
    let site_public = *PublicKey::from(&StaticSecret::from(site_private)).as_bytes();
    let DesiredStateMessage::V1(desired) =
        serde_json::from_str(&desired_json(&gw_private, &site_public, clamp)).expect("desired");
    let site_addr: SocketAddr = "10.9.0.2:51900".parse().expect("addr");

    let t0 = Instant::now();
    let mut core = Core::new();
    core.set_tun_offload(true);
    core.set_gso_max_bytes(65_000);
    let errors = core.apply(&desired, t0);
    assert!(errors.is_empty(), "{errors:?}");
    let mut site = Tunn::new(
        StaticSecret::from(site_private),
        gw_public,
        None,
        None,
        7,
        None,
    );
    let mut buf = vec![0u8; 65_536];
    // The gateway initiates (keepalive set); the site answers; the gateway confirms.
    let init = core.poll_transmit().expect("a handshake initiation");
    let TunnResult::WriteToNetwork(resp) = site.decapsulate(None, &init.payload, &mut buf) else {
        panic!("the site did not answer the handshake");
    };
    let resp = resp.to_vec();
    core.handle_network(PORT, site_addr, &resp, t0);
    while core.poll_transmit().is_some() {}
    // A first packet to the site confirms the session on the site's side.
    core.handle_tun(&tcp_segment([10, 1, 0, 5], [10, 2, 0, 5], 0), t0);
    while let Some(t) = core.poll_transmit() {
        for d in t.payload.chunks(t.segment_size.unwrap_or(t.payload.len())) {
            let _ = site.decapsulate(None, d, &mut buf);
        }
    }

    // VNet → site.
    let segs: Vec<Vec<u8>> = (0..64)
        .map(|i| tcp_segment([10, 1, 0, 5], [10, 2, 0, 5], i * (PACKET as u32 - 40)))
        .collect();
    let now = t0 + Duration::from_millis(1);
    let start = Instant::now();
    let mut bytes_out = 0usize;
    for i in 0..packets {
        core.handle_tun(&segs[i % segs.len()], now);
        if i % 64 == 63 {
            while let Some(t) = core.poll_transmit() {
                bytes_out += t.payload.len();
            }
        }
    }
    while let Some(t) = core.poll_transmit() {
        bytes_out += t.payload.len();
    }
    let to_site = start.elapsed();
    assert!(
        bytes_out >= packets * PACKET,
        "packets were dropped: {:?}",
        core.counters()
    );

    // Site → VNet: encrypted by the site beforehand, in consecutive TCP sequence.
    let datagrams: Vec<Vec<u8>> = (0..packets.min(50_000))
        .map(|i| {
            let seg = tcp_segment([10, 2, 0, 5], [10, 1, 0, 5], (i * (PACKET - 40)) as u32);
            match site.encapsulate(&seg, &mut buf) {
                TunnResult::WriteToNetwork(d) => d.to_vec(),
                _ => panic!("the site cannot encrypt"),
            }
        })
        .collect();
    let start = Instant::now();
    let mut written = 0usize;
    for (i, d) in datagrams.iter().enumerate() {
        core.handle_network(PORT, site_addr, d, now);
        if i % 64 == 63 {
            while let Some(p) = core.poll_tun() {
                written += p.len();
            }
        }
    }
    while let Some(p) = core.poll_tun() {
        written += p.len();
    }
    let from_site = start.elapsed();
    assert!(
        written >= datagrams.len() * (PACKET - 40),
        "packets were dropped: {:?}",
        core.counters()
    );

    let report = |what: &str, n: usize, d: Duration| {
        let ns = d.as_nanos() as f64 / n as f64;
        println!(
            "core {what:<14} {n:>7} packets  {ns:>7.0} ns/packet  {:>6.0} Mbit/s of {PACKET}-byte packets",
            PACKET as f64 * 8.0 / ns * 1000.0
        );
    };
    let label = match clamp {
        Some(false) => " (MSS clamp off)",
        _ => "",
    };
    println!("core_path{label}");
    report("VNet → site", packets, to_site);
    report("site → VNet", datagrams.len(), from_site);
}
