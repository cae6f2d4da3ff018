//! Fuzzing the IKEv2 code on the stable toolchain (issue 17): a proptest-driven mutator (bit
//! flips, byte inserts and deletes, truncation, length-field edits, splices of another seed)
//! over a seed corpus: the messages the product's own initiator and responder exchange
//! (IKE_SA_INIT, IKE_AUTH, DPD, CHILD SA and IKE SA rekeys, Deletes, cookies, refusals),
//! generated here, and any `tests/corpus/ike/*.bin` present (real strongSwan messages).
//! Targets: `Message::parse`, `Responder::handle` fresh and on an established SA, the
//! initiator's `handle`, and the Encrypted payload's open. None may panic; garbage changes
//! nothing but counters.
//!
//! Each target is bounded by its case count and by wall time: `ISTHMUS_FUZZ_SECS` (default 20)
//! shared by the fuzz targets of this file and `fuzz_esp.rs`.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use isthmus_worker::core::ike::crypto::{Aead, Secret};
use isthmus_worker::core::ike::exchange::{IkeEvent, Request, Responder};
use isthmus_worker::core::ike::protect;
use isthmus_worker::core::ike::wire::{
    ExchangeType, Flags, Header, Message, Nonce, Payload, PayloadType,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as RunnerConfig, TestCaseResult, TestRunner};

use super::ike_exchange::{Run, Seeded, gateway, site};

/// The budgets sharing `ISTHMUS_FUZZ_SECS`: four targets here, four in `fuzz_esp.rs` (the
/// open of each of the three AEADs, the classifier).
const TARGETS: u32 = 8;
/// Cases per target at most (the wall-time budget usually ends a target first).
const MAX_CASES: u32 = 50_000;

/// One target's share of `ISTHMUS_FUZZ_SECS`.
pub fn budget() -> Duration {
    let total: f64 = std::env::var("ISTHMUS_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0);
    Duration::from_secs_f64(total.max(0.0) / f64::from(TARGETS))
}

/// One edit of a seed.
#[derive(Debug, Clone)]
pub enum Edit {
    Flip {
        at: usize,
        bit: u8,
    },
    Insert {
        at: usize,
        byte: u8,
    },
    Delete {
        at: usize,
    },
    Truncate {
        len: usize,
    },
    /// The `nth` length field (the IKE header's, then each payload header's in the chain, or
    /// any 16-bit word when `raw`) set to `value`.
    Length {
        nth: usize,
        value: u32,
        raw: bool,
    },
    /// Bytes `from..from+len` of seed `other` inserted at `at`.
    Splice {
        other: usize,
        from: usize,
        len: usize,
        at: usize,
    },
}

pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Edit::Flip { at, bit }),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert { at, byte }),
        1 => any::<usize>().prop_map(|at| Edit::Delete { at }),
        1 => any::<usize>().prop_map(|len| Edit::Truncate { len }),
        2 => (0usize..8, prop_oneof![Just(0u32), Just(1), Just(4), Just(27), Just(28), Just(0xffff), any::<u32>()], any::<bool>())
            .prop_map(|(nth, value, raw)| Edit::Length { nth, value, raw }),
        1 => (any::<usize>(), any::<usize>(), 1usize..64, any::<usize>())
            .prop_map(|(other, from, len, at)| Edit::Splice { other, from, len, at }),
    ]
}

/// The offsets of an IKE message's length fields: the header's (4 bytes at 24) and each
/// payload header's of the outer chain (2 bytes at +2), as far as the chain goes.
fn length_fields(m: &[u8]) -> Vec<(usize, usize)> {
    let mut out = vec![(24, 4)];
    let (mut next, mut at) = (m.get(16).copied().unwrap_or(0), 28usize);
    while next != 0 && at + 4 <= m.len() && out.len() < 16 {
        out.push((at + 2, 2));
        let len = usize::from(u16::from_be_bytes([m[at + 2], m[at + 3]]));
        next = m[at];
        if len < 4 {
            break;
        }
        at += len;
    }
    out
}

