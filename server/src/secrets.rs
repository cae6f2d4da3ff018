//! Secrets at rest: sealed with XChaCha20-Poly1305 under the server's master key.
//!
//! Sealed form: `v1.` + base64url(nonce ‖ ciphertext ‖ tag). The associated data
//! binds a sealed value to its purpose (for example `gateway-private-key:7`), so a
//! sealed value copied into another row or column does not open.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::TryRngCore;
use rand::rngs::OsRng;

const PREFIX: &str = "v1.";
const NONCE_LEN: usize = 24;
/// Length of the master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the master key must be {MASTER_KEY_LEN} bytes, base64-encoded (got {0} bytes)")]
    BadKeyLength(usize),
    #[error("the master key is not valid base64: {0}")]
    BadKeyEncoding(String),
    #[error("cannot read or create the master key file {path}: {source}")]
    KeyFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the operating system's random source failed")]
    Random,
    #[error("a sealed secret is malformed or was sealed under another master key")]
    Open,
    #[error("sealing failed")]
    Seal,
}

/// Seals and opens secrets. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

/// Fills a buffer from the OS random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut b = [0u8; N];
    OsRng
        .try_fill_bytes(&mut b)
        .map_err(|_| SecretError::Random)?;
    Ok(b)
}

impl Sealer {
    pub fn from_key(key: &[u8]) -> Result<Self, SecretError> {
        let cipher = XChaCha20Poly1305::new_from_slice(key)
            .map_err(|_| SecretError::BadKeyLength(key.len()))?;
        Ok(Self { cipher })
    }

    /// Parses a base64 master key (as given in `ISTHMUS_MASTER_KEY`).
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let key = STANDARD
            .decode(text.trim())
            .map_err(|e| SecretError::BadKeyEncoding(e.to_string()))?;
        Self::from_key(&key)
    }

    /// Reads the master key file, creating it (mode 0600) with a fresh key on first run.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        let io = |source| SecretError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let key = random_bytes::<MASTER_KEY_LEN>()?;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io)?;
                f.write_all(STANDARD.encode(key).as_bytes()).map_err(io)?;
                Self::from_key(&key)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Seals `plaintext` for `purpose`.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<String, SecretError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let nonce = XNonce::from(nonce_bytes);
        let ct = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Seal)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Opens a value sealed for `purpose`.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, SecretError> {
        let body = sealed.strip_prefix(PREFIX).ok_or(SecretError::Open)?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SecretError::Open)?;
        if raw.len() < NONCE_LEN {
            return Err(SecretError::Open);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SecretError::Open)?;
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Open)
    }

    /// Opens a sealed UTF-8 string.
    pub fn open_string(&self, purpose: &str, sealed: &str) -> Result<String, SecretError> {
        String::from_utf8(self.open(purpose, sealed)?).map_err(|_| SecretError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_binds_purpose() {
        let s = Sealer::from_key(&[7u8; 32]).unwrap();
        let sealed = s.seal("shared-key:1", b"abc123").unwrap();
        assert!(!sealed.contains("abc123"));
        assert_eq!(s.open("shared-key:1", &sealed).unwrap(), b"abc123");
        assert!(s.open("shared-key:2", &sealed).is_err(), "purpose is bound");
        let other = Sealer::from_key(&[8u8; 32]).unwrap();
        assert!(other.open("shared-key:1", &sealed).is_err(), "key is bound");
        assert!(s.open("shared-key:1", "v1.AAAA").is_err());
        assert!(s.open("shared-key:1", "garbage").is_err());
        assert_ne!(
            sealed,
            s.seal("shared-key:1", b"abc123").unwrap(),
            "fresh nonce"
        );
    }

    #[test]
    fn bad_master_keys_are_explained() {
        assert!(matches!(
            Sealer::from_key(&[0u8; 16]),
            Err(SecretError::BadKeyLength(16))
        ));
        assert!(matches!(
            Sealer::from_base64("!!!"),
            Err(SecretError::BadKeyEncoding(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.key");
        let a = Sealer::load_or_create(&p).unwrap();
        let sealed = a.seal("x", b"y").unwrap();
        let b = Sealer::load_or_create(&p).unwrap();
        assert_eq!(b.open("x", &sealed).unwrap(), b"y");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
