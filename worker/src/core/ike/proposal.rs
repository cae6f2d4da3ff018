//! Proposals (RFC 7296 2.7, 3.3): the suites this implementation offers and accepts, written
//! into SA payloads and chosen from the peer's.
//!
//! Only AEAD suites exist (RFC 8247 and RFC 8221 recommend them): an IKE suite is an AEAD, a
//! PRF and a DH group; an ESP suite an AEAD without Extended Sequence Numbers. An AEAD
//! proposal carries no integrity transform (RFC 5282 8; INTEG NONE (0) is tolerated).

use super::crypto::{Aead, DhGroup, Prf};
use super::wire::{Proposal, ProtocolId, SecurityAssociation, Transform, TransformType};

/// An IKE SA suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IkeSuite {
    pub aead: Aead,
    pub prf: Prf,
    pub dh: DhGroup,
}

/// An ESP CHILD SA suite (ESN off: ESN transform 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EspSuite {
    pub aead: Aead,
}

/// ESN transform IDs (RFC 7296 3.3.2).
const ESN_NONE: u16 = 0;

fn encr(aead: Aead) -> Transform {
    match aead.transform() {
        (id, Some(bits)) => Transform::with_key_length(TransformType::ENCR, id, bits),
        (id, None) => Transform::new(TransformType::ENCR, id),
    }
}

fn aead_of(t: &Transform) -> Option<Aead> {
    Aead::from_transform(t.id, t.key_length())
}

/// Whether a proposal's transforms are all of types this implementation knows, without an
/// integrity algorithm (RFC 7296 3.3.6: a proposal with an unknown transform type is
/// skipped).
fn aead_only(p: &Proposal, allowed: &[TransformType]) -> bool {
    p.transforms
        .iter()
        .all(|t| allowed.contains(&t.kind) && !(t.kind == TransformType::INTEG && t.id != 0))
}

impl IkeSuite {
    fn transforms(self) -> Vec<Transform> {
        vec![
            encr(self.aead),
            Transform::new(TransformType::PRF, self.prf.id()),
            Transform::new(TransformType::DH, self.dh.id()),
        ]
    }

    /// SAi1: one proposal per suite, in order of preference, numbered from 1.
    pub fn offer(suites: &[IkeSuite]) -> SecurityAssociation {
        Self::offer_spi(suites, Vec::new())
    }

    /// The SA payload of a request to rekey the IKE SA (RFC 7296 1.3.2): the proposals of
    /// [`IkeSuite::offer`], each with the new IKE SA's SPI of ours (3.3.1: SPI size 8).
    pub fn offer_rekey(suites: &[IkeSuite], spi: u64) -> SecurityAssociation {
        Self::offer_spi(suites, spi.to_be_bytes().to_vec())
    }

    fn offer_spi(suites: &[IkeSuite], spi: Vec<u8>) -> SecurityAssociation {
        SecurityAssociation {
            proposals: suites
                .iter()
                .zip(1u8..)
                .map(|(s, number)| Proposal {
                    number,
                    protocol: ProtocolId::IKE,
                    spi: spi.clone(),
                    transforms: s.transforms(),
                })
                .collect(),
        }
    }

    /// The responder's choice (2.7): the first of the initiator's proposals that holds one of
    /// our suites (ours in our order within it, but one with the group of the initiator's KE
    /// payload, `ke_group`, first: no INVALID_KE_PAYLOAD round trip), and SAr1 with that one
    /// proposal.
    pub fn choose(
        offered: &SecurityAssociation,
        ours: &[IkeSuite],
        ke_group: u16,
    ) -> Option<(IkeSuite, SecurityAssociation)> {
        Self::choose_spi(offered, ours, ke_group, None).map(|(s, _, a)| (s, a))
    }

    /// The rekey responder's choice (RFC 7296 1.3.2), like [`IkeSuite::choose`] among the
    /// proposals with an 8-byte SPI: the suite, the peer's new SPI, and the answer with our
    /// new SPI `spi`.
    pub fn choose_rekey(
        offered: &SecurityAssociation,
        ours: &[IkeSuite],
        ke_group: u16,
        spi: u64,
    ) -> Option<(IkeSuite, u64, SecurityAssociation)> {
        Self::choose_spi(offered, ours, ke_group, Some(spi))
    }

