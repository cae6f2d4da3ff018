//! Issue 17: IPsec tunnels in the core, two Cores on a virtual clock with in-memory
//! datagrams: gateway A's IPsec connection has gateway B as its site device and vice versa.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use isthmus_shared::desired::{
    DesiredState, DownReason, IpsecPeerDesired, IpsecStatus, PeerDesired, SaState, Secret,
    TunnelState,
};
use isthmus_shared::model::{GatewayType, IpsecConnectionMode, IpsecParameters};
use isthmus_worker::core::packet::ipv4_udp;
use isthmus_worker::core::{ApplyOptions, Core, Event, Transmit};

use crate::harness::*;
use crate::ike_exchange::Seeded;

pub(crate) const A_PORT: u16 = 51001;
pub(crate) const B_PORT: u16 = 51002;

pub(crate) fn a_addr() -> SocketAddr {
    SocketAddr::from(([198, 51, 100, 1], A_PORT))
}

pub(crate) fn b_addr() -> SocketAddr {
    SocketAddr::from(([198, 51, 100, 2], B_PORT))
}

/// Gateway `me`'s IPsec connection `conn` to the device at `device` (the other gateway).
pub(crate) fn ipsec_peer(
    conn: &str,
    device: SocketAddr,
    own: SocketAddr,
    allowed: &[&str],
    psk: &str,
    params: IpsecParameters,
) -> PeerDesired {
    let mut p = s2s_peer(conn, 0, device, allowed);
    p.public_key = String::new();
    p.preshared_key = None;
    p.ipsec = Some(IpsecPeerDesired {
        psk: Secret::new(psk.to_owned()),
        local_id: own.ip().to_string(),
        remote_id: None,
        parameters: params,
    });
    p
}

pub(crate) struct Side {
    pub(crate) name: &'static str,
    pub(crate) vnet: &'static str,
    pub(crate) port: u16,
    pub(crate) addr: SocketAddr,
}

pub(crate) const A: Side = Side {
    name: "a",
    vnet: "10.11.0.0/16",
    port: A_PORT,
    addr: SocketAddr::V4(std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::new(198, 51, 100, 1),
        A_PORT,
    )),
};
pub(crate) const B: Side = Side {
    name: "b",
    vnet: "10.12.0.0/16",
    port: B_PORT,
    addr: SocketAddr::V4(std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::new(198, 51, 100, 2),
        B_PORT,
    )),
};

/// One gateway's desired state: its VNet behind the TUN, the other's through IPsec.
pub(crate) fn desired(
    me: &Side,
    other: &Side,
    psk: &str,
    params: IpsecParameters,
    ty: GatewayType,
) -> DesiredState {
    let conn = format!("{}-{}", me.name, other.name);
    let mut peer = ipsec_peer(&conn, other.addr, me.addr, &[other.vnet], psk, params);
    if ty == GatewayType::PolicyBased {
        peer.policy_selectors = vec![selector(me.vnet, other.vnet)];
        peer.idle_timeout_secs = Some(300);
    }
    let mut g = gateway(
        me.name,
        if me.name == "a" { 1 } else { 2 },
        me.port,
        vec![peer],
        vec![vnet_route(me.vnet), route(other.vnet, s2s_hop(&conn))],
    );
    g.gateway_type = ty;
    g.public_endpoint = Some(me.addr);
    state(1, vec![g])
}

/// [`desired`] of a RouteBased gateway with pre-shared key "k" and connection mode `mode`.
pub(crate) fn route_based(me: &Side, other: &Side, mode: IpsecConnectionMode) -> DesiredState {
    desired(me, other, "k", params(mode), GatewayType::RouteBased)
}

pub(crate) fn params(mode: IpsecConnectionMode) -> IpsecParameters {
    IpsecParameters::of(None, mode)
}

/// Two gateways and the wire between them.
pub(crate) struct Pair {
    pub(crate) a: Core,
    pub(crate) b: Core,
    pub(crate) now: Instant,
    /// Drop what B sends (a dead peer).
    pub(crate) b_silent: bool,
    /// Every datagram from A to B, as sent.
    pub(crate) a_to_b: Vec<Vec<u8>>,
}

