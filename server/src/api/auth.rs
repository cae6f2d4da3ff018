//! Login, logout, the current user, users and API tokens.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use isthmus_shared::api::{
    ApiTokenCreated, ApiTokenInfo, CreateApiToken, CreateUser, LoginRequest, Me, MembershipInfo,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::audit;
use crate::auth::{self, Principal};
use crate::client::ClientInfo;
use crate::db::entities::{api_token, membership, tenant, user};
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::state::AppState;

async fn me_of(state: &AppState, who: &Principal) -> Result<Me, ApiError> {
    let rows = membership::Entity::find()
        .filter(membership::Column::UserId.eq(who.user_id))
        .all(state.db())
        .await?;
    let mut tenants = Vec::new();
    for t in tenant::Entity::find()
        .order_by_asc(tenant::Column::Name)
        .all(state.db())
        .await?
    {
        let role = if who.is_admin {
            Some("owner".to_owned())
        } else {
            rows.iter()
                .find(|m| m.tenant_id == t.id)
                .map(|m| m.role.clone())
        };
        if let Some(role) = role {
            tenants.push(MembershipInfo {
                tenant: t.name,
                role,
            });
        }
    }
    Ok(Me {
        username: who.username.clone(),
        is_admin: who.is_admin,
        tenants,
    })
}

/// `POST /api/v1/auth/login`: sets the session cookie.
#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "accounts", security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in: the session cookie is set", body = Me,
            headers(("Set-Cookie" = String, description = "The session cookie"))),
        crate::api::openapi::BadRequest,
        (status = 401, description = "Wrong user name or password", body = isthmus_shared::api::ErrorBody),
        crate::api::openapi::PayloadTooLarge, crate::api::openapi::UnsupportedMediaType, crate::api::openapi::TooManyRequests,
    )
)]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let db = state.db();
    let from = client.key();
    // Reserved before the password is checked: parallel guesses cannot overtake the count.
    if let Err(secs) = auth::reserve_login_attempt(db, &req.username, &from).await? {
        return Err(ApiError::TooManyRequests {
            message: format!(
                "too many failed logins for `{}` from your address; try again in {secs} s",
                req.username
            ),
            retry_after_s: secs,
        });
    }
    let found = user::Entity::find()
        .filter(user::Column::Username.eq(req.username.clone()))
        .one(db)
        .await?;
    let ok = match &found {
        Some(u) => auth::verify_password(&req.password, &u.password_hash),
        None => {
            // Same cost whether or not the user exists.
            let _ = auth::verify_password(&req.password, DUMMY_HASH);
            false
        }
    };
    let Some(u) = found.filter(|_| ok) else {
        return Err(ApiError::Unauthorized(
            "wrong user name or password".to_owned(),
        ));
    };
    auth::clear_login_attempts(db, &req.username, &from).await?;
    let token = auth::start_session(db, u.id).await?;
    let who = Principal {
        user_id: u.id,
        username: u.username,
        is_admin: u.is_admin,
        token: None,
    };
    let me = me_of(&state, &who).await?;
    Ok((
        [(
            header::SET_COOKIE,
            auth::session_cookie(&token, auth::SESSION_SECONDS, client.https),
        )],
        ApiJson(me),
    )
        .into_response())
}

/// An argon2 hash of a random password, to spend the same time on unknown users.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Zl2yzm3rwj3ZrWb3h6CpG1PO/7uUOUBHx6xg0wDUCZs";

/// `POST /api/v1/auth/logout`: ends the session and clears the cookie.
#[utoipa::path(
    post, path = "/api/v1/auth/logout", tag = "accounts", security(()),
    responses((status = 204, description = "Session ended; the cookie is cleared",
        headers(("Set-Cookie" = String, description = "The cleared session cookie"))))
)]
pub async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = auth::session_token(&headers) {
        auth::end_session(state.db(), &token).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            auth::session_cookie("", 0, client.https),
        )],
    )
        .into_response())
}

/// `GET /api/v1/auth/me`.
#[utoipa::path(
    get, path = "/api/v1/auth/me", tag = "accounts",
    responses(
        (status = 200, description = "The current user and their tenants", body = Me),
        crate::api::openapi::Unauthorized,
    )
)]
pub async fn me(State(state): State<AppState>, who: Principal) -> Result<ApiJson<Me>, ApiError> {
    Ok(ApiJson(me_of(&state, &who).await?))
}

