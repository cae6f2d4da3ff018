//! REST body types of `/api/v1`.

use serde::{Deserialize, Serialize};

/// Which database engine backs the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

impl DatabaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseKind::Sqlite => "sqlite",
            DatabaseKind::Postgres => "postgres",
        }
    }
}

/// A worker as seen by the health endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WorkerSummary {
    /// The name the worker announced (defaults to its host name).
    pub name: String,
    /// The worker's own version string.
    pub version: String,
    /// RFC 3339 time of the worker's last heartbeat.
    pub last_seen: String,
    /// Issue 16: the worker's failure-domain label (`isthmus-worker --zone`).
    #[serde(default)]
    pub zone: Option<String>,
    /// Issue 16: an administrator drained the worker (`isthmus worker drain`): it gets no new
    /// instances and hands its active ones over to their standbys.
    #[serde(default)]
    pub draining: bool,
    /// Gateway instances on the worker that are active (as last reported, or designated).
    #[serde(default)]
    pub active_instances: u32,
    /// Gateway instances on the worker that stand by.
    #[serde(default)]
    pub standby_instances: u32,
}

/// `GET /api/v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// `"ok"` when the database answers.
    pub status: String,
    /// The server's version.
    pub version: String,
    /// The database engine in use.
    pub database: DatabaseKind,
    /// Workers whose lease is current, sorted by name.
    pub workers: Vec<WorkerSummary>,
}

/// The body of every error response of the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// A stable, machine-readable code (`not_found`, `bad_request`, ...).
    pub error: String,
    /// What is wrong and how to fix it, for a person.
    pub message: String,
    /// With `validation_failed` (HTTP 422): every rule the change breaks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<crate::validate::Violation>,
}

/// `POST /api/v1/auth/login`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// A tenant the user belongs to, with the role there (`owner` or `reader`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MembershipInfo {
    pub tenant: String,
    pub role: String,
}

/// `GET /api/v1/auth/me`: who is logged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Me {
    pub username: String,
    pub is_admin: bool,
    pub tenants: Vec<MembershipInfo>,
}

/// `POST /api/v1/users` (administrators only).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub is_admin: bool,
}

impl std::fmt::Debug for CreateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUser")
            .field("username", &self.username)
            .field("is_admin", &self.is_admin)
            .finish_non_exhaustive()
    }
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateApiToken {
    pub name: String,
    /// What the token may do: `api` (act as its user on the API; the default) and/or
    /// `metrics` (read the named series of `/metrics`, e.g. for Prometheus).
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApiTokenInfo {
    pub id: i64,
    pub name: String,
    pub created_at: String,
    /// `api`, `metrics`.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// The answer to `POST /api/v1/tokens`: the only time the token is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApiTokenCreated {
    pub id: i64,
    pub name: String,
    pub token: String,
    /// `api`, `metrics`.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// `POST /api/v1/tenants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub name: String,
}

/// A tenant as listed, with the caller's role in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TenantInfo {
    pub name: String,
    pub role: String,
}

/// `PUT /api/v1/tenants/{tenant}/members/{username}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetMember {
    /// `owner` or `reader`.
    pub role: String,
}

/// One audit-log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    pub actor: String,
    pub action: String,
    pub tenant: Option<String>,
    pub target: String,
}

/// A connection's live status (`GET /api/v1/tenants/{tenant}/status`), as the portal shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectionStatus {
    pub gateway: String,
    pub connection: String,
    pub worker: String,
    /// Seconds since the Unix epoch of the last handshake.
    pub last_handshake_unix: Option<i64>,
    pub rx_bytes: i64,
    pub tx_bytes: i64,
    pub endpoint: Option<String>,
    /// RFC 3339 time of the report.
    pub reported_at: String,
    /// The tunnel's state as the worker that runs it decided (`disabled` connections are
    /// `down` with reason `disabled`, decided by the server).
    #[serde(default)]
    pub state: crate::desired::TunnelState,
    /// RFC 3339 time since when the tunnel is in `state`.
    #[serde(default)]
    pub since: Option<String>,
    /// Why it is `down` or still `connecting`.
    #[serde(default)]
    pub reason: Option<crate::desired::DownReason>,
    /// Issue 17: the IKE and CHILD SAs of an IPsec connection, as its worker last reported
    /// them; absent for WireGuard tunnels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipsec: Option<crate::desired::IpsecStatus>,
}

