//! Diffie-Hellman groups (IANA "Transform Type 4"): 14, the 2048-bit MODP group (RFC 3526 3),
//! in constant time with crypto-bigint; 19 and 20, ECP P-256 and P-384 (RFC 5903), with
//! RustCrypto's `p256`/`p384`; 31, Curve25519 (RFC 8031), with x25519-dalek. Private values
//! come from the caller's [`Entropy`].

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Odd, U256, U2048};
use p256::elliptic_curve::sec1::ToSec1Point;
use zeroize::Zeroize;

use super::{CryptoError, Entropy, Secret};

/// RFC 3526 section 3: the 2048-bit MODP group's prime; the generator is 2.
const MODP_2048_P: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
);

/// A Diffie-Hellman group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// 14: 2048-bit MODP (RFC 3526).
    Modp2048,
    /// 19: 256-bit random ECP (RFC 5903).
    Ecp256,
    /// 20: 384-bit random ECP (RFC 5903).
    Ecp384,
    /// 31: Curve25519 (RFC 8031).
    Curve25519,
}

impl DhGroup {
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            14 => Some(Self::Modp2048),
            19 => Some(Self::Ecp256),
            20 => Some(Self::Ecp384),
            31 => Some(Self::Curve25519),
            _ => None,
        }
    }

    pub fn id(self) -> u16 {
        match self {
            Self::Modp2048 => 14,
            Self::Ecp256 => 19,
            Self::Ecp384 => 20,
            Self::Curve25519 => 31,
        }
    }

    /// The length of a public value in a KE payload: the prime's length (RFC 7296 3.4), x | y
    /// (RFC 5903 7), the u-coordinate (RFC 8031 3).
    pub fn public_len(self) -> usize {
        match self {
            Self::Modp2048 => 256,
            Self::Ecp256 => 64,
            Self::Ecp384 => 96,
            Self::Curve25519 => 32,
        }
    }

    /// A fresh private value from `entropy` and its public value.
    pub fn generate(self, entropy: &mut dyn Entropy) -> Result<DhPrivate, CryptoError> {
        let key = match self {
            Self::Modp2048 => {
                let mut x = [0u8; 32];
                entropy.fill(&mut x)?;
                let k = Key::Modp(U256::from_be_slice(&x));
                x.zeroize();
                k
            }
            Self::Ecp256 => Key::Ecp256(scalar(entropy, 32, |b| {
                p256::SecretKey::from_slice(b).ok()
            })?),
            Self::Ecp384 => Key::Ecp384(scalar(entropy, 48, |b| {
                p384::SecretKey::from_slice(b).ok()
            })?),
            Self::Curve25519 => {
                let mut x = [0u8; 32];
                entropy.fill(&mut x)?;
                let k = Key::X25519(x25519_dalek::StaticSecret::from(x));
                x.zeroize();
                k
            }
        };
        let public = key.public();
        Ok(DhPrivate {
            group: self,
            key,
            public,
        })
    }
}

/// Draws scalars from `entropy` until one is valid (out of range happens with probability
/// about 2^-32 for P-256, so the loop is bounded).
fn scalar<T>(
    entropy: &mut dyn Entropy,
    len: usize,
    make: impl Fn(&[u8]) -> Option<T>,
) -> Result<T, CryptoError> {
    let mut b = vec![0u8; len];
    for _ in 0..16 {
        entropy.fill(&mut b)?;
        if let Some(k) = make(&b) {
            b.zeroize();
            return Ok(k);
        }
    }
    b.zeroize();
    Err(CryptoError::Entropy)
}

fn modp_params() -> Option<FixedMontyParams<{ U2048::LIMBS }>> {
    let p = Odd::new(U2048::from_be_hex(MODP_2048_P)).into_option()?;
    Some(FixedMontyParams::new_vartime(p))
}

enum Key {
    /// The exponent (256 bits: twice the group's ~112-bit strength, RFC 3526 8).
    Modp(U256),
    Ecp256(p256::SecretKey),
    Ecp384(p384::SecretKey),
    X25519(x25519_dalek::StaticSecret),
}

impl Drop for Key {
    fn drop(&mut self) {
        // The curve keys zeroize themselves on drop.
        if let Self::Modp(x) = self {
            x.zeroize();
        }
    }
}

impl Key {
    fn public(&self) -> Vec<u8> {
        match self {
            Self::Modp(x) => match modp_params() {
                Some(params) => {
                    let g = FixedMontyForm::new(&U2048::from_u8(2), &params);
                    g.pow(x).retrieve().to_be_bytes().to_vec()
                }
                None => Vec::new(),
            },
            Self::Ecp256(k) => {
                let p = k.public_key().to_sec1_point(false);
                p.as_bytes().get(1..).unwrap_or_default().to_vec()
            }
            Self::Ecp384(k) => {
                let p = k.public_key().to_sec1_point(false);
                p.as_bytes().get(1..).unwrap_or_default().to_vec()
            }
            Self::X25519(k) => x25519_dalek::PublicKey::from(k).as_bytes().to_vec(),
        }
    }
}

/// A private Diffie-Hellman value (zeroized on drop) and its public value.
pub struct DhPrivate {
    group: DhGroup,
    key: Key,
    public: Vec<u8>,
}

impl std::fmt::Debug for DhPrivate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DhPrivate({:?})", self.group)
    }
}

impl DhPrivate {
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// The public value, as a KE payload carries it.
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// The shared secret g^ir (RFC 7296 2.14) with the peer's public value: for MODP the
    /// prime's length, big-endian (RFC 7296 2.14 keeps leading zeros); for ECP the x
    /// coordinate (RFC 5903 7); for Curve25519 the X25519 output (RFC 8031 2.1), refused when
    /// all zero (a low-order point).
    pub fn agree(&self, peer: &[u8]) -> Result<Secret, CryptoError> {
        if peer.len() != self.group.public_len() {
            return Err(CryptoError::InvalidPublicValue);
        }
        match &self.key {
            Key::Modp(x) => {
                let params = modp_params().ok_or(CryptoError::InvalidPublicValue)?;
                let y = U2048::from_be_slice(peer);
                let p = U2048::from_be_hex(MODP_2048_P);
                // RFC 8247 / SP 800-56A 5.6.2.3.1: 1 < y < p - 1.
                let p_minus_1 = p.wrapping_sub(&U2048::ONE);
                if y <= U2048::ONE || y >= p_minus_1 {
                    return Err(CryptoError::InvalidPublicValue);
                }
                let s = FixedMontyForm::new(&y, &params).pow(x).retrieve();
                Ok(Secret::new(s.to_be_bytes().to_vec()))
            }
            Key::Ecp256(k) => {
                let pk = p256::PublicKey::from_sec1_bytes(&[&[4u8][..], peer].concat())
                    .map_err(|_| CryptoError::InvalidPublicValue)?;
                Ok(Secret::from_slice(k.diffie_hellman(&pk).raw_secret_bytes()))
            }
            Key::Ecp384(k) => {
                let pk = p384::PublicKey::from_sec1_bytes(&[&[4u8][..], peer].concat())
                    .map_err(|_| CryptoError::InvalidPublicValue)?;
                Ok(Secret::from_slice(k.diffie_hellman(&pk).raw_secret_bytes()))
            }
            Key::X25519(k) => {
                let mut b = [0u8; 32];
                b.copy_from_slice(peer);
                let shared = k.diffie_hellman(&x25519_dalek::PublicKey::from(b));
                if !shared.was_contributory() {
                    return Err(CryptoError::InvalidPublicValue);
                }
                Ok(Secret::from_slice(shared.as_bytes()))
            }
        }
    }
}
