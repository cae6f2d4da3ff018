//! The audit log: every change and every secret read, with who and when.

use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};

use crate::auth::{Principal, now_ms};
use crate::db::entities::audit;

/// Records one entry; call it inside the transaction of the change it describes.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    who: &Principal,
    action: &str,
    tenant: Option<&str>,
    target: &str,
) -> Result<(), sea_orm::DbErr> {
    audit::ActiveModel {
        at: Set(now_ms()),
        actor: Set(who.actor()),
        action: Set(action.to_owned()),
        tenant: Set(tenant.map(str::to_owned)),
        target: Set(target.to_owned()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}
