//! The sans-IO driver of one IPsec connection: its IKE SAs (the ones the gateway starts, an
//! [`Initiator`] each, and the ones the device starts, in the connection's [`Responder`]), its
//! CHILD SAs ([`Child`]) and the timers around them (retransmission, dead peer detection,
//! NAT-T keepalives, CHILD SA rekeys, the IKE SA's lifetime, re-initiation).
//!
//! It is fed IKE messages ([`Tunnel::handle_ike`]), ESP packets ([`Tunnel::open`]), inner
//! packets to send ([`Tunnel::seal`]) and time ([`Tunnel::tick`]); it queues datagrams
//! ([`Tunnel::poll_transmit`]). Randomness is the caller's.
//!
//! - Initiation (modes Default and InitiatorOnly): IKE_SA_INIT to the device's IKE address
//!   without the non-ESP marker; NAT-T is forced, so IKE_AUTH and everything after it go with
//!   the marker to the floated address ([`Settings::floated`]), ESP in UDP there too.
//! - Answers (modes Default and ResponderOnly): to the address the device's message came
//!   from, marked as it was; ESP to where the device's last marked IKE message came from.
//! - Two IKE SAs with the device at once, both sides having initiated: the one with the
//!   numerically lowest (SPIi, SPIr) stays, the other is deleted (deterministic on both ends).
//! - CHILD SA rekey at 90 % of its lifetime in seconds or bytes on the IKE SA's original
//!   initiator, 95 % on its responder (so two Isthmus gateways do not collide); the old SA
//!   keeps opening what arrives until it is deleted.
//! - IKE SA lifetime: at 90 % (95 % as responder) the gateway, if it initiates, establishes a
//!   new IKE SA and CHILD SA beside the old one and deletes the old one once the new one is up
//!   (make-before-break). A device's own IKE SA rekey is followed ([`crate::core::ike::exchange::IkeEvent::IkeRekeyed`]).
//! - DPD: an empty INFORMATIONAL after [`Settings::dpd`] without anything from the device;
//!   when its retransmissions go unanswered the SA is dead, and the gateway initiates again
//!   unless it only responds.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::core::esp::udp::frame_ike;
use crate::core::ike::exchange::{
    Counters as IkeCounters, Entropy, IkeError, Initiator, Responder,
};
use crate::core::ike::proposal::IkeSuite;
use crate::core::ike::wire::{ExchangeType, Header};

use super::child::{Child, EspDrop, IkeId};
use super::config::Settings;

/// NAT-T keepalives (RFC 3948 2.3) after this long without sending to the device.
pub const KEEPALIVE_EVERY: Duration = Duration::from_secs(20);
/// A failed initiation (refused, unanswered) is tried again after this.
pub const RETRY_AFTER: Duration = Duration::from_secs(10);
/// How long the responder of an IKE SA waits, once one of its CHILD SAs is due, for the
/// initiator's rekey before it rekeys itself.
pub const RESPONDER_REKEY_GRACE: Duration = Duration::from_secs(2);
/// Half-open IKE SAs of one connection before its responder asks for cookies.
const COOKIE_THRESHOLD: usize = 8;
/// How long a refusal of our key keeps the tunnel `down` / `key_mismatch` while it retries.
const KEY_FAILURE_HOLD: Duration = Duration::from_secs(180);

/// Who holds an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    Init(u32),
    Responder,
}

pub(super) struct Init {
    pub(super) id: u32,
    pub(super) ike: Box<Initiator>,
}

/// An established IKE SA.
pub(super) struct Sa {
    pub(super) id: IkeId,
    pub(super) owner: Owner,
    /// We are its original initiator (our SPI is SPIi).
    pub(super) we_initiated: bool,
    pub(super) suite: IkeSuite,
    pub(super) established: Instant,
    pub(super) rekey_at: Instant,
    /// Where its IKE requests and the ESP of its CHILD SAs go (with the marker).
    pub(super) dst: SocketAddr,
    /// The address its IKE_SA_INIT came from (the responder's key for it).
    pub(super) peer: SocketAddr,
    /// Being replaced (make-before-break) or the loser of a duplicate: deleted once another
    /// SA carries the traffic; its CHILD SAs carry nothing out.
    pub(super) retiring: bool,
    /// Our Delete of it is sent.
    pub(super) deleting: bool,
    /// Our rekey of it (CREATE_CHILD_SA) is outstanding.
    pub(super) rekeying: bool,
}

