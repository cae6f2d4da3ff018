//! Connections: references (REF-1, REF-2), gateway type and count rules, traffic selectors
//! (GW-1, GW-2), shared keys (GW-4, GW-5), VNet-to-VNet halves (GW-6, CONN-2) and the peer keys
//! a gateway must tell apart (KEY-2).
//!
//! Enforces: CONN-2, CONN-3, GW-1, GW-2, GW-4, GW-5, GW-6, LIM-2, PFX-1, REF-1, REF-2, KEY-2.

use super::path::FieldPath;
use super::{Lookup, Validator, Violation, canonical_prefix_message, deletes, isolation, join};
use crate::model::{ConnectionKind, GatewayType, Kind};
use crate::psk::{SharedKeyError, validate_shared_key};
use crate::rules::RuleId;
use std::collections::{BTreeMap, BTreeSet};

impl<'a> Validator<'a> {
    pub(super) fn check_connections(&mut self) {
        let t = self.t;
        // Per-gateway groupings, keyed by resolved indices (order independent).
        let mut s2s_by_gw_site: Vec<(usize, usize, usize)> = Vec::new();
        let mut s2s_by_gw: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        let mut v2v_by_pair: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();

        for (ci, c) in t.connections.iter().enumerate() {
            let base = FieldPath::new(Kind::Connection, &c.tenant, &c.name);
            let gw = match self.conn_gw[ci] {
                Lookup::Missing if self.deleted.has(Kind::Gateway, &c.tenant, &c.gateway) => {
                    self.push(deletes::still_used(
                        Kind::Gateway,
                        &c.tenant,
                        &c.gateway,
                        deletes::User {
                            noun: "connection",
                            name: &c.name,
                            path: base,
                            how: "",
                            fix: "delete the connection first",
                            case: "still_used",
                        },
                    ));
                    None
                }
                Lookup::Missing => {
                    self.push(Violation::new(
                        RuleId::Ref1,
                        base.field("gateway"),
                        format!(
                            "connection {:?} belongs to gateway {:?}, which does not exist in tenant \
                             {:?}; create the gateway first or fix the name",
                            c.name, c.gateway, c.tenant
                        ),
                    )
                    .case("connection_gateway")
                    .param("connection", &c.name)
                    .param("gateway", &c.gateway)
                    .param("tenant", &c.tenant));
                    None
                }
                Lookup::Many => None,
                Lookup::One(g) => Some(g),
            };
            // GW-5
            if let Some(k) = &c.shared_key
                && let Err(e) = validate_shared_key(k.expose())
            {
                self.push(shared_key_violation(base.field("shared_key"), &e));
            }
            match &c.kind {
                ConnectionKind::SiteToSite { site } => {
                    let site_idx = match self.conn_site[ci] {
                        Lookup::Missing if self.deleted.has(Kind::Site, &c.tenant, site) => {
                            self.push(deletes::still_used(
                                Kind::Site,
                                &c.tenant,
                                site,
                                deletes::User {
                                    noun: "connection",
                                    name: &c.name,
                                    path: base,
                                    how: "",
                                    fix: "delete the connection first",
                                    case: "still_used",
                                },
                            ));
                            None
                        }
                        Lookup::Missing => {
                            self.push(Violation::new(
                                RuleId::Ref1,
                                base.field("kind").field("site"),
                                format!(
                                    "site {site:?} does not exist in tenant {:?}; create the local \
                                     network site first or fix the name",
                                    c.tenant
                                ),
                            )
                            .case("connection_site")
                            .param("site", site)
                            .param("tenant", &c.tenant));
                            None
                        }
                        Lookup::Many => None,
                        Lookup::One(s) => Some(s),
                    };
                    if let Some(g) = gw {
                        s2s_by_gw.entry(g).or_default().push(ci);
                        if let Some(s) = site_idx {
                            s2s_by_gw_site.push((g, s, ci));
                        }
                    }
                    if let (Some(g), false) = (gw, c.traffic_selectors.is_empty()) {
                        let gateway = &t.gateways[g];
                        if gateway.gateway_type == GatewayType::RouteBased {
                            self.push(Violation::new(
                                RuleId::Gw2,
                                base.field("traffic_selectors"),
                                format!(
                                    "gateway {:?} is RouteBased: its tunnels use the forwarding \
                                     table and any-to-any selectors; remove the traffic selectors \
                                     (they only apply to PolicyBased gateways)",
                                    gateway.name
                                ),
                            )
                            .case("route_based")
                            .param("gateway", &gateway.name));
                        } else {
                            self.check_selectors(ci, g, site_idx);
                        }
                    }
                }
                ConnectionKind::VnetToVnet { remote_gateway } => {
                    let rt = remote_gateway.tenant.as_deref().unwrap_or(&c.tenant);
                    if !c.traffic_selectors.is_empty() {
                        self.push(Violation::new(
                            RuleId::Gw2,
                            base.field("traffic_selectors"),
                            "a VNet-to-VNet connection is route-based with any-to-any selectors; \
                             remove the traffic selectors",
                        )
                        .case("vnet_to_vnet"));
                    }
                    if self.conn_lone_cross[ci] {
                        // Whether the remote gateway or its tenant exists is not this tenant's
                        // business: one answer for all three cases.
                        self.push(isolation::waiting_for_other_half(
                            &base,
                            rt,
                            &remote_gateway.name,
                            &c.tenant,
                            &c.gateway,
                        ));
                        continue;
                    }
                    let remote = match self.conn_remote[ci] {
                        Lookup::Missing
                            if self.deleted.has(Kind::Gateway, rt, &remote_gateway.name) =>
                        {
                            self.push(deletes::still_used(
                                Kind::Gateway,
                                rt,
                                &remote_gateway.name,
                                deletes::User {
                                    noun: "connection",
                                    name: &c.name,
                                    path: base,
                                    how: " as its remote gateway",
                                    fix: "delete the connection first",
                                    case: "still_used_remote",
                                },
                            ));
                            None
                        }
                        Lookup::Missing => {
                            self.push(Violation::new(
                                RuleId::Ref1,
                                base.field("kind").field("remote_gateway"),
                                format!(
                                    "remote gateway {:?} does not exist in tenant {rt:?}; create \
                                     it first or fix the name",
                                    remote_gateway.name
                                ),
                            )
                            .case("remote_gateway")
                            .param("gateway", &remote_gateway.name)
                            .param("tenant", rt));
                            None
                        }
                        Lookup::Many => None,
                        Lookup::One(r) => Some(r),
                    };
                    let (Some(g), Some(r)) = (gw, remote) else {
                        continue;
                    };
                    if g == r {
                        self.push(Violation::new(
                            RuleId::Ref2,
                            base.field("kind").field("remote_gateway"),
                            "a VNet-to-VNet connection cannot point at its own gateway; name the \
                             other VNet's gateway",
                        )
                        .case("own_gateway"));
                        continue;
                    }
                    v2v_by_pair.entry((g, r)).or_default().push(ci);
                    let (gg, rg) = (&t.gateways[g], &t.gateways[r]);
                    for (end, which) in [(gg, "local"), (rg, "remote")] {
                        if end.gateway_type == GatewayType::PolicyBased {
                            self.push(
                                Violation::new(
                                    RuleId::Gw6,
                                    base.field("kind"),
                                    format!(
                                        "VNet-to-VNet needs RouteBased gateways on both ends, but \
                                         the {which} gateway {} is PolicyBased; recreate it as \
                                         RouteBased",
                                        end.qualified_name()
                                    ),
                                )
                                .param("gateway", end.qualified_name())
                                .param("end", which)
                                .related(FieldPath::new(
                                    Kind::Gateway,
                                    &end.tenant,
                                    &end.name,
                                )),
                            );
                        }
                    }
                }
            }
        }

        // CONN-2 / GW-4: the other half of every VNet-to-VNet connection.
        for (&(g, r), halves) in &v2v_by_pair {
            if halves.len() > 1 {
                for &ci in halves {
                    let c = &t.connections[ci];
                    let mut v = Violation::new(
                        RuleId::Ref2,
                        format!(
                            "{}.kind.remote_gateway",
                            FieldPath::new(Kind::Connection, &c.tenant, &c.name)
                        ),
                        format!(
                            "gateway {} has {} connections to gateway {}; one VNet-to-VNet \
                             connection per pair of gateways: delete the extra ones",
                            t.gateways[g].qualified_name(),
                            halves.len(),
                            t.gateways[r].qualified_name()
                        ),
                    )
                    .case("duplicate")
                    .param("gateway", t.gateways[g].qualified_name())
                    .param("count", halves.len())
                    .param("remote_gateway", t.gateways[r].qualified_name());
                    v.related = halves
                        .iter()
                        .filter(|&&o| o != ci)
                        .map(|&o| {
                            FieldPath::new(
                                Kind::Connection,
                                &t.connections[o].tenant,
                                &t.connections[o].name,
                            )
                            .to_string()
                        })
                        .collect();
                    self.push(v);
                }
                continue;
            }
            let ci = halves[0];
            let c = &t.connections[ci];
            let base = FieldPath::new(Kind::Connection, &c.tenant, &c.name);
            let cross = t.gateways[g].tenant != t.gateways[r].tenant;
            match v2v_by_pair.get(&(r, g)).map(Vec::as_slice) {
                None | Some([]) => {
                    // Same tenant only: a lone cross-tenant half never gets here.
                    let rgw = &t.gateways[r];
                    self.push(
                        Violation::new(
                            RuleId::Conn2,
                            base.field("kind").field("remote_gateway"),
                            format!(
                                "{}: this is one half of a VNet-to-VNet tunnel; the tunnel comes \
                                 up when the other half is created (a VnetToVnet connection on \
                                 {} naming {}) with the same shared key",
                                isolation::WAITING,
                                rgw.qualified_name(),
                                t.gateways[g].qualified_name()
                            ),
                        )
                        .warning()
                        .case("waiting")
                        .param("status", isolation::WAITING)
                        .param("remote_gateway", rgw.qualified_name())
                        .param("gateway", t.gateways[g].qualified_name()),
                    );
                }
                Some([other]) => {
                    let o = &t.connections[*other];
                    if let (Some(a), Some(b)) = (&c.shared_key, &o.shared_key)
                        && a != b
                    {
                        if cross {
                            // Each owner sets its own half: accepted, and told to each owner
                            // about its own half only.
                            self.push(isolation::key_mismatch(
                                &base,
                                &c.remote_gateway()
                                    .map(|q| q.to_string())
                                    .unwrap_or_default(),
                            ));
                        } else {
                            self.push(
                                Violation::new(
                                    RuleId::Gw4,
                                    base.field("shared_key"),
                                    format!(
                                        "the two halves of the VNet-to-VNet tunnel carry \
                                         different shared keys ({} and {}); set the same key on \
                                         both in one change (replacing the key of one half of a \
                                         pair in one tenant replaces both)",
                                        c.qualified_name(),
                                        o.qualified_name()
                                    ),
                                )
                                .param("connection", c.qualified_name())
                                .param("other_connection", o.qualified_name())
                                .related(FieldPath::new(
                                    Kind::Connection,
                                    &o.tenant,
                                    &o.name,
                                )),
                            );
                        }
                    }
                }
                Some(_) => {} // the reverse direction reports its own REF-2
            }
        }

        // LIM-2: redundant tunnels to one site.
        s2s_by_gw_site.sort_unstable();
        for group in s2s_by_gw_site.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            if group.len() < 2 {
                continue;
            }
            let (g, s) = (group[0].0, group[0].1);
            let conns: Vec<usize> = group.iter().map(|x| x.2).collect();
            let gw = &t.gateways[g];
            let allowed = if gw.active_active && self.skus.get(gw.sku).active_active {
                2
            } else {
                1
            };
            if conns.len() > allowed {
                let site = &t.sites[s];
                let (case, hint) = if allowed == 2 {
                    (
                        "redundant_active_active",
                        "an active-active gateway has at most two tunnels to one site".to_owned(),
                    )
                } else if self.skus.get(gw.sku).active_active {
                    (
                        "redundant_turn_on",
                        "turn on active-active to run two tunnels to one site, or delete the \
                         extra connection"
                            .to_owned(),
                    )
                } else {
                    (
                        "redundant_sku",
                        format!(
                            "SKU {} cannot run redundant tunnels; delete the extra connection or \
                             move to an active-active capable SKU (VpnGw1 or larger)",
                            gw.sku
                        ),
                    )
                };
                for &ci in &conns {
                    let c = &t.connections[ci];
                    let mut v = Violation::new(
                        RuleId::Lim2,
                        format!(
                            "{}.kind.site",
                            FieldPath::new(Kind::Connection, &c.tenant, &c.name)
                        ),
                        format!(
                            "gateway {:?} has {} connections to site {:?}; {hint}",
                            gw.name,
                            conns.len(),
                            site.name
                        ),
                    )
                    .case(case)
                    .param("gateway", &gw.name)
                    .param("site", &site.name)
                    .param("sku", gw.sku)
                    .param("count", conns.len())
                    .param("allowed", allowed);
                    v.related = conns
                        .iter()
                        .filter(|&&o| o != ci)
                        .map(|&o| {
                            FieldPath::new(
                                Kind::Connection,
                                &t.connections[o].tenant,
                                &t.connections[o].name,
                            )
                            .to_string()
                        })
                        .collect();
                    self.push(v);
                }
            }
        }

