//! How a connection's tunnel follows what its exchanges came to ([`IkeEvent`]): SAs up,
//! refused, dead, deleted, rekeyed; and the rules after an IKE SA comes up (replacement and
//! duplicates, see [`super::tunnel`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::core::ike::exchange::{Entropy, IkeEvent, Request};
use crate::core::ike::wire::NotifyType;

use super::child::{Child, IkeId};
use super::tunnel::{Owner, RETRY_AFTER, Sa, Tunnel, frac};

impl Tunnel {
    pub(super) fn drain_events(&mut self, entropy: &mut dyn Entropy, now: Instant) {
        let mut events: Vec<(Owner, Option<SocketAddr>, IkeEvent)> = Vec::new();
        for i in &mut self.inits {
            while let Some(e) = i.ike.poll_event() {
                events.push((Owner::Init(i.id), None, e));
            }
        }
        while let Some((peer, e)) = self.responder.poll_event() {
            events.push((Owner::Responder, Some(peer), e));
        }
        for (owner, peer, e) in events {
            self.on_event(owner, peer, e, entropy, now);
        }
    }

    pub(super) fn error(&mut self, name: String, now: Instant) {
        tracing::debug!(error = %name, "IPsec connection error");
        self.last_error = Some((name, now));
    }

    pub(super) fn on_event(
        &mut self,
        owner: Owner,
        peer: Option<SocketAddr>,
        e: IkeEvent,
        entropy: &mut dyn Entropy,
        now: Instant,
    ) {
        match e {
            IkeEvent::Established {
                spi_i,
                spi_r,
                suite,
                child,
                child_refused,
                ..
            } => {
                let we_initiated = matches!(owner, Owner::Init(_));
                let (dst, from) = match (owner, self.cur_src) {
                    (Owner::Init(_), _) => (self.s.floated(), self.s.device),
                    (Owner::Responder, Some((src, _))) => (src, peer.unwrap_or(src)),
                    (Owner::Responder, None) => {
                        let p = peer.unwrap_or(self.s.floated());
                        (p, p)
                    }
                };
                let id = (spi_i, spi_r);
                tracing::info!(
                    spi_i = format!("{spi_i:016x}"),
                    spi_r = format!("{spi_r:016x}"),
                    initiator = we_initiated,
                    "IKE SA established"
                );
                self.sas.push(Sa {
                    id,
                    owner,
                    we_initiated,
                    suite,
                    established: now,
                    rekey_at: now + frac(self.s.ike_lifetime, we_initiated),
                    dst,
                    peer: from,
                    retiring: false,
                    deleting: false,
                    rekeying: false,
                });
                self.last_heard = now;
                self.idle = false;
                self.key_failure = None;
                self.timed_out = false;
                self.next_initiate = None;
                if let Some(c) = child {
                    self.install(id, &c, now);
                }
                if let Some(n) = child_refused {
                    self.error(n.name(), now);
                }
                self.settle(id, entropy, now);
            }
            IkeEvent::Failed { notify, by_peer } => {
                tracing::info!(notify = %notify.name(), by_peer, "IKE SA refused");
                if notify == NotifyType::AUTHENTICATION_FAILED {
                    self.key_failure = Some(now);
                }
                self.error(notify.name(), now);
                if let Owner::Init(id) = owner {
                    self.drop_owner(Owner::Init(id), None);
                }
                self.schedule(now + RETRY_AFTER);
            }
            IkeEvent::TimedOut => {
                let established = self.sas.iter().any(|s| s.owner == owner);
                let name = if established { "DEAD_PEER" } else { "TIMEOUT" };
                tracing::info!(error = name, "IKE peer gave no answer");
                self.error(name.to_owned(), now);
                self.timed_out = true;
                self.drop_owner(owner, peer);
                self.schedule(now);
            }
            IkeEvent::Deleted { by_peer } => {
                tracing::info!(by_peer, "IKE SA deleted");
                self.drop_owner(owner, peer);
                if by_peer && self.s.on_demand && self.sas.is_empty() {
                    // S2S-2: the device idled it out; traffic brings it back.
                    self.idle = true;
                    self.next_initiate = None;
                } else {
                    self.schedule(now + Duration::from_secs(1));
                }
            }
            IkeEvent::ChildDeleted { inbound_spi, .. } => {
                self.children.retain(|c| c.inbound_spi != inbound_spi);
                self.dirty = true;
            }
            IkeEvent::ChildRekeyed {
                old_inbound_spi,
                child,
                ..
            } => {
                let ike = match self
                    .children
                    .iter_mut()
                    .find(|c| c.inbound_spi == old_inbound_spi)
                {
                    Some(old) => {
                        old.replaced = true;
                        if std::mem::take(&mut old.rekeying) {
                            old.delete_due = true;
                        }
                        old.ike
                    }
                    // The old one was deleted meanwhile (the device rekeyed it too, 2.8.1):
                    // the new one still belongs on the IKE SA the exchange ran on.
                    None => match self.sas.iter().find(|s| {
                        s.owner == owner && peer.is_none_or(|p| s.peer == p) && !s.retiring
                    }) {
                        Some(sa) => sa.id,
                        None => return,
                    },
                };
                self.rekeys += 1;
                self.install(ike, &child, now);
                tracing::debug!(
                    old = format!("{old_inbound_spi:08x}"),
                    new = format!("{:08x}", child.inbound_spi),
                    "CHILD SA rekeyed"
                );
            }
            IkeEvent::ChildRekeyFailed {
                inbound_spi,
                notify,
            } => {
                if let Some(c) = self
                    .children
                    .iter_mut()
                    .find(|c| c.inbound_spi == inbound_spi)
                {
                    c.rekeying = false;
                }
                self.error(notify.name(), now);
            }
            IkeEvent::IkeRekeyed {
                old_spi_i,
                old_spi_r,
                new_spi_i,
                new_spi_r,
                suite,
                initiator,
            } => {
                let old = (old_spi_i, old_spi_r);
                let new = (new_spi_i, new_spi_r);
                if let Some(sa) = self.sas.iter_mut().find(|s| s.id == old) {
                    sa.id = new;
                    sa.we_initiated = initiator;
                    sa.suite = suite;
                    sa.established = now;
                    sa.rekey_at = now + frac(self.s.ike_lifetime, initiator);
                    sa.rekeying = false;
                }
                for c in self.children.iter_mut().filter(|c| c.ike == old) {
                    c.ike = new;
                }
                self.rekeys += 1;
                self.dirty = true;
            }
            IkeEvent::IkeRekeyFailed { notify } => {
                self.error(notify.name(), now);
                // Make-before-break instead: a new IKE SA beside the old one, which is deleted
                // once the new one is up; or, if this side only answers, a rekey again later.
                let failed: Vec<IkeId> = self
                    .sas
                    .iter()
                    .filter(|s| s.owner == owner && s.rekeying)
                    .map(|s| s.id)
                    .collect();
                let renew = self.s.initiates() && self.inits.iter().all(|i| i.ike.is_established());
                for sa in self.sas.iter_mut().filter(|s| failed.contains(&s.id)) {
                    sa.rekeying = false;
                    if renew {
                        sa.retiring = true;
                    } else {
                        sa.rekey_at = now + RETRY_AFTER;
                    }
                }
                if renew && !failed.is_empty() {
                    tracing::info!("IKE SA rekey refused: establishing its successor");
                    self.initiate(entropy, now);
                }
            }
        }
    }

