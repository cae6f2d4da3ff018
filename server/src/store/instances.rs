//! Issue 16: the two instances of a redundant gateway, and where they run.
//!
//! # Storage
//!
//! Instance 0 of a placed gateway runs on its placement's worker (`placements.worker`, pinned
//! or not); `gateway_instances` adds instance 1's worker (`second_worker`), the index the
//! server designates active, the term and the gateway's sealed 32-byte heartbeat key. No row,
//! or no second worker, is a gateway on one instance: always active, no instance block in its
//! desired state. What workers report of each instance goes to `instance_status`, one row per
//! (gateway, instance, worker).
//!
//! # The rules (one pass, [`reconcile_one`], for every gateway on every poll)
//!
//! A worker is *eligible* for an instance of a redundant gateway while it is live (its lease is
//! current, or it polls now), not draining, and states a heartbeat address. A standby is put on
//! the eligible worker, other than its partner's, that is in another zone than the partner's
//! when possible, then the least loaded (instances, then peers), then the smallest name.
//!
//! * A lost slot (its worker's lease ran out): the other instance becomes the designated
//!   active, and the lost slot is re-placed on a third eligible worker (the new standby), else
//!   dropped (the gateway runs on one instance). A pinned instance 0 is never moved: while its
//!   worker is down, instance 1 is the designated active.
//! * A gateway on one instance gets a standby as soon as a second eligible worker is live and
//!   its own worker states a heartbeat address.
//! * Drain: the draining worker gets no new instances and its instances get `handover`; once
//!   the active instance is elsewhere (the report of the takeover was adopted, `adopt`), a
//!   standby slot on a draining worker moves to a third eligible worker if there is one.
//! * Nothing else moves.
//!
//! Every change of the slots or of the designated active issues a new term: one above the
//! stored term and above every term a worker reported for the gateway. A report that instance
//! `i` is active at a term not below the stored one, from the worker that holds slot `i`, is
//! adopted as it is (designated active := `i`, term := the reported term). The gateway's
//! `public_endpoint` is the active instance's endpoint and `secondary_endpoint` the other's
//! (on an active-active gateway instance 0's and instance 1's, which never swap).
//! All of it runs inside the store's write transactions, and every change bumps the topology
//! version, so desired states, device configurations and client packages follow.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use isthmus_shared::instances::InstanceStatus;
use isthmus_shared::model::{Gateway, QualifiedName};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};

use super::Kind;
use super::error::{Result, StoreError};
use super::placement::Load;
use crate::auth::now_ms;
use crate::db::entities::{gateway_instance, instance_status, placement, resource, worker};
use crate::secrets::{Sealer, random_bytes};

/// What placement knows of a worker (its most recently seen row; live if any row's lease is
/// current).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerInfo {
    pub live: bool,
    pub draining: bool,
    pub heartbeat: Option<SocketAddr>,
    pub zone: Option<String>,
    /// Its first public address: the host of its instances' endpoints.
    pub host: Option<IpAddr>,
    pub version: String,
    /// Unix milliseconds.
    pub last_seen_at: i64,
}

impl WorkerInfo {
    /// Whether it may take an instance of a redundant gateway.
    pub fn eligible(&self) -> bool {
        self.live && !self.draining && self.heartbeat.is_some()
    }
}

/// Every known worker by name.
pub type Workers = BTreeMap<String, WorkerInfo>;

/// The workers of `db`; `polling` (a worker polling now) counts as live.
pub async fn workers<C: ConnectionTrait>(db: &C, polling: Option<&str>) -> Result<Workers> {
    let now = now_ms();
    let mut out = Workers::new();
    let rows = worker::Entity::find()
        .order_by_asc(worker::Column::LastSeenAt)
        .all(db)
        .await?;
    for w in rows {
        let e = out.entry(w.name.clone()).or_default();
        e.live |= w.lease_expires_at > now;
        e.draining |= w.draining;
        // Later rows (ordered by last seen) state the current addresses.
        e.heartbeat = w.heartbeat_address.as_deref().and_then(|a| a.parse().ok());
        e.zone = w.zone;
        e.host = super::endpoints::parse_addresses(w.public_addresses.as_deref())
            .first()
            .copied();
        e.version = w.version;
        e.last_seen_at = w.last_seen_at;
    }
    if let Some(p) = polling {
        out.entry(p.to_owned()).or_default().live = true;
    }
    Ok(out)
}

