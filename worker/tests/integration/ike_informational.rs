//! Requests on an established IKE SA (`core::ike::exchange`, RFC 7296 1.4, 2.4): dead peer
//! detection is answered, or declares the peer dead after every retransmission; a Delete of
//! the IKE SA or of a CHILD SA is answered and both sides drop it; retransmitted requests get
//! the cached answer, tampered ones nothing.

use std::time::Duration;

use isthmus_worker::core::ike::exchange::{IkeEvent, Request};

use super::ike_exchange::{Run, established, gateway, site};

/// An established SA with its events drained; the initiator's CHILD SA SPIs.
fn up() -> (Run, u32, u32) {
    let (mut run, first) = Run::new(gateway("k"), site("k"), 10);
    run.drive(first);
    let (_, _, _, child) = established(run.init.poll_event());
    assert!(matches!(
        run.resp.poll_event(),
        Some((_, IkeEvent::Established { .. }))
    ));
    (run, child.inbound_spi, child.outbound_spi)
}

#[test]
fn dead_peer_detection_is_answered_and_the_sa_stays_up() {
    let (mut run, _, _) = up();
    let now = run.now;
    let dpd = run
        .init
        .request(Request::Dpd, &mut run.ie, now)
        .expect("dpd")
        .expect("sent");
    assert!(run.init.poll_timeout().is_some());
    assert_eq!(
        run.init
            .request(Request::Dpd, &mut run.ie, now)
            .expect("dpd"),
        None,
        "one request at a time (window size 1)"
    );
    let answer = run.deliver_to_responder(&dpd).expect("answered");
    assert_eq!(run.deliver_to_initiator(&answer), None);
    assert_eq!(run.init.poll_timeout(), None);
    assert!(run.init.is_established());
    assert_eq!(run.resp.established(), 1);
    // The next request carries the next message ID and is answered too.
    let dpd2 = run
        .init
        .request(Request::Dpd, &mut run.ie, now)
        .expect("dpd")
        .expect("sent");
    assert_ne!(dpd, dpd2);
    let answer2 = run.deliver_to_responder(&dpd2).expect("answered");
    assert_eq!(run.deliver_to_initiator(&answer2), None);
    // The first answer again matches no outstanding request.
    assert_eq!(run.deliver_to_initiator(&answer), None);
    assert_eq!(run.init.counters().replayed, 1);
}

#[test]
fn a_peer_that_never_answers_dead_peer_detection_is_declared_dead() {
    let (mut run, _, _) = up();
    let start = run.now;
    let dpd = run.init_sends(Request::Dpd);
    for _ in 0..5 {
        run.now = run.init.poll_timeout().expect("a timer");
        assert_eq!(run.init.handle_timeout(run.now), Some(dpd.clone()));
    }
    run.now = run.init.poll_timeout().expect("a timer");
    assert_eq!(run.init.handle_timeout(run.now), None);
    assert!(matches!(run.init.poll_event(), Some(IkeEvent::TimedOut)));
    assert!(!run.init.is_established());
    assert_eq!(run.init.counters().retransmissions, 5);
    // Waited 1 + 2 + 4 + 8 + 16 + 32 s in all.
    assert_eq!(run.now - start, Duration::from_secs(63));
}

#[test]
fn a_retransmitted_request_gets_the_cached_answer_and_a_tampered_one_nothing() {
    let (mut run, _, _) = up();
    let dpd = run.init_sends(Request::Dpd);
    let mut tampered = dpd.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x80;
    assert_eq!(run.deliver_to_responder(&tampered), None);
    assert_eq!(run.resp.counters().integrity_failed, 1);
    let answer = run.deliver_to_responder(&dpd).expect("answered");
    assert_eq!(run.deliver_to_responder(&dpd), Some(answer.clone()));
    assert_eq!(run.resp.counters().retransmits_answered, 1);
    assert_eq!(run.deliver_to_initiator(&answer), None);
}

