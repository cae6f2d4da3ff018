//! The VM-2 next-hop walker: the path of a packet from a source address to a destination, hop
//! by hop, each with the rule and the reason that decided it.
//!
//! The walk starts where [`locate`](super::locate) puts the source: a VNet (its machines' table,
//! GW-8), a site (the device's allowed IPs: what each connected gateway advertises, S2S-1) or a
//! point-to-site client (what its gateways route, P2S-8). [`Walker::walk_from`] takes that first
//! step for any source; from a gateway on, [`Walker::at_gateway`] follows the forwarding tables
//! through VNet-to-VNet tunnels (transit, LIM-5) until the packet is delivered, leaves for the
//! Internet (GW-9: through the forced tunnel), is handed to another route source (LIM-7, GW-11)
//! or is dropped (VM-1, GW-1).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::locate::{Locator, Src, location};
use super::{
    GatewayRoutes, Hop, HopReason, Location, NextHop, NextHopError, Outcome, Path, RouteOrigin,
};
use crate::lpm::LpmTable;
use crate::model::{GatewayType, RouteSourceKind, Topology, region_pair};
use crate::resolved::Net;
use crate::rules::RuleId;

mod leave;

fn hop(
    at: Location,
    next_hop: NextHop,
    matched: Option<IpNet>,
    rule: RuleId,
    reason: String,
    why: HopReason,
) -> Hop {
    Hop {
        at,
        next_hop,
        matched,
        rule,
        reason,
        why,
        region_pair: None,
    }
}

/// The outcome of a path that ends at dropping hop `h`.
fn dropped(h: &Hop) -> Outcome {
    Outcome::Dropped {
        reason: h.reason.clone(),
        why: h.why.clone(),
    }
}

/// The English phrase for a route origin inside a hop reason ("the address space of VNet t/v").
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

/// The first step of a packet from its source.
enum Step {
    /// The path ends at the source: the hop that says why (none when the VNet's table has no
    /// route at all) and the outcome.
    Ends(Option<Hop>, Outcome),
    /// The source sends the packet to gateway `g` with this hop.
    Enters(Hop, usize),
}

/// The forwarding table of gateway `g`, computed once per walk.
fn cached<'c>(
    cache: &'c mut BTreeMap<usize, GatewayRoutes>,
    net: &Net<'_>,
    g: usize,
) -> &'c GatewayRoutes {
    cache.entry(g).or_insert_with(|| net.gateway_routes(g))
}

struct Walker<'a> {
    net: Net<'a>,
    sources: Locator,
    gw_cache: BTreeMap<usize, GatewayRoutes>,
}

impl<'a> Walker<'a> {
    fn new(topology: &'a Topology, tenant: Option<&str>) -> Self {
        let net = Net::new(topology);
        let sources = Locator::new(&net, tenant);
        Self {
            net,
            sources,
            gw_cache: BTreeMap::new(),
        }
    }

    /// The path from `src` (where `source` is) to `dst`: the source's own first step, then the
    /// gateways' forwarding tables.
    fn walk_from(
        &mut self,
        from: Src,
        src: IpAddr,
        dst: IpAddr,
        hops: &mut Vec<Hop>,
    ) -> Result<Outcome, NextHopError> {
        let step = match from {
            Src::Vnet(v) => self.leave_vnet(v, dst)?,
            Src::Site(s) => self.leave_site(s, dst),
            Src::Pool(pi) => self.leave_pool(pi, src, dst),
        };
        match step {
            Step::Ends(h, outcome) => {
                hops.extend(h);
                Ok(outcome)
            }
            Step::Enters(h, g) => {
                hops.push(h);
                self.at_gateway(g, src, dst, hops)
            }
        }
    }

