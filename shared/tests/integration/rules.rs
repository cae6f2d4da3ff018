//! One test (at least) per rule id; every test name contains the id it covers.

use std::net::SocketAddr;

use isthmus_shared::builder::TopologyBuilder;
use isthmus_shared::model::{
    Change, GatewayType, QualifiedName, RootCertificate, Sku, SkuGeneration, SkuTable, region_pair,
};
use isthmus_shared::routes::{NextHop, Outcome, next_hop};
use isthmus_shared::rules::RuleId;
use isthmus_shared::validate::{Severity, has_errors, validate, validate_change, validate_with};

use crate::common::*;

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

pub fn branch(b: TopologyBuilder) -> TopologyBuilder {
    b.site("branch", "203.0.113.1", &["192.168.1.0/24"])
        .s2s("hub-branch", "hub-gw", "branch")
}

// ---- CONN ---------------------------------------------------------------------------------

#[test]
fn conn_1_cross_region_vnet_to_vnet_is_accepted() {
    let t = build(
        spoke(hub(), "tokyo", "10.1", "japaneast")
            .v2v_pair("hub-tokyo", "hub-gw", "tokyo-hub", "tokyo-gw")
            .shared_key("hub-tokyo", "abc")
            .shared_key("tokyo-hub", "abc"),
    );
    assert_valid(&t);
}

fn two_tenants(key_a: &str, key_b: &str) -> TopologyBuilder {
    let b = hub()
        .v2v("to-globex", "hub-gw", Some("globex"), "edge-gw")
        .shared_key("to-globex", key_a);
    spoke(b.tenant("globex"), "edge", "10.9", "eastus")
        .v2v("to-acme", "edge-gw", Some("acme"), "hub-gw")
        .shared_key("to-acme", key_b)
}

#[test]
fn conn_2_cross_tenant_halves_with_the_same_key_are_accepted() {
    assert_valid(&build(two_tenants("Same1", "Same1")));
}

#[test]
fn conn_2_gw_4_cross_tenant_halves_with_different_keys_are_a_key_mismatch_warning() {
    let t = build(two_tenants("KeyA", "KeyB"));
    assert!(!has_errors(&validate(&t)), "each owner sets its own half");
    let v = assert_warning(&t, RuleId::Conn2);
    let paths: Vec<&str> = v.iter().map(|x| x.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "tenants[acme].connections[to-globex].shared_key",
            "tenants[globex].connections[to-acme].shared_key"
        ]
    );
    for x in &v {
        assert!(x.message.starts_with("key mismatch"), "{}", x.message);
        assert_eq!(x.params["status"], "key mismatch");
        assert!(x.related.is_empty(), "{:?}", x.related);
        assert!(!x.message.contains("KeyA") && !x.message.contains("KeyB"));
    }
    // Each owner hears about its own half only: not the other half's name.
    assert!(!v[0].message.contains("to-acme"), "{}", v[0].message);
    assert!(!v[1].message.contains("to-globex"), "{}", v[1].message);
}

#[test]
fn conn_2_a_missing_other_half_is_a_warning() {
    let t = build(
        hub()
            .v2v("to-globex", "hub-gw", Some("globex"), "edge-gw")
            .tenant("globex")
            .vnet("edge", "eastus", &["10.9.0.0/16"])
            .gateway_subnet("edge", "10.9.255.0/27")
            .gateway("edge-gw", "edge", GatewayType::RouteBased, Sku::VpnGw1),
    );
    let v = assert_warning(&t, RuleId::Conn2);
    assert!(v[0].message.contains("other half"));
    assert!(!has_errors(&validate(&t)));
}

#[test]
fn conn_3_route_based_gateway_connects_several_sites_and_vnets() {
    let t = build(
        spoke(hub(), "spoke", "10.1", "westeurope")
            .v2v_pair("a", "hub-gw", "b", "spoke-gw")
            .site("s1", "203.0.113.1", &["192.168.1.0/24"])
            .site("s2", "203.0.113.2", &["192.168.2.0/24"])
            .s2s("to-s1", "hub-gw", "s1")
            .s2s("to-s2", "hub-gw", "s2"),
    );
    assert_valid(&t);
}

#[test]
fn conn_3_gw_6_policy_based_gateway_with_a_second_site_is_rejected() {
    let t = build(
        hub_with(GatewayType::PolicyBased, Sku::Basic)
            .site("s1", "203.0.113.1", &["192.168.1.0/24"])
            .site("s2", "203.0.113.2", &["192.168.2.0/24"])
            .s2s("to-s1", "hub-gw", "s1")
            .s2s("to-s2", "hub-gw", "s2"),
    );
    let v = assert_error(&t, RuleId::Conn3);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].path, "tenants[acme].gateways[hub-gw].gateway_type");
    assert!(v[0].message.contains("RouteBased"));
}

#[test]
fn conn_4_site_device_needs_a_public_ipv4_address() {
    let v6 = build(
        hub()
            .site("b", "2001:db8::1", &["192.168.1.0/24"])
            .s2s("c", "hub-gw", "b"),
    );
    let v = assert_error(&v6, RuleId::Conn4);
    assert!(v[0].message.contains("IPv6"));
    let unspecified = build(
        hub()
            .site("b", "0.0.0.0", &["192.168.1.0/24"])
            .s2s("c", "hub-gw", "b"),
    );
    assert_error(&unspecified, RuleId::Conn4);
    let private = build(
        hub()
            .site("b", "192.168.50.1", &["192.168.1.0/24"])
            .s2s("c", "hub-gw", "b"),
    );
    assert_warning(&private, RuleId::Conn4);
    let name = build(
        hub()
            .site("b", "vpn.branch.example", &["192.168.1.0/24"])
            .s2s("c", "hub-gw", "b"),
    );
    assert_valid(&name);
}

#[test]
fn conn_4_point_to_site_needs_no_device() {
    let t = build(hub().p2s("hub-gw", &["172.16.0.0/24"]).p2s_client(
        "hub-gw",
        "laptop",
        &wgkey(1),
        "172.16.0.2",
    ));
    assert_valid(&t);
}

#[test]
fn conn_5_s2s_and_p2s_coexist_only_on_route_based() {
    let ok = build(branch(hub()).p2s("hub-gw", &["172.16.0.0/24"]));
    assert_valid(&ok);
    let bad = build(
        branch(hub_with(GatewayType::PolicyBased, Sku::Basic)).p2s("hub-gw", &["172.16.0.0/24"]),
    );
    assert_error(&bad, RuleId::Conn5);
    assert_error(&bad, RuleId::P2s1);
}

// ---- S2S ----------------------------------------------------------------------------------