        // CONN-3 / GW-6: a PolicyBased gateway has a single site.
        for (&g, conns) in &s2s_by_gw {
            let gw = &t.gateways[g];
            if gw.gateway_type != GatewayType::PolicyBased || conns.len() < 2 {
                continue;
            }
            let mut sites: Vec<&str> = conns
                .iter()
                .filter_map(|&ci| t.connections[ci].site())
                .collect();
            sites.sort_unstable();
            sites.dedup();
            let mut v = Violation::new(
                RuleId::Conn3,
                FieldPath::new(Kind::Gateway, &gw.tenant, &gw.name).field("gateway_type"),
                format!(
                    "PolicyBased gateway {:?} has {} site-to-site connections (sites {}); a \
                     PolicyBased gateway connects to exactly one site (multi-site needs RouteBased, \
                     GW-6): recreate it as RouteBased or delete the extra connections",
                    gw.name,
                    conns.len(),
                    sites.join(", ")
                ),
            )
            .param("gateway", &gw.name)
            .param("sites", sites.join(", "))
            .param("connections", conns.len());
            v.related = conns
                .iter()
                .map(|&ci| {
                    FieldPath::new(
                        Kind::Connection,
                        &t.connections[ci].tenant,
                        &t.connections[ci].name,
                    )
                    .to_string()
                })
                .collect();
            self.push(v);
        }

