//! The HTTP surface: `/api/v1` and the portal.

mod auth;
mod health;
pub mod instances;
mod kinds;
pub mod openapi;
mod p2s;
mod resources;
mod status;
mod status_ipsec;
pub(crate) mod tenants;
mod worker;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;

/// Largest request body accepted anywhere.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Every route of the API, each listed once: the path and method come from the handler's
/// `#[utoipa::path]` annotation, which also puts it in the OpenAPI document ([`openapi`]). A
/// handler with several methods on one path is listed in one `routes!`.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(status::metrics))
        .routes(routes!(worker::heartbeat))
        .routes(routes!(worker::desired))
        .routes(routes!(worker::status))
        .routes(routes!(status::set_placement))
        .routes(routes!(instances::list_workers))
        .routes(routes!(instances::drain))
        .routes(routes!(instances::undrain))
        .routes(routes!(status::tenant_status))
        .routes(routes!(status::gateway_status))
        .routes(routes!(status::region_pairs))
        .routes(routes!(resources::topology))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::create_user))
        .routes(routes!(auth::list_tokens, auth::create_token))
        .routes(routes!(auth::delete_token))
        .routes(routes!(tenants::list, tenants::create))
        .routes(routes!(tenants::set_member, tenants::remove_member))
        .routes(routes!(tenants::audit_log))
        .routes(routes!(
            resources::get_shared_key,
            resources::set_shared_key
        ))
        .routes(routes!(resources::device_config))
        .routes(routes!(p2s::roots::list_roots, p2s::roots::upload_root))
        .routes(routes!(p2s::roots::delete_root))
        .routes(routes!(
            p2s::revocation::list_revoked,
            p2s::revocation::revoke
        ))
        .routes(routes!(p2s::revocation::unrevoke))
        .routes(routes!(p2s::revocation::delete_client))
        .routes(routes!(p2s::enrol::challenge))
        .routes(routes!(p2s::enrol::enrol))
        .routes(routes!(kinds::vnets::list, kinds::vnets::create))
        .routes(routes!(
            kinds::vnets::get,
            kinds::vnets::put,
            kinds::vnets::delete
        ))
        .routes(routes!(kinds::gateways::list, kinds::gateways::create))
        .routes(routes!(
            kinds::gateways::get,
            kinds::gateways::put,
            kinds::gateways::delete
        ))
        .routes(routes!(kinds::sites::list, kinds::sites::create))
        .routes(routes!(
            kinds::sites::get,
            kinds::sites::put,
            kinds::sites::delete
        ))
        .routes(routes!(
            kinds::connections::list,
            kinds::connections::create
        ))
        .routes(routes!(
            kinds::connections::get,
            kinds::connections::put,
            kinds::connections::delete
        ))
        .routes(routes!(
            kinds::point_to_site::list,
            kinds::point_to_site::create
        ))
        .routes(routes!(
            kinds::point_to_site::get,
            kinds::point_to_site::put,
            kinds::point_to_site::delete
        ))
}

/// Every known worker as `GET /api/v1/workers` lists them (for `isthmus worker list`).
pub async fn worker_list(state: &AppState) -> Result<Vec<instances::WorkerEntry>, ApiError> {
    let census = instances::Census::of(state.db(), state.endpoint_pool().host).await?;
    Ok(census.summaries(false))
}

/// The whole application, without binding a port (tests call it in-process).
pub fn app(state: AppState) -> Router {
    let (api, _) = api_routes().split_for_parts();
    let index = state.portal_dir().join("index.html");
    let portal = ServeDir::new(state.portal_dir()).fallback(ServeFile::new(index));

    api.route("/api", get(api_not_found))
        .route("/api/{*rest}", axum::routing::any(api_not_found))
        .fallback_service(portal)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn api_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no API route {}; the API lives under /api/v1 (see /api/v1/health)",
        uri.path()
    ))
}
