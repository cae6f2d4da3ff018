//! What workers tell the server: their leases (with the version they run and their public
//! addresses) and their status reports (tunnel state, bytes, route conflicts, LIM-6 bytes per
//! region pair). None of it is topology, so none of it bumps the version.

use std::collections::BTreeMap;

use isthmus_shared::desired::StatusReport;
use isthmus_shared::model::{RegionPair, region_pair};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use super::endpoints;
use super::error::{Result, StoreError};
use super::{begin_write, bump_version, instances};
use crate::auth::now_ms;
use crate::db::entities::{
    connection_status, gateway_status, instance_status, region_pair_bytes, worker,
};
use crate::state::AppState;
use isthmus_shared::instances::InstanceRole;

/// Longest region name accepted in a status report (LIM-6).
const MAX_REGION_LEN: usize = 100;

/// What a heartbeat states besides the lease: the version the worker runs and its public
/// addresses.
pub struct Stated<'a> {
    pub version: &'a str,
    pub public_addresses: &'a [std::net::IpAddr],
    /// Issue 16: where it receives failover heartbeats.
    pub heartbeat_address: Option<std::net::SocketAddr>,
    /// Issue 16: its zone (checked by the caller).
    pub zone: Option<&'a str>,
}

/// Renews `name`'s lease; records the version it runs and its public addresses when the
/// request states them (a heartbeat does, a desired-state poll does not and leaves the
/// recorded ones).
pub async fn renew_lease(
    state: &AppState,
    token_id: i64,
    name: &str,
    stated: Option<Stated<'_>>,
) -> Result<()> {
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
        heartbeat_address: Set(stated
            .as_ref()
            .and_then(|s| s.heartbeat_address.map(|a| a.to_string()))),
        zone: Set(stated.as_ref().and_then(|s| s.zone.map(str::to_owned))),
        ..Default::default()
    };
    let mut update = vec![worker::Column::LastSeenAt, worker::Column::LeaseExpiresAt];
    if stated.is_some() {
        update.push(worker::Column::Version);
        update.push(worker::Column::PublicAddresses);
        update.push(worker::Column::HeartbeatAddress);
        update.push(worker::Column::Zone);
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

/// Stores worker `name`'s status report, in one write transaction.
pub async fn record_status(state: &AppState, name: &str, report: StatusReport) -> Result<()> {
    let now = now_ms();
    let (_gate, txn) = begin_write(state).await?;
    let mut slots = instances::slots_of(&txn).await?;
    let mut adopted = false;
    let mut roamed = false;
    for g in report.gateways {
        let (took_over, standby) = record_instance(&txn, &mut slots, name, &g, now).await?;
        adopted |= took_over;
        let pair = slots
            .get(&(g.tenant.clone(), g.name.clone()))
            .is_some_and(instances::Slots::is_pair);
        if pair && !standby {
            roamed |= endpoints_moved(&txn, &g).await?;
        }
        let conflicts = serde_json::to_string(&g.route_conflicts)
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        for c in &g.route_conflicts {
            tracing::debug!(tenant = %g.tenant, gateway = %g.name, worker = name,
                prefix = %c.prefix, existing = %c.existing, "worker reports a route conflict");
        }
        let drops = g
            .drops
            .map(|d| serde_json::to_string(&d))
            .transpose()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        gateway_status::Entity::insert(gateway_status::ActiveModel {
            tenant: Set(g.tenant.clone()),
            gateway: Set(g.name.clone()),
            worker: Set(name.to_owned()),
            route_conflicts: Set(conflicts),
            updated_at: Set(now),
            drops: Set(drops),
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
                gateway_status::Column::Drops,
            ])
            .to_owned(),
        )
        .exec(&txn)
        .await?;
        // A standby's tunnels are idle by design: the active instance's report is the truth.
        for c in g.connections.into_iter().filter(|_| !standby) {
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
                ipsec: Set(c
                    .ipsec
                    .map(|s| serde_json::to_string(&s))
                    .transpose()
                    .map_err(|e| StoreError::Internal(e.to_string()))?),
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
                    connection_status::Column::Ipsec,
                ])
                .to_owned(),
            )
            .exec(&txn)
            .await?;
        }
    }
    store_region_pairs(&txn, name, &report.region_pairs, now).await?;
    if adopted {
        // The endpoints follow the new active instance; a draining worker's standby moves.
        let d = instances::decide(&txn, Some(name), state.endpoint_pool().host, true).await?;
        instances::apply(&txn, state.sealer(), d).await?;
        bump_version(&txn).await?;
    } else if roamed {
        // The standby's desired state carries the peers' last endpoints (`last_endpoint`): a
        // new one must reach it before a takeover, so the version moves (rare: a peer roams).
        bump_version(&txn).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Whether the active instance of a redundant gateway reports a peer at an endpoint other than
/// the one stored (a point-to-site client connected or roamed).
async fn endpoints_moved<C: ConnectionTrait>(
    db: &C,
    g: &isthmus_shared::desired::GatewayStatus,
) -> Result<bool> {
    let stored: BTreeMap<String, Option<String>> = connection_status::Entity::find()
        .filter(connection_status::Column::Tenant.eq(g.tenant.as_str()))
        .filter(connection_status::Column::Gateway.eq(g.name.as_str()))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.connection, r.endpoint))
        .collect();
    Ok(g.connections.iter().any(|c| {
        let reported: Option<String> = c.endpoint.as_ref().map(|e| e.chars().take(80).collect());
        reported.is_some() && stored.get(&c.name).cloned().flatten() != reported
    }))
}

