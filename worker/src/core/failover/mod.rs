//! Issue #16: the failover state machine of one instance of a redundant gateway, sans-IO.
//!
//! # Design
//!
//! A redundant gateway runs as two instances, index 0 and 1, on different workers. The server
//! designates the initially active one and a `term` (u64, server-issued, increased on every
//! placement change) in each instance's desired state
//! ([`isthmus_shared::instances::InstanceDesired`]). Each instance is [`InstanceRole::Active`]
//! or [`InstanceRole::Standby`], and every instance sends its partner a heartbeat every
//! `interval` (default 200 ms), whatever its role: UDP, worker to worker, carrying the gateway,
//! the sender's index, its term and role, a per-run random boot id (supplied by the caller: the
//! core has no randomness) and a sequence number, authenticated with HMAC-SHA256 (ring) under a
//! 32-byte key the server hands both instances ([`wire`]). Untrusted bytes are parsed into errors,
//! never panics; a malformed, forged (bad MAC), replayed, reflected (claims to be from this
//! instance) or other gateway's heartbeat changes nothing and is counted
//! ([`HeartbeatRejects`]).
//!
//! Freshness without clocks: within one run (boot id) of the partner, sequence numbers must
//! increase. Random boot ids have no order, so each heartbeat also echoes the (boot id, sequence
//! number) of the latest heartbeat its sender received; a heartbeat from a boot id other than
//! the partner's current one counts only if it echoes this instance's own current boot id with a
//! sequence number above every echo the current one sent. A restarted partner hears this
//! instance and echoes ever newer sequence numbers, so it is accepted within one round trip; an
//! earlier run's heartbeats (delayed, or replayed by an attacker) echo older sequence numbers
//! (`replayed`), or another run of this instance, or nothing (`unconfirmed`), and are refused.
//! Nothing is banned for ever, so a late datagram can never lock the live partner out. A heartbeat that does not count is answered soon (at most every quarter
//! interval), so that a restarted partner learns the echo it needs.
//!
//! Rules, applied by both instances:
//! - **Takeover.** A standby that hears nothing valid from an active partner for the detection
//!   time (`misses` × `interval`, default 5 × 200 ms = 1 s: four lost heartbeats in a row are
//!   tolerated, a stall of the worker's thread under a second does not cause a takeover, and 2 s
//!   of the 3 s budget stay for the handshakes and routes) becomes active with term =
//!   the highest term it has seen + 1 and emits [`FailoverEvent::TookOver`]; the shell then
//!   initiates a handshake to every known peer, installs the VNet-side routes and reports to the
//!   server. The silence is measured from the last such heartbeat, or from when the instance
//!   started or became standby (so a standby whose partner never appears takes over too). Two
//!   standbys hearing each other do not wait for each other forever: the standby with the lower
//!   index ignores the other (and takes over after the detection time), the higher one defers
//!   to it.
//! - **Return (the term rule).** An active instance that receives a valid heartbeat from an
//!   active partner whose (term, instance) ranks above its own steps down to standby and emits
//!   [`FailoverEvent::SteppedDown`]. Higher terms rank above lower ones; on equal terms the
//!   *lower* index ranks above (instance 0 is the server's default choice, so a tie settles
//!   on it, and both instances compute the same answer without talking). A takeover always
//!   claims a term above every term the instance has seen, so when an old active comes back
//!   (restarted with the server's stale term, or after a partition) it hears the newer term and
//!   steps down: once heartbeats flow both ways for one detection time, exactly one instance is
//!   active.
//! - **The server's word.** A desired state whose term is above this instance's own term and at
//!   least every term it has seen sets its role and term ([`Failover::apply`]), so the server
//!   overrides the instances whenever it is reachable; it must issue terms above every term a
//!   worker reported (a stale term is ignored, and the instances keep their own decision).
//! - **Planned handover (drain).** The active instance sets the handover flag in its heartbeats
//!   ([`Failover::start_handover`], sent at once); a standby that receives it becomes active at
//!   once (term + 1) and acknowledges in its own heartbeat, sent at once; the old active steps
//!   down on that heartbeat (the term rule), so the gap is one heartbeat round trip.
//!
//! Split brain is not impossible but bounded and harmless: only while the two workers cannot
//! reach each other (while the sites can) may both be active, since a standby cannot tell a dead
//! partner from an unreachable one; each answers the peers that reach it, a WireGuard peer talks
//! to whichever instance it last completed a handshake with, and as soon as heartbeats pass
//! again (or the server's higher term arrives) exactly one stays active.
//!
//! Time is passed in (`now`, monotonic): the heartbeats carry no timestamps and the state
//! machine never compares times across hosts, so a wall-clock jump on either worker cannot cause
//! a takeover. A `now` earlier than one already seen never moves a deadline backwards.

