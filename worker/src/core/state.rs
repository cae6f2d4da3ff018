//! A tunnel's state as the worker decides it (`connecting`, `up`, `down` with a reason, `idle`),
//! tracked per peer on the core's clock (the `now` every call carries) from what the core sees:
//! the handshake initiations it sends (outgoing datagrams of WireGuard message type 1), the
//! handshakes that complete, the authenticated datagrams the peer sends, and the handshake
//! messages from the peer that fail their checks.
//!
//! The rules, evaluated in this order on every timer tick and after every handshake event:
//!
//! 1. **`idle`**: a policy-based tunnel torn down by S2S-2 (no reason).
//! 2. **`up`**: a live session: a handshake confirmed within WireGuard's reject-after time
//!    ([`REJECT_AFTER`], 180 s), or an authenticated datagram from the peer within the liveness
//!    window (the core's peer-silence setting, [`DEFAULT_PEER_SILENCE`] = 2 × 25 + 15 = 65 s;
//!    only a session younger than 180 s carries one, and this bridges the renewal of a session
//!    that reached 180 s, which boringtun starts at the next keepalive). For a peer with a
//!    persistent keepalive (route-based site-to-site and VNet-to-VNet: both ends send keepalives
//!    every 25 s) the datagram within the liveness window is required: a silent peer is not up,
//!    however young its handshake. A policy-based peer (S2S-2 idle timeout, no keepalive) that
//!    has been established stays up while quiet, until its idle teardown, unless a handshake
//!    attempt goes unanswered. A handshake is confirmed when the core, as initiator, accepts
//!    the peer's response, or, as responder, receives the peer's first data or keepalive after
//!    answering its initiation (a response the peer could not use proves nothing).
//! 3. **`down` / `key_mismatch`**: since the last confirmed handshake, and within the last
//!    180 s, a handshake message attributable to the peer failed its checks: an initiation from
//!    the peer's endpoint (IP and port) with a bad MAC, one that does not decrypt or that names
//!    a static key which is not the peer's, a handshake response for the peer's index that does
//!    not decrypt (a wrong preshared key); or [`UNCONFIRMED_ANSWERS`] initiations of the peer in
//!    a row answered and never followed by data (the device cannot use our responses: most
//!    likely a wrong preshared key).
//! 4. **`down` / `no_endpoint`**: a peer with a configured endpoint that is not an address (a
//!    host name the shell could not resolve) and none learned yet.
//! 5. **`connecting`**: initiations sent since the last confirmed handshake (or ever, for a
//!    peer never established) and none answered, for less than WireGuard's REKEY_ATTEMPT_TIME
//!    ([`REKEY_ATTEMPT`], 90 s) since the first of them; or an initiation of the peer answered
//!    less than 90 s ago and not yet confirmed by its data. An initiation more than
//!    [`NEW_ATTEMPT_GAP`] after the previous one starts a new attempt.
//! 6. **`down` / `not_connected`**: a roaming peer (a point-to-site client, no configured
//!    endpoint) without a live session.
//! 7. **`down` / `no_answer`**: everything else that was established or tried: initiations went
//!    unanswered for 90 s, or the peer fell silent (its session aged out, or it sent nothing
//!    for the liveness window). A peer never established and never tried (no keepalive, no
//!    traffic yet) is `down` without a reason.
//!
//! So a site that stops answering turns `down` / `no_answer` after the liveness window (65 s)
//! when the gateway has not started a new handshake, or 90 s after its first unanswered
//! initiation when it has: well within 3 minutes.
//!
//! Each change of state (or reason) records the moment (`since`). Events for the log: one
//! [`Event::TunnelUp`] when a tunnel comes up, one [`Event::TunnelDown`] when a tunnel that was
//! up goes down, and [`Event::HandshakeFailing`] while a tunnel is down with `key_mismatch`, or
//! with `no_answer` after unanswered initiations, at most once per [`FAILING_EVERY`] (5 minutes).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use isthmus_shared::desired::{DownReason, TunnelState};
use isthmus_shared::model::QualifiedName;

use super::Event;

/// WireGuard's REJECT_AFTER_TIME: a session older than this carries nothing.
pub const REJECT_AFTER: Duration = Duration::from_secs(180);
/// WireGuard's REKEY_ATTEMPT_TIME: how long an initiator keeps retrying a handshake.
pub const REKEY_ATTEMPT: Duration = Duration::from_secs(90);
/// The default liveness window of a peer with a persistent keepalive: two 25 s keepalives
/// missed, plus 15 s.
pub const DEFAULT_PEER_SILENCE: Duration = Duration::from_secs(65);
/// Initiations retry every 5 s (REKEY_TIMEOUT); a longer pause than this starts a new attempt.
pub const NEW_ATTEMPT_GAP: Duration = Duration::from_secs(15);
/// Answered initiations in a row without data after which the peer is taken to have a wrong key.
pub const UNCONFIRMED_ANSWERS: u32 = 3;
/// The least time between two [`Event::HandshakeFailing`] of one peer.
pub const FAILING_EVERY: Duration = Duration::from_secs(300);

