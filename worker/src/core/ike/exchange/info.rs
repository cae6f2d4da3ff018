//! Requests the peer makes on an established IKE SA (RFC 7296 1.4, 2.1, 2.3), the same for
//! both roles: INFORMATIONAL is answered (an empty one is dead peer detection, 2.4; a Delete
//! of the IKE SA closes it, of CHILD SAs is answered with the Deletes of their other halves,
//! 1.4.1); CREATE_CHILD_SA rekeys a CHILD SA (`rekey.rs`) or the IKE SA (`rekey_ike.rs`),
//! whose outcomes the SA's holder applies (`rekey_ike::settle`). The last
//! response is kept for a retransmitted request; requests out of turn are dropped (window
//! size 1, 2.3).

use std::time::Instant;

use super::super::crypto::DhGroup;
use super::super::protect::ProtectError;
use super::super::wire::{Delete, ExchangeType, Message, NotifyType, Payload, ProtocolId};
use super::initiator::{RETRANSMIT_BASE, RETRANSMIT_TRIES};
use super::rekey_ike::{self, Successor};
use super::{ChildRef, Counters, Ctx, IkeError, IkeEvent, IkeSa, notify, rekey};

/// An IKE SA after IKE_AUTH, as far as the peer's requests go.
pub(super) struct Established {
    /// The message ID the peer's next request must carry.
    peer_next_id: u32,
    last_request: Vec<u8>,
    last_response: Vec<u8>,
    /// The CHILD SAs.
    children: Vec<ChildRef>,
    /// The message ID of our next request.
    my_next_id: u32,
    /// Our request awaiting its response (window size 1).
    pending: Option<Pending>,
    /// Rekeyed (by either side) or redundant (2.8.2): on its way out, deleted by one side
    /// without an event; it takes no new requests but the Delete.
    pub(super) retiring: bool,
    /// Created by the peer's rekey while ours was outstanding: which of the two new SAs
    /// stays is not decided yet (2.8.2).
    pub(super) provisional: bool,
    /// On the old SA in a collision: the peer's new SA we answered.
    pub(super) answered: Option<rekey_ike::Answered>,
    /// On a rekeyed SA: our SPI of the SA that replaced it, which takes the CHILD SAs an
    /// exchange still in flight on this one creates.
    pub(super) successor: Option<u64>,
    /// On an SA the peer is to delete (rekeyed by the peer, or its redundant one): when it
    /// goes anyway, should the peer never delete it (2.8.2: a rekey whose answer it lost).
    pub(super) expire_at: Option<Instant>,
    /// The DH group the peer asked for with INVALID_KE_PAYLOAD, for our next IKE SA rekey.
    rekey_group: Option<DhGroup>,
}

/// A request of ours on an established SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// An empty INFORMATIONAL: dead peer detection (2.4).
    Dpd,
    /// Delete the IKE SA (1.4.1).
    DeleteIke,
    /// Delete the CHILD SA whose inbound SPI this is (1.4.1).
    DeleteChild(u32),
    /// Rekey the CHILD SA whose inbound SPI this is (1.3.3); delete the old one once
    /// [`super::IkeEvent::ChildRekeyed`] comes.
    RekeyChild(u32),
    /// Rekey the IKE SA (1.3.2): [`super::IkeEvent::IkeRekeyed`] names the new SA, which
    /// keeps the CHILD SAs; the old one is deleted by itself.
    RekeyIke,
}

struct Pending {
    id: u32,
    request: Request,
    bytes: Vec<u8>,
    next_at: Instant,
    tries: u32,
    rekey: Option<rekey::Pending>,
    ike: Option<rekey_ike::Pending>,
}

/// What a retransmission timer comes to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Timer {
    Idle,
    Resend(Vec<u8>),
    /// No answer to our request after every retransmission: the peer is dead (2.4).
    Dead,
}

