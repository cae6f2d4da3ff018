//! Revocation by certificate thumbprint, and removal of one enrolled client.

use axum::extract::State;
use axum::http::StatusCode;
use isthmus_shared::enrol::{RevokeRequest, normalize_thumbprint};
use isthmus_shared::model::{Change, PointToSite};
use serde_json::{Value, json};

use super::{p2s_of, written};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::state::AppState;
use crate::store;

/// The names of the clients enrolled with `thumbprint`.
fn clients_with(p: &PointToSite, thumbprint: &str) -> Vec<String> {
    p.clients
        .iter()
        .filter(|c| {
            c.certificate_thumbprint
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(thumbprint))
        })
        .map(|c| c.name.clone())
        .collect()
}

/// `GET .../point-to-site/{gateway}/revoked-thumbprints`.
#[utoipa::path(
    get, path = "/api/v1/tenants/{tenant}/point-to-site/{gateway}/revoked-thumbprints", tag = "point-to-site",
    params(("tenant" = String, Path, description = "Tenant name", example = "demo"), ("gateway" = String, Path, description = "Gateway name", example = "g1")),
    responses(
        (status = 200, description = "Revoked thumbprints and the clients enrolled with each", body = Vec<isthmus_shared::api::RevokedThumbprint>),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized, (status = 404, description = "No such tenant (or you are not a member of it), no such gateway, or it has no point-to-site configuration", body = isthmus_shared::api::ErrorBody), (status = 422, description = "P2S-1: the gateway is PolicyBased", body = isthmus_shared::api::ErrorBody),
    )
)]
pub async fn list_revoked(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, gateway)): ApiPath<(String, String)>,
) -> Result<ApiJson<Vec<Value>>, ApiError> {
    who.require(state.db(), &tenant, Role::Reader).await?;
    let t = store::current_topology(&state).await?;
    let p = p2s_of(&t, &tenant, &gateway)?;
    Ok(ApiJson(
        p.revoked_thumbprints
            .iter()
            .map(|r| json!({"thumbprint": r, "clients": clients_with(p, r)}))
            .collect(),
    ))
}

/// `POST .../point-to-site/{gateway}/revoked-thumbprints`: revokes a client certificate. Its
/// clients lose their peers in the next desired state (the worker applies it within seconds)
/// and the certificate can no longer enrol.
#[utoipa::path(
    post, path = "/api/v1/tenants/{tenant}/point-to-site/{gateway}/revoked-thumbprints", tag = "point-to-site",
    params(("tenant" = String, Path, description = "Tenant name", example = "demo"), ("gateway" = String, Path, description = "Gateway name", example = "g1")),
    request_body(content = RevokeRequest, description = "A SHA-256 thumbprint, 64 hex digits"),
    responses(
        (status = 201, description = "Revoked: its clients lose their tunnels within seconds", body = isthmus_shared::api::Written<isthmus_shared::api::RevokedThumbprint>),
        (status = 400, description = "Not a SHA-256 thumbprint; or bad JSON", body = isthmus_shared::api::ErrorBody),
        crate::api::openapi::Unauthorized, crate::api::openapi::Forbidden, (status = 404, description = "No such tenant (or you are not a member of it), no such gateway, or it has no point-to-site configuration", body = isthmus_shared::api::ErrorBody),
        (status = 409, description = "Already revoked", body = isthmus_shared::api::ErrorBody),
        crate::api::openapi::PayloadTooLarge, crate::api::openapi::UnsupportedMediaType, (status = 422, description = "P2S-1: the gateway is PolicyBased", body = isthmus_shared::api::ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, gateway)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> Result<(StatusCode, ApiJson<Value>), ApiError> {
    who.require(state.db(), &tenant, Role::Owner).await?;
    let thumb = normalize_thumbprint(&req.thumbprint)
        .map_err(|e| ApiError::BadRequest(format!("field `thumbprint`: {e}")))?;
    let (committed, clients) = store::commit_with(
        &state,
        &who,
        "point_to_site.certificate.revoke",
        false,
        |t| {
            let mut p = p2s_of(t, &tenant, &gateway)?.clone();
            if p.revoked_thumbprints
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&thumb))
            {
                return Err(ApiError::Conflict(format!(
                    "thumbprint {thumb} is already revoked on gateway `{gateway}`"
                )));
            }
            p.revoked_thumbprints.push(thumb.clone());
            let clients = clients_with(&p, &thumb);
            Ok((vec![Change::UpsertPointToSite(p)], clients))
        },
    )
    .await?;
    tracing::info!(tenant, gateway, thumbprint = %thumb, clients = ?clients, "certificate revoked");
    Ok((
        StatusCode::CREATED,
        ApiJson(written(
            json!({"thumbprint": thumb, "clients": clients}),
            &committed,
        )),
    ))
}

