//! The responder of IKE_SA_INIT and IKE_AUTH (RFC 7296 1.2): one per gateway, holding the
//! IKE SAs peers start, by our SPI. It answers a retransmitted request with the response sent
//! before (2.1), keeps no state for an IKE_SA_INIT it refuses, and past `cookie_threshold`
//! half-open SAs answers an IKE_SA_INIT without a valid cookie with a stateless COOKIE
//! (2.6). Half-open SAs expire after [`HALF_OPEN_TIMEOUT`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::super::crypto::keys::macs_equal;
use super::super::crypto::{Prf, Secret};
use super::super::nat::{self, Nat};
use super::super::proposal::{EspSuite, IkeSuite};
use super::super::protect::ProtectError;
use super::super::wire::{
    AuthMethod, ExchangeType, Flags, Header, KeyExchange, Message, Nonce, NotifyType, Payload,
    TrafficSelectors,
};
use super::info::{Established, Request, Timer};
use super::initiator::{auth_payload, nonce, random_u32, random_u64};
use super::rekey_ike;

mod sas;

use self::sas::{Sas, remove_entry};
use super::{
    ChildRef, Config, Counters, Ctx, Entropy, IkeError, IkeEvent, IkeSa, ip_bytes, narrow, notify,
    unsupported_critical,
};

/// How long an IKE SA may stay half-open (IKE_SA_INIT answered, no IKE_AUTH yet).
pub const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// The most half-open SAs a responder keeps unless told otherwise.
pub const DEFAULT_MAX_HALF_OPEN: usize = 16_384;

enum State {
    HalfOpen {
        /// RealMessage1 (2.15): the initiator's IKE_SA_INIT as received.
        request: Vec<u8>,
        /// RealMessage2: our answer, also sent again to a retransmitted request.
        response: Vec<u8>,
    },
    Established(Box<Established>),
}

struct Entry {
    peer: SocketAddr,
    nat: Option<Nat>,
    sa: Box<IkeSa>,
    state: State,
    created: Instant,
    /// The retransmission deadline registered in `Responder::timers`.
    timer: Option<Instant>,
}

/// The IKE SAs peers start on one gateway.
pub struct Responder {
    config: Config,
    sas: HashMap<u64, Entry>,
    /// (peer, SPIi) → SPIr: a retransmitted IKE_SA_INIT finds its SA.
    by_initiator: BTreeMap<(SocketAddr, u64), u64>,
    /// The half-open SAs by expiry (their number is the cookie threshold's measure).
    expiry: BTreeSet<(Instant, u64)>,
    /// Retransmission deadlines of our outstanding requests on established SAs.
    timers: BTreeSet<(Instant, u64)>,
    cookie_threshold: usize,
    max_half_open: usize,
    /// The cookie secret and its version (2.6), and the one before it, still accepted.
    cookie_secret: (u8, Secret),
    previous_cookie_secret: Option<(u8, Secret)>,
    counters: Counters,
    events: VecDeque<(SocketAddr, IkeEvent)>,
}

impl Responder {
    /// A responder that asks for cookies once `cookie_threshold` SAs are half-open.
    pub fn new(
        config: Config,
        cookie_threshold: usize,
        entropy: &mut dyn Entropy,
    ) -> Result<Self, IkeError> {
        if config.ike.is_empty() {
            return Err(IkeError::Config("IKE suite"));
        }
        let mut secret = vec![0u8; 32];
        entropy.fill(&mut secret)?;
        Ok(Self {
            config,
            sas: HashMap::new(),
            by_initiator: BTreeMap::new(),
            expiry: BTreeSet::new(),
            timers: BTreeSet::new(),
            cookie_threshold,
            max_half_open: DEFAULT_MAX_HALF_OPEN,
            cookie_secret: (0, Secret::new(secret)),
            previous_cookie_secret: None,
            counters: Counters::default(),
            events: VecDeque::new(),
        })
    }

    /// At most `n` half-open SAs (default [`DEFAULT_MAX_HALF_OPEN`]): past it a new
    /// IKE_SA_INIT is dropped, even with a valid cookie (a bound on memory and on DH work).
    pub fn with_max_half_open(mut self, n: usize) -> Self {
        self.max_half_open = n;
        self
    }

