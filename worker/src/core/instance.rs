//! Issue 16: the failover of redundant gateways wired into the data plane.
//!
//! A gateway whose desired state carries an `instance` block holds a [`Failover`] (created on
//! the first apply, updated by later ones). The role the data plane acts on follows the
//! failover's: while the instance is the standby, datagrams on the gateway's port and packets
//! from the TUN device for it are dropped and counted (`standby_dropped`: nothing is answered,
//! not even with a cookie reply), and no tunnel timers run for its peers (no keepalives, no
//! handshakes). When it becomes active the core initiates a handshake at once to every peer
//! whose endpoint it knows (sites and remote gateways, and point-to-site clients at the
//! `last_endpoint` the server reported), so WireGuard's roaming moves every peer to this
//! instance; when it becomes the standby it drops the gateway's sessions (fresh tunnels, same
//! keys), so the old active falls silent. Heartbeats come in through
//! [`Core::handle_heartbeat`] and go out through [`Core::poll_heartbeat`]; the failover timers
//! run on every [`Core::handle_timeout`] (not only on ticks: a takeover happens at exactly the
//! configured silence).
//!
//! Item 6, active-active gateways: a peer flagged `on_every_instance` (a site of an
//! active-active gateway, whose device runs one tunnel to each instance) is served by the
//! standby too: its datagrams are found by the usual demultiplexing and then served (only
//! unflagged peers' are dropped), its timers run, what it sends goes into the VNet, and a role
//! change neither drops its session nor initiates to it. Traffic from the VNet (the TUN side)
//! and transit into unflagged tunnels stay with the active instance.

use std::net::SocketAddr;
use std::time::Instant;

use isthmus_shared::desired::GatewayDesired;
use isthmus_shared::instances::InstanceStatus;
use isthmus_shared::model::QualifiedName;

use super::failover::{
    BootId, Failover, FailoverError, FailoverEvent, HeartbeatTransmit, TakeoverReason,
    claimed_gateway,
};
use super::peer::{Gateway, Takeover};
use super::state::Liveness;
use super::types::Event;
use super::{Core, Outputs};

impl Core {
    /// The per-run random boot id of this worker's instances (from the shell: the core has no
    /// randomness). Set it before the first [`Core::apply`]; each failover the core creates
    /// gets a distinct id derived from it.
    pub fn set_boot_id(&mut self, boot: BootId) {
        self.boot = boot;
    }

    /// A boot id for a new failover: the worker's, with a counter mixed into its last bytes,
    /// so a gateway removed and added again in one run starts a run its partner accepts.
    fn next_boot(&mut self) -> BootId {
        let mut b = self.boot.0;
        let n = self.boot_runs;
        self.boot_runs = self.boot_runs.wrapping_add(1);
        for (x, y) in b[8..].iter_mut().zip(n.to_be_bytes()) {
            *x ^= y;
        }
        BootId(b)
    }

    /// Creates, updates or removes the failover of `gw` for its desired state `g`, and starts
    /// or cancels a planned handover. The role change it causes is acted on by
    /// [`Core::settle`].
    /// `fresh`: the gateway is new on this worker (not serving yet), so an active instance
    /// first waits for its partner (`Gateway::probation_until`); a gateway already serving
    /// alone that becomes redundant keeps serving.
    pub(super) fn apply_instance(
        &mut self,
        gw: &mut Gateway,
        g: &GatewayDesired,
        fresh: bool,
        now: Instant,
    ) -> Result<(), FailoverError> {
        let Some(d) = &g.instance else {
            gw.probation_until = None;
            if gw.failover.take().is_some() {
                tracing::info!(tenant = %gw.key.tenant, gateway = %gw.key.name, "the gateway is no longer redundant: this worker runs its only instance");
            }
            gw.handover_wanted = false;
            return Ok(());
        };
        d.check()?;
        let replace = match gw.failover.as_mut() {
            Some(f) => match f.apply(d, now) {
                Ok(()) => false,
                Err(FailoverError::InstanceChanged { .. }) => true,
                Err(e) => return Err(e),
            },
            None => true,
        };
        if replace {
            let boot = self.next_boot();
            let f = Failover::new(gw.key.clone(), d, boot, now)?;
            gw.probation_until = (fresh && f.is_active())
                .then(|| now.checked_add(d.interval()))
                .flatten();
            gw.failover = Some(f);
        }
        if let Some(f) = gw.failover.as_mut() {
            // Edge-triggered: a handover starts when the flag appears, so two draining
            // workers never hand a gateway back and forth.
            if d.handover && !gw.handover_wanted && f.is_active() {
                f.start_handover(now)?;
            } else if !d.handover && f.handover_pending() {
                tracing::info!(tenant = %gw.key.tenant, gateway = %gw.key.name, instance = f.instance(), "handover cancelled (the worker is no longer draining)");
                f.cancel_handover();
            }
        }
        gw.handover_wanted = d.handover;
        Ok(())
    }

