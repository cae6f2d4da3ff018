//! Effective routes and the next-hop explanation.
//!
//! For every gateway, [`gateway_routes`] computes its forwarding table: prefix → [`NextHop`].
//! Nobody writes transit routes by hand (LIM-5): a RouteBased gateway learns the address spaces,
//! point-to-site pools and sites of every gateway it reaches through established VNet-to-VNet
//! tunnels, along a shortest path (so forwarding never loops: every hop gets strictly closer).
//! A PolicyBased gateway has no transit; its tunnel routes are its traffic selectors (GW-1).
//!
//! What counts: only *enabled* connections, and a VNet-to-VNet tunnel only when both halves
//! exist, are enabled and both gateways are RouteBased. Routes that lose to a better route for
//! the same prefix stay in the list with `active: false` (so the UI can show alternatives).
//! Precedence for one prefix: the VNet itself, then point-to-site clients and pools, then tunnel
//! routes by fewest transit hops, then by next hop (names). The default route (`0.0.0.0/0` and
//! `::/0`) goes to the Internet, or into the forced-tunneling site's connection (GW-9).
//!
//! [`vnet_routes`] is the table a machine inside the VNet sees (GW-8): its own address space
//! stays inside, other route sources (LIM-7, GW-11) come next, then every prefix the gateway
//! routes goes to the gateway, and the rest to the Internet (or the gateway, with forced
//! tunneling).
//!
//! [`next_hop`] walks a packet from a source to a destination, hop by hop, with a reason per hop
//! (VM-2).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::lpm::LpmTable;
use crate::model::{
    GatewayType, QualifiedName, RegionPair, RouteSourceKind, Topology, TrafficSelector, region_pair,
};
use crate::prefix::net_order;
use crate::resolved::Net;
use crate::rules::RuleId;

/// Where a route sends a packet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", deny_unknown_fields)]
pub enum NextHop {
    /// Into the VNet itself (GW-8: traffic to the VNet stays inside).
    Vnet { vnet: QualifiedName },
    /// From inside a VNet (or from a point-to-site client): to this gateway.
    Gateway { gateway: QualifiedName },
    /// Into a site-to-site tunnel.
    SiteToSite {
        connection: QualifiedName,
        site: QualifiedName,
    },
    /// Into a VNet-to-VNet tunnel.
    VnetToVnet {
        connection: QualifiedName,
        remote_gateway: QualifiedName,
    },
    /// To a point-to-site client (of the configuration of `gateway`).
    P2sClient {
        client: String,
        gateway: QualifiedName,
    },
    /// LIM-7 / GW-11: to another route source of the VNet.
    RouteSource { vnet: QualifiedName, source: String },
    /// The destination is on the site's own network.
    Site { site: QualifiedName },
    /// Straight to the Internet.
    Internet,
    /// GW-9: Internet-bound traffic into the forced-tunneling site's connection.
    ForcedTunnel {
        connection: QualifiedName,
        site: QualifiedName,
    },
    /// Nowhere: e.g. a pool address no connected client holds (VM-1), no matching selector.
    Drop,
}

impl NextHop {
    /// Whether the hop is one of the gateway's tunnels (site-to-site, VNet-to-VNet, a
    /// point-to-site client, the forced tunnel).
    pub fn is_tunnel(&self) -> bool {
        matches!(
            self,
            NextHop::SiteToSite { .. }
                | NextHop::VnetToVnet { .. }
                | NextHop::P2sClient { .. }
                | NextHop::ForcedTunnel { .. }
        )
    }
}

/// Why a route exists.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", deny_unknown_fields)]
pub enum RouteOrigin {
    /// The VNet's own address space.
    VnetAddressSpace { vnet: QualifiedName },
    /// A point-to-site client's address.
    P2sClient {
        gateway: QualifiedName,
        client: String,
    },
    /// A point-to-site client address pool.
    P2sPool { gateway: QualifiedName },
    /// GW-1: a traffic selector of a PolicyBased connection.
    TrafficSelector { connection: QualifiedName },
    /// A site's address prefixes (directly connected or through transit).
    Site { site: QualifiedName },
    /// Another VNet's address space, through VNet-to-VNet (LIM-5 when transit).
    RemoteVnet { vnet: QualifiedName },
    /// LIM-7 / GW-11: another route source of the VNet.
    RouteSource { source: String },
    /// The default route (GW-8 / GW-9).
    Default,
}