impl Pair {
    /// A initiating only and B answering only (RouteBased), with pre-shared keys `psk_a` and
    /// `psk_b`.
    pub(crate) fn initiator_and_responder(psk_a: &str, psk_b: &str) -> Self {
        let only = |me: &Side, other: &Side, psk: &str, mode: IpsecConnectionMode| {
            desired(me, other, psk, params(mode), GatewayType::RouteBased)
        };
        Self::new(
            &only(&A, &B, psk_a, IpsecConnectionMode::InitiatorOnly),
            &only(&B, &A, psk_b, IpsecConnectionMode::ResponderOnly),
        )
    }

    pub(crate) fn new(da: &DesiredState, db: &DesiredState) -> Self {
        Self::with_options(da, db, ApplyOptions::default())
    }

    fn with_options(da: &DesiredState, db: &DesiredState, o: ApplyOptions) -> Self {
        let now = Instant::now();
        let mut a = Core::new();
        a.set_entropy(Box::new(Seeded::new(11)));
        let mut b = Core::new();
        b.set_entropy(Box::new(Seeded::new(22)));
        assert_eq!(a.apply_with(da, now, o), vec![]);
        assert_eq!(b.apply_with(db, now, o), vec![]);
        Self {
            a,
            b,
            now,
            b_silent: false,
            a_to_b: Vec::new(),
        }
    }

    fn deliver(&mut self, t: Transmit, from_a: bool) {
        let segs: Vec<Vec<u8>> = match t.segment_size {
            Some(n) => t.payload.chunks(n).map(<[u8]>::to_vec).collect(),
            None => vec![t.payload],
        };
        for d in segs {
            if from_a {
                assert_eq!(t.dst.ip(), b_addr().ip(), "A sends only to B");
                self.a_to_b.push(d.clone());
                if t.dst.port() == B_PORT {
                    self.b.handle_network(B_PORT, a_addr(), &d, self.now);
                }
            } else {
                assert_eq!(t.dst.ip(), a_addr().ip(), "B sends only to A");
                if !self.b_silent && t.dst.port() == A_PORT {
                    self.a.handle_network(A_PORT, b_addr(), &d, self.now);
                }
            }
        }
    }

    /// Delivers everything in flight until quiet.
    pub(crate) fn shuttle(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit() {
                moved = true;
                self.deliver(t, true);
            }
            while let Some(t) = self.b.poll_transmit() {
                moved = true;
                self.deliver(t, false);
            }
            if !moved {
                return;
            }
        }
        panic!("the two gateways never went quiet");
    }

    /// Runs both clocks for `d`, a tick at a time.
    pub(crate) fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(250);
            self.a.handle_timeout(self.now);
            self.b.handle_timeout(self.now);
            self.shuttle();
        }
    }

    pub(crate) fn status(
        core: &Core,
        now: Instant,
    ) -> (TunnelState, Option<DownReason>, IpsecStatus) {
        let s = core.status(now, SystemTime::now());
        let c = &s.gateways[0].connections[0];
        (c.state, c.reason, c.ipsec.clone().expect("an IPsec status"))
    }

    pub(crate) fn a_status(&self) -> (TunnelState, Option<DownReason>, IpsecStatus) {
        Self::status(&self.a, self.now)
    }

    pub(crate) fn b_status(&self) -> (TunnelState, Option<DownReason>, IpsecStatus) {
        Self::status(&self.b, self.now)
    }

    /// A packet from A's VNet to B's, through the tunnel; what B's TUN gets.
    pub(crate) fn a_to_b_vnet(&mut self, p: &[u8]) -> Vec<Vec<u8>> {
        self.a.handle_tun(p, self.now);
        self.shuttle();
        drain_tun(&mut self.b)
    }

    pub(crate) fn b_to_a_vnet(&mut self, p: &[u8]) -> Vec<Vec<u8>> {
        self.b.handle_tun(p, self.now);
        self.shuttle();
        drain_tun(&mut self.a)
    }
}

pub(crate) fn up(p: &Pair) {
    let (sa, ra, ia) = p.a_status();
    let (sb, rb, ib) = p.b_status();
    assert_eq!((sa, ra), (TunnelState::Up, None), "A: {ia:?}");
    assert_eq!((sb, rb), (TunnelState::Up, None), "B: {ib:?}");
    assert_eq!(ia.ike_state, SaState::Established);
    assert_eq!(ib.ike_state, SaState::Established);
    assert_eq!(ia.ike_spis, ib.ike_spis, "both ends name one IKE SA");
}

