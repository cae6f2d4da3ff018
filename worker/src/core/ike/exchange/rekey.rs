//! Rekeying a CHILD SA with CREATE_CHILD_SA (RFC 7296 1.3.3, 2.8): the exchange's initiator
//! sends N(REKEY_SA) with the SPI it receives on, a new SA proposal with its new SPI, a nonce
//! and the selectors; the responder answers with its choice, its SPI and nonce. Keys come from
//! SK_d and the new nonces (2.17). The old CHILD SA stays until the initiator deletes it
//! (INFORMATIONAL), so no packet is lost in between. Without perfect forward secrecy for now:
//! a request with a KE payload is refused with NO_PROPOSAL_CHOSEN. An IKE SA rekey is
//! `rekey_ike.rs`'s; any other CREATE_CHILD_SA (another CHILD SA) gets NO_ADDITIONAL_SAS.

use super::super::proposal::EspSuite;
use super::super::wire::{Nonce, Notify, NotifyType, Payload, ProtocolId, TrafficSelectors};
use super::initiator::{nonce, random_u32};
use super::{
    ChildRef, Counters, Ctx, IkeError, IkeEvent, IkeSa, error_notify, narrow, notify, within,
};

/// Our rekey request awaiting its answer.
pub(super) struct Pending {
    pub old_inbound: u32,
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
    ke: bool,
}

fn parts(inner: &[Payload]) -> Parts<'_> {
    let mut p = Parts {
        sa: None,
        nonce: None,
        tsi: None,
        tsr: None,
        ke: false,
    };
    for x in inner {
        match x {
            Payload::Sa(s) => p.sa = Some(s),
            Payload::Nonce(n) => p.nonce = Some(&n.0),
            Payload::TsI(t) => p.tsi = Some(&t.0),
            Payload::TsR(t) => p.tsr = Some(&t.0),
            Payload::Ke(_) => p.ke = true,
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
    let chosen = EspSuite::choose(offered, &ctx.config.esp, inbound);
    let (Some((suite, outbound, answer)), false) = (chosen, p.ke) else {
        counters.no_proposal_chosen += 1;
        return Ok(vec![notify(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new())]);
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
    let child = sa.keyed(new.clone(), false, ni, &nr)?;
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
    Ok(vec![
        Payload::Sa(answer),
        Payload::Nonce(Nonce(nr)),
        Payload::TsI(TrafficSelectors(ts_i)),
        Payload::TsR(TrafficSelectors(ts_r)),
    ])
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
    let Some(old) = children
        .iter()
        .find(|c| c.inbound == pending.old_inbound)
        .cloned()
    else {
        return fail(events, NotifyType::CHILD_SA_NOT_FOUND);
    };
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
    let Ok(child) = sa.keyed(new.clone(), true, &pending.ni, nr) else {
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
