//! Real network, driven by the real server: a `wireguard-go` site configured only from the
//! device configuration the server exports reaches the VNet behind the worker's TUN, and back;
//! the worker's status reaches the server. While the server is down the worker keeps forwarding
//! on its last state; when it is back the worker reconnects and follows the next change. Root
//! only (skipped with a message otherwise).
//!
//! The server and the worker run inside the gateway's namespace (the server on its loopback);
//! the test talks to the server with `curl` inside that namespace and edits the topology with
//! `isthmus apply`. Traffic stays inside the namespaces this test creates.

use std::time::Duration;

use crate::netns::{Lab, ping, run, skip_reason, wait_for, wg_keypair};
use crate::server_lab::{Server, have_curl, to_wg_conf};

#[test]
fn s2s_1_server_exported_device_config_brings_up_a_wireguard_go_site_that_outlives_a_server_outage()
{
    if let Some(why) = skip_reason() {
        println!(
            "SKIPPED s2s_1_server_exported_device_config_brings_up_a_wireguard_go_site_that_outlives_a_server_outage: {why}"
        );
        return;
    }
    if !have_curl() {
        println!(
            "SKIPPED s2s_1_server_exported_device_config_brings_up_a_wireguard_go_site_that_outlives_a_server_outage: curl is missing"
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
    let mut server = Server::start(
        &mut lab,
        &gw_ns,
        "127.0.0.1:18090",
        "10.251.0.1",
        "51820-51829",
    );

    // The topology, applied with the CLI: VNet 10.200.1.0/24, a site 10.200.2.0/24.
    let topology = |enabled: bool| {
        format!(
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
  - {{tenant: acme, name: to-branch, gateway: hub-gw, enabled: {enabled},
      kind: {{type: SiteToSite, site: branch}}}}
"
        )
    };
    server.apply(&lab, &topology(true));

    // The worker, in the same namespace, driven by the server.
    let tun = format!("it{id}");
    // No address or route added here: the worker puts the gateway's own address
    // (GatewaySubnet + 4 = 10.200.1.228) on its TUN and routes the site's prefix onto it.
    server.worker(&mut lab, &gw_ns, "w1", &tun, &[]);

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

    let site_to_vnet = (0..30).any(|_| ping(&site_ns, Some("10.200.2.1"), "10.200.1.228"));
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
    assert_eq!(c["endpoint"], "10.251.0.2:51900", "{status}");

    // The server goes away: the worker says so, keeps forwarding on its last desired state,
    // and retries with backoff.
    let worker_log = lab.dir.path().join("worker-w1.log");
    let log = || std::fs::read_to_string(&worker_log).unwrap_or_default();
    server.stop(&mut lab);
    wait_for("the worker to notice", Duration::from_secs(30), || {
        log().contains("server unreachable; keeping the last state and retrying")
    });
    for _ in 0..3 {
        assert!(
            (0..5).any(|_| ping(&site_ns, Some("10.200.2.1"), "10.200.1.228")),
            "the tunnel stopped while the server was down\n{}",
            lab.logs()
        );
    }
    // Backoff: the retries wait 1 s, then 2 s, ...
    wait_for("a second, longer retry", Duration::from_secs(30), || {
        log().contains("retry_in_s=2")
    });
    assert!(log().contains("retry_in_s=1"), "{}", log());

    // It comes back: the worker reconnects and follows the next change (the connection
    // disabled: its tunnel stops carrying traffic).
    server.restart(&mut lab);
    wait_for("the worker to reconnect", Duration::from_secs(45), || {
        log().matches("connected to the server").count() >= 2
    });
    server.apply(&lab, &topology(false));
    wait_for(
        "the disabled connection to stop carrying traffic",
        Duration::from_secs(30),
        || !ping(&site_ns, Some("10.200.2.1"), "10.200.1.228"),
    );
    assert!(
        !(0..3).any(|_| ping(&site_ns, Some("10.200.2.1"), "10.200.1.228")),
        "a disabled connection still carries traffic\n{}",
        lab.logs()
    );
}
