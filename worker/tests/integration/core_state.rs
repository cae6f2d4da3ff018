//! The tunnel state the core decides (`connecting`, `up`, `down` with a reason, `idle`) and the
//! events it logs, on a virtual clock with real boringtun devices (see `core::state`).

use std::time::{Duration, Instant, SystemTime};

use isthmus_shared::desired::{DesiredState, DownReason, PeerKind, TunnelState};
use isthmus_shared::model::GatewayType;
use isthmus_worker::core::packet::ipv4_udp;
use isthmus_worker::core::{Core, Event};

use crate::harness::*;

/// Site A alone (10.2.0.0/16) on the gateway, with the keepalive route-based connections get.
fn one_site(keepalive: Option<u16>) -> DesiredState {
    let mut d = two_sites();
    let g = &mut d.gateways[0];
    g.peers.truncate(1);
    g.routes.truncate(2);
    g.peers[0].persistent_keepalive_secs = keepalive;
    d
}

fn state(core: &Core, peer: &str) -> (TunnelState, Option<DownReason>, Instant) {
    let p = core.peer(&qn("gw"), peer).expect("peer");
    (p.state, p.reason, p.since)
}

fn events(core: &mut Core) -> Vec<Event> {
    std::iter::from_fn(|| core.poll_event()).collect()
}

fn secs(t: Instant, s: u64) -> Instant {
    t + Duration::from_secs(s)
}

/// Changes of a peer's state: (second, state, reason).
type Changes = Vec<(u64, TunnelState, Option<DownReason>)>;

/// Runs the core's timers every second from `from` to `to` (inclusive); returns each change of
/// peer `peer`'s state and the events, by second.
fn run(
    core: &mut Core,
    peer: &str,
    t0: Instant,
    from: u64,
    to: u64,
) -> (Changes, Vec<(u64, Event)>) {
    let mut changes = Vec::new();
    let mut evs = Vec::new();
    let mut last = state(core, peer);
    for s in from..=to {
        core.handle_timeout(secs(t0, s));
        let now = state(core, peer);
        if (now.0, now.1) != (last.0, last.1) {
            assert_eq!(now.2, secs(t0, s), "since is the moment of the change");
            changes.push((s, now.0, now.1));
        }
        last = now;
        evs.extend(events(core).into_iter().map(|e| (s, e)));
    }
    (changes, evs)
}

/// The gateway initiates (keepalive set), the site's device answers at `t0 + 1 s`.
fn up_at_one_second(core: &mut Core, t0: Instant) -> Site {
    assert!(core.apply(&one_site(Some(25)), t0).is_empty());
    let init = core.poll_transmit().expect("an initiation");
    assert_eq!((init.dst, init.payload[0]), (site_addr(2), 1));
    let mut site = Site::new(2, 1, site_addr(2));
    let answer = site.recv(&init.payload);
    assert_eq!(answer.len(), 1);
    core.handle_network(GW_PORT, site_addr(2), &answer[0], secs(t0, 1));
    // The gateway's keepalive confirms the session to the device.
    while let Some(t) = core.poll_transmit() {
        assert!(site.recv(&t.payload).is_empty());
    }
    site
}

#[test]
fn state_is_connecting_after_the_first_initiation_and_up_when_the_site_answers() {
    let t0 = Instant::now();
    let mut core = Core::new();
    assert!(core.apply(&one_site(Some(25)), t0).is_empty());
    assert_eq!(state(&core, "a"), (TunnelState::Connecting, None, t0));
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let c = &core.status(t0, wall).gateways[0].connections[0];
    assert_eq!(
        (c.state, c.reason, c.since_unix),
        (TunnelState::Connecting, None, Some(1_000_000))
    );
    let init = core.poll_transmit().expect("an initiation");
    let mut site = Site::new(2, 1, site_addr(2));
    let t1 = secs(t0, 1);
    for d in site.recv(&init.payload) {
        core.handle_network(GW_PORT, site_addr(2), &d, t1);
    }
    assert_eq!(state(&core, "a"), (TunnelState::Up, None, t1));
    assert_eq!(
        events(&mut core),
        vec![Event::TunnelUp {
            gateway: qn("gw"),
            peer: "a".into(),
            endpoint: Some(site_addr(2)),
        }]
    );
    // Ten seconds later the status says up since t1, in Unix seconds.
    let c = &core.status(secs(t1, 10), wall).gateways[0].connections[0];
    assert_eq!(
        (c.state, c.reason, c.since_unix),
        (TunnelState::Up, None, Some(1_000_000 - 10))
    );
    let json = serde_json::to_value(c).expect("json");
    assert_eq!(json["state"], "up");
}