#[test]
fn s2s_1_device_configuration_names_every_parameter() {
    let t = build(
        branch(hub())
            .shared_key("hub-branch", "abc123")
            .edit_gateway("hub-gw", |g| {
                g.public_key = Some(wgkey(7));
                g.public_endpoint = Some("198.51.100.10:51820".parse().unwrap());
            }),
    );
    let cfg =
        isthmus_shared::device::site_device_config(&t, &QualifiedName::new("acme", "hub-branch"))
            .unwrap();
    let wg = cfg.to_wg_quick();
    for needle in [
        "PrivateKey = <the device's own private key>",
        "ListenPort = 51820",
        &format!("PublicKey = {}", wgkey(7)),
        "PresharedKey = ",
        "Endpoint = 198.51.100.10:51820",
        "AllowedIPs = 10.0.0.0/16",
        "PersistentKeepalive = 25",
    ] {
        assert!(wg.contains(needle), "missing {needle:?} in\n{wg}");
    }
    // The device must not route its own prefixes back into the tunnel.
    assert!(
        !cfg.peers[0]
            .allowed_ips
            .contains(&"192.168.1.0/24".parse().unwrap())
    );
}

#[test]
fn s2s_2_policy_based_tunnels_idle_out_after_300_seconds_route_based_never() {
    assert_eq!(GatewayType::PolicyBased.idle_timeout_secs(), Some(300));
    assert_eq!(GatewayType::RouteBased.idle_timeout_secs(), None);
    assert_eq!(
        isthmus_shared::model::POLICY_BASED_IDLE_TIMEOUT_SECS,
        5 * 60
    );
    let t = build(
        branch(hub_with(GatewayType::PolicyBased, Sku::Basic))
            .shared_key("hub-branch", "abc")
            .edit_site("branch", |s| s.device_public_key = Some(wgkey(3))),
    );
    let (d, _) = isthmus_shared::desired::gateway_desired(
        &t,
        &QualifiedName::new("acme", "hub-gw"),
        &isthmus_shared::desired::GatewayInputs {
            private_key: isthmus_shared::desired::Secret::new(wgkey(1)),
            listen_port: 51820,
        },
    )
    .unwrap();
    assert_eq!(d.peers[0].idle_timeout_secs, Some(300));
    assert_eq!(d.peers[0].persistent_keepalive_secs, None);
}

#[test]
fn s2s_3_a_software_vpn_on_a_server_is_a_valid_site_device() {
    let t = build(
        hub()
            .site("rras", "rras01.corp.example", &["192.168.10.0/24"])
            .edit_site("rras", |s| {
                s.device_port = Some(4500);
                s.device_public_key = Some(wgkey(5));
            })
            .s2s("to-rras", "hub-gw", "rras"),
    );
    assert_valid(&t);
    assert_eq!(t.sites[0].endpoint(), "rras01.corp.example:4500");
}

// ---- P2S ----------------------------------------------------------------------------------

#[test]
fn p2s_1_point_to_site_on_a_policy_based_gateway_is_rejected() {
    let t = build(hub_with(GatewayType::PolicyBased, Sku::Basic).p2s("hub-gw", &["172.16.0.0/24"]));
    let v = assert_error(&t, RuleId::P2s1);
    assert_eq!(v[0].path, "tenants[acme].point_to_site[hub-gw].gateway");
}

#[test]
fn p2s_2_client_limit_follows_the_sku_table() {
    assert_eq!(Sku::Basic.max_p2s_clients(), 128);
    assert_eq!(Sku::Standard.max_p2s_clients(), 128);
    assert_eq!(Sku::HighPerformance.max_p2s_clients(), 128);
    assert_eq!(Sku::VpnGw1.max_p2s_clients(), 250);
    assert_eq!(Sku::VpnGw2.max_p2s_clients(), 500);
    assert_eq!(Sku::VpnGw3.max_p2s_clients(), 1_000);
    assert_eq!(Sku::VpnGw4.max_p2s_clients(), 5_000);
    assert_eq!(Sku::VpnGw5.max_p2s_clients(), 10_000);
    let mut b = hub_with(GatewayType::RouteBased, Sku::Standard).p2s("hub-gw", &["172.16.0.0/23"]);
    for i in 0..129u32 {
        let key = base64_of(i);
        b = b.p2s_client(
            "hub-gw",
            &format!("c{i}"),
            &key,
            &format!("172.16.{}.{}", i / 250, i % 250 + 1),
        );
    }
    let v = assert_error(&build(b), RuleId::P2s2);
    assert!(
        v[0].message
            .contains("129 point-to-site clients but SKU Standard allows 128"),
        "{}",
        v[0].message
    );
}

fn base64_of(i: u32) -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&i.to_be_bytes());
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn p2s_3_twenty_root_certificates_are_fine_the_21st_is_rejected() {
    let with = |n: usize| {
        build(
            hub()
                .p2s("hub-gw", &["172.16.0.0/24"])
                .edit_p2s("hub-gw", |p| {
                    p.root_certificates = (0..n)
                        .map(|i| RootCertificate {
                            name: format!("r{i}"),
                            data: "x".into(),
                        })
                        .collect();
                }),
        )
    };
    assert_valid(&with(20));
    assert_error(&with(21), RuleId::P2s3);
}

#[test]
fn p2s_3_a_client_with_a_revoked_certificate_gets_no_peer() {
    let t = build(
        hub()
            .p2s("hub-gw", &["172.16.0.0/24"])
            .p2s_client("hub-gw", "lost-laptop", &wgkey(4), "172.16.0.9")
            .edit_p2s("hub-gw", |p| {
                p.clients[0].certificate_thumbprint = Some("ABCD".into());
                p.revoked_thumbprints.push("abcd".into());
            }),
    );
    assert_warning(&t, RuleId::P2s3);
    let routes =
        isthmus_shared::routes::gateway_routes(&t, &QualifiedName::new("acme", "hub-gw")).unwrap();
    assert!(
        !routes
            .routes
            .iter()
            .any(|r| matches!(r.next_hop, NextHop::P2sClient { .. }))
    );
}

#[test]
fn p2s_4_the_gateway_may_listen_on_a_firewall_friendly_port() {
    let t = build(hub().edit_gateway("hub-gw", |g| {
        g.public_endpoint = Some("198.51.100.1:443".parse().unwrap())
    }));
    assert_valid(&t);
}

