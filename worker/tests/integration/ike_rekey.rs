//! Rekeying a CHILD SA with CREATE_CHILD_SA (`core::ike::exchange`, RFC 7296 1.3.3, 2.17):
//! from either side, the new CHILD SA's keys match across the sides and carry ESP while the old
//! one still does, until the rekey's initiator deletes it; a rekey of a CHILD SA the peer no
//! longer has is refused with CHILD_SA_NOT_FOUND.

use isthmus_worker::core::esp::{Inbound, NEXT_IPV4, Outbound};
use isthmus_worker::core::ike::exchange::{ChildSa, IkeEvent, Request};

use super::ike_exchange::{Run, established, gateway, site};

fn up() -> (Run, ChildSa, ChildSa) {
    let (mut run, first) = Run::new(gateway("k"), site("k"), 10);
    run.drive(first);
    let (_, _, _, i) = established(run.init.poll_event());
    let Some((_, ev)) = run.resp.poll_event() else {
        panic!("no responder event")
    };
    let (_, _, _, r) = established(Some(ev));
    (run, i, r)
}

fn rekeyed(e: Option<IkeEvent>) -> (u32, u32, ChildSa) {
    match e {
        Some(IkeEvent::ChildRekeyed {
            old_inbound_spi,
            old_outbound_spi,
            child,
        }) => (old_inbound_spi, old_outbound_spi, child),
        other => panic!("not rekeyed: {other:?}"),
    }
}

/// A packet sealed with `tx` opens with `rx`.
fn carries(tx: &ChildSa, rx: &ChildSa) -> bool {
    let mut out = Outbound::new(tx.suite.aead, tx.outbound_spi, &tx.outbound_key).expect("tx");
    let mut inb = Inbound::new(rx.suite.aead, rx.inbound_spi, &rx.inbound_key).expect("rx");
    let mut buf = Vec::new();
    out.seal(b"through the tunnel", NEXT_IPV4, &mut buf)
        .expect("seal");
    inb.open(&mut buf)
        .is_ok_and(|o| &buf[o.inner] == b"through the tunnel")
}

#[test]
fn the_initiator_rekeys_the_child_sa_and_then_deletes_the_old_one() {
    let (mut run, old_i, old_r) = up();
    let req = run.init_sends(Request::RekeyChild(old_i.inbound_spi));
    let answer = run.deliver_to_responder(&req).expect("answered");
    let Some((_, ev)) = run.resp.poll_event() else {
        panic!("no responder event")
    };
    let (r_old_in, r_old_out, new_r) = rekeyed(Some(ev));
    assert_eq!(
        (r_old_in, r_old_out),
        (old_r.inbound_spi, old_r.outbound_spi)
    );
    assert_eq!(run.deliver_to_initiator(&answer), None);
    let (i_old_in, i_old_out, new_i) = rekeyed(run.init.poll_event());
    assert_eq!(
        (i_old_in, i_old_out),
        (old_i.inbound_spi, old_i.outbound_spi)
    );
    // New SPIs, new keys, matching across the sides.
    assert_eq!(new_i.outbound_spi, new_r.inbound_spi);
    assert_eq!(new_i.inbound_spi, new_r.outbound_spi);
    assert_ne!(new_i.inbound_spi, old_i.inbound_spi);
    assert_ne!(new_i.outbound_key, old_i.outbound_key);
    assert_eq!(new_i.local_ts, old_i.local_ts);
    assert!(carries(&new_i, &new_r) && carries(&new_r, &new_i));
    // The old CHILD SA still carries traffic until it is deleted.
    assert!(carries(&old_i, &old_r) && carries(&old_r, &old_i));
    let del = run
        .init
        .request(
            Request::DeleteChild(old_i.inbound_spi),
            &mut run.ie,
            run.now,
        )
        .expect("delete")
        .expect("sent");
    let answer = run.deliver_to_responder(&del).expect("answered");
    assert!(matches!(
        run.resp.poll_event(),
        Some((_, IkeEvent::ChildDeleted { inbound_spi, .. })) if inbound_spi == old_r.inbound_spi
    ));
    assert_eq!(run.deliver_to_initiator(&answer), None);
    assert!(matches!(
        run.init.poll_event(),
        Some(IkeEvent::ChildDeleted { inbound_spi, .. }) if inbound_spi == old_i.inbound_spi
    ));
    // The new CHILD SA can be rekeyed in turn.
    assert!(
        run.init
            .request(Request::RekeyChild(new_i.inbound_spi), &mut run.ie, run.now)
            .expect("rekey")
            .is_some()
    );
}

#[test]
fn the_responder_rekeys_the_child_sa() {
    let (mut run, old_i, old_r) = up();
    let spi = run.resp.sas_with("192.0.2.10:500".parse().expect("addr"))[0];
    let (_, req) = run
        .resp
        .request(
            spi,
            Request::RekeyChild(old_r.inbound_spi),
            &mut run.re,
            run.now,
        )
        .expect("rekey")
        .expect("sent");
    let answer = run.deliver_to_initiator(&req).expect("answered");
    let (i_old_in, _, new_i) = rekeyed(run.init.poll_event());
    assert_eq!(i_old_in, old_i.inbound_spi);
    assert_eq!(run.deliver_to_responder(&answer), None);
    let Some((_, ev)) = run.resp.poll_event() else {
        panic!("no responder event")
    };
    let (r_old_in, _, new_r) = rekeyed(Some(ev));
    assert_eq!(r_old_in, old_r.inbound_spi);
    assert!(carries(&new_i, &new_r) && carries(&new_r, &new_i));
    assert_eq!(run.resp.poll_timeout(), None, "nothing outstanding");
}

