//! Issue #16: the failover wired into the core, on a virtual clock: two `Core`s run the two
//! instances of one gateway and exchange heartbeats and WireGuard datagrams in memory. A
//! standby never sends or answers; the takeover comes after exactly the configured silence;
//! the new active initiates a handshake to every peer it knows; the term rule silences an old
//! active that returns; a drain hands over in one heartbeat round trip; a gateway without an
//! instance block is unchanged.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use isthmus_shared::desired::{DesiredState, PeerDesired, PeerKind};
use isthmus_shared::instances::{HeartbeatKey, InstanceDesired, InstanceRole, InstanceStatus};
use isthmus_shared::routes::NextHop;
use isthmus_worker::core::failover::{BootId, StepDownReason, TakeoverReason};
use isthmus_worker::core::packet::ipv4_icmp_echo;
use isthmus_worker::core::{Core, Event, Transmit};

use crate::harness::*;

const DETECTION: Duration = Duration::from_secs(1);
const NS: Duration = Duration::from_nanos(1);

/// Instance 0's worker receives heartbeats here, instance 1's there.
fn hb_addr(instance: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1 + instance], 51899))
}

fn v2v_addr() -> SocketAddr {
    "198.51.100.12:51002".parse().expect("addr")
}

fn client_addr() -> SocketAddr {
    "203.0.113.50:50000".parse().expect("addr")
}

fn p2s_client(last_endpoint: Option<SocketAddr>) -> PeerDesired {
    PeerDesired {
        name: "laptop".to_owned(),
        kind: PeerKind::P2sClient {
            gateway: qn("gw"),
            client: "laptop".to_owned(),
        },
        public_key: public_b64(20),
        preshared_key: None,
        endpoint: None,
        allowed_ips: vec![net("172.16.0.2/32")],
        persistent_keepalive_secs: None,
        policy_selectors: Vec::new(),
        idle_timeout_secs: None,
        region_pair: None,
        last_endpoint: last_endpoint.map(|a| a.to_string()),
        on_every_instance: false,
        ipsec: None,
    }
}

fn block(instance: u8, active: u8, term: u64, handover: bool) -> InstanceDesired {
    InstanceDesired {
        instance,
        active,
        term,
        partner: hb_addr(1 - instance),
        key: HeartbeatKey::new([0x42; 32]),
        interval_ms: 200,
        misses: 5,
        handover,
    }
}

/// The gateway (key seed 1) with site A (seed 2), a VNet-to-VNet remote (seed 12, keepalive
/// 25 s) and a point-to-site client (seed 20), as instance `instance` of a redundant gateway
/// (`None`: not redundant).
fn desired(version: u64, instance: Option<InstanceDesired>) -> DesiredState {
    let mut g = gateway(
        "gw",
        1,
        GW_PORT,
        vec![
            s2s_peer("a", 2, site_addr(2), &["10.2.0.0/16"]),
            v2v_peer("x-y", 12, v2v_addr(), "10.12.0.0/16"),
            p2s_client(Some(client_addr())),
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
    g.instance = instance;
    state(version, vec![g])
}

/// The devices: site A, the remote gateway of the VNet-to-VNet connection, the client.
fn devices() -> Vec<Site> {
    vec![
        Site::new(2, 1, site_addr(2)),
        Site::with_keys(12, 1, Some([9; 32]), v2v_addr()),
        Site::with_keys(20, 1, None, client_addr()),
    ]
}

fn core(boot: u8, d: &DesiredState, now: Instant) -> Core {
    let mut c = Core::new();
    c.set_boot_id(BootId([boot; 16]));
    assert!(c.apply(d, now).is_empty());
    c
}

/// Instance 0 (active, term 1) and instance 1 (standby) of the gateway.
fn pair(now: Instant) -> (Core, Core) {
    (
        core(1, &desired(1, Some(block(0, 0, 1, false))), now),
        core(2, &desired(1, Some(block(1, 0, 1, false))), now),
    )
}

fn status(c: &Core, now: Instant) -> InstanceStatus {
    c.instance_status(&qn("gw"), now)
        .expect("a redundant gateway")
}

fn events(c: &mut Core) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn role_events(c: &mut Core) -> Vec<Event> {
    events(c)
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Event::InstanceActive { .. } | Event::InstanceStandby { .. }
            )
        })
        .collect()
}

