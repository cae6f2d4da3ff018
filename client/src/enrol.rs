//! The enrolment exchange: ask for a challenge, sign it with the certificate's key, send the
//! proof with the WireGuard public key, and receive the client package.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use isthmus_shared::api::ErrorBody;
use isthmus_shared::device::PRIVATE_KEY_PLACEHOLDER;
use isthmus_shared::enrol::{Challenge, EnrolRequest, EnrolResponse, challenge_message};
use isthmus_shared::model::QualifiedName;

use crate::sign::{SignError, sign};

/// Why an enrolment failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("{0}")]
    Sign(#[from] SignError),
    #[error("cannot reach the server at {url}: {detail}")]
    Http { url: String, detail: String },
    #[error("the server refused ({status}): {message}{violations}")]
    Refused {
        status: u16,
        message: String,
        violations: String,
    },
    #[error(
        "the server's answer is not what this client expects ({0}); use client and server of the same release"
    )]
    Protocol(String),
    #[error("the CA file is not a PEM certificate: {0}")]
    BadCa(String),
}

/// What to enrol.
#[derive(Debug, Clone)]
pub struct EnrolOptions {
    /// The server's base URL, e.g. `https://vpn.example.com`.
    pub server: String,
    pub gateway: QualifiedName,
    /// PEM: the client certificate, then any intermediates.
    pub certificate_chain: String,
    /// PEM: the certificate's private key (never sent).
    pub private_key: String,
    /// The client's name; by default the server derives it from the certificate.
    pub name: Option<String>,
    /// Have the server generate the WireGuard key pair (by default it is generated here and
    /// the private key never leaves this machine).
    pub server_generates_key: bool,
    /// PEM of an extra CA to trust for the server's HTTPS certificate.
    pub server_ca: Option<String>,
}

/// The outcome: the server's package and the configuration with the private key in place.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub response: EnrolResponse,
    /// The wg-quick configuration, ready to use (it holds the WireGuard private key).
    pub config: String,
}

fn client(opts: &EnrolOptions) -> Result<reqwest::Client, EnrolError> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(std::time::Duration::from_secs(30));
    if let Some(ca) = &opts.server_ca {
        let cert = reqwest::Certificate::from_pem(ca.as_bytes())
            .map_err(|e| EnrolError::BadCa(e.to_string()))?;
        b = b.add_root_certificate(cert);
    }
    b.build().map_err(|e| EnrolError::Http {
        url: opts.server.clone(),
        detail: e.to_string(),
    })
}

async fn post<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    body: Option<&EnrolRequest>,
) -> Result<T, EnrolError> {
    let mut rq = http.post(url);
    if let Some(b) = body {
        rq = rq.json(b);
    }
    let resp = rq.send().await.map_err(|e| EnrolError::Http {
        url: url.to_owned(),
        detail: e.to_string(),
    })?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| EnrolError::Http {
        url: url.to_owned(),
        detail: e.to_string(),
    })?;
    if !status.is_success() {
        return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => EnrolError::Refused {
                status: status.as_u16(),
                message: e.message,
                violations: e
                    .violations
                    .iter()
                    .map(|v| format!("\n  {:?} at {}: {}", v.rule, v.path, v.message))
                    .collect(),
            },
            Err(_) => EnrolError::Refused {
                status: status.as_u16(),
                message: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
                violations: String::new(),
            },
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| EnrolError::Protocol(e.to_string()))
}

/// A fresh WireGuard key pair (private, public), base64.
pub fn wireguard_keypair() -> (String, String) {
    let secret = x25519_dalek::StaticSecret::from(rand::random::<[u8; 32]>());
    let public = x25519_dalek::PublicKey::from(&secret);
    (
        STANDARD.encode(secret.to_bytes()),
        STANDARD.encode(public.as_bytes()),
    )
}

/// Enrols: challenge, signed proof, package.
pub async fn enrol(opts: &EnrolOptions) -> Result<Enrolment, EnrolError> {
    let http = client(opts)?;
    let base = format!(
        "{}/api/v1/tenants/{}/point-to-site/{}/enrol",
        opts.server.trim_end_matches('/'),
        opts.gateway.tenant,
        opts.gateway.name
    );
    let challenge: Challenge = post(&http, &format!("{base}/challenge"), None).await?;
    let local_key = (!opts.server_generates_key).then(wireguard_keypair);
    let mut req = EnrolRequest {
        nonce: challenge.nonce,
        certificate_chain: opts.certificate_chain.clone(),
        // Replaced below; the scheme is not part of the signed message.
        signature_scheme: isthmus_shared::enrol::SignatureScheme::Ed25519,
        signature: String::new(),
        wireguard_public_key: local_key.as_ref().map(|(_, public)| public.clone()),
        generate_keypair: opts.server_generates_key,
        name: opts.name.clone(),
    };
    let (scheme, signature) = sign(&opts.private_key, &challenge_message(&opts.gateway, &req))?;
    req.signature_scheme = scheme;
    req.signature = STANDARD.encode(signature);
    let response: EnrolResponse = post(&http, &base, Some(&req)).await?;
    let config = match &local_key {
        Some((private, _)) => response.config.replace(PRIVATE_KEY_PLACEHOLDER, private),
        None => response.config.clone(),
    };
    Ok(Enrolment { response, config })
}