/// What a message on an established SA comes to.
pub(super) enum Outcome {
    /// Send this response.
    Reply(Vec<u8>),
    /// Send this response (if not empty); the IKE SA is gone.
    Close(Vec<u8>),
    /// Nothing to send (counted).
    Drop,
    /// Send this response to the peer's IKE SA rekey; `new` is the SA it created.
    Rekeyed { reply: Vec<u8>, new: Successor },
    /// Our IKE SA rekey was answered: `new` is the SA it created.
    RekeyCompleted(Successor),
    /// Our IKE SA rekey was refused.
    RekeyFailed(NotifyType),
}

impl Established {
    /// `peer_next_id`: the ID of the peer's next request (1 for the initiator, whose
    /// responder has sent none; 2 for the responder, after IKE_AUTH). `last`: the request
    /// answered last and its response, if any.
    pub(super) fn new(
        peer_next_id: u32,
        last: Option<(Vec<u8>, Vec<u8>)>,
        children: Vec<ChildRef>,
        my_next_id: u32,
    ) -> Self {
        let (last_request, last_response) = last.unwrap_or_default();
        Self {
            peer_next_id,
            last_request,
            last_response,
            children,
            my_next_id,
            pending: None,
            retiring: false,
            provisional: false,
            answered: None,
            successor: None,
            expire_at: None,
            rekey_group: None,
        }
    }

    /// Whether the SA goes without an event of its own (rekeyed, redundant or undecided).
    pub(super) fn quiet(&self) -> bool {
        self.retiring || self.provisional || self.answered.is_some()
    }

    /// Whether our rekey of this IKE SA is outstanding.
    pub(super) fn rekeying_ike(&self) -> bool {
        self.pending.as_ref().is_some_and(|p| p.ike.is_some())
    }

    pub(super) fn take_children(&mut self) -> Vec<ChildRef> {
        std::mem::take(&mut self.children)
    }

    pub(super) fn add_children(&mut self, children: Vec<ChildRef>) {
        self.children.extend(children);
    }

    /// Drops our outstanding request (the SA it was on is decided otherwise).
    pub(super) fn forget_pending(&mut self) {
        self.pending = None;
    }

    /// Our request `request`, unless one is outstanding already (2.3: window size 1).
    pub(super) fn request(
        &mut self,
        sa: &mut IkeSa,
        request: Request,
        ctx: &mut Ctx<'_>,
        now: Instant,
    ) -> Result<Option<Vec<u8>>, IkeError> {
        if self.pending.is_some()
            || ((self.retiring || self.provisional) && request != Request::DeleteIke)
        {
            return Ok(None);
        }
        let mut exchange = ExchangeType::INFORMATIONAL;
        let mut rekey = None;
        let mut ike = None;
        let payloads = match request {
            Request::Dpd => Vec::new(),
            Request::DeleteIke => vec![Payload::Delete(Delete {
                protocol: ProtocolId::IKE.0,
                spi_size: 0,
                spis: Vec::new(),
            })],
            Request::DeleteChild(inbound) => vec![Payload::Delete(Delete {
                protocol: ProtocolId::ESP.0,
                spi_size: 4,
                spis: vec![inbound.to_be_bytes().to_vec()],
            })],
            Request::RekeyChild(inbound) => {
                let Some(old) = self.children.iter().find(|c| c.inbound == inbound) else {
                    return Ok(None);
                };
                let (payloads, p) = rekey::request(old, ctx)?;
                exchange = ExchangeType::CREATE_CHILD_SA;
                rekey = Some(p);
                payloads
            }
            Request::RekeyIke => {
                let (payloads, p) = rekey_ike::request(sa, self.rekey_group, ctx)?;
                exchange = ExchangeType::CREATE_CHILD_SA;
                ike = Some(p);
                payloads
            }
        };
        let id = self.my_next_id;
        let bytes = sa.seal(exchange, false, id, &payloads)?;
        self.my_next_id = id.wrapping_add(1);
        self.pending = Some(Pending {
            id,
            request,
            bytes: bytes.clone(),
            next_at: now + RETRANSMIT_BASE,
            tries: 0,
            rekey,
            ike,
        });
        Ok(Some(bytes))
    }

