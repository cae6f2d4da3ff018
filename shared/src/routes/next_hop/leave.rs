//! The first step of a packet from a site or a point-to-site client (a VNet's is in the
//! parent, beside the gateways' walk).

use std::net::IpAddr;

use ipnet::IpNet;

use super::{Step, Walker, cached, dropped, hop};
use crate::lpm::LpmTable;
use crate::model::{GatewayType, QualifiedName};
use crate::routes::{HopReason, Location, NextHop, Outcome, RouteOrigin};
use crate::rules::RuleId;

impl Walker<'_> {
    /// A machine on site `s`: the device's table, everything each connected gateway advertises
    /// to it (S2S-1).
    pub(super) fn leave_site(&mut self, s: usize, dst: IpAddr) -> Step {
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
                    HopReason::OnSite { dst, prefix: *p },
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
                let why = HopReason::SiteDevice {
                    dst,
                    connection: cq.clone(),
                    gateway: net.qn_gw(g),
                    matched,
                };
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
                        why,
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
                    HopReason::SiteUplink { dst },
                )),
                Outcome::Internet,
            ),
        }
    }

    /// A point-to-site client of configuration `pi` holding `src`: what its home gateway and its
    /// additional VNets' gateways route (P2S-6, P2S-8).
    pub(super) fn leave_pool(&mut self, pi: usize, src: IpAddr, dst: IpAddr) -> Step {
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
            let h = hop(
                Location::P2sClient {
                    gateway: owner,
                    client: None,
                },
                NextHop::Drop,
                None,
                RuleId::Vm1,
                reason,
                HopReason::NoSourceClient { src },
            );
            let out = dropped(&h);
            return Step::Ends(Some(h), out);
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
                let why = HopReason::ClientToGateway {
                    gateway: gq.clone(),
                    matched,
                    dst,
                };
                Step::Enters(
                    hop(
                        here,
                        NextHop::Gateway { gateway: gq },
                        Some(matched),
                        RuleId::P2s8,
                        reason,
                        why,
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
                    HopReason::ClientToInternet { dst },
                )),
                Outcome::Internet,
            ),
        }
    }
}
