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
    api_token, login_throttle, membership, meta, resource, session, tenant, user,
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
/// The scope of API tokens that act as their user on the API (the default).
pub const SCOPE_API: &str = "api";
/// The scope of API tokens that may read the named series of `/metrics`.
pub const SCOPE_METRICS: &str = "metrics";
/// Every scope a token may have.
pub const SCOPES: [&str; 2] = [SCOPE_API, SCOPE_METRICS];

/// The scopes stored for a token (`NULL`: a token from before scopes, which is `api`).
pub fn token_has_scope(stored: Option<&str>, scope: &str) -> bool {
    match stored {
        None => scope == SCOPE_API,
        Some(s) => s.split(',').any(|x| x.trim() == scope),
    }
}

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
    bearer_of(&parts.headers)
}

fn bearer_of(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
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
            return token_principal(
                db,
                token,
                SCOPE_API,
                "unknown or revoked API token: create one with POST /api/v1/tokens",
                |scopes| {
                    format!(
                        "this API token has the scopes `{scopes}` only; use a token with the \
                         `{SCOPE_API}` scope (POST /api/v1/tokens {{\"name\": ..., \"scopes\": \
                         [\"{SCOPE_API}\"]}})"
                    )
                },
            )
            .await;
        }
        let cookie = session_token(&parts.headers).ok_or_else(unauthorized)?;
        let row = db
            .query_one(&session_query(&cookie))
            .await?
            .ok_or_else(|| {
                ApiError::Unauthorized("your session has expired; log in again".to_owned())
            })?;
        principal_from_row(&row)
    }
}

/// Who reads `/metrics`: `None` for an anonymous caller (aggregate figures only), the user of
/// a token with the `metrics` scope or of a portal session. A bearer token that is unknown
/// answers 401, one without the `metrics` scope 403, so a misconfigured scraper fails loudly.
pub async fn metrics_reader<C: ConnectionTrait>(
    db: &C,
    headers: &axum::http::HeaderMap,
) -> Result<Option<Principal>, ApiError> {
    if let Some(token) = bearer_of(headers) {
        return token_principal(
            db,
            token,
            SCOPE_METRICS,
            "unknown or revoked API token: create one with POST /api/v1/tokens \
             {\"name\": \"prometheus\", \"scopes\": [\"metrics\"]}",
            |_| {
                format!(
                    "this API token lacks the `{SCOPE_METRICS}` scope; create one with POST \
                     /api/v1/tokens {{\"name\": \"prometheus\", \"scopes\": [\"{SCOPE_METRICS}\"]}}"
                )
            },
        )
        .await
        .map(Some);
    }
    let Some(cookie) = session_token(headers) else {
        return Ok(None);
    };
    match db.query_one(&session_query(&cookie)).await? {
        Some(row) => Ok(Some(principal_from_row(&row)?)),
        None => Ok(None),
    }
}

/// The user of API token `token` when the token has `scope`: 401 with `unknown` for a token
/// that does not exist, 403 with `lacking(its scopes)` for one without the scope. One query.
async fn token_principal<C: ConnectionTrait>(
    db: &C,
    token: &str,
    scope: &str,
    unknown: &str,
    lacking: impl FnOnce(&str) -> String,
) -> Result<Principal, ApiError> {
    let stmt = principal_query(api_token::Entity, api_token::Column::UserId)
        .column((api_token::Entity, api_token::Column::Name))
        .column((api_token::Entity, api_token::Column::Scopes))
        .and_where(
            Expr::col((api_token::Entity, api_token::Column::TokenSha256)).eq(sha256_hex(token)),
        )
        .to_owned();
    let row = db
        .query_one(&stmt)
        .await?
        .ok_or_else(|| ApiError::Unauthorized(unknown.to_owned()))?;
    let scopes: Option<String> = row.try_get("", "scopes")?;
    if !token_has_scope(scopes.as_deref(), scope) {
        return Err(ApiError::Forbidden(lacking(
            scopes.as_deref().unwrap_or_default(),
        )));
    }
    Ok(Principal {
        token: Some(row.try_get("", "name")?),
        ..principal_from_row(&row)?
    })
}

