//! Deterministic tests of the sans-IO core on a virtual clock with in-memory packets.

use std::time::{Duration, Instant, SystemTime};

use isthmus_shared::desired::TunnelState;
use isthmus_shared::model::GatewayType;
use isthmus_shared::routes::NextHop;
use isthmus_worker::core::packet::{ipv4_icmp_echo, ipv4_udp};
use isthmus_worker::core::{Core, Decision, Event};

use crate::harness::*;

fn started(desired: &isthmus_shared::desired::DesiredState, t0: Instant) -> (Core, Vec<Site>) {
    let mut core = Core::new();
    assert!(core.apply(desired, t0).is_empty());
    let sites = vec![Site::new(2, 1, site_addr(2)), Site::new(3, 1, site_addr(3))];
    (core, sites)
}

/// Site A sends one packet to the VNet: handshake, then the packet reaches the TUN side.
fn a_to_vnet(core: &mut Core, sites: &mut [Site], packet: &[u8], now: Instant) -> Vec<Vec<u8>> {
    site_to_vnet(core, sites, 0, packet, now)
}

#[test]
fn s2s_1_site_device_handshakes_and_icmp_udp_pass_both_ways() {
    let t0 = Instant::now();
    let (mut core, mut sites) = started(&two_sites(), t0);
    let ping = ipv4_icmp_echo(v4([10, 2, 0, 5]), v4([10, 1, 0, 7]), 1, 1);
    assert_eq!(
        a_to_vnet(&mut core, &mut sites, &ping, t0),
        vec![ping.clone()]
    );

    // The VNet answers: from the TUN into site A's tunnel.
    let reply = ipv4_udp(v4([10, 1, 0, 7]), v4([10, 2, 0, 5]), 53, 4000, b"answer");
    core.handle_tun(&reply, t0);
    let lost = pump(&mut core, &mut sites, Vec::new(), t0);
    assert!(lost.is_empty());
    assert_eq!(sites[0].received, vec![reply.clone()]);

    let udp = ipv4_udp(v4([10, 2, 0, 5]), v4([10, 1, 0, 7]), 4000, 53, b"question");
    assert_eq!(
        a_to_vnet(&mut core, &mut sites, &udp, t0),
        vec![udp.clone()]
    );

    let a = core.peer(&qn("gw"), "a").expect("peer a");
    assert!(a.established);
    assert_eq!(a.endpoint, Some(site_addr(2)));
    assert_eq!(a.rx_bytes, (ping.len() + udp.len()) as u64);
    assert_eq!(a.tx_bytes, reply.len() as u64);
    let status = core.status(t0, SystemTime::now());
    let c = &status.gateways[0].connections[0];
    assert_eq!(c.name, "a");
    assert!(c.last_handshake_unix.is_some());
    assert_eq!(c.endpoint.as_deref(), Some("192.0.2.2:40002"));
    assert_eq!(core.counters().total(), 0);
}

#[test]
fn two_cores_vnet_to_vnet_pass_packets_both_ways() {
    let t0 = Instant::now();
    let x_addr = "127.0.0.1:51001".parse().expect("addr");
    let y_addr = "127.0.0.1:51002".parse().expect("addr");
    let x = v2v_gateway(
        "x",
        11,
        51001,
        v2v_peer("x-y", 12, y_addr, "10.12.0.0/16"),
        "10.11.0.0/16",
    );
    let y = v2v_gateway(
        "y",
        12,
        51002,
        v2v_peer("y-x", 11, x_addr, "10.11.0.0/16"),
        "10.12.0.0/16",
    );
    let mut cx = Core::new();
    let mut cy = Core::new();
    assert!(cx.apply(&x, t0).is_empty());
    assert!(cy.apply(&y, t0).is_empty());
    // Both start a handshake at once (keepalive set); deliver everything until quiet.
    let shuttle = |cx: &mut Core, cy: &mut Core| {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(t) = cx.poll_transmit() {
                moved = true;
                assert_eq!(t.dst, y_addr);
                cy.handle_network(51002, x_addr, &t.payload, t0);
            }
            while let Some(t) = cy.poll_transmit() {
                moved = true;
                assert_eq!(t.dst, x_addr);
                cx.handle_network(51001, y_addr, &t.payload, t0);
            }
            if !moved {
                break;
            }
        }
    };
    shuttle(&mut cx, &mut cy);
    let p = ipv4_icmp_echo(v4([10, 11, 0, 1]), v4([10, 12, 0, 1]), 3, 1);
    cx.handle_tun(&p, t0);
    shuttle(&mut cx, &mut cy);
    assert_eq!(drain_tun(&mut cy), vec![p]);
    let back = ipv4_udp(v4([10, 12, 0, 1]), v4([10, 11, 0, 1]), 1, 2, b"back");
    cy.handle_tun(&back, t0);
    shuttle(&mut cx, &mut cy);
    assert_eq!(drain_tun(&mut cx), vec![back]);
    assert_eq!(cx.counters().total() + cy.counters().total(), 0);
}

