//! The AEAD ciphers of the Encrypted payload (RFC 7296 3.14 with RFC 5282) and of ESP
//! (RFC 4106, RFC 7634): AES-GCM with a 16-byte ICV and ChaCha20-Poly1305, from ring.
//!
//! The key material of each is the cipher key followed by a 4-byte salt (RFC 4106 8.1,
//! RFC 5282 7.1, RFC 7634 2); the nonce is salt | 8-byte IV (RFC 4106 4, RFC 7634 2), and the
//! IV is sent in front of the ciphertext.

use ring::aead::{AES_128_GCM, AES_256_GCM, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

use super::{CryptoError, Secret};

/// The AEAD's salt length (RFC 4106 4, RFC 7634 2).
pub const SALT_LEN: usize = 4;
/// The IV sent in each message (RFC 5282 3.1, RFC 7634 2).
pub const IV_LEN: usize = 8;
/// The ICV (RFC 4106: the 16-octet ICV of ENCR_AES_GCM_16; RFC 7634 2).
pub const ICV_LEN: usize = 16;

/// An AEAD encryption transform (IANA "Transform Type 1").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aead {
    /// ENCR_AES_GCM_16 (20) with a 128-bit key.
    AesGcm16_128,
    /// ENCR_AES_GCM_16 (20) with a 256-bit key.
    AesGcm16_256,
    /// ENCR_CHACHA20_POLY1305 (28), no Key Length attribute (RFC 7634 3).
    ChaCha20Poly1305,
}

impl Aead {
    pub const ENCR_AES_GCM_16: u16 = 20;
    pub const ENCR_CHACHA20_POLY1305: u16 = 28;

    /// The transform for an ENCR transform ID and its Key Length attribute.
    pub fn from_transform(id: u16, key_bits: Option<u16>) -> Option<Self> {
        match (id, key_bits) {
            (Self::ENCR_AES_GCM_16, Some(128)) => Some(Self::AesGcm16_128),
            (Self::ENCR_AES_GCM_16, Some(256)) => Some(Self::AesGcm16_256),
            (Self::ENCR_CHACHA20_POLY1305, None) => Some(Self::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// The transform ID and Key Length attribute this AEAD is proposed with.
    pub fn transform(self) -> (u16, Option<u16>) {
        match self {
            Self::AesGcm16_128 => (Self::ENCR_AES_GCM_16, Some(128)),
            Self::AesGcm16_256 => (Self::ENCR_AES_GCM_16, Some(256)),
            Self::ChaCha20Poly1305 => (Self::ENCR_CHACHA20_POLY1305, None),
        }
    }

    fn algorithm(self) -> &'static ring::aead::Algorithm {
        match self {
            Self::AesGcm16_128 => &AES_128_GCM,
            Self::AesGcm16_256 => &AES_256_GCM,
            Self::ChaCha20Poly1305 => &CHACHA20_POLY1305,
        }
    }

    /// The cipher key's length, without the salt.
    pub fn key_len(self) -> usize {
        self.algorithm().key_len()
    }

    /// The key material's length: key and salt (SK_ei, SK_er and each ESP key).
    pub fn keymat_len(self) -> usize {
        self.key_len() + SALT_LEN
    }

    /// A keyed instance from key material (key | salt).
    pub fn key(self, keymat: &Secret) -> Result<AeadKey, CryptoError> {
        let m = keymat.expose();
        if m.len() != self.keymat_len() {
            return Err(CryptoError::BadLength("AEAD key material"));
        }
        let (key, salt) = m.split_at(self.key_len());
        let unbound =
            UnboundKey::new(self.algorithm(), key).map_err(|_| CryptoError::BadLength("key"))?;
        let mut s = [0u8; SALT_LEN];
        s.copy_from_slice(salt);
        Ok(AeadKey {
            aead: self,
            key: LessSafeKey::new(unbound),
            salt: s,
        })
    }
}

/// An AEAD key with its salt (ring's key schedule zeroizes nothing, but holds no raw key).
pub struct AeadKey {
    aead: Aead,
    key: LessSafeKey,
    salt: [u8; SALT_LEN],
}

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AeadKey({:?})", self.aead)
    }
}

impl Drop for AeadKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.salt);
    }
}

impl AeadKey {
    pub fn aead(&self) -> Aead {
        self.aead
    }

    fn nonce(&self, iv: &[u8; IV_LEN]) -> Nonce {
        let mut n = [0u8; 12];
        n[..SALT_LEN].copy_from_slice(&self.salt);
        n[SALT_LEN..].copy_from_slice(iv);
        Nonce::assume_unique_for_key(n)
    }

    /// Encrypts `in_out` in place and appends the ICV.
    pub fn seal(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        in_out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        self.key
            .seal_in_place_append_tag(self.nonce(iv), ring::aead::Aad::from(aad), in_out)
            .map_err(|_| CryptoError::BadLength("plaintext"))
    }

    /// Checks and decrypts `ciphertext | ICV` in place; returns the plaintext's length.
    pub fn open(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        if in_out.len() < ICV_LEN {
            return Err(CryptoError::Integrity);
        }
        self.key
            .open_in_place(self.nonce(iv), ring::aead::Aad::from(aad), in_out)
            .map(|p| p.len())
            .map_err(|_| CryptoError::Integrity)
    }
}