#[test]
fn p2s_5_clients_keep_alive_and_need_no_ddns() {
    let t = build(
        hub()
            .edit_gateway("hub-gw", |g| {
                g.public_endpoint = Some("198.51.100.1:51820".parse().unwrap());
                g.public_key = Some(wgkey(8));
            })
            .p2s("hub-gw", &["172.16.0.0/24"])
            .p2s_client("hub-gw", "laptop", &wgkey(1), "172.16.0.2"),
    );
    let cfg = isthmus_shared::device::p2s_client_config(
        &t,
        &QualifiedName::new("acme", "hub-gw"),
        "laptop",
    )
    .unwrap();
    assert_eq!(
        cfg.listen_port, None,
        "a roaming client needs no fixed port or DDNS name"
    );
    assert_eq!(cfg.peers[0].persistent_keepalive_secs, Some(25));
    assert_eq!(cfg.peers[0].endpoint.as_deref(), Some("198.51.100.1:51820"));
}

#[test]
fn p2s_6_disjoint_multi_vnet_client_is_accepted() {
    let t = build(
        spoke(hub(), "other", "10.1", "eastus")
            .p2s("hub-gw", &["172.16.0.0/24"])
            .edit_p2s("hub-gw", |p| p.additional_vnets.push("other".into()))
            .p2s_client("hub-gw", "laptop", &wgkey(1), "172.16.0.2"),
    );
    assert_valid(&t);
    let cfg = isthmus_shared::device::p2s_client_config(
        &t,
        &QualifiedName::new("acme", "hub-gw"),
        "laptop",
    )
    .unwrap();
    assert_eq!(cfg.peers.len(), 2);
    assert_eq!(
        cfg.peers[1].allowed_ips,
        vec!["10.1.0.0/16".parse().unwrap()]
    );
}

#[test]
fn p2s_6_vnets_of_a_multi_vnet_client_must_not_overlap_each_other() {
    let t = build(
        hub()
            .vnet("other", "eastus", &["10.0.128.0/17"])
            .gateway_subnet("other", "10.0.255.0/27")
            .gateway("other-gw", "other", GatewayType::RouteBased, Sku::VpnGw1)
            .p2s("hub-gw", &["172.16.0.0/24"])
            .edit_p2s("hub-gw", |p| p.additional_vnets.push("other".into())),
    );
    let v = assert_error(&t, RuleId::P2s6);
    assert!(
        v.iter()
            .any(|x| x.message.contains("must not overlap each other")),
        "{}",
        pretty(&v)
    );
}

#[test]
fn p2s_6_additional_vnet_needs_a_gateway() {
    let t = build(
        hub()
            .vnet("bare", "eastus", &["10.5.0.0/16"])
            .p2s("hub-gw", &["172.16.0.0/24"])
            .edit_p2s("hub-gw", |p| p.additional_vnets.push("bare".into())),
    );
    let v = assert_error(&t, RuleId::P2s6);
    assert!(v[0].message.contains("has no gateway"));
}

#[test]
fn p2s_7_bandwidth_is_a_cap_not_a_promise() {
    // The product states a cap per SKU; nothing promises a constant rate.
    let t = build(hub());
    let (d, _) = isthmus_shared::desired::gateway_desired(
        &t,
        &QualifiedName::new("acme", "hub-gw"),
        &isthmus_shared::desired::GatewayInputs {
            private_key: isthmus_shared::desired::Secret::new(wgkey(1)),
            listen_port: 51820,
        },
    )
    .unwrap();
    assert_eq!(d.bandwidth_limit_bps, 650_000_000);
    assert!(RuleId::P2s7.description().contains("cap, not a promise"));
}

#[test]
fn p2s_8_a_client_reaches_sites_connected_to_its_gateway() {
    let t = build(branch(hub()).p2s("hub-gw", &["172.16.0.0/24"]).p2s_client(
        "hub-gw",
        "laptop",
        &wgkey(1),
        "172.16.0.2",
    ));
    let path = next_hop(&t, ip("172.16.0.2"), ip("192.168.1.20")).unwrap();
    assert_eq!(path.hops[0].rule, RuleId::P2s8);
    assert!(
        matches!(path.outcome, Outcome::Delivered { .. }),
        "{path:?}"
    );
    assert!(matches!(path.hops[1].next_hop, NextHop::SiteToSite { .. }));
    // And back: the site reaches the client.
    let back = next_hop(&t, ip("192.168.1.20"), ip("172.16.0.2")).unwrap();
    assert!(
        matches!(
            back.hops.last().unwrap().next_hop,
            NextHop::P2sClient { .. }
        ),
        "{back:?}"
    );
    let cfg = isthmus_shared::device::p2s_client_config(
        &t,
        &QualifiedName::new("acme", "hub-gw"),
        "laptop",
    )
    .unwrap();
    assert!(
        cfg.peers[0]
            .allowed_ips
            .contains(&"192.168.1.0/24".parse().unwrap())
    );
}

// ---- GW -----------------------------------------------------------------------------------

#[test]
fn gw_1_policy_based_gateway_forwards_by_traffic_selectors() {
    let t = build(
        hub_with(GatewayType::PolicyBased, Sku::Basic)
            .site("branch", "203.0.113.1", &["192.168.0.0/16"])
            .s2s("c", "hub-gw", "branch")
            .selector("c", "10.0.1.0/24", "192.168.1.0/24"),
    );
    assert_valid(&t);
    let ok = next_hop(&t, ip("10.0.1.5"), ip("192.168.1.9")).unwrap();
    assert_eq!(ok.hops.last().unwrap().rule, RuleId::Gw1);
    assert!(matches!(ok.outcome, Outcome::Delivered { .. }));
    // Not covered by a selector: the packet is dropped with a reason.
    let no = next_hop(&t, ip("10.0.2.5"), ip("192.168.1.9")).unwrap();
    assert!(matches!(no.outcome, Outcome::Dropped { .. }), "{no:?}");
    // A selector outside the site is rejected.
    let bad = build(
        hub_with(GatewayType::PolicyBased, Sku::Basic)
            .site("branch", "203.0.113.1", &["192.168.0.0/16"])
            .s2s("c", "hub-gw", "branch")
            .selector("c", "10.0.1.0/24", "172.20.0.0/24"),
    );
    let v = assert_error(&bad, RuleId::Gw1);
    assert_eq!(
        v[0].path,
        "tenants[acme].connections[c].traffic_selectors[0].remote"
    );
}

#[test]
fn gw_2_route_based_gateways_use_routes_not_selectors() {
    let bad = build(branch(hub()).selector("hub-branch", "10.0.0.0/16", "192.168.1.0/24"));
    assert_error(&bad, RuleId::Gw2);
    let t = build(branch(hub()));
    let r =
        isthmus_shared::routes::gateway_routes(&t, &QualifiedName::new("acme", "hub-gw")).unwrap();
    assert!(r.selectors.is_empty());
    let route = r.lookup(ip("192.168.1.1")).unwrap();
    assert!(matches!(route.next_hop, NextHop::SiteToSite { .. }));
}