impl RouteOrigin {
    fn rank(&self) -> u8 {
        match self {
            RouteOrigin::VnetAddressSpace { .. } => 0,
            RouteOrigin::RouteSource { .. } => 1,
            RouteOrigin::P2sClient { .. } => 2,
            RouteOrigin::P2sPool { .. } => 3,
            RouteOrigin::TrafficSelector { .. }
            | RouteOrigin::Site { .. }
            | RouteOrigin::RemoteVnet { .. } => 4,
            RouteOrigin::Default => 9,
        }
    }
}

/// One route of a forwarding table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub prefix: IpNet,
    pub next_hop: NextHop,
    pub origin: RouteOrigin,
    /// Gateways crossed beyond the next one (0: the destination is attached to the next hop).
    pub transit_hops: u32,
    /// Whether this route wins for its prefix.
    pub active: bool,
}

/// GW-1: a selector of a PolicyBased gateway and the connection it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectorRoute {
    pub selector: TrafficSelector,
    pub connection: QualifiedName,
    pub site: QualifiedName,
}

/// The forwarding table of one gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayRoutes {
    pub gateway: QualifiedName,
    pub gateway_type: GatewayType,
    /// Sorted by prefix (IPv4 first), then precedence.
    pub routes: Vec<Route>,
    /// GW-1: PolicyBased only (empty for RouteBased: GW-2, any-to-any).
    pub selectors: Vec<SelectorRoute>,
}

impl GatewayRoutes {
    /// The active route for `addr` (longest prefix match; linear, for occasional use).
    pub fn lookup(&self, addr: IpAddr) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| r.active && r.prefix.contains(&addr))
            .max_by_key(|r| r.prefix.prefix_len())
    }

    /// An LPM table of the active routes (index into `routes`).
    pub fn lpm(&self) -> LpmTable<usize> {
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.active)
            .map(|(i, r)| (r.prefix, i))
            .collect()
    }

    /// The prefixes of active routes whose next hop is `hop` (a peer's allowed IPs).
    pub fn prefixes_to(&self, hop: &NextHop) -> Vec<IpNet> {
        self.routes
            .iter()
            .filter(|r| r.active && &r.next_hop == hop)
            .map(|r| r.prefix)
            .collect()
    }
}

/// The table a machine inside a VNet sees (GW-8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VnetRoutes {
    pub vnet: QualifiedName,
    pub gateway: Option<QualifiedName>,
    pub routes: Vec<Route>,
}

/// Route computation failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RouteError {
    #[error("there is no gateway {0} (or its name is not unique)")]
    UnknownGateway(String),
    #[error("there is no VNet {0} (or its name is not unique)")]
    UnknownVnet(String),
}

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

// ---------------------------------------------------------------------------------------------
// Next hop (VM-2)

/// Where a packet is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Location {
    Vnet {
        vnet: QualifiedName,
    },
    Gateway {
        gateway: QualifiedName,
    },
    Site {
        site: QualifiedName,
    },
    /// A point-to-site client (of the configuration of `gateway`); `client` is `None` for a pool
    /// address no client holds.
    P2sClient {
        gateway: QualifiedName,
        client: Option<String>,
    },
    Internet,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hop {
    pub at: Location,
    pub next_hop: NextHop,
    /// The prefix that matched, if a route decided.
    pub matched: Option<IpNet>,
    pub rule: RuleId,
    pub reason: String,
    /// LIM-6: the region pair metered for a VNet-to-VNet hop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_pair: Option<RegionPair>,
}

/// Where the packet ends up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Outcome {
    Delivered {
        to: Location,
    },
    Internet,
    /// GW-9: sent to the Internet through the forced-tunneling site.
    ForcedTunnel {
        site: QualifiedName,
    },
    /// LIM-7 / GW-11: handed to another route source of the VNet.
    HandedOff {
        vnet: QualifiedName,
        source: String,
    },
    Dropped {
        reason: String,
    },
}

/// The path of a packet from `source` to `destination`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Path {
    pub source: IpAddr,
    pub destination: IpAddr,
    pub from: Location,
    pub hops: Vec<Hop>,
    pub outcome: Outcome,
}

