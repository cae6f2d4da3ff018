//! The IKEv2 wire format (RFC 7296 section 3): the header, the payload chain and every payload
//! the first version speaks, parsed from untrusted bytes (an error, never a panic) and
//! serialised back.
//!
//! [`Message::parse`] checks the framing only (lengths, counts, the chain, the Encrypted payload
//! last): which payloads an exchange needs is the state machine's business. Reserved fields are
//! ignored on input and sent as zero, so `parse(serialize(m)) == m` for every message `m`.
//! The Encrypted payload's body stays sealed here; [`super::crypto::Aead`] opens it and
//! [`parse_chain`] reads the payloads inside.

mod payloads;
mod sa;
mod ts;

pub use self::payloads::{
    Auth, AuthMethod, Delete, Encrypted, IdType, Identification, KeyExchange, Nonce, Notify,
    NotifyType, Payload, UnknownPayload,
};
pub use self::sa::{
    Attribute, Proposal, ProtocolId, SecurityAssociation, Transform, TransformType,
};
pub use self::ts::{TrafficSelector, TrafficSelectors, TsType};

/// The IKE header's length (RFC 7296 3.1).
pub const HEADER_LEN: usize = 28;
/// The generic payload header's length (RFC 7296 3.2).
pub const PAYLOAD_HEADER_LEN: usize = 4;
/// The largest message the parser reads: a UDP datagram's payload.
pub const MAX_MESSAGE_LEN: usize = 65_535 - 8;
/// Version 2.0 (RFC 7296 3.1: major version 2, minor version 0).
pub const VERSION_2_0: u8 = 0x20;

/// Why bytes are not an IKEv2 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated: {0}")]
    Truncated(&'static str),
    #[error("message longer than {MAX_MESSAGE_LEN} bytes")]
    Oversized,
    #[error("the header's length {header} is not the datagram's {actual}")]
    LengthMismatch { header: u32, actual: usize },
    #[error("major version {0} is not 2")]
    UnsupportedVersion(u8),
    #[error("bad length: {0}")]
    BadLength(&'static str),
    #[error("bytes after the last payload")]
    TrailingBytes,
    #[error("the Encrypted payload is not the last one")]
    EncryptedNotLast,
    #[error("an Encrypted payload inside an Encrypted payload")]
    NestedEncrypted,
    #[error("bad substructure: {0}")]
    BadSubstructure(&'static str),
    #[error("nonce of {0} bytes (RFC 7296 3.9: 16 to 256)")]
    BadNonceLength(usize),
    #[error("traffic selector type {0} is unknown")]
    UnknownTsType(u8),
}

/// An exchange type (RFC 7296 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExchangeType(pub u8);

impl ExchangeType {
    pub const IKE_SA_INIT: Self = Self(34);
    pub const IKE_AUTH: Self = Self(35);
    pub const CREATE_CHILD_SA: Self = Self(36);
    pub const INFORMATIONAL: Self = Self(37);
}

/// A payload type (RFC 7296 3.2, the "Next Payload" values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PayloadType(pub u8);

impl PayloadType {
    pub const NONE: Self = Self(0);
    pub const SA: Self = Self(33);
    pub const KE: Self = Self(34);
    pub const IDI: Self = Self(35);
    pub const IDR: Self = Self(36);
    pub const CERT: Self = Self(37);
    pub const CERTREQ: Self = Self(38);
    pub const AUTH: Self = Self(39);
    pub const NONCE: Self = Self(40);
    pub const NOTIFY: Self = Self(41);
    pub const DELETE: Self = Self(42);
    pub const VENDOR_ID: Self = Self(43);
    pub const TSI: Self = Self(44);
    pub const TSR: Self = Self(45);
    pub const ENCRYPTED: Self = Self(46);
}

/// The header's flags (RFC 7296 3.1): Initiator, Version, Response; the other bits are
/// reserved (ignored, sent as zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    /// I: the sender is the original initiator of the IKE SA.
    pub initiator: bool,
    /// V: the sender can speak a higher major version.
    pub version: bool,
    /// R: this message is a response.
    pub response: bool,
}

impl Flags {
    const I: u8 = 0x08;
    const V: u8 = 0x10;
    const R: u8 = 0x20;

    fn from_byte(b: u8) -> Self {
        Self {
            initiator: b & Self::I != 0,
            version: b & Self::V != 0,
            response: b & Self::R != 0,
        }
    }

    fn to_byte(self) -> u8 {
        (if self.initiator { Self::I } else { 0 })
            | (if self.version { Self::V } else { 0 })
            | (if self.response { Self::R } else { 0 })
    }
}

/// The IKE header (RFC 7296 3.1), without the Next Payload and Length fields, which the
/// serialiser computes from the payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub spi_i: u64,
    pub spi_r: u64,
    /// The minor version (the major one is always 2).
    pub minor_version: u8,
    pub exchange: ExchangeType,
    pub flags: Flags,
    pub message_id: u32,
}

impl Header {
    /// Reads the header of `bytes` (at least [`HEADER_LEN`] bytes) without the payloads: the
    /// responder looks up the SA by SPI before anything else. Returns it with the Next Payload
    /// and Length fields.
    pub fn peek(bytes: &[u8]) -> Result<(Self, PayloadType, u32), WireError> {
        let h = bytes
            .get(..HEADER_LEN)
            .ok_or(WireError::Truncated("IKE header"))?;
        let mut r = Reader(h);
        let spi_i = r.u64()?;
        let spi_r = r.u64()?;
        let next = PayloadType(r.u8()?);
        let version = r.u8()?;
        if version >> 4 != 2 {
            return Err(WireError::UnsupportedVersion(version >> 4));
        }
        let exchange = ExchangeType(r.u8()?);
        let flags = Flags::from_byte(r.u8()?);
        let message_id = r.u32()?;
        let length = r.u32()?;
        let header = Self {
            spi_i,
            spi_r,
            minor_version: version & 0x0f,
            exchange,
            flags,
            message_id,
        };
        Ok((header, next, length))
    }