/// The user of an unexpired portal session `cookie` (the credential joined with its user).
fn session_query(cookie: &str) -> SelectStatement {
    principal_query(session::Entity, session::Column::UserId)
        .and_where(
            Expr::col((session::Entity, session::Column::TokenSha256)).eq(sha256_hex(cookie)),
        )
        .and_where(Expr::col((session::Entity, session::Column::ExpiresAt)).gt(now_ms()))
        .to_owned()
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

/// How many times one (user name, client address) pair may reserve a login attempt in a row
/// before the next reservation has to wait; waits then double from 1 s, at most 5 minutes.
/// Attempts are reserved before the password is checked, so of any number of parallel guesses
/// at most this many are checked.
pub const LOGIN_ATTEMPTS: i32 = FREE_FAILURES;

/// Unix milliseconds until which the next attempt must wait after the `n`-th in a row.
fn blocked_after(n: i32, now: i64) -> i64 {
    if n < LOGIN_ATTEMPTS {
        return 0;
    }
    let exp = Ord::min(u32::try_from(n - LOGIN_ATTEMPTS).unwrap_or(0), 9);
    now + Ord::min(1000i64 << exp, 300_000)
}

/// Reserves one login attempt for `username` from `client` (a [`crate::client::ClientInfo`]
/// key), atomically on every engine and replica: `Ok(())` means the password may be checked,
/// `Err(seconds)` how long this client must wait for this user. Other clients keep their own
/// count, so nobody can lock a user out from elsewhere.
pub async fn reserve_login_attempt<C: ConnectionTrait>(
    db: &C,
    username: &str,
    client: &str,
) -> Result<Result<(), u64>, ApiError> {
    let wait = |until: i64, now: i64| u64::try_from((until - now + 999) / 1000).unwrap_or(1);
    // Compare and swap: each round either takes the next attempt or sees that someone else
    // took it, and tries again with the new count.
    for _ in 0..64 {
        let now = now_ms();
        let key = (username.to_owned(), client.to_owned());
        let Some(row) = login_throttle::Entity::find_by_id(key).one(db).await? else {
            let inserted = login_throttle::Entity::insert(login_throttle::ActiveModel {
                username: Set(username.to_owned()),
                client: Set(client.to_owned()),
                attempts: Set(1),
                blocked_until: Set(blocked_after(1, now)),
            })
            .on_conflict(
                OnConflict::columns([
                    login_throttle::Column::Username,
                    login_throttle::Column::Client,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
            if inserted == 1 {
                return Ok(Ok(()));
            }
            continue;
        };
        if row.blocked_until > now {
            return Ok(Err(wait(row.blocked_until, now)));
        }
        let next = row.attempts.saturating_add(1);
        let taken = login_throttle::Entity::update_many()
            .col_expr(login_throttle::Column::Attempts, Expr::value(next))
            .col_expr(
                login_throttle::Column::BlockedUntil,
                Expr::value(blocked_after(next, now)),
            )
            .filter(login_throttle::Column::Username.eq(username))
            .filter(login_throttle::Column::Client.eq(client))
            .filter(login_throttle::Column::Attempts.eq(row.attempts))
            .filter(login_throttle::Column::BlockedUntil.eq(row.blocked_until))
            .exec(db)
            .await?;
        if taken.rows_affected == 1 {
            return Ok(Ok(()));
        }
    }
    Ok(Err(1))
}

/// After a successful login: this client starts afresh for this user (others keep theirs).
pub async fn clear_login_attempts<C: ConnectionTrait>(
    db: &C,
    username: &str,
    client: &str,
) -> Result<(), ApiError> {
    login_throttle::Entity::delete_by_id((username.to_owned(), client.to_owned()))
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

/// The session cookie header value; `Secure` when the client speaks HTTPS (the server's own
/// TLS, or a trusted proxy's `X-Forwarded-Proto: https`).
pub fn session_cookie(token: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    )
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