#[test]
fn deleting_the_ike_sa_removes_it_on_both_sides() {
    let (mut run, _, _) = up();
    let del = run.init_sends(Request::DeleteIke);
    let answer = run.deliver_to_responder(&del).expect("answered");
    assert!(matches!(
        run.resp.poll_event(),
        Some((_, IkeEvent::Deleted { by_peer: true }))
    ));
    assert_eq!(run.resp.established(), 0);
    assert_eq!(run.deliver_to_initiator(&answer), None);
    assert!(matches!(
        run.init.poll_event(),
        Some(IkeEvent::Deleted { by_peer: false })
    ));
    assert!(!run.init.is_established());
    // The SA is gone: a retransmitted Delete names an unknown SPI.
    assert_eq!(run.deliver_to_responder(&del), None);
    assert_eq!(run.resp.counters().unknown_spi, 1);
}

#[test]
fn deleting_the_child_sa_is_answered_with_the_delete_of_its_other_half() {
    let (mut run, inbound, outbound) = up();
    let del = run.init_sends(Request::DeleteChild(inbound));
    let answer = run.deliver_to_responder(&del).expect("answered");
    // The responder's view: our outbound SPI is its inbound one.
    match run.resp.poll_event() {
        Some((
            _,
            IkeEvent::ChildDeleted {
                inbound_spi,
                outbound_spi,
            },
        )) => assert_eq!((inbound_spi, outbound_spi), (outbound, inbound)),
        other => panic!("{other:?}"),
    }
    assert_eq!(run.deliver_to_initiator(&answer), None);
    match run.init.poll_event() {
        Some(IkeEvent::ChildDeleted {
            inbound_spi,
            outbound_spi,
        }) => assert_eq!((inbound_spi, outbound_spi), (inbound, outbound)),
        other => panic!("{other:?}"),
    }
    assert!(run.init.is_established(), "the IKE SA stays");
    assert_eq!(run.resp.established(), 1);
}

/// The responder's SPI of the one established SA.
fn resp_spi(run: &Run) -> u64 {
    let spis = run.resp.sas_with("192.0.2.10:500".parse().expect("addr"));
    assert_eq!(spis.len(), 1);
    spis[0]
}

#[test]
fn the_responder_s_dead_peer_detection_is_answered_by_the_initiator() {
    let (mut run, _, _) = up();
    let spi = resp_spi(&run);
    let (to, dpd) = run.resp_sends(spi, Request::Dpd);
    assert_eq!(to, "192.0.2.10:500".parse().expect("addr"));
    let answer = run.deliver_to_initiator(&dpd).expect("answered");
    // A retransmission of it gets the same answer.
    assert_eq!(run.deliver_to_initiator(&dpd), Some(answer.clone()));
    assert_eq!(run.init.counters().retransmits_answered, 1);
    assert_eq!(run.deliver_to_responder(&answer), None);
    assert_eq!(run.resp.poll_timeout(), None, "nothing outstanding");
    assert_eq!(run.resp.established(), 1);
    assert!(run.init.is_established());
}

#[test]
fn an_initiator_that_never_answers_the_responder_is_declared_dead() {
    let (mut run, _, _) = up();
    let spi = resp_spi(&run);
    let (_, dpd) = run.resp_sends(spi, Request::Dpd);
    for _ in 0..5 {
        run.now = run.resp.poll_timeout().expect("a timer");
        let again = run.resp.handle_timeout(run.now);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].1, dpd);
    }
    run.now = run.resp.poll_timeout().expect("a timer");
    assert!(run.resp.handle_timeout(run.now).is_empty());
    assert!(matches!(
        run.resp.poll_event(),
        Some((_, IkeEvent::TimedOut))
    ));
    assert_eq!(run.resp.established(), 0);
    assert_eq!(run.resp.poll_timeout(), None);
}

#[test]
fn the_responder_deleting_the_ike_sa_closes_it_on_both_sides() {
    let (mut run, _, _) = up();
    let spi = resp_spi(&run);
    let (_, del) = run.resp_sends(spi, Request::DeleteIke);
    let answer = run.deliver_to_initiator(&del).expect("answered");
    assert!(matches!(
        run.init.poll_event(),
        Some(IkeEvent::Deleted { by_peer: true })
    ));
    assert!(!run.init.is_established());
    assert_eq!(run.deliver_to_responder(&answer), None);
    assert!(matches!(
        run.resp.poll_event(),
        Some((_, IkeEvent::Deleted { by_peer: false }))
    ));
    assert_eq!(run.resp.established(), 0);
}
