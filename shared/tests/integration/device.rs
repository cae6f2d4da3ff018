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

/// Issue 16 item 6: an active-active gateway on two instances, its endpoints per instance.
fn active_active(secondary: Option<&str>) -> isthmus_shared::model::Topology {
    build(
        branch(hub())
            .shared_key("hub-branch", "abc123")
            .edit_gateway("hub-gw", |g| {
                g.active_active = true;
                g.public_key = Some(wgkey(7));
                g.public_endpoint = Some("198.51.100.10:51820".parse().unwrap());
                g.secondary_endpoint = secondary.map(|s| s.parse().unwrap());
            }),
    )
}

#[test]
fn an_active_active_connection_has_two_tunnels_on_two_ports_to_the_two_instances_with_metric_routes()
 {
    use isthmus_shared::device::{
        ACTIVE_ACTIVE_METRICS, parse_wg_quick, site_device_tunnel_config,
    };
    let t = active_active(Some("198.51.100.20:51820"));
    let c = QualifiedName::new("acme", "hub-branch");
    let one = site_device_tunnel_config(&t, &c, 1).unwrap();
    let two = site_device_tunnel_config(&t, &c, 2).unwrap();
    assert_eq!(
        one,
        site_device_config(&t, &c).unwrap(),
        "the default export is tunnel 1"
    );
    let port = one.listen_port.unwrap();
    assert_eq!(
        two.listen_port,
        Some(port + 1),
        "tunnel 2 on device_port + 1"
    );
    assert_eq!(
        one.peers[0].endpoint.as_deref(),
        Some("198.51.100.10:51820")
    );
    assert_eq!(
        two.peers[0].endpoint.as_deref(),
        Some("198.51.100.20:51820")
    );
    assert_eq!(one.peers[0].public_key, two.peers[0].public_key);
    assert_eq!(one.peers[0].preshared_key, two.peers[0].preshared_key);
    assert_eq!(one.peers[0].allowed_ips, two.peers[0].allowed_ips);
    assert!(!one.peers[0].allowed_ips.is_empty());
    for (cfg, tunnel, metric, other) in [
        (&one, 1, ACTIVE_ACTIVE_METRICS[0], "hub-branch-tunnel2.conf"),
        (&two, 2, ACTIVE_ACTIVE_METRICS[1], "hub-branch.conf"),
    ] {
        let text = cfg.to_wg_quick();
        let interface = text.split("[Peer]").next().unwrap();
        assert!(interface.contains("\nTable = off\n"), "{text}");
        for prefix in &cfg.peers[0].allowed_ips {
            assert!(
                interface.contains(&format!(
                    "\nPostUp = ip route add {prefix} dev %i metric {metric}\n"
                )),
                "tunnel {tunnel} routes {prefix} at metric {metric}:\n{text}"
            );
        }
        assert!(
            interface.contains(&format!("tunnel {tunnel} of 2")) && interface.contains(other),
            "the comment names the tunnel and the other file:\n{text}"
        );
        assert!(interface.contains("latest-handshakes"), "{text}");
        let back = parse_wg_quick(&text);
        assert_eq!(back.listen_port, cfg.listen_port);
        assert_eq!(back.peers[0].endpoint, cfg.peers[0].endpoint);
    }
    assert!(ACTIVE_ACTIVE_METRICS[0] < ACTIVE_ACTIVE_METRICS[1]);
}

#[test]
fn tunnel_2_is_refused_for_a_gateway_that_is_not_active_active_or_runs_on_one_instance() {
    use isthmus_shared::device::{DeviceError, site_device_tunnel_config};
    let c = QualifiedName::new("acme", "hub-branch");
    let plain = with_endpoint("198.51.100.10:51820");
    assert!(matches!(
        site_device_tunnel_config(&plain, &c, 2),
        Err(DeviceError::NotActiveActive(_))
    ));
    let text = site_device_config(&plain, &c).unwrap().to_wg_quick();
    assert!(
        !text.contains("Table") && !text.contains("PostUp") && !text.contains("tunnel"),
        "a gateway that is not active-active keeps its one plain tunnel:\n{text}"
    );
    let single = active_active(None);
    assert!(matches!(
        site_device_tunnel_config(&single, &c, 2),
        Err(DeviceError::OneInstance(_))
    ));
    let one = site_device_tunnel_config(&single, &c, 1)
        .unwrap()
        .to_wg_quick();
    assert!(
        one.contains("\nTable = off\n"),
        "tunnel 1 of an active-active gateway is ready for tunnel 2:\n{one}"
    );
    assert!(matches!(
        site_device_tunnel_config(&active_active(Some("198.51.100.20:51820")), &c, 3),
        Err(DeviceError::NoSuchTunnel(3))
    ));
}