/// Issue 16: stores what `name` reports of its instance of gateway `g` (role, term, whether it
/// hears its partner, a bind error) and adopts a takeover ([`instances::adopt`]). A report
/// from a worker that holds no instance of the gateway, or of another index than it holds, is
/// ignored for roles. Returns whether a takeover was adopted, and whether the report is not
/// the active instance's of a redundant gateway (its connections are then not stored).
async fn record_instance<C: ConnectionTrait>(
    db: &C,
    slots: &mut BTreeMap<instances::Key, instances::Slots>,
    name: &str,
    g: &isthmus_shared::desired::GatewayStatus,
    now: i64,
) -> Result<(bool, bool)> {
    let key = (g.tenant.clone(), g.name.clone());
    let Some(s) = slots.get(&key) else {
        return Ok((false, false));
    };
    let pair = s.is_pair();
    let Some(index) = s.index_of(name) else {
        tracing::debug!(tenant = %g.tenant, gateway = %g.name, worker = name,
            "a report from a worker without an instance of the gateway: ignored for roles");
        return Ok((false, pair));
    };
    let (role, term, partner_alive) = match &g.instance {
        Some(st) if st.instance != index => {
            tracing::info!(tenant = %g.tenant, gateway = %g.name, worker = name,
                reported = st.instance, holds = index,
                "a report of another instance than the worker holds: ignored for roles");
            return Ok((false, pair));
        }
        Some(st) => (st.role, st.term, st.partner_alive),
        None if s.is_pair() && s.active != index => (InstanceRole::Standby, s.term, false),
        None => (InstanceRole::Active, s.term, false),
    };
    if let Some(e) = &g.bind_error {
        tracing::warn!(tenant = %g.tenant, gateway = %g.name, worker = name, instance = index,
            error = %e, "worker cannot bind the gateway's port");
    }
    instance_status::Entity::insert(instance_status::ActiveModel {
        tenant: Set(key.0.clone()),
        gateway: Set(key.1.clone()),
        instance: Set(i32::from(index)),
        worker: Set(name.to_owned()),
        role: Set(role.as_str().to_owned()),
        term: Set(i64::try_from(term).unwrap_or(i64::MAX)),
        partner_alive: Set(partner_alive),
        bind_error: Set(g.bind_error.as_ref().map(|e| e.chars().take(200).collect())),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            instance_status::Column::Tenant,
            instance_status::Column::Gateway,
            instance_status::Column::Instance,
            instance_status::Column::Worker,
        ])
        .update_columns([
            instance_status::Column::Role,
            instance_status::Column::Term,
            instance_status::Column::PartnerAlive,
            instance_status::Column::BindError,
            instance_status::Column::UpdatedAt,
        ])
        .to_owned(),
    )
    .exec(db)
    .await?;
    let adopted = match &g.instance {
        Some(st) => instances::adopt(db, slots, &key, name, st).await?,
        None => false,
    };
    let designated = slots.get(&key).and_then(|s| s.active_worker()) == Some(name);
    Ok((adopted, pair && !designated))
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
) -> Result<()> {
    if reported.is_empty() {
        return Ok(());
    }
    let mut sums: BTreeMap<RegionPair, (u64, u64)> = BTreeMap::new();
    for r in reported {
        for region in [&r.a, &r.b] {
            if region.trim().is_empty() || region.len() > MAX_REGION_LEN {
                return Err(StoreError::Invalid(format!(
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

/// Issue 16: drains worker `name` (no new instances; its instances get `handover`, so each
/// active one hands over to its standby; a single instance first gets a standby elsewhere), or
/// undrains it (eligible again; nothing moves back). One write transaction with its audit entry
/// that bumps the version. [`StoreError::NotFound`] for a worker never seen.
pub async fn set_draining(
    state: &AppState,
    who: &crate::auth::Principal,
    name: &str,
    draining: bool,
) -> Result<()> {
    let (_gate, txn) = begin_write(state).await?;
    let done = worker::Entity::update_many()
        .col_expr(
            worker::Column::Draining,
            sea_orm::sea_query::Expr::value(draining),
        )
        .filter(worker::Column::Name.eq(name))
        .exec(&txn)
        .await?;
    if done.rows_affected == 0 {
        txn.rollback().await?;
        return Err(StoreError::NotFound(format!(
            "no worker named `{name}` has ever sent a heartbeat (see GET /api/v1/workers)"
        )));
    }
    let d = instances::decide(&txn, None, state.endpoint_pool().host, true).await?;
    instances::apply(&txn, state.sealer(), d).await?;
    bump_version(&txn).await?;
    let action = if draining {
        "worker.drain"
    } else {
        "worker.undrain"
    };
    crate::audit::record(&txn, who, action, None, name).await?;
    txn.commit().await?;
    tracing::info!(worker = name, draining, "worker drain state set");
    Ok(())
}
