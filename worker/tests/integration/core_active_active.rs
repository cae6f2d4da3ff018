//! Issue #16 item 6: an active-active gateway on a virtual clock. Two `Core`s run instance 0
//! (active) and instance 1 (standby) of one gateway, each from its own desired state made by
//! `active_active_instance`: site A's device runs two tunnels with one key, tunnel 1 to
//! instance 0 at its device port and tunnel 2 to instance 1 at the next port. The standby keeps
//! tunnel 2 up (it answers, initiates, keeps alive) and forwards what comes through it into the
//! VNet, while its VNet-to-VNet and point-to-site peers stay silent and traffic from the VNet
//! stays with the active instance; on a takeover, traffic from the VNet leaves through tunnel 2
//! at once, without a handshake.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use isthmus_shared::desired::{
    DesiredState, PeerDesired, PeerKind, TunnelState, active_active_instance,
};
use isthmus_shared::instances::{HeartbeatKey, InstanceDesired, InstanceRole};
use isthmus_shared::routes::NextHop;
use isthmus_worker::core::failover::BootId;
use isthmus_worker::core::packet::ipv4_icmp_echo;
use isthmus_worker::core::{Core, Transmit};

use crate::harness::*;

/// Site A's device: tunnel 1 (its device port) and tunnel 2 (the next port).
fn tunnel_addr(tunnel: u16) -> SocketAddr {
    SocketAddr::new(site_addr(2).ip(), site_addr(2).port() + tunnel - 1)
}

fn v2v_addr() -> SocketAddr {
    "198.51.100.12:51002".parse().expect("addr")
}

fn client_addr() -> SocketAddr {
    "203.0.113.50:50000".parse().expect("addr")
}

fn hb_addr(instance: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1 + instance], 51899))
}

fn block(instance: u8) -> InstanceDesired {
    InstanceDesired {
        instance,
        active: 0,
        term: 1,
        partner: hb_addr(1 - instance),
        key: HeartbeatKey::new([0x42; 32]),
        interval_ms: 200,
        misses: 5,
        handover: false,
    }
}

fn p2s_client() -> PeerDesired {
    let mut p = s2s_peer("laptop", 20, client_addr(), &["172.16.0.2/32"]);
    p.kind = PeerKind::P2sClient {
        gateway: qn("gw"),
        client: "laptop".to_owned(),
    };
    p.preshared_key = None;
    p.endpoint = None;
    p.last_endpoint = Some(client_addr().to_string());
    p
}

/// Instance `instance`'s desired state of the active-active gateway (key seed 1): site A
/// (seed 2, keepalive 25 s, as the server sets it for route-based gateways), a VNet-to-VNet
/// remote (seed 12) and a point-to-site client (seed 20).
fn desired(instance: u8) -> DesiredState {
    let mut site = s2s_peer("a", 2, tunnel_addr(1), &["10.2.0.0/16"]);
    site.persistent_keepalive_secs = Some(25);
    let mut g = gateway(
        "gw",
        1,
        GW_PORT,
        vec![
            site,
            v2v_peer("x-y", 12, v2v_addr(), "10.12.0.0/16"),
            p2s_client(),
        ],
        vec![
            vnet_route("10.1.0.0/16"),
            route("10.2.0.0/16", s2s_hop("a")),
            route("10.12.0.0/16", v2v_hop("x-y")),
            route(
                "172.16.0.2/32",
                NextHop::P2sClient {
                    client: "laptop".to_owned(),
                    gateway: qn("gw"),
                },
            ),
        ],
    );
    g = active_active_instance(&g, instance);
    g.instance = Some(block(instance));
    state(1, vec![g])
}

fn core(instance: u8, now: Instant) -> Core {
    let mut c = Core::new();
    c.set_boot_id(BootId([instance + 1; 16]));
    assert!(c.apply(&desired(instance), now).is_empty());
    c
}