        self.check_peer_keys(&s2s_by_gw, &v2v_by_pair);
    }

    /// GW-1: selectors of a PolicyBased site-to-site connection.
    fn check_selectors(&mut self, ci: usize, g: usize, site: Option<usize>) {
        let t = self.t;
        let c = &t.connections[ci];
        let base = FieldPath::new(Kind::Connection, &c.tenant, &c.name);
        let vnet = match self
            .ix
            .vnets
            .lookup(&t.gateways[g].tenant, &t.gateways[g].vnet)
        {
            Lookup::One(v) => Some(&t.vnets[v]),
            _ => None,
        };
        for (i, sel) in c.traffic_selectors.iter().enumerate() {
            let sp = base.index("traffic_selectors", i);
            for (field, p) in [("local", sel.local), ("remote", sel.remote)] {
                if let Some(msg) = canonical_prefix_message(&p) {
                    self.push(
                        Violation::new(RuleId::Pfx1, sp.field(field), msg)
                            .param("prefix", p)
                            .param("canonical", p.trunc()),
                    );
                }
            }
            if sel.local.addr().is_ipv4() != sel.remote.addr().is_ipv4() {
                self.push(Violation::new(
                    RuleId::Gw1,
                    sp,
                    format!(
                        "selector ({}, {}) mixes IPv4 and IPv6; both sides of a selector are of \
                         one family",
                        sel.local, sel.remote
                    ),
                )
                .case("mixed_family")
                .param("local", sel.local)
                .param("remote", sel.remote));
            }
            if let Some(v) = vnet
                && !v
                    .address_space
                    .iter()
                    .any(|a| a.trunc().contains(&sel.local.trunc()))
            {
                self.push(Violation::new(
                    RuleId::Gw1,
                    sp.field("local"),
                    format!(
                        "the local side {} of the selector is outside VNet {:?} ({}); a selector \
                         pairs a VNet prefix with a site prefix",
                        sel.local,
                        v.name,
                        join(&v.address_space)
                    ),
                )
                .case("local_outside")
                .param("local", sel.local)
                .param("vnet", &v.name)
                .param("address_space", join(&v.address_space)));
            }
            if let Some(s) = site.map(|s| &t.sites[s])
                && !s
                    .address_prefixes
                    .iter()
                    .any(|a| a.trunc().contains(&sel.remote.trunc()))
            {
                self.push(Violation::new(
                    RuleId::Gw1,
                    sp.field("remote"),
                    format!(
                        "the remote side {} of the selector is outside site {:?} ({}); add the range \
                         to the site or fix the selector",
                        sel.remote,
                        s.name,
                        join(&s.address_prefixes)
                    ),
                )
                .case("remote_outside")
                .param("remote", sel.remote)
                .param("site", &s.name)
                .param("address_prefixes", join(&s.address_prefixes)));
            }
        }
    }

    /// KEY-2: the peers of one gateway have distinct public keys.
    fn check_peer_keys(
        &mut self,
        s2s_by_gw: &BTreeMap<usize, Vec<usize>>,
        v2v_by_pair: &BTreeMap<(usize, usize), Vec<usize>>,
    ) {
        let t = self.t;
        // (gateway, key, peer): sorted and grouped below; paths are only built for conflicts.
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        enum Peer {
            Site(usize),
            Gateway(usize),
            Client(usize, usize),
        }
        let mut all: Vec<(usize, &str, Peer)> = Vec::new();
        for (&g, conns) in s2s_by_gw {
            for &ci in conns {
                // An IPsec connection (issue 17) has no WireGuard peer: its site's key is unused.
                if t.connections[ci].protocol.is_wireguard()
                    && let Some(s) = self.site_of(ci)
                    && let Some(k) = &t.sites[s].device_public_key
                {
                    all.push((g, k, Peer::Site(s)));
                }
            }
        }
        for &(g, r) in v2v_by_pair.keys() {
            if let Some(k) = &t.gateways[r].public_key {
                all.push((g, k, Peer::Gateway(r)));
            }
        }
        for (g, p, ci) in self.hosted_clients() {
            all.push((
                g,
                &t.point_to_site[p].clients[ci].public_key,
                Peer::Client(p, ci),
            ));
        }
        all.sort_unstable();
        all.dedup();
        let path = |p: &Peer| match *p {
            Peer::Site(s) => {
                FieldPath::new(Kind::Site, &t.sites[s].tenant, &t.sites[s].name).to_string()
            }
            Peer::Gateway(r) => {
                FieldPath::new(Kind::Gateway, &t.gateways[r].tenant, &t.gateways[r].name)
                    .to_string()
            }
            Peer::Client(p, ci) => {
                let pc = &t.point_to_site[p];
                format!(
                    "{}.clients[{}]",
                    FieldPath::new(Kind::PointToSite, &pc.tenant, &pc.gateway),
                    pc.clients[ci].name
                )
            }
        };
        let mut keys: BTreeMap<(usize, &str), BTreeSet<String>> = BTreeMap::new();
        for group in all.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let (g, key, _) = group[0];
            let own = t.gateways[g].public_key.as_deref() == Some(key);
            if group.len() > 1 || own {
                keys.insert((g, key), group.iter().map(|(_, _, p)| path(p)).collect());
            }
        }
        for ((g, key), peers) in keys {
            let gw = &t.gateways[g];
            {
                let own = gw.public_key.as_deref() == Some(key);
                if peers.len() < 2 && !own {
                    continue;
                }
                for peer in &peers {
                    let v = Violation::new(
                        RuleId::Key2,
                        peer.clone(),
                        if own {
                            format!(
                                "this peer uses the public key of gateway {} itself; generate a \
                                 separate key pair for it",
                                gw.qualified_name()
                            )
                        } else {
                            format!(
                                "{} peers of gateway {} share one public key; WireGuard tells peers \
                                 apart by key: give each device or client its own key pair",
                                peers.len(),
                                gw.qualified_name()
                            )
                        },
                    )
                    .param("gateway", gw.qualified_name());
                    let mut v = if own {
                        v.case("own_key")
                    } else {
                        v.case("shared").param("count", peers.len())
                    };
                    v.related = peers.iter().filter(|p| *p != peer).cloned().collect();
                    self.push(v);
                }
            }
        }
    }
}

fn shared_key_violation(path: FieldPath<'_>, e: &SharedKeyError) -> Violation {
    let v = Violation::new(RuleId::Gw5, path, format!("{e}")).param("error", e);
    match e {
        SharedKeyError::Empty => v.case("empty"),
        SharedKeyError::TooLong { len } => v
            .case("too_long")
            .param("len", len)
            .param("max", crate::psk::SHARED_KEY_MAX_LEN),
        SharedKeyError::InvalidChar { ch, position } => v
            .case("invalid_char")
            .param("char", ch)
            .param("position", position),
    }
}