    /// A datagram from `peer` to our address `local`; returns the response to send, if any.
    pub fn handle(
        &mut self,
        local: SocketAddr,
        peer: SocketAddr,
        datagram: &[u8],
        entropy: &mut dyn Entropy,
        now: Instant,
    ) -> Result<Option<Vec<u8>>, IkeError> {
        let msg = match Message::parse(datagram) {
            Ok(m) => m,
            Err(e) => {
                self.counters.malformed += 1;
                tracing::trace!(%peer, error = %e, "IKE datagram dropped: malformed");
                return Ok(None);
            }
        };
        let h = msg.header;
        if !h.flags.response && h.exchange == ExchangeType::IKE_SA_INIT && h.spi_r == 0 {
            return self.on_sa_init(local, peer, datagram, &msg, entropy, now);
        }
        // Our SPI: SPIr, unless we started the SA's rekey (then its original initiator).
        let ours = if h.flags.initiator { h.spi_r } else { h.spi_i };
        let Some(entry) = self.sas.get(&ours).filter(|e| e.sa.is(h.spi_i, h.spi_r)) else {
            if h.flags.response {
                self.counters.unexpected += 1;
                tracing::trace!(%peer, "IKE response dropped: no SA of ours asked");
            } else {
                self.counters.unknown_spi += 1;
                tracing::trace!(%peer, "IKE datagram dropped: unknown SPI");
            }
            return Ok(None);
        };
        match &entry.state {
            State::HalfOpen { .. }
                if !h.flags.response
                    && h.exchange == ExchangeType::IKE_AUTH
                    && h.message_id == 1 =>
            {
                self.on_auth(ours, datagram, &msg, entropy)
            }
            State::Established(_) => self.on_established(ours, datagram, &msg, entropy, now),
            State::HalfOpen { .. } => {
                self.counters.unexpected += 1;
                tracing::trace!(%peer, "IKE message dropped: the SA is half-open");
                Ok(None)
            }
        }
    }

    /// Our SAs as a rekey with `peer` sees them, and the settings.
    fn table(&mut self, peer: SocketAddr, nat: Option<Nat>, now: Instant) -> (Sas<'_>, &Config) {
        (
            Sas {
                sas: &mut self.sas,
                by_initiator: &mut self.by_initiator,
                expiry: &mut self.expiry,
                timers: &mut self.timers,
                peer,
                nat,
                now,
                touched: Vec::new(),
            },
            &self.config,
        )
    }

    /// A message on the established SA `ours`: the peer's request, answered, or the response
    /// to ours; what it comes to applied to our SAs (a rekey adds the new SA).
    fn on_established(
        &mut self,
        ours: u64,
        datagram: &[u8],
        msg: &Message,
        entropy: &mut dyn Entropy,
        now: Instant,
    ) -> Result<Option<Vec<u8>>, IkeError> {
        let Some(Entry {
            peer,
            nat,
            sa,
            state: State::Established(est),
            ..
        }) = self.sas.get_mut(&ours)
        else {
            return Ok(None);
        };
        let (peer, nat) = (*peer, *nat);
        let mut events = Vec::new();
        let mut ctx = Ctx {
            config: &self.config,
            entropy: &mut *entropy,
        };
        let outcome = if msg.header.flags.response {
            est.handle_response(sa, datagram, msg, &ctx, &mut self.counters, &mut events)
        } else {
            est.handle_request(sa, datagram, msg, &mut ctx, &mut self.counters, &mut events)?
        };
        let (mut table, config) = self.table(peer, nat, now);
        let mut ctx = Ctx { config, entropy };
        table.touched.push(ours);
        let out = rekey_ike::settle(&mut table, ours, outcome, &mut ctx, now, &mut events);
        table.sync();
        self.events.extend(events.into_iter().map(|e| (peer, e)));
        out
    }

