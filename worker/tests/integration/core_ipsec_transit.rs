//! Issue 17 item 4 (LIM-5, P2S-8): transit through gateway B between its IPsec connection to
//! gateway A and each other kind of tunnel B has: a WireGuard site, a VNet-to-VNet remote
//! gateway, a point-to-site client and a second IPsec site, all through B's one forwarding
//! table. Cores on a virtual clock; a WireGuard end is a bare boringtun `Tunn`.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use isthmus_shared::desired::{DesiredState, PeerDesired, PeerKind, TunnelState};
use isthmus_shared::model::IpsecConnectionMode;
use isthmus_shared::routes::NextHop;
use isthmus_worker::core::Core;
use isthmus_worker::core::packet::ipv4_udp;

use crate::core_ipsec::{
    A, A_PORT, B, B_PORT, Pair, Side, a_addr, b_addr, ipsec_peer, params, route_based, up,
};
use crate::harness::*;
use crate::ike_exchange::Seeded;

/// One WireGuard tunnel of B's besides its IPsec connection: the peer, B's route to it, the
/// device at the far end and the address behind it that sends.
struct Far {
    peer: PeerDesired,
    prefix: &'static str,
    hop: NextHop,
    device: Site,
    host: Ipv4Addr,
}

/// Gateway B's desired state: its VNet, and its IPsec connection to A, answering only.
fn responder_b() -> DesiredState {
    route_based(&B, &A, IpsecConnectionMode::ResponderOnly)
}

/// An edge gateway `me` (A or C) initiating its IPsec connection to B, through which it also
/// reaches `far` (its allowed IPs and a route).
fn edge(me: &Side, far: &str) -> DesiredState {
    let mut d = route_based(me, &B, IpsecConnectionMode::InitiatorOnly);
    let conn = format!("{}-b", me.name);
    let g = &mut d.gateways[0];
    g.peers[0].allowed_ips.push(net(far));
    g.routes.push(route(far, s2s_hop(&conn)));
    d
}

/// A's IPsec connection reaches the far prefix through B (A's allowed IPs and route to B
/// include it); B routes it to the far tunnel. Returns the pair, up, and the far device.
fn through_b(far: &Far) -> Pair {
    let da = edge(&A, far.prefix);
    let mut db = responder_b();
    let g = &mut db.gateways[0];
    g.peers.push(far.peer.clone());
    g.routes.push(route(far.prefix, far.hop.clone()));
    let mut p = Pair::new(&da, &db);
    p.run(Duration::from_secs(1));
    up(&p);
    p
}

/// Sends `packet` from the far device to B and carries everything B sends: WireGuard to the
/// far device (whose answers go back to B) and ESP to A. Returns what reached A's TUN.
fn far_to_a(p: &mut Pair, far: &mut Far, packet: &[u8]) -> Vec<Vec<u8>> {
    let from = far.device.addr;
    let mut queue = far.device.send(packet);
    if queue.is_empty() {
        queue = far.device.rehandshake();
    }
    let mut at_a = Vec::new();
    for _ in 0..20 {
        for d in queue.drain(..) {
            p.b.handle_network(B_PORT, from, &d, p.now);
        }
        let mut to_a = Vec::new();
        while let Some(t) = p.b.poll_transmit() {
            if t.dst == from {
                queue.extend(far.device.recv(&t.payload));
            } else {
                assert_eq!(t.dst, a_addr(), "B sends only to A and the far device");
                to_a.push(t);
            }
        }
        for t in to_a {
            p.a.handle_network(A_PORT, b_addr(), &t.payload, p.now);
        }
        at_a.extend(drain_tun(&mut p.a));
        if at_a.iter().any(|x| x == packet) {
            return at_a;
        }
        if queue.is_empty() {
            // The handshake is done: the packet itself (boringtun queued it, or send it now).
            queue = far.device.send(packet);
        }
    }
    at_a
}

/// A packet from A's VNet to the far host: IPsec to B, then B's far tunnel. Returns what the
/// far device decrypted.
fn a_to_far(p: &mut Pair, far: &mut Far, packet: &[u8]) -> Vec<Vec<u8>> {
    far.device.received.clear();
    p.a.handle_tun(packet, p.now);
    while let Some(t) = p.a.poll_transmit() {
        assert_eq!(t.dst, b_addr());
        p.b.handle_network(B_PORT, a_addr(), &t.payload, p.now);
    }
    while let Some(t) = p.b.poll_transmit() {
        assert_eq!(
            t.dst, far.device.addr,
            "B sends the transit packet to the far device"
        );
        far.device.recv(&t.payload);
    }
    far.device.received.clone()
}

