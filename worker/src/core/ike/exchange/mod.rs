//! The IKE_SA_INIT and IKE_AUTH exchanges (RFC 7296 1.2, 2.15), sans-IO: an [`Initiator`]
//! per connection this side starts, one [`Responder`] per gateway for the SAs peers start.
//! Both are fed datagrams and `now` and return the datagrams to send; randomness comes from
//! the caller's [`Entropy`].
//!
//! Refusals follow RFC 7296: no acceptable proposal gets NO_PROPOSAL_CHOSEN (2.7), a KE of
//! another group INVALID_KE_PAYLOAD (1.3), a wrong PSK or an unexpected identity
//! AUTHENTICATION_FAILED (2.21.2), selectors with no overlap TS_UNACCEPTABLE (2.9). Messages
//! that do not parse, fail their integrity check, carry an unknown SPI or a message ID out of
//! turn are dropped without an answer (2.21) and counted ([`Counters`]). Past a threshold of
//! half-open SAs the responder asks for a cookie first (2.6).
//!
//! On an established SA (`info.rs`) either side answers the peer's INFORMATIONAL requests
//! (dead peer detection, Deletes) and sends its own ([`Request`]), declaring the peer dead
//! when one goes unanswered after every retransmission. CREATE_CHILD_SA rekeys a CHILD SA
//! from either side (`rekey.rs`; a peer's KE for PFS is answered, ours carry none). CREATE_CHILD_SA with an IKE proposal rekeys
//! the IKE SA itself (`rekey_ike.rs`, 1.3.2, 2.18): the new SA takes over the CHILD SAs, the
//! rekey's initiator deletes the old one, and simultaneous rekeys end with one SA on both
//! sides (2.8.2); the caller follows with [`IkeEvent::IkeRekeyed`].

mod info;
mod initiator;
mod rekey;
mod rekey_ike;
mod responder;

use std::net::IpAddr;

use super::crypto::aead::AeadKey;
use super::crypto::keys::{IkeKeys, child_keys, ike_keys, psk_auth, rekey_skeyseed, skeyseed};
use super::crypto::{CryptoError, Secret};
use super::nat::Nat;
use super::proposal::{EspSuite, IkeSuite};
use super::protect::{self, ProtectError};
use super::wire::{
    ExchangeType, Flags, Header, Identification, Message, Notify, NotifyType, Payload,
    TrafficSelector,
};

pub use self::info::Request;
pub use self::initiator::{Initiator, NONCE_LEN, RETRANSMIT_BASE, RETRANSMIT_TRIES};
pub use self::rekey_ike::RETIRED_TIMEOUT;
pub use self::responder::{DEFAULT_MAX_HALF_OPEN, HALF_OPEN_TIMEOUT, Responder};
pub use super::crypto::Entropy;

/// Why an exchange could not start or go on (the caller's mistake or its entropy), as opposed
/// to the peer's messages, which are counted and dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IkeError {
    #[error("the configuration has no {0}")]
    Config(&'static str),
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    #[error("sealing a message: {0}")]
    Protect(#[from] ProtectError),
}

/// One side's settings of a connection.
#[derive(Debug, Clone)]
pub struct Config {
    /// The connection's shared key (GW-4/GW-5).
    pub psk: Secret,
    /// Our identity (IDi or IDr).
    pub local_id: Identification,
    /// The identity the peer must present, if any.
    pub remote_id: Option<Identification>,
    /// IKE suites in order of preference.
    pub ike: Vec<IkeSuite>,
    /// ESP suites in order of preference.
    pub esp: Vec<EspSuite>,
    /// Our side's traffic selectors.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's side's traffic selectors.
    pub remote_ts: Vec<TrafficSelector>,
    /// Make the peer believe we are behind a NAT, so that IKE and ESP use UDP encapsulation
    /// from IKE_AUTH on (RFC 7296 2.23; Isthmus keeps NAT-T always on).
    pub force_encapsulation: bool,
}

/// What the exchanges dropped or refused, by kind; and what they did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Not an IKEv2 message, or a message without the payloads its exchange needs.
    pub malformed: u64,
    /// An SPI that names no SA.
    pub unknown_spi: u64,
    /// An Encrypted payload whose integrity check failed.
    pub integrity_failed: u64,
    /// A message ID out of turn: an old request other than the last one, or a response to no
    /// outstanding request.
    pub replayed: u64,
    /// A request whose message ID is ahead of the next one expected (2.3: window size 1).
    pub out_of_window: u64,
    /// A retransmitted request answered with the response sent before (2.1).
    pub retransmits_answered: u64,
    /// A message of an exchange the SA's state does not expect.
    pub unexpected: u64,
    pub cookies_sent: u64,
    /// An IKE_SA_INIT whose cookie was not ours.
    pub bad_cookies: u64,
    pub no_proposal_chosen: u64,
    pub invalid_ke: u64,
    pub auth_failed: u64,
    pub ts_unacceptable: u64,
    pub half_open_expired: u64,
    /// An IKE_SA_INIT dropped because the half-open SAs reached their maximum.
    pub half_open_full: u64,
    /// Requests of ours sent again after no answer.
    pub retransmissions: u64,
    pub established: u64,
}

