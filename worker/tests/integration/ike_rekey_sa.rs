//! Rekeying the IKE SA with CREATE_CHILD_SA (`core::ike::exchange`, RFC 7296 1.3.2, 2.8,
//! 2.18) on the virtual clock: from either side, under ESP traffic, the new IKE SA takes over
//! the CHILD SAs (their keys unchanged), its message IDs start at 0, the rekey's initiator
//! becomes its original initiator and deletes the old SA without a Deleted event; rekeys at
//! once from both sides (2.8.2) end with one IKE SA, the same on both sides, whichever nonce
//! is lowest; a KE of another group than the one chosen gets INVALID_KE_PAYLOAD with that
//! group, and the next rekey uses it.

use std::net::SocketAddr;

use isthmus_worker::core::esp::{Inbound, NEXT_IPV4, Outbound};
use isthmus_worker::core::ike::crypto::{Aead, DhGroup, Entropy, Prf};
use isthmus_worker::core::ike::exchange::{ChildSa, Config, IkeEvent, Request};
use isthmus_worker::core::ike::proposal::IkeSuite;
use isthmus_worker::core::ike::wire::{ExchangeType, Header, NotifyType};

use super::ike_exchange::{Run, established, gateway, site};

fn peer() -> SocketAddr {
    "192.0.2.10:500".parse().expect("addr")
}

/// A run with both sides' CHILD SAs, the responder's events drained.
fn up_with(i: Config, r: Config, skew: usize) -> (Run, ChildSa, ChildSa) {
    let (mut run, first) = Run::new(i, r, 10);
    // Different nonces per `skew` (the collision tests need both orders).
    let mut sink = vec![0u8; skew];
    run.ie.fill(&mut sink).expect("entropy");
    run.drive(first);
    let (_, _, _, ci) = established(run.init.poll_event());
    let Some((_, ev)) = run.resp.poll_event() else {
        panic!("no responder event")
    };
    let (_, _, _, cr) = established(Some(ev));
    (run, ci, cr)
}

fn up() -> (Run, ChildSa, ChildSa) {
    up_with(gateway("k"), site("k"), 0)
}

/// The ESP data plane of one CHILD SA pair, kept across the rekeys.
struct Esp {
    i_out: Outbound,
    i_in: Inbound,
    r_out: Outbound,
    r_in: Inbound,
}

impl Esp {
    fn new(i: &ChildSa, r: &ChildSa) -> Self {
        Self {
            i_out: Outbound::new(i.suite.aead, i.outbound_spi, &i.outbound_key).expect("tx"),
            i_in: Inbound::new(i.suite.aead, i.inbound_spi, &i.inbound_key).expect("rx"),
            r_out: Outbound::new(r.suite.aead, r.outbound_spi, &r.outbound_key).expect("tx"),
            r_in: Inbound::new(r.suite.aead, r.inbound_spi, &r.inbound_key).expect("rx"),
        }
    }

    /// One packet each way; true when both arrive.
    fn both_ways(&mut self) -> bool {
        let mut a = Vec::new();
        self.i_out
            .seal(b"to the site", NEXT_IPV4, &mut a)
            .expect("seal");
        let ok_a = self
            .r_in
            .open(&mut a)
            .is_ok_and(|o| &a[o.inner] == b"to the site");
        let mut b = Vec::new();
        self.r_out
            .seal(b"to the gateway", NEXT_IPV4, &mut b)
            .expect("seal");
        let ok_b = self
            .i_in
            .open(&mut b)
            .is_ok_and(|o| &b[o.inner] == b"to the gateway");
        ok_a && ok_b
    }
}