    /// From gateway `g` on: its forwarding table, hop by hop through VNet-to-VNet tunnels.
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
            let table = cached(&mut self.gw_cache, &self.net, g);
            let lpm = table.lpm();
            let Some((matched, &ri)) = lpm.lookup(dst) else {
                let h = hop(
                    here,
                    NextHop::Drop,
                    None,
                    RuleId::Gw8,
                    "no route".to_owned(),
                    HopReason::NoRoute,
                );
                let out = dropped(&h);
                hops.push(h);
                return Ok(out);
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
                        HopReason::IntoVnet {
                            dst,
                            matched,
                            origin: route.origin.clone(),
                        },
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
                                HopReason::SelectorMatch {
                                    local: s.selector.local,
                                    remote: s.selector.remote,
                                    src,
                                    dst,
                                    connection: connection.clone(),
                                },
                            ));
                        } else {
                            let reason = format!(
                                "no traffic selector of PolicyBased gateway {} matches {src} → {dst}",
                                self.net.qn_gw(g)
                            );
                            let h = hop(
                                here,
                                NextHop::Drop,
                                Some(matched),
                                RuleId::Gw1,
                                reason,
                                HopReason::NoSelector {
                                    gateway: self.net.qn_gw(g),
                                    src,
                                    dst,
                                },
                            );
                            let out = dropped(&h);
                            hops.push(h);
                            return Ok(out);
                        }
                    } else {
                        hops.push(hop(
                            here,
                            route.next_hop.clone(),
                            Some(matched),
                            RuleId::Gw2,
                            format!("{dst} is in {matched}, {why}: into connection {connection}"),
                            HopReason::IntoSiteToSite {
                                dst,
                                matched,
                                origin: route.origin.clone(),
                                connection: connection.clone(),
                            },
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
                        HopReason::IntoVnetToVnet {
                            dst,
                            matched,
                            origin: route.origin.clone(),
                            transit: !via.is_empty(),
                            connection: connection.clone(),
                        },
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
                        HopReason::ToP2sClient {
                            dst,
                            client: client.clone(),
                        },
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
                        HopReason::ForcedTunnel {
                            dst,
                            connection: connection.clone(),
                            site: site.clone(),
                        },
                    ));
                    return Ok(Outcome::ForcedTunnel { site: site.clone() });
                }
                NextHop::Drop => {
                    let reason = format!(
                        "{dst} is in {matched}, {why}, but no connected client holds it (VM-1)"
                    );
                    let h = hop(
                        here,
                        NextHop::Drop,
                        Some(matched),
                        RuleId::Vm1,
                        reason,
                        HopReason::NoClient {
                            dst,
                            matched,
                            origin: route.origin.clone(),
                        },
                    );
                    let out = dropped(&h);
                    hops.push(h);
                    return Ok(out);
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
                        HopReason::GatewayToInternet { dst },
                    ));
                    return Ok(Outcome::Internet);
                }
            }
        }
    }

    /// A machine in VNet `v`: its own table (GW-8).
    fn leave_vnet(&mut self, v: usize, dst: IpAddr) -> Result<Step, NextHopError> {
        let net = &self.net;
        let vnet = &net.t.vnets[v];
        let here = Location::Vnet {
            vnet: net.qn_vnet(v),
        };
        let g = net.gateway_of_vnet(&vnet.tenant, &vnet.name);
        let gr = g.map(|g| cached(&mut self.gw_cache, net, g));
        let table = net.vnet_routes(v, gr);
        let lpm: LpmTable<usize> = table
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.active)
            .map(|(i, r)| (r.prefix, i))
            .collect();
        let Some((matched, &ri)) = lpm.lookup(dst) else {
            return Ok(Step::Ends(None, Outcome::Internet));
        };
        let route = &table.routes[ri];
        let step = match &route.next_hop {
            NextHop::Vnet { vnet } => Step::Ends(
                Some(hop(
                    here,
                    route.next_hop.clone(),
                    Some(matched),
                    RuleId::Gw8,
                    format!(
                        "{dst} is inside the VNet's own address space ({matched}): it stays inside the VNet"
                    ),
                    HopReason::StaysInVnet { dst, matched },
                )),
                Outcome::Delivered {
                    to: Location::Vnet { vnet: vnet.clone() },
                },
            ),
            NextHop::RouteSource { vnet, source } => {
                let rule = match net.t.vnets[v]
                    .route_sources
                    .iter()
                    .find(|r| &r.name == source)
                    .map(|r| &r.kind)
                {
                    Some(RouteSourceKind::Appliance { .. }) => RuleId::Gw11,
                    _ => RuleId::Lim7,
                };
                Step::Ends(
                    Some(hop(
                        here,
                        route.next_hop.clone(),
                        Some(matched),
                        rule,
                        format!(
                            "{dst} is in {matched}, carried by route source {source:?} (not the VPN gateway)"
                        ),
                        HopReason::ToRouteSource {
                            dst,
                            matched,
                            source: source.clone(),
                        },
                    )),
                    Outcome::HandedOff {
                        vnet: vnet.clone(),
                        source: source.clone(),
                    },
                )
            }
            NextHop::Gateway { gateway } => {
                let (reason, why) = if route.origin == RouteOrigin::Default {
                    (
                        format!(
                            "{dst} is in no connected prefix; forced tunneling sends it to gateway {gateway}"
                        ),
                        HopReason::VnetForcedToGateway {
                            dst,
                            gateway: gateway.clone(),
                        },
                    )
                } else {
                    (
                        format!(
                            "{dst} is in {matched}, {}, a prefix connected through gateway {gateway}: \
                             only such traffic goes through the gateway",
                            describe_origin(&route.origin)
                        ),
                        HopReason::VnetToGateway {
                            dst,
                            matched,
                            origin: route.origin.clone(),
                            gateway: gateway.clone(),
                        },
                    )
                };
                let gi = net
                    .gateway_index(&gateway.tenant, &gateway.name)
                    .ok_or_else(|| NextHopError::RoutingLoop {
                        at: gateway.to_string(),
                    })?;
                Step::Enters(
                    hop(
                        here,
                        route.next_hop.clone(),
                        Some(matched),
                        RuleId::Vm2,
                        reason,
                        why,
                    ),
                    gi,
                )
            }
            _ => Step::Ends(
                Some(hop(
                    here,
                    NextHop::Internet,
                    Some(matched),
                    RuleId::Gw8,
                    format!("{dst} is in no connected prefix: straight to the Internet"),
                    HopReason::VnetToInternet { dst },
                )),
                Outcome::Internet,
            ),
        };
        Ok(step)
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
    let mut w = Walker::new(topology, tenant);
    let mut hops = Vec::new();
    let (from, outcome) = match w.sources.locate(&w.net, source)? {
        Some(src) => (
            location(&w.net, src, source),
            w.walk_from(src, source, destination, &mut hops)?,
        ),
        None => (
            Location::Internet,
            from_internet(topology, source, destination, &mut hops),
        ),
    };
    Ok(Path {
        source,
        destination,
        from,
        hops,
        outcome,
    })
}

/// A packet from an address outside the topology: a private VNet destination is unreachable
/// (VM-1), anything else is Internet traffic.
fn from_internet(
    topology: &Topology,
    source: IpAddr,
    destination: IpAddr,
    hops: &mut Vec<Hop>,
) -> Outcome {
    if topology.vnets.iter().any(|v| v.contains(destination)) {
        let reason = format!(
            "{destination} is a private VNet address; from the Internet a machine is reached \
             by its public address and port, its private address only over a tunnel"
        );
        let h = hop(
            Location::Internet,
            NextHop::Drop,
            None,
            RuleId::Vm1,
            reason,
            HopReason::PrivateFromInternet { dst: destination },
        );
        let out = dropped(&h);
        hops.push(h);
        out
    } else {
        hops.push(hop(
            Location::Internet,
            NextHop::Internet,
            None,
            RuleId::Gw8,
            format!("neither {source} nor {destination} belongs to the topology"),
            HopReason::OutsideTopology {
                src: source,
                dst: destination,
            },
        ));
        Outcome::Internet
    }
}
