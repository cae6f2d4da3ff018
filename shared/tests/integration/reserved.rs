//! PFX-4 to PFX-8 and PORT-1: ranges no address list may use, and the site device port.

use isthmus_shared::builder::TopologyBuilder;
use isthmus_shared::rules::RuleId;
use isthmus_shared::validate::Violation;

use crate::common::*;

/// A VNet with `space` (and a GatewaySubnet inside 10.0.0.0/16 when it is IPv4 and covers it).
fn vnet_with(space: &str) -> TopologyBuilder {
    TopologyBuilder::new("acme").vnet("v", "westeurope", &[space])
}

/// The errors of `rule` at the first prefix of each list kind, each with a fix in its message.
#[track_caller]
fn refused_everywhere(prefix: &str, rule: RuleId) -> Vec<Violation> {
    let mut all = Vec::new();
    for (b, path) in [
        (vnet_with(prefix), "tenants[acme].vnets[v].address_space[0]"),
        (
            TopologyBuilder::new("acme").site("s", "203.0.113.7", &[prefix]),
            "tenants[acme].sites[s].address_prefixes[0]",
        ),
        (
            hub().p2s("hub-gw", &[prefix]),
            "tenants[acme].point_to_site[hub-gw].address_pool[0]",
        ),
    ] {
        let v = assert_error(&build(b), rule);
        let here: Vec<&Violation> = v.iter().filter(|x| x.path == path).collect();
        assert_eq!(here.len(), 1, "{prefix} at {path}: {}", pretty(&v));
        let m = &here[0].message;
        assert!(
            m.contains(prefix) && m.contains("use") || m.contains("list only"),
            "{m}"
        );
        assert_eq!(here[0].params["prefix"], prefix);
        all.extend(v);
    }
    all
}

#[test]
fn pfx_4_a_whole_address_family_is_refused() {
    let v = refused_everywhere("0.0.0.0/0", RuleId::Pfx4);
    assert!(
        v.iter()
            .any(|x| x.message.contains("forced-tunneling site (GW-9)"))
    );
    refused_everywhere("::/0", RuleId::Pfx4);
    // Only PFX-4 for a whole family, not every range it contains.
    let all = isthmus_shared::validate::validate(&build(vnet_with("0.0.0.0/0")));
    assert!(
        !all.iter().any(|x| matches!(
            x.rule,
            RuleId::Pfx5 | RuleId::Pfx6 | RuleId::Pfx7 | RuleId::Pfx8
        )),
        "{}",
        pretty(&all)
    );
}

#[test]
fn pfx_5_multicast_is_refused() {
    refused_everywhere("224.0.0.0/24", RuleId::Pfx5);
    refused_everywhere("224.0.0.0/4", RuleId::Pfx5);
    refused_everywhere("ff02::/16", RuleId::Pfx5);
    // A prefix containing multicast space too.
    refused_everywhere("192.0.0.0/2", RuleId::Pfx5);
}

#[test]
fn pfx_6_loopback_is_refused() {
    refused_everywhere("127.0.0.0/8", RuleId::Pfx6);
    refused_everywhere("::1/128", RuleId::Pfx6);
}

#[test]
fn pfx_7_link_local_is_refused() {
    refused_everywhere("169.254.0.0/16", RuleId::Pfx7);
    refused_everywhere("fe80::/64", RuleId::Pfx7);
}

#[test]
fn pfx_8_unspecified_addresses_are_refused() {
    refused_everywhere("0.0.0.0/8", RuleId::Pfx8);
    refused_everywhere("::/128", RuleId::Pfx8);
}

#[test]
fn pfx_4_to_8_private_and_global_ranges_are_fine() {
    for p in [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fd00::/8",
        "2001:db8::/32",
    ] {
        let b = TopologyBuilder::new("acme").site("s", "203.0.113.7", &[p]);
        assert_valid(&build(b));
    }
}

#[test]
fn port_1_a_device_port_of_0_is_refused() {
    let site = |port: Option<u16>| {
        build(
            TopologyBuilder::new("acme")
                .site("s", "203.0.113.7", &["192.168.1.0/24"])
                .edit_site("s", |s| s.device_port = port),
        )
    };
    let v = assert_error(&site(Some(0)), RuleId::Port1);
    assert_eq!(v[0].path, "tenants[acme].sites[s].device_port");
    assert!(v[0].message.contains("51820"), "{}", v[0].message);
    assert_valid(&site(Some(1)));
    assert_valid(&site(Some(65535)));
    assert_valid(&site(None));
}