fn header(d: &[u8]) -> Header {
    Header::peek(d).expect("header").0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rekeyed {
    old: (u64, u64),
    new: (u64, u64),
    suite: IkeSuite,
    initiator: bool,
}

fn rekeyed(e: Option<IkeEvent>) -> Rekeyed {
    match e {
        Some(IkeEvent::IkeRekeyed {
            old_spi_i,
            old_spi_r,
            new_spi_i,
            new_spi_r,
            suite,
            initiator,
        }) => Rekeyed {
            old: (old_spi_i, old_spi_r),
            new: (new_spi_i, new_spi_r),
            suite,
            initiator,
        },
        other => panic!("not an IKE SA rekey: {other:?}"),
    }
}

fn resp_event(run: &mut Run) -> Option<IkeEvent> {
    run.resp.poll_event().map(|(_, e)| e)
}

/// The responder's SPI of its only IKE SA with the initiator.
fn resp_spi(run: &Run) -> u64 {
    let spis = run.resp.sas_with(peer());
    assert_eq!(spis.len(), 1, "one IKE SA: {spis:?}");
    spis[0]
}

/// The new SA answers a DPD and a CHILD SA rekey from both sides, with message IDs from 0.
fn new_sa_works(run: &mut Run, child_i: &ChildSa, new: (u64, u64), init_is_initiator: bool) {
    let dpd = run.init_sends(Request::Dpd);
    let h = header(&dpd);
    assert_eq!((h.spi_i, h.spi_r), new);
    assert_eq!(h.message_id, 0, "message IDs restart at 0 on the new SA");
    assert_eq!(h.flags.initiator, init_is_initiator);
    let answer = run.deliver_to_responder(&dpd).expect("DPD answered");
    assert_eq!(run.deliver_to_initiator(&answer), None);
    assert_eq!(run.init.poll_timeout(), None, "DPD answered");
    let spi = resp_spi(run);
    let (_, dpd) = run.resp_sends(spi, Request::Dpd);
    assert_eq!(header(&dpd).message_id, 0);
    let answer = run.deliver_to_initiator(&dpd).expect("DPD answered");
    assert_eq!(run.deliver_to_responder(&answer), None);
    // A CHILD SA rekey on the new SA: keyed from its SK_d, the keys match across the sides.
    let req = run
        .init
        .request(
            Request::RekeyChild(child_i.inbound_spi),
            &mut run.ie,
            run.now,
        )
        .expect("rekey")
        .expect("sent");
    assert_eq!(header(&req).message_id, 1);
    let answer = run.deliver_to_responder(&req).expect("answered");
    let Some(IkeEvent::ChildRekeyed { child: new_r, .. }) = resp_event(run) else {
        panic!("responder: no CHILD SA rekey")
    };
    assert_eq!(run.deliver_to_initiator(&answer), None);
    let Some(IkeEvent::ChildRekeyed { child: new_i, .. }) = run.init.poll_event() else {
        panic!("initiator: no CHILD SA rekey")
    };
    assert!(Esp::new(&new_i, &new_r).both_ways());
}

#[test]
fn the_gateway_rekeys_the_ike_sa_it_initiated_under_traffic_and_deletes_the_old_one() {
    let (mut run, ci, cr) = up();
    let mut esp = Esp::new(&ci, &cr);
    assert!(esp.both_ways());
    let old = (run.init.spi_i(), resp_spi(&run));
    let req = run.init_sends(Request::RekeyIke);
    assert_eq!(header(&req).exchange, ExchangeType::CREATE_CHILD_SA);
    assert!(esp.both_ways(), "traffic goes on during the exchange");
    let answer = run.deliver_to_responder(&req).expect("answered");
    let r = rekeyed(resp_event(&mut run));
    assert_eq!(r.old, old);
    assert!(!r.initiator);
    assert!(esp.both_ways());
    let delete = run
        .deliver_to_initiator(&answer)
        .expect("the old SA's Delete");
    let i = rekeyed(run.init.poll_event());
    assert_eq!((i.old, i.new, i.suite), (r.old, r.new, r.suite));
    assert!(i.initiator, "the rekey's initiator is the new SA's");
    assert_ne!(i.new.0, old.0);
    assert_ne!(i.new.1, old.1);
    let h = header(&delete);
    assert_eq!((h.spi_i, h.spi_r), old, "the Delete goes on the old SA");
    assert_eq!(h.exchange, ExchangeType::INFORMATIONAL);
    assert_eq!(
        run.init.sas().len(),
        2,
        "old and new until the Delete is answered"
    );
    let answer = run.deliver_to_responder(&delete).expect("Delete answered");
    assert!(
        resp_event(&mut run).is_none(),
        "no Deleted for a rekeyed SA"
    );
    assert_eq!(run.deliver_to_initiator(&answer), None);
    assert!(
        run.init.poll_event().is_none(),
        "no Deleted for a rekeyed SA"
    );
    assert_eq!(run.init.sas(), vec![i.new]);
    assert_eq!(run.resp.established(), 1);
    assert_eq!(resp_spi(&run), i.new.1);
    assert!(run.init.is_established());
    assert!(esp.both_ways(), "the CHILD SA survives the IKE SA rekey");
    new_sa_works(&mut run, &ci, i.new, true);
    // The old SA's SPIs name nothing now.
    let before = run.resp.counters().unknown_spi;
    assert_eq!(run.deliver_to_responder(&delete), None);
    assert_eq!(run.resp.counters().unknown_spi, before + 1);
}

#[test]
fn the_site_rekeys_the_ike_sa_and_becomes_the_new_sas_original_initiator() {
    let (mut run, ci, cr) = up();
    let mut esp = Esp::new(&ci, &cr);
    let old_spi = resp_spi(&run);
    let (to, req) = run.resp_sends(old_spi, Request::RekeyIke);
    assert_eq!(to, peer());
    let answer = run.deliver_to_initiator(&req).expect("answered");
    let i = rekeyed(run.init.poll_event());
    assert!(!i.initiator);
    assert!(esp.both_ways());
    let delete = run
        .deliver_to_responder(&answer)
        .expect("the old SA's Delete");
    let r = rekeyed(resp_event(&mut run));
    assert!(r.initiator);
    assert_eq!((r.old, r.new), (i.old, i.new));
    let answer = run.deliver_to_initiator(&delete).expect("Delete answered");
    assert!(run.init.poll_event().is_none());
    assert_eq!(run.deliver_to_responder(&answer), None);
    assert!(resp_event(&mut run).is_none());
    assert_eq!(run.resp.poll_timeout(), None, "nothing outstanding");
    // The responder's SPI of the new SA is its SPIi; the initiator's is SPIr.
    assert_eq!(resp_spi(&run), r.new.0);
    assert_eq!(run.init.sas(), vec![i.new]);
    assert!(esp.both_ways());
    new_sa_works(&mut run, &ci, i.new, false);
    // And the new SA can be rekeyed again, by the other side.
    let req = run.init_sends(Request::RekeyIke);
    let answer = run.deliver_to_responder(&req).expect("answered");
    let delete = run.deliver_to_initiator(&answer).expect("Delete");
    let answer = run.deliver_to_responder(&delete).expect("answered");
    assert_eq!(run.deliver_to_initiator(&answer), None);
    let again = rekeyed(run.init.poll_event());
    assert_eq!(again.old, i.new);
    assert_eq!(run.init.sas(), vec![again.new]);
    assert_eq!(run.resp.established(), 1);
    assert!(esp.both_ways());
}

/// Both sides rekey at once; the four messages cross. Returns both sides' rekey events.
fn collide(skew: usize) -> (Run, Rekeyed, Rekeyed) {
    let (mut run, ci, cr) = up_with(gateway("k"), site("k"), skew);
    let mut esp = Esp::new(&ci, &cr);
    let spi = resp_spi(&run);
    let ri = run.init_sends(Request::RekeyIke);
    let (_, rr) = run.resp_sends(spi, Request::RekeyIke);
    let a_to_init = run.deliver_to_responder(&ri).expect("answered");
    let a_to_resp = run.deliver_to_initiator(&rr).expect("answered");
    assert!(resp_event(&mut run).is_none(), "undecided until the answer");
    assert!(
        run.init.poll_event().is_none(),
        "undecided until the answer"
    );
    let from_init = run.deliver_to_initiator(&a_to_init);
    let from_resp = run.deliver_to_responder(&a_to_resp);
    // The side whose new SA stays deletes the old SA, the other its redundant new SA: one
    // Delete from each side.
    let (Some(d_i), Some(d_r)) = (from_init, from_resp) else {
        panic!("each side sends one Delete")
    };
    let answer = run.deliver_to_responder(&d_i).expect("answered");
    assert_eq!(run.deliver_to_initiator(&answer), None);
    let answer = run.deliver_to_initiator(&d_r).expect("answered");
    assert_eq!(run.deliver_to_responder(&answer), None);
    let i = rekeyed(run.init.poll_event());
    let r = rekeyed(resp_event(&mut run));
    assert!(run.init.poll_event().is_none());
    assert!(resp_event(&mut run).is_none());
    assert!(esp.both_ways(), "the CHILD SA survives");
    (run, i, r)
}

#[test]
fn simultaneous_ike_sa_rekeys_end_with_one_ike_sa_the_same_on_both_sides() {
    let mut winners = std::collections::BTreeSet::new();
    for skew in 0..12 {
        let (mut run, i, r) = collide(skew);
        assert_eq!(
            (i.old, i.new, i.suite),
            (r.old, r.new, r.suite),
            "skew {skew}"
        );
        assert_ne!(i.initiator, r.initiator);
        assert_eq!(run.init.sas(), vec![i.new], "skew {skew}");
        assert_eq!(run.resp.established(), 1, "skew {skew}");
        assert_eq!(run.init.poll_timeout(), None);
        assert_eq!(run.resp.poll_timeout(), None);
        winners.insert(i.initiator);
        // The surviving SA works.
        let dpd = run.init_sends(Request::Dpd);
        assert_eq!(header(&dpd).message_id, 0);
        let answer = run.deliver_to_responder(&dpd).expect("answered");
        assert_eq!(run.deliver_to_initiator(&answer), None);
    }
    assert_eq!(winners.len(), 2, "both sides' SAs won in some of the runs");
}

#[test]
fn a_rekey_crossing_the_peers_completed_one_gets_temporary_failure_and_one_sa_stays() {
    let (mut run, ci, cr) = up();
    let mut esp = Esp::new(&ci, &cr);
    let spi = resp_spi(&run);
    let ri = run.init_sends(Request::RekeyIke);
    let (_, rr) = run.resp_sends(spi, Request::RekeyIke);
    // The responder sees the collision; the initiator gets its answer before the peer's
    // request, completes and deletes the old SA.
    let answer = run.deliver_to_responder(&ri).expect("answered");
    let delete = run
        .deliver_to_initiator(&answer)
        .expect("Delete of the old SA");
    let i = rekeyed(run.init.poll_event());
    let refusal = run.deliver_to_initiator(&rr).expect("answered");
    assert_eq!(run.deliver_to_responder(&refusal), None);
    let r = rekeyed(resp_event(&mut run));
    assert_eq!(
        (i.old, i.new),
        (r.old, r.new),
        "the initiator's new SA stays"
    );
    let answer = run.deliver_to_responder(&delete).expect("answered");
    assert_eq!(run.deliver_to_initiator(&answer), None);
    assert!(run.init.poll_event().is_none());
    assert!(resp_event(&mut run).is_none());
    assert_eq!(run.init.sas(), vec![i.new]);
    assert_eq!(run.resp.established(), 1);
    assert!(esp.both_ways());
    new_sa_works(&mut run, &ci, i.new, true);
}

#[test]
fn a_ke_of_another_group_gets_invalid_ke_payload_with_the_chosen_group_and_the_next_rekey_uses_it()
{
    let a = IkeSuite {
        aead: Aead::AesGcm16_256,
        prf: Prf::HmacSha256,
        dh: DhGroup::Curve25519,
    };
    let b = IkeSuite {
        dh: DhGroup::Ecp256,
        ..a
    };
    // The site prefers B, the gateway A: the IKE SA comes up with A (the initiator's first),
    // and the site's rekey, which proposes B first with a KE of A, is answered with B's group.
    let mut i = gateway("k");
    i.ike = vec![a, b];
    let mut r = site("k");
    r.ike = vec![b, a];
    let (mut run, _, _) = up_with(i, r, 0);
    let spi = resp_spi(&run);
    let (_, req) = run.resp_sends(spi, Request::RekeyIke);
    let refusal = run.deliver_to_initiator(&req).expect("answered");
    assert_eq!(run.init.counters().invalid_ke, 1);
    assert!(run.init.poll_event().is_none());
    assert_eq!(run.deliver_to_responder(&refusal), None);
    assert!(matches!(
        resp_event(&mut run),
        Some(IkeEvent::IkeRekeyFailed {
            notify: NotifyType::INVALID_KE_PAYLOAD
        })
    ));
    assert_eq!(resp_spi(&run), spi, "the old SA stays");
    let (_, req) = run.resp_sends(spi, Request::RekeyIke);
    let answer = run.deliver_to_initiator(&req).expect("answered");
    let delete = run.deliver_to_responder(&answer).expect("Delete");
    let answer = run.deliver_to_initiator(&delete).expect("answered");
    assert_eq!(run.deliver_to_responder(&answer), None);
    let ev = rekeyed(run.init.poll_event());
    assert_eq!(ev.suite, b, "rekeyed with the group asked for");
    assert_eq!(rekeyed(resp_event(&mut run)).new, ev.new);
}

#[test]
fn a_peer_that_never_answers_the_rekey_is_dead_and_the_sa_goes() {
    let (mut run, _, _) = up();
    let _lost = run.init_sends(Request::RekeyIke);
    let mut resent = 0;
    while let Some(at) = run.init.poll_timeout() {
        run.now = at;
        if run.init.handle_timeout(run.now).is_some() {
            resent += 1;
        }
    }
    assert_eq!(resent, 5);
    assert!(matches!(run.init.poll_event(), Some(IkeEvent::TimedOut)));
    assert!(!run.init.is_established());
    assert!(run.init.sas().is_empty());
}

#[test]
fn a_retransmitted_rekey_request_is_answered_again_and_creates_no_second_sa() {
    let (mut run, _, _) = up();
    let req = run.init_sends(Request::RekeyIke);
    let first = run.deliver_to_responder(&req).expect("answered");
    let again = run.deliver_to_responder(&req).expect("answered again");
    assert_eq!(first, again);
    assert_eq!(run.resp.counters().retransmits_answered, 1);
    assert!(matches!(
        resp_event(&mut run),
        Some(IkeEvent::IkeRekeyed { .. })
    ));
    assert!(resp_event(&mut run).is_none());
    let delete = run.deliver_to_initiator(&again).expect("Delete");
    let answer = run.deliver_to_responder(&delete).expect("answered");
    assert_eq!(run.deliver_to_initiator(&answer), None);
    assert_eq!(run.resp.established(), 1);
    // A CREATE_CHILD_SA on the old SA after the rekey names no SA any more.
    assert_eq!(run.deliver_to_responder(&req), None);
}

#[test]
fn a_lost_delete_of_the_old_sa_is_retransmitted_on_the_responders_timers() {
    let (mut run, _, _) = up();
    let spi = resp_spi(&run);
    let (_, req) = run.resp_sends(spi, Request::RekeyIke);
    let answer = run.deliver_to_initiator(&req).expect("answered");
    let _lost = run.deliver_to_responder(&answer).expect("Delete");
    let r = rekeyed(resp_event(&mut run));
    let at = run
        .resp
        .poll_timeout()
        .expect("the Delete's retransmission");
    run.now = at;
    let resent = run.resp.handle_timeout(run.now);
    let [(to, delete)] = resent.as_slice() else {
        panic!("one retransmission: {resent:?}")
    };
    assert_eq!(*to, peer());
    assert_eq!(
        (header(delete).spi_i, header(delete).spi_r),
        r.old,
        "on the old SA"
    );
    let answer = run.deliver_to_initiator(delete).expect("answered");
    assert_eq!(run.deliver_to_responder(&answer), None);
    assert_eq!(run.resp.poll_timeout(), None);
    assert_eq!(run.resp.established(), 1);
    assert_eq!(run.init.sas(), vec![r.new]);
}

#[test]
fn an_old_sa_whose_delete_is_never_answered_goes_without_declaring_the_peer_dead() {
    let (mut run, _, _) = up();
    let req = run.init_sends(Request::RekeyIke);
    let answer = run.deliver_to_responder(&req).expect("answered");
    let _lost = run.deliver_to_initiator(&answer).expect("Delete");
    let i = rekeyed(run.init.poll_event());
    while let Some(at) = run.init.poll_timeout() {
        run.now = at;
        let _ = run.init.handle_timeout(run.now);
    }
    assert!(
        run.init.poll_event().is_none(),
        "no TimedOut for the old SA"
    );
    assert!(run.init.is_established());
    assert_eq!(run.init.sas(), vec![i.new]);
}

#[test]
fn a_child_sa_rekeyed_on_the_old_ike_sa_while_the_peer_rekeys_it_moves_to_the_new_ike_sa() {
    let (mut run, ci, _) = up();
    let spi = resp_spi(&run);
    let child_req = run.init_sends(Request::RekeyChild(ci.inbound_spi));
    let (_, ike_req) = run.resp_sends(spi, Request::RekeyIke);
    // The initiator answers the IKE SA rekey first (the CHILD SAs move to the new SA), then
    // the answer to its CHILD SA rekey arrives on the old SA.
    let ike_answer = run.deliver_to_initiator(&ike_req).expect("answered");
    let i = rekeyed(run.init.poll_event());
    let child_answer = run.deliver_to_responder(&child_req).expect("answered");
    assert!(matches!(
        resp_event(&mut run),
        Some(IkeEvent::ChildRekeyed { .. })
    ));
    assert_eq!(run.deliver_to_initiator(&child_answer), None);
    let Some(IkeEvent::ChildRekeyed { child: new_i, .. }) = run.init.poll_event() else {
        panic!("initiator: no CHILD SA rekey")
    };
    let delete = run.deliver_to_responder(&ike_answer).expect("Delete");
    assert_eq!(rekeyed(resp_event(&mut run)).new, i.new);
    let answer = run.deliver_to_initiator(&delete).expect("answered");
    assert_eq!(run.deliver_to_responder(&answer), None);
    assert_eq!(run.init.sas(), vec![i.new]);
    // Both CHILD SAs are the new IKE SA's: deleting each is answered and reported.
    for inbound in [ci.inbound_spi, new_i.inbound_spi] {
        let del = run.init_sends(Request::DeleteChild(inbound));
        let answer = run.deliver_to_responder(&del).expect("answered");
        assert!(matches!(
            resp_event(&mut run),
            Some(IkeEvent::ChildDeleted { .. })
        ));
        assert_eq!(run.deliver_to_initiator(&answer), None);
        assert!(
            matches!(run.init.poll_event(), Some(IkeEvent::ChildDeleted { inbound_spi, .. }) if inbound_spi == inbound),
            "CHILD SA {inbound:#x} on the new IKE SA"
        );
    }
}

mod interleavings {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;

    /// Delivers the queued datagrams in the order `picks` says (true: a datagram to the
    /// responder first), dropping the ones `drops` names, running both sides' timers when
    /// nothing is queued, until nothing is queued or pending.
    fn settle(
        run: &mut Run,
        mut to_resp: VecDeque<Vec<u8>>,
        mut to_init: VecDeque<Vec<u8>>,
        picks: &[bool],
        drops: &[usize],
    ) {
        let mut n = 0usize;
        for _ in 0..400 {
            let pick = picks.get(n % picks.len().max(1)).copied().unwrap_or(true);
            let from_resp_queue = (pick && !to_resp.is_empty()) || to_init.is_empty();
            let next = if from_resp_queue {
                to_resp.pop_front()
            } else {
                to_init.pop_front()
            };
            let Some(d) = next else {
                // Nothing in flight: the timers.
                let at = [run.init.poll_timeout(), run.resp.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min();
                let Some(at) = at else { return };
                run.now = run.now.max(at);
                to_resp.extend(run.init.handle_timeout(run.now));
                to_init.extend(run.resp.handle_timeout(run.now).into_iter().map(|(_, d)| d));
                continue;
            };
            n += 1;
            if drops.contains(&n) {
                continue;
            }
            if from_resp_queue {
                to_init.extend(run.deliver_to_responder(&d));
            } else {
                to_resp.extend(run.deliver_to_initiator(&d));
            }
        }
        panic!("no end after 400 steps");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Both sides rekey the IKE SA at once (2.8.2), or the site does a DPD or a CHILD SA
        /// rekey meanwhile; whatever the order of the datagrams and a lost one or two, the two
        /// sides end with the same single IKE SA, which holds the CHILD SA, and nobody declares
        /// the peer dead.
        #[test]
        fn simultaneous_rekeys_in_any_order_end_with_one_shared_ike_sa(
            skew in 0usize..64,
            picks in proptest::collection::vec(any::<bool>(), 1..16),
            drops in proptest::collection::vec(1usize..12, 0..3),
            second in 0u8..3,
        ) {
            let (mut run, ci, cr) = up_with(gateway("k"), site("k"), skew);
            let spi = resp_spi(&run);
            let ri = run.init_sends(Request::RekeyIke);
            let second = match second {
                0 => Request::RekeyIke,
                1 => Request::Dpd,
                _ => Request::RekeyChild(cr.inbound_spi),
            };
            let (_, rr) = run.resp_sends(spi, second);
            settle(&mut run, VecDeque::from([ri]), VecDeque::from([rr]), &picks, &drops);
            let mut i_events = Vec::new();
            while let Some(e) = run.init.poll_event() { i_events.push(e); }
            let mut r_events = Vec::new();
            while let Some((_, e)) = run.resp.poll_event() { r_events.push(e); }
            prop_assert!(!i_events.iter().chain(&r_events).any(|e| matches!(e, IkeEvent::TimedOut | IkeEvent::Deleted { .. })),
                "{:?} / {:?}", i_events, r_events);
            let sas = run.init.sas();
            prop_assert_eq!(sas.len(), 1, "{:?}", sas);
            prop_assert_eq!(run.resp.established(), 1);
            let last_i = i_events.iter().rev().find_map(|e| match e { IkeEvent::IkeRekeyed { new_spi_i, new_spi_r, .. } => Some((*new_spi_i, *new_spi_r)), _ => None });
            let last_r = r_events.iter().rev().find_map(|e| match e { IkeEvent::IkeRekeyed { new_spi_i, new_spi_r, .. } => Some((*new_spi_i, *new_spi_r)), _ => None });
            prop_assert_eq!(last_i, Some(sas[0]));
            prop_assert_eq!(last_r, Some(sas[0]));
            // The CHILD SA is the surviving IKE SA's: its rekey there succeeds.
            let req = run.init_sends(Request::RekeyChild(ci.inbound_spi));
            prop_assert_eq!((header(&req).spi_i, header(&req).spi_r), sas[0]);
            let answer = run.deliver_to_responder(&req).expect("answered");
            let ok = matches!(resp_event(&mut run), Some(IkeEvent::ChildRekeyed { old_inbound_spi, .. }) if old_inbound_spi == cr.inbound_spi);
            prop_assert!(ok, "the responder rekeyed the CHILD SA");
            prop_assert_eq!(run.deliver_to_initiator(&answer), None);
            let ok = matches!(run.init.poll_event(), Some(IkeEvent::ChildRekeyed { .. }));
            prop_assert!(ok, "the initiator rekeyed the CHILD SA");
        }
    }
}
