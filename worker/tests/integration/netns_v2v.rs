//! Real network: VNet-to-VNet between two `isthmus-worker` processes, each in its own namespace
//! hosting one gateway of the pair, both driven by the real server. A host in VNet A pings a
//! host in VNet B and back. Root only (skipped with a message otherwise).
//!
//! The server hands out one public address with one port per gateway (GW-3); a "wan" namespace
//! owns that address, runs the server, and forwards each gateway's UDP port to the namespace of
//! the worker that runs it (DNAT), as a NAT in front of workers does. Layout:
//!
//! ```text
//!  host-a (10.210.1.10) ─ worker-a [TUN] ─┐            ┌─ [TUN] worker-b ─ host-b (10.210.2.10)
//!                         10.252.1.2      └─ wan ──────┘      10.252.2.2
//!                                   10.252.0.1: server :18091, gateway ports 51820-51829
//! ```

use std::time::{Duration, Instant};

use crate::netns::{Lab, ping, run, skip_reason};
use crate::server_lab::{Server, forwarding, have_curl, read_status, status_peer, vnet_host};

#[test]
fn v2v_lim_6_two_workers_in_two_regions_carry_pings_both_ways_and_meter_billable_bytes() {
    const NAME: &str =
        "v2v_lim_6_two_workers_in_two_regions_carry_pings_both_ways_and_meter_billable_bytes";
    if let Some(why) = skip_reason().or_else(|| (!have_curl()).then(|| "curl is missing".into())) {
        println!("SKIPPED {NAME}: {why}");
        return;
    }
    let mut lab = Lab::new("v");
    let id = lab.id.clone();
    let wan = lab.netns("wan");
    let wa = lab.netns("wa");
    let wb = lab.netns("wb");
    let ha = lab.netns("ha");
    let hb = lab.netns("hb");
    lab.link(
        (&wan, &format!("na{id}"), "10.252.1.1/30"),
        (&wa, &format!("ua{id}"), "10.252.1.2/30"),
    );
    lab.link(
        (&wan, &format!("nb{id}"), "10.252.2.1/30"),
        (&wb, &format!("ub{id}"), "10.252.2.2/30"),
    );
    run(&[
        "ip",
        "-n",
        &wan,
        "addr",
        "add",
        "10.252.0.1/32",
        "dev",
        "lo",
    ]);
    run(&[
        "ip",
        "-n",
        &wa,
        "route",
        "add",
        "default",
        "via",
        "10.252.1.1",
    ]);
    run(&[
        "ip",
        "-n",
        &wb,
        "route",
        "add",
        "default",
        "via",
        "10.252.2.1",
    ]);
    forwarding(&wan);

    let server = Server::start(
        &mut lab,
        &wan,
        "10.252.0.1:18091",
        "10.252.0.1",
        "51820-51829",
    );
    server.apply(
        &lab,
        "tenants: [{name: acme}]
vnets:
  - {tenant: acme, name: va, region: westeurope, address_space: [10.210.1.0/24],
     subnets: [{name: default, prefix: 10.210.1.0/25}, {name: GatewaySubnet, prefix: 10.210.1.224/27}]}
  - {tenant: acme, name: vb, region: northeurope, address_space: [10.210.2.0/24],
     subnets: [{name: default, prefix: 10.210.2.0/25}, {name: GatewaySubnet, prefix: 10.210.2.224/27}]}
gateways:
  - {tenant: acme, name: gw-a, vnet: va, gateway_type: RouteBased, sku: VpnGw1}
  - {tenant: acme, name: gw-b, vnet: vb, gateway_type: RouteBased, sku: VpnGw1}
connections:
  - {tenant: acme, name: a-to-b, gateway: gw-a, shared_key: V2vKey2026abc,
     kind: {type: VnetToVnet, remote_gateway: {name: gw-b}}}
  - {tenant: acme, name: b-to-a, gateway: gw-b, shared_key: V2vKey2026abc,
     kind: {type: VnetToVnet, remote_gateway: {name: gw-a}}}
",
    );
    // Each gateway's port goes to the namespace of the worker that runs it.
    for (gw, worker_addr) in [("gw-a", "10.252.1.2"), ("gw-b", "10.252.2.2")] {
        let (endpoint, _) = server.gateway("acme", gw);
        let port = endpoint.rsplit(':').next().expect("port").to_owned();
        run(&[
            "ip",
            "netns",
            "exec",
            &wan,
            "iptables",
            "-t",
            "nat",
            "-A",
            "PREROUTING",
            "-d",
            "10.252.0.1",
            "-p",
            "udp",
            "--dport",
            &port,
            "-j",
            "DNAT",
            "--to-destination",
            &format!("{worker_addr}:{port}"),
        ]);
    }
    server.put("/placements/acme/gw-a", r#"{"worker":"w-a"}"#);
    server.put("/placements/acme/gw-b", r#"{"worker":"w-b"}"#);

    let (ta, tb) = (format!("ta{id}"), format!("tb{id}"));
    // One gateway per worker, as in two regions: neither worker offers to run a standby
    // instance (no heartbeat address), so neither gateway is redundant here.
    let single = ["--heartbeat-port", "0"];
    let status_a = server.worker(&mut lab, &wa, "w-a", &ta, &single);
    let status_b = server.worker(&mut lab, &wb, "w-b", &tb, &single);
    vnet_host(&mut lab, &wa, &ha, "10.210.1.10/25", "10.210.1.1/25");
    vnet_host(&mut lab, &wb, &hb, "10.210.2.10/25", "10.210.2.1/25");

    let a_to_b = (0..30).any(|_| ping(&ha, None, "10.210.2.10"));
    assert!(
        a_to_b,
        "host in VNet A → host in VNet B failed\n{}",
        lab.logs()
    );
    let b_to_a = (0..10).any(|_| ping(&hb, None, "10.210.1.10"));
    assert!(
        b_to_a,
        "host in VNet B → host in VNet A failed\n{}",
        lab.logs()
    );

    // Each worker ran exactly its own gateway, and counted the pings in its half's counters.
    lab.wait_for(
        "both workers' status files",
        Duration::from_secs(10),
        || {
            let (a, b) = (read_status(&status_a), read_status(&status_b));
            let (pa, pb) = (status_peer(&a, "a-to-b"), status_peer(&b, "b-to-a"));
            pa["rx_bytes"].as_u64().unwrap_or(0) >= 84
                && pa["tx_bytes"].as_u64().unwrap_or(0) >= 84
                && pb["rx_bytes"].as_u64().unwrap_or(0) >= 84
                && pb["tx_bytes"].as_u64().unwrap_or(0) >= 84
        },
    );
    let a = read_status(&status_a);
    assert_eq!(a["gateways"].as_array().map(Vec::len), Some(1), "{a}");
    assert_eq!(a["gateways"][0]["name"], "gw-a", "{a}");
    let b = read_status(&status_b);
    assert_eq!(b["gateways"][0]["name"], "gw-b", "{b}");

    // Both halves' status reached the server, each from its own worker.
    lab.wait_for(
        "both halves' status on the server",
        Duration::from_secs(20),
        || {
            let st = server.get("/tenants/acme/status");
            let half = |c: &str, w: &str| {
                st.as_array().into_iter().flatten().any(|x| {
                    x["connection"] == c
                        && x["worker"] == w
                        && x["last_handshake_unix"].is_number()
                        && x["rx_bytes"].as_i64().unwrap_or(0) > 0
                })
            };
            half("a-to-b", "w-a") && half("b-to-a", "w-b")
        },
    );

    // LIM-6: the two VNets are in different regions, so their outer bytes are billable; each
    // worker metered its half and reported it to the server (status every second here).
    let billed_by_both = |pairs: &serde_json::Value| {
        pairs.as_array().into_iter().flatten().any(|p| {
            let regions = [p["a"].as_str(), p["b"].as_str()];
            let reported_by = |w: &str| {
                p["workers"].as_array().into_iter().flatten().any(|r| {
                    r["worker"] == w
                        && r["tx_bytes"].as_i64().unwrap_or(0) > 0
                        && r["rx_bytes"].as_i64().unwrap_or(0) > 0
                })
            };
            regions.contains(&Some("westeurope"))
                && regions.contains(&Some("northeurope"))
                && p["billable"] == true
                && p["billed_bytes"].as_i64().unwrap_or(0) > 0
                && reported_by("w-a")
                && reported_by("w-b")
        })
    };
    let until = Instant::now() + Duration::from_secs(15);
    let mut last = server.get("/metering/region-pairs");
    while !billed_by_both(&last) {
        assert!(
            Instant::now() < until,
            "no billable westeurope-northeurope bytes from both w-a and w-b on the server \
             within 15 s: {last}\n{}",
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
        last = server.get("/metering/region-pairs");
    }
    // No same-region pair is billed.
    for p in last.as_array().into_iter().flatten() {
        if p["a"] == p["b"] {
            assert_eq!(p["billed_bytes"], 0, "{last}");
        }
    }
}