    fn choose_spi(
        offered: &SecurityAssociation,
        ours: &[IkeSuite],
        ke_group: u16,
        spi: Option<u64>,
    ) -> Option<(IkeSuite, u64, SecurityAssociation)> {
        const ALLOWED: [TransformType; 4] = [
            TransformType::ENCR,
            TransformType::PRF,
            TransformType::INTEG,
            TransformType::DH,
        ];
        for p in &offered.proposals {
            let peer_spi = match spi {
                None if p.spi.is_empty() => 0,
                Some(_) => match <[u8; 8]>::try_from(p.spi.as_slice()) {
                    Ok(b) if u64::from_be_bytes(b) != 0 => u64::from_be_bytes(b),
                    _ => continue,
                },
                None => continue,
            };
            if p.protocol != ProtocolId::IKE || !aead_only(p, &ALLOWED) {
                continue;
            }
            let has = |kind: TransformType, pred: &dyn Fn(&Transform) -> bool| {
                p.transforms.iter().any(|t| t.kind == kind && pred(t))
            };
            let fits = |s: &&IkeSuite| {
                has(TransformType::ENCR, &|t| aead_of(t) == Some(s.aead))
                    && has(TransformType::PRF, &|t| t.id == s.prf.id())
                    && has(TransformType::DH, &|t| t.id == s.dh.id())
            };
            let found = ours
                .iter()
                .filter(fits)
                .find(|s| s.dh.id() == ke_group)
                .or_else(|| ours.iter().find(fits));
            if let Some(s) = found {
                let answer = SecurityAssociation {
                    proposals: vec![Proposal {
                        number: p.number,
                        protocol: ProtocolId::IKE,
                        spi: spi.map(|x| x.to_be_bytes().to_vec()).unwrap_or_default(),
                        transforms: s.transforms(),
                    }],
                };
                return Some((*s, peer_spi, answer));
            }
        }
        None
    }

    /// The initiator's check of SAr1: exactly one proposal with one transform of each type,
    /// forming one of the suites it offered.
    pub fn accepted(answer: &SecurityAssociation, offered: &[IkeSuite]) -> Option<IkeSuite> {
        let [p] = answer.proposals.as_slice() else {
            return None;
        };
        if p.protocol != ProtocolId::IKE || p.transforms.len() != 3 {
            return None;
        }
        let one = |kind| {
            let mut it = p.transforms.iter().filter(move |t| t.kind == kind);
            match (it.next(), it.next()) {
                (Some(t), None) => Some(t),
                _ => None,
            }
        };
        let suite = IkeSuite {
            aead: aead_of(one(TransformType::ENCR)?)?,
            prf: Prf::from_id(one(TransformType::PRF)?.id)?,
            dh: DhGroup::from_id(one(TransformType::DH)?.id)?,
        };
        offered.contains(&suite).then_some(suite)
    }

    /// The rekey initiator's check of the answer (RFC 7296 1.3.2): as [`IkeSuite::accepted`],
    /// and the peer's new SPI (8 bytes, not zero).
    pub fn accepted_rekey(
        answer: &SecurityAssociation,
        offered: &[IkeSuite],
    ) -> Option<(IkeSuite, u64)> {
        let suite = Self::accepted(answer, offered)?;
        let [p] = answer.proposals.as_slice() else {
            return None;
        };
        let spi = u64::from_be_bytes(<[u8; 8]>::try_from(p.spi.as_slice()).ok()?);
        (spi != 0).then_some((suite, spi))
    }

    /// The DH groups a KE payload may use when offering `suites`, first the preferred one.
    pub fn groups(suites: &[IkeSuite]) -> Vec<DhGroup> {
        let mut g: Vec<DhGroup> = Vec::new();
        for s in suites {
            if !g.contains(&s.dh) {
                g.push(s.dh);
            }
        }
        g
    }
}

impl EspSuite {
    fn transforms(self) -> Vec<Transform> {
        vec![
            encr(self.aead),
            Transform::new(TransformType::ESN, ESN_NONE),
        ]
    }

    /// SAi2: one ESP proposal per suite, each with the inbound SPI `spi`.
    pub fn offer(suites: &[EspSuite], spi: u32) -> SecurityAssociation {
        SecurityAssociation {
            proposals: suites
                .iter()
                .zip(1u8..)
                .map(|(s, number)| Proposal {
                    number,
                    protocol: ProtocolId::ESP,
                    spi: spi.to_be_bytes().to_vec(),
                    transforms: s.transforms(),
                })
                .collect(),
        }
    }

