//! The status a user sees is the worker's: with the real server and worker in namespaces this
//! test creates (root only; skipped with a message otherwise), a `wireguard-go` site configured
//! from the exported device configuration comes `up`; when its process is stopped the API says
//! `down` with a reason within 3 minutes (the worker's peer-silence window is shortened to 10 s
//! by a test-only flag; the core test on the virtual clock covers the real 65 s), and `up` again
//! once the site is back.
//!
//! ```text
//!  [worker host: server 127.0.0.1:18096, worker, TUN] 10.242.0.1 ── site (wireguard-go, 10.242.2.1)
//! ```

use std::process::Command;
use std::time::{Duration, Instant};

use crate::netns::{Lab, ping, run, skip_reason};
use crate::server_lab::{Server, forwarding, have_curl, wireguard_go_from_wg_quick};

/// The connection's row of `GET /tenants/acme/status`.
fn connection(server: &Server) -> serde_json::Value {
    server
        .get("/tenants/acme/status")
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["connection"] == "to-branch")
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

/// Waits until the API shows `state`; how long it took.
fn wait_state(lab: &Lab, server: &Server, state: &str, timeout: Duration) -> Duration {
    let t0 = Instant::now();
    let mut last = serde_json::Value::Null;
    while t0.elapsed() < timeout {
        last = connection(server);
        if last["state"] == state {
            return t0.elapsed();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!(
        "the API did not show the connection {state} within {timeout:?}; last: {last}\n{}",
        lab.logs()
    );
}

#[test]
fn s2s_1_stopped_site_turns_down_with_a_reason_within_3_minutes_and_up_again_when_back() {
    const NAME: &str =
        "s2s_1_stopped_site_turns_down_with_a_reason_within_3_minutes_and_up_again_when_back";
    if let Some(why) = skip_reason().or_else(|| (!have_curl()).then(|| "curl is missing".into())) {
        println!("SKIPPED {NAME}: {why}");
        return;
    }
    let mut lab = Lab::new("t");
    let id = lab.id.clone();
    let wk = lab.netns("wk");
    let site = lab.netns("site");
    lab.link(
        (&wk, &format!("ws{id}"), "10.242.0.1/30"),
        (&site, &format!("ss{id}"), "10.242.0.2/30"),
    );
    forwarding(&wk);
    let (site_private, site_public) = crate::netns::wg_keypair();
    let server = Server::start(&mut lab, &wk, "127.0.0.1:18096", "127.0.0.1", "51850-51859");
    server.apply(
        &lab,
        &format!(
            "tenants: [{{name: acme}}]
vnets:
  - {{tenant: acme, name: hub, region: westeurope, address_space: [10.242.1.0/24],
     subnets: [{{name: GatewaySubnet, prefix: 10.242.1.224/27}}]}}
gateways:
  - {{tenant: acme, name: hub-gw, vnet: hub, gateway_type: RouteBased, sku: VpnGw1}}
sites:
  - {{tenant: acme, name: branch, device_host: 10.242.0.2, device_port: 51900,
     address_prefixes: [10.242.2.0/24], device_public_key: \"{site_public}\"}}
connections:
  - {{tenant: acme, name: to-branch, gateway: hub-gw, kind: {{type: SiteToSite, site: branch}}}}
"
        ),
    );
    let tun = format!("it{id}");
    server.worker(
        &mut lab,
        &wk,
        "w1",
        &tun,
        &[
            "--public-address",
            "10.242.0.1",
            "--peer-silence-secs",
            "10",
        ],
    );
    let exported = server.curl(&[&format!(
        "{}/api/v1/tenants/acme/connections/to-branch/device-config",
        server.url
    )]);
    let sif = format!("wg{id}");
    let start_site = |lab: &mut Lab| {
        wireguard_go_from_wg_quick(
            lab,
            &site,
            &sif,
            &exported,
            &site_private,
            Some("51900"),
            &["10.242.2.1/24"],
        );
    };
    start_site(&mut lab);
    // The gateway's own address on the VNet side (GatewaySubnet + 4) answers through the tunnel.
    assert!(
        (0..30).any(|_| ping(&site, Some("10.242.2.1"), "10.242.1.228")),
        "site → gateway ping failed\n{}",
        lab.logs()
    );
    wait_state(&lab, &server, "up", Duration::from_secs(30));
    let up = connection(&server);
    assert!(up["since"].is_string(), "{up}");

    // The site's device stops.
    for pid in run(&["ip", "netns", "pids", &site]).split_whitespace() {
        let _ = Command::new("kill").arg(pid).status();
    }
    let took = wait_state(&lab, &server, "down", Duration::from_secs(180));
    let down = connection(&server);
    assert_eq!(down["reason"], "no_answer", "{down}");
    assert!(
        down["since"].is_string() && down["since"] != up["since"],
        "{down}"
    );
    println!("the stopped site showed down after {took:?}");
    let log = std::fs::read_to_string(lab.dir.path().join("worker-w1.log")).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("INFO") && l.contains("to-branch") && l.contains("down")),
        "one INFO line naming the connection when it goes down:\n{log}"
    );
    assert!(
        !log.contains("HANDSHAKE(REKEY_TIMEOUT)"),
        "boringtun's raw timer warnings are not repeated in the log:\n{log}"
    );

    // It comes back.
    let _ = std::fs::remove_file(format!("/var/run/wireguard/{sif}.sock"));
    start_site(&mut lab);
    wait_state(&lab, &server, "up", Duration::from_secs(60));
    assert!(
        (0..10).any(|_| ping(&site, Some("10.242.2.1"), "10.242.1.228")),
        "no traffic after the site came back\n{}",
        lab.logs()
    );
}
