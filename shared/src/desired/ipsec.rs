//! Issue 17: the IPsec part of the desired state and of the status report.
//!
//! A [`super::PeerDesired`] with [`super::PeerDesired::ipsec`] set is an IKEv2/ESP tunnel to a
//! site device: its `endpoint` is the device's IKE `host:port` (port 500 unless the site gives
//! another), its `public_key` and `preshared_key` are empty and unused, and `allowed_ips` and
//! `policy_selectors` mean what they mean for WireGuard peers (RouteBased: the CHILD SA has
//! `0.0.0.0/0`/`::/0` selectors and the forwarding table decides; PolicyBased: the selectors
//! are the CHILD SA's).
//!
//! The gateway's IPsec port is its `listen_port`: the one UDP port carries WireGuard, IKE (with
//! the RFC 3948 non-ESP marker when the device sends it) and ESP in UDP, demultiplexed by the
//! first bytes of each datagram.

use serde::{Deserialize, Serialize};

use super::Secret;
use crate::model::IpsecParameters;

/// An IPsec peer's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IpsecPeerDesired {
    /// The IKEv2 pre-shared key: the connection's shared key (GW-4/GW-5) as the user gave it.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub psk: Secret,
    /// The gateway's IKE identity (IDi/IDr): its public IPv4 address, or its FQDN.
    pub local_id: String,
    /// The identity the device must present; `None`: its address (`device_host`).
    #[serde(default)]
    pub remote_id: Option<String>,
    pub parameters: IpsecParameters,
}

/// The state of an IKE SA or a CHILD SA, as the worker decides it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SaState {
    /// No SA, and none being set up.
    #[default]
    None,
    /// The exchanges that set it up are under way.
    Connecting,
    Established,
    /// Being replaced by a new SA (CREATE_CHILD_SA under way).
    Rekeying,
    /// Being deleted.
    Deleting,
}

/// One CHILD SA (an ESP SA pair) as the worker runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChildSaStatus {
    /// The SPI on packets to the gateway, in hex (`c1a2b3d4`).
    pub inbound_spi: String,
    /// The SPI on packets to the device, in hex.
    pub outbound_spi: String,
    pub state: SaState,
    /// The ESP cipher, as a `swanctl.conf` keyword.
    pub cipher: String,
    /// `local === remote` selector pairs, as `10.1.0.0/16 === 192.168.0.0/24`.
    pub selectors: Vec<String>,
    /// Seconds since the Unix epoch when it was established.
    pub established_unix: u64,
    /// Seconds since the Unix epoch when it is due for a rekey.
    pub rekey_unix: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
}

/// The IPsec status of one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IpsecStatus {
    pub ike_state: SaState,
    /// The IKE SA's SPIs, `initiator_responder` in hex, when one exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ike_spis: Option<String>,
    /// The IKE proposal in use (`aes256gcm16-prfsha384-ecp384`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ike_proposal: Option<String>,
    /// Whether the gateway initiated the IKE SA in use.
    #[serde(default)]
    pub initiator: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ike_established_unix: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ike_rekey_unix: Option<u64>,
    #[serde(default)]
    pub children: Vec<ChildSaStatus>,
    /// IKE SA rekeys plus CHILD SA rekeys since the worker started.
    #[serde(default)]
    pub rekeys: u64,
    /// The last refusal or failure, as its RFC 7296 notify name (`NO_PROPOSAL_CHOSEN`,
    /// `AUTHENTICATION_FAILED`, `TS_UNACCEPTABLE`) or `TIMEOUT` / `DEAD_PEER`, sent or received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_unix: Option<u64>,
}

/// Issue 17 (Bad input): the IKE and ESP datagrams a gateway dropped, by kind, cumulative over
/// its worker's run and summed over its IPsec connections. Every field defaults to zero, so a
/// report of a worker that knows fewer kinds parses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct IpsecDrops {
    /// ESP datagrams too short or badly padded.
    pub esp_malformed: u64,
    /// ESP datagrams whose SPI names no CHILD SA of the gateway's (any more).
    pub esp_unknown_spi: u64,
    /// ESP datagrams whose integrity check failed (forged, corrupted, other keys).
    pub esp_integrity: u64,
    /// ESP datagrams replayed or left of the anti-replay window.
    pub esp_replay: u64,
    /// IKE messages that do not parse, are truncated or oversized, or lack the payloads their
    /// exchange needs.
    pub ike_malformed: u64,
    /// IKE messages of a connection whose SPIs name none of its IKE SAs.
    pub ike_unknown_spi: u64,
    /// IKE messages whose Encrypted payload failed its integrity check.
    pub ike_integrity: u64,
    /// IKE messages with an old message ID (a replayed request other than the last one, or a
    /// response to no outstanding request).
    pub ike_replayed: u64,
    /// IKE requests whose message ID is ahead of the next one expected.
    pub ike_out_of_window: u64,
    /// IKE messages of an exchange the IKE SA's state does not expect.
    pub ike_unexpected: u64,
    /// IKE messages that name no IPsec connection of the gateway (SPI or address).
    pub ike_unmatched: u64,
    /// IKE_SA_INITs answered with a cookie (RFC 7296 2.6) instead of a new IKE SA: the
    /// connection had too many half-open SAs.
    pub cookies_sent: u64,
    /// IKE_SA_INITs dropped because the connection's half-open SAs reached their maximum.
    pub half_open_full: u64,
}

impl IpsecDrops {
    /// Each kind's `/metrics` label and count, in a fixed order.
    pub fn kinds(&self) -> [(&'static str, u64); 13] {
        [
            ("esp_malformed", self.esp_malformed),
            ("esp_unknown_spi", self.esp_unknown_spi),
            ("esp_integrity", self.esp_integrity),
            ("esp_replay", self.esp_replay),
            ("ike_malformed", self.ike_malformed),
            ("ike_unknown_spi", self.ike_unknown_spi),
            ("ike_integrity", self.ike_integrity),
            ("ike_replayed", self.ike_replayed),
            ("ike_out_of_window", self.ike_out_of_window),
            ("ike_unexpected", self.ike_unexpected),
            ("ike_unmatched", self.ike_unmatched),
            ("cookies_sent", self.cookies_sent),
            ("half_open_full", self.half_open_full),
        ]
    }

    /// Whether nothing was dropped (then the report leaves the counts out).
    pub fn is_zero(&self) -> bool {
        self.kinds().iter().all(|(_, v)| *v == 0)
    }

    /// The datagrams dropped (what `bad_datagrams` counts of them): every kind but the
    /// IKE_SA_INITs answered with a cookie.
    pub fn dropped(&self) -> u64 {
        self.kinds()
            .iter()
            .filter(|(k, _)| *k != "cookies_sent")
            .map(|(_, v)| *v)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipsec_drops_of_an_older_report_parse_with_zeros_for_the_missing_kinds() {
        let d: IpsecDrops = serde_json::from_str(r#"{"esp_replay": 3}"#).expect("parses");
        assert_eq!(d.esp_replay, 3);
        assert_eq!(d.dropped(), 3);
        assert!(!d.is_zero());
        assert!(IpsecDrops::default().is_zero());
        let g: super::super::GatewayDrops =
            serde_json::from_str(r#"{"bad_datagrams": 1}"#).expect("parses");
        assert_eq!(g.ipsec, None);
    }
}
