//! Certificate-based enrolment: a single-use challenge, then the signed request that gets an
//! address from the pool and the client package.

use std::collections::BTreeSet;
use std::net::IpAddr;

use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ipnet::IpNet;
use isthmus_shared::device::{PRIVATE_KEY_PLACEHOLDER, p2s_client_config};
use isthmus_shared::enrol::{
    CHALLENGE_TTL_SECS, Challenge, EnrolRequest, EnrolResponse, MAX_CHAIN_CERTIFICATES, NONCE_LEN,
    challenge_message, client_name_from,
};
use isthmus_shared::model::{Change, P2sClient, PointToSite, QualifiedName};
use isthmus_shared::validate::{is_wireguard_key, name_problem};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};

use super::{cert_error, p2s_of};
use crate::auth::{Principal, now_ms};
use crate::client::ClientInfo;
use crate::db::entities::p2s_challenge;
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::p2s::{CertError, parse_pem, verify_client};
use crate::secrets::random_bytes;
use crate::state::AppState;
use crate::store;

/// Unexpired challenges one client address (IPv6: one /64) may hold for one gateway; more are
/// refused with 429. An enrolment needs one. There is no limit per gateway as a whole, so
/// nobody can use up the challenges of other clients.
const MAX_OPEN_CHALLENGES_PER_CLIENT: u64 = 16;
/// Unexpired challenges one client address may hold over every gateway.
const MAX_OPEN_CHALLENGES_PER_CLIENT_TOTAL: u64 = 64;
/// The longest signature accepted (an RSA-8192 signature is 1024 bytes).
const MAX_SIGNATURE_BYTES: usize = 1024;

fn nonce_hash(nonce: &[u8]) -> String {
    hex::encode(Sha256::digest(nonce))
}

