//! Messages between the server and its workers (worker-initiated HTTP).
//!
//! Versioned: every message carries [`PROTOCOL_VERSION`]; the server refuses a
//! worker that speaks another major version, with a message naming both.

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// `POST /api/v1/worker/heartbeat`, authenticated by the worker's bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub protocol: u32,
    /// The worker's name; unique per token.
    pub name: String,
    /// The worker's version.
    pub version: String,
    /// GW-3 / GW-10: the addresses devices reach this worker at (`isthmus-worker
    /// --public-address`, first one preferred); the server allocates the endpoints of the
    /// gateways placed on this worker from them. Empty from older workers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub public_addresses: Vec<std::net::IpAddr>,
    /// Issue 16: where this worker receives the failover heartbeats of the gateway instances it
    /// runs (`isthmus-worker --heartbeat-port`, on its first public address); the server tells
    /// each instance its partner's. `None` from older workers: they get no redundant instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub heartbeat_address: Option<std::net::SocketAddr>,
    /// Issue 16: the operator's failure-domain label (`isthmus-worker --zone`); the two
    /// instances of a gateway go to workers of different zones when possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// The server's answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HeartbeatAck {
    pub protocol: u32,
    /// Seconds the lease lasts; the worker should beat again well before.
    pub lease_seconds: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_fixture_parses() {
        let json = r#"{"protocol":1,"name":"w1","version":"0.1.0"}"#;
        let hb: Heartbeat = serde_json::from_str(json).expect("fixture parses");
        assert_eq!(hb.name, "w1");
        let unknown = r#"{"protocol":1,"name":"w1","version":"0.1.0","x":1}"#;
        assert!(serde_json::from_str::<Heartbeat>(unknown).is_err());
    }
}