/// WireGuard message types (the first byte of a datagram).
const MSG_INIT: u8 = 1;

/// What the state of one peer depends on besides its own history.
#[derive(Debug, Clone, Copy)]
pub struct PeerContext {
    /// The peer has a persistent keepalive (it must be heard from to be up).
    pub keepalive: bool,
    /// The peer has no configured endpoint (a point-to-site client).
    pub roaming: bool,
    /// A configured endpoint that is not an address.
    pub unresolved: bool,
    /// The peer's current endpoint, configured or learned.
    pub endpoint: Option<SocketAddr>,
    /// Torn down by S2S-2.
    pub idled: bool,
    /// The peer has an S2S-2 idle timeout (a policy-based tunnel): quiet is not down.
    pub until_idle: bool,
    /// The liveness window.
    pub silence: Duration,
}

/// One peer's handshake history and its reported state.
#[derive(Debug, Clone)]
pub struct Liveness {
    /// The last confirmed handshake.
    handshake: Option<Instant>,
    /// The last authenticated datagram from the peer.
    last_rx: Option<Instant>,
    /// The first and the last initiation of the current unanswered attempt.
    attempt_start: Option<Instant>,
    last_init: Option<Instant>,
    /// Initiations of the peer answered since the last confirmed handshake, none followed by data.
    unconfirmed: u32,
    last_answer: Option<Instant>,
    /// The last handshake message attributed to the peer that failed its checks.
    key_failure: Option<Instant>,
    state: TunnelState,
    reason: Option<DownReason>,
    since: Instant,
    /// A [`Event::TunnelUp`] was emitted and no [`Event::TunnelDown`] since.
    announced_up: bool,
    last_failing: Option<Instant>,
}

impl Liveness {
    /// A peer configured at `now`: `down`, nothing known yet.
    pub fn new(now: Instant) -> Self {
        Self {
            handshake: None,
            last_rx: None,
            attempt_start: None,
            last_init: None,
            unconfirmed: 0,
            last_answer: None,
            key_failure: None,
            state: TunnelState::Down,
            reason: None,
            since: now,
            announced_up: false,
            last_failing: None,
        }
    }

    /// The reported state, its reason, and since when.
    pub fn current(&self) -> (TunnelState, Option<DownReason>, Instant) {
        (self.state, self.reason, self.since)
    }

    /// A datagram the core sends to the peer (only its type matters: 1 is an initiation).
    #[inline]
    pub fn sent(&mut self, datagram: &[u8], now: Instant) {
        if datagram.first() == Some(&MSG_INIT) {
            self.initiation_sent(now);
        }
    }

    fn initiation_sent(&mut self, now: Instant) {
        let new_attempt = self.attempt_start.is_none()
            || self
                .last_init
                .is_none_or(|t| now.saturating_duration_since(t) > NEW_ATTEMPT_GAP);
        if new_attempt {
            self.attempt_start = Some(now);
        }
        self.last_init = Some(now);
    }

    /// The core, as initiator, accepted the peer's handshake response.
    pub fn response_accepted(&mut self, now: Instant) {
        self.confirmed(now);
    }

    /// The core answered an initiation of the peer.
    pub fn initiation_answered(&mut self, now: Instant) {
        self.unconfirmed = self.unconfirmed.saturating_add(1);
        self.last_answer = Some(now);
    }

    /// An authenticated data message (or keepalive) from the peer. Hot path: a few stores.
    #[inline]
    pub fn data_received(&mut self, now: Instant) {
        self.last_rx = Some(now);
        if self.last_answer.is_some() {
            self.confirmed(now);
        }
    }

    fn confirmed(&mut self, now: Instant) {
        self.handshake = Some(now);
        self.last_rx = Some(now);
        self.attempt_start = None;
        self.last_init = None;
        self.unconfirmed = 0;
        self.last_answer = None;
    }

    /// A handshake message attributed to the peer failed its checks.
    pub fn key_failed(&mut self, now: Instant) {
        self.key_failure = Some(now);
    }