#[test]
fn cryptokey_routing_drops_a_source_outside_allowed_ips() {
    let t0 = Instant::now();
    let (mut core, mut sites) = started(&two_sites(), t0);
    // Site A claims an address of site B.
    let spoof = ipv4_udp(v4([10, 3, 0, 5]), v4([10, 1, 0, 7]), 1, 2, b"spoof");
    assert!(a_to_vnet(&mut core, &mut sites, &spoof, t0).is_empty());
    assert_eq!(core.counters().disallowed_source, 1);
    let ok = ipv4_udp(v4([10, 2, 0, 5]), v4([10, 1, 0, 7]), 1, 2, b"fine");
    assert_eq!(a_to_vnet(&mut core, &mut sites, &ok, t0), vec![ok]);
}

#[test]
fn lim_5_transit_between_two_sites() {
    let t0 = Instant::now();
    let (mut core, mut sites) = started(&two_sites(), t0);
    let p = ipv4_udp(v4([10, 2, 0, 5]), v4([10, 3, 0, 9]), 1, 2, b"transit");
    assert!(a_to_vnet(&mut core, &mut sites, &p, t0).is_empty());
    // The gateway handshook with site B on the way and delivered the queued packet.
    assert_eq!(sites[1].received, vec![p]);
    // A packet back to where it came from is not bounced.
    let back = ipv4_udp(v4([10, 2, 0, 5]), v4([10, 2, 0, 6]), 1, 2, b"loop");
    assert!(a_to_vnet(&mut core, &mut sites, &back, t0).is_empty());
    assert_eq!(core.counters().loop_dropped, 1);
}

#[test]
fn s2s_2_policy_based_tunnel_idles_out_after_300s_and_comes_back_on_traffic() {
    let t0 = Instant::now();
    let mut desired = two_sites();
    let g = &mut desired.gateways[0];
    g.gateway_type = GatewayType::PolicyBased;
    g.peers.truncate(1);
    g.routes.truncate(2);
    g.peers[0].idle_timeout_secs = GatewayType::PolicyBased.idle_timeout_secs();
    g.peers[0].policy_selectors = vec![selector("10.1.0.0/16", "10.2.0.0/16")];
    let (mut core, mut sites) = started(&desired, t0);
    let gw = qn("gw");
    let p = ipv4_udp(v4([10, 2, 0, 5]), v4([10, 1, 0, 7]), 1, 2, b"hello");
    assert_eq!(a_to_vnet(&mut core, &mut sites, &p, t0).len(), 1);
    assert!(matches!(core.poll_event(), Some(Event::TunnelUp { .. })));

    // Quiet for 299 s: still up (a quiet policy-based tunnel is not down).
    core.handle_timeout(t0 + Duration::from_secs(299));
    let a = core.peer(&gw, "a").expect("a");
    assert!(a.up);
    assert_eq!(a.state, TunnelState::Up);
    assert_eq!(core.poll_event(), None);
    // 300 s: torn down, and the state says idle (S2S-2), since then.
    let t1 = t0 + Duration::from_secs(300);
    core.handle_timeout(t1);
    let a = core.peer(&gw, "a").expect("a");
    assert!(!a.up);
    assert_eq!((a.state, a.reason, a.since), (TunnelState::Idle, None, t1));
    assert_eq!(
        core.poll_event(),
        Some(Event::TunnelIdle {
            gateway: gw.clone(),
            peer: "a".into()
        })
    );
    assert_eq!(core.poll_event(), None, "idle is not also a down");

    // Traffic from the VNet brings it back: a new handshake, then the packet.
    let t2 = t1 + Duration::from_secs(60);
    let out = ipv4_udp(v4([10, 1, 0, 7]), v4([10, 2, 0, 5]), 2, 1, b"again");
    core.handle_tun(&out, t2);
    assert!(matches!(
        core.poll_event(),
        Some(Event::TunnelRestarted { .. })
    ));
    assert!(pump(&mut core, &mut sites, Vec::new(), t2).is_empty());
    assert_eq!(sites[0].received, vec![out]);
    assert!(core.peer(&gw, "a").expect("a").established);
    assert!(matches!(core.poll_event(), Some(Event::TunnelUp { .. })));
    assert_eq!(core.peer(&gw, "a").expect("a").state, TunnelState::Up);

    // Idle again, then the site side starts the traffic (a new handshake from the device).
    let t3 = t2 + Duration::from_secs(301);
    core.handle_timeout(t3);
    assert!(!core.peer(&gw, "a").expect("a").up);
    let hs = sites[0].rehandshake();
    let t4 = t3 + Duration::from_secs(5);
    assert!(
        pump(
            &mut core,
            &mut sites,
            hs.into_iter().map(|d| (0, d)).collect(),
            t4
        )
        .is_empty()
    );
    assert!(core.peer(&gw, "a").expect("a").up);
    let p2 = ipv4_udp(v4([10, 2, 0, 5]), v4([10, 1, 0, 7]), 1, 2, b"from site");
    assert_eq!(a_to_vnet(&mut core, &mut sites, &p2, t4), vec![p2]);

    // A route-based peer (no idle timeout) never idles out.
    let (mut rb, mut rb_sites) = started(&two_sites(), t0);
    assert_eq!(a_to_vnet(&mut rb, &mut rb_sites, &p, t0).len(), 1);
    rb.handle_timeout(t0 + Duration::from_secs(3600));
    assert!(rb.peer(&gw, "a").expect("a").up);
}

