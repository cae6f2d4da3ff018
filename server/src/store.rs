//! The topology in the database, and the one way to change it.
//!
//! Every write of the topology goes through [`commit_with`] (or [`commit_changes`],
//! [`commit_change`]): in one transaction it bumps the topology version (which serialises
//! writers on SQLite and PostgreSQL alike), loads the whole stored topology, applies the
//! change, runs the shared validator, and writes only when nothing is violated (LIM-3: all or
//! nothing). The other writes that move the version (a new tenant, placements and the
//! endpoints that follow them) are in [`tenants`] and [`placement`]; the version is bumped
//! nowhere else. The store knows nothing of HTTP: its errors are [`StoreError`]s, which
//! `crate::error` maps to answers in one place.

pub mod endpoints;
pub mod error;
pub mod instances;
pub mod placement;
mod read;
mod rows;
pub mod tenants;
pub mod workers;

pub use isthmus_shared::model::Kind;
use isthmus_shared::model::{Change, Connection, QualifiedName, SharedKey, Topology};
use isthmus_shared::validate::{Violation, has_errors};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, TransactionTrait,
};
use serde::Serialize;

use self::error::Result;
pub use self::error::StoreError;
pub use self::read::{
    current_topology, find_row, get_row, list_bodies, load_topology, not_found, row_json,
};
use crate::audit;
use crate::auth::Principal;
use crate::db::entities::meta;
use crate::secrets::random_bytes;
use crate::state::{AppState, EndpointPool};

/// Whether `topology` has a resource of `kind` named `q` (for point-to-site, `q.name` is the
/// gateway's).
pub fn exists(topology: &Topology, kind: Kind, q: &QualifiedName) -> bool {
    let (t, n) = (q.tenant.as_str(), q.name.as_str());
    match kind {
        Kind::Vnet => topology.vnet(t, n).is_some(),
        Kind::Gateway => topology.gateway(t, n).is_some(),
        Kind::Site => topology.site(t, n).is_some(),
        Kind::Connection => topology.connection(t, n).is_some(),
        Kind::PointToSite => topology.point_to_site_of(t, n).is_some(),
    }
}

/// What purpose a sealed value is bound to.
pub fn seal_purpose(kind: Kind, q: &QualifiedName) -> String {
    match kind {
        Kind::Gateway => format!("gateway-private-key:{q}"),
        Kind::Connection => format!("shared-key:{q}"),
        other => format!("{}:{q}", other.stored()),
    }
}

/// Begins a transaction that holds the write lock from its first statement.
///
/// Writers of this process first queue on an in-process gate (FIFO), so they never spin in
/// SQLite's busy handler against each other; writers of other replicas are serialised by the
/// database. A transaction that reads before it writes can fail on SQLite with
/// `SQLITE_BUSY_SNAPSHOT` (another writer committed in between) instead of waiting; writing
/// first makes it wait for the lock (busy timeout) and then see the latest state. On
/// PostgreSQL the same statement row-locks one `meta` row, which serialises these
/// transactions. Keep the returned gate alive until the transaction ends.
pub async fn begin_write(state: &AppState) -> Result<(WriteGate, DatabaseTransaction)> {
    let gate = state.write_gate().await;
    let txn = state.db().begin().await?;
    meta::Entity::update_many()
        .col_expr(meta::Column::Value, Expr::col(meta::Column::Value))
        .filter(meta::Column::Key.eq("next_port"))
        .exec(&txn)
        .await?;
    Ok((gate, txn))
}

/// This process's turn to write; see [`begin_write`].
pub type WriteGate = tokio::sync::OwnedMutexGuard<()>;

/// Bumps the topology version; being a write, it takes the write lock first. Only the store
/// calls it, inside a write transaction that changes the topology or what the desired states
/// are made of (placements, endpoints).
async fn bump_version<C: ConnectionTrait>(db: &C) -> Result<i64> {
    meta::Entity::update_many()
        .col_expr(meta::Column::Value, Expr::col(meta::Column::Value).add(1))
        .filter(meta::Column::Key.eq(VERSION_KEY))
        .exec(db)
        .await?;
    current_version(db).await
}

/// The `meta` row holding the topology version.
pub use crate::db::VERSION_KEY;

/// The topology version as the database has it now.
pub async fn current_version<C: ConnectionTrait>(db: &C) -> Result<i64> {
    Ok(meta::Entity::find_by_id(VERSION_KEY.to_owned())
        .one(db)
        .await?
        .map_or(0, |m| m.value))
}

