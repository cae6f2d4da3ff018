//! Point-to-site enrolment (P2S-3): the wire types of the root-certificate, revocation and
//! enrolment endpoints, and the exact bytes a client signs to prove it holds the private key of
//! a certificate that chains to one of the gateway's roots.
//!
//! The protocol: the client asks the server for a single-use nonce
//! (`POST .../point-to-site/{gateway}/enrol/challenge`), signs [`challenge_message`] (which binds
//! the tenant, the gateway, the nonce and everything the request asks for) with its certificate's
//! private key, and sends the signature with its certificate chain (`POST .../enrol`). The server
//! verifies the chain against the gateway's roots and the signature with the leaf's public key,
//! refuses revoked and expired certificates, allocates an address and answers with the client
//! package: a wg-quick configuration and a QR code. Pure: no clock, no I/O.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::QualifiedName;

/// The domain tag inside every signed challenge, so a signature made for this protocol cannot
/// be replayed elsewhere (and no other signature is valid here).
pub const CHALLENGE_DOMAIN: &str = "isthmus.p2s-enrol/v1";

/// Length of a challenge nonce in bytes (before base64).
pub const NONCE_LEN: usize = 32;

/// How long a challenge nonce is valid, in seconds.
pub const CHALLENGE_TTL_SECS: u32 = 120;

/// The most certificates a client may present (its own plus intermediates).
pub const MAX_CHAIN_CERTIFICATES: usize = 6;

/// The largest PEM text accepted for a root certificate or a client chain.
pub const MAX_PEM_BYTES: usize = 64 * 1024;

/// The signature schemes a client may sign its challenge with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SignatureScheme {
    /// ECDSA over P-256 with SHA-256, ASN.1 DER signature.
    EcdsaP256Sha256,
    /// ECDSA over P-384 with SHA-384, ASN.1 DER signature.
    EcdsaP384Sha384,
    Ed25519,
    /// RSA PKCS#1 v1.5 with SHA-256 (2048 to 8192 bit keys).
    RsaPkcs1Sha256,
    /// RSA-PSS with SHA-256 (2048 to 8192 bit keys).
    RsaPssSha256,
}

/// The answer of `POST .../enrol/challenge`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Challenge {
    /// [`NONCE_LEN`] random bytes, standard base64; single use.
    pub nonce: String,
    /// Seconds the nonce stays valid.
    pub expires_in_secs: u32,
}

/// The body of `POST .../enrol`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The nonce of a challenge for this gateway.
    pub nonce: String,
    /// PEM: the client certificate first, then any intermediates.
    pub certificate_chain: String,
    pub signature_scheme: SignatureScheme,
    /// The signature over [`challenge_message`], standard base64.
    pub signature: String,
    /// The client's WireGuard public key (base64 of 32 bytes); leave it out and set
    /// `generate_keypair` to have the server generate the pair.
    #[serde(default)]
    pub wireguard_public_key: Option<String>,
    /// The server generates the WireGuard key pair and returns the private key once.
    #[serde(default)]
    pub generate_keypair: bool,
    /// The client's name; by default derived from the certificate's common name.
    #[serde(default)]
    pub name: Option<String>,
}

/// What a client signs: every field of its request that matters, as canonical JSON.
#[derive(Serialize)]
struct SignedChallenge<'a> {
    domain: &'a str,
    tenant: &'a str,
    gateway: &'a str,
    nonce: &'a str,
    wireguard_public_key: Option<&'a str>,
    generate_keypair: bool,
    name: Option<&'a str>,
}

/// The exact bytes the client signs for `request` on gateway `gateway`.
pub fn challenge_message(gateway: &QualifiedName, request: &EnrolRequest) -> Vec<u8> {
    let signed = SignedChallenge {
        domain: CHALLENGE_DOMAIN,
        tenant: &gateway.tenant,
        gateway: &gateway.name,
        nonce: &request.nonce,
        wireguard_public_key: request.wireguard_public_key.as_deref(),
        generate_keypair: request.generate_keypair,
        name: request.name.as_deref(),
    };
    // Serialising a struct of strings and a bool cannot fail; an empty message would never
    // verify, so the fallback is safe.
    serde_json::to_vec(&signed).unwrap_or_default()
}

