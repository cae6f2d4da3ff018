//! ESP (`core::esp`, RFC 4303 with RFC 4106 / RFC 7634) and its UDP encapsulation (RFC 3948):
//! packets sealed with a CHILD SA's keys open on the other side; the anti-replay window
//! refuses repeats and packets below it and moves only for authentic packets; tampered,
//! truncated and foreign packets are refused without a panic.

use std::collections::BTreeSet;

use isthmus_worker::core::esp::replay::{ReplayError, WINDOW, Window};
use isthmus_worker::core::esp::udp::{Datagram, KEEPALIVE, classify, frame_ike};
use isthmus_worker::core::esp::{
    EspError, HEADER_LEN, Inbound, NEXT_IPV4, NEXT_IPV6, NEXT_NONE, Outbound, spi_of,
};
use isthmus_worker::core::ike::crypto::{Aead, Secret};
use proptest::prelude::*;

const AEADS: [Aead; 3] = [
    Aead::AesGcm16_128,
    Aead::AesGcm16_256,
    Aead::ChaCha20Poly1305,
];

fn pair(aead: Aead, spi: u32) -> (Outbound, Inbound) {
    let k = Secret::new((0..aead.keymat_len() as u8).collect());
    (
        Outbound::new(aead, spi, &k).expect("outbound"),
        Inbound::new(aead, spi, &k).expect("inbound"),
    )
}

fn packet(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7) as u8).collect()
}

#[test]
fn packets_of_every_length_open_to_what_was_sealed_with_aligned_padding() {
    for aead in AEADS {
        let (mut tx, mut rx) = pair(aead, 0x1000_0001);
        let mut out = Vec::new();
        for len in 0..70 {
            let inner = packet(len);
            tx.seal(&inner, NEXT_IPV4, &mut out).expect("seal");
            // RFC 4303 2.4: the encrypted part (inner, padding, Pad Length, Next Header) is a
            // multiple of 4 bytes.
            let encrypted = out.len() - HEADER_LEN - 8 - 16;
            assert_eq!(encrypted % 4, 0, "{aead:?} {len}");
            assert!(encrypted - len - 2 < 4);
            assert_eq!(spi_of(&out), Some(0x1000_0001));
            assert_eq!(
                &out[4..8],
                &(len as u32 + 1).to_be_bytes(),
                "sequence numbers from 1"
            );
            let o = rx.open(&mut out).expect("open");
            assert_eq!(&out[o.inner.clone()], &inner[..]);
            assert_eq!(o.next_header, NEXT_IPV4);
            assert_eq!(o.seq, len as u32 + 1);
        }
    }
}

#[test]
fn a_child_sa_from_ike_auth_carries_esp_both_ways() {
    // The keys come from a real exchange (tests/integration/ike_exchange.rs drives it).
    let (init, resp) = super::ike_exchange::established_child_pair();
    let mut i_tx = Outbound::new(init.suite.aead, init.outbound_spi, &init.outbound_key)
        .expect("initiator outbound");
    let mut r_rx = Inbound::new(resp.suite.aead, resp.inbound_spi, &resp.inbound_key)
        .expect("responder inbound");
    let mut r_tx = Outbound::new(resp.suite.aead, resp.outbound_spi, &resp.outbound_key)
        .expect("responder outbound");
    let mut i_rx = Inbound::new(init.suite.aead, init.inbound_spi, &init.inbound_key)
        .expect("initiator inbound");
    let mut buf = Vec::new();
    i_tx.seal(b"to the site", NEXT_IPV4, &mut buf)
        .expect("seal");
    let o = r_rx.open(&mut buf).expect("open");
    assert_eq!(&buf[o.inner], b"to the site");
    r_tx.seal(b"to the gateway", NEXT_IPV6, &mut buf)
        .expect("seal");
    let o = i_rx.open(&mut buf).expect("open");
    assert_eq!(&buf[o.inner], b"to the gateway");
    assert_eq!(o.next_header, NEXT_IPV6);
    // A packet sealed for one direction does not open in the other.
    i_tx.seal(b"x", NEXT_IPV4, &mut buf).expect("seal");
    assert!(i_rx.open(&mut buf).is_err());
}

#[test]
fn a_replayed_packet_is_refused_and_reordered_ones_within_the_window_are_accepted() {
    let (mut tx, mut rx) = pair(Aead::AesGcm16_256, 7777);
    let sealed: Vec<Vec<u8>> = (0..WINDOW + 10)
        .map(|_| {
            let mut b = Vec::new();
            tx.seal(b"payload", NEXT_IPV4, &mut b).expect("seal");
            b
        })
        .collect();
    let mut last = sealed[sealed.len() - 1].clone();
    rx.open(&mut last).expect("newest first");
    // Each of the WINDOW - 1 packets below the newest is still inside the window, once.
    for p in sealed.iter().rev().skip(1).take(WINDOW as usize - 1) {
        let mut b = p.clone();
        rx.open(&mut b).expect("reordered within the window");
        let mut again = p.clone();
        assert_eq!(
            rx.open(&mut again),
            Err(EspError::Replay(ReplayError::Replayed))
        );
    }
    let mut old = sealed[5].clone();
    assert_eq!(
        rx.open(&mut old),
        Err(EspError::Replay(ReplayError::TooOld))
    );
}