impl Sa {
    pub(super) fn ours(&self) -> u64 {
        if self.we_initiated {
            self.id.0
        } else {
            self.id.1
        }
    }
}

/// What the connection's tunnel is, for its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// A CHILD SA carries traffic.
    Up,
    Connecting,
    /// The device refused our key (AUTHENTICATION_FAILED), or we its.
    KeyMismatch,
    /// The device never answered, or stopped answering.
    NoAnswer,
    /// Nothing established, nothing under way.
    Down,
    /// Torn down after the S2S-2 idle time; comes back on traffic.
    Idle,
}

/// One IPsec connection's SAs and timers.
pub struct Tunnel {
    pub(super) s: Settings,
    pub(super) local: SocketAddr,
    pub(super) responder: Responder,
    pub(super) inits: Vec<Init>,
    pub(super) next_id: u32,
    pub(super) sas: Vec<Sa>,
    pub(super) children: Vec<Child>,
    pub(super) last_heard: Instant,
    pub(super) last_dpd: Option<Instant>,
    pub(super) last_sent: Instant,
    pub(super) next_initiate: Option<Instant>,
    pub(super) idle: bool,
    pub(super) rekeys: u64,
    pub(super) last_error: Option<(String, Instant)>,
    pub(super) key_failure: Option<Instant>,
    pub(super) timed_out: bool,
    /// Where the datagram being handled came from, and whether it was marked.
    pub(super) cur_src: Option<(SocketAddr, bool)>,
    pub(super) out: VecDeque<(SocketAddr, Vec<u8>)>,
    pub(super) scratch: Vec<u8>,
    /// The SPIs changed: the gateway's demultiplexing maps must be rebuilt.
    pub(super) dirty: bool,
    /// What the exchanges dropped since the gateway last took it ([`Tunnel::take_ike_drops`]).
    pub(super) ike_drops: IkeCounters,
    /// Names the tenant, gateway and connection on every log line of the tunnel's control
    /// path ([`Tunnel::handle_ike`], [`Tunnel::tick`], ...); see [`log_span`].
    pub(super) span: tracing::Span,
}

/// The span a connection's IPsec log lines are recorded in. At level ERROR so that it is
/// enabled whenever any of its lines is, whatever the filter.
pub fn log_span(tenant: &str, gateway: &str, connection: &str) -> tracing::Span {
    tracing::error_span!("ipsec", tenant = %tenant, gateway = %gateway, connection = %connection)
}

pub(super) fn frac(d: Duration, we_initiated: bool) -> Duration {
    if we_initiated {
        d.mul_f64(0.9)
    } else {
        d.mul_f64(0.95)
    }
}

fn sum(c: IkeCounters) -> u64 {
    c.malformed + c.unknown_spi + c.integrity_failed + c.replayed + c.out_of_window + c.unexpected
}

/// The drops (and cookies) counted in `after` and not yet in `before`, added to `into`.
fn add_drops(into: &mut IkeCounters, after: &IkeCounters, before: &IkeCounters) {
    let d = |a: u64, b: u64| a.saturating_sub(b);
    into.malformed += d(after.malformed, before.malformed);
    into.unknown_spi += d(after.unknown_spi, before.unknown_spi);
    into.integrity_failed += d(after.integrity_failed, before.integrity_failed);
    into.replayed += d(after.replayed, before.replayed);
    into.out_of_window += d(after.out_of_window, before.out_of_window);
    into.unexpected += d(after.unexpected, before.unexpected);
    into.cookies_sent += d(after.cookies_sent, before.cookies_sent);
    into.half_open_full += d(after.half_open_full, before.half_open_full);
}

/// The exchanges' counts, summed field by field (the drop kinds and cookies).
fn total(cs: &[IkeCounters]) -> IkeCounters {
    let mut t = IkeCounters::default();
    for c in cs {
        add_drops(&mut t, c, &IkeCounters::default());
    }
    t
}