fn transmits(c: &mut Core) -> Vec<Transmit> {
    std::iter::from_fn(|| c.poll_transmit()).collect()
}

/// Delivers the heartbeats of `a` (instance 0) and `b` (instance 1) to each other at `now`
/// until none is left; `a_alive`/`b_alive`: a dead or cut-off worker's are lost.
fn exchange(a: &mut Core, b: &mut Core, now: Instant, a_alive: bool, b_alive: bool) {
    for _ in 0..100 {
        let from_a: Vec<_> = std::iter::from_fn(|| a.poll_heartbeat()).collect();
        let from_b: Vec<_> = std::iter::from_fn(|| b.poll_heartbeat()).collect();
        if from_a.is_empty() && from_b.is_empty() {
            return;
        }
        for h in from_a {
            assert_eq!(h.dst, hb_addr(1));
            if a_alive && b_alive {
                b.handle_heartbeat(hb_addr(0), &h.payload, now);
            }
        }
        for h in from_b {
            assert_eq!(h.dst, hb_addr(0));
            if a_alive && b_alive {
                a.handle_heartbeat(hb_addr(1), &h.payload, now);
            }
        }
    }
    panic!("heartbeats never settle");
}

/// Runs both cores' timers from `from` to `until` (each step at the earliest deadline of
/// either), exchanging heartbeats; `check` runs after every step. Returns the last instant the
/// standby `b` accepted a heartbeat of `a`.
fn run(
    a: &mut Core,
    b: &mut Core,
    from: Instant,
    until: Instant,
    mut check: impl FnMut(&mut Core, &mut Core, Instant),
) -> Option<Instant> {
    let mut now = from;
    let mut heard = None;
    let mut stalled = 0;
    loop {
        let accepted = status(b, now).heartbeats_accepted;
        a.handle_timeout(now);
        b.handle_timeout(now);
        exchange(a, b, now, true, true);
        if status(b, now).heartbeats_accepted > accepted {
            heard = Some(now);
        }
        check(a, b, now);
        let next = a
            .poll_timeout()
            .into_iter()
            .chain(b.poll_timeout())
            .min()
            .expect("timers");
        if next > until {
            return heard;
        }
        // A timer that stays due after handle_timeout would spin here for ever.
        stalled = if next <= now { stalled + 1 } else { 0 };
        assert!(stalled < 100, "a timer due at {next:?} is never run");
        now = next.max(now);
    }
}

/// Establishes site A's tunnel through `c` and sends one ping into the VNet through it.
fn site_a_pings_through(c: &mut Core, devices: &mut [Site], now: Instant) {
    let ping = ipv4_icmp_echo(v4([10, 2, 0, 5]), v4([10, 1, 0, 7]), 1, 1);
    assert_eq!(site_to_vnet(c, devices, 0, &ping, now), vec![ping]);
}

/// The pair after its first heartbeats: instance 0 serves, instance 1 stands by. Returns
/// the instant and what instance 0 sent meanwhile.
fn started(t0: Instant) -> (Core, Core, Instant, Vec<Transmit>) {
    let (mut a, mut b) = pair(t0);
    let mut sent = Vec::new();
    let t = t0 + Duration::from_millis(500);
    run(&mut a, &mut b, t0, t, |a, b, now| {
        sent.extend(transmits(a));
        assert!(
            transmits(b).is_empty(),
            "the standby sent a datagram at {now:?}"
        );
    });
    assert_eq!(status(&a, t).role, InstanceRole::Active);
    (a, b, t, sent)
}

