//! One index of a [`Topology`] (crate-internal), shared by the validator, the route tables
//! ([`crate::routes`]) and the workers' desired state ([`crate::desired`]).
//!
//! Two layers:
//! - [`Index`]: lookups by `(tenant, name)` of VNets, gateways, sites, point-to-site
//!   configurations (by gateway) and connections, plus gateways by VNet and connections by
//!   gateway. Each lookup tells one resource, none, or several ([`Lookup`]); the validator reports
//!   duplicates (NAME-1, VNET-1) from [`NameIndex::all`] and [`NameIndex::is_dup`], everyone else
//!   takes only unique names ([`NameIndex::unique`]), so nothing depends on which duplicate
//!   comes first.
//! - [`Net`]: the resolved network on top of an [`Index`]: each gateway's enabled site-to-site
//!   connections, its established VNet-to-VNet tunnels (both halves enabled, both gateways
//!   RouteBased) and the point-to-site configurations whose clients it hosts, all by name.
//!
//! The maps hash with `rustc-hash` (Fx: no process randomness, several times faster than SipHash
//! on short names). They are only ever probed, never iterated (`clippy.toml` bans it), so nothing
//! computed from them depends on hash order. Fx is not collision-resistant: a tenant who crafts
//! colliding names only slows the validation of its own resources, which the server bounds by
//! quotas.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use rustc_hash::FxBuildHasher;

use crate::model::{ConnectionKind, GatewayType, QualifiedName, Topology};

/// `(tenant, name)`.
pub(crate) type Key<'a> = (&'a str, &'a str);

/// A map from `(tenant, name)`; probe it, never iterate it.
pub(crate) type NameMap<'a, V> = HashMap<Key<'a>, V, FxBuildHasher>;

/// The indices of one key: almost always one, so no allocation then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    One(usize),
    Many(Vec<usize>),
}

impl Slot {
    fn push(&mut self, i: usize) {
        match self {
            Slot::One(first) => *self = Slot::Many(vec![*first, i]),
            Slot::Many(v) => v.push(i),
        }
    }

    pub(crate) fn as_slice(&self) -> &[usize] {
        match self {
            Slot::One(i) => std::slice::from_ref(i),
            Slot::Many(v) => v,
        }
    }
}

/// What a name resolves to, independent of resource order: a duplicated name resolves to
/// [`Lookup::Many`], never to whichever duplicate comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    Missing,
    One(usize),
    Many,
}

impl Lookup {
    /// The index, when exactly one resource has the name.
    pub(crate) fn one(self) -> Option<usize> {
        match self {
            Lookup::One(i) => Some(i),
            Lookup::Missing | Lookup::Many => None,
        }
    }
}

/// Every index of each key, and for every item whether its key is shared with another item.
pub(crate) fn index_with_dups<'a, T>(
    items: &'a [T],
    key: impl Fn(&'a T) -> Key<'a>,
) -> (NameMap<'a, Slot>, Vec<bool>) {
    let mut m: NameMap<'a, Slot> = NameMap::default();
    m.reserve(items.len());
    let mut dup = vec![false; items.len()];
    for (i, x) in items.iter().enumerate() {
        m.entry(key(x))
            .and_modify(|s| {
                if let Slot::One(first) = s {
                    dup[*first] = true;
                }
                dup[i] = true;
                s.push(i);
            })
            .or_insert(Slot::One(i));
    }
    (m, dup)
}

/// The resources of one kind by a `(tenant, name)` key. Probe it, never iterate it.
#[derive(Debug, Clone, Default)]
pub(crate) struct NameIndex<'a> {
    map: NameMap<'a, Slot>,
    /// Per resource: whether another resource has its key.
    dup: Vec<bool>,
}

impl<'a> NameIndex<'a> {
    pub(crate) fn new<T>(items: &'a [T], key: impl Fn(&'a T) -> Key<'a>) -> Self {
        let (map, dup) = index_with_dups(items, key);
        Self { map, dup }
    }

    /// Every resource with key `(tenant, name)`, in resource order.
    pub(crate) fn slot<'k>(&'k self, tenant: &'k str, name: &'k str) -> Option<&'k Slot> {
        // Covariance: shorten the map's key lifetime to the probe's.
        let m: &'k NameMap<'k, Slot> = &self.map;
        m.get(&(tenant, name))
    }

    /// What `(tenant, name)` resolves to.
    pub(crate) fn lookup(&self, tenant: &str, name: &str) -> Lookup {
        match self.slot(tenant, name) {
            None => Lookup::Missing,
            Some(Slot::One(i)) => Lookup::One(*i),
            Some(Slot::Many(_)) => Lookup::Many,
        }
    }

    /// The resource `(tenant, name)`, when exactly one has that key.
    pub(crate) fn unique(&self, tenant: &str, name: &str) -> Option<usize> {
        self.lookup(tenant, name).one()
    }

    /// Every resource with key `(tenant, name)` (empty when none), in resource order.
    pub(crate) fn all<'k>(&'k self, tenant: &'k str, name: &'k str) -> &'k [usize] {
        self.slot(tenant, name).map_or(&[], Slot::as_slice)
    }

    /// Whether resource `i` shares its key with another resource.
    pub(crate) fn is_dup(&self, i: usize) -> bool {
        self.dup.get(i).copied().unwrap_or(false)
    }
}

