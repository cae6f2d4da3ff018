//! Every HTTP call the portal makes lives here.

use gloo_net::http::{Request, RequestBuilder, Response};
use isthmus_shared::api::{
    CreateTenant, ErrorBody, Health, LoginRequest, Me, RegionPairMeterView, TenantInfo,
    WorkerSummary,
};
use isthmus_shared::model::Topology;
use isthmus_shared::validate::Violation;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const BASE: &str = "/api/v1";

/// A failed call: the server's error body, or a transport failure.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status; 0 when the server was not reached.
    pub status: u16,
    pub code: String,
    pub message: String,
    pub violations: Vec<Violation>,
}

impl ApiError {
    fn network(e: impl ToString) -> Self {
        Self {
            status: 0,
            code: "network".to_owned(),
            message: e.to_string(),
            violations: Vec::new(),
        }
    }

    pub fn is_unauthorized(&self) -> bool {
        self.status == 401
    }
}

pub use isthmus_shared::api::ConnectionStatus;

/// The answer to a resource write.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Written {
    pub version: i64,
    #[serde(default)]
    pub warnings: Vec<Violation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedKeyBody {
    pub shared_key: String,
}

fn enc(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}

async fn check(resp: Response) -> Result<Response, ApiError> {
    if resp.ok() {
        return Ok(resp);
    }
    let status = resp.status();
    Err(match resp.json::<ErrorBody>().await {
        Ok(body) => ApiError {
            status,
            code: body.error,
            message: body.message,
            violations: body.violations,
        },
        Err(_) => ApiError {
            status,
            code: "http".to_owned(),
            message: format!("HTTP {status}"),
            violations: Vec::new(),
        },
    })
}

async fn send(req: RequestBuilder) -> Result<Response, ApiError> {
    check(req.send().await.map_err(ApiError::network)?).await
}

async fn send_body<B: Serialize>(req: RequestBuilder, body: &B) -> Result<Response, ApiError> {
    let req = req.json(body).map_err(ApiError::network)?;
    check(req.send().await.map_err(ApiError::network)?).await
}

async fn json<T: DeserializeOwned>(resp: Response) -> Result<T, ApiError> {
    resp.json::<T>().await.map_err(ApiError::network)
}

/// `GET /api/v1/health`.
pub async fn health() -> Result<Health, ApiError> {
    json(send(Request::get(&format!("{BASE}/health"))).await?).await
}

/// `GET /api/v1/metering/region-pairs` (administrators).
pub async fn region_pairs() -> Result<Vec<RegionPairMeterView>, ApiError> {
    json(send(Request::get(&format!("{BASE}/metering/region-pairs"))).await?).await
}

/// One worker of `GET /api/v1/workers`: its summary, whether its lease is current and where it
/// receives failover heartbeats.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WorkerEntry {
    #[serde(flatten)]
    pub summary: WorkerSummary,
    pub live: bool,
    #[serde(default)]
    pub heartbeat_address: Option<String>,
}

/// `GET /api/v1/workers` (administrators): every known worker, live or not, with its zone,
/// whether it is draining and its active and standby gateway instances.
pub async fn workers() -> Result<Vec<WorkerEntry>, ApiError> {
    json(send(Request::get(&format!("{BASE}/workers"))).await?).await
}

/// `POST /api/v1/workers/{name}/drain` (`drain: true`) or `.../undrain` (administrators).
pub async fn set_draining(worker: &str, drain: bool) -> Result<(), ApiError> {
    let action = if drain { "drain" } else { "undrain" };
    send(Request::post(&format!(
        "{BASE}/workers/{}/{action}",
        enc(worker)
    )))
    .await?;
    Ok(())
}

/// `POST /api/v1/auth/login`.
pub async fn login(username: String, password: String) -> Result<Me, ApiError> {
    let body = LoginRequest { username, password };
    json(send_body(Request::post(&format!("{BASE}/auth/login")), &body).await?).await
}

/// `POST /api/v1/auth/logout`.
pub async fn logout() -> Result<(), ApiError> {
    send(Request::post(&format!("{BASE}/auth/logout"))).await?;
    Ok(())
}

/// `GET /api/v1/auth/me`.
pub async fn me() -> Result<Me, ApiError> {
    json(send(Request::get(&format!("{BASE}/auth/me"))).await?).await
}

/// `GET /api/v1/tenants`.
pub async fn tenants() -> Result<Vec<TenantInfo>, ApiError> {
    json(send(Request::get(&format!("{BASE}/tenants"))).await?).await
}