#[test]
fn a_silent_site_turns_down_with_no_answer_after_65_s_and_up_again_when_it_returns() {
    let t0 = Instant::now();
    let mut core = Core::new();
    let mut site = up_at_one_second(&mut core, t0);
    events(&mut core);
    // The site stops: nothing from it for three minutes.
    let (changes, evs) = run(&mut core, "a", t0, 2, 180);
    assert_eq!(
        changes,
        vec![(66, TunnelState::Down, Some(DownReason::NoAnswer))],
        "65 s of silence after the last datagram at 1 s"
    );
    assert_eq!(
        evs,
        vec![(
            66,
            Event::TunnelDown {
                gateway: qn("gw"),
                peer: "a".into(),
                endpoint: Some(site_addr(2)),
                reason: DownReason::NoAnswer,
            }
        )],
        "one event per transition"
    );
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000);
    let c = &core.status(secs(t0, 180), wall).gateways[0].connections[0];
    assert_eq!(
        (c.state, c.reason, c.since_unix),
        (
            TunnelState::Down,
            Some(DownReason::NoAnswer),
            Some(2_000_000 - 114)
        )
    );
    // It comes back: its next packet brings the tunnel up at once.
    let p = ipv4_udp(v4([10, 2, 0, 5]), v4([10, 1, 0, 7]), 1, 2, b"back");
    for d in site.send(&p) {
        core.handle_network(GW_PORT, site_addr(2), &d, secs(t0, 181));
    }
    assert_eq!(drain_tun(&mut core), vec![p]);
    assert_eq!(state(&core, "a"), (TunnelState::Up, None, secs(t0, 181)));
    assert!(matches!(
        events(&mut core).as_slice(),
        [Event::TunnelUp { .. }]
    ));
}

#[test]
fn a_shortened_peer_silence_turns_a_silent_site_down_sooner() {
    let t0 = Instant::now();
    let mut core = Core::new();
    core.set_peer_silence(Duration::from_secs(5));
    let _site = up_at_one_second(&mut core, t0);
    let (changes, _) = run(&mut core, "a", t0, 2, 60);
    assert_eq!(
        changes,
        vec![(6, TunnelState::Down, Some(DownReason::NoAnswer))]
    );
}

#[test]
fn a_site_that_never_answers_is_connecting_for_90_s_then_down_and_failing_is_rate_limited() {
    let t0 = Instant::now();
    let mut core = Core::new();
    assert!(core.apply(&one_site(Some(25)), t0).is_empty());
    assert_eq!(core.poll_transmit().map(|t| t.payload[0]), Some(1));
    let (changes, evs) = run(&mut core, "a", t0, 1, 700);
    assert_eq!(
        changes,
        vec![(90, TunnelState::Down, Some(DownReason::NoAnswer))]
    );
    let failing = Event::HandshakeFailing {
        gateway: qn("gw"),
        peer: "a".into(),
        endpoint: Some(site_addr(2)),
        reason: DownReason::NoAnswer,
    };
    // Never up, so never "down" in the log; one WARN per 5 minutes while it lasts.
    assert_eq!(
        evs,
        vec![
            (90, failing.clone()),
            (390, failing.clone()),
            (690, failing)
        ]
    );
}

