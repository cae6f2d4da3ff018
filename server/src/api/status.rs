//! Connection status for people (`/api/v1/tenants/{tenant}/status`), placements, LIM-6
//! metering per region pair (`/api/v1/metering/region-pairs`), and Prometheus metrics
//! (`/metrics`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use isthmus_shared::model::QualifiedName;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde::Deserialize;

use crate::auth::{Principal, Role, now_ms};
use crate::db::entities::{
    connection_status, gateway_status, membership, placement, region_pair_bytes, tenant, worker,
};
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::state::AppState;
use crate::store::{self, Kind};
use isthmus_shared::api::{
    ConnectionStatus, GatewayStatusView, RegionPairMeterView, WorkerRegionPairView,
};
use isthmus_shared::desired::{DownReason, RouteConflict, TunnelState};

/// WireGuard's reject-after time: rows from workers that predate the reported state count as
/// `up` when their last handshake was at most this long before the report.
const REJECT_AFTER_SECS: i64 = 180;

fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

fn parse_wire<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

/// One stored row as people see it. Rows written by workers that did not report a state get
/// one from their handshake age at the time of the report.
fn view_of(r: connection_status::Model) -> ConnectionStatus {
    let reported: Option<TunnelState> = r.state.as_deref().and_then(parse_wire);
    let ipsec: Option<isthmus_shared::desired::IpsecStatus> = r
        .ipsec
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    let (state, reason) = match reported {
        Some(st) => (st, r.reason.as_deref().and_then(parse_wire::<DownReason>)),
        None => match r.last_handshake_unix.filter(|h| *h > 0) {
            Some(h) if r.updated_at / 1000 - h <= REJECT_AFTER_SECS => (TunnelState::Up, None),
            Some(_) => (TunnelState::Down, Some(DownReason::NoAnswer)),
            None => (TunnelState::Down, None),
        },
    };
    ConnectionStatus {
        gateway: r.gateway,
        connection: r.connection,
        worker: r.worker,
        last_handshake_unix: r.last_handshake_unix,
        rx_bytes: r.rx_bytes,
        tx_bytes: r.tx_bytes,
        endpoint: r.endpoint,
        reported_at: rfc3339_ms(r.updated_at),
        state,
        since: r
            .since_unix
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map(|t| t.to_rfc3339()),
        reason: reason.or_else(|| super::status_ipsec::reason_of(state, ipsec.as_ref())),
        ipsec,
    }
}

/// The status of every connection of `tenant` (all tenants when `None`), by tenant, gateway and
/// connection. A disabled connection is `down` with reason `disabled`: the server decides that,
/// as workers are never sent disabled connections.
async fn connection_views(
    state: &AppState,
    tenant: Option<&str>,
) -> Result<Vec<(String, ConnectionStatus)>, ApiError> {
    let mut find = connection_status::Entity::find();
    if let Some(t) = tenant {
        find = find.filter(connection_status::Column::Tenant.eq(t));
    }
    let rows = find.all(state.db()).await?;
    let topology = store::current_topology(state).await?;
    let mut out: BTreeMap<(String, String, String), ConnectionStatus> = rows
        .into_iter()
        .map(|r| {
            (
                (r.tenant.clone(), r.gateway.clone(), r.connection.clone()),
                view_of(r),
            )
        })
        .collect();
    for c in topology
        .connections
        .iter()
        .filter(|c| !c.enabled && tenant.is_none_or(|t| t == c.tenant))
    {
        let key = (c.tenant.clone(), c.gateway.clone(), c.name.clone());
        let v = out.entry(key).or_insert_with(|| ConnectionStatus {
            gateway: c.gateway.clone(),
            connection: c.name.clone(),
            worker: String::new(),
            last_handshake_unix: None,
            rx_bytes: 0,
            tx_bytes: 0,
            endpoint: None,
            reported_at: String::new(),
            state: TunnelState::Down,
            since: None,
            reason: None,
            ipsec: None,
        });
        if v.reason != Some(DownReason::Disabled) {
            v.state = TunnelState::Down;
            v.reason = Some(DownReason::Disabled);
        }
    }
    Ok(out.into_iter().map(|((t, _, _), v)| (t, v)).collect())
}

/// `GET /api/v1/tenants/{tenant}/status`.
#[utoipa::path(
    get, path = "/api/v1/tenants/{tenant}/status", tag = "status",
    params(("tenant" = String, Path, description = "Tenant name", example = "demo")),
    responses(
        (status = 200, description = "Live status of every connection: the state the worker decided (up, connecting, down, idle), since when and why; disabled connections are down with reason disabled", body = Vec<ConnectionStatus>),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized, crate::api::openapi::NotFound,
    )
)]
pub async fn tenant_status(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(tenant): ApiPath<String>,
) -> Result<ApiJson<Vec<ConnectionStatus>>, ApiError> {
    who.require(state.db(), &tenant, Role::Reader).await?;
    Ok(ApiJson(
        connection_views(&state, Some(&tenant))
            .await?
            .into_iter()
            .map(|(_, v)| v)
            .collect(),
    ))
}