/// Both directions of transit, and a spoofed source refused on each side.
fn transit_both_ways(mut far: Far) {
    let mut p = through_b(&far);
    let a_host = Ipv4Addr::new(10, 11, 0, 5);
    let there = ipv4_udp(far.host, a_host, 1, 2, b"to A's VNet");
    let at_a = far_to_a(&mut p, &mut far, &there);
    assert!(at_a.contains(&there), "A's TUN got {at_a:?}");
    let back = ipv4_udp(a_host, far.host, 2, 1, b"to the far host");
    assert_eq!(a_to_far(&mut p, &mut far, &back), vec![back]);
    // A source outside the far peer's allowed IPs is dropped by B (cryptokey routing)...
    let spoof = ipv4_udp(Ipv4Addr::new(10, 99, 0, 1), a_host, 1, 2, b"spoof");
    for d in far.device.send(&spoof) {
        p.b.handle_network(B_PORT, far.device.addr, &d, p.now);
    }
    while let Some(t) = p.b.poll_transmit() {
        assert_ne!(t.dst, a_addr(), "B forwarded a spoofed source to A");
    }
    // ...and one outside A's allowed IPs at B is dropped by B too.
    let spoof = ipv4_udp(Ipv4Addr::new(10, 99, 0, 1), far.host, 1, 2, b"spoof");
    assert!(a_to_far(&mut p, &mut far, &spoof).is_empty());
    up(&p);
}

#[test]
fn ipsec_transit_between_an_ipsec_site_and_a_wireguard_site_lim_5() {
    // B's private key seed is 2 (see `desired`); the site's is 3.
    transit_both_ways(Far {
        peer: s2s_peer("wg", 3, site_addr(3), &["10.3.0.0/16"]),
        prefix: "10.3.0.0/16",
        hop: s2s_hop("wg"),
        device: Site::new(3, 2, site_addr(3)),
        host: Ipv4Addr::new(10, 3, 0, 5),
    });
}

#[test]
fn ipsec_transit_between_an_ipsec_site_and_a_vnet_to_vnet_tunnel_lim_5() {
    // The remote gateway's VNet 10.13.0.0/16 behind a VNet-to-VNet tunnel (PSK of nines).
    let mut peer = v2v_peer("v2v", 4, site_addr(4), "10.13.0.0/16");
    peer.persistent_keepalive_secs = None;
    transit_both_ways(Far {
        peer,
        prefix: "10.13.0.0/16",
        hop: v2v_hop("v2v"),
        device: Site::with_keys(4, 2, Some([9; 32]), site_addr(4)),
        host: Ipv4Addr::new(10, 13, 0, 7),
    });
}

#[test]
fn ipsec_transit_between_an_ipsec_site_and_a_point_to_site_client_p2s_8() {
    // A roaming client (no endpoint until its handshake) with address 172.16.0.2.
    let client = SocketAddr::from(([203, 0, 113, 50], 51820));
    let mut peer = s2s_peer("laptop", 5, client, &["172.16.0.2/32"]);
    peer.kind = PeerKind::P2sClient {
        gateway: qn("b"),
        client: "laptop".to_owned(),
    };
    peer.preshared_key = None;
    peer.endpoint = None;
    transit_both_ways(Far {
        peer,
        prefix: "172.16.0.2/32",
        hop: NextHop::P2sClient {
            gateway: qn("b"),
            client: "laptop".to_owned(),
        },
        device: Site::with_keys(5, 2, None, client),
        host: Ipv4Addr::new(172, 16, 0, 2),
    });
}

/// The same forwarding table carries the transit: a desired state whose route to the far
/// prefix is gone leaves the packet undelivered (B has no route), so the tests above do not
/// pass by some path other than B's table.
#[test]
fn ipsec_transit_needs_b_s_route_to_the_far_tunnel_lim_5() {
    let mut far = Far {
        peer: s2s_peer("wg", 3, site_addr(3), &["10.3.0.0/16"]),
        prefix: "10.3.0.0/16",
        hop: s2s_hop("wg"),
        device: Site::new(3, 2, site_addr(3)),
        host: Ipv4Addr::new(10, 3, 0, 5),
    };
    let mut p = through_b(&far);
    let mut db = responder_b();
    db.version = 2;
    db.gateways[0].peers.push(far.peer.clone());
    p.b.apply(&db, p.now);
    let back = ipv4_udp(Ipv4Addr::new(10, 11, 0, 5), far.host, 2, 1, b"no route");
    assert!(a_to_far(&mut p, &mut far, &back).is_empty());
}