pub(crate) fn pkt(from_a: bool, n: u16, len: usize) -> Vec<u8> {
    let (s, d) = if from_a {
        (v4([10, 11, 0, 5]), v4([10, 12, 0, 9]))
    } else {
        (v4([10, 12, 0, 9]), v4([10, 11, 0, 5]))
    };
    let mut body = vec![0u8; len.saturating_sub(28)];
    body[..2].copy_from_slice(&n.to_be_bytes());
    ipv4_udp(s, d, 4000, 5000, &body)
}

#[test]
fn ipsec_initiator_only_and_responder_only_come_up_and_carry_packets_both_ways() {
    let mut p = Pair::initiator_and_responder("shared secret", "shared secret");
    p.run(Duration::from_secs(1));
    up(&p);
    let (_, _, ia) = p.a_status();
    let (_, _, ib) = p.b_status();
    assert!(ia.initiator && !ib.initiator);
    assert_eq!(
        ia.ike_proposal.as_deref(),
        Some("aes256gcm16-prfsha256-curve25519")
    );
    assert_eq!(ia.children.len(), 1);
    assert_eq!(ia.children[0].inbound_spi, ib.children[0].outbound_spi);
    assert_eq!(ia.children[0].cipher, "aes256gcm16");
    assert!(
        ia.children[0]
            .selectors
            .contains(&"0.0.0.0/0 === 0.0.0.0/0".to_owned())
    );
    // IKE_SA_INIT went without the marker, everything after with it (forced NAT-T).
    assert_ne!(p.a_to_b[0][..4], [0, 0, 0, 0]);
    assert!(
        p.a_to_b[1..]
            .iter()
            .all(|d| d[..4] == [0, 0, 0, 0] || d.len() == 1)
    );

    let x = pkt(true, 1, 1420);
    assert_eq!(p.a_to_b_vnet(&x), vec![x.clone()]);
    let y = pkt(false, 2, 100);
    assert_eq!(p.b_to_a_vnet(&y), vec![y.clone()]);
    let (_, _, ia) = p.a_status();
    assert_eq!(ia.children[0].tx_bytes, x.len() as u64);
    assert_eq!(ia.children[0].rx_bytes, y.len() as u64);
    let s = p.a.status(p.now, SystemTime::now());
    let c = &s.gateways[0].connections[0];
    assert_eq!((c.tx_bytes, c.rx_bytes), (x.len() as u64, y.len() as u64));
    // The ESP datagram of a full-size inner packet fits a 1500-byte IPv4 path.
    let esp = p
        .a_to_b
        .iter()
        .rev()
        .find(|d| d.len() > 1000)
        .expect("the ESP datagram");
    assert!(20 + 8 + esp.len() <= 1500, "{}", esp.len());
    assert_eq!(p.a.counters().total() + p.b.counters().total(), 0);
    // NAT-T keepalives keep coming while idle, and DPD keeps the tunnel up.
    p.run(Duration::from_secs(120));
    up(&p);
    assert!(p.a_to_b.iter().any(|d| d == &[0xff]));
}

#[test]
fn ipsec_both_default_the_duplicate_rule_leaves_exactly_one_ike_sa() {
    let mut p = Pair::new(
        &route_based(&A, &B, IpsecConnectionMode::Default),
        &route_based(&B, &A, IpsecConnectionMode::Default),
    );
    p.run(Duration::from_secs(3));
    up(&p);
    let ta = p.a.ipsec_tunnel(&qn("a"), "a-b").expect("tunnel");
    let tb = p.b.ipsec_tunnel(&qn("b"), "b-a").expect("tunnel");
    assert_eq!((ta.ike_sa_count(), tb.ike_sa_count()), (1, 1));
    let (_, _, ia) = p.a_status();
    assert_eq!(ia.children.len(), 1);
    let x = pkt(true, 1, 500);
    assert_eq!(p.a_to_b_vnet(&x), vec![x]);
}

