//! Rekeying the IKE SA with CREATE_CHILD_SA (RFC 7296 1.3.2, 2.8, 2.18): the exchange's
//! initiator sends an SA payload of IKE proposals with its new SPI, a nonce and a KE; the
//! responder answers with its choice and new SPI, its nonce and KE. The new SA is keyed from
//! the old one's SK_d (2.18), its message IDs start at 0, and the rekey's initiator is its
//! original initiator. The CHILD SAs move to the new SA; the rekey's initiator deletes the old
//! one, which goes without an event.
//!
//! Simultaneous rekeys (2.8.2): a peer's rekey that arrives while ours is outstanding is
//! answered, and its SA stays provisional until our answer comes; then of the two new SAs the
//! one with the lowest nonce (octet by octet) is deleted by the side that started it, and the
//! other keeps the CHILD SAs; both sides come to the same choice. A rekey of an SA already
//! rekeyed gets TEMPORARY_FAILURE; a Delete of the old SA while ours is outstanding, or a
//! refusal of ours, leaves the peer's new SA.
//!
//! [`settle`] applies an SA's [`Outcome`] to the table of SAs that holds it (the initiator's or
//! the responder's).

use std::time::{Duration, Instant};

use super::super::crypto::{DhGroup, DhPrivate};
use super::super::proposal::IkeSuite;
use super::super::wire::{KeyExchange, Nonce, NotifyType, Payload, ProtocolId};
use super::info::{Established, Outcome, Request};
use super::initiator::{nonce, random_u64};
use super::{Counters, Ctx, IkeError, IkeEvent, IkeSa, error_notify, notify};

/// How long an SA the peer is to delete stays without its Delete: past the peer's whole
/// retransmission schedule (1 + 2 + 4 + 8 + 16 s), twice.
pub const RETIRED_TIMEOUT: Duration = Duration::from_secs(64);

/// Our IKE SA rekey awaiting its answer.
pub(super) struct Pending {
    spi: u64,
    ni: Vec<u8>,
    dh: DhPrivate,
}

/// A new IKE SA from a rekey exchange, and the lowest of the exchange's two nonces (2.8.2).
pub(super) struct Successor {
    pub sa: Box<IkeSa>,
    pub min_nonce: Vec<u8>,
}

/// On the old SA in a collision: the peer's new SA we answered (our SPI of it) and its
/// lowest nonce.
pub(super) struct Answered {
    ours: u64,
    min_nonce: Vec<u8>,
}

/// The established IKE SAs of one holder, by our SPI.
pub(super) trait Table {
    fn pair(&mut self, ours: u64) -> Option<(&mut IkeSa, &mut Established)>;
    fn insert(&mut self, sa: Box<IkeSa>, est: Established);
    fn remove(&mut self, ours: u64);
}

/// Whether a CREATE_CHILD_SA request rekeys the IKE SA: an SA payload of IKE proposals and no
/// REKEY_SA notification (1.3.2).
pub(super) fn is_ike_rekey(inner: &[Payload]) -> bool {
    let rekey_sa = inner
        .iter()
        .any(|p| matches!(p, Payload::Notify(n) if n.kind == NotifyType::REKEY_SA));
    let ike = inner.iter().any(|p| match p {
        Payload::Sa(s) => s
            .proposals
            .first()
            .is_some_and(|p| p.protocol == ProtocolId::IKE),
        _ => false,
    });
    ike && !rekey_sa
}

struct Parts<'a> {
    sa: Option<&'a super::super::wire::SecurityAssociation>,
    nonce: Option<&'a [u8]>,
    ke: Option<&'a KeyExchange>,
}

fn parts(inner: &[Payload]) -> Parts<'_> {
    let mut p = Parts {
        sa: None,
        nonce: None,
        ke: None,
    };
    for x in inner {
        match x {
            Payload::Sa(s) => p.sa = Some(s),
            Payload::Nonce(n) => p.nonce = Some(&n.0),
            Payload::Ke(k) => p.ke = Some(k),
            _ => {}
        }
    }
    p
}

fn lowest(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.min(b).to_vec()
}

