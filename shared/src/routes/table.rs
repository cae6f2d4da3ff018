//! The route tables: a gateway's forwarding table ([`gateway_routes`], transit by a shortest
//! path over established VNet-to-VNet tunnels, LIM-5; the forced-tunnel default route, GW-9;
//! PolicyBased selectors, GW-1), every gateway's ([`effective_routes`]) and the table a machine
//! inside a VNet sees ([`vnet_routes`], GW-8). They are methods of the resolved network
//! ([`Net`]) so that the desired state and the device configurations compute them from their
//! own [`Net`] without the next-hop walker.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::{GatewayRoutes, NextHop, Route, RouteError, RouteOrigin, SelectorRoute, VnetRoutes};
use crate::model::{GatewayType, QualifiedName, Topology, TrafficSelector};
use crate::prefix::net_order;
use crate::resolved::Net;

fn default_prefixes() -> [IpNet; 2] {
    [
        IpNet::V4(ipnet::Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 0)),
        IpNet::V6(ipnet::Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 0)),
    ]
}

fn finish(routes: &mut Vec<Route>) {
    routes.sort_by(|a, b| {
        net_order(&a.prefix, &b.prefix)
            .then(a.origin.rank().cmp(&b.origin.rank()))
            .then(a.transit_hops.cmp(&b.transit_hops))
            .then_with(|| a.next_hop.cmp(&b.next_hop))
            .then_with(|| a.origin.cmp(&b.origin))
    });
    routes.dedup_by(|later, earlier| {
        later.prefix == earlier.prefix
            && later.next_hop == earlier.next_hop
            && later.origin == earlier.origin
    });
    let mut last: Option<IpNet> = None;
    for r in routes.iter_mut() {
        let p = r.prefix.trunc();
        r.active = last != Some(p);
        last = Some(p);
    }
}

// ---------------------------------------------------------------------------------------------
// Route tables of the resolved network.

