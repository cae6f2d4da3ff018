//! The payloads of RFC 7296 section 3 (but SA, section 3.3, in `sa.rs` and TSi/TSr, section
//! 3.13, in `ts.rs`).

use super::sa::SecurityAssociation;
use super::ts::TrafficSelectors;
use super::{PayloadType, Reader, WireError};

/// One payload of a chain (RFC 7296 3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// SA (3.3).
    Sa(SecurityAssociation),
    /// KE (3.4).
    Ke(KeyExchange),
    /// IDi (3.5).
    IdI(Identification),
    /// IDr (3.5).
    IdR(Identification),
    /// AUTH (3.8).
    Auth(Auth),
    /// Ni or Nr (3.9).
    Nonce(Nonce),
    /// N (3.10).
    Notify(Notify),
    /// D (3.11).
    Delete(Delete),
    /// TSi (3.13).
    TsI(TrafficSelectors),
    /// TSr (3.13).
    TsR(TrafficSelectors),
    /// SK (3.14), still sealed.
    Encrypted(Encrypted),
    /// Any other payload (CERT, CERTREQ, V, CP, EAP, ...), kept as bytes: the state machine
    /// ignores it, or refuses it when it is critical (3.2).
    Unknown(UnknownPayload),
}

impl Payload {
    /// The payload's type (the previous payload's Next Payload value).
    pub fn kind(&self) -> PayloadType {
        match self {
            Self::Sa(_) => PayloadType::SA,
            Self::Ke(_) => PayloadType::KE,
            Self::IdI(_) => PayloadType::IDI,
            Self::IdR(_) => PayloadType::IDR,
            Self::Auth(_) => PayloadType::AUTH,
            Self::Nonce(_) => PayloadType::NONCE,
            Self::Notify(_) => PayloadType::NOTIFY,
            Self::Delete(_) => PayloadType::DELETE,
            Self::TsI(_) => PayloadType::TSI,
            Self::TsR(_) => PayloadType::TSR,
            Self::Encrypted(_) => PayloadType::ENCRYPTED,
            Self::Unknown(u) => u.kind,
        }
    }

    /// The critical bit (3.2): sent only for payloads this implementation does not know.
    pub fn critical(&self) -> bool {
        matches!(self, Self::Unknown(u) if u.critical)
    }

    /// Parses the body (after the generic header) of a payload of type `kind`. Never called
    /// for an Encrypted payload (the chain parser handles that one).
    pub(super) fn parse_body(
        kind: PayloadType,
        critical: bool,
        body: &[u8],
    ) -> Result<Self, WireError> {
        Ok(match kind {
            PayloadType::SA => Self::Sa(SecurityAssociation::parse(body)?),
            PayloadType::KE => Self::Ke(KeyExchange::parse(body)?),
            PayloadType::IDI => Self::IdI(Identification::parse(body)?),
            PayloadType::IDR => Self::IdR(Identification::parse(body)?),
            PayloadType::AUTH => Self::Auth(Auth::parse(body)?),
            PayloadType::NONCE => Self::Nonce(Nonce::parse(body)?),
            PayloadType::NOTIFY => Self::Notify(Notify::parse(body)?),
            PayloadType::DELETE => Self::Delete(Delete::parse(body)?),
            PayloadType::TSI => Self::TsI(TrafficSelectors::parse(body)?),
            PayloadType::TSR => Self::TsR(TrafficSelectors::parse(body)?),
            _ => Self::Unknown(UnknownPayload {
                kind,
                critical,
                body: body.to_vec(),
            }),
        })
    }

    pub(super) fn write_body(&self, out: &mut Vec<u8>) {
        match self {
            Self::Sa(p) => p.write(out),
            Self::Ke(p) => p.write(out),
            Self::IdI(p) | Self::IdR(p) => p.write(out),
            Self::Auth(p) => p.write(out),
            Self::Nonce(p) => out.extend_from_slice(&p.0),
            Self::Notify(p) => p.write(out),
            Self::Delete(p) => p.write(out),
            Self::TsI(p) | Self::TsR(p) => p.write(out),
            Self::Encrypted(p) => out.extend_from_slice(&p.body),
            Self::Unknown(p) => out.extend_from_slice(&p.body),
        }
    }
}

/// Key Exchange payload (RFC 7296 3.4): the Diffie-Hellman group and the sender's public value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyExchange {
    pub group: u16,
    pub data: Vec<u8>,
}