/// `POST .../point-to-site/{gateway}/enrol/challenge`: a single-use nonce to sign. No login:
/// the client proves itself with its certificate.
#[utoipa::path(
    post, path = "/api/v1/tenants/{tenant}/point-to-site/{gateway}/enrol/challenge", tag = "point-to-site", security(()),
    params(("tenant" = String, Path, description = "Tenant name", example = "demo"), ("gateway" = String, Path, description = "Gateway name", example = "g1")),
    responses(
        (status = 200, description = "A single-use nonce to sign with the client certificate's key", body = Challenge),
        crate::api::openapi::BadRequest,
        (status = 404, description = "No such gateway, or it has no point-to-site configuration", body = isthmus_shared::api::ErrorBody),
        (status = 422, description = "P2S-1: the gateway is PolicyBased", body = isthmus_shared::api::ErrorBody),
        crate::api::openapi::TooManyRequests,
    )
)]
pub async fn challenge(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiPath((tenant, gateway)): ApiPath<(String, String)>,
) -> Result<ApiJson<Challenge>, ApiError> {
    p2s_of(&*store::current_topology(&state).await?, &tenant, &gateway)?;
    let now = now_ms();
    let db = state.db();
    let from = client.key();
    p2s_challenge::Entity::delete_many()
        .filter(p2s_challenge::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    // Stored first, counted after: of any number of parallel requests from one client, at most
    // the limit keep their challenge (the database is the count, so every replica agrees).
    let nonce = random_bytes::<NONCE_LEN>()?;
    let hash = nonce_hash(&nonce);
    p2s_challenge::Entity::insert(p2s_challenge::ActiveModel {
        nonce_sha256: Set(hash.clone()),
        tenant: Set(tenant.clone()),
        gateway: Set(gateway.clone()),
        expires_at: Set(now + i64::from(CHALLENGE_TTL_SECS) * 1000),
        client: Set(Some(from.clone())),
        ..Default::default()
    })
    .exec(db)
    .await?;
    let of_client = p2s_challenge::Entity::find()
        .filter(p2s_challenge::Column::Client.eq(from.as_str()))
        .filter(p2s_challenge::Column::ExpiresAt.gt(now));
    let here = of_client
        .clone()
        .filter(p2s_challenge::Column::Tenant.eq(tenant.as_str()))
        .filter(p2s_challenge::Column::Gateway.eq(gateway.as_str()))
        .count(db)
        .await?;
    let everywhere = of_client.count(db).await?;
    if here > MAX_OPEN_CHALLENGES_PER_CLIENT || everywhere > MAX_OPEN_CHALLENGES_PER_CLIENT_TOTAL {
        p2s_challenge::Entity::delete_many()
            .filter(p2s_challenge::Column::NonceSha256.eq(hash))
            .exec(db)
            .await?;
        return Err(ApiError::TooManyRequests {
            message: format!(
                "your address holds too many open enrolment challenges (at most \
                 {MAX_OPEN_CHALLENGES_PER_CLIENT} per gateway, \
                 {MAX_OPEN_CHALLENGES_PER_CLIENT_TOTAL} in all); use one to enrol, or wait for \
                 them to expire ({CHALLENGE_TTL_SECS} s)"
            ),
            retry_after_s: u64::from(CHALLENGE_TTL_SECS),
        });
    }
    Ok(ApiJson(Challenge {
        nonce: STANDARD.encode(nonce),
        expires_in_secs: CHALLENGE_TTL_SECS,
    }))
}

/// The first address of the pools that no client of `p` holds (revoked clients keep theirs
/// until they are removed).
fn free_address(p: &PointToSite) -> Option<IpAddr> {
    let used: BTreeSet<IpAddr> = p.clients.iter().map(|c| c.address).collect();
    for pool in &p.address_pool {
        let found = match pool.trunc() {
            IpNet::V4(n) => n.hosts().map(IpAddr::V4).find(|a| !used.contains(a)),
            // Skip the subnet-router anycast address.
            IpNet::V6(n) => n
                .hosts()
                .skip(1)
                .map(IpAddr::V6)
                .find(|a| !used.contains(a)),
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// The checks of an enrolment request that need no database.
struct Checked {
    chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    nonce: Vec<u8>,
    signature: Vec<u8>,
}

fn check_request(req: &EnrolRequest) -> Result<Checked, ApiError> {
    if let Some(n) = &req.name
        && let Some(problem) = name_problem(n)
    {
        return Err(ApiError::BadRequest(format!("field `name`: {problem}")));
    }
    match (&req.wireguard_public_key, req.generate_keypair) {
        (Some(_), true) => {
            return Err(ApiError::BadRequest(
                "give either `wireguard_public_key` or `generate_keypair: true`, not both"
                    .to_owned(),
            ));
        }
        (None, false) => {
            return Err(ApiError::BadRequest(
                "field `wireguard_public_key` is missing: send the client's WireGuard public key \
                 (`wg pubkey`), or set `generate_keypair: true` to have the server generate the \
                 pair"
                    .to_owned(),
            ));
        }
        (Some(k), false) if !is_wireguard_key(k) => {
            return Err(ApiError::BadRequest(
                "field `wireguard_public_key`: not a WireGuard public key: expected 32 bytes in \
                 standard base64 (44 characters ending in '='), as printed by `wg pubkey`"
                    .to_owned(),
            ));
        }
        _ => {}
    }
    let nonce = STANDARD
        .decode(req.nonce.trim())
        .ok()
        .filter(|n| n.len() == NONCE_LEN)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "field `nonce`: expected the base64 nonce of a challenge ({NONCE_LEN} bytes)"
            ))
        })?;
    if req.signature.len() > MAX_SIGNATURE_BYTES * 2 {
        return Err(ApiError::BadRequest(format!(
            "field `signature`: longer than any supported signature ({MAX_SIGNATURE_BYTES} bytes)"
        )));
    }
    let signature = STANDARD.decode(req.signature.trim()).map_err(|e| {
        ApiError::BadRequest(format!("field `signature`: not standard base64 ({e})"))
    })?;
    let chain = parse_pem(
        "certificate_chain",
        &req.certificate_chain,
        MAX_CHAIN_CERTIFICATES,
        &format!(
            "send the client certificate and at most {} intermediates",
            MAX_CHAIN_CERTIFICATES - 1
        ),
    )
    .map_err(cert_error)?;
    Ok(Checked {
        chain,
        nonce,
        signature,
    })
}

/// What the enrolment transaction decided.
struct Enrolled {
    name: String,
    address: IpAddr,
    renewed: bool,
}