#[test]
fn rekeying_an_unknown_child_sa_sends_nothing() {
    let (mut run, _, _) = up();
    assert_eq!(
        run.init
            .request(Request::RekeyChild(12_345), &mut run.ie, run.now)
            .expect("rekey"),
        None
    );
}

#[test]
fn a_rekey_of_a_child_sa_the_peer_deleted_meanwhile_is_refused_with_child_sa_not_found() {
    let (mut run, old_i, old_r) = up();
    let spi = run.resp.sas_with("192.0.2.10:500".parse().expect("addr"))[0];
    let rekey = run.init_sends(Request::RekeyChild(old_i.inbound_spi));
    // Meanwhile the responder deletes the CHILD SA, and the deletion completes first.
    let (_, del) = run
        .resp
        .request(
            spi,
            Request::DeleteChild(old_r.inbound_spi),
            &mut run.re,
            run.now,
        )
        .expect("delete")
        .expect("sent");
    let del_answer = run.deliver_to_initiator(&del).expect("answered");
    assert!(matches!(
        run.init.poll_event(),
        Some(IkeEvent::ChildDeleted { .. })
    ));
    assert_eq!(run.deliver_to_responder(&del_answer), None);
    assert!(matches!(
        run.resp.poll_event(),
        Some((_, IkeEvent::ChildDeleted { .. }))
    ));
    let refusal = run.deliver_to_responder(&rekey).expect("answered");
    assert_eq!(run.deliver_to_initiator(&refusal), None);
    assert!(matches!(
        run.init.poll_event(),
        Some(IkeEvent::ChildRekeyFailed {
            notify: isthmus_worker::core::ike::wire::NotifyType::CHILD_SA_NOT_FOUND,
            ..
        })
    ));
}

/// RFC 7296 2.8.1: the peer answers our rekey (it creates the new CHILD SA), then deletes the
/// old one, and its Delete reaches us before its answer: the new CHILD SA is still installed
/// on our side (the peer may send on it), with keys that match the peer's. It was refused as
/// CHILD_SA_NOT_FOUND once, which left the peer sending on an SA we did not know: a stall of
/// a minute under rekeys every megabyte against strongSwan.
#[test]
fn a_rekey_answered_after_the_peer_deleted_the_old_child_sa_still_installs_the_new_one() {
    let (mut run, old_i, old_r) = up();
    let spi = run.resp.sas_with("192.0.2.10:500".parse().expect("addr"))[0];
    let rekey = run.init_sends(Request::RekeyChild(old_i.inbound_spi));
    // The peer answers the rekey (held back), then deletes the old CHILD SA.
    let answer = run.deliver_to_responder(&rekey).expect("answered");
    let (_, _, new_r) = match run.resp.poll_event() {
        Some((_, e)) => rekeyed(Some(e)),
        None => panic!("no responder event"),
    };
    let (_, del) = run
        .resp
        .request(
            spi,
            Request::DeleteChild(old_r.inbound_spi),
            &mut run.re,
            run.now,
        )
        .expect("delete")
        .expect("sent");
    let del_answer = run.deliver_to_initiator(&del).expect("answered");
    assert!(matches!(
        run.init.poll_event(),
        Some(IkeEvent::ChildDeleted { .. })
    ));
    assert_eq!(run.deliver_to_responder(&del_answer), None);
    // Now the answer arrives: the new CHILD SA is ours too.
    assert_eq!(run.deliver_to_initiator(&answer), None);
    let (_, _, new_i) = rekeyed(run.init.poll_event());
    assert_eq!(new_i.outbound_spi, new_r.inbound_spi);
    assert_eq!(new_i.inbound_spi, new_r.outbound_spi);
    assert!(
        carries(&new_i, &new_r) && carries(&new_r, &new_i),
        "the keys match"
    );
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// Mutated copies of requests and responses on an established SA (a rekey, a DPD),
        /// fed to either side, never panic it, and the SA still answers the real ones.
        #[test]
        fn mutated_requests_on_an_established_sa_never_panic_and_change_nothing(
            rekey in any::<bool>(),
            to_responder in any::<bool>(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..5),
            cut in proptest::option::of(any::<usize>()),
        ) {
            let (mut run, old_i, _) = up();
            let request = if rekey { Request::RekeyChild(old_i.inbound_spi) } else { Request::Dpd };
            let req = run.init_sends(request);
            let original = if to_responder {
                req.clone()
            } else {
                // A response as the responder would send it, taken from a twin run.
                let (mut twin, twin_i, _) = up();
                let twin_req = if rekey { Request::RekeyChild(twin_i.inbound_spi) } else { Request::Dpd };
                let r = twin.init.request(twin_req, &mut twin.ie, twin.now).expect("request").expect("sent");
                twin.deliver_to_responder(&r).expect("answered")
            };
            let mut m = original.clone();
            for (i, b) in &edits {
                let at = i % m.len();
                m[at] ^= b | 1;
            }
            if let Some(c) = cut {
                m.truncate(c % m.len());
            }
            // Two edits of one byte may cancel out.
            prop_assume!(m != original);
            if to_responder {
                prop_assert_eq!(run.deliver_to_responder(&m), None);
            } else {
                prop_assert_eq!(run.deliver_to_initiator(&m), None);
            }
            let answer = run.deliver_to_responder(&req).expect("the real request is answered");
            prop_assert_eq!(run.deliver_to_initiator(&answer), None);
            prop_assert!(run.init.is_established());
            prop_assert_eq!(run.resp.established(), 1);
        }
    }
}
