//! Point-to-site certificates (P2S-3): parsing uploaded roots, and verifying a client's chain and
//! its signature over the enrolment challenge.
//!
//! PEM is read with `rustls-pki-types`, certificates are described (subject, validity, CA flag)
//! with `x509-parser`, and chains and signatures are verified with `rustls-webpki` (path
//! building with loop detection and depth and signature budgets, validity at the given time,
//! the client-authentication key usage).

use isthmus_shared::enrol::{
    MAX_CHAIN_CERTIFICATES, MAX_PEM_BYTES, RootCertificateInfo, SignatureScheme, thumbprint,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};

/// What is wrong with a certificate or a chain; each message names the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error(
        "field `{field}`: the PEM text is {len} bytes; at most {MAX_PEM_BYTES} are accepted (a \
         certificate is a few KiB): send only the certificate(s)"
    )]
    TooLarge { field: &'static str, len: usize },
    #[error(
        "field `{field}`: the PEM text holds a private key; never send a private key, only the \
         certificate (`-----BEGIN CERTIFICATE-----`)"
    )]
    PrivateKey { field: &'static str },
    #[error("field `{field}`: malformed PEM ({detail}); send `-----BEGIN CERTIFICATE-----` blocks")]
    MalformedPem { field: &'static str, detail: String },
    #[error("field `{field}`: no `-----BEGIN CERTIFICATE-----` block found")]
    NoCertificate { field: &'static str },
    #[error("field `{field}`: {found} certificates; {expected}")]
    TooMany {
        field: &'static str,
        found: usize,
        expected: String,
    },
    #[error("field `{field}`: certificate {index} is not a valid X.509 certificate ({detail})")]
    NotX509 {
        field: &'static str,
        index: usize,
        detail: String,
    },
    #[error(
        "field `pem`: the certificate ({subject}) is an end-entity certificate (basic constraints \
         say it is not a CA); upload the root (or issuing CA) certificate that signed the clients' \
         certificates"
    )]
    NotCa { subject: String },
    #[error(
        "field `pem`: the root certificate ({subject}) expired at {not_after} (Unix time); upload a \
         current one"
    )]
    RootExpired { subject: String, not_after: i64 },
    #[error(
        "the client certificate chain is too long or loops ({detail}); send the client \
         certificate and at most {} intermediates that lead to an uploaded root",
        MAX_CHAIN_CERTIFICATES - 1
    )]
    ChainTooLong { detail: String },
    #[error(
        "the client certificate does not chain to any root certificate of gateway {gateway} \
         ({detail}); use a certificate issued under one of its roots, or upload its root"
    )]
    UntrustedChain { gateway: String, detail: String },
    #[error(
        "the client certificate (or a certificate in its chain) has expired ({detail}); have a \
         new one issued"
    )]
    Expired { detail: String },
    #[error(
        "the client certificate chain loops ({path}): each certificate must be issued by the next \
         one, ending at an uploaded root; send the chain from the client certificate up, once"
    )]
    ChainLoops { path: String },
    #[error("the client certificate (or one in its chain) is not valid yet ({detail})")]
    NotYetValid { detail: String },
    #[error(
        "the certificate with thumbprint {thumbprint} is revoked on gateway {gateway}; have a new \
         certificate issued"
    )]
    Revoked { gateway: String, thumbprint: String },
    #[error(
        "the client certificate may not be used for client authentication ({detail}); issue it \
         with the clientAuth extended key usage"
    )]
    WrongUsage { detail: String },
    #[error(
        "the first certificate of `certificate_chain` is a CA certificate; put the client's own \
         (end-entity) certificate first"
    )]
    CaAsClient,
    #[error(
        "the signature over the challenge does not verify with the client certificate's public \
         key ({detail}): sign the challenge message with the private key of the first certificate \
         in `certificate_chain`, with the scheme named in `signature_scheme`"
    )]
    BadSignature { detail: String },
    #[error("the client certificate is not acceptable: {detail}")]
    Invalid { detail: String },
}

impl CertError {
    /// Whether the request itself is malformed (400/413), as opposed to refused (403).
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            CertError::TooLarge { .. }
                | CertError::PrivateKey { .. }
                | CertError::MalformedPem { .. }
                | CertError::NoCertificate { .. }
                | CertError::TooMany { .. }
                | CertError::NotX509 { .. }
                | CertError::NotCa { .. }
                | CertError::RootExpired { .. }
                | CertError::ChainTooLong { .. }
                | CertError::ChainLoops { .. }
        )
    }
}

