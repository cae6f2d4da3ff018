//! The pure half of the host integration: from the desired state, what the worker wants on its
//! host (addresses on the TUN device, kernel routes onto it, policy rules for forced tunneling);
//! from what the host has, the difference to apply and the conflicts to report. No netlink here,
//! so every decision has unit tests without root.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use isthmus_shared::desired::{DesiredState, RouteConflict};
use isthmus_shared::model::QualifiedName;

/// The `proto` number of every route and rule the worker installs (`ip route show proto 73`):
/// how the worker finds its own routes again (from a previous run, or a prefix that went away)
/// and never touches the routes of other software. 73 is `I` in ASCII; it is not one of the
/// numbers in iproute2's `rt_protos` (0-18, 42, 99, 186-192).
pub const ROUTE_PROTO: u8 = 73;
/// The kernel's main routing table.
pub const MAIN_TABLE: u32 = 254;
/// The worker's own routing table (`--route-table`): only forced-tunnel default routes go there,
/// never into the main table, where they would capture the host's own traffic (the tunnels'
/// outer packets included).
pub const DEFAULT_ROUTE_TABLE: u32 = 7373;
/// Priority of the rule `from <VNet prefix> lookup main suppress_prefixlength 0`: traffic from a
/// forced-tunneling VNet uses every main-table route except the default route (as wg-quick).
pub const RULE_PRIORITY_SUPPRESS: u32 = 7370;
/// Priority of the rule `from <VNet prefix> lookup <route table>`: what is left (the Internet)
/// takes the worker's default route into the tunnel.
pub const RULE_PRIORITY_TABLE: u32 = 7371;

/// A kernel route the worker wants onto its TUN device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedRoute {
    pub prefix: IpNet,
    pub table: u32,
    /// The gateways that forward the prefix into one of their tunnels.
    pub owners: Vec<QualifiedName>,
}

/// A policy rule (`from <from> lookup <table> [suppress_prefixlength N] priority P`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    pub from: IpNet,
    pub table: u32,
    pub suppress_prefixlength: Option<u32>,
    pub priority: u32,
}

/// What the worker wants on its host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Addresses of the TUN device (each gateway's own address as /32 or /128, plus
    /// `--tun-address`).
    pub addresses: BTreeSet<IpNet>,
    /// Sorted by (table, prefix).
    pub routes: Vec<WantedRoute>,
    pub rules: BTreeSet<Rule>,
}

/// A route of the host's routing tables as netlink reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoute {
    pub prefix: IpNet,
    pub table: u32,
    pub proto: u8,
    /// Output interface index.
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    /// `None` for a unicast route, else the kind as `ip route` writes it (`blackhole`, ...).
    pub kind: Option<&'static str>,
    pub metric: Option<u32>,
}

/// What the host has, as far as the worker looks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    /// The TUN device's interface index.
    pub tun_index: u32,
    pub tun_addresses: Vec<IpNet>,
    /// Routes of the main table and of the worker's table, of every protocol.
    pub routes: Vec<HostRoute>,
    /// The worker's own rules (protocol [`ROUTE_PROTO`]).
    pub rules: Vec<Rule>,
    /// Interface names by index, to name a conflicting route.
    pub link_names: BTreeMap<u32, String>,
}

/// A route the worker did not install, and whose gateway wanted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub gateway: QualifiedName,
    pub conflict: RouteConflict,
}

/// The changes that bring the host from [`Current`] to [`Wanted`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub add_addresses: Vec<IpNet>,
    pub del_addresses: Vec<IpNet>,
    /// (prefix, table), onto the TUN device, protocol [`ROUTE_PROTO`].
    pub add_routes: Vec<(IpNet, u32)>,
    /// The worker's own routes only.
    pub del_routes: Vec<HostRoute>,
    pub add_rules: Vec<Rule>,
    pub del_rules: Vec<Rule>,
    pub conflicts: Vec<Conflict>,
}

