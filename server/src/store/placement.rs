//! Where gateways run: their placement on workers, and their endpoints, which follow the
//! worker's address (GW-3, port kept). Desired states and device configurations are made of
//! both, so every write here that changes something bumps the topology version, in the same
//! transaction.
//!
//! # The placement rule
//!
//! A gateway that needs a worker goes to the **least-loaded live worker**: the one with the
//! fewest gateways placed on it, then the fewest peers (the connections of those gateways plus
//! the point-to-site clients they serve, P2S-6 additional VNets included), then the smallest
//! name, so every replica that sees the same rows picks the same worker. A worker is live while
//! its lease is current; a pinned gateway counts toward the load of the worker it is pinned to.
//!
//! * A **new** gateway is placed when it is created, in the transaction that creates it
//!   (`place_new_gateway`, called from the store's commit), so its endpoint's host is from the
//!   start the address of the worker that will run it. A placement kept from before (a pin, or a
//!   placement on a live worker, of a gateway deleted and created again) is kept instead. With
//!   no live worker, it waits for the first poll.
//! * An **orphan** (no placement, or an unpinned placement on a worker whose lease ran out) is
//!   placed by the next desired-state poll of any worker ([`place_orphans`]), on the
//!   least-loaded live worker, not necessarily the polling one; orphans are taken in
//!   (tenant, name) order and each one placed counts toward the next decision.
//! * A **pinned** gateway (`PUT /api/v1/placements/{tenant}/{gateway}`, [`set_placement`]) stays
//!   on its worker, live or not; nothing here moves it.
//! * Nothing is rebalanced: a placed gateway stays where it is while its worker is live.
//! * Issue 16: this is instance 0's placement. A second instance (the standby of a redundant
//!   gateway), lost workers' slots and drains follow the rules of [`super::instances`], applied
//!   by the same poll; draining workers get no new gateway.
//!
//! Every decision is made inside a write transaction ([`begin_write`], or the store's commit),
//! on what that transaction reads after taking the write lock: on SQLite and PostgreSQL alike
//! the placements of all replicas are serialised, and each one sees every placement committed
//! before it. Two concurrent placements therefore behave as if made one after the other: a
//! gateway is placed once, and the second decision counts the first's gateway. No server process
//! keeps placement state of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use isthmus_shared::model::{QualifiedName, Topology};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use super::error::Result;
use super::{Kind, begin_write, bump_version, endpoints, get_row, instances};
use crate::audit;
use crate::auth::{Principal, now_ms};
use crate::db::entities::{gateway_instance, placement, resource, worker};
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

/// How loaded a worker is, in the order the placement rule compares: gateways first, then
/// peers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Load {
    /// Gateways placed on the worker (pinned ones included).
    pub gateways: usize,
    /// Their peers: connections, and point-to-site clients they serve.
    pub peers: usize,
}

/// The placement rule: the worker with the smallest (gateways, peers, name).
pub fn least_loaded(loads: &BTreeMap<String, Load>) -> Option<&str> {
    loads
        .iter()
        .min_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)))
        .map(|(name, _)| name.as_str())
}

/// The peers of every gateway of `t`, keyed by (tenant, gateway): its connections, and the
/// clients of the point-to-site configurations it serves (its own, and those naming its VNet as
/// an additional VNet, P2S-6).
fn peers_per_gateway(t: &Topology) -> BTreeMap<(String, String), usize> {
    let mut peers: BTreeMap<(String, String), usize> = BTreeMap::new();
    for c in &t.connections {
        *peers
            .entry((c.tenant.clone(), c.gateway.clone()))
            .or_default() += 1;
    }
    for p in &t.point_to_site {
        let mut served: BTreeSet<&str> = BTreeSet::from([p.gateway.as_str()]);
        for vnet in &p.additional_vnets {
            if let Some(g) = t
                .gateways
                .iter()
                .find(|g| g.tenant == p.tenant && &g.vnet == vnet)
            {
                served.insert(g.name.as_str());
            }
        }
        for g in served {
            *peers.entry((p.tenant.clone(), g.to_owned())).or_default() += p.clients.len();
        }
    }
    peers
}

/// The gateways, connections and point-to-site configurations of the stored rows, which is
/// all placement reads of the topology (no secret is opened). A row that does not parse is left
/// out (the topology's own reads report it).
pub(super) fn load_part(rows: &[resource::Model]) -> Topology {
    let mut t = Topology::default();
    for row in rows {
        match Kind::from_stored(&row.kind) {
            Some(Kind::Gateway) => t.gateways.extend(serde_json::from_str(&row.body).ok()),
            Some(Kind::Connection) => t.connections.extend(serde_json::from_str(&row.body).ok()),
            Some(Kind::PointToSite) => {
                t.point_to_site.extend(serde_json::from_str(&row.body).ok());
            }
            _ => {}
        }
    }
    t
}