/// The answer of `POST .../enrol`: the client package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnrolResponse {
    pub gateway: QualifiedName,
    /// The client's name in the point-to-site configuration.
    pub client: String,
    /// The address given to the client from the pool.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub address: IpAddr,
    /// SHA-256 of the client certificate (lowercase hex): revoke it with this.
    pub certificate_thumbprint: String,
    /// Whether this certificate had enrolled before (its address is kept, its key replaced).
    pub renewed: bool,
    /// The wg-quick configuration. With a server-generated key pair it holds the private key;
    /// otherwise a placeholder where the client's own private key goes.
    pub config: String,
    /// `config` as a QR code (SVG), for WireGuard's mobile apps; `None` when it is too long to
    /// fit in one.
    pub config_qr_svg: Option<String>,
    /// The server-generated private key (base64), returned this once and never stored.
    #[serde(default)]
    pub private_key: Option<String>,
    /// The topology version the enrolment produced.
    pub version: i64,
    /// GW-10: warnings about the package (an endpoint no device on another host can reach,
    /// and the option that sets the real address); also `# WARNING:` lines in `config`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The body of `POST .../root-certificates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RootCertificateUpload {
    pub name: String,
    /// One X.509 certificate in PEM (`-----BEGIN CERTIFICATE-----`).
    pub pem: String,
}

/// One root certificate as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RootCertificateInfo {
    pub name: String,
    /// SHA-256 of the certificate (lowercase hex).
    pub thumbprint: String,
    pub subject: String,
    pub not_before_unix: i64,
    pub not_after_unix: i64,
    /// Whether the certificate has expired (by the server's clock).
    pub expired: bool,
}

/// The body of `POST .../revoked-thumbprints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// SHA-256 thumbprint: 64 hex digits; colons and spaces are ignored.
    pub thumbprint: String,
}

/// SHA-256 of a DER certificate, lowercase hex: the thumbprint of this product.
pub fn thumbprint(der: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(der);
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Why a thumbprint is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error(
    "{given:?} is not a SHA-256 certificate thumbprint: expected 64 hexadecimal digits (colons and \
     spaces allowed), as listed by the API or printed by `openssl x509 -noout -fingerprint -sha256`"
)]
pub struct ThumbprintError {
    pub given: String,
}

/// A thumbprint in canonical form (lowercase hex, no separators).
pub fn normalize_thumbprint(s: &str) -> Result<String, ThumbprintError> {
    let hex: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '\t'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(ThumbprintError {
            given: s.chars().take(100).collect(),
        })
    }
}

/// A client name derived from a certificate's common name: letters, digits, `-`, `_` and `.`
/// kept, anything else replaced by `-`, at most 40 characters; `client-` plus the thumbprint's
/// first 12 digits when nothing usable remains.
pub fn client_name_from(common_name: Option<&str>, thumbprint: &str) -> String {
    let cleaned: String = common_name
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        format!("client-{}", &thumbprint[..thumbprint.len().min(12)])
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> EnrolRequest {
        EnrolRequest {
            nonce: "bm9uY2U=".into(),
            certificate_chain: String::new(),
            signature_scheme: SignatureScheme::EcdsaP256Sha256,
            signature: String::new(),
            wireguard_public_key: Some("k".into()),
            generate_keypair: false,
            name: None,
        }
    }

    #[test]
    fn challenge_binds_gateway_nonce_and_key() {
        let g = QualifiedName::new("acme", "hub-gw");
        let a = challenge_message(&g, &req());
        assert!(String::from_utf8_lossy(&a).contains(CHALLENGE_DOMAIN));
        let mut other_key = req();
        other_key.wireguard_public_key = Some("x".into());
        assert_ne!(a, challenge_message(&g, &other_key));
        assert_ne!(
            a,
            challenge_message(&QualifiedName::new("acme", "other"), &req())
        );
        let mut other_nonce = req();
        other_nonce.nonce = "b3RoZXI=".into();
        assert_ne!(a, challenge_message(&g, &other_nonce));
    }

    #[test]
    fn thumbprints_normalise() {
        let t = thumbprint(b"x");
        assert_eq!(t.len(), 64);
        let upper_colons: String = t
            .to_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(normalize_thumbprint(&upper_colons), Ok(t));
        assert!(normalize_thumbprint("abc").is_err());
        assert!(normalize_thumbprint(&"g".repeat(64)).is_err());
    }

    #[test]
    fn client_names_come_from_the_common_name() {
        assert_eq!(client_name_from(Some("Alice Laptop"), "ab"), "alice-laptop");
        assert_eq!(
            client_name_from(Some("  "), "0123456789abcdef"),
            "client-0123456789ab"
        );
        assert_eq!(client_name_from(None, "ff"), "client-ff");
    }
}
