//! Issue 17 item 4 on a real host: transit between an IPsec site (strongSwan, configured only
//! from its exported `swanctl.conf`) and a VNet-to-VNet tunnel. Gateway `hub-gw` (worker w1 in
//! `gw`) has the IPsec connection to strongSwan and a VNet-to-VNet connection to `gw-b`
//! (worker w2 in `gb`, VNet 10.250.6.0/24); a host in VNet B and strongSwan's protected host
//! ping each other through both gateways. Root only; skipped with a message otherwise.
//!
//! ```text
//!  [host] 10.250.2.10 ── [gw: server 10.250.0.2:18100, w1] 10.250.0.2 ── 10.250.0.1 [ss: charon]
//!                          10.250.7.1 ── 10.250.7.2 [gb: w2] ── [hb] 10.250.6.10
//! ```
//!
//! The server hands out one public address with one port per gateway (GW-3); the `gw`
//! namespace owns it and forwards gw-b's port to `gb` (DNAT), as a NAT in front of workers
//! does. No route or address is added for a worker: each sets its TUN device itself.

use std::time::Duration;

use crate::netns::run;
use crate::netns_ipsec::{PSK, Rig, remote_ts, skip_reason, uplink};
use crate::server_lab::vnet_host;
use crate::strongswan_lab::{GW_ADDR, SS_ADDR, SS_HOST, SS_NET};

const VNET_B: &str = "10.250.6.0/24";
const HOST_B: &str = "10.250.6.10";

fn yaml() -> String {
    format!(
        "tenants: [{{name: acme}}]
vnets:
  - {{tenant: acme, name: hub, region: westeurope, address_space: [10.250.2.0/24],
     subnets: [{{name: default, prefix: 10.250.2.0/25}}, {{name: GatewaySubnet, prefix: 10.250.2.224/27}}]}}
  - {{tenant: acme, name: vb, region: westeurope, address_space: [{VNET_B}],
     subnets: [{{name: default, prefix: 10.250.6.0/25}}, {{name: GatewaySubnet, prefix: 10.250.6.224/27}}]}}
gateways:
  - {{tenant: acme, name: hub-gw, vnet: hub, gateway_type: RouteBased, sku: VpnGw1}}
  - {{tenant: acme, name: gw-b, vnet: vb, gateway_type: RouteBased, sku: VpnGw1}}
sites:
  - {{tenant: acme, name: branch, device_host: {SS_ADDR}, address_prefixes: [{SS_NET}]}}
connections:
  - {{tenant: acme, name: to-branch, gateway: hub-gw, kind: {{type: SiteToSite, site: branch}},
     protocol: IPsec, shared_key: {PSK}, connection_mode: InitiatorOnly}}
  - {{tenant: acme, name: hub-to-b, gateway: hub-gw, shared_key: V2vKey2026abc,
     kind: {{type: VnetToVnet, remote_gateway: {{name: gw-b}}}}}}
  - {{tenant: acme, name: b-to-hub, gateway: gw-b, shared_key: V2vKey2026abc,
     kind: {{type: VnetToVnet, remote_gateway: {{name: hub-gw}}}}}}
"
    )
}

/// `iptables -t nat -A CHAIN` in `ns`: UDP to `GW_ADDR:port` goes to `to:port`.
fn dnat(ns: &str, chain: &str, port: &str, to: &str) {
    run(&[
        "ip",
        "netns",
        "exec",
        ns,
        "iptables",
        "-t",
        "nat",
        "-A",
        chain,
        "-d",
        GW_ADDR,
        "-p",
        "udp",
        "--dport",
        port,
        "-j",
        "DNAT",
        "--to-destination",
        &format!("{to}:{port}"),
    ]);
}

