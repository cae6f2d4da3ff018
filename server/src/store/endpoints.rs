//! GW-3 / GW-10: the host of a gateway's public endpoint is an address of the worker that
//! runs it (`isthmus-worker --public-address`, first one preferred); the server's
//! `--public-address` is only the fallback when no worker states one.
//!
//! The port of an endpoint is allocated once (globally unique, [`super`]) and kept when
//! the gateway moves; the host follows the gateway's worker: when it is placed on or moved to
//! another worker, and when that worker's addresses change. Every such rewrite happens in a
//! write transaction that bumps the topology version, so device configurations, client
//! packages and peers' desired states follow.

use std::net::{IpAddr, SocketAddr};

use isthmus_shared::model::{Gateway, QualifiedName};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};

use super::Kind;
use super::error::{Result, StoreError};
use super::read::find_row;
use crate::auth::now_ms;
use crate::db::entities::{placement, resource, worker};

/// The addresses stored for a worker row (a JSON array); empty when absent or unreadable.
pub fn parse_addresses(stored: Option<&str>) -> Vec<IpAddr> {
    stored
        .and_then(|s| serde_json::from_str::<Vec<IpAddr>>(s).ok())
        .unwrap_or_default()
}

/// What a heartbeat's addresses are stored as; `None` for none.
pub fn store_addresses(addresses: &[IpAddr]) -> Option<String> {
    if addresses.is_empty() {
        None
    } else {
        serde_json::to_string(addresses).ok()
    }
}

/// The addresses of worker `name` as its latest heartbeat stated them (the most recently seen
/// row of that name, whichever token it used).
pub async fn worker_addresses<C: ConnectionTrait>(db: &C, name: &str) -> Result<Vec<IpAddr>> {
    Ok(worker::Entity::find()
        .filter(worker::Column::Name.eq(name))
        .order_by_desc(worker::Column::LastSeenAt)
        .one(db)
        .await?
        .map(|w| parse_addresses(w.public_addresses.as_deref()))
        .unwrap_or_default())
}

/// The endpoint host for gateways on worker `name`: its first address, else `fallback`.
pub async fn host_of_worker<C: ConnectionTrait>(
    db: &C,
    name: &str,
    fallback: IpAddr,
) -> Result<IpAddr> {
    Ok(worker_addresses(db, name)
        .await?
        .first()
        .copied()
        .unwrap_or(fallback))
}

/// Sets the host of the stored endpoint of each gateway in `rows` to `host`, keeping its port.
/// Returns how many changed. The caller (in [`super::placement`]) holds the write lock and
/// bumps the version when this is not 0.
pub(super) async fn rehost_rows<C: ConnectionTrait>(
    db: &C,
    rows: Vec<resource::Model>,
    host: IpAddr,
) -> Result<usize> {
    let mut changed = 0;
    for row in rows
        .into_iter()
        .filter(|r| r.kind == Kind::Gateway.stored())
    {
        let mut g: Gateway = serde_json::from_str(&row.body).map_err(|e| {
            StoreError::Internal(format!(
                "stored gateway {}/{} does not parse: {e}",
                row.tenant, row.name
            ))
        })?;
        let Some(old) = g.public_endpoint else {
            continue;
        };
        if old.ip() == host {
            continue;
        }
        let new = SocketAddr::new(host, old.port());
        g.public_endpoint = Some(new);
        tracing::info!(tenant = %row.tenant, gateway = %row.name, from = %old, to = %new,
            "gateway endpoint follows its worker's address");
        let body = serde_json::to_string(&g).map_err(|e| StoreError::Internal(e.to_string()))?;
        let mut am: resource::ActiveModel = row.into();
        am.body = Set(body);
        am.updated_at = Set(now_ms());
        am.update(db).await?;
        changed += 1;
    }
    Ok(changed)
}

/// [`rehost_rows`] for the gateways named.
pub(super) async fn rehost<C: ConnectionTrait>(
    db: &C,
    gateways: &[QualifiedName],
    host: IpAddr,
) -> Result<usize> {
    let mut rows = Vec::with_capacity(gateways.len());
    for q in gateways {
        if let Some(row) = find_row(db, Kind::Gateway, q).await? {
            rows.push(row);
        }
    }
    rehost_rows(db, rows, host).await
}

/// The gateways placed on worker `name`.
pub async fn placed_on<C: ConnectionTrait>(db: &C, name: &str) -> Result<Vec<QualifiedName>> {
    Ok(placement::Entity::find()
        .filter(placement::Column::Worker.eq(name))
        .all(db)
        .await?
        .into_iter()
        .map(|p| QualifiedName::new(&p.tenant, &p.gateway))
        .collect())
}

/// Whether [`rehost_rows`] would change anything: a gateway in `rows` whose endpoint's host is
/// not `host` (or whose stored body does not parse, which the write reports).
pub(super) fn any_elsewhere(rows: &[resource::Model], host: IpAddr) -> bool {
    rows.iter()
        .filter(|r| r.kind == Kind::Gateway.stored())
        .any(|r| match serde_json::from_str::<Gateway>(&r.body) {
            Ok(g) => g.public_endpoint.is_some_and(|e| e.ip() != host),
            Err(_) => true,
        })
}
