//! The IKEv2 wire format (`core::ike::wire`, RFC 7296 section 3): every message the serialiser
//! writes parses back to itself, and no input (arbitrary bytes, or a valid message truncated,
//! extended or with bytes changed) panics the parser.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use isthmus_worker::core::ike::wire::{
    Attribute, Auth, AuthMethod, Delete, Encrypted, ExchangeType, Flags, Header, IdType,
    Identification, KeyExchange, Message, Nonce, Notify, NotifyType, Payload, PayloadType,
    Proposal, ProtocolId, SecurityAssociation, TrafficSelector, TrafficSelectors, Transform,
    TransformType, UnknownPayload, WireError,
};
use proptest::prelude::*;

fn header() -> impl Strategy<Value = Header> {
    (
        any::<u64>(),
        any::<u64>(),
        0u8..16,
        any::<u8>(),
        any::<(bool, bool, bool)>(),
        any::<u32>(),
    )
        .prop_map(|(spi_i, spi_r, minor, ex, (i, v, r), id)| Header {
            spi_i,
            spi_r,
            minor_version: minor,
            exchange: ExchangeType(ex),
            flags: Flags {
                initiator: i,
                version: v,
                response: r,
            },
            message_id: id,
        })
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        (0u16..0x8000, any::<u16>()).prop_map(|(kind, value)| Attribute::Tv { kind, value }),
        (0u16..0x8000, bytes(12)).prop_map(|(kind, value)| Attribute::Tlv { kind, value }),
    ]
}

fn transform() -> impl Strategy<Value = Transform> {
    (
        any::<u8>(),
        any::<u16>(),
        proptest::collection::vec(attribute(), 0..3),
    )
        .prop_map(|(kind, id, attributes)| Transform {
            kind: TransformType(kind),
            id,
            attributes,
        })
}

fn proposal() -> impl Strategy<Value = Proposal> {
    (
        any::<u8>(),
        any::<u8>(),
        prop_oneof![Just(0usize), Just(4), Just(8)],
        proptest::collection::vec(transform(), 0..6),
        any::<u64>(),
    )
        .prop_map(|(number, protocol, spi_len, transforms, spi)| Proposal {
            number,
            protocol: ProtocolId(protocol),
            spi: spi.to_be_bytes()[..spi_len].to_vec(),
            transforms,
        })
}

fn selector() -> impl Strategy<Value = TrafficSelector> {
    (
        any::<bool>(),
        any::<u8>(),
        any::<(u16, u16)>(),
        any::<(u128, u128)>(),
    )
        .prop_map(|(v6, ip_protocol, (sp, ep), (a, b))| {
            let (start, end) = if v6 {
                (IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b)))
            } else {
                (
                    IpAddr::V4(Ipv4Addr::from(a as u32)),
                    IpAddr::V4(Ipv4Addr::from(b as u32)),
                )
            };
            TrafficSelector {
                ip_protocol,
                start_port: sp,
                end_port: ep,
                start,
                end,
            }
        })
}

