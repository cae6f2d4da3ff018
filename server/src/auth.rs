//! Accounts: passwords (argon2), portal sessions, API tokens, roles per tenant.
//!
//! Sessions, tokens and login throttling live in the database, so any server
//! replica authenticates any request.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sea_orm::sea_query::{
    Alias, Condition, Expr, ExprTrait as _, JoinType, OnConflict, Query, SelectStatement,
};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};

use crate::db::entities::{
    api_token, login_failure, membership, meta, resource, session, tenant, user,
};
use crate::error::ApiError;
use crate::secrets::random_bytes;
use crate::state::AppState;

/// The portal's session cookie.
pub const SESSION_COOKIE: &str = "isthmus_session";
/// How long a portal session lasts.
pub const SESSION_SECONDS: i64 = 12 * 3600;
/// Prefix of API tokens.
pub const API_TOKEN_PREFIX: &str = "ist_";
/// Failed logins allowed before answers are slowed down.
pub const FREE_FAILURES: i32 = 3;
/// Passwords shorter than this are refused.
pub const MIN_PASSWORD_LEN: usize = 10;

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A fresh random token with a prefix.
pub fn new_token(prefix: &str) -> Result<String, ApiError> {
    Ok(format!("{prefix}{}", hex::encode(random_bytes::<32>()?)))
}

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}")))
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// Checks a new user name and password; the message says what is allowed.
pub fn check_new_credentials(username: &str, password: &str) -> Result<(), ApiError> {
    if username.is_empty()
        || username.len() > 64
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
    {
        return Err(ApiError::BadRequest(
            "field `username`: 1 to 64 characters of letters, digits, `-`, `_`, `.` and `@`"
                .to_owned(),
        ));
    }
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(ApiError::BadRequest(format!(
            "field `password`: use at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

/// Creates a user.
pub async fn create_user<C: ConnectionTrait>(
    db: &C,
    username: &str,
    password: &str,
    is_admin: bool,
) -> Result<user::Model, ApiError> {
    check_new_credentials(username, password)?;
    if user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(db)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(format!(
            "user `{username}` exists already; pick another name"
        )));
    }
    Ok(user::ActiveModel {
        username: Set(username.to_owned()),
        password_hash: Set(hash_password(password)?),
        is_admin: Set(is_admin),
        created_at: Set(now_ms()),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// A role in a tenant; `Owner` may do everything `Reader` may.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "reader" => Some(Role::Reader),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// What [`Principal::require_with`] found.
#[derive(Debug)]
pub struct Authorized {
    pub tenant: tenant::Model,
    /// The requested resource's stored JSON, if asked for and present.
    pub body: Option<String>,
    /// The stored topology version at the time of the query.
    pub version: i64,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub is_admin: bool,
    /// The API token's name when the call came with one.
    pub token: Option<String>,
}

impl Principal {
    /// The name the audit log records.
    pub fn actor(&self) -> String {
        match &self.token {
            Some(t) => format!("{} (token {t})", self.username),
            None => self.username.clone(),
        }
    }

    /// This principal's role in a tenant, if any.
    pub async fn role_in<C: ConnectionTrait>(
        &self,
        db: &C,
        tenant_id: i64,
    ) -> Result<Option<Role>, ApiError> {
        if self.is_admin {
            return Ok(Some(Role::Owner));
        }
        Ok(membership::Entity::find_by_id((self.user_id, tenant_id))
            .one(db)
            .await?
            .and_then(|m| Role::parse(&m.role)))
    }

    /// The tenant, if this principal has at least `needed` in it.
    ///
    /// A tenant the caller cannot see answers 404, as if it did not exist. One query: the
    /// tenant joined with this principal's membership (every request runs this).
    pub async fn require<C: ConnectionTrait>(
        &self,
        db: &C,
        tenant_name: &str,
        needed: Role,
    ) -> Result<tenant::Model, ApiError> {
        Ok(self
            .require_with(db, tenant_name, needed, None)
            .await?
            .tenant)
    }

    /// [`Self::require`], and in the same query the topology version and the stored body of
    /// the resource `(kind, name)` of that tenant, if it exists (a read costs one query after
    /// authentication).
    pub async fn require_with<C: ConnectionTrait>(
        &self,
        db: &C,
        tenant_name: &str,
        needed: Role,
        resource: Option<(&str, &str)>,
    ) -> Result<Authorized, ApiError> {
        let not_found = || {
            ApiError::NotFound(format!(
                "tenant `{tenant_name}` does not exist or you are not a member of it"
            ))
        };
        let mut stmt = Query::select()
            .columns([
                (tenant::Entity, tenant::Column::Id),
                (tenant::Entity, tenant::Column::Name),
                (tenant::Entity, tenant::Column::CreatedAt),
            ])
            .column((membership::Entity, membership::Column::Role))
            .expr_as(
                Expr::col((meta::Entity, meta::Column::Value)),
                Alias::new("topology_version"),
            )
            .from(tenant::Entity)
            .join(
                JoinType::LeftJoin,
                meta::Entity,
                Expr::col((meta::Entity, meta::Column::Key)).eq(crate::db::VERSION_KEY),
            )
            .join(
                JoinType::LeftJoin,
                membership::Entity,
                Condition::all()
                    .add(
                        Expr::col((membership::Entity, membership::Column::TenantId))
                            .equals((tenant::Entity, tenant::Column::Id)),
                    )
                    .add(
                        Expr::col((membership::Entity, membership::Column::UserId))
                            .eq(self.user_id),
                    ),
            )
            .and_where(Expr::col((tenant::Entity, tenant::Column::Name)).eq(tenant_name))
            .to_owned();
        if let Some((kind, name)) = resource {
            stmt.column((resource::Entity, resource::Column::Body))
                .join(
                    JoinType::LeftJoin,
                    resource::Entity,
                    Condition::all()
                        .add(
                            Expr::col((resource::Entity, resource::Column::Tenant))
                                .equals((tenant::Entity, tenant::Column::Name)),
                        )
                        .add(Expr::col((resource::Entity, resource::Column::Kind)).eq(kind))
                        .add(Expr::col((resource::Entity, resource::Column::Name)).eq(name)),
                );
        }
        let row = db.query_one(&stmt).await?.ok_or_else(not_found)?;
        let t = tenant::Model {
            id: row.try_get("", "id")?,
            name: row.try_get("", "name")?,
            created_at: row.try_get("", "created_at")?,
        };
        let role = if self.is_admin {
            Some(Role::Owner)
        } else {
            row.try_get::<Option<String>>("", "role")?
                .as_deref()
                .and_then(Role::parse)
        };
        match role {
            None => Err(not_found()),
            Some(role) if role >= needed => {
                let body = match resource {
                    Some(_) => row.try_get::<Option<String>>("", "body")?,
                    None => None,
                };
                let version = row
                    .try_get::<Option<i64>>("", "topology_version")?
                    .unwrap_or(0);
                Ok(Authorized {
                    tenant: t,
                    body,
                    version,
                })
            }
            Some(role) => Err(ApiError::Forbidden(format!(
                "you are `{}` in tenant `{tenant_name}`; this needs `{}`: ask an owner to change your role",
                role.as_str(),
                needed.as_str()
            ))),
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "only administrators may do this".to_owned(),
            ))
        }
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let db = state.db();
        let unauthorized = || {
            ApiError::Unauthorized(
                "log in first (POST /api/v1/auth/login) or send `Authorization: Bearer <API token>`".to_owned(),
            )
        };
        // One query per request: the credential joined with its user.
        if let Some(token) = bearer(parts) {
            let stmt = principal_query(api_token::Entity, api_token::Column::UserId)
                .column((api_token::Entity, api_token::Column::Name))
                .and_where(
                    Expr::col((api_token::Entity, api_token::Column::TokenSha256))
                        .eq(sha256_hex(token)),
                )
                .to_owned();
            let row = db.query_one(&stmt).await?.ok_or_else(|| {
                ApiError::Unauthorized(
                    "unknown or revoked API token: create one with POST /api/v1/tokens".to_owned(),
                )
            })?;
            return Ok(Principal {
                token: Some(row.try_get("", "name")?),
                ..principal_from_row(&row)?
            });
        }
        let cookie = session_token(&parts.headers).ok_or_else(unauthorized)?;
        let stmt = principal_query(session::Entity, session::Column::UserId)
            .and_where(
                Expr::col((session::Entity, session::Column::TokenSha256)).eq(sha256_hex(&cookie)),
            )
            .and_where(Expr::col((session::Entity, session::Column::ExpiresAt)).gt(now_ms()))
            .to_owned();
        let row = db.query_one(&stmt).await?.ok_or_else(|| {
            ApiError::Unauthorized("your session has expired; log in again".to_owned())
        })?;
        principal_from_row(&row)
    }
}

/// `SELECT users.id, users.username, users.is_admin FROM <credential> JOIN users`.
fn principal_query<E: EntityTrait, C: ColumnTrait>(credential: E, user_id: C) -> SelectStatement {
    Query::select()
        .columns([
            (user::Entity, user::Column::Id),
            (user::Entity, user::Column::Username),
            (user::Entity, user::Column::IsAdmin),
        ])
        .from(credential)
        .inner_join(
            user::Entity,
            Expr::col((user::Entity, user::Column::Id)).equals((credential, user_id)),
        )
        .to_owned()
}

fn principal_from_row(row: &sea_orm::QueryResult) -> Result<Principal, ApiError> {
    Ok(Principal {
        user_id: row.try_get("", "id")?,
        username: row.try_get("", "username")?,
        is_admin: row.try_get("", "is_admin")?,
        token: None,
    })
}

/// Seconds a caller must wait before trying `username` again, if any.
pub async fn login_delay<C: ConnectionTrait>(
    db: &C,
    username: &str,
) -> Result<Option<u64>, ApiError> {
    let Some(f) = login_failure::Entity::find_by_id(username.to_owned())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if f.failures < FREE_FAILURES {
        return Ok(None);
    }
    // 1 s after the 3rd failure, doubling, at most 5 minutes.
    let exp = Ord::min(u32::try_from(f.failures - FREE_FAILURES).unwrap_or(0), 9);
    let wait_ms = Ord::min(1000i64 << exp, 300_000);
    let until = f.last_failure_at + wait_ms;
    let now = now_ms();
    Ok((until > now).then(|| u64::try_from((until - now + 999) / 1000).unwrap_or(1)))
}

pub async fn record_login_failure<C: ConnectionTrait>(
    db: &C,
    username: &str,
) -> Result<(), ApiError> {
    let now = now_ms();
    let existing = login_failure::Entity::find_by_id(username.to_owned())
        .one(db)
        .await?;
    let failures = existing.map_or(1, |f| f.failures.saturating_add(1));
    login_failure::Entity::insert(login_failure::ActiveModel {
        username: Set(username.to_owned()),
        failures: Set(failures),
        last_failure_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(login_failure::Column::Username)
            .update_columns([
                login_failure::Column::Failures,
                login_failure::Column::LastFailureAt,
            ])
            .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
}

pub async fn clear_login_failures<C: ConnectionTrait>(
    db: &C,
    username: &str,
) -> Result<(), ApiError> {
    login_failure::Entity::delete_by_id(username.to_owned())
        .exec(db)
        .await?;
    Ok(())
}

/// Starts a session and returns the cookie token.
pub async fn start_session<C: ConnectionTrait>(db: &C, user_id: i64) -> Result<String, ApiError> {
    let token = new_token("iss_")?;
    let now = now_ms();
    session::ActiveModel {
        token_sha256: Set(sha256_hex(&token)),
        user_id: Set(user_id),
        created_at: Set(now),
        expires_at: Set(now + SESSION_SECONDS * 1000),
    }
    .insert(db)
    .await?;
    Ok(token)
}

/// Ends the session named by the request's cookie, if any.
pub async fn end_session<C: ConnectionTrait>(db: &C, cookie_token: &str) -> Result<(), ApiError> {
    session::Entity::delete_by_id(sha256_hex(cookie_token))
        .exec(db)
        .await?;
    Ok(())
}

/// The session cookie header value.
pub fn session_cookie(token: &str, max_age: i64) -> String {
    format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}")
}

/// The request's session cookie token, if any.
pub fn session_token(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
}
