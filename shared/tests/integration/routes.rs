//! Effective routes and next hop beyond the per-rule tests.

use isthmus_shared::model::{GatewayType, QualifiedName, Sku};
use isthmus_shared::routes::{
    NextHop, NextHopError, Outcome, RouteOrigin, effective_routes, gateway_routes, next_hop,
    next_hop_in, vnet_routes,
};

use crate::common::*;

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

fn q(t: &str, n: &str) -> QualifiedName {
    QualifiedName::new(t, n)
}

/// hub — a — b in a line, plus a ring edge hub — b, plus a site on b.
pub(crate) fn ring() -> isthmus_shared::model::Topology {
    build(
        spoke(
            spoke(hub(), "a", "10.1", "westeurope"),
            "b",
            "10.2",
            "eastus",
        )
        .v2v_pair("hub-a", "hub-gw", "a-hub", "a-gw")
        .v2v_pair("a-b", "a-gw", "b-a", "b-gw")
        .v2v_pair("hub-b", "hub-gw", "b-hub", "b-gw")
        .site("branch", "203.0.113.1", &["192.168.1.0/24"])
        .s2s("b-branch", "b-gw", "branch"),
    )
}

#[test]
fn lim_5_transit_takes_the_shortest_path_and_never_loops() {
    let t = ring();
    assert_valid(&t);
    let r = gateway_routes(&t, &q("acme", "hub-gw")).unwrap();
    let to_b = r.lookup(ip("10.2.0.1")).unwrap();
    assert!(
        matches!(&to_b.next_hop, NextHop::VnetToVnet { connection, .. } if connection.name == "hub-b")
    );
    assert_eq!(to_b.transit_hops, 0);
    // Every gateway reaches every prefix; walking from anywhere to anywhere terminates.
    for src in ["10.0.1.1", "10.1.1.1", "10.2.1.1", "192.168.1.1"] {
        for dst in ["10.0.1.1", "10.1.1.1", "10.2.1.1", "192.168.1.1", "8.8.8.8"] {
            let p = next_hop(&t, ip(src), ip(dst)).unwrap();
            assert!(p.hops.len() <= 4, "{src} → {dst}: {p:#?}");
        }
    }
}

#[test]
fn lim_5_disabled_or_half_tunnels_carry_no_routes() {
    let t = build(
        spoke(hub(), "a", "10.1", "westeurope")
            .v2v_pair("hub-a", "hub-gw", "a-hub", "a-gw")
            .edit_connection("a-hub", |c| c.enabled = false),
    );
    let r = gateway_routes(&t, &q("acme", "hub-gw")).unwrap();
    assert!(matches!(
        r.lookup(ip("10.1.0.1")).unwrap().next_hop,
        NextHop::Internet
    ));
    let half = build(spoke(hub(), "a", "10.1", "westeurope").v2v("hub-a", "hub-gw", None, "a-gw"));
    let r = gateway_routes(&half, &q("acme", "hub-gw")).unwrap();
    assert!(matches!(
        r.lookup(ip("10.1.0.1")).unwrap().next_hop,
        NextHop::Internet
    ));
}

#[test]
fn routes_include_ipv6() {
    let t = build(
        isthmus_shared::builder::TopologyBuilder::new("acme")
            .vnet("hub", "westeurope", &["10.0.0.0/16", "2001:db8:1::/48"])
            .gateway_subnet("hub", "10.0.255.0/27")
            .gateway("hub-gw", "hub", GatewayType::RouteBased, Sku::VpnGw1)
            .site("branch", "203.0.113.1", &["2001:db8:2::/48"])
            .s2s("c", "hub-gw", "branch"),
    );
    assert_valid(&t);
    let p = next_hop(&t, ip("2001:db8:1::5"), ip("2001:db8:2::9")).unwrap();
    assert!(matches!(p.outcome, Outcome::Delivered { .. }), "{p:#?}");
    let p = next_hop(&t, ip("2001:db8:1::5"), ip("2001:4860::8888")).unwrap();
    assert_eq!(p.outcome, Outcome::Internet);
}