impl Net<'_> {
    /// Effective selectors of a PolicyBased site-to-site connection (GW-1): the configured ones,
    /// or every VNet prefix paired with every site prefix.
    fn selectors(&self, g: usize, ci: usize, s: usize) -> Vec<TrafficSelector> {
        let c = &self.t.connections[ci];
        if !c.traffic_selectors.is_empty() {
            return c.traffic_selectors.clone();
        }
        let mut out = Vec::new();
        if let Some(v) = self.vnet_of_gateway(g) {
            for l in &self.t.vnets[v].address_space {
                for r in &self.t.sites[s].address_prefixes {
                    if l.addr().is_ipv4() == r.addr().is_ipv4() {
                        out.push(TrafficSelector {
                            local: l.trunc(),
                            remote: r.trunc(),
                        });
                    }
                }
            }
        }
        out
    }

    /// BFS over established tunnels: reached gateway -> (distance, first connection, first
    /// neighbour). Neighbours are visited in connection-name order, so ties break by name.
    fn bfs(&self, g: usize) -> Vec<(usize, u32, usize, usize)> {
        let mut seen: BTreeSet<usize> = BTreeSet::new();
        seen.insert(g);
        let mut out = Vec::new();
        let mut q: VecDeque<(usize, u32, usize, usize)> = VecDeque::new();
        for &(ci, r) in self.v2v_slice(g) {
            if seen.insert(r) {
                q.push_back((r, 1, ci, r));
            }
        }
        while let Some((h, d, ci, first)) = q.pop_front() {
            out.push((h, d, ci, first));
            for &(_, r) in self.v2v_slice(h) {
                if seen.insert(r) {
                    q.push_back((r, d + 1, ci, first));
                }
            }
        }
        out
    }

    fn forced_tunnel(&self, g: usize) -> Option<(usize, usize)> {
        let gw = &self.t.gateways[g];
        if gw.gateway_type != GatewayType::RouteBased {
            return None;
        }
        let site = gw.forced_tunneling_site.as_deref()?;
        let s = self.site_index(&gw.tenant, site)?;
        self.s2s_slice(g).iter().find(|&&(_, ss)| ss == s).copied()
    }

    pub(crate) fn gateway_routes(&self, g: usize) -> GatewayRoutes {
        let t = self.t;
        let gw = &t.gateways[g];
        let me = self.qn_gw(g);
        let mut routes = Vec::new();
        let mut selectors = Vec::new();
        let mut push =
            |prefix: IpNet, next_hop: NextHop, origin: RouteOrigin, transit_hops: u32| {
                routes.push(Route {
                    prefix: prefix.trunc(),
                    next_hop,
                    origin,
                    transit_hops,
                    active: false,
                });
            };
        if let Some(v) = self.vnet_of_gateway(g) {
            let q = self.qn_vnet(v);
            for p in &t.vnets[v].address_space {
                push(
                    *p,
                    NextHop::Vnet { vnet: q.clone() },
                    RouteOrigin::VnetAddressSpace { vnet: q.clone() },
                    0,
                );
            }
        }
        for &(ci, s) in self.s2s_slice(g) {
            let hop = NextHop::SiteToSite {
                connection: self.qn_conn(ci),
                site: self.qn_site(s),
            };
            match gw.gateway_type {
                GatewayType::RouteBased => {
                    for p in &t.sites[s].address_prefixes {
                        push(
                            *p,
                            hop.clone(),
                            RouteOrigin::Site {
                                site: self.qn_site(s),
                            },
                            0,
                        );
                    }
                }
                GatewayType::PolicyBased => {
                    for sel in self.selectors(g, ci, s) {
                        push(
                            sel.remote,
                            hop.clone(),
                            RouteOrigin::TrafficSelector {
                                connection: self.qn_conn(ci),
                            },
                            0,
                        );
                        selectors.push(SelectorRoute {
                            selector: sel,
                            connection: self.qn_conn(ci),
                            site: self.qn_site(s),
                        });
                    }
                }
            }
        }
        if gw.gateway_type == GatewayType::RouteBased {
            // Point-to-site: own pool (unassigned addresses go nowhere), client host routes.
            for &pi in self.hosted_by(g) {
                let p = &t.point_to_site[pi];
                let owner = QualifiedName::new(&p.tenant, &p.gateway);
                if Some(pi) == self.own_p2s(g) {
                    for pool in &p.address_pool {
                        push(
                            *pool,
                            NextHop::Drop,
                            RouteOrigin::P2sPool {
                                gateway: owner.clone(),
                            },
                            0,
                        );
                    }
                }
                for c in p.clients.iter().filter(|c| p.is_authorised(c)) {
                    let host = IpNet::from(c.address);
                    push(
                        host,
                        NextHop::P2sClient {
                            client: c.name.clone(),
                            gateway: owner.clone(),
                        },
                        RouteOrigin::P2sClient {
                            gateway: owner.clone(),
                            client: c.name.clone(),
                        },
                        0,
                    );
                }
            }
            // LIM-5: transit through established VNet-to-VNet tunnels.
            for (h, d, ci, first) in self.bfs(g) {
                let hop = NextHop::VnetToVnet {
                    connection: self.qn_conn(ci),
                    remote_gateway: self.qn_gw(first),
                };
                if let Some(v) = self.vnet_of_gateway(h) {
                    for p in &t.vnets[v].address_space {
                        push(
                            *p,
                            hop.clone(),
                            RouteOrigin::RemoteVnet {
                                vnet: self.qn_vnet(v),
                            },
                            d - 1,
                        );
                    }
                }
                if let Some(pi) = self.own_p2s(h) {
                    for pool in &t.point_to_site[pi].address_pool {
                        push(
                            *pool,
                            hop.clone(),
                            RouteOrigin::P2sPool {
                                gateway: self.qn_gw(h),
                            },
                            d - 1,
                        );
                    }
                }
                for &(_, s) in self.s2s_slice(h) {
                    for p in &t.sites[s].address_prefixes {
                        push(
                            *p,
                            hop.clone(),
                            RouteOrigin::Site {
                                site: self.qn_site(s),
                            },
                            d,
                        );
                    }
                }
            }
        }
        let default_hop = match self.forced_tunnel(g) {
            Some((ci, s)) => NextHop::ForcedTunnel {
                connection: self.qn_conn(ci),
                site: self.qn_site(s),
            },
            None => NextHop::Internet,
        };
        for p in default_prefixes() {
            push(p, default_hop.clone(), RouteOrigin::Default, 0);
        }
        finish(&mut routes);
        selectors.sort_by(|a, b| {
            (net_order(&a.selector.local, &b.selector.local))
                .then(net_order(&a.selector.remote, &b.selector.remote))
                .then_with(|| a.connection.cmp(&b.connection))
        });
        selectors.dedup();
        GatewayRoutes {
            gateway: me,
            gateway_type: gw.gateway_type,
            routes,
            selectors,
        }
    }

    pub(crate) fn vnet_routes(&self, v: usize, gw_routes: Option<&GatewayRoutes>) -> VnetRoutes {
        let t = self.t;
        let vnet = &t.vnets[v];
        let q = self.qn_vnet(v);
        let g = self.gateway_of_vnet(&vnet.tenant, &vnet.name);
        let mut routes = Vec::new();
        for p in &vnet.address_space {
            routes.push(Route {
                prefix: p.trunc(),
                next_hop: NextHop::Vnet { vnet: q.clone() },
                origin: RouteOrigin::VnetAddressSpace { vnet: q.clone() },
                transit_hops: 0,
                active: false,
            });
        }
        for rs in &vnet.route_sources {
            for p in &rs.prefixes {
                routes.push(Route {
                    prefix: p.trunc(),
                    next_hop: NextHop::RouteSource {
                        vnet: q.clone(),
                        source: rs.name.clone(),
                    },
                    origin: RouteOrigin::RouteSource {
                        source: rs.name.clone(),
                    },
                    transit_hops: 0,
                    active: false,
                });
            }
        }
        let mut forced = false;
        if let (Some(g), Some(gr)) = (g, gw_routes) {
            let gq = self.qn_gw(g);
            for r in gr.routes.iter().filter(|r| r.active) {
                match (&r.origin, &r.next_hop) {
                    (RouteOrigin::VnetAddressSpace { .. }, _) => {}
                    (RouteOrigin::Default, NextHop::ForcedTunnel { .. }) => forced = true,
                    (RouteOrigin::Default, _) => {}
                    _ => routes.push(Route {
                        prefix: r.prefix,
                        next_hop: NextHop::Gateway {
                            gateway: gq.clone(),
                        },
                        origin: r.origin.clone(),
                        transit_hops: r.transit_hops,
                        active: false,
                    }),
                }
            }
        }
        for p in default_prefixes() {
            let next_hop = match (forced, g) {
                (true, Some(g)) => NextHop::Gateway {
                    gateway: self.qn_gw(g),
                },
                _ => NextHop::Internet,
            };
            routes.push(Route {
                prefix: p,
                next_hop,
                origin: RouteOrigin::Default,
                transit_hops: 0,
                active: false,
            });
        }
        finish(&mut routes);
        VnetRoutes {
            vnet: q,
            gateway: g.map(|g| self.qn_gw(g)),
            routes,
        }
    }
}