    /// A response from the peer: to our outstanding request, or dropped.
    pub(super) fn handle_response(
        &mut self,
        sa: &IkeSa,
        datagram: &[u8],
        msg: &Message,
        ctx: &Ctx<'_>,
        counters: &mut Counters,
        events: &mut Vec<IkeEvent>,
    ) -> Outcome {
        let Some(p) = self
            .pending
            .as_ref()
            .filter(|p| p.id == msg.header.message_id)
        else {
            counters.replayed += 1;
            tracing::trace!(
                id = msg.header.message_id,
                "IKE response dropped: no such request"
            );
            return Outcome::Drop;
        };
        let expected = match p.request {
            Request::RekeyChild(_) | Request::RekeyIke => ExchangeType::CREATE_CHILD_SA,
            _ => ExchangeType::INFORMATIONAL,
        };
        if msg.header.exchange != expected {
            counters.unexpected += 1;
            return Outcome::Drop;
        }
        let inner = match sa.open(datagram, msg) {
            Ok(inner) => inner,
            Err(e) => {
                if e == ProtectError::Integrity {
                    counters.integrity_failed += 1;
                } else {
                    counters.malformed += 1;
                }
                tracing::trace!(error = %e, "IKE response dropped");
                return Outcome::Drop;
            }
        };
        let Some(p) = self.pending.take() else {
            return Outcome::Drop;
        };
        match p.request {
            Request::RekeyIke => {
                let Some(pending) = p.ike else {
                    return Outcome::Drop;
                };
                match rekey_ike::complete(sa, &inner, pending, ctx, counters) {
                    Ok(new) => Outcome::RekeyCompleted(new),
                    Err((n, group)) => {
                        if group.is_some() {
                            self.rekey_group = group;
                        }
                        Outcome::RekeyFailed(n)
                    }
                }
            }
            Request::RekeyChild(_) => {
                if let Some(pending) = p.rekey {
                    rekey::complete(
                        &mut self.children,
                        sa,
                        &inner,
                        pending,
                        ctx,
                        counters,
                        events,
                    );
                }
                Outcome::Drop
            }
            Request::Dpd => {
                tracing::trace!("IKE peer alive (DPD answered)");
                Outcome::Drop
            }
            Request::DeleteIke => {
                if !self.quiet() {
                    events.push(IkeEvent::Deleted { by_peer: false });
                }
                Outcome::Close(Vec::new())
            }
            Request::DeleteChild(inbound) => {
                if let Some(i) = self.children.iter().position(|c| c.inbound == inbound) {
                    let c = self.children.remove(i);
                    events.push(IkeEvent::ChildDeleted {
                        inbound_spi: inbound,
                        outbound_spi: c.outbound,
                    });
                }
                Outcome::Drop
            }
        }
    }

    /// The retransmission timer of our outstanding request.
    pub(super) fn handle_timeout(&mut self, now: Instant, counters: &mut Counters) -> Timer {
        let Some(p) = self.pending.as_mut() else {
            if self.expire_at.is_some_and(|at| now >= at) {
                self.expire_at = None;
                return Timer::Dead;
            }
            return Timer::Idle;
        };
        if now < p.next_at {
            return Timer::Idle;
        }
        if p.tries >= RETRANSMIT_TRIES {
            self.pending = None;
            return Timer::Dead;
        }
        p.tries += 1;
        p.next_at = now + RETRANSMIT_BASE * 2u32.pow(p.tries);
        counters.retransmissions += 1;
        Timer::Resend(p.bytes.clone())
    }