#[test]
fn ipsec_child_sa_rekey_by_kilobytes_under_continuous_traffic_loses_no_packet() {
    let mut prm = params(IpsecConnectionMode::InitiatorOnly);
    prm.child_lifetime_kilobytes = Some(1024);
    let mut prb = params(IpsecConnectionMode::ResponderOnly);
    prb.child_lifetime_kilobytes = Some(1024);
    let mut p = Pair::new(
        &desired(&A, &B, "k", prm, GatewayType::RouteBased),
        &desired(&B, &A, "k", prb, GatewayType::RouteBased),
    );
    p.run(Duration::from_secs(1));
    up(&p);
    let first = p.a_status().2.children[0].inbound_spi.clone();
    let mut got_b = 0usize;
    let mut got_a = 0usize;
    let n = 3000u16;
    for i in 0..n {
        p.a.handle_tun(&pkt(true, i, 1400), p.now);
        p.b.handle_tun(&pkt(false, i, 1400), p.now);
        if i % 10 == 0 {
            p.now += Duration::from_millis(5);
            p.a.handle_timeout(p.now);
            p.b.handle_timeout(p.now);
        }
        p.shuttle();
        got_b += drain_tun(&mut p.b).len();
        got_a += drain_tun(&mut p.a).len();
    }
    p.run(Duration::from_secs(2));
    assert_eq!((got_a, got_b), (usize::from(n), usize::from(n)));
    let (_, _, ia) = p.a_status();
    assert!(ia.rekeys >= 2, "{ia:?}");
    assert_eq!(
        ia.children.len(),
        1,
        "the old CHILD SAs were deleted: {ia:?}"
    );
    assert_ne!(ia.children[0].inbound_spi, first);
    assert_eq!(p.a.counters().total() + p.b.counters().total(), 0);
    up(&p);
}

#[test]
fn ipsec_dpd_declares_a_silent_peer_dead_and_the_gateway_initiates_again() {
    let mut p = Pair::initiator_and_responder("k", "k");
    p.run(Duration::from_secs(1));
    up(&p);
    p.b_silent = true;
    p.run(Duration::from_secs(29));
    assert_eq!(p.a_status().0, TunnelState::Up, "DPD waits 30 s");
    p.run(Duration::from_secs(80));
    let (state, reason, ia) = p.a_status();
    assert_eq!(ia.last_error.as_deref(), Some("DEAD_PEER"), "{ia:?}");
    assert!(ia.last_error_unix.is_some());
    assert!(
        matches!(
            (state, reason),
            (TunnelState::Connecting, None) | (TunnelState::Down, Some(DownReason::NoAnswer))
        ),
        "{state:?} {reason:?}"
    );
    // It initiates again: an IKE_SA_INIT (no marker) went out after the verdict.
    let sent = p.a_to_b.len();
    p.run(Duration::from_secs(15));
    assert!(
        p.a_to_b[sent..]
            .iter()
            .any(|d| d.len() > 28 && d[..4] != [0, 0, 0, 0])
    );
    // The peer comes back: the tunnel is up again, with one IKE SA on each side.
    p.b_silent = false;
    // Within the initiator's retransmissions (1 s doubling) and the next attempt.
    p.run(Duration::from_secs(45));
    up(&p);
    let tb = p.b.ipsec_tunnel(&qn("b"), "b-a").expect("tunnel");
    assert_eq!(tb.ike_sa_count(), 1);
    let x = pkt(true, 7, 300);
    assert_eq!(p.a_to_b_vnet(&x), vec![x]);
}

#[test]
fn ipsec_wrong_psk_reports_authentication_failed_and_key_mismatch() {
    let mut p = Pair::initiator_and_responder("right", "wrong");
    p.run(Duration::from_secs(2));
    for (state, reason, s) in [p.a_status(), p.b_status()] {
        assert_eq!(
            (state, reason),
            (TunnelState::Down, Some(DownReason::KeyMismatch)),
            "{s:?}"
        );
        assert_eq!(s.last_error.as_deref(), Some("AUTHENTICATION_FAILED"));
        assert_eq!(s.ike_state, SaState::None);
    }
    // It keeps trying (every 10 s) and stays key_mismatch.
    p.run(Duration::from_secs(30));
    assert_eq!(p.a_status().1, Some(DownReason::KeyMismatch));
    let x = pkt(true, 1, 100);
    assert!(p.a_to_b_vnet(&x).is_empty());
    assert!(p.a.counters().ipsec_no_sa >= 1);
}