    /// The state the rules give at `now` (see the module documentation).
    pub fn evaluate(&self, now: Instant, ctx: &PeerContext) -> (TunnelState, Option<DownReason>) {
        let age = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
        if ctx.idled {
            return (TunnelState::Idle, None);
        }
        let established = self.handshake.is_some();
        let fresh = age(self.handshake).is_some_and(|a| a < REJECT_AFTER);
        let heard = age(self.last_rx).is_some_and(|a| a < ctx.silence);
        let up = if ctx.keepalive {
            established && heard
        } else {
            established && (fresh || heard || (ctx.until_idle && self.attempt_start.is_none()))
        };
        if up {
            return (TunnelState::Up, None);
        }
        let failed_since_handshake = self
            .key_failure
            .is_some_and(|f| self.handshake.is_none_or(|h| f >= h))
            && age(self.key_failure).is_some_and(|a| a < REJECT_AFTER);
        let unusable_answers = self.unconfirmed >= UNCONFIRMED_ANSWERS
            && age(self.last_answer).is_some_and(|a| a < REJECT_AFTER);
        if failed_since_handshake || unusable_answers {
            return (TunnelState::Down, Some(DownReason::KeyMismatch));
        }
        if ctx.unresolved && ctx.endpoint.is_none() {
            return (TunnelState::Down, Some(DownReason::NoEndpoint));
        }
        if age(self.attempt_start).is_some_and(|a| a < REKEY_ATTEMPT)
            || age(self.last_answer).is_some_and(|a| a < REKEY_ATTEMPT)
        {
            return (TunnelState::Connecting, None);
        }
        if ctx.roaming {
            return (TunnelState::Down, Some(DownReason::NotConnected));
        }
        if self.handshake.is_none() && self.attempt_start.is_none() {
            return (TunnelState::Down, None);
        }
        (TunnelState::Down, Some(DownReason::NoAnswer))
    }

    /// Re-evaluates the state at `now`; records a change and queues the events it is worth.
    pub fn refresh(
        &mut self,
        now: Instant,
        ctx: &PeerContext,
        gateway: &QualifiedName,
        peer: &str,
        events: &mut std::collections::VecDeque<Event>,
    ) {
        let (state, reason) = self.evaluate(now, ctx);
        self.record(now, state, reason, ctx.endpoint, gateway, peer, events);
    }

    /// Records the state decided at `now` (by [`Liveness::evaluate`], or for an IPsec tunnel
    /// by its SAs) and queues the events a change is worth.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        now: Instant,
        state: TunnelState,
        reason: Option<DownReason>,
        endpoint: Option<SocketAddr>,
        gateway: &QualifiedName,
        peer: &str,
        events: &mut std::collections::VecDeque<Event>,
    ) {
        if (state, reason) != (self.state, self.reason) {
            self.state = state;
            self.reason = reason;
            self.since = now;
            match state {
                TunnelState::Up if !self.announced_up => {
                    self.announced_up = true;
                    events.push_back(Event::TunnelUp {
                        gateway: gateway.clone(),
                        peer: peer.to_owned(),
                        endpoint,
                    });
                }
                TunnelState::Down if self.announced_up => {
                    self.announced_up = false;
                    events.push_back(Event::TunnelDown {
                        gateway: gateway.clone(),
                        peer: peer.to_owned(),
                        endpoint,
                        reason: reason.unwrap_or(DownReason::NoAnswer),
                    });
                }
                // S2S-2 has its own event ([`Event::TunnelIdle`]).
                TunnelState::Idle => self.announced_up = false,
                _ => {}
            }
        }
        let failing = match (self.state, self.reason) {
            (TunnelState::Down, Some(DownReason::KeyMismatch)) => Some(DownReason::KeyMismatch),
            (TunnelState::Down, Some(DownReason::NoAnswer)) if self.attempt_start.is_some() => {
                Some(DownReason::NoAnswer)
            }
            _ => None,
        };
        if let Some(reason) = failing
            && self
                .last_failing
                .is_none_or(|t| now.saturating_duration_since(t) >= FAILING_EVERY)
        {
            self.last_failing = Some(now);
            events.push_back(Event::HandshakeFailing {
                gateway: gateway.clone(),
                peer: peer.to_owned(),
                endpoint,
                reason,
            });
        }
    }
}