pub mod wire;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use isthmus_shared::instances::{HeartbeatRejects, InstanceDesired, InstanceRole, InstanceStatus};
use isthmus_shared::model::QualifiedName;
use ring::hmac;

pub use self::wire::{BootId, Heartbeat, WireError};

/// The shortest time between two heartbeats sent early (answers, not role changes): a quarter
/// of the interval.
const PROMPT_DIVISOR: u32 = 4;
/// Heartbeats queued for the shell at most (the oldest are dropped: only the newest matters).
const MAX_QUEUED: usize = 8;

/// A heartbeat to send from the worker's heartbeat socket to the partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatTransmit {
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
}

/// Why an instance became active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeoverReason {
    /// The active partner was silent for the detection time.
    Silence,
    /// The active partner asked for a planned handover.
    Handover,
    /// The server's desired state made it active.
    Server,
}

/// Why an instance stopped being active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepDownReason {
    /// The partner is active under a (term, instance) that ranks above this instance's.
    HigherTerm,
    /// The partner acknowledged this instance's handover.
    Handover,
    /// The server's desired state made it standby.
    Server,
}

/// What the shell must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailoverEvent {
    /// This instance is now active under `term`: handshake to every known peer, install the
    /// VNet-side routes and address, report to the server.
    TookOver {
        gateway: QualifiedName,
        term: u64,
        reason: TakeoverReason,
    },
    /// This instance is now standby; `term` is the term of the instance that is active now.
    SteppedDown {
        gateway: QualifiedName,
        term: u64,
        reason: StepDownReason,
    },
}

/// Why a heartbeat changed nothing (each is counted in [`HeartbeatRejects`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatError {
    #[error("malformed heartbeat: {0}")]
    Malformed(WireError),
    #[error("heartbeat of another gateway")]
    OtherGateway,
    #[error("heartbeat MAC does not verify")]
    Forged,
    #[error("replayed heartbeat")]
    Replayed,
    #[error("heartbeat of a partner run that has not echoed this run yet")]
    Unconfirmed,
    #[error("heartbeat claims to come from this instance")]
    Reflected,
}

/// Why a desired state or a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailoverError {
    #[error(transparent)]
    Desired(#[from] isthmus_shared::instances::InstanceError),
    #[error("the gateway's name cannot be carried in a heartbeat: {0}")]
    Name(WireError),
    #[error("the desired state is for instance {desired}, this is instance {running}")]
    InstanceChanged { running: u8, desired: u8 },
    #[error("only the active instance can hand over")]
    NotActive,
}