#[test]
fn a_standby_never_answers_initiates_or_forwards() {
    let (mut a, mut b, t0, sent) = started(Instant::now());
    // The active instance starts the VNet-to-VNet handshake (keepalive); the standby does not.
    assert!(sent.iter().any(|t| t.dst == v2v_addr()), "{sent:?}");
    assert!(transmits(&mut a).is_empty());

    // A real initiation from site A, and a packet from the VNet for it: nothing comes out.
    let mut devs = devices();
    let init = devs[0].rehandshake();
    assert_eq!(init.len(), 1);
    b.handle_network(GW_PORT, site_addr(2), &init[0], t0);
    let to_site = ipv4_icmp_echo(v4([10, 1, 0, 7]), v4([10, 2, 0, 5]), 1, 1);
    b.handle_tun(&to_site, t0);
    assert!(transmits(&mut b).is_empty(), "no answer, no cookie reply");
    assert!(drain_tun(&mut b).is_empty());
    let drops = b.gateway_counters(&qn("gw")).expect("gateway");
    assert_eq!(drops.standby_dropped, 2);
    assert_eq!(drops.cookie_replies, 0);

    // Thirty seconds with the active partner heard: heartbeats only, no keepalive, no
    // handshake retry, no takeover.
    run(
        &mut a,
        &mut b,
        t0,
        t0 + Duration::from_secs(30),
        |a, b, now| {
            transmits(a);
            assert!(
                transmits(b).is_empty(),
                "the standby sent a datagram at {now:?}"
            );
            assert_eq!(status(b, now).role, InstanceRole::Standby);
        },
    );
    assert!(status(&b, t0 + Duration::from_secs(30)).partner_alive);
    assert!(role_events(&mut b).is_empty());
    let st = b.status(t0 + Duration::from_secs(30), SystemTime::now());
    let inst = st.gateways[0].instance.as_ref().expect("instance status");
    assert_eq!(
        (inst.instance, inst.role, inst.term),
        (1, InstanceRole::Standby, 1)
    );
    assert!(inst.heartbeats_accepted > 100, "{inst:?}");
}

#[test]
fn the_standby_takes_over_after_exactly_the_configured_silence() {
    let t0 = Instant::now();
    let (mut a, mut b) = pair(t0);
    let heard = run(
        &mut a,
        &mut b,
        t0,
        t0 + Duration::from_secs(3),
        |_, _, _| {},
    )
    .expect("the standby heard the active instance");
    transmits(&mut b);
    // Instance 0's worker dies: nothing more from it. The standby's timer asks to be woken
    // no later than the deadline, and not one nanosecond early is enough.
    let deadline = heard + DETECTION;
    assert!(b.poll_timeout().expect("timer") <= deadline);
    let mut now = heard;
    while let Some(next) = b.poll_timeout().filter(|t| *t < deadline) {
        now = next.max(now);
        b.handle_timeout(now);
        std::iter::from_fn(|| b.poll_heartbeat()).for_each(drop);
        assert_eq!(status(&b, now).role, InstanceRole::Standby, "at {now:?}");
    }
    b.handle_timeout(deadline - NS);
    assert_eq!(status(&b, deadline - NS).role, InstanceRole::Standby);
    assert!(transmits(&mut b).is_empty());
    b.handle_timeout(deadline);
    let st = status(&b, deadline);
    assert_eq!((st.role, st.term), (InstanceRole::Active, 2));
    assert_eq!(
        role_events(&mut b),
        vec![Event::InstanceActive {
            gateway: qn("gw"),
            instance: 1,
            term: 2,
            reason: TakeoverReason::Silence,
        }]
    );
}

/// Instance 0 carries site A's traffic, then dies; instance 1 takes over at `t`.
fn failed_over(t0: Instant) -> (Core, Core, Vec<Site>, Instant) {
    let (mut a, mut b, t0, _) = started(t0);
    let mut devs = devices();
    site_a_pings_through(&mut a, &mut devs, t0);
    let heard = run(
        &mut a,
        &mut b,
        t0,
        t0 + Duration::from_secs(2),
        |a, _, _| {
            transmits(a);
        },
    )
    .expect("heard");
    let t = heard + DETECTION;
    b.handle_timeout(t);
    assert_eq!(status(&b, t).role, InstanceRole::Active);
    (a, b, devs, t)
}