/// GW-3: the next free endpoint on `host` (the address of the worker the gateway goes to, see
/// [`endpoints`]). Ports are unique over all gateways, whatever their host, so a gateway
/// keeps its port when it moves to another worker. The cursor only moves forward (wrapping),
/// so a gateway deleted and created again gets another port.
async fn allocate_endpoint(
    db: &DatabaseTransaction,
    topology: &Topology,
    pool: EndpointPool,
    host: std::net::IpAddr,
) -> Result<std::net::SocketAddr> {
    let span = u32::from(pool.last_port - pool.first_port) + 1;
    let cursor = meta::Entity::find_by_id("next_port".to_owned())
        .one(db)
        .await?
        .map_or(0, |m| m.value);
    for step in 0..i64::from(span) {
        let offset = u32::try_from((cursor + step).rem_euclid(i64::from(span))).unwrap_or(0);
        let port = pool.first_port + u16::try_from(offset).unwrap_or(0);
        let addr = std::net::SocketAddr::new(host, port);
        if !topology
            .gateways
            .iter()
            .any(|g| g.public_endpoint.is_some_and(|e| e.port() == port))
        {
            meta::Entity::update_many()
                .col_expr(meta::Column::Value, Expr::value(cursor + step + 1))
                .filter(meta::Column::Key.eq("next_port"))
                .exec(db)
                .await?;
            return Ok(addr);
        }
    }
    Err(StoreError::Conflict(format!(
        "every gateway port {}-{} is taken; delete a gateway or widen --gateway-ports",
        pool.first_port, pool.last_port
    )))
}

/// A fresh WireGuard key pair: (private, public), base64.
pub fn wireguard_keypair() -> Result<(String, String)> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    let secret = x25519_dalek::StaticSecret::from(random_bytes::<32>()?);
    let public = x25519_dalek::PublicKey::from(&secret);
    Ok((
        STANDARD.encode(secret.to_bytes()),
        STANDARD.encode(public.as_bytes()),
    ))
}

/// The outcome of a write that passed validation.
#[derive(Debug, Clone, Serialize)]
pub struct Committed {
    /// The topology version this write produced.
    pub version: i64,
    /// Warnings of the validator (they do not block).
    pub warnings: Vec<Violation>,
}

/// The refusal: every violation that is an error, nothing written.
pub fn rejected(violations: Vec<Violation>) -> StoreError {
    let errors: Vec<Violation> = violations.into_iter().filter(Violation::is_error).collect();
    StoreError::Rejected {
        message: format!(
            "{} rule violation{}; nothing was saved: fix each one and submit again",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        ),
        violations: errors,
    }
}

/// Validates `change` against the whole stored topology and writes it, atomically.
pub async fn commit_change(
    state: &AppState,
    who: &Principal,
    action: &str,
    change: Change,
) -> Result<Committed> {
    commit_changes(state, who, action, vec![change], false).await
}

/// Fills the server-owned parts of a change (GW-3 endpoint and key pair for a new gateway,
/// GW-4 shared key for a new connection) against the topology as it stands, and returns
/// the secret to seal with the resource.
async fn prepare(
    txn: &DatabaseTransaction,
    working: &Topology,
    pool: EndpointPool,
    change: &mut Change,
) -> Result<Option<String>> {
    match change {
        Change::UpsertGateway(g) => match working.gateway(&g.tenant, &g.name) {
            // Server-owned fields survive updates.
            Some(existing) => {
                g.public_endpoint = existing.public_endpoint;
                g.secondary_endpoint = existing.secondary_endpoint;
                g.public_key = existing.public_key.clone();
                Ok(None)
            }
            None => {
                let host =
                    placement::place_new_gateway(txn, working, &g.qualified_name(), pool.host)
                        .await?;
                g.public_endpoint = Some(allocate_endpoint(txn, working, pool, host).await?);
                let (private, public) = wireguard_keypair()?;
                g.public_key = Some(public);
                Ok(Some(private))
            }
        },
        Change::UpsertConnection(c) => {
            if c.shared_key.is_none() {
                // GW-4: keep the existing key on update; the second half of a same-tenant
                // VNet-to-VNet pair takes its partner's key; otherwise generate one.
                c.shared_key = match working.connection(&c.tenant, &c.name) {
                    Some(existing) => existing.shared_key.clone(),
                    None => same_tenant_partner(working, c)
                        .and_then(|p| p.shared_key.clone())
                        .or_else(|| {
                            Some(SharedKey::new(isthmus_shared::psk::generate_shared_key(
                                &mut rand::rng(),
                            )))
                        }),
                };
            }
            Ok(c.shared_key.as_ref().map(|k| k.expose().to_owned()))
        }
        _ => Ok(None),
    }
}

