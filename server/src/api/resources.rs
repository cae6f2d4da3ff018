//! The topology's resources under `/api/v1/tenants/{tenant}/{kind}`.
//!
//! One set of handlers serves every kind (`vnets`, `gateways`, `sites`, `connections`,
//! `point-to-site`); each write goes through [`store::commit_change`], so the shared
//! validator sees the whole stored topology plus the change.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use isthmus_shared::model::{
    Change, Connection, Gateway, LocalSite, PointToSite, QualifiedName, SharedKey, Vnet,
};
use serde_json::Value;

use crate::audit;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, RawJson};
use crate::state::AppState;
use crate::store::{self, Committed, Kind};

fn kind_of(segment: &str) -> Result<Kind, ApiError> {
    Kind::from_path_segment(segment).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no resource kind `{segment}`; use one of vnets, gateways, sites, connections, point-to-site"
        ))
    })
}

/// The field that names a resource of `kind`.
fn name_field(kind: Kind) -> &'static str {
    match kind {
        Kind::PointToSite => "gateway",
        _ => "name",
    }
}

/// Fills `tenant` (and the name, for PUT) into a body, refusing contradictions.
fn complete_body(
    kind: Kind,
    tenant: &str,
    name: Option<&str>,
    mut body: Value,
) -> Result<Value, ApiError> {
    let obj = body
        .as_object_mut()
        .ok_or_else(|| ApiError::BadRequest("the body must be a JSON object".to_owned()))?;
    match obj.get("tenant") {
        None => {
            obj.insert("tenant".to_owned(), Value::String(tenant.to_owned()));
        }
        Some(Value::String(t)) if t == tenant => {}
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "field `tenant`: {other} contradicts the tenant `{tenant}` in the URL; leave it out"
            )));
        }
    }
    let field = name_field(kind);
    if let Some(name) = name {
        match obj.get(field) {
            None => {
                obj.insert(field.to_owned(), Value::String(name.to_owned()));
            }
            Some(Value::String(n)) if n == name => {}
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "field `{field}`: {other} contradicts `{name}` in the URL; to rename, create a new resource and delete this one"
                )));
            }
        }
    }
    Ok(body)
}

fn parse<T: serde::de::DeserializeOwned>(kind: Kind, body: Value) -> Result<T, ApiError> {
    serde_json::from_value(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the {} does not match its schema: {e}",
            kind.stored().replace('_', "-")
        ))
    })
}

/// The change an upsert body describes, and the resource's name.
fn upsert_change(kind: Kind, body: Value) -> Result<(Change, String), ApiError> {
    Ok(match kind {
        Kind::Vnet => {
            let v: Vnet = parse(kind, body)?;
            let n = v.name.clone();
            (Change::UpsertVnet(v), n)
        }
        Kind::Gateway => {
            let g: Gateway = parse(kind, body)?;
            let n = g.name.clone();
            (Change::UpsertGateway(g), n)
        }
        Kind::Site => {
            let s: LocalSite = parse(kind, body)?;
            let n = s.name.clone();
            (Change::UpsertSite(s), n)
        }
        Kind::Connection => {
            let c: Connection = parse(kind, body)?;
            let n = c.name.clone();
            (Change::UpsertConnection(c), n)
        }
        Kind::PointToSite => {
            let p: PointToSite = parse(kind, body)?;
            let n = p.gateway.clone();
            (Change::UpsertPointToSite(p), n)
        }
    })
}

/// A write's answer: the stored resource, the new topology version and any warnings.
fn written(resource: Value, committed: Committed) -> Value {
    serde_json::json!({
        "resource": resource,
        "version": committed.version,
        "warnings": committed.warnings,
    })
}

/// `GET /api/v1/tenants/{tenant}/{kind}`.
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, segment)): ApiPath<(String, String)>,
) -> Result<RawJson, ApiError> {
    let kind = kind_of(&segment)?;
    let version = who
        .require_with(state.db(), &tenant, Role::Reader, None)
        .await?
        .version;
    // Served from this process's cache only when it was built at the version the database
    // has just reported, so every replica answers what is stored.
    if let Some(cached) = state.cached_list(version, &tenant, kind.stored()) {
        return Ok(RawJson(cached));
    }
    let list = RawJson::array(store::list_bodies(state.db(), kind, &tenant).await?);
    state.cache_list(version, &tenant, kind.stored(), &list.0);
    Ok(list)
}