/// Where the instances of one placed gateway run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slots {
    /// The workers of instance 0 and 1.
    pub workers: [Option<String>; 2],
    /// Instance 0 is pinned (`PUT /api/v1/placements/...`).
    pub pinned: bool,
    /// The designated active index.
    pub active: u8,
    pub term: u64,
    /// The sealed heartbeat key.
    pub key: Option<String>,
}

impl Slots {
    /// Whether the gateway has two instances.
    pub fn is_pair(&self) -> bool {
        self.workers[0].is_some() && self.workers[1].is_some()
    }

    /// The designated active instance's worker.
    pub fn active_worker(&self) -> Option<&str> {
        self.workers[usize::from(self.active.min(1))].as_deref()
    }

    /// The other instance's worker, when there are two.
    pub fn standby_worker(&self) -> Option<&str> {
        if self.is_pair() {
            self.workers[usize::from(1 - self.active.min(1))].as_deref()
        } else {
            None
        }
    }

    /// The index of the instance `worker` runs.
    pub fn index_of(&self, worker: &str) -> Option<u8> {
        (0u8..2).find(|&i| self.workers[usize::from(i)].as_deref() == Some(worker))
    }
}

/// Gateways keyed by (tenant, name).
pub type Key = (String, String);

/// The slots of every placed gateway.
pub async fn slots_of<C: ConnectionTrait>(db: &C) -> Result<BTreeMap<Key, Slots>> {
    let extra: BTreeMap<Key, gateway_instance::Model> = gateway_instance::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|g| ((g.tenant.clone(), g.gateway.clone()), g))
        .collect();
    Ok(placement::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|p| {
            let key = (p.tenant, p.gateway);
            let e = extra.get(&key);
            let slots = Slots {
                workers: [Some(p.worker), e.and_then(|e| e.second_worker.clone())],
                pinned: p.pinned,
                active: e.map_or(0, |e| u8::from(e.active == 1)),
                term: e.map_or(0, |e| u64::try_from(e.term).unwrap_or(0)),
                key: e.and_then(|e| e.heartbeat_key.clone()),
            };
            (key, slots)
        })
        .collect())
}

/// The loads the rule compares, from `slots` (each instance counts as a gateway on its worker)
/// and the peers of each gateway.
pub fn loads_of(
    workers: &Workers,
    slots: &BTreeMap<Key, Slots>,
    peers: &BTreeMap<Key, usize>,
) -> BTreeMap<String, Load> {
    let mut loads: BTreeMap<String, Load> = workers
        .iter()
        .filter(|(_, w)| w.live)
        .map(|(n, _)| (n.clone(), Load::default()))
        .collect();
    for (key, s) in slots {
        let n = peers.get(key).copied().unwrap_or(0);
        for w in s.workers.iter().flatten() {
            if let Some(l) = loads.get_mut(w) {
                l.gateways += 1;
                l.peers += n;
            }
        }
    }
    loads
}