/// Payload types this implementation parses into structures (and 0, which ends a chain).
const KNOWN: [u8; 12] = [0, 33, 34, 35, 36, 39, 40, 41, 42, 44, 45, 46];

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        proptest::collection::vec(proposal(), 1..4)
            .prop_map(|proposals| Payload::Sa(SecurityAssociation { proposals })),
        (any::<u16>(), bytes(97))
            .prop_map(|(group, data)| Payload::Ke(KeyExchange { group, data })),
        (any::<u8>(), bytes(40)).prop_map(|(t, data)| Payload::IdI(Identification {
            id_type: IdType(t),
            data
        })),
        (any::<u8>(), bytes(40)).prop_map(|(t, data)| Payload::IdR(Identification {
            id_type: IdType(t),
            data
        })),
        (any::<u8>(), bytes(64)).prop_map(|(m, data)| Payload::Auth(Auth {
            method: AuthMethod(m),
            data
        })),
        proptest::collection::vec(any::<u8>(), 16..=256).prop_map(|n| Payload::Nonce(Nonce(n))),
        (
            any::<u8>(),
            prop_oneof![Just(0usize), Just(4), Just(8)],
            any::<u16>(),
            bytes(40)
        )
            .prop_map(|(protocol, spi_len, kind, data)| Payload::Notify(Notify {
                protocol,
                spi: vec![0xab; spi_len],
                kind: NotifyType(kind),
                data,
            })),
        (any::<u8>(), 0u8..9, 0usize..5).prop_map(|(protocol, spi_size, n)| {
            Payload::Delete(Delete {
                protocol,
                spi_size,
                spis: (0..n)
                    .map(|i| vec![i as u8; usize::from(spi_size)])
                    .collect(),
            })
        }),
        proptest::collection::vec(selector(), 0..4).prop_map(|t| Payload::TsI(TrafficSelectors(t))),
        proptest::collection::vec(selector(), 0..4).prop_map(|t| Payload::TsR(TrafficSelectors(t))),
        (
            any::<u8>().prop_filter("an unknown type", |t| !KNOWN.contains(t)),
            any::<bool>(),
            bytes(30)
        )
            .prop_map(|(kind, critical, body)| Payload::Unknown(UnknownPayload {
                kind: PayloadType(kind),
                critical,
                body,
            })),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        header(),
        proptest::collection::vec(payload(), 0..7),
        proptest::option::of((any::<u8>(), bytes(80))),
    )
        .prop_map(|(header, mut payloads, sk)| {
            if let Some((first, body)) = sk {
                payloads.push(Payload::Encrypted(Encrypted {
                    first_inner: PayloadType(first),
                    body,
                }));
            }
            Message { header, payloads }
        })
}

/// A byte-level change to a valid message.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), bytes(9)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..9).prop_map(|(i, n)| Mutation::Remove(i, n)),
    ]
}