/// `GET /api/v1/tenants/{tenant}/gateways/{name}/status`.
#[utoipa::path(
    get, path = "/api/v1/tenants/{tenant}/gateways/{name}/status", tag = "status",
    params(("tenant" = String, Path, description = "Tenant name", example = "demo"), ("name" = String, Path, description = "Gateway name")),
    responses(
        (status = 200, description = "Its worker, public endpoint, GW-10 warnings (an endpoint no device can reach, and the option that sets the real one), route conflicts on the worker's host, and its connections' status", body = GatewayStatusView),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized, crate::api::openapi::NotFound,
    )
)]
pub async fn gateway_status(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> Result<ApiJson<GatewayStatusView>, ApiError> {
    who.require(state.db(), &tenant, Role::Reader).await?;
    let q = QualifiedName::new(&tenant, &name);
    let topology = store::current_topology(&state).await?;
    let g = topology
        .gateway(&tenant, &name)
        .ok_or_else(|| store::not_found(Kind::Gateway, &q))?;
    let placed = placement::Entity::find_by_id((tenant.clone(), name.clone()))
        .one(state.db())
        .await?;
    let reported = gateway_status::Entity::find_by_id((tenant.clone(), name.clone()))
        .one(state.db())
        .await?;
    let route_conflicts: Vec<RouteConflict> = reported
        .as_ref()
        .and_then(|r| serde_json::from_str(&r.route_conflicts).ok())
        .unwrap_or_default();
    let connections = connection_views(&state, Some(&tenant))
        .await?
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v.gateway == name)
        .collect();
    // Issue 16: the worker shown is the active instance's.
    let census = super::instances::Census::of(state.db(), state.endpoint_pool().host).await?;
    let key = (tenant.clone(), name.clone());
    let (instances, redundancy, not_redundant_because) =
        census.gateway(&key, g.public_endpoint.map(|e| e.port()));
    let worker = census
        .slots
        .get(&key)
        .and_then(|s| s.active_worker().map(str::to_owned))
        .or(placed.map(|p| p.worker));
    Ok(ApiJson(GatewayStatusView {
        gateway: name.clone(),
        worker,
        public_endpoint: g.public_endpoint.map(|e| e.to_string()),
        warnings: isthmus_shared::validate::public_endpoint_warning(g)
            .into_iter()
            .collect(),
        route_conflicts,
        reported_at: reported.map(|r| rfc3339_ms(r.updated_at)),
        connections,
        instances,
        redundancy,
        not_redundant_because,
    }))
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
#[utoipa::path(
    get, path = "/api/v1/metering/region-pairs", tag = "status",
    responses(
        (status = 200, description = "Outer VNet-to-VNet bytes per region pair, per worker and summed; billable only across regions", body = Vec<RegionPairMeterView>),
        crate::api::openapi::Unauthorized,
        (status = 403, description = "Administrators only", body = isthmus_shared::api::ErrorBody),
    )
)]
pub async fn region_pairs(
    State(state): State<AppState>,
    who: Principal,
) -> Result<ApiJson<Vec<RegionPairMeterView>>, ApiError> {
    who.require_admin()?;
    Ok(ApiJson(region_pair_meters(state.db()).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPlacement {
    pub worker: String,
}

/// `PUT /api/v1/placements/{tenant}/{gateway}` (administrators): pins a gateway to a worker.
#[utoipa::path(
    put, path = "/api/v1/placements/{tenant}/{gateway}", tag = "worker",
    params(("tenant" = String, Path, description = "Tenant name", example = "demo"), ("gateway" = String, Path, description = "Gateway name", example = "g1")),
    request_body = SetPlacement,
    responses(
        (status = 204, description = "Pinned; the gateway's endpoint follows it to the worker's address"),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized,
        (status = 403, description = "Administrators only", body = isthmus_shared::api::ErrorBody),
        (status = 404, description = "No such gateway", body = isthmus_shared::api::ErrorBody),
        crate::api::openapi::PayloadTooLarge, crate::api::openapi::UnsupportedMediaType,
    )
)]
pub async fn set_placement(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, gateway)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<SetPlacement>,
) -> Result<StatusCode, ApiError> {
    who.require_admin()?;
    // GW-3: the endpoint follows the gateway to its new worker's address, port kept.
    store::placement::set_placement(
        &state,
        &who,
        &QualifiedName::new(&tenant, &gateway),
        &req.worker,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(
    get, path = "/metrics", tag = "service", security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format. Without a token only aggregate, unnamed figures; an API token with the `metrics` scope (Prometheus: `authorization` in the scrape config) adds the series of its user's tenants, an administrator's all", content_type = "text/plain", body = String),
        (status = 401, description = "An unknown or expired token", body = isthmus_shared::api::ErrorBody),
        (status = 403, description = "A token without the `metrics` scope", body = isthmus_shared::api::ErrorBody),
    )
)]
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let db = state.db();
    let named = metrics_scope(&state, &headers).await?;
    let now = now_ms();
    let live = worker::Entity::find()
        .filter(worker::Column::LeaseExpiresAt.gt(now))
        .count(db)
        .await?;
    let version = store::current_version(db).await?;
    let topology = store::current_topology(&state).await?;
    let tenants = tenant::Entity::find().count(db).await?;
    let rows = connection_status::Entity::find()
        .order_by_asc(connection_status::Column::Tenant)
        .order_by_asc(connection_status::Column::Gateway)
        .order_by_asc(connection_status::Column::Connection)
        .all(db)
        .await?;
    let views = connection_views(&state, None).await?;
    // Issue #16: each gateway's drop counters as its worker last reported them (gateways of
    // the current topology only).
    let drops: Vec<(String, String, isthmus_shared::desired::GatewayDrops)> =
        gateway_status::Entity::find()
            .order_by_asc(gateway_status::Column::Tenant)
            .order_by_asc(gateway_status::Column::Gateway)
            .all(db)
            .await?
            .into_iter()
            .filter(|r| topology.gateway(&r.tenant, &r.gateway).is_some())
            .filter_map(|r| {
                let d = serde_json::from_str(r.drops.as_deref()?).ok()?;
                Some((r.tenant, r.gateway, d))
            })
            .collect();

    // Aggregate figures: no tenant, gateway or connection is named.
    let mut out = String::new();
    let gauge = |out: &mut String, metric: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} gauge");
        let _ = writeln!(out, "{metric} {value}");
    };
    gauge(
        &mut out,
        "isthmus_workers_connected",
        "Workers whose lease is current.",
        live,
    );
    gauge(
        &mut out,
        "isthmus_topology_version",
        "Generation of the stored topology.",
        u64::try_from(version).unwrap_or(0),
    );
    gauge(&mut out, "isthmus_tenants", "Tenants.", tenants);
    gauge(
        &mut out,
        "isthmus_gateways",
        "Gateways of every tenant.",
        topology.gateways.len() as u64,
    );
    let metric = "isthmus_connections";
    let _ = writeln!(
        out,
        "# HELP {metric} Connections of every tenant by tunnel state (disabled ones are down)."
    );
    let _ = writeln!(out, "# TYPE {metric} gauge");
    for st in [
        TunnelState::Up,
        TunnelState::Connecting,
        TunnelState::Down,
        TunnelState::Idle,
    ] {
        let n = views.iter().filter(|(_, v)| v.state == st).count();
        let _ = writeln!(out, "{metric}{{state=\"{}\"}} {n}", st.as_str());
    }
    for (metric, help, sum) in [
        (
            "isthmus_connections_rx_bytes_total",
            "Bytes received from peers, summed over every connection.",
            rows.iter().map(|r| r.rx_bytes).sum::<i64>(),
        ),
        (
            "isthmus_connections_tx_bytes_total",
            "Bytes sent to peers, summed over every connection.",
            rows.iter().map(|r| r.tx_bytes).sum::<i64>(),
        ),
    ] {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} counter");
        let _ = writeln!(out, "{metric} {sum}");
    }
    let reasons = |d: &isthmus_shared::desired::GatewayDrops| {
        [
            ("cookie_reply", d.cookie_replies),
            ("handshake_shed", d.handshakes_shed),
            ("rate_limited", d.rate_limited),
            ("bad_datagram", d.bad_datagrams),
            ("queue_overflow", d.queue_overflows),
        ]
    };
    let metric = "isthmus_drops_total";
    let _ = writeln!(
        out,
        "# HELP {metric} Datagrams the gateways' ports refused, summed over gateways, by reason: cookie_reply (a handshake under load answered with a cookie, no Diffie-Hellman), handshake_shed (over the handshake budget), rate_limited (LIM-4 bandwidth), bad_datagram (not WireGuard, or failed its checks), queue_overflow (dropped by the worker host's kernel for a full receive queue of the port)."
    );
    let _ = writeln!(out, "# TYPE {metric} counter");
    let mut sums = [0u64; 5];
    for (_, _, d) in &drops {
        for (s, (_, v)) in sums.iter_mut().zip(reasons(d)) {
            *s = s.saturating_add(v);
        }
    }
    for ((reason, _), s) in reasons(&Default::default()).into_iter().zip(sums) {
        let _ = writeln!(out, "{metric}{{reason=\"{reason}\"}} {s}");
    }
    let shown = |t: &str| match &named {
        Named::None => false,
        Named::Tenants(ts) => ts.contains(t),
        Named::All => true,
    };

    // Named series: tenants, gateways and connections the reader may see.
    for (metric, help) in [
        (
            "isthmus_connection_up",
            "1 when the worker reports the tunnel up, else 0.",
        ),
        (
            "isthmus_connection_state",
            "1 for the tunnel's current state (up, connecting, down, idle) as its worker decided; disabled connections are down.",
        ),
    ] {
        if matches!(named, Named::None) {
            break;
        }
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} gauge");
        for (t, v) in views.iter().filter(|(t, _)| shown(t)) {
            let labels = format!(
                "tenant=\"{}\",gateway=\"{}\",connection=\"{}\"",
                label(t),
                label(&v.gateway),
                label(&v.connection)
            );
            let _ = if metric == "isthmus_connection_up" {
                writeln!(
                    out,
                    "{metric}{{{labels}}} {}",
                    u8::from(v.state == TunnelState::Up)
                )
            } else {
                writeln!(
                    out,
                    "{metric}{{{labels},state=\"{}\",reason=\"{}\"}} 1",
                    v.state.as_str(),
                    v.reason.map(DownReason::as_str).unwrap_or_default()
                )
            };
        }
    }
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
        if matches!(named, Named::None) {
            break;
        }
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} {kind}");
        for r in rows.iter().filter(|r| shown(&r.tenant)) {
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
    if !matches!(named, Named::None) {
        super::status_ipsec::write_metrics(
            &mut out,
            views
                .iter()
                .filter(|(t, _)| shown(t))
                .map(|(t, v)| (t.as_str(), v)),
        );
    }
    if !matches!(named, Named::None) {
        let gateways: Vec<(String, String, Option<u16>)> = topology
            .gateways
            .iter()
            .map(|g| {
                (
                    g.tenant.clone(),
                    g.name.clone(),
                    g.public_endpoint.map(|e| e.port()),
                )
            })
            .collect();
        super::instances::Census::of(db, state.endpoint_pool().host)
            .await?
            .metric_lines(&mut out, &gateways, &shown, label);
        let metric = "isthmus_gateway_drops_total";
        let _ = writeln!(
            out,
            "# HELP {metric} Datagrams the gateway's port refused, by reason (as isthmus_drops_total), as its worker last reported them."
        );
        let _ = writeln!(out, "# TYPE {metric} counter");
        for (t, g, d) in drops.iter().filter(|(t, _, _)| shown(t)) {
            for (reason, v) in reasons(d) {
                let _ = writeln!(
                    out,
                    "{metric}{{tenant=\"{}\",gateway=\"{}\",reason=\"{reason}\"}} {v}",
                    label(t),
                    label(g)
                );
            }
        }
        super::status_ipsec::write_drop_metrics(
            &mut out,
            drops
                .iter()
                .filter(|(t, _, _)| shown(t))
                .map(|(t, g, d)| (t.as_str(), g.as_str(), d)),
        );
    }
    // LIM-6 metering spans tenants: administrators (and public metrics) only, as its API.
    if matches!(named, Named::All) {
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
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        out,
    ))
}

/// Whose names `/metrics` may show.
enum Named {
    /// Aggregate figures only (no token).
    None,
    /// The tenants the reader is a member of.
    Tenants(BTreeSet<String>),
    /// Every tenant, and LIM-6 region pairs: administrators, or `--public-metrics`.
    All,
}

/// Public metrics show everything; otherwise a `metrics` token or a portal session shows its
/// user's tenants (administrators: all), and no credential shows aggregates only.
async fn metrics_scope(state: &AppState, headers: &HeaderMap) -> Result<Named, ApiError> {
    if state.security().public_metrics {
        return Ok(Named::All);
    }
    let Some(who) = crate::auth::metrics_reader(state.db(), headers).await? else {
        return Ok(Named::None);
    };
    if who.is_admin {
        return Ok(Named::All);
    }
    let ids: Vec<i64> = membership::Entity::find()
        .filter(membership::Column::UserId.eq(who.user_id))
        .all(state.db())
        .await?
        .into_iter()
        .map(|m| m.tenant_id)
        .collect();
    let names = tenant::Entity::find()
        .filter(tenant::Column::Id.is_in(ids))
        .all(state.db())
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    Ok(Named::Tenants(names))
}