    /// When [`Established::handle_timeout`] wants to run.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.next_at).or(self.expire_at)
    }

    /// A request from the peer on `sa` (`msg` parsed from `datagram`, its SPIs matched).
    pub(super) fn handle_request(
        &mut self,
        sa: &mut IkeSa,
        datagram: &[u8],
        msg: &Message,
        ctx: &mut Ctx<'_>,
        counters: &mut Counters,
        events: &mut Vec<IkeEvent>,
    ) -> Result<Outcome, IkeError> {
        let id = msg.header.message_id;
        if !self.last_request.is_empty() && datagram == self.last_request.as_slice() {
            counters.retransmits_answered += 1;
            tracing::trace!(id, "IKE request retransmitted: answered again");
            return Ok(Outcome::Reply(self.last_response.clone()));
        }
        if id < self.peer_next_id {
            counters.replayed += 1;
            tracing::trace!(id, "IKE request dropped: old message ID");
            return Ok(Outcome::Drop);
        }
        if id > self.peer_next_id {
            counters.out_of_window += 1;
            tracing::trace!(
                id,
                expected = self.peer_next_id,
                "IKE request dropped: out of window"
            );
            return Ok(Outcome::Drop);
        }
        let exchange = msg.header.exchange;
        if exchange != ExchangeType::INFORMATIONAL && exchange != ExchangeType::CREATE_CHILD_SA {
            counters.unexpected += 1;
            tracing::trace!(
                exchange = exchange.0,
                "IKE request dropped: unexpected exchange"
            );
            return Ok(Outcome::Drop);
        }
        let inner = match sa.open(datagram, msg) {
            Ok(p) => p,
            Err(ProtectError::Integrity) => {
                counters.integrity_failed += 1;
                tracing::trace!(id, "IKE request dropped: integrity check failed");
                return Ok(Outcome::Drop);
            }
            Err(e) => {
                counters.malformed += 1;
                tracing::trace!(id, error = %e, "IKE request dropped");
                return Ok(Outcome::Drop);
            }
        };
        let mut out = Vec::new();
        let mut close = false;
        let mut successor = None;
        if exchange == ExchangeType::CREATE_CHILD_SA {
            if self.quiet() {
                // 2.8.2: an SA on its way out is not rekeyed, nor are its CHILD SAs.
                tracing::trace!(
                    id,
                    "CREATE_CHILD_SA on a retiring IKE SA: TEMPORARY_FAILURE"
                );
                out = vec![notify(NotifyType::TEMPORARY_FAILURE, Vec::new())];
            } else if rekey_ike::is_ike_rekey(&inner) {
                let (payloads, new) = rekey_ike::answer(sa, &inner, ctx, counters)?;
                out = payloads;
                successor = new;
            } else {
                out = rekey::answer(&mut self.children, sa, &inner, ctx, counters, events)?;
            }
        } else {
            let mut ours = Vec::new();
            for p in &inner {
                let Payload::Delete(d) = p else { continue };
                if d.protocol == ProtocolId::IKE.0 {
                    close = true;
                } else if d.protocol == ProtocolId::ESP.0 {
                    for spi in &d.spis {
                        let Ok(b) = <[u8; 4]>::try_from(spi.as_slice()) else {
                            continue;
                        };
                        let outbound = u32::from_be_bytes(b);
                        if let Some(i) = self.children.iter().position(|c| c.outbound == outbound) {
                            let inbound = self.children.remove(i).inbound;
                            ours.push(inbound.to_be_bytes().to_vec());
                            events.push(IkeEvent::ChildDeleted {
                                inbound_spi: inbound,
                                outbound_spi: outbound,
                            });
                        }
                    }
                }
            }
            if !close && !ours.is_empty() {
                out.push(Payload::Delete(Delete {
                    protocol: ProtocolId::ESP.0,
                    spi_size: 4,
                    spis: ours,
                }));
            }
        }
        let reply = sa.seal(exchange, true, id, &out)?;
        self.peer_next_id = id.wrapping_add(1);
        self.last_request = datagram.to_vec();
        self.last_response = reply.clone();
        if close {
            tracing::debug!(
                spi_i = sa.spi_i,
                spi_r = sa.spi_r,
                quiet = self.quiet(),
                "IKE SA deleted by the peer"
            );
            if !self.quiet() {
                events.push(IkeEvent::Deleted { by_peer: true });
            }
            return Ok(Outcome::Close(reply));
        }
        if let Some(new) = successor {
            return Ok(Outcome::Rekeyed { reply, new });
        }
        tracing::trace!(id, "IKE INFORMATIONAL request answered");
        Ok(Outcome::Reply(reply))
    }
}
