//! GW-10, the VNet side owned by the worker, with real binaries in namespaces this test creates
//! (root only; skipped with a message otherwise). No route or address is added by the test on
//! the worker's side: the worker puts the gateway's address on its TUN device and routes the
//! sites' prefixes onto it through netlink.
//!
//! ```text
//!  vnet (10.240.1.10) ── 10.240.1.2 [worker host: server 127.0.0.1:18094, worker, TUN] 10.241.0.1 ── site (wireguard-go, 10.240.2.1)
//!   route 10.240.2.0/24 via 10.240.1.2                                     --public-address 10.241.0.1
//! ```
//!
//! The second test runs a worker from a desired-state file on a host that already routes one of
//! the sites' prefixes through another interface: that route is reported, not overwritten.

use std::time::Duration;

use isthmus_shared::desired::DesiredStateMessage;
use isthmus_shared::routes::NextHop;

use crate::harness::*;
use crate::netns::{Lab, ping, run, skip_reason, tcp_transfer};
use crate::server_lab::{Server, forwarding, have_curl, read_status, wireguard_go_from_wg_quick};

fn routes(ns: &str) -> String {
    format!(
        "{}\n{}",
        run(&["ip", "-n", ns, "-4", "route", "show"]),
        run(&["ip", "-n", ns, "-6", "route", "show"])
    )
}