/// Every lookup of a topology by name.
#[derive(Debug, Clone)]
pub(crate) struct Index<'a> {
    pub(crate) t: &'a Topology,
    /// VNets by (tenant, name).
    pub(crate) vnets: NameIndex<'a>,
    /// Gateways by (tenant, name).
    pub(crate) gateways: NameIndex<'a>,
    /// Gateways by (tenant, VNet name).
    pub(crate) gateways_by_vnet: NameIndex<'a>,
    /// Local sites by (tenant, name).
    pub(crate) sites: NameIndex<'a>,
    /// Point-to-site configurations by (tenant, gateway name).
    pub(crate) p2s: NameIndex<'a>,
    /// Connections by (tenant, name).
    pub(crate) connections: NameIndex<'a>,
    /// Connections by (tenant, gateway name): built on first use (only the validator asks).
    conns_by_gw: OnceCell<NameIndex<'a>>,
}

impl<'a> Index<'a> {
    pub(crate) fn new(t: &'a Topology) -> Self {
        Self {
            t,
            vnets: NameIndex::new(&t.vnets, |v| (&v.tenant, &v.name)),
            gateways: NameIndex::new(&t.gateways, |g| (&g.tenant, &g.name)),
            gateways_by_vnet: NameIndex::new(&t.gateways, |g| (&g.tenant, &g.vnet)),
            sites: NameIndex::new(&t.sites, |s| (&s.tenant, &s.name)),
            p2s: NameIndex::new(&t.point_to_site, |p| (&p.tenant, &p.gateway)),
            connections: NameIndex::new(&t.connections, |c| (&c.tenant, &c.name)),
            conns_by_gw: OnceCell::new(),
        }
    }

    /// Connections by (tenant, gateway name).
    pub(crate) fn conns_by_gw(&self) -> &NameIndex<'a> {
        let t = self.t;
        self.conns_by_gw
            .get_or_init(|| NameIndex::new(&t.connections, |c| (&c.tenant, &c.gateway)))
    }
}

/// The resolved network: unique names only, order independent.
#[derive(Debug, Clone)]
pub(crate) struct Net<'a> {
    pub(crate) t: &'a Topology,
    pub(crate) index: Index<'a>,
    /// gateway -> established VNet-to-VNet tunnels (connection, remote gateway), by name.
    adj: BTreeMap<usize, Vec<(usize, usize)>>,
    /// gateway -> enabled site-to-site connections (connection, site), by name.
    s2s: BTreeMap<usize, Vec<(usize, usize)>>,
    /// gateway -> point-to-site configurations whose clients it hosts (own one first).
    hosted: BTreeMap<usize, Vec<usize>>,
}

impl<'a> Net<'a> {
    pub(crate) fn new(t: &'a Topology) -> Self {
        Self::from_index(Index::new(t))
    }

    pub(crate) fn from_index(index: Index<'a>) -> Self {
        let t = index.t;
        let mut n = Self {
            t,
            index,
            adj: BTreeMap::new(),
            s2s: BTreeMap::new(),
            hosted: BTreeMap::new(),
        };
        // Declared, enabled VNet-to-VNet halves.
        let mut halves: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
        for (ci, c) in t.connections.iter().enumerate() {
            if !c.enabled || n.index.connections.is_dup(ci) {
                continue;
            }
            let Some(g) = n.gateway_index(&c.tenant, &c.gateway) else {
                continue;
            };
            match &c.kind {
                ConnectionKind::SiteToSite { site } => {
                    if let Some(s) = n.site_index(&c.tenant, site) {
                        n.s2s.entry(g).or_default().push((ci, s));
                    }
                }
                ConnectionKind::VnetToVnet { remote_gateway } => {
                    let rt = remote_gateway.tenant.as_deref().unwrap_or(&c.tenant);
                    if let Some(r) = n.gateway_index(rt, &remote_gateway.name)
                        && r != g
                    {
                        halves.entry((g, r)).or_default().push(ci);
                    }
                }
            }
        }
        for (&(g, r), conns) in &halves {
            let both_route_based = t.gateways[g].gateway_type == GatewayType::RouteBased
                && t.gateways[r].gateway_type == GatewayType::RouteBased;
            if !both_route_based || !halves.contains_key(&(r, g)) {
                continue;
            }
            if let Some(&ci) = conns
                .iter()
                .min_by(|&&a, &&b| t.connections[a].name.cmp(&t.connections[b].name))
            {
                n.adj.entry(g).or_default().push((ci, r));
            }
        }
        for list in n.adj.values_mut() {
            list.sort_by(|a, b| t.connections[a.0].name.cmp(&t.connections[b.0].name));
        }
        for list in n.s2s.values_mut() {
            list.sort_by(|a, b| t.connections[a.0].name.cmp(&t.connections[b.0].name));
        }
        for (pi, p) in t.point_to_site.iter().enumerate() {
            if n.index.p2s.is_dup(pi) {
                continue;
            }
            let home = n.gateway_index(&p.tenant, &p.gateway);
            if let Some(g) = home {
                n.hosted.entry(g).or_default().insert(0, pi);
            }
            let mut extra: BTreeSet<usize> = BTreeSet::new();
            for x in &p.additional_vnets {
                if let Some(g) = n.gateway_of_vnet(&p.tenant, x) {
                    extra.insert(g);
                }
            }
            for g in extra {
                if home != Some(g) {
                    n.hosted.entry(g).or_default().push(pi);
                }
            }
        }
        n
    }