impl Tunnel {
    /// A connection's tunnel; it initiates at the first [`Tunnel::tick`] if its mode says so.
    pub fn new(
        s: Settings,
        local: SocketAddr,
        span: tracing::Span,
        entropy: &mut dyn Entropy,
        now: Instant,
    ) -> Result<Self, IkeError> {
        let _g = span.enter();
        let responder = Responder::new(s.ike.clone(), COOKIE_THRESHOLD, entropy)?;
        let next_initiate = s.initiates().then_some(now);
        Ok(Self {
            s,
            local,
            responder,
            inits: Vec::new(),
            next_id: 1,
            sas: Vec::new(),
            children: Vec::new(),
            last_heard: now,
            last_dpd: None,
            last_sent: now,
            next_initiate,
            idle: false,
            rekeys: 0,
            last_error: None,
            key_failure: None,
            timed_out: false,
            cur_src: None,
            out: VecDeque::new(),
            scratch: Vec::new(),
            dirty: true,
            ike_drops: IkeCounters::default(),
            span: span.clone(),
        })
    }

    /// The next datagram to send: destination and UDP payload.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    /// Whether the SPIs changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// The inbound SPIs of the CHILD SAs (what the gateway demultiplexes ESP by).
    pub fn inbound_spis(&self) -> impl Iterator<Item = u32> + '_ {
        self.children.iter().map(|c| c.inbound_spi)
    }

    /// Our SPIs of the IKE SAs, established or being set up by us.
    pub fn ike_spis(&self) -> impl Iterator<Item = u64> + '_ {
        self.sas
            .iter()
            .map(Sa::ours)
            .chain(self.inits.iter().flat_map(|i| {
                // Every SA it holds (the old one of a rekey until deleted, the peer's new one):
                // both SPIs, as the I flag of a rekeyed SA may be either side's.
                let mut v = vec![i.ike.spi_i()];
                for (a, b) in i.ike.sas() {
                    v.extend([a, b]);
                }
                v
            }))
    }

    /// What the exchanges of this connection dropped or refused, by kind.
    pub fn ike_counters(&self) -> Vec<IkeCounters> {
        let mut v: Vec<IkeCounters> = self.inits.iter().map(|i| i.ike.counters()).collect();
        v.push(self.responder.counters());
        v
    }

    /// What this connection's exchanges dropped (and the IKE_SA_INITs answered with a cookie)
    /// since the last call: the gateway keeps the sums, which outlive the exchanges and the
    /// tunnel.
    pub fn take_ike_drops(&mut self) -> IkeCounters {
        std::mem::take(&mut self.ike_drops)
    }

    /// The established IKE SAs.
    pub fn ike_sa_count(&self) -> usize {
        self.sas.len()
    }

    pub(super) fn send(&mut self, dst: SocketAddr, msg: &[u8], marked: bool, now: Instant) {
        let bytes = if marked { frame_ike(msg) } else { msg.to_vec() };
        self.last_sent = now;
        self.out.push_back((dst, bytes));
    }

    /// A message of one of our initiators: IKE_SA_INIT unmarked to the device's IKE address,
    /// the rest marked to the floated one.
    pub(super) fn send_init(&mut self, msg: &[u8], now: Instant) {
        let sa_init =
            Header::peek(msg).is_ok_and(|(h, _, _)| h.exchange == ExchangeType::IKE_SA_INIT);
        if sa_init {
            self.send(self.s.device, msg, false, now);
        } else {
            self.send(self.s.floated(), msg, true, now);
        }
    }

    pub(super) fn initiate(&mut self, entropy: &mut dyn Entropy, now: Instant) {
        self.next_initiate = None;
        match Initiator::start(self.s.ike.clone(), self.local, self.s.device, entropy, now) {
            Ok((ike, first)) => {
                let id = self.next_id;
                self.next_id += 1;
                self.inits.push(Init {
                    id,
                    ike: Box::new(ike),
                });
                self.dirty = true;
                self.send_init(&first, now);
            }
            Err(e) => {
                tracing::warn!(error = %e, "IKE SA not initiated");
                self.next_initiate = Some(now + RETRY_AFTER);
            }
        }
    }

    /// Starts an IKE SA now if the mode allows and none is up or under way (a takeover of a
    /// redundant gateway, traffic to an idled-out tunnel).
    pub fn start_now(&mut self, entropy: &mut dyn Entropy, now: Instant) {
        let span = self.span.clone();
        let _g = span.enter();
        self.idle = false;
        if self.s.initiates() && self.sas.is_empty() && self.inits.is_empty() {
            self.initiate(entropy, now);
        }
    }

    /// An IKE message (after the non-ESP marker, if `marked`) from `src`.
    pub fn handle_ike(
        &mut self,
        src: SocketAddr,
        msg: &[u8],
        marked: bool,
        entropy: &mut dyn Entropy,
        now: Instant,
    ) {
        let span = self.span.clone();
        let _g = span.enter();
        let Ok((h, _, _)) = Header::peek(msg) else {
            // Truncated, or no IKEv2 header after the non-ESP marker.
            self.ike_drops.malformed += 1;
            tracing::trace!(%src, "IKE message malformed; dropped");
            return;
        };
        let owner = self
            .sas
            .iter()
            .find(|s| s.id == (h.spi_i, h.spi_r))
            .map(|s| s.owner)
            .or_else(|| {
                self.inits
                    .iter()
                    .find(|i| {
                        i.ike.sas().contains(&(h.spi_i, h.spi_r))
                            || (i.ike.spi_i() == h.spi_i && !h.flags.initiator)
                    })
                    .map(|i| Owner::Init(i.id))
            })
            .unwrap_or(Owner::Responder);
        let before_all = total(&self.ike_counters());
        let before: u64 = self.ike_counters().into_iter().map(sum).sum();
        self.cur_src = Some((src, marked));
        let result = match owner {
            Owner::Init(id) => match self.inits.iter_mut().find(|i| i.id == id) {
                Some(i) => i
                    .ike
                    .handle(msg, entropy, now)
                    .map(|r| r.map(|b| (b, None))),
                None => Ok(None),
            },
            Owner::Responder => {
                let new_sa = h.exchange == ExchangeType::IKE_SA_INIT && h.spi_r == 0;
                if new_sa && (!self.s.responds() || self.idle_refuses()) {
                    tracing::trace!(%src, "IKE_SA_INIT dropped: the connection only initiates");
                    Ok(None)
                } else {
                    self.responder
                        .handle(self.local, src, msg, entropy, now)
                        .map(|r| r.map(|b| (b, Some(src))))
                }
            }
        };
        match result {
            Ok(Some((b, None))) => self.send_init(&b, now),
            Ok(Some((b, Some(dst)))) => self.send(dst, &b, marked, now),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "IKE message not handled"),
        }
        // Before the events: they may drop an exchange, and its counts with it.
        let after_all = total(&self.ike_counters());
        add_drops(&mut self.ike_drops, &after_all, &before_all);
        let after: u64 = self.ike_counters().into_iter().map(sum).sum();
        if after == before {
            // Accepted: the device is alive, and (NAT-T) its address is where it sends from.
            self.last_heard = now;
            if marked
                && let Some(sa) = self.sas.iter_mut().find(|s| s.id == (h.spi_i, h.spi_r))
                && sa.owner == Owner::Responder
            {
                sa.dst = src;
            }
        }
        self.drain_events(entropy, now);
        self.cur_src = None;
    }

    /// An idle (S2S-2) connection still answers the device.
    pub(super) fn idle_refuses(&self) -> bool {
        false
    }

    /// The IKE SA that carries the traffic.
    pub(super) fn primary(&self) -> Option<&Sa> {
        self.sas
            .iter()
            .filter(|s| !s.retiring)
            .min_by_key(|s| s.id)
            .or_else(|| self.sas.first())
    }

    /// S2S-2: the connection was idle too long: its SAs are deleted, and it stays down until
    /// traffic wants it ([`Tunnel::start_now`]).
    pub fn idle_out(&mut self, entropy: &mut dyn Entropy, now: Instant) {
        let span = self.span.clone();
        let _g = span.enter();
        let ids: Vec<IkeId> = self.sas.iter().map(|s| s.id).collect();
        for id in ids {
            self.delete_ike(id, entropy, now);
        }
        self.sas.clear();
        self.children.clear();
        self.inits.clear();
        self.next_initiate = None;
        self.idle = true;
        self.dirty = true;
    }

    pub fn is_idle(&self) -> bool {
        self.idle
    }

    /// Traffic wants an idled-out tunnel: it initiates at the next tick (if its mode lets it;
    /// else it waits for the device).
    pub fn wake(&mut self, now: Instant) {
        self.idle = false;
        if self.s.initiates() {
            self.next_initiate = Some(now);
        }
    }

    /// Issue 16: the instance became the standby: every SA is dropped (a new active instance
    /// sets up its own); it initiates again once it is active (at its first tick then).
    pub fn reset(&mut self, now: Instant) {
        self.sas.clear();
        self.children.clear();
        self.inits.clear();
        self.idle = false;
        self.dirty = true;
        self.next_initiate = self.s.initiates().then_some(now);
    }

    /// Where the device really is for the tunnel: the address and port the IKE SA that
    /// carries traffic sends to (after the NAT-T float: the device's 4500, or the address its
    /// marked messages come from); `None` without an established IKE SA.
    pub fn device_endpoint(&self) -> Option<SocketAddr> {
        self.primary().map(|s| s.dst)
    }

    /// When the IKE SA that carries traffic was established.
    pub fn established_at(&self) -> Option<Instant> {
        self.primary().map(|s| s.established)
    }

    /// ESP: opens an ESP packet in place (the UDP payload); the inner packet's range.
    pub fn open(
        &mut self,
        packet: &mut [u8],
        now: Instant,
    ) -> Result<std::ops::Range<usize>, EspDrop> {
        let spi = crate::core::esp::spi_of(packet).ok_or(EspDrop::Malformed)?;
        let c = self
            .children
            .iter_mut()
            .find(|c| c.inbound_spi == spi)
            .ok_or(EspDrop::UnknownSpi)?;
        let r = c.open(packet)?;
        self.last_heard = now;
        Ok(r)
    }

    /// ESP: seals an inner packet on the CHILD SA that carries traffic; the destination and
    /// the UDP payload. `None`: no CHILD SA (the tunnel is not up).
    pub fn seal(&mut self, inner: &[u8], now: Instant) -> Option<(SocketAddr, &[u8])> {
        // Hot path: no allocation; a connection has one or two SAs.
        let sas = &self.sas;
        let carrier = |c: &Child| {
            sas.iter()
                .find(|s| s.id == c.ike && !s.retiring)
                .map(|s| s.dst)
        };
        let (c, dst) = self
            .children
            .iter_mut()
            .rev()
            .filter(|c| c.carries())
            .find_map(|c| carrier(c).map(|d| (c, d)))?;
        if let Err(e) = c.seal(inner, &mut self.scratch) {
            self.span
                .in_scope(|| tracing::debug!(error = %e, "ESP packet not sealed"));
            return None;
        }
        self.last_sent = now;
        Some((dst, &self.scratch))
    }

    /// The tunnel's state.
    pub fn link(&self, now: Instant) -> Link {
        if self.idle {
            return Link::Idle;
        }
        if self.children.iter().any(Child::carries) {
            return Link::Up;
        }
        if self
            .key_failure
            .is_some_and(|t| now.saturating_duration_since(t) < KEY_FAILURE_HOLD)
        {
            return Link::KeyMismatch;
        }
        if !self.inits.is_empty() || self.responder.half_open() > 0 || !self.sas.is_empty() {
            return Link::Connecting;
        }
        if self.timed_out {
            return Link::NoAnswer;
        }
        Link::Down
    }

    /// The established IKE SA that carries traffic: SPIs, proposal, whether we initiated it,
    /// when it was established and when it is due for renewal.
    pub(super) fn primary_info(&self) -> Option<(IkeId, IkeSuite, bool, Instant, Instant)> {
        self.primary()
            .map(|s| (s.id, s.suite, s.we_initiated, s.established, s.rekey_at))
    }

    /// Whether an IKE exchange of ours or the device's is under way.
    pub(super) fn connecting(&self) -> bool {
        self.inits.iter().any(|i| !i.ike.is_established()) || self.responder.half_open() > 0
    }

    /// When a CHILD SA is due for rekeying.
    pub(super) fn child_rekey_at(&self, c: &Child) -> Instant {
        let we = self
            .sas
            .iter()
            .find(|s| s.id == c.ike)
            .is_some_and(|s| s.we_initiated);
        c.established + frac(self.s.child_lifetime, we)
    }
}
