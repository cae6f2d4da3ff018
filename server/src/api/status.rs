//! Connection status for people (`/api/v1/tenants/{tenant}/status`), placements, and
//! Prometheus metrics (`/metrics`).

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use isthmus_shared::model::QualifiedName;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use crate::audit;
use crate::auth::{Principal, Role, now_ms};
use crate::db::entities::{connection_status, placement, worker};
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::state::AppState;
use crate::store::{self, Kind};

/// A connection's live status, as the portal shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionStatusView {
    pub gateway: String,
    pub connection: String,
    pub worker: String,
    /// Seconds since the Unix epoch of the last handshake.
    pub last_handshake_unix: Option<i64>,
    pub rx_bytes: i64,
    pub tx_bytes: i64,
    pub endpoint: Option<String>,
    /// RFC 3339 time of the report.
    pub reported_at: String,
}

/// `GET /api/v1/tenants/{tenant}/status`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/status", tag = "status", params(("tenant" = String, Path, description = "Tenant name")), responses((status = 200, description = "Live status of every connection"), (status = 400, description = "Bad input, named in the message"), (status = 401, description = "Not logged in")))]
pub async fn tenant_status(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(tenant): ApiPath<String>,
) -> Result<ApiJson<Vec<ConnectionStatusView>>, ApiError> {
    who.require(state.db(), &tenant, Role::Reader).await?;
    let rows = connection_status::Entity::find()
        .filter(connection_status::Column::Tenant.eq(tenant))
        .order_by_asc(connection_status::Column::Gateway)
        .order_by_asc(connection_status::Column::Connection)
        .all(state.db())
        .await?;
    Ok(ApiJson(
        rows.into_iter()
            .map(|r| ConnectionStatusView {
                gateway: r.gateway,
                connection: r.connection,
                worker: r.worker,
                last_handshake_unix: r.last_handshake_unix,
                rx_bytes: r.rx_bytes,
                tx_bytes: r.tx_bytes,
                endpoint: r.endpoint,
                reported_at: chrono::DateTime::from_timestamp_millis(r.updated_at)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPlacement {
    pub worker: String,
}

/// `PUT /api/v1/placements/{tenant}/{gateway}` (administrators): pins a gateway to a worker.
#[utoipa::path(put, path = "/api/v1/placements/{tenant}/{gateway}", tag = "worker", params(("tenant" = String, Path), ("gateway" = String, Path)), request_body(content = Object, description = "{worker}"), responses((status = 204, description = "Pinned"), (status = 403, description = "Administrators only")))]
pub async fn set_placement(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, gateway)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<SetPlacement>,
) -> Result<StatusCode, ApiError> {
    who.require_admin()?;
    store::get_row(
        state.db(),
        Kind::Gateway,
        &QualifiedName::new(&tenant, &gateway),
    )
    .await?;
    let txn = state.db().begin().await?;
    placement::Entity::insert(placement::ActiveModel {
        tenant: Set(tenant.clone()),
        gateway: Set(gateway.clone()),
        worker: Set(req.worker.clone()),
        pinned: Set(true),
    })
    .on_conflict(
        OnConflict::columns([placement::Column::Tenant, placement::Column::Gateway])
            .update_columns([placement::Column::Worker, placement::Column::Pinned])
            .to_owned(),
    )
    .exec(&txn)
    .await?;
    store::bump_version(&txn).await?;
    audit::record(
        &txn,
        &who,
        "placement.set",
        Some(&tenant),
        &format!("{gateway} -> {}", req.worker),
    )
    .await?;
    txn.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "service", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let db = state.db();
    let now = now_ms();
    let live = worker::Entity::find()
        .filter(worker::Column::LeaseExpiresAt.gt(now))
        .count(db)
        .await?;
    let version = store::current_version(db).await?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP isthmus_workers_connected Workers whose lease is current."
    );
    let _ = writeln!(out, "# TYPE isthmus_workers_connected gauge");
    let _ = writeln!(out, "isthmus_workers_connected {live}");
    let _ = writeln!(
        out,
        "# HELP isthmus_topology_version Generation of the stored topology."
    );
    let _ = writeln!(out, "# TYPE isthmus_topology_version gauge");
    let _ = writeln!(out, "isthmus_topology_version {version}");
    let rows = connection_status::Entity::find()
        .order_by_asc(connection_status::Column::Tenant)
        .order_by_asc(connection_status::Column::Gateway)
        .order_by_asc(connection_status::Column::Connection)
        .all(db)
        .await?;
    for (metric, help, kind) in [
        (
            "isthmus_connection_rx_bytes",
            "Bytes received from the peer.",
            "counter",
        ),
        (
            "isthmus_connection_tx_bytes",
            "Bytes sent to the peer.",
            "counter",
        ),
        (
            "isthmus_connection_last_handshake_seconds",
            "Unix time of the last handshake.",
            "gauge",
        ),
    ] {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} {kind}");
        for r in &rows {
            let value = match metric {
                "isthmus_connection_rx_bytes" => r.rx_bytes,
                "isthmus_connection_tx_bytes" => r.tx_bytes,
                _ => r.last_handshake_unix.unwrap_or(0),
            };
            let _ = writeln!(
                out,
                "{metric}{{tenant=\"{}\",gateway=\"{}\",connection=\"{}\"}} {value}",
                label(&r.tenant),
                label(&r.gateway),
                label(&r.connection)
            );
        }
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    ))
}
