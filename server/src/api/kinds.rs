//! One route per resource kind (`/api/v1/tenants/{tenant}/vnets`, `.../gateways`, ...), so the
//! OpenAPI document gives each kind its own operations and the schema of its own type. Each
//! handler hands over to the kind-generic one in [`super::resources`].

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

use super::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unprocessable,
    UnsupportedMediaType,
};
use super::resources;
use crate::auth::Principal;
use crate::error::{ApiError, ApiJson, ApiPath, RawJson};
use crate::state::AppState;
#[allow(unused_imports)] // named by the generated schemas
use isthmus_shared::api::Written;
#[allow(unused_imports)]
use isthmus_shared::model::{Connection, Gateway, LocalSite, PointToSite, Vnet};

macro_rules! kind {
    (
        $module:ident, $segment:literal, $ty:ident, $what:literal,
        list: $list_path:literal, $list_id:literal,
        item: $item_path:literal, $name_doc:literal, $name_example:literal,
        ids: $get_id:literal, $create_id:literal, $put_id:literal, $delete_id:literal $(,)?
    ) => {
        pub mod $module {
            use super::*;

            #[doc = concat!("`GET ", $list_path, "`.")]
            #[utoipa::path(get, path = $list_path, operation_id = $list_id, tag = "topology",
                summary = concat!("The tenant's ", $what, "s"),
                params(("tenant" = String, Path, description = "Tenant name", example = "demo")),
                responses(
                    (status = 200, description = concat!("Every ", $what, " of the tenant, by name"), body = Vec<$ty>),
                    BadRequest, Unauthorized, NotFound,
                ))]
            pub async fn list(
                state: State<AppState>,
                who: Principal,
                ApiPath(tenant): ApiPath<String>,
            ) -> Result<RawJson, ApiError> {
                resources::list(state, who, ApiPath((tenant, $segment.to_owned()))).await
            }

            #[doc = concat!("`POST ", $list_path, "`: creates; 409 if the name is taken.")]
            #[utoipa::path(post, path = $list_path, operation_id = $create_id, tag = "topology",
                summary = concat!("Create a ", $what),
                params(("tenant" = String, Path, description = "Tenant name", example = "demo")),
                request_body(content = $ty, description = concat!("The ", $what, "; `tenant` may be left out (it is the URL's)")),
                responses(
                    (status = 201, description = "Created: the stored resource, the new topology version and the validator's warnings", body = Written<$ty>),
                    BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge,
                    UnsupportedMediaType, Unprocessable,
                ))]
            pub async fn create(
                state: State<AppState>,
                who: Principal,
                ApiPath(tenant): ApiPath<String>,
                body: ApiJson<Value>,
            ) -> Result<(StatusCode, ApiJson<Value>), ApiError> {
                resources::create(state, who, ApiPath((tenant, $segment.to_owned())), body).await
            }

            #[doc = concat!("`GET ", $item_path, "`.")]
            #[utoipa::path(get, path = $item_path, operation_id = $get_id, tag = "topology",
                summary = concat!("One ", $what),
                params(
                    ("tenant" = String, Path, description = "Tenant name", example = "demo"),
                    ("name" = String, Path, description = $name_doc, example = $name_example),
                ),
                responses(
                    (status = 200, description = concat!("The ", $what), body = $ty),
                    BadRequest, Unauthorized, NotFound,
                ))]
            pub async fn get(
                state: State<AppState>,
                who: Principal,
                ApiPath((tenant, name)): ApiPath<(String, String)>,
            ) -> Result<RawJson, ApiError> {
                resources::get(state, who, ApiPath((tenant, $segment.to_owned(), name))).await
            }

            #[doc = concat!("`PUT ", $item_path, "`: creates or replaces.")]
            #[utoipa::path(put, path = $item_path, operation_id = $put_id, tag = "topology",
                summary = concat!("Create or replace a ", $what),
                params(
                    ("tenant" = String, Path, description = "Tenant name", example = "demo"),
                    ("name" = String, Path, description = $name_doc, example = $name_example),
                ),
                request_body(content = $ty, description = concat!("The ", $what, "; `tenant` and the name may be left out (they are the URL's)")),
                responses(
                    (status = 200, description = "Stored: the resource, the new topology version and the validator's warnings", body = Written<$ty>),
                    BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge,
                    UnsupportedMediaType, Unprocessable,
                ))]
            pub async fn put(
                state: State<AppState>,
                who: Principal,
                ApiPath((tenant, name)): ApiPath<(String, String)>,
                body: ApiJson<Value>,
            ) -> Result<ApiJson<Value>, ApiError> {
                resources::put(state, who, ApiPath((tenant, $segment.to_owned(), name)), body).await
            }

            #[doc = concat!("`DELETE ", $item_path, "`: refused (422) while something refers to it.")]
            #[utoipa::path(delete, path = $item_path, operation_id = $delete_id, tag = "topology",
                summary = concat!("Delete a ", $what),
                params(
                    ("tenant" = String, Path, description = "Tenant name", example = "demo"),
                    ("name" = String, Path, description = $name_doc, example = $name_example),
                ),
                responses(
                    (status = 204, description = "Deleted"),
                    BadRequest, Unauthorized, Forbidden, NotFound,
                    (status = 422, description = "Something still refers to it: `violations` says what, and what to delete first", body = isthmus_shared::api::ErrorBody),
                ))]
            pub async fn delete(
                state: State<AppState>,
                who: Principal,
                ApiPath((tenant, name)): ApiPath<(String, String)>,
            ) -> Result<StatusCode, ApiError> {
                resources::delete(state, who, ApiPath((tenant, $segment.to_owned(), name))).await
            }
        }
    };
}

kind!(vnets, "vnets", Vnet, "VNet",
    list: "/api/v1/tenants/{tenant}/vnets", "list_vnets",
    item: "/api/v1/tenants/{tenant}/vnets/{name}", "VNet name", "v1",
    ids: "get_vnet", "create_vnet", "put_vnet", "delete_vnet");
kind!(gateways, "gateways", Gateway, "gateway",
    list: "/api/v1/tenants/{tenant}/gateways", "list_gateways",
    item: "/api/v1/tenants/{tenant}/gateways/{name}", "Gateway name", "g1",
    ids: "get_gateway", "create_gateway", "put_gateway", "delete_gateway");
kind!(sites, "sites", LocalSite, "site",
    list: "/api/v1/tenants/{tenant}/sites", "list_sites",
    item: "/api/v1/tenants/{tenant}/sites/{name}", "Site name", "s1",
    ids: "get_site", "create_site", "put_site", "delete_site");
kind!(connections, "connections", Connection, "connection",
    list: "/api/v1/tenants/{tenant}/connections", "list_connections",
    item: "/api/v1/tenants/{tenant}/connections/{name}", "Connection name", "c1",
    ids: "get_connection", "create_connection", "put_connection", "delete_connection");
kind!(point_to_site, "point-to-site", PointToSite, "point-to-site configuration",
    list: "/api/v1/tenants/{tenant}/point-to-site", "list_point_to_site",
    item: "/api/v1/tenants/{tenant}/point-to-site/{name}", "The gateway's name (one configuration per gateway)", "g1",
    ids: "get_point_to_site", "create_point_to_site", "put_point_to_site", "delete_point_to_site");