#[test]
fn ipsec_unknown_spi_tampered_and_replayed_esp_are_dropped_and_counted() {
    let mut p = Pair::initiator_and_responder("k", "k");
    p.run(Duration::from_secs(1));
    let x = pkt(true, 1, 200);
    assert_eq!(p.a_to_b_vnet(&x), vec![x.clone()]);
    let esp = p.a_to_b.last().expect("the ESP datagram").clone();
    // Replayed.
    p.b.handle_network(B_PORT, a_addr(), &esp, p.now);
    // Tampered.
    let mut bad = esp.clone();
    let l = bad.len();
    bad[l - 1] ^= 1;
    bad[7] = bad[7].wrapping_add(1);
    p.b.handle_network(B_PORT, a_addr(), &bad, p.now);
    // Unknown SPI.
    let mut unknown = esp.clone();
    unknown[..4].copy_from_slice(&0x7777_7777u32.to_be_bytes());
    p.b.handle_network(B_PORT, a_addr(), &unknown, p.now);
    // Truncated.
    p.b.handle_network(B_PORT, a_addr(), &esp[..12], p.now);
    assert!(drain_tun(&mut p.b).is_empty());
    let c = p.b.counters();
    assert_eq!(
        (
            c.esp_replay,
            c.esp_integrity,
            c.esp_unknown_spi,
            c.esp_malformed
        ),
        (1, 1, 1, 1)
    );
    let drops = p.b.status(p.now, SystemTime::now()).gateways[0]
        .drops
        .expect("drops");
    assert_eq!(drops.bad_datagrams, 4);
    // The tunnel is unaffected.
    let y = pkt(true, 2, 200);
    assert_eq!(p.a_to_b_vnet(&y), vec![y]);
    up(&p);
}

#[test]
fn ipsec_policy_based_tunnel_idles_out_and_comes_back_on_traffic_s2s_2() {
    let o = ApplyOptions {
        idle_override: Some(Duration::from_secs(20)),
    };
    let mut p = Pair::with_options(
        &desired(
            &A,
            &B,
            "k",
            params(IpsecConnectionMode::Default),
            GatewayType::PolicyBased,
        ),
        &desired(
            &B,
            &A,
            "k",
            params(IpsecConnectionMode::Default),
            GatewayType::PolicyBased,
        ),
        o,
    );
    p.run(Duration::from_secs(2));
    up(&p);
    let (_, _, ia) = p.a_status();
    assert_eq!(
        ia.children[0].selectors,
        vec!["10.11.0.0/16 === 10.12.0.0/16".to_owned()]
    );
    let x = pkt(true, 1, 100);
    assert_eq!(p.a_to_b_vnet(&x), vec![x.clone()]);
    // GW-1: outside the selectors is dropped.
    let outside = ipv4_udp(v4([10, 11, 0, 5]), v4([10, 13, 0, 1]), 1, 2, b"no");
    p.a.handle_tun(&outside, p.now);
    p.run(Duration::from_secs(25));
    let (sa, _, ia) = p.a_status();
    let (sb, _, _) = p.b_status();
    assert_eq!((sa, sb), (TunnelState::Idle, TunnelState::Idle), "{ia:?}");
    assert!(ia.children.is_empty());
    assert!(std::iter::from_fn(|| p.a.poll_event()).any(|e| matches!(e, Event::TunnelIdle { .. })));
    // Traffic brings it back.
    p.a.handle_tun(&x, p.now);
    assert!(
        std::iter::from_fn(|| p.a.poll_event()).any(|e| matches!(e, Event::TunnelRestarted { .. }))
    );
    p.run(Duration::from_secs(1));
    up(&p);
    assert_eq!(p.a_to_b_vnet(&x), vec![x]);
}

#[test]
fn ipsec_ike_sa_is_rekeyed_near_its_lifetime_without_losing_a_packet() {
    let mut prm = params(IpsecConnectionMode::InitiatorOnly);
    prm.ike_lifetime_secs = 60;
    let mut prb = params(IpsecConnectionMode::ResponderOnly);
    prb.ike_lifetime_secs = 60;
    let mut p = Pair::new(
        &desired(&A, &B, "k", prm, GatewayType::RouteBased),
        &desired(&B, &A, "k", prb, GatewayType::RouteBased),
    );
    p.run(Duration::from_secs(1));
    up(&p);
    let first = p.a_status().2.ike_spis.clone();
    let child = p.a_status().2.children[0].inbound_spi.clone();
    let (mut sent, mut got) = (0usize, 0usize);
    // A packet each way every 250 ms for 70 s: past 90 % of the IKE SA's 60 s.
    for i in 0..280u16 {
        p.run(Duration::from_millis(250));
        got += p.a_to_b_vnet(&pkt(true, i, 200)).len();
        got += p.b_to_a_vnet(&pkt(false, i, 200)).len();
        sent += 2;
    }
    assert_eq!(got, sent);
    up(&p);
    let (_, _, ia) = p.a_status();
    assert_ne!(ia.ike_spis, first, "a new IKE SA: {ia:?}");
    let ta = p.a.ipsec_tunnel(&qn("a"), "a-b").expect("tunnel");
    let tb = p.b.ipsec_tunnel(&qn("b"), "b-a").expect("tunnel");
    assert_eq!(
        (ta.ike_sa_count(), tb.ike_sa_count()),
        (1, 1),
        "the old one was deleted"
    );
    assert_eq!(ia.children.len(), 1);
    // Rekeyed in place (CREATE_CHILD_SA): the CHILD SA moved to the new IKE SA.
    assert_eq!(ia.children[0].inbound_spi, child);
    assert!(ia.rekeys >= 1);
    assert_eq!(p.a.counters().total() + p.b.counters().total(), 0);
}

