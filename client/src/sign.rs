//! Signing the enrolment challenge with the private key of the client certificate.

use isthmus_shared::enrol::SignatureScheme;
use rustls::SignatureScheme as Tls;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// Why the challenge cannot be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error(
        "the key file is not a PEM private key ({0}); give the private key of the client \
         certificate (`-----BEGIN PRIVATE KEY-----`, `EC PRIVATE KEY` or `RSA PRIVATE KEY`)"
    )]
    NotAKey(String),
    #[error(
        "the private key is of an unsupported kind ({0}); use an ECDSA P-256/P-384, Ed25519 or \
         RSA (2048+ bit) key"
    )]
    Unsupported(String),
    #[error("signing failed: {0}")]
    Failed(String),
}

/// The schemes offered, in order of preference.
const OFFERED: [Tls; 5] = [
    Tls::ED25519,
    Tls::ECDSA_NISTP256_SHA256,
    Tls::ECDSA_NISTP384_SHA384,
    Tls::RSA_PSS_SHA256,
    Tls::RSA_PKCS1_SHA256,
];

fn to_shared(s: Tls) -> Option<SignatureScheme> {
    Some(match s {
        Tls::ED25519 => SignatureScheme::Ed25519,
        Tls::ECDSA_NISTP256_SHA256 => SignatureScheme::EcdsaP256Sha256,
        Tls::ECDSA_NISTP384_SHA384 => SignatureScheme::EcdsaP384Sha384,
        Tls::RSA_PSS_SHA256 => SignatureScheme::RsaPssSha256,
        Tls::RSA_PKCS1_SHA256 => SignatureScheme::RsaPkcs1Sha256,
        _ => return None,
    })
}

/// Signs `message` with the PEM private key `key_pem`; returns the scheme used and the signature.
pub fn sign(key_pem: &str, message: &[u8]) -> Result<(SignatureScheme, Vec<u8>), SignError> {
    let der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| SignError::NotAKey(e.to_string()))?;
    let key = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|e| SignError::Unsupported(e.to_string()))?;
    let signer = key
        .choose_scheme(&OFFERED)
        .ok_or_else(|| SignError::Unsupported(format!("{:?}", key.algorithm())))?;
    let scheme = to_shared(signer.scheme())
        .ok_or_else(|| SignError::Unsupported(format!("{:?}", signer.scheme())))?;
    let signature = signer
        .sign(message)
        .map_err(|e| SignError::Failed(e.to_string()))?;
    Ok((scheme, signature))
}