/// The payloads of our request to rekey `sa` (1.3.2): our proposals with a new SPI, a nonce,
/// a KE of the current suite's group (or the one the peer asked for before, `group`).
pub(super) fn request(
    sa: &IkeSa,
    group: Option<DhGroup>,
    ctx: &mut Ctx<'_>,
) -> Result<(Vec<Payload>, Pending), IkeError> {
    let groups = IkeSuite::groups(&ctx.config.ike);
    let group = [group, Some(sa.suite.dh)]
        .into_iter()
        .flatten()
        .find(|g| groups.contains(g))
        .or_else(|| groups.first().copied())
        .ok_or(IkeError::Config("IKE suite"))?;
    let spi = random_u64(ctx.entropy)?;
    let ni = nonce(ctx.entropy)?;
    let dh = group.generate(ctx.entropy)?;
    let payloads = vec![
        Payload::Sa(IkeSuite::offer_rekey(&ctx.config.ike, spi)),
        Payload::Nonce(Nonce(ni.clone())),
        Payload::Ke(KeyExchange {
            group: group.id(),
            data: dh.public().to_vec(),
        }),
    ];
    Ok((payloads, Pending { spi, ni, dh }))
}

/// Our answer to the peer's request to rekey `sa`, and the new SA unless refused: no
/// acceptable proposal gets NO_PROPOSAL_CHOSEN, a KE of another group than the chosen suite's
/// INVALID_KE_PAYLOAD with that group (1.3.2), a request without SA, nonce or KE
/// INVALID_SYNTAX.
pub(super) fn answer(
    sa: &IkeSa,
    inner: &[Payload],
    ctx: &mut Ctx<'_>,
    counters: &mut Counters,
) -> Result<(Vec<Payload>, Option<Successor>), IkeError> {
    let p = parts(inner);
    let (Some(offered), Some(ni), Some(ke)) = (p.sa, p.nonce, p.ke) else {
        counters.malformed += 1;
        return Ok((vec![notify(NotifyType::INVALID_SYNTAX, Vec::new())], None));
    };
    let spi = random_u64(ctx.entropy)?;
    let Some((suite, peer_spi, chosen)) =
        IkeSuite::choose_rekey(offered, &ctx.config.ike, ke.group, spi)
    else {
        counters.no_proposal_chosen += 1;
        tracing::debug!("IKE SA rekey refused: NO_PROPOSAL_CHOSEN");
        return Ok((
            vec![notify(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new())],
            None,
        ));
    };
    if ke.group != suite.dh.id() {
        counters.invalid_ke += 1;
        tracing::debug!(
            group = suite.dh.id(),
            "IKE SA rekey refused: INVALID_KE_PAYLOAD"
        );
        let n = notify(
            NotifyType::INVALID_KE_PAYLOAD,
            suite.dh.id().to_be_bytes().to_vec(),
        );
        return Ok((vec![n], None));
    }
    let dh = suite.dh.generate(ctx.entropy)?;
    let Ok(g_ir) = dh.agree(&ke.data) else {
        counters.invalid_ke += 1;
        tracing::debug!("IKE SA rekey refused: invalid KE value");
        return Ok((vec![notify(NotifyType::INVALID_SYNTAX, Vec::new())], None));
    };
    let nr = nonce(ctx.entropy)?;
    let min_nonce = lowest(ni, &nr);
    let new = IkeSa::rekeyed(
        sa,
        false,
        suite,
        &g_ir,
        ni.to_vec(),
        nr.clone(),
        peer_spi,
        spi,
    )?;
    let payloads = vec![
        Payload::Sa(chosen),
        Payload::Nonce(Nonce(nr)),
        Payload::Ke(KeyExchange {
            group: suite.dh.id(),
            data: dh.public().to_vec(),
        }),
    ];
    Ok((
        payloads,
        Some(Successor {
            sa: Box::new(new),
            min_nonce,
        }),
    ))
}

