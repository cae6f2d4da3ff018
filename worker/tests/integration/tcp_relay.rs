//! P2S-4 in process, on loopback: the worker's TCP transport (`tcp_relay`) with the real data
//! plane (no TUN) and `isthmus-client connect`'s relay, WireGuard peers as bare boringtun
//! `Tunn`s over UDP sockets.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::PublicKey;
use isthmus_client::connect::{ClientRelay, ConnectError, open, open_tls};
use isthmus_shared::desired::{DesiredState, PeerDesired, PeerKind};
use isthmus_shared::routes::NextHop;
use isthmus_worker::core::packet::{ipv4_icmp_echo, ipv4_udp};
use isthmus_worker::io::{DataPlane, DataPlaneConfig};
use isthmus_worker::tcp_relay::{RelayStats, TcpRelay, TcpRelayConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

use crate::harness::*;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn relay(max_connections: usize) -> TcpRelay {
    relay_idling_after(max_connections, Duration::from_secs(30)).await
}

async fn relay_idling_after(max_connections: usize, idle_timeout: Duration) -> TcpRelay {
    TcpRelay::start(&TcpRelayConfig {
        listen: SocketAddr::new(LOOPBACK, 0),
        certificate: None,
        gateway_address: LOOPBACK,
        max_connections,
        idle_timeout,
    })
    .await
    .expect("relay starts on loopback")
}

fn p2s_peer(client: &str, seed: u8, address: &str) -> PeerDesired {
    PeerDesired {
        name: client.to_owned(),
        kind: PeerKind::P2sClient {
            gateway: qn("gw"),
            client: client.to_owned(),
        },
        public_key: public_b64(seed),
        preshared_key: None,
        endpoint: None,
        allowed_ips: vec![net(address)],
        persistent_keepalive_secs: None,
        policy_selectors: Vec::new(),
        idle_timeout_secs: None,
        region_pair: None,
        last_endpoint: None,
        on_every_instance: false,
        ipsec: None,
    }
}

fn client_hop(client: &str) -> NextHop {
    NextHop::P2sClient {
        client: client.to_owned(),
        gateway: qn("gw"),
    }
}

/// A gateway (key seed 1) on `port` with point-to-site clients a (seed 2, 172.16.0.2) and
/// b (seed 3, 172.16.0.3).
fn two_clients(port: u16) -> DesiredState {
    state(
        1,
        vec![gateway(
            "gw",
            1,
            port,
            vec![
                p2s_peer("a", 2, "172.16.0.2/32"),
                p2s_peer("b", 3, "172.16.0.3/32"),
            ],
            vec![
                vnet_route("10.1.0.0/16"),
                route("172.16.0.2/32", client_hop("a")),
                route("172.16.0.3/32", client_hop("b")),
            ],
        )],
    )
}

/// A WireGuard client: a boringtun `Tunn` on a loopback UDP socket, sending to `to`.
struct Device {
    tunn: Tunn,
    sock: UdpSocket,
    to: SocketAddr,
    buf: Vec<u8>,
}

impl Device {
    async fn new(seed: u8, to: SocketAddr) -> Self {
        Self {
            tunn: Tunn::new(
                secret(seed),
                PublicKey::from(&secret(1)),
                None,
                None,
                u32::from(seed),
                None,
            ),
            sock: UdpSocket::bind((LOOPBACK, 0)).await.expect("bind"),
            to,
            buf: vec![0; 70_000],
        }
    }

    async fn transmit(&mut self, r: TunnResult<'_>) {
        if let TunnResult::WriteToNetwork(d) = r {
            let d = d.to_vec();
            self.sock.send_to(&d, self.to).await.expect("send");
        }
    }

    /// Encapsulates `packet` (starting a handshake and queueing it when there is no session).
    async fn send(&mut self, packet: &[u8]) {
        let mut buf = std::mem::take(&mut self.buf);
        let r = self.tunn.encapsulate(packet, &mut buf);
        self.transmit(r).await;
        self.buf = buf;
    }

    async fn handshake(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        let r = self.tunn.format_handshake_initiation(&mut buf, true);
        self.transmit(r).await;
        self.buf = buf;
    }

    fn established(&self) -> bool {
        self.tunn.time_since_last_handshake().is_some()
    }

    /// Handles what arrives within `wait`; returns the inner packets decrypted.
    async fn step(&mut self, wait: Duration) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut d = vec![0u8; 70_000];
        let mut buf = std::mem::take(&mut self.buf);
        if let Ok(Ok(n)) = tokio::time::timeout(wait, self.sock.recv(&mut d)).await {
            let r = self.tunn.decapsulate(None, &d[..n], &mut buf);
            match r {
                TunnResult::WriteToNetwork(p) => {
                    let p = p.to_vec();
                    self.sock.send_to(&p, self.to).await.expect("send");
                    loop {
                        let r = self.tunn.decapsulate(None, &[], &mut buf);
                        let TunnResult::WriteToNetwork(p) = r else {
                            break;
                        };
                        let p = p.to_vec();
                        self.sock.send_to(&p, self.to).await.expect("send");
                    }
                }
                TunnResult::WriteToTunnelV4(p, _) | TunnResult::WriteToTunnelV6(p, _) => {
                    out.push(p.to_vec());
                }
                _ => {}
            }
        }
        // Retransmits a lost handshake like a real client would.
        let r = self.tunn.update_timers(&mut buf);
        self.transmit(r).await;
        self.buf = buf;
        out
    }

    /// Steps until `done` or 15 s.
    async fn until(&mut self, what: &str, mut done: impl FnMut(&Self, &[Vec<u8>]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut got: Vec<Vec<u8>> = Vec::new();
        while Instant::now() < deadline {
            if done(self, &got) {
                return;
            }
            got.extend(self.step(Duration::from_millis(200)).await);
        }
        panic!("timed out waiting for {what}");
    }

    /// Steps until one inner packet arrives; returns it.
    async fn receive(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(p) = self
                .step(Duration::from_millis(200))
                .await
                .into_iter()
                .next()
            {
                return p;
            }
        }
        panic!("no packet arrived through the tunnel");
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind((LOOPBACK, 0))
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port()
}

#[tokio::test]
async fn p2s_4_a_client_over_tcp_reaches_another_client_over_udp_through_the_gateway() {
    let port = free_udp_port();
    let dp = DataPlane::start(&DataPlaneConfig {
        bind_address: LOOPBACK,
        tun_name: String::new(),
        tun_address: None,
        tun_mtu: 1420,
        no_tun: true,
        policy_idle_override: None,
        route_table: isthmus_worker::host::plan::DEFAULT_ROUTE_TABLE,
        peer_silence: None,
    });
    let desired = two_clients(port);
    dp.apply(&desired).await;
    let relay = relay(16).await;
    relay.apply(&desired);
    assert_eq!(TcpRelay::p2s_ports(&desired), BTreeSet::from([port]));

    // Client b on plain UDP, straight to the gateway.
    let mut b = Device::new(3, SocketAddr::new(LOOPBACK, port)).await;
    b.handshake().await;
    b.until("b's handshake", |d, _| d.established()).await;

    // Client a through `isthmus-client connect`'s relay: local UDP → TLS/TCP → worker.
    let client = ClientRelay::start(
        SocketAddr::new(LOOPBACK, 0),
        &relay.local_addr().to_string(),
        port,
    )
    .await
    .expect("the client transport connects");
    let mut a = Device::new(2, client.local_addr()).await;
    let ping = ipv4_icmp_echo(
        Ipv4Addr::new(172, 16, 0, 2),
        Ipv4Addr::new(172, 16, 0, 3),
        7,
        1,
    );
    a.send(&ping).await;
    a.until("a's handshake over TCP", |d, _| d.established())
        .await;
    // The queued ping left with the handshake's completion; the gateway forwards it to b.
    assert_eq!(b.receive().await, ping);

    let reply = ipv4_udp(
        Ipv4Addr::new(172, 16, 0, 3),
        Ipv4Addr::new(172, 16, 0, 2),
        53,
        4000,
        b"over tcp and back",
    );
    b.send(&reply).await;
    assert_eq!(a.receive().await, reply);

    // The gateway sees a at the relay's own UDP socket (WireGuard roaming), not at a's port.
    let status = dp.status();
    let a_status = status.gateways[0]
        .connections
        .iter()
        .find(|c| c.name == "a")
        .expect("a's status");
    let seen: SocketAddr = a_status
        .endpoint
        .as_deref()
        .expect("a has an endpoint")
        .parse()
        .expect("address");
    assert_eq!(seen.ip(), LOOPBACK);
    assert_ne!(seen.port(), a.sock.local_addr().expect("addr").port());
    assert!(a_status.last_handshake_unix.is_some());

    let s = relay.stats();
    assert_eq!(s.accepted, 1, "{s:?}");
    assert!(s.frames_to_gateway >= 2, "{s:?}");
    assert!(s.frames_to_client >= 2, "{s:?}");
    assert_eq!(s.dropped_not_wireguard, 0, "{s:?}");
    let c = client.stats();
    assert_eq!(c.connects, 1, "{c:?}");
    assert!(
        c.frames_to_gateway >= 2 && c.frames_to_wireguard >= 2,
        "{c:?}"
    );
}

/// Waits until the relay's counters satisfy `f` (they are bumped by other tasks).
async fn stats_until(relay: &TcpRelay, what: &str, f: impl Fn(&RelayStats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f(&relay.stats()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}: {:?}", relay.stats());
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = u16::try_from(payload.len())
        .expect("fits")
        .to_be_bytes()
        .to_vec();
    v.extend_from_slice(payload);
    v
}

fn wg_shaped(t: u8, len: usize) -> Vec<u8> {
    let mut v = vec![0xa5; len];
    v[0] = t;
    v[1..4].copy_from_slice(&[0, 0, 0]);
    v
}

#[tokio::test]
async fn p2s_4_tcp_relay_drops_garbage_frames_and_refuses_strangers_without_panicking() {
    // A stand-in for the gateway's UDP port: sees exactly what the relay forwards.
    let gw = UdpSocket::bind((LOOPBACK, 0)).await.expect("bind");
    let port = gw.local_addr().expect("addr").port();
    let relay = relay(16).await;
    let endpoint = relay.local_addr().to_string();

    // Before the desired state names a point-to-site gateway on that port: refused, clearly.
    let err = open(&endpoint, port).await.expect_err("no gateway yet");
    assert!(
        matches!(err, ConnectError::UnknownGateway { port: p, .. } if p == port),
        "{err}"
    );
    assert!(err.to_string().contains(&port.to_string()), "{err}");
    relay.set_gateway_ports(BTreeSet::from([port]));

    // Not TLS at all.
    let mut plain = tokio::net::TcpStream::connect(relay.local_addr())
        .await
        .expect("tcp");
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    stats_until(&relay, "the TLS failure", |s| s.tls_failed == 1).await;
    // TLS, but an HTTPS client rather than the transport's hello.
    let mut https = open_tls(&endpoint).await.expect("tls");
    https
        .write_all(b"GET / HTTP/1.1\r\n\r\n")
        .await
        .expect("write");
    https.flush().await.expect("flush");
    let mut b = [0u8; 1];
    assert_eq!(https.read(&mut b).await.unwrap_or(0), 0, "closed");
    stats_until(&relay, "the bad hello", |s| s.bad_hello == 1).await;

    // A proper connection: garbage frames are dropped and counted, WireGuard-shaped ones
    // pass, whatever their neighbours.
    let mut tls = open(&endpoint, port).await.expect("accepted");
    let init = wg_shaped(1, 148);
    let mut bytes = Vec::new();
    bytes.extend(frame(&[]));
    bytes.extend(frame(b"hello"));
    bytes.extend(frame(&vec![0xff; 65_535]));
    bytes.extend(frame(&wg_shaped(1, 147)));
    bytes.extend(frame(&init));
    tls.write_all(&bytes).await.expect("write");
    tls.flush().await.expect("flush");
    let mut d = vec![0u8; 70_000];
    let (n, relay_sock) = tokio::time::timeout(Duration::from_secs(10), gw.recv_from(&mut d))
        .await
        .expect("a datagram reaches the gateway")
        .expect("recv");
    assert_eq!(&d[..n], &init[..]);
    stats_until(&relay, "the dropped frames", |s| {
        s.dropped_not_wireguard == 4 && s.frames_to_gateway == 1
    })
    .await;

    // Back towards the client: garbage from the UDP side is dropped too.
    let response = wg_shaped(2, 92);
    gw.send_to(b"not wireguard", relay_sock)
        .await
        .expect("send");
    gw.send_to(&response, relay_sock).await.expect("send");
    let len = tokio::time::timeout(Duration::from_secs(10), tls.read_u16())
        .await
        .expect("a frame")
        .expect("read");
    let mut got = vec![0u8; usize::from(len)];
    tls.read_exact(&mut got).await.expect("frame body");
    assert_eq!(got, response);
    stats_until(&relay, "the dropped datagram", |s| {
        s.dropped_not_wireguard == 5 && s.frames_to_client == 1
    })
    .await;

    // A frame cut short by the client closing: the connection ends, the relay goes on.
    tls.write_all(&[0x01, 0x00, 1, 0, 0, 0])
        .await
        .expect("write");
    tls.shutdown().await.expect("close");
    drop(tls);
    let mut again = open(&endpoint, port)
        .await
        .expect("the relay still accepts");
    again.write_all(&frame(&init)).await.expect("write");
    again.flush().await.expect("flush");
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), gw.recv_from(&mut d))
        .await
        .expect("a datagram")
        .expect("recv");
    assert_eq!(n, 148);
    let s = relay.stats();
    assert_eq!(s.accepted, 2, "{s:?}");
    assert_eq!(s.unknown_gateway, 1, "{s:?}");
}

