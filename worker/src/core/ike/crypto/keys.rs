//! The IKE SA's key schedule (RFC 7296 2.14), the PSK AUTH payload (2.15) and CHILD SA keys
//! (2.17).

use super::{Aead, CryptoError, Prf, Secret};

/// The pad of the shared-key AUTH computation (RFC 7296 2.15).
const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// The keys of an IKE SA with an AEAD (RFC 7296 2.14; RFC 5282 7: SK_ai and SK_ar are empty).
#[derive(Debug)]
pub struct IkeKeys {
    pub sk_d: Secret,
    /// SK_ei: key | salt of the initiator's messages.
    pub sk_ei: Secret,
    /// SK_er: key | salt of the responder's messages.
    pub sk_er: Secret,
    pub sk_pi: Secret,
    pub sk_pr: Secret,
}

/// SKEYSEED = prf(Ni | Nr, g^ir) (RFC 7296 2.14; an HMAC takes the whole Ni | Nr as its key).
pub fn skeyseed(prf: Prf, ni: &[u8], nr: &[u8], g_ir: &Secret) -> Secret {
    let mut key = Secret::new([ni, nr].concat());
    let s = prf.compute(key.expose(), &[g_ir.expose()]);
    zeroize::Zeroize::zeroize(&mut key);
    s
}

/// The SKEYSEED of a rekeyed IKE SA (RFC 7296 2.18): prf(SK_d (old), g^ir (new) | Ni | Nr),
/// with the old SA's PRF and the nonces of the CREATE_CHILD_SA exchange.
pub fn rekey_skeyseed(prf: Prf, sk_d: &Secret, g_ir: &Secret, ni: &[u8], nr: &[u8]) -> Secret {
    prf.compute(sk_d.expose(), &[g_ir.expose(), ni, nr])
}

/// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi |
/// SPIr) (RFC 7296 2.14), for an AEAD (no integrity keys).
pub fn ike_keys(
    prf: Prf,
    aead: Aead,
    skeyseed: &Secret,
    ni: &[u8],
    nr: &[u8],
    spi_i: u64,
    spi_r: u64,
) -> Result<IkeKeys, CryptoError> {
    let p = prf.output_len();
    let e = aead.keymat_len();
    let seed = [ni, nr, &spi_i.to_be_bytes(), &spi_r.to_be_bytes()].concat();
    let mut m = prf.plus(skeyseed.expose(), &seed, 3 * p + 2 * e)?;
    Ok(IkeKeys {
        sk_d: m.take_front(p)?,
        sk_ei: m.take_front(e)?,
        sk_er: m.take_front(e)?,
        sk_pi: m.take_front(p)?,
        sk_pr: m.take_front(p)?,
    })
}

/// The AUTH payload's data for a shared key (RFC 7296 2.15):
/// `prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)`, where SignedOctets is the
/// sender's first message as sent | the peer's nonce data | prf(SK_px, the sender's ID
/// payload body). The initiator passes RealMessage1, Nr and SK_pi; the responder
/// RealMessage2, Ni and SK_pr.
pub fn psk_auth(
    prf: Prf,
    psk: &Secret,
    real_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &Secret,
    id_body: &[u8],
) -> Secret {
    let maced_id = prf.compute(sk_p.expose(), &[id_body]);
    let pad_key = prf.compute(psk.expose(), &[KEY_PAD]);
    prf.compute(
        pad_key.expose(),
        &[real_message, peer_nonce, maced_id.expose()],
    )
}

/// Compares two MACs in constant time.
pub fn macs_equal(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// The keys of a CHILD SA with an AEAD, one per direction (RFC 7296 2.17).
#[derive(Debug)]
pub struct ChildKeys {
    /// Key | salt of the initiator's packets to the responder.
    pub initiator_to_responder: Secret,
    /// Key | salt of the responder's packets to the initiator.
    pub responder_to_initiator: Secret,
}

/// KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) (RFC 7296 2.17): first the initiator-to-
/// responder keys, then the other direction. The CHILD SA of IKE_AUTH has no new g^ir, and
/// Ni, Nr are then the IKE_SA_INIT nonces.
pub fn child_keys(
    prf: Prf,
    aead: Aead,
    sk_d: &Secret,
    g_ir_new: Option<&Secret>,
    ni: &[u8],
    nr: &[u8],
) -> Result<ChildKeys, CryptoError> {
    let e = aead.keymat_len();
    let mut seed = Secret::new([g_ir_new.map(Secret::expose).unwrap_or_default(), ni, nr].concat());
    let mut m = prf.plus(sk_d.expose(), seed.expose(), 2 * e)?;
    zeroize::Zeroize::zeroize(&mut seed);
    Ok(ChildKeys {
        initiator_to_responder: m.take_front(e)?,
        responder_to_initiator: m.take_front(e)?,
    })
}
