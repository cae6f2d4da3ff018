//! The core's public types: what it asks the shell to send, the events it reports, and what
//! it answers about routing and peers.

use std::net::SocketAddr;
use std::time::Instant;

use isthmus_shared::desired::{DownReason, TunnelState};
use isthmus_shared::model::QualifiedName;

use super::failover::{StepDownReason, TakeoverReason};

/// A datagram the caller must send from the gateway's UDP port; or, with `segment_size`,
/// several to the same destination (see [`Core::set_gso_max_bytes`](super::Core::set_gso_max_bytes)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The gateway's listen port (which socket to send from).
    pub local_port: u16,
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
    /// `Some(n)`: `payload` is consecutive datagrams of `n` bytes, the last one possibly
    /// shorter (what UDP GSO sends in one call). `None`: one datagram.
    pub segment_size: Option<usize>,
}

/// Something worth telling the shell (for logs); never carries key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// S2S-2: a policy-based tunnel idled out and was torn down.
    TunnelIdle {
        gateway: QualifiedName,
        peer: String,
    },
    /// A torn-down tunnel is being brought up again because traffic flows.
    TunnelRestarted {
        gateway: QualifiedName,
        peer: String,
    },
    /// The tunnel came up (see [`state`](super::state) for when a tunnel is up).
    TunnelUp {
        gateway: QualifiedName,
        peer: String,
        endpoint: Option<SocketAddr>,
    },
    /// A tunnel that was up went down.
    TunnelDown {
        gateway: QualifiedName,
        peer: String,
        endpoint: Option<SocketAddr>,
        reason: DownReason,
    },
    /// Handshakes with the peer fail (`key_mismatch`) or go unanswered (`no_answer`): at most
    /// once per [`state::FAILING_EVERY`](super::state::FAILING_EVERY) per peer while it lasts.
    HandshakeFailing {
        gateway: QualifiedName,
        peer: String,
        endpoint: Option<SocketAddr>,
        reason: DownReason,
    },
    /// Issue 16: this worker's instance of a redundant gateway became active under `term`: the
    /// core has initiated a handshake to every peer whose endpoint it knows; the shell installs
    /// the gateway's VNet-side address and routes and announces the address.
    InstanceActive {
        gateway: QualifiedName,
        instance: u8,
        term: u64,
        reason: TakeoverReason,
    },
    /// Issue 16: this worker's instance became the standby (`term`: the active instance's): the
    /// core dropped the gateway's sessions; the shell removes its VNet-side address and routes.
    InstanceStandby {
        gateway: QualifiedName,
        instance: u8,
        term: u64,
        reason: StepDownReason,
    },
}

/// Where the core sends a packet, by peer name: the routing decision, for inspection and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Vnet,
    Peer(String),
    Drop,
}

/// A peer's state, for status and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub name: String,
    /// Whether the peer has a tunnel (false after an S2S-2 idle teardown, and for a roaming
    /// client until its first handshake).
    pub up: bool,
    /// Whether the tunnel has a current session.
    pub established: bool,
    pub endpoint: Option<SocketAddr>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub last_handshake: Option<Instant>,
    /// The tunnel's state as the core decides it ([`state`](super::state)), its reason, and since when.
    pub state: TunnelState,
    pub reason: Option<DownReason>,
    pub since: Instant,
}