/// The peer's answer to our rekey of `sa`: the new SA, or the refusal (and the group the peer
/// asked for with INVALID_KE_PAYLOAD).
pub(super) fn complete(
    sa: &IkeSa,
    inner: &[Payload],
    pending: Pending,
    ctx: &Ctx<'_>,
    counters: &mut Counters,
) -> Result<Successor, (NotifyType, Option<DhGroup>)> {
    if let Some(n) = error_notify(inner) {
        let group = inner.iter().find_map(|p| match p {
            Payload::Notify(x) if x.kind == NotifyType::INVALID_KE_PAYLOAD => {
                <[u8; 2]>::try_from(x.data.as_slice())
                    .ok()
                    .and_then(|b| DhGroup::from_id(u16::from_be_bytes(b)))
            }
            _ => None,
        });
        tracing::debug!(notify = %n.name(), "IKE SA rekey refused by the peer");
        return Err((n, group));
    }
    let p = parts(inner);
    let (Some(sar), Some(nr), Some(ke)) = (p.sa, p.nonce, p.ke) else {
        counters.malformed += 1;
        return Err((NotifyType::INVALID_SYNTAX, None));
    };
    let Some((suite, peer_spi)) = IkeSuite::accepted_rekey(sar, &ctx.config.ike) else {
        counters.no_proposal_chosen += 1;
        return Err((NotifyType::NO_PROPOSAL_CHOSEN, None));
    };
    if suite.dh != pending.dh.group() || ke.group != suite.dh.id() {
        counters.invalid_ke += 1;
        return Err((NotifyType::INVALID_KE_PAYLOAD, None));
    }
    let Ok(g_ir) = pending.dh.agree(&ke.data) else {
        counters.invalid_ke += 1;
        return Err((NotifyType::INVALID_KE_PAYLOAD, None));
    };
    let min_nonce = lowest(&pending.ni, nr);
    let new = IkeSa::rekeyed(
        sa,
        true,
        suite,
        &g_ir,
        pending.ni,
        nr.to_vec(),
        pending.spi,
        peer_spi,
    )
    .map_err(|_| (NotifyType::TEMPORARY_FAILURE, None))?;
    Ok(Successor {
        sa: Box::new(new),
        min_nonce,
    })
}

/// The new SA `new` replaces `old`: it takes the CHILD SAs, `old` retires (deleted by the
/// rekey's initiator; if that is the peer and it never does, gone after [`RETIRED_TIMEOUT`]).
fn commit(table: &mut dyn Table, old: u64, new: u64, now: Instant, events: &mut Vec<IkeEvent>) {
    if table.pair(new).is_none() {
        return;
    }
    let Some((old_sa, old_est)) = table.pair(old) else {
        return;
    };
    let (old_spi_i, old_spi_r) = (old_sa.spi_i, old_sa.spi_r);
    let children = old_est.take_children();
    old_est.retiring = true;
    old_est.answered = None;
    old_est.successor = Some(new);
    old_est.expire_at = Some(now + RETIRED_TIMEOUT);
    let Some((sa, est)) = table.pair(new) else {
        return;
    };
    est.add_children(children);
    est.provisional = false;
    est.retiring = false;
    tracing::debug!(
        old_spi_i,
        old_spi_r,
        new_spi_i = sa.spi_i,
        new_spi_r = sa.spi_r,
        initiator = sa.initiator(),
        "IKE SA rekeyed"
    );
    events.push(IkeEvent::IkeRekeyed {
        old_spi_i,
        old_spi_r,
        new_spi_i: sa.spi_i,
        new_spi_r: sa.spi_r,
        suite: sa.suite,
        initiator: sa.initiator(),
    });
}

/// The CHILD SAs a rekeyed SA `ours` still has (created by an exchange in flight when it was
/// rekeyed) go to its successor.
fn hand_over(table: &mut dyn Table, ours: u64) {
    if let Some((_, est)) = table.pair(ours)
        && let Some(next) = est.successor
    {
        let children = est.take_children();
        if !children.is_empty()
            && let Some((_, e)) = table.pair(next)
        {
            e.add_children(children);
        }
    }
}

/// Removes the SA `ours`, its CHILD SAs handed over first.
fn remove(table: &mut dyn Table, ours: u64) {
    hand_over(table, ours);
    table.remove(ours);
}

