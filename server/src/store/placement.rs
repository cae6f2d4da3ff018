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
fn load_part(rows: &[resource::Model]) -> Topology {
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
fn gateway_loads(t: &Topology) -> BTreeMap<(String, String), usize> {
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

/// What placement decides on: the live workers and every placement.
struct Census {
    live: BTreeSet<String>,
    placed: BTreeMap<(String, String), placement::Model>,
}

impl Census {
    /// The workers and placements of `db`; `polling` (a worker polling now) counts as live.
    async fn of<C: ConnectionTrait>(db: &C, polling: Option<&str>) -> Result<Census> {
        let mut live: BTreeSet<String> = live_workers(db).await?.into_iter().collect();
        live.extend(polling.map(str::to_owned));
        let placed = placement::Entity::find()
            .all(db)
            .await?
            .into_iter()
            .map(|p| ((p.tenant.clone(), p.gateway.clone()), p))
            .collect();
        Ok(Census { live, placed })
    }

    /// The stored placement of `tenant/gateway` when it stays: pinned, or on a live worker.
    fn kept(&self, tenant: &str, gateway: &str) -> Option<&placement::Model> {
        self.placed
            .get(&(tenant.to_owned(), gateway.to_owned()))
            .filter(|p| p.pinned || self.live.contains(&p.worker))
    }

    /// The load of each live worker: the gateways (of `gateways`, with their peers, from
    /// [`gateway_loads`]) that stay placed on it.
    fn loads(&self, gateways: &BTreeMap<(String, String), usize>) -> BTreeMap<String, Load> {
        let mut loads: BTreeMap<String, Load> = self
            .live
            .iter()
            .map(|w| (w.clone(), Load::default()))
            .collect();
        for ((tenant, gateway), peers) in gateways {
            let Some(p) = self.kept(tenant, gateway) else {
                continue;
            };
            if let Some(load) = loads.get_mut(&p.worker) {
                load.gateways += 1;
                load.peers += peers;
            }
        }
        loads
    }
}

/// Picks the least-loaded of `loads` for a gateway with `peers` peers and counts it there.
fn take_least_loaded(loads: &mut BTreeMap<String, Load>, peers: usize) -> Option<String> {
    let chosen = least_loaded(loads)?.to_owned();
    if let Some(load) = loads.get_mut(&chosen) {
        load.gateways += 1;
        load.peers += peers;
    }
    Some(chosen)
}

/// Writes the (unpinned) placement of gateway `tenant/gateway` on `worker`.
async fn write_placement<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    gateway: &str,
    worker: &str,
) -> Result<()> {
    placement::Entity::insert(placement::ActiveModel {
        tenant: Set(tenant.to_owned()),
        gateway: Set(gateway.to_owned()),
        worker: Set(worker.to_owned()),
        pinned: Set(false),
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
/// otherwise the gateway goes to the least-loaded live worker, written in `db` (the caller's
/// write transaction, which bumps the version). The host is the address of its worker, else
/// `fallback` (also when no worker is live: the first poll places it then).
pub(super) async fn place_new_gateway<C: ConnectionTrait>(
    db: &C,
    working: &Topology,
    q: &QualifiedName,
    fallback: IpAddr,
) -> Result<IpAddr> {
    let census = Census::of(db, None).await?;
    if let Some(p) = census.kept(&q.tenant, &q.name) {
        return endpoints::host_of_worker(db, &p.worker, fallback).await;
    }
    let mut loads = census.loads(&gateway_loads(working));
    let Some(worker) = take_least_loaded(&mut loads, 0) else {
        return Ok(fallback);
    };
    write_placement(db, &q.tenant, &q.name, &worker).await?;
    tracing::info!(tenant = %q.tenant, gateway = %q.name, worker = %worker,
        load = ?loads.get(&worker), "new gateway placed on the least-loaded live worker");
    endpoints::host_of_worker(db, &worker, fallback).await
}

/// What [`place_orphans`] would do when worker `name` polls, as `db` has it now.
struct Plan {
    /// Gateways with no live worker (pinned placements never move), in (tenant, name) order.
    orphans: Vec<resource::Model>,
    /// Every gateway placed on `name`.
    mine: Vec<resource::Model>,
    /// The host of their endpoints: `name`'s address.
    host: IpAddr,
    census: Census,
}

impl Plan {
    async fn of<C: ConnectionTrait>(db: &C, name: &str, fallback: IpAddr) -> Result<Plan> {
        let census = Census::of(db, Some(name)).await?;
        let mut gateways = resource::Entity::find()
            .filter(resource::Column::Kind.eq(Kind::Gateway.stored()))
            .all(db)
            .await?;
        gateways.sort_by(|a, b| (&a.tenant, &a.name).cmp(&(&b.tenant, &b.name)));
        let (mut orphans, mut mine) = (Vec::new(), Vec::new());
        for g in gateways {
            match census.kept(&g.tenant, &g.name) {
                None => orphans.push(g),
                Some(p) if p.worker == name => mine.push(g),
                Some(_) => {}
            }
        }
        let host = endpoints::host_of_worker(db, name, fallback).await?;
        Ok(Plan {
            orphans,
            mine,
            host,
            census,
        })
    }

    /// Nothing to place and every endpoint already on the worker's address.
    fn is_noop(&self) -> bool {
        self.orphans.is_empty() && !endpoints::any_elsewhere(&self.mine, self.host)
    }
}

/// Places every gateway that has no live worker (pinned placements never move) on the
/// least-loaded live worker (the module's rule; `name`, which polls, is a candidate even if its
/// lease has just run out), and points the endpoints of the gateways placed on `name`, and of
/// those just placed, at their worker's address (GW-3: ports kept). Returns whether anything
/// changed.
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
    let mut placed: BTreeMap<String, Vec<resource::Model>> = BTreeMap::new();
    placed.insert(name.to_owned(), plan.mine);
    if !plan.orphans.is_empty() {
        // The peers count only now: the usual poll, with nothing to place, never reads them.
        let rows = resource::Entity::find()
            .filter(resource::Column::Kind.is_in([
                Kind::Gateway.stored(),
                Kind::Connection.stored(),
                Kind::PointToSite.stored(),
            ]))
            .all(&txn)
            .await?;
        let gateways = gateway_loads(&load_part(&rows));
        let mut loads = plan.census.loads(&gateways);
        for g in plan.orphans {
            let of_g = gateways
                .get(&(g.tenant.clone(), g.name.clone()))
                .copied()
                .unwrap_or(0);
            let Some(worker) = take_least_loaded(&mut loads, of_g) else {
                continue;
            };
            write_placement(&txn, &g.tenant, &g.name, &worker).await?;
            tracing::info!(tenant = %g.tenant, gateway = %g.name, worker = %worker,
                polled_by = name, load = ?loads.get(&worker),
                "gateway placed on the least-loaded live worker");
            moved = true;
            placed.entry(worker).or_default().push(g);
        }
    }
    for (worker, rows) in placed {
        let host = if worker == name {
            plan.host
        } else {
            endpoints::host_of_worker(&txn, &worker, fallback).await?
        };
        if endpoints::rehost_rows(&txn, rows, host).await? > 0 {
            moved = true;
        }
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
        let chosen: Vec<String> = [4, 0, 0, 0]
            .iter()
            .filter_map(|&peers| take_least_loaded(&mut l, peers))
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