/// A CHILD SA's parameters (2.17), for the ESP data plane.
#[derive(Debug)]
pub struct ChildSa {
    pub suite: EspSuite,
    /// The SPI the peer puts on packets to us.
    pub inbound_spi: u32,
    /// The SPI we put on packets to the peer.
    pub outbound_spi: u32,
    /// Key | salt of the packets we receive.
    pub inbound_key: Secret,
    /// Key | salt of the packets we send.
    pub outbound_key: Secret,
    /// The selectors of our side and the peer's, as negotiated.
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
}

/// A CHILD SA as the IKE SA remembers it: SPIs, suite, selectors (no keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ChildRef {
    pub inbound: u32,
    pub outbound: u32,
    pub suite: EspSuite,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
}

impl ChildRef {
    pub(super) fn of(c: &ChildSa) -> Self {
        Self {
            inbound: c.inbound_spi,
            outbound: c.outbound_spi,
            suite: c.suite,
            local_ts: c.local_ts.clone(),
            remote_ts: c.remote_ts.clone(),
        }
    }
}

/// What a request on an established SA needs besides the SA: the settings and randomness.
pub(super) struct Ctx<'a> {
    pub config: &'a Config,
    pub entropy: &'a mut dyn Entropy,
}

/// What an exchange came to.
#[derive(Debug)]
pub enum IkeEvent {
    /// The IKE SA is up, with its CHILD SA unless that one was refused (then `child_refused`).
    Established {
        spi_i: u64,
        spi_r: u64,
        suite: IkeSuite,
        child: Option<ChildSa>,
        child_refused: Option<NotifyType>,
        /// What NAT detection found (None: the peer sent no NAT detection notifications).
        nat: Option<Nat>,
    },
    /// The IKE SA failed: refused by us (`by_peer` false) or by the peer.
    Failed { notify: NotifyType, by_peer: bool },
    /// The peer never answered our request.
    TimedOut,
    /// The IKE SA (and its CHILD SAs) was deleted (1.4.1).
    Deleted { by_peer: bool },
    /// A CHILD SA was deleted (1.4.1).
    ChildDeleted { inbound_spi: u32, outbound_spi: u32 },
    /// A CHILD SA was rekeyed (1.3.3): `child` replaces the one with these SPIs, which stays
    /// until the rekey's initiator deletes it.
    ChildRekeyed {
        old_inbound_spi: u32,
        old_outbound_spi: u32,
        child: ChildSa,
    },
    /// Our rekey of a CHILD SA was refused; the old one stays.
    ChildRekeyFailed {
        inbound_spi: u32,
        notify: NotifyType,
    },
    /// The IKE SA was rekeyed (RFC 7296 1.3.2, 2.8): the SA with the new SPIs replaces the
    /// old one, with the CHILD SAs (their keys unchanged); the old SA goes without an event
    /// of its own. `initiator`: whether we are the new SA's original initiator (we started
    /// the rekey), so our SPI is `new_spi_i`, else `new_spi_r`.
    IkeRekeyed {
        old_spi_i: u64,
        old_spi_r: u64,
        new_spi_i: u64,
        new_spi_r: u64,
        suite: IkeSuite,
        initiator: bool,
    },
    /// Our rekey of the IKE SA was refused or failed; the old SA stays.
    IkeRekeyFailed { notify: NotifyType },
}