#[test]
fn gw_3_public_endpoints_are_unique_per_gateway() {
    let e: SocketAddr = "198.51.100.1:51820".parse().unwrap();
    let t = build(
        spoke(hub(), "spoke", "10.1", "westeurope")
            .edit_gateway("hub-gw", |g| g.public_endpoint = Some(e))
            .edit_gateway("spoke-gw", |g| g.public_endpoint = Some(e)),
    );
    let v = assert_error(&t, RuleId::Gw3);
    assert_eq!(v.len(), 2);
    assert_eq!(
        v[0].related,
        vec!["tenants[acme].gateways[spoke-gw]".to_owned()]
    );
    // Before creation there is no endpoint, and that is fine.
    assert_valid(&build(hub()));
}

#[test]
fn gw_4_shared_keys_are_generated_unique_per_connection() {
    let mut rng = crate::psk::TestRng(42);
    let a = isthmus_shared::psk::generate_shared_key(&mut rng);
    let b = isthmus_shared::psk::generate_shared_key(&mut rng);
    assert_ne!(a, b);
    assert!(isthmus_shared::psk::validate_shared_key(&a).is_ok());
}

#[test]
fn gw_4_same_tenant_halves_with_different_keys_are_rejected() {
    let t = build(
        spoke(hub(), "spoke", "10.1", "westeurope")
            .v2v_pair("a", "hub-gw", "b", "spoke-gw")
            .shared_key("a", "one")
            .shared_key("b", "two"),
    );
    assert_error(&t, RuleId::Gw4);
    // "Set shared key" on one half, then the other: valid again.
    let fixed = validate_change(
        &t,
        &Change::UpsertConnection({
            let mut c = t.connection("acme", "b").unwrap().clone();
            c.shared_key = Some(isthmus_shared::model::SharedKey::new("one"));
            c
        }),
    );
    assert!(fixed.is_empty(), "{}", pretty(&fixed));
}

#[test]
fn gw_5_a_129_character_key_is_rejected() {
    let t = build(branch(hub()).shared_key("hub-branch", &"k".repeat(129)));
    let v = assert_error(&t, RuleId::Gw5);
    assert_eq!(
        v[0].path,
        "tenants[acme].connections[hub-branch].shared_key"
    );
    assert_valid(&build(
        branch(hub()).shared_key("hub-branch", &"k".repeat(128)),
    ));
}

#[test]
fn gw_5_a_key_with_a_dash_or_non_ascii_is_rejected() {
    assert_error(
        &build(branch(hub()).shared_key("hub-branch", "abc-def")),
        RuleId::Gw5,
    );
    assert_error(
        &build(branch(hub()).shared_key("hub-branch", "鍵123")),
        RuleId::Gw5,
    );
    assert_error(
        &build(branch(hub()).shared_key("hub-branch", "")),
        RuleId::Gw5,
    );
}

#[test]
fn gw_6_vnet_to_vnet_with_a_policy_based_end_is_rejected() {
    let t = build(
        spoke(hub(), "spoke", "10.1", "westeurope")
            .edit_gateway("spoke-gw", |g| g.gateway_type = GatewayType::PolicyBased)
            .v2v_pair("a", "hub-gw", "b", "spoke-gw"),
    );
    let v = assert_error(&t, RuleId::Gw6);
    // Both halves are told, each naming the PolicyBased end.
    assert_eq!(v.len(), 2, "{}", pretty(&v));
    assert!(v.iter().all(|x| x.message.contains("acme/spoke-gw")));
}

#[test]
fn gw_7_gateway_subnet_smaller_than_29_is_rejected() {
    for (len, bad) in [
        (27, false),
        (28, false),
        (29, false),
        (30, true),
        (32, true),
    ] {
        let t = build(
            TopologyBuilder::new("acme")
                .vnet("hub", "westeurope", &["10.0.0.0/16"])
                .gateway_subnet("hub", &format!("10.0.255.0/{len}"))
                .gateway("gw", "hub", GatewayType::RouteBased, Sku::VpnGw1),
        );
        if bad {
            let v = assert_error(&t, RuleId::Gw7);
            assert_eq!(
                v[0].path,
                "tenants[acme].vnets[hub].subnets[GatewaySubnet].prefix"
            );
            assert!(
                v[0].message.contains("e.g. 10.0.255.0/29"),
                "{}",
                v[0].message
            );
        } else {
            assert_valid(&t);
        }
    }
}

#[test]
fn gw_7_a_too_small_gateway_subnet_warns_before_a_gateway_exists() {
    // Issue 14: the mistake is knowable on the VNet form, before any gateway is created: a
    // warning (the VNet saves), at the subnet's prefix, saying what a gateway will need.
    let t = build(
        TopologyBuilder::new("acme")
            .vnet("hub", "westeurope", &["10.0.0.0/16"])
            .gateway_subnet("hub", "10.0.255.0/30"),
    );
    let v = validate(&t);
    assert!(!has_errors(&v), "{}", pretty(&v));
    let w: Vec<_> = v.iter().filter(|x| x.rule == RuleId::Gw7).collect();
    assert_eq!(w.len(), 1, "{}", pretty(&v));
    assert_eq!(w[0].severity, Severity::Warning);
    assert_eq!(
        w[0].path,
        "tenants[acme].vnets[hub].subnets[GatewaySubnet].prefix"
    );
    assert!(
        w[0].message.contains("will need at least a /29"),
        "{}",
        w[0].message
    );
    // With a gateway, the same subnet is an error (one GW-7, not a warning beside it).
    let t = build(
        TopologyBuilder::new("acme")
            .vnet("hub", "westeurope", &["10.0.0.0/16"])
            .gateway_subnet("hub", "10.0.255.0/30")
            .gateway("gw", "hub", GatewayType::RouteBased, Sku::VpnGw1),
    );
    let v = validate(&t);
    let g: Vec<_> = v.iter().filter(|x| x.rule == RuleId::Gw7).collect();
    assert_eq!(g.len(), 1, "{}", pretty(&v));
    assert_eq!(g[0].severity, Severity::Error);
}

