//! Real network: a point-to-site client (`wireguard-go`, configured from the product's own
//! client configuration for the server's topology) reaches a host in the VNet behind the
//! worker's TUN and, through transit, a host behind a site (a second `wireguard-go`, configured
//! from the server's exported device configuration); the client is confined to its address.
//! Root only (skipped with a message otherwise).
//!
//! ```text
//!  site (10.220.2.1) ── 10.253.0.2 ─┐
//!                                   gw: server 127.0.0.1:18092, worker [TUN] ── vnet host 10.220.1.10
//!  client (172.16.201.10) 10.253.1.2┘   public address 10.253.0.1
//! ```

use std::time::Duration;

use isthmus_shared::device::p2s_client_config;
use isthmus_shared::model::{QualifiedName, Topology};

use crate::netns::{Lab, ping, run, skip_reason, wg_keypair};
use crate::server_lab::{
    Server, have_curl, read_status, status_peer, vnet_host, wireguard_go_from_wg_quick,
};

#[test]
fn p2s_8_lim_5_wireguard_go_client_reaches_the_vnet_and_a_site_through_transit_and_is_confined_to_its_address()
 {
    const NAME: &str = "p2s_8_lim_5_wireguard_go_client_reaches_the_vnet_and_a_site_through_transit_and_is_confined_to_its_address";
    if let Some(why) = skip_reason().or_else(|| (!have_curl()).then(|| "curl is missing".into())) {
        println!("SKIPPED {NAME}: {why}");
        return;
    }
    let mut lab = Lab::new("c");
    let id = lab.id.clone();
    let gw = lab.netns("gw");
    let site = lab.netns("site");
    let client = lab.netns("cl");
    let host = lab.netns("host");
    lab.link(
        (&gw, &format!("vs{id}"), "10.253.0.1/30"),
        (&site, &format!("vs{id}"), "10.253.0.2/30"),
    );
    lab.link(
        (&gw, &format!("vc{id}"), "10.253.1.1/30"),
        (&client, &format!("vc{id}"), "10.253.1.2/30"),
    );
    // The client reaches the gateway's public address through its own link.
    run(&[
        "ip",
        "-n",
        &client,
        "route",
        "add",
        "10.253.0.1/32",
        "via",
        "10.253.1.1",
    ]);
    let (site_private, site_public) = wg_keypair();
    let (client_private, client_public) = wg_keypair();

    let server = Server::start(
        &mut lab,
        &gw,
        "127.0.0.1:18092",
        "10.253.0.1",
        "51820-51829",
    );
    server.apply(
        &lab,
        &format!(
            "tenants: [{{name: acme}}]
vnets:
  - {{tenant: acme, name: hub, region: westeurope, address_space: [10.220.1.0/24],
     subnets: [{{name: default, prefix: 10.220.1.0/25}}, {{name: GatewaySubnet, prefix: 10.220.1.224/27}}]}}
gateways:
  - {{tenant: acme, name: hub-gw, vnet: hub, gateway_type: RouteBased, sku: VpnGw1}}
sites:
  - {{tenant: acme, name: branch, device_host: 10.253.0.2, device_port: 51900,
     address_prefixes: [10.220.2.0/24], device_public_key: \"{site_public}\"}}
connections:
  - {{tenant: acme, name: to-branch, gateway: hub-gw, kind: {{type: SiteToSite, site: branch}}}}
point_to_site:
  - {{tenant: acme, gateway: hub-gw, address_pool: [172.16.201.0/24],
     clients: [{{name: laptop, public_key: \"{client_public}\", address: 172.16.201.10}}]}}
"
        ),
    );
    let tun = format!("it{id}");
    let status = server.worker(&mut lab, &gw, "w1", &tun, &[]);
    vnet_host(&mut lab, &gw, &host, "10.220.1.10/25", "10.220.1.1/25");
    // GW-10: the worker routes the site's prefix and the client pool onto its TUN itself.

    // The site, from the device configuration the server exports.
    let exported = server.curl(&[&format!(
        "{}/api/v1/tenants/acme/connections/to-branch/device-config",
        server.url
    )]);
    assert!(
        exported.contains("172.16.201.0/24"),
        "the site's allowed IPs should carry the client pool (transit, LIM-5):\n{exported}"
    );
    wireguard_go_from_wg_quick(
        &mut lab,
        &site,
        &format!("ws{id}"),
        &exported,
        &site_private,
        Some("51900"),
        &["10.220.2.1/24"],
    );

    // The client, from the product's client configuration for the server's topology.
    let topology: Topology =
        serde_json::from_value(server.get("/tenants/acme/topology")).expect("topology JSON");
    let conf = p2s_client_config(&topology, &QualifiedName::new("acme", "hub-gw"), "laptop")
        .expect("the client's configuration");
    let wg_quick = conf.to_wg_quick();
    for want in ["10.220.1.0/24", "10.220.2.0/24", "Endpoint = 10.253.0.1:"] {
        assert!(
            wg_quick.contains(want),
            "client configuration lacks {want}:\n{wg_quick}"
        );
    }
    // A second address on the client's interface to forge inner sources with.
    let cif = format!("wc{id}");
    wireguard_go_from_wg_quick(
        &mut lab,
        &client,
        &cif,
        &wg_quick,
        &client_private,
        None,
        &["172.16.201.99/32"],
    );

    let to_vnet = (0..30).any(|_| ping(&client, Some("172.16.201.10"), "10.220.1.10"));
    assert!(to_vnet, "client → VNet host failed\n{}", lab.logs());
    let to_site = (0..20).any(|_| ping(&client, Some("172.16.201.10"), "10.220.2.1"));
    assert!(
        to_site,
        "client → site host (transit) failed\n{}",
        lab.logs()
    );
    let site_to_client = (0..10).any(|_| ping(&site, Some("10.220.2.1"), "172.16.201.10"));
    assert!(
        site_to_client,
        "site host → client (transit) failed\n{}",
        lab.logs()
    );
    let host_to_client = (0..10).any(|_| ping(&host, None, "172.16.201.10"));
    assert!(host_to_client, "VNet host → client failed\n{}", lab.logs());

    // Confinement: the client's tunnel carries a packet from another address of the pool; the
    // gateway drops it and counts it.
    let drops = |s: &serde_json::Value| s["gateways"][0]["drops"]["disallowed_source"].as_u64();
    let mut before = None;
    lab.wait_for("the status file", Duration::from_secs(10), || {
        before = drops(&read_status(&status));
        before.is_some()
    });
    let before = before.unwrap_or(0);
    for _ in 0..3 {
        assert!(
            !ping(&client, Some("172.16.201.99"), "10.220.1.10"),
            "a packet with a forged source reached the VNet\n{}",
            lab.logs()
        );
    }
    lab.wait_for(
        "the forged packets to be counted",
        Duration::from_secs(10),
        || drops(&read_status(&status)).unwrap_or(0) >= before + 3,
    );
    // The client's own address still works after the forged packets.
    assert!(
        ping(&client, Some("172.16.201.10"), "10.220.1.10"),
        "{}",
        lab.logs()
    );

    let s = read_status(&status);
    let laptop = status_peer(&s, "laptop");
    assert!(laptop["rx_bytes"].as_u64().unwrap_or(0) > 0, "{s}");
    assert!(
        laptop["endpoint"]
            .as_str()
            .is_some_and(|e| e.starts_with("10.253.1.2:")),
        "{s}"
    );
    let branch = status_peer(&s, "to-branch");
    assert!(branch["tx_bytes"].as_u64().unwrap_or(0) > 0, "{s}");
}
