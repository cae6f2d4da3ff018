//! The log lines of the core's events: one per tunnel change and per role change of an
//! instance.

use std::net::SocketAddr;

use crate::core::Event;
use crate::core::failover::{StepDownReason, TakeoverReason};

fn takeover_reason(r: TakeoverReason) -> &'static str {
    match r {
        TakeoverReason::Silence => "the active partner was silent for the detection time",
        TakeoverReason::Handover => "the active partner handed over (drain)",
        TakeoverReason::Server => "the server designated it",
    }
}

fn step_down_reason(r: StepDownReason) -> &'static str {
    match r {
        StepDownReason::HigherTerm => "the partner is active under a higher term",
        StepDownReason::Handover => "the partner took over (drain)",
        StepDownReason::Server => "the server designated the partner",
    }
}

/// Logs one event of the core: one line per tunnel change, naming tenant, gateway, connection
/// and the peer's endpoint; handshake failures (already rate-limited by the core) as WARN;
/// one line per role change of an instance, naming tenant, gateway, instance, term and reason.
pub(super) fn log_event(e: Event) {
    let ep = |e: Option<SocketAddr>| e.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    match e {
        Event::TunnelIdle { gateway, peer } => {
            tracing::info!(tenant = %gateway.tenant, gateway = %gateway.name, connection = %peer, "tunnel idle: torn down until traffic flows (S2S-2)");
        }
        Event::TunnelRestarted { gateway, peer } => {
            tracing::info!(tenant = %gateway.tenant, gateway = %gateway.name, connection = %peer, "tunnel coming back up: traffic flows");
        }
        Event::TunnelUp {
            gateway,
            peer,
            endpoint,
        } => {
            tracing::info!(tenant = %gateway.tenant, gateway = %gateway.name, connection = %peer, endpoint = %ep(endpoint), "tunnel up");
        }
        Event::TunnelDown {
            gateway,
            peer,
            endpoint,
            reason,
        } => {
            tracing::info!(tenant = %gateway.tenant, gateway = %gateway.name, connection = %peer, endpoint = %ep(endpoint), reason = reason.as_str(), "tunnel down");
        }
        Event::HandshakeFailing {
            gateway,
            peer,
            endpoint,
            reason,
        } => {
            let hint = match reason {
                isthmus_shared::desired::DownReason::KeyMismatch => {
                    "the device's handshakes fail their checks: its keys and preshared key (WireGuard), or its pre-shared key and identities (IPsec: AUTHENTICATION_FAILED), do not match this connection's configuration"
                }
                _ => {
                    "handshakes go unanswered: check that the device is running, reachable at this endpoint, and configured with this gateway's public key (WireGuard) or with this gateway's address and port as its IKE peer (IPsec)"
                }
            };
            tracing::warn!(tenant = %gateway.tenant, gateway = %gateway.name, connection = %peer, endpoint = %ep(endpoint), reason = reason.as_str(), "handshake failing: {hint}");
        }
        Event::InstanceActive {
            gateway,
            instance,
            term,
            reason,
        } => {
            tracing::info!(tenant = %gateway.tenant, gateway = %gateway.name, instance, term, reason = takeover_reason(reason), "instance active: handshakes sent to every known peer, taking the VNet-side address and routes");
        }
        Event::InstanceStandby {
            gateway,
            instance,
            term,
            reason,
        } => {
            tracing::info!(tenant = %gateway.tenant, gateway = %gateway.name, instance, term, reason = step_down_reason(reason), "instance standby: sessions dropped, releasing the VNet-side address and routes");
        }
    }
}