/// `DELETE .../point-to-site/{gateway}/revoked-thumbprints/{thumbprint}`: lifts a revocation.
#[utoipa::path(
    delete, path = "/api/v1/tenants/{tenant}/point-to-site/{gateway}/revoked-thumbprints/{thumbprint}", tag = "point-to-site",
    params(("tenant" = String, Path, description = "Tenant name", example = "demo"), ("gateway" = String, Path, description = "Gateway name", example = "g1"), ("thumbprint" = String, Path, description = "SHA-256 thumbprint, 64 hex digits")),
    responses(
        (status = 204, description = "No longer revoked"),
        (status = 400, description = "Not a SHA-256 thumbprint", body = isthmus_shared::api::ErrorBody),
        crate::api::openapi::Unauthorized, crate::api::openapi::Forbidden,
        (status = 404, description = "No such tenant, gateway or point-to-site configuration, or the thumbprint is not revoked", body = isthmus_shared::api::ErrorBody),
        (status = 422, description = "P2S-1: the gateway is PolicyBased", body = isthmus_shared::api::ErrorBody),
    )
)]
pub async fn unrevoke(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, gateway, thumbprint)): ApiPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    who.require(state.db(), &tenant, Role::Owner).await?;
    let thumb = normalize_thumbprint(&thumbprint)
        .map_err(|e| ApiError::BadRequest(format!("path: {e}")))?;
    store::commit_with(
        &state,
        &who,
        "point_to_site.certificate.unrevoke",
        false,
        |t| {
            let mut p = p2s_of(t, &tenant, &gateway)?.clone();
            let before = p.revoked_thumbprints.len();
            p.revoked_thumbprints
                .retain(|r| !r.eq_ignore_ascii_case(&thumb));
            if p.revoked_thumbprints.len() == before {
                return Err(ApiError::NotFound(format!(
                    "thumbprint {thumb} is not revoked on gateway `{gateway}`"
                )));
            }
            Ok((vec![Change::UpsertPointToSite(p)], ()))
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE .../point-to-site/{gateway}/clients/{name}`: removes a client and frees its address.
#[utoipa::path(
    delete, path = "/api/v1/tenants/{tenant}/point-to-site/{gateway}/clients/{name}", tag = "point-to-site",
    params(("tenant" = String, Path, description = "Tenant name", example = "demo"), ("gateway" = String, Path, description = "Gateway name", example = "g1"), ("name" = String, Path, description = "Client name")),
    responses(
        (status = 204, description = "Removed; its address is free again"),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized, crate::api::openapi::Forbidden,
        (status = 404, description = "No such tenant, gateway, point-to-site configuration or client", body = isthmus_shared::api::ErrorBody),
        (status = 422, description = "P2S-1: the gateway is PolicyBased", body = isthmus_shared::api::ErrorBody),
    )
)]
pub async fn delete_client(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, gateway, name)): ApiPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    who.require(state.db(), &tenant, Role::Owner).await?;
    store::commit_with(&state, &who, "point_to_site.client.remove", false, |t| {
        let mut p = p2s_of(t, &tenant, &gateway)?.clone();
        let before = p.clients.len();
        p.clients.retain(|c| c.name != name);
        if p.clients.len() == before {
            return Err(ApiError::NotFound(format!(
                "gateway `{gateway}` has no point-to-site client named `{name}`"
            )));
        }
        Ok((vec![Change::UpsertPointToSite(p)], ()))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