fn topology(site_public: &str, prefix: &str) -> String {
    format!(
        "tenants: [{{name: acme}}]
vnets:
  - {{tenant: acme, name: hub, region: westeurope, address_space: [10.240.1.0/24],
     subnets: [{{name: default, prefix: 10.240.1.0/25}}, {{name: GatewaySubnet, prefix: 10.240.1.224/27}}]}}
gateways:
  - {{tenant: acme, name: hub-gw, vnet: hub, gateway_type: RouteBased, sku: VpnGw1}}
sites:
  - {{tenant: acme, name: branch, device_host: 10.241.0.2, device_port: 51900,
     address_prefixes: [{prefix}], device_public_key: \"{site_public}\"}}
connections:
  - {{tenant: acme, name: to-branch, gateway: hub-gw, kind: {{type: SiteToSite, site: branch}}}}
"
    )
}

#[test]
fn gw_10_vnet_host_and_wireguard_go_site_pass_ping_and_tcp_with_no_route_added_on_the_worker_and_follow_a_prefix_change()
 {
    const NAME: &str = "gw_10_vnet_host_and_wireguard_go_site_pass_ping_and_tcp_with_no_route_added_on_the_worker_and_follow_a_prefix_change";
    if let Some(why) = skip_reason().or_else(|| (!have_curl()).then(|| "curl is missing".into())) {
        println!("SKIPPED {NAME}: {why}");
        return;
    }
    let mut lab = Lab::new("n");
    let id = lab.id.clone();
    let wk = lab.netns("wk");
    let vnet = lab.netns("vnet");
    let site = lab.netns("site");
    // The worker host's NIC in the VNet, and its public side towards the site: what the
    // operator sets up on the host, as on any server.
    lab.link(
        (&wk, &format!("wv{id}"), "10.240.1.2/25"),
        (&vnet, &format!("hv{id}"), "10.240.1.10/25"),
    );
    lab.link(
        (&wk, &format!("ws{id}"), "10.241.0.1/30"),
        (&site, &format!("ss{id}"), "10.241.0.2/30"),
    );
    forwarding(&wk);
    // What the user adds on their VNet router (here the VNet host itself): the site's prefix
    // through the worker host's VNet address.
    run(&[
        "ip",
        "-n",
        &vnet,
        "route",
        "add",
        "10.240.2.0/24",
        "via",
        "10.240.1.2",
    ]);
    let (site_private, site_public) = crate::netns::wg_keypair();

    // The server hands out its default loopback address: the endpoint must come from the
    // worker's --public-address instead.
    let server = Server::start(&mut lab, &wk, "127.0.0.1:18094", "127.0.0.1", "51840-51849");
    server.apply(&lab, &topology(&site_public, "10.240.2.0/24"));
    let tun = format!("it{id}");
    let status = server.worker(
        &mut lab,
        &wk,
        "w1",
        &tun,
        &["--public-address", "10.241.0.1"],
    );

    // The worker sets up its side by itself: the gateway's address (GatewaySubnet + 4) on the
    // TUN device, the site's prefix routed onto it with the worker's protocol.
    let want_route = format!("10.240.2.0/24 dev {tun} proto 73");
    lab.wait_for(
        "the worker's route to the site",
        Duration::from_secs(30),
        || routes(&wk).contains(&want_route),
    );
    let addrs = run(&["ip", "-n", &wk, "addr", "show", "dev", &tun]);
    assert!(addrs.contains("inet 10.240.1.228/32"), "{addrs}");
    assert!(
        !routes(&wk).contains("default"),
        "no default route on the worker host: {}",
        routes(&wk)
    );

    // The site: only the exported device configuration, its private key and its own address.
    let exported = server.curl(&[&format!(
        "{}/api/v1/tenants/acme/connections/to-branch/device-config",
        server.url
    )]);
    let sif = format!("wg{id}");
    wireguard_go_from_wg_quick(
        &mut lab,
        &site,
        &sif,
        &exported,
        &site_private,
        Some("51900"),
        &["10.240.2.1/24"],
    );

    let to_site = (0..30).any(|_| ping(&vnet, None, "10.240.2.1"));
    assert!(to_site, "VNet host → site failed\n{}", lab.logs());
    let to_vnet = (0..10).any(|_| ping(&site, Some("10.240.2.1"), "10.240.1.10"));
    assert!(to_vnet, "site → VNet host failed\n{}", lab.logs());
    tcp_transfer(&vnet, "10.240.1.10", &site, "10.240.2.1");
    tcp_transfer(&site, "10.240.2.1", &vnet, "10.240.1.10");
    assert!(
        read_status(&status)["gateways"][0]["route_conflicts"].is_null(),
        "{}",
        read_status(&status)
    );

    // The site's prefix changes through the API: the old route goes, the new one comes.
    server.apply(&lab, &topology(&site_public, "10.240.3.0/24"));
    let new_route = format!("10.240.3.0/24 dev {tun} proto 73");
    lab.wait_for(
        "the worker's route to the new prefix",
        Duration::from_secs(30),
        || {
            let r = routes(&wk);
            r.contains(&new_route) && !r.contains("10.240.2.0/24")
        },
    );
    // The user's side of the change: the site's new address, the VNet router's new route.
    run(&[
        "ip",
        "-n",
        &site,
        "addr",
        "add",
        "10.240.3.1/24",
        "dev",
        &sif,
    ]);
    run(&[
        "ip",
        "-n",
        &vnet,
        "route",
        "add",
        "10.240.3.0/24",
        "via",
        "10.240.1.2",
    ]);
    let to_new = (0..20).any(|_| ping(&vnet, None, "10.240.3.1"));
    assert!(to_new, "VNet host → new site prefix failed\n{}", lab.logs());
    let from_new = (0..10).any(|_| ping(&site, Some("10.240.3.1"), "10.240.1.10"));
    assert!(
        from_new,
        "new site prefix → VNet host failed\n{}",
        lab.logs()
    );
    assert!(
        !(0..3).any(|_| ping(&vnet, None, "10.240.2.1")),
        "the old prefix is still carried\n{}",
        routes(&wk)
    );
    tcp_transfer(&vnet, "10.240.1.10", &site, "10.240.3.1");

    // GW-3 / GW-10: the exported configuration names the worker's --public-address.
    assert!(
        exported.contains("Endpoint = 10.241.0.1:"),
        "the device configuration should name the worker's --public-address 10.241.0.1:\n{exported}"
    );
}

#[test]
fn gw_10_a_prefix_routed_elsewhere_on_the_host_is_reported_not_overwritten_and_other_routes_ipv6_and_forced_tunnel_are_installed()
 {
    const NAME: &str = "gw_10_a_prefix_routed_elsewhere_on_the_host_is_reported_not_overwritten_and_other_routes_ipv6_and_forced_tunnel_are_installed";
    if let Some(why) = skip_reason() {
        println!("SKIPPED {NAME}: {why}");
        return;
    }
    let mut lab = Lab::new("k");
    let id = lab.id.clone();
    let wk = lab.netns("wk");
    let other = lab.netns("oth");
    let eth = format!("e{id}");
    lab.link(
        (&wk, &eth, "10.245.0.1/30"),
        (&other, &format!("o{id}"), "10.245.0.2/30"),
    );
    // The host already routes 192.168.50.0/24 through another interface.
    run(&[
        "ip",
        "-n",
        &wk,
        "route",
        "add",
        "192.168.50.0/24",
        "dev",
        &eth,
    ]);

    // Gateway gw (IPv4): a site with 192.168.50.0/24 and 192.168.51.0/24, and the forced
    // tunnel's default route. Gateway gw6 (IPv6): a site with fd00:51::/64.
    let forced = NextHop::ForcedTunnel {
        connection: qn("a"),
        site: qn("site-a"),
    };
    let mut g = gateway(
        "gw",
        1,
        51850,
        vec![s2s_peer(
            "a",
            2,
            "10.245.0.2:51900".parse().expect("addr"),
            &["192.168.50.0/24", "192.168.51.0/24", "0.0.0.0/0"],
        )],
        vec![
            vnet_route("10.1.0.0/16"),
            route("192.168.50.0/24", s2s_hop("a")),
            route("192.168.51.0/24", s2s_hop("a")),
            route("0.0.0.0/0", forced),
        ],
    );
    g.private_address = Some("10.1.255.228".parse().expect("addr"));
    let mut g6 = gateway(
        "gw6",
        3,
        51851,
        vec![s2s_peer(
            "b",
            4,
            "10.245.0.2:51901".parse().expect("addr"),
            &["fd00:51::/64"],
        )],
        vec![
            vnet_route("fd00:1::/48"),
            route("fd00:51::/64", s2s_hop("b")),
        ],
    );
    g6.private_address = Some("fd00:1:ff::4".parse().expect("addr"));
    let json =
        serde_json::to_string(&DesiredStateMessage::V1(state(1, vec![g, g6]))).expect("json");
    let desired = lab.write("desired.json", &json);
    let status = lab.dir.path().join("status.json");
    let tun = format!("it{id}");
    let status_s = status.display().to_string();
    let log = lab.worker(
        &wk,
        &desired,
        &[
            "--tun-name",
            &tun,
            "--status-interval",
            "1",
            "--status-file",
            &status_s,
            // Not an address of this host (a NAT address, say): a warning, not a crash.
            "--public-address",
            "198.51.100.7",
        ],
    );
    let worker_pid = lab.children.last().expect("worker").id();

    lab.wait_for("the other routes", Duration::from_secs(30), || {
        let r = routes(&wk);
        r.contains(&format!("192.168.51.0/24 dev {tun} proto 73"))
            && r.contains(&format!("fd00:51::/64 dev {tun} proto 73"))
    });
    // Not overwritten.
    let r = routes(&wk);
    assert!(
        r.contains(&format!("192.168.50.0/24 dev {eth} scope link")),
        "{r}"
    );
    assert!(!r.contains(&format!("192.168.50.0/24 dev {tun}")), "{r}");
    // Forced tunneling: never a default route in the main table; the worker's table and rules.
    assert!(!r.contains("default"), "{r}");
    let table = run(&["ip", "-n", &wk, "route", "show", "table", "7373"]);
    assert!(
        table.contains(&format!("default dev {tun} proto 73")),
        "{table}"
    );
    let rules = run(&["ip", "-n", &wk, "rule", "show"]);
    assert!(
        rules.contains("7370:\tfrom 10.1.0.0/16 lookup main suppress_prefixlength 0 proto 73"),
        "{rules}"
    );
    assert!(
        rules.contains("7371:\tfrom 10.1.0.0/16 lookup 7373 proto 73"),
        "{rules}"
    );
    // Both families of gateway addresses on the TUN device.
    let addrs = run(&["ip", "-n", &wk, "addr", "show", "dev", &tun]);
    assert!(addrs.contains("inet 10.1.255.228/32"), "{addrs}");
    assert!(addrs.contains("inet6 fd00:1:ff::4/128"), "{addrs}");

    // Reported in the status file, by gateway and with the host's route, and in the log.
    let existing = format!("192.168.50.0/24 dev {eth}");
    lab.wait_for(
        "the conflict in the status file",
        Duration::from_secs(20),
        || {
            let s = read_status(&status);
            s["gateways"].as_array().into_iter().flatten().any(|g| {
                g["name"] == "gw"
                    && g["route_conflicts"][0]["prefix"] == "192.168.50.0/24"
                    && g["route_conflicts"][0]["existing"] == existing.as_str()
            })
        },
    );
    let s = read_status(&status);
    let gw6 = s["gateways"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["name"] == "gw6")
        .cloned()
        .unwrap_or_default();
    assert!(gw6["route_conflicts"].is_null(), "{s}");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let warn = text
        .lines()
        .find(|l| l.contains("WARN") && l.contains("route not installed"))
        .unwrap_or_else(|| panic!("no conflict warning:\n{text}"));
    for want in [
        "tenant=t",
        "gateway=gw",
        "prefix=192.168.50.0/24",
        &existing,
    ] {
        assert!(warn.contains(want), "{want} missing from: {warn}");
    }
    assert!(
        text.contains("--public-address 198.51.100.7 is not an address of this host"),
        "{text}"
    );
    // This namespace does not forward: the worker says so with the fix.
    assert!(text.contains("sysctl -w net.ipv4.ip_forward=1"), "{text}");

    // A clean shutdown takes the worker's rules away (routes go with the TUN device).
    run(&["kill", "-TERM", &worker_pid.to_string()]);
    lab.wait_for(
        "the worker to stop and clear its rules",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("worker stopping")
                && !run(&["ip", "-n", &wk, "rule", "show"]).contains("proto 73")
        },
    );
    let rules = run(&["ip", "-n", &wk, "rule", "show"]);
    assert!(!rules.contains("proto 73"), "{rules}");
    assert!(
        routes(&wk).contains(&format!("192.168.50.0/24 dev {eth}")),
        "the other route stays"
    );
}