#[test]
fn the_new_active_initiates_to_every_known_peer_and_carries_traffic() {
    let t0 = Instant::now();
    let (_a, mut b, mut devs, t) = failed_over(t0);
    let sent = transmits(&mut b);
    let initiations: Vec<SocketAddr> = sent
        .iter()
        .filter(|t| t.payload.first() == Some(&1) && t.payload.len() == 148)
        .map(|t| t.dst)
        .collect();
    for dst in [site_addr(2), v2v_addr(), client_addr()] {
        assert!(
            initiations.contains(&dst),
            "no initiation to {dst}: {sent:?}"
        );
    }
    assert_eq!(initiations.len(), 3, "{initiations:?}");
    assert!(sent.iter().all(|t| t.local_port == GW_PORT));

    // Every device answers and completes its handshake with the new instance.
    for tr in sent {
        let i = devs
            .iter()
            .position(|d| d.addr == tr.dst)
            .expect("a device");
        let back = devs[i].recv(&tr.payload);
        let lost = pump(
            &mut b,
            &mut devs,
            back.into_iter().map(|d| (i, d)).collect(),
            t,
        );
        assert!(lost.is_empty(), "{lost:?}");
    }
    for peer in ["a", "x-y", "laptop"] {
        let p = b.peer(&qn("gw"), peer).expect("peer");
        assert!(p.established, "{peer} not established with the new active");
    }
    assert_eq!(
        b.peer(&qn("gw"), "laptop").and_then(|p| p.endpoint),
        Some(client_addr())
    );
    // Site A's traffic flows through the new instance, both ways.
    site_a_pings_through(&mut b, &mut devs, t);
    let reply = ipv4_icmp_echo(v4([10, 1, 0, 7]), v4([10, 2, 0, 5]), 1, 1);
    b.handle_tun(&reply, t);
    assert!(pump(&mut b, &mut devs, Vec::new(), t).is_empty());
    assert_eq!(devs[0].received.last(), Some(&reply));
}

#[test]
fn the_old_active_returning_steps_down_and_falls_silent() {
    let t0 = Instant::now();
    let (mut a, mut b, mut devs, t) = failed_over(t0);
    transmits(&mut b);
    role_events(&mut b);
    // Instance 0 was only cut off: it ran on, still active under term 1. Its timers run, the
    // partition heals and heartbeats pass again.
    a.handle_timeout(t);
    transmits(&mut a);
    role_events(&mut a);
    exchange(&mut a, &mut b, t, true, true);
    assert_eq!(status(&a, t).role, InstanceRole::Standby);
    assert_eq!(status(&a, t).term, 2);
    assert_eq!(status(&b, t).role, InstanceRole::Active);
    assert_eq!(
        role_events(&mut a),
        vec![Event::InstanceStandby {
            gateway: qn("gw"),
            instance: 0,
            term: 2,
            reason: StepDownReason::HigherTerm,
        }]
    );
    assert!(
        role_events(&mut b).is_empty(),
        "the new active stays active"
    );
    // The old active's sessions are gone and it answers nothing: site A's data to it is
    // dropped, and for thirty seconds it sends only heartbeats.
    let data = devs[0].send(&ipv4_icmp_echo(v4([10, 2, 0, 5]), v4([10, 1, 0, 7]), 1, 2));
    for d in &data {
        a.handle_network(GW_PORT, site_addr(2), d, t);
    }
    assert!(transmits(&mut a).is_empty());
    assert!(drain_tun(&mut a).is_empty());
    assert!(a.peers(&qn("gw")).iter().all(|p| !p.established));
    run(
        &mut a,
        &mut b,
        t,
        t + Duration::from_secs(30),
        |a, b, now| {
            assert!(
                transmits(a).is_empty(),
                "the old active sent a datagram at {now:?}"
            );
            transmits(b);
            assert_eq!(status(a, now).role, InstanceRole::Standby);
            assert_eq!(status(b, now).role, InstanceRole::Active);
        },
    );
}

#[test]
fn an_old_active_restarted_with_a_stale_term_serves_nothing_before_it_hears_the_new_one() {
    let t0 = Instant::now();
    let (_, mut b, mut devs, t) = failed_over(t0);
    transmits(&mut b);
    // Instance 0's worker restarts from the server's stale desired state: active, term 1.
    let mut a = core(3, &desired(1, Some(block(0, 0, 1, false))), t);
    assert!(transmits(&mut a).is_empty(), "no handshake at start");
    let init = devs[0].rehandshake();
    a.handle_network(GW_PORT, site_addr(2), &init[0], t);
    assert!(
        transmits(&mut a).is_empty(),
        "no answer before the partner is heard"
    );
    let mut now = t;
    for _ in 0..10 {
        a.handle_timeout(now);
        b.handle_timeout(now);
        exchange(&mut a, &mut b, now, true, true);
        assert!(
            transmits(&mut a).is_empty(),
            "the restarted instance sent at {now:?}"
        );
        transmits(&mut b);
        now += Duration::from_millis(20);
    }
    assert_eq!(
        (status(&a, now).role, status(&a, now).term),
        (InstanceRole::Standby, 2)
    );
    assert_eq!(status(&b, now).role, InstanceRole::Active);
}

