//! Handshake floods at one gateway's port (issue #16, "Bad input"), on the virtual clock:
//! under load an initiation without a valid MAC2 is answered with a cookie reply and gets no
//! session; with the cookie's MAC2 it proceeds; an established tunnel's data is processed
//! during the flood; what is refused is counted.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use isthmus_worker::core::packet::ipv4_udp;
use isthmus_worker::core::{Core, HANDSHAKES_PER_TICK, TICK};

use crate::harness::*;

/// The gateway's handshakes per second before it is under load (boringtun asks for cookies).
const LIMIT: u64 = 100;

/// Site A (seed 2) and B (seed 3) of [`two_sites`], A's tunnel established: one handshake
/// of the second's [`LIMIT`] and of the tick's budget used.
fn established(t0: Instant) -> (Core, Vec<Site>) {
    let mut core = Core::new();
    assert!(core.apply(&two_sites(), t0).is_empty());
    let mut sites = vec![Site::new(2, 1, site_addr(2)), Site::new(3, 1, site_addr(3))];
    let p = ipv4_udp(v4([10, 2, 0, 5]), v4([10, 1, 0, 7]), 1, 2, b"hello");
    assert_eq!(site_to_vnet(&mut core, &mut sites, 0, &p, t0), vec![p]);
    (core, sites)
}

/// One initiation with a valid MAC1 for the gateway (key seed 1) from a key that is no peer:
/// what anyone holding a device configuration can send.
fn flood_initiation() -> Vec<u8> {
    let mut stranger = Site::new(42, 1, site_addr(42));
    stranger.rehandshake().remove(0)
}

/// Feeds `n` copies of `init` from `src`, then drops what the core sent.
fn flood(core: &mut Core, src: SocketAddr, init: &[u8], n: usize, now: Instant) {
    for _ in 0..n {
        core.handle_network(GW_PORT, src, init, now);
    }
    while core.poll_transmit().is_some() {}
}

#[test]
fn under_load_an_initiation_without_mac2_gets_a_cookie_and_no_session_and_with_mac2_proceeds() {
    let t0 = Instant::now();
    let (mut core, mut sites) = established(t0);
    let init = flood_initiation();
    // 100 handshakes a second reach Diffie-Hellman (site A's and 99 of the stranger, who is
    // no peer), then the gateway is under load.
    flood(&mut core, site_addr(42), &init, LIMIT as usize - 1, t0);
    assert_eq!(core.counters().unknown_peer, LIMIT - 1);
    assert_eq!(core.counters().cookie_replies, 0);

    // Site B's first initiation, under load and without a cookie: a cookie reply, no session.
    let b_init = sites[1].rehandshake().remove(0);
    core.handle_network(GW_PORT, site_addr(3), &b_init, t0);
    let answers: Vec<_> = std::iter::from_fn(|| core.poll_transmit()).collect();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].dst, site_addr(3));
    assert_eq!(answers[0].payload.first(), Some(&3), "a cookie reply");
    assert_eq!(answers[0].payload.len(), 64);
    let b = core.peer(&qn("gw"), "b").expect("peer b");
    assert!(!b.established, "no session without a valid MAC2");
    let c = core.counters();
    assert_eq!((c.cookie_replies, c.unknown_peer), (1, LIMIT - 1), "{c:?}");

    // The device takes the cookie; its next initiation carries MAC2 and gets a response.
    assert!(sites[1].recv(&answers[0].payload).is_empty());
    let retry = sites[1].rehandshake();
    let lost = pump(
        &mut core,
        &mut sites,
        retry.into_iter().map(|d| (1, d)).collect(),
        t0,
    );
    assert!(lost.is_empty(), "{lost:?}");
    assert!(core.peer(&qn("gw"), "b").expect("peer b").established);
    let pb = ipv4_udp(
        v4([10, 3, 0, 5]),
        v4([10, 1, 0, 7]),
        1,
        2,
        b"b after the cookie",
    );
    assert_eq!(site_to_vnet(&mut core, &mut sites, 1, &pb, t0), vec![pb]);
    assert_eq!(core.counters().cookie_replies, 1);
}

