//! NAT detection in IKE_SA_INIT (`core::ike::nat`, RFC 7296 2.23): each side learns whether
//! its own address or the peer's is translated, and a side that forces encapsulation makes the
//! peer believe it is behind a NAT.

use std::net::SocketAddr;
use std::time::Instant;

use isthmus_worker::core::ike::exchange::{Config, IkeEvent, Initiator, Responder};
use isthmus_worker::core::ike::nat::{Nat, digest};
use isthmus_worker::core::ike::wire::{Message, NotifyType, Payload};

use super::ike_exchange::{Seeded, gateway, site};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

/// Runs the exchange: the initiator sends from `i_local` to `r_local`, and the responder sees
/// it come from `seen`. Returns both sides' NAT findings and the initiator's verdict.
fn exchange(
    i: Config,
    i_local: &str,
    seen: &str,
    r_local: &str,
) -> (Option<Nat>, Option<Nat>, bool) {
    let (i_local, seen, r_local) = (addr(i_local), addr(seen), addr(r_local));
    let now = Instant::now();
    let (mut ie, mut re) = (Seeded::new(3), Seeded::new(4));
    let (mut init, mut req) = Initiator::start(i, i_local, r_local, &mut ie, now).expect("start");
    let mut resp = Responder::new(site("k"), 10, &mut re).expect("responder");
    while let Some(answer) = resp
        .handle(r_local, seen, &req, &mut re, now)
        .expect("responder")
    {
        match init.handle(&answer, &mut ie, now).expect("initiator") {
            Some(next) => req = next,
            None => break,
        }
    }
    let nat_of = |e: Option<IkeEvent>| match e {
        Some(IkeEvent::Established { nat, .. }) => nat,
        other => panic!("not established: {other:?}"),
    };
    let i_nat = nat_of(init.poll_event());
    let r_nat = nat_of(resp.poll_event().map(|(_, e)| e));
    (i_nat, r_nat, init.encapsulate())
}

#[test]
fn the_nat_detection_digest_is_sha1_of_the_spis_the_address_and_the_port() {
    let d = digest(
        0x0102_0304_0506_0708,
        0x1112_1314_1516_1718,
        addr("192.0.2.10:4500"),
    );
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "4241cad1dadc1360129f8fc22ffa37c931af3125");
    let d = digest(0x0102_0304_0506_0708, 0, addr("[2001:db8::1]:500"));
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "7fa12a60a3a27ef1b3fed26cc6d5b8fbf553292f");
}

#[test]
fn without_a_nat_neither_side_encapsulates() {
    let (i, r, encap) = exchange(
        gateway("k"),
        "192.0.2.10:500",
        "192.0.2.10:500",
        "198.51.100.1:500",
    );
    let none = Some(Nat::default());
    assert_eq!((i, r, encap), (none, none, false));
}

#[test]
fn an_initiator_behind_a_nat_is_detected_by_both_sides() {
    let (i, r, encap) = exchange(
        gateway("k"),
        "10.0.0.5:500",
        "203.0.113.7:4096",
        "198.51.100.1:500",
    );
    assert_eq!(
        i,
        Some(Nat {
            local_behind: true,
            peer_behind: false
        })
    );
    assert_eq!(
        r,
        Some(Nat {
            local_behind: false,
            peer_behind: true
        })
    );
    assert!(encap, "the initiator moves to port 4500");
}

#[test]
fn forcing_encapsulation_makes_the_peer_see_a_nat() {
    let mut g = gateway("k");
    g.force_encapsulation = true;
    let (i, r, encap) = exchange(g, "192.0.2.10:500", "192.0.2.10:500", "198.51.100.1:500");
    assert_eq!(i, Some(Nat::default()));
    assert_eq!(
        r,
        Some(Nat {
            local_behind: false,
            peer_behind: true
        })
    );
    assert!(encap);
}

#[test]
fn the_responder_sends_nat_detection_only_to_an_initiator_that_did() {
    let now = Instant::now();
    let (mut ie, mut re) = (Seeded::new(5), Seeded::new(6));
    let (r_local, i_addr) = (addr("198.51.100.1:500"), addr("192.0.2.10:500"));
    let (_, req) = Initiator::start(gateway("k"), i_addr, r_local, &mut ie, now).expect("start");
    let is_natd = |p: &Payload| {
        matches!(p, Payload::Notify(n) if n.kind == NotifyType::NAT_DETECTION_SOURCE_IP
            || n.kind == NotifyType::NAT_DETECTION_DESTINATION_IP)
    };
    let mut m = Message::parse(&req).expect("parses");
    assert_eq!(m.payloads.iter().filter(|p| is_natd(p)).count(), 2);
    m.payloads.retain(|p| !is_natd(p));
    let mut resp = Responder::new(site("k"), 10, &mut re).expect("responder");
    let answer = resp
        .handle(r_local, i_addr, &m.serialize(), &mut re, now)
        .expect("responder")
        .expect("answer");
    let a = Message::parse(&answer).expect("parses");
    assert!(!a.payloads.iter().any(is_natd));
    assert_eq!(resp.half_open(), 1);
}
