//! ESP (RFC 4303) in tunnel mode with an AEAD (AES-GCM-16, RFC 4106; ChaCha20-Poly1305,
//! RFC 7634), sans-IO, and its UDP encapsulation (RFC 3948, [`udp`]).
//!
//! A packet is SPI (4) | Sequence Number (4) | IV (8) | ciphertext of (the inner IP packet |
//! padding | Pad Length | Next Header) | ICV (16) (RFC 4303 2, RFC 4106 3). The associated
//! data is SPI | Sequence Number (RFC 4106 5, RFC 7634 2.1; no Extended Sequence Numbers yet).
//! The IV is the sequence number, unique per key as RFC 4106 3.1 asks. [`Outbound`] numbers
//! and seals; [`Inbound`] checks the anti-replay window ([`replay`]), opens, and only then
//! moves the window (RFC 4303 3.4.3).

pub mod replay;
pub mod udp;

use super::ike::crypto::aead::{AeadKey, ICV_LEN, IV_LEN};
use super::ike::crypto::{Aead, CryptoError, Secret};

use self::replay::{ReplayError, Window};

/// SPI and Sequence Number.
pub const HEADER_LEN: usize = 8;
/// Bytes ESP adds to a packet before padding: header, IV, Pad Length, Next Header, ICV.
pub const OVERHEAD: usize = HEADER_LEN + IV_LEN + 2 + ICV_LEN;
/// Next Header values (IANA protocol numbers) of tunnel mode, and the dummy packet's
/// (RFC 4303 2.6).
pub const NEXT_IPV4: u8 = 4;
pub const NEXT_IPV6: u8 = 41;
pub const NEXT_NONE: u8 = 59;

/// Why a packet was not sealed or not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EspError {
    #[error("shorter than an ESP packet")]
    Truncated,
    #[error("the SPI is not this SA's")]
    WrongSpi,
    #[error("anti-replay: {0}")]
    Replay(#[from] ReplayError),
    #[error("the integrity check failed")]
    Integrity,
    #[error("the padding is not RFC 4303's default")]
    BadPadding,
    #[error("a dummy packet (Next Header 59)")]
    Dummy,
    #[error("the sequence number would wrap: the SA must be rekeyed (RFC 4303 3.3.3)")]
    SequenceExhausted,
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
}

/// The SPI of an ESP packet (its first four bytes), to find its SA.
pub fn spi_of(packet: &[u8]) -> Option<u32> {
    let b = packet.get(..4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The sending half of a CHILD SA.
pub struct Outbound {
    spi: u32,
    key: AeadKey,
    /// The last sequence number sent (0: none yet).
    seq: u32,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Outbound(spi {:#010x}, seq {})", self.spi, self.seq)
    }
}

impl Outbound {
    pub fn new(aead: Aead, spi: u32, keymat: &Secret) -> Result<Self, EspError> {
        Ok(Self {
            spi,
            key: aead.key(keymat)?,
            seq: 0,
        })
    }

    /// The last sequence number sent.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// Replaces `out` with the ESP packet of `inner` (an IP packet whose protocol is
    /// `next_header`).
    pub fn seal(
        &mut self,
        inner: &[u8],
        next_header: u8,
        out: &mut Vec<u8>,
    ) -> Result<(), EspError> {
        let seq = self.seq.checked_add(1).ok_or(EspError::SequenceExhausted)?;
        // RFC 4303 2.4: Pad Length and Next Header end on a 4-byte boundary; the padding is
        // 1, 2, 3, ... (2.4, the default).
        let pad = (4 - (inner.len() + 2) % 4) % 4;
        out.clear();
        out.reserve(OVERHEAD + inner.len() + pad);
        out.extend_from_slice(&self.spi.to_be_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
        let iv = u64::from(seq).to_be_bytes();
        out.extend_from_slice(&iv);
        let start = out.len();
        out.extend_from_slice(inner);
        out.extend((1..=pad).map(|i| i as u8));
        out.push(pad as u8);
        out.push(next_header);
        let mut aad = [0u8; HEADER_LEN];
        aad.copy_from_slice(out.get(..HEADER_LEN).ok_or(EspError::Truncated)?);
        let mut body = out.split_off(start);
        self.key.seal(&iv, &aad, &mut body)?;
        out.extend_from_slice(&body);
        self.seq = seq;
        tracing::trace!(spi = self.spi, seq, len = out.len(), "ESP packet sealed");
        Ok(())
    }
}

/// The receiving half of a CHILD SA.
pub struct Inbound {
    spi: u32,
    key: AeadKey,
    window: Window,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Inbound(spi {:#010x}, top {})",
            self.spi,
            self.window.top()
        )
    }
}

/// An accepted packet: where the inner packet lies in the buffer, and its Next Header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub inner: std::ops::Range<usize>,
    pub next_header: u8,
    pub seq: u32,
}

impl Inbound {
    pub fn new(aead: Aead, spi: u32, keymat: &Secret) -> Result<Self, EspError> {
        Ok(Self {
            spi,
            key: aead.key(keymat)?,
            window: Window::new(),
        })
    }

    /// Checks and decrypts the ESP packet in `packet` in place (RFC 4303 3.4): the SPI, the
    /// replay window, the ICV, the padding; then moves the window. The inner packet is
    /// `packet[opened.inner]`.
    pub fn open(&mut self, packet: &mut [u8]) -> Result<Opened, EspError> {
        if packet.len() < OVERHEAD {
            return Err(EspError::Truncated);
        }
        let (head, rest) = packet.split_at_mut(HEADER_LEN);
        if spi_of(head) != Some(self.spi) {
            return Err(EspError::WrongSpi);
        }
        let seq = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        self.window.check(seq)?;
        let (iv, ct) = rest.split_at_mut(IV_LEN);
        let mut iv8 = [0u8; IV_LEN];
        iv8.copy_from_slice(iv);
        let n = self
            .key
            .open(&iv8, head, ct)
            .map_err(|_| EspError::Integrity)?;
        let plain = ct.get(..n).ok_or(EspError::Truncated)?;
        let (&next_header, plain) = plain.split_last().ok_or(EspError::Truncated)?;
        let (&pad, plain) = plain.split_last().ok_or(EspError::Truncated)?;
        let inner_len = plain
            .len()
            .checked_sub(usize::from(pad))
            .ok_or(EspError::BadPadding)?;
        let padding = plain.get(inner_len..).ok_or(EspError::BadPadding)?;
        if !padding.iter().zip(1u8..).all(|(b, i)| *b == i) {
            return Err(EspError::BadPadding);
        }
        // The packet is authentic: only now does the window move (3.4.3).
        self.window.accept(seq)?;
        if next_header == NEXT_NONE {
            return Err(EspError::Dummy);
        }
        tracing::trace!(spi = self.spi, seq, "ESP packet opened");
        let start = HEADER_LEN + IV_LEN;
        Ok(Opened {
            inner: start..start + inner_len,
            next_header,
            seq,
        })
    }
}