#[test]
fn data_of_an_established_tunnel_passes_a_flood_of_initiations_which_is_counted() {
    let t0 = Instant::now();
    let (mut core, mut sites) = established(t0);
    let init = flood_initiation();
    let attacker = site_addr(42);
    let budget = HANDSHAKES_PER_TICK as u64;
    let (floods, between) = (5_000u64, 50u64);
    let mut sent = Vec::new();
    for i in 0..floods {
        core.handle_network(GW_PORT, attacker, &init, t0);
        if i % between == 0 {
            let p = ipv4_udp(v4([10, 2, 0, 5]), v4([10, 1, 0, 7]), 1, 2, &i.to_be_bytes());
            for d in sites[0].send(&p) {
                core.handle_network(GW_PORT, site_addr(2), &d, t0);
            }
            sent.push(p);
        }
    }
    assert_eq!(
        drain_tun(&mut core),
        sent,
        "every data packet reached the VNet"
    );
    let c = core.counters();
    // The tick's budget (less site A's handshake): the second's first 100 handshakes reach
    // Diffie-Hellman, the rest of the budget gets cookies, the rest of the flood is shed unread.
    assert_eq!(c.unknown_peer, LIMIT - 1, "{c:?}");
    assert_eq!(c.cookie_replies, budget - LIMIT, "{c:?}");
    assert_eq!(c.handshakes_shed, floods - (budget - 1), "{c:?}");
    let cookies = std::iter::from_fn(|| core.poll_transmit())
        .filter(|t| t.dst == attacker)
        .map(|t| t.payload.len() / 64)
        .sum::<usize>();
    assert_eq!(
        cookies as u64,
        budget - LIMIT,
        "one cookie reply per checked initiation"
    );

    // The next tick refills the budget; the same second stays under load.
    core.handle_timeout(t0 + TICK);
    flood(&mut core, attacker, &init, 2_000, t0 + TICK);
    let c2 = core.counters();
    assert_eq!(c2.cookie_replies - c.cookie_replies, budget, "{c2:?}");
    assert_eq!(
        c2.handshakes_shed - c.handshakes_shed,
        2_000 - budget,
        "{c2:?}"
    );
    assert_eq!(c2.unknown_peer, LIMIT - 1, "no Diffie-Hellman under load");

    // The status report (and so the server's /metrics) carries them per gateway.
    let status = core.status(t0 + TICK, SystemTime::now());
    let drops = status.gateways[0].drops.expect("drop counters");
    assert_eq!(drops.cookie_replies, c2.cookie_replies);
    assert_eq!(drops.handshakes_shed, c2.handshakes_shed);
    assert_eq!(drops.bad_datagrams, 0);
    // The tunnel still works after the flood.
    let p = ipv4_udp(v4([10, 2, 0, 5]), v4([10, 1, 0, 7]), 1, 2, b"after");
    let d = sites[0].send(&p);
    assert!(
        pump(
            &mut core,
            &mut sites,
            d.into_iter().map(|d| (0, d)).collect(),
            t0 + TICK
        )
        .is_empty()
    );
    assert_eq!(drain_tun(&mut core), vec![p]);
}

#[test]
fn under_load_one_address_with_a_cookie_gets_only_its_share_of_diffie_hellman() {
    let t0 = Instant::now();
    let (mut core, mut sites) = established(t0);
    let attacker = site_addr(42);
    flood(
        &mut core,
        attacker,
        &flood_initiation(),
        LIMIT as usize - 1,
        t0,
    );
    // The attacker owns its address, so it gets a cookie and sends valid MAC2s.
    let mut stranger = Site::new(42, 1, attacker);
    let first = stranger.rehandshake().remove(0);
    core.handle_network(GW_PORT, attacker, &first, t0);
    let cookie = core.poll_transmit().expect("a cookie reply");
    assert_eq!(cookie.payload.first(), Some(&3));
    assert!(stranger.recv(&cookie.payload).is_empty());
    for _ in 0..20 {
        for d in stranger.rehandshake() {
            core.handle_network(GW_PORT, attacker, &d, t0);
        }
    }
    let c = core.counters();
    assert_eq!(
        c.unknown_peer,
        LIMIT - 1 + 5,
        "5 per address and tick: {c:?}"
    );
    assert_eq!(c.handshakes_shed, 15, "{c:?}");
    // Another device with a cookie of its own still gets its handshake.
    let b_init = sites[1].rehandshake().remove(0);
    core.handle_network(GW_PORT, site_addr(3), &b_init, t0);
    let cookie = core.poll_transmit().expect("a cookie reply");
    assert!(sites[1].recv(&cookie.payload).is_empty());
    let retry = sites[1].rehandshake();
    assert!(
        pump(
            &mut core,
            &mut sites,
            retry.into_iter().map(|d| (1, d)).collect(),
            t0
        )
        .is_empty()
    );
    assert!(core.peer(&qn("gw"), "b").expect("peer b").established);
}