    /// The header's 28 bytes for a message of `length` bytes whose first payload is `next`.
    pub fn write(&self, next: PayloadType, length: u32, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.spi_i.to_be_bytes());
        out.extend_from_slice(&self.spi_r.to_be_bytes());
        out.push(next.0);
        out.push(0x20 | (self.minor_version & 0x0f));
        out.push(self.exchange.0);
        out.push(self.flags.to_byte());
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&length.to_be_bytes());
    }
}

/// An IKEv2 message (RFC 7296 3): a header and a chain of payloads (an Encrypted payload, if
/// any, last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Parses a whole datagram (RFC 7296 3.1, 3.2). The header's Length must be the datagram's.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(WireError::Oversized);
        }
        let (header, next, length) = Header::peek(bytes)?;
        if usize::try_from(length).ok() != Some(bytes.len()) {
            return Err(WireError::LengthMismatch {
                header: length,
                actual: bytes.len(),
            });
        }
        let payloads = parse_chain(next, bytes.get(HEADER_LEN..).unwrap_or_default(), true)?;
        Ok(Self { header, payloads })
    }

    /// The message's bytes.
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.header.write(PayloadType::NONE, 0, &mut out);
        let first = write_chain(&self.payloads, &mut out);
        finish_header(&mut out, first);
        out
    }

    /// The first payload of a kind, if any.
    pub fn find<'a, T>(&'a self, pick: impl Fn(&'a Payload) -> Option<T>) -> Option<T> {
        self.payloads.iter().find_map(pick)
    }
}

/// Sets the Next Payload and Length fields of the header at the start of `out`.
pub fn finish_header(out: &mut [u8], first: PayloadType) {
    let len = u32::try_from(out.len()).unwrap_or(u32::MAX);
    if let Some(b) = out.get_mut(16) {
        *b = first.0;
    }
    if let Some(l) = out.get_mut(24..28) {
        l.copy_from_slice(&len.to_be_bytes());
    }
}

/// Parses a payload chain that starts with a payload of type `first` and fills `bytes`
/// exactly (RFC 7296 3.2). `encrypted_allowed`: whether an Encrypted payload may end it (not
/// inside another one).
pub fn parse_chain(
    first: PayloadType,
    bytes: &[u8],
    encrypted_allowed: bool,
) -> Result<Vec<Payload>, WireError> {
    let mut payloads = Vec::new();
    let mut next = first;
    let mut rest = bytes;
    while next != PayloadType::NONE {
        let mut r = Reader(rest);
        let following = PayloadType(r.u8()?);
        let critical = r.u8()? & 0x80 != 0;
        let len = usize::from(r.u16()?);
        if len < PAYLOAD_HEADER_LEN {
            return Err(WireError::BadLength("payload shorter than its header"));
        }
        let body = rest
            .get(PAYLOAD_HEADER_LEN..len)
            .ok_or(WireError::Truncated("payload"))?;
        rest = rest.get(len..).unwrap_or_default();
        if next == PayloadType::ENCRYPTED {
            if !encrypted_allowed {
                return Err(WireError::NestedEncrypted);
            }
            if !rest.is_empty() {
                return Err(WireError::EncryptedNotLast);
            }
            payloads.push(Payload::Encrypted(Encrypted {
                first_inner: following,
                body: body.to_vec(),
            }));
            return Ok(payloads);
        }
        payloads.push(Payload::parse_body(next, critical, body)?);
        next = following;
    }
    if !rest.is_empty() {
        return Err(WireError::TrailingBytes);
    }
    Ok(payloads)
}

/// Appends a payload chain to `out` and returns the first payload's type (for the Next
/// Payload field before it). An Encrypted payload's Next Payload is its first inner type.
pub fn write_chain(payloads: &[Payload], out: &mut Vec<u8>) -> PayloadType {
    // Where the previous payload's Next Payload field is: after an Encrypted payload (which
    // must be last) nothing links on, so a misplaced one shows on the wire.
    let mut prev_next_at: Option<usize> = None;
    let mut first = None;
    for p in payloads {
        let kind = p.kind();
        match prev_next_at {
            Some(at) => {
                if let Some(b) = out.get_mut(at) {
                    *b = kind.0;
                }
            }
            None => {
                first.get_or_insert(kind);
            }
        }
        let start = out.len();
        let next = match p {
            Payload::Encrypted(e) => e.first_inner,
            _ => PayloadType::NONE,
        };
        out.push(next.0);
        out.push(if p.critical() { 0x80 } else { 0 });
        out.extend_from_slice(&[0, 0]);
        p.write_body(out);
        let len = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
        if let Some(l) = out.get_mut(start + 2..start + 4) {
            l.copy_from_slice(&len.to_be_bytes());
        }
        prev_next_at = match p {
            Payload::Encrypted(_) => None,
            _ => Some(start),
        };
    }
    first.unwrap_or(PayloadType::NONE)
}

/// A cursor over untrusted bytes: every read is bounds-checked.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Truncated("field"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?.first().copied().unwrap_or_default())
    }

    pub(crate) fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(a))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, WireError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