#[test]
fn gw_7_a_gateway_needs_a_gateway_subnet() {
    let t = build(
        TopologyBuilder::new("acme")
            .vnet("hub", "westeurope", &["10.0.0.0/16"])
            .subnet("hub", "gatewaysubnet", "10.0.255.0/27")
            .gateway("gw", "hub", GatewayType::RouteBased, Sku::VpnGw1),
    );
    let v = assert_error(&t, RuleId::Gw7);
    assert_eq!(v[0].path, "tenants[acme].vnets[hub].subnets");
    // The near miss in case gets a hint.
    assert!(
        validate(&t)
            .iter()
            .any(|x| x.severity == Severity::Warning && x.message.contains("did you mean"))
    );
}

#[test]
fn gw_7_ipv6_gateway_subnet_needs_at_least_a_64() {
    let with = |p: &str| {
        build(
            TopologyBuilder::new("acme")
                .vnet("hub", "westeurope", &["2001:db8::/48"])
                .gateway_subnet("hub", p)
                .gateway("gw", "hub", GatewayType::RouteBased, Sku::VpnGw1),
        )
    };
    assert_valid(&with("2001:db8:0:ff::/64"));
    assert_error(&with("2001:db8:0:ff::/80"), RuleId::Gw7);
}

#[test]
fn gw_7_no_other_machine_in_the_gateway_subnet() {
    let t = build(hub().appliance("hub", "nva", "10.0.255.4", &["172.30.0.0/16"]));
    let v = assert_error(&t, RuleId::Gw7);
    assert!(v[0].message.contains("reserved for the gateway"));
}

#[test]
fn gw_8_traffic_to_the_vnet_stays_inside_and_the_rest_goes_to_the_internet() {
    let t = build(branch(hub()));
    let inside = next_hop(&t, ip("10.0.1.4"), ip("10.0.2.9")).unwrap();
    assert_eq!(inside.hops.len(), 1);
    assert_eq!(inside.hops[0].rule, RuleId::Gw8);
    assert!(matches!(inside.outcome, Outcome::Delivered { .. }));
    let internet = next_hop(&t, ip("10.0.1.4"), ip("8.8.8.8")).unwrap();
    assert_eq!(internet.outcome, Outcome::Internet);
    let tunnel = next_hop(&t, ip("10.0.1.4"), ip("192.168.1.1")).unwrap();
    assert!(matches!(tunnel.hops[0].next_hop, NextHop::Gateway { .. }));
}

#[test]
fn gw_9_forced_tunneling_makes_the_site_the_default_route() {
    let t = build(branch(hub()).edit_gateway("hub-gw", |g| {
        g.forced_tunneling_site = Some("branch".into())
    }));
    assert_valid(&t);
    let r =
        isthmus_shared::routes::gateway_routes(&t, &QualifiedName::new("acme", "hub-gw")).unwrap();
    let default = r.lookup(ip("8.8.8.8")).unwrap();
    assert_eq!(default.prefix.to_string(), "0.0.0.0/0");
    assert!(matches!(default.next_hop, NextHop::ForcedTunnel { .. }));
    let path = next_hop(&t, ip("10.0.1.4"), ip("8.8.8.8")).unwrap();
    assert!(
        matches!(path.outcome, Outcome::ForcedTunnel { .. }),
        "{path:?}"
    );
    assert_eq!(path.hops.last().unwrap().rule, RuleId::Gw9);
}

#[test]
fn gw_9_forced_tunneling_site_must_be_connected_to_the_gateway() {
    let t = build(
        hub()
            .site("elsewhere", "203.0.113.1", &["192.168.1.0/24"])
            .edit_gateway("hub-gw", |g| {
                g.forced_tunneling_site = Some("elsewhere".into())
            }),
    );
    let v = assert_error(&t, RuleId::Gw9);
    assert_eq!(
        v[0].path,
        "tenants[acme].gateways[hub-gw].forced_tunneling_site"
    );
}

#[test]
fn gw_10_the_gateway_is_multi_homed() {
    let t = build(hub().edit_gateway("hub-gw", |g| {
        g.public_endpoint = Some("198.51.100.1:51820".parse().unwrap())
    }));
    let (d, _) = isthmus_shared::desired::gateway_desired(
        &t,
        &QualifiedName::new("acme", "hub-gw"),
        &isthmus_shared::desired::GatewayInputs {
            private_key: isthmus_shared::desired::Secret::new(wgkey(1)),
            listen_port: 51820,
        },
    )
    .unwrap();
    assert_eq!(
        d.private_address,
        Some(ip("10.0.255.4")),
        "private side inside GatewaySubnet: its first address after the four reserved ones"
    );
    assert_eq!(
        d.public_endpoint,
        Some("198.51.100.1:51820".parse().unwrap()),
        "public side"
    );
    assert!(
        !format!("{d:?}").contains(&wgkey(1)),
        "the private key never shows in Debug output"
    );
    // The second instance of a redundant gateway takes + 5; a /29 holds both, nothing smaller
    // does (GW-7), and IPv6 follows the same rule.
    use isthmus_shared::desired::gateway_instance_address as inst;
    let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
    assert_eq!(inst(net("10.0.255.0/29"), 1), Some(ip("10.0.255.5")));
    assert_eq!(inst(net("10.0.255.0/30"), 0), None);
    assert_eq!(inst(net("fd00:1:ffff::/64"), 0), Some(ip("fd00:1:ffff::4")));
}

#[test]
fn gw_11_own_appliance_with_user_defined_routes() {
    let t = build(
        TopologyBuilder::new("acme")
            .vnet("diy", "westeurope", &["10.7.0.0/16"])
            .subnet("diy", "nva", "10.7.1.0/24")
            .appliance("diy", "my-vpn", "10.7.1.4", &["192.168.0.0/16"]),
    );
    assert_valid(&t);
    let path = next_hop(&t, ip("10.7.2.2"), ip("192.168.3.3")).unwrap();
    assert_eq!(path.hops[0].rule, RuleId::Gw11);
    assert!(matches!(path.outcome, Outcome::HandedOff { .. }));
    let outside = build(
        TopologyBuilder::new("acme")
            .vnet("diy", "westeurope", &["10.7.0.0/16"])
            .appliance("diy", "my-vpn", "10.8.1.4", &["192.168.0.0/16"]),
    );
    assert_error(&outside, RuleId::Gw11);
}

// ---- LIM ----------------------------------------------------------------------------------

fn with_sites(mut b: TopologyBuilder, n: usize) -> TopologyBuilder {
    for i in 0..n {
        b = b
            .site(
                &format!("s{i}"),
                &format!("198.51.100.{}", i + 1),
                &[&format!("172.16.{i}.0/24")],
            )
            .s2s(&format!("c{i}"), "hub-gw", &format!("s{i}"));
    }
    b
}

