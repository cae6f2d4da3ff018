//! Root certificates of a point-to-site configuration (P2S-3): list, upload, delete.

use axum::extract::State;
use axum::http::StatusCode;
use isthmus_shared::enrol::{RootCertificateInfo, RootCertificateUpload};
use isthmus_shared::model::{Change, RootCertificate};
use isthmus_shared::validate::name_problem;
use serde_json::{Value, json};

use super::{cert_error, now_unix, p2s_of, written};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::p2s::{parse_root, root_info};
use crate::state::AppState;
use crate::store;

/// `GET .../point-to-site/{gateway}/root-certificates`.
#[utoipa::path(
    get, path = "/api/v1/tenants/{tenant}/point-to-site/{gateway}/root-certificates", tag = "point-to-site",
    params(("tenant" = String, Path, description = "Tenant name", example = "demo"), ("gateway" = String, Path, description = "Gateway name", example = "g1")),
    responses(
        (status = 200, description = "The gateway's root certificates: name, SHA-256 thumbprint, subject, validity", body = Vec<RootCertificateInfo>),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized, (status = 404, description = "No such tenant (or you are not a member of it), no such gateway, or it has no point-to-site configuration", body = isthmus_shared::api::ErrorBody), (status = 422, description = "P2S-1: the gateway is PolicyBased", body = isthmus_shared::api::ErrorBody),
    )
)]
pub async fn list_roots(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, gateway)): ApiPath<(String, String)>,
) -> Result<ApiJson<Vec<RootCertificateInfo>>, ApiError> {
    who.require(state.db(), &tenant, Role::Reader).await?;
    let t = store::current_topology(&state).await?;
    let p = p2s_of(&t, &tenant, &gateway)?;
    let now = now_unix();
    Ok(ApiJson(
        p.root_certificates
            .iter()
            .map(|r| root_info(&r.name, &r.data, now))
            .collect(),
    ))
}

/// `POST .../point-to-site/{gateway}/root-certificates`: uploads one PEM root (at most 20: P2S-3).
#[utoipa::path(
    post, path = "/api/v1/tenants/{tenant}/point-to-site/{gateway}/root-certificates", tag = "point-to-site",
    params(("tenant" = String, Path, description = "Tenant name", example = "demo"), ("gateway" = String, Path, description = "Gateway name", example = "g1")),
    request_body(content = RootCertificateUpload, description = "One X.509 CA certificate in PEM"),
    responses(
        (status = 201, description = "Stored", body = isthmus_shared::api::Written<RootCertificateInfo>),
        (status = 400, description = "Malformed PEM, not a certificate, a private key, several certificates, an end-entity or expired certificate; or a bad name or JSON", body = isthmus_shared::api::ErrorBody),
        crate::api::openapi::Unauthorized, crate::api::openapi::Forbidden, (status = 404, description = "No such tenant (or you are not a member of it), no such gateway, or it has no point-to-site configuration", body = isthmus_shared::api::ErrorBody),
        (status = 409, description = "The name or the certificate is already uploaded", body = isthmus_shared::api::ErrorBody),
        (status = 413, description = "PEM text over 64 KiB, or a body over 1 MiB", body = isthmus_shared::api::ErrorBody),
        crate::api::openapi::UnsupportedMediaType,
        (status = 422, description = "P2S-3: more than 20 roots; P2S-1: a PolicyBased gateway", body = isthmus_shared::api::ErrorBody),
    )
)]
pub async fn upload_root(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, gateway)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<RootCertificateUpload>,
) -> Result<(StatusCode, ApiJson<Value>), ApiError> {
    who.require(state.db(), &tenant, Role::Owner).await?;
    if let Some(problem) = name_problem(&req.name) {
        return Err(ApiError::BadRequest(format!("field `name`: {problem}")));
    }
    // Refuse a PolicyBased or unknown gateway before looking at the certificate.
    p2s_of(&*store::current_topology(&state).await?, &tenant, &gateway)?;
    let now = now_unix();
    let (pem, summary) = parse_root(&req.pem, now).map_err(cert_error)?;
    let name = req.name.clone();
    let (committed, ()) = store::commit_with(
        &state,
        &who,
        "point_to_site.root_certificate.add",
        false,
        |t| {
            let mut p = p2s_of(t, &tenant, &gateway)?.clone();
            if p.root_certificates.iter().any(|r| r.name == name) {
                return Err(ApiError::Conflict(format!(
                    "a root certificate named `{name}` exists already on gateway `{gateway}`; \
                     pick another name or remove it first"
                )));
            }
            if let Some(same) = p
                .root_certificates
                .iter()
                .find(|r| root_info(&r.name, &r.data, now).thumbprint == summary.thumbprint)
            {
                return Err(ApiError::Conflict(format!(
                    "this certificate (thumbprint {}) is already uploaded as `{}`",
                    summary.thumbprint, same.name
                )));
            }
            p.root_certificates.push(RootCertificate {
                name: name.clone(),
                data: pem.clone(),
            });
            Ok((vec![Change::UpsertPointToSite(p)], ()))
        },
    )
    .await?;
    let info = root_info(&req.name, &pem, now);
    tracing::info!(tenant, gateway, root = %req.name, thumbprint = %info.thumbprint, "root certificate uploaded");
    Ok((
        StatusCode::CREATED,
        ApiJson(written(json!(info), &committed)),
    ))
}

/// `DELETE .../point-to-site/{gateway}/root-certificates/{name}`.
#[utoipa::path(
    delete, path = "/api/v1/tenants/{tenant}/point-to-site/{gateway}/root-certificates/{name}", tag = "point-to-site",
    params(("tenant" = String, Path, description = "Tenant name", example = "demo"), ("gateway" = String, Path, description = "Gateway name", example = "g1"), ("name" = String, Path, description = "Root certificate name")),
    responses(
        (status = 204, description = "Removed; clients enrolled under it keep their tunnels until revoked"),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized, crate::api::openapi::Forbidden,
        (status = 404, description = "No such tenant, gateway, point-to-site configuration or root certificate", body = isthmus_shared::api::ErrorBody),
        (status = 422, description = "P2S-1: the gateway is PolicyBased", body = isthmus_shared::api::ErrorBody),
    )
)]
pub async fn delete_root(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, gateway, name)): ApiPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    who.require(state.db(), &tenant, Role::Owner).await?;
    store::commit_with(
        &state,
        &who,
        "point_to_site.root_certificate.remove",
        false,
        |t| {
            let mut p = p2s_of(t, &tenant, &gateway)?.clone();
            let before = p.root_certificates.len();
            p.root_certificates.retain(|r| r.name != name);
            if p.root_certificates.len() == before {
                return Err(ApiError::NotFound(format!(
                    "gateway `{gateway}` has no root certificate named `{name}`"
                )));
            }
            Ok((vec![Change::UpsertPointToSite(p)], ()))
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
