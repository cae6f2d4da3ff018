//! Point-to-site configurations: their gateway (REF-1, P2S-1, CONN-5), client limits and root
//! certificates (P2S-2, P2S-3), the address pool and clients (PFX-2, ADDR-1, NAME-1, NAME-2), and
//! the VNets they reach (P2S-6).
//!
//! Enforces: CONN-5, P2S-1, P2S-2, P2S-3, P2S-6, NAME-1, NAME-2, PFX-2, REF-1, ADDR-1.

use super::path::FieldPath;
use super::{Lookup, MAX_ROOT_CERTIFICATES, Validator, Violation, deletes, join, name_issue};
use crate::model::{GatewayType, Kind, Sku};
use crate::rules::RuleId;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

impl<'a> Validator<'a> {
    pub(super) fn check_point_to_site(&mut self) {
        let t = self.t;
        for p in &t.point_to_site {
            let base = FieldPath::new(Kind::PointToSite, &p.tenant, &p.gateway);
            match self.gateway_of(&p.tenant, &p.gateway) {
                Lookup::Missing if self.deleted.has(Kind::Gateway, &p.tenant, &p.gateway) => self
                    .push(deletes::still_used(
                        Kind::Gateway,
                        &p.tenant,
                        &p.gateway,
                        deletes::User {
                            noun: "point-to-site configuration",
                            name: &p.gateway,
                            path: base,
                            how: "",
                            fix: "delete the point-to-site configuration first",
                            case: "still_used",
                        },
                    )),
                Lookup::Missing => self.push(
                    Violation::new(
                        RuleId::Ref1,
                        base.field("gateway"),
                        format!(
                            "gateway {:?} does not exist in tenant {:?}; create it first",
                            p.gateway, p.tenant
                        ),
                    )
                    .case("p2s_gateway")
                    .param("gateway", &p.gateway)
                    .param("tenant", &p.tenant),
                ),
                Lookup::Many => {}
                Lookup::One(g) => {
                    let gw = &t.gateways[g];
                    if gw.gateway_type == GatewayType::PolicyBased {
                        self.push(
                            Violation::new(
                                RuleId::P2s1,
                                base.field("gateway"),
                                format!(
                                    "point-to-site works only on RouteBased gateways, and {:?} is \
                                 PolicyBased; recreate the gateway as RouteBased",
                                    gw.name
                                ),
                            )
                            .case("policy_based")
                            .param("gateway", &gw.name),
                        );
                        let has_s2s = self
                            .ix
                            .conns_by_gw()
                            .all(&gw.tenant, &gw.name)
                            .iter()
                            .any(|&ci| t.connections[ci].site().is_some());
                        if has_s2s {
                            self.push(Violation::new(
                                RuleId::Conn5,
                                base.field("gateway"),
                                format!(
                                    "site-to-site and point-to-site coexist only on a RouteBased \
                                     gateway; {:?} is PolicyBased and has a site-to-site \
                                     connection: recreate it as RouteBased",
                                    gw.name
                                ),
                            )
                            .param("gateway", &gw.name));
                        }
                    }
                }
            }
            if p.address_pool.is_empty() {
                self.push(
                    Violation::new(
                        RuleId::Pfx2,
                        base.field("address_pool"),
                        "the point-to-site configuration has no client address pool; add a prefix \
                     that overlaps nothing the clients reach",
                    )
                    .case("pool")
                    .param("gateway", &p.gateway),
                );
            }
            self.check_prefix_list(base, "address_pool", &p.address_pool);

            // P2S-3
            if p.root_certificates.len() > MAX_ROOT_CERTIFICATES {
                self.push(
                    Violation::new(
                        RuleId::P2s3,
                        base.field("root_certificates"),
                        format!(
                            "{} root certificates are uploaded; at most {MAX_ROOT_CERTIFICATES} are \
                             allowed: remove {}",
                            p.root_certificates.len(),
                            p.root_certificates.len() - MAX_ROOT_CERTIFICATES
                        ),
                    )
                    .case("too_many")
                    .param("count", p.root_certificates.len())
                    .param("limit", MAX_ROOT_CERTIFICATES)
                    .param("excess", p.root_certificates.len() - MAX_ROOT_CERTIFICATES),
                );
            }
            let mut cert_names: BTreeMap<&str, usize> = BTreeMap::new();
            for c in &p.root_certificates {
                *cert_names.entry(c.name.as_str()).or_insert(0) += 1;
            }
            for (name, n) in cert_names {
                if n > 1 {
                    self.push(
                        Violation::new(
                            RuleId::Name1,
                            base.key("root_certificates", name),
                            format!(
                                "{n} root certificates are named {name:?}; rename or remove one"
                            ),
                        )
                        .case("root_certificate")
                        .param("count", n)
                        .param("name", name),
                    );
                }
            }

            // Clients: NAME-1, KEY-1, ADDR-1, P2S-3 (revoked)
            let mut client_names: BTreeMap<&str, usize> = BTreeMap::new();
            let mut addrs: BTreeMap<IpAddr, BTreeSet<&str>> = BTreeMap::new();
            for c in &p.clients {
                *client_names.entry(c.name.as_str()).or_insert(0) += 1;
                addrs.entry(c.address).or_default().insert(&c.name);
            }
            for c in &p.clients {
                let cp = base.key("clients", &c.name);
                if client_names.get(c.name.as_str()).copied().unwrap_or(0) > 1 {
                    self.push(
                        Violation::new(
                            RuleId::Name1,
                            cp,
                            format!("more than one client is named {:?}; rename one", c.name),
                        )
                        .case("client")
                        .param("name", &c.name),
                    );
                }
                if let Some(issue) = name_issue(&c.name) {
                    let v = Violation::new(
                        RuleId::Name2,
                        cp,
                        format!("client name {:?}: {}", c.name, issue.message),
                    );
                    self.push(issue.apply(v, "client", &c.name));
                }
                self.check_key(cp.field("public_key"), "client public key", &c.public_key);
                if !p.address_pool.is_empty()
                    && !p
                        .address_pool
                        .iter()
                        .any(|n| n.trunc().contains(&c.address))
                {
                    self.push(
                        Violation::new(
                            RuleId::Addr1,
                            cp.field("address"),
                            format!(
                                "client address {} is outside the pool ({}); pick an address in the \
                                 pool",
                                c.address,
                                join(&p.address_pool)
                            ),
                        )
                        .case("outside_pool")
                        .param("address", c.address)
                        .param("pool", join(&p.address_pool)),
                    );
                }
                if let Some(others) = addrs.get(&c.address)
                    && others.len() > 1
                {
                    let mut v = Violation::new(
                        RuleId::Addr1,
                        cp.field("address"),
                        format!(
                            "address {} is given to {} clients; each client needs its own address",
                            c.address,
                            others.len()
                        ),
                    )
                    .case("shared")
                    .param("address", c.address)
                    .param("count", others.len());
                    v.related = others
                        .iter()
                        .filter(|n| **n != c.name)
                        .map(|n| base.key("clients", n).to_string())
                        .collect();
                    self.push(v);
                }
                if !p.is_authorised(c) {
                    self.push(
                        Violation::new(
                            RuleId::P2s3,
                            cp,
                            format!(
                                "client {:?}'s certificate is revoked; it gets no tunnel until it is \
                                 issued a new certificate (or remove the client)",
                                c.name
                            ),
                        )
                        .warning()
                        .case("revoked")
                        .param("client", &c.name),
                    );
                }
            }

            // P2S-6 references
            let home_vnet = match self.gateway_of(&p.tenant, &p.gateway) {
                Lookup::One(g) => Some(t.gateways[g].vnet.as_str()),
                _ => None,
            };
            for (k, x) in p.additional_vnets.iter().enumerate() {
                let xp = base.index("additional_vnets", k);
                if Some(x.as_str()) == home_vnet {
                    self.push(
                        Violation::new(
                            RuleId::P2s6,
                            xp,
                            format!("VNet {x:?} is the gateway's own VNet; list only other VNets"),
                        )
                        .case("own_vnet")
                        .param("vnet", x),
                    );
                    continue;
                }
                match self.ix.vnets.lookup(&p.tenant, x) {
                    Lookup::Missing if self.deleted.has(Kind::Vnet, &p.tenant, x) => {
                        self.push(deletes::still_used(
                            Kind::Vnet,
                            &p.tenant,
                            x,
                            deletes::User {
                                noun: "the point-to-site configuration of gateway",
                                name: &p.gateway,
                                path: xp,
                                how: " in additional_vnets",
                                fix: "remove it from additional_vnets first",
                                case: "still_used_additional",
                            },
                        ));
                        continue;
                    }
                    Lookup::Missing => {
                        self.push(
                            Violation::new(
                                RuleId::Ref1,
                                xp,
                                format!("VNet {x:?} does not exist in tenant {:?}", p.tenant),
                            )
                            .case("additional_vnet")
                            .param("vnet", x)
                            .param("tenant", &p.tenant),
                        );
                        continue;
                    }
                    Lookup::Many => continue,
                    Lookup::One(_) => {}
                }
                match self.vnet_gateway(&p.tenant, x) {
                    Lookup::Missing => self.push(
                        Violation::new(
                            RuleId::P2s6,
                            xp,
                            format!(
                                "VNet {x:?} has no gateway, so clients cannot reach it; add a \
                             RouteBased gateway to it or remove it from the list"
                            ),
                        )
                        .case("no_gateway")
                        .param("vnet", x),
                    ),
                    Lookup::Many => {}
                    Lookup::One(g) => {
                        if t.gateways[g].gateway_type == GatewayType::PolicyBased {
                            self.push(
                                Violation::new(
                                    RuleId::P2s1,
                                    xp,
                                    format!(
                                        "VNet {x:?}'s gateway {:?} is PolicyBased; point-to-site \
                                     clients can only use RouteBased gateways",
                                        t.gateways[g].name
                                    ),
                                )
                                .case("additional_policy_based")
                                .param("vnet", x)
                                .param("gateway", &t.gateways[g].name),
                            );
                        }
                    }
                }
            }
        }

        // P2S-2: clients per gateway.
        let mut per_gw: BTreeMap<usize, BTreeSet<(usize, usize)>> = BTreeMap::new();
        for (g, p, c) in self.hosted_clients() {
            per_gw.entry(g).or_default().insert((p, c));
        }
        for (g, clients) in per_gw {
            let gw = &t.gateways[g];
            let limit = self.skus.get(gw.sku).max_p2s_clients as usize;
            if clients.len() > limit {
                let bigger = Sku::ALL
                    .iter()
                    .copied()
                    .find(|s| self.skus.get(*s).max_p2s_clients as usize >= clients.len());
                let v = Violation::new(
                    RuleId::P2s2,
                    FieldPath::new(Kind::Gateway, &gw.tenant, &gw.name).field("sku"),
                    format!(
                        "gateway {:?} serves {} point-to-site clients but SKU {} allows {limit}; \
                             remove clients{}",
                        gw.name,
                        clients.len(),
                        gw.sku,
                        bigger
                            .map(|b| format!(" or resize to {b}"))
                            .unwrap_or_default()
                    ),
                )
                .case(if bigger.is_some() {
                    "too_many_resize"
                } else {
                    "too_many"
                })
                .param("gateway", &gw.name)
                .param("sku", gw.sku)
                .param("clients", clients.len())
                .param("limit", limit);
                self.push(match bigger {
                    Some(b) => v.param("bigger_sku", b),
                    None => v,
                });
            }
        }
    }

    /// (gateway, p2s config, client index) for every authorised client hosted by a gateway: its
    /// own configuration's clients and those of configurations naming its VNet in
    /// `additional_vnets` (P2S-6).
    pub(super) fn hosted_clients(&self) -> Vec<(usize, usize, usize)> {
        let t = self.t;
        let mut out = Vec::new();
        for (pi, p) in t.point_to_site.iter().enumerate() {
            if self.ix.p2s.lookup(&p.tenant, &p.gateway) != Lookup::One(pi) {
                continue;
            }
            let mut gws: BTreeSet<usize> = BTreeSet::new();
            if let Lookup::One(g) = self.gateway_of(&p.tenant, &p.gateway) {
                gws.insert(g);
            }
            for x in &p.additional_vnets {
                if let Lookup::One(g) = self.vnet_gateway(&p.tenant, x) {
                    gws.insert(g);
                }
            }
            for g in gws {
                for (ci, c) in p.clients.iter().enumerate() {
                    if p.is_authorised(c) {
                        out.push((g, pi, ci));
                    }
                }
            }
        }
        out
    }
}
