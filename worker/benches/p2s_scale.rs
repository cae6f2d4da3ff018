//! 10,000 point-to-site clients on one gateway: how long the core takes to apply that desired
//! state (first time, and again unchanged), the memory it costs per client (RSS of the real
//! worker binary with and without the clients, and RSS growth per connected client), and how
//! many handshakes per second the core answers.
//!
//!   cargo bench -p isthmus-worker --bench p2s_scale [-- CLIENTS]
//!
//! The desired state is computed by the product's own code (`isthmus_shared::desired`) from a
//! topology with one VNet, one VpnGw5 gateway (10,000 clients) and its point-to-site clients,
//! each with its own key and address. Handshakes come from real boringtun initiators (one per
//! client, up to 2,000) all at once, as after a gateway restart: the gateway answers 100 per
//! second, then sends cookie replies (WireGuard under load); each client then retries with its
//! cookie, and those are all answered. The handshake rate printed is the rate of those answers
//! (the CPU cost of a handshake response, one core); every answer is checked to be a handshake
//! response. A benchmark, not a test.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use base64::Engine as _;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use isthmus_shared::desired::{GatewayInputs, Secret, desired_state};
use isthmus_shared::model::{QualifiedName, Topology};
use isthmus_worker::core::Core;

const PORT: u16 = 51820;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The RSS of the real worker binary (`--desired-state`, no TUN, loopback only) once it has
/// applied `json`, and with the same gateway but no clients. The worker runs on a free loopback
/// port and is killed afterwards.
fn worker_rss(json: &str, port: u16) -> (u64, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let free = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let listen = format!("\"listen_port\":{port}");
    let json = json.replacen(&listen, &format!("\"listen_port\":{free}"), 1);
    let mut msg: serde_json::Value = serde_json::from_str(&json).expect("desired JSON");
    let full = dir.path().join("full.json");
    std::fs::write(&full, &json).expect("write");
    if let Some(p) = msg["gateways"][0]["peers"].as_array_mut() {
        p.clear();
    }
    if let Some(r) = msg["gateways"][0]["routes"].as_array_mut() {
        r.retain(|r| r["next_hop"]["type"] != "P2sClient");
    }
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, msg.to_string()).expect("write");
    let rss = |desired: &std::path::Path| -> u64 {
        let status = dir.path().join("status.json");
        let _ = std::fs::remove_file(&status);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_isthmus-worker"))
            .arg("--desired-state")
            .arg(desired)
            .args([
                "--no-tun",
                "--bind-address",
                "127.0.0.1",
                "--status-interval",
                "1",
            ])
            .arg("--status-file")
            .arg(&status)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("worker starts");
        let until = Instant::now() + std::time::Duration::from_secs(60);
        while !status.exists() && Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        let kib = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0);
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            status.exists(),
            "the worker did not apply {}",
            desired.display()
        );
        kib
    };
    (rss(&empty), rss(&full))
}

fn client_secret(i: u32) -> StaticSecret {
    // X25519 clamps the low 3 bits of byte 0 and the top bits of byte 31: keep the index clear.
    let mut k = [0x77u8; 32];
    k[1..5].copy_from_slice(&i.to_le_bytes());
    StaticSecret::from(k)
}

fn client_addr(i: u32) -> Ipv4Addr {
    // 172.16.0.0/16 pool; .0.0 and .0.1 left out.
    let n = i + 2;
    Ipv4Addr::new(172, 16, (n >> 8) as u8, (n & 0xff) as u8)
}

