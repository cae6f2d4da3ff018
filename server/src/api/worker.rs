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
    DesiredStateMessage, GatewayInputs, PeerKind, Secret, StatusReportMessage,
    active_active_instance, desired_state,
};
use isthmus_shared::instances::{
    DEFAULT_INTERVAL_MS, DEFAULT_MISSES, HeartbeatKey, InstanceDesired, KEY_LEN,
};
use isthmus_shared::model::QualifiedName;
use isthmus_shared::worker_proto::{Heartbeat, HeartbeatAck, PROTOCOL_VERSION};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::db::entities::{connection_status, worker_token};
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::state::AppState;
use crate::store::{self, Kind, endpoints, placement as placing};
use crate::tokens::find_worker_token;

/// Longest worker name accepted.
const MAX_NAME_LEN: usize = 64;
/// Longest zone label accepted (issue 16).
const MAX_ZONE_LEN: usize = 64;
/// Most public addresses a heartbeat may state.
const MAX_PUBLIC_ADDRESSES: usize = 16;
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

/// `POST /api/v1/worker/heartbeat`: renews the worker's lease in the database.
#[utoipa::path(
    post, path = "/api/v1/worker/heartbeat", tag = "worker", security(("bearer" = [])),
    request_body = Heartbeat,
    responses(
        (status = 200, description = "Lease granted", body = HeartbeatAck),
        (status = 400, description = "Another protocol version, a bad worker name or zone, or too many public addresses; or bad JSON", body = isthmus_shared::api::ErrorBody),
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
    let zone = match beat.zone.as_deref().map(str::trim) {
        Some(z)
            if z.is_empty()
                || z.len() > MAX_ZONE_LEN
                || !z
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
        {
            return Err(ApiError::BadRequest(format!(
                "field `zone`: a zone is 1 to {MAX_ZONE_LEN} characters of letters, digits, `-`, `_` and `.` (isthmus-worker --zone)"
            )));
        }
        z => z,
    };
    let before = endpoints::worker_addresses(state.db(), name).await?;
    let heartbeat_before = store::instances::workers(state.db(), None)
        .await?
        .get(name)
        .and_then(|w| w.heartbeat);
    store::workers::renew_lease(
        &state,
        token_row.id,
        name,
        Some(store::workers::Stated {
            version: &beat.version,
            public_addresses: &beat.public_addresses,
            heartbeat_address: beat.heartbeat_address,
            zone,
        }),
    )
    .await?;
    let heartbeat_moved = heartbeat_before != beat.heartbeat_address;
    if heartbeat_moved {
        tracing::info!(worker = name, heartbeat = ?beat.heartbeat_address,
            "worker states a new heartbeat address; its partners follow");
    }
    if before.first() != beat.public_addresses.first() || heartbeat_moved {
        let addresses: Vec<String> = beat
            .public_addresses
            .iter()
            .map(|a| a.to_string())
            .collect();
        tracing::info!(worker = name, addresses = %addresses.join(","),
            "worker states new public addresses; its gateways' endpoints follow");
        placing::rehost_worker(&state, name, heartbeat_moved).await?;
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
///
/// Issue 16: a gateway with two instances carries this worker's instance block (its index,
/// the designated active one, the term, the partner's heartbeat address, the key, and
/// `handover` while this worker drains), and its `public_endpoint` is this instance's own
/// endpoint (this worker's address, the gateway's port); a point-to-site client peer carries
/// the endpoint it was last reported at (`last_endpoint`), so a standby that takes over can
/// initiate to it. A standby whose partner states no heartbeat address is left out (it could
/// not tell whether the active one is alive). On an active-active gateway every site peer runs
/// on both instances, each at the device's tunnel to it (`active_active_instance`).
async fn desired_for(state: &AppState, name: &str) -> Result<DesiredStateMessage, ApiError> {
    let db = state.db();
    let version = store::current_version(db).await?;
    let topology = store::load_topology(db, state.sealer()).await?;
    let workers = store::instances::workers(db, None).await?;
    let mine: Vec<(QualifiedName, store::instances::Slots)> = store::instances::slots_of(db)
        .await?
        .into_iter()
        .filter(|(_, s)| s.index_of(name).is_some())
        .map(|((t, g), s)| (QualifiedName::new(&t, &g), s))
        .collect();
    let mut inputs = BTreeMap::new();
    let mut blocks = BTreeMap::new();
    let mut active_active = std::collections::BTreeSet::new();
    for (q, slots) in mine {
        let Ok(row) = store::get_row(db, Kind::Gateway, &q).await else {
            continue; // deleted since
        };
        let Some(g) = topology.gateway(&q.tenant, &q.name) else {
            continue;
        };
        let (Some(sealed), Some(endpoint)) = (row.sealed.as_deref(), g.public_endpoint) else {
            continue;
        };
        let block = if slots.is_pair() {
            match instance_block(state, &workers, &q, &slots, name)? {
                Some(b) => Some(b),
                None if slots.active_worker() != Some(name) => continue,
                None => None,
            }
        } else {
            None
        };
        let private = state
            .sealer()
            .open_string(&store::seal_purpose(Kind::Gateway, &q), sealed)?;
        inputs.insert(
            q.clone(),
            GatewayInputs {
                private_key: Secret::new(private),
                listen_port: endpoint.port(),
            },
        );
        if let Some(b) = block {
            if g.active_active {
                active_active.insert(q.clone());
            }
            let own = store::instances::endpoint_on(
                &workers,
                name,
                endpoint.port(),
                state.endpoint_pool().host,
            );
            blocks.insert(q, (b, own));
        }
    }
    let (mut desired, skipped) =
        desired_state(&topology, u64::try_from(version).unwrap_or(0), &inputs);
    for s in skipped {
        tracing::debug!(peer = %s.name, reason = %s.reason, "peer not configured yet");
    }
    if !blocks.is_empty() {
        let seen = last_endpoints(state).await?;
        for gd in &mut desired.gateways {
            let q = QualifiedName::new(&gd.tenant, &gd.name);
            let Some((block, own)) = blocks.remove(&q) else {
                continue;
            };
            if active_active.contains(&q) {
                // Issue 16 item 6: both instances keep a tunnel to each site, each to the
                // device's interface of its own.
                *gd = active_active_instance(gd, block.instance);
            }
            gd.instance = Some(block);
            gd.public_endpoint = Some(own);
            for p in &mut gd.peers {
                if let PeerKind::P2sClient { gateway, client } = &p.kind {
                    let key = (gateway.tenant.clone(), gateway.name.clone(), client.clone());
                    p.last_endpoint = seen.get(&key).cloned();
                }
            }
        }
    }
    Ok(DesiredStateMessage::V1(desired))
}

/// The instance block of `name`'s instance of gateway `q` (two instances); `None` when the
/// partner states no heartbeat address or the key is missing.
fn instance_block(
    state: &AppState,
    workers: &store::instances::Workers,
    q: &QualifiedName,
    slots: &store::instances::Slots,
    name: &str,
) -> Result<Option<InstanceDesired>, ApiError> {
    let Some(index) = slots.index_of(name) else {
        return Ok(None);
    };
    let partner = slots.workers[usize::from(1 - index)]
        .as_deref()
        .and_then(|p| workers.get(p))
        .and_then(|w| w.heartbeat);
    let (Some(partner), Some(sealed)) = (partner, slots.key.as_deref()) else {
        return Ok(None);
    };
    let bytes = state
        .sealer()
        .open(&store::instances::key_purpose(q), sealed)?;
    let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
        ApiError::Internal("a stored heartbeat key has the wrong length".to_owned())
    })?;
    Ok(Some(InstanceDesired {
        instance: index,
        active: slots.active,
        term: slots.term,
        partner,
        key: HeartbeatKey::new(key),
        interval_ms: DEFAULT_INTERVAL_MS,
        misses: DEFAULT_MISSES,
        handover: workers.get(name).is_some_and(|w| w.draining),
    }))
}

/// The endpoint each point-to-site client was last reported at, by (tenant, gateway, client).
async fn last_endpoints(
    state: &AppState,
) -> Result<BTreeMap<(String, String, String), String>, ApiError> {
    Ok(connection_status::Entity::find()
        .filter(connection_status::Column::Endpoint.is_not_null())
        .all(state.db())
        .await?
        .into_iter()
        .filter_map(|r| Some(((r.tenant, r.gateway, r.connection), r.endpoint?)))
        .collect())
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
    store::workers::renew_lease(&state, token_row.id, &name, None).await?;
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
    store::workers::record_status(&state, name, report).await?;
    Ok(StatusCode::NO_CONTENT)
}