/// `POST /api/v1/tenants`.
pub async fn create_tenant(name: String) -> Result<TenantInfo, ApiError> {
    let body = CreateTenant { name };
    json(send_body(Request::post(&format!("{BASE}/tenants")), &body).await?).await
}

/// `GET /api/v1/tenants/{t}/topology`.
pub async fn topology(tenant: &str) -> Result<Topology, ApiError> {
    json(
        send(Request::get(&format!(
            "{BASE}/tenants/{}/topology",
            enc(tenant)
        )))
        .await?,
    )
    .await
}

/// `GET /api/v1/tenants/{t}/status`.
pub async fn status(tenant: &str) -> Result<Vec<ConnectionStatus>, ApiError> {
    json(
        send(Request::get(&format!(
            "{BASE}/tenants/{}/status",
            enc(tenant)
        )))
        .await?,
    )
    .await
}

/// `GET /api/v1/tenants/{t}/gateways/{g}/status`: where the gateway runs, GW-10 warnings, route
/// conflicts.
pub async fn gateway_status(
    tenant: &str,
    gateway: &str,
) -> Result<isthmus_shared::api::GatewayStatusView, ApiError> {
    json(
        send(Request::get(&format!(
            "{BASE}/tenants/{}/gateways/{}/status",
            enc(tenant),
            enc(gateway)
        )))
        .await?,
    )
    .await
}

/// `POST /api/v1/tenants/{t}/{kind}` (create) or `PUT .../{kind}/{name}` (replace).
pub async fn save<B: Serialize>(
    tenant: &str,
    kind: &str,
    existing: Option<&str>,
    body: &B,
) -> Result<Written, ApiError> {
    let req = match existing {
        None => Request::post(&format!("{BASE}/tenants/{}/{kind}", enc(tenant))),
        Some(name) => Request::put(&format!(
            "{BASE}/tenants/{}/{kind}/{}",
            enc(tenant),
            enc(name)
        )),
    };
    json(send_body(req, body).await?).await
}

/// `DELETE /api/v1/tenants/{t}/{kind}/{name}`.
pub async fn delete(tenant: &str, kind: &str, name: &str) -> Result<(), ApiError> {
    send(Request::delete(&format!(
        "{BASE}/tenants/{}/{kind}/{}",
        enc(tenant),
        enc(name)
    )))
    .await?;
    Ok(())
}

/// `GET /api/v1/tenants/{t}/connections/{c}/shared-key`.
pub async fn shared_key(tenant: &str, connection: &str) -> Result<String, ApiError> {
    let body: SharedKeyBody = json(
        send(Request::get(&format!(
            "{BASE}/tenants/{}/connections/{}/shared-key",
            enc(tenant),
            enc(connection)
        )))
        .await?,
    )
    .await?;
    Ok(body.shared_key)
}

/// `PUT /api/v1/tenants/{t}/connections/{c}/shared-key`.
pub async fn set_shared_key(tenant: &str, connection: &str, key: String) -> Result<(), ApiError> {
    send_body(
        Request::put(&format!(
            "{BASE}/tenants/{}/connections/{}/shared-key",
            enc(tenant),
            enc(connection)
        )),
        &SharedKeyBody { shared_key: key },
    )
    .await?;
    Ok(())
}

/// The URL of a connection's device configuration (wg-quick, served as an attachment).
pub fn device_config_url(tenant: &str, connection: &str) -> String {
    format!(
        "{BASE}/tenants/{}/connections/{}/device-config",
        enc(tenant),
        enc(connection)
    )
}

/// Issue 16 item 6: the URL of tunnel 2 of a connection to an active-active gateway.
pub fn device_config_tunnel2_url(tenant: &str, connection: &str) -> String {
    format!("{}?tunnel=2", device_config_url(tenant, connection))
}

/// Issue 17: the URL of an IPsec connection's device configuration in `format` (`swanctl`: a
/// strongSwan `swanctl.conf`; `sheet`: the plain-text parameter sheet) for tunnel 1, or 2 on
/// an active-active gateway.
pub fn device_config_format_url(
    tenant: &str,
    connection: &str,
    format: &str,
    tunnel: u8,
) -> String {
    let url = format!(
        "{}?format={}",
        device_config_url(tenant, connection),
        enc(format)
    );
    if tunnel == 2 {
        format!("{url}&tunnel=2")
    } else {
        url
    }
}

/// `GET /api/v1/tenants/{t}/connections/{c}/device-config` as text.
pub async fn device_config(tenant: &str, connection: &str) -> Result<String, ApiError> {
    send(Request::get(&device_config_url(tenant, connection)))
        .await?
        .text()
        .await
        .map_err(ApiError::network)
}