/// Every datagram of a transmit (GSO batches split).
fn datagrams(t: &Transmit) -> Vec<Vec<u8>> {
    match t.segment_size {
        Some(n) => t.payload.chunks(n).map(<[u8]>::to_vec).collect(),
        None => vec![t.payload.clone()],
    }
}

/// The lab: both instances, the site device's two tunnels, and whether instance 0 is alive.
struct Lab {
    a: Core,
    b: Core,
    tunnel1: Site,
    tunnel2: Site,
    a_alive: bool,
    /// Where the standby (instance 1) sent datagrams, while it was the standby.
    standby_sent_to: Vec<SocketAddr>,
}

impl Lab {
    fn new(now: Instant) -> Self {
        Self {
            a: core(0, now),
            b: core(1, now),
            tunnel1: Site::new(2, 1, tunnel_addr(1)),
            tunnel2: Site::new(2, 1, tunnel_addr(2)),
            a_alive: true,
            standby_sent_to: Vec::new(),
        }
    }

    fn role_b(&self, now: Instant) -> InstanceRole {
        self.b
            .instance_status(&qn("gw"), now)
            .expect("redundant")
            .role
    }

    /// Delivers heartbeats and datagrams between the instances and the site's tunnels until
    /// nothing moves (a dead instance 0 sends and receives nothing).
    fn settle(&mut self, now: Instant) {
        for _ in 0..1000 {
            let mut moved = false;
            let ha: Vec<_> = std::iter::from_fn(|| self.a.poll_heartbeat()).collect();
            let hb: Vec<_> = std::iter::from_fn(|| self.b.poll_heartbeat()).collect();
            for h in ha.into_iter().filter(|_| self.a_alive) {
                moved = true;
                self.b.handle_heartbeat(hb_addr(0), &h.payload, now);
            }
            for h in hb.into_iter().filter(|_| self.a_alive) {
                moved = true;
                self.a.handle_heartbeat(hb_addr(1), &h.payload, now);
            }
            let from_a: Vec<_> = std::iter::from_fn(|| self.a.poll_transmit()).collect();
            for t in from_a.iter().filter(|_| self.a_alive) {
                if t.dst == tunnel_addr(1) {
                    for d in datagrams(t) {
                        for back in self.tunnel1.recv(&d) {
                            moved = true;
                            self.a.handle_network(GW_PORT, tunnel_addr(1), &back, now);
                        }
                    }
                }
            }
            let standby = self.role_b(now) == InstanceRole::Standby;
            let from_b: Vec<_> = std::iter::from_fn(|| self.b.poll_transmit()).collect();
            for t in &from_b {
                if standby {
                    self.standby_sent_to.push(t.dst);
                }
                if t.dst == tunnel_addr(2) {
                    for d in datagrams(t) {
                        for back in self.tunnel2.recv(&d) {
                            moved = true;
                            self.b.handle_network(GW_PORT, tunnel_addr(2), &back, now);
                        }
                    }
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the lab never settles");
    }

    /// Runs both cores' timers from `from` to `until`.
    fn run(&mut self, from: Instant, until: Instant) {
        let mut now = from;
        loop {
            if self.a_alive {
                self.a.handle_timeout(now);
            }
            self.b.handle_timeout(now);
            self.settle(now);
            let next = self
                .b
                .poll_timeout()
                .into_iter()
                .chain(self.a.poll_timeout().filter(|_| self.a_alive))
                .min()
                .expect("timers");
            if next > until {
                return;
            }
            now = next.max(now + Duration::from_micros(1));
        }
    }

    fn site_state(&self, core: &Core, now: Instant) -> TunnelState {
        core.status(now, SystemTime::now()).gateways[0]
            .connections
            .iter()
            .find(|c| c.name == "a")
            .expect("site A")
            .state
    }
}

#[test]
fn a_standby_keeps_the_flagged_site_tunnel_up_and_forwards_it_while_other_peers_stay_silent() {
    let t0 = Instant::now();
    let mut lab = Lab::new(t0);
    let t = t0 + Duration::from_secs(30);
    lab.run(t0, t);
    assert_eq!(lab.role_b(t), InstanceRole::Standby);
    // The standby initiated tunnel 2 itself (keepalive set) and kept it alive, and sent
    // nothing to anyone else.
    assert!(
        lab.standby_sent_to.contains(&tunnel_addr(2)),
        "the standby brings tunnel 2 up"
    );
    assert!(
        lab.standby_sent_to.iter().all(|d| *d == tunnel_addr(2)),
        "the standby sent only to site A's tunnel 2: {:?}",
        lab.standby_sent_to
    );
    assert_eq!(lab.site_state(&lab.a, t), TunnelState::Up, "tunnel 1");
    assert_eq!(lab.site_state(&lab.b, t), TunnelState::Up, "tunnel 2");

    // The site sends through both tunnels at once: each instance forwards into the VNet.
    let ping = ipv4_icmp_echo(v4([10, 2, 0, 5]), v4([10, 1, 0, 7]), 1, 1);
    for (core, tunnel, n) in [
        (&mut lab.a, &mut lab.tunnel1, 1),
        (&mut lab.b, &mut lab.tunnel2, 2),
    ] {
        let d = tunnel.send(&ping);
        assert_eq!(d.len(), 1, "tunnel {n} has a session");
        core.handle_network(GW_PORT, tunnel.addr, &d[0], t);
        assert_eq!(drain_tun(core), vec![ping.clone()], "through tunnel {n}");
    }

    // The standby's other peers stay silent: an initiation from the VNet-to-VNet remote is
    // not answered, and traffic from the VNet to the site leaves through the active only.
    let mut remote = Site::with_keys(12, 1, Some([9; 32]), v2v_addr());
    let before = lab
        .b
        .gateway_counters(&qn("gw"))
        .expect("gw")
        .standby_dropped;
    let init = remote.rehandshake();
    lab.b.handle_network(GW_PORT, v2v_addr(), &init[0], t);
    let to_site = ipv4_icmp_echo(v4([10, 1, 0, 7]), v4([10, 2, 0, 5]), 2, 1);
    lab.b.handle_tun(&to_site, t);
    assert!(
        std::iter::from_fn(|| lab.b.poll_transmit())
            .next()
            .is_none(),
        "no answer to the remote gateway, nothing from the VNet"
    );
    let after = lab
        .b
        .gateway_counters(&qn("gw"))
        .expect("gw")
        .standby_dropped;
    assert_eq!(after - before, 2);
    lab.a.handle_tun(&to_site, t);
    let out: Vec<_> = std::iter::from_fn(|| lab.a.poll_transmit()).collect();
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].dst,
        tunnel_addr(1),
        "the active sends through tunnel 1"
    );
    lab.tunnel1.recv(&out[0].payload);
    assert_eq!(lab.tunnel1.received.last(), Some(&to_site));
}

#[test]
fn on_a_takeover_traffic_from_the_vnet_leaves_through_tunnel_2_at_once_without_a_handshake() {
    let t0 = Instant::now();
    let mut lab = Lab::new(t0);
    let t = t0 + Duration::from_secs(5);
    lab.run(t0, t);
    // Instance 0's worker dies; instance 1 takes over one detection later.
    lab.a_alive = false;
    let after = t + Duration::from_secs(2);
    lab.run(t, after);
    assert_eq!(lab.role_b(after), InstanceRole::Active);
    let to_site = ipv4_icmp_echo(v4([10, 1, 0, 7]), v4([10, 2, 0, 5]), 3, 1);
    lab.b.handle_tun(&to_site, after);
    let out: Vec<_> = std::iter::from_fn(|| lab.b.poll_transmit()).collect();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].dst, tunnel_addr(2));
    assert!(
        lab.tunnel2.recv(&out[0].payload).is_empty(),
        "a data message of the session that is up, not a handshake"
    );
    assert_eq!(lab.tunnel2.received.last(), Some(&to_site));
}
