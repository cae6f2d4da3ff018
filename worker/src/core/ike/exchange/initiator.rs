//! The initiator of IKE_SA_INIT and IKE_AUTH (RFC 7296 1.2): one per connection this side
//! starts. It retransmits its request until answered (2.1: 1 s, doubling, five times), answers
//! a COOKIE (2.6) or INVALID_KE_PAYLOAD (1.3) by sending IKE_SA_INIT again, and checks the
//! responder's choice, AUTH and selectors.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::super::crypto::DhPrivate;
use super::super::crypto::keys::macs_equal;
use super::super::nat::{self, Nat};
use super::super::proposal::{EspSuite, IkeSuite};
use super::super::protect::ProtectError;
use super::super::wire::{
    Auth, AuthMethod, ExchangeType, Flags, Header, KeyExchange, Message, Nonce, NotifyType,
    Payload, TrafficSelectors,
};
use super::info::{Established, Request, Timer};
use super::rekey_ike;

mod live;

use self::live::Live;
use super::{
    ChildRef, Config, Counters, Ctx, Entropy, IkeError, IkeEvent, IkeSa, error_notify, notify,
    unsupported_critical, within,
};
use crate::core::ike::crypto::Secret;
use crate::core::ike::wire::SecurityAssociation;

/// The first retransmission's delay (RFC 7296 2.1 leaves the schedule to the implementation).
pub const RETRANSMIT_BASE: Duration = Duration::from_secs(1);
/// Retransmissions before the peer is given up.
pub const RETRANSMIT_TRIES: u32 = 5;
/// COOKIE or INVALID_KE_PAYLOAD answers followed before giving up.
const MAX_RESTARTS: u8 = 3;
/// Our nonces' length: at least half the PRF's key size (2.10), here the largest PRF's.
pub const NONCE_LEN: usize = 32;

enum State {
    SaInit {
        dh: DhPrivate,
        request: Vec<u8>,
        cookie: Option<Vec<u8>>,
        restarts: u8,
    },
    Auth {
        sa: Box<IkeSa>,
        child_spi: u32,
        /// The responder's IKE_SA_INIT message (RealMessage2, 2.15).
        init_response: Vec<u8>,
    },
    /// IKE_AUTH done: the SAs are in `lives`.
    Established,
    Failed,
}

struct Outstanding {
    bytes: Vec<u8>,
    next_at: Instant,
    tries: u32,
}

/// One IKE SA this side initiates.
pub struct Initiator {
    config: Config,
    /// Our address and the responder's, as IKE_SA_INIT goes (for NAT detection).
    local: SocketAddr,
    remote: SocketAddr,
    nat: Option<Nat>,
    spi_i: u64,
    ni: Vec<u8>,
    state: State,
    /// The established SAs, for the exchanges that follow (rekey, DPD, delete): one, or two
    /// or three while the IKE SA is rekeyed.
    lives: Vec<Live>,
    outstanding: Option<Outstanding>,
    counters: Counters,
    events: VecDeque<IkeEvent>,
}

pub(super) fn random_u64(entropy: &mut dyn Entropy) -> Result<u64, IkeError> {
    loop {
        let mut b = [0u8; 8];
        entropy.fill(&mut b)?;
        let v = u64::from_be_bytes(b);
        if v != 0 {
            return Ok(v);
        }
    }
}

pub(super) fn random_u32(entropy: &mut dyn Entropy) -> Result<u32, IkeError> {
    loop {
        let mut b = [0u8; 4];
        entropy.fill(&mut b)?;
        // SPIs 1-255 are reserved by IANA (RFC 4303 2.1).
        let v = u32::from_be_bytes(b);
        if v > 255 {
            return Ok(v);
        }
    }
}

pub(super) fn nonce(entropy: &mut dyn Entropy) -> Result<Vec<u8>, IkeError> {
    let mut n = vec![0u8; NONCE_LEN];
    entropy.fill(&mut n)?;
    Ok(n)
}

