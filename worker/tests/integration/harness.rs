//! Builders for desired states and an in-memory "site device" (a bare boringtun `Tunn`).

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use base64::Engine as _;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use ipnet::IpNet;
use isthmus_shared::desired::{DesiredState, GatewayDesired, PeerDesired, PeerKind, Secret};
use isthmus_shared::model::{GatewayType, QualifiedName, TrafficSelector};
use isthmus_shared::routes::{NextHop, Route, RouteOrigin};
use isthmus_worker::core::{Core, Transmit};

pub const GW_PORT: u16 = 51820;

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn secret(seed: u8) -> StaticSecret {
    StaticSecret::from([seed; 32])
}

pub fn public_b64(seed: u8) -> String {
    b64(PublicKey::from(&secret(seed)).as_bytes())
}

pub fn net(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

pub fn qn(name: &str) -> QualifiedName {
    QualifiedName::new("t", name)
}

pub fn route(prefix: &str, next_hop: NextHop) -> Route {
    Route {
        prefix: net(prefix),
        next_hop,
        origin: RouteOrigin::Default,
        transit_hops: 0,
        active: true,
    }
}

pub fn vnet_route(prefix: &str) -> Route {
    route(prefix, NextHop::Vnet { vnet: qn("vnet") })
}

pub fn s2s_hop(conn: &str) -> NextHop {
    NextHop::SiteToSite {
        connection: qn(conn),
        site: qn(&format!("site-{conn}")),
    }
}

/// A site-to-site peer named `conn` with key seed `seed`, at `endpoint`.
pub fn s2s_peer(conn: &str, seed: u8, endpoint: SocketAddr, allowed: &[&str]) -> PeerDesired {
    PeerDesired {
        name: conn.to_owned(),
        kind: PeerKind::SiteToSite {
            connection: qn(conn),
            site: qn(&format!("site-{conn}")),
        },
        public_key: public_b64(seed),
        preshared_key: Some(Secret::new(b64(&[seed.wrapping_add(100); 32]))),
        endpoint: Some(endpoint.to_string()),
        allowed_ips: allowed.iter().map(|a| net(a)).collect(),
        persistent_keepalive_secs: None,
        policy_selectors: Vec::new(),
        idle_timeout_secs: None,
        region_pair: None,
        last_endpoint: None,
        on_every_instance: false,
        ipsec: None,
    }
}

/// A VNet-to-VNet peer named `conn` (remote gateway `other`, PSK of nines, keepalive 25 s).
pub fn v2v_peer(conn: &str, seed: u8, endpoint: SocketAddr, allowed: &str) -> PeerDesired {
    let mut p = s2s_peer(conn, seed, endpoint, &[allowed]);
    p.kind = PeerKind::VnetToVnet {
        connection: qn(conn),
        remote_gateway: qn("other"),
    };
    p.preshared_key = Some(Secret::new(b64(&[9; 32])));
    p.persistent_keepalive_secs = Some(25);
    p
}

pub fn v2v_hop(conn: &str) -> NextHop {
    NextHop::VnetToVnet {
        connection: qn(conn),
        remote_gateway: qn("other"),
    }
}

/// A desired state of one gateway with one VNet-to-VNet `peer`: VNet `own` behind the TUN,
/// the peer's allowed IPs through its tunnel.
pub fn v2v_gateway(name: &str, seed: u8, port: u16, peer: PeerDesired, own: &str) -> DesiredState {
    let routes = std::iter::once(vnet_route(own))
        .chain(
            peer.allowed_ips
                .iter()
                .map(|n| route(&n.to_string(), v2v_hop(&peer.name))),
        )
        .collect();
    state(1, vec![gateway(name, seed, port, vec![peer], routes)])
}

pub fn gateway(
    name: &str,
    seed: u8,
    port: u16,
    peers: Vec<PeerDesired>,
    routes: Vec<Route>,
) -> GatewayDesired {
    GatewayDesired {
        tenant: "t".to_owned(),
        name: name.to_owned(),
        gateway_type: GatewayType::RouteBased,
        private_key: Secret::new(b64(&[seed; 32])),
        listen_port: port,
        public_endpoint: None,
        private_address: None,
        tunnel_mtu: isthmus_shared::desired::TUNNEL_MTU,
        mss_clamp: true,
        peers,
        routes,
        bandwidth_limit_bps: 0,
        instance: None,
    }
}

pub fn state(version: u64, gateways: Vec<GatewayDesired>) -> DesiredState {
    DesiredState { version, gateways }
}

pub fn site_addr(n: u8) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(192, 0, 2, n), 40000 + u16::from(n)))
}

