//! Rekeying a CHILD SA with CREATE_CHILD_SA (RFC 7296 1.3.3, 2.8): the exchange's initiator
//! sends N(REKEY_SA) with the SPI it receives on, a new SA proposal with its new SPI, a nonce
//! and the selectors; the responder answers with its choice, its SPI and nonce. Keys come from
//! SK_d and the new nonces (2.17). The old CHILD SA stays until the initiator deletes it
//! (INFORMATIONAL), so no packet is lost in between. A peer's request with a KE payload asks
//! for perfect forward secrecy (1.3.1): answered with a KE of the same group, if its proposal
//! names that group among those of our IKE suites, and keyed with the new g^ir (2.17); our own
//! rekeys offer no PFS (no setting asks for it). An IKE SA rekey is
//! `rekey_ike.rs`'s; any other CREATE_CHILD_SA (another CHILD SA) gets NO_ADDITIONAL_SAS.

use super::super::proposal::{EspSuite, IkeSuite};
use super::super::wire::{
    KeyExchange, Nonce, Notify, NotifyType, Payload, ProtocolId, TrafficSelectors,
};
use super::initiator::{nonce, random_u32};
use super::{
    ChildRef, Counters, Ctx, IkeError, IkeEvent, IkeSa, error_notify, narrow, notify, within,
};

/// Our rekey request awaiting its answer.
pub(super) struct Pending {
    pub old_inbound: u32,
    /// The CHILD SA rekeyed, as it was when we asked.
    pub old: ChildRef,
    pub new_inbound: u32,
    pub ni: Vec<u8>,
}

/// The payloads of our request to rekey `old`, and what to remember until the answer.
pub(super) fn request(
    old: &ChildRef,
    ctx: &mut Ctx<'_>,
) -> Result<(Vec<Payload>, Pending), IkeError> {
    let new_inbound = random_u32(ctx.entropy)?;
    let ni = nonce(ctx.entropy)?;
    let payloads = vec![
        Payload::Notify(Notify {
            protocol: ProtocolId::ESP.0,
            spi: old.inbound.to_be_bytes().to_vec(),
            kind: NotifyType::REKEY_SA,
            data: Vec::new(),
        }),
        Payload::Sa(EspSuite::offer(&ctx.config.esp, new_inbound)),
        Payload::Nonce(Nonce(ni.clone())),
        Payload::TsI(TrafficSelectors(old.local_ts.clone())),
        Payload::TsR(TrafficSelectors(old.remote_ts.clone())),
    ];
    Ok((
        payloads,
        Pending {
            old_inbound: old.inbound,
            old: old.clone(),
            new_inbound,
            ni,
        },
    ))
}

struct Parts<'a> {
    sa: Option<&'a super::super::wire::SecurityAssociation>,
    nonce: Option<&'a [u8]>,
    tsi: Option<&'a [super::super::wire::TrafficSelector]>,
    tsr: Option<&'a [super::super::wire::TrafficSelector]>,
    ke: Option<&'a KeyExchange>,
}

fn parts(inner: &[Payload]) -> Parts<'_> {
    let mut p = Parts {
        sa: None,
        nonce: None,
        tsi: None,
        tsr: None,
        ke: None,
    };
    for x in inner {
        match x {
            Payload::Sa(s) => p.sa = Some(s),
            Payload::Nonce(n) => p.nonce = Some(&n.0),
            Payload::TsI(t) => p.tsi = Some(&t.0),
            Payload::TsR(t) => p.tsr = Some(&t.0),
            Payload::Ke(k) => p.ke = Some(k),
            _ => {}
        }
    }
    p
}

