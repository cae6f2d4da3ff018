//! The worker side of the API: workers call in, the server never dials out.

use axum::extract::State;
use axum::http::HeaderMap;
use isthmus_shared::worker_proto::{Heartbeat, HeartbeatAck, PROTOCOL_VERSION};
use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, Set};

use crate::db::entities::worker;
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;
use crate::tokens::find_worker_token;

/// Longest worker name accepted.
const MAX_NAME_LEN: usize = 64;

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "missing worker token: send `Authorization: Bearer <token>` (see `isthmus token create --worker`)"
                    .to_owned(),
            )
        })?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not valid text".to_owned()))?;
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".to_owned())
        })
}

/// `POST /api/v1/worker/heartbeat`: renews the worker's lease in the database.
pub async fn heartbeat(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(beat): ApiJson<Heartbeat>,
) -> Result<ApiJson<HeartbeatAck>, ApiError> {
    let token = bearer(&headers)?;
    let Some(token_row) = find_worker_token(state.db(), token).await? else {
        return Err(ApiError::Unauthorized(
            "unknown worker token: create one with `isthmus token create --worker NAME` and pass it with --token"
                .to_owned(),
        ));
    };
    if beat.protocol != PROTOCOL_VERSION {
        return Err(ApiError::BadRequest(format!(
            "worker speaks protocol {} but this server speaks {}; run worker and server of the same release",
            beat.protocol, PROTOCOL_VERSION
        )));
    }
    let name = beat.name.trim();
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ApiError::BadRequest(format!(
            "field `name`: worker names are 1 to {MAX_NAME_LEN} characters of letters, digits, `-`, `_` and `.`"
        )));
    }
    let now = chrono::Utc::now().timestamp_millis();
    let lease_seconds = state.lease_seconds();
    let row = worker::ActiveModel {
        token_id: Set(token_row.id),
        name: Set(name.to_owned()),
        version: Set(beat.version.chars().take(64).collect()),
        last_seen_at: Set(now),
        lease_expires_at: Set(now + i64::from(lease_seconds) * 1000),
        ..Default::default()
    };
    worker::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([worker::Column::TokenId, worker::Column::Name])
                .update_columns([
                    worker::Column::Version,
                    worker::Column::LastSeenAt,
                    worker::Column::LeaseExpiresAt,
                ])
                .to_owned(),
        )
        .exec(state.db())
        .await?;
    tracing::debug!(worker = name, "heartbeat");
    Ok(ApiJson(HeartbeatAck {
        protocol: PROTOCOL_VERSION,
        lease_seconds,
    }))
}