#[tokio::test]
async fn p2s_4_tcp_relay_caps_open_connections() {
    let gw = UdpSocket::bind((LOOPBACK, 0)).await.expect("bind");
    let port = gw.local_addr().expect("addr").port();
    let relay = relay(1).await;
    relay.set_gateway_ports(BTreeSet::from([port]));
    let endpoint = relay.local_addr().to_string();
    let first = open(&endpoint, port).await.expect("first connection");
    let second = open(&endpoint, port).await;
    assert!(second.is_err(), "the second connection is closed at once");
    assert_eq!(relay.stats().refused_busy, 1);
    drop(first);
    // The slot frees when the relay notices the close.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if open(&endpoint, port).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn p2s_4_the_client_transport_reconnects_after_the_worker_closes_an_idle_connection() {
    let gw = UdpSocket::bind((LOOPBACK, 0)).await.expect("bind");
    let port = gw.local_addr().expect("addr").port();
    let relay = relay_idling_after(16, Duration::from_millis(300)).await;
    relay.set_gateway_ports(BTreeSet::from([port]));
    let client = ClientRelay::start(
        SocketAddr::new(LOOPBACK, 0),
        &relay.local_addr().to_string(),
        port,
    )
    .await
    .expect("connects");
    let wg = UdpSocket::bind((LOOPBACK, 0)).await.expect("bind");
    let init = wg_shaped(1, 148);
    let mut d = vec![0u8; 2048];
    wg.send_to(&init, client.local_addr()).await.expect("send");
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), gw.recv_from(&mut d))
        .await
        .expect("first datagram")
        .expect("recv");
    assert_eq!(n, 148);
    // The worker closes the silent connection; the client opens a new one by itself, and
    // WireGuard's next message (a retransmission, here) gets through.
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.stats().connects < 2 {
        assert!(
            Instant::now() < deadline,
            "no reconnection: {:?}",
            client.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wg.send_to(&init, client.local_addr()).await.expect("send");
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), gw.recv_from(&mut d))
        .await
        .expect("a datagram after the reconnection")
        .expect("recv");
    assert_eq!(n, 148);
    assert!(relay.stats().accepted >= 2, "{:?}", relay.stats());
}