#[test]
fn ipsec_a_standby_instance_stays_silent_and_initiates_once_it_takes_over() {
    use isthmus_shared::instances::{HeartbeatKey, InstanceDesired};
    let mut da = route_based(&A, &B, IpsecConnectionMode::Default);
    // Instance 1 of a redundant gateway whose active instance 0 is never heard.
    da.gateways[0].instance = Some(InstanceDesired {
        instance: 1,
        active: 0,
        term: 1,
        partner: SocketAddr::from(([127, 0, 0, 1], 51899)),
        key: HeartbeatKey::new([0x42; 32]),
        interval_ms: 200,
        misses: 5,
        handover: false,
    });
    let mut p = Pair::new(
        &da,
        &route_based(&B, &A, IpsecConnectionMode::ResponderOnly),
    );
    // The standby initiates nothing, and a packet from the VNet for the site goes nowhere.
    p.run(Duration::from_millis(750));
    assert!(p.a_to_b.is_empty(), "the standby sent {:?}", p.a_to_b);
    p.a.handle_tun(&pkt(true, 1, 100), p.now);
    p.shuttle();
    assert!(p.a_to_b.is_empty());
    assert!(p.a.counters().standby_dropped >= 1);
    // No heartbeat from the active instance: it takes over and initiates IKE.
    p.run(Duration::from_secs(3));
    up(&p);
    assert_ne!(
        p.a_to_b[0][..4],
        [0, 0, 0, 0],
        "IKE_SA_INIT first, without the marker"
    );
    let x = pkt(true, 2, 100);
    assert_eq!(p.a_to_b_vnet(&x), vec![x]);
}

#[test]
fn ipsec_a_new_desired_state_keeps_running_sas_unless_the_connection_changed() {
    let da = route_based(&A, &B, IpsecConnectionMode::InitiatorOnly);
    let db = route_based(&B, &A, IpsecConnectionMode::ResponderOnly);
    let mut p = Pair::new(&da, &db);
    p.run(Duration::from_secs(1));
    up(&p);
    let first = p.a_status().2.ike_spis.clone();
    let mut again = da.clone();
    again.version = 2;
    assert_eq!(p.a.apply(&again, p.now), vec![]);
    p.run(Duration::from_secs(1));
    assert_eq!(p.a_status().2.ike_spis, first, "kept");
    let x = pkt(true, 1, 100);
    assert_eq!(p.a_to_b_vnet(&x), vec![x.clone()]);
    // Another shared key on both ends: new SAs.
    let mut a3 = desired(
        &A,
        &B,
        "k2",
        params(IpsecConnectionMode::InitiatorOnly),
        GatewayType::RouteBased,
    );
    a3.version = 3;
    let mut b3 = desired(
        &B,
        &A,
        "k2",
        params(IpsecConnectionMode::ResponderOnly),
        GatewayType::RouteBased,
    );
    b3.version = 3;
    assert_eq!(p.a.apply(&a3, p.now), vec![]);
    assert_eq!(p.b.apply(&b3, p.now), vec![]);
    p.run(Duration::from_secs(2));
    up(&p);
    assert_ne!(p.a_status().2.ike_spis, first);
    assert_eq!(p.a_to_b_vnet(&x), vec![x]);
    // The peer removed: the device is told at once (a Delete of the IKE SA).
    let mut none = da.clone();
    none.version = 4;
    none.gateways[0].peers.clear();
    assert_eq!(p.a.apply(&none, p.now), vec![]);
    p.shuttle();
    let tb = p.b.ipsec_tunnel(&qn("b"), "b-a").expect("tunnel");
    assert_eq!(tb.ike_sa_count(), 0);
    assert_ne!(p.b_status().0, TunnelState::Up);
    // An IPsec peer needs randomness: a core without it refuses the peer, and says why.
    let mut bare = Core::new();
    let errors = bare.apply(&da, p.now);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].to_string().contains("IPsec peer"),
        "{}",
        errors[0]
    );
}
