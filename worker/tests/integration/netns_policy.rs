//! Real network: a policy-based tunnel (S2S-2) between the worker, driven by the real server,
//! and a `wireguard-go` site configured from the server's exported device configuration. With
//! the idle time shortened for the test (`--policy-idle-secs`, hidden, test-only), the tunnel
//! idles out (the worker's status file says so, the site's packets are refused) and comes back
//! as soon as traffic flows again, from either side. Root only (skipped with a message
//! otherwise).

use std::time::Duration;

use crate::netns::{Lab, ping, run, skip_reason, wg_keypair};
use crate::server_lab::{
    Server, have_curl, read_status, status_peer, vnet_host, wireguard_go_from_wg_quick,
};

/// The site's latest handshake with the gateway (Unix seconds, 0 for none).
fn site_handshake(ns: &str, ifname: &str) -> u64 {
    run(&[
        "ip",
        "netns",
        "exec",
        ns,
        "wg",
        "show",
        ifname,
        "latest-handshakes",
    ])
    .split_whitespace()
    .nth(1)
    .and_then(|s| s.parse().ok())
    .unwrap_or(0)
}

#[test]
fn s2s_2_gw_1_policy_based_tunnel_idles_out_and_comes_back_when_traffic_flows_again() {
    const NAME: &str =
        "s2s_2_gw_1_policy_based_tunnel_idles_out_and_comes_back_when_traffic_flows_again";
    if let Some(why) = skip_reason().or_else(|| (!have_curl()).then(|| "curl is missing".into())) {
        println!("SKIPPED {NAME}: {why}");
        return;
    }
    let mut lab = Lab::new("i");
    let id = lab.id.clone();
    let gw = lab.netns("gw");
    let site = lab.netns("site");
    let host = lab.netns("host");
    lab.link(
        (&gw, &format!("vs{id}"), "10.254.0.1/30"),
        (&site, &format!("vs{id}"), "10.254.0.2/30"),
    );
    let (site_private, site_public) = wg_keypair();
    let server = Server::start(
        &mut lab,
        &gw,
        "127.0.0.1:18093",
        "10.254.0.1",
        "51820-51829",
    );
    server.apply(
        &lab,
        &format!(
            "tenants: [{{name: acme}}]
vnets:
  - {{tenant: acme, name: hub, region: westeurope, address_space: [10.230.1.0/24],
     subnets: [{{name: default, prefix: 10.230.1.0/25}}, {{name: GatewaySubnet, prefix: 10.230.1.224/27}}]}}
gateways:
  - {{tenant: acme, name: hub-gw, vnet: hub, gateway_type: PolicyBased, sku: Basic}}
sites:
  - {{tenant: acme, name: branch, device_host: 10.254.0.2, device_port: 51900,
     address_prefixes: [10.230.2.0/24], device_public_key: \"{site_public}\"}}
connections:
  - {{tenant: acme, name: to-branch, gateway: hub-gw, kind: {{type: SiteToSite, site: branch}},
     traffic_selectors: [{{local: 10.230.1.0/25, remote: 10.230.2.0/24}}]}}
"
        ),
    );
    let tun = format!("it{id}");
    let status = server.worker(&mut lab, &gw, "w1", &tun, &["--policy-idle-secs", "3"]);
    vnet_host(&mut lab, &gw, &host, "10.230.1.10/25", "10.230.1.1/25");
    let exported = server.curl(&[&format!(
        "{}/api/v1/tenants/acme/connections/to-branch/device-config",
        server.url
    )]);
    assert!(
        !exported.contains("PersistentKeepalive"),
        "a policy-based tunnel must be allowed to idle:\n{exported}"
    );
    let wif = format!("ws{id}");
    wireguard_go_from_wg_quick(
        &mut lab,
        &site,
        &wif,
        &exported,
        &site_private,
        Some("51900"),
        &["10.230.2.1/24"],
    );
    let up = |want: bool| {
        let s = read_status(&status);
        status_peer(&s, "to-branch")["up"] == want
    };

    // Traffic flows: the tunnel is up.
    let first = (0..30).any(|_| ping(&host, None, "10.230.2.1"));
    assert!(first, "VNet host → site failed\n{}", lab.logs());
    let h1 = site_handshake(&site, &wif);
    assert!(h1 > 0, "the site saw no handshake");
    // GW-1: a VNet address outside the selector's 10.230.1.0/25 is not carried, though the
    // tunnel is up; the worker counts it.
    run(&[
        "ip",
        "-n",
        &host,
        "addr",
        "add",
        "10.230.1.130/32",
        "dev",
        &format!("hh{id}"),
    ]);
    let mismatched = |s: &serde_json::Value| s["gateways"][0]["drops"]["policy_mismatch"].as_u64();
    let before = mismatched(&read_status(&status)).unwrap_or(0);
    assert!(
        !ping(&host, Some("10.230.1.130"), "10.230.2.1"),
        "{}",
        lab.logs()
    );
    lab.wait_for(
        "the selector mismatch to be counted",
        Duration::from_secs(10),
        || mismatched(&read_status(&status)).unwrap_or(0) > before,
    );

    // No traffic for 3 s: torn down.
    lab.wait_for("the tunnel to idle out", Duration::from_secs(20), || {
        up(false)
    });
    assert!(
        lab.logs().contains("torn down until traffic flows"),
        "the worker should log the teardown\n{}",
        lab.logs()
    );
    std::thread::sleep(Duration::from_millis(1100)); // a new handshake gets a new second

    // Traffic from the VNet brings it back with a new handshake.
    let again = (0..10).any(|_| ping(&host, None, "10.230.2.1"));
    assert!(
        again,
        "VNet host → site after the teardown failed\n{}",
        lab.logs()
    );
    lab.wait_for("the tunnel to be up again", Duration::from_secs(10), || {
        up(true)
    });
    let h2 = site_handshake(&site, &wif);
    assert!(h2 > h1, "no new handshake after the teardown ({h1} → {h2})");

    // Idle again; this time traffic from the site brings it back. The site still believes in
    // its old session: the worker refuses those packets (counted) until the site handshakes anew.
    lab.wait_for(
        "the tunnel to idle out again",
        Duration::from_secs(20),
        || up(false),
    );
    let refused = |s: &serde_json::Value| s["gateways"][0]["drops"]["unknown_peer"].as_u64();
    let before = refused(&read_status(&status)).unwrap_or(0);
    let from_site = (0..40).any(|_| ping(&site, Some("10.230.2.1"), "10.230.1.10"));
    assert!(
        from_site,
        "site → VNet host after the teardown failed\n{}",
        lab.logs()
    );
    lab.wait_for("the tunnel to be up again", Duration::from_secs(10), || {
        up(true)
    });
    let h3 = site_handshake(&site, &wif);
    assert!(
        h3 > h2,
        "no new handshake after the second teardown ({h2} → {h3})"
    );
    assert!(
        refused(&read_status(&status)).unwrap_or(0) > before,
        "the site's packets for the torn-down session should have been refused and counted"
    );
}