/// Gateway C, a third IPsec device of B's.
const C: Side = Side {
    name: "c",
    vnet: "10.13.0.0/16",
    port: 51003,
    addr: SocketAddr::V4(std::net::SocketAddrV4::new(
        Ipv4Addr::new(198, 51, 100, 3),
        51003,
    )),
};

/// Three cores on one wire: each datagram goes to the core whose address it names.
struct Trio {
    cores: Vec<(SocketAddr, Core)>,
    now: Instant,
}

impl Trio {
    fn shuttle(&mut self) {
        for _ in 0..1000 {
            let mut moved = Vec::new();
            for (addr, core) in &mut self.cores {
                while let Some(t) = core.poll_transmit() {
                    moved.push((*addr, t.dst, t.payload));
                }
            }
            if moved.is_empty() {
                return;
            }
            for (src, dst, d) in moved {
                let (_, core) = self
                    .cores
                    .iter_mut()
                    .find(|(a, _)| *a == dst)
                    .expect("a datagram to one of the three gateways");
                core.handle_network(dst.port(), src, &d, self.now);
            }
        }
        panic!("the three gateways never went quiet");
    }

    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(250);
            for (_, core) in &mut self.cores {
                core.handle_timeout(self.now);
            }
            self.shuttle();
        }
    }

    /// `packet` into gateway `from`'s TUN; what each core's TUN got.
    fn send(&mut self, from: usize, packet: &[u8]) -> Vec<Vec<Vec<u8>>> {
        self.cores[from].1.handle_tun(packet, self.now);
        self.shuttle();
        self.cores.iter_mut().map(|(_, c)| drain_tun(c)).collect()
    }
}

/// LIM-5 between two IPsec sites: gateway B answers IPsec connections from A and from C
/// (each a RouteBased gateway whose site is B); A's and C's VNets reach each other through
/// B's forwarding table, and B's own VNet sees none of the transit packets.
#[test]
fn ipsec_transit_between_two_ipsec_sites_lim_5() {
    let mut db = responder_b();
    let g = &mut db.gateways[0];
    g.peers.push(ipsec_peer(
        "b-c",
        C.addr,
        B.addr,
        &[C.vnet],
        "k",
        params(IpsecConnectionMode::ResponderOnly),
    ));
    g.routes.push(route(C.vnet, s2s_hop("b-c")));
    let seeded = |seed: u64| {
        let mut c = Core::new();
        c.set_entropy(Box::new(Seeded::new(seed)));
        c
    };
    let now = Instant::now();
    let mut cores = vec![
        (A.addr, seeded(11), edge(&A, C.vnet)),
        (B.addr, seeded(22), db),
        (C.addr, seeded(33), edge(&C, A.vnet)),
    ];
    for (_, core, d) in &mut cores {
        assert_eq!(core.apply(d, now), vec![]);
    }
    let mut trio = Trio {
        cores: cores.into_iter().map(|(a, c, _)| (a, c)).collect(),
        now,
    };
    trio.run(Duration::from_secs(2));
    let s = trio.cores[1].1.status(trio.now, SystemTime::now());
    let states: Vec<_> = s.gateways[0].connections.iter().map(|c| c.state).collect();
    assert_eq!(states, [TunnelState::Up, TunnelState::Up], "{s:?}");
    let (a_host, c_host) = (Ipv4Addr::new(10, 11, 0, 5), Ipv4Addr::new(10, 13, 0, 7));
    let there = ipv4_udp(a_host, c_host, 1, 2, b"A to C through B");
    let got = trio.send(0, &there);
    assert_eq!(got[2], vec![there], "C's TUN");
    assert!(got[0].is_empty() && got[1].is_empty(), "{got:?}");
    let back = ipv4_udp(c_host, a_host, 2, 1, b"C to A through B");
    let got = trio.send(2, &back);
    assert_eq!(got[0], vec![back], "A's TUN");
    assert!(got[1].is_empty() && got[2].is_empty(), "{got:?}");
}