#[test]
fn gw_1_policy_based_selectors_filter_traffic() {
    let t0 = Instant::now();
    let mut desired = two_sites();
    let g = &mut desired.gateways[0];
    g.gateway_type = GatewayType::PolicyBased;
    g.peers.truncate(1);
    g.routes.truncate(2);
    g.peers[0].policy_selectors = vec![selector("10.1.1.0/24", "10.2.0.0/16")];
    let (mut core, mut sites) = started(&desired, t0);
    let not_selected = ipv4_udp(v4([10, 1, 2, 1]), v4([10, 2, 0, 5]), 1, 2, b"x");
    core.handle_tun(&not_selected, t0);
    assert!(core.poll_transmit().is_none());
    assert_eq!(core.counters().policy_mismatch, 1);
    let selected = ipv4_udp(v4([10, 1, 1, 1]), v4([10, 2, 0, 5]), 1, 2, b"y");
    core.handle_tun(&selected, t0);
    assert!(pump(&mut core, &mut sites, Vec::new(), t0).is_empty());
    assert_eq!(sites[0].received, vec![selected]);
    // Inbound, the selector applies mirrored.
    let to_unselected = ipv4_udp(v4([10, 2, 0, 5]), v4([10, 1, 2, 1]), 1, 2, b"z");
    assert!(a_to_vnet(&mut core, &mut sites, &to_unselected, t0).is_empty());
    assert_eq!(core.counters().policy_mismatch, 2);
}

#[test]
fn gw_8_gw_9_only_connected_prefixes_enter_tunnels_unless_forced_tunneling() {
    let t0 = Instant::now();
    let (core, _) = started(&two_sites(), t0);
    let gw = qn("gw");
    let ip = |s: &str| s.parse().expect("ip");
    assert_eq!(core.decide(&gw, ip("10.2.3.4")), Decision::Peer("a".into()));
    assert_eq!(core.decide(&gw, ip("10.1.3.4")), Decision::Vnet);
    assert_eq!(core.decide(&gw, ip("8.8.8.8")), Decision::Drop);

    let mut forced = two_sites();
    forced.gateways[0].routes.push(route(
        "0.0.0.0/0",
        NextHop::ForcedTunnel {
            connection: qn("a"),
            site: qn("site-a"),
        },
    ));
    let mut core = Core::new();
    assert!(core.apply(&forced, t0).is_empty());
    assert_eq!(core.decide(&gw, ip("8.8.8.8")), Decision::Peer("a".into()));
    assert_eq!(core.decide(&gw, ip("10.3.0.1")), Decision::Peer("b".into()));
    assert_eq!(core.decide(&gw, ip("10.1.0.1")), Decision::Vnet);
}

#[test]
fn hot_reconfiguration_keeps_unaffected_sessions_and_removes_peers_at_once() {
    let t0 = Instant::now();
    let (mut core, mut sites) = started(&two_sites(), t0);
    let pa = ipv4_udp(v4([10, 2, 0, 5]), v4([10, 1, 0, 7]), 1, 2, b"a");
    let pb = ipv4_udp(v4([10, 3, 0, 5]), v4([10, 1, 0, 7]), 1, 2, b"b");
    assert_eq!(a_to_vnet(&mut core, &mut sites, &pa, t0).len(), 1);
    assert_eq!(
        site_to_vnet(&mut core, &mut sites, 1, &pb, t0),
        vec![pb.clone()]
    );

    // v2: B removed, A gets one more allowed prefix and route, a bandwidth cap appears.
    let mut v2 = two_sites();
    v2.version = 2;
    let g = &mut v2.gateways[0];
    g.peers.remove(1);
    g.routes.remove(2);
    g.peers[0].allowed_ips.push(net("10.20.0.0/16"));
    g.routes.push(route("10.20.0.0/16", s2s_hop("a")));
    g.bandwidth_limit_bps = 1_000_000_000;
    assert!(core.apply(&v2, t0).is_empty());
    assert_eq!(core.version(), 2);
    assert!(core.peer(&qn("gw"), "b").is_none());

    // A's session survived: its next data packet is accepted without a new handshake.
    let pa2 = ipv4_udp(v4([10, 20, 0, 5]), v4([10, 1, 0, 7]), 1, 2, b"new prefix");
    let d = sites[0].send(&pa2);
    assert_eq!(d.len(), 1);
    for x in &d {
        core.handle_network(GW_PORT, site_addr(2), x, t0);
    }
    assert!(core.poll_transmit().is_none(), "no handshake needed");
    assert_eq!(drain_tun(&mut core), vec![pa2]);
    // B is gone at once: its packets are refused.
    let d = sites[1].send(&pb);
    for x in &d {
        core.handle_network(GW_PORT, site_addr(3), x, t0);
    }
    assert!(drain_tun(&mut core).is_empty());
    assert_eq!(core.counters().unknown_peer, 1);

    // v3: A's preshared key changes: a new tunnel, the old session no longer decrypts.
    let mut v3 = v2.clone();
    v3.version = 3;
    v3.gateways[0].peers[0].preshared_key =
        Some(isthmus_shared::desired::Secret::new(b64(&[77; 32])));
    assert!(core.apply(&v3, t0).is_empty());
    let d = sites[0].send(&pa);
    for x in &d {
        core.handle_network(GW_PORT, site_addr(2), x, t0);
    }
    assert!(drain_tun(&mut core).is_empty());
}

