//! The status a worker reports back: per gateway and per tunnel, the tunnel state the worker
//! decided, bytes, drop counters, LIM-6 region-pair bytes and host route conflicts.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::model::{RegionPair, region_pair};

/// The versioned envelope of a status report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format")]
pub enum StatusReportMessage {
    #[serde(rename = "isthmus.status/v1")]
    V1(StatusReport),
}

/// What a worker reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StatusReport {
    /// The desired-state generation the worker has applied.
    pub version: u64,
    pub gateways: Vec<GatewayStatus>,
    /// LIM-6: bytes per region pair over all VNet-to-VNet peers of all gateways of the worker,
    /// cumulative since the worker process started (they restart from zero with the process).
    /// Same-region pairs (`a == b`) are reported too; they are not billable. Absent in reports
    /// older than LIM-6.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub region_pairs: Vec<RegionPairBytes>,
}

/// LIM-6: the bytes a worker carried between two regions. The counts are outer bytes: the
/// WireGuard messages (data, handshakes, keepalives) as UDP payloads, without IP and UDP
/// headers, since the encrypted datagrams are what crosses regions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegionPairBytes {
    /// The lexicographically smaller region ([`RegionPair::a`]).
    pub a: String,
    /// The other region (equal to `a` within one region).
    pub b: String,
    /// Bytes received from peers of this pair.
    pub rx_bytes: u64,
    /// Bytes sent to peers of this pair.
    pub tx_bytes: u64,
}

impl RegionPairBytes {
    /// The region pair counted.
    pub fn pair(&self) -> RegionPair {
        region_pair(&self.a, &self.b)
    }

    /// Whether the bytes crossed regions (and are billable).
    pub fn is_billable(&self) -> bool {
        self.a != self.b
    }
}

/// The status of one gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = WorkerGatewayStatus))]
#[serde(deny_unknown_fields)]
pub struct GatewayStatus {
    pub tenant: String,
    pub name: String,
    pub connections: Vec<ConnectionStatus>,
    /// Routes of the gateway that the host's routing table refused (see [`RouteConflict`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route_conflicts: Vec<RouteConflict>,
    /// The gateway's drop counters since the worker started (absent from older workers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drops: Option<GatewayDrops>,
    /// Issue 16: this worker's instance of a redundant gateway, its role and term as the
    /// instance decided them (absent for a gateway that is not redundant, and from older
    /// workers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<crate::instances::InstanceStatus>,
    /// Why the worker cannot serve the gateway (its UDP port cannot be bound, for example): a
    /// standby that reports one leaves the gateway `not redundant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_error: Option<String>,
}

/// Datagrams a gateway's port refused or answered without doing the work they asked for,
/// cumulative over the worker's run (a lower value than before means the worker restarted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GatewayDrops {
    /// Handshake messages under load answered with a cookie reply instead of a handshake
    /// (WireGuard's cookie mechanism: no Diffie-Hellman for them).
    #[serde(default)]
    pub cookie_replies: u64,
    /// Handshake messages over the gateway's handshake budget: dropped unread.
    #[serde(default)]
    pub handshakes_shed: u64,
    /// Packets over the gateway's bandwidth (LIM-4).
    #[serde(default)]
    pub rate_limited: u64,
    /// Not WireGuard messages, or WireGuard messages that failed their checks.
    #[serde(default)]
    pub bad_datagrams: u64,
    /// Datagrams the worker host's kernel dropped for a full receive queue of the gateway's
    /// port (a flood beyond what the worker reads; on Linux the port's untrusted queue, of
    /// initiations and garbage, not the established tunnels' one).
    #[serde(default)]
    pub queue_overflows: u64,
    /// Issue 17: the IKE and ESP datagrams of the gateway's IPsec connections it dropped, by
    /// kind (also counted in `bad_datagrams`); absent when none was dropped, and from older
    /// workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipsec: Option<super::IpsecDrops>,
}

/// The status of one peer (connection or client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = WorkerConnectionStatus))]
#[serde(deny_unknown_fields)]
pub struct ConnectionStatus {
    pub name: String,
    /// Seconds since the Unix epoch; `None` before the first handshake.
    #[serde(default)]
    pub last_handshake_unix: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// The peer's current `host:port`, as seen by the worker.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The tunnel's state as the worker decides it.
    #[serde(default)]
    pub state: TunnelState,
    /// Seconds since the Unix epoch when the tunnel entered `state` (as far as this worker
    /// knows: at most since the worker started).
    #[serde(default)]
    pub since_unix: Option<u64>,
    /// Why the tunnel is `down` (or still `connecting`), when the worker can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DownReason>,
    /// Issue 17: the IKE and CHILD SAs of an IPsec connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipsec: Option<super::IpsecStatus>,
}

/// A tunnel's state, decided by the worker that runs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TunnelState {
    /// Handshakes sent, none answered yet.
    Connecting,
    /// A handshake within WireGuard's reject-after time (180 s), and the peer is heard from:
    /// traffic can pass.
    Up,
    /// No valid session; [`ConnectionStatus::reason`] says why.
    #[default]
    Down,
    /// S2S-2: a PolicyBased tunnel torn down after 5 minutes without traffic; it comes back as
    /// soon as traffic flows.
    Idle,
}

impl TunnelState {
    /// The wire name (`up`, `down`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Up => "up",
            Self::Down => "down",
            Self::Idle => "idle",
        }
    }
}

/// Why a tunnel is not up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DownReason {
    /// Handshakes to the peer's endpoint went unanswered (the device is off, unreachable, or
    /// does not know this gateway's key), or an established peer fell silent.
    NoAnswer,
    /// Handshake messages from the peer's address failed their checks: the device's keys or
    /// preshared key do not match this connection's.
    KeyMismatch,
    /// A roaming peer (a point-to-site client) that has not connected.
    NotConnected,
    /// The peer's endpoint could not be resolved.
    NoEndpoint,
    /// The connection is disabled (decided by the server, which does not send it to workers).
    Disabled,
}

impl DownReason {
    /// The wire name (`no_answer`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoAnswer => "no_answer",
            Self::KeyMismatch => "key_mismatch",
            Self::NotConnected => "not_connected",
            Self::NoEndpoint => "no_endpoint",
            Self::Disabled => "disabled",
        }
    }
}

/// A route the worker did not install on its host because the host already routes the prefix
/// another way (reported, never overwritten).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RouteConflict {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub prefix: IpNet,
    /// The host's route in the way, as `ip route` would name it (e.g. `192.168.50.0/24 dev eth1`).
    pub existing: String,
}