/// Applies what a message on the SA `ours` came to; returns the datagram to send, if any
/// (a response, or the Delete of an SA this side retires).
pub(super) fn settle(
    table: &mut dyn Table,
    ours: u64,
    outcome: Outcome,
    ctx: &mut Ctx<'_>,
    now: Instant,
    events: &mut Vec<IkeEvent>,
) -> Result<Option<Vec<u8>>, IkeError> {
    match outcome {
        Outcome::Reply(r) => Ok(Some(r)),
        Outcome::Drop => {
            hand_over(table, ours);
            Ok(None)
        }
        Outcome::Close(r) => {
            // 2.8.2: the peer deleted the old SA while our rekey was outstanding: it did not
            // see the collision, and its new SA stays.
            if let Some((_, est)) = table.pair(ours)
                && let Some(a) = est.answered.take()
            {
                est.forget_pending();
                commit(table, ours, a.ours, now, events);
            }
            remove(table, ours);
            Ok((!r.is_empty()).then_some(r))
        }
        Outcome::Rekeyed { reply, new } => {
            let Some((_, est)) = table.pair(ours) else {
                return Ok(Some(reply));
            };
            let new_ours = new.sa.ours();
            let mut new_est = Established::new(0, None, Vec::new(), 0);
            if est.rekeying_ike() {
                tracing::debug!("IKE SA rekey collision: both sides rekey at once");
                est.answered = Some(Answered {
                    ours: new_ours,
                    min_nonce: new.min_nonce,
                });
                new_est.provisional = true;
                table.insert(new.sa, new_est);
            } else {
                table.insert(new.sa, new_est);
                commit(table, ours, new_ours, now, events);
            }
            Ok(Some(reply))
        }
        Outcome::RekeyCompleted(new) => {
            let Some((_, est)) = table.pair(ours) else {
                return Ok(None);
            };
            let answered = est.answered.take();
            let new_ours = new.sa.ours();
            match answered {
                Some(a) if a.min_nonce > new.min_nonce => {
                    // Ours holds the lowest nonce: redundant, and ours to delete; the peer's
                    // SA stays and the peer deletes the old one.
                    let mut sa = new.sa;
                    let mut est = Established::new(0, None, Vec::new(), 0);
                    est.retiring = true;
                    let del = est.request(&mut sa, Request::DeleteIke, ctx, now)?;
                    table.insert(sa, est);
                    commit(table, ours, a.ours, now, events);
                    Ok(del)
                }
                other => {
                    if let Some(a) = other
                        && let Some((_, est)) = table.pair(a.ours)
                    {
                        // The peer's SA is the redundant one: the peer deletes it.
                        est.provisional = false;
                        est.retiring = true;
                        est.expire_at = Some(now + RETIRED_TIMEOUT);
                    }
                    table.insert(new.sa, Established::new(0, None, Vec::new(), 0));
                    commit(table, ours, new_ours, now, events);
                    let Some((sa, est)) = table.pair(ours) else {
                        return Ok(None);
                    };
                    est.request(sa, Request::DeleteIke, ctx, now)
                }
            }
        }
        Outcome::RekeyFailed(n) => {
            if let Some((_, est)) = table.pair(ours)
                && let Some(a) = est.answered.take()
            {
                // Refused (TEMPORARY_FAILURE: the peer had rekeyed already): its SA stays.
                commit(table, ours, a.ours, now, events);
            } else {
                events.push(IkeEvent::IkeRekeyFailed { notify: n });
            }
            Ok(None)
        }
    }
}

