//! Tenants: their names, and creating one (a change of the topology, so it bumps the version).

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set, SqlErr,
};

use super::error::{Result, StoreError};
use super::{begin_write, bump_version};
use crate::audit;
use crate::auth::{Principal, Role, now_ms};
use crate::db::entities::{membership, tenant};
use crate::state::AppState;

/// Checks a resource or tenant name; the message says what is allowed.
pub fn check_name(field: &str, name: &str) -> Result<()> {
    // NAME-2 is defined once, in `shared` (the validator and the portal use the same check).
    match isthmus_shared::validate::name_problem(name) {
        None => Ok(()),
        Some(problem) => Err(StoreError::Invalid(format!(
            "field `{field}`: `{name}` is not a valid name (NAME-2): {problem}"
        ))),
    }
}

fn taken(name: &str) -> StoreError {
    StoreError::Conflict(format!("tenant `{name}` exists already; pick another name"))
}

/// A unique-index violation is the database saying the name is taken (a writer this process
/// did not serialise with, e.g. an older replica); anything else stays a database error.
pub(super) fn unique_or(
    name: &str,
    e: DbErr,
    conflict: impl FnOnce(&str) -> StoreError,
) -> StoreError {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => conflict(name),
        _ => StoreError::Database(e),
    }
}

pub(super) async fn find_tenant<C: ConnectionTrait>(
    db: &C,
    name: &str,
) -> Result<Option<tenant::Model>> {
    Ok(tenant::Entity::find()
        .filter(tenant::Column::Name.eq(name))
        .one(db)
        .await?)
}

pub(super) async fn insert_tenant<C: ConnectionTrait>(db: &C, name: &str) -> Result<tenant::Model> {
    tenant::ActiveModel {
        name: Set(name.to_owned()),
        created_at: Set(now_ms()),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|e| unique_or(name, e, taken))
}

/// Creates tenant `name` owned by `who`, in one write transaction: the name is checked inside
/// it, so of concurrent creates of one name exactly one succeeds and the others are a
/// [`StoreError::Conflict`].
pub async fn create_tenant(state: &AppState, who: &Principal, name: &str) -> Result<tenant::Model> {
    check_name("name", name)?;
    let (_gate, txn) = begin_write(state).await?;
    if find_tenant(&txn, name).await?.is_some() {
        return Err(taken(name));
    }
    let t = insert_tenant(&txn, name).await?;
    membership::ActiveModel {
        user_id: Set(who.user_id),
        tenant_id: Set(t.id),
        role: Set(Role::Owner.as_str().to_owned()),
    }
    .insert(&txn)
    .await?;
    // Tenants are part of the topology: bump its version so caches see the change.
    bump_version(&txn).await?;
    audit::record(&txn, who, "tenant.create", Some(&t.name), &t.name).await?;
    txn.commit().await?;
    Ok(t)
}