/// `GET /api/v1/tenants/{tenant}/{kind}/{name}`.
pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, segment, name)): ApiPath<(String, String, String)>,
) -> Result<RawJson, ApiError> {
    let kind = kind_of(&segment)?;
    let found = who
        .require_with(
            state.db(),
            &tenant,
            Role::Reader,
            Some((kind.stored(), &name)),
        )
        .await?;
    match found.body {
        Some(body) => Ok(RawJson(body.into())),
        None => Err(store::not_found(kind, &QualifiedName::new(&tenant, &name)).into()),
    }
}

/// `POST /api/v1/tenants/{tenant}/{kind}`: creates; 409 if the name is taken.
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, segment)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, ApiJson<Value>), ApiError> {
    let kind = kind_of(&segment)?;
    who.require(state.db(), &tenant, Role::Owner).await?;
    let body = complete_body(kind, &tenant, None, body)?;
    let (change, name) = upsert_change(kind, body)?;
    let q = QualifiedName::new(&tenant, &name);
    // The name is checked against the topology inside the write transaction (writers are
    // serialised by then), so of concurrent creates of one name exactly one wins.
    let (committed, ()) = store::commit_with(
        &state,
        &who,
        &format!("{}.create", kind.stored()),
        false,
        |t| {
            if store::exists(t, kind, &q) {
                return Err(ApiError::Conflict(format!(
                    "{} `{name}` exists already in tenant `{tenant}`; update it with PUT or pick another name",
                    kind.stored().replace('_', "-")
                )));
            }
            Ok((vec![change], ()))
        },
    )
    .await?;
    let row = store::get_row(state.db(), kind, &q).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(written(store::row_json(&row)?, committed)),
    ))
}

