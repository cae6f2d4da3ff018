//! GW-3 / GW-10: the host of a gateway's public endpoint is an address of the worker that
//! runs it (`isthmus-worker --public-address`, first one preferred); the server's
//! `--public-address` is only the fallback when no worker states one.
//!
//! The port of an endpoint is allocated once (globally unique, [`super`]) and kept when
//! the gateway moves; the host follows the gateway's worker: when it is placed on or moved to
//! another worker, and when that worker's addresses change. Every such rewrite happens in a
//! write transaction that bumps the topology version, so device configurations, client
//! packages and peers' desired states follow.

use std::net::IpAddr;

use isthmus_shared::model::QualifiedName;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use super::error::Result;
use crate::db::entities::{placement, worker};

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
