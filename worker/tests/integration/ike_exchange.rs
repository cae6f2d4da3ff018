//! IKE_SA_INIT + IKE_AUTH between an in-memory initiator and responder (`core::ike::exchange`)
//! on a virtual clock, with seeded randomness: every suite establishes an IKE SA and a CHILD
//! SA whose keys match across the two sides; every refusal (wrong PSK, no common proposal,
//! disjoint selectors) carries its notify; truncated, tampered and replayed messages are
//! dropped and counted; past the half-open threshold the responder asks for a cookie.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use isthmus_worker::core::ike::crypto::{Aead, CryptoError, DhGroup, Entropy, Prf, Secret};
use isthmus_worker::core::ike::exchange::{
    ChildSa, Config, IkeEvent, Initiator, Request, Responder,
};
use isthmus_worker::core::ike::proposal::{EspSuite, IkeSuite};
use isthmus_worker::core::ike::wire::{
    ExchangeType, IdType, Identification, Message, NotifyType, Payload, TrafficSelector,
};

/// Deterministic randomness: SHA-256 of a seed and a counter.
pub struct Seeded {
    seed: u64,
    counter: u64,
}

impl Seeded {
    pub fn new(seed: u64) -> Self {
        Self { seed, counter: 0 }
    }
}

impl Entropy for Seeded {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), CryptoError> {
        for chunk in out.chunks_mut(32) {
            self.counter += 1;
            let d = ring::digest::digest(
                &ring::digest::SHA256,
                &[self.seed.to_be_bytes(), self.counter.to_be_bytes()].concat(),
            );
            chunk.copy_from_slice(&d.as_ref()[..chunk.len()]);
        }
        Ok(())
    }
}

fn fqdn(s: &str) -> Identification {
    Identification {
        id_type: IdType::FQDN,
        data: s.as_bytes().to_vec(),
    }
}

fn ts(nets: &[&str]) -> Vec<TrafficSelector> {
    nets.iter()
        .map(|n| TrafficSelector::from_net(n.parse().expect("prefix")))
        .collect()
}

const SUITE: IkeSuite = IkeSuite {
    aead: Aead::AesGcm16_256,
    prf: Prf::HmacSha256,
    dh: DhGroup::Curve25519,
};
const ESP: EspSuite = EspSuite {
    aead: Aead::AesGcm16_256,
};

/// The gateway (initiator here) protects 10.1.0.0/16, the site 10.2.0.0/16.
pub fn gateway(psk: &str) -> Config {
    Config {
        psk: Secret::from_slice(psk.as_bytes()),
        local_id: fqdn("gw.isthmus.example"),
        remote_id: Some(fqdn("site.example")),
        ike: vec![SUITE],
        esp: vec![ESP],
        local_ts: ts(&["10.1.0.0/16"]),
        remote_ts: ts(&["10.2.0.0/16"]),
        force_encapsulation: false,
    }
}

pub fn site(psk: &str) -> Config {
    Config {
        psk: Secret::from_slice(psk.as_bytes()),
        local_id: fqdn("site.example"),
        remote_id: Some(fqdn("gw.isthmus.example")),
        ike: vec![SUITE],
        esp: vec![ESP],
        local_ts: ts(&["10.2.0.0/16"]),
        remote_ts: ts(&["10.1.0.0/16"]),
        force_encapsulation: false,
    }
}

/// The initiator's address, as the responder sees it.
fn peer() -> SocketAddr {
    "192.0.2.10:500".parse().expect("addr")
}

/// The responder's address.
fn gw() -> SocketAddr {
    "198.51.100.1:500".parse().expect("addr")
}

pub struct Run {
    pub init: Initiator,
    pub resp: Responder,
    pub ie: Seeded,
    pub re: Seeded,
    pub now: Instant,
}

impl Run {
    pub fn new(i: Config, r: Config, threshold: usize) -> (Self, Vec<u8>) {
        let mut ie = Seeded::new(1);
        let mut re = Seeded::new(2);
        let now = Instant::now();
        let (init, first) = Initiator::start(i, peer(), gw(), &mut ie, now).expect("start");
        let resp = Responder::new(r, threshold, &mut re).expect("responder");
        (
            Self {
                init,
                resp,
                ie,
                re,
                now,
            },
            first,
        )
    }