#[test]
fn lim_4_bandwidth_is_capped_per_gateway_across_tunnels() {
    let t0 = Instant::now();
    let mut desired = two_sites();
    desired.gateways[0].bandwidth_limit_bps = 8_000; // 1000 B/s, 16 KiB burst
    let (mut core, mut sites) = started(&desired, t0);
    let big = |src: [u8; 4]| ipv4_udp(v4(src), v4([10, 1, 0, 7]), 1, 2, &[0u8; 972]); // 1000 B
    let first = big([10, 2, 0, 5]);
    assert_eq!(a_to_vnet(&mut core, &mut sites, &first, t0).len(), 1);
    let hs = sites[1].send(&big([10, 3, 0, 5]));
    assert!(
        pump(
            &mut core,
            &mut sites,
            hs.into_iter().map(|d| (1, d)).collect(),
            t0
        )
        .is_empty()
    );
    let mut passed = drain_tun(&mut core).len() + 1;
    for i in 0..20 {
        let (site, src) = if i % 2 == 0 {
            (0, [10, 2, 0, 5])
        } else {
            (1, [10, 3, 0, 5])
        };
        for d in sites[site].send(&big(src)) {
            core.handle_network(GW_PORT, sites[site].addr, &d, t0);
        }
        passed += drain_tun(&mut core).len();
    }
    assert_eq!(passed, 16, "16 KiB burst shared by both tunnels");
    assert_eq!(core.counters().rate_limited, 6);
    // Two seconds later two more fit.
    let later = t0 + Duration::from_secs(2);
    for _ in 0..4 {
        for d in sites[0].send(&big([10, 2, 0, 5])) {
            core.handle_network(GW_PORT, site_addr(2), &d, later);
        }
    }
    assert_eq!(drain_tun(&mut core).len(), 2);
}

#[test]
fn bad_input_is_dropped_and_counted_and_other_tunnels_keep_working() {
    let t0 = Instant::now();
    let (mut core, mut sites) = started(&two_sites(), t0);
    let pa = ipv4_udp(v4([10, 2, 0, 5]), v4([10, 1, 0, 7]), 1, 2, b"a");
    assert_eq!(a_to_vnet(&mut core, &mut sites, &pa, t0).len(), 1);
    let valid = sites[0].send(&pa).remove(0);

    let src = site_addr(9);
    core.handle_network(GW_PORT, src, b"", t0);
    core.handle_network(GW_PORT, src, b"hello, not wireguard", t0);
    core.handle_network(GW_PORT, src, &[1, 0, 0, 0], t0); // truncated handshake
    core.handle_network(GW_PORT, src, &[4, 0, 0, 0, 1, 2, 3, 4], t0); // truncated data
    let mut forged_init = vec![0u8; 148];
    forged_init[0] = 1;
    core.handle_network(GW_PORT, src, &forged_init, t0); // bad MAC
    let mut flipped = valid.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    core.handle_network(GW_PORT, src, &flipped, t0); // forged data (bad AEAD tag)
    let mut unknown_idx = valid.clone();
    unknown_idx[4..8].copy_from_slice(&0xdead_beefu32.to_le_bytes());
    core.handle_network(GW_PORT, src, &unknown_idx, t0);
    core.handle_network(GW_PORT, src, &vec![4u8; 70_000], t0); // oversized
    core.handle_network(GW_PORT + 1, src, &valid, t0); // no gateway there
    core.handle_network(GW_PORT, src, &valid, t0); // replay of a packet not yet seen: accepted once
    core.handle_network(GW_PORT, src, &valid, t0); // replay
    core.handle_tun(b"", t0);
    core.handle_tun(&[0x45, 0, 0], t0);
    core.handle_tun(&vec![0x45; 70_000], t0);
    core.handle_tun(
        &ipv4_udp(v4([172, 16, 0, 1]), v4([10, 2, 0, 1]), 1, 2, b"stranger"),
        t0,
    );
    // A handshake from a key that is no peer.
    let mut stranger = Site::new(42, 1, src);
    for d in stranger.send(&pa) {
        core.handle_network(GW_PORT, src, &d, t0);
    }

    let c = core.counters();
    assert_eq!(c.garbage, 4, "{c:?}");
    assert_eq!(c.invalid, 3, "{c:?}");
    assert_eq!(c.unknown_peer, 2, "{c:?}");
    assert_eq!(c.oversized, 2, "{c:?}");
    assert_eq!(c.unknown_port, 1, "{c:?}");
    assert_eq!(c.malformed, 2, "{c:?}");
    assert_eq!(c.no_route, 1, "{c:?}");
    assert_eq!(drain_tun(&mut core).len(), 1, "the first copy of `valid`");
    // Both tunnels still work.
    let pa2 = ipv4_udp(v4([10, 2, 0, 6]), v4([10, 1, 0, 7]), 1, 2, b"still");
    assert_eq!(a_to_vnet(&mut core, &mut sites, &pa2, t0), vec![pa2]);
    let pb = ipv4_udp(v4([10, 3, 0, 5]), v4([10, 1, 0, 7]), 1, 2, b"b");
    assert_eq!(site_to_vnet(&mut core, &mut sites, 1, &pb, t0), vec![pb]);
}

#[test]
fn bad_keys_in_the_desired_state_are_reported_without_the_keys() {
    let t0 = Instant::now();
    let mut desired = two_sites();
    desired.gateways[0].peers[1].public_key = "not base64!".into();
    let mut dup = desired.gateways[0].clone();
    dup.name = "gw2".into();
    desired.gateways.push(dup);
    let mut core = Core::new();
    let errors = core.apply(&desired, t0);
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2, "{text:?}");
    assert!(text[0].contains("peer \"b\""), "{text:?}");
    assert!(text[1].contains("port 51820"), "{text:?}");
    for t in &text {
        assert!(!t.contains(&b64(&[1; 32])), "a key leaked: {t}");
    }
    assert!(core.peer(&qn("gw"), "a").is_some());
}

