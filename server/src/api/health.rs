use axum::extract::State;
use isthmus_shared::api::Health;

use crate::error::{ApiError, ApiJson};
use crate::state::AppState;

/// `GET /api/v1/health`: version, database kind and the workers whose lease is current.
#[utoipa::path(
    get, path = "/api/v1/health", tag = "service", security(()),
    responses((status = 200, description = "Version, database kind and connected workers", body = Health))
)]
pub async fn health(State(state): State<AppState>) -> Result<ApiJson<Health>, ApiError> {
    let census = super::instances::Census::of(state.db(), state.endpoint_pool().host).await?;
    let workers = census
        .summaries(true)
        .into_iter()
        .map(|w| w.summary)
        .collect();
    Ok(ApiJson(Health {
        status: "ok".to_owned(),
        version: isthmus_shared::VERSION.to_owned(),
        database: state.db_kind(),
        workers,
    }))
}
