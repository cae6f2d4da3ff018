//! The OpenAPI 3.1 document.
//!
//! Routes are declared once, in [`super::api_routes`], from the handlers' `#[utoipa::path]`
//! annotations (`utoipa-axum`): a route the router serves is in the document by construction.
//! Every request and response body is described by the schema generated from the Rust type the
//! server reads or writes (`utoipa::ToSchema` on the `isthmus-shared` types), and every error
//! status an operation can answer is listed with the [`ErrorBody`] it carries. The reusable
//! error responses are the structs below.

use axum::http::header;
use axum::response::IntoResponse;
use isthmus_shared::api::ErrorBody;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};

/// The document's fixed part: title, security schemes, tags. Paths and schemas come from the
/// router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Isthmus API",
        description = "Self-hosted VPN gateways: VNets, gateways, sites, connections, point-to-site. \
                       Every error is a JSON `ErrorBody`; a refused write (422) lists every broken rule \
                       in `violations`."
    ),
    modifiers(&Security),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "service", description = "Health, metrics and this document"),
        (name = "accounts", description = "Login, users and API tokens"),
        (name = "tenants", description = "Tenants, members and the audit log"),
        (name = "topology", description = "VNets, gateways, sites, connections and point-to-site configurations"),
        (name = "status", description = "Live status and LIM-6 metering"),
        (name = "point-to-site", description = "Root certificates, revocation and enrolment (P2S-3)"),
        (name = "worker", description = "The worker protocol (worker tokens) and placements"),
        (name = "workers", description = "Workers, their drains and the instances of redundant gateways (issue 16)"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`isthmus token create`) for the user API, a worker token \
                         (`isthmus token create --worker`) for `/api/v1/worker/*`",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "The portal's session cookie, set by POST /api/v1/auth/login",
            ))),
        );
    }
}

/// The whole document: the fixed part plus every route of the router.
pub fn document() -> utoipa::openapi::OpenApi {
    super::api_routes().into_openapi()
}

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "service", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object)))]
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document().to_json().unwrap_or_default(),
    )
}

/// 400: the request is malformed (JSON syntax or shape, a path or query parameter, a field
/// value); the message names the field.
#[derive(IntoResponses)]
#[response(
    status = 400,
    description = "Bad input: malformed JSON, a body that does not match its schema, a bad path or query parameter or field value; the message names it"
)]
pub struct BadRequest(pub ErrorBody);

/// 401: no or an unknown credential.
#[derive(IntoResponses)]
#[response(
    status = 401,
    description = "Not authenticated: no, an expired or an unknown session or token"
)]
pub struct Unauthorized(pub ErrorBody);

/// 403: authenticated but not allowed.
#[derive(IntoResponses)]
#[response(
    status = 403,
    description = "Not allowed: the caller's role or token does not permit this"
)]
pub struct Forbidden(pub ErrorBody);

/// 404: the tenant (or a resource in it) does not exist or the caller is not a member.
#[derive(IntoResponses)]
#[response(
    status = 404,
    description = "No such tenant (or you are not a member of it), or no such resource in it"
)]
pub struct NotFound(pub ErrorBody);

/// 409: the name is taken or the state conflicts.
#[derive(IntoResponses)]
#[response(
    status = 409,
    description = "Conflict: the name is taken, or the request conflicts with the stored state"
)]
pub struct Conflict(pub ErrorBody);

/// 413: the body is over [`super::MAX_BODY_BYTES`].
#[derive(IntoResponses)]
#[response(status = 413, description = "The request body is over 1 MiB")]
pub struct PayloadTooLarge(pub ErrorBody);

/// 415: a JSON operation called without `Content-Type: application/json`.
#[derive(IntoResponses)]
#[response(
    status = 415,
    description = "The body is not declared as JSON: send `Content-Type: application/json`"
)]
pub struct UnsupportedMediaType(pub ErrorBody);

/// 422: the change breaks gateway rules; `violations` lists every one and nothing was saved.
#[derive(IntoResponses)]
#[response(
    status = 422,
    description = "Rule violations (`error: validation_failed`): `violations` lists every broken rule with its path and fix; nothing was saved"
)]
pub struct Unprocessable(pub ErrorBody);

/// 429: throttled; `Retry-After` says when to try again.
#[derive(IntoResponses)]
#[response(
    status = 429,
    description = "Too many requests; try again after `Retry-After` seconds",
    headers(("Retry-After" = u64, description = "Seconds to wait"))
)]
pub struct TooManyRequests(pub ErrorBody);