/// An IKE SA's keys and message state once IKE_SA_INIT is done.
pub(super) struct IkeSa {
    pub spi_i: u64,
    pub spi_r: u64,
    pub suite: IkeSuite,
    keys: IkeKeys,
    tx: AeadKey,
    rx: AeadKey,
    tx_iv: u64,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    /// Whether we are the original initiator (the I flag of our messages).
    initiator: bool,
}

impl IkeSa {
    /// The SA keyed from IKE_SA_INIT's shared secret and nonces (2.14).
    pub(super) fn new(
        initiator: bool,
        suite: IkeSuite,
        g_ir: &Secret,
        ni: Vec<u8>,
        nr: Vec<u8>,
        spi_i: u64,
        spi_r: u64,
    ) -> Result<Self, CryptoError> {
        let seed = skeyseed(suite.prf, &ni, &nr, g_ir);
        Self::from_seed(&seed, initiator, suite, ni, nr, spi_i, spi_r)
    }

    /// The keys of 2.14 from SKEYSEED (of a first exchange or of a rekey) and the SA around them.
    fn from_seed(
        seed: &Secret,
        initiator: bool,
        suite: IkeSuite,
        ni: Vec<u8>,
        nr: Vec<u8>,
        spi_i: u64,
        spi_r: u64,
    ) -> Result<Self, CryptoError> {
        let keys = ike_keys(suite.prf, suite.aead, seed, &ni, &nr, spi_i, spi_r)?;
        let ei = suite.aead.key(&keys.sk_ei)?;
        let er = suite.aead.key(&keys.sk_er)?;
        let (tx, rx) = if initiator { (ei, er) } else { (er, ei) };
        Ok(Self {
            spi_i,
            spi_r,
            suite,
            keys,
            tx,
            rx,
            tx_iv: 0,
            ni,
            nr,
            initiator,
        })
    }

