//! Wire types: fixtures that must keep parsing, and the desired state built from a topology.

use std::collections::BTreeMap;

use isthmus_shared::desired::{
    DesiredStateMessage, GatewayInputs, PeerKind, RegionPairBytes, Secret, StatusReportMessage,
    desired_state, gateway_desired,
};
use isthmus_shared::model::{QualifiedName, Topology, region_pair};
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

/// The peers of `gateway` in the desired state of topology `t`, by name.
fn peers_of(
    t: &Topology,
    tenant: &str,
    gateway: &str,
) -> Vec<isthmus_shared::desired::PeerDesired> {
    gateway_desired(t, &QualifiedName::new(tenant, gateway), &inputs(20))
        .unwrap()
        .0
        .peers
}

#[test]
fn lim_6_vnet_to_vnet_peers_carry_their_region_pair_also_cross_tenant() {
    let t = sample();
    // acme/hub is in westeurope, globex/edge in eastus; both halves name the same pair.
    let expected = Some(region_pair("westeurope", "eastus"));
    for (tenant, gw, conn) in [
        ("acme", "hub-gw", "to-edge"),
        ("globex", "edge-gw", "to-acme"),
    ] {
        let peers = peers_of(&t, tenant, gw);
        let p = peers.iter().find(|p| p.name == conn).unwrap();
        assert!(matches!(p.kind, PeerKind::VnetToVnet { .. }));
        assert_eq!(p.region_pair, expected, "{tenant}/{gw} peer {conn}");
        assert!(p.region_pair.as_ref().unwrap().is_cross_region());
    }
    // Site-to-site and point-to-site peers are not metered by region.
    let hub = peers_of(&t, "acme", "hub-gw");
    for name in ["hub-branch", "laptop"] {
        let p = hub.iter().find(|p| p.name == name).unwrap();
        assert_eq!(p.region_pair, None, "peer {name}");
    }
}

#[test]
fn lim_6_same_region_vnet_to_vnet_peer_carries_a_same_region_pair() {
    let t = build(
        spoke(hub(), "spoke", "10.1", "westeurope")
            .edit_gateway("hub-gw", |g| g.public_key = Some(wgkey(1)))
            .edit_gateway("spoke-gw", |g| g.public_key = Some(wgkey(2)))
            .v2v_pair("hub-spoke", "hub-gw", "spoke-hub", "spoke-gw")
            .shared_key("hub-spoke", "SameKey1")
            .shared_key("spoke-hub", "SameKey1"),
    );
    let peers = peers_of(&t, "acme", "hub-gw");
    let pair = peers[0].region_pair.clone().unwrap();
    assert_eq!(pair, region_pair("westeurope", "westeurope"));
    assert!(!pair.is_cross_region());
}

#[test]
fn lim_6_messages_without_region_fields_still_parse() {
    // A desired state written before LIM-6: the same fixture without `region_pair`.
    let mut v: serde_json::Value = serde_json::from_str(DESIRED_V1).unwrap();
    let peer = &mut v["gateways"][0]["peers"][1];
    assert_eq!(peer["name"], "to-edge");
    assert!(
        peer.as_object_mut()
            .unwrap()
            .remove("region_pair")
            .is_some()
    );
    let DesiredStateMessage::V1(old) = serde_json::from_value(v).unwrap();
    assert_eq!(old.gateways[0].peers[1].region_pair, None);
    // The current fixture carries it, under the same format tag.
    let DesiredStateMessage::V1(new) = serde_json::from_str(DESIRED_V1).unwrap();
    assert_eq!(
        new.gateways[0].peers[1].region_pair,
        Some(region_pair("eastus", "westeurope"))
    );
    // Peers without a pair serialise exactly as before (no `region_pair` key).
    let json = serde_json::to_string(&new.gateways[0].peers[0]).unwrap();
    assert!(!json.contains("region_pair"), "{json}");

    // The status fixture predates `region_pairs`: it parses with none.
    let StatusReportMessage::V1(s) = serde_json::from_str(STATUS_V1).unwrap();
    assert!(s.region_pairs.is_empty());
    // A report with counters round-trips; a misspelt field is refused.
    let with = STATUS_V1.replacen(
        "\"version\": 7,",
        "\"version\": 7, \"region_pairs\": [{\"a\": \"eastus\", \"b\": \"westeurope\", \"rx_bytes\": 10, \"tx_bytes\": 20}],",
        1,
    );
    let StatusReportMessage::V1(s) = serde_json::from_str(&with).unwrap();
    assert_eq!(
        s.region_pairs,
        vec![RegionPairBytes {
            a: "eastus".into(),
            b: "westeurope".into(),
            rx_bytes: 10,
            tx_bytes: 20
        }]
    );
    assert!(s.region_pairs[0].is_billable());
    assert_eq!(
        s.region_pairs[0].pair(),
        region_pair("westeurope", "eastus")
    );
    let again: StatusReportMessage =
        serde_json::from_str(&serde_json::to_string(&StatusReportMessage::V1(s.clone())).unwrap())
            .unwrap();
    assert_eq!(again, StatusReportMessage::V1(s));
    let bad = with.replace("rx_bytes\": 10", "rx_byte\": 10");
    assert!(serde_json::from_str::<StatusReportMessage>(&bad).is_err());
}
