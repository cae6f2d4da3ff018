//! A worker that cannot open its TUN device (not root) says so when it starts and still
//! forwards between tunnels. The worker runs as `nobody` when the test runs as root (as itself
//! otherwise, where opening a TUN device fails anyway); the two sites are boringtun devices
//! played by this test. Loopback only.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use isthmus_shared::desired::DesiredStateMessage;
use isthmus_worker::core::packet::ipv4_udp;

use crate::harness::*;
use crate::netns::is_root;

/// Feeds `site` every datagram waiting on `sock` for up to `wait`, sending its answers to `gw`.
fn serve(site: &mut Site, sock: &UdpSocket, gw: SocketAddr, wait: Duration) {
    let until = Instant::now() + wait;
    let mut buf = vec![0u8; 65_536];
    while Instant::now() < until {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        for d in site.recv(&buf[..n]) {
            let _ = sock.send_to(&d, gw);
        }
    }
}

#[test]
fn a_worker_without_a_tun_device_says_why_and_still_forwards_between_tunnels() {
    let sock_a = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let sock_b = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for s in [&sock_a, &sock_b] {
        s.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
    }
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    let gw: SocketAddr = ([127, 0, 0, 1], port).into();
    let g = gateway(
        "gw",
        1,
        port,
        vec![
            s2s_peer("a", 2, sock_a.local_addr().expect("addr"), &["10.2.0.0/16"]),
            s2s_peer("b", 3, sock_b.local_addr().expect("addr"), &["10.3.0.0/16"]),
        ],
        vec![
            vnet_route("10.1.0.0/16"),
            route("10.2.0.0/16", s2s_hop("a")),
            route("10.3.0.0/16", s2s_hop("b")),
        ],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    // Readable by `nobody`.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let desired = dir.path().join("desired.json");
    std::fs::write(
        &desired,
        serde_json::to_string(&DesiredStateMessage::V1(state(1, vec![g]))).expect("json"),
    )
    .expect("write");
    let log = dir.path().join("worker.log");
    let worker = env!("CARGO_BIN_EXE_isthmus-worker");
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", worker]);
        c
    } else {
        Command::new(worker)
    };
    cmd.arg("--desired-state")
        .arg(&desired)
        .args(["--bind-address", "127.0.0.1", "--tun-name", "isw-notun0"])
        .env("RUST_LOG", "info")
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(Stdio::null());
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _worker = Kill(cmd.spawn().expect("worker runs"));

    // Site A handshakes (retrying while the worker starts).
    let mut a = Site::new(2, 1, sock_a.local_addr().expect("addr"));
    let mut b = Site::new(3, 1, sock_b.local_addr().expect("addr"));
    let until = Instant::now() + Duration::from_secs(20);
    while a.tunn.time_since_last_handshake().is_none() && Instant::now() < until {
        for d in a.rehandshake() {
            let _ = sock_a.send_to(&d, gw);
        }
        serve(&mut a, &sock_a, gw, Duration::from_millis(250));
    }
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        a.tunn.time_since_last_handshake().is_some(),
        "site A never completed a handshake\n{}",
        logged()
    );

    // A packet from site A to site B: the worker starts B's tunnel and forwards it (transit).
    let packet = ipv4_udp(
        v4([10, 2, 0, 5]),
        v4([10, 3, 0, 5]),
        4000,
        53,
        b"no tun needed",
    );
    for d in a.send(&packet) {
        let _ = sock_a.send_to(&d, gw);
    }
    let until = Instant::now() + Duration::from_secs(20);
    while b.received.is_empty() && Instant::now() < until {
        serve(&mut b, &sock_b, gw, Duration::from_millis(100));
        serve(&mut a, &sock_a, gw, Duration::from_millis(20));
    }
    assert_eq!(b.received, vec![packet], "{}", logged());

    let log = logged();
    assert!(
        log.contains("cannot open the TUN device")
            && log.contains("needs root or CAP_NET_ADMIN")
            && log.contains("forwarding between tunnels only"),
        "the worker should say why it runs without a TUN device:\n{log}"
    );
}

/// Issue 16: a worker that cannot bind a gateway's port says why in its status (the server
/// then shows the gateway `not redundant` when this is the standby), and binds it once the
/// port is free, without a restart.
#[test]
fn a_gateway_port_that_cannot_be_bound_is_the_gateways_bind_error_until_it_is_free() {
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("temp dir");
    let (_worker, status) = loopback_worker(dir.path(), port, 1, &["--heartbeat-port", "0"]);
    let bind_error = || {
        crate::server_lab::read_status(&status)["gateways"][0]["bind_error"]
            .as_str()
            .map(str::to_owned)
    };
    let until = Instant::now() + Duration::from_secs(20);
    while bind_error().is_none() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    let why = bind_error().unwrap_or_default();
    assert!(
        why.contains(&port.to_string()) || why.to_lowercase().contains("in use"),
        "the status says why the port cannot be bound: {why:?}"
    );
    drop(taken);
    let until = Instant::now() + Duration::from_secs(20);
    while bind_error().is_some() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(bind_error(), None, "bound once the port is free");
}