fn main() {
    let clients: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let gw_secret = StaticSecret::from([9u8; 32]);
    let gw_public = PublicKey::from(&gw_secret);

    let t0 = Instant::now();
    let client_list: Vec<serde_json::Value> = (0..clients)
        .map(|i| {
            serde_json::json!({
                "name": format!("client-{i}"),
                "public_key": b64(PublicKey::from(&client_secret(i)).as_bytes()),
                "address": client_addr(i).to_string(),
            })
        })
        .collect();
    let topology: Topology = serde_json::from_value(serde_json::json!({
        "tenants": [{"name": "acme"}],
        "vnets": [{"tenant": "acme", "name": "hub", "region": "westeurope",
                   "address_space": ["10.1.0.0/16"],
                   "subnets": [{"name": "default", "prefix": "10.1.0.0/24"},
                               {"name": "GatewaySubnet", "prefix": "10.1.255.0/27"}]}],
        "gateways": [{"tenant": "acme", "name": "hub-gw", "vnet": "hub",
                      "gateway_type": "RouteBased", "sku": "VpnGw5",
                      "public_key": b64(gw_public.as_bytes())}],
        "point_to_site": [{"tenant": "acme", "gateway": "hub-gw",
                           "address_pool": ["172.16.0.0/16"], "clients": client_list}],
    }))
    .expect("topology");
    let keys_s = t0.elapsed();

    let gw = QualifiedName::new("acme", "hub-gw");
    let inputs: BTreeMap<QualifiedName, GatewayInputs> = [(
        gw.clone(),
        GatewayInputs {
            private_key: Secret::new(b64(&gw_secret.to_bytes())),
            listen_port: PORT,
        },
    )]
    .into();
    let t1 = Instant::now();
    let (desired, skipped) = desired_state(&topology, 1, &inputs);
    let desired_s = t1.elapsed();
    assert!(
        skipped.is_empty(),
        "{} peers skipped, first: {:?}",
        skipped.len(),
        skipped.first()
    );
    let peers = desired.gateways.first().map_or(0, |g| g.peers.len());
    assert_eq!(peers, clients as usize, "every client is a peer");
    let json = serde_json::to_string(&isthmus_shared::desired::DesiredStateMessage::V1(
        desired.clone(),
    ))
    .expect("json");
    let t2 = Instant::now();
    let parsed: isthmus_shared::desired::DesiredStateMessage =
        serde_json::from_str(&json).expect("parse");
    let parse_s = t2.elapsed();
    drop(parsed);

    let mut core = Core::new();
    let now = Instant::now();
    let t3 = Instant::now();
    let errors = core.apply(&desired, now);
    let apply_s = t3.elapsed();
    assert!(
        errors.is_empty(),
        "{} peers not applied, first: {:?}",
        errors.len(),
        errors.first()
    );
    let t4 = Instant::now();
    core.apply(&desired, now);
    let reapply_s = t4.elapsed();

    // Handshakes: one initiator per client (up to 2,000), all at once, as after a restart.
    let n = clients.min(2_000);
    let mut buf = vec![0u8; 2048];
    let mut initiators: Vec<(Tunn, SocketAddr)> = (0..n)
        .map(|i| {
            let t = Tunn::new(client_secret(i), gw_public, None, None, i + 1, None);
            let host = Ipv4Addr::new(192, 0, 2, (i % 250) as u8 + 1);
            (t, SocketAddr::from((host, 40_000 + (i / 250) as u16)))
        })
        .collect();
    let by_addr: BTreeMap<SocketAddr, usize> = initiators
        .iter()
        .enumerate()
        .map(|(k, (_, a))| (*a, k))
        .collect();
    let inits: Vec<(SocketAddr, Vec<u8>)> = initiators
        .iter_mut()
        .map(
            |(t, a)| match t.format_handshake_initiation(&mut buf, false) {
                TunnResult::WriteToNetwork(p) => (*a, p.to_vec()),
                _ => panic!("no handshake initiation"),
            },
        )
        .collect();
    let rss_handshake = rss_kib(); // the initiators exist: only the gateway's side grows
    let t = Instant::now();
    for (src, d) in &inits {
        core.handle_network(PORT, *src, d, now);
    }
    let flood_s = t.elapsed();
    // boringtun answers up to 100 per second per gateway, then sends cookie replies (WireGuard's
    // answer to a flood); a client that gets one sends its initiation again with the cookie.
    let (mut answered, mut cookies) = (0u64, Vec::new());
    while let Some(tx) = core.poll_transmit() {
        match tx.payload.first() {
            Some(2) => answered += 1,
            Some(3) => cookies.push(tx),
            _ => {}
        }
    }
    let retries: Vec<(SocketAddr, Vec<u8>)> = cookies
        .iter()
        .filter_map(|c| {
            let (t, a) = initiators.get_mut(*by_addr.get(&c.dst)?)?;
            let _ = t.decapsulate(None, &c.payload, &mut buf);
            match t.format_handshake_initiation(&mut buf, true) {
                TunnResult::WriteToNetwork(p) => Some((*a, p.to_vec())),
                _ => None,
            }
        })
        .collect();
    assert_eq!(retries.len(), cookies.len(), "every cookie taken");
    let t = Instant::now();
    for (src, d) in &retries {
        core.handle_network(PORT, *src, d, now);
    }
    let retry_s = t.elapsed();
    let mut answered_retry = 0u64;
    while let Some(tx) = core.poll_transmit() {
        if tx.payload.len() == 92 && tx.payload.first() == Some(&2) {
            answered_retry += 1;
        }
    }
    assert_eq!(
        answered + answered_retry,
        u64::from(n),
        "every client answered, at first or with its cookie"
    );

    let rss_connected = rss_kib();
    let (rss_empty, rss_full) = worker_rss(&json, PORT);
    let per_peer = (rss_full.saturating_sub(rss_empty) * 1024) as f64 / f64::from(clients);
    println!("p2s clients on one gateway      {clients}");
    println!(
        "build keys + topology           {:>9.1} ms",
        keys_s.as_secs_f64() * 1e3
    );
    println!(
        "desired state (shared)          {:>9.1} ms",
        desired_s.as_secs_f64() * 1e3
    );
    println!(
        "desired state JSON parse        {:>9.1} ms ({} KiB)",
        parse_s.as_secs_f64() * 1e3,
        json.len() / 1024
    );
    println!(
        "core apply (first)              {:>9.1} ms",
        apply_s.as_secs_f64() * 1e3
    );
    println!(
        "core apply (unchanged again)    {:>9.1} ms",
        reapply_s.as_secs_f64() * 1e3
    );
    println!(
        "worker RSS, 0 / {clients} clients     {rss_empty} KiB / {rss_full} KiB: {per_peer:.0} bytes per client"
    );
    println!(
        "bench RSS before/after handshakes {rss_handshake} KiB / {rss_connected} KiB: {:.0} bytes per connected client (at least)",
        (rss_connected.saturating_sub(rss_handshake) * 1024) as f64 / f64::from(n)
    );
    println!(
        "first initiations ({n})          {answered} answered, {} cookie replies, in {:.1} ms ({:.0}/s)",
        cookies.len(),
        flood_s.as_secs_f64() * 1e3,
        f64::from(n) / flood_s.as_secs_f64()
    );
    println!(
        "initiations with the cookie      {answered_retry} answered in {:.1} ms: {:.0} handshakes/s (one core)",
        retry_s.as_secs_f64() * 1e3,
        answered_retry as f64 / retry_s.as_secs_f64()
    );
}
