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
use super::{GatewayRoutes, Hop, Location, NextHop, NextHopError, Outcome, Path, RouteOrigin};
use crate::lpm::LpmTable;
use crate::model::{GatewayType, QualifiedName, RouteSourceKind, Topology, region_pair};
use crate::resolved::Net;
use crate::rules::RuleId;

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
                    )),
                    Outcome::HandedOff {
                        vnet: vnet.clone(),
                        source: source.clone(),
                    },
                )
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
                )),
                Outcome::Internet,
            ),
        };
        Ok(step)
    }

    /// A machine on site `s`: the device's table, everything each connected gateway advertises
    /// to it (S2S-1).
    fn leave_site(&mut self, s: usize, dst: IpAddr) -> Step {
        let net = &self.net;
        let site_q = net.qn_site(s);
        let here = Location::Site {
            site: site_q.clone(),
        };
        if let Some(p) = net.t.sites[s]
            .address_prefixes
            .iter()
            .find(|p| p.contains(&dst))
        {
            return Step::Ends(
                Some(hop(
                    here,
                    NextHop::Site {
                        site: site_q.clone(),
                    },
                    Some(*p),
                    RuleId::Gw8,
                    format!("{dst} is on the site's own network ({p})"),
                )),
                Outcome::Delivered {
                    to: Location::Site { site: site_q },
                },
            );
        }
        // (connection name, connection, gateway) for every enabled connection to this site.
        let mut conns: Vec<(&str, usize, usize)> = Vec::new();
        for (g, list) in net.s2s_all() {
            for &(ci, ss) in list {
                if ss == s {
                    conns.push((net.t.connections[ci].name.as_str(), ci, g));
                }
            }
        }
        conns.sort();
        let mut entries: Vec<(IpNet, (usize, usize))> = Vec::new();
        for &(_, ci, g) in &conns {
            let cq = net.qn_conn(ci);
            let table = cached(&mut self.gw_cache, net, g);
            if net.t.gateways[g].gateway_type == GatewayType::PolicyBased {
                for sel in table.selectors.iter().filter(|x| x.connection == cq) {
                    entries.push((sel.selector.local, (ci, g)));
                }
                continue;
            }
            for r in table.routes.iter().filter(|r| r.active) {
                let own = matches!(&r.next_hop, NextHop::SiteToSite { connection, .. } | NextHop::ForcedTunnel { connection, .. } if *connection == cq);
                if !own && r.origin != RouteOrigin::Default && r.next_hop != NextHop::Drop {
                    entries.push((r.prefix, (ci, g)));
                }
            }
        }
        let lpm: LpmTable<(usize, usize)> = entries.into_iter().collect();
        match lpm.lookup(dst) {
            Some((matched, &(ci, g))) => {
                let cq = net.qn_conn(ci);
                let reason = format!(
                    "the site device sends {dst} into connection {cq} because gateway {} \
                     advertises {matched} (the device's allowed IPs)",
                    net.qn_gw(g)
                );
                Step::Enters(
                    hop(
                        here,
                        NextHop::SiteToSite {
                            connection: cq,
                            site: site_q,
                        },
                        Some(matched),
                        RuleId::S2s1,
                        reason,
                    ),
                    g,
                )
            }
            None => Step::Ends(
                Some(hop(
                    here,
                    NextHop::Internet,
                    None,
                    RuleId::Gw8,
                    format!("no tunnel carries {dst}: the site's own Internet uplink"),
                )),
                Outcome::Internet,
            ),
        }
    }

    /// A point-to-site client of configuration `pi` holding `src`: what its home gateway and its
    /// additional VNets' gateways route (P2S-6, P2S-8).
    fn leave_pool(&mut self, pi: usize, src: IpAddr, dst: IpAddr) -> Step {
        let net = &self.net;
        let p = &net.t.point_to_site[pi];
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
            return Step::Ends(
                Some(hop(
                    Location::P2sClient {
                        gateway: owner,
                        client: None,
                    },
                    NextHop::Drop,
                    None,
                    RuleId::Vm1,
                    reason.clone(),
                )),
                Outcome::Dropped { reason },
            );
        };
        let here = Location::P2sClient {
            gateway: owner.clone(),
            client: Some(client.name.clone()),
        };
        // Home gateway first, then the additional VNets' gateways (P2S-6), first one wins a prefix.
        let mut gws: Vec<usize> = Vec::new();
        if let Some(g) = net.gateway_index(&p.tenant, &p.gateway) {
            gws.push(g);
        }
        for x in &p.additional_vnets {
            if let Some(g) = net.gateway_of_vnet(&p.tenant, x)
                && !gws.contains(&g)
            {
                gws.push(g);
            }
        }
        let mut entries: Vec<(IpNet, usize)> = Vec::new();
        for &g in &gws {
            let table = cached(&mut self.gw_cache, net, g);
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
                let gq = net.qn_gw(g);
                let reason = format!(
                    "gateway {gq} routes {matched}, so the client sends {dst} through its tunnel"
                );
                Step::Enters(
                    hop(
                        here,
                        NextHop::Gateway { gateway: gq },
                        Some(matched),
                        RuleId::P2s8,
                        reason,
                    ),
                    g,
                )
            }
            None => Step::Ends(
                Some(hop(
                    here,
                    NextHop::Internet,
                    None,
                    RuleId::Gw8,
                    format!(
                        "no gateway of the client routes {dst}: the client's own Internet access"
                    ),
                )),
                Outcome::Internet,
            ),
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
    }
}