    pub fn deliver_to_responder(&mut self, d: &[u8]) -> Option<Vec<u8>> {
        self.resp
            .handle(gw(), peer(), d, &mut self.re, self.now)
            .expect("responder")
    }

    pub fn deliver_to_initiator(&mut self, d: &[u8]) -> Option<Vec<u8>> {
        self.init
            .handle(d, &mut self.ie, self.now)
            .expect("initiator")
    }

    /// The initiator's request `r`, which it must send.
    pub fn init_sends(&mut self, r: Request) -> Vec<u8> {
        self.init
            .request(r, &mut self.ie, self.now)
            .expect("a request")
            .expect("sent")
    }

    /// The responder's request `r` on its IKE SA `spi_r`, which it must send: the
    /// destination and the message.
    pub fn resp_sends(&mut self, spi_r: u64, r: Request) -> (SocketAddr, Vec<u8>) {
        self.resp
            .request(spi_r, r, &mut self.re, self.now)
            .expect("a request")
            .expect("sent")
    }

    /// Passes messages back and forth until nobody sends.
    pub fn drive(&mut self, first: Vec<u8>) {
        let mut req = Some(first);
        while let Some(r) = req.take() {
            let Some(resp) = self.deliver_to_responder(&r) else {
                break;
            };
            req = self.deliver_to_initiator(&resp);
        }
    }
}

pub fn established(e: Option<IkeEvent>) -> (u64, u64, IkeSuite, ChildSa) {
    match e {
        Some(IkeEvent::Established {
            spi_i,
            spi_r,
            suite,
            child: Some(child),
            child_refused: None,
            ..
        }) => (spi_i, spi_r, suite, child),
        other => panic!("not established with a CHILD SA: {other:?}"),
    }
}

/// The CHILD SAs of a default exchange, as the initiator and the responder see them.
pub fn established_child_pair() -> (ChildSa, ChildSa) {
    let (mut run, first) = Run::new(gateway("k"), site("k"), 10);
    run.drive(first);
    let (_, _, _, i) = established(run.init.poll_event());
    let Some((_, ev)) = run.resp.poll_event() else {
        panic!("responder: no event");
    };
    let (_, _, _, r) = established(Some(ev));
    (i, r)
}

#[test]
fn every_suite_establishes_an_ike_sa_and_a_child_sa_with_matching_keys() {
    let aeads = [
        Aead::AesGcm16_128,
        Aead::AesGcm16_256,
        Aead::ChaCha20Poly1305,
    ];
    let prfs = [Prf::HmacSha256, Prf::HmacSha384];
    let groups = [
        DhGroup::Modp2048,
        DhGroup::Ecp256,
        DhGroup::Ecp384,
        DhGroup::Curve25519,
    ];
    for (n, &aead) in aeads.iter().enumerate() {
        for &prf in &prfs {
            for &dh in &groups {
                let suite = IkeSuite { aead, prf, dh };
                let esp = EspSuite {
                    aead: aeads[(n + 1) % 3],
                };
                let mut i = gateway("s3cret");
                let mut r = site("s3cret");
                i.ike = vec![suite];
                i.esp = vec![esp];
                r.ike = vec![SUITE, suite];
                r.esp = vec![ESP, esp];
                let (mut run, first) = Run::new(i, r, 10);
                run.drive(first);
                let (si, ri, got, ci) = established(run.init.poll_event());
                let Some((_, ev)) = run.resp.poll_event() else {
                    panic!("responder: no event");
                };
                let (sr, rr, got_r, cr) = established(Some(ev));
                assert_eq!((si, ri, got), (sr, rr, suite), "{suite:?}");
                assert_eq!(got_r, suite);
                assert_eq!(ci.suite, esp);
                assert_eq!(ci.outbound_spi, cr.inbound_spi);
                assert_eq!(ci.inbound_spi, cr.outbound_spi);
                assert_eq!(ci.outbound_key, cr.inbound_key);
                assert_eq!(ci.inbound_key, cr.outbound_key);
                assert_ne!(ci.inbound_key, ci.outbound_key);
                assert_eq!(ci.outbound_key.len(), esp.aead.keymat_len());
                assert!(run.init.is_established());
                assert_eq!(run.resp.established(), 1);
                assert_eq!(run.resp.half_open(), 0);
            }
        }
    }
}