/// Why no path can be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum NextHopError {
    #[error(
        "source {address} belongs to several resources ({}); name the tenant to disambiguate",
        candidates.join(", ")
    )]
    AmbiguousSource {
        address: IpAddr,
        candidates: Vec<String>,
    },
    #[error("the packet would loop at gateway {at}")]
    RoutingLoop { at: String },
}

fn hop(
    at: Location,
    next_hop: NextHop,
    matched: Option<IpNet>,
    rule: RuleId,
    reason: String,
) -> Hop {
    Hop {
        at,
        next_hop,
        matched,
        rule,
        reason,
        region_pair: None,
    }
}

fn describe_origin(o: &RouteOrigin) -> String {
    match o {
        RouteOrigin::VnetAddressSpace { vnet } => format!("the address space of VNet {vnet}"),
        RouteOrigin::P2sClient { client, .. } => format!("point-to-site client {client:?}"),
        RouteOrigin::P2sPool { gateway } => format!("the point-to-site pool of gateway {gateway}"),
        RouteOrigin::TrafficSelector { connection } => {
            format!("a traffic selector of connection {connection}")
        }
        RouteOrigin::Site { site } => format!("site {site}"),
        RouteOrigin::RemoteVnet { vnet } => format!("VNet {vnet}"),
        RouteOrigin::RouteSource { source } => format!("route source {source:?}"),
        RouteOrigin::Default => "the default route".to_owned(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Src {
    Vnet(usize),
    Site(usize),
    Pool(usize),
}

struct Walker<'a> {
    net: Net<'a>,
    gw_cache: BTreeMap<usize, GatewayRoutes>,
}

impl<'a> Walker<'a> {
    fn routes(&mut self, g: usize) -> &GatewayRoutes {
        let net = &self.net;
        self.gw_cache
            .entry(g)
            .or_insert_with(|| net.gateway_routes(g))
    }

    fn locate(&self, tenant: Option<&str>, addr: IpAddr) -> Result<Option<Src>, NextHopError> {
        let t = self.net.t;
        let ok = |x: &str| tenant.is_none_or(|want| want == x);
        let mut best: Option<u8> = None;
        let mut cands: BTreeSet<(Src, String)> = BTreeSet::new();
        let mut consider = |len: u8, src: Src, name: String| match best {
            Some(b) if b > len => {}
            Some(b) if b == len => {
                cands.insert((src, name));
            }
            _ => {
                best = Some(len);
                cands.clear();
                cands.insert((src, name));
            }
        };
        for (v, vnet) in t.vnets.iter().enumerate() {
            let tn = vnet.tenant.as_str();
            if !ok(tn) || self.net.index.vnets.is_dup(v) {
                continue;
            }
            for p in &t.vnets[v].address_space {
                if p.contains(&addr) {
                    consider(
                        p.prefix_len(),
                        Src::Vnet(v),
                        format!("VNet {}", self.net.qn_vnet(v)),
                    );
                }
            }
        }
        for (s, site) in t.sites.iter().enumerate() {
            let tn = site.tenant.as_str();
            if !ok(tn) || self.net.index.sites.is_dup(s) {
                continue;
            }
            for p in &t.sites[s].address_prefixes {
                if p.contains(&addr) {
                    consider(
                        p.prefix_len(),
                        Src::Site(s),
                        format!("site {}", self.net.qn_site(s)),
                    );
                }
            }
        }
        for (pi, p2s) in t.point_to_site.iter().enumerate() {
            let (tn, gn) = (p2s.tenant.as_str(), p2s.gateway.as_str());
            if !ok(tn) || self.net.index.p2s.is_dup(pi) {
                continue;
            }
            for p in &t.point_to_site[pi].address_pool {
                if p.contains(&addr) {
                    consider(
                        p.prefix_len(),
                        Src::Pool(pi),
                        format!("point-to-site pool of {tn}/{gn}"),
                    );
                }
            }
        }
        // A VNet and its own gateway's pool can't both match at one length without overlap
        // (LIM-3); with an invalid topology, report the ambiguity.
        let srcs: BTreeSet<Src> = cands.iter().map(|(s, _)| *s).collect();
        match srcs.len() {
            0 => Ok(None),
            1 => Ok(srcs.into_iter().next()),
            _ => Err(NextHopError::AmbiguousSource {
                address: addr,
                candidates: cands.into_iter().map(|(_, n)| n).collect(),
            }),
        }
    }

    fn at_gateway(
        &mut self,
        mut g: usize,
        src: IpAddr,
        dst: IpAddr,
        hops: &mut Vec<Hop>,
    ) -> Result<Outcome, NextHopError> {
        let mut visited: BTreeSet<usize> = BTreeSet::new();
        loop {
            if !visited.insert(g) {
                return Err(NextHopError::RoutingLoop {
                    at: self.net.qn_gw(g).to_string(),
                });
            }
            let here = Location::Gateway {
                gateway: self.net.qn_gw(g),
            };
            let gt = self.net.t.gateways[g].gateway_type;
            let table = self.routes(g).clone();
            let lpm = table.lpm();
            let Some((matched, &ri)) = lpm.lookup(dst) else {
                hops.push(hop(
                    here,
                    NextHop::Drop,
                    None,
                    RuleId::Gw8,
                    "no route".to_owned(),
                ));
                return Ok(Outcome::Dropped {
                    reason: "no route".to_owned(),
                });
            };
            let route = &table.routes[ri];
            let why = describe_origin(&route.origin);
            match &route.next_hop {
                NextHop::Vnet { vnet } => {
                    hops.push(hop(
                        here,
                        route.next_hop.clone(),
                        Some(matched),
                        RuleId::Gw8,
                        format!("{dst} is in {matched}, {why}: delivered into the VNet"),
                    ));
                    return Ok(Outcome::Delivered {
                        to: Location::Vnet { vnet: vnet.clone() },
                    });
                }
                NextHop::SiteToSite { connection, site } => {
                    if gt == GatewayType::PolicyBased {
                        let sel = table.selectors.iter().find(|s| {
                            &s.connection == connection
                                && s.selector.local.contains(&src)
                                && s.selector.remote.contains(&dst)
                        });
                        if let Some(s) = sel {
                            hops.push(hop(
                                here,
                                route.next_hop.clone(),
                                Some(s.selector.remote),
                                RuleId::Gw1,
                                format!(
                                    "traffic selector ({}, {}) matches {src} → {dst}: encrypted \
                                     into connection {connection}",
                                    s.selector.local, s.selector.remote
                                ),
                            ));
                        } else {
                            let reason = format!(
                                "no traffic selector of PolicyBased gateway {} matches {src} → {dst}",
                                self.net.qn_gw(g)
                            );
                            hops.push(hop(
                                here,
                                NextHop::Drop,
                                Some(matched),
                                RuleId::Gw1,
                                reason.clone(),
                            ));
                            return Ok(Outcome::Dropped { reason });
                        }
                    } else {
                        hops.push(hop(
                            here,
                            route.next_hop.clone(),
                            Some(matched),
                            RuleId::Gw2,
                            format!("{dst} is in {matched}, {why}: into connection {connection}"),
                        ));
                    }
                    return Ok(Outcome::Delivered {
                        to: Location::Site { site: site.clone() },
                    });
                }
                NextHop::VnetToVnet {
                    connection,
                    remote_gateway,
                } => {
                    let (rule, via) = if route.transit_hops > 0
                        || matches!(route.origin, RouteOrigin::Site { .. })
                    {
                        (RuleId::Lim5, " (transit, computed from the topology)")
                    } else {
                        (RuleId::Gw2, "")
                    };
                    let next = self
                        .net
                        .gateway_index(&remote_gateway.tenant, &remote_gateway.name)
                        .ok_or_else(|| NextHopError::RoutingLoop {
                            at: remote_gateway.to_string(),
                        })?;
                    let mut h = hop(
                        here,
                        route.next_hop.clone(),
                        Some(matched),
                        rule,
                        format!(
                            "{dst} is in {matched}, {why}{via}: into VNet-to-VNet connection {connection}"
                        ),
                    );
                    let ra = self
                        .net
                        .vnet_of_gateway(g)
                        .map(|v| self.net.t.vnets[v].region.as_str());
                    let rb = self
                        .net
                        .vnet_of_gateway(next)
                        .map(|v| self.net.t.vnets[v].region.as_str());
                    if let (Some(a), Some(b)) = (ra, rb) {
                        h.region_pair = Some(region_pair(a, b));
                    }
                    hops.push(h);
                    g = next;
                }
                NextHop::P2sClient { client, gateway } => {
                    hops.push(hop(
                        here,
                        route.next_hop.clone(),
                        Some(matched),
                        RuleId::P2s8,
                        format!("{dst} is point-to-site client {client:?}"),
                    ));
                    return Ok(Outcome::Delivered {
                        to: Location::P2sClient {
                            gateway: gateway.clone(),
                            client: Some(client.clone()),
                        },
                    });
                }
                NextHop::ForcedTunnel { connection, site } => {
                    hops.push(hop(
                        here,
                        route.next_hop.clone(),
                        Some(matched),
                        RuleId::Gw9,
                        format!(
                            "{dst} is in no connected prefix; forced tunneling sends Internet-bound \
                             traffic into connection {connection} to site {site}"
                        ),
                    ));
                    return Ok(Outcome::ForcedTunnel { site: site.clone() });
                }
                NextHop::Drop => {
                    let reason = format!(
                        "{dst} is in {matched}, {why}, but no connected client holds it (VM-1)"
                    );
                    hops.push(hop(
                        here,
                        NextHop::Drop,
                        Some(matched),
                        RuleId::Vm1,
                        reason.clone(),
                    ));
                    return Ok(Outcome::Dropped { reason });
                }
                NextHop::Internet
                | NextHop::Gateway { .. }
                | NextHop::RouteSource { .. }
                | NextHop::Site { .. } => {
                    hops.push(hop(
                        here,
                        NextHop::Internet,
                        Some(matched),
                        RuleId::Gw8,
                        format!("{dst} is in no connected prefix: out to the Internet"),
                    ));
                    return Ok(Outcome::Internet);
                }
            }
        }
    }

    fn walk_from_vnet(
        &mut self,
        v: usize,
        src: IpAddr,
        dst: IpAddr,
        hops: &mut Vec<Hop>,
    ) -> Result<Outcome, NextHopError> {
        let net = &self.net;
        let vnet = &net.t.vnets[v];
        let here = Location::Vnet {
            vnet: net.qn_vnet(v),
        };
        let g = net.gateway_of_vnet(&vnet.tenant, &vnet.name);
        let gr = g.map(|g| self.routes(g).clone());
        let table = self.net.vnet_routes(v, gr.as_ref());
        let lpm: LpmTable<usize> = table
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.active)
            .map(|(i, r)| (r.prefix, i))
            .collect();
        let Some((matched, &ri)) = lpm.lookup(dst) else {
            return Ok(Outcome::Internet);
        };
        let route = &table.routes[ri];
        match &route.next_hop {
            NextHop::Vnet { vnet } => {
                hops.push(hop(
                    here,
                    route.next_hop.clone(),
                    Some(matched),
                    RuleId::Gw8,
                    format!("{dst} is inside the VNet's own address space ({matched}): it stays inside the VNet"),
                ));
                Ok(Outcome::Delivered {
                    to: Location::Vnet { vnet: vnet.clone() },
                })
            }
            NextHop::RouteSource { vnet, source } => {
                let rule = match self.net.t.vnets[v]
                    .route_sources
                    .iter()
                    .find(|r| &r.name == source)
                    .map(|r| &r.kind)
                {
                    Some(RouteSourceKind::Appliance { .. }) => RuleId::Gw11,
                    _ => RuleId::Lim7,
                };
                hops.push(hop(
                    here,
                    route.next_hop.clone(),
                    Some(matched),
                    rule,
                    format!("{dst} is in {matched}, carried by route source {source:?} (not the VPN gateway)"),
                ));
                Ok(Outcome::HandedOff {
                    vnet: vnet.clone(),
                    source: source.clone(),
                })
            }
            NextHop::Gateway { gateway } => {
                let reason = if route.origin == RouteOrigin::Default {
                    format!(
                        "{dst} is in no connected prefix; forced tunneling sends it to gateway {gateway}"
                    )
                } else {
                    format!(
                        "{dst} is in {matched}, {}, a prefix connected through gateway {gateway}: \
                         only such traffic goes through the gateway",
                        describe_origin(&route.origin)
                    )
                };
                hops.push(hop(
                    here,
                    route.next_hop.clone(),
                    Some(matched),
                    RuleId::Vm2,
                    reason,
                ));
                let gi = self
                    .net
                    .gateway_index(&gateway.tenant, &gateway.name)
                    .ok_or_else(|| NextHopError::RoutingLoop {
                        at: gateway.to_string(),
                    })?;
                self.at_gateway(gi, src, dst, hops)
            }
            _ => {
                hops.push(hop(
                    here,
                    NextHop::Internet,
                    Some(matched),
                    RuleId::Gw8,
                    format!("{dst} is in no connected prefix: straight to the Internet"),
                ));
                Ok(Outcome::Internet)
            }
        }
    }

    /// The device's table: everything each connected gateway advertises to it.
    fn walk_from_site(
        &mut self,
        s: usize,
        src: IpAddr,
        dst: IpAddr,
        hops: &mut Vec<Hop>,
    ) -> Result<Outcome, NextHopError> {
        let site_q = self.net.qn_site(s);
        let here = Location::Site {
            site: site_q.clone(),
        };
        if let Some(p) = self.net.t.sites[s]
            .address_prefixes
            .iter()
            .find(|p| p.contains(&dst))
        {
            hops.push(hop(
                here,
                NextHop::Site {
                    site: site_q.clone(),
                },
                Some(*p),
                RuleId::Gw8,
                format!("{dst} is on the site's own network ({p})"),
            ));
            return Ok(Outcome::Delivered {
                to: Location::Site { site: site_q },
            });
        }
        // (connection name, connection, gateway) for every enabled connection to this site.
        let mut conns: Vec<(String, usize, usize)> = Vec::new();
        for (g, list) in self.net.s2s_all() {
            for &(ci, ss) in list {
                if ss == s {
                    conns.push((self.net.t.connections[ci].name.clone(), ci, g));
                }
            }
        }
        conns.sort();
        let mut entries: Vec<(IpNet, (usize, usize))> = Vec::new();
        for (_, ci, g) in &conns {
            let cq = self.net.qn_conn(*ci);
            let gt = self.net.t.gateways[*g].gateway_type;
            let table = self.routes(*g).clone();
            if gt == GatewayType::PolicyBased {
                for sel in table.selectors.iter().filter(|x| x.connection == cq) {
                    entries.push((sel.selector.local, (*ci, *g)));
                }
                continue;
            }
            for r in table.routes.iter().filter(|r| r.active) {
                let own = matches!(&r.next_hop, NextHop::SiteToSite { connection, .. } | NextHop::ForcedTunnel { connection, .. } if *connection == cq);
                if !own && r.origin != RouteOrigin::Default && r.next_hop != NextHop::Drop {
                    entries.push((r.prefix, (*ci, *g)));
                }
            }
        }
        let lpm: LpmTable<(usize, usize)> = entries.into_iter().collect();
        match lpm.lookup(dst) {
            Some((matched, &(ci, g))) => {
                let cq = self.net.qn_conn(ci);
                hops.push(hop(
                    here,
                    NextHop::SiteToSite {
                        connection: cq.clone(),
                        site: site_q,
                    },
                    Some(matched),
                    RuleId::S2s1,
                    format!(
                        "the site device sends {dst} into connection {cq} because gateway {} \
                         advertises {matched} (the device's allowed IPs)",
                        self.net.qn_gw(g)
                    ),
                ));
                self.at_gateway(g, src, dst, hops)
            }
            None => {
                hops.push(hop(
                    here,
                    NextHop::Internet,
                    None,
                    RuleId::Gw8,
                    format!("no tunnel carries {dst}: the site's own Internet uplink"),
                ));
                Ok(Outcome::Internet)
            }
        }
    }

    fn walk_from_pool(
        &mut self,
        pi: usize,
        src: IpAddr,
        dst: IpAddr,
        hops: &mut Vec<Hop>,
    ) -> Result<Outcome, NextHopError> {
        let t = self.net.t;
        let p = &t.point_to_site[pi];
        let owner = QualifiedName::new(&p.tenant, &p.gateway);
        let client = p
            .clients
            .iter()
            .find(|c| c.address == src && p.is_authorised(c));
        let Some(client) = client else {
            let reason = format!(
                "no connected point-to-site client holds {src}; a client that is not connected \
                 cannot reach private addresses"
            );
            hops.push(hop(
                Location::P2sClient {
                    gateway: owner.clone(),
                    client: None,
                },
                NextHop::Drop,
                None,
                RuleId::Vm1,
                reason.clone(),
            ));
            return Ok(Outcome::Dropped { reason });
        };
        let here = Location::P2sClient {
            gateway: owner.clone(),
            client: Some(client.name.clone()),
        };
        // Home gateway first, then the additional VNets' gateways (P2S-6), first one wins a prefix.
        let mut gws: Vec<usize> = Vec::new();
        if let Some(g) = self.net.gateway_index(&p.tenant, &p.gateway) {
            gws.push(g);
        }
        for x in &p.additional_vnets {
            if let Some(g) = self.net.gateway_of_vnet(&p.tenant, x)
                && !gws.contains(&g)
            {
                gws.push(g);
            }
        }
        let mut entries: Vec<(IpNet, usize)> = Vec::new();
        for &g in &gws {
            let table = self.routes(g).clone();
            for r in table.routes.iter().filter(|r| r.active) {
                let skip = matches!(
                    r.origin,
                    RouteOrigin::Default | RouteOrigin::P2sClient { .. }
                ) || matches!(&r.origin, RouteOrigin::P2sPool { gateway } if *gateway == owner);
                if !skip {
                    entries.push((r.prefix, g));
                }
            }
        }
        let lpm: LpmTable<usize> = entries.into_iter().collect();
        match lpm.lookup(dst) {
            Some((matched, &g)) => {
                let gq = self.net.qn_gw(g);
                hops.push(hop(
                    here,
                    NextHop::Gateway { gateway: gq.clone() },
                    Some(matched),
                    RuleId::P2s8,
                    format!("gateway {gq} routes {matched}, so the client sends {dst} through its tunnel"),
                ));
                self.at_gateway(g, src, dst, hops)
            }
            None => {
                hops.push(hop(
                    here,
                    NextHop::Internet,
                    None,
                    RuleId::Gw8,
                    format!(
                        "no gateway of the client routes {dst}: the client's own Internet access"
                    ),
                ));
                Ok(Outcome::Internet)
            }
        }
    }
}

/// VM-2 / GW-8: the path of a packet from `source` to `destination`, hop by hop with reasons.
/// The source is located among all tenants (longest matching prefix of a VNet, a site or a
/// point-to-site pool); an address outside every one of them is an Internet host.
pub fn next_hop(
    topology: &Topology,
    source: IpAddr,
    destination: IpAddr,
) -> Result<Path, NextHopError> {
    next_hop_in(topology, None, source, destination)
}

/// [`next_hop`] with the source looked up only in `tenant` (tenants may reuse address space).
pub fn next_hop_in(
    topology: &Topology,
    tenant: Option<&str>,
    source: IpAddr,
    destination: IpAddr,
) -> Result<Path, NextHopError> {
    let mut w = Walker {
        net: Net::new(topology),
        gw_cache: BTreeMap::new(),
    };
    let mut hops = Vec::new();
    let (from, outcome) = match w.locate(tenant, source)? {
        Some(Src::Vnet(v)) => (
            Location::Vnet {
                vnet: w.net.qn_vnet(v),
            },
            w.walk_from_vnet(v, source, destination, &mut hops)?,
        ),
        Some(Src::Site(s)) => (
            Location::Site {
                site: w.net.qn_site(s),
            },
            w.walk_from_site(s, source, destination, &mut hops)?,
        ),
        Some(Src::Pool(pi)) => {
            let p = &topology.point_to_site[pi];
            let client = p
                .clients
                .iter()
                .find(|c| c.address == source)
                .map(|c| c.name.clone());
            let from = Location::P2sClient {
                gateway: QualifiedName::new(&p.tenant, &p.gateway),
                client,
            };
            (from, w.walk_from_pool(pi, source, destination, &mut hops)?)
        }
        None => {
            let private = topology.vnets.iter().any(|v| v.contains(destination));
            let outcome = if private {
                let reason = format!(
                    "{destination} is a private VNet address; from the Internet a machine is reached \
                     by its public address and port, its private address only over a tunnel"
                );
                hops.push(hop(
                    Location::Internet,
                    NextHop::Drop,
                    None,
                    RuleId::Vm1,
                    reason.clone(),
                ));
                Outcome::Dropped { reason }
            } else {
                hops.push(hop(
                    Location::Internet,
                    NextHop::Internet,
                    None,
                    RuleId::Gw8,
                    format!("neither {source} nor {destination} belongs to the topology"),
                ));
                Outcome::Internet
            };
            (Location::Internet, outcome)
        }
    };
    Ok(Path {
        source,
        destination,
        from,
        hops,
        outcome,
    })
}