#[test]
fn p2s_clients_get_host_routes_and_unassigned_pool_addresses_drop() {
    let t = build(hub().p2s("hub-gw", &["172.16.0.0/24"]).p2s_client(
        "hub-gw",
        "laptop",
        &wgkey(1),
        "172.16.0.2",
    ));
    let r = gateway_routes(&t, &q("acme", "hub-gw")).unwrap();
    assert!(matches!(
        r.lookup(ip("172.16.0.2")).unwrap().next_hop,
        NextHop::P2sClient { .. }
    ));
    assert!(matches!(
        r.lookup(ip("172.16.0.3")).unwrap().next_hop,
        NextHop::Drop
    ));
    let p = next_hop(&t, ip("10.0.1.1"), ip("172.16.0.2")).unwrap();
    assert!(matches!(p.outcome, Outcome::Delivered { .. }));
}

#[test]
fn remote_gateways_learn_p2s_pools_for_the_return_path() {
    let t = build(
        spoke(hub(), "a", "10.1", "westeurope")
            .v2v_pair("hub-a", "hub-gw", "a-hub", "a-gw")
            .p2s("hub-gw", &["172.16.0.0/24"])
            .p2s_client("hub-gw", "laptop", &wgkey(1), "172.16.0.2"),
    );
    let r = gateway_routes(&t, &q("acme", "a-gw")).unwrap();
    let route = r.lookup(ip("172.16.0.2")).unwrap();
    assert!(matches!(route.origin, RouteOrigin::P2sPool { .. }));
    let p = next_hop(&t, ip("10.1.3.3"), ip("172.16.0.2")).unwrap();
    assert!(matches!(p.outcome, Outcome::Delivered { .. }), "{p:#?}");
    let p = next_hop(&t, ip("172.16.0.2"), ip("10.1.3.3")).unwrap();
    assert!(matches!(p.outcome, Outcome::Delivered { .. }), "{p:#?}");
}

#[test]
fn vnet_routes_show_what_the_machines_see() {
    let t = build(
        hub()
            .site("branch", "203.0.113.1", &["192.168.1.0/24"])
            .s2s("c", "hub-gw", "branch"),
    );
    let v = vnet_routes(&t, &q("acme", "hub")).unwrap();
    let active: Vec<(String, &NextHop)> = v
        .routes
        .iter()
        .filter(|r| r.active)
        .map(|r| (r.prefix.to_string(), &r.next_hop))
        .collect();
    assert!(matches!(
        active.iter().find(|(p, _)| p == "10.0.0.0/16").unwrap().1,
        NextHop::Vnet { .. }
    ));
    assert!(matches!(
        active
            .iter()
            .find(|(p, _)| p == "192.168.1.0/24")
            .unwrap()
            .1,
        NextHop::Gateway { .. }
    ));
    assert!(matches!(
        active.iter().find(|(p, _)| p == "0.0.0.0/0").unwrap().1,
        NextHop::Internet
    ));
}

#[test]
fn tenants_may_reuse_address_space_and_next_hop_asks_which() {
    let t = build(
        hub()
            .tenant("globex")
            .vnet("hub", "eastus", &["10.0.0.0/16"]),
    );
    let err = next_hop(&t, ip("10.0.1.1"), ip("10.0.2.2")).unwrap_err();
    assert!(matches!(err, NextHopError::AmbiguousSource { .. }));
    let p = next_hop_in(&t, Some("globex"), ip("10.0.1.1"), ip("10.0.2.2")).unwrap();
    assert!(matches!(p.outcome, Outcome::Delivered { .. }));
}

#[test]
fn effective_routes_cover_every_gateway_and_are_sorted() {
    let t = ring();
    let all = effective_routes(&t);
    assert_eq!(all.len(), 3);
    for table in all.values() {
        let prefixes: Vec<_> = table.routes.iter().map(|r| r.prefix).collect();
        let mut sorted = prefixes.clone();
        sorted.sort_by(|a, b| {
            (a.addr().is_ipv6(), a.network(), a.prefix_len()).cmp(&(
                b.addr().is_ipv6(),
                b.network(),
                b.prefix_len(),
            ))
        });
        assert_eq!(prefixes, sorted);
        // One active route per prefix.
        let active: std::collections::BTreeSet<_> = table
            .routes
            .iter()
            .filter(|r| r.active)
            .map(|r| r.prefix)
            .collect();
        assert_eq!(
            active.len(),
            table.routes.iter().filter(|r| r.active).count()
        );
    }
}
