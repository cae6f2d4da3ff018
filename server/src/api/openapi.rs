//! The OpenAPI 3 document, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

use super::{auth, health, p2s, resources, status, tenants, worker};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Isthmus API",
        description = "Self-hosted VPN gateways: VNets, gateways, sites, connections, point-to-site."
    ),
    paths(
        health::health,
        worker::heartbeat,
        worker::desired,
        worker::status,
        status::tenant_status,
        status::gateway_status,
        status::set_placement,
        status::metrics,
        status::region_pairs,
        auth::login,
        auth::logout,
        auth::me,
        auth::create_user,
        auth::list_tokens,
        auth::create_token,
        auth::delete_token,
        tenants::list,
        tenants::create,
        tenants::set_member,
        tenants::remove_member,
        tenants::audit_log,
        resources::list,
        resources::get,
        resources::create,
        resources::put,
        resources::delete,
        resources::get_shared_key,
        resources::set_shared_key,
        resources::device_config,
        resources::topology,
        p2s::list_roots,
        p2s::upload_root,
        p2s::delete_root,
        p2s::list_revoked,
        p2s::revoke,
        p2s::unrevoke,
        p2s::delete_client,
        p2s::challenge,
        p2s::enrol,
    )
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