#[test]
fn key_mismatch_for_a_site_with_the_wrong_preshared_key() {
    let t0 = Instant::now();
    // The gateway initiates; the device answers with its own (wrong) preshared key.
    let mut core = Core::new();
    assert!(core.apply(&one_site(Some(25)), t0).is_empty());
    let mut sites = vec![Site::with_keys(2, 1, Some([77; 32]), site_addr(2))];
    let init = core.poll_transmit().expect("initiation");
    let answer = sites[0].recv(&init.payload);
    assert_eq!(
        answer.len(),
        1,
        "the device answers: PSKs only show in the response"
    );
    let t1 = secs(t0, 1);
    core.handle_network(GW_PORT, site_addr(2), &answer[0], t1);
    assert_eq!(
        state(&core, "a"),
        (TunnelState::Down, Some(DownReason::KeyMismatch), t1)
    );
    // The device keeps trying: one WARN, not one per attempt.
    for i in 0..5 {
        let hs = sites[0].rehandshake();
        pump(
            &mut core,
            &mut sites,
            hs.into_iter().map(|d| (0, d)).collect(),
            secs(t1, 5 * i + 5),
        );
        core.handle_timeout(secs(t1, 5 * i + 5));
    }
    assert_eq!(state(&core, "a").1, Some(DownReason::KeyMismatch));
    assert_eq!(
        events(&mut core),
        vec![Event::HandshakeFailing {
            gateway: qn("gw"),
            peer: "a".into(),
            endpoint: Some(site_addr(2)),
            reason: DownReason::KeyMismatch,
        }]
    );

    // A gateway that does not initiate (no keepalive) tells from the device's initiations:
    // answered three times, never followed by data.
    let mut core = Core::new();
    assert!(core.apply(&one_site(None), t0).is_empty());
    let mut sites = vec![Site::with_keys(2, 1, Some([77; 32]), site_addr(2))];
    for i in 0..3u64 {
        assert_ne!(state(&core, "a").1, Some(DownReason::KeyMismatch), "{i}");
        let hs = sites[0].rehandshake();
        pump(
            &mut core,
            &mut sites,
            hs.into_iter().map(|d| (0, d)).collect(),
            secs(t0, 5 * i),
        );
        if i == 0 {
            assert_eq!(state(&core, "a").0, TunnelState::Connecting);
        }
    }
    assert_eq!(
        state(&core, "a"),
        (
            TunnelState::Down,
            Some(DownReason::KeyMismatch),
            secs(t0, 10)
        )
    );
}

#[test]
fn key_mismatch_for_a_site_with_the_wrong_gateway_key_or_its_own_key_unknown() {
    let t0 = Instant::now();
    for (device_seed, gateway_seed, counter) in [(2u8, 99u8, "invalid"), (42, 1, "unknown_peer")] {
        let mut core = Core::new();
        assert!(core.apply(&one_site(None), t0).is_empty());
        // A device elsewhere with the same mistake is no evidence against connection a.
        let mut stranger =
            Site::with_keys(device_seed, gateway_seed, Some([102; 32]), site_addr(9));
        for d in stranger.rehandshake() {
            core.handle_network(GW_PORT, site_addr(9), &d, t0);
        }
        assert_eq!(
            state(&core, "a"),
            (TunnelState::Down, None, t0),
            "{counter}"
        );
        let mut site = Site::with_keys(device_seed, gateway_seed, Some([102; 32]), site_addr(2));
        let t1 = secs(t0, 1);
        for d in site.rehandshake() {
            core.handle_network(GW_PORT, site_addr(2), &d, t1);
        }
        assert!(core.poll_transmit().is_none(), "{counter}: not answered");
        assert_eq!(
            state(&core, "a"),
            (TunnelState::Down, Some(DownReason::KeyMismatch), t1),
            "{counter}"
        );
        let c = core.counters();
        let n = if counter == "invalid" {
            c.invalid
        } else {
            c.unknown_peer
        };
        assert_eq!(n, 2, "{counter}: {c:?}");
        assert!(matches!(
            events(&mut core).as_slice(),
            [Event::HandshakeFailing {
                reason: DownReason::KeyMismatch,
                ..
            }]
        ));
        // The device is fixed: up.
        let mut sites = vec![Site::new(2, 1, site_addr(2))];
        let hs = sites[0].rehandshake();
        pump(
            &mut core,
            &mut sites,
            hs.into_iter().map(|d| (0, d)).collect(),
            secs(t0, 2),
        );
        assert_eq!(state(&core, "a").0, TunnelState::Up, "{counter}");
    }
}