#[test]
fn the_responder_narrows_the_selectors_to_its_own() {
    let mut i = gateway("k");
    i.remote_ts = ts(&["10.0.0.0/8"]);
    i.local_ts = ts(&["10.1.0.0/16", "192.168.7.0/24"]);
    let (mut run, first) = Run::new(i, site("k"), 10);
    run.drive(first);
    let (_, _, _, child) = established(run.init.poll_event());
    assert_eq!(child.remote_ts, ts(&["10.2.0.0/16"]));
    assert_eq!(child.local_ts, ts(&["10.1.0.0/16"]));
    let Some((_, ev)) = run.resp.poll_event() else {
        panic!("no responder event")
    };
    let (_, _, _, rc) = established(Some(ev));
    assert_eq!(rc.local_ts, ts(&["10.2.0.0/16"]));
    assert_eq!(rc.remote_ts, ts(&["10.1.0.0/16"]));
}

#[test]
fn a_wrong_psk_is_refused_with_authentication_failed() {
    let (mut run, first) = Run::new(gateway("right"), site("wrong"), 10);
    run.drive(first);
    assert!(matches!(
        run.init.poll_event(),
        Some(IkeEvent::Failed {
            notify: NotifyType::AUTHENTICATION_FAILED,
            by_peer: true
        })
    ));
    assert!(matches!(
        run.resp.poll_event(),
        Some((
            _,
            IkeEvent::Failed {
                notify: NotifyType::AUTHENTICATION_FAILED,
                by_peer: false
            }
        ))
    ));
    assert_eq!(run.resp.counters().auth_failed, 1);
    assert_eq!(run.resp.half_open(), 0);
    assert_eq!(run.resp.established(), 0);
    assert!(!run.init.is_established());
}

#[test]
fn an_unexpected_responder_identity_is_refused_by_the_initiator() {
    let mut r = site("k");
    r.local_id = fqdn("impostor.example");
    r.remote_id = None;
    let (mut run, first) = Run::new(gateway("k"), r, 10);
    run.drive(first);
    assert!(matches!(
        run.init.poll_event(),
        Some(IkeEvent::Failed {
            notify: NotifyType::AUTHENTICATION_FAILED,
            by_peer: false
        })
    ));
    assert_eq!(run.init.counters().auth_failed, 1);
}

#[test]
fn no_common_ike_proposal_is_refused_with_no_proposal_chosen() {
    let mut r = site("k");
    r.ike = vec![IkeSuite {
        aead: Aead::ChaCha20Poly1305,
        prf: Prf::HmacSha384,
        dh: DhGroup::Ecp384,
    }];
    let (mut run, first) = Run::new(gateway("k"), r, 10);
    run.drive(first);
    assert!(matches!(
        run.init.poll_event(),
        Some(IkeEvent::Failed {
            notify: NotifyType::NO_PROPOSAL_CHOSEN,
            by_peer: true
        })
    ));
    assert_eq!(run.resp.counters().no_proposal_chosen, 1);
    assert_eq!(run.resp.half_open(), 0, "a refusal keeps no state");
}

#[test]
fn no_common_esp_proposal_keeps_the_ike_sa_and_refuses_the_child_sa() {
    let mut r = site("k");
    r.esp = vec![EspSuite {
        aead: Aead::ChaCha20Poly1305,
    }];
    let (mut run, first) = Run::new(gateway("k"), r, 10);
    run.drive(first);
    assert!(matches!(
        run.init.poll_event(),
        Some(IkeEvent::Established {
            child: None,
            child_refused: Some(NotifyType::NO_PROPOSAL_CHOSEN),
            ..
        })
    ));
    assert_eq!(run.resp.counters().no_proposal_chosen, 1);
}

#[test]
fn disjoint_selectors_are_refused_with_ts_unacceptable() {
    let mut i = gateway("k");
    i.remote_ts = ts(&["172.16.0.0/12"]);
    let (mut run, first) = Run::new(i, site("k"), 10);
    run.drive(first);
    assert!(matches!(
        run.init.poll_event(),
        Some(IkeEvent::Established {
            child: None,
            child_refused: Some(NotifyType::TS_UNACCEPTABLE),
            ..
        })
    ));
    assert_eq!(run.resp.counters().ts_unacceptable, 1);
}

