use axum::extract::State;
use isthmus_shared::api::{Health, WorkerSummary};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::db::entities::worker;
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;

/// `GET /api/v1/health`: version, database kind and the workers whose lease is current.
#[utoipa::path(
    get, path = "/api/v1/health", tag = "service", security(()),
    responses((status = 200, description = "Version, database kind and connected workers", body = Health))
)]
pub async fn health(State(state): State<AppState>) -> Result<ApiJson<Health>, ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    let workers = worker::Entity::find()
        .filter(worker::Column::LeaseExpiresAt.gt(now))
        .order_by_asc(worker::Column::Name)
        .all(state.db())
        .await?
        .into_iter()
        .map(|w| WorkerSummary {
            name: w.name,
            version: w.version,
            last_seen: chrono::DateTime::from_timestamp_millis(w.last_seen_at)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
            zone: None,
            draining: false,
            active_instances: 0,
            standby_instances: 0,
        })
        .collect();
    Ok(ApiJson(Health {
        status: "ok".to_owned(),
        version: isthmus_shared::VERSION.to_owned(),
        database: state.db_kind(),
        workers,
    }))
}