    /// The cookie for an initiator (2.6): `<VersionIDofSecret> | Hash(Ni | IPi | SPIi | secret)`,
    /// here HMAC-SHA-256 keyed with the secret of that version.
    fn cookie(secret: &(u8, Secret), ni: &[u8], peer: SocketAddr, spi_i: u64) -> Vec<u8> {
        let mac = Prf::HmacSha256.compute(
            secret.1.expose(),
            &[ni, &ip_bytes(peer.ip()), &spi_i.to_be_bytes()],
        );
        [&[secret.0][..], mac.expose()].concat()
    }

    /// Whether a presented cookie is ours: of the current secret or of the one before it.
    fn cookie_valid(&self, presented: &[u8], ni: &[u8], peer: SocketAddr, spi_i: u64) -> bool {
        [
            Some(&self.cookie_secret),
            self.previous_cookie_secret.as_ref(),
        ]
        .into_iter()
        .flatten()
        .filter(|s| presented.first() == Some(&s.0))
        .any(|s| macs_equal(presented, &Self::cookie(s, ni, peer, spi_i)))
    }

    /// A new cookie secret (2.6: "periodically"; the caller decides how often, e.g. every few
    /// minutes). Cookies of the secret before stay valid until the next rotation.
    pub fn rotate_cookie_secret(&mut self, entropy: &mut dyn Entropy) -> Result<(), IkeError> {
        let mut secret = vec![0u8; 32];
        entropy.fill(&mut secret)?;
        let version = self.cookie_secret.0.wrapping_add(1);
        let old = std::mem::replace(&mut self.cookie_secret, (version, Secret::new(secret)));
        self.previous_cookie_secret = Some(old);
        Ok(())
    }

