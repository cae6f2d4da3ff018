//! Shared keys (GW-4, GW-5) and the WireGuard preshared key derived from them.
//!
//! The user-facing *shared key* keeps the seed's semantics: 1 to 128 ASCII letters and digits,
//! generated per connection ([`generate_shared_key`], randomness passed in by the caller) and
//! replaceable. WireGuard wants 32 random-looking bytes, so the data plane uses a key derived
//! from the shared key and the identities of the two tunnel ends:
//!
//! ```text
//! ikm  = shared key (ASCII bytes)
//! salt = "isthmus-psk-v1"
//! info = "isthmus wireguard psk" || 0x00
//!        || u32be(len(lo)) || lo || u32be(len(hi)) || hi
//! psk  = HKDF-SHA256(salt, ikm).expand(info, 32)
//! ```
//!
//! where `lo` and `hi` are the two [`PeerIdentity`] strings (`gateway:<tenant>/<name>` or
//! `site:<tenant>/<name>`) sorted bytewise. Sorting makes the derivation symmetric: both halves
//! of a VNet-to-VNet tunnel, which each carry the same shared key (CONN-2), derive the same key,
//! and a site device's exported configuration carries exactly the key its gateway uses.
//!
//! Test vector: shared key `abc123`, ends `gateway:acme/hub-gw` and `gateway:acme/spoke-gw`
//! give `f0ed395f5c50c8104e864ea5308df080b14db8ba74cadf0a684823b82c1cfa20` (hex); see the
//! integration tests for more, cross-checked with Python's `hmac`/`hashlib`.

use std::fmt;

use base64::Engine as _;
use hkdf::Hkdf;
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::model::QualifiedName;

/// GW-5: the longest shared key.
pub const SHARED_KEY_MAX_LEN: usize = 128;

/// The length of a generated shared key.
pub const GENERATED_SHARED_KEY_LEN: usize = 32;

/// The HKDF salt of the derivation (versioned).
pub const PSK_SALT: &[u8] = b"isthmus-psk-v1";

/// The fixed label that starts the HKDF info.
pub const PSK_INFO_LABEL: &[u8] = b"isthmus wireguard psk";

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Why a shared key breaks GW-5.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum SharedKeyError {
    #[error("the shared key is empty; use 1 to 128 ASCII letters and digits")]
    Empty,
    #[error(
        "the shared key is {len} characters long; at most 128 are allowed (ASCII letters and digits)"
    )]
    TooLong { len: usize },
    #[error(
        "the shared key contains {ch:?} at position {position}; only ASCII letters and digits \
         (A-Z, a-z, 0-9) are allowed"
    )]
    /// `position` counts characters from 1.
    InvalidChar { ch: char, position: usize },
}

/// GW-5: a shared key is 1 to 128 characters, ASCII letters and digits only. Reports the first
/// problem; never panics.
pub fn validate_shared_key(key: &str) -> Result<(), SharedKeyError> {
    if key.is_empty() {
        return Err(SharedKeyError::Empty);
    }
    if let Some((position, ch)) = key
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_alphanumeric())
    {
        return Err(SharedKeyError::InvalidChar {
            ch,
            position: position + 1,
        });
    }
    let len = key.len(); // ASCII from here on
    if len > SHARED_KEY_MAX_LEN {
        return Err(SharedKeyError::TooLong { len });
    }
    Ok(())
}

/// GW-4: generates a fresh shared key of [`GENERATED_SHARED_KEY_LEN`] letters and digits
/// (about 190 bits), uniformly distributed (rejection sampling). The caller supplies the
/// randomness.
pub fn generate_shared_key<R: RngCore + ?Sized>(rng: &mut R) -> String {
    let mut out = String::with_capacity(GENERATED_SHARED_KEY_LEN);
    let mut buf = [0u8; 64];
    while out.len() < GENERATED_SHARED_KEY_LEN {
        rng.fill_bytes(&mut buf);
        for &b in &buf {
            // 248 = 4 * 62: reject the tail so every character is equally likely.
            if b < 248 && out.len() < GENERATED_SHARED_KEY_LEN {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    out
}

/// One end of a tunnel, as bound into the derived key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum PeerIdentity {
    Gateway { tenant: String, name: String },
    Site { tenant: String, name: String },
}

impl PeerIdentity {
    pub fn gateway(q: &QualifiedName) -> Self {
        PeerIdentity::Gateway {
            tenant: q.tenant.clone(),
            name: q.name.clone(),
        }
    }

    pub fn site(q: &QualifiedName) -> Self {
        PeerIdentity::Site {
            tenant: q.tenant.clone(),
            name: q.name.clone(),
        }
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerIdentity::Gateway { tenant, name } => write!(f, "gateway:{tenant}/{name}"),
            PeerIdentity::Site { tenant, name } => write!(f, "site:{tenant}/{name}"),
        }
    }
}

/// A 32-byte WireGuard preshared key. `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct PresharedKey([u8; 32]);

impl PresharedKey {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Standard base64, as `wg` and `wg-quick` expect.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Lower-case hex (for test vectors).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresharedKey(<redacted>)")
    }
}

/// Why a preshared key cannot be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum DeriveError {
    #[error(transparent)]
    SharedKey(#[from] SharedKeyError),
    #[error("the two ends of a tunnel must differ (both are {0})")]
    SameEnds(String),
    #[error("HKDF refused the output length")]
    Kdf,
}

/// The HKDF info for the two ends (see the module documentation).
pub fn psk_info(a: &PeerIdentity, b: &PeerIdentity) -> Vec<u8> {
    let (a, b) = (a.to_string(), b.to_string());
    let (lo, hi) = if a.as_bytes() <= b.as_bytes() {
        (a, b)
    } else {
        (b, a)
    };
    let mut info = Vec::with_capacity(PSK_INFO_LABEL.len() + 9 + lo.len() + hi.len());
    info.extend_from_slice(PSK_INFO_LABEL);
    info.push(0);
    for s in [&lo, &hi] {
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        info.extend_from_slice(&len.to_be_bytes());
        info.extend_from_slice(s.as_bytes());
    }
    info
}

/// Derives the WireGuard preshared key of the tunnel between `a` and `b` from the user's shared
/// key; symmetric in `a` and `b`. The shared key is checked against GW-5 first.
pub fn derive_preshared_key(
    shared_key: &str,
    a: &PeerIdentity,
    b: &PeerIdentity,
) -> Result<PresharedKey, DeriveError> {
    validate_shared_key(shared_key)?;
    if a == b {
        return Err(DeriveError::SameEnds(a.to_string()));
    }
    let hk = Hkdf::<Sha256>::new(Some(PSK_SALT), shared_key.as_bytes());
    let mut okm = [0u8; 32];
    hk.expand(&psk_info(a, b), &mut okm)
        .map_err(|_| DeriveError::Kdf)?;
    Ok(PresharedKey(okm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_examples() {
        assert_eq!(validate_shared_key("abc123"), Ok(()));
        assert_eq!(validate_shared_key(""), Err(SharedKeyError::Empty));
        assert_eq!(
            validate_shared_key("ab-c"),
            Err(SharedKeyError::InvalidChar {
                ch: '-',
                position: 3
            })
        );
        assert_eq!(validate_shared_key(&"a".repeat(128)), Ok(()));
        assert_eq!(
            validate_shared_key(&"a".repeat(129)),
            Err(SharedKeyError::TooLong { len: 129 })
        );
        assert!(matches!(
            validate_shared_key("é"),
            Err(SharedKeyError::InvalidChar { .. })
        ));
    }
}
