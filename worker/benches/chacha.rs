//! The ceiling of the data plane: raw ChaCha20-Poly1305 (ring, the same AEAD WireGuard uses) on
//! 1420-byte packets, one core, sealing and opening in place. Prints one line per direction.
//!
//!   cargo bench -p isthmus-worker --bench chacha [-- SECONDS]
//!
//! A benchmark, not a test: `worker/bench/throughput.sh` prints it beside the tunnel numbers.

use std::time::{Duration, Instant};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

const PACKET: usize = 1420;

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

fn main() {
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2.0);
    let budget = Duration::from_secs_f64(secs);
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[7u8; 32]).expect("key"));

    // Seal.
    let mut buf = vec![0x5au8; PACKET];
    let mut counter = 0u64;
    let start = Instant::now();
    while start.elapsed() < budget {
        for _ in 0..1000 {
            let tag = key
                .seal_in_place_separate_tag(nonce(counter), Aad::empty(), &mut buf)
                .expect("seal");
            let _ = std::hint::black_box(tag);
            counter += 1;
        }
    }
    let seal = counter as f64 * PACKET as f64 * 8.0 / start.elapsed().as_secs_f64();

    // Open: authenticate and decrypt the same sealed packet (the tag check runs every time).
    let mut sealed = vec![0x5au8; PACKET];
    let tag = key
        .seal_in_place_separate_tag(nonce(0), Aad::empty(), &mut sealed)
        .expect("seal");
    sealed.extend_from_slice(tag.as_ref());
    let mut work = sealed.clone();
    let mut opened = 0u64;
    let start = Instant::now();
    while start.elapsed() < budget {
        for _ in 0..1000 {
            work.copy_from_slice(&sealed);
            let plain = key
                .open_in_place(nonce(0), Aad::empty(), &mut work)
                .expect("open");
            let _ = std::hint::black_box(plain);
            opened += 1;
        }
    }
    let open = opened as f64 * PACKET as f64 * 8.0 / start.elapsed().as_secs_f64();
    println!(
        "{:<28} {:>8.0} Mbit/s",
        "chacha20-poly1305 seal 1420B",
        seal / 1e6
    );
    println!(
        "{:<28} {:>8.0} Mbit/s",
        "chacha20-poly1305 open 1420B",
        open / 1e6
    );
}