#[test]
fn lim_1_connection_limits_follow_the_sku_table() {
    let expect = [
        (Sku::Basic, 10),
        (Sku::Standard, 10),
        (Sku::HighPerformance, 30),
        (Sku::VpnGw1, 30),
        (Sku::VpnGw2, 30),
        (Sku::VpnGw3, 30),
        (Sku::VpnGw4, 100),
        (Sku::VpnGw5, 100),
    ];
    for (sku, n) in expect {
        assert_eq!(sku.max_connections(), n, "{sku}");
        assert_valid(&build(with_sites(
            hub_with(GatewayType::RouteBased, sku),
            n as usize,
        )));
        let v = assert_error(
            &build(with_sites(
                hub_with(GatewayType::RouteBased, sku),
                n as usize + 1,
            )),
            RuleId::Lim1,
        );
        assert_eq!(v[0].path, "tenants[acme].gateways[hub-gw].sku");
    }
}

#[test]
fn lim_1_eleventh_connection_on_standard_suggests_a_bigger_sku() {
    let v = assert_error(
        &build(with_sites(
            hub_with(GatewayType::RouteBased, Sku::Standard),
            11,
        )),
        RuleId::Lim1,
    );
    assert!(
        v[0].message
            .contains("resize the gateway to HighPerformance (30 connections)"),
        "{}",
        v[0].message
    );
}

#[test]
fn lim_1_limits_are_configurable() {
    let mut table = SkuTable::default();
    table
        .limits
        .get_mut(&Sku::Standard)
        .unwrap()
        .max_connections = 12;
    let t = build(with_sites(
        hub_with(GatewayType::RouteBased, Sku::Standard),
        11,
    ));
    assert!(validate_with(&t, &table).is_empty());
}

#[test]
fn lim_2_no_redundant_tunnels_to_one_site_unless_active_active() {
    let two = |sku: Sku, aa: bool| {
        build(
            hub_with(GatewayType::RouteBased, sku)
                .edit_gateway("hub-gw", |g| g.active_active = aa)
                .site("branch", "203.0.113.1", &["192.168.1.0/24"])
                .s2s("one", "hub-gw", "branch")
                .s2s("two", "hub-gw", "branch"),
        )
    };
    let v = assert_error(&two(Sku::Standard, false), RuleId::Lim2);
    assert_eq!(v.len(), 2);
    assert_error(&two(Sku::VpnGw1, false), RuleId::Lim2);
    assert_valid(&two(Sku::VpnGw1, true));
    let v = assert_error(&two(Sku::Standard, true), RuleId::Lim2);
    assert!(v.iter().any(|x| x.path.ends_with("active_active")));
    // Active-active allows two tunnels, not three.
    let three = build(
        hub()
            .edit_gateway("hub-gw", |g| g.active_active = true)
            .site("branch", "203.0.113.1", &["192.168.1.0/24"])
            .s2s("one", "hub-gw", "branch")
            .s2s("two", "hub-gw", "branch")
            .s2s("three", "hub-gw", "branch"),
    );
    assert_error(&three, RuleId::Lim2);
    for sku in Sku::ALL {
        assert_eq!(
            sku.supports_active_active(),
            sku.generation() == SkuGeneration::Current
        );
    }
}

#[test]
fn lim_3_a_site_overlapping_the_vnet_is_rejected() {
    let t = build(
        hub()
            .site("branch", "203.0.113.1", &["10.0.5.0/24"])
            .s2s("c", "hub-gw", "branch"),
    );
    let v = assert_error(&t, RuleId::Lim3);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].path, "tenants[acme].sites[branch].address_prefixes[0]");
    assert_eq!(
        v[0].related,
        vec!["tenants[acme].vnets[hub].address_space[0]".to_owned()]
    );
    assert!(
        v[0].message
            .contains("gateway acme/hub-gw connects them directly")
    );
    // Not connected: no conflict (only the LIM-3 warning that it cannot be connected).
    let apart = build(hub().site("branch", "203.0.113.1", &["10.0.5.0/24"]));
    assert!(
        !has_errors(&validate(&apart)),
        "{}",
        pretty(&validate(&apart))
    );
}

#[test]
fn lim_3_overlaps_through_transit_are_rejected() {
    let t = build(
        spoke(
            spoke(hub(), "a", "10.1", "westeurope"),
            "b",
            "10.0",
            "westeurope",
        )
        .v2v_pair("hub-a", "hub-gw", "a-hub", "a-gw")
        .v2v_pair("a-b", "a-gw", "b-a", "b-gw"),
    );
    let v = assert_error(&t, RuleId::Lim3);
    assert!(v[0].message.contains("through transit"), "{}", v[0].message);
}

#[test]
fn lim_3_ipv6_overlap_is_rejected_and_families_never_overlap() {
    let t = build(
        TopologyBuilder::new("acme")
            .vnet("hub", "westeurope", &["10.0.0.0/16", "2001:db8::/48"])
            .gateway_subnet("hub", "10.0.255.0/27")
            .gateway("hub-gw", "hub", GatewayType::RouteBased, Sku::VpnGw1)
            .site(
                "branch",
                "203.0.113.1",
                &["2001:db8:0:5::/64", "192.168.0.0/24"],
            )
            .s2s("c", "hub-gw", "branch"),
    );
    let v = assert_error(&t, RuleId::Lim3);
    assert_eq!(v.len(), 1);
    assert!(v[0].message.contains("2001:db8:0:5::/64"));
}

#[test]
fn lim_3_pools_of_gateways_that_reach_each_other_must_not_overlap() {
    let t = build(
        spoke(hub(), "a", "10.1", "westeurope")
            .v2v_pair("hub-a", "hub-gw", "a-hub", "a-gw")
            .p2s("hub-gw", &["172.16.0.0/24"])
            .p2s("a-gw", &["172.16.0.128/25"]),
    );
    let v = assert_error(&t, RuleId::Lim3);
    assert_eq!(v.len(), 1, "{}", pretty(&v));
    assert!(v[0].message.contains("through transit"));
    // Unconnected gateways may reuse a pool.
    let apart = build(
        spoke(hub(), "a", "10.1", "westeurope")
            .p2s("hub-gw", &["172.16.0.0/24"])
            .p2s("a-gw", &["172.16.0.0/24"]),
    );
    assert_valid(&apart);
}

