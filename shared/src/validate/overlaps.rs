//! Address-space overlaps across resources: LIM-3 between everything one routing domain
//! reaches (VNets, sites, pools joined through transit, grouped with a union-find), the LIM-3
//! warning on a site that overlaps a VNet of its tenant before it is connected, and P2S-6 pools
//! against the VNets they reach.
//!
//! Enforces: P2S-6, LIM-3.

use super::path::FieldPath;
use super::{Lookup, Validator, Violation, isolation};
use crate::model::Kind;
use crate::prefix::net_order;
use crate::rules::RuleId;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};

/// An owner of address space, for the overlap sweeps (LIM-3, P2S-6). Ordered by a stable key
/// (kind, tenant, name) so results never depend on resource order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum OwnerKind {
    Pool,
    Site,
    Vnet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Owner<'a> {
    kind: OwnerKind,
    tenant: &'a str,
    name: &'a str,
    /// Index into the topology list of that kind.
    idx: usize,
}

impl<'a> Validator<'a> {
    fn owner_prefixes(&self, o: &Owner<'a>) -> &'a [IpNet] {
        let t = self.t;
        match o.kind {
            OwnerKind::Vnet => &t.vnets[o.idx].address_space,
            OwnerKind::Site => &t.sites[o.idx].address_prefixes,
            OwnerKind::Pool => &t.point_to_site[o.idx].address_pool,
        }
    }

    fn owner_path(&self, o: &Owner<'a>, i: usize) -> String {
        match o.kind {
            OwnerKind::Vnet => format!(
                "{}.address_space[{i}]",
                FieldPath::new(Kind::Vnet, o.tenant, o.name)
            ),
            OwnerKind::Site => format!(
                "{}.address_prefixes[{i}]",
                FieldPath::new(Kind::Site, o.tenant, o.name)
            ),
            OwnerKind::Pool => format!(
                "{}.address_pool[{i}]",
                FieldPath::new(Kind::PointToSite, o.tenant, o.name)
            ),
        }
    }

    fn owner_desc(&self, o: &Owner<'a>) -> String {
        let tenant = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!(" (tenant {s:?})")
            }
        };
        match o.kind {
            OwnerKind::Vnet => format!("VNet {:?}{}", o.name, tenant(o.tenant)),
            OwnerKind::Site => format!("site {:?}{}", o.name, tenant(o.tenant)),
            OwnerKind::Pool => {
                format!(
                    "the point-to-site pool of gateway {:?}{}",
                    o.name,
                    tenant(o.tenant)
                )
            }
        }
    }

    /// The params of the `{owner}` / `{other}` phrase (see `crate::messages`): `{key}_kind`
    /// (`vnet`, `site` or `pool`), `{key}_name`, `{key}_tenant`.
    fn owner_params(o: &Owner<'a>, key: &str) -> [(&'static str, &'a str); 3] {
        let kind = match o.kind {
            OwnerKind::Vnet => "vnet",
            OwnerKind::Site => "site",
            OwnerKind::Pool => "pool",
        };
        if key == "owner" {
            [
                ("owner_kind", kind),
                ("owner_name", o.name),
                ("owner_tenant", o.tenant),
            ]
        } else {
            [
                ("other_kind", kind),
                ("other_name", o.name),
                ("other_tenant", o.tenant),
            ]
        }
    }

    pub(super) fn check_overlaps(&mut self) {
        let t = self.t;
        let ng = t.gateways.len();
        // Gateways that resolve uniquely take part; union-find over VNet-to-VNet connections
        // (declared ones, enabled or not: a declared connection is an intent to connect and must
        // not overlap). Within a tenant one half is enough; across tenants both halves must
        // exist, since a lone half binds nobody but its owner (CONN-2).
        let mut uf = UnionFind::new(ng);
        for (ci, _) in t.connections.iter().enumerate() {
            if self.conn_lone_cross[ci] {
                continue;
            }
            if let (Some(g), Some(r)) = (self.own_gateway_of(ci), self.remote_of(ci)) {
                uf.union(g, r);
            }
        }
        // Per component: the halves of complete cross-tenant pairs (the connections through
        // which a tenant reaches another one), for the anonymised LIM-3 messages.
        let mut cross_halves: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (ci, c) in t.connections.iter().enumerate() {
            if let (Some(g), Some(r)) = (self.own_gateway_of(ci), self.remote_of(ci))
                && !self.conn_lone_cross[ci]
                && t.gateways[r].tenant != c.tenant
            {
                cross_halves.entry(uf.find(g)).or_default().push(ci);
            }
        }
        // Owners attached to each gateway.
        let mut attached: Vec<Vec<Owner<'a>>> = vec![Vec::new(); ng];
        for (gi, g) in t.gateways.iter().enumerate() {
            if self.gateway_of(&g.tenant, &g.name) != Lookup::One(gi) {
                continue;
            }
            if let Lookup::One(vi) = self.ix.vnets.lookup(&g.tenant, &g.vnet) {
                let v = &t.vnets[vi];
                attached[gi].push(Owner {
                    kind: OwnerKind::Vnet,
                    tenant: &v.tenant,
                    name: &v.name,
                    idx: vi,
                });
            }
            if let Lookup::One(pi) = self.ix.p2s.lookup(&g.tenant, &g.name) {
                let p = &t.point_to_site[pi];
                attached[gi].push(Owner {
                    kind: OwnerKind::Pool,
                    tenant: &p.tenant,
                    name: &p.gateway,
                    idx: pi,
                });
            }
        }
        for ci in 0..t.connections.len() {
            if let (Some(g), Some(s)) = (self.own_gateway_of(ci), self.site_of(ci)) {
                let site = &t.sites[s];
                let o = Owner {
                    kind: OwnerKind::Site,
                    tenant: &site.tenant,
                    name: &site.name,
                    idx: s,
                };
                if !attached[g].contains(&o) {
                    attached[g].push(o);
                }
            }
        }
        // Owner (kind, index) -> gateways it attaches to (for "directly" vs "through transit").
        let mut attach_gws: BTreeMap<(OwnerKind, usize), BTreeSet<usize>> = BTreeMap::new();
        for (gi, owners) in attached.iter().enumerate() {
            for o in owners {
                attach_gws.entry((o.kind, o.idx)).or_default().insert(gi);
            }
        }
        // Components: owners of every gateway of a transit group, each once.
        let mut comps: BTreeMap<usize, Vec<Owner<'a>>> = BTreeMap::new();
        for (gi, owners) in attached.iter().enumerate() {
            let root = uf.find(gi);
            comps
                .entry(root)
                .or_default()
                .extend(owners.iter().copied());
        }
        for owners in comps.values_mut() {
            owners.sort_unstable_by_key(|o| (o.kind, o.idx));
            owners.dedup_by_key(|o| (o.kind, o.idx));
        }
        let mut pairs: BTreeSet<(Owner<'a>, usize, Owner<'a>, usize)> = BTreeSet::new();
        let mut cross_pairs: Vec<(usize, Owner<'a>, usize)> = Vec::new();
        for (&root, owners) in &comps {
            if owners.len() < 2 {
                continue;
            }
            for p in self.overlapping(owners.iter()) {
                if p.0.tenant == p.2.tenant {
                    pairs.insert(p);
                } else {
                    cross_pairs.push((root, p.0, p.1));
                    cross_pairs.push((root, p.2, p.3));
                }
            }
        }
        for (root, o, i) in cross_pairs {
            let conns: Vec<&crate::model::Connection> = cross_halves
                .get(&root)
                .into_iter()
                .flatten()
                .map(|&ci| &t.connections[ci])
                .filter(|c| c.tenant == o.tenant)
                .collect();
            self.push(isolation::foreign_overlap(
                self.owner_path(&o, i),
                self.owner_prefixes(&o)[i],
                &self.owner_desc(&o),
                Self::owner_params(&o, "owner"),
                &conns,
            ));
        }
        for &(a, ai, b, bi) in &pairs {
            let pa = self.owner_prefixes(&a)[ai];
            let pb = self.owner_prefixes(&b)[bi];
            let ga = attach_gws
                .get(&(a.kind, a.idx))
                .cloned()
                .unwrap_or_default();
            let gb = attach_gws
                .get(&(b.kind, b.idx))
                .cloned()
                .unwrap_or_default();
            let direct = ga
                .intersection(&gb)
                .map(|&g| t.gateways[g].qualified_name())
                .min();
            let mut facts: Vec<(&str, String)> = Vec::new();
            let how = match direct {
                Some(g) => {
                    facts.push((crate::messages::CASE, "direct".to_owned()));
                    facts.push(("gateway", g.to_string()));
                    format!("gateway {g} connects them directly")
                }
                None => {
                    let name = |s: &BTreeSet<usize>| {
                        s.iter()
                            .map(|&g| t.gateways[g].qualified_name())
                            .min()
                            .map(|q| q.to_string())
                            .unwrap_or_default()
                    };
                    facts.push((crate::messages::CASE, "transit".to_owned()));
                    facts.push(("gateway", name(&ga)));
                    facts.push(("other_gateway", name(&gb)));
                    format!(
                        "they reach each other through transit between gateways {} and {} (LIM-5)",
                        name(&ga),
                        name(&gb)
                    )
                }
            };
            let mut v = Violation::new(
                RuleId::Lim3,
                self.owner_path(&a, ai),
                format!(
                    "{pa} of {} overlaps {pb} of {}; {how}. Address spaces that reach each \
                         other must not overlap: renumber one of them or remove the connection",
                    self.owner_desc(&a),
                    self.owner_desc(&b)
                ),
            )
            .param("prefix", pa)
            .param("other_prefix", pb)
            .related(self.owner_path(&b, bi));
            for (k, x) in facts {
                v = v.param(k, x);
            }
            for (k, x) in Self::owner_params(&a, "owner")
                .into_iter()
                .chain(Self::owner_params(&b, "other"))
            {
                v = v.param(k, x);
            }
            self.push(v);
        }
        self.check_site_vnet_overlaps(&pairs);

        // P2S-6: clients configured for several VNets.
        for (pi, p) in t.point_to_site.iter().enumerate() {
            if p.additional_vnets.is_empty()
                || self.ix.p2s.lookup(&p.tenant, &p.gateway) != Lookup::One(pi)
            {
                continue;
            }
            let Lookup::One(home) = self.gateway_of(&p.tenant, &p.gateway) else {
                continue;
            };
            let mut groups: BTreeSet<usize> = BTreeSet::new();
            groups.insert(uf.find(home));
            for x in &p.additional_vnets {
                if let Lookup::One(g) = self.vnet_gateway(&p.tenant, x) {
                    groups.insert(uf.find(g));
                }
            }
            if groups.len() < 2 {
                continue; // everything is in one transit group: LIM-3 covers it
            }
            let mut member: BTreeMap<Owner<'a>, BTreeSet<usize>> = BTreeMap::new();
            for &gr in &groups {
                for o in comps.get(&gr).into_iter().flatten() {
                    member.entry(*o).or_default().insert(gr);
                }
            }
            let pool_owner = Owner {
                kind: OwnerKind::Pool,
                tenant: &p.tenant,
                name: &p.gateway,
                idx: pi,
            };
            for (a, ai, b, bi) in self.overlapping(member.keys()) {
                let (ma, mb) = (&member[&a], &member[&b]);
                if !ma.is_disjoint(mb) {
                    continue;
                }
                let pa = self.owner_prefixes(&a)[ai];
                let pb = self.owner_prefixes(&b)[bi];
                let path = if a == pool_owner {
                    self.owner_path(&a, ai)
                } else if b == pool_owner {
                    self.owner_path(&b, bi)
                } else {
                    format!(
                        "{}.additional_vnets",
                        FieldPath::new(Kind::PointToSite, &p.tenant, &p.gateway)
                    )
                };
                let (case, what) = if a == pool_owner || b == pool_owner {
                    (
                        "pool",
                        "the client address pool must not overlap any VNet or site the clients \
                         reach",
                    )
                } else {
                    (
                        "vnets",
                        "the VNets a client is configured for must not overlap each other",
                    )
                };
                // Another tenant's address space (reached through a VNet-to-VNet pair it
                // consented to) is neither named nor shown.
                let own = |o: &Owner<'a>| o.tenant == p.tenant.as_str();
                let side = |o: &Owner<'a>, pr: IpNet| {
                    if own(o) {
                        format!("{pr} of {}", self.owner_desc(o))
                    } else {
                        isolation::FOREIGN_SPACE.to_owned()
                    }
                };
                let mut v = Violation::new(
                    RuleId::P2s6,
                    path,
                    format!(
                        "the clients of gateway {:?} are configured for several VNets, and {} \
                         overlaps {}; {what}: renumber one of them or drop the VNet from \
                         additional_vnets",
                        p.gateway,
                        side(&a, pa),
                        side(&b, pb)
                    ),
                )
                .case(case)
                .param("gateway", &p.gateway);
                for (o, pr, i, key, who) in [
                    (&a, pa, ai, "prefix", "owner"),
                    (&b, pb, bi, "other_prefix", "other"),
                ] {
                    if own(o) {
                        v = v.param(key, pr).related(self.owner_path(o, i));
                        for (k, x) in Self::owner_params(o, who) {
                            v = v.param(k, x);
                        }
                    }
                }
                self.push(v);
            }
        }
    }

    /// LIM-3 before any connection: a site whose prefix overlaps a VNet of its tenant cannot be
    /// connected to that VNet (a warning at the site's prefix, naming the VNet; `related` is the
    /// VNet's prefix). Pairs that already reach each other (`errors`, the LIM-3 errors) and
    /// default routes (PFX-4) are left out. One sweep per tenant over its sites' and VNets'
    /// prefixes: O(n log n + pairs).
    fn check_site_vnet_overlaps(
        &mut self,
        errors: &BTreeSet<(Owner<'a>, usize, Owner<'a>, usize)>,
    ) {
        let t = self.t;
        let reported: BTreeSet<(usize, usize)> = errors
            .iter()
            .filter(|(a, _, b, _)| a.kind == OwnerKind::Site && b.kind == OwnerKind::Vnet)
            .map(|(a, _, b, _)| (a.idx, b.idx))
            .collect();
        // Per tenant: (prefix, is a site, owner index, prefix index).
        let mut by_tenant: BTreeMap<&'a str, Vec<(IpNet, bool, usize, usize)>> = BTreeMap::new();
        for (si, s) in t.sites.iter().enumerate() {
            for (i, p) in s.address_prefixes.iter().enumerate() {
                if p.prefix_len() > 0 {
                    by_tenant
                        .entry(&s.tenant)
                        .or_default()
                        .push((p.trunc(), true, si, i));
                }
            }
        }
        for (vi, v) in t.vnets.iter().enumerate() {
            if !by_tenant.contains_key(v.tenant.as_str()) {
                continue;
            }
            for (j, p) in v.address_space.iter().enumerate() {
                if p.prefix_len() > 0
                    && let Some(items) = by_tenant.get_mut(v.tenant.as_str())
                {
                    items.push((p.trunc(), false, vi, j));
                }
            }
        }
        // (site, site prefix) -> (VNet -> its first overlapping prefix).
        let mut found: BTreeMap<(usize, usize), BTreeMap<usize, usize>> = BTreeMap::new();
        for items in by_tenant.values_mut() {
            items.sort_by(|x, y| {
                net_order(&x.0, &y.0).then_with(|| (x.1, x.2, x.3).cmp(&(y.1, y.2, y.3)))
            });
            // The chains of enclosing prefixes seen so far, of sites and of VNets.
            let mut sites: Vec<(IpNet, usize, usize)> = Vec::new();
            let mut vnets: Vec<(IpNet, usize, usize)> = Vec::new();
            for &(net, is_site, o, i) in items.iter() {
                for stack in [&mut sites, &mut vnets] {
                    while stack.last().is_some_and(|top| !top.0.contains(&net)) {
                        stack.pop();
                    }
                }
                if is_site {
                    for &(_, vi, j) in &vnets {
                        let e = found.entry((o, i)).or_default().entry(vi).or_insert(j);
                        *e = (*e).min(j);
                    }
                    sites.push((net, o, i));
                } else {
                    for &(_, si, k) in &sites {
                        let e = found.entry((si, k)).or_default().entry(o).or_insert(i);
                        *e = (*e).min(i);
                    }
                    vnets.push((net, o, i));
                }
            }
        }
        for ((si, i), vnets) in found {
            let s = &t.sites[si];
            for (vi, j) in vnets {
                if reported.contains(&(si, vi)) {
                    continue;
                }
                let v = &t.vnets[vi];
                let (sp, vp) = (s.address_prefixes[i], v.address_space[j]);
                self.push(
                    Violation::new(
                        RuleId::Lim3,
                        FieldPath::new(Kind::Site, &s.tenant, &s.name).index("address_prefixes", i),
                        format!(
                            "{sp} of site {:?} overlaps {vp} of VNet {:?}, so the site cannot be \
                             connected to VNet {:?} (address spaces that reach each other must \
                             not overlap); renumber one of them before connecting the site to \
                             that VNet's gateway",
                            s.name, v.name, v.name
                        ),
                    )
                    .warning()
                    .case("site_vnet")
                    .param("prefix", sp)
                    .param("other_prefix", vp)
                    .param("site", &s.name)
                    .param("vnet", &v.name)
                    .related(
                        FieldPath::new(Kind::Vnet, &v.tenant, &v.name).index("address_space", j),
                    ),
                );
            }
        }
    }

    /// All overlapping (owner, prefix index) pairs between different owners, normalised
    /// (smaller owner first). Sort + stack sweep: O(n log n + pairs).
    fn overlapping<'o>(
        &self,
        owners: impl Iterator<Item = &'o Owner<'a>>,
    ) -> Vec<(Owner<'a>, usize, Owner<'a>, usize)>
    where
        'a: 'o,
    {
        let mut items: Vec<(IpNet, Owner<'a>, usize)> = Vec::new();
        for o in owners {
            for (i, p) in self.owner_prefixes(o).iter().enumerate() {
                items.push((p.trunc(), *o, i));
            }
        }
        items.sort_by(|x, y| net_order(&x.0, &y.0).then_with(|| (x.1, x.2).cmp(&(y.1, y.2))));
        let mut stack: Vec<(IpNet, Owner<'a>, usize)> = Vec::new();
        let mut out = Vec::new();
        for item in items {
            while stack.last().is_some_and(|top| !top.0.contains(&item.0)) {
                stack.pop();
            }
            for s in &stack {
                if s.1 != item.1 {
                    if (s.1, s.2) < (item.1, item.2) {
                        out.push((s.1, s.2, item.1, item.2));
                    } else {
                        out.push((item.1, item.2, s.1, s.2));
                    }
                }
            }
            stack.push(item);
        }
        out
    }
}

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        // The smaller index becomes the root; roots are only used as group ids.
        if ra < rb {
            self.parent[rb] = ra;
        } else if rb < ra {
            self.parent[ra] = rb;
        }
    }
}
