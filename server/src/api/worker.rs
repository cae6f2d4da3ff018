//! The worker side of the API: workers call in, the server never dials out.
//!
//! Everything a worker's session needs is in the database (leases, placements, the
//! topology version), so a worker may talk to any server replica.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use isthmus_shared::desired::{
    DesiredStateMessage, GatewayInputs, Secret, StatusReportMessage, desired_state,
};
use isthmus_shared::model::{QualifiedName, RegionPair, region_pair};
use isthmus_shared::worker_proto::{Heartbeat, HeartbeatAck, PROTOCOL_VERSION};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use crate::auth::now_ms;
use crate::db::entities::{
    connection_status, gateway_status, placement, region_pair_bytes, worker, worker_token,
};
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::state::AppState;
use crate::store::{self, Kind, endpoints, placement as placing};
use crate::tokens::find_worker_token;

/// Longest worker name accepted.
const MAX_NAME_LEN: usize = 64;
/// Most public addresses a heartbeat may state.
const MAX_PUBLIC_ADDRESSES: usize = 16;
/// Longest region name accepted in a status report (LIM-6).
const MAX_REGION_LEN: usize = 100;
/// How long a desired-state request waits for a change before answering 204.
pub const LONG_POLL: Duration = Duration::from_secs(25);
/// How often a waiting request looks at the topology version.
const POLL_EVERY: Duration = Duration::from_millis(250);

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

async fn worker_token_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<worker_token::Model, ApiError> {
    let token = bearer(headers)?;
    find_worker_token(state.db(), token).await?.ok_or_else(|| {
        ApiError::Unauthorized(
            "unknown worker token: create one with `isthmus token create --worker NAME` and pass it with --token"
                .to_owned(),
        )
    })
}

fn check_worker_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
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
    Ok(name)
}

/// What a heartbeat states besides the lease: the version the worker runs and its public
/// addresses.
struct Stated<'a> {
    version: &'a str,
    public_addresses: &'a [std::net::IpAddr],
}

/// Renews `name`'s lease; records the version it runs and its public addresses when the
/// request states them (a heartbeat does, a desired-state poll does not and leaves the
/// recorded ones).
async fn renew_lease(
    state: &AppState,
    token_id: i64,
    name: &str,
    stated: Option<Stated<'_>>,
) -> Result<(), ApiError> {
    let now = now_ms();
    let row = worker::ActiveModel {
        token_id: Set(token_id),
        name: Set(name.to_owned()),
        version: Set(stated
            .as_ref()
            .map(|s| s.version.chars().take(64).collect())
            .unwrap_or_default()),
        last_seen_at: Set(now),
        lease_expires_at: Set(now + i64::from(state.lease_seconds()) * 1000),
        public_addresses: Set(stated
            .as_ref()
            .and_then(|s| endpoints::store_addresses(s.public_addresses))),
        ..Default::default()
    };
    let mut update = vec![worker::Column::LastSeenAt, worker::Column::LeaseExpiresAt];
    if stated.is_some() {
        update.push(worker::Column::Version);
        update.push(worker::Column::PublicAddresses);
    }
    worker::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([worker::Column::TokenId, worker::Column::Name])
                .update_columns(update)
                .to_owned(),
        )
        .exec(state.db())
        .await?;
    Ok(())
}