/// Our answer to the peer's CREATE_CHILD_SA request (its inner payloads).
pub(super) fn answer(
    children: &mut Vec<ChildRef>,
    sa: &IkeSa,
    inner: &[Payload],
    ctx: &mut Ctx<'_>,
    counters: &mut Counters,
    events: &mut Vec<IkeEvent>,
) -> Result<Vec<Payload>, IkeError> {
    let rekeyed = inner.iter().find_map(|p| match p {
        Payload::Notify(n) if n.kind == NotifyType::REKEY_SA && n.protocol == ProtocolId::ESP.0 => {
            <[u8; 4]>::try_from(n.spi.as_slice())
                .ok()
                .map(u32::from_be_bytes)
        }
        _ => None,
    });
    let Some(old_outbound) = rekeyed else {
        counters.unexpected += 1;
        return Ok(vec![notify(NotifyType::NO_ADDITIONAL_SAS, Vec::new())]);
    };
    // The SPI is the one the peer receives on: our outbound one (1.3.3).
    let Some(old) = children
        .iter()
        .find(|c| c.outbound == old_outbound)
        .cloned()
    else {
        return Ok(vec![Payload::Notify(Notify {
            protocol: ProtocolId::ESP.0,
            spi: old_outbound.to_be_bytes().to_vec(),
            kind: NotifyType::CHILD_SA_NOT_FOUND,
            data: Vec::new(),
        })]);
    };
    let p = parts(inner);
    let (Some(offered), Some(ni), Some(tsi), Some(tsr)) = (p.sa, p.nonce, p.tsi, p.tsr) else {
        counters.malformed += 1;
        return Ok(vec![notify(NotifyType::INVALID_SYNTAX, Vec::new())]);
    };
    let inbound = random_u32(ctx.entropy)?;
    let (suite, outbound, answer, pfs) = match p.ke {
        None => match EspSuite::choose(offered, &ctx.config.esp, inbound) {
            Some((s, o, a)) => (s, o, a, None),
            None => {
                counters.no_proposal_chosen += 1;
                return Ok(vec![notify(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new())]);
            }
        },
        Some(ke) => {
            let groups = IkeSuite::groups(&ctx.config.ike);
            match EspSuite::choose_pfs(offered, &ctx.config.esp, inbound, ke.group, &groups) {
                Ok((s, o, group, a)) => {
                    let dh = group.generate(ctx.entropy)?;
                    let Ok(g_ir) = dh.agree(&ke.data) else {
                        counters.invalid_ke += 1;
                        return Ok(vec![notify(NotifyType::INVALID_SYNTAX, Vec::new())]);
                    };
                    (s, o, a, Some((dh, g_ir)))
                }
                Err(Some(group)) => {
                    counters.invalid_ke += 1;
                    let data = group.id().to_be_bytes().to_vec();
                    return Ok(vec![notify(NotifyType::INVALID_KE_PAYLOAD, data)]);
                }
                Err(None) => {
                    counters.no_proposal_chosen += 1;
                    return Ok(vec![notify(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new())]);
                }
            }
        }
    };
    let (ts_i, ts_r) = (
        narrow(tsi, &ctx.config.remote_ts),
        narrow(tsr, &ctx.config.local_ts),
    );
    if ts_i.is_empty() || ts_r.is_empty() {
        counters.ts_unacceptable += 1;
        return Ok(vec![notify(NotifyType::TS_UNACCEPTABLE, Vec::new())]);
    }
    let nr = nonce(ctx.entropy)?;
    let new = ChildRef {
        inbound,
        outbound,
        suite,
        local_ts: ts_r.clone(),
        remote_ts: ts_i.clone(),
    };
    let child = sa.keyed(new.clone(), false, pfs.as_ref().map(|p| &p.1), ni, &nr)?;
    children.push(new);
    tracing::debug!(
        old = old.inbound,
        new = inbound,
        "CHILD SA rekeyed (responder)"
    );
    events.push(IkeEvent::ChildRekeyed {
        old_inbound_spi: old.inbound,
        old_outbound_spi: old.outbound,
        child,
    });
    let mut out = vec![Payload::Sa(answer), Payload::Nonce(Nonce(nr))];
    if let Some((dh, _)) = &pfs {
        out.push(Payload::Ke(KeyExchange {
            group: dh.group().id(),
            data: dh.public().to_vec(),
        }));
    }
    out.extend([
        Payload::TsI(TrafficSelectors(ts_i)),
        Payload::TsR(TrafficSelectors(ts_r)),
    ]);
    Ok(out)
}