/// `PUT /api/v1/tenants/{tenant}/{kind}/{name}`: creates or replaces.
pub async fn put(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, segment, name)): ApiPath<(String, String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<ApiJson<Value>, ApiError> {
    let kind = kind_of(&segment)?;
    who.require(state.db(), &tenant, Role::Owner).await?;
    let body = complete_body(kind, &tenant, Some(&name), body)?;
    let (change, _) = upsert_change(kind, body)?;
    let committed =
        store::commit_change(&state, &who, &format!("{}.update", kind.stored()), change).await?;
    let row = store::get_row(state.db(), kind, &QualifiedName::new(&tenant, &name)).await?;
    Ok(ApiJson(written(store::row_json(&row)?, committed)))
}

/// `DELETE /api/v1/tenants/{tenant}/{kind}/{name}`: refused (422) while something refers to it.
pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, segment, name)): ApiPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let kind = kind_of(&segment)?;
    who.require(state.db(), &tenant, Role::Owner).await?;
    let q = QualifiedName::new(&tenant, &name);
    store::get_row(state.db(), kind, &q).await?;
    store::commit_change(
        &state,
        &who,
        &format!("{}.delete", kind.stored()),
        kind.delete_change(q.tenant, q.name),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/tenants/{tenant}/connections/{name}/shared-key`: the one way to read a key; audited.
#[utoipa::path(
    get, path = "/api/v1/tenants/{tenant}/connections/{name}/shared-key", tag = "topology",
    params(("tenant" = String, Path, description = "Tenant name", example = "demo"), ("name" = String, Path, description = "Connection name")),
    responses(
        (status = 200, description = "The connection's shared key; the read is audited", body = isthmus_shared::api::SharedKeyBody),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized, crate::api::openapi::Forbidden, crate::api::openapi::NotFound,
    )
)]
pub async fn get_shared_key(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> Result<ApiJson<Value>, ApiError> {
    who.require(state.db(), &tenant, Role::Owner).await?;
    let q = QualifiedName::new(&tenant, &name);
    let row = store::get_row(state.db(), Kind::Connection, &q).await?;
    let sealed = row
        .sealed
        .ok_or_else(|| ApiError::Internal(format!("connection {q} has no sealed key")))?;
    let key = state
        .sealer()
        .open_string(&store::seal_purpose(Kind::Connection, &q), &sealed)?;
    audit::record(
        state.db(),
        &who,
        "connection.shared_key.read",
        Some(&tenant),
        &name,
    )
    .await?;
    Ok(ApiJson(serde_json::json!({ "shared_key": key })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSharedKey {
    pub shared_key: String,
}

/// `PUT /api/v1/tenants/{tenant}/connections/{name}/shared-key`: "set shared key" (GW-4).
#[utoipa::path(
    put, path = "/api/v1/tenants/{tenant}/connections/{name}/shared-key", tag = "topology",
    params(("tenant" = String, Path, description = "Tenant name", example = "demo"), ("name" = String, Path, description = "Connection name")),
    request_body(content = isthmus_shared::api::SharedKeyBody, description = "1-128 ASCII letters and digits (GW-5)"),
    responses(
        (status = 204, description = "Replaced (GW-4); on a same-tenant VNet-to-VNet pair, on both halves"),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized, crate::api::openapi::Forbidden, crate::api::openapi::NotFound, crate::api::openapi::PayloadTooLarge, crate::api::openapi::UnsupportedMediaType, crate::api::openapi::Unprocessable,
    )
)]
pub async fn set_shared_key(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<SetSharedKey>,
) -> Result<StatusCode, ApiError> {
    who.require(state.db(), &tenant, Role::Owner).await?;
    let q = QualifiedName::new(&tenant, &name);
    let key = SharedKey::new(req.shared_key);
    // GW-4: both halves of a same-tenant VNet-to-VNet pair carry one key, so setting it on
    // one half sets both, in one write. A cross-tenant partner's half belongs to its owner,
    // who sets it there (CONN-2).
    store::commit_with(&state, &who, "connection.shared_key.set", false, |t| {
        let mut c = t
            .connection(&tenant, &name)
            .cloned()
            .ok_or_else(|| store::not_found(Kind::Connection, &q))?;
        c.shared_key = Some(key.clone());
        let partner = store::same_tenant_partner(t, &c).cloned();
        let mut changes = vec![Change::UpsertConnection(c)];
        if let Some(mut p) = partner {
            p.shared_key = Some(key);
            changes.push(Change::UpsertConnection(p));
        }
        Ok::<_, ApiError>((changes, ()))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The query of [`device_config`].
#[derive(Debug, serde::Deserialize)]
pub struct DeviceConfigQuery {
    /// Issue 16 item 6: which tunnel of a connection to an active-active gateway (1, the
    /// default, or 2).
    pub tunnel: Option<u8>,
    /// Issue 17: `wg-quick` (the default of a WireGuard connection), `swanctl` (the default of
    /// an IPsec connection) or `sheet` (an IPsec connection's parameter sheet).
    pub format: Option<DeviceConfigFormat>,
}

/// The format of an exported device configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceConfigFormat {
    /// A wg-quick file (WireGuard connections).
    WgQuick,
    /// A strongSwan `swanctl.conf` (IPsec connections).
    Swanctl,
    /// A plain-text parameter sheet for any IKEv2 device (IPsec connections).
    Sheet,
}

/// `GET /api/v1/tenants/{tenant}/connections/{name}/device-config[?tunnel=2][&format=..]`: the
/// site device's wg-quick file (S2S-1); on an active-active gateway tunnel 1 (to instance 0) or,
/// with `?tunnel=2`, tunnel 2 (to instance 1: a second interface on `device_port + 1`). For an
/// IPsec connection (issue 17) a strongSwan `swanctl.conf` (`format=swanctl`, the default) or
/// a parameter sheet (`format=sheet`). It carries the derived preshared key (or the IPsec
/// pre-shared key), so reading it is audited.
#[utoipa::path(
    get, path = "/api/v1/tenants/{tenant}/connections/{name}/device-config", tag = "topology",
    params(
        ("tenant" = String, Path, description = "Tenant name", example = "demo"), ("name" = String, Path, description = "Connection name"),
        ("tunnel" = Option<u8>, Query, description = "Tunnel 1 (the default) or, for a connection to an active-active gateway that runs on two instances, tunnel 2"),
        ("format" = inline(Option<DeviceConfigFormat>), Query, description = "wg-quick (the default of a WireGuard connection), swanctl (a strongSwan swanctl.conf, the default of an IPsec connection) or sheet (an IPsec connection's parameter sheet); a format of the other protocol is a 400"),
    ),
    responses(
        (status = 200, description = "The site device's configuration for the tunnel: a wg-quick file (S2S-1), a strongSwan swanctl.conf or an IPsec parameter sheet; the read is audited", content_type = "text/plain", body = String),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized, crate::api::openapi::Forbidden,
        (status = 404, description = "No such connection, or no such tunnel: tunnel 2 exists only on an active-active gateway that runs on two instances", body = isthmus_shared::api::ErrorBody),
    )
)]
pub async fn device_config(
    State(state): State<AppState>,
    who: Principal,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<DeviceConfigQuery>,
) -> Result<Response, ApiError> {
    use isthmus_shared::device::{ActiveActiveTunnel, DeviceError, site_device_tunnel_config};
    who.require(state.db(), &tenant, Role::Owner).await?;
    let q = QualifiedName::new(&tenant, &name);
    store::get_row(state.db(), Kind::Connection, &q).await?;
    let topology = store::current_topology(&state).await?;
    let tunnel = query.tunnel.unwrap_or(1);
    let device_error = |e: DeviceError| match e {
        DeviceError::NotActiveActive(_)
        | DeviceError::OneInstance(_)
        | DeviceError::NoSecondPort(_)
        | DeviceError::NoSuchTunnel(_) => {
            ApiError::NotFound(format!("no tunnel {tunnel} for `{name}`: {e}"))
        }
        e => ApiError::BadRequest(format!("no device configuration for `{name}`: {e}")),
    };
    let ipsec = topology
        .connection(&tenant, &name)
        .is_some_and(|c| c.protocol == isthmus_shared::model::TunnelProtocol::IPsec);
    let format = query.format.unwrap_or(if ipsec {
        DeviceConfigFormat::Swanctl
    } else {
        DeviceConfigFormat::WgQuick
    });
    let (file_name, body) = match (ipsec, format) {
        (false, DeviceConfigFormat::WgQuick) => {
            let config = site_device_tunnel_config(&topology, &q, tunnel).map_err(device_error)?;
            (
                ActiveActiveTunnel::file_name(&name, tunnel),
                config.to_wg_quick(),
            )
        }
        (true, DeviceConfigFormat::Swanctl | DeviceConfigFormat::Sheet) => {
            use isthmus_shared::device_ipsec::{IpsecDeviceError, site_ipsec_config};
            let config = site_ipsec_config(&topology, &q, tunnel).map_err(|e| match e {
                IpsecDeviceError::Device(e) => device_error(e),
                e => ApiError::BadRequest(format!("no device configuration for `{name}`: {e}")),
            })?;
            if format == DeviceConfigFormat::Sheet {
                (format!("{}.txt", config.name()), config.to_sheet())
            } else {
                (config.file_name(), config.to_swanctl())
            }
        }
        (false, _) => {
            return Err(ApiError::BadRequest(format!(
                "connection `{name}` uses WireGuard: its device configuration is a wg-quick \
                 file (format=wg-quick); swanctl and sheet are for IPsec connections"
            )));
        }
        (true, _) => {
            return Err(ApiError::BadRequest(format!(
                "connection `{name}` uses IPsec: its device configuration is a swanctl.conf \
                 (format=swanctl) or a parameter sheet (format=sheet), not a wg-quick file"
            )));
        }
    };
    audit::record(
        state.db(),
        &who,
        "connection.device_config.read",
        Some(&tenant),
        &name,
    )
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// `GET /api/v1/tenants/{tenant}/topology`: the tenant's resources as one `Topology` (never
/// secrets), for the portal's live validation, diagram and next-hop tool.
#[utoipa::path(
    get, path = "/api/v1/tenants/{tenant}/topology", tag = "topology",
    params(("tenant" = String, Path, description = "Tenant name", example = "demo")),
    responses(
        (status = 200, description = "The tenant's resources as one Topology, without secrets", body = isthmus_shared::model::Topology),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized, crate::api::openapi::NotFound,
    )
)]
pub async fn topology(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(tenant): ApiPath<String>,
) -> Result<ApiJson<isthmus_shared::model::Topology>, ApiError> {
    who.require(state.db(), &tenant, Role::Reader).await?;
    let all = store::current_topology(&state).await?;
    Ok(ApiJson(scope_to_tenant((*all).clone(), &tenant)))
}

/// The part of a topology one tenant may see, without shared keys.
pub fn scope_to_tenant(
    all: isthmus_shared::model::Topology,
    tenant: &str,
) -> isthmus_shared::model::Topology {
    let mut t = all;
    t.tenants.retain(|x| x.name == tenant);
    t.vnets.retain(|x| x.tenant == tenant);
    t.gateways.retain(|x| x.tenant == tenant);
    t.sites.retain(|x| x.tenant == tenant);
    t.connections.retain(|x| x.tenant == tenant);
    t.point_to_site.retain(|x| x.tenant == tenant);
    for c in &mut t.connections {
        c.shared_key = None;
    }
    t
}