    /// A datagram from `src` on the worker's heartbeat socket: handed to the instance of the
    /// gateway it names (whose key verifies it); one naming no gateway with an instance here,
    /// or no heartbeat at all, is counted (`heartbeats_unmatched`).
    pub fn handle_heartbeat(&mut self, src: SocketAddr, datagram: &[u8], now: Instant) {
        let key = match claimed_gateway(datagram) {
            Ok((tenant, name)) => QualifiedName::new(tenant, name),
            Err(e) => {
                self.counters.heartbeats_unmatched += 1;
                tracing::trace!(%src, error = %e, "not a heartbeat; dropped");
                return;
            }
        };
        let Some(f) = self
            .gateways
            .get_mut(&key)
            .and_then(|g| g.failover.as_mut())
        else {
            self.counters.heartbeats_unmatched += 1;
            tracing::trace!(%src, "heartbeat for a gateway with no instance here; dropped");
            return;
        };
        // A refused heartbeat changed nothing and is counted by the instance.
        let _ = f.handle_heartbeat(datagram, now);
        let Core {
            gateways,
            out,
            buf,
            heartbeats,
            ..
        } = self;
        if let Some(gw) = gateways.get_mut(&key) {
            settle_gateway(gw, now, buf, out, heartbeats);
        }
    }

    /// The next heartbeat to send from the worker's heartbeat socket.
    pub fn poll_heartbeat(&mut self) -> Option<HeartbeatTransmit> {
        self.heartbeats.pop_front()
    }

    /// The status of this worker's instance of `gateway` (`None`: not redundant).
    pub fn instance_status(&self, gateway: &QualifiedName, now: Instant) -> Option<InstanceStatus> {
        self.gateways
            .get(gateway)?
            .failover
            .as_ref()
            .map(|f| f.status(now))
    }

    /// The gateways whose instance on this worker is the standby: the shell holds neither
    /// their VNet-side address nor their routes.
    pub fn standby_gateways(&self) -> std::collections::BTreeSet<QualifiedName> {
        self.redundant
            .iter()
            .filter(|k| self.gateways.get(*k).is_some_and(Gateway::is_standby))
            .cloned()
            .collect()
    }

    /// Runs the failover timers due at `now`.
    pub(super) fn failover_timers(&mut self, now: Instant) {
        let Core {
            gateways,
            redundant,
            out,
            buf,
            heartbeats,
            ..
        } = self;
        for key in redundant.iter() {
            let Some(gw) = gateways.get_mut(key) else {
                continue;
            };
            if let Some(f) = gw.failover.as_mut()
                && now >= f.poll_timeout()
            {
                f.handle_timeout(now);
            }
            if gw.probation_until.is_some_and(|t| now >= t) {
                gw.probation_until = None;
            }
            settle_gateway(gw, now, buf, out, heartbeats);
            retry_takeovers(gw, now, buf, out);
        }
    }