    pub(super) fn schedule(&mut self, at: Instant) {
        if self.s.initiates() && self.sas.is_empty() && !self.idle {
            self.next_initiate = Some(self.next_initiate.map_or(at, |t| t.min(at)));
        }
    }

    pub(super) fn install(
        &mut self,
        ike: IkeId,
        c: &crate::core::ike::exchange::ChildSa,
        now: Instant,
    ) {
        match Child::new(ike, c, now) {
            Ok(child) => {
                self.children.push(child);
                self.dirty = true;
            }
            Err(e) => tracing::warn!(error = %e, "CHILD SA not installed"),
        }
    }

    /// An IKE SA holder is done: its SAs (a responder's: those no longer with `peer`) and
    /// their CHILD SAs go.
    pub(super) fn drop_owner(&mut self, owner: Owner, peer: Option<SocketAddr>) {
        let gone: Vec<IkeId> = match owner {
            Owner::Init(id) => {
                self.inits.retain(|i| i.id != id);
                self.sas
                    .iter()
                    .filter(|s| s.owner == owner)
                    .map(|s| s.id)
                    .collect()
            }
            Owner::Responder => {
                let alive: Vec<u64> = peer.map(|p| self.responder.sas_with(p)).unwrap_or_default();
                self.sas
                    .iter()
                    .filter(|s| s.owner == Owner::Responder && peer.is_none_or(|p| s.peer == p))
                    .filter(|s| !alive.contains(&s.ours()))
                    .map(|s| s.id)
                    .collect()
            }
        };
        self.sas.retain(|s| !gone.contains(&s.id));
        self.children.retain(|c| !gone.contains(&c.ike));
        self.dirty = true;
    }

