//! The worker's own status file (`--status-file`): what the server is told (bytes, handshakes,
//! endpoints, each tunnel's state) plus what only the worker knows: whether each tunnel has a
//! `Tunn` (S2S-2 idle teardown) and the drop counters. For operators and tests that run without
//! a server.

use std::path::Path;
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::core::metering::unix_secs as unix;
use crate::core::{Core, Counters};

/// The whole worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalStatus {
    /// The desired-state generation applied.
    pub version: u64,
    /// When this was written (Unix seconds).
    pub written_unix: u64,
    /// Drops of the whole worker (every gateway plus datagrams no gateway owns).
    pub drops: Counters,
    pub gateways: Vec<LocalGateway>,
}

/// One gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalGateway {
    pub tenant: String,
    pub name: String,
    pub drops: Counters,
    pub peers: Vec<LocalPeer>,
    /// Routes of the gateway the host refused (GW-10: prefix and the host's route in the way).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route_conflicts: Vec<isthmus_shared::desired::RouteConflict>,
    /// Issue 16: this worker's instance of a redundant gateway: role, term, partner heard,
    /// heartbeats accepted and refused (absent for a gateway that is not redundant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<isthmus_shared::instances::InstanceStatus>,
    /// Why the gateway's UDP port cannot be bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_error: Option<String>,
}

/// One peer (connection or client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalPeer {
    pub name: String,
    /// Whether the peer has a tunnel (false after an S2S-2 idle teardown, and for a roaming
    /// client until its first handshake).
    pub up: bool,
    /// Whether the tunnel has a current session.
    pub established: bool,
    pub endpoint: Option<String>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub last_handshake_unix: Option<u64>,
    /// The tunnel's state as the core decides it, since when (Unix seconds), and why it is down.
    #[serde(default)]
    pub state: isthmus_shared::desired::TunnelState,
    #[serde(default)]
    pub since_unix: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<isthmus_shared::desired::DownReason>,
    /// Issue 17: an IPsec connection's SAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipsec: Option<isthmus_shared::desired::IpsecStatus>,
}

impl LocalStatus {
    /// The status of `core`; `now` and `wall` are the same moment on both clocks.
    pub fn of(core: &Core, now: Instant, wall: SystemTime) -> Self {
        let gateways = core
            .gateway_names()
            .into_iter()
            .map(|q| LocalGateway {
                drops: core.gateway_counters(&q).unwrap_or_default(),
                peers: core
                    .peers(&q)
                    .into_iter()
                    .map(|p| LocalPeer {
                        ipsec: core
                            .ipsec_tunnel(&q, &p.name)
                            .map(|t| t.status(&|i| unix(now, wall, i))),
                        name: p.name,
                        up: p.up,
                        established: p.established,
                        endpoint: p.endpoint.map(|e| e.to_string()),
                        rx_bytes: p.rx_bytes,
                        tx_bytes: p.tx_bytes,
                        last_handshake_unix: p.last_handshake.and_then(|t| unix(now, wall, t)),
                        state: p.state,
                        since_unix: unix(now, wall, p.since),
                        reason: p.reason,
                    })
                    .collect(),
                route_conflicts: Vec::new(),
                instance: core.instance_status(&q, now),
                bind_error: None,
                tenant: q.tenant,
                name: q.name,
            })
            .collect();
        Self {
            version: core.version(),
            written_unix: wall
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            drops: core.counters(),
            gateways,
        }
    }

    /// Writes the status as JSON to `path`, atomically (a temporary file renamed over it).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, path)
    }
}
