//! Tenants, memberships and the audit log.

use axum::extract::State;
use axum::http::StatusCode;
use isthmus_shared::api::{AuditEntry, CreateTenant, SetMember, TenantInfo};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use crate::audit;
use crate::auth::{Principal, Role};
use crate::db::entities::{self, membership, tenant, user};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::store;

/// `GET /api/v1/tenants`: the tenants the caller can see.
#[utoipa::path(
    get, path = "/api/v1/tenants", tag = "tenants", operation_id = "list_tenants",
    responses(
        (status = 200, description = "The tenants the caller can see, with the caller's role", body = Vec<TenantInfo>),
        crate::api::openapi::Unauthorized,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
) -> Result<ApiJson<Vec<TenantInfo>>, ApiError> {
    let mut out = Vec::new();
    for t in tenant::Entity::find()
        .order_by_asc(tenant::Column::Name)
        .all(state.db())
        .await?
    {
        if let Some(role) = who.role_in(state.db(), t.id).await? {
            out.push(TenantInfo {
                name: t.name,
                role: role.as_str().to_owned(),
            });
        }
    }
    Ok(ApiJson(out))
}

/// `POST /api/v1/tenants`: any user may create a tenant and becomes its owner.
#[utoipa::path(
    post, path = "/api/v1/tenants", tag = "tenants", operation_id = "create_tenant",
    request_body = CreateTenant,
    responses(
        (status = 201, description = "Created; the caller owns it", body = TenantInfo),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized,
        (status = 409, description = "The name is taken", body = isthmus_shared::api::ErrorBody),
        crate::api::openapi::PayloadTooLarge, crate::api::openapi::UnsupportedMediaType,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<CreateTenant>,
) -> Result<(StatusCode, ApiJson<TenantInfo>), ApiError> {
    let t = store::tenants::create_tenant(&state, &who, &req.name).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(TenantInfo {
            name: t.name,
            role: Role::Owner.as_str().to_owned(),
        }),
    ))
}

/// `PUT /api/v1/tenants/{tenant}/members/{username}`: owners grant roles.
#[utoipa::path(
    put, path = "/api/v1/tenants/{tenant}/members/{username}", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant name", example = "demo"), ("username" = String, Path, description = "User name")),
    request_body = SetMember,
    responses(
        (status = 204, description = "Role set"),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized,
        (status = 403, description = "Owners only", body = isthmus_shared::api::ErrorBody),
        (status = 404, description = "No such tenant (or you are not a member of it) or no such user", body = isthmus_shared::api::ErrorBody),
        crate::api::openapi::PayloadTooLarge, crate::api::openapi::UnsupportedMediaType,
    )
)]
pub async fn set_member(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant_name, username)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<SetMember>,
) -> Result<StatusCode, ApiError> {
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "field `role`: `{}` is not a role; use `owner` or `reader`",
            req.role
        ))
    })?;
    let (_gate, txn) = store::begin_write(&state).await?;
    let t = who.require(&txn, &tenant_name, Role::Owner).await?;
    let u = user::Entity::find()
        .filter(user::Column::Username.eq(username.clone()))
        .one(&txn)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no user `{username}`; an administrator creates users"
            ))
        })?;
    membership::Entity::insert(membership::ActiveModel {
        user_id: Set(u.id),
        tenant_id: Set(t.id),
        role: Set(role.as_str().to_owned()),
    })
    .on_conflict(
        OnConflict::columns([membership::Column::UserId, membership::Column::TenantId])
            .update_column(membership::Column::Role)
            .to_owned(),
    )
    .exec(&txn)
    .await?;
    audit::record(
        &txn,
        &who,
        &format!("member.set.{}", role.as_str()),
        Some(&t.name),
        &username,
    )
    .await?;
    txn.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/tenants/{tenant}/members/{username}`.
#[utoipa::path(
    delete, path = "/api/v1/tenants/{tenant}/members/{username}", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant name", example = "demo"), ("username" = String, Path, description = "User name")),
    responses(
        (status = 204, description = "Removed"),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized,
        (status = 403, description = "Owners only", body = isthmus_shared::api::ErrorBody),
        (status = 404, description = "No such tenant (or you are not a member of it), no such user, or not a member", body = isthmus_shared::api::ErrorBody),
    )
)]
pub async fn remove_member(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant_name, username)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (_gate, txn) = store::begin_write(&state).await?;
    let t = who.require(&txn, &tenant_name, Role::Owner).await?;
    let u = user::Entity::find()
        .filter(user::Column::Username.eq(username.clone()))
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user `{username}`")))?;
    let res = membership::Entity::delete_by_id((u.id, t.id))
        .exec(&txn)
        .await?;
    if res.rows_affected == 0 {
        return Err(ApiError::NotFound(format!(
            "`{username}` is not a member of `{tenant_name}`"
        )));
    }
    audit::record(&txn, &who, "member.remove", Some(&t.name), &username).await?;
    txn.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries of this tenant.
    pub tenant: Option<String>,
    /// At most this many entries, newest first (default 100, at most 1000).
    pub limit: Option<u64>,
}

/// `GET /api/v1/audit`: administrators see everything; others, the tenants they own.
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "tenants",
    params(
        ("tenant" = Option<String>, Query, description = "Only entries of this tenant (required unless you are an administrator)"),
        ("limit" = Option<u64>, Query, description = "At most this many entries, newest first (default 100, at most 1000)"),
    ),
    responses(
        (status = 200, description = "Audit entries, newest first", body = Vec<AuditEntry>),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized,
        (status = 403, description = "Owners of the tenant only", body = isthmus_shared::api::ErrorBody),
        crate::api::openapi::NotFound,
    )
)]
pub async fn audit_log(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<ApiJson<Vec<AuditEntry>>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let mut select = entities::audit::Entity::find().order_by_desc(entities::audit::Column::Id);
    match (&q.tenant, who.is_admin) {
        (Some(t), _) => {
            who.require(state.db(), t, Role::Owner).await?;
            select = select.filter(entities::audit::Column::Tenant.eq(t.clone()));
        }
        (None, true) => {}
        (None, false) => {
            return Err(ApiError::BadRequest(
                "query `tenant`: name a tenant you own, e.g. /api/v1/audit?tenant=NAME".to_owned(),
            ));
        }
    }
    let rows = select.limit(limit).all(state.db()).await?;
    Ok(ApiJson(
        rows.into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                at: chrono::DateTime::from_timestamp_millis(r.at)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
                actor: r.actor,
                action: r.action,
                tenant: r.tenant,
                target: r.target,
            })
            .collect(),
    ))
}
