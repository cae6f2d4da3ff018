//! A connection's timers: retransmissions, (re-)initiation, CHILD SA rekeys and deletes,
//! the IKE SA's lifetime (make-before-break), dead peer detection, NAT-T keepalives.

use std::time::Instant;

use crate::core::esp::udp::KEEPALIVE;
use crate::core::ike::exchange::{Entropy, Request};

use super::child::IkeId;
use super::tunnel::{KEEPALIVE_EVERY, Owner, RESPONDER_REKEY_GRACE, Tunnel, frac};

impl Tunnel {
    /// Runs the timers due at `now`.
    pub fn tick(&mut self, entropy: &mut dyn Entropy, now: Instant) {
        let span = self.span.clone();
        let _g = span.enter();
        for n in 0..self.inits.len() {
            if let Some(b) = self.inits[n].ike.handle_timeout(now) {
                self.send_init(&b, now);
            }
        }
        for (peer, b) in self.responder.handle_timeout(now) {
            let dst = self
                .sas
                .iter()
                .find(|s| s.owner == Owner::Responder && s.peer == peer)
                .map_or(peer, |s| s.dst);
            self.send(dst, &b, true, now);
        }
        self.drain_events(entropy, now);
        if self.idle {
            return;
        }
        if self.next_initiate.is_some_and(|t| t <= now) && self.inits.is_empty() {
            if self.sas.is_empty() {
                self.initiate(entropy, now);
            } else {
                self.next_initiate = None;
            }
        }
        self.child_timers(entropy, now);
        self.ike_timers(entropy, now);
    }

    pub(super) fn child_timers(&mut self, entropy: &mut dyn Entropy, now: Instant) {
        let due: Vec<(IkeId, u32)> = self
            .children
            .iter()
            .filter(|c| c.delete_due && !c.deleting)
            .map(|c| (c.ike, c.inbound_spi))
            .collect();
        for (ike, spi) in due {
            if self.request(ike, Request::DeleteChild(spi), entropy, now)
                && let Some(c) = self.children.iter_mut().find(|c| c.inbound_spi == spi)
            {
                c.deleting = true;
            }
        }
        let mut rekey: Vec<(IkeId, u32)> = Vec::new();
        let (lifetime, bytes) = (self.s.child_lifetime, self.s.child_bytes);
        for c in self
            .children
            .iter_mut()
            .filter(|c| c.carries() && !c.rekeying)
        {
            let Some(sa) = self.sas.iter().find(|s| s.id == c.ike && !s.retiring) else {
                continue;
            };
            let by_time = now >= c.established + frac(lifetime, sa.we_initiated);
            let by_bytes = bytes.is_some_and(|b| {
                let limit = if sa.we_initiated { b / 10 * 9 } else { b };
                c.bytes() >= limit
            });
            if !(by_time || by_bytes) {
                continue;
            }
            // The IKE SA's responder leaves the rekey to its initiator for a while, so two
            // ends that reach the limit at once do not both rekey (a collision, 2.8.1).
            let since = *c.due_since.get_or_insert(now);
            if sa.we_initiated || now.saturating_duration_since(since) >= RESPONDER_REKEY_GRACE {
                rekey.push((c.ike, c.inbound_spi));
            }
        }
        for (ike, spi) in rekey {
            if self.request(ike, Request::RekeyChild(spi), entropy, now)
                && let Some(c) = self.children.iter_mut().find(|c| c.inbound_spi == spi)
            {
                c.rekeying = true;
            }
        }
    }

    pub(super) fn ike_timers(&mut self, entropy: &mut dyn Entropy, now: Instant) {
        // The IKE SA's lifetime nearly over: rekeyed in place (CREATE_CHILD_SA, RFC 7296
        // 1.3.2; its CHILD SAs move to the new SA), from either side and in every mode.
        let due = self
            .sas
            .iter()
            .find(|s| !s.retiring && !s.rekeying && now >= s.rekey_at)
            .map(|s| s.id);
        if let Some(id) = due
            && self.request(id, Request::RekeyIke, entropy, now)
            && let Some(sa) = self.sas.iter_mut().find(|s| s.id == id)
        {
            tracing::debug!("IKE SA lifetime nearly over: rekeying it");
            sa.rekeying = true;
        }
        // A retiring SA whose Delete could not go yet (a request outstanding), once another
        // SA carries the traffic.
        let carried = self.sas.iter().any(|s| !s.retiring);
        let undeleted: Vec<IkeId> = self
            .sas
            .iter()
            .filter(|s| s.retiring && !s.deleting && carried)
            .map(|s| s.id)
            .collect();
        for id in undeleted {
            self.delete_ike(id, entropy, now);
        }
        let Some(primary) = self.primary().map(|s| (s.id, s.dst)) else {
            return;
        };
        let quiet_since = self
            .last_dpd
            .map_or(self.last_heard, |d| d.max(self.last_heard));
        if now.saturating_duration_since(quiet_since) >= self.s.dpd
            && self.request(primary.0, Request::Dpd, entropy, now)
        {
            tracing::trace!("DPD sent");
            self.last_dpd = Some(now);
        }
        if now.saturating_duration_since(self.last_sent) >= KEEPALIVE_EVERY {
            self.last_sent = now;
            self.out.push_back((primary.1, KEEPALIVE.to_vec()));
        }
    }
}