#[test]
fn a_ke_of_another_group_gets_invalid_ke_payload_and_the_initiator_retries_with_that_group() {
    let mut i = gateway("k");
    let ecp = IkeSuite {
        dh: DhGroup::Ecp256,
        ..SUITE
    };
    i.ike = vec![SUITE, ecp];
    let mut r = site("k");
    r.ike = vec![ecp];
    let (mut run, first) = Run::new(i, r, 10);
    run.drive(first);
    let (_, _, suite, _) = established(run.init.poll_event());
    assert_eq!(suite, ecp);
    assert_eq!(run.resp.counters().invalid_ke, 1);
}

#[test]
fn truncated_messages_are_dropped_and_counted_and_the_exchange_still_completes() {
    let (mut run, first) = Run::new(gateway("k"), site("k"), 10);
    for n in 0..first.len() {
        assert_eq!(run.deliver_to_responder(&first[..n]), None);
    }
    assert_eq!(run.resp.counters().malformed, first.len() as u64);
    assert_eq!(run.resp.half_open(), 0);
    let resp = run.deliver_to_responder(&first).expect("answer");
    for n in 0..resp.len() {
        assert_eq!(run.deliver_to_initiator(&resp[..n]), None);
    }
    assert_eq!(run.init.counters().malformed, resp.len() as u64);
    let auth = run.deliver_to_initiator(&resp).expect("IKE_AUTH");
    for n in 0..auth.len() {
        assert_eq!(run.deliver_to_responder(&auth[..n]), None);
    }
    let done = run.deliver_to_responder(&auth).expect("answer");
    for n in 0..done.len() {
        assert_eq!(run.deliver_to_initiator(&done[..n]), None);
    }
    assert_eq!(run.deliver_to_initiator(&done), None);
    established(run.init.poll_event());
}

#[test]
fn tampered_protected_messages_fail_their_integrity_check_and_are_dropped() {
    let (mut run, first) = Run::new(gateway("k"), site("k"), 10);
    let resp = run.deliver_to_responder(&first).expect("answer");
    let auth = run.deliver_to_initiator(&resp).expect("IKE_AUTH");
    // Every byte of the Encrypted payload's IV, ciphertext and ICV, and of the header (the
    // associated data), but the SPIs that find the SA and the length that frames it.
    for i in 16..auth.len() {
        if (24..28).contains(&i) {
            continue;
        }
        let mut t = auth.clone();
        t[i] ^= 0x40;
        assert_eq!(run.deliver_to_responder(&t), None, "byte {i}");
    }
    let c = run.resp.counters();
    assert!(c.integrity_failed > 0, "{c:?}");
    assert_eq!(run.resp.half_open(), 1, "the SA survives tampering");
    let done = run.deliver_to_responder(&auth).expect("answer");
    let mut t = done.clone();
    let last = t.len() - 1;
    t[last] ^= 1;
    assert_eq!(run.deliver_to_initiator(&t), None);
    assert_eq!(run.init.counters().integrity_failed, 1);
    assert_eq!(run.deliver_to_initiator(&done), None);
    established(run.init.poll_event());
}

#[test]
fn replayed_messages_are_answered_once_or_dropped_and_counted() {
    let (mut run, first) = Run::new(gateway("k"), site("k"), 10);
    let resp = run.deliver_to_responder(&first).expect("answer");
    // 2.1: a retransmitted IKE_SA_INIT gets the same answer and no second SA.
    assert_eq!(run.deliver_to_responder(&first), Some(resp.clone()));
    assert_eq!(run.resp.half_open(), 1);
    let auth = run.deliver_to_initiator(&resp).expect("IKE_AUTH");
    // The IKE_SA_INIT response again: no request of that ID is outstanding.
    assert_eq!(run.deliver_to_initiator(&resp), None);
    assert_eq!(run.init.counters().replayed, 1);
    let done = run.deliver_to_responder(&auth).expect("answer");
    assert_eq!(run.deliver_to_responder(&auth), Some(done.clone()));
    assert_eq!(run.resp.counters().retransmits_answered, 2);
    assert_eq!(run.deliver_to_initiator(&done), None);
    established(run.init.poll_event());
    assert_eq!(run.deliver_to_initiator(&done), None);
    assert_eq!(run.init.counters().replayed, 2);
    // An IKE_SA_INIT replayed after the SA is up creates nothing.
    assert_eq!(run.deliver_to_responder(&first), None);
    assert_eq!(run.resp.counters().replayed, 1);
    assert_eq!(run.resp.established(), 1);
    assert_eq!(run.resp.half_open(), 0);
}

