//! The Encrypted payload, SK (RFC 7296 3.14), with an AEAD (RFC 5282 5): the associated data
//! is the message from the IKE header through the Encrypted payload's header, the plaintext is
//! the inner payloads, padding (none here) and the Pad Length byte.

use super::crypto::CryptoError;
use super::crypto::aead::{AeadKey, ICV_LEN, IV_LEN};
use super::wire::{
    self, HEADER_LEN, Header, Message, PAYLOAD_HEADER_LEN, Payload, PayloadType, WireError,
};

/// Why an Encrypted payload did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtectError {
    #[error("no Encrypted payload")]
    NotEncrypted,
    #[error("the Encrypted payload is too short")]
    Truncated,
    #[error("the integrity check failed")]
    Integrity,
    #[error("the Pad Length is longer than the plaintext")]
    BadPadding,
    #[error("the inner payloads: {0}")]
    Inner(#[from] WireError),
    #[error("crypto: {0}")]
    Crypto(CryptoError),
}

/// A message whose payloads are all inside an Encrypted payload, sealed with `key` and IV
/// `iv` (a per-key counter: RFC 5282 3.1 and RFC 7634 2 ask only that it never repeats).
pub fn seal(
    header: &Header,
    inner: &[Payload],
    key: &AeadKey,
    iv: u64,
) -> Result<Vec<u8>, ProtectError> {
    let mut plaintext = Vec::with_capacity(256);
    let first = wire::write_chain(inner, &mut plaintext);
    // Pad Length 0: an AEAD needs no padding (RFC 5282 3).
    plaintext.push(0);
    let sk_len = PAYLOAD_HEADER_LEN + IV_LEN + plaintext.len() + ICV_LEN;
    let sk_len16 = u16::try_from(sk_len).map_err(|_| ProtectError::Truncated)?;
    let mut out = Vec::with_capacity(HEADER_LEN + sk_len);
    header.write(PayloadType::ENCRYPTED, 0, &mut out);
    out.push(first.0);
    out.push(0);
    out.extend_from_slice(&sk_len16.to_be_bytes());
    let total = u32::try_from(HEADER_LEN + sk_len).map_err(|_| ProtectError::Truncated)?;
    if let Some(l) = out.get_mut(24..28) {
        l.copy_from_slice(&total.to_be_bytes());
    }
    let iv = iv.to_be_bytes();
    key.seal(&iv, &out, &mut plaintext)
        .map_err(ProtectError::Crypto)?;
    out.extend_from_slice(&iv);
    out.extend_from_slice(&plaintext);
    Ok(out)
}

/// The inner payloads of `msg` (parsed from `datagram`), checked and decrypted with `key`.
pub fn open(datagram: &[u8], msg: &Message, key: &AeadKey) -> Result<Vec<Payload>, ProtectError> {
    let Some(Payload::Encrypted(sk)) = msg.payloads.last() else {
        return Err(ProtectError::NotEncrypted);
    };
    let aad_len = datagram
        .len()
        .checked_sub(sk.body.len())
        .ok_or(ProtectError::Truncated)?;
    let aad = datagram.get(..aad_len).ok_or(ProtectError::Truncated)?;
    if sk.body.len() < IV_LEN + ICV_LEN + 1 {
        return Err(ProtectError::Truncated);
    }
    let (iv, rest) = sk.body.split_at(IV_LEN);
    let mut iv8 = [0u8; IV_LEN];
    iv8.copy_from_slice(iv);
    let mut buf = rest.to_vec();
    let n = key
        .open(&iv8, aad, &mut buf)
        .map_err(|_| ProtectError::Integrity)?;
    let plaintext = buf.get(..n).ok_or(ProtectError::Truncated)?;
    let (&pad, body) = plaintext.split_last().ok_or(ProtectError::BadPadding)?;
    let inner_len = body
        .len()
        .checked_sub(usize::from(pad))
        .ok_or(ProtectError::BadPadding)?;
    let inner = body.get(..inner_len).ok_or(ProtectError::BadPadding)?;
    Ok(wire::parse_chain(sk.first_inner, inner, false)?)
}