/// Splits PEM text into DER certificates: at most `max`, nothing but certificates.
pub fn parse_pem(
    field: &'static str,
    pem: &str,
    max: usize,
    expected: &str,
) -> Result<Vec<CertificateDer<'static>>, CertError> {
    if pem.len() > MAX_PEM_BYTES {
        return Err(CertError::TooLarge {
            field,
            len: pem.len(),
        });
    }
    if pem.contains("PRIVATE KEY-----") {
        return Err(CertError::PrivateKey { field });
    }
    let mut out = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let der = item.map_err(|e| CertError::MalformedPem {
            field,
            detail: e.to_string(),
        })?;
        out.push(der);
        if out.len() > max {
            return Err(CertError::TooMany {
                field,
                found: pem.matches("-----BEGIN CERTIFICATE-----").count(),
                expected: expected.to_owned(),
            });
        }
    }
    if out.is_empty() {
        return Err(if pem.contains("-----BEGIN") {
            CertError::MalformedPem {
                field,
                detail: "a PEM block is present but it is not a certificate".to_owned(),
            }
        } else {
            CertError::NoCertificate { field }
        });
    }
    Ok(out)
}

/// What the API shows of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    pub thumbprint: String,
    pub subject: String,
    pub common_name: Option<String>,
    pub not_before_unix: i64,
    pub not_after_unix: i64,
    /// `Some(false)` when basic constraints say "not a CA"; `None` without the extension.
    pub is_ca: Option<bool>,
    /// The DER of the subject and issuer names, to follow a presented chain.
    pub subject_der: Vec<u8>,
    pub issuer_der: Vec<u8>,
}

/// Describes one DER certificate.
pub fn describe(field: &'static str, index: usize, der: &[u8]) -> Result<CertSummary, CertError> {
    let not_x509 = |detail: String| CertError::NotX509 {
        field,
        index,
        detail,
    };
    let (rest, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| not_x509(e.to_string()))?;
    if !rest.is_empty() {
        return Err(not_x509(format!(
            "{} bytes of trailing data after the certificate",
            rest.len()
        )));
    }
    let is_ca = cert
        .basic_constraints()
        .map_err(|e| not_x509(format!("basic constraints: {e}")))?
        .map(|b| b.value.ca);
    Ok(CertSummary {
        thumbprint: thumbprint(der),
        subject: cert.subject().to_string(),
        common_name: cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned),
        not_before_unix: cert.validity().not_before.timestamp(),
        not_after_unix: cert.validity().not_after.timestamp(),
        is_ca,
        subject_der: cert.subject().as_raw().to_vec(),
        issuer_der: cert.issuer().as_raw().to_vec(),
    })
}

/// Checks an uploaded root certificate (exactly one, usable as a trust anchor, a CA, not
/// expired at `now_unix`) and returns the PEM to store and its summary.
pub fn parse_root(pem: &str, now_unix: i64) -> Result<(String, CertSummary), CertError> {
    let certs = parse_pem(
        "pem",
        pem,
        1,
        "upload one root certificate per request (clients send their intermediates when they enrol)",
    )?;
    let der = &certs[0];
    let summary = describe("pem", 1, der)?;
    webpki::anchor_from_trusted_cert(der).map_err(|e| CertError::NotX509 {
        field: "pem",
        index: 1,
        detail: format!("not usable as a trust anchor: {e}"),
    })?;
    if summary.is_ca == Some(false) {
        return Err(CertError::NotCa {
            subject: summary.subject,
        });
    }
    if summary.not_after_unix < now_unix {
        return Err(CertError::RootExpired {
            subject: summary.subject,
            not_after: summary.not_after_unix,
        });
    }
    // Store a canonical PEM of the one certificate (not whatever surrounded it).
    Ok((to_pem(der), summary))
}

/// The PEM text of a DER certificate.
pub fn to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(chunk));
        s.push('\n');
    }
    s.push_str("-----END CERTIFICATE-----\n");
    s
}

/// The listing entry of a stored root.
pub fn root_info(name: &str, pem: &str, now_unix: i64) -> RootCertificateInfo {
    match parse_pem("data", pem, 1, "one")
        .ok()
        .and_then(|c| describe("data", 1, &c[0]).ok())
    {
        Some(s) => RootCertificateInfo {
            name: name.to_owned(),
            thumbprint: s.thumbprint,
            subject: s.subject,
            not_before_unix: s.not_before_unix,
            not_after_unix: s.not_after_unix,
            expired: s.not_after_unix < now_unix,
        },
        // Stored through the generic resource API without being a certificate.
        None => RootCertificateInfo {
            name: name.to_owned(),
            thumbprint: String::new(),
            subject: "(not a PEM certificate: it cannot authorise clients)".to_owned(),
            not_before_unix: 0,
            not_after_unix: 0,
            expired: true,
        },
    }
}

