//! Wire types: fixtures that must keep parsing, and the desired state built from a topology.

use std::collections::BTreeMap;

use isthmus_shared::desired::{
    DesiredStateMessage, GatewayInputs, PeerKind, Secret, StatusReportMessage, desired_state,
    gateway_desired,
};
use isthmus_shared::model::{QualifiedName, Topology};
use isthmus_shared::psk::{PeerIdentity, derive_preshared_key};
use isthmus_shared::validate::validate;

use crate::common::*;

const DESIRED_V1: &str = include_str!("../fixtures/desired_v1.json");
const STATUS_V1: &str = include_str!("../fixtures/status_v1.json");
const TOPOLOGY_V1: &str = include_str!("../fixtures/topology_v1.json");

fn inputs(n: u8) -> GatewayInputs {
    GatewayInputs {
        private_key: Secret::new(wgkey(n)),
        listen_port: 51820,
    }
}

/// hub (acme) ⟷ edge (globex), a branch site on hub, a laptop on hub's point-to-site.
fn sample() -> Topology {
    let b = hub()
        .edit_gateway("hub-gw", |g| {
            g.public_key = Some(wgkey(1));
            g.public_endpoint = Some("198.51.100.1:51820".parse().unwrap());
        })
        .site("branch", "vpn.branch.example", &["192.168.1.0/24"])
        .edit_site("branch", |s| s.device_public_key = Some(wgkey(3)))
        .s2s("hub-branch", "hub-gw", "branch")
        .shared_key("hub-branch", "BranchKey1")
        .v2v("to-edge", "hub-gw", Some("globex"), "edge-gw")
        .shared_key("to-edge", "PairKey9")
        .p2s("hub-gw", &["172.16.0.0/24"])
        .p2s_client("hub-gw", "laptop", &wgkey(4), "172.16.0.2");
    build(
        spoke(b.tenant("globex"), "edge", "10.9", "eastus")
            .edit_gateway("edge-gw", |g| {
                g.public_key = Some(wgkey(2));
                g.public_endpoint = Some("198.51.100.2:51820".parse().unwrap());
            })
            .v2v("to-acme", "edge-gw", Some("acme"), "hub-gw")
            .shared_key("to-acme", "PairKey9"),
    )
}

#[test]
fn desired_state_fixture_keeps_parsing() {
    let DesiredStateMessage::V1(d) = serde_json::from_str(DESIRED_V1).unwrap();
    assert_eq!(d.version, 7);
    assert_eq!(d.gateways[0].peers.len(), 3);
    // Unknown fields are refused; unknown formats too.
    let extra = DESIRED_V1.replacen("\"version\": 7", "\"version\": 7, \"surprise\": 1", 1);
    assert!(serde_json::from_str::<DesiredStateMessage>(&extra).is_err());
    let v2 = DESIRED_V1.replace("isthmus.desired/v1", "isthmus.desired/v2");
    assert!(serde_json::from_str::<DesiredStateMessage>(&v2).is_err());
}

#[test]
fn status_report_fixture_keeps_parsing() {
    let StatusReportMessage::V1(s) = serde_json::from_str(STATUS_V1).unwrap();
    assert_eq!(
        s.gateways[0].connections[0].last_handshake_unix,
        Some(1_764_000_000)
    );
    assert_eq!(s.gateways[0].connections[1].last_handshake_unix, None);
}

#[test]
fn topology_fixture_keeps_parsing_and_is_valid() {
    let t = Topology::from_json(TOPOLOGY_V1).unwrap();
    assert_eq!(t, sample());
    assert!(validate(&t).is_empty());
}

#[test]
fn the_desired_state_fixture_is_what_the_sample_topology_produces() {
    let t = sample();
    let mut i = BTreeMap::new();
    i.insert(QualifiedName::new("acme", "hub-gw"), inputs(11));
    let (d, skipped) = desired_state(&t, 7, &i);
    assert!(skipped.is_empty(), "{skipped:?}");
    let DesiredStateMessage::V1(fixture) = serde_json::from_str(DESIRED_V1).unwrap();
    assert_eq!(
        d,
        fixture,
        "regenerate with:\n{}",
        serde_json::to_string_pretty(&DesiredStateMessage::V1(d.clone())).unwrap()
    );
}

#[test]
fn conn_2_both_halves_derive_the_same_preshared_key() {
    let t = sample();
    let (hub, _) = gateway_desired(&t, &QualifiedName::new("acme", "hub-gw"), &inputs(11)).unwrap();
    let (edge, _) =
        gateway_desired(&t, &QualifiedName::new("globex", "edge-gw"), &inputs(12)).unwrap();
    let psk = |d: &isthmus_shared::desired::GatewayDesired| {
        d.peers
            .iter()
            .find(|p| matches!(p.kind, PeerKind::VnetToVnet { .. }))
            .and_then(|p| p.preshared_key.clone())
            .unwrap()
    };
    assert_eq!(psk(&hub), psk(&edge));
    let expected = derive_preshared_key(
        "PairKey9",
        &PeerIdentity::gateway(&QualifiedName::new("acme", "hub-gw")),
        &PeerIdentity::gateway(&QualifiedName::new("globex", "edge-gw")),
    )
    .unwrap();
    assert_eq!(psk(&hub).expose(), expected.to_base64());
    // The site device's exported config carries the key its gateway uses.
    let device =
        isthmus_shared::device::site_device_config(&t, &QualifiedName::new("acme", "hub-branch"))
            .unwrap();
    let s2s = hub.peers.iter().find(|p| p.name == "hub-branch").unwrap();
    assert_eq!(device.peers[0].preshared_key, s2s.preshared_key);
}

#[test]
fn peers_without_keys_are_reported_as_pending() {
    let t = build(
        hub()
            .site("branch", "203.0.113.1", &["192.168.1.0/24"])
            .s2s("c", "hub-gw", "branch"),
    );
    let (d, skipped) =
        gateway_desired(&t, &QualifiedName::new("acme", "hub-gw"), &inputs(1)).unwrap();
    assert!(d.peers.is_empty());
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].reason.contains("no device public key"));
}