impl Initiator {
    /// A new IKE SA towards the peer and its first IKE_SA_INIT request, sent from `local` to
    /// `remote`.
    pub fn start(
        config: Config,
        local: SocketAddr,
        remote: SocketAddr,
        entropy: &mut dyn Entropy,
        now: Instant,
    ) -> Result<(Self, Vec<u8>), IkeError> {
        let first = config.ike.first().ok_or(IkeError::Config("IKE suite"))?;
        if config.esp.is_empty() {
            return Err(IkeError::Config("ESP suite"));
        }
        let dh = first.dh.generate(entropy)?;
        let mut me = Self {
            spi_i: random_u64(entropy)?,
            ni: nonce(entropy)?,
            config,
            local,
            remote,
            nat: None,
            state: State::Failed,
            lives: Vec::new(),
            outstanding: None,
            counters: Counters::default(),
            events: VecDeque::new(),
        };
        let request = me.sa_init_request(&dh, None);
        me.send(request.clone(), now);
        me.state = State::SaInit {
            dh,
            request: request.clone(),
            cookie: None,
            restarts: 0,
        };
        Ok((me, request))
    }

    fn sa_init_request(&self, dh: &DhPrivate, cookie: Option<&[u8]>) -> Vec<u8> {
        let mut payloads = Vec::with_capacity(4);
        if let Some(c) = cookie {
            // 2.6: the cookie is the first payload.
            payloads.push(notify(NotifyType::COOKIE, c.to_vec()));
        }
        payloads.push(Payload::Sa(IkeSuite::offer(&self.config.ike)));
        payloads.push(Payload::Ke(KeyExchange {
            group: dh.group().id(),
            data: dh.public().to_vec(),
        }));
        payloads.push(Payload::Nonce(Nonce(self.ni.clone())));
        payloads.extend(nat::notifies(
            self.spi_i,
            0,
            self.local,
            self.remote,
            self.config.force_encapsulation,
        ));
        Message {
            header: Header {
                spi_i: self.spi_i,
                spi_r: 0,
                minor_version: 0,
                exchange: ExchangeType::IKE_SA_INIT,
                flags: Flags {
                    initiator: true,
                    ..Flags::default()
                },
                message_id: 0,
            },
            payloads,
        }
        .serialize()
    }

    fn send(&mut self, bytes: Vec<u8>, now: Instant) {
        self.outstanding = Some(Outstanding {
            bytes,
            next_at: now + RETRANSMIT_BASE,
            tries: 0,
        });
    }

    fn fail(&mut self, notify: NotifyType, by_peer: bool) {
        tracing::debug!(notify = %notify.name(), by_peer, "IKE SA failed");
        self.state = State::Failed;
        self.outstanding = None;
        self.events.push_back(IkeEvent::Failed { notify, by_peer });
    }