    fn on_sa_init(
        &mut self,
        local: SocketAddr,
        peer: SocketAddr,
        datagram: &[u8],
        msg: &Message,
        entropy: &mut dyn Entropy,
        now: Instant,
    ) -> Result<Option<Vec<u8>>, IkeError> {
        let h = msg.header;
        if let Some(spi_r) = self.by_initiator.get(&(peer, h.spi_i))
            && let Some(e) = self.sas.get(spi_r)
        {
            if let State::HalfOpen { request, response } = &e.state
                && request.as_slice() == datagram
            {
                self.counters.retransmits_answered += 1;
                tracing::trace!(%peer, "IKE_SA_INIT retransmitted: answered again");
                return Ok(Some(response.clone()));
            }
            self.counters.replayed += 1;
            tracing::trace!(%peer, "IKE_SA_INIT dropped: its SPI has an SA already");
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
        let ni = msg.find(|p| match p {
            Payload::Nonce(n) => Some(&n.0),
            _ => None,
        });
        let (Some(offered), Some(ke), Some(ni)) = (sa, ke, ni) else {
            self.counters.malformed += 1;
            tracing::trace!(%peer, "IKE_SA_INIT dropped: payloads missing");
            return Ok(None);
        };
        if h.message_id != 0 || unsupported_critical(&msg.payloads).is_some() {
            self.counters.malformed += 1;
            return Ok(None);
        }
        if self.expiry.len() >= self.cookie_threshold {
            let presented = match msg.payloads.first() {
                Some(Payload::Notify(n)) if n.kind == NotifyType::COOKIE => Some(&n.data),
                _ => None,
            };
            let valid = presented.is_some_and(|c| self.cookie_valid(c, ni, peer, h.spi_i));
            let expected = Self::cookie(&self.cookie_secret, ni, peer, h.spi_i);
            if !valid {
                if presented.is_some() {
                    self.counters.bad_cookies += 1;
                }
                self.counters.cookies_sent += 1;
                tracing::trace!(%peer, half_open = self.expiry.len(), "IKE_SA_INIT answered with a cookie");
                return Ok(Some(plain_reply(
                    &h,
                    0,
                    vec![notify(NotifyType::COOKIE, expected)],
                )));
            }
        }
        if self.expiry.len() >= self.max_half_open {
            self.counters.half_open_full += 1;
            tracing::trace!(%peer, "IKE_SA_INIT dropped: too many half-open SAs");
            return Ok(None);
        }
        let Some((suite, answer)) = IkeSuite::choose(offered, &self.config.ike, ke.group) else {
            self.counters.no_proposal_chosen += 1;
            self.events.push_back((
                peer,
                IkeEvent::Failed {
                    notify: NotifyType::NO_PROPOSAL_CHOSEN,
                    by_peer: false,
                },
            ));
            tracing::debug!(%peer, "IKE_SA_INIT refused: NO_PROPOSAL_CHOSEN");
            let n = notify(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new());
            return Ok(Some(plain_reply(&h, 0, vec![n])));
        };
        if ke.group != suite.dh.id() {
            // 1.3: tell the initiator which group to use.
            self.counters.invalid_ke += 1;
            let n = notify(
                NotifyType::INVALID_KE_PAYLOAD,
                suite.dh.id().to_be_bytes().to_vec(),
            );
            return Ok(Some(plain_reply(&h, 0, vec![n])));
        }
        let dh = suite.dh.generate(entropy)?;
        let Ok(g_ir) = dh.agree(&ke.data) else {
            self.counters.invalid_ke += 1;
            tracing::trace!(%peer, "IKE_SA_INIT dropped: invalid KE value");
            return Ok(None);
        };
        let mut spi_r = random_u64(entropy)?;
        while self.sas.contains_key(&spi_r) {
            spi_r = random_u64(entropy)?;
        }
        let nr = nonce(entropy)?;
        let ike = IkeSa::new(false, suite, &g_ir, ni.clone(), nr.clone(), h.spi_i, spi_r)?;
        let mut payloads = vec![
            Payload::Sa(answer),
            Payload::Ke(KeyExchange {
                group: suite.dh.id(),
                data: dh.public().to_vec(),
            }),
            Payload::Nonce(Nonce(nr)),
        ];
        // 2.23: the request's digests have SPIr 0; ours only if the initiator sent some.
        let found = nat::detect(&msg.payloads, h.spi_i, 0, local, peer);
        let forced = self.config.force_encapsulation;
        if found.is_some() {
            payloads.extend(nat::notifies(h.spi_i, spi_r, local, peer, forced));
        }
        let response = plain_reply(&h, spi_r, payloads);
        self.sas.insert(
            spi_r,
            Entry {
                peer,
                nat: found,
                sa: Box::new(ike),
                state: State::HalfOpen {
                    request: datagram.to_vec(),
                    response: response.clone(),
                },
                created: now,
                timer: None,
            },
        );
        self.by_initiator.insert((peer, h.spi_i), spi_r);
        self.expiry.insert((now + HALF_OPEN_TIMEOUT, spi_r));
        Ok(Some(response))
    }

    fn remove(&mut self, spi_r: u64) {
        remove_entry(
            &mut self.sas,
            &mut self.by_initiator,
            &mut self.expiry,
            &mut self.timers,
            spi_r,
        );
    }

    fn on_auth(
        &mut self,
        spi_r: u64,
        datagram: &[u8],
        msg: &Message,
        entropy: &mut dyn Entropy,
    ) -> Result<Option<Vec<u8>>, IkeError> {
        let Some(entry) = self.sas.get_mut(&spi_r) else {
            return Ok(None);
        };
        let peer = entry.peer;
        let inner = match entry.sa.open(datagram, msg) {
            Ok(p) => p,
            Err(e) => {
                if e == ProtectError::Integrity {
                    self.counters.integrity_failed += 1;
                } else {
                    self.counters.malformed += 1;
                }
                tracing::trace!(%peer, error = %e, "IKE_AUTH request dropped");
                return Ok(None);
            }
        };
        let State::HalfOpen { request, response } = &entry.state else {
            return Ok(None);
        };
        let (request, init_response) = (request.clone(), response.clone());
        let mut idi = None;
        let mut auth = None;
        let mut sai = None;
        let mut tsi = None;
        let mut tsr = None;
        for p in &inner {
            match p {
                Payload::IdI(x) => idi = Some(x),
                Payload::Auth(x) => auth = Some(x),
                Payload::Sa(x) => sai = Some(x),
                Payload::TsI(x) => tsi = Some(&x.0),
                Payload::TsR(x) => tsr = Some(&x.0),
                _ => {}
            }
        }
        let (Some(idi), Some(auth), Some(sai), Some(tsi), Some(tsr)) = (idi, auth, sai, tsi, tsr)
        else {
            self.counters.malformed += 1;
            tracing::trace!(%peer, "IKE_AUTH request dropped: payloads missing");
            return Ok(None);
        };
        let c = &self.config;
        let id_ok = c.remote_id.as_ref().is_none_or(|r| r == idi);
        let expected = entry.sa.auth(&c.psk, true, &request, idi);
        if !id_ok
            || auth.method != AuthMethod::SHARED_KEY_MIC
            || !macs_equal(&auth.data, expected.expose())
        {
            // 2.21.2: the refusal is protected, and the SA goes.
            self.counters.auth_failed += 1;
            let n = notify(NotifyType::AUTHENTICATION_FAILED, Vec::new());
            let reply = entry.sa.seal(ExchangeType::IKE_AUTH, true, 1, &[n])?;
            self.events.push_back((
                peer,
                IkeEvent::Failed {
                    notify: NotifyType::AUTHENTICATION_FAILED,
                    by_peer: false,
                },
            ));
            tracing::debug!(%peer, "IKE_AUTH refused: AUTHENTICATION_FAILED");
            self.remove(spi_r);
            return Ok(Some(reply));
        }
        let our_auth = entry.sa.auth(&c.psk, false, &init_response, &c.local_id);
        let mut out = vec![Payload::IdR(c.local_id.clone()), auth_payload(&our_auth)];
        let mut children = Vec::new();
        // The CHILD SA (2.9, 2.17); refusing it leaves the IKE SA up (1.2).
        let inbound = random_u32(entropy)?;
        let chosen = EspSuite::choose_in_auth(sai, &c.esp, inbound);
        let (ts_i, ts_r) = (narrow(tsi, &c.remote_ts), narrow(tsr, &c.local_ts));
        let (child, child_refused) = match chosen {
            None => {
                self.counters.no_proposal_chosen += 1;
                out.push(notify(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new()));
                (None, Some(NotifyType::NO_PROPOSAL_CHOSEN))
            }
            Some(_) if ts_i.is_empty() || ts_r.is_empty() => {
                self.counters.ts_unacceptable += 1;
                out.push(notify(NotifyType::TS_UNACCEPTABLE, Vec::new()));
                (None, Some(NotifyType::TS_UNACCEPTABLE))
            }
            Some((suite, outbound, answer)) => {
                out.extend([
                    Payload::Sa(answer),
                    Payload::TsI(TrafficSelectors(ts_i.clone())),
                    Payload::TsR(TrafficSelectors(ts_r.clone())),
                ]);
                let child = entry.sa.child(suite, inbound, outbound, ts_r, ts_i)?;
                children.push(ChildRef::of(&child));
                (Some(child), None)
            }
        };
        let reply = entry.sa.seal(ExchangeType::IKE_AUTH, true, 1, &out)?;
        entry.state = State::Established(Box::new(Established::new(
            2,
            Some((datagram.to_vec(), reply.clone())),
            children,
            0,
        )));
        let deadline = entry.created + HALF_OPEN_TIMEOUT;
        self.expiry.remove(&(deadline, spi_r));
        self.counters.established += 1;
        tracing::debug!(%peer, spi_r, "IKE SA established (responder)");
        self.events.push_back((
            peer,
            IkeEvent::Established {
                spi_i: entry.sa.spi_i,
                spi_r,
                suite: entry.sa.suite,
                child,
                child_refused,
                nat: entry.nat,
            },
        ));
        Ok(Some(reply))
    }

    /// Sends a request on the established SA whose SPI of ours is `spi_r` (dead peer
    /// detection, a Delete, a rekey; after a rekey we started, our SPI is the new SA's SPIi):
    /// the peer to send it to and the datagram. None when there is no such SA or a request of
    /// ours is outstanding on it.
    pub fn request(
        &mut self,
        spi_r: u64,
        request: Request,
        entropy: &mut dyn Entropy,
        now: Instant,
    ) -> Result<Option<(SocketAddr, Vec<u8>)>, IkeError> {
        let Some(Entry {
            peer,
            sa,
            state: State::Established(est),
            ..
        }) = self.sas.get_mut(&spi_r)
        else {
            return Ok(None);
        };
        let mut ctx = Ctx {
            config: &self.config,
            entropy,
        };
        let peer = *peer;
        let Some(bytes) = est.request(sa, request, &mut ctx, now)? else {
            return Ok(None);
        };
        self.sync_timer(spi_r, now);
        Ok(Some((peer, bytes)))
    }

    fn sync_timer(&mut self, spi: u64, now: Instant) {
        let Some(e) = self.sas.get(&spi) else {
            return;
        };
        let (peer, nat) = (e.peer, e.nat);
        let (mut table, _) = self.table(peer, nat, now);
        table.touched.push(spi);
        table.sync();
    }

    /// Expires half-open SAs older than [`HALF_OPEN_TIMEOUT`] and runs the retransmission
    /// timers of our requests: returns what to send again, to whom. A peer that never answers
    /// is dead: its SA goes ([`IkeEvent::TimedOut`]).
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        while let Some(&(at, spi)) = self.expiry.first()
            && at <= now
        {
            self.counters.half_open_expired += 1;
            self.remove(spi);
        }
        let mut resend = Vec::new();
        while let Some(&(at, spi)) = self.timers.first()
            && at <= now
        {
            self.timers.remove(&(at, spi));
            let Some(Entry {
                peer,
                nat,
                state: State::Established(est),
                timer,
                ..
            }) = self.sas.get_mut(&spi)
            else {
                continue;
            };
            *timer = None;
            let (peer, nat) = (*peer, *nat);
            match est.handle_timeout(now, &mut self.counters) {
                Timer::Idle => self.sync_timer(spi, now),
                Timer::Resend(b) => {
                    self.sync_timer(spi, now);
                    resend.push((peer, b));
                }
                Timer::Dead => {
                    tracing::debug!(%peer, spi, "IKE peer dead: no answer to our request");
                    let mut events = Vec::new();
                    let (mut table, _) = self.table(peer, nat, now);
                    rekey_ike::dead(&mut table, spi, now, &mut events);
                    table.sync();
                    self.events.extend(events.into_iter().map(|e| (peer, e)));
                }
            }
        }
        resend
    }