impl KeyExchange {
    fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader(body);
        let group = r.u16()?;
        r.take(2)?;
        Ok(Self {
            group,
            data: r.rest().to_vec(),
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.group.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.data);
    }
}

/// An ID type (RFC 7296 3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdType(pub u8);

impl IdType {
    pub const IPV4_ADDR: Self = Self(1);
    pub const FQDN: Self = Self(2);
    pub const RFC822_ADDR: Self = Self(3);
    pub const IPV6_ADDR: Self = Self(5);
    pub const DER_ASN1_DN: Self = Self(9);
    pub const DER_ASN1_GN: Self = Self(10);
    pub const KEY_ID: Self = Self(11);
}

/// Identification payload, IDi or IDr (RFC 7296 3.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identification {
    pub id_type: IdType,
    pub data: Vec<u8>,
}

impl Identification {
    fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader(body);
        let id_type = IdType(r.u8()?);
        r.take(3)?;
        Ok(Self {
            id_type,
            data: r.rest().to_vec(),
        })
    }

    /// The body as sent: "RestOfInitIDPayload" / "RestOfRespIDPayload" of the AUTH
    /// computation (2.15).
    pub fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.data.len());
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.id_type.0, 0, 0, 0]);
        out.extend_from_slice(&self.data);
    }
}

/// An authentication method (RFC 7296 3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthMethod(pub u8);

impl AuthMethod {
    pub const RSA_SIGNATURE: Self = Self(1);
    /// Shared Key Message Integrity Code (2.15).
    pub const SHARED_KEY_MIC: Self = Self(2);
    pub const DSS_SIGNATURE: Self = Self(3);
}

/// Authentication payload (RFC 7296 3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub method: AuthMethod,
    pub data: Vec<u8>,
}

impl Auth {
    fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader(body);
        let method = AuthMethod(r.u8()?);
        r.take(3)?;
        Ok(Self {
            method,
            data: r.rest().to_vec(),
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.method.0, 0, 0, 0]);
        out.extend_from_slice(&self.data);
    }
}

/// Nonce payload, Ni or Nr (RFC 7296 3.9): 16 to 256 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce(pub Vec<u8>);

impl Nonce {
    pub const MIN_LEN: usize = 16;
    pub const MAX_LEN: usize = 256;

    fn parse(body: &[u8]) -> Result<Self, WireError> {
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&body.len()) {
            return Err(WireError::BadNonceLength(body.len()));
        }
        Ok(Self(body.to_vec()))
    }
}

/// A Notify Message Type (RFC 7296 3.10.1): below 16384 errors, from 16384 status types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NotifyType(pub u16);

impl NotifyType {
    pub const UNSUPPORTED_CRITICAL_PAYLOAD: Self = Self(1);
    pub const INVALID_IKE_SPI: Self = Self(4);
    pub const INVALID_MAJOR_VERSION: Self = Self(5);
    pub const INVALID_SYNTAX: Self = Self(7);
    pub const INVALID_MESSAGE_ID: Self = Self(9);
    pub const INVALID_SPI: Self = Self(11);
    pub const NO_PROPOSAL_CHOSEN: Self = Self(14);
    pub const INVALID_KE_PAYLOAD: Self = Self(17);
    pub const AUTHENTICATION_FAILED: Self = Self(24);
    pub const SINGLE_PAIR_REQUIRED: Self = Self(34);
    pub const NO_ADDITIONAL_SAS: Self = Self(35);
    pub const INTERNAL_ADDRESS_FAILURE: Self = Self(36);
    pub const FAILED_CP_REQUIRED: Self = Self(37);
    pub const TS_UNACCEPTABLE: Self = Self(38);
    pub const INVALID_SELECTORS: Self = Self(39);
    pub const TEMPORARY_FAILURE: Self = Self(43);
    pub const CHILD_SA_NOT_FOUND: Self = Self(44);
    pub const INITIAL_CONTACT: Self = Self(16384);
    pub const SET_WINDOW_SIZE: Self = Self(16385);
    pub const NAT_DETECTION_SOURCE_IP: Self = Self(16388);
    pub const NAT_DETECTION_DESTINATION_IP: Self = Self(16389);
    /// 2.6: the responder's stateless cookie.
    pub const COOKIE: Self = Self(16390);
    pub const USE_TRANSPORT_MODE: Self = Self(16391);
    pub const REKEY_SA: Self = Self(16393);
    pub const ESP_TFC_PADDING_NOT_SUPPORTED: Self = Self(16394);
    pub const NON_FIRST_FRAGMENTS_ALSO: Self = Self(16395);