    /// The earliest failover deadline (a heartbeat to send, a standby's takeover).
    pub(super) fn failover_deadline(&self) -> Option<Instant> {
        self.redundant
            .iter()
            .filter_map(|k| self.gateways.get(k))
            .filter_map(|g| {
                let f = g.failover.as_ref()?.poll_timeout();
                let f = g.probation_until.map_or(f, |p| p.min(f));
                Some(takeover_deadline(g).map_or(f, |t| t.min(f)))
            })
            .min()
    }

    /// Acts on every gateway's role changes and collects its heartbeats.
    pub(super) fn settle(&mut self, now: Instant) {
        let Core {
            gateways,
            out,
            buf,
            heartbeats,
            ..
        } = self;
        for gw in gateways.values_mut() {
            settle_gateway(gw, now, buf, out, heartbeats);
        }
    }
}

/// The failover's events become core events, its heartbeats go to the queue, and the data
/// plane follows its role: [`activate`] or [`deactivate`] when it differs from the role the
/// gateway last acted on.
fn settle_gateway(
    gw: &mut Gateway,
    now: Instant,
    buf: &mut [u8],
    out: &mut Outputs,
    heartbeats: &mut std::collections::VecDeque<HeartbeatTransmit>,
) {
    let mut announced = false;
    // Probation ends once the partner was heard and this instance is still active (it ranks
    // above the partner), or when it steps down.
    if gw.probation_until.is_some()
        && gw
            .failover
            .as_ref()
            .is_none_or(|f| f.accepted() > 0 || !f.is_active())
    {
        gw.probation_until = None;
    }
    if let Some(f) = gw.failover.as_mut() {
        while let Some(t) = f.poll_transmit() {
            heartbeats.push_back(t);
        }
        let instance = f.instance();
        while let Some(e) = f.poll_event() {
            announced = true;
            out.events.push_back(match e {
                FailoverEvent::TookOver {
                    gateway,
                    term,
                    reason,
                } => Event::InstanceActive {
                    gateway,
                    instance,
                    term,
                    reason,
                },
                FailoverEvent::SteppedDown {
                    gateway,
                    term,
                    reason,
                } => Event::InstanceStandby {
                    gateway,
                    instance,
                    term,
                    reason,
                },
            });
        }
    }
    let active = !gw.is_standby();
    if active == gw.acted_active {
        return;
    }
    gw.acted_active = active;
    if active {
        activate(gw, now, buf, out);
    } else {
        deactivate(gw, now);
    }
    // A role set without an event of the failover (a new failover replaced the old one).
    if !announced && let Some(f) = gw.failover.as_ref() {
        out.events.push_back(if active {
            Event::InstanceActive {
                gateway: gw.key.clone(),
                instance: f.instance(),
                term: f.term(),
                reason: TakeoverReason::Server,
            }
        } else {
            Event::InstanceStandby {
                gateway: gw.key.clone(),
                instance: f.instance(),
                term: f.term(),
                reason: super::failover::StepDownReason::Server,
            }
        });
    }
}