#[test]
fn a_lost_request_is_retransmitted_and_the_peer_is_given_up_after_five_tries() {
    let (mut run, first) = Run::new(gateway("k"), site("k"), 10);
    assert_eq!(run.init.handle_timeout(run.now), None);
    run.now += Duration::from_secs(1);
    assert_eq!(run.init.handle_timeout(run.now), Some(first.clone()));
    let mut waited = 1;
    for _ in 0..4 {
        let at = run.init.poll_timeout().expect("a timer");
        waited = (at - run.now).as_secs();
        run.now = at;
        assert_eq!(run.init.handle_timeout(run.now), Some(first.clone()));
    }
    assert_eq!(waited, 16, "the delay doubles");
    assert_eq!(run.init.counters().retransmissions, 5);
    run.now = run.init.poll_timeout().expect("a timer");
    assert_eq!(run.init.handle_timeout(run.now), None);
    assert!(matches!(run.init.poll_event(), Some(IkeEvent::TimedOut)));
    assert_eq!(run.init.poll_timeout(), None);
}

/// Starts an initiator of its own (seed `seed`) and sends its IKE_SA_INIT to `resp`.
fn half_open_one(
    resp: &mut Responder,
    re: &mut Seeded,
    seed: u64,
    now: Instant,
) -> Option<Vec<u8>> {
    let (_, first) =
        Initiator::start(gateway("k"), peer(), gw(), &mut Seeded::new(seed), now).expect("start");
    resp.handle(gw(), peer(), &first, re, now)
        .expect("responder")
}

fn is_cookie(d: &[u8]) -> bool {
    let m = Message::parse(d).expect("parses");
    m.header.spi_r == 0
        && matches!(m.payloads.as_slice(), [Payload::Notify(n)] if n.kind == NotifyType::COOKIE)
}

#[test]
fn past_the_half_open_threshold_the_responder_asks_for_a_cookie_and_keeps_no_state() {
    let (mut run, first) = Run::new(gateway("k"), site("k"), 2);
    let now = run.now;
    for seed in [100, 101] {
        let r = half_open_one(&mut run.resp, &mut run.re, seed, now).expect("answer");
        assert!(!is_cookie(&r));
    }
    assert_eq!(run.resp.half_open(), 2);
    let challenge = run.deliver_to_responder(&first).expect("a cookie");
    assert!(is_cookie(&challenge));
    assert_eq!(run.resp.half_open(), 2, "a cookie keeps no state");
    // The initiator sends IKE_SA_INIT again with the cookie first, and is answered.
    let again = run
        .deliver_to_initiator(&challenge)
        .expect("IKE_SA_INIT with the cookie");
    let m = Message::parse(&again).expect("parses");
    assert_eq!(m.header.exchange, ExchangeType::IKE_SA_INIT);
    assert!(matches!(&m.payloads[0], Payload::Notify(n) if n.kind == NotifyType::COOKIE));
    run.drive(again);
    established(run.init.poll_event());
    assert_eq!(run.resp.counters().cookies_sent, 1);
    assert_eq!(run.resp.half_open(), 2);
}

#[test]
fn a_forged_cookie_gets_a_new_challenge_and_is_counted() {
    let (mut run, first) = Run::new(gateway("k"), site("k"), 0);
    let challenge = run.deliver_to_responder(&first).expect("a cookie");
    assert!(is_cookie(&challenge));
    let mut m = Message::parse(&challenge).expect("parses");
    if let Payload::Notify(n) = &mut m.payloads[0] {
        n.data[5] ^= 1;
    }
    let forged = run
        .deliver_to_initiator(&m.serialize())
        .expect("IKE_SA_INIT with the cookie");
    let again = run.deliver_to_responder(&forged).expect("a new cookie");
    assert!(is_cookie(&again));
    assert_eq!(run.resp.counters().bad_cookies, 1);
    assert_eq!(run.resp.counters().cookies_sent, 2);
    assert_eq!(run.resp.half_open(), 0);
}