/// The forwarding table of gateway `gateway`.
pub fn gateway_routes(
    topology: &Topology,
    gateway: &QualifiedName,
) -> Result<GatewayRoutes, RouteError> {
    let net = Net::new(topology);
    let g = net
        .gateway_index(&gateway.tenant, &gateway.name)
        .ok_or_else(|| RouteError::UnknownGateway(gateway.to_string()))?;
    Ok(net.gateway_routes(g))
}

/// The forwarding tables of every gateway (with a unique name), keyed by gateway.
pub fn effective_routes(topology: &Topology) -> BTreeMap<QualifiedName, GatewayRoutes> {
    let net = Net::new(topology);
    (0..topology.gateways.len())
        .filter(|&g| {
            let gw = &topology.gateways[g];
            net.gateway_index(&gw.tenant, &gw.name) == Some(g)
        })
        .map(|g| (net.qn_gw(g), net.gateway_routes(g)))
        .collect()
}

/// The table machines inside VNet `vnet` see (GW-8).
pub fn vnet_routes(topology: &Topology, vnet: &QualifiedName) -> Result<VnetRoutes, RouteError> {
    let net = Net::new(topology);
    let v = net
        .vnet_index(&vnet.tenant, &vnet.name)
        .ok_or_else(|| RouteError::UnknownVnet(vnet.to_string()))?;
    let g = net.gateway_of_vnet(&vnet.tenant, &vnet.name);
    let gr = g.map(|g| net.gateway_routes(g));
    Ok(net.vnet_routes(v, gr.as_ref()))
}
