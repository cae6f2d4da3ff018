//! Gateways: their VNet (REF-1, VNET-1), endpoint (GW-3; GW-10 through
//! `public_endpoint_warning`), SKU limits (LIM-1, LIM-2), forced tunneling (GW-9) and both halves
//! of GW-7: the VNet's `GatewaySubnet` (the name, appliances inside it) and the gateway's need of
//! one big enough.
//!
//! Enforces: GW-3, GW-7, GW-9, LIM-1, LIM-2, REF-1, VNET-1.

use super::path::FieldPath;
use super::{Lookup, Validator, Violation, deletes, public_endpoint_warning};
use crate::model::{GATEWAY_SUBNET, GatewayType, Kind, RouteSourceKind, Sku, SkuTable, Vnet};
use crate::rules::RuleId;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// GW-7: the longest IPv4 prefix a `GatewaySubnet` may have (at least /29).
pub const GATEWAY_SUBNET_MAX_V4_LEN: u8 = 29;

/// GW-7, IPv6 analogue: a `GatewaySubnet` must be at least /64. IPv6 subnets are /64 by
/// convention (SLAAC and most clouds require it), so nothing smaller is accepted.
pub const GATEWAY_SUBNET_MAX_V6_LEN: u8 = 64;

impl<'a> Validator<'a> {
    pub(super) fn check_gateways(&mut self) {
        let t = self.t;
        // GW-3: endpoints are unique.
        let mut endpoints: BTreeMap<SocketAddr, Vec<usize>> = BTreeMap::new();
        for (i, g) in t.gateways.iter().enumerate() {
            if let Some(e) = g.public_endpoint {
                endpoints.entry(e).or_default().push(i);
            }
        }
        for (gi, g) in t.gateways.iter().enumerate() {
            let base = FieldPath::new(Kind::Gateway, &g.tenant, &g.name);
            let limits = self.skus.get(g.sku);
            // REF-1 / VNET-1 / GW-7
            match self.ix.vnets.lookup(&g.tenant, &g.vnet) {
                Lookup::Missing if self.deleted.has(Kind::Vnet, &g.tenant, &g.vnet) => {
                    self.push(deletes::still_used(
                        Kind::Vnet,
                        &g.tenant,
                        &g.vnet,
                        deletes::User {
                            noun: "gateway",
                            name: &g.name,
                            path: base,
                            how: "",
                            fix: "delete the gateway first",
                            case: "still_used",
                        },
                    ))
                }
                Lookup::Missing => self.push(
                    Violation::new(
                        RuleId::Ref1,
                        base.field("vnet"),
                        format!(
                            "gateway {:?} names VNet {:?}, which does not exist in tenant {:?}; \
                             create the VNet first or fix the name",
                            g.name, g.vnet, g.tenant
                        ),
                    )
                    .case("gateway_vnet")
                    .param("gateway", &g.name)
                    .param("vnet", &g.vnet)
                    .param("tenant", &g.tenant),
                ),
                Lookup::Many => {}
                Lookup::One(vi) => {
                    let v = &t.vnets[vi];
                    self.check_gateway_subnet(v, &g.name);
                }
            }
            if let Lookup::Many = self.vnet_gateway(&g.tenant, &g.vnet) {
                let others: Vec<String> = self
                    .ix
                    .gateways_by_vnet
                    .all(&g.tenant, &g.vnet)
                    .iter()
                    .filter(|&&o| o != gi)
                    .map(|&o| {
                        FieldPath::new(Kind::Gateway, &t.gateways[o].tenant, &t.gateways[o].name)
                            .to_string()
                    })
                    .collect();
                let mut v = Violation::new(
                    RuleId::Vnet1,
                    base.field("vnet"),
                    format!(
                        "VNet {:?} has more than one gateway; a VNet has at most one: delete the \
                         extra gateway",
                        g.vnet
                    ),
                )
                .param("vnet", &g.vnet);
                v.related = others;
                self.push(v);
            }
            // GW-10: the public side must be reachable from other hosts.
            if let Some(v) = public_endpoint_warning(g) {
                self.push(v);
            }
            // GW-3
            if let Some(e) = g.public_endpoint {
                if e.port() == 0 {
                    self.push(
                        Violation::new(
                            RuleId::Gw3,
                            base.field("public_endpoint"),
                            format!(
                                "the public endpoint {e} has port 0; the server allocates a real port"
                            ),
                        )
                        .case("port_zero")
                        .param("endpoint", e),
                    );
                }
                let same = &endpoints[&e];
                if same.len() > 1 {
                    let mut v = Violation::new(
                        RuleId::Gw3,
                        base.field("public_endpoint"),
                        format!(
                            "the public endpoint {e} is also used by another gateway; every gateway \
                             gets its own endpoint when it is created: leave it to the server"
                        ),
                    )
                    .case("shared")
                    .param("endpoint", e);
                    v.related = same
                        .iter()
                        .filter(|&&o| o != gi)
                        .map(|&o| {
                            FieldPath::new(
                                Kind::Gateway,
                                &t.gateways[o].tenant,
                                &t.gateways[o].name,
                            )
                            .to_string()
                        })
                        .collect();
                    self.push(v);
                }
            }
            if let Some(k) = &g.public_key {
                self.check_key(base.field("public_key"), "gateway public key", k);
            }
            // LIM-2 (active-active support)
            if g.active_active && !limits.active_active {
                self.push(
                    Violation::new(
                        RuleId::Lim2,
                        base.field("active_active"),
                        format!(
                            "SKU {} cannot run active-active; pick VpnGw1 or larger, or turn \
                             active-active off",
                            g.sku
                        ),
                    )
                    .case("active_active")
                    .param("sku", g.sku),
                );
            }
            // LIM-1
            let conns: Vec<usize> = self.ix.conns_by_gw().all(&g.tenant, &g.name).to_vec();
            let n = conns.len();
            if self.gateway_of(&g.tenant, &g.name) == Lookup::One(gi)
                && n > limits.max_connections as usize
            {
                let bigger = bigger_sku_for_connections(g.sku, n, self.skus);
                self.push(
                    Violation::new(
                        RuleId::Lim1,
                        base.field("sku"),
                        format!(
                            "gateway {:?} has {n} connections but SKU {} allows {}; remove {} \
                             connection(s){}",
                            g.name,
                            g.sku,
                            limits.max_connections,
                            n - limits.max_connections as usize,
                            match bigger {
                                Some(b) => format!(
                                    " or resize the gateway to {b} ({} connections)",
                                    self.skus.get(b).max_connections
                                ),
                                None => String::new(),
                            }
                        ),
                    )
                    .case(if bigger.is_some() {
                        "too_many_resize"
                    } else {
                        "too_many"
                    })
                    .param("gateway", &g.name)
                    .param("connections", n)
                    .param("limit", limits.max_connections)
                    .param("excess", n - limits.max_connections as usize)
                    .param("sku", g.sku)
                    .param(
                        "bigger_sku",
                        bigger.map(|b| b.to_string()).unwrap_or_default(),
                    )
                    .param(
                        "bigger_limit",
                        bigger
                            .map(|b| self.skus.get(b).max_connections.to_string())
                            .unwrap_or_default(),
                    ),
                );
            }
            // GW-9
            if let Some(site) = &g.forced_tunneling_site {
                let fp = base.field("forced_tunneling_site");
                if g.gateway_type == GatewayType::PolicyBased {
                    self.push(
                        Violation::new(
                            RuleId::Gw9,
                            fp,
                            "forced tunneling needs a RouteBased gateway: a PolicyBased gateway only \
                             sends traffic matching its selectors; change the type or clear the site",
                        )
                        .case("policy_based"),
                    );
                }
                let deleted_conns = self.deleted.connections_of(&g.tenant);
                if self.ix.sites.lookup(&g.tenant, site) == Lookup::Missing
                    && self.deleted.has(Kind::Site, &g.tenant, site)
                {
                    self.push(deletes::still_used(
                        Kind::Site,
                        &g.tenant,
                        site,
                        deletes::User {
                            noun: "gateway",
                            name: &g.name,
                            path: fp,
                            how: " as its forced-tunneling site",
                            fix: "clear the gateway's forced-tunneling site first",
                            case: "still_used_forced",
                        },
                    ));
                } else if self.ix.sites.lookup(&g.tenant, site) == Lookup::Missing {
                    self.push(
                        Violation::new(
                            RuleId::Ref1,
                            fp,
                            format!(
                                "the forced-tunneling site {site:?} does not exist in tenant {:?}",
                                g.tenant
                            ),
                        )
                        .case("forced_site")
                        .param("site", site)
                        .param("tenant", &g.tenant),
                    );
                } else if !conns
                    .iter()
                    .any(|&ci| t.connections[ci].site() == Some(site.as_str()))
                    && !deleted_conns.is_empty()
                {
                    // Only a delete of the site's connection can disconnect it.
                    let names = deleted_conns
                        .iter()
                        .map(|n| format!("{n:?}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    self.push(
                        Violation::new(
                            RuleId::Gw9,
                            fp,
                            format!(
                                "connection {names} carries the forced tunnel of gateway {:?} to \
                                 site {site:?}; clear the gateway's forced-tunneling site first, \
                                 then delete the connection",
                                g.name
                            ),
                        )
                        .case("connection_deleted")
                        .param("gateway", &g.name)
                        .param("site", site)
                        .param("connection", names),
                    );
                } else if !conns
                    .iter()
                    .any(|&ci| t.connections[ci].site() == Some(site.as_str()))
                {
                    self.push(
                        Violation::new(
                            RuleId::Gw9,
                            fp,
                            format!(
                                "the forced-tunneling site {site:?} is not connected to gateway {:?}; \
                                 create a site-to-site connection to it first",
                                g.name
                            ),
                        )
                        .case("not_connected")
                        .param("gateway", &g.name)
                        .param("site", site),
                    );
                }
            }
        }
    }

    /// GW-7, the VNet's side: a subnet that looks like the gateway subnet but is not (the name
    /// is case-sensitive), and an appliance next hop inside `GatewaySubnet`. The gateway's side
    /// (a `GatewaySubnet` exists and is big enough) is [`Self::check_gateway_subnet`].
    pub(super) fn check_vnet_gateway_subnet(&mut self, v: &Vnet) {
        let base = FieldPath::new(Kind::Vnet, &v.tenant, &v.name);
        for s in &v.subnets {
            if s.name != GATEWAY_SUBNET && s.name.eq_ignore_ascii_case(GATEWAY_SUBNET) {
                self.push(
                    Violation::new(
                        RuleId::Gw7,
                        base.key("subnets", &s.name),
                        format!(
                            "subnet {:?} is not the gateway subnet: the name is case-sensitive; \
                             did you mean {GATEWAY_SUBNET:?}?",
                            s.name
                        ),
                    )
                    .case("name_case")
                    .param("subnet", &s.name)
                    .warning(),
                );
            }
        }
        // A GatewaySubnet too small for a gateway, before any gateway exists (with a gateway,
        // `check_gateway_subnet` reports it as an error).
        if let Some(s) = v.gateway_subnet()
            && let Some((max, fam, example)) = too_small(s.prefix)
            && self.vnet_gateway(&v.tenant, &v.name) == Lookup::Missing
        {
            self.push(
                Violation::new(
                    RuleId::Gw7,
                    base.key("subnets", GATEWAY_SUBNET).field("prefix"),
                    format!(
                        "{GATEWAY_SUBNET} {} is smaller than a gateway needs: a gateway will need \
                         at least a /{max} ({fam}); use a prefix length of {max} or less, e.g. \
                         {example}",
                        s.prefix
                    ),
                )
                .case("too_small_no_gateway")
                .param("prefix", s.prefix)
                .param("max_len", max)
                .param("family", fam)
                .param("example", example)
                .warning(),
            );
        }
        for r in &v.route_sources {
            let rp = base.key("route_sources", &r.name);
            if let RouteSourceKind::Appliance { next_hop } = r.kind
                && v.gateway_subnet()
                    .is_some_and(|g| g.prefix.contains(&next_hop))
            {
                self.push(
                    Violation::new(
                        RuleId::Gw7,
                        rp.field("kind").field("next_hop"),
                        format!(
                            "the appliance address {next_hop} is inside {GATEWAY_SUBNET}, which \
                             is reserved for the gateway; place the appliance in another subnet"
                        ),
                    )
                    .case("appliance")
                    .param("address", next_hop),
                );
            }
        }
    }

    fn check_gateway_subnet(&mut self, v: &Vnet, gateway: &str) {
        let base = FieldPath::new(Kind::Vnet, &v.tenant, &v.name);
        match v.gateway_subnet() {
            None => self.push(
                Violation::new(
                    RuleId::Gw7,
                    base.field("subnets"),
                    format!(
                        "VNet {:?} has gateway {gateway:?} but no subnet named {GATEWAY_SUBNET}; \
                         add a {GATEWAY_SUBNET} of at least /{GATEWAY_SUBNET_MAX_V4_LEN} (IPv4) or \
                         /{GATEWAY_SUBNET_MAX_V6_LEN} (IPv6) inside the address space",
                        v.name
                    ),
                )
                .case("missing")
                .param("vnet", &v.name)
                .param("gateway", gateway)
                .param("v4_len", GATEWAY_SUBNET_MAX_V4_LEN)
                .param("v6_len", GATEWAY_SUBNET_MAX_V6_LEN),
            ),
            Some(s) => {
                if let Some((max, fam, example)) = too_small(s.prefix) {
                    self.push(
                        Violation::new(
                            RuleId::Gw7,
                            base.key("subnets", GATEWAY_SUBNET).field("prefix"),
                            format!(
                                "{GATEWAY_SUBNET} {} is too small: the gateway needs at least a \
                                 /{max} ({fam}); use a prefix length of {max} or less, e.g. {example}",
                                s.prefix,
                            ),
                        )
                        .case("too_small")
                        .param("prefix", s.prefix)
                        .param("max_len", max)
                        .param("family", fam)
                        .param("example", example)
                        .param("gateway", gateway),
                    );
                }
            }
        }
    }
}

/// GW-7: when `prefix` is too small for a `GatewaySubnet`: the longest prefix length allowed,
/// the family, and the prefix of that length at the same address (the fix).
fn too_small(prefix: IpNet) -> Option<(u8, &'static str, String)> {
    let (max, fam) = match prefix {
        IpNet::V4(_) => (GATEWAY_SUBNET_MAX_V4_LEN, "IPv4"),
        IpNet::V6(_) => (GATEWAY_SUBNET_MAX_V6_LEN, "IPv6"),
    };
    (prefix.prefix_len() > max).then(|| {
        let example = IpNet::new(prefix.network(), max)
            .map(|n| n.trunc().to_string())
            .unwrap_or_default();
        (max, fam, example)
    })
}

/// The smallest SKU bigger than `current` allowing `needed` connections (LIM-1 hint).
fn bigger_sku_for_connections(current: Sku, needed: usize, table: &SkuTable) -> Option<Sku> {
    Sku::ALL
        .iter()
        .copied()
        .find(|s| *s > current && table.get(*s).max_connections as usize >= needed)
}
