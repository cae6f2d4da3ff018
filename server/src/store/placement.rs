//! Where gateways run: their placement on workers, and their endpoints, which follow the
//! worker's address (GW-3, port kept). Desired states and device configurations are made of
//! both, so every write here that changes something bumps the topology version, in the same
//! transaction.

use std::collections::BTreeMap;
use std::net::IpAddr;

use isthmus_shared::model::QualifiedName;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use super::error::Result;
use super::{Kind, begin_write, bump_version, endpoints, get_row};
use crate::audit;
use crate::auth::{Principal, now_ms};
use crate::db::entities::{placement, resource, worker};
use crate::state::AppState;

/// The names of the workers whose lease is current.
pub async fn live_workers<C: ConnectionTrait>(db: &C) -> Result<Vec<String>> {
    Ok(worker::Entity::find()
        .filter(worker::Column::LeaseExpiresAt.gt(now_ms()))
        .all(db)
        .await?
        .into_iter()
        .map(|w| w.name)
        .collect())
}

/// What [`place_orphans`] would do for worker `name`, as `db` has it now.
struct Plan {
    /// Gateways with no live worker (pinned placements never move): they go to `name`.
    orphans: Vec<resource::Model>,
    /// Every gateway that is (or will be) on `name`.
    mine: Vec<resource::Model>,
    /// The host of their endpoints: `name`'s address.
    host: IpAddr,
}

impl Plan {
    async fn of<C: ConnectionTrait>(db: &C, name: &str, fallback: IpAddr) -> Result<Plan> {
        let live = live_workers(db).await?;
        let placed: BTreeMap<(String, String), placement::Model> = placement::Entity::find()
            .all(db)
            .await?
            .into_iter()
            .map(|p| ((p.tenant.clone(), p.gateway.clone()), p))
            .collect();
        let gateways = resource::Entity::find()
            .filter(resource::Column::Kind.eq(Kind::Gateway.stored()))
            .all(db)
            .await?;
        let (mut orphans, mut mine) = (Vec::new(), Vec::new());
        for g in gateways {
            match placed.get(&(g.tenant.clone(), g.name.clone())) {
                None => orphans.push(g),
                Some(p) if !p.pinned && p.worker != name && !live.contains(&p.worker) => {
                    orphans.push(g);
                }
                Some(p) if p.worker == name => mine.push(g),
                Some(_) => {}
            }
        }
        let host = endpoints::host_of_worker(db, name, fallback).await?;
        mine.extend(orphans.iter().cloned());
        Ok(Plan {
            orphans,
            mine,
            host,
        })
    }

    /// Nothing to place and every endpoint already on the worker's address.
    fn is_noop(&self) -> bool {
        self.orphans.is_empty() && !endpoints::any_elsewhere(&self.mine, self.host)
    }
}

/// Places every gateway that has no live worker on `name` (pinned placements never move), and
/// points the endpoints of the gateways on `name` at its address (GW-3: ports kept). Returns
/// whether anything changed.
///
/// It reads first, without the write gate: a worker's poll with nothing to place (the usual
/// case) writes nothing and never queues behind a writer. Only when something must change does
/// it take the write lock and decide again on what the transaction sees.
pub async fn place_orphans(state: &AppState, name: &str) -> Result<bool> {
    let fallback = state.endpoint_pool().host;
    if Plan::of(state.db(), name, fallback).await?.is_noop() {
        return Ok(false);
    }
    let (_gate, txn) = begin_write(state).await?;
    let plan = Plan::of(&txn, name, fallback).await?;
    let mut moved = false;
    for g in &plan.orphans {
        placement::Entity::insert(placement::ActiveModel {
            tenant: Set(g.tenant.clone()),
            gateway: Set(g.name.clone()),
            worker: Set(name.to_owned()),
            pinned: Set(false),
        })
        .on_conflict(
            OnConflict::columns([placement::Column::Tenant, placement::Column::Gateway])
                .update_column(placement::Column::Worker)
                .to_owned(),
        )
        .exec(&txn)
        .await?;
        tracing::info!(tenant = %g.tenant, gateway = %g.name, worker = name, "gateway placed on worker");
        moved = true;
    }
    if endpoints::rehost_rows(&txn, plan.mine, plan.host).await? > 0 {
        moved = true;
    }
    if moved {
        bump_version(&txn).await?;
    }
    txn.commit().await?;
    Ok(moved)
}

/// Points the endpoints of every gateway placed on worker `name` at its current address (GW-3:
/// ports kept), in one write transaction that bumps the version when anything changed.
pub async fn rehost_worker(state: &AppState, name: &str) -> Result<bool> {
    let (_gate, txn) = begin_write(state).await?;
    let host = endpoints::host_of_worker(&txn, name, state.endpoint_pool().host).await?;
    let mine = endpoints::placed_on(&txn, name).await?;
    let changed = endpoints::rehost(&txn, &mine, host).await? > 0;
    if changed {
        bump_version(&txn).await?;
    }
    txn.commit().await?;
    Ok(changed)
}

/// Pins gateway `q` to worker `worker` (an administrator's choice, never moved by
/// [`place_orphans`]); its endpoint follows to the worker's address, port kept (GW-3).
pub async fn set_placement(
    state: &AppState,
    who: &Principal,
    q: &QualifiedName,
    worker: &str,
) -> Result<()> {
    let (_gate, txn) = begin_write(state).await?;
    get_row(&txn, Kind::Gateway, q).await?;
    placement::Entity::insert(placement::ActiveModel {
        tenant: Set(q.tenant.clone()),
        gateway: Set(q.name.clone()),
        worker: Set(worker.to_owned()),
        pinned: Set(true),
    })
    .on_conflict(
        OnConflict::columns([placement::Column::Tenant, placement::Column::Gateway])
            .update_columns([placement::Column::Worker, placement::Column::Pinned])
            .to_owned(),
    )
    .exec(&txn)
    .await?;
    let host = endpoints::host_of_worker(&txn, worker, state.endpoint_pool().host).await?;
    endpoints::rehost(&txn, std::slice::from_ref(q), host).await?;
    bump_version(&txn).await?;
    audit::record(
        &txn,
        who,
        "placement.set",
        Some(&q.tenant),
        &format!("{} -> {worker}", q.name),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
