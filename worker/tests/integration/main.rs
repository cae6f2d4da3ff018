//! Integration tests of the worker: the core on a virtual clock, and the binary.

mod bench_failover;
mod core;
mod core_active_active;
mod core_apply_model;
mod core_failover;
mod core_flood;
mod core_instances;
mod core_ipsec;
mod core_ipsec_drops;
mod core_ipsec_shell;
mod core_ipsec_transit;
mod core_mtu;
mod core_state;
mod fuzz_esp;
mod fuzz_ike;
mod gro;
mod ha_lab;
mod harness;
mod ike_esp;
mod ike_exchange;
mod ike_informational;
mod ike_nat;
mod ike_proposal;
mod ike_rekey;
mod ike_rekey_sa;
mod ike_strongswan;
mod ike_wire;
mod netns;
mod netns_active_active;
mod netns_failover;
mod netns_ipsec;
mod netns_ipsec_sites;
mod netns_ipsec_v2v;
mod netns_mtu;
mod netns_p2s;
mod netns_policy;
mod netns_status;
mod netns_v2v;
mod netns_vnet;
mod no_tun;
mod p2s_netns;
mod server_driven;
mod server_lab;
mod strongswan_lab;
mod tcp_relay;

use std::process::Command;

fn worker_bin() -> &'static str {
    env!("CARGO_BIN_EXE_isthmus-worker")
}

#[test]
fn missing_token_is_explained() {
    let out = Command::new(worker_bin())
        .env_remove("ISTHMUS_WORKER_TOKEN")
        .output()
        .expect("worker runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--token"),
        "stderr should name the missing flag: {err}"
    );
}

#[test]
fn refused_token_stops_the_worker_with_a_message() {
    // A one-shot HTTP server on loopback that refuses every worker like the real server does.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let body = r#"{"error":"unauthorized","message":"unknown worker token"}"#;
        let resp = format!(
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
            body.len(),
            body
        );
        let _ = s.write_all(resp.as_bytes());
    });
    let out = Command::new(worker_bin())
        .args([
            "--server",
            &format!("http://{addr}"),
            "--token",
            "isw_wrong",
            "--name",
            "t1",
        ])
        .output()
        .expect("worker runs");
    server.join().expect("server thread");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown worker token"), "{err}");
}

/// `--status-file` (no root needed: loopback only, no TUN): the worker writes each tunnel's
/// state and its drop counters, here a garbage datagram.
#[test]
fn status_file_shows_tunnels_and_drop_counters() {
    use harness::*;
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    let dir = tempfile::tempdir().expect("temp dir");
    let (_guard, status) = loopback_worker(dir.path(), port, 7, &[]);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut seen = serde_json::Value::Null;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < until {
        let _ = sock.send_to(b"not wireguard", ("127.0.0.1", port));
        seen = std::fs::read_to_string(&status)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        if seen["drops"]["garbage"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        seen["drops"]["garbage"].as_u64().unwrap_or(0) >= 1,
        "{seen}"
    );
    assert_eq!(seen["version"], 7, "{seen}");
    let gw = &seen["gateways"][0];
    assert_eq!(gw["name"], "gw", "{seen}");
    assert!(gw["drops"]["garbage"].as_u64().unwrap_or(0) >= 1, "{seen}");
    assert_eq!(gw["peers"][0]["name"], "a", "{seen}");
    assert_eq!(gw["peers"][0]["up"], true, "{seen}");
}