#[test]
fn lim_3_the_whole_change_fails() {
    let t = build(hub());
    let bad_site = Change::UpsertSite(
        build(TopologyBuilder::new("acme").site("branch", "203.0.113.1", &["10.0.5.0/24"])).sites
            [0]
        .clone(),
    );
    assert!(
        !has_errors(&validate_change(&t, &bad_site)),
        "the site alone is fine"
    );
    let mut t2 = t.clone();
    t2.apply(&bad_site).unwrap();
    let conn =
        build(TopologyBuilder::new("acme").s2s("c", "hub-gw", "branch")).connections[0].clone();
    let v = validate_change(&t2, &Change::UpsertConnection(conn));
    assert!(
        has_errors(&v) && rules(&v).contains(&RuleId::Lim3),
        "{}",
        pretty(&v)
    );
}

#[test]
fn lim_4_all_tunnels_share_the_gateway_bandwidth() {
    let expect = [
        (Sku::Basic, 100_000_000),
        (Sku::Standard, 100_000_000),
        (Sku::HighPerformance, 200_000_000),
        (Sku::VpnGw1, 650_000_000),
        (Sku::VpnGw2, 1_000_000_000),
        (Sku::VpnGw3, 1_250_000_000),
        (Sku::VpnGw4, 5_000_000_000),
        (Sku::VpnGw5, 10_000_000_000),
    ];
    for (sku, bps) in expect {
        assert_eq!(sku.bandwidth_bps(), bps, "{sku}");
    }
    // One limit for the gateway, none per peer.
    let t = build(
        with_sites(hub(), 3)
            .p2s("hub-gw", &["172.31.0.0/24"])
            .p2s_client("hub-gw", "l", &wgkey(200), "172.31.0.5"),
    );
    let v: serde_json::Value = serde_json::to_value(
        isthmus_shared::desired::gateway_desired(
            &t,
            &QualifiedName::new("acme", "hub-gw"),
            &isthmus_shared::desired::GatewayInputs {
                private_key: isthmus_shared::desired::Secret::new(wgkey(1)),
                listen_port: 1,
            },
        )
        .unwrap()
        .0,
    )
    .unwrap();
    assert_eq!(v["bandwidth_limit_bps"], 650_000_000u64);
    assert!(v["peers"][0].get("bandwidth_limit_bps").is_none());
}

#[test]
fn lim_5_transit_routes_are_computed() {
    let t = build(
        spoke(
            spoke(hub(), "a", "10.1", "westeurope"),
            "b",
            "10.2",
            "westeurope",
        )
        .v2v_pair("hub-a", "hub-gw", "a-hub", "a-gw")
        .v2v_pair("a-b", "a-gw", "b-a", "b-gw")
        .site("branch", "203.0.113.1", &["192.168.1.0/24"])
        .s2s("b-branch", "b-gw", "branch"),
    );
    assert_valid(&t);
    let r =
        isthmus_shared::routes::gateway_routes(&t, &QualifiedName::new("acme", "hub-gw")).unwrap();
    let to_b = r.lookup(ip("10.2.0.1")).unwrap();
    assert_eq!(to_b.transit_hops, 1);
    assert!(
        matches!(&to_b.next_hop, NextHop::VnetToVnet { connection, .. } if connection.name == "hub-a")
    );
    let to_branch = r.lookup(ip("192.168.1.1")).unwrap();
    assert_eq!(to_branch.transit_hops, 2);
    let path = next_hop(&t, ip("10.0.1.1"), ip("192.168.1.1")).unwrap();
    assert_eq!(path.hops.len(), 4, "{path:#?}"); // hub VNet → hub-gw → a-gw → b-gw → site
    assert_eq!(path.hops[1].rule, RuleId::Lim5);
}

#[test]
fn lim_6_vnet_to_vnet_traffic_is_metered_per_region_pair() {
    let p = region_pair("westeurope", "eastus");
    assert_eq!(p, region_pair("eastus", "westeurope"));
    assert_eq!(p.key(), "eastus|westeurope");
    assert!(p.is_cross_region());
    assert!(!region_pair("eastus", "eastus").is_cross_region());
    let t = build(spoke(hub(), "us", "10.1", "eastus").v2v_pair("a", "hub-gw", "b", "us-gw"));
    let path = next_hop(&t, ip("10.0.1.1"), ip("10.1.1.1")).unwrap();
    let metered: Vec<_> = path
        .hops
        .iter()
        .filter_map(|h| h.region_pair.clone())
        .collect();
    assert_eq!(metered, vec![p]);
}

#[test]
fn lim_7_a_non_vpn_route_source_is_allowed_and_honoured() {
    let t = build(branch(hub()).private_circuit(
        "hub",
        "expressroute",
        &["192.168.1.0/24", "172.20.0.0/16"],
    ));
    assert_valid(&t);
    // Equal prefix: the private circuit wins over the VPN, like the seed's service.
    let path = next_hop(&t, ip("10.0.1.1"), ip("192.168.1.7")).unwrap();
    assert_eq!(path.hops[0].rule, RuleId::Lim7);
    assert!(matches!(path.outcome, Outcome::HandedOff { .. }));
    let path = next_hop(&t, ip("10.0.1.1"), ip("172.20.1.1")).unwrap();
    assert!(matches!(path.outcome, Outcome::HandedOff { .. }));
}

// ---- VM -----------------------------------------------------------------------------------

#[test]
fn vm_1_private_addresses_are_not_reachable_from_the_internet() {
    let t = build(hub().p2s("hub-gw", &["172.16.0.0/24"]));
    let p = next_hop(&t, ip("8.8.8.8"), ip("10.0.1.4")).unwrap();
    assert!(matches!(p.outcome, Outcome::Dropped { .. }));
    assert_eq!(p.hops[0].rule, RuleId::Vm1);
    // A pool address no connected client holds cannot reach private addresses either.
    let p = next_hop(&t, ip("172.16.0.77"), ip("10.0.1.4")).unwrap();
    assert!(matches!(p.outcome, Outcome::Dropped { .. }));
    assert_eq!(p.hops[0].rule, RuleId::Vm1);
}

#[test]
fn vm_2_next_hop_explains_every_hop() {
    let t = build(branch(hub()));
    let p = next_hop(&t, ip("10.0.1.4"), ip("192.168.1.10")).unwrap();
    assert_eq!(p.hops.len(), 2);
    assert_eq!(p.hops[0].rule, RuleId::Vm2);
    assert!(p.hops[0].reason.contains("192.168.1.0/24"));
    assert!(p.hops.iter().all(|h| !h.reason.is_empty()));
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains("\"rule\":\"VM-2\""));
}

// ---- sanity rules -------------------------------------------------------------------------

