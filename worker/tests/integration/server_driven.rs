//! Real network, driven by the real server: a `wireguard-go` site configured only from the
//! device configuration the server exports reaches the VNet behind the worker's TUN, and back;
//! the worker's status reaches the server. Root only (skipped with a message otherwise).
//!
//! The server and the worker run inside the gateway's namespace (the server on its loopback);
//! the test talks to the server with `curl` inside that namespace and edits the topology with
//! `isthmus apply`. Traffic stays inside the namespaces this test creates.

use std::time::Duration;

use crate::netns::{Lab, ping, run, skip_reason, wait_for, wg_keypair};
use crate::server_lab::{Server, have_curl, to_wg_conf};

#[test]
fn s2s_1_server_exported_device_config_brings_up_a_wireguard_go_site() {
    if let Some(why) = skip_reason() {
        println!(
            "SKIPPED s2s_1_server_exported_device_config_brings_up_a_wireguard_go_site: {why}"
        );
        return;
    }
    if !have_curl() {
        println!(
            "SKIPPED s2s_1_server_exported_device_config_brings_up_a_wireguard_go_site: curl is missing"
        );
        return;
    }
    let mut lab = Lab::new("s");
    let id = lab.id.clone();
    let gw_ns = lab.netns("gw");
    let site_ns = lab.netns("site");
    lab.link(
        (&gw_ns, &format!("vg{id}"), "10.251.0.1/30"),
        (&site_ns, &format!("vs{id}"), "10.251.0.2/30"),
    );
    run(&["ip", "-n", &gw_ns, "link", "set", "lo", "up"]);
    let (site_private, site_public) = wg_keypair();

    // The server, in the gateway's namespace.
    let server = Server::start(
        &mut lab,
        &gw_ns,
        "127.0.0.1:18090",
        "10.251.0.1",
        "51820-51829",
    );

    // The topology, applied with the CLI: VNet 10.200.1.0/24, a site 10.200.2.0/24.
    let yaml = format!(
        "tenants: [{{name: acme}}]
vnets:
  - {{tenant: acme, name: hub, region: westeurope, address_space: [10.200.1.0/24],
      subnets: [{{name: GatewaySubnet, prefix: 10.200.1.224/27}}]}}
gateways:
  - {{tenant: acme, name: hub-gw, vnet: hub, gateway_type: RouteBased, sku: VpnGw1}}
sites:
  - {{tenant: acme, name: branch, device_host: 10.251.0.2, device_port: 51900,
      address_prefixes: [10.200.2.0/24], device_public_key: \"{site_public}\"}}
connections:
  - {{tenant: acme, name: to-branch, gateway: hub-gw, kind: {{type: SiteToSite, site: branch}}}}
"
    );
    server.apply(&lab, &yaml);

    // The worker, in the same namespace, driven by the server.
    let tun = format!("it{id}");
    server.worker(
        &mut lab,
        &gw_ns,
        "w1",
        &tun,
        &["--tun-address", "10.200.1.1/24"],
    );
    run(&[
        "ip",
        "-n",
        &gw_ns,
        "route",
        "replace",
        "10.200.2.0/24",
        "dev",
        &tun,
    ]);

    // The site: only the server's exported device configuration, plus its own private key.
    let exported = server.curl(&[&format!(
        "{}/api/v1/tenants/acme/connections/to-branch/device-config",
        server.url
    )]);
    assert!(exported.contains("Endpoint = 10.251.0.1:"), "{exported}");
    let conf = lab.write("site.conf", &to_wg_conf(&exported, &site_private));
    let ifname = format!("ws{id}");
    let conf_s = conf.display().to_string();
    lab.wireguard_go(
        &site_ns,
        &ifname,
        &["listen-port", "51900"],
        "10.200.2.1/24",
        &[],
    );
    run(&[
        "ip", "netns", "exec", &site_ns, "wg", "setconf", &ifname, &conf_s,
    ]);
    // What wg-quick would do with AllowedIPs.
    for line in exported.lines().filter(|l| l.starts_with("AllowedIPs")) {
        for prefix in line.split('=').nth(1).unwrap_or("").split(',') {
            run(&[
                "ip",
                "-n",
                &site_ns,
                "route",
                "replace",
                prefix.trim(),
                "dev",
                &ifname,
            ]);
        }
    }

    let site_to_vnet = (0..30).any(|_| ping(&site_ns, Some("10.200.2.1"), "10.200.1.1"));
    assert!(site_to_vnet, "site → VNet ping failed\n{}", lab.logs());
    let vnet_to_site = (0..10).any(|_| ping(&gw_ns, None, "10.200.2.1"));
    assert!(vnet_to_site, "VNet → site ping failed\n{}", lab.logs());

    // The worker's status report reaches the server.
    let mut status = String::new();
    wait_for(
        "the connection's status on the server",
        Duration::from_secs(20),
        || {
            status = server.curl(&[&format!("{}/api/v1/tenants/acme/status", server.url)]);
            status.contains("\"to-branch\"") && !status.contains("\"last_handshake_unix\":null")
        },
    );
    let parsed: serde_json::Value = serde_json::from_str(&status).expect("status JSON");
    let c = &parsed[0];
    assert!(c["rx_bytes"].as_i64().unwrap_or(0) > 0, "{status}");
    assert!(c["tx_bytes"].as_i64().unwrap_or(0) > 0, "{status}");
}