#[test]
fn a_tampered_packet_fails_its_integrity_check_and_does_not_move_the_window() {
    for aead in AEADS {
        let (mut tx, mut rx) = pair(aead, 4242);
        let mut genuine = Vec::new();
        tx.seal(&packet(40), NEXT_IPV4, &mut genuine).expect("seal");
        for i in 4..genuine.len() {
            let mut t = genuine.clone();
            t[i] ^= 0x01;
            let e = rx.open(&mut t).expect_err("tampered");
            assert!(
                matches!(e, EspError::Integrity | EspError::Replay(_)),
                "{aead:?} byte {i}: {e:?}"
            );
        }
        // A forged sequence number far ahead (it is in the associated data) moves nothing.
        let mut forged = genuine.clone();
        forged[4..8].copy_from_slice(&100_000u32.to_be_bytes());
        assert_eq!(rx.open(&mut forged), Err(EspError::Integrity));
        rx.open(&mut genuine)
            .expect("the genuine packet still opens");
    }
}

#[test]
fn truncated_foreign_and_dummy_packets_are_refused() {
    let (mut tx, mut rx) = pair(Aead::ChaCha20Poly1305, 99);
    let mut p = Vec::new();
    tx.seal(&packet(20), NEXT_IPV4, &mut p).expect("seal");
    for n in 0..p.len() {
        let mut t = p[..n].to_vec();
        assert!(rx.open(&mut t).is_err(), "{n} bytes");
    }
    let (mut other, _) = pair(Aead::ChaCha20Poly1305, 100);
    let mut q = Vec::new();
    other.seal(&packet(20), NEXT_IPV4, &mut q).expect("seal");
    assert_eq!(rx.open(&mut q), Err(EspError::WrongSpi));
    // RFC 4303 2.6: a dummy packet is authentic but carries nothing.
    tx.seal(&[], NEXT_NONE, &mut q).expect("seal");
    assert_eq!(rx.open(&mut q), Err(EspError::Dummy));
    rx.open(&mut p).expect("the real one opens");
}

#[test]
fn the_encapsulation_port_tells_ike_esp_and_keepalives_apart() {
    let ike = frame_ike(b"IKE message");
    assert_eq!(&ike[..4], &[0, 0, 0, 0]);
    assert_eq!(classify(&ike), Datagram::Ike(b"IKE message"));
    assert_eq!(classify(&KEEPALIVE), Datagram::Keepalive);
    let (mut tx, _) = pair(Aead::AesGcm16_128, 0x0102_0304);
    let mut p = Vec::new();
    tx.seal(b"x", NEXT_IPV4, &mut p).expect("seal");
    assert_eq!(classify(&p), Datagram::Esp(&p));
    assert_eq!(classify(&[1, 2, 3]), Datagram::Malformed);
    assert_eq!(classify(&[1, 2, 3, 4, 5]), Datagram::Malformed);
    assert_eq!(classify(&[]), Datagram::Malformed);
}

/// Whether the reference model (every sequence number seen, the highest one) accepts `seq`.
fn model_check(seen: &BTreeSet<u32>, seq: u32) -> Result<(), ReplayError> {
    let top = seen.last().copied().unwrap_or(0);
    if seq == 0 {
        Err(ReplayError::Zero)
    } else if seq > top {
        Ok(())
    } else if top - seq >= WINDOW {
        Err(ReplayError::TooOld)
    } else if seen.contains(&seq) {
        Err(ReplayError::Replayed)
    } else {
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_window_agrees_with_a_set_of_every_sequence_number_seen(
        steps in proptest::collection::vec((0u32..3000, any::<bool>()), 1..400)
    ) {
        let mut w = Window::new();
        let mut seen = BTreeSet::new();
        for (delta, jump) in steps {
            // Mostly near the top, sometimes far ahead.
            let top = seen.last().copied().unwrap_or(0);
            let seq = if jump { top + delta } else { top.saturating_sub(delta % (WINDOW + 50)) };
            let want = model_check(&seen, seq);
            prop_assert_eq!(w.check(seq), want);
            prop_assert_eq!(w.accept(seq), want);
            if want.is_ok() {
                seen.insert(seq);
            }
            prop_assert_eq!(w.top(), seen.last().copied().unwrap_or(0));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_esp_open(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        let (_, mut rx) = pair(Aead::AesGcm16_256, u32::from_be_bytes([b.first().copied().unwrap_or(0), 0, 0, 1]));
        let mut b = b;
        let _ = rx.open(&mut b);
        let _ = classify(&b);
    }

    #[test]
    fn esp_round_trips_every_packet(aead in 0usize..3, inner in proptest::collection::vec(any::<u8>(), 0..1600)) {
        let (mut tx, mut rx) = pair(AEADS[aead], 0xdead_beef);
        let mut out = Vec::new();
        tx.seal(&inner, NEXT_IPV6, &mut out).expect("seal");
        let o = rx.open(&mut out).expect("open");
        prop_assert_eq!(&out[o.inner], &inner[..]);
    }
}