    /// Enabled site-to-site connections of gateway `g`: (connection, site), by name.
    pub(crate) fn s2s_of(&self, g: usize) -> Vec<(usize, usize)> {
        self.s2s.get(&g).cloned().unwrap_or_default()
    }

    /// [`Net::s2s_of`] without a copy.
    pub(crate) fn s2s_slice(&self, g: usize) -> &[(usize, usize)] {
        self.s2s.get(&g).map_or(&[], Vec::as_slice)
    }

    /// Every gateway's enabled site-to-site connections, by gateway index.
    pub(crate) fn s2s_all(&self) -> impl Iterator<Item = (usize, &[(usize, usize)])> {
        self.s2s.iter().map(|(&g, l)| (g, l.as_slice()))
    }

    /// Established VNet-to-VNet tunnels of gateway `g`: (connection, remote gateway), by name.
    pub(crate) fn v2v_of(&self, g: usize) -> Vec<(usize, usize)> {
        self.adj.get(&g).cloned().unwrap_or_default()
    }

    /// [`Net::v2v_of`] without a copy.
    pub(crate) fn v2v_slice(&self, g: usize) -> &[(usize, usize)] {
        self.adj.get(&g).map_or(&[], Vec::as_slice)
    }

    /// The point-to-site configurations whose clients gateway `g` hosts (its own first).
    pub(crate) fn hosted_by(&self, g: usize) -> &[usize] {
        self.hosted.get(&g).map_or(&[], Vec::as_slice)
    }

    /// The unique VNet `tenant/name`.
    pub(crate) fn vnet_index(&self, tenant: &str, name: &str) -> Option<usize> {
        self.index.vnets.unique(tenant, name)
    }

    /// The unique site `tenant/name`.
    pub(crate) fn site_index(&self, tenant: &str, name: &str) -> Option<usize> {
        self.index.sites.unique(tenant, name)
    }

    /// The unique gateway of VNet `tenant/vnet`.
    pub(crate) fn gateway_of_vnet(&self, tenant: &str, vnet: &str) -> Option<usize> {
        self.index.gateways_by_vnet.unique(tenant, vnet)
    }

    /// The unique point-to-site configuration of gateway `tenant/gateway`.
    pub(crate) fn p2s_index(&self, tenant: &str, gateway: &str) -> Option<usize> {
        self.index.p2s.unique(tenant, gateway)
    }

    /// The unique gateway `tenant/name`.
    pub(crate) fn gateway_index(&self, tenant: &str, name: &str) -> Option<usize> {
        self.index.gateways.unique(tenant, name)
    }

    /// The unique VNet of gateway `g`.
    pub(crate) fn vnet_of_gateway(&self, g: usize) -> Option<usize> {
        let gw = &self.t.gateways[g];
        self.vnet_index(&gw.tenant, &gw.vnet)
    }

    /// The unique point-to-site configuration of gateway `g` itself.
    pub(crate) fn own_p2s(&self, g: usize) -> Option<usize> {
        let gw = &self.t.gateways[g];
        self.p2s_index(&gw.tenant, &gw.name)
    }

    pub(crate) fn qn_gw(&self, g: usize) -> QualifiedName {
        self.t.gateways[g].qualified_name()
    }

    pub(crate) fn qn_conn(&self, c: usize) -> QualifiedName {
        self.t.connections[c].qualified_name()
    }

    pub(crate) fn qn_site(&self, s: usize) -> QualifiedName {
        let site = &self.t.sites[s];
        QualifiedName::new(&site.tenant, &site.name)
    }

    pub(crate) fn qn_vnet(&self, v: usize) -> QualifiedName {
        let vnet = &self.t.vnets[v];
        QualifiedName::new(&vnet.tenant, &vnet.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_resolve_to_many_and_are_flagged() {
        let items = [("a", "x"), ("a", "y"), ("a", "x"), ("b", "x")];
        let idx = NameIndex::new(&items, |&(t, n)| (t, n));
        assert_eq!(idx.lookup("a", "x"), Lookup::Many);
        assert_eq!(idx.all("a", "x"), &[0, 2]);
        assert_eq!(idx.unique("a", "y"), Some(1));
        assert_eq!(idx.unique("b", "x"), Some(3));
        assert_eq!(idx.lookup("c", "x"), Lookup::Missing);
        assert!(idx.all("c", "x").is_empty());
        let dups: Vec<bool> = (0..items.len()).map(|i| idx.is_dup(i)).collect();
        assert_eq!(dups, [true, false, true, false]);
    }
}