#[test]
fn a_lone_active_instance_serves_after_one_heartbeat_interval() {
    let t0 = Instant::now();
    let mut a = core(1, &desired(1, Some(block(0, 0, 1, false))), t0);
    assert!(transmits(&mut a).is_empty());
    a.handle_timeout(t0 + Duration::from_millis(200) - NS);
    assert!(transmits(&mut a).is_empty());
    a.handle_timeout(t0 + Duration::from_millis(200));
    let sent = transmits(&mut a);
    for dst in [site_addr(2), v2v_addr(), client_addr()] {
        assert!(sent.iter().any(|t| t.dst == dst), "no initiation to {dst}");
    }
    assert!(matches!(
        role_events(&mut a)[..],
        [Event::InstanceActive {
            instance: 0,
            term: 1,
            ..
        }]
    ));
}

#[test]
fn a_drain_hands_over_in_one_heartbeat_round_trip_and_traffic_resumes() {
    let (mut a, mut b, t0, _) = started(Instant::now());
    let mut devs = devices();
    site_a_pings_through(&mut a, &mut devs, t0);
    let t = t0 + Duration::from_secs(2);
    run(&mut a, &mut b, t0, t, |a, _, _| {
        transmits(a);
    });
    role_events(&mut a);
    role_events(&mut b);
    // The server marks instance 0's worker as draining.
    assert!(
        a.apply(&desired(2, Some(block(0, 0, 1, true))), t)
            .is_empty()
    );
    // One heartbeat there (the request) and one back (the acknowledgement), at the same instant.
    let request: Vec<_> = std::iter::from_fn(|| a.poll_heartbeat()).collect();
    assert_eq!(request.len(), 1, "the handover request leaves at once");
    b.handle_heartbeat(hb_addr(0), &request[0].payload, t);
    assert_eq!(status(&b, t).role, InstanceRole::Active);
    let ack: Vec<_> = std::iter::from_fn(|| b.poll_heartbeat()).collect();
    assert_eq!(ack.len(), 1, "the acknowledgement leaves at once");
    a.handle_heartbeat(hb_addr(1), &ack[0].payload, t);
    assert_eq!(status(&a, t).role, InstanceRole::Standby);
    assert!(matches!(
        role_events(&mut b)[..],
        [Event::InstanceActive {
            instance: 1,
            reason: TakeoverReason::Handover,
            ..
        }]
    ));
    assert!(matches!(
        role_events(&mut a)[..],
        [Event::InstanceStandby {
            instance: 0,
            reason: StepDownReason::Handover,
            ..
        }]
    ));
    // The new active's initiations reach the devices; site A's traffic resumes through it.
    let sent = transmits(&mut b);
    assert!(sent.iter().any(|t| t.dst == site_addr(2)));
    for tr in sent {
        if let Some(i) = devs.iter().position(|d| d.addr == tr.dst) {
            let back = devs[i].recv(&tr.payload);
            pump(
                &mut b,
                &mut devs,
                back.into_iter().map(|d| (i, d)).collect(),
                t,
            );
        }
    }
    site_a_pings_through(&mut b, &mut devs, t);
    assert!(transmits(&mut a).is_empty());
}

#[test]
fn a_gateway_without_an_instance_block_is_not_redundant_and_unchanged() {
    let t0 = Instant::now();
    let mut c = core(1, &desired(1, None), t0);
    assert!(c.instance_status(&qn("gw"), t0).is_none());
    assert!(c.poll_heartbeat().is_none());
    assert_eq!(c.poll_timeout(), c.next_tick());
    let mut devs = devices();
    transmits(&mut c);
    site_a_pings_through(&mut c, &mut devs, t0);
    let st = c.status(t0, SystemTime::now());
    assert!(st.gateways[0].instance.is_none());
    assert_eq!(c.counters().standby_dropped, 0);
    // A heartbeat for it (or for nobody) changes nothing and is counted.
    let (mut a, _) = pair(t0);
    a.handle_timeout(t0);
    let hb = a.poll_heartbeat().expect("a heartbeat");
    c.handle_heartbeat(hb_addr(0), &hb.payload, t0);
    c.handle_heartbeat(hb_addr(0), b"not a heartbeat", t0);
    assert_eq!(c.counters().heartbeats_unmatched, 2);
    assert!(c.poll_heartbeat().is_none());
    assert!(role_events(&mut c).is_empty());
}