/// Picks a worker for a new instance and counts it there: live and not draining (and, for an
/// instance of a redundant gateway, `partner` being set, with a heartbeat address), not in
/// `exclude`; another zone than `partner`'s first, then the least loaded, then the name.
pub fn pick(
    workers: &Workers,
    loads: &mut BTreeMap<String, Load>,
    partner: Option<&str>,
    exclude: &[&str],
    peers: usize,
) -> Option<String> {
    let zone = partner
        .and_then(|p| workers.get(p))
        .and_then(|w| w.zone.as_deref());
    let chosen = workers
        .iter()
        .filter(|(n, w)| {
            w.live
                && !w.draining
                && (partner.is_none() || w.heartbeat.is_some())
                && !exclude.contains(&n.as_str())
        })
        .min_by_key(|(n, w)| {
            let same_zone = zone.is_some() && w.zone.as_deref() == zone;
            (same_zone, loads.get(*n).copied().unwrap_or_default(), *n)
        })
        .map(|(n, _)| n.clone())?;
    let l = loads.entry(chosen.clone()).or_default();
    l.gateways += 1;
    l.peers += peers;
    Some(chosen)
}

/// The module's rules applied to one gateway's slots (`None`: not placed); the new slots when
/// they changed (the caller issues the term).
pub fn reconcile_one(
    current: Option<&Slots>,
    workers: &Workers,
    loads: &mut BTreeMap<String, Load>,
    peers: usize,
) -> Option<Slots> {
    let info = |w: &Option<String>| w.as_deref().and_then(|n| workers.get(n));
    let live = |w: &Option<String>| info(w).is_some_and(|i| i.live);
    let beats = |w: &Option<String>| info(w).is_some_and(|i| i.live && i.heartbeat.is_some());
    let draining = |w: &Option<String>| info(w).is_some_and(|i| i.draining);
    let mut n = current.cloned().unwrap_or_default();
    if n.workers[1].is_some() && !live(&n.workers[1]) {
        // Instance 1 is lost: instance 0 is (or becomes) the active one; a new standby below.
        n.workers[1] = None;
        n.active = 0;
    }
    if n.workers[0].is_some() && !live(&n.workers[0]) {
        if n.pinned {
            if n.workers[1].is_some() {
                n.active = 1;
            }
        } else if let Some(w1) = n.workers[1].take() {
            let dead = n.workers[0].clone().unwrap_or_default();
            let third = if beats(&Some(w1.clone())) {
                pick(workers, loads, Some(&w1), &[&w1, &dead], peers)
            } else {
                None
            };
            match third {
                Some(third) => {
                    n.workers = [Some(third), Some(w1)];
                    n.active = 1;
                }
                None => {
                    n.workers = [Some(w1), None];
                    n.active = 0;
                }
            }
        } else {
            n.workers[0] = None;
        }
    }
    if n.workers[0].is_none() {
        n.workers[0] = pick(workers, loads, None, &[], peers);
        n.active = 0;
    }
    if n.workers[1].is_none() && beats(&n.workers[0]) {
        let w0 = n.workers[0].clone().unwrap_or_default();
        n.workers[1] = pick(workers, loads, Some(&w0), &[&w0], peers);
    }
    if n.is_pair() && live(&n.workers[0]) && live(&n.workers[1]) {
        let sb = usize::from(1 - n.active.min(1));
        let aw = n.workers[1 - sb].clone().unwrap_or_default();
        let sw = n.workers[sb].clone().unwrap_or_default();
        let movable = !(sb == 0 && n.pinned);
        if movable
            && draining(&n.workers[sb])
            && !draining(&n.workers[1 - sb])
            && let Some(third) = pick(workers, loads, Some(&aw), &[&aw, &sw], peers)
        {
            n.workers[sb] = Some(third);
        }
    }
    let old = current.cloned().unwrap_or_default();
    if n.workers == old.workers && n.active == old.active {
        None
    } else {
        Some(n)
    }
}

/// What one pass decided: new slots, and gateway bodies whose endpoints must follow.
#[derive(Default)]
pub(super) struct Decision {
    slots: Vec<(Key, Slots)>,
    bodies: Vec<(resource::Model, Gateway)>,
}

impl Decision {
    pub(super) fn is_noop(&self) -> bool {
        self.slots.is_empty() && self.bodies.is_empty()
    }
}