/// The peer's answer to our rekey request.
pub(super) fn complete(
    children: &mut Vec<ChildRef>,
    sa: &IkeSa,
    inner: &[Payload],
    pending: Pending,
    ctx: &Ctx<'_>,
    counters: &mut Counters,
    events: &mut Vec<IkeEvent>,
) {
    let fail = |events: &mut Vec<IkeEvent>, notify| {
        tracing::debug!(spi = pending.old_inbound, notify = %NotifyType::name(notify), "CHILD SA rekey refused");
        events.push(IkeEvent::ChildRekeyFailed {
            inbound_spi: pending.old_inbound,
            notify,
        });
    };
    if let Some(n) = error_notify(inner) {
        return fail(events, n);
    }
    // The old CHILD SA may be gone by now: the IKE SA was rekeyed meanwhile (its CHILD SAs
    // went to the new one, which the new CHILD SA joins), or the peer rekeyed the same CHILD
    // SA at the same time and deleted it before answering ours (2.8.1). The peer created the
    // new one all the same and may send on it: install it (a redundant one is deleted by
    // whoever 2.8.1 says), never leave the peer on an SA we do not know.
    let old = children
        .iter()
        .find(|c| c.inbound == pending.old_inbound)
        .cloned()
        .unwrap_or_else(|| pending.old.clone());
    let p = parts(inner);
    let (Some(sar), Some(nr), Some(tsi), Some(tsr)) = (p.sa, p.nonce, p.tsi, p.tsr) else {
        counters.malformed += 1;
        return fail(events, NotifyType::INVALID_SYNTAX);
    };
    let Some((suite, outbound)) = EspSuite::accepted(sar, &ctx.config.esp) else {
        counters.no_proposal_chosen += 1;
        return fail(events, NotifyType::NO_PROPOSAL_CHOSEN);
    };
    if !within(tsi, &ctx.config.local_ts) || !within(tsr, &ctx.config.remote_ts) {
        counters.ts_unacceptable += 1;
        return fail(events, NotifyType::TS_UNACCEPTABLE);
    }
    let new = ChildRef {
        inbound: pending.new_inbound,
        outbound,
        suite,
        local_ts: tsi.to_vec(),
        remote_ts: tsr.to_vec(),
    };
    let Ok(child) = sa.keyed(new.clone(), true, None, &pending.ni, nr) else {
        return fail(events, NotifyType::TEMPORARY_FAILURE);
    };
    children.push(new);
    tracing::debug!(
        old = old.inbound,
        new = pending.new_inbound,
        "CHILD SA rekeyed (initiator)"
    );
    events.push(IkeEvent::ChildRekeyed {
        old_inbound_spi: old.inbound,
        old_outbound_spi: old.outbound,
        child,
    });
}

#[cfg(test)]
mod tests {
    use super::super::super::crypto::keys::child_keys;
    use super::super::super::crypto::{
        Aead, CryptoError, DhGroup, DhPrivate, Entropy, Prf, Secret,
    };
    use super::super::super::wire::{
        IdType, Identification, TrafficSelector, Transform, TransformType,
    };
    use super::super::{Config, IkeError};
    use super::*;

    struct Counter(u8);

    impl Entropy for Counter {
        fn fill(&mut self, out: &mut [u8]) -> Result<(), CryptoError> {
            for b in out {
                self.0 = self.0.wrapping_add(13);
                *b = self.0;
            }
            Ok(())
        }
    }

    const IKE: IkeSuite = IkeSuite {
        aead: Aead::AesGcm16_256,
        prf: Prf::HmacSha256,
        dh: DhGroup::Ecp256,
    };
    const ESP: EspSuite = EspSuite {
        aead: Aead::AesGcm16_128,
    };

    fn any_ts() -> Vec<TrafficSelector> {
        vec![TrafficSelector::any(false)]
    }

    fn config() -> Config {
        Config {
            psk: Secret::from_slice(b"k"),
            local_id: Identification {
                id_type: IdType::FQDN,
                data: b"gw".to_vec(),
            },
            remote_id: None,
            ike: vec![IKE],
            esp: vec![ESP],
            local_ts: any_ts(),
            remote_ts: any_ts(),
            force_encapsulation: true,
        }
    }

    /// A peer's CHILD SA rekey request with PFS: its ESP proposal names `dh`, its KE is of
    /// `ke` (and the peer's DH private value).
    fn request(dh: DhGroup, ke: DhGroup, old: u32, e: &mut Counter) -> (Vec<Payload>, DhPrivate) {
        let private = ke.generate(e).expect("dh");
        let mut sa = EspSuite::offer(&[ESP], 0x5000);
        sa.proposals[0]
            .transforms
            .push(Transform::new(TransformType::DH, dh.id()));
        let inner = vec![
            Payload::Notify(Notify {
                protocol: ProtocolId::ESP.0,
                spi: old.to_be_bytes().to_vec(),
                kind: NotifyType::REKEY_SA,
                data: Vec::new(),
            }),
            Payload::Sa(sa),
            Payload::Nonce(Nonce(vec![4; 32])),
            Payload::Ke(KeyExchange {
                group: ke.id(),
                data: private.public().to_vec(),
            }),
            Payload::TsI(TrafficSelectors(any_ts())),
            Payload::TsR(TrafficSelectors(any_ts())),
        ];
        (inner, private)
    }