fn algorithm(scheme: SignatureScheme) -> &'static dyn SignatureVerificationAlgorithm {
    match scheme {
        SignatureScheme::EcdsaP256Sha256 => webpki::ring::ECDSA_P256_SHA256,
        SignatureScheme::EcdsaP384Sha384 => webpki::ring::ECDSA_P384_SHA384,
        SignatureScheme::Ed25519 => webpki::ring::ED25519,
        SignatureScheme::RsaPkcs1Sha256 => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        SignatureScheme::RsaPssSha256 => webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    }
}

/// A verified client: its certificate's summary.
pub struct VerifiedClient {
    pub leaf: CertSummary,
}

/// Verifies that `chain` (leaf first) leads to one of `roots` at `now`, that the leaf may
/// authenticate clients, and that `signature` over `message` verifies with the leaf's key.
pub fn verify_client(
    gateway: &str,
    chain: &[CertificateDer<'static>],
    roots: &[CertificateDer<'static>],
    now: UnixTime,
    scheme: SignatureScheme,
    message: &[u8],
    signature: &[u8],
) -> Result<VerifiedClient, CertError> {
    let (leaf_der, intermediates) = chain.split_first().ok_or(CertError::NoCertificate {
        field: "certificate_chain",
    })?;
    let leaf = describe("certificate_chain", 1, leaf_der)?;
    let mut presented = vec![leaf.clone()];
    for (i, der) in intermediates.iter().enumerate() {
        presented.push(describe("certificate_chain", i + 2, der)?);
    }
    check_loops(&presented)?;
    let ee = webpki::EndEntityCert::try_from(leaf_der).map_err(|e| CertError::NotX509 {
        field: "certificate_chain",
        index: 1,
        detail: e.to_string(),
    })?;
    let anchors: Vec<_> = roots
        .iter()
        .filter_map(|r| webpki::anchor_from_trusted_cert(r).ok())
        .collect();
    if anchors.is_empty() {
        return Err(CertError::UntrustedChain {
            gateway: gateway.to_owned(),
            detail: "the gateway has no root certificate yet: upload one first".to_owned(),
        });
    }
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        intermediates,
        now,
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .map_err(|e| chain_error(gateway, e))?;
    ee.verify_signature(algorithm(scheme), message, signature)
        .map_err(|e| CertError::BadSignature {
            detail: e.to_string(),
        })?;
    Ok(VerifiedClient { leaf })
}

/// Follows the presented chain from the leaf, issuer to subject; a certificate reached twice
/// means the chain loops (a self-issued certificate ends the walk).
fn check_loops(presented: &[CertSummary]) -> Result<(), CertError> {
    let mut at = 0usize;
    let mut seen = vec![0usize];
    loop {
        let cur = &presented[at];
        if cur.issuer_der == cur.subject_der {
            return Ok(());
        }
        let Some(next) = presented
            .iter()
            .position(|c| c.subject_der == cur.issuer_der)
        else {
            return Ok(());
        };
        if seen.contains(&next) {
            seen.push(next);
            let path: Vec<String> = seen.iter().map(|&i| presented[i].subject.clone()).collect();
            return Err(CertError::ChainLoops {
                path: path.join(" -> "),
            });
        }
        seen.push(next);
        at = next;
    }
}

fn chain_error(gateway: &str, e: webpki::Error) -> CertError {
    use webpki::Error as E;
    let detail = e.to_string();
    match e {
        E::CertExpired { .. } => CertError::Expired { detail },
        E::CertNotValidYet { .. } => CertError::NotYetValid { detail },
        E::MaximumPathDepthExceeded
        | E::MaximumSignatureChecksExceeded
        | E::MaximumPathBuildCallsExceeded => CertError::ChainTooLong { detail },
        E::UnknownIssuer
        | E::InvalidSignatureForPublicKey
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => CertError::UntrustedChain {
            gateway: gateway.to_owned(),
            detail,
        },
        E::RequiredEkuNotFoundContext(_) => CertError::WrongUsage { detail },
        E::CaUsedAsEndEntity => CertError::CaAsClient,
        _ => CertError::Invalid { detail },
    }
}