/// `POST /api/v1/worker/heartbeat`: renews the worker's lease in the database.
#[utoipa::path(
    post, path = "/api/v1/worker/heartbeat", tag = "worker", security(("bearer" = [])),
    request_body = Heartbeat,
    responses(
        (status = 200, description = "Lease granted", body = HeartbeatAck),
        (status = 400, description = "Another protocol version, a bad worker name or too many public addresses; or bad JSON", body = isthmus_shared::api::ErrorBody),
        (status = 401, description = "No or an unknown worker token", body = isthmus_shared::api::ErrorBody),
        crate::api::openapi::PayloadTooLarge, crate::api::openapi::UnsupportedMediaType,
    )
)]
pub async fn heartbeat(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(beat): ApiJson<Heartbeat>,
) -> Result<ApiJson<HeartbeatAck>, ApiError> {
    let token_row = worker_token_of(&state, &headers).await?;
    if beat.protocol != PROTOCOL_VERSION {
        return Err(ApiError::BadRequest(format!(
            "worker speaks protocol {} but this server speaks {}; run worker and server of the same release",
            beat.protocol, PROTOCOL_VERSION
        )));
    }
    let name = check_worker_name(&beat.name)?;
    if beat.public_addresses.len() > MAX_PUBLIC_ADDRESSES {
        return Err(ApiError::BadRequest(format!(
            "field `public_addresses`: at most {MAX_PUBLIC_ADDRESSES} addresses"
        )));
    }
    let before = endpoints::worker_addresses(state.db(), name).await?;
    renew_lease(
        &state,
        token_row.id,
        name,
        Some(Stated {
            version: &beat.version,
            public_addresses: &beat.public_addresses,
        }),
    )
    .await?;
    if before.first() != beat.public_addresses.first() {
        let addresses: Vec<String> = beat
            .public_addresses
            .iter()
            .map(|a| a.to_string())
            .collect();
        tracing::info!(worker = name, addresses = %addresses.join(","),
            "worker states new public addresses; its gateways' endpoints follow");
        placing::rehost_worker(&state, name).await?;
    }
    tracing::debug!(worker = name, "heartbeat");
    Ok(ApiJson(HeartbeatAck {
        protocol: PROTOCOL_VERSION,
        lease_seconds: state.lease_seconds(),
    }))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredQuery {
    /// The worker's name.
    pub name: String,
    /// The version the worker runs (0 at start).
    #[serde(default)]
    pub since: u64,
    /// Seconds to wait for a change (at most, and by default, 25).
    pub wait: Option<u64>,
}

/// The desired state of worker `name` at the current version.
async fn desired_for(state: &AppState, name: &str) -> Result<DesiredStateMessage, ApiError> {
    let db = state.db();
    let version = store::current_version(db).await?;
    let topology = store::load_topology(db, state.sealer()).await?;
    let mine = placement::Entity::find()
        .filter(placement::Column::Worker.eq(name))
        .all(db)
        .await?;
    let mut inputs = BTreeMap::new();
    for p in mine {
        let q = QualifiedName::new(&p.tenant, &p.gateway);
        let Ok(row) = store::get_row(db, Kind::Gateway, &q).await else {
            continue; // deleted since
        };
        let Some(g) = topology.gateway(&q.tenant, &q.name) else {
            continue;
        };
        let (Some(sealed), Some(endpoint)) = (row.sealed.as_deref(), g.public_endpoint) else {
            continue;
        };
        let private = state
            .sealer()
            .open_string(&store::seal_purpose(Kind::Gateway, &q), sealed)?;
        inputs.insert(
            q,
            GatewayInputs {
                private_key: Secret::new(private),
                listen_port: endpoint.port(),
            },
        );
    }
    let (desired, skipped) = desired_state(&topology, u64::try_from(version).unwrap_or(0), &inputs);
    for s in skipped {
        tracing::debug!(peer = %s.name, reason = %s.reason, "peer not configured yet");
    }
    Ok(DesiredStateMessage::V1(desired))
}

/// `GET /api/v1/worker/desired?name=W&since=V`: the worker's desired state when it differs
/// from `since`; otherwise waits up to [`LONG_POLL`] for a change and answers 204.
#[utoipa::path(
    get, path = "/api/v1/worker/desired", tag = "worker", security(("bearer" = [])),
    params(
        ("name" = String, Query, description = "Worker name"),
        ("since" = Option<u64>, Query, description = "Version the worker runs (0 at start)"),
        ("wait" = Option<u64>, Query, description = "Seconds to wait for a change, at most (and by default) 25"),
    ),
    responses(
        (status = 200, description = "The worker's desired state (`isthmus.desired/v1`)", body = DesiredStateMessage),
        (status = 204, description = "No change within the wait"),
        (status = 400, description = "A bad worker name or query string", body = isthmus_shared::api::ErrorBody),
        (status = 401, description = "No or an unknown worker token", body = isthmus_shared::api::ErrorBody),
    )
)]
pub async fn desired(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<DesiredQuery>,
) -> Result<Response, ApiError> {
    let token_row = worker_token_of(&state, &headers).await?;
    let name = check_worker_name(&q.name)?.to_owned();
    renew_lease(&state, token_row.id, &name, None).await?;
    // Reads first and writes (under the write gate) only when a gateway must be placed or an
    // endpoint must follow this worker's address: most polls write nothing.
    placing::place_orphans(&state, &name).await?;
    let started = Instant::now();
    let wait = q
        .wait
        .map_or(LONG_POLL, |s| Duration::from_secs(s).min(LONG_POLL));
    loop {
        let version = u64::try_from(store::current_version(state.db()).await?).unwrap_or(0);
        if version != q.since {
            return Ok(ApiJson(desired_for(&state, &name).await?).into_response());
        }
        if started.elapsed() >= wait {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    pub name: String,
}

/// `POST /api/v1/worker/status?name=W`: per-connection handshake, bytes and endpoint, and the
/// worker's bytes per region pair (LIM-6).
#[utoipa::path(
    post, path = "/api/v1/worker/status", tag = "worker", security(("bearer" = [])),
    params(("name" = String, Query, description = "Worker name")),
    request_body = StatusReportMessage,
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "A bad worker name, region or query string; or bad JSON", body = isthmus_shared::api::ErrorBody),
        (status = 401, description = "No or an unknown worker token", body = isthmus_shared::api::ErrorBody),
        crate::api::openapi::PayloadTooLarge, crate::api::openapi::UnsupportedMediaType,
    )
)]
pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StatusQuery>,
    ApiJson(report): ApiJson<StatusReportMessage>,
) -> Result<StatusCode, ApiError> {
    worker_token_of(&state, &headers).await?;
    let name = check_worker_name(&q.name)?;
    let StatusReportMessage::V1(report) = report;
    let now = now_ms();
    let (_gate, txn) = crate::store::begin_write(&state).await?;
    for g in report.gateways {
        let conflicts = serde_json::to_string(&g.route_conflicts)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        for c in &g.route_conflicts {
            tracing::debug!(tenant = %g.tenant, gateway = %g.name, worker = name,
                prefix = %c.prefix, existing = %c.existing, "worker reports a route conflict");
        }
        gateway_status::Entity::insert(gateway_status::ActiveModel {
            tenant: Set(g.tenant.clone()),
            gateway: Set(g.name.clone()),
            worker: Set(name.to_owned()),
            route_conflicts: Set(conflicts),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([
                gateway_status::Column::Tenant,
                gateway_status::Column::Gateway,
            ])
            .update_columns([
                gateway_status::Column::Worker,
                gateway_status::Column::RouteConflicts,
                gateway_status::Column::UpdatedAt,
            ])
            .to_owned(),
        )
        .exec(&txn)
        .await?;
        for c in g.connections {
            let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            connection_status::Entity::insert(connection_status::ActiveModel {
                tenant: Set(g.tenant.clone()),
                gateway: Set(g.name.clone()),
                connection: Set(c.name),
                worker: Set(name.to_owned()),
                last_handshake_unix: Set(c.last_handshake_unix.map(clamp)),
                rx_bytes: Set(clamp(c.rx_bytes)),
                tx_bytes: Set(clamp(c.tx_bytes)),
                endpoint: Set(c.endpoint.map(|e| e.chars().take(80).collect())),
                updated_at: Set(now),
                state: Set(Some(c.state.as_str().to_owned())),
                since_unix: Set(c.since_unix.map(clamp)),
                reason: Set(c.reason.map(|r| r.as_str().to_owned())),
            })
            .on_conflict(
                OnConflict::columns([
                    connection_status::Column::Tenant,
                    connection_status::Column::Gateway,
                    connection_status::Column::Connection,
                ])
                .update_columns([
                    connection_status::Column::Worker,
                    connection_status::Column::LastHandshakeUnix,
                    connection_status::Column::RxBytes,
                    connection_status::Column::TxBytes,
                    connection_status::Column::Endpoint,
                    connection_status::Column::UpdatedAt,
                    connection_status::Column::State,
                    connection_status::Column::SinceUnix,
                    connection_status::Column::Reason,
                ])
                .to_owned(),
            )
            .exec(&txn)
            .await?;
        }
    }
    store_region_pairs(&txn, name, &report.region_pairs, now).await?;
    txn.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// LIM-6: stores a worker's per-region-pair counters. They are cumulative over the worker's
/// run, so each report replaces the stored value; a value lower than the stored one means the
/// worker restarted (its counters began again at zero), so the stored run is added to the
/// `earlier_*` totals first. Pairs the worker no longer reports keep their totals.
async fn store_region_pairs<C: ConnectionTrait>(
    db: &C,
    worker: &str,
    reported: &[isthmus_shared::desired::RegionPairBytes],
    now: i64,
) -> Result<(), ApiError> {
    if reported.is_empty() {
        return Ok(());
    }
    let mut sums: BTreeMap<RegionPair, (u64, u64)> = BTreeMap::new();
    for r in reported {
        for region in [&r.a, &r.b] {
            if region.trim().is_empty() || region.len() > MAX_REGION_LEN {
                return Err(ApiError::BadRequest(format!(
                    "field `region_pairs`: region {region:?} must be 1 to {MAX_REGION_LEN} characters (a VNet region)"
                )));
            }
        }
        let e = sums.entry(region_pair(&r.a, &r.b)).or_default();
        e.0 = e.0.saturating_add(r.rx_bytes);
        e.1 = e.1.saturating_add(r.tx_bytes);
    }
    let stored: BTreeMap<(String, String), region_pair_bytes::Model> =
        region_pair_bytes::Entity::find()
            .filter(region_pair_bytes::Column::Worker.eq(worker))
            .all(db)
            .await?
            .into_iter()
            .map(|m| ((m.region_a.clone(), m.region_b.clone()), m))
            .collect();
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    for (pair, (rx, tx)) in sums {
        let (rx, tx) = (clamp(rx), clamp(tx));
        let (mut earlier_rx, mut earlier_tx) = (0i64, 0i64);
        if let Some(old) = stored.get(&(pair.a.clone(), pair.b.clone())) {
            earlier_rx = old.earlier_rx_bytes;
            earlier_tx = old.earlier_tx_bytes;
            if rx < old.rx_bytes || tx < old.tx_bytes {
                tracing::info!(worker, pair = %pair.key(), "region-pair counters went down: the worker restarted; keeping its earlier totals");
                earlier_rx = earlier_rx.saturating_add(old.rx_bytes);
                earlier_tx = earlier_tx.saturating_add(old.tx_bytes);
            }
        }
        region_pair_bytes::Entity::insert(region_pair_bytes::ActiveModel {
            worker: Set(worker.to_owned()),
            region_a: Set(pair.a),
            region_b: Set(pair.b),
            rx_bytes: Set(rx),
            tx_bytes: Set(tx),
            earlier_rx_bytes: Set(earlier_rx),
            earlier_tx_bytes: Set(earlier_tx),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([
                region_pair_bytes::Column::Worker,
                region_pair_bytes::Column::RegionA,
                region_pair_bytes::Column::RegionB,
            ])
            .update_columns([
                region_pair_bytes::Column::RxBytes,
                region_pair_bytes::Column::TxBytes,
                region_pair_bytes::Column::EarlierRxBytes,
                region_pair_bytes::Column::EarlierTxBytes,
                region_pair_bytes::Column::UpdatedAt,
            ])
            .to_owned(),
        )
        .exec(db)
        .await?;
    }
    Ok(())
}