/// One gateway's live view (`GET /api/v1/tenants/{tenant}/gateways/{name}/status`): where it
/// runs, its public endpoint with any GW-10 warning, the routes its worker's host refused, and
/// its connections' status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GatewayStatusView {
    pub gateway: String,
    /// The worker the gateway is placed on, if any.
    #[serde(default)]
    pub worker: Option<String>,
    /// The endpoint devices are configured with (`host:port`).
    #[serde(default)]
    pub public_endpoint: Option<String>,
    /// GW-10 warnings (an endpoint no device on another host can reach).
    #[serde(default)]
    pub warnings: Vec<crate::validate::Violation>,
    /// Routes the worker did not install because its host routes the prefix another way.
    #[serde(default)]
    pub route_conflicts: Vec<crate::desired::RouteConflict>,
    /// RFC 3339 time of the worker's last report for the gateway.
    #[serde(default)]
    pub reported_at: Option<String>,
    #[serde(default)]
    pub connections: Vec<ConnectionStatus>,
    /// Issue 16: the gateway's instances (one, or two when redundant), by index.
    #[serde(default)]
    pub instances: Vec<GatewayInstanceView>,
    /// Whether the gateway survives the loss of a worker.
    #[serde(default)]
    pub redundancy: Redundancy,
    /// Why it does not, when it does not.
    #[serde(default)]
    pub not_redundant_because: Option<NotRedundantReason>,
}

/// Issue 16: whether a gateway runs as two instances on two live workers, ready to fail over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Redundancy {
    /// Two instances on two live workers, the standby ready.
    Redundant,
    /// One instance only (or a standby that cannot serve): the loss of its worker stops it.
    #[default]
    NotRedundant,
}

/// Issue 16: why a gateway is not redundant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NotRedundantReason {
    /// Fewer than two live workers (that state a heartbeat address) can take an instance.
    OneLiveWorker,
    /// The gateway is not placed on any live worker.
    NotPlaced,
    /// The standby's worker reported that it cannot bind the gateway's port.
    StandbyCannotBind,
    /// The standby's worker is not live (its lease ran out); a new standby is placed when
    /// another worker is live.
    StandbyWorkerDown,
    /// The instances do not hear each other's heartbeats.
    PartnerUnreachable,
}

/// Issue 16: one instance of a gateway as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GatewayInstanceView {
    /// 0 or 1.
    pub instance: u8,
    /// The worker that runs it.
    pub worker: String,
    /// That worker's zone.
    #[serde(default)]
    pub zone: Option<String>,
    /// Whether that worker's lease is current.
    pub worker_live: bool,
    /// The role as the instance last reported it, or as the server designates it before a
    /// report.
    pub role: crate::instances::InstanceRole,
    /// The term the role is held under.
    pub term: u64,
    /// Whether the instance hears its partner's heartbeats (`None` before a report).
    #[serde(default)]
    pub partner_alive: Option<bool>,
    /// `host:port` devices reach this instance at.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Why the worker cannot serve the instance (its port cannot be bound).
    #[serde(default)]
    pub bind_error: Option<String>,
    /// RFC 3339 time of the worker's last report of the instance.
    #[serde(default)]
    pub reported_at: Option<String>,
}

/// LIM-6: one worker's bytes for a region pair, over all its runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerRegionPairView {
    pub worker: String,
    /// Outer (WireGuard) bytes the worker received from peers of this pair.
    pub rx_bytes: i64,
    /// Outer bytes the worker sent to peers of this pair.
    pub tx_bytes: i64,
    /// RFC 3339 time of the worker's last report.
    pub reported_at: String,
}

/// LIM-6: the bytes metered for a region pair, summed over workers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegionPairMeterView {
    /// The lexicographically smaller region.
    pub a: String,
    /// The other region (equal to `a` within one region).
    pub b: String,
    /// Whether the traffic crosses regions: only then is it billed.
    pub billable: bool,
    pub rx_bytes: i64,
    pub tx_bytes: i64,
    /// The bytes to bill: every VNet-to-VNet datagram is sent by one of the product's
    /// workers and received by another, so it is counted once, at its sender (`tx_bytes`);
    /// zero within one region.
    pub billed_bytes: i64,
    pub workers: Vec<WorkerRegionPairView>,
}

/// The answer to a write (`POST`/`PUT` of a resource, a root certificate upload, a revocation):
/// the stored resource, the topology version the write produced and the validator's warnings
/// (they never block; errors are a 422 instead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Written<T> {
    pub resource: T,
    pub version: i64,
    pub warnings: Vec<crate::validate::Violation>,
}

/// A connection's shared key (GW-4, GW-5: 1 to 128 ASCII letters and digits): read with
/// `GET .../connections/{name}/shared-key` (audited), set with `PUT` on the same path.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SharedKeyBody {
    pub shared_key: String,
}

impl std::fmt::Debug for SharedKeyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedKeyBody").finish_non_exhaustive()
    }
}

/// A revoked client-certificate thumbprint (SHA-256, hex) and the clients enrolled with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RevokedThumbprint {
    pub thumbprint: String,
    pub clients: Vec<String>,
}