/// Site A (10.2.0.0/16, key seed 2) and site B (10.3.0.0/16, key seed 3) on a route-based
/// gateway (key seed 1) serving VNet 10.1.0.0/16.
pub fn two_sites() -> DesiredState {
    state(
        1,
        vec![gateway(
            "gw",
            1,
            GW_PORT,
            vec![
                s2s_peer("a", 2, site_addr(2), &["10.2.0.0/16"]),
                s2s_peer("b", 3, site_addr(3), &["10.3.0.0/16"]),
            ],
            vec![
                vnet_route("10.1.0.0/16"),
                route("10.2.0.0/16", s2s_hop("a")),
                route("10.3.0.0/16", s2s_hop("b")),
            ],
        )],
    )
}

pub fn selector(local: &str, remote: &str) -> TrafficSelector {
    TrafficSelector {
        local: net(local),
        remote: net(remote),
    }
}

pub fn v4(a: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::from(a)
}

/// A site's WireGuard device: a bare boringtun `Tunn` talking to the gateway.
pub struct Site {
    pub tunn: Tunn,
    pub addr: SocketAddr,
    buf: Vec<u8>,
    /// Inner packets the device decrypted.
    pub received: Vec<Vec<u8>>,
}

impl Site {
    /// The device of the site with key seed `seed` (PSK as in [`s2s_peer`]) for gateway `gw_seed`.
    pub fn new(seed: u8, gw_seed: u8, addr: SocketAddr) -> Self {
        let gw_public = PublicKey::from(&secret(gw_seed));
        Self {
            tunn: Tunn::new(
                secret(seed),
                gw_public,
                Some([seed.wrapping_add(100); 32]),
                None,
                u32::from(seed),
                None,
            ),
            addr,
            buf: vec![0; 70_000],
            received: Vec::new(),
        }
    }

    /// A device with private key seed `seed`, configured with gateway key seed `gw_seed` and
    /// preshared key `psk` (to build devices whose keys do not match the gateway's peer).
    pub fn with_keys(seed: u8, gw_seed: u8, psk: Option<[u8; 32]>, addr: SocketAddr) -> Self {
        let gw_public = PublicKey::from(&secret(gw_seed));
        Self {
            tunn: Tunn::new(secret(seed), gw_public, psk, None, u32::from(seed), None),
            addr,
            buf: vec![0; 70_000],
            received: Vec::new(),
        }
    }

    /// Encapsulates an inner packet; returns what the device sends.
    pub fn send(&mut self, packet: &[u8]) -> Vec<Vec<u8>> {
        match self.tunn.encapsulate(packet, &mut self.buf) {
            TunnResult::WriteToNetwork(p) => vec![p.to_vec()],
            _ => Vec::new(),
        }
    }

    /// Forces a new handshake initiation.
    pub fn rehandshake(&mut self) -> Vec<Vec<u8>> {
        match self.tunn.format_handshake_initiation(&mut self.buf, true) {
            TunnResult::WriteToNetwork(p) => vec![p.to_vec()],
            _ => Vec::new(),
        }
    }

    /// Feeds a datagram from the gateway; returns what the device sends back.
    pub fn recv(&mut self, datagram: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        match self.tunn.decapsulate(None, datagram, &mut self.buf) {
            TunnResult::WriteToNetwork(p) => {
                out.push(p.to_vec());
                while let TunnResult::WriteToNetwork(p) =
                    self.tunn.decapsulate(None, &[], &mut self.buf)
                {
                    out.push(p.to_vec());
                }
            }
            TunnResult::WriteToTunnelV4(p, _) | TunnResult::WriteToTunnelV6(p, _) => {
                self.received.push(p.to_vec())
            }
            _ => {}
        }
        out
    }
}

