//! What every exported device configuration says about the tunnel itself: its MTU, and a
//! warning when the gateway's endpoint is an address no other host can reach (GW-10).

use isthmus_shared::desired::TUNNEL_MTU;
use isthmus_shared::device::{p2s_client_config, site_device_config};
use isthmus_shared::model::QualifiedName;
use isthmus_shared::rules::RuleId;

use crate::common::*;
use crate::rules::branch;

fn with_endpoint(endpoint: &str) -> isthmus_shared::model::Topology {
    build(
        branch(hub())
            .shared_key("hub-branch", "abc123")
            .edit_gateway("hub-gw", |g| {
                g.public_key = Some(wgkey(7));
                g.public_endpoint = Some(endpoint.parse().unwrap());
            })
            .p2s("hub-gw", &["172.16.0.0/24"])
            .p2s_client("hub-gw", "laptop", &wgkey(1), "172.16.0.2"),
    )
}

#[test]
fn gw_10_site_and_client_configurations_state_the_tunnel_mtu_1420() {
    assert_eq!(
        TUNNEL_MTU,
        1500 - 40 - 8 - 32,
        "IPv6 outer header, UDP, WireGuard"
    );
    let t = with_endpoint("198.51.100.10:51820");
    let site = site_device_config(&t, &QualifiedName::new("acme", "hub-branch")).unwrap();
    let client = p2s_client_config(&t, &QualifiedName::new("acme", "hub-gw"), "laptop").unwrap();
    for wg in [site.to_wg_quick(), client.to_wg_quick()] {
        let interface = wg.split("[Peer]").next().unwrap();
        assert!(interface.contains("\nMTU = 1420\n"), "{wg}");
        assert!(
            !wg.contains("WARNING"),
            "a public endpoint needs no warning:\n{wg}"
        );
    }
}

#[test]
fn gw_10_an_unreachable_gateway_endpoint_is_warned_about_in_the_configuration_and_by_the_validator()
{
    for (endpoint, kind) in [
        ("127.0.0.1:51820", "loopback"),
        ("0.0.0.0:51820", "unspecified"),
        ("169.254.10.1:51820", "link-local"),
        ("[fe80::1]:51820", "link-local"),
    ] {
        let t = with_endpoint(endpoint);
        let wg = site_device_config(&t, &QualifiedName::new("acme", "hub-branch"))
            .unwrap()
            .to_wg_quick();
        let warning = wg
            .lines()
            .find(|l| l.starts_with("# WARNING:"))
            .unwrap_or_else(|| panic!("no warning for {endpoint}:\n{wg}"));
        assert!(
            warning.contains(kind) && warning.contains("--public-address"),
            "{warning}"
        );
        let v = assert_warning(&t, RuleId::Gw10);
        assert_eq!(v[0].path, "tenants[acme].gateways[hub-gw].public_endpoint");
        assert_eq!(v[0].params.get("kind").map(String::as_str), Some(kind));
    }
}