    /// A datagram from the responder; returns the request to send next, if any.
    pub fn handle(
        &mut self,
        datagram: &[u8],
        entropy: &mut dyn Entropy,
        now: Instant,
    ) -> Result<Option<Vec<u8>>, IkeError> {
        let msg = match Message::parse(datagram) {
            Ok(m) => m,
            Err(e) => {
                self.counters.malformed += 1;
                tracing::trace!(error = %e, "IKE datagram dropped: malformed");
                return Ok(None);
            }
        };
        let h = msg.header;
        if matches!(self.state, State::Established) {
            let Some(ours) = self
                .lives
                .iter()
                .find(|l| l.sa.is(h.spi_i, h.spi_r))
                .map(|l| l.sa.ours())
            else {
                self.counters.unknown_spi += 1;
                tracing::trace!("IKE datagram dropped: unknown SPI");
                return Ok(None);
            };
            return self.on_established(ours, datagram, &msg, entropy, now);
        }
        if h.spi_i != self.spi_i {
            self.counters.unknown_spi += 1;
            tracing::trace!("IKE datagram dropped: unknown SPI");
            return Ok(None);
        }
        if !h.flags.response {
            self.counters.unexpected += 1;
            tracing::trace!("IKE request from the responder dropped: no SA yet");
            return Ok(None);
        }
        match std::mem::replace(&mut self.state, State::Failed) {
            State::SaInit {
                dh,
                request,
                cookie,
                restarts,
            } if h.exchange == ExchangeType::IKE_SA_INIT && h.message_id == 0 => {
                self.on_sa_init(datagram, msg, dh, request, cookie, restarts, entropy, now)
            }
            State::Auth {
                sa,
                child_spi,
                init_response,
            } if h.exchange == ExchangeType::IKE_AUTH && h.message_id == 1 => {
                self.on_auth(datagram, &msg, sa, child_spi, init_response);
                Ok(None)
            }
            other => {
                self.counters.replayed += 1;
                tracing::trace!(
                    exchange = h.exchange.0,
                    message_id = h.message_id,
                    "IKE response dropped: no such request outstanding"
                );
                self.state = other;
                Ok(None)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_sa_init(
        &mut self,
        datagram: &[u8],
        msg: Message,
        mut dh: DhPrivate,
        request: Vec<u8>,
        cookie: Option<Vec<u8>>,
        restarts: u8,
        entropy: &mut dyn Entropy,
        now: Instant,
    ) -> Result<Option<Vec<u8>>, IkeError> {
        let cookie_asked = msg.find(|p| match p {
            Payload::Notify(n) if n.kind == NotifyType::COOKIE => Some(n.data.clone()),
            _ => None,
        });
        let ke_asked = msg.find(|p| match p {
            Payload::Notify(n) if n.kind == NotifyType::INVALID_KE_PAYLOAD => {
                <[u8; 2]>::try_from(n.data.as_slice())
                    .ok()
                    .map(u16::from_be_bytes)
            }
            _ => None,
        });
        let mut cookie = cookie;
        if restarts < MAX_RESTARTS && (cookie_asked.is_some() || ke_asked.is_some()) {
            if let Some(c) = cookie_asked {
                cookie = Some(c);
            }
            if let Some(g) = ke_asked {
                // 1.3: again with the group the responder wants, if we offered it.
                let Some(group) = IkeSuite::groups(&self.config.ike)
                    .into_iter()
                    .find(|x| x.id() == g)
                else {
                    self.fail(NotifyType::INVALID_KE_PAYLOAD, true);
                    return Ok(None);
                };
                dh = group.generate(entropy)?;
            }
            let request = self.sa_init_request(&dh, cookie.as_deref());
            self.send(request.clone(), now);
            self.state = State::SaInit {
                dh,
                request: request.clone(),
                cookie,
                restarts: restarts + 1,
            };
            return Ok(Some(request));
        }
        if let Some(n) = error_notify(&msg.payloads) {
            self.fail(n, true);
            return Ok(None);
        }
        let sa = msg.find(|p| match p {
            Payload::Sa(s) => Some(s),
            _ => None,
        });
        let ke = msg.find(|p| match p {
            Payload::Ke(k) => Some(k),
            _ => None,
        });
        let nr = msg.find(|p| match p {
            Payload::Nonce(n) => Some(n.0.clone()),
            _ => None,
        });
        let (Some(sa), Some(ke), Some(nr)) = (sa, ke, nr) else {
            return self.malformed_sa_init(dh, request, cookie, restarts);
        };
        if msg.header.spi_r == 0 || unsupported_critical(&msg.payloads).is_some() {
            return self.malformed_sa_init(dh, request, cookie, restarts);
        }
        let Some(suite) = IkeSuite::accepted(sa, &self.config.ike) else {
            self.counters.no_proposal_chosen += 1;
            self.fail(NotifyType::NO_PROPOSAL_CHOSEN, false);
            return Ok(None);
        };
        if ke.group != suite.dh.id() || dh.group() != suite.dh {
            self.counters.invalid_ke += 1;
            self.fail(NotifyType::INVALID_KE_PAYLOAD, false);
            return Ok(None);
        }
        let Ok(g_ir) = dh.agree(&ke.data) else {
            self.counters.invalid_ke += 1;
            self.fail(NotifyType::INVALID_KE_PAYLOAD, false);
            return Ok(None);
        };
        let mut sa = Box::new(IkeSa::new(
            true,
            suite,
            &g_ir,
            self.ni.clone(),
            nr,
            self.spi_i,
            msg.header.spi_r,
        )?);
        self.nat = nat::detect(
            &msg.payloads,
            self.spi_i,
            msg.header.spi_r,
            self.local,
            self.remote,
        );
        let child_spi = random_u32(entropy)?;
        let c = &self.config;
        let auth = sa.auth(&c.psk, true, &request, &c.local_id);
        let mut inner = vec![Payload::IdI(c.local_id.clone())];
        if let Some(r) = &c.remote_id {
            inner.push(Payload::IdR(r.clone()));
        }
        inner.extend([
            auth_payload(&auth),
            Payload::Sa(EspSuite::offer(&c.esp, child_spi)),
            Payload::TsI(TrafficSelectors(c.local_ts.clone())),
            Payload::TsR(TrafficSelectors(c.remote_ts.clone())),
        ]);
        let bytes = sa.seal(ExchangeType::IKE_AUTH, false, 1, &inner)?;
        self.send(bytes.clone(), now);
        self.state = State::Auth {
            sa,
            child_spi,
            init_response: datagram.to_vec(),
        };
        Ok(Some(bytes))
    }

    /// A response without the payloads IKE_SA_INIT needs: dropped (a forgery cannot end the
    /// exchange), the request stays outstanding.
    fn malformed_sa_init(
        &mut self,
        dh: DhPrivate,
        request: Vec<u8>,
        cookie: Option<Vec<u8>>,
        restarts: u8,
    ) -> Result<Option<Vec<u8>>, IkeError> {
        self.counters.malformed += 1;
        tracing::trace!("IKE_SA_INIT response dropped: payloads missing");
        self.state = State::SaInit {
            dh,
            request,
            cookie,
            restarts,
        };
        Ok(None)
    }

    fn on_auth(
        &mut self,
        datagram: &[u8],
        msg: &Message,
        sa: Box<IkeSa>,
        child_spi: u32,
        init_response: Vec<u8>,
    ) {
        let inner = match sa.open(datagram, msg) {
            Ok(p) => p,
            Err(e) => {
                if e == ProtectError::Integrity {
                    self.counters.integrity_failed += 1;
                } else {
                    self.counters.malformed += 1;
                }
                tracing::trace!(error = %e, "IKE_AUTH response dropped");
                self.state = State::Auth {
                    sa,
                    child_spi,
                    init_response,
                };
                return;
            }
        };
        let find = |pick: &dyn Fn(&Payload) -> bool| inner.iter().find(|p| pick(p));
        let idr = find(&|p| matches!(p, Payload::IdR(_)));
        let auth = find(&|p| matches!(p, Payload::Auth(_)));
        let (Some(Payload::IdR(idr)), Some(Payload::Auth(auth))) = (idr, auth) else {
            // 2.21.2: an IKE_AUTH response without AUTH carries the refusal.
            let n = error_notify(&inner).unwrap_or(NotifyType::INVALID_SYNTAX);
            self.fail(n, true);
            return;
        };
        let c = &self.config;
        let id_ok = c.remote_id.as_ref().is_none_or(|r| r == idr);
        let expected = sa.auth(&c.psk, false, &init_response, idr);
        if !id_ok
            || auth.method != AuthMethod::SHARED_KEY_MIC
            || !macs_equal(&auth.data, expected.expose())
        {
            self.counters.auth_failed += 1;
            self.fail(NotifyType::AUTHENTICATION_FAILED, false);
            return;
        }
        let (child, child_refused) = match self.child(&sa, &inner, child_spi) {
            Ok(child) => (Some(child), None),
            Err(n) => (None, Some(n)),
        };
        let children = child.as_ref().map(ChildRef::of).into_iter().collect();
        self.counters.established += 1;
        tracing::debug!(
            spi_i = sa.spi_i,
            spi_r = sa.spi_r,
            "IKE SA established (initiator)"
        );
        self.events.push_back(IkeEvent::Established {
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
            suite: sa.suite,
            child,
            child_refused,
            nat: self.nat,
        });
        self.outstanding = None;
        // The responder's first request will carry message ID 0 (2.3).
        self.lives = vec![Live {
            sa,
            est: Established::new(0, None, children, 2),
        }];
        self.state = State::Established;
    }

    /// The CHILD SA the responder accepted, or why there is none.
    fn child(
        &mut self,
        sa: &IkeSa,
        inner: &[Payload],
        child_spi: u32,
    ) -> Result<super::ChildSa, NotifyType> {
        if let Some(n) = error_notify(inner) {
            return Err(n);
        }
        let mut sar = None::<&SecurityAssociation>;
        let mut tsi = None;
        let mut tsr = None;
        for p in inner {
            match p {
                Payload::Sa(s) => sar = Some(s),
                Payload::TsI(t) => tsi = Some(&t.0),
                Payload::TsR(t) => tsr = Some(&t.0),
                _ => {}
            }
        }
        let (Some(sar), Some(tsi), Some(tsr)) = (sar, tsi, tsr) else {
            return Err(NotifyType::INVALID_SYNTAX);
        };
        let Some((suite, outbound)) = EspSuite::accepted(sar, &self.config.esp) else {
            self.counters.no_proposal_chosen += 1;
            return Err(NotifyType::NO_PROPOSAL_CHOSEN);
        };
        if !within(tsi, &self.config.local_ts) || !within(tsr, &self.config.remote_ts) {
            self.counters.ts_unacceptable += 1;
            return Err(NotifyType::TS_UNACCEPTABLE);
        }
        sa.child(suite, child_spi, outbound, tsi.clone(), tsr.clone())
            .map_err(|_| NotifyType::TEMPORARY_FAILURE)
    }

    /// A message on the established SA `ours`: the peer's request, answered, or the response
    /// to ours; what it comes to applied to our SAs (a rekey moves to the new SA).
    fn on_established(
        &mut self,
        ours: u64,
        datagram: &[u8],
        msg: &Message,
        entropy: &mut dyn Entropy,
        now: Instant,
    ) -> Result<Option<Vec<u8>>, IkeError> {
        let mut events = Vec::new();
        let mut ctx = Ctx {
            config: &self.config,
            entropy,
        };
        let Some(live) = self.lives.iter_mut().find(|l| l.sa.ours() == ours) else {
            return Ok(None);
        };
        let outcome = if msg.header.flags.response {
            live.est.handle_response(
                &live.sa,
                datagram,
                msg,
                &ctx,
                &mut self.counters,
                &mut events,
            )
        } else {
            live.est.handle_request(
                &mut live.sa,
                datagram,
                msg,
                &mut ctx,
                &mut self.counters,
                &mut events,
            )?
        };
        let out = rekey_ike::settle(&mut self.lives, ours, outcome, &mut ctx, now, &mut events)?;
        self.absorb(events);
        Ok(out)
    }

    /// Takes the events of our SAs; the IKE SA's end (deleted, peer dead) ends them all.
    fn absorb(&mut self, events: Vec<IkeEvent>) {
        if events
            .iter()
            .any(|e| matches!(e, IkeEvent::Deleted { .. } | IkeEvent::TimedOut))
        {
            self.lives.clear();
        }
        if self.lives.is_empty() && matches!(self.state, State::Established) {
            self.state = State::Failed;
        }
        self.events.extend(events);
    }

    /// Sends a request on the established SA: dead peer detection, a Delete, a rekey. None
    /// when not established or while a request of ours is outstanding.
    pub fn request(
        &mut self,
        request: Request,
        entropy: &mut dyn Entropy,
        now: Instant,
    ) -> Result<Option<Vec<u8>>, IkeError> {
        let config = &self.config;
        let Some(live) = self
            .lives
            .iter_mut()
            .find(|l| !l.est.retiring && !l.est.provisional)
        else {
            return Ok(None);
        };
        let mut ctx = Ctx { config, entropy };
        live.est.request(&mut live.sa, request, &mut ctx, now)
    }

    /// Runs the retransmission timer; returns the request to send again, if due. A peer that
    /// never answers is given up ([`IkeEvent::TimedOut`]; on an established SA, dead peer
    /// detection's verdict).
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Vec<u8>> {
        if matches!(self.state, State::Established) {
            for i in 0..self.lives.len() {
                let ours = self.lives[i].sa.ours();
                match self.lives[i].est.handle_timeout(now, &mut self.counters) {
                    Timer::Idle => {}
                    Timer::Resend(b) => return Some(b),
                    Timer::Dead => {
                        tracing::debug!(spi = ours, "IKE peer dead: no answer to our request");
                        let mut events = Vec::new();
                        rekey_ike::dead(&mut self.lives, ours, now, &mut events);
                        self.absorb(events);
                        return None;
                    }
                }
            }
            return None;
        }
        let o = self.outstanding.as_mut()?;
        if now < o.next_at {
            return None;
        }
        if o.tries >= RETRANSMIT_TRIES {
            self.outstanding = None;
            self.state = State::Failed;
            self.events.push_back(IkeEvent::TimedOut);
            return None;
        }
        o.tries += 1;
        o.next_at = now + RETRANSMIT_BASE * 2u32.pow(o.tries);
        self.counters.retransmissions += 1;
        tracing::trace!(tries = o.tries, "IKE request retransmitted");
        Some(o.bytes.clone())
    }

    /// When [`Initiator::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.state, State::Established) {
            return self.lives.iter().filter_map(|l| l.est.deadline()).min();
        }
        self.outstanding.as_ref().map(|o| o.next_at)
    }

    pub fn poll_event(&mut self) -> Option<IkeEvent> {
        self.events.pop_front()
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established)
            && self
                .lives
                .iter()
                .any(|l| !l.est.retiring && !l.est.provisional)
    }

    /// Whether IKE_AUTH and what follows, and ESP, go over UDP encapsulation (port 4500,
    /// RFC 3948): forced, or a NAT was found by IKE_SA_INIT (2.23).
    pub fn encapsulate(&self) -> bool {
        self.config.force_encapsulation || self.nat.is_some_and(Nat::encapsulate)
    }

    /// Our SPI of the first IKE SA (SPIi of IKE_SA_INIT). After a rekey the SAs have other
    /// SPIs: [`Initiator::sas`].
    pub fn spi_i(&self) -> u64 {
        self.spi_i
    }

    /// The (SPIi, SPIr) of every IKE SA this initiator holds: the one in use, and while it is
    /// rekeyed the old one (until its Delete is done) and the peer's new one (RFC 7296 2.8).
    /// A datagram whose SPIs are one of these is this initiator's to handle.
    pub fn sas(&self) -> Vec<(u64, u64)> {
        self.lives
            .iter()
            .map(|l| (l.sa.spi_i, l.sa.spi_r))
            .collect()
    }
}

pub(super) fn auth_payload(auth: &Secret) -> Payload {
    Payload::Auth(Auth {
        method: AuthMethod::SHARED_KEY_MIC,
        data: auth.expose().to_vec(),
    })
}
