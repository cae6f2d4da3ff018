//! Reading the topology: the whole of it (the input of every validation and of the desired
//! states), one kind of one tenant, one row.

use std::sync::Arc;

use isthmus_shared::model::{
    Connection, Gateway, LocalSite, PointToSite, QualifiedName, SharedKey, Tenant, Topology, Vnet,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use serde::de::DeserializeOwned;

use super::error::{Result, StoreError};
use super::{Kind, current_version, seal_purpose};
use crate::db::entities::{resource, tenant};
use crate::secrets::Sealer;
use crate::state::AppState;

pub(super) fn decode<T: DeserializeOwned>(row: &resource::Model) -> Result<T> {
    serde_json::from_str(&row.body).map_err(|e| {
        StoreError::Internal(format!(
            "stored {} {}/{} does not parse: {e}",
            row.kind, row.tenant, row.name
        ))
    })
}

/// Loads everything: the input of every validation. Shared keys are opened (the
/// validator checks them); gateway private keys stay sealed.
pub async fn load_topology<C: ConnectionTrait>(db: &C, sealer: &Sealer) -> Result<Topology> {
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
        match Kind::from_stored(&row.kind) {
            Some(Kind::Vnet) => t.vnets.push(decode::<Vnet>(&row)?),
            Some(Kind::Gateway) => t.gateways.push(decode::<Gateway>(&row)?),
            Some(Kind::Site) => t.sites.push(decode::<LocalSite>(&row)?),
            Some(Kind::Connection) => {
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
            Some(Kind::PointToSite) => t.point_to_site.push(decode::<PointToSite>(&row)?),
            None => {
                return Err(StoreError::Internal(format!(
                    "unknown stored kind {}",
                    row.kind
                )));
            }
        }
    }
    Ok(t)
}

/// The current topology: from this process's cache when it is current, else the database.
pub async fn current_topology(state: &AppState) -> Result<Arc<Topology>> {
    let version = current_version(state.db()).await?;
    if let Some(t) = state.cached_topology(version) {
        return Ok(t);
    }
    let txn = state.db().begin().await?;
    let version = current_version(&txn).await?;
    let t = Arc::new(load_topology(&txn, state.sealer()).await?);
    txn.commit().await?;
    state.cache_topology(version, Arc::clone(&t));
    Ok(t)
}

/// The stored JSON documents (never secrets) of one kind in one tenant, by name, unparsed.
pub async fn list_bodies<C: ConnectionTrait>(
    db: &C,
    kind: Kind,
    tenant: &str,
) -> Result<Vec<String>> {
    Ok(resource::Entity::find()
        .select_only()
        .column(resource::Column::Body)
        .filter(resource::Column::Kind.eq(kind.stored()))
        .filter(resource::Column::Tenant.eq(tenant))
        .order_by_asc(resource::Column::Name)
        .into_tuple::<String>()
        .all(db)
        .await?)
}

/// The error for a resource that does not exist, saying where to look.
pub fn not_found(kind: Kind, q: &QualifiedName) -> StoreError {
    StoreError::NotFound(format!(
        "there is no {} `{}` in tenant `{}`; list them with GET /api/v1/tenants/{}/{}",
        kind.stored().replace('_', "-"),
        q.name,
        q.tenant,
        q.tenant,
        kind.path_segment()
    ))
}

/// One stored row, or [`not_found`].
pub async fn get_row<C: ConnectionTrait>(
    db: &C,
    kind: Kind,
    q: &QualifiedName,
) -> Result<resource::Model> {
    find_row(db, kind, q)
        .await?
        .ok_or_else(|| not_found(kind, q))
}

/// One stored row, if there is one.
pub async fn find_row<C: ConnectionTrait>(
    db: &C,
    kind: Kind,
    q: &QualifiedName,
) -> Result<Option<resource::Model>> {
    Ok(resource::Entity::find()
        .filter(resource::Column::Kind.eq(kind.stored()))
        .filter(resource::Column::Tenant.eq(q.tenant.clone()))
        .filter(resource::Column::Name.eq(q.name.clone()))
        .one(db)
        .await?)
}

pub fn row_json(row: &resource::Model) -> Result<serde_json::Value> {
    decode(row)
}