mod props {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Instant;

    use isthmus_shared::desired::DesiredState;
    use isthmus_shared::routes::{NextHop, Route};
    use isthmus_worker::core::{Core, Decision};
    use proptest::prelude::*;

    use crate::harness::*;

    /// The reference model: longest prefix wins, the first route wins a tie; tunnels by name.
    fn reference(routes: &[Route], dst: IpAddr) -> Decision {
        let mut best: Option<&Route> = None;
        for r in routes
            .iter()
            .filter(|r| r.active && r.prefix.contains(&dst))
        {
            if best.is_none_or(|b| r.prefix.prefix_len() > b.prefix.prefix_len()) {
                best = Some(r);
            }
        }
        match best.map(|r| &r.next_hop) {
            Some(NextHop::Vnet { .. }) => Decision::Vnet,
            Some(NextHop::SiteToSite { connection, .. }) if connection.name != "ghost" => {
                Decision::Peer(connection.name.clone())
            }
            _ => Decision::Drop,
        }
    }

    fn arb_route() -> impl Strategy<Value = Route> {
        (any::<[u8; 2]>(), 8u8..=24, 0u8..5, any::<bool>()).prop_map(|(hi, len, hop, active)| {
            let a = Ipv4Addr::new(10, hi[0] % 4, hi[1] % 4, 0);
            let next_hop = match hop {
                0 => NextHop::Vnet { vnet: qn("vnet") },
                1 => s2s_hop("a"),
                2 => s2s_hop("b"),
                3 => s2s_hop("ghost"), // a tunnel this worker does not run
                _ => NextHop::Internet,
            };
            let mut r = route(&format!("{a}/{len}"), next_hop);
            r.active = active;
            r
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn routing_decision_matches_the_lpm_reference(
            routes in proptest::collection::vec(arb_route(), 0..12),
            dsts in proptest::collection::vec(any::<[u8; 3]>(), 1..20),
        ) {
            let mut desired: DesiredState = two_sites();
            desired.gateways[0].routes = routes.clone();
            let mut core = Core::new();
            prop_assert!(core.apply(&desired, Instant::now()).is_empty());
            for d in dsts {
                let dst = IpAddr::V4(Ipv4Addr::new(10, d[0] % 4, d[1] % 4, d[2]));
                prop_assert_eq!(core.decide(&qn("gw"), dst), reference(&routes, dst), "dst {}", dst);
            }
        }

        #[test]
        fn random_datagrams_never_panic_and_are_counted(
            datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..30),
            typed in proptest::collection::vec((1u8..=4, proptest::collection::vec(any::<u8>(), 0..200)), 0..30),
        ) {
            let t0 = Instant::now();
            let mut core = Core::new();
            prop_assert!(core.apply(&two_sites(), t0).is_empty());
            let mut n = 0u64;
            for d in datagrams.iter().cloned().chain(typed.into_iter().map(|(t, mut rest)| {
                let mut d = vec![t, 0, 0, 0];
                d.append(&mut rest);
                d
            })) {
                core.handle_network(GW_PORT, site_addr(9), &d, t0);
                core.handle_tun(&d, t0);
                n += 2;
            }
            prop_assert!(drain_tun(&mut core).is_empty());
            // Every input is accounted for: dropped and counted (or answered, e.g. a cookie).
            let answered = std::iter::from_fn(|| core.poll_transmit()).count() as u64;
            prop_assert_eq!(core.counters().total() + answered, n);
        }
    }
}

/// The gateway answers its full handshake budget (100 per second) before it asks for cookies:
/// each handshake is counted once, not once by the gateway and again by the tunnel.
#[test]
fn a_gateway_answers_a_hundred_handshakes_from_a_hundred_peers_without_cookies() {
    let seeds: Vec<u8> = (2..102).collect();
    let peers = seeds
        .iter()
        .map(|&s| {
            let prefix = format!("10.{s}.0.0/16");
            s2s_peer(&format!("p{s}"), s, site_addr(s), &[prefix.as_str()])
        })
        .collect();
    let desired = state(
        1,
        vec![gateway(
            "gw",
            1,
            GW_PORT,
            peers,
            vec![vnet_route("10.1.0.0/16")],
        )],
    );
    let now = Instant::now();
    let mut core = Core::new();
    assert!(core.apply(&desired, now).is_empty());
    let (mut responses, mut cookies) = (0, 0);
    for &s in &seeds {
        let mut site = Site::new(s, 1, site_addr(s));
        for init in site.rehandshake() {
            core.handle_network(GW_PORT, site.addr, &init, now);
        }
        while let Some(t) = core.poll_transmit() {
            match t.payload.first() {
                Some(2) => responses += 1,
                Some(3) => cookies += 1,
                _ => {}
            }
        }
    }
    assert_eq!((responses, cookies), (100, 0));
}

/// A roaming peer (no endpoint, as a point-to-site client) gets its tunnel at its first
/// handshake, not when it is configured; it then carries traffic like any peer.
#[test]
fn a_roaming_peer_gets_its_tunnel_at_its_first_handshake() {
    let mut peer = s2s_peer("c", 2, site_addr(2), &["10.2.0.0/16"]);
    peer.endpoint = None;
    let desired = state(
        1,
        vec![gateway(
            "gw",
            1,
            GW_PORT,
            vec![peer],
            vec![
                vnet_route("10.1.0.0/16"),
                route("10.2.0.0/16", s2s_hop("c")),
            ],
        )],
    );
    let now = Instant::now();
    let mut core = Core::new();
    assert!(core.apply(&desired, now).is_empty());
    let info = core.peer(&qn("gw"), "c").expect("peer");
    assert!(!info.up && info.endpoint.is_none(), "{info:?}");
    let mut sites = vec![Site::new(2, 1, site_addr(2))];
    let init = sites[0].rehandshake();
    pump(
        &mut core,
        &mut sites,
        init.into_iter().map(|d| (0, d)).collect(),
        now,
    );
    let info = core.peer(&qn("gw"), "c").expect("peer");
    assert!(info.up && info.established, "{info:?}");
    assert_eq!(info.endpoint, Some(site_addr(2)));
    let ping = ipv4_icmp_echo(v4([10, 2, 0, 5]), v4([10, 1, 0, 5]), 1, 1);
    let sent = sites[0].send(&ping);
    pump(
        &mut core,
        &mut sites,
        sent.into_iter().map(|d| (0, d)).collect(),
        now,
    );
    assert_eq!(drain_tun(&mut core), vec![ping]);
    let events: Vec<Event> = std::iter::from_fn(|| core.poll_event()).collect();
    assert_eq!(
        events,
        vec![Event::TunnelUp {
            gateway: qn("gw"),
            peer: "c".into(),
            endpoint: Some(site_addr(2)),
        }],
        "a first connection is not a restart"
    );
}

/// A datagram in flight between virtual hosts: (source, destination, payload).
type Datagram = (std::net::SocketAddr, std::net::SocketAddr, Vec<u8>);

/// Delivers datagrams between cores (each at one address, one gateway each) and one site
/// device until nothing moves; logs every delivered datagram as (source, destination, length).
fn deliver(
    nodes: &mut [(std::net::SocketAddr, Core)],
    site: &mut Site,
    site_gateway: std::net::SocketAddr,
    initial: Vec<Datagram>,
    log: &mut Vec<(std::net::SocketAddr, std::net::SocketAddr, usize)>,
    now: Instant,
) {
    let mut pending = initial;
    for _ in 0..1_000 {
        for node in nodes.iter_mut() {
            while let Some(t) = node.1.poll_transmit() {
                pending.push((node.0, t.dst, t.payload));
            }
        }
        if pending.is_empty() {
            return;
        }
        for (src, dst, d) in std::mem::take(&mut pending) {
            log.push((src, dst, d.len()));
            if dst == site.addr {
                for back in site.recv(&d) {
                    pending.push((site.addr, site_gateway, back));
                }
            } else {
                let node = nodes
                    .iter_mut()
                    .find(|n| n.0 == dst)
                    .unwrap_or_else(|| panic!("datagram to unknown address {dst}"));
                node.1.handle_network(dst.port(), src, &d, now);
            }
        }
    }
    panic!("traffic did not settle");
}

#[test]
fn lim_6_outer_bytes_are_metered_per_region_pair_and_s2s_is_not() {
    use isthmus_shared::desired::{PeerDesired, RegionPairBytes};
    use isthmus_shared::model::region_pair;
    use std::net::SocketAddr;

    let t0 = Instant::now();
    let x_addr = SocketAddr::from(([127, 0, 0, 1], GW_PORT));
    let y_addr = SocketAddr::from(([127, 0, 0, 2], 51002));
    let z_addr = SocketAddr::from(([127, 0, 0, 3], 51003));
    let v2v = |name: &str, seed: u8, ep, allowed: &str, regions: (&str, &str)| PeerDesired {
        region_pair: Some(region_pair(regions.0, regions.1)),
        ..v2v_peer(name, seed, ep, allowed)
    };
    // x (westeurope, 10.11/16) ⟷ y (eastus, 10.12/16) crosses regions; x ⟷ z (westeurope,
    // 10.13/16) does not; site A (10.2/16) is a site-to-site peer of x.
    let x_peers = vec![
        v2v("x-y", 12, y_addr, "10.12.0.0/16", ("westeurope", "eastus")),
        v2v(
            "x-z",
            13,
            z_addr,
            "10.13.0.0/16",
            ("westeurope", "westeurope"),
        ),
        s2s_peer("a", 2, site_addr(2), &["10.2.0.0/16"]),
    ];
    let x_routes = vec![
        vnet_route("10.11.0.0/16"),
        route("10.12.0.0/16", v2v_hop("x-y")),
        route("10.13.0.0/16", v2v_hop("x-z")),
        route("10.2.0.0/16", s2s_hop("a")),
    ];
    let x = state(1, vec![gateway("x", 1, GW_PORT, x_peers, x_routes)]);
    let y = v2v_gateway(
        "y",
        12,
        51002,
        v2v("y-x", 1, x_addr, "10.11.0.0/16", ("eastus", "westeurope")),
        "10.12.0.0/16",
    );
    let z = v2v_gateway(
        "z",
        13,
        51003,
        v2v(
            "z-x",
            1,
            x_addr,
            "10.11.0.0/16",
            ("westeurope", "westeurope"),
        ),
        "10.13.0.0/16",
    );
    // y accepts the site's prefix through x (transit, LIM-5).
    let mut y = y;
    y.gateways[0].peers[0].allowed_ips.push(net("10.2.0.0/16"));
    let mut nodes: Vec<(SocketAddr, Core)> = Vec::new();
    for (addr, d) in [(x_addr, &x), (y_addr, &y), (z_addr, &z)] {
        let mut c = Core::new();
        assert!(c.apply(d, t0).is_empty());
        nodes.push((addr, c));
    }
    let mut site = Site::new(2, 1, site_addr(2));
    let mut log = Vec::new();
    // The V2V handshakes (keepalive set) run at once.
    deliver(&mut nodes, &mut site, x_addr, Vec::new(), &mut log, t0);

    let t1 = t0 + Duration::from_secs(1);
    // x's VNet → y and z; y's VNet → x; the site → x's VNet and, in transit, → y's VNet.
    for (n, p) in [
        (
            0,
            ipv4_udp(v4([10, 11, 0, 1]), v4([10, 12, 0, 1]), 1, 2, &[7; 1000]),
        ),
        (
            0,
            ipv4_udp(v4([10, 11, 0, 1]), v4([10, 13, 0, 1]), 1, 2, &[7; 300]),
        ),
        (
            1,
            ipv4_icmp_echo(v4([10, 12, 0, 1]), v4([10, 11, 0, 1]), 3, 1),
        ),
        (
            2,
            ipv4_udp(v4([10, 13, 0, 1]), v4([10, 11, 0, 1]), 1, 2, b"same region"),
        ),
    ] {
        nodes[n].1.handle_tun(&p, t1);
    }
    let from_site: Vec<Datagram> = [
        ipv4_udp(v4([10, 2, 0, 5]), v4([10, 11, 0, 7]), 1, 2, &[1; 500]),
        ipv4_udp(v4([10, 2, 0, 5]), v4([10, 12, 0, 7]), 1, 2, b"transit"),
    ]
    .iter()
    .flat_map(|p| site.send(p))
    .map(|d| (site_addr(2), x_addr, d))
    .collect();
    deliver(&mut nodes, &mut site, x_addr, from_site, &mut log, t1);
    // Everything arrived: 2 packets on x's TUN (from y and z), the site's packet too, the
    // transit packet and x's packet on y's TUN, x's packet on z's TUN.
    assert_eq!(drain_tun(&mut nodes[0].1).len(), 3);
    assert_eq!(drain_tun(&mut nodes[1].1).len(), 2);
    assert_eq!(drain_tun(&mut nodes[2].1).len(), 1);
    assert_eq!(site.received.len(), 0);
    for (_, c) in &nodes {
        assert_eq!(c.counters().total(), 0);
    }

    let bytes = |from: SocketAddr, to: SocketAddr| -> u64 {
        log.iter()
            .filter(|(s, d, _)| *s == from && *d == to)
            .map(|(_, _, n)| *n as u64)
            .sum()
    };
    let site_bytes = bytes(site_addr(2), x_addr) + bytes(x_addr, site_addr(2));
    assert!(site_bytes > 500, "the site exchanged traffic with x");
    assert!(core_peer_rx(&nodes[0].1, "a") > 0);
    let cross = RegionPairBytes {
        a: "eastus".into(),
        b: "westeurope".into(),
        rx_bytes: bytes(y_addr, x_addr),
        tx_bytes: bytes(x_addr, y_addr),
    };
    let same = RegionPairBytes {
        a: "westeurope".into(),
        b: "westeurope".into(),
        rx_bytes: bytes(z_addr, x_addr),
        tx_bytes: bytes(x_addr, z_addr),
    };
    // Outer bytes exceed the inner packets (1000 + 300 + 28-byte headers each way at least).
    assert!(cross.tx_bytes > 1_028 + 148);
    // x: one entry per pair, S2S bytes nowhere; the same-region pair is there, not billable.
    let report = nodes[0].1.status(t1, SystemTime::now());
    assert_eq!(report.region_pairs, vec![cross.clone(), same.clone()]);
    assert!(report.region_pairs[0].is_billable());
    assert!(!report.region_pairs[1].is_billable());
    // y sees the same pair from its side: what x sent, y received.
    assert_eq!(
        nodes[1].1.region_pairs(),
        vec![RegionPairBytes {
            a: "eastus".into(),
            b: "westeurope".into(),
            rx_bytes: cross.tx_bytes,
            tx_bytes: cross.rx_bytes,
        }]
    );

    // Removing the x-y connection keeps what it carried (the counters never go backwards)...
    let t2 = t1 + Duration::from_secs(1);
    let mut without = x.clone();
    without.version = 2;
    without.gateways[0].peers.retain(|p| p.name != "x-y");
    without.gateways[0]
        .routes
        .retain(|r| r.prefix != net("10.12.0.0/16"));
    assert!(nodes[0].1.apply(&without, t2).is_empty());
    assert_eq!(nodes[0].1.region_pairs(), vec![cross.clone(), same.clone()]);
    // ...and a re-added one counts on top: its handshake initiation (148 bytes) is sent at once.
    let mut again = x.clone();
    again.version = 3;
    assert!(nodes[0].1.apply(&again, t2).is_empty());
    let t = nodes[0]
        .1
        .poll_transmit()
        .expect("handshake initiation to y");
    assert_eq!((t.dst, t.payload.len()), (y_addr, 148));
    assert_eq!(
        nodes[0].1.region_pairs()[0],
        RegionPairBytes {
            tx_bytes: cross.tx_bytes + 148,
            ..cross
        }
    );
}

fn core_peer_rx(core: &Core, peer: &str) -> u64 {
    core.peer(&qn("x"), peer).map_or(0, |p| p.rx_bytes)
}

/// With TUN offload on (the shell's TUN device takes a virtio-net header), a site's ping comes
/// out behind an all-zero header, and a burst of TCP segments through the tunnel comes out as
/// one super-packet that splits back into exactly those segments.
#[test]
fn tun_offload_heads_packets_with_a_header_and_coalesces_a_tcp_burst() {
    use isthmus_worker::core::gro::VNET_HDR_LEN;
    use isthmus_worker::core::packet::{TcpFields, tcp_segment};
    let now = Instant::now();
    let mut core = Core::new();
    core.set_tun_offload(true);
    assert!(core.apply(&two_sites(), now).is_empty());
    let mut sites = vec![Site::new(2, 1, site_addr(2))];
    let init = sites[0].rehandshake();
    pump(
        &mut core,
        &mut sites,
        init.into_iter().map(|d| (0, d)).collect(),
        now,
    );
    let ping = ipv4_icmp_echo(v4([10, 2, 0, 5]), v4([10, 1, 0, 5]), 1, 1);
    let sent = sites[0].send(&ping);
    pump(
        &mut core,
        &mut sites,
        sent.into_iter().map(|d| (0, d)).collect(),
        now,
    );
    let mut want = vec![0u8; VNET_HDR_LEN];
    want.extend_from_slice(&ping);
    assert_eq!(drain_tun(&mut core), vec![want]);

    let segs: Vec<Vec<u8>> = (0..3u32)
        .map(|i| {
            let f = TcpFields {
                sport: 40_000,
                dport: 22,
                seq: 1 + i * 1_000,
                ack: 9,
                flags: 0x10,
                options: &[],
                ip_id: 1 + i as u16,
            };
            tcp_segment(
                v4([10, 2, 0, 5]).into(),
                v4([10, 1, 0, 5]).into(),
                &f,
                &[i as u8; 1_000],
            )
        })
        .collect();
    let mut datagrams = Vec::new();
    for s in &segs {
        datagrams.extend(sites[0].send(s).into_iter().map(|d| (0, d)));
    }
    pump(&mut core, &mut sites, datagrams, now);
    let out = drain_tun(&mut core);
    assert_eq!(out.len(), 1, "one write for the burst");
    let hdr = tun_rs::VirtioNetHdr::decode(&out[0]).expect("header");
    assert_eq!((hdr.gso_type, hdr.gso_size), (1, 1_000));
    let mut packet = out[0][VNET_HDR_LEN..].to_vec();
    let mut bufs = vec![vec![0u8; 2_000]; 4];
    let mut sizes = vec![0usize; 4];
    let n = tun_rs::gso_split(&mut packet, hdr, &mut bufs, &mut sizes, 0, false).expect("splits");
    let back: Vec<Vec<u8>> = bufs
        .iter()
        .zip(&sizes)
        .take(n)
        .map(|(b, &l)| b[..l].to_vec())
        .collect();
    assert_eq!(back, segs);
}

/// With GSO batching on, consecutive datagrams of one size to one peer come out as one
/// transmit (`segment_size` set, the last segment may be shorter, a shorter one closes the
/// batch); every segment is a datagram the site decrypts.
#[test]
fn gso_batches_hold_same_size_datagrams_to_one_peer_and_each_decrypts() {
    let t0 = Instant::now();
    let (mut core, mut sites) = started(&two_sites(), t0);
    core.set_gso_max_bytes(65_000);
    // Handshake first (the first packet is queued until it completes).
    let first = ipv4_udp(v4([10, 1, 0, 7]), v4([10, 2, 0, 5]), 53, 4000, b"hello");
    core.handle_tun(&first, t0);
    pump(&mut core, &mut sites, Vec::new(), t0);
    assert_eq!(sites[0].received, vec![first.clone()]);
    sites[0].received.clear();

    let big = |i: u8| ipv4_udp(v4([10, 1, 0, 7]), v4([10, 2, 0, 5]), 53, 4000, &[i; 1000]);
    let short = ipv4_udp(v4([10, 1, 0, 7]), v4([10, 2, 0, 5]), 53, 4000, b"short");
    let sent = vec![big(1), big(2), big(3), short.clone(), big(4)];
    for p in &sent {
        core.handle_tun(p, t0);
    }
    let batches: Vec<_> = std::iter::from_fn(|| core.poll_transmit()).collect();
    assert_eq!(batches.len(), 2, "{batches:?}");
    let seg = batches[0].segment_size.expect("a batch");
    assert_eq!(batches[0].payload.len(), 3 * seg + short.len() + 32);
    assert_eq!(batches[1].segment_size, None);
    for b in &batches {
        let size = b.segment_size.unwrap_or(b.payload.len());
        for d in b.payload.chunks(size) {
            assert!(sites[0].recv(d).is_empty());
        }
    }
    assert_eq!(sites[0].received, sent);
}