/// Delivers datagrams between the core and the sites until nothing moves. `from_sites`: (site
/// index, datagram). Returns the transmits addressed to nobody known.
pub fn pump(
    core: &mut Core,
    sites: &mut [Site],
    from_sites: Vec<(usize, Vec<u8>)>,
    now: Instant,
) -> Vec<Transmit> {
    let mut queue: VecDeque<(usize, Vec<u8>)> = from_sites.into();
    let mut lost = Vec::new();
    for _ in 0..10_000 {
        while let Some((i, d)) = queue.pop_front() {
            let src = sites[i].addr;
            core.handle_network(GW_PORT, src, &d, now);
        }
        let mut moved = false;
        while let Some(t) = core.poll_transmit() {
            moved = true;
            match sites.iter().position(|s| s.addr == t.dst) {
                Some(i) => {
                    for d in sites[i].recv(&t.payload) {
                        queue.push_back((i, d));
                    }
                }
                None => lost.push(t),
            }
        }
        if !moved && queue.is_empty() {
            break;
        }
    }
    lost
}

/// Site `i` sends `packet` through its tunnel; nothing may be lost on the way; what the core
/// then delivers into the VNet (the TUN side).
pub fn site_to_vnet(
    core: &mut Core,
    sites: &mut [Site],
    i: usize,
    packet: &[u8],
    now: Instant,
) -> Vec<Vec<u8>> {
    let d = sites[i].send(packet);
    let lost = pump(core, sites, d.into_iter().map(|d| (i, d)).collect(), now);
    assert!(lost.is_empty(), "{lost:?}");
    drain_tun(core)
}

pub fn drain_tun(core: &mut Core) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| core.poll_tun()).collect()
}

/// Builds an IPv6 UDP packet (UDP checksum left zero). For tests.
pub fn ipv6_udp(
    src: std::net::Ipv6Addr,
    dst: std::net::Ipv6Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = u16::try_from(8 + payload.len()).expect("fits");
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&udp_len.to_be_bytes());
    p.extend_from_slice(&[17, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&udp_len.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// Whether the one's-complement sum of `data` plus `initial` checks out (a valid checksum).
pub fn checksum_ok(data: &[u8], initial: u64) -> bool {
    tun_rs::checksum(data, initial) == 0xffff
}

/// The TCP/UDP/ICMPv6 pseudo-header sum of an IP packet `p` for protocol `proto` over its
/// payload after `iph` bytes of header.
pub fn pseudo_sum(p: &[u8], iph: usize, proto: u8) -> u64 {
    let addrs = if p[0] >> 4 == 6 {
        &p[8..40]
    } else {
        &p[12..20]
    };
    let mut sum = u64::from(proto) + (p.len() - iph) as u64;
    for w in addrs.chunks_exact(2) {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    sum
}

/// A worker process, killed when dropped (panics included).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `isthmus-worker` binary on loopback without a TUN device, running gateway `gw` on
/// `port` with one site peer (`a`, 10.2.0.0/16 at the discard port) from a desired-state file
/// in `dir`, writing `dir/status.json` every second; `extra` options added. The process and
/// the status file's path.
pub fn loopback_worker(
    dir: &std::path::Path,
    port: u16,
    version: u64,
    extra: &[&str],
) -> (KillOnDrop, std::path::PathBuf) {
    let g = gateway(
        "gw",
        1,
        port,
        vec![s2s_peer(
            "a",
            2,
            "127.0.0.1:9".parse().expect("addr"),
            &["10.2.0.0/16"],
        )],
        vec![
            vnet_route("10.1.0.0/16"),
            route("10.2.0.0/16", s2s_hop("a")),
        ],
    );
    let desired = dir.join("desired.json");
    let status = dir.join("status.json");
    std::fs::write(
        &desired,
        serde_json::to_string(&isthmus_shared::desired::DesiredStateMessage::V1(state(
            version,
            vec![g],
        )))
        .expect("json"),
    )
    .expect("write");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_isthmus-worker"))
        .arg("--desired-state")
        .arg(&desired)
        .args([
            "--no-tun",
            "--bind-address",
            "127.0.0.1",
            "--status-interval",
            "1",
        ])
        .arg("--status-file")
        .arg(&status)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("worker runs");
    (KillOnDrop(child), status)
}