/// The highest term any worker reported per gateway.
async fn reported_terms<C: ConnectionTrait>(db: &C) -> Result<BTreeMap<Key, u64>> {
    let mut out: BTreeMap<Key, u64> = BTreeMap::new();
    for r in instance_status::Entity::find().all(db).await? {
        let t = out.entry((r.tenant, r.gateway)).or_default();
        *t = (*t).max(u64::try_from(r.term).unwrap_or(0));
    }
    Ok(out)
}

/// The endpoint of an instance on `worker`: its host (else `fallback`), `port`.
pub fn endpoint_on(workers: &Workers, worker: &str, port: u16, fallback: IpAddr) -> SocketAddr {
    let host = workers.get(worker).and_then(|w| w.host).unwrap_or(fallback);
    SocketAddr::new(host, port)
}

/// One pass of the rules over every gateway of `db`, read only; with `place` false, only the
/// endpoints follow the workers' addresses (nothing is placed or moved).
pub(super) async fn decide<C: ConnectionTrait>(
    db: &C,
    polling: Option<&str>,
    fallback: IpAddr,
    place: bool,
) -> Result<Decision> {
    let workers = workers(db, polling).await?;
    let mut slots = slots_of(db).await?;
    let rows = resource::Entity::find().all(db).await?;
    let part = super::placement::load_part(&rows);
    let peers = super::placement::gateway_loads(&part);
    let mut loads = loads_of(&workers, &slots, &peers);
    let reported = reported_terms(db).await?;
    let mut gateways: Vec<&resource::Model> = rows
        .iter()
        .filter(|r| r.kind == Kind::Gateway.stored())
        .collect();
    gateways.sort_by(|a, b| (&a.tenant, &a.name).cmp(&(&b.tenant, &b.name)));
    let mut d = Decision::default();
    for row in gateways {
        let key = (row.tenant.clone(), row.name.clone());
        let n = peers.get(&key).copied().unwrap_or(0);
        let next = if place {
            reconcile_one(slots.get(&key), &workers, &mut loads, n)
        } else {
            None
        };
        if let Some(mut next) = next {
            let stored = slots.get(&key).map_or(0, |s| s.term);
            next.term = stored.max(reported.get(&key).copied().unwrap_or(0)) + 1;
            tracing::info!(tenant = %key.0, gateway = %key.1,
                instance0 = ?next.workers[0], instance1 = ?next.workers[1],
                active = next.active, term = next.term, "gateway instances placed");
            slots.insert(key.clone(), next.clone());
            d.slots.push((key.clone(), next));
        }
        let Some(s) = slots.get(&key) else { continue };
        let Ok(mut g) = serde_json::from_str::<Gateway>(&row.body) else {
            continue;
        };
        // Issue 16 item 6: an active-active gateway's endpoints are its instances' (0, then 1)
        // and never swap, since each site device's tunnel keeps its own instance.
        let (first, second) = if g.active_active && s.is_pair() {
            (s.workers[0].as_deref(), s.workers[1].as_deref())
        } else {
            (s.active_worker(), s.standby_worker())
        };
        let (Some(active), Some(old)) = (first, g.public_endpoint) else {
            continue;
        };
        let public = endpoint_on(&workers, active, old.port(), fallback);
        let secondary = second.map(|w| endpoint_on(&workers, w, old.port(), fallback));
        if g.public_endpoint != Some(public) || g.secondary_endpoint != secondary {
            tracing::info!(tenant = %key.0, gateway = %key.1, from = %old, to = %public,
                secondary = ?secondary, "gateway endpoints follow its instances' workers");
            g.public_endpoint = Some(public);
            g.secondary_endpoint = secondary;
            d.bodies.push((row.clone(), g));
        }
    }
    Ok(d)
}

/// What a sealed heartbeat key is bound to.
pub fn key_purpose(q: &QualifiedName) -> String {
    format!("heartbeat-key:{q}")
}