    /// After SA `new` came up: the SAs it replaces go, and of duplicates (both sides
    /// initiated) the lowest (SPIi, SPIr) stays.
    pub(super) fn settle(&mut self, new: IkeId, entropy: &mut dyn Entropy, now: Instant) {
        let Some(owner) = self.sas.iter().find(|s| s.id == new).map(|s| s.owner) else {
            return;
        };
        let is_ours = |o: Owner| matches!(o, Owner::Init(_));
        let mut doomed: Vec<IkeId> = Vec::new();
        // Replaced: ours made before breaking, or the device's older ones (it started over:
        // it lost them, RFC 7296 2.4 INITIAL_CONTACT).
        doomed.extend(
            self.sas
                .iter()
                .filter(|s| s.id != new && (s.retiring || is_ours(s.owner) == is_ours(owner)))
                .map(|s| s.id),
        );
        // Duplicates: both sides initiated at once; the lowest (SPIi, SPIr) stays.
        if let Some(keep) = self
            .sas
            .iter()
            .filter(|s| !doomed.contains(&s.id))
            .map(|s| s.id)
            .min()
        {
            let before = doomed.len();
            doomed.extend(
                self.sas
                    .iter()
                    .filter(|s| !doomed.contains(&s.id) && s.id != keep)
                    .map(|s| s.id)
                    .collect::<Vec<_>>(),
            );
            if doomed.len() > before {
                tracing::info!("duplicate IKE SA with the device: the lowest SPIs stay");
            }
        }
        for id in doomed {
            if let Some(sa) = self.sas.iter_mut().find(|s| s.id == id) {
                sa.retiring = true;
            }
            self.delete_ike(id, entropy, now);
        }
    }

    pub(super) fn delete_ike(&mut self, id: IkeId, entropy: &mut dyn Entropy, now: Instant) {
        if self.request(id, Request::DeleteIke, entropy, now)
            && let Some(sa) = self.sas.iter_mut().find(|s| s.id == id)
        {
            sa.deleting = true;
        }
    }

    /// Sends a request on SA `id`; whether it went (false: another of ours is outstanding).
    pub(super) fn request(
        &mut self,
        id: IkeId,
        req: Request,
        entropy: &mut dyn Entropy,
        now: Instant,
    ) -> bool {
        let Some(sa) = self.sas.iter().find(|s| s.id == id) else {
            return false;
        };
        let (owner, ours, dst) = (sa.owner, sa.ours(), sa.dst);
        let sent = match owner {
            Owner::Init(n) => match self.inits.iter_mut().find(|i| i.id == n) {
                Some(i) => i.ike.request(req, entropy, now),
                None => Ok(None),
            },
            Owner::Responder => self
                .responder
                .request(ours, req, entropy, now)
                .map(|r| r.map(|(_, b)| b)),
        };
        match sent {
            Ok(Some(b)) => {
                self.send(dst, &b, true, now);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::debug!(error = %e, "IKE request not sent");
                false
            }
        }
    }
}