    /// The SA that replaces `old` after a CREATE_CHILD_SA rekey (2.18): SKEYSEED from the old
    /// SA's SK_d and PRF, g^ir of the exchange and its nonces; the rest as in 2.14 with the
    /// new suite. `initiator`: we started the rekey (the new SA's original initiator).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn rekeyed(
        old: &IkeSa,
        initiator: bool,
        suite: IkeSuite,
        g_ir: &Secret,
        ni: Vec<u8>,
        nr: Vec<u8>,
        spi_i: u64,
        spi_r: u64,
    ) -> Result<Self, CryptoError> {
        let seed = rekey_skeyseed(old.suite.prf, &old.keys.sk_d, g_ir, &ni, &nr);
        Self::from_seed(&seed, initiator, suite, ni, nr, spi_i, spi_r)
    }

    /// Our SPI of this SA (the responder's when we are not its original initiator).
    pub(super) fn ours(&self) -> u64 {
        if self.initiator {
            self.spi_i
        } else {
            self.spi_r
        }
    }

    /// Whether we are the SA's original initiator.
    pub(super) fn initiator(&self) -> bool {
        self.initiator
    }

    /// Whether a message with these SPIs belongs to this SA.
    pub(super) fn is(&self, spi_i: u64, spi_r: u64) -> bool {
        self.spi_i == spi_i && self.spi_r == spi_r
    }

    /// A protected message of ours.
    pub(super) fn seal(
        &mut self,
        exchange: ExchangeType,
        response: bool,
        message_id: u32,
        inner: &[Payload],
    ) -> Result<Vec<u8>, ProtectError> {
        let header = Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            minor_version: 0,
            exchange,
            flags: Flags {
                initiator: self.initiator,
                version: false,
                response,
            },
            message_id,
        };
        self.tx_iv += 1;
        protect::seal(&header, inner, &self.tx, self.tx_iv)
    }

    /// The inner payloads of a peer's protected message.
    pub(super) fn open(
        &self,
        datagram: &[u8],
        msg: &Message,
    ) -> Result<Vec<Payload>, ProtectError> {
        protect::open(datagram, msg, &self.rx)
    }

    /// The AUTH data (2.15) the initiator (`by_initiator`) or the responder sends: over that
    /// side's IKE_SA_INIT message, the other side's nonce and that side's ID payload.
    pub(super) fn auth(
        &self,
        psk: &Secret,
        by_initiator: bool,
        first_message: &[u8],
        id: &Identification,
    ) -> Secret {
        let (nonce, sk_p) = if by_initiator {
            (&self.nr, &self.keys.sk_pi)
        } else {
            (&self.ni, &self.keys.sk_pr)
        };
        psk_auth(self.suite.prf, psk, first_message, nonce, sk_p, &id.body())
    }

    /// The CHILD SA of IKE_AUTH (2.17: KEYMAT from SK_d and the IKE_SA_INIT nonces).
    pub(super) fn child(
        &self,
        suite: EspSuite,
        inbound_spi: u32,
        outbound_spi: u32,
        local_ts: Vec<TrafficSelector>,
        remote_ts: Vec<TrafficSelector>,
    ) -> Result<ChildSa, CryptoError> {
        let c = ChildRef {
            inbound: inbound_spi,
            outbound: outbound_spi,
            suite,
            local_ts,
            remote_ts,
        };
        self.keyed(c, self.initiator, None, &self.ni, &self.nr)
    }

    /// A CHILD SA keyed from SK_d, the exchange's new DH secret if any (PFS) and the nonces
    /// of the exchange that creates it (2.17): first the keys of the exchange's initiator's
    /// packets (`we_initiated`: ours).
    pub(super) fn keyed(
        &self,
        c: ChildRef,
        we_initiated: bool,
        g_ir: Option<&Secret>,
        ni: &[u8],
        nr: &[u8],
    ) -> Result<ChildSa, CryptoError> {
        let k = child_keys(self.suite.prf, c.suite.aead, &self.keys.sk_d, g_ir, ni, nr)?;
        let (outbound_key, inbound_key) = if we_initiated {
            (k.initiator_to_responder, k.responder_to_initiator)
        } else {
            (k.responder_to_initiator, k.initiator_to_responder)
        };
        Ok(ChildSa {
            suite: c.suite,
            inbound_spi: c.inbound,
            outbound_spi: c.outbound,
            inbound_key,
            outbound_key,
            local_ts: c.local_ts,
            remote_ts: c.remote_ts,
        })
    }
}

/// The error notifications of a payload list (3.10.1: types below 16384).
pub(super) fn error_notify(payloads: &[Payload]) -> Option<NotifyType> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.kind.is_error() => Some(n.kind),
        _ => None,
    })
}

pub(super) fn notify(kind: NotifyType, data: Vec<u8>) -> Payload {
    Payload::Notify(Notify::new(kind, data))
}

/// Whether a payload list has a critical payload this implementation does not know (3.2:
/// the message is refused with UNSUPPORTED_CRITICAL_PAYLOAD).
pub(super) fn unsupported_critical(payloads: &[Payload]) -> Option<u8> {
    payloads.iter().find_map(|p| match p {
        Payload::Unknown(u) if u.critical => Some(u.kind.0),
        _ => None,
    })
}

/// The responder's narrowing (2.9): each offered selector cut to the configured ones, empty
/// results dropped.
pub(super) fn narrow(
    offered: &[TrafficSelector],
    ours: &[TrafficSelector],
) -> Vec<TrafficSelector> {
    let mut out: Vec<TrafficSelector> = Vec::new();
    for o in offered {
        for c in ours {
            if let Some(t) = o.intersect(c)
                && !out.contains(&t)
            {
                out.push(t);
            }
        }
    }
    out
}

/// Whether every selector the responder chose lies within one we offered (2.9).
pub(super) fn within(chosen: &[TrafficSelector], offered: &[TrafficSelector]) -> bool {
    !chosen.is_empty()
        && chosen
            .iter()
            .all(|c| offered.iter().any(|o| o.intersect(c).as_ref() == Some(c)))
}

/// The address bytes of the cookie computation (2.6: IPi).
pub(super) fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}
