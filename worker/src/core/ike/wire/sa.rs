//! Security Association payload (RFC 7296 3.3): proposals (3.3.1) of transforms (3.3.2) with
//! attributes (3.3.5).

use super::{Reader, WireError};

/// A Protocol ID (RFC 7296 3.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtocolId(pub u8);

impl ProtocolId {
    pub const IKE: Self = Self(1);
    pub const AH: Self = Self(2);
    pub const ESP: Self = Self(3);
}

/// A transform type (RFC 7296 3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransformType(pub u8);

impl TransformType {
    /// Encryption algorithm (ENCR).
    pub const ENCR: Self = Self(1);
    /// Pseudorandom function (PRF).
    pub const PRF: Self = Self(2);
    /// Integrity algorithm (INTEG).
    pub const INTEG: Self = Self(3);
    /// Diffie-Hellman group (D-H).
    pub const DH: Self = Self(4);
    /// Extended Sequence Numbers (ESN).
    pub const ESN: Self = Self(5);
}

/// SA payload (RFC 7296 3.3): one or more proposals, in the sender's order of preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityAssociation {
    pub proposals: Vec<Proposal>,
}

/// Proposal substructure (RFC 7296 3.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// 1 for the first proposal, then one more for each (3.3.1); an answer carries the number
    /// of the proposal it accepts.
    pub number: u8,
    pub protocol: ProtocolId,
    /// Empty in IKE_SA_INIT; the IKE SPI (8 bytes) when rekeying an IKE SA; the 4-byte SPI of
    /// an ESP SA.
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

/// Transform substructure (RFC 7296 3.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub kind: TransformType,
    pub id: u16,
    pub attributes: Vec<Attribute>,
}

impl Transform {
    /// A transform without attributes.
    pub fn new(kind: TransformType, id: u16) -> Self {
        Self {
            kind,
            id,
            attributes: Vec::new(),
        }
    }

    /// A transform with a Key Length attribute of `bits` (3.3.5, attribute type 14).
    pub fn with_key_length(kind: TransformType, id: u16, bits: u16) -> Self {
        Self {
            kind,
            id,
            attributes: vec![Attribute::Tv {
                kind: Attribute::KEY_LENGTH,
                value: bits,
            }],
        }
    }

    /// The Key Length attribute's value, if any.
    pub fn key_length(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Tv { kind, value } if *kind == Attribute::KEY_LENGTH => Some(*value),
            _ => None,
        })
    }
}

/// Data attribute (RFC 7296 3.3.5): Type/Value (AF = 1) or Type/Length/Value (AF = 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    Tv { kind: u16, value: u16 },
    Tlv { kind: u16, value: Vec<u8> },
}

impl Attribute {
    /// Key Length, in bits (3.3.5), a TV attribute.
    pub const KEY_LENGTH: u16 = 14;
    const AF: u16 = 0x8000;

    fn parse(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let t = r.u16()?;
        let kind = t & !Self::AF;
        if t & Self::AF != 0 {
            Ok(Self::Tv {
                kind,
                value: r.u16()?,
            })
        } else {
            let len = usize::from(r.u16()?);
            Ok(Self::Tlv {
                kind,
                value: r.take(len)?.to_vec(),
            })
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Tv { kind, value } => {
                out.extend_from_slice(&((kind & !Self::AF) | Self::AF).to_be_bytes());
                out.extend_from_slice(&value.to_be_bytes());
            }
            Self::Tlv { kind, value } => {
                out.extend_from_slice(&(kind & !Self::AF).to_be_bytes());
                out.extend_from_slice(&u16::try_from(value.len()).unwrap_or(0).to_be_bytes());
                out.extend_from_slice(value);
            }
        }
    }
}

/// "Last Substruc" values (3.3.1, 3.3.2): 0 for the last one, else 2 (a proposal) or 3 (a
/// transform).
const LAST: u8 = 0;
const MORE_PROPOSALS: u8 = 2;
const MORE_TRANSFORMS: u8 = 3;

impl SecurityAssociation {
    pub(super) fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader(body);
        let mut proposals = Vec::new();
        loop {
            let last = r.u8()?;
            r.take(1)?;
            let len = usize::from(r.u16()?);
            let inner = r
                .take(len.checked_sub(4).ok_or(WireError::BadLength("proposal"))?)
                .map_err(|_| WireError::Truncated("proposal"))?;
            proposals.push(Proposal::parse(inner)?);
            match (last, r.is_empty()) {
                (LAST, true) => break,
                (MORE_PROPOSALS, false) => {}
                _ => return Err(WireError::BadSubstructure("proposal Last Substruc")),
            }
        }
        Ok(Self { proposals })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) {
        for (i, p) in self.proposals.iter().enumerate() {
            let more = i + 1 < self.proposals.len();
            let start = out.len();
            out.push(if more { MORE_PROPOSALS } else { LAST });
            out.extend_from_slice(&[0, 0, 0]);
            p.write(out);
            set_len(out, start);
        }
    }
}

impl Proposal {
    fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader(body);
        let number = r.u8()?;
        let protocol = ProtocolId(r.u8()?);
        let spi_size = usize::from(r.u8()?);
        let count = r.u8()?;
        let spi = r.take(spi_size)?.to_vec();
        let mut transforms = Vec::with_capacity(usize::from(count));
        for i in 0..count {
            let last = r.u8()?;
            r.take(1)?;
            let len = usize::from(r.u16()?);
            let inner = r
                .take(
                    len.checked_sub(4)
                        .ok_or(WireError::BadLength("transform"))?,
                )
                .map_err(|_| WireError::Truncated("transform"))?;
            let expected = if i + 1 == count {
                LAST
            } else {
                MORE_TRANSFORMS
            };
            if last != expected {
                return Err(WireError::BadSubstructure("transform Last Substruc"));
            }
            transforms.push(Transform::parse(inner)?);
        }
        if !r.is_empty() {
            return Err(WireError::BadLength("proposal longer than its transforms"));
        }
        Ok(Self {
            number,
            protocol,
            spi,
            transforms,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.number);
        out.push(self.protocol.0);
        out.push(u8::try_from(self.spi.len()).unwrap_or(0));
        out.push(u8::try_from(self.transforms.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.spi);
        for (i, t) in self.transforms.iter().enumerate() {
            let more = i + 1 < self.transforms.len();
            let start = out.len();
            out.push(if more { MORE_TRANSFORMS } else { LAST });
            out.extend_from_slice(&[0, 0, 0]);
            t.write(out);
            set_len(out, start);
        }
    }
}

impl Transform {
    fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader(body);
        let kind = TransformType(r.u8()?);
        r.take(1)?;
        let id = r.u16()?;
        let mut attributes = Vec::new();
        while !r.is_empty() {
            attributes.push(Attribute::parse(&mut r)?);
        }
        Ok(Self {
            kind,
            id,
            attributes,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.kind.0);
        out.push(0);
        out.extend_from_slice(&self.id.to_be_bytes());
        for a in &self.attributes {
            a.write(out);
        }
    }
}

/// Writes the length of the substructure that starts at `start` into its bytes 2..4.
fn set_len(out: &mut [u8], start: usize) {
    let len = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
    if let Some(l) = out.get_mut(start + 2..start + 4) {
        l.copy_from_slice(&len.to_be_bytes());
    }
}