/// `seed` with `edits` applied.
pub fn mutate(seed: &[u8], edits: &[Edit], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut m = seed.to_vec();
    for e in edits {
        match *e {
            Edit::Flip { at, bit } if !m.is_empty() => {
                let i = at % m.len();
                m[i] ^= 1 << bit;
            }
            Edit::Insert { at, byte } => {
                let i = at % (m.len() + 1);
                m.insert(i, byte);
            }
            Edit::Delete { at } if !m.is_empty() => {
                let i = at % m.len();
                m.remove(i);
            }
            Edit::Truncate { len } => m.truncate(len % (m.len() + 1)),
            Edit::Length { nth, value, raw } => {
                let fields = if raw {
                    (0..m.len().saturating_sub(1) / 2)
                        .map(|i| (2 * i, 2))
                        .collect()
                } else {
                    length_fields(&m)
                };
                if fields.is_empty() {
                    continue;
                }
                let (at, width) = fields[nth % fields.len()];
                if at + width <= m.len() {
                    let b = value.to_be_bytes();
                    m[at..at + width].copy_from_slice(&b[4 - width..]);
                }
            }
            Edit::Splice {
                other,
                from,
                len,
                at,
            } if !corpus.is_empty() => {
                let o = &corpus[other % corpus.len()];
                if o.is_empty() {
                    continue;
                }
                let f = from % o.len();
                let piece = o[f..(f + len).min(o.len())].to_vec();
                let i = at % (m.len() + 1);
                m.splice(i..i, piece);
            }
            _ => {}
        }
    }
    m
}