#[test]
fn past_the_half_open_maximum_an_ike_sa_init_is_dropped_even_with_a_valid_cookie() {
    let (mut run, first) = Run::new(gateway("k"), site("k"), 1);
    run.resp = Responder::new(site("k"), 1, &mut run.re)
        .expect("responder")
        .with_max_half_open(1);
    let now = run.now;
    assert!(!is_cookie(
        &half_open_one(&mut run.resp, &mut run.re, 100, now).expect("answer")
    ));
    let challenge = run.deliver_to_responder(&first).expect("a cookie");
    let again = run
        .deliver_to_initiator(&challenge)
        .expect("IKE_SA_INIT with the cookie");
    assert_eq!(run.deliver_to_responder(&again), None);
    assert_eq!(run.resp.counters().half_open_full, 1);
    assert_eq!(run.resp.half_open(), 1);
}

#[test]
fn half_open_sas_expire_on_the_virtual_clock() {
    let (mut run, first) = Run::new(gateway("k"), site("k"), 10);
    let resp = run.deliver_to_responder(&first).expect("answer");
    assert_eq!(run.resp.half_open(), 1);
    let deadline = run.resp.poll_timeout().expect("a deadline");
    run.resp.handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(run.resp.half_open(), 1);
    run.resp.handle_timeout(deadline);
    assert_eq!(run.resp.half_open(), 0);
    assert_eq!(run.resp.counters().half_open_expired, 1);
    // The initiator's IKE_AUTH now names an SA that is gone.
    let auth = run.deliver_to_initiator(&resp).expect("IKE_AUTH");
    assert_eq!(run.deliver_to_responder(&auth), None);
    assert_eq!(run.resp.counters().unknown_spi, 1);
}

#[test]
fn secrets_do_not_show_in_the_events_debug_output() {
    let (mut run, first) = Run::new(gateway("a-very-secret-psk"), site("a-very-secret-psk"), 10);
    run.drive(first);
    let (_, _, _, child) = established(run.init.poll_event());
    let shown = format!("{child:?}");
    assert!(shown.contains("Secret(36 bytes)"), "{shown}");
    let key = child.outbound_key.expose();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!shown.contains(&hex) && !shown.contains(&format!("{key:?}")));
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Mutated copies of each of the four messages, fed to their receiver before the real
        /// one, never panic either side.
        #[test]
        fn mutated_exchange_messages_never_panic_either_side(
            stage in 0usize..4,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in proptest::option::of(any::<usize>()),
        ) {
            let (mut run, first) = Run::new(gateway("k"), site("k"), 10);
            let mut msgs = vec![first.clone()];
            let resp = run.deliver_to_responder(&first).expect("answer");
            msgs.push(resp.clone());
            let auth = run.deliver_to_initiator(&resp).expect("IKE_AUTH");
            msgs.push(auth.clone());
            let done = run.deliver_to_responder(&auth).expect("answer");
            msgs.push(done);
            let mut m = msgs[stage].clone();
            for (i, b) in &edits {
                let at = i % m.len();
                m[at] ^= b | 1;
            }
            if let Some(c) = cut {
                m.truncate(c % m.len());
            }
            // Fresh endpoints at the same stage: replay the real messages up to it.
            let (mut run, first) = Run::new(gateway("k"), site("k"), 10);
            let mut real = Some(first);
            for s in 0..stage {
                let d = real.take().expect("a message");
                real = if s % 2 == 0 { run.deliver_to_responder(&d) } else { run.deliver_to_initiator(&d) };
            }
            if stage % 2 == 0 {
                let _ = run.deliver_to_responder(&m);
            } else {
                let _ = run.deliver_to_initiator(&m);
            }
        }
    }
}

#[test]
fn a_cookie_stays_valid_across_one_secret_rotation_but_not_two() {
    for rotations in [1, 2] {
        let (mut run, first) = Run::new(gateway("k"), site("k"), 0);
        let challenge = run.deliver_to_responder(&first).expect("a cookie");
        for _ in 0..rotations {
            run.resp.rotate_cookie_secret(&mut run.re).expect("rotate");
        }
        let again = run
            .deliver_to_initiator(&challenge)
            .expect("IKE_SA_INIT with the cookie");
        let answer = run.deliver_to_responder(&again).expect("an answer");
        assert_eq!(is_cookie(&answer), rotations == 2, "{rotations} rotations");
        assert_eq!(run.resp.counters().bad_cookies, u64::from(rotations == 2));
    }
}
