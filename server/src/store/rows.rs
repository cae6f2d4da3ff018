//! Writing the stored rows of a validated change (only ever called by the commit path).

use isthmus_shared::model::{Change, QualifiedName};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set};
use serde::Serialize;

use super::Kind;
use super::error::{Result, StoreError};
use super::read::find_row;
use super::seal_purpose;
use super::tenants::{check_name, find_tenant, insert_tenant};
use crate::auth::now_ms;
use crate::db::entities::resource;
use crate::secrets::Sealer;

async fn upsert_row(
    txn: &DatabaseTransaction,
    sealer: &Sealer,
    kind: Kind,
    q: &QualifiedName,
    body: &impl Serialize,
    secret: Option<String>,
) -> Result<()> {
    let body = serde_json::to_string(body).map_err(|e| StoreError::Internal(e.to_string()))?;
    let sealed = match secret {
        Some(s) => Some(sealer.seal(&seal_purpose(kind, q), s.as_bytes())?),
        None => None,
    };
    let now = now_ms();
    match find_row(txn, kind, q).await? {
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
                kind: Set(kind.stored().to_owned()),
                tenant: Set(q.tenant.clone()),
                name: Set(q.name.clone()),
                body: Set(body),
                sealed: Set(sealed),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(txn)
            .await
            .map_err(|e| {
                super::tenants::unique_or(&q.name, e, |n| {
                    StoreError::Conflict(format!(
                        "{} `{n}` exists already in tenant `{}`; update it with PUT or pick another name",
                        kind.stored().replace('_', "-"),
                        q.tenant
                    ))
                })
            })?;
        }
    }
    Ok(())
}

async fn delete_row(txn: &DatabaseTransaction, kind: Kind, q: &QualifiedName) -> Result<()> {
    resource::Entity::delete_many()
        .filter(resource::Column::Kind.eq(kind.stored()))
        .filter(resource::Column::Tenant.eq(q.tenant.clone()))
        .filter(resource::Column::Name.eq(q.name.clone()))
        .exec(txn)
        .await?;
    Ok(())
}

pub(super) async fn persist(
    txn: &DatabaseTransaction,
    sealer: &Sealer,
    change: &Change,
    secret: Option<String>,
) -> Result<(String, String)> {
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
            check_name("tenants[].name", &t.name)?;
            if find_tenant(txn, &t.name).await?.is_none() {
                insert_tenant(txn, &t.name).await?;
            }
            Ok((t.name.clone(), t.name.clone()))
        }
        Change::DeleteTenant(_) => Err(StoreError::Invalid(
            "tenants are deleted through the API, not by a change".to_owned(),
        )),
    }
}