/// The instance became active: a handshake initiation at once to every peer whose endpoint is
/// known (a point-to-site client's: the `last_endpoint` the active instance reported, else
/// the one this instance last heard), so each peer roams to this instance.
fn activate(gw: &mut Gateway, now: Instant, buf: &mut [u8], out: &mut Outputs) {
    let port = gw.listen_port;
    let ids: Vec<u32> = gw.peers.keys().copied().collect();
    for id in ids {
        let Some(peer) = gw.peers.get(&id) else {
            continue;
        };
        // Item 6: a tunnel on every instance is up already; nothing to move.
        if peer.on_every_instance {
            continue;
        }
        // Issue 17: an IPsec tunnel initiates at its next tick (its SAs were dropped).
        if peer.ipsec.is_some() {
            continue;
        }
        let roaming = peer.configured_endpoint.is_none();
        let dst = if roaming {
            peer.last_endpoint.or(peer.endpoint)
        } else {
            peer.endpoint
        };
        let Some(dst) = dst else {
            continue;
        };
        let fresh = peer
            .tunn
            .is_none()
            .then(|| gw.new_tunn(peer.public_key, peer.psk, peer.keepalive, peer.id));
        let Some(peer) = gw.peers.get_mut(&id) else {
            continue;
        };
        if roaming && peer.endpoint != Some(dst) {
            if let Some(old) = peer.endpoint
                && gw.by_endpoint.get(&old) == Some(&id)
            {
                gw.by_endpoint.remove(&old);
            }
            gw.by_endpoint.insert(dst, id);
            peer.endpoint = Some(dst);
        }
        if let Some(t) = fresh {
            peer.tunn = Some(t);
            peer.idled = false;
        }
        peer.last_traffic = now;
        // Forced: a handshake this instance began before (an apply while the role was still
        // open) stays "in progress" in boringtun while no timers run, and an unforced
        // initiation would then wait for the retry, 5 s later.
        if peer.initiate(port, dst, now, buf, out) {
            peer.takeover = Some(Takeover::new(now));
        }
        peer.refresh(&gw.key, gw.peer_silence, now, out);
    }
}

/// Resends the takeover handshakes still unanswered when due ([`Takeover`]); a handshake
/// completed since the takeover ends it.
fn retry_takeovers(gw: &mut Gateway, now: Instant, buf: &mut [u8], out: &mut Outputs) {
    if gw.is_standby() {
        return;
    }
    let port = gw.listen_port;
    for peer in gw.peers.values_mut() {
        let Some(t) = peer.takeover else {
            continue;
        };
        if peer.last_handshake.is_some_and(|h| h >= t.since) || t.tries >= Takeover::TRIES {
            peer.takeover = None;
            continue;
        }
        if now < t.next {
            continue;
        }
        let Some(dst) = peer.endpoint else {
            peer.takeover = None;
            continue;
        };
        if peer.initiate(port, dst, now, buf, out) {
            tracing::trace!(gateway = %gw.key, connection = %peer.name, tries = t.tries + 1,
                "takeover handshake unanswered: sent again");
        }
        let tries = t.tries + 1;
        peer.takeover = Some(Takeover {
            since: t.since,
            next: now + Takeover::FIRST_RETRY * 2u32.pow(u32::from(tries)),
            tries,
        });
    }
}

/// The earliest takeover resend due on `gw`.
fn takeover_deadline(gw: &Gateway) -> Option<Instant> {
    if gw.is_standby() {
        return None;
    }
    gw.peers
        .values()
        .filter_map(|p| p.takeover.map(|t| t.next))
        .min()
}

/// The instance became the standby: every session is dropped (peers with an endpoint get a
/// fresh tunnel with the same keys, roaming clients none until this instance is active and
/// hears them again), so nothing of the old sessions is sent or accepted here.
fn deactivate(gw: &mut Gateway, now: Instant) {
    let ids: Vec<u32> = gw.peers.keys().copied().collect();
    for id in ids {
        let Some(peer) = gw.peers.get(&id) else {
            continue;
        };
        // Item 6: a tunnel on every instance keeps its session on the standby.
        if peer.on_every_instance {
            continue;
        }
        if peer.ipsec.is_some() {
            // Issue 17: the standby keeps no IPsec SA; it initiates again once active.
            if let Some(peer) = gw.peers.get_mut(&id)
                && let Some(t) = peer.ipsec.as_mut()
            {
                t.reset(now);
                peer.live = Liveness::new(now);
            }
            continue;
        }
        let fresh = peer
            .configured_endpoint
            .is_some()
            .then(|| gw.new_tunn(peer.public_key, peer.psk, peer.keepalive, peer.id));
        if let Some(peer) = gw.peers.get_mut(&id) {
            peer.tunn = fresh;
            peer.takeover = None;
            peer.idled = false;
            peer.last_traffic = now;
            peer.live = Liveness::new(now);
        }
    }
}