#[test]
fn a_p2s_client_is_not_connected_until_it_handshakes_and_after_its_session_ages_out() {
    let t0 = Instant::now();
    let mut d = one_site(None);
    let p = &mut d.gateways[0].peers[0];
    p.endpoint = None;
    p.preshared_key = None;
    p.kind = PeerKind::P2sClient {
        gateway: qn("gw"),
        client: "a".into(),
    };
    let mut core = Core::new();
    assert!(core.apply(&d, t0).is_empty());
    assert_eq!(
        state(&core, "a"),
        (TunnelState::Down, Some(DownReason::NotConnected), t0)
    );
    let mut sites = vec![Site::with_keys(2, 1, None, site_addr(2))];
    let hs = sites[0].rehandshake();
    let t1 = secs(t0, 1);
    pump(
        &mut core,
        &mut sites,
        hs.into_iter().map(|d| (0, d)).collect(),
        t1,
    );
    assert_eq!(state(&core, "a"), (TunnelState::Up, None, t1));
    events(&mut core);
    // The client goes away: its session is good for 180 s.
    let (changes, evs) = run(&mut core, "a", t0, 2, 200);
    assert_eq!(
        changes,
        vec![(181, TunnelState::Down, Some(DownReason::NotConnected))]
    );
    assert!(matches!(
        evs.as_slice(),
        [(
            181,
            Event::TunnelDown {
                reason: DownReason::NotConnected,
                ..
            }
        )]
    ));
}

#[test]
fn a_peer_whose_endpoint_is_not_an_address_is_down_with_no_endpoint() {
    let t0 = Instant::now();
    let mut d = one_site(Some(25));
    d.gateways[0].peers[0].endpoint = Some("site-a.example:51820".into());
    let mut core = Core::new();
    assert!(core.apply(&d, t0).is_empty());
    assert_eq!(
        state(&core, "a"),
        (TunnelState::Down, Some(DownReason::NoEndpoint), t0)
    );
    assert!(core.poll_transmit().is_none());
}

#[test]
fn s2s_2_an_idled_out_policy_based_tunnel_is_idle_in_the_status() {
    let t0 = Instant::now();
    let mut d = one_site(None);
    let g = &mut d.gateways[0];
    g.gateway_type = GatewayType::PolicyBased;
    g.peers[0].idle_timeout_secs = GatewayType::PolicyBased.idle_timeout_secs();
    let mut core = Core::new();
    assert!(core.apply(&d, t0).is_empty());
    assert_eq!(state(&core, "a"), (TunnelState::Down, None, t0));
    let mut sites = vec![Site::new(2, 1, site_addr(2))];
    let p = ipv4_udp(v4([10, 2, 0, 5]), v4([10, 1, 0, 7]), 1, 2, b"hi");
    let sent = sites[0].send(&p);
    pump(
        &mut core,
        &mut sites,
        sent.into_iter().map(|d| (0, d)).collect(),
        t0,
    );
    assert_eq!(state(&core, "a").0, TunnelState::Up);
    assert!(matches!(
        events(&mut core).as_slice(),
        [Event::TunnelUp { .. }]
    ));
    let (changes, evs) = run(&mut core, "a", t0, 1, 400);
    assert_eq!(changes, vec![(300, TunnelState::Idle, None)]);
    assert!(matches!(evs.as_slice(), [(300, Event::TunnelIdle { .. })]));
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(3_000_000);
    let c = &core.status(secs(t0, 400), wall).gateways[0].connections[0];
    assert_eq!(
        (c.state, c.reason, c.since_unix),
        (TunnelState::Idle, None, Some(3_000_000 - 100))
    );
}