impl Plan {
    /// Whether nothing changes (conflicts aside).
    pub fn is_empty(&self) -> bool {
        self.add_addresses.is_empty()
            && self.del_addresses.is_empty()
            && self.add_routes.is_empty()
            && self.del_routes.is_empty()
            && self.add_rules.is_empty()
            && self.del_rules.is_empty()
    }
}

fn host_net(a: IpAddr) -> IpNet {
    IpNet::from(a)
}

/// What the worker wants for `desired`: every gateway's `private_address` on the TUN device,
/// `extra_address` (`--tun-address`) too, a route onto the TUN device for every prefix of
/// [`isthmus_shared::desired::GatewayDesired::tunnel_prefixes`] (in the main table; a default
/// route, `0.0.0.0/0` or `::/0`, in `table` with the two rules per VNet prefix of its gateway).
pub fn wanted(desired: &DesiredState, extra_address: Option<IpNet>, table: u32) -> Wanted {
    let mut addresses: BTreeSet<IpNet> = extra_address.into_iter().collect();
    let mut routes: BTreeMap<(u32, IpNet), Vec<QualifiedName>> = BTreeMap::new();
    let mut rules = BTreeSet::new();
    for g in &desired.gateways {
        let owner = QualifiedName::new(&g.tenant, &g.name);
        if let Some(a) = g.private_address {
            addresses.insert(host_net(a));
        }
        let vnets = g.vnet_prefixes();
        for p in g.tunnel_prefixes() {
            let t = if p.prefix_len() == 0 {
                for v in vnets
                    .iter()
                    .filter(|v| v.addr().is_ipv4() == p.addr().is_ipv4())
                {
                    rules.insert(Rule {
                        from: *v,
                        table: MAIN_TABLE,
                        suppress_prefixlength: Some(0),
                        priority: RULE_PRIORITY_SUPPRESS,
                    });
                    rules.insert(Rule {
                        from: *v,
                        table,
                        suppress_prefixlength: None,
                        priority: RULE_PRIORITY_TABLE,
                    });
                }
                table
            } else {
                MAIN_TABLE
            };
            let owners = routes.entry((t, p)).or_default();
            if !owners.contains(&owner) {
                owners.push(owner.clone());
            }
        }
    }
    Wanted {
        addresses,
        routes: routes
            .into_iter()
            .map(|((table, prefix), owners)| WantedRoute {
                prefix,
                table,
                owners,
            })
            .collect(),
        rules,
    }
}

/// A host route as `ip route` names it: `192.168.50.0/24 via 10.0.0.1 dev eth1`.
pub fn describe(r: &HostRoute, names: &BTreeMap<u32, String>) -> String {
    let mut s = String::new();
    if let Some(k) = r.kind {
        s.push_str(k);
        s.push(' ');
    }
    s.push_str(&r.prefix.to_string());
    if let Some(g) = r.gateway {
        s.push_str(&format!(" via {g}"));
    }
    if let Some(i) = r.oif {
        match names.get(&i) {
            Some(n) => s.push_str(&format!(" dev {n}")),
            None => s.push_str(&format!(" dev #{i}")),
        }
    }
    if r.table != MAIN_TABLE {
        s.push_str(&format!(" table {}", r.table));
    }
    s
}

fn is_link_local(n: &IpNet) -> bool {
    match n.addr() {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => a.segments().first().is_some_and(|s| s & 0xffc0 == 0xfe80),
    }
}