/// The other half of a VNet-to-VNet pair, when both halves are in one tenant (a cross-tenant
/// partner's key is never copied or set: each owner sets it, CONN-2).
pub fn same_tenant_partner<'a>(working: &'a Topology, c: &Connection) -> Option<&'a Connection> {
    let remote = c.remote_gateway()?;
    if remote.tenant != c.tenant {
        return None;
    }
    let me = QualifiedName::new(&c.tenant, &c.gateway);
    working
        .connections
        .iter()
        .filter(|p| p.tenant == remote.tenant && p.gateway == remote.name)
        .find(|p| p.name != c.name && p.remote_gateway().as_ref() == Some(&me))
}

/// Applies `changes` together: validated once, as a whole, against the stored topology, and
/// written in one transaction or not at all (LIM-3). With `dry_run`, nothing is written.
pub async fn commit_changes(
    state: &AppState,
    who: &Principal,
    action: &str,
    changes: Vec<Change>,
    dry_run: bool,
) -> Result<Committed> {
    commit_with(state, who, action, dry_run, |_| {
        Ok::<_, StoreError>((changes, ()))
    })
    .await
    .map(|(c, ())| c)
}

/// Like [`commit_changes`], but the changes are computed by `build` from the topology as it
/// stands inside the write transaction (writers are serialised by then), so a read-modify-write
/// such as allocating a free client address, or checking that a name is free, cannot race
/// another writer. What `build` returns besides the changes is handed back after the commit;
/// its error is the caller's own (anything that a [`StoreError`] converts into).
pub async fn commit_with<T, E: From<StoreError>>(
    state: &AppState,
    who: &Principal,
    action: &str,
    dry_run: bool,
    build: impl FnOnce(&Topology) -> std::result::Result<(Vec<Change>, T), E>,
) -> std::result::Result<(Committed, T), E> {
    let _gate = state.write_gate().await;
    let txn = state.db().begin().await.map_err(StoreError::from)?;
    let version = bump_version(&txn).await?;
    // Every change of the topology bumps the version, so the state at `version - 1` is
    // exactly what this transaction sees.
    let working = match state.cached_topology(version - 1) {
        Some(t) => (*t).clone(),
        None => load_topology(&txn, state.sealer()).await?,
    };
    let (changes, extra) = match build(&working) {
        Ok(x) => x,
        Err(e) => {
            txn.rollback().await.map_err(StoreError::from)?;
            return Err(e);
        }
    };
    let committed =
        validate_and_write(state, who, action, dry_run, txn, version, working, changes).await?;
    Ok((committed, extra))
}

/// What the caller may see of a validation: an administrator everything; anyone else what
/// concerns the tenants the change writes to (which the caller may write to), so that no
/// warning or violation tells of another tenant's resources.
fn for_caller<'c>(
    who: &Principal,
    changes: impl Iterator<Item = &'c Change>,
    violations: Vec<Violation>,
) -> Vec<Violation> {
    if who.is_admin {
        return violations;
    }
    let tenants: std::collections::BTreeSet<&str> = changes
        .map(isthmus_shared::validate::tenant_of_change)
        .collect();
    isthmus_shared::validate::visible_to(violations, &tenants)
}

/// The rest of [`commit_with`]: fills the server-owned fields, validates the whole result
/// and writes it (with one audit entry per change), or rolls back.
#[allow(clippy::too_many_arguments)]
async fn validate_and_write(
    state: &AppState,
    who: &Principal,
    action: &str,
    dry_run: bool,
    txn: DatabaseTransaction,
    version: i64,
    mut working: Topology,
    changes: Vec<Change>,
) -> Result<Committed> {
    let mut prepared = Vec::with_capacity(changes.len());
    for mut change in changes {
        let secret = prepare(&txn, &working, state.endpoint_pool(), &mut change).await?;
        if let Err(e) = working.apply(&change) {
            txn.rollback().await?;
            return Err(StoreError::NotFound(e.to_string()));
        }
        prepared.push((change, secret));
    }
    let all = isthmus_shared::validate::validate_applied(&working, prepared.iter().map(|p| &p.0));
    let refused = has_errors(&all);
    let violations = for_caller(who, prepared.iter().map(|p| &p.0), all);
    if refused {
        txn.rollback().await?;
        return Err(rejected(violations));
    }
    if dry_run {
        txn.rollback().await?;
        return Ok(Committed {
            version,
            warnings: violations,
        });
    }
    for (change, secret) in &prepared {
        let (tenant_name, target) =
            rows::persist(&txn, state.sealer(), change, secret.clone()).await?;
        audit::record(&txn, who, action, Some(&tenant_name), &target).await?;
    }
    txn.commit().await?;
    state.cache_topology(version, std::sync::Arc::new(working));
    Ok(Committed {
        version,
        warnings: violations,
    })
}