    /// Whether this is an error type (3.10.1: 0 to 16383).
    pub fn is_error(self) -> bool {
        self.0 < 16384
    }

    /// The type's name as RFC 7296 spells it, for status and logs.
    pub fn name(self) -> String {
        let known = match self {
            Self::UNSUPPORTED_CRITICAL_PAYLOAD => "UNSUPPORTED_CRITICAL_PAYLOAD",
            Self::INVALID_IKE_SPI => "INVALID_IKE_SPI",
            Self::INVALID_MAJOR_VERSION => "INVALID_MAJOR_VERSION",
            Self::INVALID_SYNTAX => "INVALID_SYNTAX",
            Self::INVALID_MESSAGE_ID => "INVALID_MESSAGE_ID",
            Self::INVALID_SPI => "INVALID_SPI",
            Self::NO_PROPOSAL_CHOSEN => "NO_PROPOSAL_CHOSEN",
            Self::INVALID_KE_PAYLOAD => "INVALID_KE_PAYLOAD",
            Self::AUTHENTICATION_FAILED => "AUTHENTICATION_FAILED",
            Self::TS_UNACCEPTABLE => "TS_UNACCEPTABLE",
            Self::TEMPORARY_FAILURE => "TEMPORARY_FAILURE",
            Self::CHILD_SA_NOT_FOUND => "CHILD_SA_NOT_FOUND",
            Self::COOKIE => "COOKIE",
            _ => return format!("NOTIFY_{}", self.0),
        };
        known.to_owned()
    }
}

/// Notify payload (RFC 7296 3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// 0 when no SA is concerned, else a [`super::ProtocolId`] value.
    pub protocol: u8,
    pub spi: Vec<u8>,
    pub kind: NotifyType,
    pub data: Vec<u8>,
}

impl Notify {
    /// A notification about no SA in particular.
    pub fn new(kind: NotifyType, data: Vec<u8>) -> Self {
        Self {
            protocol: 0,
            spi: Vec::new(),
            kind,
            data,
        }
    }

    fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader(body);
        let protocol = r.u8()?;
        let spi_size = usize::from(r.u8()?);
        let kind = NotifyType(r.u16()?);
        let spi = r.take(spi_size)?.to_vec();
        Ok(Self {
            protocol,
            spi,
            kind,
            data: r.rest().to_vec(),
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.protocol);
        out.push(u8::try_from(self.spi.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.kind.0.to_be_bytes());
        out.extend_from_slice(&self.spi);
        out.extend_from_slice(&self.data);
    }
}

/// Delete payload (RFC 7296 3.11): the SPIs of SAs of one protocol, all of one size (none for
/// the IKE SA itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub protocol: u8,
    pub spi_size: u8,
    pub spis: Vec<Vec<u8>>,
}

impl Delete {
    fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader(body);
        let protocol = r.u8()?;
        let spi_size = r.u8()?;
        let count = r.u16()?;
        let mut spis = Vec::new();
        for _ in 0..count {
            spis.push(r.take(usize::from(spi_size))?.to_vec());
        }
        if !r.is_empty() {
            return Err(WireError::BadLength("Delete payload longer than its SPIs"));
        }
        Ok(Self {
            protocol,
            spi_size,
            spis,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.protocol);
        out.push(self.spi_size);
        out.extend_from_slice(&u16::try_from(self.spis.len()).unwrap_or(0).to_be_bytes());
        for s in &self.spis {
            out.extend_from_slice(s);
        }
    }
}

/// Encrypted and Authenticated payload, SK (RFC 7296 3.14; with an AEAD, RFC 5282 section 3:
/// the IV, the ciphertext of the inner payloads, padding and Pad Length, and the ICV). Its
/// Next Payload field is the first inner payload's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted {
    pub first_inner: PayloadType,
    /// IV | ciphertext | ICV.
    pub body: Vec<u8>,
}

/// A payload this implementation does not interpret (RFC 7296 3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPayload {
    pub kind: PayloadType,
    pub critical: bool,
    pub body: Vec<u8>,
}