    /// When [`Responder::handle_timeout`] wants to run: the oldest half-open SA's expiry or
    /// the next retransmission.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let a = self.expiry.first().map(|(at, _)| *at);
        let b = self.timers.first().map(|(at, _)| *at);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The SPIs (ours) of the established SAs with `peer`, in the order of their SPIi.
    pub fn sas_with(&self, peer: SocketAddr) -> Vec<u64> {
        self.by_initiator
            .range((peer, 0)..=(peer, u64::MAX))
            .map(|(_, spi)| *spi)
            .filter(|spi| {
                self.sas.get(spi).is_some_and(|e| {
                    matches!(&e.state, State::Established(est) if !est.retiring && !est.provisional)
                })
            })
            .collect()
    }

    pub fn poll_event(&mut self) -> Option<(SocketAddr, IkeEvent)> {
        self.events.pop_front()
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// IKE SAs answered but not yet authenticated.
    pub fn half_open(&self) -> usize {
        self.expiry.len()
    }

    /// Established IKE SAs.
    pub fn established(&self) -> usize {
        self.sas.len() - self.expiry.len()
    }
}

/// An unprotected response to an IKE_SA_INIT request, with our SPI `spi_r` (0 for a refusal
/// or a cookie, which keep no state).
fn plain_reply(request: &Header, spi_r: u64, payloads: Vec<Payload>) -> Vec<u8> {
    Message {
        header: Header {
            spi_r,
            flags: Flags {
                initiator: false,
                version: false,
                response: true,
            },
            ..*request
        },
        payloads,
    }
    .serialize()
}