    fn setup() -> (IkeSa, Vec<ChildRef>) {
        let g = Secret::from_slice(&[3; 32]);
        let sa = IkeSa::new(false, IKE, &g, vec![1; 32], vec![2; 32], 5, 6).expect("sa");
        let child = ChildRef {
            inbound: 0x1000,
            outbound: 0x2000,
            suite: ESP,
            local_ts: any_ts(),
            remote_ts: any_ts(),
        };
        (sa, vec![child])
    }

    fn answer_of(
        inner: &[Payload],
        e: &mut Counter,
    ) -> Result<(Vec<Payload>, Counters, Vec<IkeEvent>), IkeError> {
        let (sa, mut children) = setup();
        let config = config();
        let mut ctx = Ctx {
            config: &config,
            entropy: e,
        };
        let (mut counters, mut events) = (Counters::default(), Vec::new());
        let out = answer(
            &mut children,
            &sa,
            inner,
            &mut ctx,
            &mut counters,
            &mut events,
        )?;
        Ok((out, counters, events))
    }

    #[test]
    fn a_child_sa_rekey_with_a_ke_gets_a_ke_back_and_keys_from_the_new_dh_secret() {
        let mut e = Counter(0);
        let (inner, peer) = request(DhGroup::Ecp256, DhGroup::Ecp256, 0x2000, &mut e);
        let (out, _, events) = answer_of(&inner, &mut e).expect("answer");
        let ke = out.iter().find_map(|p| match p {
            Payload::Ke(k) => Some(k),
            _ => None,
        });
        let Some(ke) = ke else {
            panic!("no KE in the answer: {out:?}")
        };
        assert_eq!(ke.group, DhGroup::Ecp256.id());
        let Some(Payload::Sa(chosen)) = out.first() else {
            panic!("no SA first")
        };
        assert!(
            chosen.proposals[0]
                .transforms
                .iter()
                .any(|t| t.kind == TransformType::DH && t.id == DhGroup::Ecp256.id())
        );
        let nr = out.iter().find_map(|p| match p {
            Payload::Nonce(n) => Some(n.0.clone()),
            _ => None,
        });
        let g_ir = peer.agree(&ke.data).expect("agree");
        let (sa, _) = setup();
        let with = child_keys(
            IKE.prf,
            ESP.aead,
            &sa.keys.sk_d,
            Some(&g_ir),
            &[4; 32],
            &nr.clone().unwrap_or_default(),
        )
        .expect("keys");
        let without = child_keys(
            IKE.prf,
            ESP.aead,
            &sa.keys.sk_d,
            None,
            &[4; 32],
            &nr.unwrap_or_default(),
        )
        .expect("keys");
        let [IkeEvent::ChildRekeyed { child, .. }] = events.as_slice() else {
            panic!("not rekeyed: {events:?}")
        };
        // We are the exchange's responder: our inbound packets are the initiator's.
        assert_eq!(child.inbound_key, with.initiator_to_responder);
        assert_eq!(child.outbound_key, with.responder_to_initiator);
        assert_ne!(child.inbound_key, without.initiator_to_responder);
    }

    #[test]
    fn a_child_sa_rekey_with_a_ke_of_another_group_gets_invalid_ke_payload_naming_the_proposals() {
        let mut e = Counter(0);
        let (inner, _) = request(DhGroup::Ecp256, DhGroup::Curve25519, 0x2000, &mut e);
        let (out, counters, events) = answer_of(&inner, &mut e).expect("answer");
        assert!(matches!(out.as_slice(), [Payload::Notify(n)]
            if n.kind == NotifyType::INVALID_KE_PAYLOAD && n.data == 19u16.to_be_bytes()));
        assert_eq!(counters.invalid_ke, 1);
        assert!(events.is_empty());
    }

    #[test]
    fn a_child_sa_rekey_with_pfs_in_a_group_we_do_not_use_gets_no_proposal_chosen() {
        let mut e = Counter(0);
        let (inner, _) = request(DhGroup::Modp2048, DhGroup::Modp2048, 0x2000, &mut e);
        let (out, counters, _) = answer_of(&inner, &mut e).expect("answer");
        assert!(
            matches!(out.as_slice(), [Payload::Notify(n)] if n.kind == NotifyType::NO_PROPOSAL_CHOSEN)
        );
        assert_eq!(counters.no_proposal_chosen, 1);
    }
}