impl super::Gateway {
    /// A handshake message from `src` failed its checks before it could be tied to a peer by
    /// its key or index (a bad MAC, a static key that does not decrypt or is no peer's): it is
    /// held against the peer whose endpoint is `src`, if any.
    pub(super) fn handshake_failed(
        &mut self,
        src: SocketAddr,
        datagram: &[u8],
        now: Instant,
        out: &mut super::Outputs,
    ) {
        if !matches!(datagram.first(), Some(1 | 2)) {
            return;
        }
        let Some(id) = self.by_endpoint.get(&src) else {
            return;
        };
        if let Some(peer) = self.peers.get_mut(id) {
            peer.live.key_failed(now);
            peer.refresh(&self.key, self.peer_silence, now, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PeerContext {
        PeerContext {
            keepalive: true,
            roaming: false,
            unresolved: false,
            endpoint: None,
            idled: false,
            until_idle: false,
            silence: DEFAULT_PEER_SILENCE,
        }
    }

    #[test]
    fn connecting_then_up_then_silent_then_no_answer() {
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        let mut l = Liveness::new(t0);
        assert_eq!(l.evaluate(t0, &ctx()), (TunnelState::Down, None));
        l.sent(&[1, 0, 0, 0], t0);
        assert_eq!(l.evaluate(s(1), &ctx()).0, TunnelState::Connecting);
        l.response_accepted(s(1));
        assert_eq!(l.evaluate(s(2), &ctx()).0, TunnelState::Up);
        // Keepalives (type 4) are not initiations.
        l.sent(&[4, 0, 0, 0], s(30));
        assert_eq!(l.evaluate(s(65), &ctx()).0, TunnelState::Up);
        assert_eq!(
            l.evaluate(s(66), &ctx()),
            (TunnelState::Down, Some(DownReason::NoAnswer))
        );
        // Without a keepalive, the handshake's age counts (or a datagram heard).
        let quiet = PeerContext {
            keepalive: false,
            ..ctx()
        };
        assert_eq!(l.evaluate(s(180), &quiet).0, TunnelState::Up);
        assert_eq!(l.evaluate(s(181), &quiet).0, TunnelState::Down);
        l.data_received(s(170));
        assert_eq!(l.evaluate(s(200), &quiet).0, TunnelState::Up);
        assert_eq!(l.evaluate(s(200), &ctx()).0, TunnelState::Up);
        assert_eq!(l.evaluate(s(236), &quiet).0, TunnelState::Down);
        // A policy-based peer stays up while quiet, until an attempt goes unanswered.
        let policy = PeerContext {
            until_idle: true,
            ..quiet
        };
        assert_eq!(l.evaluate(s(290), &policy).0, TunnelState::Up);
        l.sent(&[1], s(291));
        assert_eq!(l.evaluate(s(300), &policy).0, TunnelState::Connecting);
        assert_eq!(
            l.evaluate(s(381), &policy),
            (TunnelState::Down, Some(DownReason::NoAnswer))
        );
    }

    #[test]
    fn an_attempt_is_connecting_for_90_seconds() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        for i in 0..18 {
            l.sent(&[1], t0 + Duration::from_secs(5 * i));
        }
        assert_eq!(
            l.evaluate(t0 + Duration::from_secs(89), &ctx()).0,
            TunnelState::Connecting
        );
        assert_eq!(
            l.evaluate(t0 + Duration::from_secs(90), &ctx()),
            (TunnelState::Down, Some(DownReason::NoAnswer))
        );
        // Much later, a new initiation is a new attempt.
        l.sent(&[1], t0 + Duration::from_secs(200));
        assert_eq!(
            l.evaluate(t0 + Duration::from_secs(201), &ctx()).0,
            TunnelState::Connecting
        );
    }

    #[test]
    fn answers_never_followed_by_data_mean_a_key_mismatch() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        for i in 0..UNCONFIRMED_ANSWERS {
            assert_ne!(
                l.evaluate(t0, &ctx()).1,
                Some(DownReason::KeyMismatch),
                "{i}"
            );
            l.initiation_answered(t0 + Duration::from_secs(u64::from(i) * 5));
        }
        assert_eq!(
            l.evaluate(t0 + Duration::from_secs(11), &ctx()),
            (TunnelState::Down, Some(DownReason::KeyMismatch))
        );
        l.initiation_answered(t0 + Duration::from_secs(15));
        l.data_received(t0 + Duration::from_secs(15));
        assert_eq!(
            l.evaluate(t0 + Duration::from_secs(16), &ctx()).0,
            TunnelState::Up
        );
    }

    #[test]
    fn roaming_unresolved_and_idle() {
        let t0 = Instant::now();
        let l = Liveness::new(t0);
        let roaming = PeerContext {
            roaming: true,
            keepalive: false,
            ..ctx()
        };
        assert_eq!(
            l.evaluate(t0, &roaming),
            (TunnelState::Down, Some(DownReason::NotConnected))
        );
        let unresolved = PeerContext {
            unresolved: true,
            ..ctx()
        };
        assert_eq!(
            l.evaluate(t0, &unresolved),
            (TunnelState::Down, Some(DownReason::NoEndpoint))
        );
        let idled = PeerContext {
            idled: true,
            ..ctx()
        };
        assert_eq!(l.evaluate(t0, &idled), (TunnelState::Idle, None));
    }
}
