//! Connection status for people (`/api/v1/tenants/{tenant}/status`), placements, LIM-6
//! metering per region pair (`/api/v1/metering/region-pairs`), and Prometheus metrics
//! (`/metrics`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use isthmus_shared::model::QualifiedName;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use serde::Deserialize;

use crate::audit;
use crate::auth::{Principal, Role, now_ms};
use crate::db::entities::{connection_status, placement, region_pair_bytes, worker};
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::state::AppState;
use crate::store::{self, Kind};
use isthmus_shared::api::{ConnectionStatus, RegionPairMeterView, WorkerRegionPairView};

/// `GET /api/v1/tenants/{tenant}/status`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/status", tag = "status", params(("tenant" = String, Path, description = "Tenant name")), responses((status = 200, description = "Live status of every connection"), (status = 400, description = "Bad input, named in the message"), (status = 401, description = "Not logged in")))]
pub async fn tenant_status(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(tenant): ApiPath<String>,
) -> Result<ApiJson<Vec<ConnectionStatus>>, ApiError> {
    who.require(state.db(), &tenant, Role::Reader).await?;
    let rows = connection_status::Entity::find()
        .filter(connection_status::Column::Tenant.eq(tenant))
        .order_by_asc(connection_status::Column::Gateway)
        .order_by_asc(connection_status::Column::Connection)
        .all(state.db())
        .await?;
    Ok(ApiJson(
        rows.into_iter()
            .map(|r| ConnectionStatus {
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
                state: Default::default(),
                since: None,
                reason: None,
            })
            .collect(),
    ))
}

/// Every region pair with its per-worker rows, sorted by pair then worker.
async fn region_pair_meters<C: sea_orm::ConnectionTrait>(
    db: &C,
) -> Result<Vec<RegionPairMeterView>, ApiError> {
    let rows = region_pair_bytes::Entity::find()
        .order_by_asc(region_pair_bytes::Column::RegionA)
        .order_by_asc(region_pair_bytes::Column::RegionB)
        .order_by_asc(region_pair_bytes::Column::Worker)
        .all(db)
        .await?;
    let mut pairs: BTreeMap<(String, String), RegionPairMeterView> = BTreeMap::new();
    for r in rows {
        let rx = r.earlier_rx_bytes.saturating_add(r.rx_bytes);
        let tx = r.earlier_tx_bytes.saturating_add(r.tx_bytes);
        let billable = r.region_a != r.region_b;
        let p = pairs
            .entry((r.region_a.clone(), r.region_b.clone()))
            .or_insert_with(|| RegionPairMeterView {
                a: r.region_a.clone(),
                b: r.region_b.clone(),
                billable,
                rx_bytes: 0,
                tx_bytes: 0,
                billed_bytes: 0,
                workers: Vec::new(),
            });
        p.rx_bytes = p.rx_bytes.saturating_add(rx);
        p.tx_bytes = p.tx_bytes.saturating_add(tx);
        if billable {
            p.billed_bytes = p.tx_bytes;
        }
        p.workers.push(WorkerRegionPairView {
            worker: r.worker,
            rx_bytes: rx,
            tx_bytes: tx,
            reported_at: chrono::DateTime::from_timestamp_millis(r.updated_at)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
        });
    }
    Ok(pairs.into_values().collect())
}

/// `GET /api/v1/metering/region-pairs` (administrators): LIM-6 bytes per region pair.
#[utoipa::path(get, path = "/api/v1/metering/region-pairs", tag = "status", responses((status = 200, description = "Outer VNet-to-VNet bytes per region pair, per worker and summed; billable only across regions"), (status = 401, description = "Not logged in"), (status = 403, description = "Administrators only")))]
pub async fn region_pairs(
    State(state): State<AppState>,
    who: Principal,
) -> Result<ApiJson<Vec<RegionPairMeterView>>, ApiError> {
    who.require_admin()?;
    Ok(ApiJson(region_pair_meters(state.db()).await?))
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
    let metric = "isthmus_region_pair_bytes_total";
    let _ = writeln!(
        out,
        "# HELP {metric} LIM-6: outer VNet-to-VNet bytes per region pair, summed over workers (billable only across regions)."
    );
    let _ = writeln!(out, "# TYPE {metric} counter");
    for p in region_pair_meters(db).await? {
        for (direction, value) in [("rx", p.rx_bytes), ("tx", p.tx_bytes)] {
            let _ = writeln!(
                out,
                "{metric}{{a=\"{}\",b=\"{}\",direction=\"{direction}\",billable=\"{}\"}} {value}",
                label(&p.a),
                label(&p.b),
                p.billable
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