/// The failover state of one instance of one gateway.
pub struct Failover {
    gateway: QualifiedName,
    instance: u8,
    partner: SocketAddr,
    key: hmac::Key,
    interval: Duration,
    detection: Duration,
    role: InstanceRole,
    /// The term this instance holds its role under (a standby: the highest it has seen).
    term: u64,
    /// The highest term seen anywhere: the server's, the partner's, its own.
    highest_term: u64,
    boot: BootId,
    seq: u64,
    /// Since when the standby has heard no active partner: the detection timer's base.
    silent_since: Instant,
    /// The last valid heartbeat of the partner, whatever its role.
    last_heard: Option<Instant>,
    next_send: Instant,
    last_sent: Option<Instant>,
    /// The partner's current run.
    partner_run: Option<PartnerRun>,
    /// What this instance's heartbeats echo: the latest authentic heartbeat of the partner.
    echo: Option<(BootId, u64)>,
    /// Active and draining: heartbeats ask the partner to take over.
    handover: bool,
    /// Became active by a handover: heartbeats acknowledge it until the partner is standby.
    ack: bool,
    accepted: u64,
    rejects: HeartbeatRejects,
    events: VecDeque<FailoverEvent>,
    transmits: VecDeque<HeartbeatTransmit>,
}

impl std::fmt::Debug for Failover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Failover")
            .field("gateway", &self.gateway)
            .field("instance", &self.instance)
            .field("role", &self.role)
            .field("term", &self.term)
            .field("highest_term", &self.highest_term)
            .field("boot", &self.boot)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Failover {
    /// An instance as the server's desired state describes it, starting at `now` with a fresh
    /// `boot` id (random, from the caller). Its first heartbeat is due at once.
    pub fn new(
        gateway: QualifiedName,
        desired: &InstanceDesired,
        boot: BootId,
        now: Instant,
    ) -> Result<Self, FailoverError> {
        desired.check()?;
        let probe = Heartbeat {
            gateway: gateway.clone(),
            instance: desired.instance,
            term: 0,
            role: InstanceRole::Standby,
            boot,
            seq: 0,
            handover: false,
            handover_ack: false,
            echo: None,
        };
        let key = wire::mac_key(&desired.key);
        wire::encode(&probe, &key).map_err(FailoverError::Name)?;
        tracing::info!(
            gateway = %gateway,
            instance = desired.instance,
            role = %desired.role(),
            term = desired.term,
            partner = %desired.partner,
            "failover instance started"
        );
        Ok(Self {
            gateway,
            instance: desired.instance,
            partner: desired.partner,
            key,
            interval: desired.interval(),
            detection: desired.detection(),
            role: desired.role(),
            term: desired.term,
            highest_term: desired.term,
            boot,
            seq: 0,
            silent_since: now,
            last_heard: None,
            next_send: now,
            last_sent: None,
            partner_run: None,
            echo: None,
            handover: false,
            ack: false,
            accepted: 0,
            rejects: HeartbeatRejects::default(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
        })
    }

    /// The gateway.
    pub fn gateway(&self) -> &QualifiedName {
        &self.gateway
    }

    /// This instance's index.
    pub fn instance(&self) -> u8 {
        self.instance
    }

    /// The current role.
    pub fn role(&self) -> InstanceRole {
        self.role
    }

    /// Whether this instance is active (answers and initiates handshakes, carries traffic).
    pub fn is_active(&self) -> bool {
        self.role == InstanceRole::Active
    }

    /// The term this instance holds its role under.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// The highest term seen.
    pub fn highest_term(&self) -> u64 {
        self.highest_term
    }

    /// Whether a handover asked for by [`Self::start_handover`] is still pending.
    pub fn handover_pending(&self) -> bool {
        self.handover
    }

    /// The detection time (`misses` × `interval`).
    pub fn detection(&self) -> Duration {
        self.detection
    }

    /// Refused heartbeats so far.
    pub fn rejects(&self) -> HeartbeatRejects {
        self.rejects
    }

    /// Heartbeats accepted from the partner so far.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Whether a valid heartbeat of the partner arrived within the detection time before `now`.
    pub fn partner_alive(&self, now: Instant) -> bool {
        self.last_heard
            .is_some_and(|t| now.saturating_duration_since(t) < self.detection)
    }

    /// What the status report carries for this instance.
    pub fn status(&self, now: Instant) -> InstanceStatus {
        InstanceStatus {
            instance: self.instance,
            role: self.role,
            term: self.term,
            partner_alive: self.partner_alive(now),
            heartbeats_accepted: self.accepted,
            rejected: self.rejects,
        }
    }

    /// The next instant [`Self::handle_timeout`] has work: the next heartbeat, or a standby's
    /// takeover deadline.
    pub fn poll_timeout(&self) -> Instant {
        match (self.role, self.deadline()) {
            (InstanceRole::Standby, Some(d)) => d.min(self.next_send),
            _ => self.next_send,
        }
    }

    /// The standby's takeover deadline (`None` if it lies beyond what `Instant` represents).
    fn deadline(&self) -> Option<Instant> {
        self.silent_since.checked_add(self.detection)
    }

    /// Runs the timers: a standby silent for the detection time takes over; a heartbeat is sent
    /// when due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.role == InstanceRole::Standby && self.deadline().is_some_and(|d| now >= d) {
            tracing::warn!(
                gateway = %self.gateway,
                instance = self.instance,
                silent_ms = u64::try_from(now.saturating_duration_since(self.silent_since).as_millis()).unwrap_or(u64::MAX),
                "no heartbeat from an active partner for the detection time"
            );
            self.take_over(
                self.highest_term.saturating_add(1),
                TakeoverReason::Silence,
                now,
            );
        }
        if now >= self.next_send {
            self.send(now);
        }
    }

    /// A datagram that arrived on the heartbeat socket for this gateway. An `Err` changed
    /// nothing and is counted.
    pub fn handle_heartbeat(&mut self, bytes: &[u8], now: Instant) -> Result<(), HeartbeatError> {
        let hb = match self.check(bytes, now) {
            Ok(hb) => hb,
            Err(e) => {
                tracing::trace!(gateway = %self.gateway, instance = self.instance, error = %e, "heartbeat refused");
                return Err(e);
            }
        };
        self.accepted = self.accepted.saturating_add(1);
        self.last_heard = Some(self.last_heard.map_or(now, |t| t.max(now)));
        tracing::trace!(gateway = %self.gateway, instance = self.instance, from = hb.instance, term = hb.term, role = %hb.role, seq = hb.seq, "heartbeat");
        if hb.term > self.highest_term {
            self.highest_term = hb.term;
        }
        match (self.role, hb.role) {
            (InstanceRole::Standby, InstanceRole::Active) => {
                self.term = self.highest_term;
                if hb.handover {
                    tracing::info!(gateway = %self.gateway, instance = self.instance, "the active partner hands over");
                    self.take_over(
                        self.highest_term.saturating_add(1),
                        TakeoverReason::Handover,
                        now,
                    );
                } else {
                    self.heard_active(now);
                }
            }
            (InstanceRole::Standby, InstanceRole::Standby) => {
                self.term = self.highest_term;
                // Two standbys: the lower index takes over after the detection time, the
                // higher one waits for it.
                if hb.instance < self.instance {
                    self.heard_active(now);
                }
            }
            (InstanceRole::Active, InstanceRole::Active) => {
                if ranks_above((hb.term, hb.instance), (self.term, self.instance)) {
                    let reason = if hb.handover_ack && self.handover {
                        StepDownReason::Handover
                    } else {
                        StepDownReason::HigherTerm
                    };
                    self.step_down(hb.term, reason, now);
                } else {
                    // The partner must step down: tell it soon rather than at the next tick.
                    self.send_soon(now);
                }
            }
            (InstanceRole::Active, InstanceRole::Standby) => {
                self.ack = false;
            }
        }
        Ok(())
    }

    /// Structure, gateway, MAC, origin and freshness; records the partner's run and the echo.
    fn check(&mut self, bytes: &[u8], now: Instant) -> Result<Heartbeat, HeartbeatError> {
        let r = &mut self.rejects;
        let unverified = wire::parse(bytes).map_err(|e| {
            r.malformed = r.malformed.saturating_add(1);
            HeartbeatError::Malformed(e)
        })?;
        if !unverified.is_for(&self.gateway) {
            r.other_gateway = r.other_gateway.saturating_add(1);
            return Err(HeartbeatError::OtherGateway);
        }
        let hb = unverified.verify(&self.key).map_err(|_| {
            r.forged = r.forged.saturating_add(1);
            HeartbeatError::Forged
        })?;
        if hb.instance == self.instance {
            r.reflected = r.reflected.saturating_add(1);
            return Err(HeartbeatError::Reflected);
        }
        // The sequence number of ours that the heartbeat echoes, if it echoes this run.
        let echoed = match hb.echo {
            Some((boot, seq)) if boot == self.boot => seq,
            _ => 0,
        };
        let refused = match self.partner_run.as_mut() {
            Some(run) if run.boot == hb.boot => {
                if hb.seq <= run.seq {
                    Some(HeartbeatError::Replayed)
                } else {
                    run.seq = hb.seq;
                    run.echoed = run.echoed.max(echoed);
                    None
                }
            }
            current => {
                let newest = current.as_ref().map_or(0, |run| run.echoed);
                if echoed > newest {
                    if current.is_some() {
                        tracing::info!(gateway = %self.gateway, instance = self.instance, boot = ?hb.boot, "the partner restarted");
                    }
                    self.partner_run = Some(PartnerRun {
                        boot: hb.boot,
                        seq: hb.seq,
                        echoed,
                    });
                    None
                } else if echoed == 0 {
                    // A run of the partner that has not heard this one yet: echo it, soon, so
                    // that it can count this instance and this instance it.
                    self.echo = Some((hb.boot, hb.seq));
                    self.send_soon(now);
                    Some(HeartbeatError::Unconfirmed)
                } else {
                    Some(HeartbeatError::Replayed)
                }
            }
        };
        let r = &mut self.rejects;
        match refused {
            Some(HeartbeatError::Unconfirmed) => r.unconfirmed = r.unconfirmed.saturating_add(1),
            Some(_) => r.replayed = r.replayed.saturating_add(1),
            None => {}
        }
        if let Some(e) = refused {
            return Err(e);
        }
        self.echo = Some((hb.boot, hb.seq));
        Ok(hb)
    }

    /// A desired state from the server: timing, key and partner are taken as they are; the role
    /// and term only if the term is above this instance's own and at least every term it has
    /// seen (the server's word wins when it is reachable and current).
    pub fn apply(&mut self, desired: &InstanceDesired, now: Instant) -> Result<(), FailoverError> {
        desired.check()?;
        if desired.instance != self.instance {
            return Err(FailoverError::InstanceChanged {
                running: self.instance,
                desired: desired.instance,
            });
        }
        self.partner = desired.partner;
        self.key = wire::mac_key(&desired.key);
        self.interval = desired.interval();
        self.detection = desired.detection();
        if now
            .checked_add(self.interval)
            .is_some_and(|soonest| self.next_send > soonest)
        {
            self.next_send = now;
        }
        if desired.term <= self.term || desired.term < self.highest_term {
            if desired.term < self.highest_term {
                tracing::debug!(gateway = %self.gateway, instance = self.instance, desired = desired.term, term = self.term, highest = self.highest_term, "the desired state's term is stale; the instances' own decision stands");
            }
            return Ok(());
        }
        tracing::info!(gateway = %self.gateway, instance = self.instance, term = desired.term, role = %desired.role(), "the server's desired state sets the role");
        self.highest_term = desired.term;
        self.term = desired.term;
        match (self.role, desired.role()) {
            (InstanceRole::Standby, InstanceRole::Active) => {
                self.take_over(desired.term, TakeoverReason::Server, now);
            }
            (InstanceRole::Active, InstanceRole::Standby) => {
                self.step_down(desired.term, StepDownReason::Server, now);
            }
            _ => {}
        }
        Ok(())
    }

    /// Planned drain: asks the standby to take over (sent at once and in every heartbeat until
    /// it does, or [`Self::cancel_handover`]).
    pub fn start_handover(&mut self, now: Instant) -> Result<(), FailoverError> {
        if self.role != InstanceRole::Active {
            return Err(FailoverError::NotActive);
        }
        tracing::info!(gateway = %self.gateway, instance = self.instance, term = self.term, "handing over to the standby");
        self.handover = true;
        self.send(now);
        Ok(())
    }

    /// Stops asking for a handover (an undrain before the standby answered).
    pub fn cancel_handover(&mut self) {
        self.handover = false;
    }

    /// The next heartbeat to send.
    pub fn poll_transmit(&mut self) -> Option<HeartbeatTransmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<FailoverEvent> {
        self.events.pop_front()
    }

    fn heard_active(&mut self, now: Instant) {
        self.silent_since = self.silent_since.max(now);
    }

    /// Becomes active under `term` (above every term seen, or the server's).
    fn take_over(&mut self, term: u64, reason: TakeoverReason, now: Instant) {
        self.role = InstanceRole::Active;
        self.highest_term = self.highest_term.max(term);
        self.term = term;
        self.handover = false;
        self.ack = reason == TakeoverReason::Handover;
        tracing::warn!(gateway = %self.gateway, instance = self.instance, term = self.term, ?reason, "took over as the active instance");
        self.events.push_back(FailoverEvent::TookOver {
            gateway: self.gateway.clone(),
            term: self.term,
            reason,
        });
        self.send(now);
    }

    fn step_down(&mut self, term: u64, reason: StepDownReason, now: Instant) {
        self.role = InstanceRole::Standby;
        self.highest_term = self.highest_term.max(term);
        self.term = self.highest_term;
        self.handover = false;
        self.ack = false;
        self.silent_since = self.silent_since.max(now);
        tracing::warn!(gateway = %self.gateway, instance = self.instance, term = self.term, ?reason, "stepped down to standby");
        self.events.push_back(FailoverEvent::SteppedDown {
            gateway: self.gateway.clone(),
            term: self.term,
            reason,
        });
        self.send(now);
    }

    /// Sends now, or a quarter interval after the last heartbeat if that is later.
    fn send_soon(&mut self, now: Instant) {
        let soonest = self
            .last_sent
            .and_then(|t| t.checked_add(self.interval / PROMPT_DIVISOR));
        match soonest {
            Some(t) if t > now => self.next_send = self.next_send.min(t),
            _ => self.send(now),
        }
    }

    fn send(&mut self, now: Instant) {
        self.seq = self.seq.saturating_add(1);
        let hb = Heartbeat {
            gateway: self.gateway.clone(),
            instance: self.instance,
            term: self.term,
            role: self.role,
            boot: self.boot,
            seq: self.seq,
            handover: self.handover && self.role == InstanceRole::Active,
            handover_ack: self.ack && self.role == InstanceRole::Active,
            echo: self.echo,
        };
        // The names were checked in `new`, so encoding cannot fail; stay silent if it does.
        if let Ok(payload) = wire::encode(&hb, &self.key) {
            if self.transmits.len() == MAX_QUEUED {
                self.transmits.pop_front();
            }
            self.transmits.push_back(HeartbeatTransmit {
                dst: self.partner,
                payload,
            });
        }
        self.last_sent = Some(now);
        self.next_send = now.checked_add(self.interval).unwrap_or(now);
    }
}

/// The partner's run this instance currently counts.
#[derive(Debug, Clone, Copy)]
struct PartnerRun {
    boot: BootId,
    /// The last sequence number accepted.
    seq: u64,
    /// The highest sequence number of this instance's that the run echoed.
    echoed: u64,
}

/// The term rule: `a` ranks above `b` if its term is higher, or on equal terms if its instance
/// index is lower.
pub fn ranks_above(a: (u64, u8), b: (u64, u8)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
}

/// The gateway a heartbeat claims to be for (unauthenticated), so the shell can find the
/// instance whose key verifies it.
pub fn claimed_gateway(bytes: &[u8]) -> Result<(&str, &str), WireError> {
    wire::parse(bytes).map(|u| (u.tenant(), u.name()))
}
