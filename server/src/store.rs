//! The topology in the database, and the one way to change it.
//!
//! Every write goes through [`commit_change`]: in one transaction it bumps the
//! topology version (which serialises writers on SQLite and PostgreSQL alike),
//! loads the whole stored topology, applies the change, runs the shared
//! validator, and writes only when nothing is violated (LIM-3: all or nothing).

use isthmus_shared::model::{
    Change, Connection, Gateway, LocalSite, PointToSite, QualifiedName, SharedKey, Tenant,
    Topology, Vnet,
};
use isthmus_shared::validate::{Violation, has_errors};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::audit;
use crate::auth::{Principal, now_ms};
use crate::db::entities::{meta, resource, tenant};
use crate::error::ApiError;
use crate::secrets::{Sealer, random_bytes};
use crate::state::{AppState, EndpointPool};

/// The kinds of resource, as they appear in URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Vnet,
    Gateway,
    Site,
    Connection,
    PointToSite,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Vnet,
        Kind::Gateway,
        Kind::Site,
        Kind::Connection,
        Kind::PointToSite,
    ];

    /// The stored kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Vnet => "vnet",
            Kind::Gateway => "gateway",
            Kind::Site => "site",
            Kind::Connection => "connection",
            Kind::PointToSite => "point_to_site",
        }
    }

    /// The URL segment.
    pub fn segment(self) -> &'static str {
        match self {
            Kind::Vnet => "vnets",
            Kind::Gateway => "gateways",
            Kind::Site => "sites",
            Kind::Connection => "connections",
            Kind::PointToSite => "point-to-site",
        }
    }

    pub fn from_segment(seg: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.segment() == seg)
    }
}

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
        other => format!("{}:{q}", other.as_str()),
    }
}

fn decode<T: DeserializeOwned>(row: &resource::Model) -> Result<T, ApiError> {
    serde_json::from_str(&row.body).map_err(|e| {
        ApiError::Internal(format!(
            "stored {} {}/{} does not parse: {e}",
            row.kind, row.tenant, row.name
        ))
    })
}

/// Loads everything: the input of every validation. Shared keys are opened (the
/// validator checks them); gateway private keys stay sealed.
pub async fn load_topology<C: ConnectionTrait>(
    db: &C,
    sealer: &Sealer,
) -> Result<Topology, ApiError> {
    let mut t = Topology::new();
    for row in tenant::Entity::find()
        .order_by_asc(tenant::Column::Name)
        .all(db)
        .await?
    {
        t.tenants.push(Tenant { name: row.name });
    }
    for row in resource::Entity::find()
        .order_by_asc(resource::Column::Id)
        .all(db)
        .await?
    {
        match row.kind.as_str() {
            "vnet" => t.vnets.push(decode::<Vnet>(&row)?),
            "gateway" => t.gateways.push(decode::<Gateway>(&row)?),
            "site" => t.sites.push(decode::<LocalSite>(&row)?),
            "connection" => {
                let mut c: Connection = decode(&row)?;
                if let Some(sealed) = &row.sealed {
                    let key = sealer.open_string(
                        &seal_purpose(Kind::Connection, &c.qualified_name()),
                        sealed,
                    )?;
                    c.shared_key = Some(SharedKey::new(key));
                }
                t.connections.push(c);
            }
            "point_to_site" => t.point_to_site.push(decode::<PointToSite>(&row)?),
            other => return Err(ApiError::Internal(format!("unknown stored kind {other}"))),
        }
    }
    Ok(t)
}