/// `POST /api/v1/users` (administrators).
#[utoipa::path(
    post, path = "/api/v1/users", tag = "accounts",
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = Me),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized,
        (status = 403, description = "Administrators only", body = isthmus_shared::api::ErrorBody),
        (status = 409, description = "The user name is taken", body = isthmus_shared::api::ErrorBody),
        crate::api::openapi::PayloadTooLarge, crate::api::openapi::UnsupportedMediaType,
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<CreateUser>,
) -> Result<(StatusCode, ApiJson<Me>), ApiError> {
    who.require_admin()?;
    let (_gate, txn) = crate::store::begin_write(&state).await?;
    let u = auth::create_user(&txn, &req.username, &req.password, req.is_admin).await?;
    audit::record(&txn, &who, "user.create", None, &u.username).await?;
    txn.commit().await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(Me {
            username: u.username,
            is_admin: u.is_admin,
            tenants: Vec::new(),
        }),
    ))
}

/// `GET /api/v1/tokens`: the caller's API tokens, never their secret.
#[utoipa::path(
    get, path = "/api/v1/tokens", tag = "accounts",
    responses(
        (status = 200, description = "The caller's API tokens, without secrets", body = Vec<ApiTokenInfo>),
        crate::api::openapi::Unauthorized,
    )
)]
pub async fn list_tokens(
    State(state): State<AppState>,
    who: Principal,
) -> Result<ApiJson<Vec<ApiTokenInfo>>, ApiError> {
    let rows = api_token::Entity::find()
        .filter(api_token::Column::UserId.eq(who.user_id))
        .order_by_asc(api_token::Column::Id)
        .all(state.db())
        .await?;
    Ok(ApiJson(
        rows.into_iter()
            .map(|t| ApiTokenInfo {
                id: t.id,
                name: t.name,
                created_at: auth_time(t.created_at),
                scopes: scopes_of(t.scopes.as_deref()),
            })
            .collect(),
    ))
}

/// The scopes of a stored token, as listed.
fn scopes_of(stored: Option<&str>) -> Vec<String> {
    auth::SCOPES
        .iter()
        .filter(|s| auth::token_has_scope(stored, s))
        .map(|s| (*s).to_owned())
        .collect()
}

fn auth_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

/// `POST /api/v1/tokens`: a new API token, shown once.
#[utoipa::path(
    post, path = "/api/v1/tokens", tag = "accounts",
    request_body = CreateApiToken,
    responses(
        (status = 201, description = "The token, shown this once", body = ApiTokenCreated),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized, crate::api::openapi::PayloadTooLarge, crate::api::openapi::UnsupportedMediaType,
    )
)]
pub async fn create_token(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<CreateApiToken>,
) -> Result<(StatusCode, ApiJson<ApiTokenCreated>), ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.len() > 64 {
        return Err(ApiError::BadRequest(
            "field `name`: give the token a name of 1 to 64 characters".to_owned(),
        ));
    }
    let mut scopes: Vec<&str> = Vec::new();
    for scope in &req.scopes {
        let Some(known) = auth::SCOPES.iter().find(|s| **s == scope.as_str()) else {
            return Err(ApiError::BadRequest(format!(
                "field `scopes`: unknown scope `{scope}`; use `{}` (the API, as you) and/or `{}` \
                 (the named series of /metrics)",
                auth::SCOPE_API,
                auth::SCOPE_METRICS
            )));
        };
        if !scopes.contains(known) {
            scopes.push(known);
        }
    }
    if scopes.is_empty() {
        scopes.push(auth::SCOPE_API);
    }
    let scopes = scopes.join(",");
    let token = auth::new_token(auth::API_TOKEN_PREFIX)?;
    let (_gate, txn) = crate::store::begin_write(&state).await?;
    let row = sea_orm::ActiveModelTrait::insert(
        api_token::ActiveModel {
            user_id: sea_orm::Set(who.user_id),
            name: sea_orm::Set(name.to_owned()),
            token_sha256: sea_orm::Set(auth::sha256_hex(&token)),
            created_at: sea_orm::Set(auth::now_ms()),
            scopes: sea_orm::Set(Some(scopes.clone())),
            ..Default::default()
        },
        &txn,
    )
    .await?;
    audit::record(&txn, &who, "token.create", None, name).await?;
    txn.commit().await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(ApiTokenCreated {
            id: row.id,
            name: row.name,
            token,
            scopes: scopes_of(Some(&scopes)),
        }),
    ))
}

/// `DELETE /api/v1/tokens/{id}`.
#[utoipa::path(
    delete, path = "/api/v1/tokens/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked"),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized,
        (status = 404, description = "You have no API token with this id", body = isthmus_shared::api::ErrorBody),
    )
)]
pub async fn delete_token(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    let (_gate, txn) = crate::store::begin_write(&state).await?;
    let row = api_token::Entity::find_by_id(id)
        .filter(api_token::Column::UserId.eq(who.user_id))
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("you have no API token with id {id}")))?;
    api_token::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(&txn, &who, "token.delete", None, &row.name).await?;
    txn.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
