//! Proposal choice (`core::ike::proposal`, RFC 7296 2.7, 3.3): what a responder picks from
//! proposals as strongSwan writes them (every algorithm of a kind in one proposal), what it
//! skips, and what an initiator accepts back.

use isthmus_worker::core::ike::crypto::{Aead, DhGroup, Prf};
use isthmus_worker::core::ike::proposal::{EspSuite, IkeSuite};
use isthmus_worker::core::ike::wire::{
    Proposal, ProtocolId, SecurityAssociation, Transform, TransformType,
};

fn t(kind: TransformType, id: u16) -> Transform {
    Transform::new(kind, id)
}

fn gcm(bits: u16) -> Transform {
    Transform::with_key_length(TransformType::ENCR, 20, bits)
}

/// A strongSwan-style IKE proposal: AES-GCM-128/256, PRF SHA-256/384, groups 19, 31, 14.
fn combined(number: u8) -> Proposal {
    Proposal {
        number,
        protocol: ProtocolId::IKE,
        spi: Vec::new(),
        transforms: vec![
            gcm(128),
            gcm(256),
            t(TransformType::PRF, 5),
            t(TransformType::PRF, 6),
            t(TransformType::DH, 19),
            t(TransformType::DH, 31),
            t(TransformType::DH, 14),
        ],
    }
}

const X25519: IkeSuite = IkeSuite {
    aead: Aead::AesGcm16_256,
    prf: Prf::HmacSha256,
    dh: DhGroup::Curve25519,
};
const P256: IkeSuite = IkeSuite {
    aead: Aead::AesGcm16_256,
    prf: Prf::HmacSha256,
    dh: DhGroup::Ecp256,
};

#[test]
fn from_a_combined_proposal_the_suite_with_the_initiator_s_ke_group_is_chosen() {
    let offered = SecurityAssociation {
        proposals: vec![combined(1)],
    };
    let (s, answer) = IkeSuite::choose(&offered, &[P256, X25519], 31).expect("a choice");
    assert_eq!(s, X25519, "no INVALID_KE_PAYLOAD round trip");
    let (s, _) = IkeSuite::choose(&offered, &[P256, X25519], 19).expect("a choice");
    assert_eq!(s, P256);
    // A KE group none of the fitting suites has: our first fitting suite.
    let (s, _) = IkeSuite::choose(&offered, &[P256, X25519], 20).expect("a choice");
    assert_eq!(s, P256);
    // The answer is one proposal of one transform each, with the offer's number, and the
    // initiator accepts it.
    assert_eq!(answer.proposals.len(), 1);
    assert_eq!(answer.proposals[0].number, 1);
    assert_eq!(answer.proposals[0].transforms.len(), 3);
    assert_eq!(IkeSuite::accepted(&answer, &[P256, X25519]), Some(X25519));
    assert_eq!(IkeSuite::accepted(&answer, &[P256]), None, "not offered");
}

#[test]
fn proposals_with_an_integrity_algorithm_or_an_unknown_transform_type_are_skipped() {
    let mut with_integ = combined(1);
    with_integ.transforms.push(t(TransformType::INTEG, 12));
    let mut unknown = combined(2);
    unknown.transforms.push(t(TransformType(200), 1));
    let mut esp = combined(3);
    esp.protocol = ProtocolId::ESP;
    let offered = SecurityAssociation {
        proposals: vec![with_integ, unknown, esp],
    };
    assert!(IkeSuite::choose(&offered, &[X25519], 31).is_none());
    let mut integ_none = combined(4);
    integ_none.transforms.push(t(TransformType::INTEG, 0));
    let offered = SecurityAssociation {
        proposals: vec![integ_none],
    };
    let (_, answer) = IkeSuite::choose(&offered, &[X25519], 31).expect("INTEG NONE is tolerated");
    assert_eq!(answer.proposals[0].number, 4);
}

#[test]
fn an_answer_with_two_transforms_of_a_kind_is_not_accepted() {
    let offered = SecurityAssociation {
        proposals: vec![combined(1)],
    };
    assert_eq!(IkeSuite::accepted(&offered, &[X25519, P256]), None);
}

#[test]
fn esp_is_chosen_without_extended_sequence_numbers_and_carries_both_spis() {
    let offered = SecurityAssociation {
        proposals: vec![
            Proposal {
                number: 1,
                protocol: ProtocolId::ESP,
                spi: vec![0xc0, 0, 0, 1],
                // ESN only: refused (not yet supported).
                transforms: vec![gcm(256), t(TransformType::ESN, 1)],
            },
            Proposal {
                number: 2,
                protocol: ProtocolId::ESP,
                spi: vec![0xc0, 0, 0, 2],
                transforms: vec![
                    Transform::new(TransformType::ENCR, 28),
                    gcm(128),
                    t(TransformType::ESN, 1),
                    t(TransformType::ESN, 0),
                ],
            },
        ],
    };
    let ours = [EspSuite {
        aead: Aead::AesGcm16_128,
    }];
    let (s, peer_spi, answer) = EspSuite::choose(&offered, &ours, 0x0bad_cafe).expect("a choice");
    assert_eq!(s, ours[0]);
    assert_eq!(peer_spi, 0xc000_0002);
    assert_eq!(answer.proposals[0].number, 2);
    assert_eq!(
        EspSuite::accepted(&answer, &ours),
        Some((ours[0], 0x0bad_cafe))
    );
}

#[test]
fn an_esp_proposal_whose_spi_is_not_four_bytes_is_skipped() {
    let offered = SecurityAssociation {
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::ESP,
            spi: vec![1, 2, 3],
            transforms: vec![gcm(256), t(TransformType::ESN, 0)],
        }],
    };
    let ours = [EspSuite {
        aead: Aead::AesGcm16_256,
    }];
    assert!(EspSuite::choose(&offered, &ours, 7).is_none());
}

/// RFC 7296 1.2: IKE_AUTH carries no KE, so a device configured for PFS that lists its DH group
/// in the first CHILD SA's proposal (as many do) gets that CHILD SA keyed from SK_d, with an
/// answer that names no group; a CREATE_CHILD_SA's choice still refuses such a proposal
/// without a KE.
#[test]
fn the_first_child_sa_ignores_a_dh_group_in_the_proposal_and_answers_without_one() {
    let offered = SecurityAssociation {
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::ESP,
            spi: vec![0xc0, 0, 0, 9],
            transforms: vec![gcm(256), t(TransformType::DH, 19), t(TransformType::ESN, 0)],
        }],
    };
    let ours = [EspSuite {
        aead: Aead::AesGcm16_256,
    }];
    assert!(EspSuite::choose(&offered, &ours, 7).is_none());
    let (s, peer_spi, answer) =
        EspSuite::choose_in_auth(&offered, &ours, 7).expect("the DH group is ignored");
    assert_eq!((s, peer_spi), (ours[0], 0xc000_0009));
    assert!(
        answer.proposals[0]
            .transforms
            .iter()
            .all(|t| t.kind != TransformType::DH)
    );
    assert_eq!(EspSuite::accepted(&answer, &ours), Some((ours[0], 7)));
}