/// Writes the slots of `key`.
pub(super) async fn write_slots<C: ConnectionTrait>(
    db: &C,
    sealer: &Sealer,
    key: &Key,
    s: &Slots,
) -> Result<()> {
    let Some(w0) = s.workers[0].clone() else {
        return Ok(());
    };
    placement::Entity::insert(placement::ActiveModel {
        tenant: Set(key.0.clone()),
        gateway: Set(key.1.clone()),
        worker: Set(w0),
        pinned: Set(s.pinned),
    })
    .on_conflict(
        OnConflict::columns([placement::Column::Tenant, placement::Column::Gateway])
            .update_columns([placement::Column::Worker, placement::Column::Pinned])
            .to_owned(),
    )
    .exec(db)
    .await?;
    let mut sealed = s.key.clone();
    if sealed.is_none() && s.workers[1].is_some() {
        let q = QualifiedName::new(&key.0, &key.1);
        sealed = Some(sealer.seal(&key_purpose(&q), &random_bytes::<32>()?)?);
    }
    gateway_instance::Entity::insert(gateway_instance::ActiveModel {
        tenant: Set(key.0.clone()),
        gateway: Set(key.1.clone()),
        second_worker: Set(s.workers[1].clone()),
        active: Set(i32::from(s.active)),
        term: Set(i64::try_from(s.term).unwrap_or(i64::MAX)),
        heartbeat_key: Set(sealed),
    })
    .on_conflict(
        OnConflict::columns([
            gateway_instance::Column::Tenant,
            gateway_instance::Column::Gateway,
        ])
        .update_columns([
            gateway_instance::Column::SecondWorker,
            gateway_instance::Column::Active,
            gateway_instance::Column::Term,
            gateway_instance::Column::HeartbeatKey,
        ])
        .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
}

/// Applies a [`decide`] made on `db` (the caller's write transaction, which bumps the version
/// when this returns true).
pub(super) async fn apply<C: ConnectionTrait>(
    db: &C,
    sealer: &Sealer,
    d: Decision,
) -> Result<bool> {
    let changed = !d.is_noop();
    for (key, s) in &d.slots {
        write_slots(db, sealer, key, s).await?;
    }
    for (row, g) in d.bodies {
        let body = serde_json::to_string(&g).map_err(|e| StoreError::Internal(e.to_string()))?;
        let mut am: resource::ActiveModel = row.into();
        am.body = Set(body);
        am.updated_at = Set(now_ms());
        am.update(db).await?;
    }
    Ok(changed)
}

/// Adopts a worker's report that its instance is active at a term not below the stored one
/// (module doc), when `worker` holds that instance. Returns whether the designation changed.
pub(super) async fn adopt<C: ConnectionTrait>(
    db: &C,
    slots: &mut BTreeMap<Key, Slots>,
    key: &Key,
    worker: &str,
    st: &InstanceStatus,
) -> Result<bool> {
    let Some(s) = slots.get_mut(key) else {
        return Ok(false);
    };
    if !s.is_pair()
        || s.index_of(worker) != Some(st.instance)
        || st.role != isthmus_shared::instances::InstanceRole::Active
        || st.term < s.term
        || st.instance == s.active
    {
        return Ok(false);
    }
    tracing::info!(tenant = %key.0, gateway = %key.1, instance = st.instance, worker,
        term = st.term, "the server adopts the instance's takeover");
    s.active = st.instance;
    s.term = st.term;
    gateway_instance::Entity::update_many()
        .col_expr(
            gateway_instance::Column::Active,
            sea_orm::sea_query::Expr::value(i32::from(st.instance)),
        )
        .col_expr(
            gateway_instance::Column::Term,
            sea_orm::sea_query::Expr::value(i64::try_from(st.term).unwrap_or(i64::MAX)),
        )
        .filter(gateway_instance::Column::Tenant.eq(key.0.as_str()))
        .filter(gateway_instance::Column::Gateway.eq(key.1.as_str()))
        .exec(db)
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(live: bool, draining: bool, zone: Option<&str>) -> WorkerInfo {
        WorkerInfo {
            live,
            draining,
            heartbeat: Some("192.0.2.1:51899".parse().expect("addr")),
            zone: zone.map(str::to_owned),
            ..WorkerInfo::default()
        }
    }

    fn pair(a: &str, b: &str, active: u8) -> Slots {
        Slots {
            workers: [Some(a.to_owned()), Some(b.to_owned())],
            active,
            term: 3,
            ..Slots::default()
        }
    }

    fn ws(list: &[(&str, WorkerInfo)]) -> Workers {
        list.iter()
            .map(|(n, i)| ((*n).to_owned(), i.clone()))
            .collect()
    }

    #[test]
    fn a_standby_goes_to_another_zone_before_a_less_loaded_worker() {
        let workers = ws(&[
            ("a", w(true, false, Some("z1"))),
            ("b", w(true, false, Some("z1"))),
            ("c", w(true, false, Some("z2"))),
        ]);
        let mut loads = BTreeMap::from([
            ("a".to_owned(), Load::default()),
            ("b".to_owned(), Load::default()),
            (
                "c".to_owned(),
                Load {
                    gateways: 5,
                    peers: 0,
                },
            ),
        ]);
        let single = Slots {
            workers: [Some("a".to_owned()), None],
            ..Slots::default()
        };
        let next = reconcile_one(Some(&single), &workers, &mut loads, 0).expect("change");
        assert_eq!(next.workers, [Some("a".to_owned()), Some("c".to_owned())]);
        assert_eq!(next.active, 0);
    }

    #[test]
    fn a_lost_active_makes_the_standby_active_and_a_third_worker_the_new_standby() {
        let workers = ws(&[
            ("a", w(false, false, None)),
            ("b", w(true, false, None)),
            ("c", w(true, false, None)),
        ]);
        let mut loads = BTreeMap::new();
        let next =
            reconcile_one(Some(&pair("a", "b", 0)), &workers, &mut loads, 0).expect("change");
        assert_eq!(next.workers, [Some("c".to_owned()), Some("b".to_owned())]);
        assert_eq!(next.active, 1);
        let two = ws(&[("a", w(false, false, None)), ("b", w(true, false, None))]);
        let next = reconcile_one(Some(&pair("a", "b", 0)), &two, &mut loads, 0).expect("change");
        assert_eq!(next.workers, [Some("b".to_owned()), None], "dropped");
    }

    #[test]
    fn a_pinned_instance_stays_and_a_draining_standby_moves_only_after_the_handover() {
        let workers = ws(&[
            ("a", w(true, true, None)),
            ("b", w(true, false, None)),
            ("c", w(true, false, None)),
        ]);
        let mut loads = BTreeMap::new();
        assert_eq!(
            reconcile_one(Some(&pair("a", "b", 0)), &workers, &mut loads, 0),
            None,
            "the draining worker still runs the active instance"
        );
        let next = reconcile_one(Some(&pair("a", "b", 1)), &workers, &mut loads, 0).expect("move");
        assert_eq!(next.workers, [Some("c".to_owned()), Some("b".to_owned())]);
        let mut pinned = pair("a", "b", 1);
        pinned.pinned = true;
        assert_eq!(reconcile_one(Some(&pinned), &workers, &mut loads, 0), None);
        let dead = ws(&[("a", w(false, false, None)), ("b", w(true, false, None))]);
        let next = reconcile_one(Some(&pinned_active0()), &dead, &mut loads, 0).expect("change");
        assert_eq!(next.workers, [Some("a".to_owned()), Some("b".to_owned())]);
        assert_eq!(next.active, 1);
    }

    fn pinned_active0() -> Slots {
        let mut s = pair("a", "b", 0);
        s.pinned = true;
        s
    }
}