/// The load of every gateway of `t`: each one, with its peers.
pub(super) fn gateway_loads(t: &Topology) -> BTreeMap<(String, String), usize> {
    let peers = peers_per_gateway(t);
    t.gateways
        .iter()
        .map(|g| {
            let key = (g.tenant.clone(), g.name.clone());
            let n = peers.get(&key).copied().unwrap_or(0);
            (key, n)
        })
        .collect()
}

/// Writes the placement of gateway `tenant/gateway` (instance 0's worker and the pin).
async fn write_placement<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    gateway: &str,
    slots: &instances::Slots,
) -> Result<()> {
    let Some(worker) = slots.workers[0].clone() else {
        return Ok(());
    };
    placement::Entity::insert(placement::ActiveModel {
        tenant: Set(tenant.to_owned()),
        gateway: Set(gateway.to_owned()),
        worker: Set(worker),
        pinned: Set(slots.pinned),
    })
    .on_conflict(
        OnConflict::columns([placement::Column::Tenant, placement::Column::Gateway])
            .update_columns([placement::Column::Worker, placement::Column::Pinned])
            .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
}

/// The endpoint host for gateway `q` being created in `working` (the topology as the caller's
/// write transaction has it, earlier changes of the same write included), which this places
/// (the module's rule): a placement kept from before (pinned, or on a live worker) stays;
/// otherwise the gateway goes to the least-loaded live worker that is not draining, written in
/// `db` (the caller's write transaction, which bumps the version). The host is the address of
/// its worker, else `fallback` (also when no worker is live: the first poll places it then).
/// Its standby (issue 16) is placed by the next poll ([`place_orphans`]).
pub(super) async fn place_new_gateway<C: ConnectionTrait>(
    db: &C,
    working: &Topology,
    q: &QualifiedName,
    fallback: IpAddr,
) -> Result<IpAddr> {
    let workers = instances::workers(db, None).await?;
    let slots = instances::slots_of(db).await?;
    let key = (q.tenant.clone(), q.name.clone());
    if let Some(s) = slots.get(&key) {
        let kept = s
            .active_worker()
            .filter(|w| s.pinned || workers.get(*w).is_some_and(|i| i.live));
        if let Some(w) = kept {
            return endpoints::host_of_worker(db, w, fallback).await;
        }
    }
    let mut loads = instances::loads_of(&workers, &slots, &gateway_loads(working));
    let Some(worker) = instances::pick(&workers, &mut loads, None, &[], 0) else {
        return Ok(fallback);
    };
    let fresh = instances::Slots {
        workers: [Some(worker.clone()), None],
        ..instances::Slots::default()
    };
    // A gateway created again starts on one instance: its old slots and term are gone.
    gateway_instance::Entity::delete_by_id((q.tenant.clone(), q.name.clone()))
        .exec(db)
        .await?;
    write_placement(db, &q.tenant, &q.name, &fresh).await?;
    tracing::info!(tenant = %q.tenant, gateway = %q.name, worker = %worker,
        load = ?loads.get(&worker), "new gateway placed on the least-loaded live worker");
    endpoints::host_of_worker(db, &worker, fallback).await
}

/// Places every gateway that has no live worker (pinned placements never move) on the
/// least-loaded live worker (the module's rule; `name`, which polls, is a candidate even if its
/// lease has just run out), applies the rules of redundant gateways ([`instances`]: standbys,
/// lost instances, drains), and points every gateway's endpoints at its instances' workers'
/// addresses (GW-3: ports kept). Returns whether anything changed.
///
/// It reads first, without the write gate: a worker's poll with nothing to place (the usual
/// case) writes nothing and never queues behind a writer. Only when something must change does
/// it take the write lock and decide again on what the transaction sees.
pub async fn place_orphans(state: &AppState, name: &str) -> Result<bool> {
    let fallback = state.endpoint_pool().host;
    if instances::decide(state.db(), Some(name), fallback, true)
        .await?
        .is_noop()
    {
        return Ok(false);
    }
    let (_gate, txn) = begin_write(state).await?;
    let d = instances::decide(&txn, Some(name), fallback, true).await?;
    let moved = instances::apply(&txn, state.sealer(), d).await?;
    if moved {
        bump_version(&txn).await?;
    }
    txn.commit().await?;
    Ok(moved)
}

/// Points the endpoints of every gateway at its instances' workers' current addresses (GW-3:
/// ports kept) after worker `name` stated new addresses, in one write transaction that bumps
/// the version when anything changed, or always when `heartbeat_moved` and `name` runs an
/// instance of a redundant gateway (its partner must learn the new heartbeat address).
pub async fn rehost_worker(state: &AppState, name: &str, heartbeat_moved: bool) -> Result<bool> {
    let (_gate, txn) = begin_write(state).await?;
    let d = instances::decide(&txn, None, state.endpoint_pool().host, false).await?;
    let mut changed = instances::apply(&txn, state.sealer(), d).await?;
    if heartbeat_moved {
        changed |= instances::slots_of(&txn)
            .await?
            .values()
            .any(|s| s.is_pair() && s.index_of(name).is_some());
    }
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
    let key = (q.tenant.clone(), q.name.clone());
    let slots = instances::slots_of(&txn).await?;
    let old = slots.get(&key).cloned().unwrap_or_default();
    let mut pinned = instances::Slots {
        workers: [Some(worker.to_owned()), old.workers[1].clone()],
        pinned: true,
        active: 0,
        term: old.term,
        key: old.key.clone(),
    };
    if pinned.workers[1].as_deref() == Some(worker) {
        // The pinned worker ran instance 1: the instances swap slots.
        pinned.workers[1] = old.workers[0].clone();
    }
    pinned.active = old
        .active_worker()
        .and_then(|w| pinned.index_of(w))
        .unwrap_or(0);
    if pinned.workers != old.workers || pinned.active != old.active {
        pinned.term = old.term + 1;
    }
    instances::write_slots(&txn, state.sealer(), &key, &pinned).await?;
    let d = instances::decide(&txn, None, state.endpoint_pool().host, false).await?;
    instances::apply(&txn, state.sealer(), d).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn loads(l: &[(&str, usize, usize)]) -> BTreeMap<String, Load> {
        l.iter()
            .map(|&(w, gateways, peers)| (w.to_owned(), Load { gateways, peers }))
            .collect()
    }

    #[test]
    fn fewest_gateways_then_fewest_peers_then_the_smallest_name() {
        assert_eq!(least_loaded(&loads(&[])), None);
        let l = loads(&[("w2", 1, 0), ("w1", 2, 0), ("w3", 1, 5)]);
        assert_eq!(least_loaded(&l), Some("w2"), "fewest gateways, then peers");
        let l = loads(&[("w2", 1, 3), ("w1", 1, 3), ("w3", 1, 3)]);
        assert_eq!(
            least_loaded(&l),
            Some("w1"),
            "a tie goes to the smallest name"
        );
        let l = loads(&[("a", 3, 0), ("b", 2, 100)]);
        assert_eq!(least_loaded(&l), Some("b"), "gateways count before peers");
    }

    #[test]
    fn each_gateway_placed_counts_toward_the_next_choice() {
        let mut l = loads(&[("w1", 0, 0), ("w2", 0, 0), ("w3", 0, 0)]);
        let workers: instances::Workers = ["w1", "w2", "w3"]
            .iter()
            .map(|w| {
                let info = instances::WorkerInfo {
                    live: true,
                    ..Default::default()
                };
                ((*w).to_owned(), info)
            })
            .collect();
        let chosen: Vec<String> = [4, 0, 0, 0]
            .iter()
            .filter_map(|&peers| instances::pick(&workers, &mut l, None, &[], peers))
            .collect();
        assert_eq!(chosen, ["w1", "w2", "w3", "w2"]);
    }

    #[test]
    fn peers_are_connections_and_the_point_to_site_clients_served() {
        let t: Topology = serde_json::from_value(serde_json::json!({
            "gateways": [
                {"tenant": "t", "name": "g1", "vnet": "v1", "gateway_type": "RouteBased", "sku": "VpnGw1"},
                {"tenant": "t", "name": "g2", "vnet": "v2", "gateway_type": "RouteBased", "sku": "VpnGw1"},
                {"tenant": "t", "name": "g3", "vnet": "v3", "gateway_type": "RouteBased", "sku": "VpnGw1"}],
            "connections": [
                {"tenant": "t", "name": "c1", "gateway": "g1", "kind": {"type": "SiteToSite", "site": "s"}},
                {"tenant": "t", "name": "c2", "gateway": "g1", "kind": {"type": "SiteToSite", "site": "s2"}}],
            "point_to_site": [{"tenant": "t", "gateway": "g2", "address_pool": ["172.16.0.0/24"],
                "additional_vnets": ["v3"],
                "clients": [{"name": "a", "public_key": "k", "address": "172.16.0.2"},
                            {"name": "b", "public_key": "k2", "address": "172.16.0.3"}]}]
        }))
        .expect("topology");
        let g = gateway_loads(&t);
        let of = |n: &str| g.get(&("t".to_owned(), n.to_owned())).copied();
        assert_eq!((of("g1"), of("g2"), of("g3")), (Some(2), Some(2), Some(2)));
    }
}
