//! The HTTP surface: `/api/v1` and the portal.

mod auth;
mod health;
pub mod openapi;
mod p2s;
mod resources;
mod status;
pub(crate) mod tenants;
mod worker;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// Largest request body accepted anywhere.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The whole application, without binding a port (tests call it in-process).
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/health", get(health::health))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/worker/heartbeat", post(worker::heartbeat))
        .route("/worker/desired", get(worker::desired))
        .route("/worker/status", post(worker::status))
        .route("/placements/{tenant}/{gateway}", put(status::set_placement))
        .route("/tenants/{tenant}/status", get(status::tenant_status))
        .route("/metering/region-pairs", get(status::region_pairs))
        .route("/tenants/{tenant}/topology", get(resources::topology))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route("/users", post(auth::create_user))
        .route("/tokens", get(auth::list_tokens).post(auth::create_token))
        .route("/tokens/{id}", delete(auth::delete_token))
        .route("/tenants", get(tenants::list).post(tenants::create))
        .route(
            "/tenants/{tenant}/members/{username}",
            put(tenants::set_member).delete(tenants::remove_member),
        )
        .route("/audit", get(tenants::audit_log))
        .route(
            "/tenants/{tenant}/connections/{name}/shared-key",
            get(resources::get_shared_key).put(resources::set_shared_key),
        )
        .route(
            "/tenants/{tenant}/gateways/{name}/status",
            get(status::gateway_status),
        )
        .route(
            "/tenants/{tenant}/connections/{name}/device-config",
            get(resources::device_config),
        )
        .route(
            "/tenants/{tenant}/point-to-site/{gateway}/root-certificates",
            get(p2s::list_roots).post(p2s::upload_root),
        )
        .route(
            "/tenants/{tenant}/point-to-site/{gateway}/root-certificates/{name}",
            delete(p2s::delete_root),
        )
        .route(
            "/tenants/{tenant}/point-to-site/{gateway}/revoked-thumbprints",
            get(p2s::list_revoked).post(p2s::revoke),
        )
        .route(
            "/tenants/{tenant}/point-to-site/{gateway}/revoked-thumbprints/{thumbprint}",
            delete(p2s::unrevoke),
        )
        .route(
            "/tenants/{tenant}/point-to-site/{gateway}/clients/{name}",
            delete(p2s::delete_client),
        )
        .route(
            "/tenants/{tenant}/point-to-site/{gateway}/enrol/challenge",
            post(p2s::challenge),
        )
        .route(
            "/tenants/{tenant}/point-to-site/{gateway}/enrol",
            post(p2s::enrol),
        )
        .route(
            "/tenants/{tenant}/{kind}",
            get(resources::list).post(resources::create),
        )
        .route(
            "/tenants/{tenant}/{kind}/{name}",
            get(resources::get)
                .put(resources::put)
                .delete(resources::delete),
        )
        .fallback(api_not_found);

    let index = state.portal_dir().join("index.html");
    let portal = ServeDir::new(state.portal_dir()).fallback(ServeFile::new(index));

    Router::new()
        .nest("/api/v1", api)
        .route("/metrics", get(status::metrics))
        .route("/api", get(api_not_found))
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