fn apply(m: &Mutation, b: &mut Vec<u8>) {
    let len = b.len().max(1);
    match m {
        Mutation::Truncate(n) => b.truncate(n % len),
        Mutation::Set(i, v) => {
            if let Some(x) = b.get_mut(i % len) {
                *x = *v;
            }
        }
        Mutation::Insert(i, v) => {
            let at = i % (b.len() + 1);
            b.splice(at..at, v.iter().copied());
        }
        Mutation::Remove(i, n) => {
            let at = i % len;
            let end = (at + n).min(b.len());
            if at < end {
                b.drain(at..end);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_serialized_message_parses_back_to_itself(m in message()) {
        let bytes = m.serialize();
        let parsed = Message::parse(&bytes).expect("a serialised message parses");
        prop_assert_eq!(&parsed, &m);
        prop_assert_eq!(parsed.serialize(), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(b in bytes(600)) {
        let _ = Message::parse(&b);
        let _ = Header::peek(&b);
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_header_never_panic_the_parser(
        h in header(), first in any::<u8>(), body in bytes(400)
    ) {
        let mut b = Vec::new();
        h.write(PayloadType(first), 0, &mut b);
        b.extend_from_slice(&body);
        let len = b.len() as u32;
        b[24..28].copy_from_slice(&len.to_be_bytes());
        let _ = Message::parse(&b);
    }

    #[test]
    fn mutated_valid_messages_never_panic_and_reparse_when_accepted(
        m in message(), muts in proptest::collection::vec(mutation(), 1..4), fix_len in any::<bool>()
    ) {
        let mut b = m.serialize();
        for x in &muts {
            apply(x, &mut b);
        }
        if fix_len && b.len() >= 28 {
            let len = b.len() as u32;
            b[24..28].copy_from_slice(&len.to_be_bytes());
        }
        if let Ok(parsed) = Message::parse(&b) {
            let again = parsed.serialize();
            prop_assert_eq!(Message::parse(&again), Ok(parsed));
        }
    }
}

fn sample() -> Message {
    Message {
        header: Header {
            spi_i: 0x0102_0304_0506_0708,
            spi_r: 0,
            minor_version: 0,
            exchange: ExchangeType::IKE_SA_INIT,
            flags: Flags {
                initiator: true,
                ..Flags::default()
            },
            message_id: 0,
        },
        payloads: vec![
            Payload::Sa(SecurityAssociation {
                proposals: vec![Proposal {
                    number: 1,
                    protocol: ProtocolId::IKE,
                    spi: Vec::new(),
                    transforms: vec![
                        Transform::with_key_length(TransformType::ENCR, 20, 256),
                        Transform::new(TransformType::PRF, 5),
                        Transform::new(TransformType::DH, 31),
                    ],
                }],
            }),
            Payload::Ke(KeyExchange {
                group: 31,
                data: vec![9; 32],
            }),
            Payload::Nonce(Nonce(vec![7; 32])),
        ],
    }
}

#[test]
fn an_ike_sa_init_request_has_the_rfc_7296_layout() {
    let b = sample().serialize();
    // Header (3.1): SPIs, Next Payload SA (33), version 2.0, IKE_SA_INIT (34), I flag, id 0.
    assert_eq!(&b[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(&b[8..16], &[0; 8]);
    assert_eq!(&b[16..20], &[33, 0x20, 34, 0x08]);
    assert_eq!(
        u32::from_be_bytes([b[24], b[25], b[26], b[27]]) as usize,
        b.len()
    );
    // SA payload (3.3): next KE (34), length 4 + proposal (8 + 12 + 8 + 8) = 40.
    assert_eq!(&b[28..32], &[34, 0, 0, 40]);
    // The proposal: last, length 36, number 1, IKE, no SPI, three transforms.
    assert_eq!(&b[32..40], &[0, 0, 0, 36, 1, 1, 0, 3]);
    // ENCR 20 with Key Length 256 (TV attribute 0x800e), more transforms follow.
    assert_eq!(&b[40..52], &[3, 0, 0, 12, 1, 0, 0, 20, 0x80, 14, 1, 0]);
    // PRF 5, then the last transform DH 31.
    assert_eq!(&b[52..60], &[3, 0, 0, 8, 2, 0, 0, 5]);
    assert_eq!(&b[60..68], &[0, 0, 0, 8, 4, 0, 0, 31]);
    // KE (3.4): next Nonce (40), length 40, group 31.
    assert_eq!(&b[68..74], &[40, 0, 0, 40, 0, 31]);
    assert_eq!(Message::parse(&b), Ok(sample()));
}

#[test]
fn a_header_length_other_than_the_datagram_is_refused() {
    let mut b = sample().serialize();
    b.push(0);
    assert!(matches!(
        Message::parse(&b),
        Err(WireError::LengthMismatch { .. })
    ));
}

#[test]
fn a_major_version_other_than_2_is_refused() {
    let mut b = sample().serialize();
    b[17] = 0x10;
    assert_eq!(Message::parse(&b), Err(WireError::UnsupportedVersion(1)));
}

#[test]
fn a_nonce_shorter_than_16_bytes_is_refused() {
    let mut m = sample();
    m.payloads[2] = Payload::Nonce(Nonce(vec![1; 15]));
    assert_eq!(
        Message::parse(&m.serialize()),
        Err(WireError::BadNonceLength(15))
    );
}

#[test]
fn an_encrypted_payload_followed_by_another_is_refused() {
    let mut m = sample();
    m.payloads.insert(
        0,
        Payload::Encrypted(Encrypted {
            first_inner: PayloadType::NOTIFY,
            body: vec![0; 24],
        }),
    );
    // The serialiser ends the chain at the Encrypted payload; the bytes after it are left over.
    assert_eq!(
        Message::parse(&m.serialize()),
        Err(WireError::EncryptedNotLast)
    );
}

#[test]
fn a_truncated_message_is_refused_at_every_length() {
    let b = sample().serialize();
    for n in 0..b.len() {
        let mut t = b[..n].to_vec();
        if n >= 28 {
            let len = n as u32;
            t[24..28].copy_from_slice(&len.to_be_bytes());
        }
        assert!(Message::parse(&t).is_err(), "{n} bytes parsed");
    }
}

#[test]
fn a_critical_unknown_payload_keeps_its_critical_bit() {
    let mut m = sample();
    m.payloads.push(Payload::Unknown(UnknownPayload {
        kind: PayloadType(200),
        critical: true,
        body: vec![1, 2, 3],
    }));
    let b = m.serialize();
    let parsed = Message::parse(&b).expect("parses");
    assert!(parsed.payloads[3].critical());
}