/// `POST .../point-to-site/{gateway}/enrol`: a client with a certificate chaining to one of the
/// gateway's roots gets an address and its client package (P2S-3, P2S-2, P2S-6, P2S-8).
#[utoipa::path(
    post, path = "/api/v1/tenants/{tenant}/point-to-site/{gateway}/enrol", tag = "point-to-site", security(()),
    params(("tenant" = String, Path, description = "Tenant name", example = "demo"), ("gateway" = String, Path, description = "Gateway name", example = "g1")),
    request_body(content = EnrolRequest, description = "The signed challenge, the certificate chain (PEM) and the client's WireGuard public key (or `generate_keypair`)"),
    responses(
        (status = 200, description = "The client's address, wg-quick configuration, QR code (SVG) and, when generated, private key", body = EnrolResponse),
        (status = 400, description = "Malformed request, PEM, key or chain (named in the message)", body = isthmus_shared::api::ErrorBody),
        (status = 401, description = "Unknown, used or expired challenge", body = isthmus_shared::api::ErrorBody),
        (status = 403, description = "Certificate revoked, expired, from a foreign root, or a bad signature", body = isthmus_shared::api::ErrorBody),
        (status = 404, description = "No such gateway, or it has no point-to-site configuration", body = isthmus_shared::api::ErrorBody),
        (status = 409, description = "Address pool exhausted or client name taken", body = isthmus_shared::api::ErrorBody),
        (status = 413, description = "PEM text over 64 KiB, or a body over 1 MiB", body = isthmus_shared::api::ErrorBody),
        crate::api::openapi::UnsupportedMediaType,
        (status = 422, description = "P2S-1: a PolicyBased gateway; P2S-2: the SKU's client limit", body = isthmus_shared::api::ErrorBody),
        crate::api::openapi::TooManyRequests,
    )
)]
pub async fn enrol(
    State(state): State<AppState>,
    ApiPath((tenant, gateway)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<EnrolRequest>,
) -> Result<ApiJson<EnrolResponse>, ApiError> {
    let checked = check_request(&req)?;
    let q = QualifiedName::new(&tenant, &gateway);
    let topology = store::current_topology(&state).await?;
    let p = p2s_of(&topology, &tenant, &gateway)?;

    // The nonce is spent whatever happens next: one signature, one attempt.
    let spent = p2s_challenge::Entity::delete_many()
        .filter(p2s_challenge::Column::NonceSha256.eq(nonce_hash(&checked.nonce)))
        .filter(p2s_challenge::Column::Tenant.eq(tenant.as_str()))
        .filter(p2s_challenge::Column::Gateway.eq(gateway.as_str()))
        .filter(p2s_challenge::Column::ExpiresAt.gt(now_ms()))
        .exec(state.db())
        .await?;
    if spent.rows_affected != 1 {
        return Err(ApiError::Unauthorized(format!(
            "field `nonce`: no open challenge of gateway `{gateway}` has this nonce (it was used, \
             expired after {CHALLENGE_TTL_SECS} s, or belongs to another gateway): ask for a new \
             one with POST /api/v1/tenants/{tenant}/point-to-site/{gateway}/enrol/challenge"
        )));
    }

    let revoked = |p: &PointToSite| -> Option<String> {
        checked
            .chain
            .iter()
            .map(|c| isthmus_shared::enrol::thumbprint(c))
            .find(|t| {
                p.revoked_thumbprints
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(t))
            })
    };
    if let Some(thumbprint) = revoked(p) {
        return Err(cert_error(CertError::Revoked {
            gateway: q.to_string(),
            thumbprint,
        }));
    }
    let roots: Vec<_> = p
        .root_certificates
        .iter()
        .filter_map(|r| parse_pem("data", &r.data, 1, "one").ok())
        .flatten()
        .collect();
    let verified = verify_client(
        &q.to_string(),
        &checked.chain,
        &roots,
        rustls_pki_types::UnixTime::now(),
        req.signature_scheme,
        &challenge_message(&q, &req),
        &checked.signature,
    )
    .map_err(cert_error)?;
    let leaf = verified.leaf;

    let (private_key, public_key) = match &req.wireguard_public_key {
        Some(k) => (None, k.clone()),
        None => {
            let (private, public) = store::wireguard_keypair()?;
            (Some(private), public)
        }
    };
    let who = Principal {
        user_id: 0,
        username: format!("p2s-certificate {}", leaf.thumbprint),
        is_admin: false,
        token: None,
    };
    let (committed, enrolled) =
        store::commit_with(&state, &who, "point_to_site.client.enrol", false, |t| {
            let mut p = p2s_of(t, &tenant, &gateway)?.clone();
            if let Some(thumbprint) = revoked(&p) {
                return Err(cert_error(CertError::Revoked {
                    gateway: q.to_string(),
                    thumbprint,
                }));
            }
            let mine = p.clients.iter_mut().find(|c| {
                c.certificate_thumbprint
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case(&leaf.thumbprint))
            });
            let enrolled = match mine {
                // The same certificate again: keep the name and address, take the new key.
                Some(c) => {
                    c.public_key = public_key.clone();
                    Enrolled {
                        name: c.name.clone(),
                        address: c.address,
                        renewed: true,
                    }
                }
                None => {
                    let taken = |n: &str| p.clients.iter().any(|c| c.name == n);
                    let name = match &req.name {
                        Some(n) if taken(n) => {
                            return Err(ApiError::Conflict(format!(
                                "a client named `{n}` exists already on gateway `{gateway}` with \
                                 another certificate; pick another name"
                            )));
                        }
                        Some(n) => n.clone(),
                        None => {
                            let base =
                                client_name_from(leaf.common_name.as_deref(), &leaf.thumbprint);
                            if taken(&base) {
                                format!("{base}-{}", &leaf.thumbprint[..8])
                            } else {
                                base
                            }
                        }
                    };
                    if taken(&name) {
                        return Err(ApiError::Conflict(format!(
                            "a client named `{name}` exists already on gateway `{gateway}`; \
                             pass a name"
                        )));
                    }
                    let address = free_address(&p).ok_or_else(|| {
                        ApiError::Conflict(format!(
                            "every address of the point-to-site pool of gateway `{gateway}` is \
                             taken by an enrolled client; widen the pool or remove clients"
                        ))
                    })?;
                    p.clients.push(P2sClient {
                        name: name.clone(),
                        public_key: public_key.clone(),
                        address,
                        certificate_thumbprint: Some(leaf.thumbprint.clone()),
                    });
                    Enrolled {
                        name,
                        address,
                        renewed: false,
                    }
                }
            };
            Ok((vec![Change::UpsertPointToSite(p)], enrolled))
        })
        .await?;
    tracing::info!(tenant, gateway, client = %enrolled.name, address = %enrolled.address,
        thumbprint = %leaf.thumbprint, renewed = enrolled.renewed, "point-to-site client enrolled");

    let after = store::current_topology(&state).await?;
    let mut device = p2s_client_config(&after, &q, &enrolled.name)
        .map_err(|e| ApiError::Conflict(format!("the client package cannot be built: {e}")))?;
    // Issue 16: on an active-active gateway the endpoints stay instance 0's and 1's through a
    // failover (its site tunnels are per instance), but only the active instance serves
    // point-to-site clients: name it first, so a stock WireGuard client reaches it.
    let slots = store::instances::slots_of(state.db()).await?;
    for peer in &mut device.peers {
        let gw = &peer.gateway;
        let active_active = after
            .gateway(&gw.tenant, &gw.name)
            .is_some_and(|g| g.active_active);
        let second_active = slots
            .get(&(gw.tenant.clone(), gw.name.clone()))
            .is_some_and(|s| s.is_pair() && s.active == 1);
        if active_active && second_active && peer.failover_endpoint.is_some() {
            std::mem::swap(&mut peer.endpoint, &mut peer.failover_endpoint);
        }
    }
    let tcp_port = state.endpoint_pool().p2s_tcp_port;
    if tcp_port != 0 {
        device = device.with_tcp_port(tcp_port);
    }
    let mut config = device.to_wg_quick();
    if let Some(k) = &private_key {
        config = config.replace(PRIVATE_KEY_PLACEHOLDER, k);
    }
    let config_qr_svg = qr_svg(&config);
    // GW-10: say so when the package names an endpoint no device can reach (a redundant
    // gateway's other instance included).
    let warnings: Vec<String> = device
        .peers
        .iter()
        .flat_map(|p| [&p.endpoint, &p.failover_endpoint])
        .filter_map(|e| e.as_deref()?.parse().ok())
        .filter_map(isthmus_shared::device::endpoint_warning)
        .collect();
    Ok(ApiJson(EnrolResponse {
        gateway: q,
        client: enrolled.name,
        address: enrolled.address,
        certificate_thumbprint: leaf.thumbprint,
        renewed: enrolled.renewed,
        config,
        config_qr_svg,
        private_key,
        version: committed.version,
        warnings,
    }))
}

/// `text` as a QR code in SVG, or `None` when it does not fit in one.
fn qr_svg(text: &str) -> Option<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::L).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(256, 256)
            .build(),
    )
}
