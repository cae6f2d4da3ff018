//! IKEv2's cryptography, sans-IO: every primitive comes from a well-kept crate (ring's AEADs
//! and HMACs; RustCrypto's P-256, P-384 and constant-time big integers; x25519-dalek), none is
//! written here. Randomness comes from the caller ([`Entropy`]); secrets are [`Secret`]s,
//! zeroized on drop and never printed.
//!
//! - [`Prf`]: PRF HMAC-SHA2-256/384 (RFC 4868) and prf+ (RFC 7296 2.13);
//! - [`Aead`]: AES-GCM-16 (RFC 4106, RFC 5282) and ChaCha20-Poly1305 (RFC 7634) for the
//!   Encrypted payload (RFC 7296 3.14) and, later, ESP;
//! - [`dh`]: Diffie-Hellman groups 14, 19, 20 and 31;
//! - [`keys`]: SKEYSEED and the IKE SA's keys (2.14), the PSK AUTH payload (2.15), CHILD SA keys
//!   (2.17).

pub mod aead;
pub mod dh;
pub mod keys;

use zeroize::{Zeroize, ZeroizeOnDrop};

pub use self::aead::Aead;
pub use self::dh::{DhGroup, DhPrivate};

/// Why a cryptographic operation failed. Carries no secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the randomness source failed")]
    Entropy,
    #[error("the integrity check failed")]
    Integrity,
    #[error("the peer's public value is invalid")]
    InvalidPublicValue,
    #[error("bad length: {0}")]
    BadLength(&'static str),
    #[error("prf+ asked for more than 255 blocks")]
    PrfPlusTooLong,
}

/// A source of randomness, supplied by the caller (the shell passes the system's, tests a
/// seeded one).
pub trait Entropy {
    /// Fills `out` with random bytes.
    fn fill(&mut self, out: &mut [u8]) -> Result<(), CryptoError>;
}

/// The operating system's randomness (ring's `SystemRandom`), for the shell.
pub struct SystemEntropy(ring::rand::SystemRandom);

impl Default for SystemEntropy {
    fn default() -> Self {
        Self(ring::rand::SystemRandom::new())
    }
}

impl Entropy for SystemEntropy {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), CryptoError> {
        ring::rand::SecureRandom::fill(&self.0, out).map_err(|_| CryptoError::Entropy)
    }
}

/// Secret bytes (a shared key, SKEYSEED, a derived key, a DH shared secret): zeroized on drop,
/// shown as `Secret(<n> bytes)` by `Debug`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn from_slice(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Splits off the first `n` bytes as a secret of their own.
    pub fn take_front(&mut self, n: usize) -> Result<Secret, CryptoError> {
        if n > self.0.len() {
            return Err(CryptoError::BadLength("key material"));
        }
        let rest = self.0.split_off(n);
        Ok(Secret(std::mem::replace(&mut self.0, rest)))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// A pseudorandom function (RFC 7296 3.3.2, transform type 2; RFC 4868 for HMAC-SHA2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prf {
    HmacSha256,
    HmacSha384,
}

impl Prf {
    /// PRF_HMAC_SHA2_256 and PRF_HMAC_SHA2_384 (IANA "Transform Type 2").
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            5 => Some(Self::HmacSha256),
            6 => Some(Self::HmacSha384),
            _ => None,
        }
    }

    pub fn id(self) -> u16 {
        match self {
            Self::HmacSha256 => 5,
            Self::HmacSha384 => 6,
        }
    }

    fn algorithm(self) -> ring::hmac::Algorithm {
        match self {
            Self::HmacSha256 => ring::hmac::HMAC_SHA256,
            Self::HmacSha384 => ring::hmac::HMAC_SHA384,
        }
    }

    /// The output length, also the preferred key length of SK_d, SK_pi and SK_pr (2.14;
    /// RFC 4868 2.1.2).
    pub fn output_len(self) -> usize {
        match self {
            Self::HmacSha256 => 32,
            Self::HmacSha384 => 48,
        }
    }

    /// prf(key, parts concatenated).
    pub fn compute(self, key: &[u8], parts: &[&[u8]]) -> Secret {
        let key = ring::hmac::Key::new(self.algorithm(), key);
        let mut ctx = ring::hmac::Context::with_key(&key);
        for p in parts {
            ctx.update(p);
        }
        Secret(ctx.sign().as_ref().to_vec())
    }

    /// prf+ (RFC 7296 2.13): T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n), the first `len`
    /// bytes of T1 | T2 | ...; at most 255 blocks.
    pub fn plus(self, key: &[u8], seed: &[u8], len: usize) -> Result<Secret, CryptoError> {
        let blocks = len.div_ceil(self.output_len());
        if blocks > 255 {
            return Err(CryptoError::PrfPlusTooLong);
        }
        let hkey = ring::hmac::Key::new(self.algorithm(), key);
        let mut out = Vec::with_capacity(blocks * self.output_len());
        let mut prev: Option<ring::hmac::Tag> = None;
        for n in 1..=blocks {
            let mut ctx = ring::hmac::Context::with_key(&hkey);
            if let Some(t) = &prev {
                ctx.update(t.as_ref());
            }
            ctx.update(seed);
            ctx.update(&[u8::try_from(n).unwrap_or(u8::MAX)]);
            let t = ctx.sign();
            out.extend_from_slice(t.as_ref());
            prev = Some(t);
        }
        out.truncate(len);
        Ok(Secret(out))
    }
}

#[cfg(test)]
mod tests;
