//! Fuzzing the ESP data plane on the stable toolchain (issue 17), with the mutator of
//! `fuzz_ike.rs` over a seed corpus: packets the product's `esp::Outbound` seals (every
//! length class, both next headers, a dummy), UDP-encapsulated datagrams and IKE messages
//! framed for port 4500, and any `tests/corpus/esp/*.bin` present. Targets: `Inbound::open`
//! (never panics, opens no mutated packet, the replay window stays where authentic packets put
//! it) and the RFC 3948 classifier (never panics, agrees with the rules of RFC 3948 2).

use std::cell::RefCell;

use isthmus_worker::core::esp::udp::{Datagram, KEEPALIVE, NON_ESP_MARKER, classify, frame_ike};
use isthmus_worker::core::esp::{HEADER_LEN, Inbound, NEXT_IPV4, NEXT_IPV6, NEXT_NONE, Outbound};
use isthmus_worker::core::ike::crypto::{Aead, Secret};
use proptest::prelude::*;

use super::fuzz_ike::{corpus_files, fuzz, ike_seeds};

const SPI: u32 = 0x1234_5678;

fn keymat(aead: Aead) -> Secret {
    Secret::new(vec![0x42; aead.keymat_len()])
}

/// Sealed packets of every AEAD, several lengths, and the next packet after them.
fn esp_seeds(aead: Aead) -> (Vec<Vec<u8>>, Outbound) {
    let mut out = Outbound::new(aead, SPI, &keymat(aead)).expect("outbound");
    let mut seeds = Vec::new();
    for (len, next) in [
        (0, NEXT_IPV4),
        (1, NEXT_IPV4),
        (20, NEXT_IPV4),
        (63, NEXT_IPV6),
        (1400, NEXT_IPV4),
        (40, NEXT_NONE),
    ] {
        let mut buf = Vec::new();
        out.seal(&vec![0xab; len], next, &mut buf).expect("seal");
        seeds.push(buf);
    }
    (seeds, out)
}

#[test]
fn fuzz_esp_inbound_open_never_panics_and_opens_no_mutated_packet() {
    for aead in [
        Aead::AesGcm16_128,
        Aead::AesGcm16_256,
        Aead::ChaCha20Poly1305,
    ] {
        let (mut corpus, out) = esp_seeds(aead);
        corpus.extend(corpus_files("esp"));
        let out = RefCell::new(out);
        let inbound = RefCell::new(Inbound::new(aead, SPI, &keymat(aead)).expect("inbound"));
        let seeds = corpus.clone();
        fuzz("fuzz_esp_inbound_open", &corpus, |_, m| {
            if seeds.iter().any(|s| s.as_slice() == m) {
                return Ok(());
            }
            let mut inb = inbound.borrow_mut();
            let mut buf = m.to_vec();
            prop_assert!(inb.open(&mut buf).is_err(), "a mutated packet opened");
            // The window did not move: the next real packet opens, once.
            let mut real = Vec::new();
            out.borrow_mut()
                .seal(b"real", NEXT_IPV4, &mut real)
                .expect("seal");
            let copy = real.clone();
            let opened = inb.open(&mut real);
            prop_assert!(opened.is_ok_and(|o| &real[o.inner] == b"real"));
            let mut again = copy;
            prop_assert!(inb.open(&mut again).is_err(), "a replay opened");
            Ok(())
        });
    }
}

#[test]
fn fuzz_esp_classifier_never_panics_and_follows_rfc_3948() {
    let (mut corpus, _) = esp_seeds(Aead::AesGcm16_256);
    corpus.extend(ike_seeds().iter().map(|m| frame_ike(m)));
    corpus.push(KEEPALIVE.to_vec());
    corpus.push(NON_ESP_MARKER.to_vec());
    corpus.extend(corpus_files("esp"));
    fuzz("fuzz_esp_classifier", &corpus, |_, m| {
        match classify(m) {
            Datagram::Keepalive => prop_assert_eq!(m, &KEEPALIVE[..]),
            Datagram::Ike(ike) => {
                prop_assert_eq!(&m[..4], &NON_ESP_MARKER[..]);
                prop_assert_eq!(ike, &m[4..]);
            }
            Datagram::Esp(esp) => {
                prop_assert_eq!(esp, m);
                prop_assert!(m.len() >= HEADER_LEN);
                prop_assert_ne!(&m[..4], &NON_ESP_MARKER[..]);
            }
            Datagram::Malformed => {
                prop_assert!(
                    m.len() < HEADER_LEN && m != KEEPALIVE && !m.starts_with(&NON_ESP_MARKER)
                );
            }
        }
        Ok(())
    });
}