/// The current topology: from this process's cache when it is current, else the database.
pub async fn current_topology(state: &AppState) -> Result<std::sync::Arc<Topology>, ApiError> {
    let version = current_version(state.db()).await?;
    if let Some(t) = state.cached_topology(version) {
        return Ok(t);
    }
    let txn = state.db().begin().await?;
    let version = current_version(&txn).await?;
    let t = std::sync::Arc::new(load_topology(&txn, state.sealer()).await?);
    txn.commit().await?;
    state.cache_topology(version, std::sync::Arc::clone(&t));
    Ok(t)
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
pub async fn begin_write(state: &AppState) -> Result<(WriteGate, DatabaseTransaction), ApiError> {
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

/// Bumps the topology version; being a write, it takes the write lock first.
pub async fn bump_version<C: ConnectionTrait>(db: &C) -> Result<i64, ApiError> {
    meta::Entity::update_many()
        .col_expr(meta::Column::Value, Expr::col(meta::Column::Value).add(1))
        .filter(meta::Column::Key.eq(VERSION_KEY))
        .exec(db)
        .await?;
    current_version(db).await
}

/// The `meta` row holding the topology version.
pub const VERSION_KEY: &str = "topology_version";

pub async fn current_version<C: ConnectionTrait>(db: &C) -> Result<i64, ApiError> {
    Ok(meta::Entity::find_by_id(VERSION_KEY.to_owned())
        .one(db)
        .await?
        .map_or(0, |m| m.value))
}

/// GW-3: the next free endpoint on `host` (the address of the worker the gateway goes to, see
/// [`crate::endpoints`]). Ports are unique over all gateways, whatever their host, so a gateway
/// keeps its port when it moves to another worker. The cursor only moves forward (wrapping),
/// so a gateway deleted and created again gets another port.
async fn allocate_endpoint(
    db: &DatabaseTransaction,
    topology: &Topology,
    pool: EndpointPool,
    host: std::net::IpAddr,
) -> Result<std::net::SocketAddr, ApiError> {
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
    Err(ApiError::Conflict(format!(
        "every gateway port {}-{} is taken; delete a gateway or widen --gateway-ports",
        pool.first_port, pool.last_port
    )))
}

/// A fresh WireGuard key pair: (private, public), base64.
pub fn wireguard_keypair() -> Result<(String, String), ApiError> {
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

/// The 422 error: every violation, nothing written.
pub fn rejected(violations: Vec<Violation>) -> ApiError {
    let errors: Vec<Violation> = violations.into_iter().filter(Violation::is_error).collect();
    ApiError::Unprocessable {
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
) -> Result<Committed, ApiError> {
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
) -> Result<Option<String>, ApiError> {
    match change {
        Change::UpsertGateway(g) => match working.gateway(&g.tenant, &g.name) {
            // Server-owned fields survive updates.
            Some(existing) => {
                g.public_endpoint = existing.public_endpoint;
                g.public_key = existing.public_key.clone();
                Ok(None)
            }
            None => {
                let host =
                    crate::endpoints::host_for_new_gateway(txn, &g.qualified_name(), pool.host)
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
) -> Result<Committed, ApiError> {
    commit_with(state, who, action, dry_run, |_| Ok((changes, ())))
        .await
        .map(|(c, ())| c)
}

/// Like [`commit_changes`], but the changes are computed by `build` from the topology as it
/// stands inside the write transaction (writers are serialised by then), so a read-modify-write
/// such as allocating a free client address cannot race another writer. What `build` returns
/// besides the changes is handed back after the commit.
pub async fn commit_with<T>(
    state: &AppState,
    who: &Principal,
    action: &str,
    dry_run: bool,
    build: impl FnOnce(&Topology) -> Result<(Vec<Change>, T), ApiError>,
) -> Result<(Committed, T), ApiError> {
    let _gate = state.write_gate().await;
    let txn = state.db().begin().await?;
    let version = bump_version(&txn).await?;
    // Every change of the topology bumps the version, so the state at `version - 1` is
    // exactly what this transaction sees.
    let mut working = match state.cached_topology(version - 1) {
        Some(t) => (*t).clone(),
        None => load_topology(&txn, state.sealer()).await?,
    };
    let (changes, extra) = match build(&working) {
        Ok(x) => x,
        Err(e) => {
            txn.rollback().await?;
            return Err(e);
        }
    };
    let mut prepared = Vec::with_capacity(changes.len());
    for mut change in changes {
        let secret = prepare(&txn, &working, state.endpoint_pool(), &mut change).await?;
        if let Err(e) = working.apply(&change) {
            txn.rollback().await?;
            return Err(ApiError::NotFound(e.to_string()));
        }
        prepared.push((change, secret));
    }
    let violations = isthmus_shared::validate::validate(&working);
    if has_errors(&violations) {
        txn.rollback().await?;
        return Err(rejected(violations));
    }
    if dry_run {
        txn.rollback().await?;
        return Ok((
            Committed {
                version,
                warnings: violations,
            },
            extra,
        ));
    }
    for (change, secret) in &prepared {
        let (tenant_name, target) = persist(&txn, state.sealer(), change, secret.clone()).await?;
        audit::record(&txn, who, action, Some(&tenant_name), &target).await?;
    }
    txn.commit().await?;
    state.cache_topology(version, std::sync::Arc::new(working));
    Ok((
        Committed {
            version,
            warnings: violations,
        },
        extra,
    ))
}

async fn upsert_row(
    txn: &DatabaseTransaction,
    sealer: &Sealer,
    kind: Kind,
    q: &QualifiedName,
    body: &impl Serialize,
    secret: Option<String>,
) -> Result<(), ApiError> {
    let body = serde_json::to_string(body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let sealed = match secret {
        Some(s) => Some(sealer.seal(&seal_purpose(kind, q), s.as_bytes())?),
        None => None,
    };
    let now = now_ms();
    let existing = resource::Entity::find()
        .filter(resource::Column::Kind.eq(kind.as_str()))
        .filter(resource::Column::Tenant.eq(q.tenant.clone()))
        .filter(resource::Column::Name.eq(q.name.clone()))
        .one(txn)
        .await?;
    match existing {
        Some(row) => {
            let keep = row.sealed.clone();
            let mut am: resource::ActiveModel = row.into();
            am.body = Set(body);
            am.sealed = Set(sealed.or(keep));
            am.updated_at = Set(now);
            am.update(txn).await?;
        }
        None => {
            resource::ActiveModel {
                kind: Set(kind.as_str().to_owned()),
                tenant: Set(q.tenant.clone()),
                name: Set(q.name.clone()),
                body: Set(body),
                sealed: Set(sealed),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(txn)
            .await?;
        }
    }
    Ok(())
}

async fn delete_row(
    txn: &DatabaseTransaction,
    kind: Kind,
    q: &QualifiedName,
) -> Result<(), ApiError> {
    resource::Entity::delete_many()
        .filter(resource::Column::Kind.eq(kind.as_str()))
        .filter(resource::Column::Tenant.eq(q.tenant.clone()))
        .filter(resource::Column::Name.eq(q.name.clone()))
        .exec(txn)
        .await?;
    Ok(())
}

async fn persist(
    txn: &DatabaseTransaction,
    sealer: &Sealer,
    change: &Change,
    secret: Option<String>,
) -> Result<(String, String), ApiError> {
    let done = |q: &QualifiedName| Ok((q.tenant.clone(), q.name.clone()));
    match change {
        Change::UpsertVnet(v) => {
            let q = QualifiedName::new(&v.tenant, &v.name);
            upsert_row(txn, sealer, Kind::Vnet, &q, v, None).await?;
            done(&q)
        }
        Change::UpsertGateway(g) => {
            let q = g.qualified_name();
            upsert_row(txn, sealer, Kind::Gateway, &q, g, secret).await?;
            done(&q)
        }
        Change::UpsertSite(s) => {
            let q = QualifiedName::new(&s.tenant, &s.name);
            upsert_row(txn, sealer, Kind::Site, &q, s, None).await?;
            done(&q)
        }
        Change::UpsertConnection(c) => {
            let q = c.qualified_name();
            let mut body = c.clone();
            body.shared_key = None; // only ever sealed
            upsert_row(txn, sealer, Kind::Connection, &q, &body, secret).await?;
            done(&q)
        }
        Change::UpsertPointToSite(p) => {
            let q = QualifiedName::new(&p.tenant, &p.gateway);
            upsert_row(txn, sealer, Kind::PointToSite, &q, p, None).await?;
            done(&q)
        }
        Change::DeleteVnet(q) => {
            delete_row(txn, Kind::Vnet, q).await?;
            done(q)
        }
        Change::DeleteGateway(q) => {
            delete_row(txn, Kind::Gateway, q).await?;
            done(q)
        }
        Change::DeleteSite(q) => {
            delete_row(txn, Kind::Site, q).await?;
            done(q)
        }
        Change::DeleteConnection(q) => {
            delete_row(txn, Kind::Connection, q).await?;
            done(q)
        }
        Change::DeletePointToSite(q) => {
            delete_row(txn, Kind::PointToSite, q).await?;
            done(q)
        }
        Change::UpsertTenant(t) => {
            crate::api::tenants::check_name("tenants[].name", &t.name)?;
            let exists = tenant::Entity::find()
                .filter(tenant::Column::Name.eq(t.name.clone()))
                .one(txn)
                .await?
                .is_some();
            if !exists {
                tenant::ActiveModel {
                    name: Set(t.name.clone()),
                    created_at: Set(now_ms()),
                    ..Default::default()
                }
                .insert(txn)
                .await?;
            }
            Ok((t.name.clone(), t.name.clone()))
        }
        Change::DeleteTenant(_) => Err(ApiError::BadRequest(
            "tenants are deleted through the API, not by a change".to_owned(),
        )),
    }
}

/// The stored JSON documents (never secrets) of one kind in one tenant, by name, unparsed.
pub async fn list_bodies<C: ConnectionTrait>(
    db: &C,
    kind: Kind,
    tenant: &str,
) -> Result<Vec<String>, ApiError> {
    Ok(resource::Entity::find()
        .select_only()
        .column(resource::Column::Body)
        .filter(resource::Column::Kind.eq(kind.as_str()))
        .filter(resource::Column::Tenant.eq(tenant))
        .order_by_asc(resource::Column::Name)
        .into_tuple::<String>()
        .all(db)
        .await?)
}

/// The 404 for a resource that does not exist, saying where to look.
pub fn not_found(kind: Kind, q: &QualifiedName) -> ApiError {
    ApiError::NotFound(format!(
        "there is no {} `{}` in tenant `{}`; list them with GET /api/v1/tenants/{}/{}",
        kind.as_str().replace('_', "-"),
        q.name,
        q.tenant,
        q.tenant,
        kind.segment()
    ))
}

/// One stored row, or a 404 naming it.
pub async fn get_row<C: ConnectionTrait>(
    db: &C,
    kind: Kind,
    q: &QualifiedName,
) -> Result<resource::Model, ApiError> {
    resource::Entity::find()
        .filter(resource::Column::Kind.eq(kind.as_str()))
        .filter(resource::Column::Tenant.eq(q.tenant.clone()))
        .filter(resource::Column::Name.eq(q.name.clone()))
        .one(db)
        .await?
        .ok_or_else(|| not_found(kind, q))
}

pub fn row_json(row: &resource::Model) -> Result<serde_json::Value, ApiError> {
    decode(row)
}