/// The difference between `wanted` and `current`. A wanted route whose (prefix, table) the host
/// already routes some other way (another interface, a gateway, a blackhole) and not with the
/// worker's protocol is a conflict: not installed, and the worker's own route for it, if any, is
/// removed. One that already goes onto the TUN device with another protocol (added by hand) is
/// left as it is. The worker's own routes and rules that are not wanted are removed; the routes
/// and rules of other software never are. IPv6 link-local addresses on the TUN are the kernel's
/// and stay.
pub fn diff(wanted: &Wanted, current: &Current) -> Plan {
    let mut plan = Plan::default();
    let have: BTreeSet<IpNet> = current.tun_addresses.iter().copied().collect();
    plan.add_addresses = wanted.addresses.difference(&have).copied().collect();
    plan.del_addresses = current
        .tun_addresses
        .iter()
        .filter(|a| !wanted.addresses.contains(a) && !is_link_local(a))
        .copied()
        .collect();

    let ours = |r: &HostRoute| r.proto == ROUTE_PROTO;
    let onto_tun =
        |r: &HostRoute| r.oif == Some(current.tun_index) && r.gateway.is_none() && r.kind.is_none();
    let mut keep: Vec<&HostRoute> = Vec::new();
    for w in &wanted.routes {
        let same: Vec<&HostRoute> = current
            .routes
            .iter()
            .filter(|r| r.prefix == w.prefix && r.table == w.table)
            .collect();
        let foreign: Vec<&HostRoute> = same.iter().copied().filter(|r| !ours(r)).collect();
        if let Some(other) = foreign.iter().find(|r| !onto_tun(r)) {
            let existing = describe(other, &current.link_names);
            for o in &w.owners {
                plan.conflicts.push(Conflict {
                    gateway: o.clone(),
                    conflict: RouteConflict {
                        prefix: w.prefix,
                        existing: existing.clone(),
                    },
                });
            }
            continue;
        }
        if !foreign.is_empty() {
            // Already onto the TUN device (someone added it by hand): works, not ours.
            continue;
        }
        match same.iter().find(|r| ours(r) && onto_tun(r)) {
            Some(r) => keep.push(r),
            None => plan.add_routes.push((w.prefix, w.table)),
        }
    }
    plan.del_routes = current
        .routes
        .iter()
        .filter(|r| ours(r) && !keep.contains(r))
        .cloned()
        .collect();

    let have_rules: BTreeSet<&Rule> = current.rules.iter().collect();
    plan.add_rules = wanted
        .rules
        .iter()
        .filter(|r| !have_rules.contains(r))
        .cloned()
        .collect();
    plan.del_rules = current
        .rules
        .iter()
        .filter(|r| !wanted.rules.contains(r))
        .cloned()
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use isthmus_shared::desired::{GatewayDesired, Secret, TUNNEL_MTU};
    use isthmus_shared::model::GatewayType;
    use isthmus_shared::routes::{NextHop, Route, RouteOrigin};

    fn net(s: &str) -> IpNet {
        s.parse().expect("prefix")
    }

    fn qn(n: &str) -> QualifiedName {
        QualifiedName::new("t", n)
    }

    fn route(prefix: &str, next_hop: NextHop) -> Route {
        Route {
            prefix: net(prefix),
            next_hop,
            origin: RouteOrigin::Default,
            transit_hops: 0,
            active: true,
        }
    }

    fn site(conn: &str) -> NextHop {
        NextHop::SiteToSite {
            connection: qn(conn),
            site: qn(conn),
        }
    }

    fn gateway(name: &str, private: Option<&str>, routes: Vec<Route>) -> GatewayDesired {
        GatewayDesired {
            tenant: "t".into(),
            name: name.into(),
            gateway_type: GatewayType::RouteBased,
            private_key: Secret::new("k"),
            listen_port: 51820,
            public_endpoint: None,
            private_address: private.map(|a| a.parse().expect("address")),
            tunnel_mtu: TUNNEL_MTU,
            mss_clamp: true,
            peers: Vec::new(),
            routes,
            bandwidth_limit_bps: 0,
            instance: None,
        }
    }

    fn desired(gateways: Vec<GatewayDesired>) -> DesiredState {
        DesiredState {
            version: 1,
            gateways,
        }
    }

    fn vnet(p: &str) -> Route {
        route(p, NextHop::Vnet { vnet: qn("v") })
    }

    fn hub() -> DesiredState {
        desired(vec![gateway(
            "gw",
            Some("10.1.255.228"),
            vec![
                vnet("10.1.0.0/16"),
                vnet("fd00:1::/48"),
                route("192.168.50.0/24", site("a")),
                route("fd00:2::/48", site("a")),
                route("10.9.0.0/16", NextHop::Internet),
            ],
        )])
    }

    const TUN: u32 = 7;

    fn host_route(prefix: &str, proto: u8, oif: u32) -> HostRoute {
        HostRoute {
            prefix: net(prefix),
            table: MAIN_TABLE,
            proto,
            oif: Some(oif),
            gateway: None,
            kind: None,
            metric: None,
        }
    }

    fn current(routes: Vec<HostRoute>) -> Current {
        Current {
            tun_index: TUN,
            tun_addresses: Vec::new(),
            routes,
            rules: Vec::new(),
            link_names: [(TUN, "isthmus0".to_owned()), (2, "eth1".to_owned())].into(),
        }
    }

    #[test]
    fn gw_10_wanted_has_the_gateway_address_and_a_route_per_tunnel_prefix_of_both_families() {
        let w = wanted(&hub(), None, DEFAULT_ROUTE_TABLE);
        assert_eq!(
            w.addresses.iter().copied().collect::<Vec<_>>(),
            vec![net("10.1.255.228/32")]
        );
        let prefixes: Vec<(IpNet, u32)> = w.routes.iter().map(|r| (r.prefix, r.table)).collect();
        assert_eq!(
            prefixes,
            vec![
                (net("192.168.50.0/24"), MAIN_TABLE),
                (net("fd00:2::/48"), MAIN_TABLE)
            ]
        );
        assert_eq!(w.routes[0].owners, vec![qn("gw")]);
        assert!(w.rules.is_empty());
    }

    #[test]
    fn gw_10_an_ipv6_gateway_address_is_a_128_and_tun_address_is_kept() {
        let d = desired(vec![gateway("gw", Some("fd00:1::ff04"), vec![])]);
        let w = wanted(&d, Some(net("10.1.0.1/24")), DEFAULT_ROUTE_TABLE);
        assert_eq!(
            w.addresses.iter().copied().collect::<Vec<_>>(),
            vec![net("10.1.0.1/24"), net("fd00:1::ff04/128")]
        );
    }

    #[test]
    fn gw_10_a_fresh_host_gets_every_address_and_route() {
        let p = diff(&wanted(&hub(), None, DEFAULT_ROUTE_TABLE), &current(vec![]));
        assert_eq!(p.add_addresses, vec![net("10.1.255.228/32")]);
        assert_eq!(
            p.add_routes,
            vec![
                (net("192.168.50.0/24"), MAIN_TABLE),
                (net("fd00:2::/48"), MAIN_TABLE)
            ]
        );
        assert!(p.del_routes.is_empty() && p.conflicts.is_empty());
    }

    #[test]
    fn gw_10_applied_state_is_a_fixed_point() {
        let w = wanted(&hub(), None, DEFAULT_ROUTE_TABLE);
        let mut c = current(vec![
            host_route("192.168.50.0/24", ROUTE_PROTO, TUN),
            host_route("fd00:2::/48", ROUTE_PROTO, TUN),
        ]);
        c.tun_addresses = vec![net("10.1.255.228/32"), net("fe80::1/64")];
        let p = diff(&w, &c);
        assert!(p.is_empty(), "{p:?}");
        assert!(p.conflicts.is_empty());
    }

    #[test]
    fn gw_10_removed_prefixes_and_gateways_lose_their_routes_and_addresses() {
        let mut c = current(vec![
            host_route("192.168.50.0/24", ROUTE_PROTO, TUN),
            host_route("192.168.60.0/24", ROUTE_PROTO, TUN),
        ]);
        c.tun_addresses = vec![net("10.1.255.228/32"), net("10.7.255.228/32")];
        let p = diff(&wanted(&hub(), None, DEFAULT_ROUTE_TABLE), &c);
        assert_eq!(p.del_addresses, vec![net("10.7.255.228/32")]);
        assert_eq!(
            p.del_routes
                .iter()
                .map(|r| r.prefix.to_string())
                .collect::<Vec<_>>(),
            vec!["192.168.60.0/24"]
        );
        assert_eq!(p.add_routes, vec![(net("fd00:2::/48"), MAIN_TABLE)]);
        // Nothing wanted at all: everything of ours goes.
        let p = diff(&wanted(&desired(vec![]), None, DEFAULT_ROUTE_TABLE), &c);
        assert_eq!(p.del_routes.len(), 2);
        assert_eq!(p.del_addresses.len(), 2);
    }

    #[test]
    fn gw_10_routes_of_other_software_are_never_removed() {
        let c = current(vec![
            host_route("10.50.0.0/16", 4, 2),                // static, eth1
            host_route("10.51.0.0/16", 2, TUN),              // kernel, onto the TUN
            host_route("172.20.0.0/16", 186, TUN),           // bgp
            host_route("192.168.50.0/24", ROUTE_PROTO, TUN), // ours, wanted
        ]);
        let p = diff(&wanted(&hub(), None, DEFAULT_ROUTE_TABLE), &c);
        assert!(p.del_routes.is_empty(), "{p:?}");
    }

    #[test]
    fn gw_10_a_prefix_routed_through_another_interface_is_a_conflict_not_overwritten() {
        let d = desired(vec![
            gateway(
                "gw",
                None,
                vec![
                    route("192.168.50.0/24", site("a")),
                    route("192.168.51.0/24", site("a")),
                ],
            ),
            gateway("gw2", None, vec![route("192.168.50.0/24", site("b"))]),
        ]);
        let c = current(vec![
            host_route("192.168.50.0/24", 4, 2),
            // Ours from before the conflict appeared: removed, the other route stays.
            HostRoute {
                metric: Some(10),
                ..host_route("192.168.50.0/24", ROUTE_PROTO, TUN)
            },
        ]);
        let p = diff(&wanted(&d, None, DEFAULT_ROUTE_TABLE), &c);
        assert_eq!(p.add_routes, vec![(net("192.168.51.0/24"), MAIN_TABLE)]);
        assert_eq!(p.del_routes.len(), 1);
        assert_eq!(p.del_routes[0].proto, ROUTE_PROTO);
        let named: Vec<(String, String, String)> = p
            .conflicts
            .iter()
            .map(|c| {
                (
                    c.gateway.to_string(),
                    c.conflict.prefix.to_string(),
                    c.conflict.existing.clone(),
                )
            })
            .collect();
        assert_eq!(
            named,
            vec![
                (
                    "t/gw".into(),
                    "192.168.50.0/24".into(),
                    "192.168.50.0/24 dev eth1".into()
                ),
                (
                    "t/gw2".into(),
                    "192.168.50.0/24".into(),
                    "192.168.50.0/24 dev eth1".into()
                ),
            ]
        );
    }

    #[test]
    fn gw_10_gateways_and_blackholes_are_named_in_the_conflict() {
        let d = desired(vec![gateway(
            "gw",
            None,
            vec![
                route("192.168.50.0/24", site("a")),
                route("192.168.52.0/24", site("a")),
            ],
        )]);
        let c = current(vec![
            HostRoute {
                gateway: Some("10.0.0.1".parse().expect("addr")),
                ..host_route("192.168.50.0/24", 3, 2)
            },
            HostRoute {
                kind: Some("blackhole"),
                oif: None,
                ..host_route("192.168.52.0/24", 4, 0)
            },
        ]);
        let p = diff(&wanted(&d, None, DEFAULT_ROUTE_TABLE), &c);
        let existing: Vec<&str> = p
            .conflicts
            .iter()
            .map(|c| c.conflict.existing.as_str())
            .collect();
        assert_eq!(
            existing,
            vec![
                "192.168.50.0/24 via 10.0.0.1 dev eth1",
                "blackhole 192.168.52.0/24"
            ]
        );
        assert!(p.add_routes.is_empty());
    }

    #[test]
    fn gw_10_a_hand_made_route_onto_the_tun_is_left_alone_and_not_a_conflict() {
        let c = current(vec![host_route("192.168.50.0/24", 3, TUN)]);
        let p = diff(&wanted(&hub(), None, DEFAULT_ROUTE_TABLE), &c);
        assert!(p.conflicts.is_empty());
        assert_eq!(p.add_routes, vec![(net("fd00:2::/48"), MAIN_TABLE)]);
        assert!(p.del_routes.is_empty());
    }

    #[test]
    fn gw_10_our_route_onto_an_old_tun_index_is_replaced() {
        let c = current(vec![host_route("192.168.50.0/24", ROUTE_PROTO, 99)]);
        let p = diff(&wanted(&hub(), None, DEFAULT_ROUTE_TABLE), &c);
        assert_eq!(p.del_routes.len(), 1);
        assert!(p.add_routes.contains(&(net("192.168.50.0/24"), MAIN_TABLE)));
    }

    fn forced() -> DesiredState {
        let ft = NextHop::ForcedTunnel {
            connection: qn("a"),
            site: qn("a"),
        };
        desired(vec![gateway(
            "gw",
            None,
            vec![
                vnet("10.1.0.0/16"),
                vnet("10.2.0.0/16"),
                vnet("fd00:1::/48"),
                route("0.0.0.0/0", ft.clone()),
                route("::/0", ft),
                route("192.168.50.0/24", site("a")),
            ],
        )])
    }

    #[test]
    fn gw_9_forced_tunnel_default_goes_to_the_own_table_with_rules_never_main() {
        let w = wanted(&forced(), None, 4242);
        let routes: Vec<(String, u32)> = w
            .routes
            .iter()
            .map(|r| (r.prefix.to_string(), r.table))
            .collect();
        assert_eq!(
            routes,
            vec![
                ("192.168.50.0/24".to_owned(), MAIN_TABLE),
                ("0.0.0.0/0".to_owned(), 4242),
                ("::/0".to_owned(), 4242),
            ]
        );
        assert!(
            !w.routes
                .iter()
                .any(|r| r.table == MAIN_TABLE && r.prefix.prefix_len() == 0)
        );
        let rules: Vec<(String, u32, Option<u32>, u32)> = w
            .rules
            .iter()
            .map(|r| {
                (
                    r.from.to_string(),
                    r.table,
                    r.suppress_prefixlength,
                    r.priority,
                )
            })
            .collect();
        assert_eq!(
            rules,
            vec![
                (
                    "10.1.0.0/16".into(),
                    MAIN_TABLE,
                    Some(0),
                    RULE_PRIORITY_SUPPRESS
                ),
                ("10.1.0.0/16".into(), 4242, None, RULE_PRIORITY_TABLE),
                (
                    "10.2.0.0/16".into(),
                    MAIN_TABLE,
                    Some(0),
                    RULE_PRIORITY_SUPPRESS
                ),
                ("10.2.0.0/16".into(), 4242, None, RULE_PRIORITY_TABLE),
                (
                    "fd00:1::/48".into(),
                    MAIN_TABLE,
                    Some(0),
                    RULE_PRIORITY_SUPPRESS
                ),
                ("fd00:1::/48".into(), 4242, None, RULE_PRIORITY_TABLE),
            ]
        );
    }

    #[test]
    fn gw_9_forced_tunnel_rules_are_reconciled() {
        let w = wanted(&forced(), None, 4242);
        let stale = Rule {
            from: net("10.3.0.0/16"),
            table: 4242,
            suppress_prefixlength: None,
            priority: RULE_PRIORITY_TABLE,
        };
        let mut c = current(vec![]);
        c.rules = w.rules.iter().skip(1).cloned().collect();
        c.rules.push(stale.clone());
        let p = diff(&w, &c);
        assert_eq!(
            p.add_rules,
            w.rules.iter().take(1).cloned().collect::<Vec<_>>()
        );
        assert_eq!(p.del_rules, vec![stale]);
        // The forced tunnel goes away: its rules and its default route go too.
        let mut c = current(vec![HostRoute {
            table: 4242,
            ..host_route("0.0.0.0/0", ROUTE_PROTO, TUN)
        }]);
        c.rules = w.rules.iter().cloned().collect();
        let p = diff(&wanted(&hub(), None, 4242), &c);
        assert_eq!(p.del_rules.len(), 6);
        assert_eq!(p.del_routes.len(), 1);
    }
}