/// LIM-5 (transit) between an IPsec site and a VNet-to-VNet tunnel: the site's exported
/// `remote_ts` names VNet B, gw-b's tunnel carries the site's prefix, and VNet B's host and
/// strongSwan's protected host ping each other through hub-gw's forwarding table.
#[test]
fn lim_5_transit_between_a_strongswan_site_and_a_vnet_to_vnet_tunnel() {
    const NAME: &str = "lim_5_transit_between_a_strongswan_site_and_a_vnet_to_vnet_tunnel";
    if let Some(why) = skip_reason() {
        println!("SKIPPED {NAME}: {why}");
        return;
    }
    // Neither worker offers a standby instance: one instance per gateway.
    let single = ["--heartbeat-port", "0"];
    let listen = format!("{GW_ADDR}:18100");
    let mut rig = Rig::serving_on(&listen, "iv", &yaml(), &single);
    // w2's uplink, 10.250.7.0/30, and its way to the public address, where the server and
    // gw-b's peer are (no default route: VNet B reaches anything else only through w2).
    let gb = uplink(&mut rig, "gb", 7);
    let hb = rig.pair.lab.netns("hb");
    let id = rig.pair.lab.id.clone();
    let gw = rig.pair.gw.clone();
    let (endpoint, _) = rig.server.gateway("acme", "gw-b");
    let port = endpoint.rsplit(':').next().expect("port").to_owned();
    // gw-b's port goes to w2: from outside, and from w1 on the same host.
    dnat(&gw, "PREROUTING", &port, "10.250.7.2");
    dnat(&gw, "OUTPUT", &port, "10.250.7.2");
    rig.server
        .put("/placements/acme/gw-b", r#"{"worker":"w2"}"#);
    let mut args = vec!["--public-address", GW_ADDR];
    args.extend_from_slice(&single);
    let _status_b = rig
        .server
        .worker(&mut rig.pair.lab, &gb, "w2", &format!("u{id}"), &args);
    vnet_host(
        &mut rig.pair.lab,
        &gb,
        &hb,
        &format!("{HOST_B}/25"),
        "10.250.6.1/25",
    );

    let swanctl = rig.export("to-branch", "swanctl");
    let remote_ts = remote_ts(&swanctl);
    assert!(
        remote_ts.contains(VNET_B),
        "the IPsec site's remote_ts names VNet B: {remote_ts}\n{swanctl}"
    );
    rig.start_swan(&swanctl);
    rig.wait_up("to-branch", Duration::from_secs(30));
    rig.wait_api(
        "the VNet-to-VNet tunnel up",
        "b-to-hub",
        Duration::from_secs(30),
        |r| r["state"] == "up" && r["worker"] == "w2",
    );
    rig.ping_ok(&hb, None, SS_HOST, 20);
    rig.ping_ok(&rig.pair.ss, Some(SS_HOST), HOST_B, 10);
    rig.ping_ok(&rig.host, None, HOST_B, 5);
    // The pings crossed gw-b's VNet-to-VNet tunnel both ways (its counters, as w2 reports).
    let v2v = rig.wait_api(
        "the VNet-to-VNet tunnel's counters",
        "b-to-hub",
        Duration::from_secs(20),
        |r| r["rx_bytes"].as_i64().unwrap_or(0) > 0 && r["tx_bytes"].as_i64().unwrap_or(0) > 0,
    );
    let child = rig.wait_api(
        "the CHILD SA's counters",
        "to-branch",
        Duration::from_secs(20),
        |r| {
            let c = &r["ipsec"]["children"][0];
            c["rx_packets"].as_u64().unwrap_or(0) >= 2 && c["tx_packets"].as_u64().unwrap_or(0) >= 2
        },
    );
    let selectors = child["ipsec"]["children"][0]["selectors"].to_string();
    assert!(
        selectors.contains(&format!("{VNET_B} === {SS_NET}")),
        "the CHILD SA carries VNet B: {child}"
    );
    println!("MEASURED b-to-hub {v2v}\nto-branch {child}");
    println!("{NAME}: {:?}", rig.started.elapsed());
}