#[test]
fn name_1_names_are_unique_per_kind_within_a_tenant() {
    let t = build(hub().vnet("hub", "eastus", &["10.50.0.0/16"]));
    let v = assert_error(&t, RuleId::Name1);
    assert_eq!(
        v.len(),
        1,
        "one violation per duplicated name, deduplicated: {}",
        pretty(&v)
    );
    // The same name in another tenant, or for another kind, is fine.
    assert_valid(&build(
        hub()
            .tenant("globex")
            .vnet("hub", "eastus", &["10.50.0.0/16"])
            .site("hub", "203.0.113.9", &["192.168.9.0/24"]),
    ));
}

#[test]
fn name_2_names_are_short_ascii() {
    assert_error(
        &build(TopologyBuilder::new("acme").vnet("bad name!", "westeurope", &["10.0.0.0/16"])),
        RuleId::Name2,
    );
    assert_error(
        &build(TopologyBuilder::new("acme").vnet(&"v".repeat(81), "westeurope", &["10.0.0.0/16"])),
        RuleId::Name2,
    );
    assert_error(
        &build(TopologyBuilder::new("acme").vnet("-x", "westeurope", &["10.0.0.0/16"])),
        RuleId::Name2,
    );
}

#[test]
fn pfx_1_host_bits_message_names_the_canonical_prefix() {
    let t = build(hub().site("b", "203.0.113.1", &["192.168.1.77/24"]));
    let v = assert_error(&t, RuleId::Pfx1);
    assert_eq!(
        v[0].message,
        "192.168.1.77/24 has host bits set; did you mean 192.168.1.0/24?"
    );
    assert_eq!(v[0].params["canonical"], "192.168.1.0/24");
}

#[test]
fn pfx_2_address_lists_are_not_empty() {
    assert_error(
        &build(TopologyBuilder::new("acme").vnet("v", "westeurope", &[])),
        RuleId::Pfx2,
    );
    assert_error(&build(hub().site("b", "203.0.113.1", &[])), RuleId::Pfx2);
    assert_error(&build(hub().p2s("hub-gw", &[])), RuleId::Pfx2);
}

#[test]
fn pfx_3_prefixes_of_one_list_do_not_overlap() {
    let v = assert_error(
        &build(hub().site("b", "203.0.113.1", &["192.168.0.0/16", "192.168.4.0/24"])),
        RuleId::Pfx3,
    );
    assert_eq!(v[0].path, "tenants[acme].sites[b].address_prefixes[1]");
}

#[test]
fn sub_1_subnets_lie_inside_the_address_space() {
    let v = assert_error(
        &build(hub().subnet("hub", "stray", "10.9.0.0/24")),
        RuleId::Sub1,
    );
    assert_eq!(v[0].path, "tenants[acme].vnets[hub].subnets[stray].prefix");
}

#[test]
fn sub_2_subnets_do_not_overlap() {
    let v = assert_error(
        &build(hub().subnet("hub", "big", "10.0.0.0/20")),
        RuleId::Sub2,
    );
    assert_eq!(v.len(), 1);
    assert!(v[0].message.contains("\"workloads\""));
}

#[test]
fn ref_1_references_resolve() {
    let t = build(
        TopologyBuilder::new("acme")
            .gateway("gw", "nowhere", GatewayType::RouteBased, Sku::VpnGw1)
            .s2s("c", "gw", "no-site")
            .s2s("d", "no-gw", "no-site")
            .v2v("e", "gw", Some("nobody"), "x")
            .p2s("no-gw", &["172.16.0.0/24"]),
    );
    let v = assert_error(&t, RuleId::Ref1);
    let paths: Vec<&str> = v.iter().map(|x| x.path.as_str()).collect();
    for p in [
        "tenants[acme].gateways[gw].vnet",
        "tenants[acme].connections[c].kind.site",
        "tenants[acme].connections[d].gateway",
        "tenants[acme].point_to_site[no-gw].gateway",
    ] {
        assert!(paths.contains(&p), "missing {p} in {paths:?}");
    }
    // A half towards another tenant is waiting, whether that tenant exists or not (CONN-2).
    assert!(!paths.contains(&"tenants[acme].connections[e].kind.remote_gateway"));
    // A resource of an unknown tenant.
    let mut t = build(hub());
    t.tenants.clear();
    assert_error(&t, RuleId::Ref1);
}

#[test]
fn ref_2_vnet_to_vnet_joins_two_different_gateways_once() {
    assert_error(
        &build(hub().v2v("self", "hub-gw", None, "hub-gw")),
        RuleId::Ref2,
    );
    let twice = build(
        spoke(hub(), "spoke", "10.1", "westeurope")
            .v2v_pair("a", "hub-gw", "b", "spoke-gw")
            .v2v("a2", "hub-gw", None, "spoke-gw"),
    );
    assert_eq!(assert_error(&twice, RuleId::Ref2).len(), 2);
}

#[test]
fn vnet_1_at_most_one_gateway_per_vnet() {
    let v = assert_error(
        &build(hub().gateway("second", "hub", GatewayType::RouteBased, Sku::VpnGw1)),
        RuleId::Vnet1,
    );
    assert_eq!(v.len(), 2);
}

#[test]
fn key_1_public_keys_are_wireguard_keys() {
    let t = build(
        hub()
            .site("b", "203.0.113.1", &["192.168.1.0/24"])
            .edit_site("b", |s| s.device_public_key = Some("not-a-key".into())),
    );
    assert_error(&t, RuleId::Key1);
    let t = build(hub().p2s("hub-gw", &["172.16.0.0/24"]).p2s_client(
        "hub-gw",
        "l",
        "AAAA",
        "172.16.0.2",
    ));
    assert_error(&t, RuleId::Key1);
}

#[test]
fn key_2_peers_of_a_gateway_have_distinct_keys() {
    let t = build(
        hub()
            .site("a", "203.0.113.1", &["192.168.1.0/24"])
            .site("b", "203.0.113.2", &["192.168.2.0/24"])
            .edit_site("a", |s| s.device_public_key = Some(wgkey(1)))
            .edit_site("b", |s| s.device_public_key = Some(wgkey(1)))
            .s2s("ca", "hub-gw", "a")
            .s2s("cb", "hub-gw", "b"),
    );
    assert_eq!(assert_error(&t, RuleId::Key2).len(), 2);
}

#[test]
fn addr_1_client_addresses_are_in_the_pool_and_unique() {
    let t = build(
        hub()
            .p2s("hub-gw", &["172.16.0.0/24"])
            .p2s_client("hub-gw", "a", &wgkey(1), "172.16.1.2")
            .p2s_client("hub-gw", "b", &wgkey(2), "172.16.0.2")
            .p2s_client("hub-gw", "c", &wgkey(3), "172.16.0.2"),
    );
    let v = assert_error(&t, RuleId::Addr1);
    assert_eq!(v.len(), 3, "{}", pretty(&v));
}