#[test]
fn a_gateway_serving_alone_that_becomes_redundant_keeps_its_sessions() {
    let t0 = Instant::now();
    let mut c = core(1, &desired(1, None), t0);
    let mut devs = devices();
    transmits(&mut c);
    site_a_pings_through(&mut c, &mut devs, t0);
    // A second worker came: the server adds the instance block, this one designated active.
    assert!(
        c.apply(&desired(2, Some(block(0, 0, 1, false))), t0)
            .is_empty()
    );
    assert_eq!(status(&c, t0).role, InstanceRole::Active);
    assert!(role_events(&mut c).is_empty());
    assert!(c.peer(&qn("gw"), "a").expect("peer").established);
    // Site A's session carries on, without a new handshake.
    let ping = ipv4_icmp_echo(v4([10, 2, 0, 5]), v4([10, 1, 0, 7]), 1, 2);
    let d = devs[0].send(&ping);
    assert_eq!(d.len(), 1, "the site sends on its session");
    c.handle_network(GW_PORT, site_addr(2), &d[0], t0);
    assert_eq!(drain_tun(&mut c), vec![ping]);
}

#[test]
fn a_kept_tunnel_whose_remote_gateway_moved_handshakes_at_its_new_endpoint_at_once() {
    let t0 = Instant::now();
    let mut c = core(1, &desired(1, None), t0);
    assert!(transmits(&mut c).iter().any(|t| t.dst == v2v_addr()));
    // The remote gateway failed over: the server moves its endpoint to the other instance.
    let moved: SocketAddr = "198.51.100.13:51002".parse().expect("addr");
    let mut d = desired(2, None);
    d.gateways[0].peers[1].endpoint = Some(moved.to_string());
    assert!(c.apply(&d, t0).is_empty());
    let sent = transmits(&mut c);
    assert!(
        sent.iter()
            .any(|t| t.dst == moved && t.payload.first() == Some(&1)),
        "{sent:?}"
    );
    // Site A (no keepalive) is left alone.
    assert!(sent.iter().all(|t| t.dst == moved));
}

/// The initiations among `sent` (WireGuard type 1, 148 bytes), by destination.
fn initiations_to(sent: &[Transmit]) -> Vec<SocketAddr> {
    let mut to: Vec<SocketAddr> = sent
        .iter()
        .filter(|t| t.payload.first() == Some(&1) && t.payload.len() == 148)
        .map(|t| t.dst)
        .collect();
    to.sort();
    to
}

#[test]
fn a_lost_takeover_handshake_is_sent_again_after_200_ms_doubling_until_answered() {
    let t0 = Instant::now();
    let (_a, mut b, mut devs, t) = failed_over(t0);
    let mut every = vec![site_addr(2), v2v_addr(), client_addr()];
    every.sort();
    // The takeover's initiations are all lost (a peer's socket overflowing under the old
    // active's traffic during a drain, say).
    assert_eq!(initiations_to(&transmits(&mut b)), every);
    assert!(
        b.poll_timeout()
            .is_some_and(|d| d <= t + Duration::from_millis(200)),
        "the resend is on the core's clock"
    );
    b.handle_timeout(t + Duration::from_millis(199));
    assert!(
        initiations_to(&transmits(&mut b)).is_empty(),
        "not before 200 ms"
    );
    let t1 = t + Duration::from_millis(200);
    b.handle_timeout(t1);
    let again = transmits(&mut b);
    assert_eq!(initiations_to(&again), every, "sent again after 200 ms");
    // Site A answers the second one and its tunnel is up; the others stay lost.
    let to_a: Vec<Transmit> = again
        .into_iter()
        .filter(|tr| tr.dst == site_addr(2))
        .collect();
    for tr in to_a {
        let back = devs[0].recv(&tr.payload);
        assert!(
            pump(
                &mut b,
                &mut devs,
                back.into_iter().map(|d| (0, d)).collect(),
                t1
            )
            .is_empty()
        );
    }
    assert!(b.peer(&qn("gw"), "a").expect("peer").established);
    // The next resend doubles (400 ms later) and spares the answered peer.
    b.handle_timeout(t1 + Duration::from_millis(399));
    assert!(initiations_to(&transmits(&mut b)).is_empty());
    b.handle_timeout(t1 + Duration::from_millis(400));
    let mut rest = vec![v2v_addr(), client_addr()];
    rest.sort();
    assert_eq!(initiations_to(&transmits(&mut b)), rest);
}