/// The `*.bin` files of `tests/corpus/<kind>/`, if any.
pub fn corpus_files(kind: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

/// Runs `target` over mutated seeds until the case count or the time budget is reached; a
/// failing case is shrunk (proptest's value tree) before it is reported.
pub fn fuzz(name: &str, corpus: &[Vec<u8>], target: impl Fn(&[u8], &[u8]) -> TestCaseResult) {
    assert!(!corpus.is_empty(), "{name}: no seeds");
    let deadline = Instant::now() + budget();
    let mut runner = TestRunner::new(RunnerConfig {
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let strategy = (any::<usize>(), proptest::collection::vec(edit(), 1..6));
    let check = |(pick, edits): &(usize, Vec<Edit>)| {
        let seed = &corpus[pick % corpus.len()];
        let m = mutate(seed, edits, corpus);
        target(seed, &m).err().map(|e| (e, m))
    };
    let mut cases = 0u32;
    while cases < MAX_CASES && Instant::now() < deadline {
        cases += 1;
        let mut tree = strategy.new_tree(&mut runner).expect("a case");
        let Some(mut failure) = check(&tree.current()) else {
            continue;
        };
        // Shrink: simpler while it still fails, back when it passes.
        let mut input = tree.current();
        for _ in 0..4096 {
            if !tree.simplify() {
                break;
            }
            match check(&tree.current()) {
                Some(f) => {
                    failure = f;
                    input = tree.current();
                }
                None => {
                    if !tree.complicate() {
                        break;
                    }
                }
            }
        }
        let (pick, edits) = input;
        panic!(
            "{name}: {}\nseed {} of {}, edits {edits:?}\nmutated ({} bytes): {:02x?}",
            failure.0,
            pick % corpus.len(),
            corpus.len(),
            failure.1.len(),
            failure.1
        );
    }
    eprintln!("{name}: {cases} cases over {} seeds", corpus.len());
}

fn site_addr() -> SocketAddr {
    "192.0.2.10:500".parse().expect("addr")
}

fn gw_addr() -> SocketAddr {
    "198.51.100.1:500".parse().expect("addr")
}

/// Seeds from the product's own exchanges: every message of IKE_SA_INIT, IKE_AUTH, a DPD,
/// a CHILD SA rekey, an IKE SA rekey (and the old SA's Delete), a CHILD SA Delete, a cookie
/// challenge and a refusal; then the corpus files.
pub fn ike_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let (mut run, first) = Run::new(gateway("k"), site("k"), 10);
    let mut req = Some(first);
    while let Some(r) = req.take() {
        seeds.push(r.clone());
        let Some(resp) = run.deliver_to_responder(&r) else {
            break;
        };
        seeds.push(resp.clone());
        req = run.deliver_to_initiator(&resp);
    }
    let exchange = |run: &mut Run, request: Request, seeds: &mut Vec<Vec<u8>>| {
        let Some(r) = run
            .init
            .request(request, &mut run.ie, run.now)
            .expect("request")
        else {
            return;
        };
        seeds.push(r.clone());
        let mut next = run.deliver_to_responder(&r);
        // Answers, and the Delete that may follow a rekey.
        let mut to_init = true;
        while let Some(m) = next.take() {
            seeds.push(m.clone());
            next = if to_init {
                run.deliver_to_initiator(&m)
            } else {
                run.deliver_to_responder(&m)
            };
            to_init = !to_init;
        }
    };
    let Some(IkeEvent::Established {
        child: Some(child), ..
    }) = run.init.poll_event()
    else {
        panic!("not established")
    };
    exchange(&mut run, Request::Dpd, &mut seeds);
    exchange(&mut run, Request::RekeyChild(child.inbound_spi), &mut seeds);
    exchange(
        &mut run,
        Request::DeleteChild(child.inbound_spi),
        &mut seeds,
    );
    exchange(&mut run, Request::RekeyIke, &mut seeds);
    exchange(&mut run, Request::Dpd, &mut seeds);
    // A cookie challenge and a refusal (no state).
    let (mut c, first) = Run::new(gateway("k"), site("k"), 0);
    seeds.extend(c.deliver_to_responder(&first));
    let mut other = site("k");
    other.ike[0].dh = isthmus_worker::core::ike::crypto::DhGroup::Ecp384;
    other.ike[0].prf = isthmus_worker::core::ike::crypto::Prf::HmacSha384;
    let (mut n, first) = Run::new(gateway("k"), other, 10);
    seeds.extend(n.deliver_to_responder(&first));
    seeds.push(first);
    seeds.extend(corpus_files("ike"));
    seeds
}

#[test]
fn fuzz_ike_message_parse_never_panics_and_what_parses_serializes_back() {
    let corpus = ike_seeds();
    fuzz("fuzz_ike_message_parse", &corpus, |_, m| {
        if let Ok(msg) = Message::parse(m) {
            let again = Message::parse(&msg.serialize());
            prop_assert_eq!(again.as_ref().ok(), Some(&msg));
        }
        Ok(())
    });
}

#[test]
fn fuzz_ike_fresh_responder_never_panics_and_keeps_no_sa_for_garbage() {
    let corpus = ike_seeds();
    let mut e = Seeded::new(7);
    let resp = RefCell::new(Responder::new(site("k"), 10, &mut e).expect("responder"));
    let e = RefCell::new(e);
    let now = Instant::now();
    fuzz("fuzz_ike_fresh_responder", &corpus, |_, m| {
        let mut resp = resp.borrow_mut();
        let before = resp.counters();
        let parsed = Message::parse(m).is_ok();
        let out = resp
            .handle(gw_addr(), site_addr(), m, &mut *e.borrow_mut(), now)
            .map_err(|e| TestCaseError::fail(format!("error: {e}")))?;
        prop_assert_eq!(
            resp.established(),
            0,
            "nothing authenticates without the PSK"
        );
        if !parsed {
            prop_assert!(out.is_none());
            prop_assert_eq!(resp.counters().malformed, before.malformed + 1);
            prop_assert_eq!(resp.half_open(), 0);
        }
        // Half-open SAs of mutated IKE_SA_INITs that still parse: expire them all.
        if resp.half_open() > 0 {
            resp.handle_timeout(now + Duration::from_secs(3600));
        }
        while resp.poll_event().is_some() {}
        Ok(())
    });
}

/// An established pair whose state must not move for mutated messages: each case delivers a
/// mutation to one side, then checks that a real DPD each way is still answered.
#[test]
fn fuzz_ike_established_sas_never_panic_and_mutations_change_nothing_but_counters() {
    let corpus = ike_seeds();
    let (mut run, first) = Run::new(gateway("k"), site("k"), 10);
    run.drive(first);
    while run.init.poll_event().is_some() {}
    while run.resp.poll_event().is_some() {}
    // The seeds (of a run with the same randomness: this very SA's SPIs and keys), and a DPD
    // each way of this run.
    let mut own = Vec::new();
    let dpd_i = run
        .init
        .request(Request::Dpd, &mut run.ie, run.now)
        .expect("dpd")
        .expect("sent");
    own.push(dpd_i.clone());
    let answer = run.deliver_to_responder(&dpd_i).expect("answered");
    own.push(answer.clone());
    assert_eq!(run.deliver_to_initiator(&answer), None);
    let mut all = corpus.clone();
    all.extend(own);
    let run = RefCell::new(run);
    let seeds = all.clone();
    fuzz("fuzz_ike_established", &all, |_, m| {
        // A mutation that happens to rebuild a real message is not garbage.
        if seeds.iter().any(|s| s.as_slice() == m) {
            return Ok(());
        }
        let mut run = run.borrow_mut();
        let run = &mut *run;
        let before = (run.init.sas(), run.resp.sas_with(site_addr()));
        let c = (run.init.counters(), run.resp.counters());
        let (a, b) = (run.deliver_to_responder(m), run.deliver_to_initiator(m));
        // Garbage is not answered; a mutated IKE_SA_INIT request that still parses is a new
        // IKE_SA_INIT (answered, maybe refused, its half-open SA expired below).
        let sa_init = Message::parse(m).is_ok_and(|x| {
            x.header.exchange == ExchangeType::IKE_SA_INIT
                && !x.header.flags.response
                && x.header.spi_r == 0
        });
        prop_assert!(b.is_none(), "the initiator answered garbage");
        prop_assert!(a.is_none() || sa_init, "the responder answered garbage");
        if sa_init {
            run.resp.handle_timeout(run.now + Duration::from_secs(3600));
            while let Some((_, e)) = run.resp.poll_event() {
                prop_assert!(
                    matches!(e, IkeEvent::Failed { by_peer: false, .. }),
                    "{:?}",
                    e
                );
            }
        }
        let ci = run.init.counters();
        let cr = run.resp.counters();
        prop_assert_eq!(
            (ci.established, cr.established),
            (c.0.established, c.1.established)
        );
        prop_assert!(run.init.poll_event().is_none());
        prop_assert!(run.resp.poll_event().is_none());
        prop_assert_eq!((run.init.sas(), run.resp.sas_with(site_addr())), before);
        // The SA still answers the real thing, both ways.
        let dpd = run
            .init
            .request(Request::Dpd, &mut run.ie, run.now)
            .expect("dpd");
        let Some(dpd) = dpd else {
            return Err(TestCaseError::fail("a request of ours is outstanding"));
        };
        let answer = run.deliver_to_responder(&dpd);
        prop_assert!(answer.is_some(), "the real DPD is answered");
        prop_assert_eq!(run.deliver_to_initiator(&answer.unwrap_or_default()), None);
        prop_assert_eq!(run.init.poll_timeout(), None);
        Ok(())
    });
}

#[test]
fn fuzz_ike_encrypted_payload_open_refuses_every_mutation() {
    let aead = Aead::ChaCha20Poly1305;
    let key = aead.key(&Secret::from_slice(&[5u8; 36])).expect("key");
    let header = Header {
        spi_i: 0x0102_0304_0506_0708,
        spi_r: 0x1112_1314_1516_1718,
        minor_version: 0,
        exchange: ExchangeType::INFORMATIONAL,
        flags: Flags {
            initiator: true,
            version: false,
            response: false,
        },
        message_id: 7,
    };
    let mut corpus = Vec::new();
    for (i, inner) in [
        Vec::new(),
        vec![Payload::Nonce(Nonce(vec![9; 32]))],
        vec![
            Payload::Nonce(Nonce(vec![1; 16])),
            Payload::Nonce(Nonce(vec![2; 200])),
        ],
    ]
    .into_iter()
    .enumerate()
    {
        corpus.push(protect::seal(&header, &inner, &key, i as u64 + 1).expect("seal"));
    }
    for c in &corpus {
        let msg = Message::parse(c).expect("parses");
        assert!(protect::open(c, &msg, &key).is_ok());
        assert_eq!(
            msg.payloads.last().map(Payload::kind),
            Some(PayloadType::ENCRYPTED)
        );
    }
    fuzz("fuzz_ike_encrypted_open", &corpus, |seed, m| {
        let Ok(msg) = Message::parse(m) else {
            return Ok(());
        };
        let opened = protect::open(m, &msg, &key);
        if m != seed {
            prop_assert!(opened.is_err(), "a mutated message opened");
        }
        Ok(())
    });
}