    /// The responder's choice: the first ESP proposal that holds one of our suites and no
    /// ESN (or no ESN transform), its peer's SPI, and SAr2 with our SPI `spi`.
    pub fn choose(
        offered: &SecurityAssociation,
        ours: &[EspSuite],
        spi: u32,
    ) -> Option<(EspSuite, u32, SecurityAssociation)> {
        const ALLOWED: [TransformType; 3] = [
            TransformType::ENCR,
            TransformType::INTEG,
            TransformType::ESN,
        ];
        for p in &offered.proposals {
            if p.protocol != ProtocolId::ESP || !aead_only(p, &ALLOWED) {
                continue;
            }
            let Ok(peer_spi) = <[u8; 4]>::try_from(p.spi.as_slice()) else {
                continue;
            };
            let esn_ok = p.transforms.iter().all(|t| t.kind != TransformType::ESN)
                || p.transforms
                    .iter()
                    .any(|t| t.kind == TransformType::ESN && t.id == ESN_NONE);
            let found = ours.iter().find(|s| {
                p.transforms
                    .iter()
                    .any(|t| t.kind == TransformType::ENCR && aead_of(t) == Some(s.aead))
            });
            if let (true, Some(s)) = (esn_ok, found) {
                let answer = SecurityAssociation {
                    proposals: vec![Proposal {
                        number: p.number,
                        protocol: ProtocolId::ESP,
                        spi: spi.to_be_bytes().to_vec(),
                        transforms: s.transforms(),
                    }],
                };
                return Some((*s, u32::from_be_bytes(peer_spi), answer));
            }
        }
        None
    }

    /// The IKE_AUTH responder's choice of the first CHILD SA (RFC 7296 1.2): as
    /// [`EspSuite::choose`], with any Diffie-Hellman transform of the proposals ignored. IKE_AUTH
    /// carries no KE, so the first CHILD SA's keys come from SK_d alone; devices configured for
    /// PFS still list their group there (the RFC says to omit it), and refusing them would leave
    /// them without a tunnel. The answer names no group.
    pub fn choose_in_auth(
        offered: &SecurityAssociation,
        ours: &[EspSuite],
        spi: u32,
    ) -> Option<(EspSuite, u32, SecurityAssociation)> {
        let mut stripped = offered.clone();
        for p in &mut stripped.proposals {
            p.transforms.retain(|t| t.kind != TransformType::DH);
        }
        Self::choose(&stripped, ours, spi)
    }

    /// The rekey responder's choice for a CREATE_CHILD_SA with a KE of `ke_group` (perfect
    /// forward secrecy, RFC 7296 1.3.1): as [`EspSuite::choose`] among the proposals with a
    /// DH transform of that group, which must be one of `groups`; the answer names it. Err
    /// with the group to ask for (INVALID_KE_PAYLOAD) when a proposal has an acceptable group
    /// other than the KE's, else Err(None) (NO_PROPOSAL_CHOSEN).
    pub fn choose_pfs(
        offered: &SecurityAssociation,
        ours: &[EspSuite],
        spi: u32,
        ke_group: u16,
        groups: &[DhGroup],
    ) -> Result<(EspSuite, u32, DhGroup, SecurityAssociation), Option<DhGroup>> {
        const ALLOWED: [TransformType; 4] = [
            TransformType::ENCR,
            TransformType::INTEG,
            TransformType::ESN,
            TransformType::DH,
        ];
        let mut ask = None;
        for p in &offered.proposals {
            if p.protocol != ProtocolId::ESP || !aead_only(p, &ALLOWED) {
                continue;
            }
            let dh: Vec<DhGroup> = p
                .transforms
                .iter()
                .filter(|t| t.kind == TransformType::DH)
                .filter_map(|t| DhGroup::from_id(t.id))
                .filter(|g| groups.contains(g))
                .collect();
            let Some(&group) = dh.iter().find(|g| g.id() == ke_group) else {
                ask = ask.or(dh.first().copied());
                continue;
            };
            let without_dh = SecurityAssociation {
                proposals: vec![Proposal {
                    transforms: p
                        .transforms
                        .iter()
                        .filter(|t| t.kind != TransformType::DH)
                        .cloned()
                        .collect(),
                    ..p.clone()
                }],
            };
            if let Some((suite, peer_spi, mut answer)) = Self::choose(&without_dh, ours, spi) {
                for a in &mut answer.proposals {
                    a.transforms
                        .push(Transform::new(TransformType::DH, group.id()));
                }
                return Ok((suite, peer_spi, group, answer));
            }
        }
        Err(ask)
    }

    /// The initiator's check of SAr2: one ESP proposal of a suite it offered; the
    /// responder's SPI.
    pub fn accepted(answer: &SecurityAssociation, offered: &[EspSuite]) -> Option<(EspSuite, u32)> {
        let [p] = answer.proposals.as_slice() else {
            return None;
        };
        let spi = <[u8; 4]>::try_from(p.spi.as_slice()).ok()?;
        if p.protocol != ProtocolId::ESP {
            return None;
        }
        let mut encrs = p
            .transforms
            .iter()
            .filter(|t| t.kind == TransformType::ENCR);
        let (Some(t), None) = (encrs.next(), encrs.next()) else {
            return None;
        };
        let esn_ok = p
            .transforms
            .iter()
            .filter(|t| t.kind == TransformType::ESN)
            .all(|t| t.id == ESN_NONE);
        let suite = EspSuite { aead: aead_of(t)? };
        (esn_ok && offered.contains(&suite)).then_some((suite, u32::from_be_bytes(spi)))
    }
}