/// The SA `ours` got no answer to our request after every retransmission. A live SA's peer
/// is dead ([`IkeEvent::TimedOut`]); an SA on its way out just goes (and a peer's new SA
/// waiting on our rekey's outcome stays).
pub(super) fn dead(table: &mut dyn Table, ours: u64, now: Instant, events: &mut Vec<IkeEvent>) {
    let Some((_, est)) = table.pair(ours) else {
        return;
    };
    let quiet = est.quiet();
    if let Some(a) = est.answered.take() {
        commit(table, ours, a.ours, now, events);
    }
    remove(table, ours);
    if !quiet {
        events.push(IkeEvent::TimedOut);
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::crypto::{Aead, CryptoError, Entropy, Prf, Secret};
    use super::super::super::wire::{IdType, Identification};
    use super::super::Config;
    use super::*;

    struct Counter(u8);

    impl Entropy for Counter {
        fn fill(&mut self, out: &mut [u8]) -> Result<(), CryptoError> {
            for b in out {
                self.0 = self.0.wrapping_add(7);
                *b = self.0;
            }
            Ok(())
        }
    }

    const OURS: IkeSuite = IkeSuite {
        aead: Aead::AesGcm16_128,
        prf: Prf::HmacSha256,
        dh: DhGroup::Curve25519,
    };

    fn config() -> Config {
        Config {
            psk: Secret::from_slice(b"k"),
            local_id: Identification {
                id_type: IdType::FQDN,
                data: b"gw".to_vec(),
            },
            remote_id: None,
            ike: vec![OURS],
            esp: Vec::new(),
            local_ts: Vec::new(),
            remote_ts: Vec::new(),
            force_encapsulation: true,
        }
    }

    fn sa() -> IkeSa {
        let g = Secret::from_slice(&[9; 32]);
        IkeSa::new(false, OURS, &g, vec![1; 32], vec![2; 32], 11, 22).expect("sa")
    }

    fn offer(suite: IkeSuite, group: DhGroup, e: &mut Counter) -> Vec<Payload> {
        let dh = group.generate(e).expect("dh");
        vec![
            Payload::Sa(IkeSuite::offer_rekey(&[suite], 99)),
            Payload::Nonce(Nonce(vec![3; 32])),
            Payload::Ke(KeyExchange {
                group: group.id(),
                data: dh.public().to_vec(),
            }),
        ]
    }

    fn refusal(p: &[Payload]) -> Option<(NotifyType, Vec<u8>)> {
        match p {
            [Payload::Notify(n)] => Some((n.kind, n.data.clone())),
            _ => None,
        }
    }

    #[test]
    fn an_ike_sa_rekey_without_a_common_proposal_gets_no_proposal_chosen_and_is_counted() {
        let (config, mut e, mut counters) = (config(), Counter(0), Counters::default());
        let theirs = IkeSuite {
            prf: Prf::HmacSha384,
            ..OURS
        };
        let inner = offer(theirs, DhGroup::Curve25519, &mut e);
        assert!(is_ike_rekey(&inner));
        let mut ctx = Ctx {
            config: &config,
            entropy: &mut e,
        };
        let (out, new) = answer(&sa(), &inner, &mut ctx, &mut counters).expect("answer");
        assert!(new.is_none());
        assert_eq!(
            refusal(&out),
            Some((NotifyType::NO_PROPOSAL_CHOSEN, Vec::new()))
        );
        assert_eq!(counters.no_proposal_chosen, 1);
    }

    #[test]
    fn an_ike_sa_rekey_with_a_ke_of_another_group_gets_invalid_ke_payload_naming_ours() {
        let (config, mut e, mut counters) = (config(), Counter(0), Counters::default());
        let mut inner = offer(OURS, DhGroup::Ecp256, &mut e);
        // The proposal holds our suite; the KE is of group 19.
        inner[0] = Payload::Sa(IkeSuite::offer_rekey(&[OURS], 99));
        let mut ctx = Ctx {
            config: &config,
            entropy: &mut e,
        };
        let (out, new) = answer(&sa(), &inner, &mut ctx, &mut counters).expect("answer");
        assert!(new.is_none());
        assert_eq!(
            refusal(&out),
            Some((NotifyType::INVALID_KE_PAYLOAD, 31u16.to_be_bytes().to_vec()))
        );
        assert_eq!(counters.invalid_ke, 1);
    }

    #[test]
    fn an_ike_sa_rekey_without_a_ke_or_with_a_zero_spi_is_refused() {
        let (config, mut e, mut counters) = (config(), Counter(0), Counters::default());
        let mut inner = offer(OURS, DhGroup::Curve25519, &mut e);
        let ke = inner.pop();
        let mut ctx = Ctx {
            config: &config,
            entropy: &mut e,
        };
        let (out, _) = answer(&sa(), &inner, &mut ctx, &mut counters).expect("answer");
        assert_eq!(
            refusal(&out),
            Some((NotifyType::INVALID_SYNTAX, Vec::new()))
        );
        assert_eq!(counters.malformed, 1);
        inner[0] = Payload::Sa(IkeSuite::offer_rekey(&[OURS], 0));
        inner.extend(ke);
        let (out, new) = answer(&sa(), &inner, &mut ctx, &mut counters).expect("answer");
        assert!(new.is_none());
        assert_eq!(
            refusal(&out),
            Some((NotifyType::NO_PROPOSAL_CHOSEN, Vec::new()))
        );
    }
}
